/* collectives/bucket.c - see bucket.h. */
#include "collectives/bucket.h"

#include <stdlib.h>
#include <string.h>

#include "collectives/tree.h"

struct comm_bucketer {
    comm_t *c;
    float *grads;                /* grads[n], the caller's */
    size_t n;
    int n_tensors;
    size_t *offsets;             /* offsets[n_tensors + 1], a copy of the caller's */
    struct comm_bucket_config cfg;
    int nb;
    struct comm_bucket *bucket;  /* bucket[nb]; bucket 0 holds the last tensors */
    int *bucket_of;              /* bucket_of[n_tensors] */
    int *missing;                /* missing[nb]: tensors not yet ready this step */
    unsigned char *ready;        /* ready[n_tensors] */
    int per;                     /* operations per bucket: 2 for EXACT_ALLREDUCE, else 1 */
    comm_req_t **req;            /* req[nb * per] of started buckets */
    int started;                 /* buckets 0 .. started-1 have started this step */
    int waited;                  /* buckets 0 .. waited-1 have been waited for */
    int window;                  /* operations in flight at most: the comm's max_inflight
                                    less cfg.reserve */
};

/* Bucket i's collectives: started (req != NULL: req[per]) or run to
 * completion. */
static dure_status_t issue_bucket(comm_bucketer_t *b, int i, comm_req_t **req)
{
    dure_status_t st = DURE_OK;
    const struct comm_bucket *k = &b->bucket[i];
    float *g = b->grads + k->offset;
    switch (b->cfg.mode) {
    case COMM_BUCKET_REDUCE_SCATTER:
        return req ? comm_reduce_scatter_range_start(b->c, b->grads, b->n, k->offset, k->count,
                                                     COMM_F32, b->cfg.redop, req)
                   : comm_reduce_scatter_range(b->c, b->grads, b->n, k->offset, k->count,
                                               COMM_F32, b->cfg.redop);
    case COMM_BUCKET_EXACT_REDUCE_SCATTER:
    case COMM_BUCKET_EXACT_ALLREDUCE:
        DURE_TRY(req ? comm_tree_reduce_scatter_range_start(b->c, b->cfg.tree, b->n, k->offset,
                                                            k->count, &req[0])
                     : comm_tree_reduce_scatter_range(b->c, b->cfg.tree, b->n, k->offset,
                                                      k->count));
        if (b->cfg.mode == COMM_BUCKET_EXACT_ALLREDUCE) {
            /* After the tree on the comm's queue. */
            DURE_TRY(req ? comm_allgather_range_start(b->c, b->grads, b->n, k->offset,
                                                      k->count, COMM_F32, &req[1])
                         : comm_allgather_range(b->c, b->grads, b->n, k->offset, k->count,
                                                COMM_F32));
        }
        break;
    case COMM_BUCKET_ALLREDUCE:
        return req ? comm_allreduce_start(b->c, g, g, k->count, COMM_F32, b->cfg.redop, req)
                   : comm_allreduce(b->c, g, g, k->count, COMM_F32, b->cfg.redop);
    }
out:
    return st;
}

/* Wait for bucket i's started operations; all of them, even after a
 * failure (the first one's status is returned). */
static dure_status_t wait_bucket(comm_bucketer_t *b, int i)
{
    dure_status_t st = DURE_OK;
    for (int k = 0; k < b->per; k++) {
        comm_req_t **r = &b->req[(size_t)i * (size_t)b->per + (size_t)k];
        if (*r) {
            dure_status_t w = comm_wait(b->c, *r);
            st = st == DURE_OK ? w : st;
            *r = NULL;
        }
    }
    return st;
}

/* Start, in bucket order, every bucket whose tensors are all ready. With
 * the comm's request slots all taken (a large model in small buckets),
 * wait for the oldest bucket first. */
static dure_status_t start_ready(comm_bucketer_t *b)
{
    dure_status_t st = DURE_OK;
    while (b->started < b->nb && b->missing[b->started] == 0) {
        if ((b->started - b->waited + 1) * b->per > b->window) {
            DURE_TRY(wait_bucket(b, b->waited++));
        }
        DURE_TRY(issue_bucket(b, b->started, &b->req[(size_t)b->started * (size_t)b->per]));
        b->started++;
    }
out:
    return st;
}

static void reset_step(comm_bucketer_t *b)
{
    memset(b->ready, 0, (size_t)b->n_tensors);
    for (int i = 0; i < b->nb; i++) {
        b->missing[i] = b->bucket[i].last_tensor - b->bucket[i].first_tensor + 1;
    }
    memset(b->req, 0, (size_t)b->nb * (size_t)b->per * sizeof *b->req);
    b->started = 0;
    b->waited = 0;
}

