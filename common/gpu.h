/*
 * common/gpu.h - what this build and this machine offer on the GPU side.
 *
 * Implemented by common/gpu_cuda.c in CUDA builds and common/gpu_nocuda.c
 * otherwise, so callers never need #ifdefs to ask whether a GPU is usable.
 */
#ifndef DURE_COMMON_GPU_H
#define DURE_COMMON_GPU_H

#include "common/status.h"

struct dure_gpu_versions {
    int built;           /* 1 when compiled with CUDA and NCCL */
    int cuda_runtime;    /* cudaRuntimeGetVersion, e.g. 13000; 0 if absent */
    int cuda_driver;     /* cudaDriverGetVersion; 0 when no driver */
    int nccl;            /* ncclGetVersion, e.g. 22809; 0 if absent */
};

/* Fill `v`; never fails (missing pieces read as 0). */
void dure_gpu_versions(struct dure_gpu_versions *v);

/*
 * Number of usable CUDA devices in *count. Returns DURE_ERR_NODEV with one
 * clear logged message when none is visible or the build has no CUDA, and
 * sets *count to 0; never crashes on a machine without a driver.
 */
dure_status_t dure_gpu_device_count(int *count);

/* Same check without logging: 1 when at least one device is usable. */
int dure_gpu_available(void);

#endif
