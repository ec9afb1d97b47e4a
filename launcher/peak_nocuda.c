/* launcher/peak_nocuda.c - the MFU peak of a CPU-only build. */
#include "launcher/peak.h"

#include <cblas.h>
#include <stdio.h>

dure_status_t dure_peak_flops(int gpu, double *flops, char *what, size_t n)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(gpu < 0, DURE_ERR_UNSUPPORTED, "GPU %d asked of a build without CUDA", gpu);
    DURE_TRY(dure_peak_cpu_measure(0, flops));
    snprintf(what, n, "sgemm 768^3, %d thread(s): %.1f GFLOP/s",
             openblas_get_num_threads(), *flops / 1e9);
out:
    return st;
}
