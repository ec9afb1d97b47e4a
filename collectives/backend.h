/*
 * collectives/backend.h - the interface a communication backend implements.
 *
 * A backend is an interface struct of function pointers plus an opaque
 * context (ggml style), found through a registry of entries {name, usable,
 * create} with the backend's capabilities. collectives/comm.c is the one
 * dispatcher: it picks the entry, checks arguments against the
 * capabilities, numbers the collectives, picks the algorithm, hands
 * asynchronous work to the queue (comm_queue.c), runs the watchdog, and
 * calls the slots below. Optional slots are NULL; the dispatcher supplies
 * their default. It names no backend: adding one is new files, an entry
 * `const struct comm_backend_entry comm_backend_NAME` and NAME in the
 * Makefile's COMM_BACKENDS list.
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
#include <time.h>

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
    /* NULL: the layout above (comm_op_piece). Else pieces[size]: each
     * rank's piece of the range, in global indices, in rank order but not
     * necessarily adjacent (hierarchical sub-operations; ring and shm). */
    const struct comm_shard *pieces;
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
    int uniform;                         /* every node holds local_size ranks, in blocks */
    const struct comm_config *cfg;
    const struct comm_algo_table *table; /* effective table (mpi) */
    const atomic_int *cancel;
};

struct comm_backend_i {
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
     * The asynchronous trio, required of a backend whose entry says async
     * (its own progress engine; nccl: the CUDA stream), NULL otherwise
     * (the dispatcher's communication thread runs the blocking slots in
     * start order). start queues op and returns at once; poll sets *done
     * when it has completed; release: the handle's op was waited for.
     */
    dure_status_t (*start)(void *ctx, const struct comm_op *op, void **handle);
    dure_status_t (*poll)(void *ctx, void *handle, int *done);
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
};

#define COMM_BIT(x) (1u << (unsigned)(x))

/*
 * A backend as the registry knows it. The capabilities are all the
 * dispatcher knows of a backend: it checks requests against them and words
 * its messages from them.
 */
struct comm_backend_entry {
    const char *name;                    /* as in [parallel] backend: "mpi", "nccl" */
    enum comm_backend id;
    enum comm_memory memory;             /* where its buffers live (comm_memory) */
    unsigned reduce_dtypes;              /* COMM_BIT(COMM_F32) | ...: what it reduces
                                            (all-reduce, reduce-scatter) */
    unsigned copy_dtypes;                /* what it moves (all-gather, broadcast) */
    unsigned algos;                      /* COMM_BIT(algo) of each [parallel] algo it takes
                                            besides auto */
    const char *algo_hint;               /* said when asked for another algo */
    int algo_table;                      /* 1: the dispatcher picks op->algo per size from the
                                            table; 0: it picks its own (op->algo NATIVE) */
    int deterministic;                   /* 1: can fix its reduction order */
    int async;                           /* 1: start/poll/release, its own progress engine */
    /* 1 when this process can run it (no collective calls): auto takes the
     * first entry usable on every rank. */
    int (*usable)(void);
    /* Fill *iface and *ctx, or fail with one clear message (DURE_ERR_NODEV
     * when the device it needs is missing). Collective over args->mpi. */
    dure_status_t (*create)(const struct comm_backend_args *args,
                            const struct comm_backend_i **iface, void **ctx);
};

/* The backends of this build, in auto's order of preference, NULL-
 * terminated (collectives/registry.c, from the Makefile's COMM_BACKENDS). */
extern const struct comm_backend_entry *const comm_backends[];

/*
 * Waiting on a peer or a device without taking a core (the waiting rank's
 * core belongs to its compute thread). After each poll that found nothing,
 * comm_backoff_nap returns at once for the first spin_ns (polls back to
 * back, for latency), then sleeps between polls, each nap doubling from
 * 1 us up to max_ns; it returns 1 when it slept. The caller checks the
 * watchdog's cancel flag itself.
 */
struct comm_backoff {
    long spin_ns, max_ns, nap_ns;
    unsigned polls;
    struct timespec t0;
};
void comm_backoff_init(struct comm_backoff *b, long spin_ns, long max_ns);
int comm_backoff_nap(struct comm_backoff *b);

/*
 * The piece of op's range that rank r handles: op->pieces[r] when given;
 * else for REDUCE_SCATTER and ALLGATHER the intersection of the range with
 * r's shard of `total`; for ALLREDUCE and BROADCAST the range split by
 * comm_shard_of(count, ...). Pieces are contiguous, in rank order, and tile
 * the range (given pieces need not tile it).
 */
struct comm_shard comm_op_piece(const struct comm_op *op, int size, int r);

#endif
