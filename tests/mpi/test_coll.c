/*
 * tests/mpi/test_coll.c - every collective x algorithm x size on the mpi
 * backend, in and out of place, sum and average, against exact expected
 * values; async ordering and progress; deterministic order; errors.
 * Runs under mpirun -np 2 (tests/run.sh) and -np 3 (test_coll_np3.sh).
 */
#include "tests/support/mpitest.h"
#include "tests/support/collcheck.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "collectives/comm.h"
#include "collectives/watchdog.h"
#include "common/timing.h"

/* The ring twice: with its default segment and with 4 KiB ones (1 Ki
 * floats), so that most sizes below end in a partial segment. */
static const enum comm_algo algos[] = {COMM_ALGO_NATIVE, COMM_ALGO_RING, COMM_ALGO_SHM,
                                       COMM_ALGO_RING};
static const size_t seg_bytes[] = {0, 0, 0, 4096};
enum { NALGO = 4 };

/* What failure messages call variant k: "ring", "ring/4K". */
static const char *label(int k)
{
    return k == 3 ? "ring/4K" : comm_algo_name(algos[k]);
}
/* 0 and 1 element, counts not divisible by 2 or 3, and sizes spanning
 * several rounds of the shm sub-piece (32 Ki floats) and ring segment
 * (64 Ki floats by default). */
static const size_t sizes[] = {0, 1, 2, 3, 5, 17, 1000, 4099, 65536 + 3, 200003};
enum { NSIZE = sizeof sizes / sizeof sizes[0], MAXN = 200003 };

static comm_t *comms[NALGO];
static float *a, *b;       /* a, b[MAXN + 1]: heap */
static float *ra, *rb;     /* ra, rb[MAXN + 1]: registered with comms[2] (shm) */
static int rank, size;

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
        cfg.ring_seg_bytes = seg_bytes[k];
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
                         label(k), n, op);
                collcheck_fill(a, n, rank);
                memset(b, 0xff, n * sizeof *b);
                assert_int_equal(comm_allreduce(comms[k], a, b, n, COMM_F32, op), DURE_OK);
                COLLCHECK_RANGE(what, b, 0, n, collcheck_reduced(size, i, op));
                COLLCHECK_RANGE("allreduce input untouched", a, 0, n, collcheck_pat(rank, i));
                what[strlen(what) - 12] = '\0';
                strcat(what, "in-place");
                collcheck_fill(a, n, rank);
                assert_int_equal(comm_allreduce(comms[k], a, a, n, COMM_F32, op), DURE_OK);
                COLLCHECK_RANGE(what, a, 0, n, collcheck_reduced(size, i, op));
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
                         label(k), n, op);
                collcheck_fill(a, n, rank);
                memset(b, 0xff, (MAXN + 1) * sizeof *b);
                assert_int_equal(comm_reduce_scatter(comms[k], a, b, n, COMM_F32, op), DURE_OK);
                COLLCHECK_RANGE(what, b, sh.offset, sh.count, collcheck_reduced(size, i, op));
                /* nothing written past the shard */
                assert_true(isnan(b[sh.count]));
                snprintf(what, sizeof what, "reduce-scatter %s n=%zu op=%d in-place",
                         label(k), n, op);
                collcheck_fill(a, n, rank);
                assert_int_equal(
                    comm_reduce_scatter(comms[k], a, a + sh.offset, n, COMM_F32, op), DURE_OK);
                COLLCHECK_RANGE(what, a + sh.offset, sh.offset, sh.count, collcheck_reduced(size, i, op));
            }
        }
    }
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
                a[i] = collcheck_pat(rank, sh.offset + i);
            }
            memset(b, 0xff, (MAXN + 1) * sizeof *b);
            snprintf(what, sizeof what, "allgather %s n=%zu out-of-place",
                     label(k), n);
            assert_int_equal(comm_allgather(comms[k], a, b, n, COMM_F32), DURE_OK);
            COLLCHECK_RANGE(what, b, 0, n, collcheck_pat(collcheck_owner(n, size, i), i));
            assert_true(isnan(b[n]));
            snprintf(what, sizeof what, "allgather %s n=%zu in-place", label(k),
                     n);
            memset(b, 0xff, (MAXN + 1) * sizeof *b);
            memcpy(b + sh.offset, a, sh.count * sizeof *a);
            assert_int_equal(comm_allgather(comms[k], b + sh.offset, b, n, COMM_F32), DURE_OK);
            COLLCHECK_RANGE(what, b, 0, n, collcheck_pat(collcheck_owner(n, size, i), i));
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
                         label(k), n, root);
                collcheck_fill(a, n, rank);
                memset(b, 0xff, n * sizeof *b);
                assert_int_equal(comm_broadcast(comms[k], a, b, n, COMM_F32, root), DURE_OK);
                COLLCHECK_RANGE(what, b, 0, n, collcheck_pat(root, i));
                COLLCHECK_RANGE("broadcast input untouched", a, 0, n, collcheck_pat(rank, i));
                collcheck_fill(a, n, rank);
                assert_int_equal(comm_broadcast(comms[k], a, a, n, COMM_F32, root), DURE_OK);
                COLLCHECK_RANGE(what, a, 0, n, collcheck_pat(root, i));
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
        collcheck_fill(a, total, rank);
        for (size_t q = 0; q + 1 < sizeof cuts / sizeof cuts[0]; q++) {
            assert_int_equal(comm_reduce_scatter_range(comms[k], a, total, cuts[q],
                                                       cuts[q + 1] - cuts[q], COMM_F32, COMM_AVG),
                             DURE_OK);
        }
        struct comm_shard sh = comm_shard_of(total, size, rank);
        snprintf(what, sizeof what, "reduce-scatter ranges %s", label(k));
        COLLCHECK_RANGE(what, a + sh.offset, sh.offset, sh.count, collcheck_reduced(size, i, COMM_AVG));
        /* all-gather the shards back in other buckets */
        const size_t cuts2[] = {0, 33333, 33334, 100003};
        for (size_t q = 0; q + 1 < 4; q++) {
            assert_int_equal(comm_allgather_range(comms[k], a, total, cuts2[q],
                                                  cuts2[q + 1] - cuts2[q], COMM_F32),
                             DURE_OK);
        }
        snprintf(what, sizeof what, "allgather ranges %s", label(k));
        COLLCHECK_RANGE(what, a, 0, total, collcheck_reduced(size, i, COMM_AVG));
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
                a[i] = collcheck_pat(rank, off + i);
                b[off + i] = -100.0f;
            }
            assert_int_equal(comm_reduce_scatter_part_start(comms[k], a, b + part.offset, total,
                                                            off, cnt, COMM_F32, COMM_SUM, &req),
                             DURE_OK);
            assert_int_equal(comm_wait(comms[k], req), DURE_OK);
            snprintf(what, sizeof what, "reduce-scatter part %s [%zu, +%zu)",
                     label(k), off, cnt);
            COLLCHECK_RANGE(what, b + part.offset, part.offset, part.count, collcheck_reduced(size, i, COMM_SUM));
            memset(a, 0, cnt * sizeof *a);
            assert_int_equal(comm_allgather_part_start(comms[k], b + part.offset, a, total, off,
                                                       cnt, COMM_F32, &req),
                             DURE_OK);
            assert_int_equal(comm_wait(comms[k], req), DURE_OK);
            snprintf(what, sizeof what, "allgather part %s [%zu, +%zu)",
                     label(k), off, cnt);
            COLLCHECK_RANGE(what, a, off, cnt, collcheck_reduced(size, i, COMM_SUM));
            /* in place */
            for (size_t i = 0; i < cnt; i++) {
                a[i] = collcheck_pat(rank, off + i);
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
                     label(k), off, cnt);
            COLLCHECK_RANGE(what, a, off, cnt, collcheck_reduced(size, i, COMM_AVG));
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

