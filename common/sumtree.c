/* common/sumtree.c - see sumtree.h. */
#include "common/sumtree.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tree_levels(uint64_t n)
{
    int k = 0;
    while (k < 63 && ((uint64_t)1 << k) < n) {
        k++;
    }
    return k;
}

uint64_t tree_node_first(struct tree_node x) { return x.index << x.level; }

uint64_t tree_node_end(uint64_t n, struct tree_node x)
{
    uint64_t end = (x.index + 1) << x.level;
    return end < n ? end : n;
}

size_t tree_frontier(uint64_t n, uint64_t lo, uint64_t hi, int max_level,
                     struct tree_node *out, size_t cap)
{
    const int top = tree_levels(n);
    const int cap_level = max_level >= 0 && max_level < top ? max_level : top;
    size_t count = 0;
    uint64_t pos = lo;
    while (pos < hi && pos < n) {
        /* The largest aligned node at pos that ends inside [lo, hi). */
        int k = 0;
        while (k < cap_level && pos % ((uint64_t)2 << k) == 0) {
            struct tree_node up = {k + 1, pos >> (k + 1)};
            if (tree_node_end(n, up) > hi) {
                break;
            }
            k++;
        }
        struct tree_node x = {k, pos >> k};
        if (count < cap) {
            out[count] = x;
        }
        count++;
        pos = tree_node_end(n, x);
    }
    return count;
}

/* ---------------------------------------------------------------- the stack */

void tree_stack_init(struct tree_stack *s, uint64_t n, int keep)
{
    s->n = n;
    s->levels = tree_levels(n);
    s->keep = keep;
    s->depth = 0;
}

dure_status_t tree_stack_push(struct tree_stack *s, struct tree_node x, int v,
                              tree_add_fn add, void *ctx)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(s->depth < TREE_STACK_MAX, DURE_ERR_INTERNAL,
               "tree stack overflow at node (%d, %llu) of %llu leaves: nodes pushed out "
               "of order",
               x.level, (unsigned long long)x.index, (unsigned long long)s->n);
    s->node[s->depth] = x;
    s->val[s->depth] = v;
    s->depth++;
    for (;;) {
        struct tree_node *top = &s->node[s->depth - 1];
        if (top->level >= s->levels) {
            break; /* the root */
        }
        if (top->index % 2 == 0) {
            /* A left child moves up alone when its right sibling is empty. */
            if (((top->index + 1) << top->level) >= s->n) {
                top->level++;
                top->index /= 2;
                continue;
            }
            break;
        }
        struct tree_node *left = s->depth >= 2 ? &s->node[s->depth - 2] : NULL;
        if (!left || left->level != top->level || left->index != top->index - 1) {
            break; /* the left sibling is someone else's */
        }
        int l = s->val[s->depth - 2], r = s->val[s->depth - 1];
        int dst = r == s->keep ? r : l, src = dst == l ? r : l;
        DURE_TRY(add(ctx, dst, src));
        left->level++;
        left->index /= 2;
        s->val[s->depth - 2] = dst;
        s->depth--;
    }
out:
    return st;
}

/* ---------------------------------------------------------------- scalars */

static dure_status_t sum_add(void *ctx, int dst, int src)
{
    struct tree_sum *t = ctx;
    t->v[dst] += t->v[src];
    return DURE_OK;
}

void tree_sum_init(struct tree_sum *t, uint64_t n) { tree_stack_init(&t->s, n, TREE_KEEP_NONE); }

dure_status_t tree_sum_push(struct tree_sum *t, struct tree_node x, double v)
{
    /* Merges write into the lower entry, so entry d's value lives in v[d]. */
    int d = t->s.depth;
    if (d < TREE_STACK_MAX) {
        t->v[d] = v;
    }
    return tree_stack_push(&t->s, x, d, sum_add, t);
}

double tree_sum_root(const struct tree_sum *t)
{
    if (t->s.depth != 1 || t->s.node[0].level != t->s.levels || t->s.node[0].index != 0) {
        return NAN;
    }
    return t->v[0];
}

double tree_sum_f64(const double *x, uint64_t n)
{
    struct tree_sum t;
    tree_sum_init(&t, n);
    for (uint64_t i = 0; i < n; i++) {
        if (tree_sum_push(&t, (struct tree_node){0, i}, x[i]) != DURE_OK) {
            return NAN;
        }
    }
    return tree_sum_root(&t);
}

/* ---------------------------------------------------------------- squared norm */

