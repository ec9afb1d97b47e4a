/*
 * common/sumtree.h - exact mode's fixed summation tree: sums whose bits do
 * not depend on how many ranks share the work (run.exact).
 *
 * The tree. Over n leaves (indices 0 .. n-1, in data order) node (k, i)
 * covers leaves [i * 2^k, min((i + 1) * 2^k, n)) and its value is
 *     v(0, i) = leaf i
 *     v(k, i) = v(k-1, 2i) + v(k-1, 2i+1)   when leaf (2i+1) * 2^(k-1) exists
 *             = v(k-1, 2i)                   otherwise (no add)
 * The sum of all leaves is the root (K, 0), K = tree_levels(n). IEEE
 * addition is commutative but not associative, so these pairs and nothing
 * else fix the bits: any schedule that adds exactly these pairs, in any
 * order of operands, on any number of ranks, gets the same bits.
 *
 * Exact mode sums three things with it:
 *   gradients  leaves: the global micro-batches of a step (vectors)
 *   the loss   leaves: the micro-batches' mean losses (float64)
 *   grad norm  leaves: the elements of the flat gradient vector, squared in
 *              float64 (exact: a float32 squared fits a double)
 *
 * Frontiers. Whoever holds the contiguous leaves [lo, hi) computes every
 * node inside that range on its own; what it hands on is its frontier, the
 * maximal such nodes from left to right: one node when [lo, hi) is an
 * aligned power of two, at most 2 K in general (like the carries of a
 * binary counter). Pushing the frontiers of consecutive ranges, in order,
 * through a tree_stack gives the root.
 *
 * The micro-batch tree across ranks: rank r of R holds micro-batches
 * [r M / R, (r + 1) M / R) of the M per step and reduces them locally
 * (struct tree_plan) to its frontier rows; the exact reduce-scatter
 * (collectives/tree.h) brings every rank's rows to the owner of each
 * element, which pushes them in rank order. R must divide M.
 */
#ifndef DURE_COMMON_SUMTREE_H
#define DURE_COMMON_SUMTREE_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

/* Nodes in any frontier (2 per level, levels < 64) and on any stack. */
#define TREE_FRONTIER_MAX 128
#define TREE_STACK_MAX (TREE_FRONTIER_MAX + 2)
/* Leaves in one tree at most (indices stay far from 64-bit overflow). */
#define TREE_LEAVES_MAX ((uint64_t)1 << 56)

struct tree_node {
    int level;        /* k */
    uint64_t index;   /* i: leaves [i * 2^k, min((i + 1) * 2^k, n)) */
};

/* K: the root's level, the smallest k with 2^k >= n (0 for n <= 1). */
int tree_levels(uint64_t n);

/* First leaf of x, and one past its last leaf in a tree of n leaves. */
uint64_t tree_node_first(struct tree_node x);
uint64_t tree_node_end(uint64_t n, struct tree_node x);

/*
 * The frontier of [lo, hi) (lo < hi <= n): the maximal nodes inside it, left
 * to right, no node above level max_level (max_level < 0: no cap; with a
 * cap the nodes are tiles of at most 2^max_level leaves). Writes at most cap
 * nodes to out (out may be NULL with cap 0) and returns how many there are.
 * Without a cap there are at most TREE_FRONTIER_MAX.
 */
size_t tree_frontier(uint64_t n, uint64_t lo, uint64_t hi, int max_level,
                     struct tree_node *out, size_t cap);

/*
 * The stack: pushes nodes left to right and adds siblings as soon as both
 * are there (a left child whose right sibling is empty moves up alone).
 * Values are the caller's, named by int handles; add(ctx, dst, src) must
 * make value dst hold dst + src. A merge writes into the left operand,
 * unless the right one is `keep` (a handle, or TREE_KEEP_NONE): the
 * value the caller wants the result in stays put.
 */
#define TREE_KEEP_NONE (-1)
typedef dure_status_t (*tree_add_fn)(void *ctx, int dst, int src);

struct tree_stack {
    uint64_t n;                           /* leaves of the tree */
    int levels;                           /* tree_levels(n) */
    int keep;
    int depth;                            /* entries */
    struct tree_node node[TREE_STACK_MAX];
    int val[TREE_STACK_MAX];              /* handles */
};

void tree_stack_init(struct tree_stack *s, uint64_t n, int keep);

/* Push node x holding value handle v; it must start where the previous
 * push ended (or anywhere for the first). DURE_ERR_INTERNAL when the stack
 * overflows (nodes out of order). */
dure_status_t tree_stack_push(struct tree_stack *s, struct tree_node x, int v,
                              tree_add_fn add, void *ctx);

/* ---------------------------------------------------------------- scalars */

/* A stack of float64 values held in place (the loss, the gradient norm). */
struct tree_sum {
    struct tree_stack s;
    double v[TREE_STACK_MAX];             /* v[d]: the value of stack entry d */
};

void tree_sum_init(struct tree_sum *t, uint64_t n);
dure_status_t tree_sum_push(struct tree_sum *t, struct tree_node x, double v);
/* The root, once every leaf was pushed (NaN before). */
double tree_sum_root(const struct tree_sum *t);
/* The sum of x[0 .. n) (n >= 1) by the tree. */
double tree_sum_f64(const double *x, uint64_t n);

