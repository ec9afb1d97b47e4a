/* common/gpu_cuda.c - the GPU probe of a CUDA build. */
#include "common/gpu.h"

#include <string.h>

#include "common/cuda_check.h"

void dure_gpu_versions(struct dure_gpu_versions *v)
{
    memset(v, 0, sizeof *v);
    v->built = 1;
    if (cudaRuntimeGetVersion(&v->cuda_runtime) != cudaSuccess) {
        v->cuda_runtime = 0;
    }
    if (cudaDriverGetVersion(&v->cuda_driver) != cudaSuccess) {
        v->cuda_driver = 0;
    }
    if (ncclGetVersion(&v->nccl) != ncclSuccess) {
        v->nccl = 0;
    }
}

dure_status_t dure_gpu_device_count(int *count)
{
    dure_status_t st = DURE_OK;
    int n = 0;
    cudaError_t rc = cudaGetDeviceCount(&n);
    *count = 0;
    /* With no driver the runtime says cudaErrorInsufficientDriver or
     * cudaErrorNoDevice: both mean "no GPU here", not a dure failure. */
    DURE_CHECK(rc == cudaSuccess && n > 0, DURE_ERR_NODEV,
               "no CUDA device visible (%s): use run.device = cpu and parallel.backend = mpi",
               rc == cudaSuccess ? "device count is 0" : cudaGetErrorString(rc));
    *count = n;
out:
    return st;
}

int dure_gpu_available(void)
{
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}