dure_status_t comm_bucket_plan(const size_t *offsets, int n_tensors, double bucket_mb,
                               const size_t *cuts, int n_cuts, struct comm_bucket *bucket,
                               int *nb)
{
    dure_status_t st = DURE_OK;

    *nb = 0;
    DURE_CHECK(n_tensors >= 0 && offsets && offsets[0] == 0, DURE_ERR_ARG,
               "bucketer: offsets must start at 0 (n_tensors %d)", n_tensors);
    for (int t = 0; t < n_tensors; t++) {
        DURE_CHECK(offsets[t + 1] >= offsets[t], DURE_ERR_ARG,
                   "bucketer: offsets[%d] = %zu is below offsets[%d] = %zu", t + 1,
                   offsets[t + 1], t, offsets[t]);
    }
    DURE_CHECK(n_cuts >= 0 && (n_cuts == 0 || cuts), DURE_ERR_ARG, "bucketer: %d cuts at NULL",
               n_cuts);
    for (int i = 0, t = 0; i < n_cuts; i++) {
        while (t < n_tensors && offsets[t] < cuts[i]) {
            t++;
        }
        DURE_CHECK(offsets[t] == cuts[i] && (i == 0 || cuts[i] > cuts[i - 1]), DURE_ERR_ARG,
                   "bucketer: cut %d at %zu is not an ascending tensor boundary of the "
                   "%zu-element vector",
                   i, cuts[i], offsets[n_tensors]);
    }
    const double cap_d = (bucket_mb > 0 ? bucket_mb : COMM_BUCKET_MB_DEFAULT) * 1048576.0 /
                         sizeof(float);
    const size_t cap = cap_d < 1.0 ? 1 : (size_t)cap_d;

    /* Walk backward: a bucket takes whole tensors until the next would
     * overflow the cap or ends at a cut; empty tensors ride along with the
     * current one. */
    for (int t = n_tensors - 1, c_i = n_cuts - 1; t >= 0; t--) {
        size_t len = offsets[t + 1] - offsets[t];
        while (c_i >= 0 && cuts[c_i] > offsets[t + 1]) {
            c_i--;
        }
        const int at_cut = c_i >= 0 && cuts[c_i] == offsets[t + 1];
        struct comm_bucket *cur = *nb ? &bucket[*nb - 1] : NULL;
        if (!cur || (len > 0 && cur->count > 0 && (cur->count + len > cap || at_cut))) {
            cur = &bucket[(*nb)++];
            cur->last_tensor = t;
            cur->count = 0;
        }
        cur->first_tensor = t;
        cur->offset = offsets[t];
        cur->count += len;
    }
out:
    return st;
}

dure_status_t comm_bucketer_create(comm_t *c, float *grads, const size_t *offsets,
                                   int n_tensors, const struct comm_bucket_config *cfg,
                                   comm_bucketer_t **out)
{
    dure_status_t st = DURE_OK;
    comm_bucketer_t *b = NULL;

    *out = NULL;
    DURE_CHECK(cfg->mode >= COMM_BUCKET_ALLREDUCE &&
                   cfg->mode <= COMM_BUCKET_EXACT_REDUCE_SCATTER,
               DURE_ERR_ARG, "bucketer: unknown mode %d", (int)cfg->mode);
    const int exact = cfg->mode == COMM_BUCKET_EXACT_ALLREDUCE ||
                      cfg->mode == COMM_BUCKET_EXACT_REDUCE_SCATTER;
    DURE_CHECK(!exact || (cfg->tree && cfg->tree->rows >= 1 &&
                          cfg->tree->row[cfg->tree->rows - 1] == grads),
               DURE_ERR_ARG, "bucketer: an exact mode needs a tree whose result row is grads");

    b = calloc(1, sizeof *b);
    DURE_ALLOC_TRY(b, sizeof *b);
    b->c = c;
    b->grads = grads;
    b->n_tensors = n_tensors;
    b->cfg = *cfg;
    b->per = cfg->mode == COMM_BUCKET_EXACT_ALLREDUCE ? 2 : 1;
    if (!(b->cfg.bucket_mb > 0)) {
        b->cfg.bucket_mb = COMM_BUCKET_MB_DEFAULT;
    }

    /* One allocation for the per-tensor and per-bucket arrays (at most one
     * bucket per tensor); a negative count is comm_bucket_plan's error. */
    size_t nt = n_tensors > 0 ? (size_t)n_tensors : 0, nbmax = nt ? nt : 1;
    b->bucket = calloc(nbmax, sizeof *b->bucket);
    b->bucket_of = calloc(nbmax, sizeof *b->bucket_of);
    b->missing = calloc(nbmax, sizeof *b->missing);
    b->ready = calloc(nbmax, 1);
    b->req = calloc(nbmax * (size_t)b->per, sizeof *b->req);
    b->offsets = malloc((nt + 1) * sizeof *b->offsets);
    DURE_ALLOC_TRY(b->bucket, nbmax * sizeof *b->bucket);
    DURE_ALLOC_TRY(b->bucket_of, nbmax * sizeof *b->bucket_of);
    DURE_ALLOC_TRY(b->missing, nbmax * sizeof *b->missing);
    DURE_ALLOC_TRY(b->ready, nbmax);
    DURE_ALLOC_TRY(b->req, nbmax * (size_t)b->per * sizeof *b->req);
    DURE_ALLOC_TRY(b->offsets, (nt + 1) * sizeof *b->offsets);
    DURE_TRY(comm_bucket_plan(offsets, n_tensors, b->cfg.bucket_mb, cfg->cuts, cfg->n_cuts,
                              b->bucket, &b->nb));
    b->n = offsets[n_tensors];
    DURE_CHECK(grads || b->n == 0, DURE_ERR_ARG, "bucketer: NULL gradient vector of %zu elements",
               b->n);
    memcpy(b->offsets, offsets, (nt + 1) * sizeof *b->offsets);
    for (int i = 0; i < b->nb; i++) {
        for (int t = b->bucket[i].first_tensor; t <= b->bucket[i].last_tensor; t++) {
            b->bucket_of[t] = i;
        }
    }
    b->cfg.cuts = NULL; /* the caller's, read above only */
    b->cfg.n_cuts = 0;
    b->window = comm_max_inflight(c) - (cfg->reserve > 0 ? cfg->reserve : 0);
    DURE_CHECK(b->window >= b->per, DURE_ERR_ARG,
               "bucketer: a bucket keeps %d operation(s) in flight, but the comm allows %d "
               "(comm_config.max_inflight) of which %d are reserved for others",
               b->per, comm_max_inflight(c), cfg->reserve);
    reset_step(b);
    *out = b;
    b = NULL;
out:
    comm_bucketer_free(b);
    return st;
}

