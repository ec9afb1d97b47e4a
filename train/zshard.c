/* train/zshard.c - ZeRO stages 2 and 3: the model lent its units; see zshard.h. */
#include "train/zshard.h"

#include <stdlib.h>

#include "common/timing.h"

struct zshard {
    comm_t *comm;                /* borrowed */
    device_t *dev;               /* borrowed */
    model_t *model;              /* borrowed, after zshard_attach */
    size_t *bounds;              /* (U + 1) model_unit_bounds */
    int U;
    size_t n;                    /* parameters */
    int rank, size;
    struct comm_shard shard;     /* comm_shard_of(n, size, rank) */
    int stage;                   /* 2 or 3 */
    int lend_grads;              /* 0: parameters only (exact mode at stage 3) */
    float *params;               /* (shard.count) fp32, comm memory; stage 3 */
    float *grads;                /* (shard.count) reduced gradients, comm memory; NULL
                                    when gradients are not lent */
    size_t cbytes;               /* compute dtype size */
    enum comm_dtype cdt;
    int prefetch;
    int keep;                    /* !reshard_after_forward: slot u holds unit u */
    int nslots;
    size_t unit_max;             /* elements of the largest unit */
    char *slots;                 /* (nslots * unit_max * cbytes) comm memory; stage 3 */
    float *gwork;                /* (2 * unit_max) comm memory; NULL when not lent */

    /* The step's gather sequence. */
    int seq_len;                 /* positions of the pass */
    int cursor;                  /* next position the model asks for */
    int started;                 /* positions started so far */
    comm_req_t **req;            /* (2U - 1) per position; NULL: none pending */

    /* Gradient buffers: the model fills one while the other reduces. */
    comm_req_t *greq[2];
    int gunit[2];                /* unit in buffer j; -1: none */
    int gnext;                   /* buffer grads() hands out next */
    int first;                   /* this micro-batch replaces `grads` */
    double wait_s;
};

static size_t unit_count(const zshard_t *z, int u) { return z->bounds[u + 1] - z->bounds[u]; }

/* Position k's unit: forward 0 .. U-1, then backward U-1 .. 1. */
static int unit_at(const zshard_t *z, int k) { return k < z->U ? k : 2 * z->U - 1 - k; }

static char *slot_of(const zshard_t *z, int k)
{
    int s = z->keep ? unit_at(z, k) : k % z->nslots;
    return z->slots + (size_t)s * z->unit_max * z->cbytes;
}

static dure_status_t timed_wait(zshard_t *z, comm_req_t **req)
{
    dure_status_t st = DURE_OK;
    if (*req) {
        double t0 = dure_now_s();
        st = comm_wait(z->comm, *req);
        *req = NULL;
        z->wait_s += dure_now_s() - t0;
    }
    return st;
}

/* Start position k's gather: this rank's part cast into the slot, the
 * all-gather fills in the rest. */
static dure_status_t start_gather(zshard_t *z, int k)
{
    dure_status_t st = DURE_OK;
    int u = unit_at(z, k);
    size_t off = z->bounds[u], cnt = unit_count(z, u);
    struct comm_shard part = comm_range_part(z->n, z->size, z->rank, off, cnt);
    char *slot = slot_of(z, k), *mine = slot + (part.offset - off) * z->cbytes;
    if (part.count) {
        DURE_TRY(model_to_compute(z->model, mine, z->params + (part.offset - z->shard.offset),
                                  part.count));
    }
    DURE_TRY(comm_allgather_part_start(z->comm, mine, slot, z->n, off, cnt, z->cdt,
                                       &z->req[k]));
out:
    return st;
}

/* Wait for whatever a failed pass left in flight (its errors were reported). */
static void drain(zshard_t *z)
{
    for (int k = 0; k < 2 * z->U - 1; k++) {
        if (z->req[k]) {
            (void)comm_wait(z->comm, z->req[k]);
            z->req[k] = NULL;
        }
    }
    for (int j = 0; j < 2; j++) {
        if (z->greq[j]) {
            (void)comm_wait(z->comm, z->greq[j]);
            z->greq[j] = NULL;
        }
        z->gunit[j] = -1;
    }
}

static dure_status_t src_begin(void *ctx, int backward)
{
    dure_status_t st = DURE_OK;
    zshard_t *z = ctx;
    DURE_CHECK(z->model, DURE_ERR_INTERNAL, "ZeRO: the model was not attached");
    drain(z);
    z->seq_len = backward && !z->keep ? 2 * z->U - 1 : z->U;
    z->cursor = 0;
    z->started = 0;
    z->gnext = 0;
out:
    return st;
}

