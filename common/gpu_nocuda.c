/* common/gpu_nocuda.c - the GPU probe of a build without CUDA. */
#include "common/gpu.h"

#include <string.h>

void dure_gpu_versions(struct dure_gpu_versions *v)
{
    memset(v, 0, sizeof *v);
}

dure_status_t dure_gpu_device_count(int *count)
{
    dure_status_t st = DURE_OK;
    *count = 0;
    DURE_FAIL(DURE_ERR_NODEV,
              "this dure was built without CUDA (USE_CUDA=no): use run.device = cpu and parallel.backend = mpi");
out:
    return st;
}

int dure_gpu_available(void) { return 0; }
