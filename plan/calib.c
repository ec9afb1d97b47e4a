/*
 * plan/calib.c - a job's CPU step measured on this machine with the
 * model's own kernels; see plan.h (plan_cpu_calibrate).
 *
 * Why not FLOPs at the sgemm peak: at the shapes of a small model's step
 * (a micro-batch of 4 windows of 17 tokens is a 68-row GEMM) OpenBLAS runs
 * far below its 768^3 rate, and a fifth of the CPU step is not GEMM at all
 * (GELU, LayerNorm, attention's softmax, AdamW's square roots, the
 * gradient norm and zeroing): `perf record` of bench/run.d/zero3.sh's job
 * puts 55% of the samples in sgemm, 10% in AdamW, 5% in GELU. Timing a one-
 * and a two-block model of the job's shapes measures all of it: the second
 * block's time is what every block costs, the rest (embeddings, head, loss)
 * is paid once per micro-batch.
 *
 * Why all of a node's ranks at once: the ranks of a node share its memory
 * bandwidth and caches. Timed alone, one rank's step planned 6-18% below
 * the steps of two ranks running together here (AdamW and the copies are
 * bandwidth-bound), while it matched one rank within 3%. So every rank the
 * plan puts on a node runs the whole calibration at the same time, each
 * in a thread of its own with its own device, models and buffers, and the
 * figures are their means.
 *
 * Why medians: the run's own step time is a median over its steps. The
 * best of 7 (what this took before) planned 4-9% below every measured step
 * on a quiet machine, and the difference of two best-ofs (a block's time)
 * moved 8% from one plan to the next.
 *
 * Why a wake: on a node whose cores all compute, every collective hands
 * work to a rank's communication thread and waits for a peer, and each
 * such handoff wakes a sleeping thread that must take a core from the
 * compute. `perf` of bench/run.d/zero3.sh's 2-rank job put futex wakes and
 * reschedule interrupts at 11% of stage 3's cycles (60 collectives a step)
 * against 4% of stage 0's (8), and the plan, which had no such term,
 * planned stage 3's step 12-27% short. So while every rank computes, two
 * threads hand a turn back and forth through a mutex and condition
 * variable (the communication queue's own handoff) and the mean time of a
 * wake is measured: the mean, because a few wakes wait a whole scheduler
 * slice and a step pays for every one.
 */
#include "plan/plan.h"

#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/timing.h"
#include "device/device.h"
#include "model/flops.h"

/* Calibration models larger than this are not built: the plan falls back
 * to FLOPs at the sgemm peak (a model this size is not trained on a CPU). */
#define CALIB_MAX_BYTES (1ull << 30)
/* Timed repetitions of each model (after one warm-up) at most; fewer when
 * a repetition is long: the two models share CALIB_BUDGET_S (at the shapes
 * of bench/run.d/zero3.sh a pair takes 13 ms, so it gets all 25). */
#define CALIB_REPS 25
#define CALIB_BUDGET_S 2.0
/* The per-parameter operations take 20 ms a repetition: 11 of them. */
#define CALIB_PARAM_REPS 11
/* Ranks calibrated at once, at most (each holds 64 MiB and two models). */
#define CALIB_RANKS_MAX 16
/* Elements the per-parameter operations are timed on: 64 MiB in all, past
 * the caches as a real model's state is. */
#define CALIB_ELEMS ((size_t)1 << 22)

/* A one-block (m[0]) and a two-block (m[1]) model of a job's shapes, and
 * a micro-batch to run them on. */
struct calib_models {
    model_t *m[2];
    float *batch;
};

static void models_close(struct calib_models *cm)
{
    free(cm->batch);
    model_destroy(cm->m[0]);
    model_destroy(cm->m[1]);
}