/* On a communicator of one rank an in-place collective is the identity and
 * writes nothing, whatever the algorithm: the buffer is read-only here (a
 * backend copying the range onto itself faults). Out of place it copies. */
static void test_one_rank_in_place(void **state)
{
    (void)state;
    const size_t n = 4099;
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t bytes = (n * sizeof(float) + page - 1) / page * page;
    float *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(buf != MAP_FAILED);
    collcheck_fill(buf, n, 7);
    assert_int_equal(mprotect(buf, bytes, PROT_READ), 0);
    for (int k = 0; k < NALGO; k++) {
        struct comm_config cfg;
        comm_t *one = NULL;
        comm_config_default(&cfg);
        cfg.backend = COMM_BACKEND_MPI;
        cfg.algo = algos[k];
        cfg.ring_seg_bytes = seg_bytes[k];
        cfg.watchdog_s = 60;
        assert_int_equal(comm_create(MPI_COMM_SELF, &cfg, &one), DURE_OK);
        for (int op = COMM_SUM; op <= COMM_AVG; op++) {
            assert_int_equal(comm_allreduce(one, buf, buf, n, COMM_F32, op), DURE_OK);
            assert_int_equal(comm_reduce_scatter(one, buf, buf, n, COMM_F32, op), DURE_OK);
        }
        assert_int_equal(comm_allgather(one, buf, buf, n, COMM_F32), DURE_OK);
        assert_int_equal(comm_broadcast(one, buf, buf, n, COMM_F32, 0), DURE_OK);
        assert_int_equal(comm_barrier(one), DURE_OK);
        memset(b, 0xff, n * sizeof *b);
        assert_int_equal(comm_allreduce(one, buf, b, n, COMM_F32, COMM_AVG), DURE_OK);
        COLLCHECK_RANGE("one rank, out of place: a copy", b, 0, n, collcheck_pat(7, i));
        comm_destroy(one);
    }
    COLLCHECK_RANGE("one rank, in place: untouched", buf, 0, n, collcheck_pat(7, i));
    assert_int_equal(munmap(buf, bytes), 0);
}

/* A barrier holds every rank until the last one arrives: the last rank sets
 * a flag in shared memory, after a pause, just before its barrier, and no
 * rank may leave its barrier without seeing it. A barrier that does not
 * wait (a no-op) fails here on the ranks that did not pause. */
