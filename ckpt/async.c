/* ckpt/async.c - see async.h. */
#include "ckpt/async.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/mpi_check.h"
#include "common/timing.h"

/* The helper's nice value: training threads come first on a busy node. */
#define HELPER_NICE 10

struct ckpt_async {
    MPI_Comm comm;              /* a duplicate of the caller's, the helper's own */
    float *snap;                /* (3 * cap) params, adam_m, adam_v of the shard */
    size_t cap;

    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* signalled on a new job, a result, or stop */
    int stop;
    int pending;                /* a job handed over and not finished */
    int ready;                  /* a result not yet collected by wait */

    /* the job, valid while pending */
    char dir[CKPT_PATH_MAX];
    struct ckpt_meta meta;
    size_t offset, len;
    int keep;

    /* the result, valid while ready */
    dure_status_t st;
    struct ckpt_io_stats io;
};

static void *helper_main(void *arg)
{
    struct ckpt_async *a = arg;
    /* Linux: a thread's nice value is its own. Best effort. */
    (void)setpriority(PRIO_PROCESS, (id_t)gettid(), HELPER_NICE);
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->stop && !a->pending) {
            pthread_cond_wait(&a->cv, &a->mu);
        }
        if (!a->pending) {
            break;
        }
        pthread_mutex_unlock(&a->mu);
        struct ckpt_io_stats io;
        memset(&io, 0, sizeof io);
        dure_status_t st = ckpt_save(a->comm, a->dir, &a->meta, a->snap, a->snap + a->cap,
                                     a->snap + 2 * a->cap, a->offset, a->len, a->keep, &io);
        pthread_mutex_lock(&a->mu);
        a->st = st;
        a->io = io;
        a->pending = 0;
        a->ready = 1;
        pthread_cond_broadcast(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

dure_status_t ckpt_async_create(MPI_Comm comm, size_t cap, ckpt_async_t **out)
{
    dure_status_t st = DURE_OK, local = DURE_OK;
    struct ckpt_async *a = NULL;
    int worst = 0;

    *out = NULL;
    a = calloc(1, sizeof *a);
    if (a) {
        a->comm = MPI_COMM_NULL;
        a->cap = cap;
        a->snap = malloc(3 * (cap ? cap : 1) * sizeof *a->snap);
        pthread_mutex_init(&a->mu, NULL);
        pthread_cond_init(&a->cv, NULL);
    }
    if (!a || !a->snap) {
        local = DURE_ERR_NOMEM;
        dure_log_error(__FILE__, __LINE__,
                       "out of memory for the checkpoint snapshot (%zu bytes)",
                       3 * cap * sizeof(float));
    }
    DURE_MPI_TRY(MPI_Allreduce(&local, &worst, 1, MPI_INT, MPI_MAX, comm));
    DURE_TRY((dure_status_t)worst);
    DURE_MPI_TRY(MPI_Comm_dup(comm, &a->comm));
    DURE_MPI_TRY(MPI_Comm_set_errhandler(a->comm, MPI_ERRORS_RETURN));
    local = pthread_create(&a->thread, NULL, helper_main, a) == 0 ? DURE_OK
                                                                   : DURE_ERR_INTERNAL;
    if (local != DURE_OK) {
        dure_log_error(__FILE__, __LINE__, "cannot start the checkpoint thread");
    }
    a->started = local == DURE_OK;
    DURE_MPI_TRY(MPI_Allreduce(&local, &worst, 1, MPI_INT, MPI_MAX, comm));
    DURE_TRY((dure_status_t)worst);
    *out = a;
    a = NULL;
out:
    ckpt_async_destroy(a);
    return st;
}

dure_status_t ckpt_async_wait(ckpt_async_t *a, uint64_t *step, struct ckpt_io_stats *io)
{
    dure_status_t st = DURE_OK;
    if (step) {
        *step = 0;
    }
    pthread_mutex_lock(&a->mu);
    while (a->pending) {
        pthread_cond_wait(&a->cv, &a->mu);
    }
    if (a->ready) {
        st = a->st;
        if (step) {
            *step = a->meta.step;
        }
        if (io) {
            *io = a->io;
        }
        a->ready = 0;
    }
    pthread_mutex_unlock(&a->mu);
    return st;
}

int ckpt_async_done(ckpt_async_t *a)
{
    pthread_mutex_lock(&a->mu);
    int done = a->ready && a->st == DURE_OK;
    pthread_mutex_unlock(&a->mu);
    return done;
}

dure_status_t ckpt_async_start(ckpt_async_t *a, const char *dir, const struct ckpt_meta *meta,
                               const float *params, const float *adam_m, const float *adam_v,
                               size_t offset, size_t len, int keep, double *stall_s)
{
    dure_status_t st = DURE_OK;
    double t0 = dure_now_s();
    uint64_t prev = 0;

    st = ckpt_async_wait(a, &prev, NULL);
    if (st != DURE_OK) {
        dure_log_error(__FILE__, __LINE__,
                       "the checkpoint of step %llu, written in the background, failed "
                       "(see above): not starting the one of step %llu",
                       (unsigned long long)prev, (unsigned long long)meta->step);
        goto out;
    }
    DURE_CHECK(len <= a->cap, DURE_ERR_ARG,
               "checkpoint shard of %zu elements exceeds the snapshot's %zu", len, a->cap);
    DURE_CHECK(strlen(dir) < sizeof a->dir, DURE_ERR_ARG,
               "checkpoint directory path '%s' is too long", dir);
    /* The helper is idle (waited above): the job fields are ours. */
    if (len > 0) {
        memcpy(a->snap, params, len * sizeof *a->snap);
        memcpy(a->snap + a->cap, adam_m, len * sizeof *a->snap);
        memcpy(a->snap + 2 * a->cap, adam_v, len * sizeof *a->snap);
    }
    pthread_mutex_lock(&a->mu);
    memcpy(a->dir, dir, strlen(dir) + 1);
    a->meta = *meta;
    a->offset = offset;
    a->len = len;
    a->keep = keep;
    a->pending = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
out:
    if (stall_s) {
        *stall_s = dure_now_s() - t0;
    }
    return st;
}

void ckpt_async_destroy(ckpt_async_t *a)
{
    if (!a) {
        return;
    }
    if (a->started) {
        pthread_mutex_lock(&a->mu);
        a->stop = 1;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    if (a->comm != MPI_COMM_NULL) {
        MPI_Comm_free(&a->comm);
    }
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a->snap);
    free(a);
}
