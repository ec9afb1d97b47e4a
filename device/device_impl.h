/*
 * device/device_impl.h - what a device kind implements (device/README.md).
 * For the files of device/ and for tests that register a device of their
 * own; callers use device/device.h.
 *
 * A kind is one struct device_entry (name, usable, create) in the registry
 * and one struct device_i of function pointers. Optional slots are NULL and
 * the dispatcher (device/device.c) supplies the default, ggml style: for a
 * kind whose memory is host memory (host_memory = 1) the defaults are the
 * host reference loops of device/host.c, so such a kind fills in only its
 * allocator; a kind with memory of its own must fill in the slots marked
 * "required unless host_memory", and device_open refuses it otherwise.
 */
#ifndef DURE_DEVICE_DEVICE_IMPL_H
#define DURE_DEVICE_DEVICE_IMPL_H

#include "device/device.h"

enum device_probe {
    DEVICE_PRESENT,          /* *count >= 1 devices can be used */
    DEVICE_ABSENT,           /* none visible (no driver, no device) */
    DEVICE_BROKEN,           /* present but unusable (a driver too old); why says so */
};

struct device_i {
    /* Required. alloc logs nothing (device_alloc says what failed):
     * DURE_ERR_NOMEM when memory is short. */
    dure_status_t (*alloc)(void *ctx, size_t bytes, void **p);
    void (*free)(void *ctx, void *p);
    void (*destroy)(void *ctx);

    /* Required unless host_memory; default: the host loops. Contracts as
     * in device.h; every one is queued on the device's queue. */
    dure_status_t (*copy_to_host)(void *ctx, void *host, const void *src, size_t bytes);
    dure_status_t (*copy_from_host)(void *ctx, void *dst, const void *host, size_t bytes);
    dure_status_t (*zero)(void *ctx, void *p, size_t bytes);
    dure_status_t (*accumulate)(void *ctx, float *acc, const float *g, size_t n, int first);
    dure_status_t (*adamw)(void *ctx, const struct device_adamw *h,
                           const struct device_segment *seg, size_t n_seg, float *p,
                           const float *g, float *m, float *v, size_t n);
    /* partials[k] = sum of g[i]^2 over chunk k (DEVICE_SQ_CHUNK elements),
     * each chunk in a fixed order; partials in device memory. */
    dure_status_t (*sq_norm_partials)(void *ctx, const float *g, size_t n, double *partials);

    /* Optional. */
    void *(*stream)(void *ctx);                       /* NULL: no queue (NULL) */
    dure_status_t (*sync)(void *ctx);                 /* NULL: nothing queued */
    dure_status_t (*peak_flops)(void *ctx, double *flops, char *what, size_t cap);
                                                      /* NULL: unknown, MFU reads 0 */
    dure_status_t (*mem_info)(void *ctx, int peers, uint64_t *avail, uint64_t *reserve);
                                                      /* NULL: unknown (0, 0) */
};

struct device_entry {
    const char *name;        /* the run.device value */
    const char *compute;     /* the model compute backend it runs (model/backend.h) */
    const char *comm;        /* the collectives backend that reaches its memory */
    int host_memory;         /* 1: alloc returns host memory, shared by the node's ranks */
    int exclusive;           /* 1: one rank per device (device_pick) */
    /* How many devices of this kind can be used; why (capacity cap) says
     * what is missing when not DEVICE_PRESENT. Logs nothing. */
    enum device_probe (*usable)(int *count, char *why, size_t cap);
    /* Create device `ordinal` and make it the calling thread's current one.
     * On failure free what was made and log why. */
    dure_status_t (*create)(int ordinal, const struct device_i **iface, void **ctx);
    /* Optional: versions for --version and the manifest. */
    void (*versions)(struct device_versions *v);
};

/* The kinds in this build, in registry order (cpu first); *n their number. */
const struct device_entry *const *device_registry(size_t *n);

/* Open device `ordinal` of kind `e`, which need not be in the registry
 * (tests use this for a device of their own). Checks that e's interface
 * has every slot its memory requires. */
dure_status_t device_open_entry(const struct device_entry *e, int ordinal, device_t **out);

/* The host reference loops: the defaults for host_memory kinds and the
 * references every other kind's kernels are tested against (device/host.c).
 * ctx is unused. */
dure_status_t device_host_zero(void *ctx, void *p, size_t bytes);
dure_status_t device_host_accumulate(void *ctx, float *acc, const float *g, size_t n,
                                     int first);
dure_status_t device_host_adamw(void *ctx, const struct device_adamw *h,
                                const struct device_segment *seg, size_t n_seg, float *p,
                                const float *g, float *m, float *v, size_t n);
dure_status_t device_host_sq_norm_partials(void *ctx, const float *g, size_t n,
                                           double *partials);

#endif
