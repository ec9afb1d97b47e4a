/*
 * device/device.c - the one dispatcher of the device layer: opening a kind
 * from the registry, checking the interface, and every public call with
 * its default where a slot is NULL (see device_impl.h).
 */
#include "device/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/device_impl.h"

struct device {
    const struct device_entry *entry;
    const struct device_i *iface;
    void *ctx;
    int ordinal;
};

/* ---------------------------------------------------------------- the registry */

static const struct device_entry *find_kind(const char *kind)
{
    size_t n = 0;
    const struct device_entry *const *reg = device_registry(&n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(reg[i]->name, kind) == 0) {
            return reg[i];
        }
    }
    return NULL;
}

/* "cpu, cuda": the kinds of this build, for messages. */
static void kind_names(char *buf, size_t cap)
{
    size_t n = 0, at = 0;
    const struct device_entry *const *reg = device_registry(&n);
    buf[0] = '\0';
    for (size_t i = 0; i < n && at < cap; i++) {
        int w = snprintf(buf + at, cap - at, "%s%s", i ? ", " : "", reg[i]->name);
        at += w > 0 ? (size_t)w : 0;
    }
}

static dure_status_t find_or_fail(const char *kind, const struct device_entry **out)
{
    dure_status_t st = DURE_OK;
    char names[128];
    *out = find_kind(kind);
    if (!*out) {
        kind_names(names, sizeof names);
        DURE_FAIL(DURE_ERR_NODEV,
                  "run.device = %s: this dure has no such device (it was built with: %s%s)",
                  kind, names,
                  strcmp(kind, "cuda") == 0 ? "; rebuild with USE_CUDA=yes, or use run.device = cpu" : "");
    }
out:
    return st;
}

/* Count the devices of e; DURE_ERR_NODEV (logged unless quiet) when none
 * can be used. */
static dure_status_t probe(const struct device_entry *e, int *count, int quiet)
{
    dure_status_t st = DURE_OK;
    char why[256] = "";
    *count = 0;
    enum device_probe p = e->usable(count, why, sizeof why);
    if (p != DEVICE_PRESENT || *count < 1) {
        *count = 0;
        st = DURE_ERR_NODEV;
        if (!quiet) {
            dure_log_error(__FILE__, __LINE__,
                           "%s: use run.device = cpu and parallel.backend = mpi, or run on a "
                           "node with a usable %s device",
                           why[0] ? why : "no device is usable", e->name);
        }
    }
    return st;
}

dure_status_t device_kind_count(const char *kind, int *count, int quiet)
{
    dure_status_t st = DURE_OK;
    const struct device_entry *e = NULL;
    *count = 0;
    if (quiet) {
        e = find_kind(kind);
        return e ? probe(e, count, 1) : DURE_ERR_NODEV;
    }
    DURE_TRY(find_or_fail(kind, &e));
    DURE_TRY(probe(e, count, 0));
out:
    return st;
}

void device_kind_versions(const char *kind, struct device_versions *v)
{
    const struct device_entry *e = find_kind(kind);
    memset(v, 0, sizeof *v);
    if (e) {
        v->built = 1;
        if (e->versions) {
            e->versions(v);
        }
    }
}

dure_status_t device_pick(const char *kind, int local_rank, int local_size, int visible,
                          int *ordinal)
{
    dure_status_t st = DURE_OK;
    *ordinal = -1;
    DURE_CHECK(local_size >= 1 && local_rank >= 0 && local_rank < local_size, DURE_ERR_ARG,
               "local rank %d of %d is not a rank of its node", local_rank, local_size);
    DURE_CHECK(local_size <= visible, DURE_ERR_NODEV,
               "%d rank(s) on this node but only %d %s device(s) visible: two ranks would "
               "share a device; start at most %d rank(s) per node (one per device)",
               local_size, visible, kind, visible);
    *ordinal = local_rank;
out:
    return st;
}

static void version_text(char *buf, size_t cap, int v)
{
    snprintf(buf, cap, "%d.%d", v / 1000, (v % 1000) / 10);
}

int device_driver_too_old(const char *what, int driver, int runtime, char *why, size_t cap)
{
    char d[16], r[16];
    if (driver >= runtime) {
        return 0;
    }
    version_text(d, sizeof d, driver);
    version_text(r, sizeof r, runtime);
    snprintf(why, cap,
             "the %s driver supports %s %s, older than the %s %s runtime this dure was "
             "built with: update the driver, or rebuild dure against a %s toolkit of at "
             "most %s (README: CUDA_HOME and NVCC_GENCODE)",
             what, what, d, what, r, what, d);
    return 1;
}