void comm_bucketer_free(comm_bucketer_t *b)
{
    if (!b) {
        return;
    }
    for (int i = b->waited; i < b->started; i++) {
        wait_bucket(b, i);
    }
    free(b->bucket);
    free(b->bucket_of);
    free(b->missing);
    free(b->ready);
    free(b->req);
    free(b->offsets);
    free(b);
}

int comm_bucketer_count(const comm_bucketer_t *b) { return b->nb; }

struct comm_bucket comm_bucketer_bucket(const comm_bucketer_t *b, int i)
{
    struct comm_bucket none = {0, 0, -1, -1};
    return i >= 0 && i < b->nb ? b->bucket[i] : none;
}

dure_status_t comm_bucketer_ready(comm_bucketer_t *b, int t)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(t >= 0 && t < b->n_tensors, DURE_ERR_ARG,
               "bucketer: tensor %d is not in [0, %d)", t, b->n_tensors);
    DURE_CHECK(!b->ready[t], DURE_ERR_ARG, "bucketer: tensor %d marked ready twice in one step",
               t);
    b->ready[t] = 1;
    b->missing[b->bucket_of[t]]--;
    if (b->cfg.overlap) {
        DURE_TRY(start_ready(b));
    }
out:
    return st;
}

dure_status_t comm_bucketer_ready_range(comm_bucketer_t *b, size_t offset, size_t count)
{
    dure_status_t st = DURE_OK;
    const size_t end = offset + count;
    /* The first tensor starting at `offset`. */
    int lo = 0, hi = b->n_tensors;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (b->offsets[mid] < offset) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    DURE_CHECK(lo < b->n_tensors && b->offsets[lo] == offset && end <= b->n, DURE_ERR_ARG,
               "bucketer: gradient range [%zu, %zu) does not start at a tensor boundary of "
               "the %zu-element vector",
               offset, end, b->n);
    for (int t = lo; t < b->n_tensors && b->offsets[t] < end; t++) {
        DURE_CHECK(b->offsets[t + 1] <= end, DURE_ERR_ARG,
                   "bucketer: gradient range [%zu, %zu) ends inside tensor %d [%zu, %zu)",
                   offset, end, t, b->offsets[t], b->offsets[t + 1]);
        DURE_TRY(comm_bucketer_ready(b, t));
    }
out:
    return st;
}

dure_status_t comm_bucketer_finish(comm_bucketer_t *b)
{
    dure_status_t st = DURE_OK;
    for (int t = 0; t < b->n_tensors; t++) {
        if (!b->ready[t]) {
            b->ready[t] = 1;
            b->missing[b->bucket_of[t]]--;
        }
    }
    /* What backward did not start runs now, in bucket order, as blocking
     * collectives: after the started ones (the comm's order), and on this
     * thread when nothing is pending, without the hand-off to the
     * communication thread that small messages cannot afford. */
    for (int i = b->started; i < b->nb && st == DURE_OK; i++) {
        st = issue_bucket(b, i, NULL);
    }
    /* Wait for every started bucket, even after a failure, so that no
     * request is left behind; report the first error. */
    for (int i = b->waited; i < b->started; i++) {
        dure_status_t w = wait_bucket(b, i);
        if (st == DURE_OK) {
            st = w;
        }
    }
    reset_step(b);
    return st;
}
