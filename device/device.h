/*
 * device/device.h - the device layer: the memory, the queue and the
 * element-wise work that the model, the optimizer and the training step
 * need from whatever they run on (the CPU, a CUDA GPU, a domestic NPU).
 *
 * A device_t is an opaque handle: an interface struct of function pointers
 * and a context (device/device_impl.h), found through a registry of device
 * kinds {name, usable, create} (device/registry.c; device/README.md says
 * how to add one). Callers name no kind: they ask the registry for the
 * job's run.device ("auto" picks the first usable accelerator, else the
 * CPU) and then call the functions below, which are the one dispatcher.
 *
 * Memory. device_alloc returns memory of the device (host memory on cpu,
 * memory of the device's GPU on cuda). Pointers into it are passed to the
 * calls below and to the collectives named by device_comm_backend; the host
 * reads it only through device_copy (or device_host_view / _host_target
 * where a host copy may be avoided). Allocate once per lifetime class
 * (parameters, gradients, optimizer state, activations, communication
 * buffers), never in the training step.
 *
 * Ordering. Work is queued on the device's one queue (device_stream: a
 * cudaStream_t on cuda, NULL on cpu) in call order; every call returns once
 * its work is queued, except the copies to the host, device_sq_norm and
 * device_sync, which return with the work done. On cpu every call is done
 * when it returns. Other libraries that use the device's memory (cuBLAS,
 * NCCL) order their work after the queue's by taking the stream.
 *
 * Threads: one thread at a time uses a device handle; a device is made the
 * calling thread's current device when it is opened.
 */
#ifndef DURE_DEVICE_DEVICE_H
#define DURE_DEVICE_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "common/alloc.h"
#include "common/status.h"

typedef struct device device_t;

/* Elements per partial sum of device_sq_norm: the summation order depends
 * on this constant only, never on the device or its thread count. */
#define DEVICE_SQ_CHUNK ((size_t)1 << 16)

/* The scalars of one AdamW step (see device_adamw). */
struct device_adamw {
    float lr;
    float beta1, beta2;
    float eps;
    float bc1, bc2;          /* bias corrections 1 - beta1^t, 1 - beta2^t */
    float grad_scale;        /* g = grad * grad_scale */
    float weight_decay;      /* applied on segments with decay = 1 */
};

/* A run [begin, end) of an optimizer's slice (elements, relative to the
 * slice's first) where weight decay is uniformly on or off. */
struct device_segment {
    size_t begin, end;
    int decay;
};

/* What a device kind was built with and what the machine has, for
 * `dure --version` and the run manifest. 0 reads "none". */
struct device_versions {
    int built;               /* 1 when the kind is compiled into this dure */
    int runtime;             /* the runtime's version (cuda: 13000) */
    int driver;              /* the driver's version (cuda: 13000); 0 = no driver */
    int collectives;         /* the vendor collective library's (nccl: 22809) */
};

/* ---------------------------------------------------------------- the registry */

/*
 * Open a device of kind `kind` ("cpu", "cuda", or "auto") for the rank with
 * index local_rank among the local_size ranks of its node, and make it the
 * calling thread's current device. A kind whose devices are exclusive (one
 * rank per GPU) takes device device_pick(local_rank, local_size, visible).
 * "auto" takes the first registered kind other than cpu that has a device,
 * else cpu; a kind whose devices are present but unusable (a CUDA driver
 * older than the runtime dure was built with) is an error under auto too,
 * never a silent fall-back to the CPU.
 * Fails with one clear message and DURE_ERR_NODEV: a kind not in this
 * build (naming the kinds it has), no device of the kind visible or usable,
 * or too few for local_size (naming both numbers).
 */
dure_status_t device_open(const char *kind, int local_rank, int local_size, device_t **out);

/* Release the device's queue and context (memory from device_alloc must be
 * freed first). NULL is a no-op. */
void device_close(device_t *d);

/*
 * Devices of `kind` visible to this process: DURE_OK with *count >= 1;
 * DURE_ERR_NODEV with *count = 0 and a logged message naming what to use
 * instead when there are none, they cannot be used or the kind is not in
 * this build. `quiet` suppresses the message.
 */
dure_status_t device_kind_count(const char *kind, int *count, int quiet);

/* Versions for `kind`; all zero (built = 0) when the kind is not in this build. */
void device_kind_versions(const char *kind, struct device_versions *v);

/*
 * The ordinal of the device the rank with index local_rank of local_size
 * ranks on its node takes, out of `visible` devices: local_rank itself.
 * DURE_ERR_NODEV when local_size exceeds visible ("3 ranks on this node but
 * only 2 cuda device(s) visible ..."), so that two ranks never share one
 * device; DURE_ERR_ARG for a local_rank outside [0, local_size). Pure.
 */
dure_status_t device_pick(const char *kind, int local_rank, int local_size, int visible,
                          int *ordinal);

/*
 * 1 when a driver of version `driver` is older than the runtime version
 * `runtime` this dure was built with (both as the vendor encodes them,
 * 13000 = 13.0), with `why` (capacity cap) saying both versions and the two
 * fixes: update the driver, or build dure against an older toolkit (README:
 * CUDA_HOME and NVCC_GENCODE). 0 otherwise. `what` names the runtime
 * ("CUDA"). Pure.
 */
int device_driver_too_old(const char *what, int driver, int runtime, char *why, size_t cap);

