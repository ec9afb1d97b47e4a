/*
 * tests/mpi/test_coll.c - every collective x algorithm x size on the mpi
 * backend, in and out of place, sum and average, against exact expected
 * values; async ordering and progress; deterministic order; errors.
 * Runs under mpirun -np 2 (tests/run.sh) and -np 3 (test_coll_np3.sh).
 */
#include "tests/support/mpitest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collectives/comm.h"

static const enum comm_algo algos[] = {COMM_ALGO_NATIVE, COMM_ALGO_RING, COMM_ALGO_SHM};
enum { NALGO = 3 };
/* 0 and 1 element, counts not divisible by 2 or 3, and sizes spanning
 * several rounds of the shm sub-piece (32 Ki floats) and ring segment
 * (64 Ki floats). */
static const size_t sizes[] = {0, 1, 2, 3, 5, 17, 1000, 4099, 65536 + 3, 200003};
enum { NSIZE = sizeof sizes / sizeof sizes[0], MAXN = 200003 };

static comm_t *comms[NALGO];
static float *a, *b;       /* a, b[MAXN + 1]: heap */
static float *ra, *rb;     /* ra, rb[MAXN + 1]: registered with comms[2] (shm) */
static int rank, size;

/* Small integers: sums over ranks are exact in float, so any wrong
 * element, offset or order of pieces shows. */
static float pat(int r, size_t i)
{
    return (float)((long)((i * 7 + (size_t)r * 13) % 17) - 8);
}

static float sum_at(size_t i)
{
    float s = 0;
    for (int r = 0; r < size; r++) {
        s += pat(r, i);
    }
    return s;
}

static float reduced(size_t i, enum comm_redop op)
{
    return op == COMM_AVG ? sum_at(i) / (float)size : sum_at(i);
}

static void fill(float *x, size_t n, int r)
{
    for (size_t i = 0; i < n; i++) {
        x[i] = pat(r, i);
    }
}

/* Compare got[k] with want(first + k); print the first mismatch with context. */
#define CHECK_RANGE(what, got, first, n, want_expr)                                    \
    do {                                                                               \
        for (size_t k_ = 0; k_ < (n); k_++) {                                          \
            size_t i = (first) + k_;                                                   \
            float w_ = (want_expr);                                                    \
            if ((got)[k_] != w_) {                                                     \
                print_error("%s: element %zu: got %g, want %g\n", (what), i,           \
                            (double)(got)[k_], (double)w_);                            \
                fail();                                                                \
            }                                                                          \
        }                                                                              \
    } while (0)

static int group_setup(void **state)
{
    (void)state;
    struct comm_config cfg;
    rank = mpitest_rank();
    size = mpitest_size();
    for (int k = 0; k < NALGO; k++) {
        comm_config_default(&cfg);
        cfg.backend = COMM_BACKEND_MPI;
        cfg.algo = algos[k];
        cfg.watchdog_s = 60;
        if (comm_create(MPI_COMM_WORLD, &cfg, &comms[k]) != DURE_OK) {
            return -1;
        }
    }
    a = malloc((MAXN + 1) * sizeof *a);
    b = malloc((MAXN + 1) * sizeof *b);
    if (comm_mem_alloc(comms[2], (MAXN + 1) * sizeof *ra, (void **)&ra) != DURE_OK ||
        comm_mem_alloc(comms[2], (MAXN + 1) * sizeof *rb, (void **)&rb) != DURE_OK) {
        return -1;
    }
    return a && b ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    comm_mem_free(comms[2], ra);
    comm_mem_free(comms[2], rb);
    for (int k = 0; k < NALGO; k++) {
        comm_destroy(comms[k]);
    }
    free(a);
    free(b);
    return 0;
}

