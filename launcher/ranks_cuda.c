/* launcher/ranks_cuda.c - the GPU of a rank, in a CUDA build. */
#include "launcher/ranks.h"

#include "common/cuda_check.h"
#include "common/gpu.h"

dure_status_t dure_ranks_pick_gpu(struct dure_ranks *r)
{
    dure_status_t st = DURE_OK;
    int count = 0;
    DURE_TRY(dure_gpu_device_count(&count));
    r->gpu = r->local_rank % count;
    DURE_CUDA_TRY(cudaSetDevice(r->gpu));
out:
    return st;
}
