/*
 * collectives/nccl_cuda.c - the nccl backend: device buffers, one NCCL
 * communicator per comm_t (its unique id broadcast over MPI from rank 0),
 * and its own non-blocking CUDA stream.
 *
 * Ordering: every collective first makes the comm stream wait for the work
 * already queued on the device's queue (device_stream(cfg->device)), so a
 * gradient kernel launched before comm_bucketer_ready is finished before
 * NCCL reads its output. Asynchronous operations record an event on the
 * comm stream; wait polls it (so the watchdog can cancel) and checks
 * ncclCommGetAsyncError.
 *
 * Aborting safely: the NCCL communicator is non-blocking (blocking = 0 in
 * ncclCommInitRankConfig), so no NCCL call waits for a peer: a call that
 * cannot finish at once returns ncclInProgress and the owner polls
 * ncclCommGetAsyncError (comm_backoff naps, no busy core) until the state
 * settles. Every NCCL call on the communicator is made under mu, each one
 * short; the watchdog's abort slot takes mu too, so ncclCommAbort never
 * runs beside another call on the communicator, and the owner, polling,
 * sees the abort at its next call and fails with DURE_ERR_TIMEOUT. During
 * ncclCommInitRankConfig (watched by the dispatcher's watchdog like a
 * collective) the owner polls the cancel flag and aborts the communicator
 * itself.
 *
 * Uneven layouts: NCCL's reduce-scatter and all-gather need equal pieces.
 * When the op's pieces are equal (the vector's length a multiple of the
 * size, whole-vector range) they are used directly. Otherwise (the ranges
 * of ZeRO buckets) each piece is padded to the longest one in a staging
 * buffer of the comm's (stage_in: size pieces of P elements, stage_out: P
 * or size * P), and one ncclReduceScatter or ncclAllGather of P elements
 * per rank runs there, with device-to-device copies in and out on the comm
 * stream. The staging buffer grows to the largest op seen (stream-ordered,
 * so only a step with a larger bucket than any before allocates).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/backend.h"
#include "common/agree.h"
#include "common/cuda_check.h"
#include "common/mpi_check.h"

/* Waiting on NCCL or the stream: poll back to back this long, then nap
 * between polls, up to this long (comm_backoff). */
enum { WAIT_SPIN_NS = 20000, WAIT_NAP_MAX_NS = 100000 };

struct nccl_ctx {
    ncclComm_t nccl;
    int have_nccl;               /* under mu: 0 before init and once aborted */
    int failed;                  /* an NCCL error was seen: destroy by abort */
    pthread_mutex_t mu;          /* every NCCL call on nccl, against the watchdog's abort */
    cudaStream_t stream;         /* the comm's own */
    cudaStream_t compute;        /* the caller's (NULL: legacy default stream) */
    cudaEvent_t ready;           /* recorded on compute, waited on by stream */
    cudaEvent_t sync;            /* blocking operations and copies wait on this */
    cudaEvent_t *events;         /* events[nev]: one per pending async op */
    int *free_ev;                /* stack of free indices into events */
    int nev, nfree;
    int device;
    int rank, size;
    const atomic_int *cancel;
    float *one;                  /* one device float for the barrier */
    void *stage;                 /* [stage_bytes] device: padded pieces (see top) */
    size_t stage_bytes;
};

static ncclDataType_t nccl_type(enum comm_dtype dt)
{
    return dt == COMM_BF16 ? ncclBfloat16 : dt == COMM_F64 ? ncclFloat64 : ncclFloat32;
}

/* ---------------------------------------------------------------- waiting */

/* The communicator's state, under mu: ncclSuccess, ncclInProgress or an
 * error. DURE_ERR_TIMEOUT once the watchdog aborted it. */
static dure_status_t comm_state(struct nccl_ctx *x, ncclResult_t *state)
{
    dure_status_t st = DURE_OK;
    pthread_mutex_lock(&x->mu);
    DURE_CHECK(x->have_nccl, DURE_ERR_TIMEOUT,
               "nccl: the communicator was aborted by the watchdog");
    DURE_NCCL_TRY(ncclCommGetAsyncError(x->nccl, state));
out:
    pthread_mutex_unlock(&x->mu);
    return st;
}

/* After an NCCL call on the non-blocking communicator returned rc: wait
 * (napping) until its state leaves ncclInProgress; fail on an error. */