static void test_barrier(void **state)
{
    (void)state;
    MPI_Comm node = MPI_COMM_NULL;
    MPI_Win win = MPI_WIN_NULL;
    int *flag = NULL, node_size = 0, disp = 0, early = -1;
    MPI_Aint bytes = 0;
    assert_int_equal(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL,
                                         &node),
                     MPI_SUCCESS);
    MPI_Comm_size(node, &node_size);
    assert_int_equal(node_size, size); /* the test runs every rank on one machine */
    assert_int_equal(MPI_Win_allocate_shared(rank == 0 ? sizeof *flag : 0, sizeof *flag,
                                             MPI_INFO_NULL, node, &flag, &win),
                     MPI_SUCCESS);
    assert_int_equal(MPI_Win_shared_query(win, 0, &bytes, &disp, &flag), MPI_SUCCESS);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
    for (int k = 0; k < NALGO; k++) {
        if (rank == 0) {
            __atomic_store_n(flag, 0, __ATOMIC_SEQ_CST);
        }
        MPI_Win_sync(win);
        assert_int_equal(MPI_Barrier(MPI_COMM_WORLD), MPI_SUCCESS);
        if (rank == size - 1) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
            __atomic_store_n(flag, k + 1, __ATOMIC_SEQ_CST);
            MPI_Win_sync(win);
        }
        uint64_t before = comm_seq(comms[k]);
        assert_int_equal(comm_barrier(comms[k]), DURE_OK);
        assert_int_equal(comm_seq(comms[k]), before + 1);
        MPI_Win_sync(win);
        if (__atomic_load_n(flag, __ATOMIC_SEQ_CST) != k + 1 && early < 0) {
            early = k;
        }
        assert_int_equal(MPI_Barrier(MPI_COMM_WORLD), MPI_SUCCESS);
    }
    MPI_Win_unlock_all(win);
    MPI_Win_free(&win);
    MPI_Comm_free(&node);
    /* Reported after the cleanup, which every rank must reach. */
    if (early >= 0) {
        fail_msg("barrier %s: rank %d left before rank %d arrived", label(early),
                 rank, size - 1);
    }
}

/* Async operations complete in start order whatever the order of waits,
 * and a blocking call queues behind them. */
static void test_async_ordering(void **state)
{
    (void)state;
    comm_t *cm = comms[2];
    enum { K = 7, N = 30001 };
    float *buf = malloc(K * N * sizeof *buf);
    comm_req_t *req[K];
    assert_non_null(buf);
    for (int k = 0; k < K; k++) {
        collcheck_fill(buf + (size_t)k * N, N, rank);
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
    collcheck_fill(a, N, rank);
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
    assert_int_equal(comm_allgather_start(cm, buf + 6 * N + sh.offset, buf + 6 * N, N, COMM_F32,
                                          &req[6]),
                     DURE_OK);
    for (int k = K - 1; k >= 0; k--) {
        assert_int_equal(comm_wait(cm, req[k]), DURE_OK);
    }
    COLLCHECK_RANGE("async allreduce sum", buf, 0, N, collcheck_reduced(size, i, COMM_SUM));
    COLLCHECK_RANGE("async reduce-scatter avg", buf + N + sh.offset, sh.offset, sh.count,
                collcheck_reduced(size, i, COMM_AVG));
    COLLCHECK_RANGE("async broadcast", buf + 2 * N, 0, N, collcheck_pat(size - 1, i));
    COLLCHECK_RANGE("async allreduce avg", buf + 3 * N, 0, N, collcheck_reduced(size, i, COMM_AVG));
    COLLCHECK_RANGE("blocking after async", a, 0, N, collcheck_reduced(size, i, COMM_SUM));
    size_t lo = sh.offset > 10 ? sh.offset : 10;
    size_t hi = sh.offset + sh.count < N - 10 ? sh.offset + sh.count : N - 10;
    if (hi > lo) {
        COLLCHECK_RANGE("async reduce-scatter range", buf + 4 * N + lo, lo, hi - lo,
                    collcheck_reduced(size, i, COMM_SUM));
    }
    /* all-gather of unreduced data: every element comes from its owner */
    COLLCHECK_RANGE("async allgather range", buf + 5 * N, 0, N, collcheck_pat(collcheck_owner(N, size, i), i));
    COLLCHECK_RANGE("async allgather", buf + 6 * N, 0, N, collcheck_pat(collcheck_owner(N, size, i), i));
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
        collcheck_fill(x, N, rank);
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
        COLLCHECK_RANGE("progressed allreduce", x, 0, (size_t)N, collcheck_reduced(size, i, COMM_SUM));
        done = 0;
    }
    free(x);
}

/* Threads of this process (/proc/self/status), -1 when unreadable. */
static int thread_count(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "Threads: %d", &n) == 1) {
            break;
        }
    }
    if (f) {
        fclose(f);
    }
    return n;
}

/* parallel.comm_thread = off (comm_config.caller_runs): no thread; a
 * started operation runs only when the caller waits, then in start order
 * up to the one waited; a blocking call and comm_destroy run what is
 * queued first. Every algorithm, the shm one with the long spin. */
