/*
 * collectives/comm.c - the one dispatcher: lifetime, argument checks,
 * sequence numbers, algorithm choice, the asynchronous queue and its
 * communication thread, and the watchdog's hook-up. Backends see only
 * normalised struct comm_op values (collectives/backend.h).
 */
#include "collectives/comm.h"

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collectives/backend.h"
#include "collectives/watchdog.h"
#include "common/mpi_check.h"

enum { REQ_FREE, REQ_QUEUED, REQ_STARTED, REQ_DONE };

struct comm_req {
    struct comm_op op;
    size_t bytes;              /* bytes of the vector on this rank, for the watchdog */
    int state;                 /* REQ_*, under comm.mu */
    dure_status_t st;
    void *handle;              /* the backend's, for start/poll backends */
    struct comm_req *next_free;
};

struct comm {
    MPI_Comm mpi;              /* private duplicate: only the executor uses it */
    MPI_Comm ctl;              /* second duplicate for comm_create_node */
    int rank, size, local_rank, local_size, nodes;
    struct comm_config cfg;
    char *table_text;          /* owned copy of cfg.algo_table */
    struct comm_algo_table table;
    enum comm_backend kind;
    const struct comm_backend_i *iface;
    void *ctx;
    struct comm_watchdog *wd;
    atomic_int cancel;         /* the watchdog gave up on the running op */
    uint64_t seq;
    dure_status_t broken;      /* sticky: first failure of a collective */

    /* Asynchronous machinery; everything below is under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv_work;    /* the queue got work, or stop */
    pthread_cond_t cv_done;    /* an op finished */
    struct comm_req *reqs;     /* pool[nreqs]; one more than max_inflight, for a blocking call */
    int nreqs;
    int inflight;              /* started, not yet waited */
    struct comm_req *free_list;
    struct comm_req **queue;   /* ring[nreqs] of queued ops, FIFO */
    int q_head, q_len;
    int busy;                  /* an op is executing, on the thread or the caller */
    int stop;
    pthread_t thread;
    int thread_started;
};