/* ---------------------------------------------------------------- squared norm */

/* Elements per tile of the squared norm: one kernel call (a CUDA block) each. */
#define TREE_TILE_LEVEL 10
#define TREE_TILE ((size_t)1 << TREE_TILE_LEVEL)

/*
 * Sum of squares of g[0 .. len) (1 <= len <= TREE_TILE) by the tree, g at
 * the first element of a tile: squares in float64, adjacent pairs added
 * level by level, an odd last value passed up alone. The CPU reference of
 * the CUDA tile kernel.
 */
double tree_sq_tile(const float *g, size_t len);

/*
 * The squared norm of the elements [lo, hi) of a flat vector of n, cut in
 * tiles (tree_frontier capped at TREE_TILE_LEVEL). Allocated once per run
 * for this rank's shard; the tiles' values are computed by whoever holds
 * the data (device_sq_tiles over tile_first and tile_len, on the host or a
 * device), then tree_norm_frontier folds them into this range's frontier.
 */
struct tree_norm {
    uint64_t n, lo, hi;
    size_t ntiles;
    struct tree_node *tile;   /* (ntiles) */
    uint64_t *tile_first;     /* (ntiles) first element of each tile */
    uint32_t *tile_len;       /* (ntiles) elements in each tile */
    double *val;              /* (ntiles) the tiles' sums of squares */
};

/* An empty range (lo == hi) has no tiles and an empty frontier. */
dure_status_t tree_norm_create(uint64_t n, uint64_t lo, uint64_t hi, struct tree_norm **out);
void tree_norm_free(struct tree_norm *t);
/* This range's frontier values (from val[]), left to right, into out
 * [TREE_FRONTIER_MAX]; returns how many (tree_frontier(n, lo, hi, -1)). */
dure_status_t tree_norm_frontier(const struct tree_norm *t, double *out, size_t *count);
/*
 * The root from the frontier values of parts consecutive ranges that tile
 * [0, n): bounds[parts + 1] are their limits, part p's values start at
 * vals + p * stride.
 */
dure_status_t tree_norm_combine(uint64_t n, int parts, const uint64_t *bounds,
                                const double *vals, size_t stride, double *root);

/* ---------------------------------------------------------------- micro-batch tree */

/*
 * One rank's local part of the micro-batch tree: what to do with the
 * gradient of each of its A micro-batches. Buffer 0 is the model's
 * gradient vector (each micro-batch's gradient lands there, zeroed before),
 * buffers 1 .. slots are saved vectors of the same length. After
 * micro-batch j run ops[op_first[j] .. op_first[j + 1]) in order:
 *   TREE_OP_SAVE  buffer dst = buffer src
 *   TREE_OP_ADD   buffer dst += buffer src
 * Then the frontier rows are in row_buf[0 .. rows); the last is buffer 0.
 * Before micro-batch j + 1 the caller zeroes buffer 0 (j < A - 1 leaves
 * nothing there that is still needed).
 */
enum tree_op_kind { TREE_OP_SAVE, TREE_OP_ADD };
struct tree_op {
    enum tree_op_kind kind;
    int dst, src;
};

struct tree_plan {
    uint64_t leaves;          /* M: micro-batches per step, all ranks */
    int ranks, rank;
    uint64_t lo, hi;          /* this rank's micro-batches [lo, hi) */
    int local;                /* A = hi - lo */
    int slots;                /* saved vectors needed */
    int n_ops;
    struct tree_op *op;       /* (n_ops) */
    int *op_first;            /* (local + 1) */
    int rows;                 /* this rank's frontier */
    int row_buf[TREE_FRONTIER_MAX];
    struct tree_node row_node[TREE_FRONTIER_MAX];
    int rows_max;             /* the most rows any rank has */
};

/* ranks must divide leaves (DURE_ERR_ARG names the sizes that work). */
dure_status_t tree_plan_create(uint64_t leaves, int ranks, int rank, struct tree_plan **out);
void tree_plan_free(struct tree_plan *p);

/*
 * The most saved vectors (tree_plan.slots) and frontier rows (rows_max) of
 * any rank when `ranks` share `leaves`: exact mode's gradient-sized memory
 * per rank, for the planner, without building every rank's plan (ranks
 * whose first micro-batch agrees modulo 2^tree_levels(A) reduce alike, the
 * last one aside, so at most that many are simulated). DURE_ERR_ARG, naming
 * the sizes that work, when ranks does not divide leaves.
 */
dure_status_t tree_plan_worst(uint64_t leaves, int ranks, int *slots, int *rows);

/* Rank r's micro-batches [*lo, *hi) of `leaves` over `ranks`. */
void tree_rank_range(uint64_t leaves, int ranks, int r, uint64_t *lo, uint64_t *hi);

/*
 * The world sizes that divide `leaves`, as text ("1, 2, 3, 4, 6 or 12"),
 * for messages that refuse a world size. Always NUL-terminated.
 */
void tree_sizes_text(uint64_t leaves, char *buf, size_t cap);

#endif
