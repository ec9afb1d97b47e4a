/*
 * model/cublas_cuda.h - cuBLAS, loaded when the CUDA model first needs it.
 *
 * Why not linked: libcublas pulls in libcublasLt, 540 MB, and the loader
 * maps and relocates both before main. Linked, every command of the CUDA
 * build paid for it, GPU or not: `dure --version` took 1.05 s against
 * 0.09 s in the CPU-only build, `dure render` and `dure submit` on a login
 * node likewise, and the test suite paid it a few hundred times. Only a
 * rank that builds a model on a GPU loads it now.
 *
 * The functions keep the prototypes of <cublas_v2.h> (its macros name the
 * _v2 symbols, and the library's soname carries the major version of the
 * headers dure was built against: DURE_CUBLAS_SONAME).
 */
#ifndef DURE_MODEL_CUBLAS_CUDA_H
#define DURE_MODEL_CUBLAS_CUDA_H

#include <cublas_v2.h>

#include "common/status.h"

#define DURE_CUBLAS_STR_(x) #x
#define DURE_CUBLAS_STR(x) DURE_CUBLAS_STR_(x)
#define DURE_CUBLAS_SONAME "libcublas.so." DURE_CUBLAS_STR(CUBLAS_VER_MAJOR)

struct dure_cublas {
    __typeof__(cublasCreate) *create;
    __typeof__(cublasDestroy) *destroy;
    __typeof__(cublasSetStream) *set_stream;
    __typeof__(cublasSetAtomicsMode) *set_atomics_mode;
    __typeof__(cublasGemmEx) *gemm_ex;
    __typeof__(cublasGemmStridedBatchedEx) *gemm_strided_batched_ex;
    __typeof__(cublasGetStatusString) *status_string;
};

/*
 * The functions of `soname` (NULL: DURE_CUBLAS_SONAME), loaded on the first
 * call and kept for the process; later calls return the same table (the
 * first call's soname wins; safe from several threads). DURE_ERR_CUDA
 * naming the library and the loader's reason, or the symbol it lacks.
 */
dure_status_t dure_cublas_load(const char *soname, const struct dure_cublas **out);

#endif