static void test_caller_runs(void **state)
{
    (void)state;
    enum { K = 3, N = 30001 };
    float *buf = malloc((K + 1) * N * sizeof *buf);
    assert_non_null(buf);
    for (int k = 0; k < NALGO; k++) {
        assert_int_equal(comm_caller_runs(comms[k]), 0);
        struct comm_config cfg;
        comm_config_default(&cfg);
        cfg.backend = COMM_BACKEND_MPI;
        cfg.algo = algos[k];
        cfg.ring_seg_bytes = seg_bytes[k];
        cfg.watchdog_s = 0; /* no watchdog thread either: the count below is the comm's */
        cfg.caller_runs = 1;
        cfg.spin_ns = COMM_SPIN_OWN_CORE_NS;
        comm_t *cm = NULL;
        int before = thread_count();
        assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &cm), DURE_OK);
        assert_int_equal(thread_count(), before);
        assert_int_equal(comm_caller_runs(cm), 1);
        assert_true(isnan(comm_thread_cpu_s(cm))); /* no thread to measure */

        comm_req_t *req[K];
        for (int q = 0; q <= K; q++) {
            collcheck_fill(buf + (size_t)q * N, N, rank);
        }
        for (int q = 0; q < K; q++) {
            assert_int_equal(comm_allreduce_start(cm, buf + (size_t)q * N, buf + (size_t)q * N, N,
                                                  COMM_F32, COMM_SUM, &req[q]),
                             DURE_OK);
        }
        /* nothing runs them: a thread would have finished in 50 ms */
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        int done = 1;
        assert_int_equal(comm_test(cm, req[0], &done), DURE_OK);
        assert_int_equal(done, 0);
        COLLCHECK_RANGE("caller runs: not before a wait", buf, 0, N, collcheck_pat(rank, i));
        /* waiting on the second runs the first two, not the third */
        assert_int_equal(comm_wait(cm, req[1]), DURE_OK);
        assert_int_equal(comm_test(cm, req[0], &done), DURE_OK);
        assert_int_equal(done, 1);
        assert_int_equal(comm_test(cm, req[2], &done), DURE_OK);
        assert_int_equal(done, 0);
        assert_int_equal(comm_wait(cm, req[0]), DURE_OK);
        /* a blocking call runs the third first */
        assert_int_equal(comm_allreduce(cm, buf + (size_t)K * N, buf + (size_t)K * N, N,
                                        COMM_F32, COMM_SUM),
                         DURE_OK);
        assert_int_equal(comm_test(cm, req[2], &done), DURE_OK);
        assert_int_equal(done, 1);
        assert_int_equal(comm_wait(cm, req[2]), DURE_OK);
        COLLCHECK_RANGE("caller runs: in start order", buf, 0, (size_t)(K + 1) * N,
                        collcheck_reduced(size, i % N, COMM_SUM));
        /* destroy runs what is still queued */
        collcheck_fill(buf, N, rank);
        assert_int_equal(comm_allreduce_start(cm, buf, buf, N, COMM_F32, COMM_SUM, &req[0]),
                         DURE_OK);
        comm_destroy(cm);
        COLLCHECK_RANGE("caller runs: destroy ran the queue", buf, 0, N,
                        collcheck_reduced(size, i, COMM_SUM));
    }
    free(buf);
}

/* The rule of parallel.comm_thread = auto and the spin it picks. */
static void test_caller_runs_auto(void **state)
{
    (void)state;
    assert_int_equal(comm_caller_runs_auto(1, 2, 1, 2), 1);  /* one core per rank */
    assert_int_equal(comm_caller_runs_auto(1, 2, 2, 2), 1);  /* oversubscribed */
    assert_int_equal(comm_caller_runs_auto(1, 2, 1, 3), 0);  /* a spare core */
    assert_int_equal(comm_caller_runs_auto(2, 2, 1, 2), 0);  /* across nodes */
    assert_int_equal(comm_caller_runs_auto(1, 2, 1, 0), 0);  /* cores unknown */
    assert_int_equal(comm_spin_ns(1, 2, 1, 2), COMM_SPIN_OWN_CORE_NS);
    assert_int_equal(comm_spin_ns(1, 2, 2, 2), COMM_SPIN_NS);  /* the core is shared */
    assert_int_equal(comm_spin_ns(0, 2, 1, 2), COMM_SPIN_NS);  /* the thread shares it */
}

/* comm_thread_cpu_s counts the communication thread's CPU alone: not the
 * caller's (30 ms of busy caller leave it all but unchanged), and what the
 * thread ran (started all-reduces of 4 MiB: it summed them) adds to it,
 * never more than the wall time that passed. */
static void test_thread_cpu(void **state)
{
    (void)state;
    enum { K = 2, N = 1 << 20 };
    float *buf = malloc((size_t)K * N * sizeof *buf);
    assert_non_null(buf);
    for (int k = 0; k < NALGO; k++) {
        double c0 = comm_thread_cpu_s(comms[k]);
        assert_true(c0 >= 0);
        for (double t0 = dure_clock_s(CLOCK_THREAD_CPUTIME_ID);
             dure_clock_s(CLOCK_THREAD_CPUTIME_ID) - t0 < 0.03;) {
        }
        double c1 = comm_thread_cpu_s(comms[k]);
        assert_true(c1 - c0 < 0.01);

        comm_req_t *req[K];
        for (int q = 0; q < K; q++) {
            collcheck_fill(buf + (size_t)q * N, N, rank);
        }
        double w0 = dure_now_s();
        for (int q = 0; q < K; q++) {
            assert_int_equal(comm_allreduce_start(comms[k], buf + (size_t)q * N,
                                                  buf + (size_t)q * N, N, COMM_F32, COMM_SUM,
                                                  &req[q]),
                             DURE_OK);
        }
        for (int q = 0; q < K; q++) {
            assert_int_equal(comm_wait(comms[k], req[q]), DURE_OK);
        }
        double wall = dure_now_s() - w0, c2 = comm_thread_cpu_s(comms[k]);
        COLLCHECK_RANGE("thread cpu: the all-reduces", buf, 0, (size_t)K * N,
                        collcheck_reduced(size, i % N, COMM_SUM));
        assert_true(c2 - c1 > 20e-6);
        assert_true(c2 - c1 <= wall + 0.002);
    }
    free(buf);
}

/* One all-reduce of a late-rank check (mpitest_check_wait_sleeps). */
struct late_allreduce {
    comm_t *c;
    float *x;
    size_t n;
};

static void run_late_allreduce(void *arg)
{
    struct late_allreduce *l = arg;
    collcheck_fill(l->x, l->n, rank);
    assert_int_equal(comm_allreduce(l->c, l->x, l->x, l->n, COMM_F32, COMM_SUM), DURE_OK);
    COLLCHECK_RANGE("late allreduce", l->x, 0, l->n, collcheck_reduced(size, i, COMM_SUM));
}