static dure_status_t settle(struct nccl_ctx *x, ncclResult_t rc, const char *call)
{
    dure_status_t st = DURE_OK;
    struct comm_backoff b;
    comm_backoff_init(&b, WAIT_SPIN_NS, WAIT_NAP_MAX_NS);
    while (rc == ncclInProgress) {
        DURE_CHECK(!atomic_load(x->cancel), DURE_ERR_TIMEOUT,
                   "nccl: %s cancelled by the watchdog", call);
        comm_backoff_nap(&b);
        DURE_TRY(comm_state(x, &rc));
    }
    if (rc != ncclSuccess) {
        x->failed = 1;
        DURE_FAIL(DURE_ERR_NCCL, "nccl: %s failed: %s (%d)", call, ncclGetErrorString(rc),
                  (int)rc);
    }
out:
    return st;
}

/* One NCCL call on the communicator, under mu, then settled. */
#define NCCL_CALL(x, call)                                                                \
    do {                                                                                  \
        ncclResult_t call_rc_ = ncclInvalidUsage;                                         \
        pthread_mutex_lock(&(x)->mu);                                                     \
        int alive_ = (x)->have_nccl;                                                      \
        if (alive_) {                                                                     \
            call_rc_ = (call);                                                            \
        }                                                                                 \
        pthread_mutex_unlock(&(x)->mu);                                                   \
        DURE_CHECK(alive_, DURE_ERR_TIMEOUT,                                              \
                   "nccl: the communicator was aborted by the watchdog");                 \
        DURE_TRY(settle((x), call_rc_, #call));                                           \
    } while (0)

/* *done = 1 once ev has fired; NCCL's asynchronous errors become statuses. */
static dure_status_t query(struct nccl_ctx *x, cudaEvent_t ev, int *done)
{
    dure_status_t st = DURE_OK;
    ncclResult_t async = ncclSuccess;
    *done = 0;
    DURE_TRY(comm_state(x, &async));
    if (async != ncclSuccess && async != ncclInProgress) {
        x->failed = 1;
        DURE_FAIL(DURE_ERR_NCCL, "nccl: asynchronous error: %s (%d)",
                  ncclGetErrorString(async), (int)async);
    }
    cudaError_t rc = cudaEventQuery(ev);
    if (rc == cudaErrorNotReady) {
        goto out;
    }
    DURE_CUDA_TRY(rc);
    *done = 1;
out:
    return st;
}

/* Wait, napping, until ev has fired (what names the wait in a message). */
static dure_status_t wait_event(struct nccl_ctx *x, cudaEvent_t ev, const char *what)
{
    dure_status_t st = DURE_OK;
    int done = 0;
    struct comm_backoff b;
    comm_backoff_init(&b, WAIT_SPIN_NS, WAIT_NAP_MAX_NS);
    for (;;) {
        DURE_TRY(query(x, ev, &done));
        if (done) {
            break;
        }
        DURE_CHECK(!atomic_load(x->cancel), DURE_ERR_TIMEOUT, "nccl: %s cancelled by the watchdog",
                   what);
        comm_backoff_nap(&b);
    }
out:
    return st;
}

/* ---------------------------------------------------------------- collectives */

/* A staging buffer of at least `bytes`. Growing waits for the stream's
 * work (which may still read the old buffer) before freeing it. */
static dure_status_t stage_reserve(struct nccl_ctx *x, size_t bytes)
{
    dure_status_t st = DURE_OK;
    if (bytes <= x->stage_bytes) {
        goto out;
    }
    DURE_CUDA_TRY(cudaEventRecord(x->sync, x->stream));
    DURE_TRY(wait_event(x, x->sync, "growing the staging buffer"));
    DURE_CUDA_TRY(cudaFree(x->stage));
    x->stage = NULL;
    x->stage_bytes = 0;
    DURE_CUDA_TRY(cudaMalloc(&x->stage, bytes));
    x->stage_bytes = bytes;
out:
    return st;
}

/* Copy n elements of es bytes on the comm stream, then zero the pad up to
 * padded elements (the pad's results are never read; zeros keep them
 * defined). */
static dure_status_t copy_padded(struct nccl_ctx *x, void *dst, const void *src, size_t n,
                                 size_t padded, size_t es)
{
    dure_status_t st = DURE_OK;
    if (n) {
        DURE_CUDA_TRY(cudaMemcpyAsync(dst, src, n * es, cudaMemcpyDeviceToDevice, x->stream));
    }
    if (padded > n) {
        DURE_CUDA_TRY(cudaMemsetAsync((char *)dst + n * es, 0, (padded - n) * es, x->stream));
    }
out:
    return st;
}

/* Reduce-scatter of uneven pieces through stage_in [size][P] -> stage_out [P]. */
static dure_status_t reduce_scatter_padded(struct nccl_ctx *x, const struct comm_op *op,
                                           size_t P)
{
    dure_status_t st = DURE_OK;
    const size_t es = comm_dtype_size(op->dtype);
    const struct comm_shard mine = comm_op_piece(op, x->size, x->rank);
    DURE_TRY(stage_reserve(x, ((size_t)x->size + 1) * P * es));
    char *in = x->stage, *out = in + (size_t)x->size * P * es;
    for (int j = 0; j < x->size; j++) {
        struct comm_shard p = comm_op_piece(op, x->size, j);
        DURE_TRY(copy_padded(x, in + (size_t)j * P * es, comm_op_send_at(op, p.offset),
                             p.count, P, es));
    }
    NCCL_CALL(x, ncclReduceScatter(in, out, P, nccl_type(op->dtype),
                                   op->redop == COMM_AVG ? ncclAvg : ncclSum, x->nccl,
                                   x->stream));
    if (mine.count) {
        DURE_CUDA_TRY(cudaMemcpyAsync(comm_op_recv_at(op, mine.offset), out, mine.count * es,
                                      cudaMemcpyDeviceToDevice, x->stream));
    }
out:
    return st;
}

/* All-gather of uneven pieces through stage_in [P] -> stage_out [size][P]. */
static dure_status_t allgather_padded(struct nccl_ctx *x, const struct comm_op *op, size_t P)
{
    dure_status_t st = DURE_OK;
    const size_t es = comm_dtype_size(op->dtype);
    const struct comm_shard mine = comm_op_piece(op, x->size, x->rank);
    DURE_TRY(stage_reserve(x, ((size_t)x->size + 1) * P * es));
    char *in = x->stage, *out = in + P * es;
    DURE_TRY(copy_padded(x, in, comm_op_send_at(op, mine.offset), mine.count, P, es));
    NCCL_CALL(x, ncclAllGather(in, out, P, nccl_type(op->dtype), x->nccl, x->stream));
    for (int j = 0; j < x->size; j++) {
        struct comm_shard p = comm_op_piece(op, x->size, j);
        if (p.count) {
            DURE_CUDA_TRY(cudaMemcpyAsync(comm_op_recv_at(op, p.offset),
                                          out + (size_t)j * P * es, p.count * es,
                                          cudaMemcpyDeviceToDevice, x->stream));
        }
    }
out:
    return st;
}

/* Queue op on the comm stream, after the compute stream's queued work. */
static dure_status_t enqueue(struct nccl_ctx *x, const struct comm_op *op)
{
    dure_status_t st = DURE_OK;
    const ncclDataType_t t = nccl_type(op->dtype);
    const ncclRedOp_t red = op->redop == COMM_AVG ? ncclAvg : ncclSum;
    const struct comm_shard mine = comm_op_piece(op, x->size, x->rank);
    size_t longest = 0;
    int equal = 1;

    DURE_CUDA_TRY(cudaEventRecord(x->ready, x->compute));
    DURE_CUDA_TRY(cudaStreamWaitEvent(x->stream, x->ready, 0));
    if (op->coll == COMM_REDUCE_SCATTER || op->coll == COMM_ALLGATHER) {
        const size_t first = comm_op_piece(op, x->size, 0).count;
        for (int j = 0; j < x->size; j++) {
            size_t n = comm_op_piece(op, x->size, j).count;
            equal &= n == first;
            longest = n > longest ? n : longest;
        }
    }
    switch (op->coll) {
    case COMM_ALLREDUCE:
        NCCL_CALL(x, ncclAllReduce(comm_op_send_at(op, 0), comm_op_recv_at(op, 0), op->count, t,
                                   red, x->nccl, x->stream));
        break;
    case COMM_REDUCE_SCATTER:
        if (!equal) {
            DURE_TRY(reduce_scatter_padded(x, op, longest));
            break;
        }
        NCCL_CALL(x, ncclReduceScatter(comm_op_send_at(op, op->offset),
                                       comm_op_recv_at(op, mine.offset), mine.count, t, red,
                                       x->nccl, x->stream));
        break;
    case COMM_ALLGATHER:
        if (!equal) {
            DURE_TRY(allgather_padded(x, op, longest));
            break;
        }
        NCCL_CALL(x, ncclAllGather(comm_op_send_at(op, mine.offset),
                                   comm_op_recv_at(op, op->offset), mine.count, t, x->nccl,
                                   x->stream));
        break;
    case COMM_BROADCAST:
        NCCL_CALL(x, ncclBroadcast(comm_op_send_at(op, op->offset),
                                   comm_op_recv_at(op, op->offset), op->count, t, op->root,
                                   x->nccl, x->stream));
        break;
    case COMM_BARRIER:
        NCCL_CALL(x, ncclAllReduce(x->one, x->one, 1, ncclFloat32, ncclSum, x->nccl, x->stream));
        break;
    default:
        DURE_FAIL(DURE_ERR_INTERNAL, "nccl: unknown collective %d", (int)op->coll);
    }
out:
    return st;
}

static dure_status_t nccl_run(void *vctx, const struct comm_op *op)
{
    dure_status_t st = DURE_OK;
    struct nccl_ctx *x = vctx;
    DURE_TRY(enqueue(x, op));
    DURE_CUDA_TRY(cudaEventRecord(x->sync, x->stream));
    DURE_TRY(wait_event(x, x->sync, comm_coll_name(op->coll)));
out:
    return st;
}

static dure_status_t nccl_start(void *vctx, const struct comm_op *op, void **handle)
{
    dure_status_t st = DURE_OK;
    struct nccl_ctx *x = vctx;
    DURE_CHECK(x->nfree > 0, DURE_ERR_INTERNAL, "nccl: no free event for an async operation");
    int i = x->free_ev[x->nfree - 1];
    DURE_TRY(enqueue(x, op));
    DURE_CUDA_TRY(cudaEventRecord(x->events[i], x->stream));
    x->nfree--;
    *handle = &x->events[i];
out:
    return st;
}

static dure_status_t nccl_poll(void *vctx, void *handle, int *done)
{
    return query(vctx, *(cudaEvent_t *)handle, done);
}

static void nccl_release(void *vctx, void *handle)
{
    struct nccl_ctx *x = vctx;
    x->free_ev[x->nfree++] = (int)((cudaEvent_t *)handle - x->events);
}

/* On the watchdog thread. Under mu no other NCCL call on the communicator
 * runs (each is short: the communicator never blocks); the owner's next
 * call finds it gone and fails with DURE_ERR_TIMEOUT. */
static void nccl_abort(void *vctx)
{
    struct nccl_ctx *x = vctx;
    pthread_mutex_lock(&x->mu);
    if (x->have_nccl) {
        ncclCommAbort(x->nccl);
        x->have_nccl = 0;
    }
    pthread_mutex_unlock(&x->mu);
}

/* ---------------------------------------------------------------- memory */

static dure_status_t nccl_mem_alloc(void *vctx, size_t bytes, void **p)
{
    dure_status_t st = DURE_OK;
    (void)vctx;
    DURE_CUDA_TRY(cudaMalloc(p, bytes));
out:
    return st;
}

static void nccl_mem_free(void *vctx, void *p)
{
    (void)vctx;
    cudaFree(p);
}

/* An explicit copy on the comm stream, ordered after the comm's queued
 * collectives, waited for (napping) before returning: the host buffer may
 * be reused at once. */
static dure_status_t copy_and_wait(struct nccl_ctx *x, void *dst, const void *src, size_t bytes,
                                   enum cudaMemcpyKind kind, const char *what)
{
    dure_status_t st = DURE_OK;
    if (bytes == 0) {
        goto out;
    }
    DURE_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, kind, x->stream));
    DURE_CUDA_TRY(cudaEventRecord(x->sync, x->stream));
    DURE_TRY(wait_event(x, x->sync, what));
out:
    return st;
}

