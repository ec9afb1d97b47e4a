/*
 * tests/mpi/test_tune_inplace.c - dure's in-place native all-gather is
 * decided by Open MPI at its real size, so that a rules file from dure tune
 * applies to it.
 *
 * Open MPI 4.1's coll_tuned sizes an all-gather from the SEND count and type
 * (rules lookup: send type x send count x ranks; fixed decision: type x send
 * count), which MPI ignores in place: a call with send count 0 is decided as
 * 0 bytes, whatever the rules say for its size. dure passes the receive
 * count and type as the send ones.
 *
 * Which algorithm Open MPI ran is read, timing-free, from its coll
 * monitoring component (pml_monitoring_enable = 1): the linear all-gather
 * is a gather and a broadcast issued on the communicator (one one-to-all
 * operation on the root), two_proc (Open MPI's choice for 2 ranks) issues
 * none. A rules file sets linear from 1 KiB and Open MPI's own choice below;
 * an MPI_Allgather wrapper (the profiling interface) counts the broadcasts
 * inside each call dure makes, on dure's own communicator. Runs under
 * mpirun -np 2 (tests/run.sh); the variables are set before MPI_Init.
 */
#include "tests/support/mpitest.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collectives/comm.h"
#include "tune/ompi_rules.h"

enum { LINEAR = 1, RULE_FROM = 1024 };

static char rules_path[512];
static int o2a_index = -1;
static MPI_T_pvar_session session;

/* What the last MPI_Allgather saw: its send count and the one-to-all
 * operations Open MPI issued inside it on this rank. */
static int last_scount = -1;
static unsigned long long last_o2a;

static unsigned long long o2a_now(MPI_T_pvar_handle h)
{
    unsigned long long v = 0;
    assert_int_equal(MPI_T_pvar_read(session, h, &v), MPI_SUCCESS);
    return v;
}

int MPI_Allgather(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount,
                  MPI_Datatype rtype, MPI_Comm comm)
{
    MPI_T_pvar_handle h;
    int n = 0;
    if (o2a_index < 0) {
        return PMPI_Allgather(sbuf, scount, stype, rbuf, rcount, rtype, comm);
    }
    assert_int_equal(MPI_T_pvar_handle_alloc(session, o2a_index, &comm, &h, &n), MPI_SUCCESS);
    MPI_T_pvar_start(session, h);   /* MPI_T_ERR_PVAR_NO_STARTSTOP where it counts anyway */
    unsigned long long before = o2a_now(h);
    int rc = PMPI_Allgather(sbuf, scount, stype, rbuf, rcount, rtype, comm);
    last_o2a = o2a_now(h) - before;
    last_scount = scount;
    assert_int_equal(MPI_T_pvar_handle_free(session, &h), MPI_SUCCESS);
    return rc;
}

/* The one-to-all operations Open MPI issued inside dure's in-place native
 * all-gather of n floats, summed over ranks; the send count dure passed. */
static unsigned long long inner_broadcasts(comm_t *c, size_t n, int *scount)
{
    float *x = calloc(n, sizeof *x);
    assert_non_null(x);
    struct comm_shard sh = comm_shard_of(n, mpitest_size(), mpitest_rank());
    for (size_t i = 0; i < sh.count; i++) {
        x[sh.offset + i] = (float)(sh.offset + i);
    }
    last_scount = -1;
    assert_int_equal(comm_allgather(c, x + sh.offset, x, n, COMM_F32), DURE_OK);
    for (size_t i = 0; i < n; i++) {
        assert_true(x[i] == (float)i);
    }
    free(x);
    *scount = last_scount;
    unsigned long long sum = 0;
    assert_int_equal(MPI_Allreduce(&last_o2a, &sum, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM,
                                   MPI_COMM_WORLD),
                     MPI_SUCCESS);
    return sum;
}

