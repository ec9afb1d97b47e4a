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
 * ncclCommGetAsyncError. The watchdog's abort slot calls ncclCommAbort.
 *
 * Uneven layouts: NCCL's reduce-scatter and all-gather need equal pieces.
 * When the op's pieces are equal (the vector's length a multiple of the
 * size, whole-vector range) they are used directly; otherwise one grouped
 * ncclReduce / ncclBroadcast per non-empty piece does the same job. Pad the
 * flat gradient vector to a multiple of the world size for the fast path.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/backend.h"
#include "common/cuda_check.h"
#include "common/mpi_check.h"

struct nccl_ctx {
    ncclComm_t nccl;
    int have_nccl;               /* under mu: 0 once aborted */
    pthread_mutex_t mu;          /* the watchdog's abort against the owner's polling */
    cudaStream_t stream;         /* the comm's own */
    cudaStream_t compute;        /* the caller's (NULL: legacy default stream) */
    cudaEvent_t ready;           /* recorded on compute, waited on by stream */
    cudaEvent_t sync;            /* blocking operations wait on this */
    cudaEvent_t *events;         /* events[nev]: one per pending async op */
    int *free_ev;                /* stack of free indices into events */
    int nev, nfree;
    int device;
    int rank, size;
    const atomic_int *cancel;
    float *one;                  /* one device float for the barrier */
};

static ncclDataType_t nccl_type(enum comm_dtype dt)
{
    return dt == COMM_BF16 ? ncclBfloat16 : dt == COMM_F64 ? ncclFloat64 : ncclFloat32;
}

/* Queue op on the comm stream, after the compute stream's queued work. */
static dure_status_t enqueue(struct nccl_ctx *x, const struct comm_op *op)
{
    dure_status_t st = DURE_OK;
    const ncclDataType_t t = nccl_type(op->dtype);
    const ncclRedOp_t red = op->redop == COMM_AVG ? ncclAvg : ncclSum;
    struct comm_shard mine = comm_op_piece(op, x->size, x->rank);
    int equal = 1;

    DURE_CUDA_TRY(cudaEventRecord(x->ready, x->compute));
    DURE_CUDA_TRY(cudaStreamWaitEvent(x->stream, x->ready, 0));
    if (op->coll == COMM_REDUCE_SCATTER || op->coll == COMM_ALLGATHER) {
        for (int j = 1; j < x->size; j++) {
            equal &= comm_op_piece(op, x->size, j).count == comm_op_piece(op, x->size, 0).count;
        }
    }
    switch (op->coll) {
    case COMM_ALLREDUCE:
        DURE_NCCL_TRY(ncclAllReduce(comm_op_send_at(op, 0), comm_op_recv_at(op, 0), op->count, t,
                                    red, x->nccl, x->stream));
        break;
    case COMM_REDUCE_SCATTER:
        if (equal) {
            DURE_NCCL_TRY(ncclReduceScatter(comm_op_send_at(op, op->offset),
                                            comm_op_recv_at(op, mine.offset), mine.count, t, red,
                                            x->nccl, x->stream));
            break;
        }
        DURE_NCCL_TRY(ncclGroupStart());
        for (int j = 0; j < x->size; j++) {
            struct comm_shard p = comm_op_piece(op, x->size, j);
            if (p.count == 0) {
                continue;
            }
            /* recvbuff matters on the root only. */
            void *recv = j == x->rank ? comm_op_recv_at(op, p.offset)
                                      : (void *)comm_op_send_at(op, p.offset);
            ncclResult_t rc = ncclReduce(comm_op_send_at(op, p.offset), recv, p.count, t, red, j,
                                         x->nccl, x->stream);
            if (rc != ncclSuccess) {
                ncclGroupEnd();
                DURE_NCCL_TRY(rc);
            }
        }
        DURE_NCCL_TRY(ncclGroupEnd());
        break;
    case COMM_ALLGATHER:
        if (equal) {
            DURE_NCCL_TRY(ncclAllGather(comm_op_send_at(op, mine.offset),
                                        comm_op_recv_at(op, op->offset), mine.count, t, x->nccl,
                                        x->stream));
            break;
        }
        DURE_NCCL_TRY(ncclGroupStart());
        for (int j = 0; j < x->size; j++) {
            struct comm_shard p = comm_op_piece(op, x->size, j);
            if (p.count == 0) {
                continue;
            }
            const void *send = j == x->rank ? comm_op_send_at(op, p.offset)
                                            : comm_op_recv_at(op, p.offset);
            ncclResult_t rc = ncclBroadcast(send, comm_op_recv_at(op, p.offset), p.count, t, j,
                                            x->nccl, x->stream);
            if (rc != ncclSuccess) {
                ncclGroupEnd();
                DURE_NCCL_TRY(rc);
            }
        }
        DURE_NCCL_TRY(ncclGroupEnd());
        break;
    case COMM_BROADCAST:
        DURE_NCCL_TRY(ncclBroadcast(comm_op_send_at(op, op->offset),
                                    comm_op_recv_at(op, op->offset), op->count, t, op->root,
                                    x->nccl, x->stream));
        break;
    case COMM_BARRIER:
        DURE_NCCL_TRY(ncclAllReduce(x->one, x->one, 1, ncclFloat32, ncclSum, x->nccl,
                                    x->stream));
        break;
    default:
        DURE_FAIL(DURE_ERR_INTERNAL, "nccl: unknown collective %d", (int)op->coll);
    }
out:
    return st;
}