/* A kind with memory of its own must bring every slot that touches it. */
static dure_status_t check_iface(const struct device_entry *e, const struct device_i *f)
{
    dure_status_t st = DURE_OK;
    const struct {
        const char *slot;
        int present;
    } need[] = {
        {"alloc", f->alloc != NULL},
        {"free", f->free != NULL},
        {"destroy", f->destroy != NULL},
        {"copy_to_host", e->host_memory || f->copy_to_host},
        {"copy_from_host", e->host_memory || f->copy_from_host},
        {"zero", e->host_memory || f->zero},
        {"accumulate", e->host_memory || f->accumulate},
        {"adamw", e->host_memory || f->adamw},
        {"sq_norm_partials", e->host_memory || f->sq_norm_partials},
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        DURE_CHECK(need[i].present, DURE_ERR_INTERNAL,
                   "device kind %s has no %s slot, which a kind %s must provide", e->name,
                   need[i].slot,
                   e->host_memory ? "of any memory" : "with memory of its own");
    }
out:
    return st;
}

dure_status_t device_open_entry(const struct device_entry *e, int ordinal, device_t **out)
{
    dure_status_t st = DURE_OK;
    device_t *d = NULL;
    *out = NULL;
    d = calloc(1, sizeof *d);
    DURE_ALLOC_TRY(d, sizeof *d);
    d->entry = e;
    d->ordinal = ordinal;
    DURE_TRY(e->create(ordinal, &d->iface, &d->ctx));
    st = check_iface(e, d->iface);
    if (st != DURE_OK) {
        d->iface->destroy(d->ctx);
        goto out;
    }
    *out = d;
    d = NULL;
out:
    free(d);
    return st;
}

dure_status_t device_open(const char *kind, int local_rank, int local_size, device_t **out)
{
    dure_status_t st = DURE_OK;
    const struct device_entry *e = NULL;
    int count = 1, ordinal = 0;
    *out = NULL;
    if (strcmp(kind, "auto") == 0) {
        size_t n = 0;
        const struct device_entry *const *reg = device_registry(&n);
        for (size_t i = 0; i < n && !e; i++) {
            char why[256] = "";
            if (strcmp(reg[i]->name, "cpu") == 0) {
                continue;
            }
            enum device_probe p = reg[i]->usable(&count, why, sizeof why);
            DURE_CHECK(p != DEVICE_BROKEN, DURE_ERR_NODEV,
                       "run.device = auto: %s devices are present but %s: fix that, or set "
                       "run.device = cpu to train on the CPU",
                       reg[i]->name, why);
            e = p == DEVICE_PRESENT && count > 0 ? reg[i] : NULL;
        }
        if (!e) {
            e = find_kind("cpu");
            count = 1;
        }
    } else {
        DURE_TRY(find_or_fail(kind, &e));
        DURE_TRY(probe(e, &count, 0));
    }
    if (e->exclusive) {
        DURE_TRY(device_pick(e->name, local_rank, local_size, count, &ordinal));
    }
    DURE_TRY(device_open_entry(e, ordinal, out));
out:
    return st;
}

void device_close(device_t *d)
{
    if (!d) {
        return;
    }
    d->iface->destroy(d->ctx);
    free(d);
}

/* ---------------------------------------------------------------- identity */

const char *device_kind(const device_t *d) { return d->entry->name; }
int device_ordinal(const device_t *d) { return d->ordinal; }
const char *device_compute(const device_t *d) { return d->entry->compute; }
const char *device_comm_backend(const device_t *d) { return d->entry->comm; }

void *device_stream(const device_t *d)
{
    return d->iface->stream ? d->iface->stream(d->ctx) : NULL;
}

/* ---------------------------------------------------------------- memory */

dure_status_t device_alloc(device_t *d, size_t bytes, const char *what, void **p)
{
    dure_status_t st = DURE_OK;
    *p = NULL;
    st = d->iface->alloc(d->ctx, bytes, p);
    if (st != DURE_OK) {
        *p = NULL;
        DURE_FAIL(st, "cannot allocate %zu bytes of %s memory for %s%s", bytes,
                  d->entry->name, what,
                  st == DURE_ERR_NOMEM ? ": out of memory" : "");
    }
out:
    return st;
}

void device_free(device_t *d, void *p)
{
    if (p) {
        d->iface->free(d->ctx, p);
    }
}