/* dure's own waits (ring and shm) sleep while a peer is late. */
static void test_waiting_sleeps(void **state)
{
    (void)state;
    enum { N = 1024 };
    float x[N];
    for (int k = 1; k < NALGO; k++) {
        struct late_allreduce l = {comms[k], x, N};
        mpitest_check_wait_sleeps(run_late_allreduce, &l, label(k));
    }
}

/* Rank-dependent magnitudes: (x + y) + z != x + (y + z), so the sum of
 * element i depends on the order in which the ranks' values are added. */
static float det_value(int r, size_t i)
{
    return (float)(sin((double)i * 0.37 + r) * pow(10.0, (double)(r % 3) * 3));
}

/* The documented order (comm.h): shm adds rank 0 + rank 1 + ... ; the ring
 * adds ((x[p+1] + x[p+2]) + ...) + x[p] for element i of rank p's piece. */
static float det_reference(enum comm_algo algo, size_t n, size_t i)
{
    float s;
    if (algo == COMM_ALGO_SHM) {
        s = det_value(0, i);
        for (int r = 1; r < size; r++) {
            s += det_value(r, i);
        }
        return s;
    }
    int p = collcheck_owner(n, size, i);
    s = det_value((p + 1) % size, i);
    for (int q = 2; q <= size; q++) {
        s = s + det_value((p + q) % size, i);
    }
    return s;
}

/* Every reducing form: blocking, start/wait, range; the output's elements
 * [lo, hi) of this rank are checked. */
enum { DET_ALLREDUCE, DET_ALLREDUCE_START, DET_RS, DET_RS_START, DET_RS_RANGE,
       DET_RS_RANGE_START, DET_FORMS };
static const char *const det_form_names[DET_FORMS] = {
    "allreduce", "allreduce_start", "reduce_scatter", "reduce_scatter_start",
    "reduce_scatter_range", "reduce_scatter_range_start"};

static dure_status_t det_run(comm_t *cm, int form, float *in, float *out, size_t n,
                             size_t *lo, size_t *hi)
{
    struct comm_shard sh = comm_shard_of(n, size, rank);
    const size_t r0 = 100, r1 = n - 100; /* the range forms' range */
    comm_req_t *req = NULL;
    dure_status_t st = DURE_OK;
    *lo = 0;
    *hi = n;
    switch (form) {
    case DET_ALLREDUCE:
        return comm_allreduce(cm, in, out, n, COMM_F32, COMM_SUM);
    case DET_ALLREDUCE_START:
        st = comm_allreduce_start(cm, in, out, n, COMM_F32, COMM_SUM, &req);
        break;
    case DET_RS:
    case DET_RS_START:
        *lo = sh.offset;
        *hi = sh.offset + sh.count;
        if (form == DET_RS) {
            return comm_reduce_scatter(cm, in, out + sh.offset, n, COMM_F32, COMM_SUM);
        }
        st = comm_reduce_scatter_start(cm, in, out + sh.offset, n, COMM_F32, COMM_SUM, &req);
        break;
    default:
        /* in place on `in`, which is then also the output */
        *lo = sh.offset > r0 ? sh.offset : r0;
        *hi = sh.offset + sh.count < r1 ? sh.offset + sh.count : r1;
        *hi = *hi > *lo ? *hi : *lo;
        if (form == DET_RS_RANGE) {
            return comm_reduce_scatter_range(cm, in, n, r0, r1 - r0, COMM_F32, COMM_SUM);
        }
        st = comm_reduce_scatter_range_start(cm, in, n, r0, r1 - r0, COMM_F32, COMM_SUM, &req);
        break;
    }
    return st != DURE_OK ? st : comm_wait(cm, req);
}

/* Deterministic mode sums in the documented order, bitwise equal to a CPU
 * reference of that order, in every reducing form, on heap buffers (shm:
 * staged) and on the comm's registered memory (shm: the direct path, which
 * reads the peers' buffers in place from 64 KiB). */
/*
 * The ring's messages, seen through MPI's profiling interface: while
 * isend_watch is set, every MPI_Isend of this process (dure's ring, on
 * whatever thread runs it) records its largest count. PMPI_Isend does the
 * send.
 */
static atomic_int isend_watch;
static atomic_size_t isend_largest;

int MPI_Isend(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm,
              MPI_Request *req)
{
    if (atomic_load(&isend_watch)) {
        size_t c = (size_t)count, seen = atomic_load(&isend_largest);
        while (c > seen && !atomic_compare_exchange_weak(&isend_largest, &seen, c)) {
        }
    }
    return PMPI_Isend(buf, count, dt, dest, tag, comm, req);
}

/* The ring sends the segment comm_ring_segment_for gives its longest piece:
 * with the default, 4 KiB, 1 MiB and 4 MiB segments, at 1 MiB (pieces at
 * most 512 KiB: 1 MiB segments cut to 256 KiB) and 4 MiB (on 2 ranks a
 * 4 MiB segment sends each 2 MiB piece whole). */