void comm_config_default(struct comm_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->backend = COMM_BACKEND_AUTO;
    cfg->algo = COMM_ALGO_AUTO;
    cfg->watchdog_s = 600.0;
    cfg->max_inflight = 256;
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

/* ---------------------------------------------------------------- layout */

struct comm_shard comm_shard_of(size_t n, int size, int rank)
{
    struct comm_shard s = {0, 0};
    if (size <= 0 || rank < 0 || rank >= size) {
        return s;
    }
    size_t chunk = n / (size_t)size + (n % (size_t)size != 0);
    size_t off = chunk * (size_t)rank;
    s.offset = off < n ? off : n;
    s.count = n - s.offset < chunk ? n - s.offset : chunk;
    return s;
}

struct comm_shard comm_range_part(size_t total, int size, int rank, size_t offset,
                                  size_t count)
{
    struct comm_shard p, sh = comm_shard_of(total, size, rank);
    size_t lo = sh.offset > offset ? sh.offset : offset;
    size_t end = offset + count;
    size_t hi = sh.offset + sh.count < end ? sh.offset + sh.count : end;
    p.offset = lo < end ? lo : end;
    p.count = hi > lo ? hi - lo : 0;
    return p;
}

struct comm_shard comm_op_piece(const struct comm_op *op, int size, int r)
{
    struct comm_shard p;
    if (op->coll == COMM_REDUCE_SCATTER || op->coll == COMM_ALLGATHER) {
        return comm_range_part(op->total, size, r, op->offset, op->count);
    }
    p = comm_shard_of(op->count, size, r);
    p.offset += op->offset;
    return p;
}

/* ---------------------------------------------------------------- the table */

/* The table after the communicator's constraints: shm needs every rank on
 * one node, and deterministic mode cannot use MPI's own collectives. */
static dure_status_t table_resolve(comm_t *c)
{
    dure_status_t st = DURE_OK;
    const char *env = getenv("DURE_ALGO_TABLE");
    const int one_node = c->local_size == c->size;
    const enum comm_algo fixed = one_node ? COMM_ALGO_SHM : COMM_ALGO_RING;

    if (c->cfg.algo != COMM_ALGO_AUTO) {
        DURE_CHECK(c->cfg.algo < COMM_ALGO_COUNT, DURE_ERR_ARG, "algo %d is not valid",
                   (int)c->cfg.algo);
        DURE_CHECK(c->cfg.algo != COMM_ALGO_SHM || one_node, DURE_ERR_ARG,
                   "algo = shm needs every rank on one node; this communicator spans %d nodes: "
                   "use ring or auto",
                   c->nodes);
        DURE_CHECK(c->cfg.algo != COMM_ALGO_NATIVE || !c->cfg.deterministic, DURE_ERR_ARG,
                   "algo = native cannot be deterministic (MPI does not fix its reduction "
                   "order): use ring, shm or auto");
        c->table.n = 1;
        c->table.entry[0].min_bytes = 0;
        c->table.entry[0].algo = c->cfg.algo;
        goto out;
    }
    if (c->table_text && *c->table_text) {
        DURE_TRY(comm_algo_table_parse(c->table_text, &c->table));
    } else if (env && *env) {
        st = comm_algo_table_parse(env, &c->table);
        DURE_CHECK(st == DURE_OK, st, "in DURE_ALGO_TABLE='%s': %s", env, dure_last_error());
    } else {
        c->table = *comm_algo_table_builtin(one_node);
    }
    for (int i = 0; i < c->table.n; i++) {
        enum comm_algo *a = &c->table.entry[i].algo;
        if (*a == COMM_ALGO_SHM && !one_node) {
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
    if (c->kind == COMM_BACKEND_NCCL) {
        snprintf(buf, len, "0:nccl");
        return;
    }
    comm_algo_table_format(&c->table, buf, len);
}

enum comm_algo comm_algo_for(const comm_t *c, enum comm_coll coll, size_t bytes)
{
    if (c->iface->algo_for) {
        return c->iface->algo_for(c->ctx, coll, bytes);
    }
    return comm_algo_table_pick(&c->table, bytes);
}

/* ---------------------------------------------------------------- execution */

static const char *op_algo_name(const comm_t *c, const struct comm_op *op)
{
    return c->kind == COMM_BACKEND_NCCL ? "nccl" : comm_algo_name(op->algo);
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

/* Run one op to completion on the calling thread, under the watchdog. */
static dure_status_t exec_op(comm_t *c, const struct comm_op *op, size_t bytes)
{
    dure_status_t st = DURE_OK;
    const struct comm_backend_i *f = c->iface;

    comm_watchdog_begin(c->wd, op, bytes, op_algo_name(c, op));
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
    default:
        st = DURE_ERR_INTERNAL;
        dure_log_error(__FILE__, __LINE__, "unknown collective %d", (int)op->coll);
        break;
    }
    comm_watchdog_end(c->wd);
    return st;
}

static void *comm_thread_main(void *arg)
{
    comm_t *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->stop && c->q_len == 0) {
            pthread_cond_wait(&c->cv_work, &c->mu);
        }
        if (c->q_len == 0) {
            break;
        }
        struct comm_req *r = c->queue[c->q_head];
        c->q_head = (c->q_head + 1) % c->nreqs;
        c->q_len--;
        c->busy = 1;
        dure_status_t broken = c->broken;
        pthread_mutex_unlock(&c->mu);

        dure_status_t st = broken != DURE_OK ? broken : exec_op(c, &r->op, r->bytes);

        pthread_mutex_lock(&c->mu);
        if (st != DURE_OK && c->broken == DURE_OK) {
            c->broken = st;
        }
        r->st = st;
        r->state = REQ_DONE;
        c->busy = 0;
        pthread_cond_broadcast(&c->cv_done);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Under mu. */
static struct comm_req *req_get(comm_t *c)
{
    struct comm_req *r = c->free_list;
    if (r) {
        c->free_list = r->next_free;
        r->next_free = NULL;
        r->handle = NULL;
        r->st = DURE_OK;
    }
    return r;
}

static void req_put(comm_t *c, struct comm_req *r)
{
    r->state = REQ_FREE;
    r->next_free = c->free_list;
    c->free_list = r;
}

static void enqueue(comm_t *c, struct comm_req *r)
{
    c->queue[(c->q_head + c->q_len) % c->nreqs] = r;
    c->q_len++;
    r->state = REQ_QUEUED;
    pthread_cond_signal(&c->cv_work);
}

/* Wait, under mu, until r is done or the watchdog cancelled the comm. */
static dure_status_t wait_done_locked(comm_t *c, struct comm_req *r)
{
    while (r->state != REQ_DONE) {
        if (atomic_load(&c->cancel)) {
            /* The executor may still be inside the hung op and own r: leave
             * it allocated; the comm is unusable from here on. */
            return DURE_ERR_TIMEOUT;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&c->cv_done, &c->mu, &until);
    }
    return r->st;
}

/* Poll a start/poll backend's op until done, under the watchdog from now. */
static dure_status_t poll_until_done(comm_t *c, struct comm_req *r)
{
    dure_status_t st = DURE_OK;
    int done = 0;
    comm_watchdog_begin(c->wd, &r->op, r->bytes, op_algo_name(c, &r->op));
    while (!done) {
        DURE_TRY(c->iface->poll(c->ctx, r->handle, &done));
        DURE_CHECK(done || !atomic_load(&c->cancel), DURE_ERR_TIMEOUT,
                   "%s seq %llu cancelled by the watchdog", comm_coll_name(r->op.coll),
                   (unsigned long long)r->op.seq);
    }
out:
    comm_watchdog_end(c->wd);
    return st;
}

static dure_status_t check_op(comm_t *c, const struct comm_op *op)
{
    dure_status_t st = DURE_OK;
    const char *name = comm_coll_name(op->coll);
    DURE_CHECK(c->broken == DURE_OK, c->broken,
               "%s: the communicator failed earlier (%s) and cannot be used", name,
               dure_status_name(c->broken));
    DURE_CHECK(!atomic_load(&c->cancel), DURE_ERR_TIMEOUT,
               "%s: the watchdog gave up on this communicator", name);
    DURE_CHECK(op->dtype == COMM_F32 || op->dtype == COMM_BF16 || op->dtype == COMM_F64,
               DURE_ERR_ARG, "%s: unknown data type %d", name, (int)op->dtype);
    DURE_CHECK(op->dtype != COMM_BF16 || c->kind == COMM_BACKEND_NCCL, DURE_ERR_UNSUPPORTED,
               "%s: bf16 needs backend = nccl (backend mpi reduces float32 only)", name);
    DURE_CHECK(op->dtype != COMM_F64 || c->kind == COMM_BACKEND_NCCL ||
                   op->coll == COMM_ALLGATHER || op->coll == COMM_BROADCAST ||
                   op->coll == COMM_BARRIER,
               DURE_ERR_UNSUPPORTED,
               "%s: float64 reductions need backend = nccl (backend mpi reduces float32 "
               "only; it all-gathers and broadcasts float64)", name);
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
    DURE_CHECK(op->count == 0 || (op->send && op->recv), DURE_ERR_ARG,
               "%s: NULL buffer for %zu elements", name, op->count);
out:
    return st;
}

/* Number, choose the algorithm, then run (req NULL) or start. */
static dure_status_t issue(comm_t *c, struct comm_op *op, comm_req_t **req)
{
    dure_status_t st = DURE_OK;
    struct comm_req *r = NULL;
    size_t bytes = op->count * comm_dtype_size(op->dtype);

    if (req) {
        *req = NULL;
    }
    DURE_TRY(check_op(c, op));
    op->seq = ++c->seq;
    op->algo = c->kind == COMM_BACKEND_NCCL ? COMM_ALGO_NATIVE
                                            : comm_algo_table_pick(&c->table, bytes);

    if (c->iface->start) {
        /* The backend orders its own work (a CUDA stream). */
        if (!req) {
            st = exec_op(c, op, bytes);
            goto fail_breaks;
        }
        pthread_mutex_lock(&c->mu);
        r = c->inflight < c->nreqs - 1 ? req_get(c) : NULL;
        if (r) {
            c->inflight++;
        }
        pthread_mutex_unlock(&c->mu);
        DURE_CHECK(r, DURE_ERR_ARG, "%s: more than max_inflight = %d operations pending",
                   comm_coll_name(op->coll), c->nreqs - 1);
        r->op = *op;
        r->bytes = bytes;
        r->state = REQ_STARTED;
        st = c->iface->start(c->ctx, &r->op, &r->handle);
        if (st != DURE_OK) {
            pthread_mutex_lock(&c->mu);
            c->inflight--;
            req_put(c, r);
            pthread_mutex_unlock(&c->mu);
            goto fail_breaks;
        }
        *req = r;
        goto out;
    }

    pthread_mutex_lock(&c->mu);
    if (!req && c->q_len == 0 && !c->busy) {
        /* Nothing pending: run here, without a thread hand-off, so small
         * blocking collectives keep MPI's latency. */
        c->busy = 1;
        pthread_mutex_unlock(&c->mu);
        st = exec_op(c, op, bytes);
        pthread_mutex_lock(&c->mu);
        c->busy = 0;
        pthread_mutex_unlock(&c->mu);
        goto fail_breaks;
    }
    if (req) {
        r = c->inflight < c->nreqs - 1 ? req_get(c) : NULL;
        if (r) {
            c->inflight++;
        }
    } else {
        r = req_get(c); /* the pool keeps one spare for this */
    }
    if (!r) {
        pthread_mutex_unlock(&c->mu);
        DURE_FAIL(DURE_ERR_ARG, "%s: more than max_inflight = %d operations pending",
                  comm_coll_name(op->coll), c->nreqs - 1);
    }
    r->op = *op;
    r->bytes = bytes;
    enqueue(c, r);
    if (req) {
        *req = r;
        pthread_mutex_unlock(&c->mu);
        goto out;
    }
    st = wait_done_locked(c, r);
    if (r->state == REQ_DONE) {
        req_put(c, r);
    }
    pthread_mutex_unlock(&c->mu);
fail_breaks:
    if (st != DURE_OK && c->broken == DURE_OK) {
        c->broken = st;
    }
out:
    return st;
}

dure_status_t comm_wait(comm_t *c, comm_req_t *r)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(r && r->state != REQ_FREE, DURE_ERR_ARG,
               "comm_wait: the request is not pending (waited twice?)");
    if (c->iface->start) {
        st = poll_until_done(c, r);
        c->iface->release(c->ctx, r->handle);
        pthread_mutex_lock(&c->mu);
        c->inflight--;
        req_put(c, r);
        pthread_mutex_unlock(&c->mu);
        if (st != DURE_OK && c->broken == DURE_OK) {
            c->broken = st;
        }
        goto out;
    }
    pthread_mutex_lock(&c->mu);
    st = wait_done_locked(c, r);
    if (r->state == REQ_DONE) {
        c->inflight--;
        req_put(c, r);
    }
    pthread_mutex_unlock(&c->mu);
out:
    return st;
}

dure_status_t comm_test(comm_t *c, comm_req_t *r, int *done)
{
    dure_status_t st = DURE_OK;
    *done = 0;
    DURE_CHECK(r && r->state != REQ_FREE, DURE_ERR_ARG,
               "comm_test: the request is not pending (waited already?)");
    if (c->iface->start) {
        st = c->iface->poll(c->ctx, r->handle, done);
        goto out;
    }
    pthread_mutex_lock(&c->mu);
    *done = r->state == REQ_DONE;
    pthread_mutex_unlock(&c->mu);
out:
    return st;
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
    if (c->iface && c->iface->abort) {
        c->iface->abort(c->ctx);
    }
    atomic_store(&c->cancel, 1);
}

/* ---------------------------------------------------------------- lifetime */

static dure_status_t pick_backend(comm_t *c)
{
    dure_status_t st = DURE_OK;
    switch (c->cfg.backend) {
    case COMM_BACKEND_AUTO:
        c->kind = comm_backend_nccl_usable() ? COMM_BACKEND_NCCL : COMM_BACKEND_MPI;
        break;
    case COMM_BACKEND_NCCL:
    case COMM_BACKEND_MPI:
        c->kind = c->cfg.backend;
        break;
    default:
        DURE_FAIL(DURE_ERR_ARG, "backend %d is not auto, nccl or mpi", (int)c->cfg.backend);
    }
    DURE_CHECK(c->kind != COMM_BACKEND_NCCL || c->cfg.algo == COMM_ALGO_AUTO ||
                   c->cfg.algo == COMM_ALGO_NATIVE,
               DURE_ERR_ARG,
               "algo = %s applies to backend = mpi; NCCL picks its own algorithm (set "
               "NCCL_ALGO, or deterministic = true)",
               comm_algo_name(c->cfg.algo));
out:
    return st;
}

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
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv_work, NULL);
    pthread_cond_init(&c->cv_done, NULL);
    if (cfg->algo_table) {
        c->table_text = strdup(cfg->algo_table);
        DURE_ALLOC_TRY(c->table_text, strlen(cfg->algo_table) + 1);
    }
    c->cfg.algo_table = c->table_text;
    if (c->cfg.max_inflight <= 0) {
        c->cfg.max_inflight = 256;
    }

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

    DURE_TRY(pick_backend(c));
    if (c->kind == COMM_BACKEND_MPI) {
        DURE_TRY(table_resolve(c));
    }
    struct comm_backend_args args = {
        .mpi = c->mpi,
        .rank = c->rank,
        .size = c->size,
        .local_rank = c->local_rank,
        .local_size = c->local_size,
        .nodes = c->nodes,
        .cfg = &c->cfg,
        .table = &c->table,
        .cancel = &c->cancel,
    };
    if (c->kind == COMM_BACKEND_NCCL) {
        DURE_TRY(comm_backend_nccl_create(&args, &c->iface, &c->ctx));
    } else {
        DURE_TRY(comm_backend_mpi_create(&args, &c->iface, &c->ctx));
    }

    c->nreqs = c->cfg.max_inflight + 1;
    c->reqs = calloc((size_t)c->nreqs, sizeof *c->reqs);
    DURE_ALLOC_TRY(c->reqs, (size_t)c->nreqs * sizeof *c->reqs);
    c->queue = calloc((size_t)c->nreqs, sizeof *c->queue);
    DURE_ALLOC_TRY(c->queue, (size_t)c->nreqs * sizeof *c->queue);
    for (int i = c->nreqs - 1; i >= 0; i--) {
        req_put(c, &c->reqs[i]);
    }
    DURE_TRY(comm_watchdog_create(c->mpi, c->cfg.watchdog_s, on_watchdog_fire, c, &c->wd));
    if (!c->iface->start) {
        DURE_CHECK(pthread_create(&c->thread, NULL, comm_thread_main, c) == 0,
                   DURE_ERR_INTERNAL, "cannot start the communication thread");
        c->thread_started = 1;
    }
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
    if (c->thread_started) {
        pthread_mutex_lock(&c->mu);
        c->stop = 1;
        pthread_cond_signal(&c->cv_work);
        pthread_mutex_unlock(&c->mu);
        if (hung) {
            /* The thread may be stuck inside the hung collective for good:
             * leave it and everything it can touch. */
            pthread_detach(c->thread);
            comm_watchdog_destroy(c->wd, 0);
            return;
        }
        pthread_join(c->thread, NULL);
    }
    comm_watchdog_destroy(c->wd, !hung);
    /* After a hang only a backend without a communication thread (nccl,
     * already aborted) gets here; its destroy is not collective. */
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
    pthread_cond_destroy(&c->cv_done);
    pthread_cond_destroy(&c->cv_work);
    pthread_mutex_destroy(&c->mu);
    free(c->queue);
    free(c->reqs);
    free(c->table_text);
    free(c);
}

