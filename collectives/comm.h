/*
 * collectives/comm.h - dure's communicator: the gradient exchange of a
 * data-parallel step, over MPI (host memory) or NCCL (device memory).
 *
 * A comm_t is an opaque handle created from an MPI communicator. It owns a
 * private duplicate of that communicator, the backend's buffers (allocated
 * once at creation, never in the training step), a communication thread that
 * runs asynchronous operations, and a hang watchdog.
 *
 * Memory, per backend (ask comm_memory()):
 *   mpi   host memory. Any host buffer works. On a communicator within one
 *         node, comm_mem_alloc returns registered memory (an MPI-3 shared
 *         window that every rank maps): the shm algorithm then reads peers'
 *         buffers in place instead of staging copies, which is the fastest
 *         path; allocate gradients and parameters with it.
 *   nccl  device memory of the comm's CUDA device (cudaMalloc, or
 *         comm_mem_alloc). Host pointers are an error NCCL reports.
 * Data types: COMM_F32 on both backends, COMM_BF16 on nccl only, COMM_F64
 * on both for all-gather and broadcast and on nccl for reductions too
 * (otherwise mpi returns DURE_ERR_UNSUPPORTED).
 *
 * Ordering: collectives are issued in program order and every rank must
 * issue the same sequence (same operation, count, type, root). Asynchronous
 * operations execute in the order they were started, one after another;
 * their waits may come in any order. A blocking call issued while
 * asynchronous operations are pending runs after them. Each issued
 * collective gets the next sequence number (comm_seq), which the watchdog
 * reports.
 *
 * Threads: one thread at a time may call into a given comm_t. The MPI
 * backend's communication thread calls MPI concurrently with whatever the
 * caller's thread does with MPI (data loading, logging), so dure requires
 * MPI_THREAD_MULTIPLE: initialise MPI with comm_mpi_init (or MPI_Init_thread
 * asking for MPI_THREAD_MULTIPLE); comm_create fails with a clear message
 * otherwise. Measured here (collectives/README.md): it adds about 0.4 us to
 * each of MPI's own small collectives and nothing to the shm algorithm,
 * which calls no MPI per operation. A blocking call with nothing pending
 * runs on the caller's thread: the hand-off to the communication thread
 * costs about 10 us, which small messages cannot afford.
 *
 * Caller runs (comm_config.caller_runs, mpi only): no communication thread.
 * A start form only queues; comm_wait, a blocking call and comm_destroy run
 * the queued operations in start order on the caller's thread, up to the
 * one they need, and comm_test runs nothing. For a node whose cores all
 * compute: there the thread has no core of its own, so overlap hides
 * nothing (its copies take the compute's core), and each operation paid a
 * hand-off and a wake of a peer's sleeping thread; at ZeRO 3 (60
 * collectives a step) the step was 3-7% faster without the thread
 * (collectives/README.md). Contract: nothing progresses outside a wait, so
 * every rank must wait on its operations in the same order relative to its
 * other blocking communication (the program order MPI asks anyway).
 *
 * Failure: any error inside a collective leaves the comm unusable (the ranks
 * may disagree on where the sequence stopped): every later call returns the
 * same status; only comm_destroy remains.
 *
 * Reduced-shard layout (ZeRO): a vector of n elements is split over R ranks
 * in contiguous shards of chunk = ceil(n / R) elements; rank r owns
 *   offset(r) = min(r * chunk, n),   count(r) = min(chunk, n - offset(r)).
 * Trailing ranks may own fewer elements, or none (n = 5, R = 4: counts 2, 2,
 * 1, 0). comm_shard_of computes it; reduce-scatter, all-gather, the
 * optimizer's state and the checkpoints all use this one layout.
 */
#ifndef DURE_COLLECTIVES_COMM_H
#define DURE_COLLECTIVES_COMM_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "common/alloc.h"
#include "common/status.h"
#include "device/device.h"

typedef struct comm comm_t;
typedef struct comm_req comm_req_t;
struct comm_tree; /* collectives/tree.h */

