/*
 * tests/mpi/test_coll_f64.c - float64 through the mpi backend: all-gather
 * and broadcast move doubles bit for bit (values no float holds, a NaN
 * payload, -0.0) on every algorithm, heap and registered buffers, uneven
 * shards; a float64 reduction is refused naming the backend. (The training
 * step's control exchange all-gathers doubles.)
 */
#include "tests/support/mpitest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/comm.h"

static const enum comm_algo algos[] = {COMM_ALGO_NATIVE, COMM_ALGO_RING, COMM_ALGO_SHM};
enum { NALGO = 3, MAXN = 70001 };
static const size_t counts[] = {1, 5, 17, 4099, MAXN};
static comm_t *comms[NALGO];
static int rank, size;

/* Doubles that two floats could not carry: 1/3 + r, big exponents, and
 * a NaN with a payload, -0.0 at fixed places. */
static double pat(int r, size_t i)
{
    if (i % 97 == 5) {
        uint64_t bits = 0x7ff8000000000000ull | (0x1234ull + (uint64_t)r);
        double d;
        memcpy(&d, &bits, sizeof d);
        return d;
    }
    if (i % 97 == 6) {
        return -0.0;
    }
    return (1.0 / 3.0 + (double)r) * pow(10.0, (double)(i % 300) - 150.0);
}

static int setup(void **state)
{
    (void)state;
    rank = mpitest_rank();
    size = mpitest_size();
    for (int k = 0; k < NALGO; k++) {
        struct comm_config cfg;
        comm_config_default(&cfg);
        cfg.backend = COMM_BACKEND_MPI;
        cfg.algo = algos[k];
        cfg.watchdog_s = 60;
        if (comm_create(MPI_COMM_WORLD, &cfg, &comms[k]) != DURE_OK) {
            return -1;
        }
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int k = 0; k < NALGO; k++) {
        comm_destroy(comms[k]);
    }
    return 0;
}

static void check_bits(const double *got, size_t n, int root, const char *what, int k)
{
    for (size_t i = 0; i < n; i++) {
        /* all-gather: element i comes from its shard's owner; broadcast: root */
        int from = root;
        for (int r = 0; root < 0 && r < size; r++) {
            struct comm_shard sh = comm_shard_of(n, size, r);
            if (i >= sh.offset && i < sh.offset + sh.count) {
                from = r;
            }
        }
        double want = pat(from, i);
        if (memcmp(&got[i], &want, sizeof want) != 0) {
            fail_msg("%s (%s) of %zu doubles: element %zu differs", what,
                     comm_algo_name(algos[k]), n, i);
        }
    }
}

static void test_allgather_and_broadcast_f64(void **state)
{
    (void)state;
    for (int k = 0; k < NALGO; k++) {
        double *heap = calloc(MAXN, sizeof *heap), *reg = NULL;
        assert_non_null(heap);
        assert_int_equal(comm_mem_alloc(comms[k], MAXN * sizeof *reg, (void **)&reg), DURE_OK);
        double *bufs[2] = {heap, reg};
        for (int b = 0; b < 2; b++) {
            double *x = bufs[b];
            for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
                size_t n = counts[c];
                struct comm_shard sh = comm_shard_of(n, size, rank);
                for (size_t i = 0; i < n; i++) {
                    x[i] = i >= sh.offset && i < sh.offset + sh.count ? pat(rank, i) : 0.0;
                }
                assert_int_equal(comm_allgather(comms[k], x + sh.offset, x, n, COMM_F64),
                                 DURE_OK);
                check_bits(x, n, -1, "all-gather", k);
                for (size_t i = 0; i < n; i++) {
                    x[i] = pat(rank, i);
                }
                assert_int_equal(comm_broadcast(comms[k], x, x, n, COMM_F64, size - 1),
                                 DURE_OK);
                check_bits(x, n, size - 1, "broadcast", k);
            }
        }
        comm_mem_free(comms[k], reg);
        free(heap);
    }
}

static void test_f64_reduction_refused(void **state)
{
    (void)state;
    double x[4] = {1, 2, 3, 4};
    dure_log_set_quiet(1);
    assert_int_equal(comm_allreduce(comms[0], x, x, 4, COMM_F64, COMM_SUM),
                     DURE_ERR_UNSUPPORTED);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "backend mpi does not reduce float64"));
    /* refused before anything was issued: the comm still works */
    assert_int_equal(comm_allgather(comms[0], x, x, 1, COMM_F64), DURE_OK);
}

int main(int argc, char **argv)
{
    mpitest_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allgather_and_broadcast_f64),
        cmocka_unit_test(test_f64_reduction_refused),
    };
    return MPITEST_RUN_GROUP("coll_f64", tests, setup, teardown);
}
