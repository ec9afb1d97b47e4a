/*
 * collectives/backend.h - the interface a communication backend implements.
 *
 * A backend is an interface struct of function pointers plus an opaque
 * context (ggml style). collectives/comm.c is the one dispatcher: it checks
 * arguments, numbers the collectives, picks the algorithm, queues
 * asynchronous work, runs the watchdog, and calls the slots below. Optional
 * slots are NULL; the dispatcher supplies their default.
 *
 * Every operation reaches a backend as one normalised struct comm_op over a
 * range of a vector's global element indices, whatever public form it came
 * from, so the four collectives share one description.
 */
#ifndef DURE_COLLECTIVES_BACKEND_H
#define DURE_COLLECTIVES_BACKEND_H

#include <mpi.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "collectives/comm.h"
#include "common/status.h"

/*
 * One collective. Buffers are addressed by global element index i of a
 * vector of `total` elements: element i of the input lives at
 *   send + (i - send_first) * esize,  and of the output at recv + (i - recv_first) * esize.
 * The operation covers i in [offset, offset + count).
 *   ALLREDUCE       total == count, offset 0. send/recv first 0.
 *   REDUCE_SCATTER  input: the whole range; output: the part of the range
 *                   this rank owns under comm_shard_of(total, size, rank).
 *   ALLGATHER       input: the part of the range this rank owns; output: the range.
 *   BROADCAST       input (root only): the range; output: the range.
 *   BARRIER         count 0, no buffers.
 * In place when send and recv address the same bytes for the same index.
 */
struct comm_op {
    enum comm_coll coll;
    enum comm_algo algo;       /* resolved by the dispatcher: never AUTO (nccl: NATIVE) */
    enum comm_dtype dtype;
    enum comm_redop redop;     /* ALLREDUCE and REDUCE_SCATTER */
    int root;                  /* BROADCAST */
    const void *send;
    size_t send_first;         /* global index of the element at send */
    void *recv;
    size_t recv_first;         /* global index of the element at recv */
    size_t total;              /* elements in the whole vector (the shard layout's n) */
    size_t offset;             /* first element of the range */
    size_t count;              /* elements in the range */
    uint64_t seq;              /* from 1, in issue order */
};

/* The MPI type that moves a dtype's elements (the mpi backend's copies;
 * its reductions are float32 only). */
MPI_Datatype comm_dtype_mpi(enum comm_dtype dt);

/* Address of global element i in op's input / output (see above). */
const void *comm_op_send_at(const struct comm_op *op, size_t i);
void *comm_op_recv_at(const struct comm_op *op, size_t i);
/* 1 when input and output of element i are the same bytes. */
int comm_op_in_place(const struct comm_op *op, size_t i);

/*
 * What a backend may need from the dispatcher. `cancel` becomes non-zero when
 * the watchdog gave up on the running operation (no on_hang hook installed,
 * or the hook returned): a backend's own wait loops poll it and return
 * DURE_ERR_TIMEOUT. Calls that block inside MPI cannot poll it.
 */
struct comm_backend_args {
    MPI_Comm mpi;                        /* the comm's private duplicate */
    int rank, size;
    int local_rank, local_size, nodes;
    const struct comm_config *cfg;
    const struct comm_algo_table *table; /* effective table (mpi) */
    const atomic_int *cancel;
};

struct comm_backend_i {
    const char *name;                    /* "mpi", "nccl" */
    enum comm_memory memory;

    /* Required: run op to completion on the calling thread. The dispatcher
     * guarantees that only one operation of a comm runs at a time. */
    dure_status_t (*allreduce)(void *ctx, const struct comm_op *op);
    dure_status_t (*reduce_scatter)(void *ctx, const struct comm_op *op);
    dure_status_t (*allgather)(void *ctx, const struct comm_op *op);
    dure_status_t (*broadcast)(void *ctx, const struct comm_op *op);
    /* Required: free the context (collective; the comm is idle). */
    void (*destroy)(void *ctx);

    /* Optional. NULL: an all-reduce of one float through the backend. */
    dure_status_t (*barrier)(void *ctx, const struct comm_op *op);
    /*
     * Optional asynchronous pair, for backends with their own progress
     * engine (nccl: the CUDA stream). start queues op and returns at once;
     * poll sets *done when it has completed. NULL: the dispatcher's
     * communication thread runs the blocking slots in start order.
     */
    dure_status_t (*start)(void *ctx, const struct comm_op *op, void **handle);
    dure_status_t (*poll)(void *ctx, void *handle, int *done);
    /* Required with start: the handle's op was waited for; reuse it. */
    void (*release)(void *ctx, void *handle);
    /* Optional: tear down in-flight communication after a hang (nccl:
     * ncclCommAbort). Called on the watchdog thread when the on_hang hook
     * returned or none is installed, while the owner may be polling: it must
     * be safe against a concurrent poll. */
    void (*abort)(void *ctx);
    /* Optional memory slots. NULL: 64-byte aligned host memory and memcpy. */
    dure_status_t (*mem_alloc)(void *ctx, size_t bytes, void **p);
    void (*mem_free)(void *ctx, void *p);
    dure_status_t (*mem_upload)(void *ctx, void *dst, const void *host_src, size_t bytes);
    dure_status_t (*mem_download)(void *ctx, void *host_dst, const void *src, size_t bytes);
    /* Optional: the algorithm this backend runs for op (NULL: op->algo). */
    enum comm_algo (*algo_for)(void *ctx, enum comm_coll coll, size_t bytes);
};

/*
 * Backend constructors: fill *iface and *ctx, or fail with one clear
 * message. Collective over args->mpi.
 *   mpi:  collectives/mpi_backend.c
 *   nccl: collectives/nccl_cuda.c (CUDA builds) or collectives/nccl_nocuda.c,
 *         which fails with DURE_ERR_NODEV.
 */
dure_status_t comm_backend_mpi_create(const struct comm_backend_args *args,
                                      const struct comm_backend_i **iface, void **ctx);
dure_status_t comm_backend_nccl_create(const struct comm_backend_args *args,
                                       const struct comm_backend_i **iface, void **ctx);

/* 1 when this build has the nccl backend and a GPU is visible (auto's test). */
int comm_backend_nccl_usable(void);

/*
 * The piece of op's range that rank r handles: for REDUCE_SCATTER and
 * ALLGATHER the intersection of the range with r's shard of `total`; for
 * ALLREDUCE and BROADCAST the range split by comm_shard_of(count, ...).
 * Pieces are contiguous, in rank order, and tile the range.
 */
struct comm_shard comm_op_piece(const struct comm_op *op, int size, int r);

#endif