static dure_status_t models_open(const struct model_config *mc, device_t *dev,
                                 struct calib_models *cm)
{
    dure_status_t st = DURE_OK;
    size_t elems = (size_t)mc->micro_batch * (size_t)((mc->context_patches + 1) * mc->patch_len) *
                   (size_t)mc->channels;

    memset(cm, 0, sizeof *cm);
    for (int k = 0; k < 2; k++) {
        struct model_config c = *mc;
        c.n_layers = k + 1;
        DURE_TRY(model_create(&c, dev, NULL, &cm->m[k]));
    }
    cm->batch = malloc(elems * sizeof *cm->batch);
    DURE_ALLOC_TRY(cm->batch, elems * sizeof *cm->batch);
    for (size_t i = 0; i < elems; i++) {
        cm->batch[i] = (float)((i * 2654435761u) % 1000u) * 1e-3f - 0.5f;
    }
out:
    if (st != DURE_OK) {
        models_close(cm);
    }
    return st;
}

/* Median seconds of one forward + backward of cm's one-block (t[0]) and
 * two-block (t[1]) models, timed in turn. */
static dure_status_t time_blocks(struct calib_models *cm, double t[2])
{
    dure_status_t st = DURE_OK;
    double samples[2][CALIB_REPS];
    int reps = CALIB_REPS;
    for (int r = -1; r < reps; r++) {
        for (int k = 0; k < 2; k++) {
            float loss = 0;
            double t0 = dure_now_s();
            DURE_TRY(model_forward_backward(cm->m[k], cm->batch, NULL, &loss));
            double dt = dure_now_s() - t0;
            if (r < 0) {
                /* the warm-up (page faults, thread start) sets the count */
                int fit = (int)(CALIB_BUDGET_S / 2 / (dt > 0 ? dt : 1e-9));
                reps = fit < 3 ? 3 : fit < CALIB_REPS ? fit : CALIB_REPS;
            } else {
                samples[k][r] = dt;
            }
        }
    }
    t[0] = dure_median(samples[0], reps);
    t[1] = dure_median(samples[1], reps);
out:
    return st;
}

/* The two-block model's forward + backward, over and over until *done. */
static dure_status_t compute_until(struct calib_models *cm, _Atomic int *done)
{
    dure_status_t st = DURE_OK;
    while (!atomic_load(done)) {
        float loss = 0;
        DURE_TRY(model_forward_backward(cm->m[1], cm->batch, NULL, &loss));
    }
out:
    return st;
}

/* Median seconds per element of AdamW, the squared norm, the zeroing of
 * the gradients and an accumulation into them, each through the device's
 * own operation, and of a copy (what shm's collectives do), into cs. */