static void test_ring_segment_messages(void **state)
{
    (void)state;
    enum { N = 1 << 20 };                /* 4 MiB of floats */
    const size_t seg[] = {0, 4096, 1 << 20, 4 << 20};
    const size_t counts[] = {N / 4, N};
    float *x = malloc(N * sizeof *x);
    assert_non_null(x);
    for (int k = 0; k < 4; k++) {
        struct comm_config cfg;
        comm_t *cm = NULL;
        comm_config_default(&cfg);
        cfg.backend = COMM_BACKEND_MPI;
        cfg.algo = COMM_ALGO_RING;
        cfg.ring_seg_bytes = seg[k];
        assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &cm), DURE_OK);
        for (int c = 0; c < 2; c++) {
            size_t n = counts[c], longest = comm_shard_of(n, size, 0).count;
            size_t want = comm_ring_segment_for(comm_ring_segment(cm), longest * sizeof *x) /
                          sizeof *x;
            want = want < longest ? want : longest;
            collcheck_fill(x, n, rank);
            atomic_store(&isend_largest, 0);
            atomic_store(&isend_watch, 1);
            assert_int_equal(comm_allreduce(cm, x, x, n, COMM_F32, COMM_SUM), DURE_OK);
            atomic_store(&isend_watch, 0);
            COLLCHECK_RANGE("ring all-reduce, segments watched", x, 0, n,
                            collcheck_reduced(size, i, COMM_SUM));
            if (atomic_load(&isend_largest) != want) {
                fail_msg("ring in %zu-byte segments, all-reduce of %zu floats: largest message "
                         "%zu floats, want %zu", comm_ring_segment(cm), n,
                         atomic_load(&isend_largest), want);
            }
        }
        comm_destroy(cm);
    }
    free(x);
}

static void test_deterministic_order(void **state)
{
    (void)state;
    enum { N = 70001 };
    struct comm_config cfg;
    comm_t *cm = NULL;
    float *ref = malloc(N * sizeof *ref);
    float *reg_in = NULL, *reg_out = NULL;
    char what[160];
    assert_non_null(ref);
    const enum comm_algo det[] = {COMM_ALGO_RING, COMM_ALGO_SHM};
    for (int d = 0; d < 2; d++) {
        comm_config_default(&cfg);
        cfg.backend = COMM_BACKEND_MPI;
        cfg.algo = det[d];
        cfg.deterministic = 1;
        assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &cm), DURE_OK);
        assert_int_equal(comm_mem_alloc(cm, N * sizeof *reg_in, (void **)&reg_in), DURE_OK);
        assert_int_equal(comm_mem_alloc(cm, N * sizeof *reg_out, (void **)&reg_out), DURE_OK);
        for (size_t i = 0; i < N; i++) {
            ref[i] = det_reference(det[d], N, i);
        }
        for (int reg = 0; reg < 2; reg++) {
            float *in = reg ? reg_in : a, *out = reg ? reg_out : b;
            for (int form = 0; form < DET_FORMS; form++) {
                size_t lo = 0, hi = 0;
                for (size_t i = 0; i < N; i++) {
                    in[i] = det_value(rank, i);
                }
                assert_int_equal(det_run(cm, form, in, out, N, &lo, &hi), DURE_OK);
                const float *got = form >= DET_RS_RANGE ? in : out;
                snprintf(what, sizeof what, "deterministic %s, %s buffers, %s",
                         comm_algo_name(det[d]), reg ? "registered" : "heap",
                         det_form_names[form]);
                for (size_t i = lo; i < hi; i++) {
                    if (memcmp(&got[i], &ref[i], sizeof *ref) != 0) {
                        fail_msg("%s: element %zu: got %.9g, want %.9g (not the documented "
                                 "order)",
                                 what, i, (double)got[i], (double)ref[i]);
                    }
                }
            }
        }
        comm_mem_free(cm, reg_in);
        comm_mem_free(cm, reg_out);
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

    /* the ring's segment: the config, else the environment, else 256 KiB */
    assert_int_equal(comm_ring_segment(comms[1]), 256 << 10);
    assert_int_equal(comm_ring_segment(comms[3]), 4096);
    comm_t *seg = NULL;
    char text[16];
    setenv("DURE_RING_SEGMENT_KIB", "1024", 1);
    assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &seg), DURE_OK);
    comm_ring_segment_text(seg, text, sizeof text);
    assert_string_equal(text, "1M");
    comm_destroy(seg);
    cfg.ring_seg_bytes = 8192;
    assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &seg), DURE_OK);
    assert_int_equal(comm_ring_segment(seg), 8192);
    comm_destroy(seg);
    cfg.ring_seg_bytes = 1000;
    assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &seg), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "ring segment of 1000 bytes"));
    cfg.ring_seg_bytes = 0;
    const char *bad[] = {"0", "1K", "65537", "-4"};
    for (int i = 0; i < 4; i++) {
        setenv("DURE_RING_SEGMENT_KIB", bad[i], 1);
        assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &seg), DURE_ERR_ARG);
        assert_null(seg);
        char want[64];
        snprintf(want, sizeof want, "DURE_RING_SEGMENT_KIB='%s'", bad[i]);
        if (!strstr(dure_last_error(), want)) {
            fail_msg("'%s' was taken: %s", bad[i], dure_last_error());
        }
    }
    /* Each rank reads its own environment: a rank that differs fails every
     * rank alike, by rank, instead of pairing messages of other sizes. */
    setenv("DURE_RING_SEGMENT_KIB", rank == 1 ? "64" : "256", 1);
    assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &seg), DURE_ERR_ARG);
    assert_non_null(
        strstr(dure_last_error(), "rank 1 runs the ring in segments of 64 KiB, rank 0 in 256"));
    setenv("DURE_RING_SEGMENT_KIB", rank == 1 ? "x" : "256", 1);
    assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &seg), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(),
                           rank == 1 ? "DURE_RING_SEGMENT_KIB='x'"
                                     : "resolving the algorithm table and ring segment failed "
                                       "on rank 1"));
    unsetenv("DURE_RING_SEGMENT_KIB");
    setenv("DURE_ALGO_TABLE", rank == 1 ? "0:native" : "0:ring", 1);
    assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &seg), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "rank 1 resolved the algorithm table '0:native', "
                                              "rank 0 '0:ring'"));
    unsetenv("DURE_ALGO_TABLE");
    assert_null(seg);

    /* per-call argument errors, and the comm stays usable after them */
    uint16_t h[4] = {0};
    assert_int_equal(comm_allreduce(cm, h, h, 4, COMM_BF16, COMM_SUM), DURE_ERR_UNSUPPORTED);
    assert_non_null(strstr(dure_last_error(), "backend mpi does not reduce bf16"));
    assert_int_equal(comm_allgather(cm, h, h, 4, COMM_BF16), DURE_ERR_UNSUPPORTED);
    assert_non_null(strstr(dure_last_error(), "all-gather: backend mpi does not move bf16"));
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
    collcheck_fill(a, 8, rank);
    assert_int_equal(comm_allreduce_start(cm, a, a, 4, COMM_F32, COMM_SUM, &r[0]), DURE_OK);
    assert_int_equal(comm_allreduce_start(cm, a + 4, a + 4, 4, COMM_F32, COMM_SUM, &r[1]),
                     DURE_OK);
    assert_int_equal(comm_allreduce_start(cm, b, b, 4, COMM_F32, COMM_SUM, &r[2]), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "max_inflight = 2"));
    assert_int_equal(comm_wait(cm, r[0]), DURE_OK);
    assert_int_equal(comm_wait(cm, r[1]), DURE_OK);
    COLLCHECK_RANGE("after max_inflight", a, 0, 8, collcheck_reduced(size, i, COMM_SUM));
    comm_destroy(cm);
    dure_log_set_quiet(0);
}