/* ---------------------------------------------------------------- accessors */

int comm_rank(const comm_t *c) { return c->rank; }
int comm_size(const comm_t *c) { return c->size; }
int comm_local_rank(const comm_t *c) { return c->local_rank; }
int comm_local_size(const comm_t *c) { return c->local_size; }
int comm_node_count(const comm_t *c) { return c->nodes; }
enum comm_backend comm_backend(const comm_t *c) { return c->kind; }
enum comm_memory comm_memory(const comm_t *c) { return c->iface->memory; }
uint64_t comm_seq(const comm_t *c) { return c->seq; }
int comm_max_inflight(const comm_t *c) { return c->nreqs - 1; }

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

/* ---------------------------------------------------------------- public forms */

static struct comm_op op_allreduce(const void *send, void *recv, size_t count,
                                   enum comm_dtype dt, enum comm_redop redop)
{
    return (struct comm_op){.coll = COMM_ALLREDUCE, .dtype = dt, .redop = redop,
                            .send = send, .recv = recv, .total = count, .count = count};
}

static struct comm_op op_reduce_scatter(const comm_t *c, const void *send, void *recv,
                                        size_t count, enum comm_dtype dt, enum comm_redop redop)
{
    struct comm_shard sh = comm_shard_of(count, c->size, c->rank);
    return (struct comm_op){.coll = COMM_REDUCE_SCATTER, .dtype = dt, .redop = redop,
                            .send = send, .recv = recv, .recv_first = sh.offset,
                            .total = count, .count = count};
}