double tree_sq_tile(const float *g, size_t len)
{
    double t[TREE_TILE / 2];
    size_t m = len / 2;
    /* Level 1 straight from the data: each square is exact in float64. */
    for (size_t j = 0; j < m; j++) {
        double a = g[2 * j], b = g[2 * j + 1];
        t[j] = a * a + b * b;
    }
    if (len % 2) {
        double a = g[len - 1];
        t[m++] = a * a;
    }
    while (m > 1) {
        size_t h = m / 2;
        for (size_t j = 0; j < h; j++) {
            t[j] = t[2 * j] + t[2 * j + 1];
        }
        if (m % 2) {
            t[h] = t[m - 1];
        }
        m = h + m % 2;
    }
    return t[0];
}

void tree_norm_free(struct tree_norm *t)
{
    if (!t) {
        return;
    }
    free(t->tile);
    free(t->tile_first);
    free(t->tile_len);
    free(t->val);
    free(t);
}

dure_status_t tree_norm_create(uint64_t n, uint64_t lo, uint64_t hi, struct tree_norm **out)
{
    dure_status_t st = DURE_OK;
    struct tree_norm *t = NULL;
    *out = NULL;
    DURE_CHECK(lo <= hi && hi <= n && n <= TREE_LEAVES_MAX, DURE_ERR_ARG,
               "norm range [%llu, %llu) of %llu elements", (unsigned long long)lo,
               (unsigned long long)hi, (unsigned long long)n);
    t = calloc(1, sizeof *t);
    DURE_ALLOC_TRY(t, sizeof *t);
    t->n = n;
    t->lo = lo;
    t->hi = hi;
    t->ntiles = lo < hi ? tree_frontier(n, lo, hi, TREE_TILE_LEVEL, NULL, 0) : 0;
    size_t m = t->ntiles ? t->ntiles : 1;
    t->tile = calloc(m, sizeof *t->tile);
    t->tile_first = calloc(m, sizeof *t->tile_first);
    t->tile_len = calloc(m, sizeof *t->tile_len);
    t->val = calloc(m, sizeof *t->val);
    DURE_ALLOC_TRY(t->tile, m * sizeof *t->tile);
    DURE_ALLOC_TRY(t->tile_first, m * sizeof *t->tile_first);
    DURE_ALLOC_TRY(t->tile_len, m * sizeof *t->tile_len);
    DURE_ALLOC_TRY(t->val, m * sizeof *t->val);
    if (t->ntiles) {
        tree_frontier(n, lo, hi, TREE_TILE_LEVEL, t->tile, t->ntiles);
    }
    for (size_t i = 0; i < t->ntiles; i++) {
        t->tile_first[i] = tree_node_first(t->tile[i]);
        t->tile_len[i] = (uint32_t)(tree_node_end(n, t->tile[i]) - t->tile_first[i]);
    }
    *out = t;
    t = NULL;
out:
    tree_norm_free(t);
    return st;
}

dure_status_t tree_norm_frontier(const struct tree_norm *t, double *out, size_t *count)
{
    dure_status_t st = DURE_OK;
    struct tree_sum s;
    tree_sum_init(&s, t->n);
    for (size_t i = 0; i < t->ntiles; i++) {
        DURE_TRY(tree_sum_push(&s, t->tile[i], t->val[i]));
    }
    /* What stays on the stack is exactly this range's frontier. */
    memcpy(out, s.v, (size_t)s.s.depth * sizeof *out);
    *count = (size_t)s.s.depth;
out:
    return st;
}

dure_status_t tree_norm_combine(uint64_t n, int parts, const uint64_t *bounds,
                                const double *vals, size_t stride, double *root)
{
    dure_status_t st = DURE_OK;
    struct tree_sum s;
    struct tree_node nodes[TREE_FRONTIER_MAX];
    tree_sum_init(&s, n);
    for (int p = 0; p < parts; p++) {
        if (bounds[p] >= bounds[p + 1]) {
            continue;
        }
        size_t k = tree_frontier(n, bounds[p], bounds[p + 1], -1, nodes, TREE_FRONTIER_MAX);
        for (size_t i = 0; i < k; i++) {
            DURE_TRY(tree_sum_push(&s, nodes[i], vals[(size_t)p * stride + i]));
        }
    }
    *root = n ? tree_sum_root(&s) : 0.0;
    DURE_CHECK(n == 0 || s.s.depth == 1, DURE_ERR_INTERNAL,
               "norm ranges do not tile [0, %llu): %d nodes left", (unsigned long long)n,
               s.s.depth);
out:
    return st;
}

