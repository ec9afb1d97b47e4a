// device/cuda_kernels.cu - the CUDA kernels of the device calls (see
// cuda_kernels.h). The arithmetic is device/host.c's, element for element.
#include <cuda_runtime.h>

// dure's C headers have no C++ guards: give them C linkage here, after the
// CUDA headers (their include guards then keep them out of this block).
extern "C" {
#include "device/cuda_kernels.h"
}

namespace {

constexpr int kThreads = 256;
constexpr size_t kMaxBlocks = 1u << 16;

unsigned grid_for(size_t n)
{
    size_t g = (n + kThreads - 1) / kThreads;
    return (unsigned)(g < kMaxBlocks ? (g ? g : 1) : kMaxBlocks);
}

__global__ void accumulate(float *acc, const float *g, size_t n, int first)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        acc[i] = first ? g[i] : acc[i] + g[i];
    }
}

// The segment holding element i: a binary search once per thread, then a
// walk forward as the thread's elements increase.
__device__ size_t segment_of(const struct device_segment *seg, size_t n_seg, size_t i)
{
    size_t lo = 0, hi = n_seg;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (seg[mid].begin <= i) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

__global__ void adamw(struct device_adamw h, const struct device_segment *seg, size_t n_seg, float *p,
                      const float *g, float *m, float *v, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    size_t s = segment_of(seg, n_seg, i);
    for (; i < n; i += (size_t)gridDim.x * blockDim.x) {
        while (seg[s].end <= i) {
            s++;
        }
        const float wd = seg[s].decay ? h.weight_decay : 0.0f;
        float gi = g[i] * h.grad_scale;
        float mi = h.beta1 * m[i] + (1.0f - h.beta1) * gi;
        float vi = h.beta2 * v[i] + (1.0f - h.beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float mh = mi / h.bc1, vh = vi / h.bc2;
        p[i] -= h.lr * (mh / (sqrtf(vh) + h.eps) + wd * p[i]);
    }
}

__global__ void sq_chunks(double *partials, const float *g, size_t n)
{
    __shared__ double sh[kThreads];
    size_t b = blockIdx.x * DEVICE_SQ_CHUNK;
    size_t e = b + DEVICE_SQ_CHUNK < n ? b + DEVICE_SQ_CHUNK : n;
    double s = 0.0;
    for (size_t i = b + threadIdx.x; i < e; i += blockDim.x) {
        s += (double)g[i] * (double)g[i];
    }
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int w = kThreads / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w) {
            sh[threadIdx.x] += sh[threadIdx.x + w];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        partials[blockIdx.x] = sh[0];
    }
}

} // namespace

extern "C" {

cudaError_t dcu_accumulate(float *acc, const float *g, size_t n, int first,
                           cudaStream_t stream)
{
    accumulate<<<grid_for(n), kThreads, 0, stream>>>(acc, g, n, first);
    return cudaGetLastError();
}

cudaError_t dcu_adamw(const struct device_adamw *h, const struct device_segment *seg,
                      size_t n_seg, float *p, const float *g, float *m, float *v, size_t n,
                      cudaStream_t stream)
{
    adamw<<<grid_for(n), kThreads, 0, stream>>>(*h, seg, n_seg, p, g, m, v, n);
    return cudaGetLastError();
}

cudaError_t dcu_sq_norm_partials(const float *g, size_t n, double *partials,
                                 cudaStream_t stream)
{
    size_t chunks = (n + DEVICE_SQ_CHUNK - 1) / DEVICE_SQ_CHUNK;
    sq_chunks<<<(unsigned)chunks, kThreads, 0, stream>>>(partials, g, n);
    return cudaGetLastError();
}

} // extern "C"