enum comm_backend {
    COMM_BACKEND_AUTO,   /* the first of this build's backends usable on every rank
                            (collectives/registry.c: nccl when every rank sees a GPU) */
    COMM_BACKEND_NCCL,
    COMM_BACKEND_MPI,
};

/* Algorithms of the mpi backend ([parallel] algo). nccl accepts auto only. */
enum comm_algo {
    COMM_ALGO_AUTO,      /* per-size choice from the algorithm table */
    COMM_ALGO_NATIVE,    /* MPI's own collectives (MPI_Allreduce, ...) */
    COMM_ALGO_RING,      /* dure's segmented, pipelined ring over MPI point-to-point */
    COMM_ALGO_SHM,       /* dure's MPI-3 shared-window path; all ranks on one node */
    COMM_ALGO_HIER,      /* shm within each node, a rail of equal local ranks between
                            nodes (collectives/hier.c); on one node it is shm */
    COMM_ALGO_COUNT
};

enum comm_dtype {
    COMM_F32,
    COMM_BF16,            /* nccl only */
    COMM_F64,             /* every backend copies it (all-gather, broadcast); nccl also
                             reduces it */
};
/* Element size of a dtype in bytes, and its name ("float32", "bf16", "float64"). */
size_t comm_dtype_size(enum comm_dtype dt);
const char *comm_dtype_name(enum comm_dtype dt);

enum comm_redop {
    COMM_SUM,
    COMM_AVG,            /* the sum divided by the communicator size, on every rank */
};

enum comm_coll {
    COMM_ALLREDUCE,
    COMM_REDUCE_SCATTER,
    COMM_ALLGATHER,
    COMM_BROADCAST,
    COMM_BARRIER,
    COMM_TREE_REDUCE_SCATTER,  /* exact mode: collectives/tree.h */
    COMM_COLL_COUNT
};

enum comm_memory { COMM_MEM_HOST, COMM_MEM_DEVICE };

/* ---------------------------------------------------------------- config */

/* Sizes from this many bytes up use algo (entries sorted by min_bytes, the
 * first entry at 0). Text form: "0:native,1M:shm,32M:ring" (K, M, G are
 * binary: 1M = 1048576 bytes). */
#define COMM_ALGO_TABLE_MAX 16
struct comm_algo_table {
    int n;
    struct {
        size_t min_bytes;
        enum comm_algo algo;  /* never COMM_ALGO_AUTO */
    } entry[COMM_ALGO_TABLE_MAX];
};

/* Why a rank has not joined a collective, as the watchdog sees it. */
enum comm_peer_state {
    COMM_PEER_BEHIND,   /* alive (heard from, or running on this node) but still
                           at an earlier collective */
    COMM_PEER_SILENT,   /* not heard from over the side channel for several
                           periods: dead, stopped, or its node or link is down */
    COMM_PEER_GONE,     /* on this node, and its process no longer exists */
    COMM_PEER_STOPPED,  /* on this node, and its process is stopped (SIGSTOP) */
};

/* "behind", "silent", "gone", "stopped". */
const char *comm_peer_state_name(enum comm_peer_state s);

/* One rank that has not joined the collective that hung. */
struct comm_hang_missing {
    int rank;                   /* in the comm's communicator */
    const char *host;           /* its host name */
    uint64_t joined;            /* the newest collective it began, as last known */
    enum comm_peer_state state;
    double silent_s;            /* SILENT: seconds since it was last heard */
};

/* What the watchdog knows about a collective that did not complete. */
struct comm_hang_report {
    int rank;                /* this rank in the comm's communicator */
    int size;
    const char *host;        /* this rank's host name */
    const char *op;          /* "all-reduce", "reduce-scatter", ... */
    const char *algo;        /* "native", "ring", "shm", "hier", "nccl" */
    uint64_t seq;            /* the collective's sequence number (from 1; 0: setup) */
    size_t bytes;            /* bytes of the full vector on this rank */
    double waited_s;         /* how long it has been running */
    int missing_known;       /* 1 when the not-joined list below is complete */
    const struct comm_hang_missing *missing; /* [n_missing] ranks that have not joined */
    int n_missing;
    const char *text;        /* the whole report, one line, ready to print */
};

