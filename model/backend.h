/*
 * model/backend.h - what a compute backend (cpu, cuda) implements, and the
 * model handle they share. Internal to model/.
 *
 * A backend is the model's forward and backward on one kind of device: the
 * kernels are the model's own, so they live here, not in device/. The
 * device names its backend (device_compute); model.c finds it in the
 * registry below, validates the configuration, computes the layout and
 * activation plan, and dispatches. Memory, the queue, zeroing and copies
 * go through the device (device/device.h). Optional slots may be NULL;
 * model.c supplies the default (ggml style).
 */
#ifndef DURE_MODEL_BACKEND_H
#define DURE_MODEL_BACKEND_H

#include "model/acts.h"
#include "model/layout.h"
#include "model/model.h"

struct model_backend_i {
    const char *name;              /* device_compute() of the devices it runs on */
    int bf16;                      /* 1: bf16 compute copy and activations (acts.h) */
    /* Set up m->ctx after model.c allocated m->params, m->grads (params
     * initialised, grads zero; either NULL when lent) and the activations
     * m->act (m->plan). On failure free what it made. */
    dure_status_t (*init)(model_t *m);
    /* Free what init made; m->ctx may be NULL after a failed init. */
    void (*fini)(model_t *m);
    /* Forward on a host batch (and its host mask (B, C) when the model is
     * masked, else NULL), then (backward != 0) backward, unit by unit
     * through model_unit_params / _grads / _grads_done below; the row
     * losses go to model_window_losses_set. */
    dure_status_t (*step)(model_t *m, const float *batch, const float *mask, int backward,
                          float *loss);
    /* NULL: nothing to refresh. Not called when the parameters are lent. */
    dure_status_t (*params_changed)(model_t *m);
    /* The model's own parameters in the compute dtype (the bf16 copy);
     * NULL: m->params itself. */
    const void *(*compute_params)(model_t *m);
    /* dst (count, compute dtype) = src (count, fp32), queued; NULL: the
     * compute dtype is fp32 and a device copy does. */
    dure_status_t (*to_compute)(model_t *m, void *dst, const float *src, size_t count);
};

struct model {
    struct model_config cfg;
    struct model_layout lay;
    struct model_act_plan plan;
    struct model_tensor *tensors;  /* (lay.n_tensors) */
    size_t *offsets;               /* (lay.n_tensors + 1) tensor boundaries */
    device_t *dev;                 /* borrowed */
    struct dure_allocator state;   /* params and grads came from it */
    float *params;                 /* (lay.total) device memory; NULL when lent */
    float *grads;                  /* (lay.total) device memory; NULL when lent */
    size_t *units;                 /* (n_layers + 3) unit bounds (model_unit_bounds) */
    int n_units;                   /* U = n_layers + 2 */
    struct model_unit_source src;  /* the lender's slots; params/grads NULL: the model's own */
    void *act;                     /* (plan.total_bytes) device memory */
    const struct model_backend_i *iface;
    void *ctx;                     /* backend state */
    model_grad_ready_fn ready_fn;
    void *ready_ctx;
    int ready_unit;                /* unit whose upper part the hook has had (-1: none) */
    size_t ready_lo;               /* ... from this flat offset to the unit's end */
    float *window_loss;            /* (micro_batch) host: model_window_losses */
};

/* Set the window losses (model_window_losses) from the forward's per-row
 * loss sums row_loss (B * N, host) and the batch's mask (NULL: none). */
void model_window_losses_set(model_t *m, const float *row_loss, const float *mask);

/* The backend named `compute`; DURE_ERR_UNSUPPORTED naming it when this
 * build has none. */
dure_status_t model_backend_find(const char *compute, const struct model_backend_i **out);

/*
 * What the backends call around each unit (see model_unit_source in
 * model.h): the lender's slots, or the model's own buffers (params:
 * compute_params or m->params at the unit's offset; grads: m->grads there;
 * grads_done: the gradient-ready hook with the unit's range, less what
 * model_block_grads_done_from already reported).
 */
dure_status_t model_units_begin(model_t *m, int backward);
dure_status_t model_unit_params(model_t *m, int unit, enum model_pass pass, const void **p);
dure_status_t model_unit_params_done(model_t *m, int unit, enum model_pass pass);
dure_status_t model_unit_grads(model_t *m, int unit, float **g);
dure_status_t model_unit_grads_done(model_t *m, int unit);

/* Block l's gradients from tensor k up to what the block has already
 * reported (its end, at first) are final: the hook gets that range now,
 * and model_unit_grads_done(1 + l) the rest of the unit. The backends call
 * it in descending k as the block's backward finishes each weight
 * gradient: LT_LN2_W after the MLP branch, LT_PROJ_W after proj's matmul,
 * LT_QKV_W after qkv's (model_grad_tail_cuts names the same three). No-op
 * for a lender's slots (ZeRO 3 takes the unit whole) or without a hook. */
dure_status_t model_block_grads_done_from(model_t *m, int l, enum model_layer_tensor k);

#endif
