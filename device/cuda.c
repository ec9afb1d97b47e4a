/*
 * device/cuda.c - a CUDA GPU: memory from cudaMalloc, one CUDA stream as
 * the device's queue, the kernels of device/cuda_kernels.cu, the peak from
 * the GPU model's datasheet figure.
 *
 * The stream is created with cudaStreamCreate (it synchronises with the
 * legacy default stream), so work a library queues on the default stream
 * stays ordered with it. Copies to and from the host are queued on it and
 * waited for: the host buffer is free to reuse when they return.
 */
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/cuda_check.h"
#include "device/cuda_kernels.h"
#include "device/device_impl.h"

/* cuBLAS's workspace: 32 MiB from Hopper on, 4 MiB before (cuBLAS docs,
 * "cublasSetWorkspace"). */
#define CUBLAS_WORKSPACE_HOPPER ((uint64_t)32 << 20)
#define CUBLAS_WORKSPACE_OLDER ((uint64_t)4 << 20)
/* NCCL's buffers, an upper estimate: per channel (at most 32), per ring
 * neighbour (2), the Simple (4 MiB), LL128 (about 4.6 MiB) and LL (256 KiB)
 * protocol buffers. */
#define NCCL_BUFFERS ((uint64_t)32 * 2 * ((4u << 20) + (4710u << 10) + (256u << 10)))

struct cuda_ctx {
    int ordinal;
    cudaStream_t stream;
    int stream_ok;
    int major;                  /* compute capability */
    char name[256];             /* cudaDeviceProp.name */
};

static enum device_probe cuda_usable(int *count, char *why, size_t cap)
{
    int n = 0, driver = 0, runtime = 0;
    cudaError_t rc = cudaGetDeviceCount(&n);
    *count = 0;
    if (rc == cudaSuccess && n > 0) {
        *count = n;
        return DEVICE_PRESENT;
    }
    if (cudaDriverGetVersion(&driver) != cudaSuccess) {
        driver = 0;
    }
    if (cudaRuntimeGetVersion(&runtime) != cudaSuccess) {
        runtime = 0;
    }
    (void)cudaGetLastError(); /* the probe's error is not the process's */
    if (rc == cudaErrorInsufficientDriver && driver > 0 &&
        device_driver_too_old("CUDA", driver, runtime, why, cap)) {
        return DEVICE_BROKEN;
    }
    if (rc == cudaSuccess || rc == cudaErrorNoDevice ||
        (rc == cudaErrorInsufficientDriver && driver == 0)) {
        snprintf(why, cap, "no CUDA device visible (%s)",
                 rc == cudaSuccess ? "device count is 0"
                 : driver == 0     ? "no CUDA driver is installed"
                                   : cudaGetErrorString(rc));
        return DEVICE_ABSENT;
    }
    snprintf(why, cap, "CUDA devices cannot be used: cudaGetDeviceCount failed: %s (%d)",
             cudaGetErrorString(rc), (int)rc);
    return DEVICE_BROKEN;
}

static void cuda_destroy(void *vctx)
{
    struct cuda_ctx *c = vctx;
    if (!c) {
        return;
    }
    if (c->stream_ok) {
        (void)cudaStreamSynchronize(c->stream);
        (void)cudaStreamDestroy(c->stream);
    }
    free(c);
}

static dure_status_t cuda_alloc(void *vctx, size_t bytes, void **p)
{
    (void)vctx;
    cudaError_t rc = cudaMalloc(p, bytes ? bytes : 1);
    if (rc != cudaSuccess) {
        *p = NULL;
        (void)cudaGetLastError(); /* an allocation failure is not sticky: reset it */
        return rc == cudaErrorMemoryAllocation ? DURE_ERR_NOMEM : DURE_ERR_CUDA;
    }
    return DURE_OK;
}

static void cuda_free(void *vctx, void *p)
{
    (void)vctx;
    (void)cudaFree(p);
}

static dure_status_t cuda_copy(struct cuda_ctx *c, void *dst, const void *src, size_t bytes,
                               enum cudaMemcpyKind kind)
{
    dure_status_t st = DURE_OK;
    if (bytes == 0) {
        goto out;
    }
    DURE_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, kind, c->stream));
    DURE_CUDA_TRY(cudaStreamSynchronize(c->stream));
out:
    return st;
}

static dure_status_t cuda_to_host(void *vctx, void *host, const void *src, size_t bytes)
{
    return cuda_copy(vctx, host, src, bytes, cudaMemcpyDeviceToHost);
}

static dure_status_t cuda_from_host(void *vctx, void *dst, const void *host, size_t bytes)
{
    return cuda_copy(vctx, dst, host, bytes, cudaMemcpyHostToDevice);
}

static dure_status_t cuda_zero(void *vctx, void *p, size_t bytes)
{
    dure_status_t st = DURE_OK;
    struct cuda_ctx *c = vctx;
    DURE_CUDA_TRY(cudaMemsetAsync(p, 0, bytes, c->stream));
out:
    return st;
}