/*
 * Called once, on the watchdog's own thread, when a collective exceeds
 * watchdog_s. The report's strings live until the callback returns. The
 * launcher installs a hook that prints text and aborts the job (MPI_Abort
 * with DURE_EXIT_WATCHDOG); library code never exits.
 */
typedef void (*comm_hang_fn)(const struct comm_hang_report *r, void *arg);

struct comm_config {
    enum comm_backend backend;   /* [parallel] backend */
    enum comm_algo algo;         /* [parallel] algo: forces one algorithm at every size */
    const char *algo_table;      /* [parallel] algo_table; NULL or "" = $DURE_ALGO_TABLE, else built-in */
    int deterministic;           /* [run] deterministic: fixed reduction order (see below) */
    double watchdog_s;           /* [parallel] watchdog_s; <= 0 turns the watchdog off */
    comm_hang_fn on_hang;        /* NULL: log the report and fail dure's own waits with DURE_ERR_TIMEOUT */
    void *on_hang_arg;
    int max_inflight;            /* asynchronous requests pending at once; 0 = 256 */
    int caller_runs;             /* [parallel] comm_thread: 1 = no communication thread, the
                                    caller's waits run the operations (above); mpi only,
                                    nccl's stream runs its own */
    long spin_ns;                /* shm: a wait for a peer polls this long before it sleeps;
                                    0 = COMM_SPIN_NS (a core shared with the compute);
                                    COMM_SPIN_OWN_CORE_NS when the waiting thread has a
                                    core of its own (comm_spin_ns) */
    size_t ring_seg_bytes;       /* [parallel] ring_segment_kib: the segment the ring (and
                                    hier's rail) moves per message; 0 =
                                    $DURE_RING_SEGMENT_KIB, else COMM_RING_SEG_BYTES; a
                                    whole number of KiB up to COMM_RING_SEG_MAX. It never
                                    changes a result (the order of the sums is per
                                    element), only the time */
    device_t *device;            /* the device whose memory the buffers are in (borrowed):
                                    nccl runs on it and waits for the work queued on its
                                    queue (device_stream) before each collective; NULL =
                                    nccl takes device local rank modulo the device count
                                    and the default stream */
};

/* Defaults: auto backend and algorithm, built-in table, not deterministic,
 * watchdog 600 s without a hook, 256 requests, no device, a communication
 * thread, the short spin. */
void comm_config_default(struct comm_config *cfg);

/* The ring's segment: 256 KiB suits a rate-limited link and shared memory;
 * a fast TCP link whose CPUs carry both directions moves 1 MiB segments
 * faster (collectives/README.md, *Measurements across nodes*). */
#define COMM_RING_SEG_BYTES ((size_t)256 << 10)
#define COMM_RING_SEG_MAX ((size_t)64 << 20)
/* Half pieces of this size or more are not cut (below). */
#define COMM_RING_SEG_UNCUT ((size_t)1 << 20)
/* The segment the ring moves pieces of `piece_bytes` in, configured
 * `seg_bytes`: at most half a piece (rounded down to 4 KiB), so that a
 * round's transfer overlaps the previous one's additions, but never below
 * min(seg_bytes, COMM_RING_SEG_BYTES); a piece whose half is
 * COMM_RING_SEG_UNCUT or more takes seg_bytes as configured. With 1 MiB
 * segments a 2-rank all-reduce of 1 MiB (pieces of 512 KiB, one round) ran
 * 0.85x the default 256 KiB's two rounds, and 1.14-1.19x it from 4 MiB
 * (tune/README.md); on the unlimited 2-node test fabric a 4 MiB all-reduce
 * in 2 MiB segments (each half in one message, as Open MPI's Rabenseifner
 * sends it) ran about 6% faster than cut to two 1 MiB rounds
 * (collectives/README.md). Segments up to 1 MiB cut as before. */
size_t comm_ring_segment_for(size_t seg_bytes, size_t piece_bytes);

