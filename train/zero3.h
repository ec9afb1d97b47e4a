/*
 * train/zero3.h - ZeRO stage 3 for the training driver: the model's
 * parameters, gradients and optimizer state sharded across the ranks, the
 * model lent one unit at a time (model.h: units, struct model_unit_source).
 *
 * Layout: rank r owns elements comm_shard_of(N, R, r) of the flat vector,
 * the same shard as stages 1 and 2 (so the optimizer, the gradient norm
 * and the checkpoints are theirs unchanged): `params` holds its fp32
 * master parameters, `grads` the reduced gradient of the step, summed over
 * the micro-batches. Nothing of the full vector's size is allocated:
 *
 *   slots   (prefetch + 1) units of parameters in the model's compute
 *           dtype (reshard_after_forward = false: one per unit, the whole
 *           model, kept from forward to backward)
 *   gwork   two units of fp32 gradients: the model writes one while the
 *           other's reduce-scatter runs
 *
 * One step's sequence of gathers: forward units 0 .. U-1, then (resharding)
 * backward units U-1 .. 1 (the embeddings' backward reads no parameter).
 * Position k's unit is all-gathered into slot k mod (prefetch + 1): this
 * rank casts its part of the unit (comm_range_part) into the slot and the
 * all-gather fills in the other ranks' parts, on the communication thread
 * (mpi) or the comm's stream (nccl, ordered after the device's queue). When
 * the model asks for position k, positions up to k + prefetch are started
 * and k is waited for; the slot of k + prefetch is that of k - 1, whose
 * params_done has come. A unit's gradients are reduce-scattered in place
 * as soon as its backward is done; its part is added into `grads` when the
 * gradient buffer comes round again or at zero3_backward_done.
 *
 * Not thread-safe; the model calls it from the step's thread.
 */
#ifndef DURE_TRAIN_ZERO3_H
#define DURE_TRAIN_ZERO3_H

#include <stddef.h>

#include "collectives/comm.h"
#include "common/status.h"
#include "device/device.h"
#include "model/model.h"

typedef struct zero3 zero3_t;

/*
 * Allocate the shard (initialised with model_param_init: the values
 * model_create would give), the gradient shard and the gradient buffers
 * in the comm's memory. prefetch >= 0. Collective over the comm (its
 * allocations are).
 */
dure_status_t zero3_create(comm_t *c, device_t *dev, const struct model_config *cfg,
                           int prefetch, int reshard_after_forward, zero3_t **out);
/* Free; NULL is a no-op. Waits for anything in flight (errors ignored).
 * Collective over the comm. Before comm_destroy. */
void zero3_free(zero3_t *z);

/* The unit source to create the model with (ctx is z). */
struct model_unit_source zero3_source(zero3_t *z);
/* The model created with it: allocates the slots in its compute dtype
 * (model_compute_bytes: float32, or bf16 gathered as COMM_BF16), which its
 * model_to_compute fills. Collective over the comm. */
dure_status_t zero3_attach(zero3_t *z, model_t *m);

/* This rank's fp32 parameters and reduced gradients, shard.count each,
 * element shard.offset of the vector at index 0. */
float *zero3_params(zero3_t *z);
float *zero3_grads(zero3_t *z);

/* Before each micro-batch's forward_backward: first != 0 makes its
 * gradients replace `grads` instead of adding to them. */
void zero3_micro_batch(zero3_t *z, int first);
/* After forward_backward: wait for the last reduce-scatters and add them. */
dure_status_t zero3_backward_done(zero3_t *z);
/* Seconds spent waiting for collectives since the last call (the exposed
 * communication), and reset. */
double zero3_take_wait_s(zero3_t *z);

/* Bytes of the slots and gradient buffers (the plan's "working"). */
size_t zero3_working_bytes(const zero3_t *z);

#endif
