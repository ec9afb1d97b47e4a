/*
 * model/optim_dev.h - the device half of the optimizer: AdamW and the
 * squared gradient norm on CUDA memory. Implemented by model/optim_cuda.cu
 * in CUDA builds and model/optim_nocuda.c otherwise. Internal to model/.
 * All calls run on the legacy default stream, which orders them after the
 * model's (blocking) stream, and return after the work finished.
 */
#ifndef DURE_MODEL_OPTIM_DEV_H
#define DURE_MODEL_OPTIM_DEV_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per-element constants of one AdamW step. */
struct optim_dev_step {
    float lr, beta1, beta2, eps;
    float bc1, bc2;       /* 1 - beta^t */
    float grad_scale;
};

/* Device allocation of `bytes`, zeroed; device free (NULL is a no-op). */
dure_status_t optim_dev_alloc(void **ptr, size_t bytes);
void optim_dev_free(void *ptr);

/* cudaMemcpy between host and device. */
dure_status_t optim_dev_copy(void *dst, const void *src, size_t bytes, int to_host);

/* AdamW on n elements (weight_decay 0 for tensors that do not decay). */
dure_status_t optim_dev_adamw(const struct optim_dev_step *s, float weight_decay,
                              float *params, const float *grads, float *m, float *v,
                              size_t n);

/* Sum of squares of g[0..n) in double: fixed chunks of `chunk` elements
 * reduced into partials (device, n_partials = ceil(n / chunk) doubles),
 * then summed in order. Deterministic. */
dure_status_t optim_dev_sq_norm(const float *g, size_t n, size_t chunk,
                                double *partials, double *host_partials,
                                double *out);

/* Exact mode's norm tiles (common/sumtree.h, tree_sq_tile is the CPU
 * reference): for each of ntiles tiles, val[i] = the tree sum of squares of
 * g[first[i] - base ..][0 .. len[i]), len[i] <= TREE_TILE. first, len, val:
 * device; host_val receives val. */
dure_status_t optim_dev_tree_tiles(const float *g, uint64_t base, const uint64_t *first,
                                   const uint32_t *len, size_t ntiles, double *val,
                                   double *host_val);

#ifdef __cplusplus
}
#endif

#endif
