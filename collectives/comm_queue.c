/*
 * collectives/comm_queue.c - a communicator's asynchronous operations.
 *
 * A start form takes a request from a fixed pool (max_inflight of them,
 * plus one kept for a blocking call that must queue). For an async backend
 * (its own progress engine) the request goes straight to the backend's
 * start and is polled at wait. Otherwise it joins a FIFO that one
 * communication thread per comm runs in start order through the blocking
 * slots; a blocking call behind pending work queues too, and one with
 * nothing pending runs on the caller's thread (the hand-off costs about
 * 10 us, which small messages cannot afford). When the caller runs
 * (comm_config.caller_runs) there is no thread: the FIFO is the same, and
 * whoever waits runs it from the head (run_head).
 */
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "collectives/comm_priv.h"
#include "common/timing.h"

/* Waiting on an async backend's engine: poll back to back this long, then
 * nap between polls, up to this long (comm_backoff). */
enum { POLL_SPIN_NS = 20000, POLL_NAP_MAX_NS = 100000 };

/* ---------------------------------------------------------------- the pool */

/* Under mu. */
static struct comm_req *req_get(struct comm_queue *q)
{
    struct comm_req *r = q->free_list;
    if (r) {
        q->free_list = r->next_free;
        r->next_free = NULL;
        r->handle = NULL;
        r->st = DURE_OK;
    }
    return r;
}

/* Under mu. */
static void req_put(struct comm_queue *q, struct comm_req *r)
{
    r->state = REQ_FREE;
    r->next_free = q->free_list;
    q->free_list = r;
}

/* Under mu: a request for a start form, or NULL when max_inflight are pending. */
static struct comm_req *req_get_inflight(struct comm_queue *q)
{
    struct comm_req *r = q->inflight < q->nreqs - 1 ? req_get(q) : NULL;
    if (r) {
        q->inflight++;
    }
    return r;
}

/* Under mu: a start form's request is over (waited, or never started). */
static void req_put_inflight(struct comm_queue *q, struct comm_req *r)
{
    q->inflight--;
    req_put(q, r);
}

dure_status_t comm_queue_init(comm_t *c, int max_inflight)
{
    dure_status_t st = DURE_OK;
    struct comm_queue *q = &c->q;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv_work, NULL);
    pthread_cond_init(&q->cv_done, NULL);
    q->nreqs = max_inflight + 1;
    q->reqs = calloc((size_t)q->nreqs, sizeof *q->reqs);
    DURE_ALLOC_TRY(q->reqs, (size_t)q->nreqs * sizeof *q->reqs);
    q->ring = calloc((size_t)q->nreqs, sizeof *q->ring);
    DURE_ALLOC_TRY(q->ring, (size_t)q->nreqs * sizeof *q->ring);
    for (int i = q->nreqs - 1; i >= 0; i--) {
        req_put(q, &q->reqs[i]);
    }
out:
    return st;
}

void comm_queue_free(comm_t *c)
{
    struct comm_queue *q = &c->q;
    pthread_cond_destroy(&q->cv_done);
    pthread_cond_destroy(&q->cv_work);
    pthread_mutex_destroy(&q->mu);
    free(q->ring);
    free(q->reqs);
}

/* ---------------------------------------------------------------- the thread */

/* Under mu, with q->len > 0: run the FIFO's head (unlocked while it runs)
 * on this thread, the communication thread's or the caller's. */
static void run_head(comm_t *c)
{
    struct comm_queue *q = &c->q;
    struct comm_req *r = q->ring[q->head];
    q->head = (q->head + 1) % q->nreqs;
    q->len--;
    q->busy = 1;
    /* After the watchdog gave up, nothing queued runs: the caller's waits
     * returned and its buffers may be gone. */
    const dure_status_t broken = atomic_load(&c->cancel)
                                     ? DURE_ERR_TIMEOUT
                                     : (dure_status_t)atomic_load(&c->broken);
    pthread_mutex_unlock(&q->mu);

    dure_status_t st = broken != DURE_OK ? broken : comm_exec(c, &r->op, r->bytes);

    pthread_mutex_lock(&q->mu);
    comm_break(c, st);
    r->st = st;
    r->state = REQ_DONE;
    q->busy = 0;
    pthread_cond_broadcast(&q->cv_done);
}

