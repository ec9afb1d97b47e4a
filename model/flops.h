/*
 * model/flops.h - parameter count, FLOPs and memory of a model configuration,
 * computed from the configuration alone (no model needs to exist), so that
 * `dure run` can print them at start and compute MFU.
 */
#ifndef DURE_MODEL_FLOPS_H
#define DURE_MODEL_FLOPS_H

#include <stdint.h>
#include <stdio.h>

#include "common/status.h"
#include "model/model.h"

/*
 * FLOPs of one training step (forward + backward) on one micro-batch, by the
 * PaLM convention used for MFU: per token, 6 * params (2 forward, 4
 * backward) plus the attention term 12 * L * N * D (QK^T and AV, forward and
 * backward, without halving for the causal mask).
 */
struct model_flops {
    uint64_t params;          /* parameter count N (all tensors) */
    double per_token;         /* 6 * params + 12 * L * N * D */
    double per_timestep;      /* per_token / patch_len */
    double per_micro_batch;   /* per_token * micro_batch * context_patches */
    double forward_per_token; /* 2 * params + 4 * L * N * D (validation) */
};

/* Fill f for cfg (cfg need not be validated; sizes are taken as given). */
void model_flops_compute(const struct model_config *cfg, struct model_flops *f);

/*
 * Bytes the model will allocate on a device whose compute backend is
 * `compute` (device_compute: "cpu", "cuda"), by component. On cuda,
 * compute_params is the bf16 copy and activations are bf16 with fp32
 * LayerNorm statistics; on cpu compute_params is 0 (the fp32 params are
 * used directly). optimizer is AdamW's two fp32 moments for the full vector
 * (divide by the ZeRO shard count when sharded; the optimizer allocates them,
 * not the model).
 */
struct model_memory {
    uint64_t params;          /* fp32 parameters (master weights on cuda) */
    uint64_t grads;           /* fp32 gradients */
    uint64_t compute_params;  /* bf16 compute copy (cuda) */
    uint64_t activations;     /* saved forward activations for micro_batch */
    uint64_t workspace;       /* activation gradients and scratch */
    uint64_t optimizer;       /* AdamW m and v, unsharded */
    uint64_t total;           /* sum of all the above */
};

/*
 * Fill mem for cfg. DURE_ERR_NOMEM (with the key values in the message) when
 * a count overflows 64 bits; DURE_ERR_UNSUPPORTED when this build has no
 * backend `compute`; cfg must otherwise be valid.
 */
dure_status_t model_memory_estimate(const struct model_config *cfg, const char *compute,
                                    struct model_memory *mem);

/* Print parameter count, FLOPs per step and memory by component on the
 * compute backend `compute`, a few lines prefixed "model: ", to out. */
void model_print_summary(const struct model_config *cfg, const char *compute, FILE *out);

#endif