/* ---------------------------------------------------------------- micro-batch tree */

void tree_rank_range(uint64_t leaves, int ranks, int r, uint64_t *lo, uint64_t *hi)
{
    uint64_t a = ranks > 0 ? leaves / (uint64_t)ranks : 0;
    *lo = a * (uint64_t)r;
    *hi = *lo + a;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void tree_sizes_text(uint64_t leaves, char *buf, size_t cap)
{
    /* Numbers up to 2^32 have at most 1536 divisors. */
    uint64_t d[2048];
    size_t nd = 0, used = 0;
    if (cap == 0) {
        return;
    }
    buf[0] = '\0';
    for (uint64_t a = 1; a * a <= leaves && nd + 2 <= sizeof d / sizeof d[0]; a++) {
        if (leaves % a == 0) {
            d[nd++] = a;
            if (a * a != leaves) {
                d[nd++] = leaves / a;
            }
        }
    }
    qsort(d, nd, sizeof d[0], cmp_u64);
    for (size_t i = 0; i < nd && used + 1 < cap; i++) {
        const char *sep = i == 0 ? "" : i + 1 == nd ? " or " : ", ";
        int w = snprintf(buf + used, cap - used, "%s%llu", sep, (unsigned long long)d[i]);
        used = w > 0 && (size_t)w < cap - used ? used + (size_t)w : cap - 1;
    }
}

/* ranks (>= 1) must divide leaves: DURE_ERR_ARG names the sizes that do. */
static dure_status_t check_divides(uint64_t leaves, int ranks)
{
    dure_status_t st = DURE_OK;
    char sizes[256] = "";
    if (leaves % (uint64_t)ranks) {
        tree_sizes_text(leaves, sizes, sizeof sizes);
    }
    DURE_CHECK(leaves % (uint64_t)ranks == 0, DURE_ERR_ARG,
               "exact mode: %d ranks do not divide the %llu micro-batches per step; world "
               "sizes that do: %s",
               ranks, (unsigned long long)leaves, sizes);
out:
    return st;
}

/* The plan's add: record the op; a slot merged away becomes free. */
struct plan_build {
    struct tree_plan *p;
    unsigned char *used;   /* used[1 .. A]: slot in use */
};

static dure_status_t plan_add(void *ctx, int dst, int src)
{
    struct plan_build *b = ctx;
    struct tree_plan *p = b->p;
    p->op[p->n_ops++] = (struct tree_op){TREE_OP_ADD, dst, src};
    if (src > 0) {
        b->used[src] = 0;
    }
    return DURE_OK;
}

/* The planner's add: only the stack's depth is wanted. */
static dure_status_t depth_add(void *ctx, int dst, int src)
{
    (void)ctx;
    (void)dst;
    (void)src;
    return DURE_OK;
}

/* Rank r's local reduction as tree_plan_create runs it: the most nodes held
 * before its last micro-batch (each in a saved vector), and after it. */
static dure_status_t rank_depths(uint64_t leaves, int ranks, int r, int *slots, int *rows)
{
    dure_status_t st = DURE_OK;
    struct tree_stack s;
    uint64_t lo, hi;
    tree_rank_range(leaves, ranks, r, &lo, &hi);
    tree_stack_init(&s, leaves, TREE_KEEP_NONE);
    *slots = 0;
    for (uint64_t i = lo; i < hi; i++) {
        DURE_TRY(tree_stack_push(&s, (struct tree_node){0, i}, 0, depth_add, NULL));
        if (i + 1 < hi && s.depth > *slots) {
            *slots = s.depth;
        }
    }
    *rows = s.depth;
out:
    return st;
}

dure_status_t tree_plan_worst(uint64_t leaves, int ranks, int *slots, int *rows)
{
    dure_status_t st = DURE_OK;
    *slots = *rows = 0;
    DURE_CHECK(leaves >= 1 && leaves <= TREE_LEAVES_MAX && ranks >= 1, DURE_ERR_ARG,
               "tree plan: %llu micro-batches over %d rank(s)", (unsigned long long)leaves,
               ranks);
    DURE_TRY(check_divides(leaves, ranks));
    const uint64_t period = (uint64_t)1 << tree_levels(leaves / (uint64_t)ranks);
    for (uint64_t r = 0; r < (uint64_t)ranks; r++) {
        if (r == period && r < (uint64_t)ranks - 1) {
            r = (uint64_t)ranks - 1;
        }
        int sl = 0, ro = 0;
        DURE_TRY(rank_depths(leaves, ranks, (int)r, &sl, &ro));
        *slots = sl > *slots ? sl : *slots;
        *rows = ro > *rows ? ro : *rows;
    }
out:
    return st;
}

void tree_plan_free(struct tree_plan *p)
{
    if (!p) {
        return;
    }
    free(p->op);
    free(p->op_first);
    free(p);
}

dure_status_t tree_plan_create(uint64_t leaves, int ranks, int rank, struct tree_plan **out)
{
    dure_status_t st = DURE_OK;
    struct tree_plan *p = NULL;
    struct plan_build b = {0};
    struct tree_stack s;
    *out = NULL;
    DURE_CHECK(leaves >= 1 && leaves <= (uint64_t)1 << 30 && ranks >= 1 && rank >= 0 &&
                   rank < ranks,
               DURE_ERR_ARG, "tree plan: %llu micro-batches, rank %d of %d",
               (unsigned long long)leaves, rank, ranks);
    DURE_TRY(check_divides(leaves, ranks));
    p = calloc(1, sizeof *p);
    DURE_ALLOC_TRY(p, sizeof *p);
    p->leaves = leaves;
    p->ranks = ranks;
    p->rank = rank;
    tree_rank_range(leaves, ranks, rank, &p->lo, &p->hi);
    p->local = (int)(p->hi - p->lo);
    /* At most one save and one add per micro-batch. */
    size_t nops = 2 * (size_t)p->local;
    p->op = calloc(nops, sizeof *p->op);
    p->op_first = calloc((size_t)p->local + 1, sizeof *p->op_first);
    b.used = calloc((size_t)p->local + 1, 1);
    DURE_ALLOC_TRY(p->op, nops * sizeof *p->op);
    DURE_ALLOC_TRY(p->op_first, ((size_t)p->local + 1) * sizeof *p->op_first);
    DURE_ALLOC_TRY(b.used, (size_t)p->local + 1);
    b.p = p;

    tree_stack_init(&s, leaves, TREE_KEEP_NONE);
    for (int j = 0; j < p->local; j++) {
        int last = j == p->local - 1;
        p->op_first[j] = p->n_ops;
        /* The last gradient stays in buffer 0 and the merges come to it. */
        s.keep = last ? 0 : TREE_KEEP_NONE;
        DURE_TRY(tree_stack_push(&s, (struct tree_node){0, p->lo + (uint64_t)j}, 0, plan_add,
                                 &b));
        if (!last && s.val[s.depth - 1] == 0) {
            /* Not merged into a saved vector: save it before the next one. */
            int k = 1;
            while (b.used[k]) {
                k++;
            }
            b.used[k] = 1;
            p->slots = k > p->slots ? k : p->slots;
            p->op[p->n_ops++] = (struct tree_op){TREE_OP_SAVE, k, 0};
            s.val[s.depth - 1] = k;
        }
    }
    p->op_first[p->local] = p->n_ops;
    p->rows = s.depth;
    for (int f = 0; f < s.depth; f++) {
        p->row_buf[f] = s.val[f];
        p->row_node[f] = s.node[f];
    }
    /* Every rank's frontier is tree_frontier of its range: the owners rely on it. */
    struct tree_node want[TREE_FRONTIER_MAX];
    size_t k = tree_frontier(leaves, p->lo, p->hi, -1, want, TREE_FRONTIER_MAX);
    DURE_CHECK(k == (size_t)p->rows && p->row_buf[p->rows - 1] == 0, DURE_ERR_INTERNAL,
               "tree plan of rank %d: %d rows, frontier of %zu", rank, p->rows, k);
    for (int f = 0; f < p->rows; f++) {
        DURE_CHECK(want[f].level == p->row_node[f].level &&
                       want[f].index == p->row_node[f].index,
                   DURE_ERR_INTERNAL, "tree plan of rank %d: row %d is not the frontier",
                   rank, f);
    }
    for (int r = 0; r < ranks; r++) {
        uint64_t lo, hi;
        tree_rank_range(leaves, ranks, r, &lo, &hi);
        int rows = (int)tree_frontier(leaves, lo, hi, -1, NULL, 0);
        p->rows_max = rows > p->rows_max ? rows : p->rows_max;
    }
    *out = p;
    p = NULL;
out:
    free(b.used);
    tree_plan_free(p);
    return st;
}