static dure_status_t allocator_alloc(void *ctx, size_t bytes, void **p)
{
    return device_alloc(ctx, bytes, "a buffer", p);
}

static void allocator_free(void *ctx, void *p) { device_free(ctx, p); }

struct dure_allocator device_allocator(device_t *d)
{
    return (struct dure_allocator){allocator_alloc, allocator_free, d};
}

dure_status_t device_zero(device_t *d, void *p, size_t bytes)
{
    return (d->iface->zero ? d->iface->zero : device_host_zero)(d->ctx, p, bytes);
}

dure_status_t device_copy_to_host(device_t *d, void *host, const void *src, size_t bytes)
{
    if (d->iface->copy_to_host) {
        return d->iface->copy_to_host(d->ctx, host, src, bytes);
    }
    if (bytes && host != src) {
        memcpy(host, src, bytes);
    }
    return DURE_OK;
}

dure_status_t device_copy_from_host(device_t *d, void *dst, const void *host, size_t bytes)
{
    if (d->iface->copy_from_host) {
        return d->iface->copy_from_host(d->ctx, dst, host, bytes);
    }
    if (bytes && dst != host) {
        memcpy(dst, host, bytes);
    }
    return DURE_OK;
}

dure_status_t device_host_view(device_t *d, const void *src, void *stage, size_t bytes,
                               const void **view)
{
    dure_status_t st = DURE_OK;
    *view = src;
    if (!d->entry->host_memory) {
        DURE_TRY(device_copy_to_host(d, stage, src, bytes));
        *view = stage;
    }
out:
    return st;
}

void *device_host_target(device_t *d, void *dst, void *stage)
{
    return d->entry->host_memory ? dst : stage;
}

dure_status_t device_host_commit(device_t *d, void *dst, const void *stage, size_t bytes)
{
    return dst == stage ? DURE_OK : device_copy_from_host(d, dst, stage, bytes);
}

size_t device_host_stage_bytes(const device_t *d, size_t bytes)
{
    return d->entry->host_memory ? 0 : bytes;
}

dure_status_t device_mem_info(device_t *d, int peers, uint64_t *avail, uint64_t *reserve,
                              int *shared)
{
    *avail = 0;
    *reserve = 0;
    *shared = d->entry->host_memory;
    return d->iface->mem_info ? d->iface->mem_info(d->ctx, peers, avail, reserve) : DURE_OK;
}

dure_status_t device_sync(device_t *d)
{
    return d->iface->sync ? d->iface->sync(d->ctx) : DURE_OK;
}

/* ---------------------------------------------------------------- the step's work */

dure_status_t device_accumulate(device_t *d, float *acc, const float *g, size_t n,
                                int first)
{
    if (n == 0) {
        return DURE_OK;
    }
    return (d->iface->accumulate ? d->iface->accumulate : device_host_accumulate)(
        d->ctx, acc, g, n, first);
}

dure_status_t device_adamw(device_t *d, const struct device_adamw *h,
                           const struct device_segment *seg, size_t n_seg, float *p,
                           const float *g, float *m, float *v, size_t n)
{
    if (n == 0) {
        return DURE_OK;
    }
    return (d->iface->adamw ? d->iface->adamw : device_host_adamw)(d->ctx, h, seg, n_seg, p,
                                                                   g, m, v, n);
}

size_t device_sq_norm_chunks(size_t n) { return (n + DEVICE_SQ_CHUNK - 1) / DEVICE_SQ_CHUNK; }

dure_status_t device_sq_norm(device_t *d, const float *g, size_t n, double *partials,
                             double *host_partials, double *sq)
{
    dure_status_t st = DURE_OK;
    size_t k = device_sq_norm_chunks(n);
    double total = 0.0;
    *sq = 0.0;
    if (n == 0) {
        goto out;
    }
    DURE_TRY((d->iface->sq_norm_partials ? d->iface->sq_norm_partials
                                         : device_host_sq_norm_partials)(d->ctx, g, n,
                                                                         partials));
    DURE_TRY(device_copy_to_host(d, host_partials, partials, k * sizeof(double)));
    for (size_t i = 0; i < k; i++) {
        total += host_partials[i];
    }
    *sq = total;
out:
    return st;
}

dure_status_t device_peak_flops(device_t *d, double *flops, char *what, size_t cap)
{
    *flops = 0;
    if (d->iface->peak_flops) {
        return d->iface->peak_flops(d->ctx, flops, what, cap);
    }
    snprintf(what, cap, "%s: peak unknown, MFU reads 0", d->entry->name);
    return DURE_OK;
}