static dure_status_t src_params(void *ctx, int unit, enum model_pass pass, const void **p)
{
    dure_status_t st = DURE_OK;
    zshard_t *z = ctx;
    if (z->keep && pass == MODEL_PASS_BACKWARD) {
        /* gathered in this step's forward and kept */
        *p = slot_of(z, unit);
        goto out;
    }
    int k = z->cursor++;
    DURE_CHECK(k < z->seq_len && unit_at(z, k) == unit, DURE_ERR_INTERNAL,
               "ZeRO-3: the model asked for unit %d's parameters (%s) at position %d of "
               "the gather sequence, which holds unit %d",
               unit, pass == MODEL_PASS_FORWARD ? "forward" : "backward", k,
               k < z->seq_len ? unit_at(z, k) : -1);
    int last = k + z->prefetch < z->seq_len - 1 ? k + z->prefetch : z->seq_len - 1;
    while (z->started <= last) {
        DURE_TRY(start_gather(z, z->started));
        z->started++;
    }
    DURE_TRY(timed_wait(z, &z->req[k]));
    *p = slot_of(z, k);
out:
    return st;
}

/* Buffer j's reduce-scatter done: add this rank's part of it to `grads`. */
static dure_status_t collect(zshard_t *z, int j)
{
    dure_status_t st = DURE_OK;
    int u = z->gunit[j];
    if (u < 0) {
        goto out;
    }
    DURE_TRY(timed_wait(z, &z->greq[j]));
    size_t off = z->bounds[u], cnt = unit_count(z, u);
    struct comm_shard part = comm_range_part(z->n, z->size, z->rank, off, cnt);
    if (part.count) {
        DURE_TRY(device_accumulate(z->dev, z->grads + (part.offset - z->shard.offset),
                                   z->gwork + (size_t)j * z->unit_max + (part.offset - off),
                                   part.count, z->first));
    }
    z->gunit[j] = -1;
out:
    return st;
}

static dure_status_t src_grads(void *ctx, int unit, float **g)
{
    dure_status_t st = DURE_OK;
    zshard_t *z = ctx;
    int j = z->gnext;
    DURE_TRY(collect(z, j));
    float *buf = z->gwork + (size_t)j * z->unit_max;
    DURE_TRY(device_zero(z->dev, buf, unit_count(z, unit) * sizeof(float)));
    z->gunit[j] = unit;
    *g = buf;
out:
    return st;
}

static dure_status_t src_grads_done(void *ctx, int unit)
{
    dure_status_t st = DURE_OK;
    zshard_t *z = ctx;
    int j = z->gnext;
    DURE_CHECK(z->gunit[j] == unit, DURE_ERR_INTERNAL,
               "ZeRO: gradients of unit %d done, but buffer %d holds unit %d", unit, j,
               z->gunit[j]);
    z->gnext ^= 1;
    size_t off = z->bounds[unit], cnt = unit_count(z, unit);
    struct comm_shard part = comm_range_part(z->n, z->size, z->rank, off, cnt);
    float *buf = z->gwork + (size_t)j * z->unit_max;
    DURE_TRY(comm_reduce_scatter_part_start(z->comm, buf, buf + (part.offset - off), z->n, off,
                                            cnt, COMM_F32, COMM_SUM, &z->greq[j]));
out:
    return st;
}

