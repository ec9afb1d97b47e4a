/*
 * tests/mpi/test_coll_bench_api.c - collectives/bench.h as a library (what
 * `dure tune` calls): one collective on one algorithm over a size list, the
 * nccl-tests size rounding, the bus factors, checking that counts a wrong
 * element, the memcpy peer, the progress callback, which variants share
 * buffers, the order they are timed in, and bad requests.
 * Runs under mpirun -np 2 (tests/run.sh).
 */
#include "tests/support/mpitest.h"

#include <math.h>
#include <string.h>

#include "collectives/bench.h"

static comm_t *ring, *shm;
static int rank, size;

static int group_setup(void **state)
{
    (void)state;
    struct comm_config cfg;
    rank = mpitest_rank();
    size = mpitest_size();
    comm_config_default(&cfg);
    cfg.backend = COMM_BACKEND_MPI;
    cfg.algo = COMM_ALGO_RING;
    cfg.watchdog_s = 60;
    if (comm_create(MPI_COMM_WORLD, &cfg, &ring) != DURE_OK) {
        return -1;
    }
    cfg.algo = COMM_ALGO_SHM;
    return comm_create(MPI_COMM_WORLD, &cfg, &shm) == DURE_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    comm_destroy(shm);
    comm_destroy(ring);
    return 0;
}

static struct bench_spec quick(const char *coll)
{
    struct bench_spec s;
    bench_spec_default(&s, bench_coll_find(coll));
    s.iters = 2;
    s.reps = 3;
    s.warmup = 1;
    return s;
}

/* Every collective, in and out of place, on registered and heap buffers:
 * checked, with nccl-tests' bus factor, the comm's algorithm and a time. */
static void test_measure_every_collective(void **state)
{
    (void)state;
    const size_t sizes[] = {4, 4096, 10000, 1 << 20};
    const int n = sizeof sizes / sizeof sizes[0];
    struct bench_point p[4];
    int colls = 0;
    for (const struct bench_coll *c = bench_colls; c->name; c++, colls++) {
        struct bench_spec s = quick(c->name);
        s.op = COMM_AVG;
        s.root = size - 1;
        struct bench_variant v[3] = {
            {.comm = shm, .in_place = 0},
            {.comm = shm, .in_place = 1},
            {.comm = ring, .in_place = 1, .heap = 1},
        };
        assert_int_equal(bench_measure(MPI_COMM_WORLD, &s, v, 3, sizes, n, p), DURE_OK);
        for (int i = 0; i < n; i++) {
            assert_int_equal(p[i].total, bench_total_for(&s, size, sizes[i]));
            assert_int_equal(p[i].bytes, p[i].total * 4);
            assert_int_equal(p[i].count, c->per_rank_count ? p[i].total / (size_t)size
                                                           : p[i].total);
            for (int k = 0; k < 3; k++) {
                assert_int_equal(p[i].v[k].wrong, 0);
                assert_true(p[i].v[k].sec > 0);
                assert_true(fabs(p[i].v[k].busbw_gbs -
                                 p[i].v[k].algbw_gbs * c->bus_factor(size)) <=
                            1e-9 * p[i].v[k].busbw_gbs);
            }
            assert_int_equal(p[i].v[0].algo, COMM_ALGO_SHM);
            assert_int_equal(p[i].v[2].algo, COMM_ALGO_RING);
            assert_true(p[i].memcpy_gbs == 0);
        }
    }
    assert_int_equal(colls, 4);
    assert_null(bench_coll_find("alltoall"));
}

/* nccl-tests' sizes: whole elements, and for the per-rank collectives a
 * multiple of 4 elements per rank. */
