/*
 * tests/mpi/test_coll_tree.c - the exact reduce-scatter (comm_tree_*) on
 * the mpi backend: every rank's share of M micro-batch gradients, reduced
 * by its plan, then exchanged and added in the tree, must equal bit for bit
 * the tree over all M computed on one rank, whatever the world size.
 * Runs under mpirun -np 2 (tests/run.sh) and at 1, 3 and 4 ranks
 * (tests/mpi/test_coll_tree_np.sh). The gradients span 40 binades, so a
 * sum grouped any other way (by rank, in order) gets other bits.
 */
#include "tests/support/mpitest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/bucket.h"
#include "collectives/comm.h"
#include "collectives/tree.h"

static comm_t *comm;
static int rank, size;

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Micro-batch j's gradient at element e: the same on every rank. */
static float leaf_at(uint64_t j, size_t e)
{
    uint64_t h = mix(j * 1000003u + e);
    double m = (double)(h % 2000001) / 1e6 - 1.0;
    return (float)ldexp(m, (int)((h >> 32) % 41) - 20);
}

static float ref_node(uint64_t M, size_t e, int k, uint64_t i)
{
    if (k == 0) {
        return leaf_at(i, e);
    }
    float l = ref_node(M, e, k - 1, 2 * i);
    if (((2 * i + 1) << (k - 1)) >= M) {
        return l;
    }
    return l + ref_node(M, e, k - 1, 2 * i + 1);
}

static int group_setup(void **state)
{
    (void)state;
    struct comm_config cfg;
    rank = mpitest_rank();
    size = mpitest_size();
    comm_config_default(&cfg);
    cfg.backend = COMM_BACKEND_MPI;
    cfg.watchdog_s = 60;
    return comm_create(MPI_COMM_WORLD, &cfg, &comm) == DURE_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    comm_destroy(comm);
    return 0;
}

/* One rank's side: its plan run over its micro-batches, rows in the comm's
 * memory (one allocation, collective), the receive area. */
struct side {
    struct tree_plan *plan;
    float *bufs;           /* (slots + 1) * len: buffer 0 is the "model's" */
    struct comm_tree ct;
    size_t len;
};

static void side_open(struct side *sd, uint64_t M, size_t len)
{
    memset(sd, 0, sizeof *sd);
    sd->len = len;
    assert_int_equal(tree_plan_create(M, size, rank, &sd->plan), DURE_OK);
    const struct tree_plan *p = sd->plan;
    assert_int_equal(comm_mem_alloc(comm, (size_t)(p->slots + 1) * len * sizeof(float),
                                    (void **)&sd->bufs),
                     DURE_OK);
    size_t nrecv = comm_tree_recv_count(len, size, p->rows_max);
    assert_int_equal(comm_mem_alloc(comm, nrecv * sizeof(float), (void **)&sd->ct.recv),
                     DURE_OK);
    float *buf0 = sd->bufs;
    for (int j = 0; j < p->local; j++) {
        for (size_t e = 0; e < len; e++) {
            buf0[e] = leaf_at(p->lo + (uint64_t)j, e);
        }
        for (int o = p->op_first[j]; o < p->op_first[j + 1]; o++) {
            float *dst = sd->bufs + (size_t)p->op[o].dst * len;
            const float *src = sd->bufs + (size_t)p->op[o].src * len;
            if (p->op[o].kind == TREE_OP_SAVE) {
                memcpy(dst, src, len * sizeof *dst);
            } else {
                comm_tree_add_host(NULL, dst, src, len);
            }
        }
    }
    sd->ct.leaves = M;
    sd->ct.rows = p->rows;
    sd->ct.rows_max = p->rows_max;
    for (int f = 0; f < p->rows; f++) {
        sd->ct.row[f] = sd->bufs + (size_t)p->row_buf[f] * len;
    }
}

/* Elements of this rank's shard (all of them: gathered) that differ from
 * the tree over all M on one rank; the first is printed. Counted, not
 * asserted, so that every rank still frees its collective memory. */
static size_t side_check(const struct side *sd, int gathered, const char *what)
{
    uint64_t M = sd->ct.leaves;
    struct comm_shard sh = comm_shard_of(sd->len, size, rank);
    const float *got = sd->ct.row[sd->ct.rows - 1];
    size_t bad = 0, lo = gathered ? 0 : sh.offset, hi = gathered ? sd->len : sh.offset + sh.count;
    for (size_t e = lo; e < hi; e++) {
        float want = ref_node(M, e, tree_levels(M), 0);
        if (memcmp(&got[e], &want, sizeof want) != 0 && bad++ == 0) {
            print_error("%s: M %llu, %d ranks, element %zu: got %.9g, want %.9g\n", what,
                        (unsigned long long)M, size, e, (double)got[e], (double)want);
        }
    }
    return bad;
}

static void side_close(struct side *sd)
{
    comm_mem_free(comm, sd->ct.recv);
    comm_mem_free(comm, sd->bufs);
    tree_plan_free(sd->plan);
}

static const uint64_t Ms[] = {12, 8, 24, 1, 2, 3, 4, 6};
static const size_t lens[] = {0, 1, 3, 1003, 70001};

static void test_whole_vector(void **state)
{
    (void)state;
    for (size_t m = 0; m < sizeof Ms / sizeof Ms[0]; m++) {
        if (Ms[m] % (uint64_t)size) {
            continue;
        }
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            struct side sd;
            side_open(&sd, Ms[m], lens[l]);
            assert_int_equal(comm_tree_reduce_scatter_range(comm, &sd.ct, lens[l], 0, lens[l]),
                             DURE_OK);
            size_t bad = side_check(&sd, 0, "whole vector");
            side_close(&sd);
            assert_int_equal(bad, 0);
        }
    }
}

