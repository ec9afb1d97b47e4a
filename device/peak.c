/*
 * device/peak.c - the peak FLOP/s that MFU is measured against (see
 * device.h): a table of dense bf16 tensor-core peaks per GPU model (the
 * vendor's datasheet figure without sparsity) looked up by device name, and
 * an sgemm measured at start on the CPU, since no table can know this
 * machine's cores, clocks and BLAS kernels (PLATFORM.md: OpenBLAS may
 * misdetect the CPU).
 */
#include "device/device.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "common/timing.h"

/* Dense bf16 tensor-core peaks, datasheet figures without sparsity. Longer,
 * more specific names come first: the first substring match wins. */
static const struct {
    const char *match;
    double flops;
} gpu_peaks[] = {
    {"GB200", 2.5e15},     {"B200", 2.25e15},     {"B100", 1.75e15},
    {"GH200", 989.4e12},   {"H200", 989.4e12},    {"H100 PCIe", 756.0e12},
    {"H100 NVL", 835.0e12},{"H100", 989.4e12},    {"H800", 989.4e12},
    {"A100", 312.0e12},    {"A800", 312.0e12},    {"L40S", 362.1e12},
    {"L40", 181.0e12},     {"L4", 121.0e12},      {"A40", 149.7e12},
    {"A30", 165.0e12},     {"A10", 125.0e12},     {"RTX 6000 Ada", 364.2e12},
    {"MI300X", 1307.4e12}, {"MI250X", 383.0e12},
};

double device_peak_gpu_table(const char *name)
{
    for (size_t i = 0; i < sizeof gpu_peaks / sizeof gpu_peaks[0]; i++) {
        if (strstr(name, gpu_peaks[i].match)) {
            return gpu_peaks[i].flops;
        }
    }
    return 0;
}

dure_status_t device_peak_cpu_measure(int n, double *flops)
{
    dure_status_t st = DURE_OK;
    float *buf = NULL;
    if (n <= 0) {
        n = 768;
    }
    size_t elems = (size_t)n * (size_t)n;
    buf = malloc(3 * elems * sizeof *buf);
    DURE_ALLOC_TRY(buf, 3 * elems * sizeof *buf);
    float *a = buf, *b = buf + elems, *c = buf + 2 * elems;
    for (size_t i = 0; i < 2 * elems; i++) {
        buf[i] = (float)((i * 2654435761u) % 1000u) * 1e-3f - 0.5f;
    }
    double best = 0;
    /* One warm-up (thread start, page faults), then the best of five. */
    for (int rep = 0; rep < 6; rep++) {
        double t0 = dure_now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b,
                    n, 0.0f, c, n);
        double dt = dure_now_s() - t0;
        if (rep > 0 && dt > 0) {
            double f = 2.0 * (double)n * (double)n * (double)n / dt;
            best = f > best ? f : best;
        }
    }
    DURE_CHECK(best > 0, DURE_ERR_INTERNAL, "sgemm peak measurement gave no time");
    *flops = best;
out:
    free(buf);
    return st;
}
