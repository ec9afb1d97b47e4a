/* launcher/accum_nocuda.c - see accum.h: no device in this build. */
#include "launcher/accum.h"

dure_status_t dure_accum_device(float *acc, const float *g, size_t n, int first,
                                void *stream)
{
    dure_status_t st = DURE_OK;
    (void)acc;
    (void)g;
    (void)n;
    (void)first;
    (void)stream;
    DURE_FAIL(DURE_ERR_UNSUPPORTED, "GPU gradient accumulation in a build without CUDA");
out:
    return st;
}