static dure_status_t time_params(device_t *dev, struct plan_cpu_step *cs)
{
    dure_status_t st = DURE_OK;
    const size_t n = CALIB_ELEMS, chunks = device_sq_norm_chunks(n);
    float *buf = NULL;
    double *partials = NULL, *host_partials = NULL, samples[5][CALIB_PARAM_REPS], sq = 0;
    struct device_segment *seg = NULL;
    const struct device_segment whole = {0, n, 1};
    const struct device_adamw h = {.lr = 1e-4f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                                   .bc1 = 0.1f, .bc2 = 0.05f, .grad_scale = 1.0f,
                                   .weight_decay = 0.1f};

    DURE_TRY(device_alloc(dev, 4 * n * sizeof *buf, "the calibration's state", (void **)&buf));
    DURE_TRY(device_alloc(dev, chunks * sizeof *partials, "the calibration's norm",
                          (void **)&partials));
    DURE_TRY(device_alloc(dev, sizeof *seg, "the calibration's segment", (void **)&seg));
    host_partials = malloc(chunks * sizeof *host_partials);
    DURE_ALLOC_TRY(host_partials, chunks * sizeof *host_partials);
    DURE_TRY(device_zero(dev, buf, 4 * n * sizeof *buf));
    DURE_TRY(device_copy_from_host(dev, seg, &whole, sizeof whole));
    float *p = buf, *g = buf + n, *m = buf + 2 * n, *v = buf + 3 * n;
    for (int r = -1; r < CALIB_PARAM_REPS; r++) {
        double t0 = dure_now_s();
        DURE_TRY(device_adamw(dev, &h, seg, 1, p, g, m, v, n));
        DURE_TRY(device_sync(dev));
        double t1 = dure_now_s();
        DURE_TRY(device_sq_norm(dev, g, n, partials, host_partials, &sq));
        double t2 = dure_now_s();
        DURE_TRY(device_zero(dev, g, n * sizeof *g));
        DURE_TRY(device_sync(dev));
        double t3 = dure_now_s();
        DURE_TRY(device_accumulate(dev, g, m, n, 0));
        DURE_TRY(device_sync(dev));
        double t4 = dure_now_s();
        memcpy(v, p, n * sizeof *v); /* the cpu device's memory is the host's */
        double t5 = dure_now_s();
        if (r >= 0) {
            samples[0][r] = (t1 - t0) / (double)n;
            samples[1][r] = (t2 - t1) / (double)n;
            samples[2][r] = (t3 - t2) / (double)n;
            samples[3][r] = (t4 - t3) / (double)n;
            samples[4][r] = (t5 - t4) / (double)n;
        }
    }
    cs->adamw_s = dure_median(samples[0], CALIB_PARAM_REPS);
    cs->norm_s = dure_median(samples[1], CALIB_PARAM_REPS);
    cs->zero_s = dure_median(samples[2], CALIB_PARAM_REPS);
    cs->accum_s = dure_median(samples[3], CALIB_PARAM_REPS);
    cs->copy_s = dure_median(samples[4], CALIB_PARAM_REPS);
out:
    free(host_partials);
    device_free(dev, seg);
    device_free(dev, partials);
    device_free(dev, buf);
    return st;
}

/* Handoffs timed in the wake phase, and the pause between two (a step's
 * collectives come apart: the waker finds its peer asleep). */
#define CALIB_WAKES 300
#define CALIB_WAKE_GAP_NS 200000
/* Barriers before the phases: blocks, per-parameter operations, wakes. */
#define CALIB_PHASES 3

/* What the calibrating ranks share: a gate that opens once every thread
 * exists (or tells them to leave), then a barrier before each phase; and
 * the wake phase's turn, passed between two threads while the ranks
 * compute until `done`. */
struct calib_sync {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int go;                     /* 0: wait; 1: run; -1: leave */
    pthread_barrier_t phase;
    pthread_mutex_t turn_mu;
    pthread_cond_t turn_cv;
    int turn;                   /* 0: the timer's; 1: the echo's; -1: stop */
    _Atomic int done;           /* the wakes are timed: stop computing */
    double wake_s;              /* the mean seconds of one wake */
};

/* Wait at the gate; its verdict (1: run, -1: leave). */
static int gate_pass(struct calib_sync *y)
{
    pthread_mutex_lock(&y->mu);
    while (y->go == 0) {
        pthread_cond_wait(&y->cv, &y->mu);
    }
    int go = y->go;
    pthread_mutex_unlock(&y->mu);
    return go;
}

/* The echo's side of the wake phase: hand every turn straight back. */
static void *calib_echo(void *arg)
{
    struct calib_sync *y = arg;
    pthread_mutex_lock(&y->turn_mu);
    for (;;) {
        while (y->turn == 0) {
            pthread_cond_wait(&y->turn_cv, &y->turn_mu);
        }
        if (y->turn < 0) {
            break;
        }
        y->turn = 0;
        pthread_cond_signal(&y->turn_cv);
    }
    pthread_mutex_unlock(&y->turn_mu);
    return NULL;
}

/* The timer's side, on a thread of its own: once the ranks compute (past
 * the phase barriers with them), the mean seconds of one wake (half a
 * round trip) into wake_s; then it stops the ranks (calibrate_ranks stops
 * the echo). */