static void test_total_rounding(void **state)
{
    (void)state;
    struct bench_spec ar = quick("allreduce"), rs = quick("reducescatter");
    assert_int_equal(bench_total_for(&ar, 3, 1002), 250);
    assert_int_equal(bench_total_for(&rs, 3, 1002), 240);
    assert_int_equal(bench_total_for(&rs, 2, 1000), 248);
    rs.dtype = COMM_BF16;
    assert_int_equal(bench_total_for(&rs, 2, 1000), 496);
    assert_int_equal(bench_total_for(&ar, 2, 3), 0);
}

/* A corrupted element on one rank is counted once per checked variant and
 * summed over ranks on every rank; without checking nothing is counted. */
static void test_wrong_counted(void **state)
{
    (void)state;
    const size_t sizes[] = {4096, 65536};
    struct bench_point p[2];
    for (const struct bench_coll *c = bench_colls; c->name; c++) {
        struct bench_spec s = quick(c->name);
        s.faults.corrupt_rank = size - 1;
        struct bench_variant v[2] = {{.comm = shm}, {.comm = ring, .in_place = 1}};
        assert_int_equal(bench_measure(MPI_COMM_WORLD, &s, v, 2, sizes, 2, p), DURE_OK);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(p[i].v[0].wrong, 1);
            assert_int_equal(p[i].v[1].wrong, 1);
        }
        s.check = 0;
        assert_int_equal(bench_measure(MPI_COMM_WORLD, &s, v, 2, sizes, 2, p), DURE_OK);
        assert_int_equal(p[1].v[0].wrong + p[1].v[1].wrong, 0);
    }
}

static int progress_calls;
static size_t progress_bytes[4];

static void on_point(const struct bench_point *p, void *arg)
{
    assert_ptr_equal(arg, &progress_calls);
    progress_bytes[progress_calls++] = p->bytes;
}

static void test_memcpy_peer_and_progress(void **state)
{
    (void)state;
    const size_t sizes[] = {65536, 1 << 20};
    struct bench_point p[2];
    struct bench_spec s = quick("allreduce");
    s.memcpy_peer = 1;
    s.progress = on_point;
    s.progress_arg = &progress_calls;
    struct bench_variant v = {.comm = shm, .in_place = 1};
    progress_calls = 0;
    assert_int_equal(bench_measure(MPI_COMM_WORLD, &s, &v, 1, sizes, 2, p), DURE_OK);
    assert_int_equal(progress_calls, 2);
    assert_int_equal(progress_bytes[0], 65536);
    assert_int_equal(progress_bytes[1], 1 << 20);
    assert_true(p[0].memcpy_gbs > 0 && p[1].memcpy_gbs > 0);
}

/* Passes: every size is timed in each of P passes over the list (each a
 * warm-up and `reps` repetitions of `iters` operations), checked once after
 * the last, and reported once (the progress callback after its last pass). */
