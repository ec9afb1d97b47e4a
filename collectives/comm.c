/*
 * collectives/comm.c - the communicator's lifetime and the one dispatcher:
 * the backend from the registry (by its capabilities, never by name), the
 * algorithm table, argument checks, sequence numbers, the watchdog's
 * hook-up and memory. Backends see only normalised struct comm_op values
 * (backend.h); the asynchronous queue is comm_queue.c and the public forms
 * comm_forms.c (comm_priv.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/comm_priv.h"
#include "collectives/mpi_algos.h"
#include "collectives/tree.h"
#include "common/agree.h"
#include "common/mpi_check.h"

void comm_config_default(struct comm_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->backend = COMM_BACKEND_AUTO;
    cfg->algo = COMM_ALGO_AUTO;
    cfg->watchdog_s = 600.0;
    cfg->max_inflight = 256;
}

int comm_caller_runs_auto(int nodes, int per_node, int threads, int cores)
{
    return nodes == 1 && cores > 0 && (long)per_node * threads >= cores;
}

long comm_spin_ns(int caller_runs, int per_node, int threads, int cores)
{
    return caller_runs && (long)per_node * threads <= cores ? COMM_SPIN_OWN_CORE_NS
                                                             : COMM_SPIN_NS;
}

/* ---------------------------------------------------------------- MPI setup */

