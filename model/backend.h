/*
 * model/backend.h - what a compute backend (cpu, cuda) implements, and the
 * model handle they share. Internal to model/.
 *
 * model.c validates the configuration, computes the layout and activation
 * plan, and dispatches to the backend chosen by cfg.device. Optional slots
 * may be NULL; model.c supplies the default (ggml style).
 */
#ifndef DURE_MODEL_BACKEND_H
#define DURE_MODEL_BACKEND_H

#include "model/acts.h"
#include "model/layout.h"
#include "model/model.h"

struct model_backend_i {
    const char *name;
    enum model_mem mem;
    /* Allocate params, grads (initialised from the layout's init, grads
     * zero) and the activations of m->plan; set m->params, m->grads and
     * m->ctx. On failure free what was allocated. */
    dure_status_t (*init)(model_t *m);
    /* Free what init allocated; m->ctx may be NULL after a failed init. */
    void (*fini)(model_t *m);
    /* Forward on a host batch, then (backward != 0) backward accumulating
     * into m->grads, calling model_grad_ready() as ranges finish. */
    dure_status_t (*step)(model_t *m, const float *batch, int backward, float *loss);
    dure_status_t (*zero_grad)(model_t *m);
    /* NULL: nothing to refresh. */
    dure_status_t (*params_changed)(model_t *m);
    /* Copy count floats between the backend's memory and the host. NULL:
     * memcpy. */
    dure_status_t (*copy)(model_t *m, void *dst, const void *src, size_t bytes,
                          int to_host);
    /* NULL: no stream. */
    void *(*stream)(model_t *m);
};

struct model {
    struct model_config cfg;
    struct model_layout lay;
    struct model_act_plan plan;
    struct model_tensor *tensors;  /* (lay.n_tensors) */
    float *params;                 /* (lay.total) in iface->mem memory */
    float *grads;                  /* (lay.total) in iface->mem memory */
    const struct model_backend_i *iface;
    void *ctx;                     /* backend state */
    model_grad_ready_fn ready_fn;
    void *ready_ctx;
};

extern const struct model_backend_i model_cpu_backend;

/* The cuda backend after checking that a GPU is usable; DURE_ERR_NODEV or
 * DURE_ERR_UNSUPPORTED (a build without CUDA) with one clear message. */
dure_status_t model_cuda_backend(const struct model_backend_i **out);

/* Report [offset, offset + count) final to the installed hook, if any. */
dure_status_t model_grad_ready(model_t *m, uint64_t offset, uint64_t count);

#endif