/* ---------------------------------------------------------------- identity */

const char *device_kind(const device_t *d);          /* "cpu", "cuda" */
int device_ordinal(const device_t *d);               /* 0 on cpu */
/* The model compute backend that runs on this device (model/backend.h). */
const char *device_compute(const device_t *d);
/* The collectives backend that reaches this device's memory ("mpi" for
 * host memory, "nccl" for cuda). */
const char *device_comm_backend(const device_t *d);
/* The device's queue, opaque to callers (a cudaStream_t on cuda, NULL on cpu). */
void *device_stream(const device_t *d);

/* ---------------------------------------------------------------- memory */

/* `bytes` of device memory, contents undefined; free with device_free
 * (NULL is a no-op). DURE_ERR_NOMEM names the bytes and `what`. */
dure_status_t device_alloc(device_t *d, size_t bytes, const char *what, void **p);
void device_free(device_t *d, void *p);

/* The device's own allocator, for code that takes a struct dure_allocator. */
struct dure_allocator device_allocator(device_t *d);

/* p[0 .. bytes) = 0 on the queue. */
dure_status_t device_zero(device_t *d, void *p, size_t bytes);

/* Copies between device memory and host memory. Both wait for the work
 * queued before them and return with the copy done. */
dure_status_t device_copy_to_host(device_t *d, void *host, const void *src, size_t bytes);
dure_status_t device_copy_from_host(device_t *d, void *dst, const void *host, size_t bytes);

/*
 * Host access without a copy where the device's memory is host memory:
 * device_host_view sets *view to src itself on such a device, else copies
 * bytes into `stage` (host memory) and sets *view to stage.
 * device_host_target returns dst itself on such a device, else stage: fill
 * it, then device_host_commit(d, dst, stage, bytes) copies stage into dst
 * when they differ. device_host_stage_bytes(d, bytes) is the staging a
 * caller needs for such a buffer: 0 when the memory is host memory.
 */
dure_status_t device_host_view(device_t *d, const void *src, void *stage, size_t bytes,
                               const void **view);
void *device_host_target(device_t *d, void *dst, void *stage);
dure_status_t device_host_commit(device_t *d, void *dst, const void *stage, size_t bytes);
size_t device_host_stage_bytes(const device_t *d, size_t bytes);

/*
 * Memory the run may use on this device: *avail bytes free for dure's
 * buffers, *reserve bytes the device's runtime and libraries will take
 * beyond them (cuda: the cuBLAS workspace and NCCL's buffers for `peers`
 * peers), *shared = 1 when every rank of the node draws from the same pool
 * (host memory) so the need is per node, 0 when each rank has its own.
 * *avail = 0 when unknown.
 */
dure_status_t device_mem_info(device_t *d, int peers, uint64_t *avail, uint64_t *reserve,
                              int *shared);

/* Wait until the queue is empty. */
dure_status_t device_sync(device_t *d);

/* ---------------------------------------------------------------- the step's work */

/* acc[i] = g[i] (first != 0) or acc[i] += g[i], i < n; device memory, queued. */
dure_status_t device_accumulate(device_t *d, float *acc, const float *g, size_t n,
                                int first);

/*
 * One AdamW step over a slice of n elements: params p, grads g, moments m
 * and v (device memory, n each). seg[0 .. n_seg) (device memory, from
 * device_alloc, uploaded once) tiles [0, n) in order. For each i, with
 * g' = g[i] * h->grad_scale and wd = h->weight_decay where its segment
 * decays, else 0:
 *   m = beta1 m + (1 - beta1) g';   v = beta2 v + (1 - beta2) g'^2
 *   p -= lr * ( (m / bc1) / (sqrt(v / bc2) + eps) + wd * p )
 * in float32, the same arithmetic on every device. One queued launch on
 * cuda, whatever n_seg is; g is not modified.
 */
dure_status_t device_adamw(device_t *d, const struct device_adamw *h,
                           const struct device_segment *seg, size_t n_seg, float *p,
                           const float *g, float *m, float *v, size_t n);

/*
 * *sq = sum of g[i]^2, i < n (device memory), deterministic: partial sums
 * in double over fixed chunks of DEVICE_SQ_CHUNK elements, each chunk in a
 * fixed order, then the chunks in order on the host. partials (device
 * memory) and host_partials (host memory) hold device_sq_norm_chunks(n)
 * doubles each. Returns with the value (waits for the queue).
 */
size_t device_sq_norm_chunks(size_t n);
dure_status_t device_sq_norm(device_t *d, const float *g, size_t n, double *partials,
                             double *host_partials, double *sq);

/*
 * The peak FLOP/s that MFU is measured against: cuda, the dense bf16
 * tensor-core peak of the GPU model from a table (0 with a warning for a
 * model not in it); cpu, an sgemm measured now on the current OpenBLAS
 * thread count. `what` (capacity cap) describes it for the setup report.
 */
dure_status_t device_peak_flops(device_t *d, double *flops, char *what, size_t cap);

/* Dense bf16 peak FLOP/s of the GPU named `name` from the table, 0 when
 * the model is not in it. Pure. */
double device_peak_gpu_table(const char *name);

/* Measure the CPU's sgemm FLOP/s: the best of a few n^3 products (n = 0:
 * 768) on the current OpenBLAS thread count. */
dure_status_t device_peak_cpu_measure(int n, double *flops);

#endif
