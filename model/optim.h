/*
 * model/optim.h - AdamW with decoupled weight decay on a contiguous slice of
 * the flat parameter vector, the warm-up + cosine learning-rate schedule,
 * and global gradient-norm clipping.
 *
 * Sharding (ZeRO). An optimizer owns the slice [offset, offset + len) of the
 * flat vector: rank r of a ZeRO run creates one for its shard, a replicated
 * run creates one for the whole vector. It allocates the AdamW moments m and
 * v (fp32, len elements each, one allocation) in the memory of its device
 * (host for cpu, the current CUDA device for cuda), and updates only that
 * slice, so the result of shard-wise updates is bit-identical to one update
 * of the whole vector.
 *
 * Clipping. The caller computes the squared norm of its gradient slice with
 * optim_grad_sq_norm, sums the squares over the ranks that hold disjoint
 * slices (all-reduce), and passes the global value to optim_clip_scale.
 *
 * One step, as `dure run` does it:
 *     optim_grad_sq_norm(opt, grads + off, &sq)    per shard, then all-reduce
 *     norm = sqrt(sq) * mean_scale                 mean_scale = 1/(accum*world)
 *     scale = mean_scale * optim_clip_scale(norm, grad_clip)
 *     optim_adamw_update(opt, step, optim_lr_at(&sched, step - 1), scale,
 *                        params + off, grads + off)
 *     (all-gather the slices if sharded) then model_params_changed()
 */
#ifndef DURE_MODEL_OPTIM_H
#define DURE_MODEL_OPTIM_H

#include <stddef.h>

#include "common/status.h"
#include "model/model.h"

/* The [optim] keys the update needs. */
struct optim_config {
    float beta1;          /* 0.9 */
    float beta2;          /* 0.95 */
    float eps;            /* 1e-8 */
    float weight_decay;   /* 0.1; applied only to tensors with decay = 1 */
};

/* Learning-rate schedule: linear warm-up, then cosine decay to min_lr. */
struct optim_schedule {
    float lr;             /* peak, reached at the end of warm-up */
    float min_lr;         /* floor, reached at total_steps */
    int warmup_steps;     /* >= 0 */
    int total_steps;      /* [run] steps */
};

/*
 * Learning rate for 0-based step s:
 *   s < warmup:  lr * (s + 1) / warmup
 *   else:        min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2,
 *                p = (s - warmup) / max(1, total - warmup), clamped to [0, 1]
 */
float optim_lr_at(const struct optim_schedule *sched, int s);

/*
 * Factor that brings a gradient of L2 norm `norm` down to max_norm:
 * max_norm / (norm + 1e-6) when max_norm > 0 and norm > max_norm, else 1.
 */
float optim_clip_scale(double norm, float max_norm);

typedef struct optim optim_t;

/*
 * Create an optimizer on device `dev` (borrowed; where the params, grads and
 * moments live) for the flat slice [offset, offset + len) of a model whose
 * tensor table is tensors[0..n_tensors) (model_tensors(); copied, the
 * caller keeps ownership). Moments are zeroed. DURE_ERR_ARG names the bad
 * value when the slice is outside the vector or a config value is out of
 * range (betas in [0, 1), eps > 0, weight_decay >= 0).
 */
dure_status_t optim_create(const struct optim_config *cfg, device_t *dev,
                           const struct model_tensor *tensors, size_t n_tensors,
                           size_t offset, size_t len, optim_t **out);

/* Free the optimizer and its moments; NULL is a no-op. */
void optim_destroy(optim_t *opt);

/* The slice this optimizer owns. */
size_t optim_offset(const optim_t *opt);
size_t optim_len(const optim_t *opt);

/*
 * Sum of squares of grads[0..len) (grads points at element `offset` of the
 * gradient vector, device memory), accumulated in double in a fixed order
 * (device_sq_norm: deterministic for any device thread count). Returns
 * with the value.
 */
dure_status_t optim_grad_sq_norm(optim_t *opt, const float *grads, double *sq);

/*
 * One AdamW step (1-based step t, for bias correction) on the slice:
 * params and grads point at element `offset` of their vectors (len elements,
 * device memory). For each element, with g = grad * grad_scale:
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 *   p -= lr * ( (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
 *               + weight_decay * p )      (decay only where the tensor decays)
 * grads are not modified. Queued on the device (device_adamw).
 */
dure_status_t optim_adamw_update(optim_t *opt, int t, float lr, float grad_scale,
                                 float *params, const float *grads);

enum optim_moment {
    OPTIM_M = 0,
    OPTIM_V,
};

/* Copy a moment's len elements to or from host memory (checkpoints). */
dure_status_t optim_moment_to_host(optim_t *opt, enum optim_moment which, float *host);
dure_status_t optim_moment_from_host(optim_t *opt, enum optim_moment which,
                                     const float *host);

#endif