static dure_status_t cuda_accumulate(void *vctx, float *acc, const float *g, size_t n,
                                     int first)
{
    dure_status_t st = DURE_OK;
    struct cuda_ctx *c = vctx;
    DURE_CUDA_TRY(dcu_accumulate(acc, g, n, first, c->stream));
out:
    return st;
}

static dure_status_t cuda_adamw(void *vctx, const struct device_adamw *h,
                                const struct device_segment *seg, size_t n_seg, float *p,
                                const float *g, float *m, float *v, size_t n)
{
    dure_status_t st = DURE_OK;
    struct cuda_ctx *c = vctx;
    DURE_CUDA_TRY(dcu_adamw(h, seg, n_seg, p, g, m, v, n, c->stream));
out:
    return st;
}

static dure_status_t cuda_sq_norm(void *vctx, const float *g, size_t n, double *partials)
{
    dure_status_t st = DURE_OK;
    struct cuda_ctx *c = vctx;
    DURE_CUDA_TRY(dcu_sq_norm_partials(g, n, partials, c->stream));
out:
    return st;
}

static void *cuda_stream(void *vctx)
{
    struct cuda_ctx *c = vctx;
    return (void *)c->stream;
}

static dure_status_t cuda_sync(void *vctx)
{
    dure_status_t st = DURE_OK;
    struct cuda_ctx *c = vctx;
    DURE_CUDA_TRY(cudaStreamSynchronize(c->stream));
out:
    return st;
}

static dure_status_t cuda_peak(void *vctx, double *flops, char *what, size_t cap)
{
    struct cuda_ctx *c = vctx;
    *flops = device_peak_gpu_table(c->name);
    if (*flops > 0) {
        snprintf(what, cap, "%s bf16 table: %.0f TFLOP/s", c->name, *flops / 1e12);
    } else {
        dure_log_warn(__FILE__, __LINE__,
                      "GPU model '%s' is not in the peak FLOP/s table: MFU reads 0", c->name);
        snprintf(what, cap, "%s: not in the peak table", c->name);
    }
    return DURE_OK;
}

static dure_status_t cuda_mem_info(void *vctx, int peers, uint64_t *avail, uint64_t *reserve)
{
    dure_status_t st = DURE_OK;
    struct cuda_ctx *c = vctx;
    size_t free_b = 0, total_b = 0;
    DURE_CUDA_TRY(cudaMemGetInfo(&free_b, &total_b));
    *avail = free_b;
    *reserve = (c->major >= 9 ? CUBLAS_WORKSPACE_HOPPER : CUBLAS_WORKSPACE_OLDER) +
               (peers > 1 ? NCCL_BUFFERS : 0);
out:
    return st;
}

static const struct device_i cuda_iface = {
    .alloc = cuda_alloc,
    .free = cuda_free,
    .destroy = cuda_destroy,
    .copy_to_host = cuda_to_host,
    .copy_from_host = cuda_from_host,
    .zero = cuda_zero,
    .accumulate = cuda_accumulate,
    .adamw = cuda_adamw,
    .sq_norm_partials = cuda_sq_norm,
    .stream = cuda_stream,
    .sync = cuda_sync,
    .peak_flops = cuda_peak,
    .mem_info = cuda_mem_info,
};

static dure_status_t cuda_create(int ordinal, const struct device_i **iface, void **vctx)
{
    dure_status_t st = DURE_OK;
    struct cudaDeviceProp prop;
    struct cuda_ctx *c = calloc(1, sizeof *c);
    DURE_ALLOC_TRY(c, sizeof *c);
    c->ordinal = ordinal;
    DURE_CUDA_TRY(cudaSetDevice(ordinal));
    DURE_CUDA_TRY(cudaGetDeviceProperties(&prop, ordinal));
    snprintf(c->name, sizeof c->name, "%s", prop.name);
    c->major = prop.major;
    DURE_CUDA_TRY(cudaStreamCreate(&c->stream));
    c->stream_ok = 1;
    *iface = &cuda_iface;
    *vctx = c;
    c = NULL;
out:
    cuda_destroy(c);
    return st;
}

static void cuda_versions(struct device_versions *v)
{
    if (cudaRuntimeGetVersion(&v->runtime) != cudaSuccess) {
        v->runtime = 0;
    }
    if (cudaDriverGetVersion(&v->driver) != cudaSuccess) {
        v->driver = 0;
    }
    if (ncclGetVersion(&v->collectives) != ncclSuccess) {
        v->collectives = 0;
    }
}

const struct device_entry device_cuda_entry = {
    .name = "cuda",
    .compute = "cuda",
    .comm = "nccl",
    .host_memory = 0,
    .exclusive = 1,
    .usable = cuda_usable,
    .create = cuda_create,
    .versions = cuda_versions,
};