/* A wait's spin before it sleeps: 20 us covers a peer that arrives a little
 * later without taking the compute thread's core for long; 2 ms covers most
 * of two ranks' skew between collectives, where the core is the waiter's
 * own and a sleep's wake costs more than the spin (collectives/README.md). */
#define COMM_SPIN_NS 20000L
#define COMM_SPIN_OWN_CORE_NS 2000000L

/*
 * parallel.comm_thread = auto's rule: whether a communicator over `nodes`
 * nodes of `per_node` ranks, each computing on `threads` threads of a node
 * with `cores` cores, runs its collectives on the caller (caller_runs):
 * one node whose cores all compute (per_node * threads >= cores). Across
 * nodes the thread stays: its waits are on the network, which overlap
 * does hide. comm_spin_ns: the spin for caller_runs on such a node:
 * COMM_SPIN_OWN_CORE_NS when every computing thread has a core
 * (per_node * threads <= cores), else COMM_SPIN_NS. `dure plan` applies
 * the same rule.
 */
int comm_caller_runs_auto(int nodes, int per_node, int threads, int cores);
long comm_spin_ns(int caller_runs, int per_node, int threads, int cores);

/*
 * Deterministic mode. mpi: the reduction order per element is fixed (ring:
 * along the ring; shm: rank 0 + rank 1 + ... in rank order) and native
 * entries of the table are replaced by shm (one node) or ring, so results
 * are bitwise identical from run to run at the same world size, ranks per
 * node, algorithm table and dure build. nccl: NCCL_ALGO=Ring and
 * NCCL_PROTO=Simple are pinned before the NCCL communicator is created;
 * results repeat run to run on the same GPUs, world size, NCCL version and
 * NCCL channel settings. Not guaranteed: equality between backends, between
 * algorithms (except at 2 ranks), or across world sizes.
 */

/* Parse "auto|nccl|mpi", "auto|native|ring|shm|hier": DURE_ERR_ARG names the value. */
dure_status_t comm_backend_parse(const char *s, enum comm_backend *out);
dure_status_t comm_algo_parse(const char *s, enum comm_algo *out);
const char *comm_backend_name(enum comm_backend b);
const char *comm_algo_name(enum comm_algo a);
const char *comm_coll_name(enum comm_coll c);   /* "all-reduce", ... */

/* Parse a byte count with an optional binary suffix: "4096", "64K", "1M",
 * "2G" (as in algorithm tables and `dure bench -b`). 0 on success, -1 on a
 * malformed or overflowing value. */
int comm_parse_bytes(const char *s, size_t *bytes);
/* The inverse: "64K", "1M", "2G" for exact binary multiples, else the bytes
 * ("1536"); always NUL-terminated. */
void comm_format_bytes(size_t b, char *buf, size_t len);

/* Parse a table's text form into *t. DURE_ERR_ARG names the bad entry
 * (unknown algorithm, auto, bad size, unsorted, or not starting at 0). */
dure_status_t comm_algo_table_parse(const char *s, struct comm_algo_table *t);
/* Write the text form into buf (always NUL-terminated). */
void comm_algo_table_format(const struct comm_algo_table *t, char *buf, size_t len);
/* The algorithm the table picks for a message of `bytes`. */
enum comm_algo comm_algo_table_pick(const struct comm_algo_table *t, size_t bytes);
/*
 * The built-in table for a communicator over `nodes` nodes of
 * `ranks_per_node` ranks each (0: nodes hold different numbers, or ranks
 * are not placed in blocks). One node: "0:shm", measured with `dure bench
 * allreduce` for native, ring and shm on 2 ranks. Across nodes of equal
 * size: hier, measured on the namespaced test cluster at 1 Gbit/s and
 * unlimited (collectives/README.md). Otherwise "0:native,1M:ring".
 */
const struct comm_algo_table *comm_algo_table_builtin(int nodes, int ranks_per_node);

/* ---------------------------------------------------------------- MPI setup */