static struct comm_op op_allgather(const comm_t *c, const void *send, void *recv, size_t count,
                                   enum comm_dtype dt)
{
    struct comm_shard sh = comm_shard_of(count, c->size, c->rank);
    return (struct comm_op){.coll = COMM_ALLGATHER, .dtype = dt, .send = send,
                            .send_first = sh.offset, .recv = recv, .total = count,
                            .count = count};
}

static struct comm_op op_broadcast(const void *send, void *recv, size_t count,
                                   enum comm_dtype dt, int root)
{
    return (struct comm_op){.coll = COMM_BROADCAST, .dtype = dt, .root = root, .send = send,
                            .recv = recv, .total = count, .count = count};
}

static struct comm_op op_range(enum comm_coll coll, void *buf, size_t total, size_t offset,
                               size_t count, enum comm_dtype dt, enum comm_redop redop)
{
    return (struct comm_op){.coll = coll, .dtype = dt, .redop = redop, .send = buf,
                            .recv = buf, .total = total, .offset = offset, .count = count};
}

/* A rank whose shard is empty may pass NULL for it. */
static void fix_empty_shard(struct comm_op *op, int own_send)
{
    if (own_send && !op->send) {
        op->send = op->recv;
    }
    if (!own_send && !op->recv) {
        op->recv = (void *)op->send;
    }
}

