/*
 * device/cuda_kernels.h - the CUDA kernels of the device calls (see
 * device.h for what each computes; device/host.c holds the references they
 * are tested against). Included from device/cuda.c and implemented in
 * device/cuda_kernels.cu. Every launcher enqueues on `stream` and returns
 * cudaGetLastError(); none synchronises. No atomics: the results repeat
 * bit for bit.
 */
#ifndef DURE_DEVICE_CUDA_KERNELS_H
#define DURE_DEVICE_CUDA_KERNELS_H

#include <cuda_runtime.h>
#include <stddef.h>

#include "device/device.h"

#ifdef __cplusplus
extern "C" {
#endif

cudaError_t dcu_accumulate(float *acc, const float *g, size_t n, int first,
                           cudaStream_t stream);

/* One launch for the whole slice; seg (n_seg, device memory) tiles [0, n). */
cudaError_t dcu_adamw(const struct device_adamw *h, const struct device_segment *seg,
                      size_t n_seg, float *p, const float *g, float *m, float *v, size_t n,
                      cudaStream_t stream);

/* partials[k] = sum of squares of g over chunk k of DEVICE_SQ_CHUNK, one
 * block per chunk, a fixed tree in shared memory. */
cudaError_t dcu_sq_norm_partials(const float *g, size_t n, double *partials,
                                 cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