dure_status_t zshard_create(comm_t *c, device_t *dev, const struct model_config *cfg, int stage,
                            int prefetch, int reshard_after_forward, int lend_grads,
                            zshard_t **out)
{
    dure_status_t st = DURE_OK;
    zshard_t *z = NULL;
    float *host = NULL;

    *out = NULL;
    DURE_CHECK(prefetch >= 0, DURE_ERR_ARG, "parallel.prefetch = %d must be >= 0", prefetch);
    DURE_CHECK(stage == 2 || stage == 3, DURE_ERR_ARG,
               "ZeRO stage %d does not lend the model its units (2 or 3 do)", stage);
    DURE_CHECK(lend_grads || stage == 3, DURE_ERR_ARG,
               "ZeRO stage 2 lends gradients alone: it cannot keep them in the model");
    z = calloc(1, sizeof *z);
    DURE_ALLOC_TRY(z, sizeof *z);
    z->comm = c;
    z->stage = stage;
    z->lend_grads = lend_grads;
    z->dev = dev;
    z->U = cfg->n_layers + 2;
    z->rank = comm_rank(c);
    z->size = comm_size(c);
    z->prefetch = prefetch;
    z->keep = !reshard_after_forward;
    z->nslots = z->keep ? z->U : prefetch + 1;
    z->gunit[0] = z->gunit[1] = -1;
    z->bounds = calloc((size_t)z->U + 1, sizeof *z->bounds);
    DURE_ALLOC_TRY(z->bounds, ((size_t)z->U + 1) * sizeof *z->bounds);
    z->req = calloc(2 * (size_t)z->U, sizeof *z->req);
    DURE_ALLOC_TRY(z->req, 2 * (size_t)z->U * sizeof *z->req);
    DURE_TRY(model_unit_bounds(cfg, z->bounds));
    z->n = z->bounds[z->U];
    for (int u = 0; u < z->U; u++) {
        z->unit_max = unit_count(z, u) > z->unit_max ? unit_count(z, u) : z->unit_max;
    }
    z->shard = comm_shard_of(z->n, z->size, z->rank);

    size_t sbytes = z->shard.count * sizeof(float);
    if (lend_grads) {
        DURE_TRY(comm_mem_alloc(c, sbytes, (void **)&z->grads));
        DURE_TRY(comm_mem_alloc(c, 2 * z->unit_max * sizeof(float), (void **)&z->gwork));
    }
    if (stage == 3) {
        DURE_TRY(comm_mem_alloc(c, sbytes, (void **)&z->params));
    }
    if (stage == 3 && sbytes) {
        size_t chunk = z->shard.count < MODEL_INIT_CHUNK ? z->shard.count : MODEL_INIT_CHUNK;
        host = malloc(chunk * sizeof(float));
        DURE_ALLOC_TRY(host, chunk * sizeof(float));
        for (size_t off = 0; off < z->shard.count; off += chunk) {
            size_t cnt = z->shard.count - off < chunk ? z->shard.count - off : chunk;
            DURE_TRY(model_param_init(cfg, z->shard.offset + off, cnt, host));
            DURE_TRY(comm_mem_upload(c, z->params + off, host, cnt * sizeof(float)));
        }
    }
    *out = z;
    z = NULL;
out:
    free(host);
    zshard_free(z);
    return st;
}

void zshard_free(zshard_t *z)
{
    if (!z) {
        return;
    }
    if (z->req) {
        drain(z);
    }
    comm_mem_free(z->comm, z->params);
    comm_mem_free(z->comm, z->slots);
    comm_mem_free(z->comm, z->gwork);
    comm_mem_free(z->comm, z->grads);
    free(z->req);
    free(z->bounds);
    free(z);
}

struct model_unit_source zshard_source(zshard_t *z)
{
    return (struct model_unit_source){.ctx = z,
                                      .begin = src_begin,
                                      .params = z->stage == 3 ? src_params : NULL,
                                      .params_done = NULL,
                                      .grads = z->lend_grads ? src_grads : NULL,
                                      .grads_done = z->lend_grads ? src_grads_done : NULL};
}

dure_status_t zshard_attach(zshard_t *z, model_t *m)
{
    dure_status_t st = DURE_OK;
    z->model = m;
    if (z->stage != 3) {
        goto out;
    }
    z->cbytes = model_compute_bytes(m);
    z->cdt = z->cbytes == 2 ? COMM_BF16 : COMM_F32;
    DURE_TRY(comm_mem_alloc(z->comm, (size_t)z->nslots * z->unit_max * z->cbytes,
                            (void **)&z->slots));
out:
    return st;
}

float *zshard_params(zshard_t *z) { return z->params; }

float *zshard_grads(zshard_t *z) { return z->grads; }

int zshard_lends_grads(const zshard_t *z) { return z->lend_grads; }

void zshard_micro_batch(zshard_t *z, int first) { z->first = first; }

dure_status_t zshard_backward_done(zshard_t *z)
{
    dure_status_t st = DURE_OK;
    /* the older buffer first: its reduce-scatter was started first */
    DURE_TRY(collect(z, z->gnext));
    DURE_TRY(collect(z, z->gnext ^ 1));
out:
    return st;
}

double zshard_take_wait_s(zshard_t *z)
{
    double s = z->wait_s;
    z->wait_s = 0;
    return s;
}

int zshard_inflight_max(const zshard_t *z)
{
    return (z->stage == 3 ? z->prefetch + 1 : 0) + (z->lend_grads ? 2 : 0);
}

size_t zshard_working_bytes(const zshard_t *z)
{
    size_t slots = z->stage == 3 ? (size_t)z->nslots * z->unit_max * z->cbytes : 0;
    return slots + (z->lend_grads ? 2 * z->unit_max * sizeof(float) : 0);
}