/* The watchdog with a hook that returns (not the launcher's, which aborts):
 * the hook gets the report, then dure's own wait gives up with
 * DURE_ERR_TIMEOUT and the comm refuses further work. Rank 1 never joins. */
static struct {
    int calls, rank, missing_known, n_missing, missing_rank;
    enum comm_peer_state missing_state;
    uint64_t seq, missing_joined;
    size_t bytes;
    char op[32], text[1024], host[64], missing_host[64];
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
    snprintf(hang.host, sizeof hang.host, "%s", r->host);
    hang.n_missing = r->n_missing;
    if (r->n_missing > 0) {
        hang.missing_rank = r->missing[0].rank;
        hang.missing_state = r->missing[0].state;
        hang.missing_joined = r->missing[0].joined;
        snprintf(hang.missing_host, sizeof hang.missing_host, "%s", r->missing[0].host);
    }
}

/* A comm of the mpi backend running `algo`, watched with a timeout of
 * watchdog_s and a hook that returns; collective. */
static void create_watched(enum comm_algo algo, double watchdog_s, comm_hang_fn hook,
                           comm_t **out)
{
    struct comm_config cfg;
    comm_config_default(&cfg);
    cfg.backend = COMM_BACKEND_MPI;
    cfg.algo = algo;
    cfg.watchdog_s = watchdog_s;
    cfg.on_hang = hook;
    assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, out), DURE_OK);
}

