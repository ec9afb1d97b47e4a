/* launcher/ranks_nocuda.c - the GPU of a rank, in a CPU-only build. */
#include "launcher/ranks.h"

#include "common/gpu.h"

dure_status_t dure_ranks_pick_gpu(struct dure_ranks *r)
{
    int count = 0;
    r->gpu = -1;
    return dure_gpu_device_count(&count);
}
