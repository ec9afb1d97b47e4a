/*
 * device/host.c - the host reference loops of the device calls: the
 * defaults for kinds whose memory is host memory (device/cpu.c), and the
 * references that other kinds' kernels are tested against. OpenMP splits
 * each loop statically over the calling thread's team; no loop's result
 * depends on the thread count.
 */
#include <math.h>
#include <string.h>

#include "device/device_impl.h"

dure_status_t device_host_zero(void *ctx, void *p, size_t bytes)
{
    (void)ctx;
    unsigned char *b = p;
    size_t page = 4096, pages = (bytes + page - 1) / page;
    /* Parallel first touch: pages land near the threads that use them. */
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < pages; i++) {
        size_t at = i * page;
        memset(b + at, 0, bytes - at < page ? bytes - at : page);
    }
    return DURE_OK;
}

dure_status_t device_host_accumulate(void *ctx, float *acc, const float *g, size_t n,
                                     int first)
{
    (void)ctx;
    if (first) {
        memcpy(acc, g, n * sizeof *acc);
        return DURE_OK;
    }
    #pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        acc[i] += g[i];
    }
    return DURE_OK;
}

dure_status_t device_host_adamw(void *ctx, const struct device_adamw *h,
                                const struct device_segment *seg, size_t n_seg, float *p,
                                const float *g, float *m, float *v, size_t n)
{
    (void)ctx;
    (void)n;
    for (size_t s = 0; s < n_seg; s++) {
        const float wd = seg[s].decay ? h->weight_decay : 0.0f;
        const size_t b = seg[s].begin, e = seg[s].end;
        #pragma omp parallel for simd schedule(static)
        for (size_t i = b; i < e; i++) {
            float gi = g[i] * h->grad_scale;
            float mi = h->beta1 * m[i] + (1.0f - h->beta1) * gi;
            float vi = h->beta2 * v[i] + (1.0f - h->beta2) * gi * gi;
            m[i] = mi;
            v[i] = vi;
            float mh = mi / h->bc1, vh = vi / h->bc2;
            p[i] -= h->lr * (mh / (sqrtf(vh) + h->eps) + wd * p[i]);
        }
    }
    return DURE_OK;
}

dure_status_t device_host_sq_norm_partials(void *ctx, const float *g, size_t n,
                                           double *partials)
{
    (void)ctx;
    size_t chunks = device_sq_norm_chunks(n);
    #pragma omp parallel for schedule(static)
    for (size_t c = 0; c < chunks; c++) {
        size_t b = c * DEVICE_SQ_CHUNK;
        size_t e = b + DEVICE_SQ_CHUNK < n ? b + DEVICE_SQ_CHUNK : n;
        double s = 0.0;
        for (size_t i = b; i < e; i++) {
            s += (double)g[i] * g[i];
        }
        partials[c] = s;
    }
    return DURE_OK;
}