/* *done = 1 once ev has fired; NCCL's asynchronous errors become statuses. */
static dure_status_t query(struct nccl_ctx *x, cudaEvent_t ev, int *done)
{
    dure_status_t st = DURE_OK;
    ncclResult_t async = ncclSuccess;
    *done = 0;
    /* Non-blocking calls only, under mu: the watchdog may abort (and free)
     * the NCCL communicator from its own thread. */
    pthread_mutex_lock(&x->mu);
    DURE_CHECK(x->have_nccl, DURE_ERR_TIMEOUT,
               "nccl: the communicator was aborted by the watchdog");
    DURE_NCCL_TRY(ncclCommGetAsyncError(x->nccl, &async));
    DURE_NCCL_TRY(async);
    cudaError_t rc = cudaEventQuery(ev);
    if (rc == cudaErrorNotReady) {
        goto out;
    }
    DURE_CUDA_TRY(rc);
    *done = 1;
out:
    pthread_mutex_unlock(&x->mu);
    return st;
}

static dure_status_t nccl_run(void *vctx, const struct comm_op *op)
{
    dure_status_t st = DURE_OK;
    struct nccl_ctx *x = vctx;
    int done = 0;
    DURE_TRY(enqueue(x, op));
    DURE_CUDA_TRY(cudaEventRecord(x->sync, x->stream));
    while (!done) {
        DURE_TRY(query(x, x->sync, &done));
        DURE_CHECK(done || !atomic_load(x->cancel), DURE_ERR_TIMEOUT,
                   "nccl: %s seq %llu cancelled by the watchdog", comm_coll_name(op->coll),
                   (unsigned long long)op->seq);
    }
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

/* On the watchdog thread: ncclCommAbort also unblocks an owner stuck inside
 * an NCCL call (for example waiting for a peer to connect). */
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

static dure_status_t nccl_upload(void *vctx, void *dst, const void *src, size_t bytes)
{
    dure_status_t st = DURE_OK;
    (void)vctx;
    DURE_CUDA_TRY(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
out:
    return st;
}

static dure_status_t nccl_download(void *vctx, void *dst, const void *src, size_t bytes)
{
    dure_status_t st = DURE_OK;
    (void)vctx;
    DURE_CUDA_TRY(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
out:
    return st;
}

static void nccl_destroy(void *vctx)
{
    struct nccl_ctx *x = vctx;
    if (!x) {
        return;
    }
    if (x->have_nccl) {
        ncclCommDestroy(x->nccl);
    }
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
    free(x->events);
    free(x->free_ev);
    free(x);
}

static const struct comm_backend_i nccl_backend = {
    .name = "nccl",
    .memory = COMM_MEM_DEVICE,
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

int comm_backend_nccl_usable(void)
{
    int n = 0;
    return device_kind_count("cuda", &n, 1) == DURE_OK;
}

dure_status_t comm_backend_nccl_create(const struct comm_backend_args *a,
                                       const struct comm_backend_i **iface, void **vctx)
{
    dure_status_t st = DURE_OK;
    struct nccl_ctx *x = NULL;
    ncclUniqueId id;
    int ndev = 0, ok = 0, all_ok = 0;

    *vctx = NULL;
    /* Every rank decides together, so that one rank without a GPU does not
     * leave the others waiting in ncclCommInitRank. */
    ok = device_kind_count("cuda", &ndev, 0) == DURE_OK; /* logs "no CUDA device visible ..." */
    DURE_MPI_TRY(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, a->mpi));
    if (!ok) {
        st = DURE_ERR_NODEV;
        goto out;
    }
    DURE_CHECK(all_ok, DURE_ERR_NODEV,
               "backend = nccl: another rank sees no CUDA device: use backend = mpi");
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

    if (a->rank == 0) {
        DURE_NCCL_TRY(ncclGetUniqueId(&id));
    }
    DURE_MPI_TRY(MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, a->mpi));
    DURE_NCCL_TRY(ncclCommInitRank(&x->nccl, a->size, id, a->rank));
    x->have_nccl = 1;
    *iface = &nccl_backend;
    *vctx = x;
    x = NULL;
out:
    nccl_destroy(x);
    return st;
}