/* Buckets of the range, last first, started together and waited in order:
 * how the training step overlaps it with backward. */
static void test_ranges_async(void **state)
{
    (void)state;
    const size_t len = 70001, cut[] = {0, 5, 9000, 33333, 70000, 70001};
    const int nb = 5;
    for (size_t m = 0; m < sizeof Ms / sizeof Ms[0]; m++) {
        if (Ms[m] % (uint64_t)size) {
            continue;
        }
        struct side sd;
        comm_req_t *req[5];
        side_open(&sd, Ms[m], len);
        for (int b = nb - 1; b >= 0; b--) {
            assert_int_equal(comm_tree_reduce_scatter_range_start(comm, &sd.ct, len, cut[b],
                                                                  cut[b + 1] - cut[b], &req[b]),
                             DURE_OK);
        }
        for (int b = nb - 1; b >= 0; b--) {
            assert_int_equal(comm_wait(comm, req[b]), DURE_OK);
        }
        size_t bad = side_check(&sd, 0, "buckets");
        side_close(&sd);
        assert_int_equal(bad, 0);
    }
}

/* The bucketer in exact mode, as the step runs it: ZeRO 0 gathers the
 * reduced vector everywhere, ZeRO 1/2 keeps each owner's shard. */
static void test_bucketer(void **state)
{
    (void)state;
    const size_t len = 70001, offsets[] = {0, 1000, 1001, 40000, 70001};
    const uint64_t M = 12;
    if (M % (uint64_t)size) {
        skip();
    }
    for (int mode = 0; mode < 2; mode++) {
        for (int overlap = 0; overlap < 2; overlap++) {
            struct side sd;
            comm_bucketer_t *bk = NULL;
            struct comm_bucket_config bc = {
                .bucket_mb = 0.05,
                .mode = mode ? COMM_BUCKET_EXACT_REDUCE_SCATTER : COMM_BUCKET_EXACT_ALLREDUCE,
                .redop = COMM_SUM,
                .overlap = overlap,
            };
            side_open(&sd, M, len);
            bc.tree = &sd.ct;
            assert_int_equal(comm_bucketer_create(comm, sd.ct.row[sd.ct.rows - 1], offsets, 4,
                                                  &bc, &bk),
                             DURE_OK);
            for (int t = 3; t >= 0; t--) {
                assert_int_equal(comm_bucketer_ready(bk, t), DURE_OK);
            }
            assert_int_equal(comm_bucketer_finish(bk), DURE_OK);
            size_t bad = side_check(&sd, mode == 0, "bucketer");
            comm_bucketer_free(bk);
            side_close(&sd);
            assert_int_equal(bad, 0);
        }
    }
}

/* The exact all-reduce needs two requests per bucket: a comm that allows
 * one is refused at creation, not mid-step. */
static void test_bucketer_needs_two_requests(void **state)
{
    (void)state;
    struct comm_config cfg;
    comm_t *one = NULL;
    comm_bucketer_t *bk = NULL;
    float g[8] = {0};
    const size_t offsets[] = {0, 8};
    struct comm_tree ct = {.leaves = (uint64_t)size, .rows = 1, .row = {g}, .rows_max = 1};
    struct comm_bucket_config bc = {
        .mode = COMM_BUCKET_EXACT_ALLREDUCE, .redop = COMM_SUM, .overlap = 1, .tree = &ct};
    comm_config_default(&cfg);
    cfg.backend = COMM_BACKEND_MPI;
    cfg.watchdog_s = 60;
    cfg.max_inflight = 1;
    assert_int_equal(comm_create(MPI_COMM_WORLD, &cfg, &one), DURE_OK);
    dure_log_set_quiet(1);
    dure_status_t st = comm_bucketer_create(one, g, offsets, 1, &bc, &bk);
    dure_log_set_quiet(0);
    comm_destroy(one);
    assert_int_equal(st, DURE_ERR_ARG);
    assert_null(bk);
    assert_non_null(strstr(dure_last_error(), "the comm allows 1"));
}

static void test_refuses_world_size(void **state)
{
    (void)state;
    struct side sd;
    if (size == 1) {
        skip(); /* every count divides by 1 */
    }
    side_open(&sd, (uint64_t)size, 10);
    sd.ct.leaves = (uint64_t)size + 1;
    dure_log_set_quiet(1);
    dure_status_t st = comm_tree_reduce_scatter_range(comm, &sd.ct, 10, 0, 10);
    dure_log_set_quiet(0);
    assert_int_equal(st, DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "do not divide"));
    /* Refused before it was numbered: the comm still works. */
    sd.ct.leaves = (uint64_t)size;
    assert_int_equal(comm_tree_reduce_scatter_range(comm, &sd.ct, 10, 0, 10), DURE_OK);
    size_t bad = side_check(&sd, 0, "after a refusal");
    side_close(&sd);
    assert_int_equal(bad, 0);
}

int main(int argc, char **argv)
{
    mpitest_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_vector),
        cmocka_unit_test(test_ranges_async),
        cmocka_unit_test(test_bucketer),
        cmocka_unit_test(test_bucketer_needs_two_requests),
        cmocka_unit_test(test_refuses_world_size),
    };
    return MPITEST_RUN_GROUP("coll_tree", tests, group_setup, group_teardown);
}