static void test_allreduce(void **state)
{
    (void)state;
    char what[128];
    for (int k = 0; k < NALGO; k++) {
        for (int s = 0; s < NSIZE; s++) {
            for (int op = COMM_SUM; op <= COMM_AVG; op++) {
                size_t n = sizes[s];
                snprintf(what, sizeof what, "allreduce %s n=%zu op=%d out-of-place",
                         comm_algo_name(algos[k]), n, op);
                fill(a, n, rank);
                memset(b, 0xff, n * sizeof *b);
                assert_int_equal(comm_allreduce(comms[k], a, b, n, COMM_F32, op), DURE_OK);
                CHECK_RANGE(what, b, 0, n, reduced(i, op));
                CHECK_RANGE("allreduce input untouched", a, 0, n, pat(rank, i));
                what[strlen(what) - 12] = '\0';
                strcat(what, "in-place");
                fill(a, n, rank);
                assert_int_equal(comm_allreduce(comms[k], a, a, n, COMM_F32, op), DURE_OK);
                CHECK_RANGE(what, a, 0, n, reduced(i, op));
            }
        }
    }
}

static void test_reduce_scatter(void **state)
{
    (void)state;
    char what[128];
    for (int k = 0; k < NALGO; k++) {
        for (int s = 0; s < NSIZE; s++) {
            for (int op = COMM_SUM; op <= COMM_AVG; op++) {
                size_t n = sizes[s];
                struct comm_shard sh = comm_shard_of(n, size, rank);
                snprintf(what, sizeof what, "reduce-scatter %s n=%zu op=%d out-of-place",
                         comm_algo_name(algos[k]), n, op);
                fill(a, n, rank);
                memset(b, 0xff, (MAXN + 1) * sizeof *b);
                assert_int_equal(comm_reduce_scatter(comms[k], a, b, n, COMM_F32, op), DURE_OK);
                CHECK_RANGE(what, b, sh.offset, sh.count, reduced(i, op));
                /* nothing written past the shard */
                assert_true(isnan(b[sh.count]));
                snprintf(what, sizeof what, "reduce-scatter %s n=%zu op=%d in-place",
                         comm_algo_name(algos[k]), n, op);
                fill(a, n, rank);
                assert_int_equal(
                    comm_reduce_scatter(comms[k], a, a + sh.offset, n, COMM_F32, op), DURE_OK);
                CHECK_RANGE(what, a + sh.offset, sh.offset, sh.count, reduced(i, op));
            }
        }
    }
}

static int owner_of(size_t n, size_t i)
{
    for (int r = 0; r < size; r++) {
        struct comm_shard sh = comm_shard_of(n, size, r);
        if (i >= sh.offset && i < sh.offset + sh.count) {
            return r;
        }
    }
    return -1;
}

static void test_allgather(void **state)
{
    (void)state;
    char what[128];
    for (int k = 0; k < NALGO; k++) {
        for (int s = 0; s < NSIZE; s++) {
            size_t n = sizes[s];
            struct comm_shard sh = comm_shard_of(n, size, rank);
            for (size_t i = 0; i < sh.count; i++) {
                a[i] = pat(rank, sh.offset + i);
            }
            memset(b, 0xff, (MAXN + 1) * sizeof *b);
            snprintf(what, sizeof what, "allgather %s n=%zu out-of-place",
                     comm_algo_name(algos[k]), n);
            assert_int_equal(comm_allgather(comms[k], a, b, n, COMM_F32), DURE_OK);
            CHECK_RANGE(what, b, 0, n, pat(owner_of(n, i), i));
            assert_true(isnan(b[n]));
            snprintf(what, sizeof what, "allgather %s n=%zu in-place", comm_algo_name(algos[k]),
                     n);
            memset(b, 0xff, (MAXN + 1) * sizeof *b);
            memcpy(b + sh.offset, a, sh.count * sizeof *a);
            assert_int_equal(comm_allgather(comms[k], b + sh.offset, b, n, COMM_F32), DURE_OK);
            CHECK_RANGE(what, b, 0, n, pat(owner_of(n, i), i));
        }
    }
}