dure_status_t comm_allreduce(comm_t *c, const void *send, void *recv, size_t count,
                             enum comm_dtype dt, enum comm_redop op)
{
    struct comm_op o = op_allreduce(send, recv, count, dt, op);
    return issue(c, &o, NULL);
}

dure_status_t comm_reduce_scatter(comm_t *c, const void *send, void *recv, size_t count,
                                  enum comm_dtype dt, enum comm_redop op)
{
    struct comm_op o = op_reduce_scatter(c, send, recv, count, dt, op);
    fix_empty_shard(&o, 0);
    return issue(c, &o, NULL);
}

dure_status_t comm_allgather(comm_t *c, const void *send, void *recv, size_t count,
                             enum comm_dtype dt)
{
    struct comm_op o = op_allgather(c, send, recv, count, dt);
    fix_empty_shard(&o, 1);
    return issue(c, &o, NULL);
}

dure_status_t comm_broadcast(comm_t *c, const void *send, void *recv, size_t count,
                             enum comm_dtype dt, int root)
{
    struct comm_op o = op_broadcast(c->rank == root ? send : recv, recv, count, dt, root);
    return issue(c, &o, NULL);
}

dure_status_t comm_barrier(comm_t *c)
{
    struct comm_op o = {.coll = COMM_BARRIER};
    return issue(c, &o, NULL);
}