static void test_passes(void **state)
{
    (void)state;
    const size_t sizes[] = {4096, 65536};
    struct bench_point p[2];
    for (int passes = 1; passes <= 3; passes += 2) {
        struct bench_spec s = quick("allreduce");
        s.passes = passes;
        s.progress = on_point;
        s.progress_arg = &progress_calls;
        struct bench_variant v = {.comm = ring, .in_place = 1};
        progress_calls = 0;
        uint64_t before = comm_seq(ring);
        assert_int_equal(bench_measure(MPI_COMM_WORLD, &s, &v, 1, sizes, 2, p), DURE_OK);
        /* per size: passes x (1 warm-up + 3 reps x 2 iters), 1 check */
        assert_int_equal(comm_seq(ring) - before, 2 * (passes * (1 + 3 * 2) + 1));
        assert_int_equal(progress_calls, 2);
        assert_int_equal(progress_bytes[1], 65536);
        assert_int_equal(p[0].v[0].wrong + p[1].v[0].wrong, 0);
        assert_true(p[0].v[0].sec > 0 && p[1].v[0].sec > 0);
    }
    /* a minimum repetition time of 50 ms raises 2 operations a repetition
     * (a 4 KiB ring all-reduce takes microseconds; under ASan on a loaded
     * machine it took more than the 0.5 ms that 1 ms would have needed) to
     * the same count on every rank, at most BENCH_ITERS_MAX, after a
     * warm-up of as many */
    struct bench_spec s = quick("allreduce");
    s.min_rep_s = 50e-3;
    struct bench_variant rv = {.comm = ring, .in_place = 1};
    uint64_t before = comm_seq(ring);
    assert_int_equal(bench_measure(MPI_COMM_WORLD, &s, &rv, 1, sizes, 1, p), DURE_OK);
    uint64_t ops = comm_seq(ring) - before - 2;   /* less the warm-up and the check */
    assert_int_equal(ops % 4, 0);                 /* warm-up and 3 repetitions of as many */
    assert_true(ops / 4 > 2 && ops / 4 <= BENCH_ITERS_MAX);
    uint64_t all = 0;
    MPI_Allreduce(&ops, &all, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    assert_int_equal(all, (uint64_t)size * ops);
    assert_int_equal(p[0].v[0].wrong, 0);

    struct bench_spec bad = quick("allreduce");
    bad.passes = 0;
    struct bench_variant v = {.comm = ring};
    dure_log_set_quiet(1);
    assert_int_equal(bench_measure(MPI_COMM_WORLD, &bad, &v, 1, sizes, 2, p), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "passes 0"));
}

/* The output buffer each variant's comm ran on last (the recording all-reduce). */
static void *ran_on[2];

static dure_status_t run_recorded(comm_t *c, const struct bench_args *a, const void *send,
                                  void *recv, size_t total)
{
    ran_on[c == shm] = recv;
    return bench_colls[0].run(c, a, send, recv, total);
}

/* Heap variants share one set of buffers whatever their comm (two sets put
 * each variant on its own pages, and A/A timings of one algorithm then
 * differed by up to 1.8x); comm_mem_alloc variants keep their own per comm
 * (shm's is registered with it). */
static void test_heap_buffers_shared(void **state)
{
    (void)state;
    const size_t sizes[] = {1 << 20};
    struct bench_point p[1];
    struct bench_coll recorded = bench_colls[0];
    recorded.run = run_recorded;
    struct bench_spec s = quick("allreduce");
    s.coll = &recorded;
    struct bench_variant heap[2] = {{.comm = ring, .in_place = 1, .heap = 1},
                                    {.comm = shm, .in_place = 1, .heap = 1}};
    assert_int_equal(bench_measure(MPI_COMM_WORLD, &s, heap, 2, sizes, 1, p), DURE_OK);
    assert_non_null(ran_on[0]);
    assert_ptr_equal(ran_on[0], ran_on[1]);
    assert_int_equal(p[0].v[0].wrong + p[0].v[1].wrong, 0);
    struct bench_variant own[2] = {{.comm = ring, .in_place = 1},
                                   {.comm = shm, .in_place = 1}};
    assert_int_equal(bench_measure(MPI_COMM_WORLD, &s, own, 2, sizes, 1, p), DURE_OK);
    assert_ptr_not_equal(ran_on[0], ran_on[1]);
    assert_int_equal(p[0].v[0].wrong + p[0].v[1].wrong, 0);
}

/* What each operation ran on, in order: its comm (1: shm) and total count. */
static struct {
    int shm;
    size_t total;
} ran[16];
static int nran;

static dure_status_t run_recorded_bcast(comm_t *c, const struct bench_args *a, const void *send,
                                        void *recv, size_t total)
{
    if (nran < 16) {
        ran[nran].shm = c == shm;
        ran[nran++].total = total;
    }
    return bench_colls[3].run(c, a, send, recv, total);
}

/* A broadcast spec whose operations are recorded (into ran[]), one per
 * repetition, no warm-up, no check. */
