/* launcher/peak_cuda.c - the MFU peak of a CUDA build. */
#include "launcher/peak.h"

#include <cblas.h>
#include <stdio.h>

#include "common/cuda_check.h"

dure_status_t dure_peak_flops(int gpu, double *flops, char *what, size_t n)
{
    dure_status_t st = DURE_OK;
    struct cudaDeviceProp prop;
    if (gpu < 0) {
        DURE_TRY(dure_peak_cpu_measure(0, flops));
        snprintf(what, n, "sgemm 768^3, %d thread(s): %.1f GFLOP/s",
                 openblas_get_num_threads(), *flops / 1e9);
        goto out;
    }
    DURE_CUDA_TRY(cudaGetDeviceProperties(&prop, gpu));
    *flops = dure_peak_gpu_table(prop.name);
    if (*flops > 0) {
        snprintf(what, n, "%s bf16 table: %.0f TFLOP/s", prop.name, *flops / 1e12);
    } else {
        dure_log_warn(__FILE__, __LINE__,
                      "GPU model '%s' is not in the peak FLOP/s table: MFU reads 0",
                      prop.name);
        snprintf(what, n, "%s: not in the peak table", prop.name);
    }
out:
    return st;
}