static void test_rules_apply_to_in_place_allgather(void **state)
{
    (void)state;
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    if (!strstr(version, "Open MPI v4.1.") || o2a_index < 0 || mpitest_size() != 2) {
        printf("skipped: needs Open MPI 4.1 with coll monitoring, on 2 ranks\n");
        skip();
    }
    struct comm_config cfg;
    comm_t *c = NULL;
    comm_config_default(&cfg);
    cfg.backend = COMM_BACKEND_MPI;
    cfg.algo = COMM_ALGO_NATIVE;
    assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &c), DURE_OK);
    int scount = 0;
    /* 64 KiB: the rules say linear (a broadcast inside); with send count 0
     * Open MPI would see 0 bytes and run two_proc */
    unsigned long long big = inner_broadcasts(c, 16384, &scount);
    if (big != 1) {
        fail_msg("64 KiB in place: %llu broadcast(s) inside MPI_Allgather, expected 1 (the "
                 "rules file's linear); 0 means Open MPI decided as for 0 bytes (send count "
                 "%d)", big, scount);
    }
    assert_int_equal(scount, 8192);
    /* 512 bytes, below the rule: Open MPI's own choice, two_proc */
    assert_int_equal(inner_broadcasts(c, 128, &scount), 0);
    assert_int_equal(scount, 64);
    comm_destroy(c);
}

static int open_monitoring(void **state)
{
    (void)state;
    int provided = 0, np = 0;
    if (MPI_T_init_thread(MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS ||
        MPI_T_pvar_get_num(&np) != MPI_SUCCESS) {
        return -1;
    }
    for (int i = 0; i < np; i++) {
        char name[256], desc[256];
        int nlen = sizeof name, dlen = sizeof desc, verb, cls, bind, ro, cont, atomic;
        MPI_Datatype dt;
        MPI_T_enum en;
        if (MPI_T_pvar_get_info(i, name, &nlen, &verb, &cls, &dt, &en, desc, &dlen, &bind, &ro,
                                &cont, &atomic) == MPI_SUCCESS &&
            strcmp(name, "coll_monitoring_o2a_count") == 0) {
            o2a_index = i;
        }
    }
    return MPI_T_pvar_session_create(&session) == MPI_SUCCESS ? 0 : -1;
}

/* MPI_T must be finalized while MPI is up (Open MPI 4.1 crashes otherwise). */
static int close_monitoring(void **state)
{
    (void)state;
    MPI_T_pvar_session_free(&session);
    MPI_T_finalize();
    unlink(rules_path);
    return 0;
}

int main(int argc, char **argv)
{
    struct tune_ompi_rules *rs = calloc(1, sizeof *rs);
    int fd = -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(rules_path, sizeof rules_path, "%s/dure-inplace-rules.XXXXXX", tmp ? tmp : "/tmp");
    if (!rs || (fd = mkstemp(rules_path)) < 0) {
        fprintf(stderr, "test_tune_inplace: no temporary rules file\n");
        return 1;
    }
    close(fd);
    if (tune_ompi_rules_add(rs, 0, 2, 0, 0) != DURE_OK ||
        tune_ompi_rules_add(rs, 0, 2, RULE_FROM, LINEAR) != DURE_OK ||
        tune_ompi_rules_write(rs, "test_tune_inplace", rules_path) != DURE_OK) {
        fprintf(stderr, "test_tune_inplace: cannot write %s\n", rules_path);
        return 1;
    }
    free(rs);
    setenv("OMPI_MCA_coll_tuned_use_dynamic_rules", "1", 1);
    setenv("OMPI_MCA_coll_tuned_dynamic_rules_filename", rules_path, 1);
    setenv("OMPI_MCA_pml_monitoring_enable", "1", 1);
    /* its one-sided layer breaks MPI_Win_shared_query (MPI_ERR_RMA_FLAVOR),
     * which the mpi backend's shm needs */
    setenv("OMPI_MCA_osc", "^monitoring,ucx,pt2pt", 1);
    mpitest_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_apply_to_in_place_allgather),
    };
    return MPITEST_RUN_GROUP("test_tune_inplace", tests, open_monitoring, close_monitoring);
}
