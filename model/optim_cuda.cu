// model/optim_cuda.cu - AdamW and the squared gradient norm on the GPU (see
// optim_dev.h). The arithmetic is optim.c's adamw_host, element for element.
#include <cuda_runtime.h>

// common/status.h has no C++ guard: give its declarations C linkage here,
// before cuda_check.h includes it again (then skipped by its include guard).
extern "C" {
#include "common/status.h"
}
#include "common/cuda_check.h"
#include "common/sumtree.h"
#include "model/optim_dev.h"

namespace {

constexpr int kThreads = 256;

__global__ void adamw(optim_dev_step s, float wd, float *p, const float *g, float *m,
                      float *v, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float gi = g[i] * s.grad_scale;
        float mi = s.beta1 * m[i] + (1.0f - s.beta1) * gi;
        float vi = s.beta2 * v[i] + (1.0f - s.beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float mh = mi / s.bc1, vh = vi / s.bc2;
        p[i] -= s.lr * (mh / (sqrtf(vh) + s.eps) + wd * p[i]);
    }
}

// One block per chunk: threads stride through it, then a fixed tree in
// shared memory. partials[k] = sum of squares of chunk k.
__global__ void sq_chunks(double *partials, const float *g, size_t n, size_t chunk)
{
    __shared__ double sh[kThreads];
    size_t b = blockIdx.x * chunk, e = b + chunk < n ? b + chunk : n;
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

// Exact mode's norm: one block per tile (at most TREE_TILE elements): the
// squares in double, adjacent pairs added level by level, an odd last value
// passed up alone: common/sumtree.c's tree_sq_tile, add for add. The two
// shared buffers alternate so that no thread reads what another writes.
__global__ void tree_tiles(double *val, const float *g, uint64_t base, const uint64_t *first,
                           const uint32_t *len)
{
    __shared__ double t[2][TREE_TILE / 2];
    const float *x = g + (first[blockIdx.x] - base);
    const uint32_t n = len[blockIdx.x];
    uint32_t m = n / 2;
    for (uint32_t j = threadIdx.x; j < m; j += blockDim.x) {
        double a = x[2 * j], b = x[2 * j + 1];
        t[0][j] = a * a + b * b; // both squares exact: contraction changes nothing
    }
    if (threadIdx.x == 0 && n % 2) {
        double a = x[n - 1];
        t[0][m] = a * a;
    }
    m += n % 2;
    int cur = 0;
    __syncthreads();
    while (m > 1) {
        const uint32_t h = m / 2;
        for (uint32_t j = threadIdx.x; j < h; j += blockDim.x) {
            t[1 - cur][j] = t[cur][2 * j] + t[cur][2 * j + 1];
        }
        if (threadIdx.x == 0 && m % 2) {
            t[1 - cur][h] = t[cur][m - 1];
        }
        __syncthreads();
        cur = 1 - cur;
        m = h + m % 2;
    }
    if (threadIdx.x == 0) {
        val[blockIdx.x] = t[cur][0];
    }
}

} // namespace

extern "C" {

dure_status_t optim_dev_alloc(void **ptr, size_t bytes)
{
    dure_status_t st = DURE_OK;
    *ptr = NULL;
    DURE_CUDA_TRY(cudaMalloc(ptr, bytes));
    DURE_CUDA_TRY(cudaMemset(*ptr, 0, bytes));
out:
    if (st != DURE_OK && *ptr) {
        (void)cudaFree(*ptr);
        *ptr = NULL;
    }
    return st;
}

void optim_dev_free(void *ptr)
{
    (void)cudaFree(ptr);
}

dure_status_t optim_dev_copy(void *dst, const void *src, size_t bytes, int to_host)
{
    dure_status_t st = DURE_OK;
    DURE_CUDA_TRY(cudaMemcpy(dst, src, bytes,
                             to_host ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice));
out:
    return st;
}

dure_status_t optim_dev_adamw(const struct optim_dev_step *s, float weight_decay,
                              float *params, const float *grads, float *m, float *v,
                              size_t n)
{
    dure_status_t st = DURE_OK;
    size_t blocks = (n + kThreads - 1) / kThreads;
    blocks = blocks < (1u << 20) ? blocks : (1u << 20);
    adamw<<<(unsigned)blocks, kThreads>>>(*s, weight_decay, params, grads, m, v, n);
    DURE_CUDA_TRY(cudaGetLastError());
    DURE_CUDA_TRY(cudaStreamSynchronize(0));
out:
    return st;
}

dure_status_t optim_dev_sq_norm(const float *g, size_t n, size_t chunk, double *partials,
                                double *host_partials, double *out)
{
    dure_status_t st = DURE_OK;
    size_t nchunks = (n + chunk - 1) / chunk;
    double total = 0.0;
    sq_chunks<<<(unsigned)nchunks, kThreads>>>(partials, g, n, chunk);
    DURE_CUDA_TRY(cudaGetLastError());
    DURE_CUDA_TRY(cudaMemcpy(host_partials, partials, nchunks * sizeof(double),
                             cudaMemcpyDeviceToHost));
    for (size_t k = 0; k < nchunks; k++) {
        total += host_partials[k];
    }
    *out = total;
out:
    return st;
}

dure_status_t optim_dev_tree_tiles(const float *g, uint64_t base, const uint64_t *first,
                                   const uint32_t *len, size_t ntiles, double *val,
                                   double *host_val)
{
    dure_status_t st = DURE_OK;
    if (ntiles == 0) {
        return st;
    }
    tree_tiles<<<(unsigned)ntiles, kThreads>>>(val, g, base, first, len);
    DURE_CUDA_TRY(cudaGetLastError());
    DURE_CUDA_TRY(cudaMemcpy(host_val, val, ntiles * sizeof(double), cudaMemcpyDeviceToHost));
out:
    return st;
}

} // extern "C"
