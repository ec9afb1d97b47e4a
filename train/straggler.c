/* train/straggler.c - see straggler.h. */
#include "train/straggler.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/comm.h"
#include "common/mpi_check.h"
#include "train/train.h"
#include "train/train_priv.h"

/* Checks in a row above the threshold before a rank is named. */
#define STRAGGLER_CHECKS 2

struct train_straggler {
    int every;                 /* steps per window */
    double threshold;          /* parallel.straggler_slowdown */
    /* this rank's window */
    int steps;
    double compute_sum, wait_sum;
    /* the exchange: 2 floats per rank (compute, wait per step) */
    float *host;               /* (2 * world_size) host */
    void *buf;                 /* the same in the comm's memory */
    /* rank 0's history */
    char (*names)[STRAGGLER_HOST_MAX]; /* (world_size) host names */
    int *streak;               /* (world_size) consecutive checks above threshold */
    double *best;              /* (world_size) lowest window compute seen; 0 = none */
    double *sorted;            /* (world_size) scratch */
};

dure_status_t train_straggler_setup(train_t *t)
{
    dure_status_t st = DURE_OK, local = DURE_OK;
    struct train_straggler *s = NULL;
    int n = t->world_size, worst = 0, len = 0;
    char name[MPI_MAX_PROCESSOR_NAME] = "", mine[STRAGGLER_HOST_MAX] = "";
    char *all = NULL;
    if (t->spec->parallel.straggler_every <= 0) {
        goto out;
    }
    s = calloc(1, sizeof *s);
    if (s) {
        s->every = t->spec->parallel.straggler_every;
        s->threshold = t->spec->parallel.straggler_slowdown;
        s->host = calloc(2 * (size_t)n, sizeof *s->host);
        if (t->rank == 0) {
            s->names = calloc((size_t)n, sizeof *s->names);
            s->streak = calloc((size_t)n, sizeof *s->streak);
            s->best = calloc((size_t)n, sizeof *s->best);
            s->sorted = calloc((size_t)n, sizeof *s->sorted);
            all = calloc((size_t)n, sizeof mine);
        }
    }
    if (!s || !s->host ||
        (t->rank == 0 && (!s->names || !s->streak || !s->best || !s->sorted || !all))) {
        local = DURE_ERR_NOMEM;
        dure_log_error(__FILE__, __LINE__, "out of memory for straggler checks (%d ranks)", n);
    } else {
        local = comm_mem_alloc(t->comm, 2 * (size_t)n * sizeof(float), &s->buf);
    }
    t->strag = s;
    DURE_MPI_TRY(MPI_Allreduce(&local, &worst, 1, MPI_INT, MPI_MAX, t->world));
    DURE_TRY((dure_status_t)worst);
    DURE_MPI_TRY(MPI_Get_processor_name(name, &len));
    snprintf(mine, sizeof mine, "%.*s", STRAGGLER_HOST_MAX - 1, name);
    DURE_MPI_TRY(MPI_Gather(mine, (int)sizeof mine, MPI_CHAR, all, (int)sizeof mine, MPI_CHAR,
                            0, t->world));
    if (t->rank == 0) {
        memcpy(s->names, all, (size_t)n * sizeof mine);
    }
out:
    free(all);
    return st;
}

void train_straggler_teardown(train_t *t)
{
    struct train_straggler *s = t->strag;
    if (!s) {
        return;
    }
    if (s->buf) {
        comm_mem_free(t->comm, s->buf);
    }
    free(s->host);
    free(s->names);
    free(s->streak);
    free(s->best);
    free(s->sorted);
    free(s);
    t->strag = NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Rank 0: judge the window every rank reported (s->host). */
static void judge(train_t *t, struct straggler_report *r)
{
    struct train_straggler *s = t->strag;
    int n = t->world_size;
    double fastest = INFINITY;
    memset(r, 0, sizeof *r);
    r->checked = 1;
    r->rank = -1;
    for (int i = 0; i < n; i++) {
        s->sorted[i] = s->host[2 * i];
        fastest = fmin(fastest, s->host[2 * i]);
    }
    r->median_s = median_of(s->sorted, n);
    for (int i = 0; i < n; i++) {
        s->sorted[i] = s->host[2 * i + 1];
    }
    r->median_wait_s = median_of(s->sorted, n);
    r->wait_rank = 0;
    for (int i = 0; i < n; i++) {
        double c = s->host[2 * i], w = s->host[2 * i + 1];
        double slow = r->median_s > 0 ? c / r->median_s - 1.0 : 0.0;
        s->streak[i] = slow > s->threshold ? s->streak[i] + 1 : 0;
        if (c > 0 && (s->best[i] == 0 || c < s->best[i])) {
            s->best[i] = c;
        }
        if (w > s->host[2 * r->wait_rank + 1]) {
            r->wait_rank = i;
        }
        if (s->streak[i] >= STRAGGLER_CHECKS) {
            r->n_stragglers++;
            if (r->rank < 0 || slow > r->slowdown) {
                r->rank = i;
                r->slowdown = slow;
            }
        }
    }
    r->wait_s = s->host[2 * r->wait_rank + 1];
    snprintf(r->wait_host, sizeof r->wait_host, "%s", s->names[r->wait_rank]);
    if (r->rank < 0) {
        return;
    }
    double c = s->host[2 * r->rank];
    r->found = 1;
    r->compute_s = c;
    r->checks = s->streak[r->rank];
    r->score_fastest = c > 0 ? fastest / c : 1.0;
    r->score_own = c > 0 ? s->best[r->rank] / c : 1.0;
    snprintf(r->host, sizeof r->host, "%s", s->names[r->rank]);
}

dure_status_t train_straggler_step(train_t *t, const struct dure_step_metrics *m,
                                   struct straggler_report *r)
{
    dure_status_t st = DURE_OK;
    struct train_straggler *s = t->strag;
    if (r) {
        memset(r, 0, sizeof *r);
    }
    if (!s) {
        goto out;
    }
    double wait = m->comm_exposed_s;
    double compute = m->step_s - wait - m->data_wait_s;
    s->compute_sum += compute > 0 ? compute : 0;
    s->wait_sum += wait;
    if (++s->steps < s->every) {
        goto out;
    }
    /* Every rank ends its window at the same step: one watched all-gather. */
    float mine[2] = {(float)(s->compute_sum / s->steps), (float)(s->wait_sum / s->steps)};
    float *slot = (float *)s->buf + 2 * (size_t)t->rank;
    DURE_TRY(comm_mem_upload(t->comm, slot, mine, sizeof mine));
    DURE_TRY(comm_allgather(t->comm, slot, s->buf, 2 * (size_t)t->world_size, COMM_F32));
    DURE_TRY(comm_mem_download(t->comm, s->host, s->buf,
                               2 * (size_t)t->world_size * sizeof(float)));
    s->steps = 0;
    s->compute_sum = s->wait_sum = 0;
    if (t->rank == 0 && r) {
        judge(t, r);
    }
out:
    return st;
}