static void *comm_thread_main(void *arg)
{
    comm_t *c = arg;
    struct comm_queue *q = &c->q;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->stop && q->len == 0) {
            pthread_cond_wait(&q->cv_work, &q->mu);
        }
        if (q->len == 0) {
            break;
        }
        run_head(c);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

dure_status_t comm_queue_start(comm_t *c)
{
    dure_status_t st = DURE_OK;
    if (c->backend->async) {
        goto out;
    }
    if (c->cfg.caller_runs) {
        c->q.caller_runs = 1;
        goto out;
    }
    DURE_CHECK(pthread_create(&c->q.thread, NULL, comm_thread_main, c) == 0, DURE_ERR_INTERNAL,
               "cannot start the communication thread");
    c->q.thread_started = 1;
    DURE_CHECK(pthread_getcpuclockid(c->q.thread, &c->q.thread_clock) == 0, DURE_ERR_INTERNAL,
               "cannot read the communication thread's CPU clock");
out:
    return st;
}

int comm_queue_stop(comm_t *c, int hung)
{
    struct comm_queue *q = &c->q;
    if (q->caller_runs && !hung) {
        /* What the thread would have run before stopping. */
        pthread_mutex_lock(&q->mu);
        while (q->len > 0) {
            run_head(c);
        }
        pthread_mutex_unlock(&q->mu);
    }
    if (!q->thread_started) {
        return 1;
    }
    pthread_mutex_lock(&q->mu);
    q->stop = 1;
    pthread_cond_signal(&q->cv_work);
    pthread_mutex_unlock(&q->mu);
    q->thread_started = 0;
    if (hung) {
        /* The thread may be stuck inside the hung collective for good. */
        pthread_detach(q->thread);
        return 0;
    }
    pthread_join(q->thread, NULL);
    return 1;
}

double comm_thread_cpu_s(const comm_t *c)
{
    return c->q.thread_started ? dure_clock_s(c->q.thread_clock) : NAN;
}

/* Under mu: hand r to the thread. */
static void enqueue(struct comm_queue *q, struct comm_req *r)
{
    q->ring[(q->head + q->len) % q->nreqs] = r;
    q->len++;
    r->state = REQ_QUEUED;
    pthread_cond_signal(&q->cv_work);
}

/* Wait, under mu, until r is done or the watchdog cancelled the comm;
 * when the caller runs, run the FIFO up to r first. */
static dure_status_t wait_done_locked(comm_t *c, struct comm_req *r)
{
    while (c->q.caller_runs && r->state != REQ_DONE && c->q.len > 0) {
        run_head(c);
    }
    while (r->state != REQ_DONE) {
        if (atomic_load(&c->cancel)) {
            /* The executor may still be inside the hung op and own r: leave
             * it allocated; the comm is unusable from here on. */
            return DURE_ERR_TIMEOUT;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&c->q.cv_done, &c->q.mu, &until);
    }
    return r->st;
}

/* ---------------------------------------------------------------- async backends */

/* Start op on the backend's own engine. */
static dure_status_t submit_async(comm_t *c, const struct comm_op *op, size_t bytes,
                                  comm_req_t **req)
{
    dure_status_t st = DURE_OK;
    struct comm_queue *q = &c->q;
    pthread_mutex_lock(&q->mu);
    struct comm_req *r = req_get_inflight(q);
    pthread_mutex_unlock(&q->mu);
    DURE_CHECK(r, DURE_ERR_ARG, "%s: more than max_inflight = %d operations pending",
               comm_coll_name(op->coll), q->nreqs - 1);
    r->op = *op;
    r->bytes = bytes;
    r->state = REQ_STARTED;
    /* Starting may itself wait for peers (NCCL connecting): watched too. */
    comm_watchdog_begin(c->wd, &r->op, bytes, comm_op_algo_name(c, &r->op));
    st = c->iface->start(c->ctx, &r->op, &r->handle);
    comm_watchdog_end(c->wd);
    if (st != DURE_OK) {
        pthread_mutex_lock(&q->mu);
        req_put_inflight(q, r);
        pthread_mutex_unlock(&q->mu);
        comm_break(c, st);
        goto out;
    }
    *req = r;
out:
    return st;
}

/* Poll an async backend's op until done, under the watchdog from now,
 * without a busy core. */