/*
 * Initialise MPI at the thread level dure requires (MPI_THREAD_MULTIPLE),
 * set the error log's rank, and make MPI_COMM_WORLD return errors instead
 * of aborting. DURE_ERR_MPI with a clear message if MPI cannot provide it.
 */
dure_status_t comm_mpi_init(int *argc, char ***argv);
/* MPI_Finalize, when MPI is initialised and not yet finalized. */
dure_status_t comm_mpi_finalize(void);

/* ---------------------------------------------------------------- lifetime */

/*
 * Create a communicator over the ranks of `mpi` (collective over them).
 * Duplicates `mpi`; the caller keeps ownership of its own communicator.
 * cfg is copied (algo_table text included). Fails with one clear message:
 * DURE_ERR_NODEV for backend = nccl with no GPU ("no CUDA device visible")
 * or in a build without it ("built without it"), DURE_ERR_ARG for a bad
 * table, algo = shm across nodes or an algo the backend does not run,
 * DURE_ERR_MPI for a thread level below MPI_THREAD_MULTIPLE,
 * DURE_ERR_TIMEOUT when the backend's setup (ncclCommInitRank) outlived
 * watchdog_s and no on_hang hook ended the job.
 */
dure_status_t comm_create(MPI_Comm mpi, const struct comm_config *cfg, comm_t **out);

/* The node-local sub-communicator of c (ranks sharing memory with this one),
 * with c's configuration; collective over c. The caller destroys it. */
dure_status_t comm_create_node(comm_t *c, comm_t **out);

/* Wait for pending operations, stop the threads, free everything. NULL is a
 * no-op. Collective over the communicator (shared windows are freed).
 * After a hang (DURE_ERR_TIMEOUT from the watchdog, whose hook returned)
 * it is local: operations queued behind the hung one never run, but the
 * hung one may still be inside its collective on the communication thread
 * and write its buffers when it returns (a late peer), so the comm is left
 * allocated and the caller keeps those buffers or ends the process (the
 * launcher's hook does). */
void comm_destroy(comm_t *c);

int comm_rank(const comm_t *c);
int comm_size(const comm_t *c);
int comm_local_rank(const comm_t *c);    /* rank among the ranks of this node */
int comm_local_size(const comm_t *c);
int comm_node_count(const comm_t *c);    /* number of nodes the comm spans */
enum comm_backend comm_backend(const comm_t *c);   /* the resolved backend: mpi or nccl */
enum comm_memory comm_memory(const comm_t *c);
uint64_t comm_seq(const comm_t *c);      /* collectives issued so far */
int comm_max_inflight(const comm_t *c);  /* asynchronous requests allowed at once */
/* 1 when the caller's waits run the collectives (comm_config.caller_runs on
 * a backend without its own engine), 0 when a thread or a stream does. */
int comm_caller_runs(const comm_t *c);
/*
 * CPU seconds (user and system) the communication thread has used since
 * comm_create: the collectives it ran, their waits' polls and the kernel's
 * work on their messages (on TCP, the sends' and receives' copies and
 * protocol), all of it taken from this rank's cores while it computes.
 * NAN when no such thread runs (comm_caller_runs: the caller's waits run
 * the collectives, their time is the caller's; nccl: the device does).
 */
double comm_thread_cpu_s(const comm_t *c);
size_t comm_ring_segment(const comm_t *c); /* the ring's segment in bytes; 0 on nccl */
/* The same as text: "256K", or "none" on nccl (always NUL-terminated). */
void comm_ring_segment_text(const comm_t *c, char *buf, size_t len);
/* The environment the mpi backend's communicators read, which every rank
 * must share (comm_create refuses ranks that resolve it differently; dure
 * preflight names their nodes): "DURE_ALGO_TABLE=... DURE_RING_SEGMENT_KIB=...",
 * "(unset)" for an unset or empty variable, values cut to fit. */
void comm_env_text(char *buf, size_t len);

/* The algorithm c uses for `coll` on `bytes` (nccl reports COMM_ALGO_NATIVE). */
enum comm_algo comm_algo_for(const comm_t *c, enum comm_coll coll, size_t bytes);
/* The effective table as text (after deterministic-mode substitutions). */
void comm_algo_table_text(const comm_t *c, char *buf, size_t len);

