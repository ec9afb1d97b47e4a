/*
 * collectives/bucket.h - gradient buckets: overlap the gradient exchange
 * with the backward pass.
 *
 * The gradients of all parameter tensors live in one flat vector grads[n]
 * (one allocation; host memory for mpi, device memory for nccl), tensor t
 * at elements [offsets[t], offsets[t + 1]) in forward (layer) order.
 * Backward produces them last tensor first, so buckets are packed walking
 * the tensors in reverse: a bucket takes whole tensors, last to first,
 * until adding the next would exceed bucket_mb (a tensor larger than the
 * cap is a bucket of its own) or the next ends at one of cfg.cuts. Tensors
 * are contiguous, so each bucket is a
 * contiguous range of grads; bucket 0 holds the last tensors.
 *
 * During backward the training loop calls comm_bucketer_ready(t) as soon as
 * tensor t's gradient is final, or comm_bucketer_ready_range for a range of
 * whole tensors (nccl: queued on the device's queue).
 * When every tensor of a bucket is ready, its all-reduce (or, for ZeRO,
 * reduce-scatter onto the shard owners of the whole vector, in place) starts
 * at once on the communication thread or stream. Buckets always start in
 * bucket order, so every rank issues the same sequence of collectives even
 * when tensors become ready in a different order on different ranks.
 * When more buckets are in flight than the comm's max_inflight less
 * cfg.reserve, the oldest is waited for before the next starts (the
 * bucketer assumes the reserved request slots are all that others start on
 * the comm meanwhile). comm_bucketer_finish runs anything not
 * yet started (when overlap is off, everything) as blocking collectives in
 * bucket order, on the caller's thread when nothing is pending, and waits
 * for all of it.
 *
 * After finish:
 *   COMM_BUCKET_ALLREDUCE       grads holds the reduced vector on every rank.
 *   COMM_BUCKET_REDUCE_SCATTER  rank r's shard comm_shard_of(n, size, r) of
 *                               grads holds the reduced values; elsewhere
 *                               grads is undefined.
 * The exact modes (run.exact) reduce cfg.tree's rows instead, by the
 * micro-batch tree (comm_tree_reduce_scatter_range_start), into grads,
 * which must be the tree's result row:
 *   COMM_BUCKET_EXACT_ALLREDUCE       then all-gathers each bucket: the
 *                                     reduced vector on every rank.
 *   COMM_BUCKET_EXACT_REDUCE_SCATTER  each rank's shard, as above.
 * The bits do not depend on the buckets, on overlap or on the world size.
 */
#ifndef DURE_COLLECTIVES_BUCKET_H
#define DURE_COLLECTIVES_BUCKET_H

#include <stddef.h>

#include "collectives/comm.h"
#include "common/status.h"

/*
 * The default bucket size in MiB ([parallel] bucket_mb = 0), chosen by
 * measurement on this machine (collectives/README.md): the smallest size
 * at which dure's all-reduce on 2 ranks reaches its bandwidth plateau, so
 * buckets cost no bandwidth while the last bucket, the exposed one, stays
 * small.
 */
#define COMM_BUCKET_MB_DEFAULT 4.0

enum comm_bucket_mode {
    COMM_BUCKET_ALLREDUCE,        /* ZeRO stage 0 */
    COMM_BUCKET_REDUCE_SCATTER,   /* ZeRO stages 1 and 2 */
    COMM_BUCKET_EXACT_ALLREDUCE,  /* exact mode, stage 0 */
    COMM_BUCKET_EXACT_REDUCE_SCATTER, /* exact mode, stages 1 and 2 */
};

struct comm_bucket_config {
    double bucket_mb;             /* cap per bucket in MiB (2^20 bytes); <= 0: the default */
    enum comm_bucket_mode mode;
    enum comm_redop redop;        /* COMM_AVG for data-parallel gradients (not exact modes) */
    int overlap;                  /* 0: start nothing before finish ([parallel] overlap) */
    const struct comm_tree *tree; /* exact modes: the rows (collectives/tree.h) */
    /* Flat offsets, ascending, each a tensor boundary, at which a bucket
     * must begin whatever the cap (n_cuts of them; read by create only):
     * where the backward's last gradient reports begin
     * (model_grad_tail_cuts), so that the buckets it finishes last hold
     * only what was final last and the others start while it computes. */
    const size_t *cuts;
    int n_cuts;
    /* Request slots of the comm (comm_max_inflight) left to other
     * operations pending while buckets are (ZeRO-3's parameter gathers:
     * zshard_inflight_max); the buckets in flight keep to the rest. */
    int reserve;
};

/* One bucket: elements [offset, offset + count) of grads; tensors
 * first_tensor..last_tensor (first_tensor <= last_tensor). */
struct comm_bucket {
    size_t offset;
    size_t count;
    int first_tensor;
    int last_tensor;
};

typedef struct comm_bucketer comm_bucketer_t;

/*
 * The buckets comm_bucketer_create plans, without a comm: for tensor
 * boundaries offsets[0 .. n_tensors] (offsets[0] == 0, non-decreasing),
 * cap bucket_mb (<= 0: the default) and cfg-style cuts, fills
 * bucket[0 .. *nb) (bucket[] holds max(n_tensors, 1)), bucket 0 the last
 * tensors. dure run's buckets and dure plan's price are these.
 * DURE_ERR_ARG naming the offset or cut at fault.
 */
dure_status_t comm_bucket_plan(const size_t *offsets, int n_tensors, double bucket_mb,
                               const size_t *cuts, int n_cuts, struct comm_bucket *bucket,
                               int *nb);

/*
 * Plan the buckets for grads[offsets[n_tensors]] with tensor boundaries
 * offsets[0 .. n_tensors] (offsets[0] == 0, non-decreasing). Copies offsets;
 * grads stays the caller's and must outlive the bucketer. Empty tensors are
 * allowed. All ranks must pass the same offsets and config. Allocates once.
 */
dure_status_t comm_bucketer_create(comm_t *c, float *grads, const size_t *offsets,
                                   int n_tensors, const struct comm_bucket_config *cfg,
                                   comm_bucketer_t **out);

/* Free; NULL is a no-op. Waits for started buckets first (errors ignored). */
void comm_bucketer_free(comm_bucketer_t *b);

int comm_bucketer_count(const comm_bucketer_t *b);
struct comm_bucket comm_bucketer_bucket(const comm_bucketer_t *b, int i);

/*
 * Tensor t's gradient is final for this step. Starts every bucket that is
 * now complete and whose predecessors have started. DURE_ERR_ARG for a
 * tensor out of range or marked twice in one step.
 */
dure_status_t comm_bucketer_ready(comm_bucketer_t *b, int t);

/*
 * The gradients of [offset, offset + count) are final for this step: every
 * tensor in the range is ready (the form the model reports,
 * model_grad_ready_fn). The range must start at a tensor boundary and end
 * at one: DURE_ERR_ARG naming it otherwise, or as comm_bucketer_ready.
 */
dure_status_t comm_bucketer_ready_range(comm_bucketer_t *b, size_t offset, size_t count);

/*
 * End of backward: marks every tensor not yet marked ready, runs the
 * remaining buckets in order (blocking), waits for the started ones, and
 * resets for the next step.
 */
dure_status_t comm_bucketer_finish(comm_bucketer_t *b);

#endif
