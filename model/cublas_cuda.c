/* model/cublas_cuda.c - cuBLAS loaded on first use; see cublas_cuda.h. */
#include "model/cublas_cuda.h"

#include <dlfcn.h>
#include <pthread.h>

static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;
static struct dure_cublas table; /* table.create set: loaded */

/* One symbol by the name the header's macros give it. */
#define LOAD_SYM(field, fn)                                                               \
    do {                                                                                  \
        *(void **)&t.field = dlsym(lib, DURE_CUBLAS_STR(fn));                             \
        DURE_CHECK(t.field, DURE_ERR_CUDA, "%s has no %s: %s", name,                      \
                   DURE_CUBLAS_STR(fn), dlerror());                                       \
    } while (0)

dure_status_t dure_cublas_load(const char *soname, const struct dure_cublas **out)
{
    dure_status_t st = DURE_OK;
    const char *name = soname ? soname : DURE_CUBLAS_SONAME;
    struct dure_cublas t;
    void *lib = NULL;

    *out = NULL;
    pthread_mutex_lock(&load_mu);
    if (table.create) {
        goto out;
    }
    lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    DURE_CHECK(lib, DURE_ERR_CUDA, "cannot load cuBLAS (%s), which the CUDA model needs: %s",
               name, dlerror());
    LOAD_SYM(create, cublasCreate);
    LOAD_SYM(destroy, cublasDestroy);
    LOAD_SYM(set_stream, cublasSetStream);
    LOAD_SYM(set_atomics_mode, cublasSetAtomicsMode);
    LOAD_SYM(gemm_ex, cublasGemmEx);
    LOAD_SYM(gemm_strided_batched_ex, cublasGemmStridedBatchedEx);
    LOAD_SYM(status_string, cublasGetStatusString);
    table = t;
    lib = NULL; /* kept for the process: the table points into it */
out:
    if (lib) {
        dlclose(lib);
    }
    if (table.create) {
        *out = &table;
    }
    pthread_mutex_unlock(&load_mu);
    return st;
}
