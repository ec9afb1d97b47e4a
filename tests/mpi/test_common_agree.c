/*
 * tests/mpi/test_common_agree.c - dure_agree (common/agree.h): every rank
 * returns the worst status, the ranks that were fine say which rank failed,
 * a single process needs no MPI, and a rank waiting for a late one sleeps;
 * dure_agree_bytes names the lowest rank whose bytes are not rank 0's.
 * Runs under mpirun -np 2 (tests/run.sh).
 */
#include "tests/support/mpitest.h"

#include <stdio.h>
#include <string.h>

#include "common/agree.h"

static void test_all_fine(void **state)
{
    (void)state;
    assert_int_equal(dure_agree(MPI_COMM_WORLD, DURE_OK, "nothing"), DURE_OK);
}

/* The last rank fails: everyone fails with its status; the others name it. */
static void test_one_rank_fails(void **state)
{
    (void)state;
    const int rank = mpitest_rank(), last = mpitest_size() - 1;
    dure_log_set_quiet(1);
    dure_log_error(__FILE__, __LINE__, "marker");
    dure_status_t st = dure_agree(MPI_COMM_WORLD, rank == last ? DURE_ERR_FORMAT : DURE_OK,
                                  "opening the dataset");
    dure_log_set_quiet(0);
    assert_int_equal(st, DURE_ERR_FORMAT);
    if (rank == last) {
        assert_string_equal(dure_last_error(), "marker"); /* it logged its own reason */
    } else {
        char want[128];
        snprintf(want, sizeof want,
                 "opening the dataset failed on rank %d (DURE_ERR_FORMAT); see that rank's error",
                 last);
        assert_string_equal(dure_last_error(), want);
    }
}

/* Different failures: the worst (highest) wins everywhere, named by the
 * lowest rank that had it. */
static void test_worst_wins(void **state)
{
    (void)state;
    const int rank = mpitest_rank();
    dure_status_t mine = rank == 0 ? DURE_ERR_NODEV : rank == 1 ? DURE_ERR_IO : DURE_OK;
    dure_log_set_quiet(1);
    dure_status_t st = dure_agree(MPI_COMM_WORLD, mine, "setup");
    dure_log_set_quiet(0);
    assert_int_equal(st, DURE_ERR_NODEV);
    if (rank > 1) {
        assert_non_null(strstr(dure_last_error(), "setup failed on rank 0 (DURE_ERR_NODEV)"));
    }
}

static void test_no_mpi(void **state)
{
    (void)state;
    assert_int_equal(dure_agree(MPI_COMM_NULL, DURE_ERR_IO, "alone"), DURE_ERR_IO);
    assert_int_equal(dure_agree(MPI_COMM_NULL, DURE_OK, "alone"), DURE_OK);
}

/* The same bytes: none differs, and root holds rank 0's. Bytes that
 * differ in their last position only, on the ranks from 1 on: the lowest of
 * them (1) is named on every rank, and root is still rank 0's. */
static void test_bytes(void **state)
{
    (void)state;
    const int rank = mpitest_rank();
    char mine[64], root[64];
    int first = 7;
    memset(mine, 'a', sizeof mine);
    memset(root, 0, sizeof root);
    assert_int_equal(dure_agree_bytes(MPI_COMM_WORLD, mine, root, (int)sizeof mine, &first),
                     DURE_OK);
    assert_int_equal(first, -1);
    assert_memory_equal(root, mine, sizeof mine);

    mine[sizeof mine - 1] = rank == 0 ? 'a' : (char)('b' + rank);
    memset(root, 0, sizeof root);
    assert_int_equal(dure_agree_bytes(MPI_COMM_WORLD, mine, root, (int)sizeof mine, &first),
                     DURE_OK);
    assert_int_equal(first, mpitest_size() > 1 ? 1 : -1);
    assert_int_equal(root[sizeof root - 1], 'a');
    assert_int_equal(root[0], 'a');

    assert_int_equal(dure_agree_bytes(MPI_COMM_NULL, mine, root, (int)sizeof mine, &first),
                     DURE_OK);
    assert_int_equal(first, -1);
    assert_memory_equal(root, mine, sizeof mine);
}

static void run_agree(void *arg)
{
    (void)arg;
    assert_int_equal(dure_agree(MPI_COMM_WORLD, DURE_OK, "late"), DURE_OK);
}

/* Waiting for a late rank sleeps (checkpoint steps wait here for a rank
 * that flushes a large file). */
static void test_waiting_sleeps(void **state)
{
    (void)state;
    mpitest_check_wait_sleeps(run_agree, NULL, "dure_agree");
}

int main(int argc, char **argv)
{
    mpitest_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_fine),
        cmocka_unit_test(test_one_rank_fails),
        cmocka_unit_test(test_worst_wins),
        cmocka_unit_test(test_no_mpi),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_waiting_sleeps),
    };
    return MPITEST_RUN("common_agree", tests);
}
