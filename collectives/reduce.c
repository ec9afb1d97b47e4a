/* collectives/reduce.c - see reduce.h. */
#include "collectives/reduce.h"

/* Aliasing between dst and a source is element-for-element only, so each
 * iteration reads its inputs before it writes: vectorising is safe, which
 * the simd pragmas assert (restrict would be a lie for in-place calls). */

void comm_reduce2_f32(float *dst, const float *a, const float *b, size_t n, int divisor)
{
    if (divisor > 1) {
        const float d = (float)divisor;
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            dst[i] = (a[i] + b[i]) / d;
        }
        return;
    }
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        dst[i] = a[i] + b[i];
    }
}

static void reduce2_twice(float *dst, float *dst2, const float *a, const float *b, size_t n,
                          int divisor)
{
    const float d = divisor > 1 ? (float)divisor : 1.0f;
    if (divisor > 1) {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float v = (a[i] + b[i]) / d;
            dst[i] = v;
            dst2[i] = v;
        }
        return;
    }
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float v = a[i] + b[i];
        dst[i] = v;
        dst2[i] = v;
    }
}

void comm_reduce_f32(float *dst, float *dst2, const float *const *src, int nsrc, size_t n,
                     int divisor)
{
    if (nsrc == 1) {
        const float *s = src[0];
        const float d = divisor > 1 ? (float)divisor : 1.0f;
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float v = divisor > 1 ? s[i] / d : s[i];
            dst[i] = v;
            if (dst2) {
                dst2[i] = v;
            }
        }
        return;
    }
    if (nsrc == 2) {
        if (dst2) {
            reduce2_twice(dst, dst2, src[0], src[1], n, divisor);
        } else {
            comm_reduce2_f32(dst, src[0], src[1], n, divisor);
        }
        return;
    }
    /* More sources: blocks small enough to stay in L1 while the partial sum
     * accumulates, so each source is read once and dst written once. */
    enum { BLOCK = 2048 };
    const float d = divisor > 1 ? (float)divisor : 1.0f;
    float acc[BLOCK];
    for (size_t base = 0; base < n; base += BLOCK) {
        size_t m = n - base < BLOCK ? n - base : BLOCK;
        const float *s0 = src[0] + base, *s1 = src[1] + base;
#pragma omp simd
        for (size_t i = 0; i < m; i++) {
            acc[i] = s0[i] + s1[i];
        }
        for (int k = 2; k < nsrc; k++) {
            const float *sk = src[k] + base;
#pragma omp simd
            for (size_t i = 0; i < m; i++) {
                acc[i] += sk[i];
            }
        }
        if (divisor > 1) {
#pragma omp simd
            for (size_t i = 0; i < m; i++) {
                acc[i] /= d;
            }
        }
        for (size_t i = 0; i < m; i++) {
            dst[base + i] = acc[i];
        }
        if (dst2) {
            for (size_t i = 0; i < m; i++) {
                dst2[base + i] = acc[i];
            }
        }
    }
}