/* ---------------------------------------------------------------- memory */

/*
 * Allocate `bytes` of the backend's memory kind (see above). Free with
 * comm_mem_free (NULL is a no-op). Setup-time calls: collective over the
 * comm on the mpi backend (every rank allocates and frees in the same
 * order; sizes may differ), and not while asynchronous operations are
 * pending. *p is NULL for 0 bytes on nccl; on mpi it may be non-NULL.
 */
dure_status_t comm_mem_alloc(comm_t *c, size_t bytes, void **p);
void comm_mem_free(comm_t *c, void *p);
/* comm_mem_alloc and comm_mem_free as an allocator (common/alloc.h), for
 * code that takes one: model_create's parameters and gradients, so that
 * the buffers the gradient exchange reads are the comm's own. */
struct dure_allocator comm_allocator(comm_t *c);
/* Copy between host memory and the backend's memory (plain memcpy on mpi). */
dure_status_t comm_mem_upload(comm_t *c, void *dst, const void *host_src, size_t bytes);
dure_status_t comm_mem_download(comm_t *c, void *host_dst, const void *src, size_t bytes);

/* ---------------------------------------------------------------- layout */

struct comm_shard {
    size_t offset;   /* first element this rank owns */
    size_t count;    /* elements it owns (may be 0) */
};
/* Rank `rank`'s shard of a vector of n elements over `size` ranks (see top). */
struct comm_shard comm_shard_of(size_t n, int size, int rank);
/* The part of [offset, offset + count) that rank `rank` owns under
 * comm_shard_of(total, size, rank): their intersection, possibly empty
 * (count 0, offset clamped into the range). */
struct comm_shard comm_range_part(size_t total, int size, int rank, size_t offset,
                                  size_t count);

/* ---------------------------------------------------------------- blocking */

/*
 * All-reduce: recv[i] = op over ranks of send[i], i < count, on every rank.
 * send == recv is in place. send[count], recv[count].
 */
dure_status_t comm_allreduce(comm_t *c, const void *send, void *recv, size_t count,
                             enum comm_dtype dt, enum comm_redop op);

/*
 * Reduce-scatter: send[count] is the full vector; recv[sh.count] receives
 * this rank's reduced shard, sh = comm_shard_of(count, size, rank). In place
 * when recv == send + sh.offset; the rest of send is then undefined.
 */
dure_status_t comm_reduce_scatter(comm_t *c, const void *send, void *recv, size_t count,
                                  enum comm_dtype dt, enum comm_redop op);

/*
 * All-gather: send[sh.count] is this rank's shard of a vector of count
 * elements; recv[count] receives the whole vector. In place when
 * send == recv + sh.offset.
 */
dure_status_t comm_allgather(comm_t *c, const void *send, void *recv, size_t count,
                             enum comm_dtype dt);

/* Broadcast root's send[count] into every rank's recv[count]; send is read
 * on root only; send == recv is in place. */
dure_status_t comm_broadcast(comm_t *c, const void *send, void *recv, size_t count,
                             enum comm_dtype dt, int root);

dure_status_t comm_barrier(comm_t *c);

/*
 * Range forms for gradient buckets and ZeRO, in place on the full vector
 * buf[total]: only elements [offset, offset + count) take part.
 * reduce-scatter: every element of the range is reduced onto its owner
 * (comm_shard_of(total, ...)) at the same index of the owner's buf; the
 * range's other elements are undefined afterwards.
 * all-gather: each owner's elements of the range are copied to the same
 * index on every rank.
 */
dure_status_t comm_reduce_scatter_range(comm_t *c, void *buf, size_t total, size_t offset,
                                        size_t count, enum comm_dtype dt, enum comm_redop op);
dure_status_t comm_allgather_range(comm_t *c, void *buf, size_t total, size_t offset,
                                   size_t count, enum comm_dtype dt);

