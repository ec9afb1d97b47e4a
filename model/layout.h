/*
 * model/layout.h - where each tensor sits in the flat parameter vector, and
 * the sizes the backends allocate. Internal to model/ (and its tests).
 */
#ifndef DURE_MODEL_LAYOUT_H
#define DURE_MODEL_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "model/model.h"

/* The tensors of one block, in flat-vector order. */
enum model_layer_tensor {
    LT_LN1_W = 0, /* (D) */
    LT_LN1_B,     /* (D) */
    LT_QKV_W,     /* (3D, D) rows: q heads, then k heads, then v heads */
    LT_QKV_B,     /* (3D) */
    LT_PROJ_W,    /* (D, D) */
    LT_PROJ_B,    /* (D) */
    LT_LN2_W,     /* (D) */
    LT_LN2_B,     /* (D) */
    LT_FC_W,      /* (4D, D) */
    LT_FC_B,      /* (4D) */
    LT_FCP_W,     /* (D, 4D) */
    LT_FCP_B,     /* (D) */
    LT_COUNT
};

/* Element offsets into the flat vector. Block l's tensor k starts at
 * layer0 + l * layer_stride + in_layer[k]. */
struct model_layout {
    uint64_t embed_w;            /* (D, PCI): PCI = model_token_inputs */
    uint64_t embed_b;            /* (D) */
    uint64_t pos;                /* (N, D) */
    uint64_t layer0;
    uint64_t layer_stride;       /* elements of one block */
    uint64_t in_layer[LT_COUNT];
    uint64_t lnf_w;              /* (D) */
    uint64_t lnf_b;              /* (D) */
    uint64_t head_w;             /* (PC, D) */
    uint64_t head_b;             /* (PC) */
    uint64_t total;              /* parameter count */
    size_t n_tensors;            /* 3 + 12 L + 4 */
};

/* Offsets for cfg (sizes taken as given, all > 0). DURE_ERR_NOMEM naming
 * the sizes when a count overflows 64 bits. */
dure_status_t model_layout_compute(const struct model_config *cfg,
                                   struct model_layout *lay);

/* Fill tensors[0..lay->n_tensors) in flat-vector order. */
void model_layout_tensors(const struct model_config *cfg,
                          const struct model_layout *lay,
                          struct model_tensor *tensors);

/* The boundaries of tensors[0 .. lay->n_tensors) as model_layout_tensors
 * fills them: offsets[0 .. n_tensors], the last the parameter count
 * (model_tensor_offsets' form). */
void model_layout_offsets(const struct model_layout *lay, const struct model_tensor *tensors,
                          size_t *offsets);

/* Offset of block l's tensor k. */
uint64_t model_layout_at(const struct model_layout *lay, int l,
                         enum model_layer_tensor k);

/* Block 0's tensors where the gradient-ready hook's last ranges begin, in
 * flat-vector order (model_grad_tail_cuts; the backends report at each). */
extern const enum model_layer_tensor model_tail_cut_tensors[MODEL_TAIL_CUTS];

/* Their offsets, ascending (model_grad_tail_cuts' form): returns
 * MODEL_TAIL_CUTS. */
int model_layout_tail_cuts(const struct model_layout *lay, size_t cuts[MODEL_TAIL_CUTS]);

/*
 * Parameter initialisation, identical on every device and thread count:
 * element i of the flat vector is a function of (seed, i) only. Weight
 * matrices ~ N(0, init_std) (fc_proj_w and proj_w scaled by 1/sqrt(2L)), pos
 * ~ N(0, init_std), LayerNorm weights 1, biases 0. Writes elements
 * [offset, offset + count) into dst[0..count).
 */
void model_layout_init_range(const struct model_config *cfg,
                             const struct model_layout *lay,
                             uint64_t offset, uint64_t count, float *dst);

#endif