static void *calib_wakes(void *arg)
{
    struct calib_sync *y = arg;
    double sum = 0;
    const struct timespec gap = {0, CALIB_WAKE_GAP_NS};
    if (gate_pass(y) < 0) {
        return NULL;
    }
    for (int b = 0; b < CALIB_PHASES; b++) {
        pthread_barrier_wait(&y->phase);
    }
    for (int i = 0; i < CALIB_WAKES; i++) {
        nanosleep(&gap, NULL);
        double t0 = dure_now_s();
        pthread_mutex_lock(&y->turn_mu);
        y->turn = 1;
        pthread_cond_signal(&y->turn_cv);
        while (y->turn == 1) {
            pthread_cond_wait(&y->turn_cv, &y->turn_mu);
        }
        pthread_mutex_unlock(&y->turn_mu);
        sum += dure_now_s() - t0;
    }
    y->wake_s = sum / CALIB_WAKES / 2;
    atomic_store(&y->done, 1);
    return NULL;
}

/* One rank's calibration, in a thread of its own. */
struct calib_rank {
    const struct plan_job *job;
    int threads;
    struct calib_sync *sync;
    double t[2];                /* time_blocks */
    struct plan_cpu_step cs;    /* time_params */
    dure_status_t st;
};

/* Once through the gate, reaches every barrier whatever fails, so that no
 * thread waits forever; a rank that failed does not compute in the wake
 * phase (the timer still ends it). */
static void *calib_rank_run(void *arg)
{
    struct calib_rank *r = arg;
    struct calib_sync *y = r->sync;
    device_t *dev = NULL;
    struct calib_models cm = {{NULL, NULL}, NULL};
    if (gate_pass(y) < 0) {
        return NULL;
    }
    omp_set_num_threads(r->threads);
    r->st = device_open("cpu", 0, 1, &dev);
    if (r->st == DURE_OK) {
        r->st = models_open(&r->job->model, dev, &cm);
    }
    pthread_barrier_wait(&y->phase);
    if (r->st == DURE_OK) {
        r->st = time_blocks(&cm, r->t);
    }
    pthread_barrier_wait(&y->phase);
    if (r->st == DURE_OK) {
        r->st = time_params(dev, &r->cs);
    }
    pthread_barrier_wait(&y->phase);
    if (r->st == DURE_OK) {
        r->st = compute_until(&cm, &y->done);
    }
    models_close(&cm);
    device_close(dev);
    return NULL;
}

/* n ranks at once (rank 0 on the calling thread) and the wake phase's two
 * threads; the ranks' means into t and cs, the wake into cs. */