dure_status_t comm_reduce_scatter_range(comm_t *c, void *buf, size_t total, size_t offset,
                                        size_t count, enum comm_dtype dt, enum comm_redop op)
{
    struct comm_op o = op_range(COMM_REDUCE_SCATTER, buf, total, offset, count, dt, op);
    return issue(c, &o, NULL);
}

dure_status_t comm_allgather_range(comm_t *c, void *buf, size_t total, size_t offset,
                                   size_t count, enum comm_dtype dt)
{
    struct comm_op o = op_range(COMM_ALLGATHER, buf, total, offset, count, dt, COMM_SUM);
    return issue(c, &o, NULL);
}

dure_status_t comm_allreduce_start(comm_t *c, const void *send, void *recv, size_t count,
                                   enum comm_dtype dt, enum comm_redop op, comm_req_t **req)
{
    struct comm_op o = op_allreduce(send, recv, count, dt, op);
    return issue(c, &o, req);
}

dure_status_t comm_reduce_scatter_start(comm_t *c, const void *send, void *recv,
                                        size_t count, enum comm_dtype dt,
                                        enum comm_redop op, comm_req_t **req)
{
    struct comm_op o = op_reduce_scatter(c, send, recv, count, dt, op);
    fix_empty_shard(&o, 0);
    return issue(c, &o, req);
}

