/* launcher/accum.cu - see accum.h. */
#include <cuda_runtime.h>
#include <nccl.h>

/* dure's headers are C; the CUDA headers above are already included, so
 * their guards keep them out of the C-linkage block. */
extern "C" {
#include "common/cuda_check.h"
#include "launcher/accum.h"
}

static __global__ void accum_kernel(float *acc, const float *g, size_t n, int first)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (; i < n; i += stride) {
        acc[i] = first ? g[i] : acc[i] + g[i];
    }
}

extern "C" dure_status_t dure_accum_device(float *acc, const float *g, size_t n, int first,
                                           void *stream)
{
    dure_status_t st = DURE_OK;
    cudaStream_t s = (cudaStream_t)stream;
    if (n == 0) {
        return st;
    }
    size_t blocks = (n + 255) / 256;
    accum_kernel<<<(unsigned)(blocks < 4096 ? blocks : 4096), 256, 0, s>>>(acc, g, n, first);
    DURE_CUDA_TRY(cudaGetLastError());
    DURE_CUDA_TRY(cudaStreamSynchronize(s));
out:
    return st;
}
