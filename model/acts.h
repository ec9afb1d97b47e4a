/*
 * model/acts.h - the activation buffers of one forward/backward, sized for
 * the configured micro-batch. One table per device says every buffer's
 * element count and element size; model.c makes the single activation
 * allocation and the backends carve their buffers from it and model/flops.c reports its total, so the
 * printed memory is what is allocated. Internal to model/.
 *
 * Shapes use B = micro_batch, N = context_patches, BN = B * N, D = d_model,
 * H = n_heads, hs = D / H, PC = patch_len * channels, L = n_layers,
 * T = (N + 1) * patch_len, C = channels, PCI = model_token_inputs (PC, or
 * PC + C for a masked model).
 */
#ifndef DURE_MODEL_ACTS_H
#define DURE_MODEL_ACTS_H

#include <stdint.h>

#include "common/status.h"
#include "model/model.h"

/* Row chunks of the cuda column reductions (bias and LayerNorm weight
 * gradients): fixed, so the summation order is too. */
#define MODEL_COLSUM_CHUNKS 64

enum model_act {
    /* saved by the forward for the backward */
    ACT_INP = 0,     /* (BN, PCI)     token inputs: patches (and masks) */
    ACT_TGT,         /* (BN, PC)      target patches (fp32 on cuda) */
    ACT_ENC,         /* (BN, D)       embeddings = block 0's input */
    ACT_LN1,         /* (L, BN, D) */
    ACT_LN1_MEAN,    /* (L, BN)       fp32 */
    ACT_LN1_RSTD,    /* (L, BN)       fp32 */
    ACT_QKV,         /* (L, BN, 3D) */
    ACT_ATT,         /* (L, B, H, N, N) softmax probabilities */
    ACT_ATTY,        /* (L, BN, D)    attention output before proj */
    ACT_RES2,        /* (L, BN, D)    residual after attention */
    ACT_LN2,         /* (L, BN, D) */
    ACT_LN2_MEAN,    /* (L, BN)       fp32 */
    ACT_LN2_RSTD,    /* (L, BN)       fp32 */
    ACT_FCH,         /* (L, BN, 4D)   MLP pre-activation */
    ACT_FCH_GELU,    /* (L, BN, 4D) */
    ACT_RES3,        /* (L, BN, D)    block output */
    ACT_LNF,         /* (BN, D) */
    ACT_LNF_MEAN,    /* (BN)          fp32 */
    ACT_LNF_RSTD,    /* (BN)          fp32 */
    ACT_PRED,        /* (BN, PC)      fp32 */
    /* scratch of the backward, reused by every block */
    ACT_DRES,        /* (BN, D)       gradient of the residual stream, fp32 everywhere */
    ACT_DSMALL,      /* (BN, D) */
    ACT_DBIG,        /* (BN, 4D)      also holds (BN, 3D) */
    ACT_DATT,        /* (B, H, N, N)  scores and dP (fp32 on cuda) */
    ACT_DPRED,       /* (BN, PC) */
    ACT_LOSS,        /* (BN)          fp32 per-row loss sums */
    /* cuda only */
    ACT_BATCH,       /* (B, T, C)     fp32 upload of the host batch */
    ACT_Q,           /* (B, H, N, hs) permuted q, then dq */
    ACT_K,           /* (B, H, N, hs) permuted k, then dk */
    ACT_V,           /* (B, H, N, hs) permuted v, then dv */
    ACT_Y,           /* (B, H, N, hs) attention output before un-permute */
    ACT_MASK,        /* (B, C)        fp32 upload of the host mask (masked only) */
    ACT_PARTIAL,     /* (MODEL_COLSUM_CHUNKS, max(4D, PC)) fp32 column partials */
    ACT_DRES_BF16,   /* (BN, D)       bf16 copy of ACT_DRES for the GEMMs */
    ACT_COUNT
};

struct model_act_plan {
    uint64_t count[ACT_COUNT];     /* elements; 0 = not used on this device */
    unsigned elem_bytes[ACT_COUNT];
    int scratch[ACT_COUNT];        /* 1: backward scratch, 0: saved */
    uint64_t offset[ACT_COUNT];    /* bytes into the allocation, 256-aligned */
    uint64_t saved_bytes;          /* sum over saved buffers (with alignment) */
    uint64_t scratch_bytes;        /* sum over scratch buffers */
    uint64_t total_bytes;          /* the one allocation */
};

/* Plan the buffers of cfg for a float32 backend (bf16 = 0, cpu) or a bf16
 * one (bf16 = 1, cuda). DURE_ERR_NOMEM naming the sizes when a byte count
 * overflows 64 bits. */
dure_status_t model_act_plan_compute(const struct model_config *cfg, int bf16,
                                     struct model_act_plan *plan);

#endif