static void test_watchdog_hook_returns(void **state)
{
    (void)state;
    create_watched(COMM_ALGO_SHM, 0.5, record_hang, &hung_comm);
    if (rank == 0) {
        collcheck_fill(a, 1000, rank);
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
        assert_non_null(strstr(hang.text, "; not joined: rank 1 on "));
        assert_non_null(
            strstr(hang.text, " (alive, still at an earlier collective; last joined seq 1)"));
        /* The structured list: every other rank (1 first), on this very
         * host, alive, at seq 1. */
        char me[MPI_MAX_PROCESSOR_NAME];
        int me_len = 0;
        MPI_Get_processor_name(me, &me_len);
        assert_string_equal(hang.host, me);
        assert_int_equal(hang.n_missing, size - 1);
        assert_int_equal(hang.missing_rank, 1);
        assert_int_equal(hang.missing_state, COMM_PEER_BEHIND);
        assert_int_equal(hang.missing_joined, 1);
        assert_string_equal(hang.missing_host, me);
        assert_int_equal(comm_barrier(hung_comm), DURE_ERR_TIMEOUT);
        assert_non_null(strstr(dure_last_error(), "failed earlier (DURE_ERR_TIMEOUT)"));
        dure_log_set_quiet(0);
    } else {
        collcheck_fill(a, 1000, rank);
        assert_int_equal(comm_allreduce(hung_comm, a, a, 1000, COMM_F32, COMM_SUM), DURE_OK);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* A started operation that fails on the communication thread (the
 * watchdog gives up on it: rank 1 never joins) fails every start after it
 * with DURE_ERR_TIMEOUT. The caller reads the comm's sticky failure while
 * that thread may be writing it, with no lock taken between the two: make
 * tsan fails this test unless the failure is atomic. */
static atomic_int thread_hang_fired;
static comm_t *thread_hung_comm; /* left alive on purpose, like hung_comm */

static void note_hang(const struct comm_hang_report *r, void *arg)
{
    (void)r;
    (void)arg;
    atomic_store(&thread_hang_fired, 1);
}

static void test_thread_failure_is_sticky(void **state)
{
    (void)state;
    create_watched(COMM_ALGO_SHM, 0.3, note_hang, &thread_hung_comm);
    if (rank == 0) {
        comm_req_t *r = NULL, *late = NULL;
        dure_log_set_quiet(1);
        collcheck_fill(a, 1000, rank);
        assert_int_equal(
            comm_allreduce_start(thread_hung_comm, a, a, 1000, COMM_F32, COMM_SUM, &r), DURE_OK);
        for (int i = 0; i < 600 && !atomic_load(&thread_hang_fired); i++) {
            nanosleep(&(struct timespec){0, 50000000}, NULL);
        }
        assert_true(atomic_load(&thread_hang_fired));
        nanosleep(&(struct timespec){0, 200000000}, NULL); /* the thread's op gives up */
        assert_int_equal(
            comm_allreduce_start(thread_hung_comm, b, b, 1000, COMM_F32, COMM_SUM, &late),
            DURE_ERR_TIMEOUT);
        assert_null(late);
        assert_int_equal(comm_wait(thread_hung_comm, r), DURE_ERR_TIMEOUT);
        dure_log_set_quiet(0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* A collective that outlives the watchdog only because its peers are late
 * (a native MPI all-reduce does not watch cancel): rank 0's wait gives up
 * and its comm_destroy returns at once (local after a hang) while the
 * operation is still inside MPI_Allreduce on the communication thread.
 * When the peers join, it completes there and ends its watch: on memory
 * that is still allocated (the old destroy freed the watchdog: a
 * heap-use-after-free under make asan), and the peers get the right sum.
 * The operation queued behind it never runs. */
static comm_t *late_comm; /* rank 0's is left allocated after the hang */

static void test_destroy_while_stuck(void **state)
{
    (void)state;
    create_watched(COMM_ALGO_NATIVE, 0.3, note_hang, &late_comm);
    collcheck_fill(a, 1000, rank);
    if (rank == 0) {
        comm_req_t *r = NULL, *behind = NULL;
        dure_log_set_quiet(1);
        assert_int_equal(comm_allreduce_start(late_comm, a, a, 1000, COMM_F32, COMM_SUM, &r),
                         DURE_OK);
        assert_int_equal(comm_allreduce_start(late_comm, b, b, 1000, COMM_F32, COMM_SUM, &behind),
                         DURE_OK);
        assert_int_equal(comm_wait(late_comm, r), DURE_ERR_TIMEOUT);
        comm_destroy(late_comm);
        dure_log_set_quiet(0);
    } else {
        nanosleep(&(struct timespec){3, 0}, NULL); /* after rank 0's destroy */
        assert_int_equal(comm_allreduce(late_comm, a, a, 1000, COMM_F32, COMM_SUM), DURE_OK);
        COLLCHECK_RANGE("late peers' sum", a, 0, 1000, collcheck_reduced(size, i, COMM_SUM));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    /* rank 0's thread ends its watch when the all-reduce returns */
    nanosleep(&(struct timespec){0, 300000000}, NULL);
}

/* The backend's construction (ncclCommInitRank) is watched like a
 * collective: a setup step that outlives the timeout is reported by name. */
static void test_watchdog_watches_setup(void **state)
{
    (void)state;
    struct comm_watchdog *w = NULL;
    memset(&hang, 0, sizeof hang);
    assert_int_equal(comm_watchdog_create(MPI_COMM_WORLD, 0.2, record_hang, NULL, &w), DURE_OK);
    comm_watchdog_begin_setup(w, "backend setup", "nccl");
    struct timespec ts = {0, 600 * 1000 * 1000};
    nanosleep(&ts, NULL);
    comm_watchdog_end(w);
    comm_watchdog_destroy(w, 1);
    assert_int_equal(hang.calls, 1);
    assert_int_equal(hang.rank, rank);
    assert_int_equal(hang.seq, 0);
    assert_int_equal(hang.missing_known, 0);
    assert_string_equal(hang.op, "backend setup");
    assert_non_null(strstr(hang.text, "backend setup (backend nccl) did not complete in"));
}

/* No GPU here: backend = nccl fails with one clear message on every rank. */
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
    assert_non_null(strstr(dure_last_error(), "use run.device = cpu and parallel.backend = mpi"));
    /* The dispatcher words refusals from the backend's capabilities. */
    cfg.algo = COMM_ALGO_RING;
    dure_log_set_quiet(1);
    st = comm_create(MPI_COMM_WORLD, &cfg, &cm);
    dure_log_set_quiet(0);
#if DURE_HAVE_CUDA
    assert_int_equal(st, DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "algo = ring: backend nccl does not run it: NCCL "
                                              "picks its own algorithm"));
#else
    assert_int_equal(st, DURE_ERR_NODEV);
    assert_non_null(strstr(dure_last_error(), "backend = nccl: this dure was built without it "
                                              "(backends built in: mpi)"));
#endif
    cfg.algo = COMM_ALGO_AUTO;
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
    collcheck_fill(a, 10, rank);
    assert_int_equal(comm_allreduce(node, a, a, 10, COMM_F32, COMM_SUM), DURE_OK);
    COLLCHECK_RANGE("node allreduce", a, 0, 10, collcheck_reduced(size, i, COMM_SUM));
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
        cmocka_unit_test(test_one_rank_in_place),
        cmocka_unit_test(test_barrier),
        cmocka_unit_test(test_async_ordering),
        cmocka_unit_test(test_async_progress),
        cmocka_unit_test(test_caller_runs),
        cmocka_unit_test(test_caller_runs_auto),
        cmocka_unit_test(test_thread_cpu),
        cmocka_unit_test(test_waiting_sleeps),
        cmocka_unit_test(test_ring_segment_messages),
        cmocka_unit_test(test_deterministic_order),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_watchdog_hook_returns),
        cmocka_unit_test(test_thread_failure_is_sticky),
        cmocka_unit_test(test_destroy_while_stuck),
        cmocka_unit_test(test_watchdog_watches_setup),
        cmocka_unit_test(test_nccl_without_gpu),
        cmocka_unit_test(test_node_comm),
    };
    return MPITEST_RUN_GROUP("coll", tests, group_setup, group_teardown);
}
