// collectives/tree_cuda.cu - the nccl backend's add for the exact
// reduce-scatter (see tree.h): dst[i] += src[i], one element per thread,
// so its bits are those of comm_tree_add_host.
#include <cuda_runtime.h>

// common/status.h has no C++ guard: C linkage for dure's headers here.
extern "C" {
#include "collectives/tree.h"
}
#include "common/cuda_check.h"

namespace {

__global__ void tree_add(float *dst, const float *src, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        dst[i] += src[i];
    }
}

} // namespace

extern "C" dure_status_t comm_tree_add_cuda(float *dst, const float *src, size_t count,
                                            void *stream)
{
    dure_status_t st = DURE_OK;
    if (count == 0) {
        return st;
    }
    size_t blocks = (count + 255) / 256;
    tree_add<<<(unsigned)(blocks < 4096 ? blocks : 4096), 256, 0, (cudaStream_t)stream>>>(
        dst, src, count);
    DURE_CUDA_TRY(cudaGetLastError());
out:
    return st;
}