static dure_status_t nccl_upload(void *vctx, void *dst, const void *src, size_t bytes)
{
    return copy_and_wait(vctx, dst, src, bytes, cudaMemcpyHostToDevice, "comm_mem_upload");
}

static dure_status_t nccl_download(void *vctx, void *dst, const void *src, size_t bytes)
{
    return copy_and_wait(vctx, dst, src, bytes, cudaMemcpyDeviceToHost, "comm_mem_download");
}

/* ---------------------------------------------------------------- lifetime */

/* Flush every rank's issued work: ncclCommFinalize, settled (collective). */
static dure_status_t finalize(struct nccl_ctx *x)
{
    dure_status_t st = DURE_OK;
    NCCL_CALL(x, ncclCommFinalize(x->nccl));
out:
    return st;
}

/* Collective unless the communicator failed or was aborted: finalize, then
 * destroy; after an error, abort (nothing can be assumed of queued work). */
static void nccl_destroy(void *vctx)
{
    struct nccl_ctx *x = vctx;
    if (!x) {
        return;
    }
    if (x->have_nccl && !x->failed && finalize(x) != DURE_OK) {
        x->failed = 1;
    }
    pthread_mutex_lock(&x->mu);
    if (x->have_nccl) {
        if (x->failed) {
            ncclCommAbort(x->nccl);
        } else {
            ncclCommDestroy(x->nccl);
        }
        x->have_nccl = 0;
    }
    pthread_mutex_unlock(&x->mu);
    pthread_mutex_destroy(&x->mu);
    for (int i = 0; x->events && i < x->nev; i++) {
        if (x->events[i]) {
            cudaEventDestroy(x->events[i]);
        }
    }
    if (x->ready) {
        cudaEventDestroy(x->ready);
    }
    if (x->sync) {
        cudaEventDestroy(x->sync);
    }
    if (x->stream) {
        cudaStreamDestroy(x->stream);
    }
    cudaFree(x->one);
    cudaFree(x->stage);
    free(x->events);
    free(x->free_ev);
    free(x);
}