static void test_broadcast(void **state)
{
    (void)state;
    char what[128];
    for (int k = 0; k < NALGO; k++) {
        for (int s = 0; s < NSIZE; s++) {
            for (int root = 0; root < size; root++) {
                size_t n = sizes[s];
                snprintf(what, sizeof what, "broadcast %s n=%zu root=%d",
                         comm_algo_name(algos[k]), n, root);
                fill(a, n, rank);
                memset(b, 0xff, n * sizeof *b);
                assert_int_equal(comm_broadcast(comms[k], a, b, n, COMM_F32, root), DURE_OK);
                CHECK_RANGE(what, b, 0, n, pat(root, i));
                CHECK_RANGE("broadcast input untouched", a, 0, n, pat(rank, i));
                fill(a, n, rank);
                assert_int_equal(comm_broadcast(comms[k], a, a, n, COMM_F32, root), DURE_OK);
                CHECK_RANGE(what, a, 0, n, pat(root, i));
            }
        }
    }
}

/* Buckets of a flat vector: the range forms, in place. */
static void test_ranges(void **state)
{
    (void)state;
    const size_t total = 100003;
    const size_t cuts[] = {0, 1, 7, 5000, 50001, 50002, 99000, 100003};
    char what[128];
    for (int k = 0; k < NALGO; k++) {
        fill(a, total, rank);
        for (size_t q = 0; q + 1 < sizeof cuts / sizeof cuts[0]; q++) {
            assert_int_equal(comm_reduce_scatter_range(comms[k], a, total, cuts[q],
                                                       cuts[q + 1] - cuts[q], COMM_F32, COMM_AVG),
                             DURE_OK);
        }
        struct comm_shard sh = comm_shard_of(total, size, rank);
        snprintf(what, sizeof what, "reduce-scatter ranges %s", comm_algo_name(algos[k]));
        CHECK_RANGE(what, a + sh.offset, sh.offset, sh.count, reduced(i, COMM_AVG));
        /* all-gather the shards back in other buckets */
        const size_t cuts2[] = {0, 33333, 33334, 100003};
        for (size_t q = 0; q + 1 < 4; q++) {
            assert_int_equal(comm_allgather_range(comms[k], a, total, cuts2[q],
                                                  cuts2[q + 1] - cuts2[q], COMM_F32),
                             DURE_OK);
        }
        snprintf(what, sizeof what, "allgather ranges %s", comm_algo_name(algos[k]));
        CHECK_RANGE(what, a, 0, total, reduced(i, COMM_AVG));
    }
}

/*
 * ZeRO-3's units: the part forms, where the range's buffer holds only the
 * range and the part buffer only this rank's part; units cut so that some
 * ranks own none of a unit, all of it, or a piece, out of place (parts in
 * b at their global index) and in place (the unit's buffer at a).
 */