dure_status_t comm_mpi_init(int *argc, char ***argv)
{
    dure_status_t st = DURE_OK;
    int inited = 0, provided = MPI_THREAD_SINGLE, rank = 0;

    DURE_MPI_TRY(MPI_Initialized(&inited));
    if (inited) {
        DURE_MPI_TRY(MPI_Query_thread(&provided));
    } else {
        DURE_MPI_TRY(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
    }
    DURE_CHECK(provided == MPI_THREAD_MULTIPLE, DURE_ERR_MPI,
               "MPI provides thread level %d, dure needs MPI_THREAD_MULTIPLE (%d): use an MPI "
               "built with thread support",
               provided, MPI_THREAD_MULTIPLE);
    DURE_MPI_TRY(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    DURE_MPI_TRY(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    dure_log_set_rank(rank);
out:
    return st;
}

dure_status_t comm_mpi_finalize(void)
{
    dure_status_t st = DURE_OK;
    int inited = 0, finalized = 0;
    DURE_MPI_TRY(MPI_Initialized(&inited));
    DURE_MPI_TRY(MPI_Finalized(&finalized));
    if (inited && !finalized) {
        DURE_MPI_TRY(MPI_Finalize());
    }
out:
    return st;
}

/* ---------------------------------------------------------------- the backend */

/* The names of this build's backends ("nccl, mpi") into buf. */
static void built_names(char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (const struct comm_backend_entry *const *e = comm_backends; *e && at < len; e++) {
        int n = snprintf(buf + at, len - at, "%s%s", at ? ", " : "", (*e)->name);
        at += n > 0 ? (size_t)n : 0;
    }
}

/* The entry the configuration asks for. auto: the first entry usable on
 * every rank (one rank without a GPU makes every rank pick the next), so
 * that all ranks construct the same backend. Collective over c->ctl. */
static dure_status_t pick_backend(comm_t *c)
{
    dure_status_t st = DURE_OK;
    const struct comm_backend_entry *const *e = comm_backends;
    char names[128];

    built_names(names, sizeof names);
    if (c->cfg.backend == COMM_BACKEND_AUTO) {
        for (; *e; e++) {
            int here = (*e)->usable(), everywhere = 0;
            DURE_MPI_TRY(MPI_Allreduce(&here, &everywhere, 1, MPI_INT, MPI_MIN, c->ctl));
            if (everywhere) {
                break;
            }
        }
        DURE_CHECK(*e, DURE_ERR_NODEV,
                   "backend = auto: none of this build's backends (%s) is usable on every rank",
                   names);
    } else {
        while (*e && (*e)->id != c->cfg.backend) {
            e++;
        }
        /* The fallback is the last entry, the one that needs no device. */
        const struct comm_backend_entry *last = comm_backends[0];
        for (const struct comm_backend_entry *const *f = comm_backends; *f; f++) {
            last = *f;
        }
        DURE_CHECK(*e, DURE_ERR_NODEV,
                   "backend = %s: this dure was built without it (backends built in: %s): use "
                   "%sparallel.backend = %s",
                   comm_backend_name(c->cfg.backend), names,
                   last->memory == COMM_MEM_HOST ? "run.device = cpu and " : "", last->name);
    }
    c->backend = *e;
    DURE_CHECK(c->cfg.algo == COMM_ALGO_AUTO || (c->backend->algos & COMM_BIT(c->cfg.algo)),
               DURE_ERR_ARG, "algo = %s: backend %s does not run it%s%s",
               comm_algo_name(c->cfg.algo), c->backend->name,
               c->backend->algo_hint ? ": " : "",
               c->backend->algo_hint ? c->backend->algo_hint : "");
    DURE_CHECK(!c->cfg.deterministic || c->backend->deterministic, DURE_ERR_ARG,
               "deterministic = true: backend %s cannot fix its reduction order",
               c->backend->name);
out:
    return st;
}

/* ---------------------------------------------------------------- the environment */

/* What the mpi backend's communicators read from each rank's environment. */
#define ENV_TABLE "DURE_ALGO_TABLE"
#define ENV_SEGMENT "DURE_RING_SEGMENT_KIB"

void comm_env_text(char *buf, size_t len)
{
    const char *table = getenv(ENV_TABLE), *seg = getenv(ENV_SEGMENT);
    snprintf(buf, len, ENV_TABLE "=%.80s " ENV_SEGMENT "=%.32s",
             table && *table ? table : "(unset)", seg && *seg ? seg : "(unset)");
}

/* ---------------------------------------------------------------- the ring's segment */

/* cfg.ring_seg_bytes, else $DURE_RING_SEGMENT_KIB, else the default; a
 * value out of range is DURE_ERR_ARG naming where it came from. */
static dure_status_t ring_segment_resolve(comm_t *c)
{
    dure_status_t st = DURE_OK;
    const char *env = getenv(ENV_SEGMENT);
    size_t *seg = &c->cfg.ring_seg_bytes;

    if (*seg) {
        DURE_CHECK(*seg % 1024 == 0 && *seg <= COMM_RING_SEG_MAX, DURE_ERR_ARG,
                   "ring segment of %zu bytes: expected a whole number of KiB from 1 to %zu",
                   *seg, COMM_RING_SEG_MAX >> 10);
    } else if (env && *env) {
        char *end = NULL;
        errno = 0;
        long kib = strtol(env, &end, 10);
        DURE_CHECK(!errno && end != env && !*end && kib >= 1 &&
                       (size_t)kib <= COMM_RING_SEG_MAX >> 10,
                   DURE_ERR_ARG, "DURE_RING_SEGMENT_KIB='%s': expected KiB from 1 to %zu", env,
                   COMM_RING_SEG_MAX >> 10);
        *seg = (size_t)kib << 10;
    } else {
        *seg = COMM_RING_SEG_BYTES;
    }
out:
    return st;
}

/* What a rank resolved, compared across ranks as bytes (zeroed first). */
struct resolved {
    uint64_t seg_bytes;
    char table[256];             /* comm_algo_table_format */
};

/*
 * Every rank must run the same table and ring segment, but each resolves
 * them from its own environment ($DURE_ALGO_TABLE, $DURE_RING_SEGMENT_KIB),
 * and mismatched ranks would pair messages of different sizes. Collective,
 * after every rank resolved both (dure_agree): every rank fails alike,
 * naming the first rank that differs from rank 0 and both values.
 */
static dure_status_t resolved_agree(comm_t *c)
{
    dure_status_t st = DURE_OK;
    struct resolved root, me, bad;
    int first = -1;

    memset(&me, 0, sizeof me);
    me.seg_bytes = c->cfg.ring_seg_bytes;
    comm_algo_table_format(&c->table, me.table, sizeof me.table);
    DURE_TRY(dure_agree_bytes(c->ctl, &me, &root, (int)sizeof me, &first));
    if (first < 0) {
        goto out;
    }
    bad = me;
    DURE_MPI_TRY(MPI_Bcast(&bad, (int)sizeof bad, MPI_BYTE, first, c->ctl));
    DURE_CHECK(bad.seg_bytes == root.seg_bytes, DURE_ERR_ARG,
               "rank %d runs the ring in segments of %llu KiB, rank 0 in %llu KiB: "
               "DURE_RING_SEGMENT_KIB (or parallel.ring_segment_kib) must be the same for "
               "every rank",
               first, (unsigned long long)(bad.seg_bytes >> 10),
               (unsigned long long)(root.seg_bytes >> 10));
    DURE_FAIL(DURE_ERR_ARG,
              "rank %d resolved the algorithm table '%s', rank 0 '%s': DURE_ALGO_TABLE (or "
              "parallel.algo_table) must be the same for every rank",
              first, bad.table, root.table);
out:
    return st;
}

/* ---------------------------------------------------------------- the table */

/* The table after the communicator's constraints: shm needs every rank on
 * one node, hier the same ranks on every node (placed in blocks; on one
 * node it is shm), and deterministic mode cannot use MPI's own
 * collectives. */
static dure_status_t table_resolve(comm_t *c)
{
    dure_status_t st = DURE_OK;
    const char *env = getenv(ENV_TABLE);
    const int one_node = c->local_size == c->size;
    const enum comm_algo fixed = one_node ? COMM_ALGO_SHM
                                 : c->uniform ? COMM_ALGO_HIER : COMM_ALGO_RING;

    if (c->cfg.algo != COMM_ALGO_AUTO) {
        DURE_CHECK(c->cfg.algo < COMM_ALGO_COUNT, DURE_ERR_ARG, "algo %d is not valid",
                   (int)c->cfg.algo);
        DURE_CHECK(c->cfg.algo != COMM_ALGO_SHM || one_node, DURE_ERR_ARG,
                   "algo = shm needs every rank on one node; this communicator spans %d nodes: "
                   "use ring or auto",
                   c->nodes);
        DURE_CHECK(c->cfg.algo != COMM_ALGO_NATIVE || !c->cfg.deterministic, DURE_ERR_ARG,
                   "algo = native cannot be deterministic (MPI does not fix its reduction "
                   "order): use ring, shm, hier or auto");
        DURE_CHECK(c->cfg.algo != COMM_ALGO_HIER || c->uniform, DURE_ERR_ARG,
                   "algo = hier needs the same number of ranks on every node, placed in "
                   "blocks (rank = node * ranks_per_node + local rank, as srun and mpirun "
                   "place them); this communicator of %d ranks on %d nodes is not: use "
                   "ring or auto",
                   c->size, c->nodes);
        c->table.n = 1;
        c->table.entry[0].min_bytes = 0;
        c->table.entry[0].algo = c->cfg.algo == COMM_ALGO_HIER && one_node ? COMM_ALGO_SHM
                                                                           : c->cfg.algo;
        goto out;
    }
    if (c->table_text && *c->table_text) {
        DURE_TRY(comm_algo_table_parse(c->table_text, &c->table));
    } else if (env && *env) {
        st = comm_algo_table_parse(env, &c->table);
        DURE_CHECK(st == DURE_OK, st, "in DURE_ALGO_TABLE='%s': %s", env, dure_last_error());
    } else {
        c->table = *comm_algo_table_builtin(c->nodes, c->uniform ? c->local_size : 0);
    }
    for (int i = 0; i < c->table.n; i++) {
        enum comm_algo *a = &c->table.entry[i].algo;
        if (*a == COMM_ALGO_SHM && !one_node) {
            *a = c->uniform ? COMM_ALGO_HIER : COMM_ALGO_RING;
        }
        if (*a == COMM_ALGO_HIER && one_node) {
            *a = COMM_ALGO_SHM;
        }
        if (*a == COMM_ALGO_HIER && !c->uniform) {
            *a = COMM_ALGO_RING;
        }
        if (*a == COMM_ALGO_NATIVE && c->cfg.deterministic) {
            *a = fixed;
        }
    }
out:
    return st;
}

void comm_algo_table_text(const comm_t *c, char *buf, size_t len)
{
    if (!c->backend->algo_table) {
        snprintf(buf, len, "0:%s", c->backend->name);
        return;
    }
    comm_algo_table_format(&c->table, buf, len);
}

size_t comm_ring_segment_for(size_t seg_bytes, size_t piece_bytes)
{
    size_t half = piece_bytes / 2 / 4096 * 4096;
    if (half >= COMM_RING_SEG_UNCUT) {
        return seg_bytes;
    }
    size_t cap = half > COMM_RING_SEG_BYTES ? half : COMM_RING_SEG_BYTES;
    return seg_bytes < cap ? seg_bytes : cap;
}

void comm_ring_segment_text(const comm_t *c, char *buf, size_t len)
{
    if (!c->cfg.ring_seg_bytes) {
        snprintf(buf, len, "none");
        return;
    }
    comm_format_bytes(c->cfg.ring_seg_bytes, buf, len);
}

enum comm_algo comm_algo_for(const comm_t *c, enum comm_coll coll, size_t bytes)
{
    (void)coll;
    return c->backend->algo_table ? comm_algo_table_pick(&c->table, bytes) : COMM_ALGO_NATIVE;
}

/* ---------------------------------------------------------------- the watchdog's hook */

static void on_watchdog_fire(const struct comm_hang_report *r, void *arg)
{
    comm_t *c = arg;
    dure_log_error(__FILE__, __LINE__, "%s", r->text);
    /* The launcher's hook ends the job and does not return. Without one (or
     * if it returns), tear down what we can and fail dure's own waits. */
    if (c->cfg.on_hang) {
        c->cfg.on_hang(r, c->cfg.on_hang_arg);
    }
    /* Not during setup (seq 0): the backend's create is still writing
     * iface and ctx (NCCL's init watches cancel and aborts itself). */
    if (r->seq != 0 && c->iface && c->iface->abort) {
        c->iface->abort(c->ctx);
    }
    atomic_store(&c->cancel, 1);
}

/* ---------------------------------------------------------------- lifetime */

dure_status_t comm_create(MPI_Comm mpi, const struct comm_config *cfg, comm_t **out)
{
    dure_status_t st = DURE_OK;
    comm_t *c = NULL;
    MPI_Comm node = MPI_COMM_NULL;
    int provided = MPI_THREAD_SINGLE, first = 0;

    *out = NULL;
    DURE_MPI_TRY(MPI_Query_thread(&provided));
    DURE_CHECK(provided == MPI_THREAD_MULTIPLE, DURE_ERR_MPI,
               "MPI was initialised at thread level %d; dure's communication thread needs "
               "MPI_THREAD_MULTIPLE (%d): initialise MPI with comm_mpi_init",
               provided, MPI_THREAD_MULTIPLE);
    c = calloc(1, sizeof *c);
    DURE_ALLOC_TRY(c, sizeof *c);
    c->mpi = c->ctl = MPI_COMM_NULL;
    c->cfg = *cfg;
    if (c->cfg.max_inflight <= 0) {
        c->cfg.max_inflight = 256;
    }
    if (c->cfg.spin_ns <= 0) {
        c->cfg.spin_ns = COMM_SPIN_NS;
    }
    DURE_TRY(comm_queue_init(c, c->cfg.max_inflight));
    if (cfg->algo_table) {
        c->table_text = strdup(cfg->algo_table);
        DURE_ALLOC_TRY(c->table_text, strlen(cfg->algo_table) + 1);
    }
    c->cfg.algo_table = c->table_text;

    DURE_MPI_TRY(MPI_Comm_dup(mpi, &c->mpi));
    DURE_MPI_TRY(MPI_Comm_set_errhandler(c->mpi, MPI_ERRORS_RETURN));
    DURE_MPI_TRY(MPI_Comm_dup(mpi, &c->ctl));
    DURE_MPI_TRY(MPI_Comm_set_errhandler(c->ctl, MPI_ERRORS_RETURN));
    DURE_MPI_TRY(MPI_Comm_rank(c->mpi, &c->rank));
    DURE_MPI_TRY(MPI_Comm_size(c->mpi, &c->size));
    DURE_MPI_TRY(MPI_Comm_split_type(c->ctl, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL,
                                     &node));
    DURE_MPI_TRY(MPI_Comm_rank(node, &c->local_rank));
    DURE_MPI_TRY(MPI_Comm_size(node, &c->local_size));
    first = c->local_rank == 0;
    DURE_MPI_TRY(MPI_Allreduce(&first, &c->nodes, 1, MPI_INT, MPI_SUM, c->ctl));
    DURE_TRY(comm_hier_placement(c->ctl, c->rank, c->local_rank, c->local_size, &c->uniform));

    /* The configuration is the same on every rank; the environment may not be. */
    DURE_TRY(pick_backend(c));
    if (c->backend->algo_table) {
        st = table_resolve(c);
        if (st == DURE_OK) {
            st = ring_segment_resolve(c);
        }
        DURE_TRY(dure_agree(c->ctl, st, "resolving the algorithm table and ring segment"));
        DURE_TRY(resolved_agree(c));
    } else {
        c->cfg.ring_seg_bytes = 0;
    }
    struct comm_backend_args args = {
        .mpi = c->mpi,
        .rank = c->rank,
        .size = c->size,
        .local_rank = c->local_rank,
        .local_size = c->local_size,
        .nodes = c->nodes,
        .uniform = c->uniform,
        .cfg = &c->cfg,
        .table = &c->table,
        .cancel = &c->cancel,
    };
    /* The backend's construction may wait for peers (ncclCommInitRank): the
     * watchdog watches it like a collective. */
    DURE_TRY(comm_watchdog_create(c->mpi, c->cfg.watchdog_s, on_watchdog_fire, c, &c->wd));
    comm_watchdog_begin_setup(c->wd, "backend setup", c->backend->name);
    st = c->backend->create(&args, &c->iface, &c->ctx);
    comm_watchdog_end(c->wd);
    DURE_TRY(st);
    DURE_CHECK(!c->backend->async ||
                   (c->iface->start && c->iface->poll && c->iface->release),
               DURE_ERR_INTERNAL, "backend %s is async without start, poll and release",
               c->backend->name);
    DURE_TRY(comm_queue_start(c));
    *out = c;
    c = NULL;
out:
    if (node != MPI_COMM_NULL) {
        MPI_Comm_free(&node);
    }
    comm_destroy(c);
    return st;
}

dure_status_t comm_create_node(comm_t *c, comm_t **out)
{
    dure_status_t st = DURE_OK;
    MPI_Comm node = MPI_COMM_NULL;
    *out = NULL;
    DURE_MPI_TRY(MPI_Comm_split_type(c->ctl, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL,
                                     &node));
    DURE_TRY(comm_create(node, &c->cfg, out));
out:
    if (node != MPI_COMM_NULL) {
        MPI_Comm_free(&node);
    }
    return st;
}

void comm_destroy(comm_t *c)
{
    if (!c) {
        return;
    }
    const int hung = atomic_load(&c->cancel);
    if (!comm_queue_stop(c, hung)) {
        /* The thread may be stuck inside the hung collective for good, or
         * return from it later (a native MPI collective does not watch
         * cancel: a peer merely slower than the timeout ends it) and end
         * its watch: leave the comm and its watchdog allocated, with the
         * watchdog's thread stopped (its heartbeat thread, UDP datagrams
         * only, runs until the process ends). */
        comm_watchdog_stop(c->wd);
        return;
    }
    comm_watchdog_destroy(c->wd, !hung);
    /* After a hang only an async backend (already aborted) gets here; its
     * destroy is not collective. */
    if (c->iface) {
        c->iface->destroy(c->ctx);
    }
    if (!hung) {
        if (c->mpi != MPI_COMM_NULL) {
            MPI_Comm_free(&c->mpi);
        }
        if (c->ctl != MPI_COMM_NULL) {
            MPI_Comm_free(&c->ctl);
        }
    }
    comm_queue_free(c);
    free(c->table_text);
    free(c);
}

/* ---------------------------------------------------------------- accessors */

int comm_rank(const comm_t *c) { return c->rank; }
int comm_size(const comm_t *c) { return c->size; }
int comm_local_rank(const comm_t *c) { return c->local_rank; }
int comm_local_size(const comm_t *c) { return c->local_size; }
int comm_node_count(const comm_t *c) { return c->nodes; }
enum comm_backend comm_backend(const comm_t *c) { return c->backend->id; }
enum comm_memory comm_memory(const comm_t *c) { return c->backend->memory; }
uint64_t comm_seq(const comm_t *c) { return c->seq; }
int comm_max_inflight(const comm_t *c) { return c->q.nreqs - 1; }
int comm_caller_runs(const comm_t *c) { return c->q.caller_runs; }
size_t comm_ring_segment(const comm_t *c) { return c->cfg.ring_seg_bytes; }

/* ---------------------------------------------------------------- memory */

dure_status_t comm_mem_alloc(comm_t *c, size_t bytes, void **p)
{
    dure_status_t st = DURE_OK;
    *p = NULL;
    if (c->iface->mem_alloc) {
        DURE_TRY(c->iface->mem_alloc(c->ctx, bytes, p));
        goto out;
    }
    if (bytes > 0) {
        size_t rounded = (bytes + 63) & ~(size_t)63;
        *p = aligned_alloc(64, rounded);
        DURE_ALLOC_TRY(*p, rounded);
    }
out:
    return st;
}

void comm_mem_free(comm_t *c, void *p)
{
    if (!p) {
        return;
    }
    if (c->iface->mem_free) {
        c->iface->mem_free(c->ctx, p);
    } else {
        free(p);
    }
}

static dure_status_t allocator_alloc(void *c, size_t bytes, void **p)
{
    return comm_mem_alloc(c, bytes, p);
}

static void allocator_free(void *c, void *p) { comm_mem_free(c, p); }

struct dure_allocator comm_allocator(comm_t *c)
{
    return (struct dure_allocator){allocator_alloc, allocator_free, c};
}

dure_status_t comm_mem_upload(comm_t *c, void *dst, const void *host_src, size_t bytes)
{
    if (c->iface->mem_upload) {
        return c->iface->mem_upload(c->ctx, dst, host_src, bytes);
    }
    if (bytes) {
        memcpy(dst, host_src, bytes);
    }
    return DURE_OK;
}

dure_status_t comm_mem_download(comm_t *c, void *host_dst, const void *src, size_t bytes)
{
    if (c->iface->mem_download) {
        return c->iface->mem_download(c->ctx, host_dst, src, bytes);
    }
    if (bytes) {
        memcpy(host_dst, src, bytes);
    }
    return DURE_OK;
}

/* ---------------------------------------------------------------- dispatch */

void comm_break(comm_t *c, dure_status_t st)
{
    int ok = DURE_OK;
    if (st != DURE_OK) {
        atomic_compare_exchange_strong(&c->broken, &ok, (int)st);
    }
}

const char *comm_op_algo_name(const comm_t *c, const struct comm_op *op)
{
    if (op->coll == COMM_TREE_REDUCE_SCATTER) {
        return "tree";
    }
    return c->backend->algo_table ? comm_algo_name(op->algo) : c->backend->name;
}

static dure_status_t default_barrier(comm_t *c, const struct comm_op *bar)
{
    float one = 1.0f;
    struct comm_op op = *bar;
    op.coll = COMM_ALLREDUCE;
    op.dtype = COMM_F32;
    op.redop = COMM_SUM;
    op.send = &one;
    op.recv = &one;
    op.total = op.count = 1;
    op.offset = op.send_first = op.recv_first = 0;
    return c->iface->allreduce(c->ctx, &op);
}

dure_status_t comm_exec(comm_t *c, const struct comm_op *op, size_t bytes)
{
    dure_status_t st = DURE_OK;
    const struct comm_backend_i *f = c->iface;

    /* One rank, in place: every collective is the identity (an average over
     * one rank too), as NCCL treats it; the backends would copy the range
     * onto itself (ZeRO 2-3 on one rank: the whole model, several times a
     * step). The exact tree sums its carries, so it always runs. */
    if (c->size == 1 && op->coll != COMM_TREE_REDUCE_SCATTER &&
        (op->coll == COMM_BARRIER || op->count == 0 || comm_op_in_place(op, op->offset))) {
        return DURE_OK;
    }
    comm_watchdog_begin(c->wd, op, bytes, comm_op_algo_name(c, op));
    switch (op->coll) {
    case COMM_ALLREDUCE:
        st = f->allreduce(c->ctx, op);
        break;
    case COMM_REDUCE_SCATTER:
        st = f->reduce_scatter(c->ctx, op);
        break;
    case COMM_ALLGATHER:
        st = f->allgather(c->ctx, op);
        break;
    case COMM_BROADCAST:
        st = f->broadcast(c->ctx, op);
        break;
    case COMM_BARRIER:
        st = f->barrier ? f->barrier(c->ctx, op) : default_barrier(c, op);
        break;
    case COMM_TREE_REDUCE_SCATTER:
        st = f->tree_reduce_scatter(c->ctx, op);
        break;
    default:
        st = DURE_ERR_INTERNAL;
        dure_log_error(__FILE__, __LINE__, "unknown collective %d", (int)op->coll);
        break;
    }
    comm_watchdog_end(c->wd);
    return st;
}

static int reduces(enum comm_coll coll)
{
    return coll == COMM_ALLREDUCE || coll == COMM_REDUCE_SCATTER ||
           coll == COMM_TREE_REDUCE_SCATTER;
}

/* The dtypes a backend handles in coll: reduced or only moved. */
static unsigned dtypes_for(const struct comm_backend_entry *e, enum comm_coll coll)
{
    return reduces(coll) ? e->reduce_dtypes : e->copy_dtypes;
}

/* The backends of this build that handle dt in coll ("nccl"), for the
 * message when this one does not. */
static void backends_with_dtype(enum comm_coll coll, enum comm_dtype dt, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (const struct comm_backend_entry *const *e = comm_backends; *e && at < len; e++) {
        if (dtypes_for(*e, coll) & COMM_BIT(dt)) {
            int n = snprintf(buf + at, len - at, "%s%s", at ? ", " : "", (*e)->name);
            at += n > 0 ? (size_t)n : 0;
        }
    }
}

static dure_status_t check_op(comm_t *c, const struct comm_op *op)
{
    dure_status_t st = DURE_OK;
    const char *name = comm_coll_name(op->coll);
    char with[128];
    const dure_status_t broken = (dure_status_t)atomic_load(&c->broken);
    DURE_CHECK(broken == DURE_OK, broken,
               "%s: the communicator failed earlier (%s) and cannot be used", name,
               dure_status_name(broken));
    DURE_CHECK(!atomic_load(&c->cancel), DURE_ERR_TIMEOUT,
               "%s: the watchdog gave up on this communicator", name);
    DURE_CHECK(op->dtype == COMM_F32 || op->dtype == COMM_BF16 || op->dtype == COMM_F64,
               DURE_ERR_ARG, "%s: unknown data type %d", name, (int)op->dtype);
    if (op->coll != COMM_BARRIER && !(dtypes_for(c->backend, op->coll) & COMM_BIT(op->dtype))) {
        backends_with_dtype(op->coll, op->dtype, with, sizeof with);
        DURE_FAIL(DURE_ERR_UNSUPPORTED, "%s: backend %s does not %s %s (in this build: %s)",
                  name, c->backend->name, reduces(op->coll) ? "reduce" : "move",
                  comm_dtype_name(op->dtype), *with ? with : "none");
    }
    DURE_CHECK(op->redop == COMM_SUM || op->redop == COMM_AVG, DURE_ERR_ARG,
               "%s: unknown reduction %d", name, (int)op->redop);
    DURE_CHECK(op->offset <= op->total && op->count <= op->total - op->offset, DURE_ERR_ARG,
               "%s: range [%zu, %zu + %zu) lies outside the vector of %zu elements", name,
               op->offset, op->offset, op->count, op->total);
    DURE_CHECK(op->count <= SIZE_MAX / 8, DURE_ERR_ARG, "%s: count %zu is too large", name,
               op->count);
    DURE_CHECK(op->root >= 0 && op->root < c->size, DURE_ERR_ARG,
               "%s: root %d is not a rank of this communicator (size %d)", name, op->root,
               c->size);
    DURE_CHECK(op->coll == COMM_TREE_REDUCE_SCATTER || op->count == 0 ||
                   (op->send && op->recv),
               DURE_ERR_ARG, "%s: NULL buffer for %zu elements", name, op->count);
    if (op->coll == COMM_TREE_REDUCE_SCATTER) {
        DURE_CHECK(c->iface->tree_reduce_scatter, DURE_ERR_UNSUPPORTED,
                   "%s: backend %s has none", name, c->backend->name);
        DURE_CHECK(op->dtype == COMM_F32 && op->tree && op->tree->rows >= 1 &&
                       op->tree->rows <= op->tree->rows_max &&
                       op->tree->rows <= TREE_FRONTIER_MAX,
                   DURE_ERR_ARG, "%s: needs float32 and a tree with rows", name);
        DURE_CHECK(op->tree->leaves % (uint64_t)c->size == 0, DURE_ERR_ARG,
                   "%s: %d ranks do not divide the tree's %llu leaves", name, c->size,
                   (unsigned long long)op->tree->leaves);
    }
out:
    return st;
}

dure_status_t comm_issue(comm_t *c, struct comm_op *op, comm_req_t **req)
{
    dure_status_t st = DURE_OK;
    size_t bytes = op->count * comm_dtype_size(op->dtype);

    if (req) {
        *req = NULL;
    }
    DURE_TRY(check_op(c, op));
    op->seq = ++c->seq;
    op->algo = comm_algo_for(c, op->coll, bytes);
    DURE_TRY(comm_queue_submit(c, op, bytes, req));
out:
    return st;
}