static const struct comm_backend_i nccl_backend = {
    .allreduce = nccl_run,
    .reduce_scatter = nccl_run,
    .allgather = nccl_run,
    .broadcast = nccl_run,
    .destroy = nccl_destroy,
    .barrier = nccl_run,
    .start = nccl_start,
    .poll = nccl_poll,
    .release = nccl_release,
    .abort = nccl_abort,
    .mem_alloc = nccl_mem_alloc,
    .mem_free = nccl_mem_free,
    .mem_upload = nccl_upload,
    .mem_download = nccl_download,
};

/* Deterministic mode: pin NCCL's algorithm and protocol (see comm.h). */
static void pin_env(const char *key, const char *value)
{
    const char *cur = getenv(key);
    if (cur && strcmp(cur, value) != 0) {
        dure_log_warn(__FILE__, __LINE__, "deterministic = true: overriding %s=%s with %s",
                      key, cur, value);
    }
    setenv(key, value, 1);
}

/* Rank 0's unique id on every rank. A failing ncclGetUniqueId fails every
 * rank before the broadcast, instead of leaving the others in it. */
static dure_status_t share_unique_id(const struct comm_backend_args *a, ncclUniqueId *id)
{
    dure_status_t st = DURE_OK, mine = DURE_OK;
    memset(id, 0, sizeof *id);
    if (a->rank == 0) {
        ncclResult_t rc = ncclGetUniqueId(id);
        if (rc != ncclSuccess) {
            mine = DURE_ERR_NCCL;
            dure_log_error(__FILE__, __LINE__, "ncclGetUniqueId failed: %s (%d)",
                           ncclGetErrorString(rc), (int)rc);
        }
    }
    DURE_TRY(dure_agree(a->mpi, mine, "ncclGetUniqueId on rank 0"));
    DURE_MPI_TRY(MPI_Bcast(id, (int)sizeof *id, MPI_BYTE, 0, a->mpi));
out:
    return st;
}