static void test_parts(void **state)
{
    (void)state;
    const size_t total = 100003;
    /* shard bounds at 50002 (2 ranks), 33335 and 66670 (3 ranks) */
    const size_t cuts[] = {0, 1, 7, 5000, 49000, 51000, 51001, 66000, 99000, 100003};
    char what[128];
    for (int k = 0; k < NALGO; k++) {
        for (size_t q = 0; q + 1 < sizeof cuts / sizeof cuts[0]; q++) {
            size_t off = cuts[q], cnt = cuts[q + 1] - cuts[q];
            struct comm_shard part = comm_range_part(total, size, rank, off, cnt);
            comm_req_t *req = NULL;
            for (size_t i = 0; i < cnt; i++) {
                a[i] = pat(rank, off + i);
                b[off + i] = -100.0f;
            }
            assert_int_equal(comm_reduce_scatter_part_start(comms[k], a, b + part.offset, total,
                                                            off, cnt, COMM_F32, COMM_SUM, &req),
                             DURE_OK);
            assert_int_equal(comm_wait(comms[k], req), DURE_OK);
            snprintf(what, sizeof what, "reduce-scatter part %s [%zu, +%zu)",
                     comm_algo_name(algos[k]), off, cnt);
            CHECK_RANGE(what, b + part.offset, part.offset, part.count, sum_at(i));
            memset(a, 0, cnt * sizeof *a);
            assert_int_equal(comm_allgather_part_start(comms[k], b + part.offset, a, total, off,
                                                       cnt, COMM_F32, &req),
                             DURE_OK);
            assert_int_equal(comm_wait(comms[k], req), DURE_OK);
            snprintf(what, sizeof what, "allgather part %s [%zu, +%zu)",
                     comm_algo_name(algos[k]), off, cnt);
            CHECK_RANGE(what, a, off, cnt, sum_at(i));
            /* in place */
            for (size_t i = 0; i < cnt; i++) {
                a[i] = pat(rank, off + i);
            }
            float *mine = a + (part.offset - off);
            assert_int_equal(comm_reduce_scatter_part_start(comms[k], a, mine, total, off, cnt,
                                                            COMM_F32, COMM_AVG, &req),
                             DURE_OK);
            assert_int_equal(comm_wait(comms[k], req), DURE_OK);
            assert_int_equal(comm_allgather_part_start(comms[k], mine, a, total, off, cnt,
                                                       COMM_F32, &req),
                             DURE_OK);
            assert_int_equal(comm_wait(comms[k], req), DURE_OK);
            snprintf(what, sizeof what, "in place parts %s [%zu, +%zu)",
                     comm_algo_name(algos[k]), off, cnt);
            CHECK_RANGE(what, a, off, cnt, reduced(i, COMM_AVG));
        }
    }
    /* the part of a range: clamped, empty outside this rank's shard */
    struct comm_shard p = comm_range_part(10, 4, 3, 0, 5);
    assert_int_equal(p.count, 0);
    p = comm_range_part(10, 4, 1, 2, 6);
    assert_int_equal(p.offset, 3);
    assert_int_equal(p.count, 3);
}

/* Registered buffers: the shm algorithm reads peers' buffers in place
 * (from 64 KiB); every other algorithm treats them as plain memory. */
static void test_registered(void **state)
{
    float *heap_a = a, *heap_b = b;
    a = ra;
    b = rb;
    test_allreduce(state);
    test_reduce_scatter(state);
    test_allgather(state);
    test_broadcast(state);
    test_ranges(state);
    test_parts(state);
    a = heap_a;
    b = heap_b;
}

/* Registered on some ranks only: every rank falls back to staging alike. */
static void test_registered_on_one_rank(void **state)
{
    float *heap_a = a, *heap_b = b;
    if (rank == 0) {
        a = ra;
        b = rb;
    }
    test_allreduce(state);
    test_reduce_scatter(state);
    test_allgather(state);
    test_broadcast(state);
    a = heap_a;
    b = heap_b;
}

static void test_barrier(void **state)
{
    (void)state;
    for (int k = 0; k < NALGO; k++) {
        uint64_t before = comm_seq(comms[k]);
        assert_int_equal(comm_barrier(comms[k]), DURE_OK);
        assert_int_equal(comm_seq(comms[k]), before + 1);
    }
}

/* Async operations complete in start order whatever the order of waits,
 * and a blocking call queues behind them. */
