/* train/exact.c - exact mode in the training step; see exact.h. */
#include "train/exact.h"

#include <stdlib.h>
#include <string.h>

#include "collectives/tree.h"
#include "device/device.h"
#include "model/model.h"
#include "model/optim.h"

/* Buffer b of the plan: 0 is the model's gradient vector, 1.. the saved. */
static float *buffer(const train_t *t, int b)
{
    return b == 0 ? model_grads(t->model) : t->saved + (size_t)(b - 1) * t->n;
}

static size_t recv_floats(const train_t *t)
{
    return comm_tree_recv_count(t->n, t->world_size, t->plan->rows_max);
}

dure_status_t train_exact_setup(train_t *t)
{
    dure_status_t st = DURE_OK;
    const uint64_t leaves = (uint64_t)t->accum * (uint64_t)t->world_size;
    struct comm_tree *ct = &t->tree;

    DURE_CHECK(t->plan && t->plan->leaves == leaves, DURE_ERR_INTERNAL,
               "exact mode without its tree plan");
    /* Collective on the mpi backend: every rank allocates both, even 0 bytes. */
    DURE_TRY(comm_mem_alloc(t->comm, (size_t)t->plan->slots * t->n * sizeof(float),
                            (void **)&t->saved));
    DURE_TRY(comm_mem_alloc(t->comm, recv_floats(t) * sizeof(float), (void **)&t->tree_recv));
    memset(ct, 0, sizeof *ct);
    ct->leaves = leaves;
    ct->rows = t->plan->rows;
    ct->rows_max = t->plan->rows_max;
    ct->recv = t->tree_recv;
    for (int f = 0; f < ct->rows; f++) {
        ct->row[f] = buffer(t, t->plan->row_buf[f]);
    }

    DURE_TRY(tree_norm_create(t->n, t->shard.offset, t->shard.offset + t->shard.count,
                              &t->norm));
    size_t nb = (size_t)t->world_size + 1;
    t->norm_bounds = calloc(nb, sizeof *t->norm_bounds);
    DURE_ALLOC_TRY(t->norm_bounds, nb * sizeof *t->norm_bounds);
    t->norm_max = 1;
    for (int r = 0; r < t->world_size; r++) {
        struct comm_shard sh = comm_shard_of(t->n, t->world_size, r);
        t->norm_bounds[r] = sh.offset;
        if (sh.count) {
            int k = (int)tree_frontier(t->n, sh.offset, sh.offset + sh.count, -1, NULL, 0);
            t->norm_max = k > t->norm_max ? k : t->norm_max;
        }
    }
    t->norm_bounds[t->world_size] = t->n;
out:
    return st;
}

void train_exact_free(train_t *t)
{
    if (t->comm) {
        comm_mem_free(t->comm, t->tree_recv);
        comm_mem_free(t->comm, t->saved);
    }
    free(t->norm_bounds);
    tree_norm_free(t->norm);
    tree_plan_free(t->plan);
}

uint64_t train_exact_bytes(const train_t *t)
{
    if (!t->plan) {
        return 0;
    }
    return ((uint64_t)t->plan->slots * t->n + recv_floats(t)) * sizeof(float);
}

void train_exact_traffic(const train_t *t, uint64_t *exact, uint64_t *plain)
{
    const uint64_t R = (uint64_t)t->world_size, fl = sizeof(float);
    const uint64_t n = t->n, mine = t->shard.count;
    const uint64_t part = (n - mine) * fl;         /* everyone else's shards */
    const uint64_t gather = (R - 1) * mine * fl;   /* this shard to the others */
    *exact = (uint64_t)t->plan->rows * part + (t->zero_stage == 0 ? gather : 0) +
             (R - 1) * (uint64_t)t->norm_max * sizeof(double);
    /* Default mode: an all-reduce is a reduce-scatter and an all-gather;
     * stages 2 and 3 reduce-scatter every micro-batch. */
    *plain = t->zero_stage == 0 ? part + gather
                                : part * (t->zero_stage >= 2 ? (uint64_t)t->accum : 1);
}

dure_status_t train_exact_micro(train_t *t, int j, size_t off, size_t count)
{
    dure_status_t st = DURE_OK;
    const struct tree_plan *p = t->plan;
    for (int o = p->op_first[j]; o < p->op_first[j + 1]; o++) {
        float *dst = buffer(t, p->op[o].dst) + off;
        const float *src = buffer(t, p->op[o].src) + off;
        /* A save is dst = src, an add dst += src (device_accumulate's
         * first). */
        DURE_TRY(device_accumulate(t->dev, dst, src, count, p->op[o].kind == TREE_OP_SAVE));
    }
out:
    return st;
}

dure_status_t train_exact_norm_part(train_t *t, double *out)
{
    dure_status_t st = DURE_OK;
    size_t k = 0;
    memset(out, 0, (size_t)t->norm_max * sizeof *out);
    DURE_TRY(optim_tree_tiles(t->opt, t->norm, model_grads(t->model) + t->shard.offset));
    DURE_TRY(tree_norm_frontier(t->norm, out, &k));
    DURE_CHECK(k <= (size_t)t->norm_max, DURE_ERR_INTERNAL,
               "rank %d: %zu norm frontier values, room for %d", t->rank, k, t->norm_max);
out:
    return st;
}

dure_status_t train_exact_norm(const train_t *t, size_t at, double *sq)
{
    return tree_norm_combine(t->n, t->world_size, t->norm_bounds, t->ctl_host + at,
                             (size_t)t->slot, sq);
}

dure_status_t train_exact_loss(const train_t *t, double *sum)
{
    dure_status_t st = DURE_OK;
    struct tree_sum s;
    tree_sum_init(&s, t->plan->leaves);
    for (int r = 0; r < t->world_size; r++) {
        const double *v = t->ctl_host + (size_t)r * (size_t)t->slot;
        for (int j = 0; j < t->accum; j++) {
            uint64_t leaf = (uint64_t)r * (uint64_t)t->accum + (uint64_t)j;
            DURE_TRY(tree_sum_push(&s, (struct tree_node){0, leaf}, v[j]));
        }
    }
    *sum = tree_sum_root(&s);
out:
    return st;
}

int train_exact_contract(const train_t *t, struct manifest_exact *c)
{
    if (!t->exact) {
        return 0;
    }
    c->micro_batches = t->plan->leaves;
    c->micro_batch = (uint64_t)t->micro;
    c->norm_elements = t->n;
    c->norm_tile = TREE_TILE;
    return 1;
}