/* The non-blocking communicator, polled until it is ready. The owner
 * aborts it itself on an error or when the watchdog cancels the setup. */
static dure_status_t init_comm(struct nccl_ctx *x, const ncclUniqueId *id)
{
    dure_status_t st = DURE_OK;
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    struct comm_backoff b;
    int cancelled = 0;

    config.blocking = 0;
    x->nccl = NULL;
    ncclResult_t state = ncclCommInitRankConfig(&x->nccl, x->size, *id, x->rank, &config);
    comm_backoff_init(&b, WAIT_SPIN_NS, WAIT_NAP_MAX_NS);
    while (state == ncclInProgress && x->nccl) {
        if (atomic_load(x->cancel)) {
            cancelled = 1;
            break;
        }
        comm_backoff_nap(&b);
        if (ncclCommGetAsyncError(x->nccl, &state) != ncclSuccess) {
            state = ncclInternalError;
        }
    }
    if (state != ncclSuccess) {
        if (x->nccl) {
            ncclCommAbort(x->nccl);
            x->nccl = NULL;
        }
        DURE_CHECK(!cancelled, DURE_ERR_TIMEOUT,
                   "ncclCommInitRankConfig cancelled by the watchdog (a peer did not join)");
        DURE_FAIL(DURE_ERR_NCCL, "ncclCommInitRankConfig failed: %s (%d)",
                  ncclGetErrorString(state), (int)state);
    }
    x->have_nccl = 1;
out:
    return st;
}