static void test_async_ordering(void **state)
{
    (void)state;
    comm_t *cm = comms[2];
    enum { K = 6, N = 30001 };
    float *buf = malloc(K * N * sizeof *buf);
    comm_req_t *req[K];
    assert_non_null(buf);
    for (int k = 0; k < K; k++) {
        fill(buf + (size_t)k * N, N, rank);
    }
    struct comm_shard sh = comm_shard_of(N, size, rank);
    assert_int_equal(comm_allreduce_start(cm, buf, buf, N, COMM_F32, COMM_SUM, &req[0]), DURE_OK);
    assert_int_equal(comm_reduce_scatter_start(cm, buf + N, buf + N + sh.offset, N, COMM_F32,
                                               COMM_AVG, &req[1]),
                     DURE_OK);
    assert_int_equal(comm_broadcast_start(cm, buf + 2 * N, buf + 2 * N, N, COMM_F32, size - 1,
                                          &req[2]),
                     DURE_OK);
    assert_int_equal(comm_allreduce_start(cm, buf + 3 * N, buf + 3 * N, N, COMM_F32, COMM_AVG,
                                          &req[3]),
                     DURE_OK);
    /* a blocking op issued now runs after the four above */
    fill(a, N, rank);
    assert_int_equal(comm_allreduce(cm, a, a, N, COMM_F32, COMM_SUM), DURE_OK);
    int done = 0;
    for (int k = 0; k < 4; k++) {
        assert_int_equal(comm_test(cm, req[k], &done), DURE_OK);
        assert_int_equal(done, 1);
    }
    assert_int_equal(comm_reduce_scatter_range_start(cm, buf + 4 * N, N, 10, N - 20, COMM_F32,
                                                     COMM_SUM, &req[4]),
                     DURE_OK);
    assert_int_equal(comm_allgather_range_start(cm, buf + 5 * N, N, 0, N, COMM_F32, &req[5]),
                     DURE_OK);
    for (int k = K - 1; k >= 0; k--) {
        assert_int_equal(comm_wait(cm, req[k]), DURE_OK);
    }
    CHECK_RANGE("async allreduce sum", buf, 0, N, reduced(i, COMM_SUM));
    CHECK_RANGE("async reduce-scatter avg", buf + N + sh.offset, sh.offset, sh.count,
                reduced(i, COMM_AVG));
    CHECK_RANGE("async broadcast", buf + 2 * N, 0, N, pat(size - 1, i));
    CHECK_RANGE("async allreduce avg", buf + 3 * N, 0, N, reduced(i, COMM_AVG));
    CHECK_RANGE("blocking after async", a, 0, N, reduced(i, COMM_SUM));
    size_t lo = sh.offset > 10 ? sh.offset : 10;
    size_t hi = sh.offset + sh.count < N - 10 ? sh.offset + sh.count : N - 10;
    if (hi > lo) {
        CHECK_RANGE("async reduce-scatter range", buf + 4 * N + lo, lo, hi - lo,
                    reduced(i, COMM_SUM));
    }
    /* all-gather of unreduced data: every element comes from its owner */
    CHECK_RANGE("async allgather range", buf + 5 * N, 0, N, pat(owner_of(N, i), i));
    free(buf);
}

/* The communication thread progresses an operation while the caller does
 * not call into the comm at all. */
static void test_async_progress(void **state)
{
    (void)state;
    enum { N = 1 << 21 };
    float *x = malloc(N * sizeof *x);
    comm_req_t *req = NULL;
    int done = 0;
    assert_non_null(x);
    for (int k = 0; k < NALGO; k++) {
        fill(x, N, rank);
        assert_int_equal(comm_allreduce_start(comms[k], x, x, N, COMM_F32, COMM_SUM, &req),
                         DURE_OK);
        /* comm_test only reads a flag; completion proves the thread did it */
        for (int ms = 0; ms < 20000 && !done; ms += 10) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
            assert_int_equal(comm_test(comms[k], req, &done), DURE_OK);
        }
        assert_int_equal(done, 1);
        assert_int_equal(comm_wait(comms[k], req), DURE_OK);
        CHECK_RANGE("progressed allreduce", x, 0, (size_t)N, reduced(i, COMM_SUM));
        done = 0;
    }
    free(x);
}

static double seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A rank waiting for a late peer sleeps instead of spinning (its core
 * belongs to the compute thread): rank 0 waits about 300 ms for the others
 * and must spend under a quarter of that on the CPU. A spin or sched_yield
 * loop spends nearly all of it whenever the core has nothing else to run. */