dure_status_t comm_allgather_start(comm_t *c, const void *send, void *recv, size_t count,
                                   enum comm_dtype dt, comm_req_t **req)
{
    struct comm_op o = op_allgather(c, send, recv, count, dt);
    fix_empty_shard(&o, 1);
    return issue(c, &o, req);
}

dure_status_t comm_broadcast_start(comm_t *c, const void *send, void *recv, size_t count,
                                   enum comm_dtype dt, int root, comm_req_t **req)
{
    struct comm_op o = op_broadcast(c->rank == root ? send : recv, recv, count, dt, root);
    return issue(c, &o, req);
}

dure_status_t comm_reduce_scatter_range_start(comm_t *c, void *buf, size_t total,
                                              size_t offset, size_t count, enum comm_dtype dt,
                                              enum comm_redop op, comm_req_t **req)
{
    struct comm_op o = op_range(COMM_REDUCE_SCATTER, buf, total, offset, count, dt, op);
    return issue(c, &o, req);
}

dure_status_t comm_allgather_range_start(comm_t *c, void *buf, size_t total, size_t offset,
                                         size_t count, enum comm_dtype dt, comm_req_t **req)
{
    struct comm_op o = op_range(COMM_ALLGATHER, buf, total, offset, count, dt, COMM_SUM);
    return issue(c, &o, req);
}

/* The part forms: the range's buffer starts at element `offset`, this
 * rank's part buffer at the part's first element. */
static struct comm_op op_part(const comm_t *c, enum comm_coll coll, const void *range,
                              void *mine, size_t total, size_t offset, size_t count,
                              enum comm_dtype dt, enum comm_redop redop)
{
    struct comm_shard part = comm_range_part(total, c->size, c->rank, offset, count);
    struct comm_op o = {.coll = coll, .dtype = dt, .redop = redop, .total = total,
                        .offset = offset, .count = count};
    /* An empty part's pointer is never dereferenced: the range's serves. */
    void *own = part.count ? mine : (void *)range;
    size_t own_first = part.count ? part.offset : offset;
    if (coll == COMM_REDUCE_SCATTER) {
        o.send = range;
        o.send_first = offset;
        o.recv = own;
        o.recv_first = own_first;
    } else {
        o.send = own;
        o.send_first = own_first;
        o.recv = (void *)range;
        o.recv_first = offset;
    }
    return o;
}

dure_status_t comm_reduce_scatter_part_start(comm_t *c, const void *range, void *mine,
                                             size_t total, size_t offset, size_t count,
                                             enum comm_dtype dt, enum comm_redop op,
                                             comm_req_t **req)
{
    struct comm_op o =
        op_part(c, COMM_REDUCE_SCATTER, range, mine, total, offset, count, dt, op);
    return issue(c, &o, req);
}

dure_status_t comm_allgather_part_start(comm_t *c, const void *mine, void *range, size_t total,
                                        size_t offset, size_t count, enum comm_dtype dt,
                                        comm_req_t **req)
{
    struct comm_op o =
        op_part(c, COMM_ALLGATHER, range, (void *)mine, total, offset, count, dt, COMM_SUM);
    return issue(c, &o, req);
}