/*
 * Exact reduce-scatter (exact mode, run.exact), in place on the full vectors
 * of t's rows (`total` elements each), only [offset, offset + count) taking
 * part: every rank's frontier rows at the range (collectives/tree.h) travel
 * to the owners of its elements (comm_shard_of(total, ...)), and each owner
 * adds them in the fixed micro-batch tree, never by rank: afterwards
 * t->row[t->rows - 1] holds, at this rank's elements of the range, the sum
 * of all the ranks' micro-batches with the same bits on any world size that
 * divides t->leaves. The range's other elements of the rows, and t->recv,
 * are scratch. float32 only; rows and recv in the comm's memory. Traffic:
 * each rank sends its rows' pieces, (size - 1) / size of the range per
 * row: one row (an all-reduce's reduce-scatter half) when its micro-batches
 * are an aligned power of two, more for carries.
 */
dure_status_t comm_tree_reduce_scatter_range(comm_t *c, const struct comm_tree *t,
                                             size_t total, size_t offset, size_t count);

/* ---------------------------------------------------------------- async */

/*
 * Start forms: same arguments and meaning as the blocking forms. The
 * operation runs on the communication thread (mpi) or the comm's CUDA
 * stream (nccl) while the caller goes on; the buffers must stay untouched
 * until comm_wait returns. *req is valid until comm_wait (exactly one wait
 * per start). DURE_ERR_ARG when max_inflight requests are pending.
 */
dure_status_t comm_allreduce_start(comm_t *c, const void *send, void *recv, size_t count,
                                   enum comm_dtype dt, enum comm_redop op, comm_req_t **req);
dure_status_t comm_reduce_scatter_start(comm_t *c, const void *send, void *recv,
                                        size_t count, enum comm_dtype dt,
                                        enum comm_redop op, comm_req_t **req);
dure_status_t comm_allgather_start(comm_t *c, const void *send, void *recv, size_t count,
                                   enum comm_dtype dt, comm_req_t **req);
dure_status_t comm_broadcast_start(comm_t *c, const void *send, void *recv, size_t count,
                                   enum comm_dtype dt, int root, comm_req_t **req);
dure_status_t comm_reduce_scatter_range_start(comm_t *c, void *buf, size_t total,
                                              size_t offset, size_t count, enum comm_dtype dt,
                                              enum comm_redop op, comm_req_t **req);
dure_status_t comm_allgather_range_start(comm_t *c, void *buf, size_t total, size_t offset,
                                         size_t count, enum comm_dtype dt, comm_req_t **req);
dure_status_t comm_tree_reduce_scatter_range_start(comm_t *c, const struct comm_tree *t,
                                                   size_t total, size_t offset, size_t count,
                                                   comm_req_t **req);

/*
 * Part forms, for ZeRO-3, where no rank holds the whole vector: the range
 * [offset, offset + count) of a vector of `total` elements sharded by
 * comm_shard_of(total, ...), with range[count] holding the range (element
 * `offset` at range[0]) and mine holding this rank's part of it,
 * part = comm_range_part(total, size, rank, offset, count) (element
 * part.offset at mine[0]; unused when the part is empty).
 * reduce-scatter: range is this rank's input; mine receives the reduced
 *   part. all-gather: mine is this rank's part; range receives the range.
 * In place when mine == range + (part.offset - offset); the rest of the
 * range is then undefined after a reduce-scatter. Otherwise as the start
 * forms above.
 */
dure_status_t comm_reduce_scatter_part_start(comm_t *c, const void *range, void *mine,
                                             size_t total, size_t offset, size_t count,
                                             enum comm_dtype dt, enum comm_redop op,
                                             comm_req_t **req);
dure_status_t comm_allgather_part_start(comm_t *c, const void *mine, void *range, size_t total,
                                        size_t offset, size_t count, enum comm_dtype dt,
                                        comm_req_t **req);

/* Block until req completes; releases req. Returns the operation's status. */
dure_status_t comm_wait(comm_t *c, comm_req_t *req);
/* *done = 1 when req has completed (then comm_wait returns at once). */
dure_status_t comm_test(comm_t *c, comm_req_t *req, int *done);

#endif