static void test_waiting_sleeps(void **state)
{
    (void)state;
    enum { N = 1024 };
    float x[N];
    for (int k = 1; k < NALGO; k++) { /* dure's own waits: ring and shm */
        fill(x, N, rank);
        assert_int_equal(MPI_Barrier(MPI_COMM_WORLD), MPI_SUCCESS);
        double wall = seconds(CLOCK_MONOTONIC), cpu = seconds(CLOCK_THREAD_CPUTIME_ID);
        if (rank != 0) {
            struct timespec ts = {0, 300 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        assert_int_equal(comm_allreduce(comms[k], x, x, N, COMM_F32, COMM_SUM), DURE_OK);
        wall = seconds(CLOCK_MONOTONIC) - wall;
        cpu = seconds(CLOCK_THREAD_CPUTIME_ID) - cpu;
        CHECK_RANGE("late allreduce", x, 0, (size_t)N, reduced(i, COMM_SUM));
        if (rank == 0 && size > 1) {
            if (!(wall >= 0.25 && cpu < wall / 4)) {
                fail_msg("%s: waited %.3f s for the late rank using %.3f s of CPU",
                         comm_algo_name(algos[k]), wall, cpu);
            }
        }
    }
}

/* Deterministic mode sums in the documented order: bitwise equal to a CPU
 * reference of that order, with values whose sum depends on the order. */
static void test_deterministic_order(void **state)
{
    (void)state;
    enum { N = 70001 };
    struct comm_config cfg;
    comm_t *cm = NULL;
    float *ref = malloc(N * sizeof *ref);
    assert_non_null(ref);
    const enum comm_algo det[] = {COMM_ALGO_RING, COMM_ALGO_SHM};
    for (int d = 0; d < 2; d++) {
        comm_config_default(&cfg);
        cfg.backend = COMM_BACKEND_MPI;
        cfg.algo = det[d];
        cfg.deterministic = 1;
        assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &cm), DURE_OK);
        for (size_t i = 0; i < N; i++) {
            /* rank-dependent magnitudes: (x + y) + z != x + (y + z) */
            a[i] = (float)(sin((double)i * 0.37 + rank) * pow(10.0, (double)(rank % 3) * 3));
        }
        for (size_t i = 0; i < N; i++) {
            float v[16] = {0};
            for (int r = 0; r < size; r++) {
                v[r] = (float)(sin((double)i * 0.37 + r) * pow(10.0, (double)(r % 3) * 3));
            }
            /* piece p (the owner of i in the allreduce split) */
            int p = owner_of(N, i);
            float s;
            if (det[d] == COMM_ALGO_SHM) {
                s = v[0];
                for (int r = 1; r < size; r++) {
                    s += v[r];
                }
            } else {
                s = v[(p + 1) % size];
                for (int q = 2; q <= size; q++) {
                    s = s + v[(p + q) % size];
                }
            }
            ref[i] = s;
        }
        assert_int_equal(comm_allreduce(cm, a, b, N, COMM_F32, COMM_SUM), DURE_OK);
        assert_memory_equal(b, ref, N * sizeof *ref);
        comm_destroy(cm);
        cm = NULL;
    }
    /* auto in deterministic mode never picks MPI's own collectives */
    comm_config_default(&cfg);
    cfg.backend = COMM_BACKEND_MPI;
    cfg.deterministic = 1;
    cfg.algo_table = "0:native,64K:ring";
    assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &cm), DURE_OK);
    char text[128];
    comm_algo_table_text(cm, text, sizeof text);
    assert_string_equal(text, "0:shm,64K:ring");
    comm_destroy(cm);
    free(ref);
}