static int nccl_usable(void)
{
    int n = 0;
    return device_kind_count("cuda", &n, 1) == DURE_OK;
}

static dure_status_t nccl_create(const struct comm_backend_args *a,
                                 const struct comm_backend_i **iface, void **vctx)
{
    dure_status_t st = DURE_OK;
    struct nccl_ctx *x = NULL;
    ncclUniqueId id;
    int ndev = 0;

    *vctx = NULL;
    /* Every rank decides together, so that one rank without a GPU does not
     * leave the others waiting in ncclCommInitRank. A rank without one
     * logs "no CUDA device visible ...". */
    DURE_TRY(dure_agree(a->mpi, device_kind_count("cuda", &ndev, 0), "finding a CUDA device"));
    x = calloc(1, sizeof *x);
    DURE_ALLOC_TRY(x, sizeof *x);
    pthread_mutex_init(&x->mu, NULL);
    x->rank = a->rank;
    x->size = a->size;
    x->cancel = a->cancel;
    /* The model's device and queue; without one (dure bench) local rank
     * modulo the devices and the default stream. */
    x->compute = a->cfg->device ? (cudaStream_t)device_stream(a->cfg->device) : NULL;
    x->device = a->cfg->device ? device_ordinal(a->cfg->device) : a->local_rank % ndev;
    DURE_CHECK(x->device < ndev, DURE_ERR_ARG, "device %d: only %d CUDA device(s) visible",
               x->device, ndev);
    DURE_CUDA_TRY(cudaSetDevice(x->device));
    if (a->cfg->deterministic) {
        pin_env("NCCL_ALGO", "Ring");
        pin_env("NCCL_PROTO", "Simple");
    }
    x->nev = a->cfg->max_inflight > 0 ? a->cfg->max_inflight : 256;
    x->events = calloc((size_t)x->nev, sizeof *x->events);
    DURE_ALLOC_TRY(x->events, (size_t)x->nev * sizeof *x->events);
    x->free_ev = calloc((size_t)x->nev, sizeof *x->free_ev);
    DURE_ALLOC_TRY(x->free_ev, (size_t)x->nev * sizeof *x->free_ev);
    for (int i = 0; i < x->nev; i++) {
        DURE_CUDA_TRY(cudaEventCreateWithFlags(&x->events[i], cudaEventDisableTiming));
        x->free_ev[x->nfree++] = i;
    }
    DURE_CUDA_TRY(cudaEventCreateWithFlags(&x->ready, cudaEventDisableTiming));
    DURE_CUDA_TRY(cudaEventCreateWithFlags(&x->sync, cudaEventDisableTiming));
    DURE_CUDA_TRY(cudaStreamCreateWithFlags(&x->stream, cudaStreamNonBlocking));
    DURE_CUDA_TRY(cudaMalloc((void **)&x->one, sizeof *x->one));
    DURE_CUDA_TRY(cudaMemset(x->one, 0, sizeof *x->one));

    DURE_TRY(share_unique_id(a, &id));
    DURE_TRY(dure_agree(a->mpi, init_comm(x, &id), "creating the NCCL communicator"));
    *iface = &nccl_backend;
    *vctx = x;
    x = NULL;
out:
    if (x) {
        /* Some rank failed: the peers may be gone, so no finalize. */
        x->failed = 1;
    }
    nccl_destroy(x);
    return st;
}

const struct comm_backend_entry comm_backend_nccl = {
    .name = "nccl",
    .id = COMM_BACKEND_NCCL,
    .memory = COMM_MEM_DEVICE,
    .reduce_dtypes = COMM_BIT(COMM_F32) | COMM_BIT(COMM_BF16) | COMM_BIT(COMM_F64),
    .copy_dtypes = COMM_BIT(COMM_F32) | COMM_BIT(COMM_BF16) | COMM_BIT(COMM_F64),
    .algos = COMM_BIT(COMM_ALGO_NATIVE),
    .algo_hint = "NCCL picks its own algorithm (set NCCL_ALGO, or deterministic = true)",
    .algo_table = 0,
    .deterministic = 1,
    .async = 1,
    .usable = nccl_usable,
    .create = nccl_create,
};