static struct bench_spec recording(struct bench_coll *rec)
{
    *rec = bench_colls[3];
    rec->run = run_recorded_bcast;
    struct bench_spec s = quick("broadcast");
    s.coll = rec;
    s.iters = 1;
    s.warmup = 0;
    s.check = 0;
    nran = 0;
    return s;
}

/* The variants take turns at being timed first: ring, shm in the first
 * repetition, shm, ring in the second, ring, shm in the third. */
static void test_variant_order_alternates(void **state)
{
    (void)state;
    const size_t sizes[] = {4096};
    struct bench_point p[1];
    struct bench_coll rec;
    struct bench_spec s = recording(&rec);
    struct bench_variant v[2] = {{.comm = ring, .in_place = 1}, {.comm = shm, .in_place = 1}};
    assert_int_equal(bench_measure(MPI_COMM_WORLD, &s, v, 2, sizes, 1, p), DURE_OK);
    const int want[6] = {0, 1, 1, 0, 0, 1};
    assert_int_equal(nran, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(ran[i].shm, want[i]);
    }
}

/* Passes alternate in direction and the last ascends: with sizes a < b, 3
 * passes run a b, b a, a b and 2 passes b a, a b, so that no pass starts
 * on a size after the largest ran; the points come out in the caller's
 * order either way. */
static void test_passes_alternate(void **state)
{
    (void)state;
    const size_t sizes[] = {1024, 4096};   /* bytes; broadcast: a float count of n / 4 */
    struct bench_point p[2];
    struct bench_coll rec;
    struct bench_spec s = recording(&rec);
    s.reps = 1;
    struct bench_variant v = {.comm = ring, .in_place = 1};
    const size_t want3[6] = {256, 1024, 1024, 256, 256, 1024};
    const size_t want2[4] = {1024, 256, 256, 1024};
    for (int passes = 2; passes <= 3; passes++) {
        s.passes = passes;
        nran = 0;
        assert_int_equal(bench_measure(MPI_COMM_WORLD, &s, &v, 1, sizes, 2, p), DURE_OK);
        assert_int_equal(nran, 2 * passes);
        for (int i = 0; i < nran; i++) {
            assert_int_equal(ran[i].total, passes == 3 ? want3[i] : want2[i]);
        }
        assert_int_equal(p[0].bytes, 1024);
        assert_int_equal(p[1].bytes, 4096);
    }
}

static void test_bad_requests(void **state)
{
    (void)state;
    const size_t sizes[] = {4096}, tiny[] = {2};
    struct bench_point p[1];
    struct bench_variant v = {.comm = ring};
    struct bench_spec s = quick("broadcast");
    dure_log_set_quiet(1);
    s.root = size;
    assert_int_equal(bench_measure(MPI_COMM_WORLD, &s, &v, 1, sizes, 1, p), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "the root must be a rank below"));
    s = quick("allreduce");
    assert_int_equal(bench_measure(MPI_COMM_WORLD, &s, &v, 0, sizes, 1, p), DURE_ERR_ARG);
    assert_int_equal(bench_measure(MPI_COMM_WORLD, &s, &v, 1, tiny, 1, p), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "smaller than one element"));
    s.dtype = COMM_BF16;
    assert_int_equal(bench_measure(MPI_COMM_WORLD, &s, &v, 1, sizes, 1, p),
                     DURE_ERR_UNSUPPORTED);
    dure_log_set_quiet(0);
}

int main(int argc, char **argv)
{
    mpitest_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_measure_every_collective),
        cmocka_unit_test(test_total_rounding),
        cmocka_unit_test(test_wrong_counted),
        cmocka_unit_test(test_memcpy_peer_and_progress),
        cmocka_unit_test(test_passes),
        cmocka_unit_test(test_passes_alternate),
        cmocka_unit_test(test_heap_buffers_shared),
        cmocka_unit_test(test_variant_order_alternates),
        cmocka_unit_test(test_bad_requests),
    };
    return MPITEST_RUN_GROUP("coll_bench_api", tests, group_setup, group_teardown);
}