static void test_config_errors(void **state)
{
    (void)state;
    struct comm_config cfg;
    comm_t *cm = NULL;
    dure_log_set_quiet(1);
    comm_config_default(&cfg);
    cfg.backend = COMM_BACKEND_MPI;
    cfg.algo = COMM_ALGO_NATIVE;
    cfg.deterministic = 1;
    assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &cm), DURE_ERR_ARG);
    assert_null(cm);
    assert_non_null(strstr(dure_last_error(), "algo = native cannot be deterministic"));

    comm_config_default(&cfg);
    cfg.backend = COMM_BACKEND_MPI;
    cfg.algo_table = "0:shm,1M:fast";
    assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &cm), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "'fast'"));

    setenv("DURE_ALGO_TABLE", "1K:ring", 1);
    comm_config_default(&cfg);
    cfg.backend = COMM_BACKEND_MPI;
    assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &cm), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "DURE_ALGO_TABLE"));
    setenv("DURE_ALGO_TABLE", "0:native,8K:ring", 1);
    assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &cm), DURE_OK);
    assert_int_equal(comm_algo_for(cm, COMM_ALLREDUCE, 4096), COMM_ALGO_NATIVE);
    assert_int_equal(comm_algo_for(cm, COMM_ALLREDUCE, 8192), COMM_ALGO_RING);
    unsetenv("DURE_ALGO_TABLE");

    /* per-call argument errors, and the comm stays usable after them */
    uint16_t h[4] = {0};
    assert_int_equal(comm_allreduce(cm, h, h, 4, COMM_BF16, COMM_SUM), DURE_ERR_UNSUPPORTED);
    assert_non_null(strstr(dure_last_error(), "bf16 needs backend = nccl"));
    assert_int_equal(comm_broadcast(cm, a, a, 4, COMM_F32, size), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "root"));
    assert_int_equal(comm_reduce_scatter_range(cm, a, 10, 8, 3, COMM_F32, COMM_SUM),
                     DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "outside the vector of 10"));
    comm_destroy(cm);

    /* max_inflight */
    comm_config_default(&cfg);
    cfg.backend = COMM_BACKEND_MPI;
    cfg.max_inflight = 2;
    assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &cm), DURE_OK);
    comm_req_t *r[3];
    fill(a, 8, rank);
    assert_int_equal(comm_allreduce_start(cm, a, a, 4, COMM_F32, COMM_SUM, &r[0]), DURE_OK);
    assert_int_equal(comm_allreduce_start(cm, a + 4, a + 4, 4, COMM_F32, COMM_SUM, &r[1]),
                     DURE_OK);
    assert_int_equal(comm_allreduce_start(cm, b, b, 4, COMM_F32, COMM_SUM, &r[2]), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "max_inflight = 2"));
    assert_int_equal(comm_wait(cm, r[0]), DURE_OK);
    assert_int_equal(comm_wait(cm, r[1]), DURE_OK);
    CHECK_RANGE("after max_inflight", a, 0, 8, sum_at(i));
    comm_destroy(cm);
    dure_log_set_quiet(0);
}

/* No GPU here: backend = nccl fails with one clear message on every rank. */
/* The watchdog with a hook that returns (not the launcher's, which aborts):
 * the hook gets the report, then dure's own wait gives up with
 * DURE_ERR_TIMEOUT and the comm refuses further work. Rank 1 never joins. */
static struct {
    int calls, rank, missing_known;
    uint64_t seq;
    size_t bytes;
    char op[32], text[1024];
} hang;
static comm_t *hung_comm; /* left alive on purpose: its peer never finished */

static void record_hang(const struct comm_hang_report *r, void *arg)
{
    (void)arg;
    hang.calls++;
    hang.rank = r->rank;
    hang.seq = r->seq;
    hang.bytes = r->bytes;
    hang.missing_known = r->missing_known;
    snprintf(hang.op, sizeof hang.op, "%s", r->op);
    snprintf(hang.text, sizeof hang.text, "%s", r->text);
}

