/*
 * train/zshard.h - ZeRO stages 2 and 3 for the training driver: the
 * gradients (stage 2) and also the parameters (stage 3) sharded across the
 * ranks, lent to the model one unit at a time (model.h: units, struct
 * model_unit_source).
 *
 * Layout: rank r owns elements comm_shard_of(N, R, r) of the flat vector,
 * the shard of stage 1 (so the optimizer, the gradient norm and the
 * checkpoints are the same at every stage): `grads` holds the reduced
 * gradient of the step, summed over the micro-batches, and at stage 3
 * `params` its fp32 master parameters. Nothing of the full vector's size
 * is allocated here (at stage 2 the model keeps its own whole parameters):
 *
 *   gwork   two units of fp32 gradients: the model writes one while the
 *           other's reduce-scatter runs
 *           (none in exact mode at stage 3: the model keeps its whole
 *           gradient vector, reduced by the micro-batch tree, train/exact.h)
 *   slots   stage 3: (prefetch + 1) units of parameters in the model's
 *           compute dtype (reshard_after_forward = false: one per unit,
 *           the whole model, kept from forward to backward)
 *
 * Gradients: a unit's buffer is zeroed when the model asks for it, its
 * reduce-scatter (part form, in place) starts as soon as the unit's
 * backward is done, and its part is added into `grads` when the buffer
 * comes round again or at zshard_backward_done.
 *
 * Parameters (stage 3): one step's sequence of gathers is forward units
 * 0 .. U-1, then (resharding) backward units U-1 .. 1 (the embeddings'
 * backward reads no parameter). Position k's unit is all-gathered into
 * slot k mod (prefetch + 1): this rank casts its part of the unit
 * (comm_range_part) into the slot and the all-gather fills in the other
 * ranks' parts, on the communication thread (mpi) or the comm's stream
 * (nccl, ordered after the device's queue). When the model asks for
 * position k, positions up to k + prefetch are started and k is waited
 * for; the slot of k + prefetch is that of k - 1, whose params_done has
 * come.
 *
 * Not thread-safe; the model calls it from the step's thread.
 */
#ifndef DURE_TRAIN_ZSHARD_H
#define DURE_TRAIN_ZSHARD_H

#include <stddef.h>

#include "collectives/comm.h"
#include "common/status.h"
#include "device/device.h"
#include "model/model.h"

typedef struct zshard zshard_t;

/*
 * Allocate, in the comm's memory, the gradient shard and buffers and, for
 * stage 3, the parameter shard (initialised with model_param_init: the
 * values model_create would give). stage: 2 or 3; prefetch >= 0 and
 * reshard_after_forward matter at stage 3 only. lend_grads = 0 (stage 3
 * only: exact mode, train/exact.h) lends parameters alone: the model keeps
 * its own whole gradient vector, no gradient buffer or shard is allocated
 * here and zshard_grads is NULL. Collective over the comm (its
 * allocations are).
 */
dure_status_t zshard_create(comm_t *c, device_t *dev, const struct model_config *cfg, int stage,
                            int prefetch, int reshard_after_forward, int lend_grads,
                            zshard_t **out);
/* Free; NULL is a no-op. Waits for anything in flight (errors ignored).
 * Collective over the comm. Before comm_destroy. */
void zshard_free(zshard_t *z);

/* The unit source to create the model with (ctx is z): gradients (unless
 * lend_grads was 0), and at stage 3 parameters. */
struct model_unit_source zshard_source(zshard_t *z);
/* The model created with it: at stage 3 allocates the slots in its
 * compute dtype (model_compute_bytes: float32, or bf16 gathered as
 * COMM_BF16), which its model_to_compute fills. Collective over the comm. */
dure_status_t zshard_attach(zshard_t *z, model_t *m);

/* This rank's fp32 parameters (stage 3; NULL at stage 2) and reduced
 * gradients (NULL when not lent), shard.count each, element shard.offset
 * of the vector at index 0. */
float *zshard_params(zshard_t *z);
float *zshard_grads(zshard_t *z);

/* 1 when the model is lent its gradients (lend_grads at zshard_create). */
int zshard_lends_grads(const zshard_t *z);

/* Before each micro-batch's forward_backward: first != 0 makes its
 * gradients replace `grads` instead of adding to them. */
void zshard_micro_batch(zshard_t *z, int first);
/* After forward_backward: wait for the last reduce-scatters and add them. */
dure_status_t zshard_backward_done(zshard_t *z);
/* Seconds spent waiting for collectives since the last call (the exposed
 * communication), and reset. */
double zshard_take_wait_s(zshard_t *z);

/* The most collectives it has pending on the comm at once: at stage 3 the
 * gathers of the position the model waits for and of up to prefetch ahead,
 * and the reduce-scatters of both gradient buffers when it lends them. A
 * bucketer on the same comm leaves it these request slots
 * (comm_bucket_config.reserve). */
int zshard_inflight_max(const zshard_t *z);

/* Bytes of the gradient buffers and slots (the plan's "working"). */
size_t zshard_working_bytes(const zshard_t *z);

#endif
