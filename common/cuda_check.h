/*
 * common/cuda_check.h - check macros for CUDA runtime, cuBLAS and NCCL calls.
 * Only CUDA builds (files *_cuda.c and *.cu) include this header.
 */
#ifndef DURE_COMMON_CUDA_CHECK_H
#define DURE_COMMON_CUDA_CHECK_H

#include <cuda_runtime.h>
#include <nccl.h>

#include "common/status.h"

#define DURE_CUDA_TRY(call)                                                   \
    do {                                                                      \
        cudaError_t cu_rc_ = (call);                                          \
        if (cu_rc_ != cudaSuccess) {                                          \
            st = DURE_ERR_CUDA;                                               \
            dure_log_error(__FILE__, __LINE__, "%s failed: %s (%d)", #call,   \
                           cudaGetErrorString(cu_rc_), (int)cu_rc_);          \
            goto out;                                                         \
        }                                                                     \
    } while (0)

#define DURE_NCCL_TRY(call)                                                   \
    do {                                                                      \
        ncclResult_t nc_rc_ = (call);                                         \
        if (nc_rc_ != ncclSuccess) {                                          \
            st = DURE_ERR_NCCL;                                               \
            dure_log_error(__FILE__, __LINE__, "%s failed: %s (%d)", #call,   \
                           ncclGetErrorString(nc_rc_), (int)nc_rc_);          \
            goto out;                                                         \
        }                                                                     \
    } while (0)

#endif