static void test_watchdog_hook_returns(void **state)
{
    (void)state;
    struct comm_config cfg;
    comm_config_default(&cfg);
    cfg.backend = COMM_BACKEND_MPI;
    cfg.algo = COMM_ALGO_SHM;
    cfg.watchdog_s = 0.5;
    cfg.on_hang = record_hang;
    assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &hung_comm), DURE_OK);
    if (rank == 0) {
        fill(a, 1000, rank);
        assert_int_equal(comm_allreduce(hung_comm, a, a, 1000, COMM_F32, COMM_SUM), DURE_OK);
        dure_log_set_quiet(1);
        assert_int_equal(comm_allreduce(hung_comm, a, a, 1000, COMM_F32, COMM_SUM),
                         DURE_ERR_TIMEOUT);
        assert_int_equal(hang.calls, 1);
        assert_int_equal(hang.rank, 0);
        assert_int_equal(hang.seq, 2);
        assert_int_equal(hang.bytes, 4000);
        assert_int_equal(hang.missing_known, 1);
        assert_string_equal(hang.op, "all-reduce");
        assert_non_null(strstr(hang.text, "all-reduce seq 2 (4000 bytes, algo shm)"));
        assert_non_null(strstr(hang.text, "not joined: rank 1 (last joined seq 1)"));
        assert_int_equal(comm_barrier(hung_comm), DURE_ERR_TIMEOUT);
        assert_non_null(strstr(dure_last_error(), "failed earlier (DURE_ERR_TIMEOUT)"));
        dure_log_set_quiet(0);
    } else {
        fill(a, 1000, rank);
        assert_int_equal(comm_allreduce(hung_comm, a, a, 1000, COMM_F32, COMM_SUM), DURE_OK);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

static void test_nccl_without_gpu(void **state)
{
    (void)state;
    struct comm_config cfg;
    comm_t *cm = NULL;
    comm_config_default(&cfg);
    cfg.backend = COMM_BACKEND_NCCL;
    dure_log_set_quiet(1);
    dure_status_t st = comm_create(MPI_COMM_WORLD, &cfg, &cm);
    dure_log_set_quiet(0);
    if (st == DURE_OK) {
        /* a machine with a GPU: the backend must then work */
        assert_int_equal(comm_backend(cm), COMM_BACKEND_NCCL);
        comm_destroy(cm);
        return;
    }
    assert_int_equal(st, DURE_ERR_NODEV);
    assert_null(cm);
    assert_non_null(strstr(dure_last_error(), "backend = mpi"));
    /* auto falls back to mpi */
    cfg.backend = COMM_BACKEND_AUTO;
    assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &cm), DURE_OK);
    assert_int_equal(comm_backend(cm), COMM_BACKEND_MPI);
    assert_int_equal(comm_memory(cm), COMM_MEM_HOST);
    comm_destroy(cm);
}

static void test_node_comm(void **state)
{
    (void)state;
    comm_t *node = NULL;
    assert_int_equal(comm_create_node(comms[0], &node), DURE_OK);
    assert_int_equal(comm_size(node), comm_local_size(comms[0]));
    assert_int_equal(comm_rank(node), comm_local_rank(comms[0]));
    assert_int_equal(comm_node_count(comms[0]), 1);
    assert_int_equal(comm_local_size(comms[0]), size);
    fill(a, 10, rank);
    assert_int_equal(comm_allreduce(node, a, a, 10, COMM_F32, COMM_SUM), DURE_OK);
    CHECK_RANGE("node allreduce", a, 0, 10, sum_at(i));
    comm_destroy(node);
}

int main(int argc, char **argv)
{
    mpitest_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allreduce),
        cmocka_unit_test(test_reduce_scatter),
        cmocka_unit_test(test_allgather),
        cmocka_unit_test(test_broadcast),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_parts),
        cmocka_unit_test(test_registered),
        cmocka_unit_test(test_registered_on_one_rank),
        cmocka_unit_test(test_barrier),
        cmocka_unit_test(test_async_ordering),
        cmocka_unit_test(test_async_progress),
        cmocka_unit_test(test_waiting_sleeps),
        cmocka_unit_test(test_deterministic_order),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_watchdog_hook_returns),
        cmocka_unit_test(test_nccl_without_gpu),
        cmocka_unit_test(test_node_comm),
    };
    return MPITEST_RUN_GROUP("coll", tests, group_setup, group_teardown);
}
