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
 */
#include "plan/plan.h"

#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/*
 * Median seconds of one forward + backward of a one-block (t[0]) and a
 * two-block (t[1]) model of mc, timed in turn.
 */
static dure_status_t time_blocks(const struct model_config *mc, device_t *dev, double t[2])
{
    dure_status_t st = DURE_OK;
    model_t *m[2] = {NULL, NULL};
    float *batch = NULL;
    double samples[2][CALIB_REPS];
    size_t elems = (size_t)mc->micro_batch * (size_t)((mc->context_patches + 1) * mc->patch_len) *
                   (size_t)mc->channels;

    for (int k = 0; k < 2; k++) {
        struct model_config c = *mc;
        c.n_layers = k + 1;
        DURE_TRY(model_create(&c, dev, NULL, &m[k]));
    }
    batch = malloc(elems * sizeof *batch);
    DURE_ALLOC_TRY(batch, elems * sizeof *batch);
    for (size_t i = 0; i < elems; i++) {
        batch[i] = (float)((i * 2654435761u) % 1000u) * 1e-3f - 0.5f;
    }
    int reps = CALIB_REPS;
    for (int r = -1; r < reps; r++) {
        for (int k = 0; k < 2; k++) {
            float loss = 0;
            double t0 = dure_now_s();
            DURE_TRY(model_forward_backward(m[k], batch, NULL, &loss));
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
    free(batch);
    model_destroy(m[0]);
    model_destroy(m[1]);
    return st;
}

/* Median seconds per element of AdamW, the squared norm, the zeroing of
 * the gradients and an accumulation into them, each through the device's
 * own operation, into cs. */
static dure_status_t time_params(device_t *dev, struct plan_cpu_step *cs)
{
    dure_status_t st = DURE_OK;
    const size_t n = CALIB_ELEMS, chunks = device_sq_norm_chunks(n);
    float *buf = NULL;
    double *partials = NULL, *host_partials = NULL, samples[4][CALIB_PARAM_REPS], sq = 0;
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
        if (r >= 0) {
            samples[0][r] = (t1 - t0) / (double)n;
            samples[1][r] = (t2 - t1) / (double)n;
            samples[2][r] = (t3 - t2) / (double)n;
            samples[3][r] = (t4 - t3) / (double)n;
        }
    }
    cs->adamw_s = dure_median(samples[0], CALIB_PARAM_REPS);
    cs->norm_s = dure_median(samples[1], CALIB_PARAM_REPS);
    cs->zero_s = dure_median(samples[2], CALIB_PARAM_REPS);
    cs->accum_s = dure_median(samples[3], CALIB_PARAM_REPS);
out:
    free(host_partials);
    device_free(dev, seg);
    device_free(dev, partials);
    device_free(dev, buf);
    return st;
}

/* What the calibrating ranks share: a gate that opens once every thread
 * exists (or tells them to leave), then a barrier before each phase. */
struct calib_sync {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int go;                     /* 0: wait; 1: run; -1: leave */
    pthread_barrier_t phase;
};

/* One rank's calibration, in a thread of its own. */
struct calib_rank {
    const struct plan_job *job;
    int threads;
    struct calib_sync *sync;
    double t[2];                /* time_blocks */
    struct plan_cpu_step cs;    /* time_params */
    dure_status_t st;
};

/* Once through the gate, reaches both barriers whatever fails, so that no
 * rank waits forever. */
static void *calib_rank_run(void *arg)
{
    struct calib_rank *r = arg;
    struct calib_sync *y = r->sync;
    device_t *dev = NULL;
    pthread_mutex_lock(&y->mu);
    while (y->go == 0) {
        pthread_cond_wait(&y->cv, &y->mu);
    }
    int go = y->go;
    pthread_mutex_unlock(&y->mu);
    if (go < 0) {
        return NULL;
    }
    omp_set_num_threads(r->threads);
    r->st = device_open("cpu", 0, 1, &dev);
    pthread_barrier_wait(&y->phase);
    if (r->st == DURE_OK) {
        r->st = time_blocks(&r->job->model, dev, r->t);
    }
    pthread_barrier_wait(&y->phase);
    if (r->st == DURE_OK) {
        r->st = time_params(dev, &r->cs);
    }
    device_close(dev);
    return NULL;
}

/* n ranks at once (rank 0 on the calling thread); their means into t, cs. */
static dure_status_t calibrate_ranks(const struct plan_job *job, int threads, int n,
                                     double t[2], struct plan_cpu_step *cs)
{
    dure_status_t st = DURE_OK;
    struct calib_rank r[CALIB_RANKS_MAX];
    pthread_t tid[CALIB_RANKS_MAX];
    struct calib_sync y = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    int started = 1;

    DURE_CHECK(pthread_barrier_init(&y.phase, NULL, (unsigned)n) == 0, DURE_ERR_NOMEM,
               "plan: cannot set up the calibration of %d ranks at once", n);
    for (int i = 0; i < n; i++) {
        r[i] = (struct calib_rank){.job = job, .threads = threads, .sync = &y};
    }
    while (started < n && pthread_create(&tid[started], NULL, calib_rank_run, &r[started]) == 0) {
        started++;
    }
    pthread_mutex_lock(&y.mu);
    y.go = started == n ? 1 : -1;
    pthread_cond_broadcast(&y.cv);
    pthread_mutex_unlock(&y.mu);
    if (started == n) {
        calib_rank_run(&r[0]);
    }
    for (int i = 1; i < started; i++) {
        pthread_join(tid[i], NULL);
    }
    pthread_barrier_destroy(&y.phase);
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
    }
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
             "each", CALIB_ELEMS, ranks, hw->threads);
out:
    return st;
}