static dure_status_t calibrate_ranks(const struct plan_job *job, int threads, int n,
                                     double t[2], struct plan_cpu_step *cs)
{
    dure_status_t st = DURE_OK;
    struct calib_rank r[CALIB_RANKS_MAX];
    pthread_t tid[CALIB_RANKS_MAX], timer, echo;
    struct calib_sync y = {.mu = PTHREAD_MUTEX_INITIALIZER,
                           .cv = PTHREAD_COND_INITIALIZER,
                           .turn_mu = PTHREAD_MUTEX_INITIALIZER,
                           .turn_cv = PTHREAD_COND_INITIALIZER};
    int started = 1, helpers = 0;

    DURE_CHECK(pthread_barrier_init(&y.phase, NULL, (unsigned)n + 1) == 0, DURE_ERR_NOMEM,
               "plan: cannot set up the calibration of %d ranks at once", n);
    for (int i = 0; i < n; i++) {
        r[i] = (struct calib_rank){.job = job, .threads = threads, .sync = &y};
    }
    if (pthread_create(&echo, NULL, calib_echo, &y) == 0) {
        helpers++;
        if (pthread_create(&timer, NULL, calib_wakes, &y) == 0) {
            helpers++;
        }
    }
    while (helpers == 2 && started < n &&
           pthread_create(&tid[started], NULL, calib_rank_run, &r[started]) == 0) {
        started++;
    }
    pthread_mutex_lock(&y.mu);
    y.go = helpers == 2 && started == n ? 1 : -1;
    pthread_cond_broadcast(&y.cv);
    pthread_mutex_unlock(&y.mu);
    if (y.go > 0) {
        calib_rank_run(&r[0]);
    }
    for (int i = 1; i < started; i++) {
        pthread_join(tid[i], NULL);
    }
    if (helpers == 2) {
        pthread_join(timer, NULL);
    }
    if (helpers > 0) {
        /* the timer is done with it, or never started */
        pthread_mutex_lock(&y.turn_mu);
        y.turn = -1;
        pthread_cond_signal(&y.turn_cv);
        pthread_mutex_unlock(&y.turn_mu);
        pthread_join(echo, NULL);
    }
    pthread_barrier_destroy(&y.phase);
    DURE_CHECK(helpers == 2, DURE_ERR_NOMEM,
               "plan: cannot start the calibration's wake threads");
    DURE_CHECK(started == n, DURE_ERR_NOMEM,
               "plan: cannot start a thread for the calibration's rank %d of %d", started, n);
    memset(t, 0, 2 * sizeof *t);
    for (int i = 0; i < n; i++) {
        DURE_TRY(r[i].st);
        t[0] += r[i].t[0] / n;
        t[1] += r[i].t[1] / n;
        cs->adamw_s += r[i].cs.adamw_s / n;
        cs->norm_s += r[i].cs.norm_s / n;
        cs->zero_s += r[i].cs.zero_s / n;
        cs->accum_s += r[i].cs.accum_s / n;
        cs->copy_s += r[i].cs.copy_s / n;
    }
    cs->wake_s = y.wake_s;
out:
    return st;
}

dure_status_t plan_cpu_calibrate(const struct plan_job *job, struct plan_hw *hw)
{
    dure_status_t st = DURE_OK;
    struct model_config mc = job->model;
    struct model_memory mem;
    double t[2];
    struct plan_cpu_step *cs = &hw->step;
    int ranks = job->per_node < CALIB_RANKS_MAX ? job->per_node : CALIB_RANKS_MAX;

    memset(cs, 0, sizeof *cs);
    ranks = ranks > 1 ? ranks : 1;
    mc.n_layers = 2;
    DURE_TRY(model_memory_estimate(&mc, "cpu", &mem));
    if (mem.total - mem.optimizer > CALIB_MAX_BYTES ||
        (double)(mem.total - mem.optimizer) * ranks > hw->mem_bytes / 4) {
        snprintf(cs->source, sizeof cs->source,
                 "not measured (a two-block model needs %.2f GiB, %d rank(s) at once): FLOPs "
                 "at the sgemm peak",
                 (double)(mem.total - mem.optimizer) / (double)(1ull << 30), ranks);
        goto out;
    }
    DURE_TRY(calibrate_ranks(job, hw->threads, ranks, t, cs));
    /* The second block costs what every block does; a noisy pair where it
     * came out cheaper than nothing is read as all of it in the block. */
    cs->block_s = t[1] > t[0] ? t[1] - t[0] : t[1] / 2;
    cs->outer_s = t[1] > t[0] ? t[0] - cs->block_s : t[1] / 2;
    if (cs->outer_s < 0) {
        cs->outer_s = 0;
    }
    cs->model = job->model;
    snprintf(cs->source, sizeof cs->source,
             "measured: one- and two-block models' forward + backward; AdamW, norm, "
             "zeroing and accumulation of %zu parameters; %d rank(s) at once, %d thread(s) "
             "each; a thread's wake while they compute", CALIB_ELEMS, ranks, hw->threads);
out:
    return st;
}
