/* collectives/tree.c - see tree.h. */
#include "collectives/tree.h"

size_t comm_tree_recv_count(size_t total, int size, int rows_max)
{
    size_t chunk = size > 0 ? total / (size_t)size + (total % (size_t)size != 0) : 0;
    return size > 1 ? (size_t)(size - 1) * (size_t)rows_max * chunk : 0;
}

float *comm_tree_recv_at(const struct comm_tree *t, int rank, int s, int f, size_t chunk,
                         size_t shard_off, size_t piece_off)
{
    size_t peer = (size_t)(s < rank ? s : s - 1);
    return t->recv + (peer * (size_t)t->rows_max + (size_t)f) * chunk +
           (piece_off - shard_off);
}

/* The combine's handles: rank r's row f is r * rows_max + f. */
struct combine {
    const struct comm_tree *t;
    int size, rank;
    size_t chunk, shard_off, off, count;
    comm_tree_add_fn add;
    void *ctx;
};

static float *combine_row(const struct combine *c, int h)
{
    int r = h / c->t->rows_max, f = h % c->t->rows_max;
    if (r == c->rank) {
        return c->t->row[f] + c->off;
    }
    return comm_tree_recv_at(c->t, c->rank, r, f, c->chunk, c->shard_off, c->off);
}

static dure_status_t combine_add(void *ctx, int dst, int src)
{
    struct combine *c = ctx;
    return c->add(c->ctx, combine_row(c, dst), combine_row(c, src), c->count);
}

dure_status_t comm_tree_combine(const struct comm_tree *t, int size, int rank, size_t total,
                                size_t off, size_t count, comm_tree_add_fn add, void *ctx)
{
    dure_status_t st = DURE_OK;
    struct tree_stack s;
    struct tree_node nodes[TREE_FRONTIER_MAX];
    struct combine c = {.t = t, .size = size, .rank = rank, .off = off, .count = count,
                        .add = add, .ctx = ctx};
    const int keep = rank * t->rows_max + t->rows - 1;
    c.chunk = total / (size_t)size + (total % (size_t)size != 0);
    c.shard_off = c.chunk * (size_t)rank;
    if (count == 0) {
        goto out;
    }
    tree_stack_init(&s, t->leaves, keep);
    for (int r = 0; r < size; r++) {
        uint64_t lo, hi;
        tree_rank_range(t->leaves, size, r, &lo, &hi);
        size_t k = tree_frontier(t->leaves, lo, hi, -1, nodes, TREE_FRONTIER_MAX);
        DURE_CHECK(r != rank || k == (size_t)t->rows, DURE_ERR_INTERNAL,
                   "exact reduce-scatter: rank %d holds %d rows, its frontier has %zu", rank,
                   t->rows, k);
        for (size_t f = 0; f < k; f++) {
            DURE_TRY(tree_stack_push(&s, nodes[f], r * t->rows_max + (int)f, combine_add, &c));
        }
    }
    DURE_CHECK(s.depth == 1 && s.val[0] == keep, DURE_ERR_INTERNAL,
               "exact reduce-scatter: the root of %llu micro-batches did not reach this "
               "rank's result row (%d nodes left)",
               (unsigned long long)t->leaves, s.depth);
out:
    return st;
}

dure_status_t comm_tree_add_host(void *ctx, float *dst, const float *src, size_t count)
{
    (void)ctx;
#pragma omp simd
    for (size_t i = 0; i < count; i++) {
        dst[i] += src[i];
    }
    return DURE_OK;
}
