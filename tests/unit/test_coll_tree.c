/*
 * tests/unit/test_coll_tree.c - exact mode's summation tree (common/
 * sumtree.h, collectives/tree.h) against a recursive reference, with no
 * MPI: frontiers, the stack, the squared-norm tiles, the local micro-batch
 * plans, and the whole exact reduce-scatter with the transport done by
 * hand, on 1 .. 12 "ranks".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/comm.h"
#include "collectives/tree.h"
#include "common/status.h"
#include "device/device_impl.h"

/* ---------------------------------------------------------------- references */

/* Node (k, i) of the tree over x[0 .. n), straight from the definition. */
static double ref_node(const double *x, uint64_t n, int k, uint64_t i)
{
    if (k == 0) {
        return x[i];
    }
    double l = ref_node(x, n, k - 1, 2 * i);
    if (((2 * i + 1) << (k - 1)) >= n) {
        return l;
    }
    return l + ref_node(x, n, k - 1, 2 * i + 1);
}

static float ref_node_f32(const float *const *leaf, size_t e, uint64_t n, int k, uint64_t i)
{
    if (k == 0) {
        return leaf[i][e];
    }
    float l = ref_node_f32(leaf, e, n, k - 1, 2 * i);
    if (((2 * i + 1) << (k - 1)) >= n) {
        return l;
    }
    return l + ref_node_f32(leaf, e, n, k - 1, 2 * i + 1);
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t next_u64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Values spread over many binades, so that any other grouping changes bits. */
static double wide(void)
{
    double m = (double)(next_u64() % 2000001) / 1e6 - 1.0;
    return ldexp(m, (int)(next_u64() % 41) - 20);
}

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ---------------------------------------------------------------- geometry */

static void test_levels_and_frontiers(void **state)
{
    (void)state;
    assert_int_equal(tree_levels(1), 0);
    assert_int_equal(tree_levels(2), 1);
    assert_int_equal(tree_levels(12), 4);
    assert_int_equal(tree_levels(16), 4);
    assert_int_equal(tree_levels(17), 5);

    /* 12 micro-batches on 4 ranks, 3 each: two carries per rank. */
    const struct { uint64_t lo, hi; int lv[2]; uint64_t ix[2]; } want[] = {
        {0, 3, {1, 0}, {0, 2}},
        {3, 6, {0, 1}, {3, 2}},
        {6, 9, {1, 0}, {3, 8}},
        {9, 12, {0, 1}, {9, 5}},
    };
    struct tree_node nd[TREE_FRONTIER_MAX];
    for (size_t r = 0; r < 4; r++) {
        assert_int_equal(tree_frontier(12, want[r].lo, want[r].hi, -1, nd, TREE_FRONTIER_MAX),
                         2);
        for (int f = 0; f < 2; f++) {
            assert_int_equal(nd[f].level, want[r].lv[f]);
            assert_int_equal(nd[f].index, want[r].ix[f]);
        }
    }
    /* An aligned power of two is one node; the clipped right end moves up. */
    assert_int_equal(tree_frontier(12, 4, 8, -1, nd, TREE_FRONTIER_MAX), 1);
    assert_int_equal(nd[0].level, 2);
    assert_int_equal(tree_frontier(12, 8, 12, -1, nd, TREE_FRONTIER_MAX), 1);
    assert_int_equal(nd[0].level, 3);
    assert_int_equal(nd[0].index, 1);
    assert_int_equal(tree_frontier(12, 0, 12, -1, nd, TREE_FRONTIER_MAX), 1);
    assert_int_equal(nd[0].level, 4);
    /* A cap cuts the same range in tiles. */
    assert_int_equal(tree_frontier(12, 0, 12, 1, nd, TREE_FRONTIER_MAX), 6);
    assert_int_equal(tree_frontier(5000, 0, 5000, 10, NULL, 0), 5);
}

/* Every range's frontier is what a stack of its leaves keeps, and the
 * frontiers of any cut of [0, n) give the root bit for bit. */
static void test_stack_matches_reference(void **state)
{
    (void)state;
    double x[97];
    for (uint64_t n = 1; n <= 97; n++) {
        for (uint64_t i = 0; i < n; i++) {
            x[i] = wide();
        }
        int K = tree_levels(n);
        double want = ref_node(x, n, K, 0);
        assert_true(same_bits(tree_sum_f64(x, n), want));
        for (uint64_t lo = 0; lo < n; lo += 1 + lo / 3) {
            for (uint64_t hi = lo + 1; hi <= n; hi += 1 + (hi - lo) / 2) {
                struct tree_node nd[TREE_FRONTIER_MAX];
                size_t k = tree_frontier(n, lo, hi, -1, nd, TREE_FRONTIER_MAX);
                struct tree_sum s;
                tree_sum_init(&s, n);
                for (uint64_t i = lo; i < hi; i++) {
                    assert_int_equal(tree_sum_push(&s, (struct tree_node){0, i}, x[i]),
                                     DURE_OK);
                }
                assert_int_equal(s.s.depth, k);
                for (size_t f = 0; f < k; f++) {
                    assert_int_equal(s.s.node[f].level, nd[f].level);
                    assert_int_equal(s.s.node[f].index, nd[f].index);
                    assert_true(same_bits(s.v[f], ref_node(x, n, nd[f].level, nd[f].index)));
                }
            }
        }
        /* Random cuts into up to 9 parts, frontiers pushed in order. */
        for (int trial = 0; trial < 8; trial++) {
            struct tree_sum s;
            tree_sum_init(&s, n);
            uint64_t lo = 0;
            while (lo < n) {
                uint64_t hi = lo + 1 + next_u64() % (n / 3 + 1);
                hi = hi > n ? n : hi;
                struct tree_node nd[TREE_FRONTIER_MAX];
                size_t k = tree_frontier(n, lo, hi, -1, nd, TREE_FRONTIER_MAX);
                for (size_t f = 0; f < k; f++) {
                    assert_int_equal(tree_sum_push(&s, nd[f],
                                                   ref_node(x, n, nd[f].level, nd[f].index)),
                                     DURE_OK);
                }
                lo = hi;
            }
            assert_true(same_bits(tree_sum_root(&s), want));
        }
    }
}

/* ---------------------------------------------------------------- squared norm */

static void test_sq_tile_and_norm(void **state)
{
    (void)state;
    const uint64_t n = 20011; /* 19.5 tiles: a clipped last tile */
    float *g = malloc(n * sizeof *g);
    double *sq = malloc(n * sizeof *sq);
    assert_non_null(g);
    assert_non_null(sq);
    for (uint64_t i = 0; i < n; i++) {
        g[i] = (float)wide();
        sq[i] = (double)g[i] * (double)g[i];
    }
    for (size_t len = 1; len <= TREE_TILE; len += len < 40 ? 1 : 97) {
        assert_true(same_bits(tree_sq_tile(g, len), ref_node(sq, len, tree_levels(len), 0)));
    }
    const double want = ref_node(sq, n, tree_levels(n), 0);
    double seq = 0;
    for (uint64_t i = 0; i < n; i++) {
        seq += sq[i];
    }
    /* The data are grouping-sensitive: a plain loop gets other bits. */
    assert_false(same_bits(seq, want));
    for (int parts = 1; parts <= 9; parts++) {
        uint64_t bounds[10];
        double vals[9][TREE_FRONTIER_MAX];
        for (int p = 0; p < parts; p++) {
            struct comm_shard sh = comm_shard_of(n, parts, p);
            bounds[p] = sh.offset;
            bounds[p + 1] = sh.offset + sh.count;
            struct tree_norm *t = NULL;
            assert_int_equal(tree_norm_create(n, sh.offset, sh.offset + sh.count, &t), DURE_OK);
            assert_int_equal(device_host_sq_tiles(NULL, g + sh.offset, t->lo, t->tile_first,
                                                  t->tile_len, t->ntiles, t->val),
                             DURE_OK);
            size_t k = 0;
            assert_int_equal(tree_norm_frontier(t, vals[p], &k), DURE_OK);
            assert_int_equal(k, tree_frontier(n, sh.offset, sh.offset + sh.count, -1, NULL, 0));
            tree_norm_free(t);
        }
        double root = 0;
        assert_int_equal(
            tree_norm_combine(n, parts, bounds, &vals[0][0], TREE_FRONTIER_MAX, &root),
            DURE_OK);
        assert_true(same_bits(root, want));
    }
    free(g);
    free(sq);
}

/* ---------------------------------------------------------------- plans */

static void test_plan_refuses_and_names_sizes(void **state)
{
    (void)state;
    char buf[128];
    tree_sizes_text(12, buf, sizeof buf);
    assert_string_equal(buf, "1, 2, 3, 4, 6 or 12");
    tree_sizes_text(1, buf, sizeof buf);
    assert_string_equal(buf, "1");
    tree_sizes_text(7, buf, sizeof buf);
    assert_string_equal(buf, "1 or 7");
    struct tree_plan *p = NULL;
    dure_log_set_quiet(1);
    assert_int_equal(tree_plan_create(12, 5, 0, &p), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    assert_null(p);
    assert_non_null(strstr(dure_last_error(), "1, 2, 3, 4, 6 or 12"));
    assert_non_null(strstr(dure_last_error(), "5 ranks"));
}

/* Run rank r's plan over its leaves (vectors of len) like the training step. */
static void run_plan(const struct tree_plan *p, const float *const *leaf, size_t len,
                     float **buf)
{
    for (int j = 0; j < p->local; j++) {
        memcpy(buf[0], leaf[p->lo + (uint64_t)j], len * sizeof(float));
        for (int o = p->op_first[j]; o < p->op_first[j + 1]; o++) {
            const struct tree_op *op = &p->op[o];
            if (op->kind == TREE_OP_SAVE) {
                memcpy(buf[op->dst], buf[op->src], len * sizeof(float));
            } else {
                comm_tree_add_host(NULL, buf[op->dst], buf[op->src], len);
            }
        }
        if (j + 1 < p->local) {
            memset(buf[0], 0xff, len * sizeof(float)); /* zeroed by the model: poison */
        }
    }
}

/*
 * The whole exact reduce-scatter on R "ranks" in one process: plans, the
 * transport done by copying each rank's rows at each owner's shard into the
 * owner's receive area, then comm_tree_combine on every owner. Returns the
 * reduced vector gathered from the owners.
 */
static void exact_reduce(uint64_t M, int R, const float *const *leaf, size_t len, float *out)
{
    struct tree_plan *plan[16];
    float *bufs[16][TREE_FRONTIER_MAX + 1];
    struct comm_tree ct[16];
    size_t chunk = len / (size_t)R + (len % (size_t)R != 0);
    for (int r = 0; r < R; r++) {
        assert_int_equal(tree_plan_create(M, R, r, &plan[r]), DURE_OK);
        for (int b = 0; b <= plan[r]->slots; b++) {
            bufs[r][b] = malloc(len * sizeof(float));
            assert_non_null(bufs[r][b]);
        }
        run_plan(plan[r], leaf, len, bufs[r]);
        memset(&ct[r], 0, sizeof ct[r]);
        ct[r].leaves = M;
        ct[r].rows = plan[r]->rows;
        ct[r].rows_max = plan[r]->rows_max;
        for (int f = 0; f < plan[r]->rows; f++) {
            ct[r].row[f] = bufs[r][plan[r]->row_buf[f]];
        }
        size_t nrecv = comm_tree_recv_count(len, R, plan[r]->rows_max);
        ct[r].recv = malloc((nrecv ? nrecv : 1) * sizeof(float));
        assert_non_null(ct[r].recv);
    }
    for (int q = 0; q < R; q++) {
        struct comm_shard sh = comm_shard_of(len, R, q);
        for (int s = 0; s < R; s++) {
            for (int f = 0; s != q && f < ct[s].rows; f++) {
                float *dst = comm_tree_recv_at(&ct[q], q, s, f, chunk, sh.offset, sh.offset);
                memcpy(dst, ct[s].row[f] + sh.offset, sh.count * sizeof(float));
            }
        }
        assert_int_equal(comm_tree_combine(&ct[q], R, q, len, sh.offset, sh.count,
                                           comm_tree_add_host, NULL),
                         DURE_OK);
        memcpy(out + sh.offset, ct[q].row[ct[q].rows - 1] + sh.offset,
               sh.count * sizeof(float));
    }
    for (int r = 0; r < R; r++) {
        for (int b = 0; b <= plan[r]->slots; b++) {
            free(bufs[r][b]);
        }
        free(ct[r].recv);
        tree_plan_free(plan[r]);
    }
}

/* The wrong method the issue warns about: each rank sums its own
 * micro-batches in order, then a tree over the ranks. */
static void over_ranks(uint64_t M, int R, const float *const *leaf, size_t len, float *out)
{
    float *part = malloc((size_t)R * len * sizeof *part);
    const float *pp[16];
    assert_non_null(part);
    for (int r = 0; r < R; r++) {
        uint64_t lo, hi;
        tree_rank_range(M, R, r, &lo, &hi);
        for (size_t e = 0; e < len; e++) {
            float s = leaf[lo][e];
            for (uint64_t j = lo + 1; j < hi; j++) {
                s += leaf[j][e];
            }
            part[(size_t)r * len + e] = s;
        }
        pp[r] = part + (size_t)r * len;
    }
    for (size_t e = 0; e < len; e++) {
        out[e] = ref_node_f32(pp, e, (uint64_t)R, tree_levels((uint64_t)R), 0);
    }
    free(part);
}

static void test_exact_reduce_any_world_size(void **state)
{
    (void)state;
    const size_t len = 1001;
    const uint64_t Ms[] = {12, 8, 1, 6, 16};
    for (size_t m = 0; m < sizeof Ms / sizeof Ms[0]; m++) {
        uint64_t M = Ms[m];
        float *leafv[16], *want = malloc(len * sizeof *want), *got = malloc(len * sizeof *got);
        assert_non_null(want);
        assert_non_null(got);
        for (uint64_t j = 0; j < M; j++) {
            leafv[j] = malloc(len * sizeof(float));
            assert_non_null(leafv[j]);
            for (size_t e = 0; e < len; e++) {
                leafv[j][e] = (float)wide();
            }
        }
        const float *const *leaf = (const float *const *)leafv;
        for (size_t e = 0; e < len; e++) {
            want[e] = ref_node_f32(leaf, e, M, tree_levels(M), 0);
        }
        int caught = 0;
        for (int R = 1; R <= (int)M && R <= 12; R++) {
            if (M % (uint64_t)R) {
                continue;
            }
            exact_reduce(M, R, leaf, len, got);
            assert_memory_equal(got, want, len * sizeof *got);
            over_ranks(M, R, leaf, len, got);
            caught |= memcmp(got, want, len * sizeof *got) != 0;
        }
        /* Wherever a rank holds several micro-batches in another grouping,
         * summing over ranks gets other bits: the test can tell. */
        assert_int_equal(caught, M >= 6);
        for (uint64_t j = 0; j < M; j++) {
            free(leafv[j]);
        }
        free(want);
        free(got);
    }
}

/* The plans' memory: saved vectors and rows stay logarithmic. */
static void test_plan_sizes(void **state)
{
    (void)state;
    struct tree_plan *p = NULL;
    assert_int_equal(tree_plan_create(12, 4, 1, &p), DURE_OK);
    assert_int_equal(p->local, 3);
    assert_int_equal(p->rows, 2);
    assert_int_equal(p->rows_max, 2);
    assert_int_equal(p->row_buf[p->rows - 1], 0);
    tree_plan_free(p);
    assert_int_equal(tree_plan_create(16, 2, 0, &p), DURE_OK);
    assert_int_equal(p->rows, 1);
    assert_int_equal(p->slots, 3); /* 8 leaves: saved nodes of 4, 2 and 1 */
    tree_plan_free(p);
    assert_int_equal(tree_plan_create(1024, 1, 0, &p), DURE_OK);
    assert_int_equal(p->slots, 10);
    assert_int_equal(p->n_ops, 1023 + 512); /* every add, and a save per even leaf */
    tree_plan_free(p);
}

/* tree_plan_worst, which simulates a few ranks, against every rank's
 * plan, for every world size of every step of up to 200 micro-batches
 * (ranks beyond the period are skipped there: 64 / 32, 200 / 100). */
static void test_plan_worst_matches_plans(void **state)
{
    (void)state;
    for (uint64_t M = 1; M <= 200; M++) {
        for (int R = 1; R <= (int)M; R++) {
            if (M % (uint64_t)R) {
                continue;
            }
            int slots = 0, rows = 0, want_slots = 0, want_rows = 0;
            for (int r = 0; r < R; r++) {
                struct tree_plan *p = NULL;
                assert_int_equal(tree_plan_create(M, R, r, &p), DURE_OK);
                want_slots = p->slots > want_slots ? p->slots : want_slots;
                want_rows = p->rows_max;
                tree_plan_free(p);
            }
            assert_int_equal(tree_plan_worst(M, R, &slots, &rows), DURE_OK);
            if (slots != want_slots || rows != want_rows) {
                fail_msg("%llu micro-batches on %d ranks: worst %d slots %d rows, the plans "
                         "%d and %d",
                         (unsigned long long)M, R, slots, rows, want_slots, want_rows);
            }
        }
    }
    int slots = 0, rows = 0;
    dure_log_set_quiet(1);
    assert_int_equal(tree_plan_worst(12, 5, &slots, &rows), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "1, 2, 3, 4, 6 or 12"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels_and_frontiers),
        cmocka_unit_test(test_stack_matches_reference),
        cmocka_unit_test(test_sq_tile_and_norm),
        cmocka_unit_test(test_plan_refuses_and_names_sizes),
        cmocka_unit_test(test_exact_reduce_any_world_size),
        cmocka_unit_test(test_plan_sizes),
        cmocka_unit_test(test_plan_worst_matches_plans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
