/*
 * launcher/peak.h - the peak FLOP/s that MFU is measured against.
 *
 * On a GPU: a table of dense bf16 tensor-core peaks per GPU model (the
 * vendor's datasheet figure without sparsity), looked up by the device
 * name. On the CPU: measured at start by a short OpenBLAS sgemm with the
 * thread count the run uses, since no table can know this machine's cores,
 * clocks and BLAS kernels (see PLATFORM.md: OpenBLAS may misdetect the CPU).
 */
#ifndef DURE_LAUNCHER_PEAK_H
#define DURE_LAUNCHER_PEAK_H

#include <stddef.h>

#include "common/status.h"

/*
 * Dense bf16 peak FLOP/s for a GPU named `name` (as cudaGetDeviceProperties
 * says, e.g. "NVIDIA H100 80GB HBM3"); 0 when the model is not in the table.
 */
double dure_peak_gpu_table(const char *name);

/*
 * Measure the CPU's sgemm FLOP/s: the best of a few square products of
 * size n (n = 0 picks the default, 768) on the current OpenBLAS thread
 * count. Takes a few tens of milliseconds. *flops > 0 on success.
 */
dure_status_t dure_peak_cpu_measure(int n, double *flops);

/*
 * The peak for this rank: gpu >= 0 looks the device up in the table (and
 * falls back to none, *flops = 0, with a warning, for an unknown model);
 * gpu < 0 measures the CPU. `what` receives a short description for the
 * configuration table and the manifest ("sgemm 768^3, 1 thread: 123 GFLOP/s"
 * or "NVIDIA H100 80GB HBM3 bf16 table: 989 TFLOP/s").
 */
dure_status_t dure_peak_flops(int gpu, double *flops, char *what, size_t n);

#endif
