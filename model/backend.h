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
     * initialised, grads zero) and the activations m->act (m->plan). On
     * failure free what it made. */
    dure_status_t (*init)(model_t *m);
    /* Free what init made; m->ctx may be NULL after a failed init. */
    void (*fini)(model_t *m);
    /* Forward on a host batch, then (backward != 0) backward accumulating
     * into m->grads, calling model_grad_ready() as ranges finish. */
    dure_status_t (*step)(model_t *m, const float *batch, int backward, float *loss);
    /* NULL: nothing to refresh. */
    dure_status_t (*params_changed)(model_t *m);
};

struct model {
    struct model_config cfg;
    struct model_layout lay;
    struct model_act_plan plan;
    struct model_tensor *tensors;  /* (lay.n_tensors) */
    size_t *offsets;               /* (lay.n_tensors + 1) tensor boundaries */
    device_t *dev;                 /* borrowed */
    struct dure_allocator state;   /* params and grads came from it */
    float *params;                 /* (lay.total) device memory */
    float *grads;                  /* (lay.total) device memory */
    void *act;                     /* (plan.total_bytes) device memory */
    const struct model_backend_i *iface;
    void *ctx;                     /* backend state */
    model_grad_ready_fn ready_fn;
    void *ready_ctx;
};

/* The backend named `compute`; DURE_ERR_UNSUPPORTED naming it when this
 * build has none. */
dure_status_t model_backend_find(const char *compute, const struct model_backend_i **out);

/* Report [offset, offset + count) final to the installed hook, if any. */
dure_status_t model_grad_ready(model_t *m, uint64_t offset, uint64_t count);

#endif