static dure_status_t poll_until_done(comm_t *c, struct comm_req *r)
{
    dure_status_t st = DURE_OK;
    int done = 0;
    struct comm_backoff b;
    comm_backoff_init(&b, POLL_SPIN_NS, POLL_NAP_MAX_NS);
    comm_watchdog_begin(c->wd, &r->op, r->bytes, comm_op_algo_name(c, &r->op));
    for (;;) {
        DURE_TRY(c->iface->poll(c->ctx, r->handle, &done));
        if (done) {
            break;
        }
        DURE_CHECK(!atomic_load(&c->cancel), DURE_ERR_TIMEOUT,
                   "%s seq %llu cancelled by the watchdog", comm_coll_name(r->op.coll),
                   (unsigned long long)r->op.seq);
        comm_backoff_nap(&b);
    }
out:
    comm_watchdog_end(c->wd);
    return st;
}

/* ---------------------------------------------------------------- submit, wait, test */

/* Whether r is a request not yet waited. Read under mu: the executor writes
 * r->state (REQ_DONE) under it while the caller may be checking; only a
 * waiter frees r, so the answer holds once the lock is released. */
static int req_pending(struct comm_queue *q, const struct comm_req *r)
{
    pthread_mutex_lock(&q->mu);
    int pending = r && r->state != REQ_FREE;
    pthread_mutex_unlock(&q->mu);
    return pending;
}

dure_status_t comm_queue_submit(comm_t *c, const struct comm_op *op, size_t bytes,
                                comm_req_t **req)
{
    dure_status_t st = DURE_OK;
    struct comm_queue *q = &c->q;
    struct comm_req *r = NULL;

    if (c->backend->async) {
        if (!req) {
            /* The backend orders its own work (a CUDA stream). */
            st = comm_exec(c, op, bytes);
            comm_break(c, st);
            return st;
        }
        return submit_async(c, op, bytes, req);
    }
    pthread_mutex_lock(&q->mu);
    if (!req && q->len == 0 && !q->busy) {
        /* Nothing pending: run here, without a thread hand-off, so small
         * blocking collectives keep MPI's latency. */
        q->busy = 1;
        pthread_mutex_unlock(&q->mu);
        st = comm_exec(c, op, bytes);
        pthread_mutex_lock(&q->mu);
        q->busy = 0;
        pthread_mutex_unlock(&q->mu);
        comm_break(c, st);
        return st;
    }
    /* A blocking call behind pending work takes the pool's spare. */
    r = req ? req_get_inflight(q) : req_get(q);
    if (!r) {
        pthread_mutex_unlock(&q->mu);
        DURE_FAIL(DURE_ERR_ARG, "%s: more than max_inflight = %d operations pending",
                  comm_coll_name(op->coll), q->nreqs - 1);
    }
    r->op = *op;
    r->bytes = bytes;
    enqueue(q, r);
    if (req) {
        *req = r;
        pthread_mutex_unlock(&q->mu);
        goto out;
    }
    st = wait_done_locked(c, r);
    if (r->state == REQ_DONE) {
        req_put(q, r);
    }
    pthread_mutex_unlock(&q->mu);
    comm_break(c, st);
out:
    return st;
}

dure_status_t comm_wait(comm_t *c, comm_req_t *r)
{
    dure_status_t st = DURE_OK;
    struct comm_queue *q = &c->q;
    DURE_CHECK(req_pending(q, r), DURE_ERR_ARG,
               "comm_wait: the request is not pending (waited twice?)");
    if (c->backend->async) {
        st = poll_until_done(c, r);
        c->iface->release(c->ctx, r->handle);
        pthread_mutex_lock(&q->mu);
        req_put_inflight(q, r);
        pthread_mutex_unlock(&q->mu);
        comm_break(c, st);
        goto out;
    }
    pthread_mutex_lock(&q->mu);
    st = wait_done_locked(c, r);
    if (r->state == REQ_DONE) {
        req_put_inflight(q, r);
    }
    pthread_mutex_unlock(&q->mu);
out:
    return st;
}

dure_status_t comm_test(comm_t *c, comm_req_t *r, int *done)
{
    dure_status_t st = DURE_OK;
    *done = 0;
    DURE_CHECK(req_pending(&c->q, r), DURE_ERR_ARG,
               "comm_test: the request is not pending (waited already?)");
    if (c->backend->async) {
        st = c->iface->poll(c->ctx, r->handle, done);
        goto out;
    }
    pthread_mutex_lock(&c->q.mu);
    *done = r->state == REQ_DONE;
    pthread_mutex_unlock(&c->q.mu);
out:
    return st;
}
