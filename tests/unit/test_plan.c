/*
 * tests/unit/test_plan.c - the capacity planner (plan/plan.h) against
 * hand-computed memory, collective and step times; its choices; bad jobs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "model/flops.h"
#include "model/layout.h"
#include "jobs/jobspec.h"
#include "plan/plan.h"

/* A hand-checkable fabric and device: one link per level for every collective. */
#define SAME_LINK(a, b) {.coll = {{a, b}, {a, b}, {a, b}}}
static const struct plan_fabric fab = {
    .intra = SAME_LINK(1e-6, 1e-9),
    .inter = SAME_LINK(1e-5, 1e-8),
};
static const struct plan_hw gpu = {.name = "test", .gpu = 1, .peak_flops = 1e12,
                                   .efficiency = 0.5, .mem_bytes = 8.0 * (1 << 30),
                                   .mem_bw = 1e11, .per_node = 4};
static const struct plan_hw cpu = {.name = "cpu", .gpu = 0, .peak_flops = 1e11,
                                   .efficiency = 1, .mem_bytes = 8.0 * (1 << 30),
                                   .mem_bw = 1e10, .per_node = 2};

static void job_init(struct plan_job *j, int ranks, int per_node)
{
    memset(j, 0, sizeof *j);
    model_config_defaults(&j->model);
    j->model.d_model = 64;
    j->model.n_layers = 3;
    j->model.n_heads = 4;
    j->model.patch_len = 8;
    j->model.context_patches = 16;
    j->model.channels = 5;
    j->model.micro_batch = 2;
    j->global_batch = 2 * ranks * 3; /* 3 micro-batches per rank */
    j->ranks = ranks;
    j->per_node = per_node;
    j->bucket_bytes = 1 << 16;
    j->prefetch = 1;
    j->reshard = 1;
    j->overlap = 1;
    j->data_prefetch = 2;
}

static uint64_t n_params(const struct plan_job *j)
{
    struct model_layout lay;
    assert_int_equal(model_layout_compute(&j->model, &lay), DURE_OK);
    return lay.total;
}

static void test_memory_by_stage(void **state)
{
    (void)state;
    struct plan_job j;
    struct plan_memory m[PLAN_STAGES];
    job_init(&j, 3, 3);
    uint64_t n = n_params(&j), s = (n + 2) / 3; /* ceil(n / 3): not a multiple */
    assert_int_not_equal(n % 3, 0);
    for (int st = 0; st < PLAN_STAGES; st++) {
        assert_int_equal(plan_memory(&j, &gpu, st, &m[st]), DURE_OK);
    }
    assert_int_equal(m[0].params, 4 * n);
    assert_int_equal(m[0].grads, 4 * n);
    assert_int_equal(m[0].optimizer, 8 * n);
    assert_int_equal(m[0].compute, 2 * n);
    assert_int_equal(m[1].optimizer, 8 * s);
    assert_int_equal(m[1].grads, 4 * n);
    assert_int_equal(m[2].grads, 4 * s);
    /* Stage 2 works on two units' fp32 gradients, stage 3 also on
     * (prefetch + 1) gathered units in bf16: a block is 12 D^2 + 13 D, the
     * largest unit here. */
    uint64_t block = 12 * 64 * 64 + 13 * 64;
    assert_int_equal(m[2].working, 2 * block * 4);
    assert_int_equal(m[3].params, 4 * s);
    assert_int_equal(m[3].compute, 0);
    assert_int_equal(m[3].working, 2 * block * 2 + 2 * block * 4);
    assert_int_equal(m[0].runtime, PLAN_CUDA_RUNTIME_BYTES);
    assert_int_equal(m[0].host, 0);
    for (int st = 0; st < PLAN_STAGES; st++) {
        uint64_t sum = m[st].params + m[st].grads + m[st].optimizer + m[st].compute +
                       m[st].working + m[st].exact + m[st].activations + m[st].workspace +
                       m[st].comm + m[st].process + m[st].runtime + m[st].host;
        assert_int_equal(m[st].total, sum);
        assert_int_equal(m[st].exact, 0);
        assert_true(m[st].fits);
    }
    /* On the CPU: no compute copy, no NCCL, the libraries' runtime and one
     * thread (threads 0: not known); fp32 working layers. */
    assert_int_equal(plan_memory(&j, &cpu, 3, &m[3]), DURE_OK);
    assert_int_equal(m[3].compute, 0);
    assert_int_equal(m[3].runtime, PLAN_CPU_RUNTIME_BYTES + PLAN_CPU_THREAD_BYTES);
    assert_int_equal(m[3].working, 2 * block * 4 + 2 * block * 4);
    /* host: (data.prefetch + 4) batches of 6 windows x 136 timesteps x 5
     * channels, and the checkpoint staging of the moments this rank holds
     * (the parameters are written in place from host memory) */
    assert_int_equal(m[3].host, 6 * 136 * 5 * 4 * 6 + 8 * s);
    /* every unit kept gathered without resharding (5 units: embeddings,
     * 3 blocks, head) */
    j.reshard = 0;
    assert_int_equal(plan_memory(&j, &cpu, 3, &m[3]), DURE_OK);
    assert_int_equal(m[3].working, 5 * block * 4 + 2 * block * 4);
    j.reshard = 1;
    assert_int_equal(plan_memory(&j, &cpu, 0, &m[0]), DURE_OK);
    assert_int_equal(m[0].comm, 2 * (1 << 16));
    assert_int_equal(m[0].host, 6 * 136 * 5 * 4 * 6 + 8 * n);
}

/* plan_check_fit refuses with exit 7's status, the terms and the stage
 * that fits, and passes what fits. */
static void test_check_fit(void **state)
{
    (void)state;
    struct plan_job j;
    struct plan_memory m2, m3, got;
    struct plan_hw hw = gpu;
    job_init(&j, 4, 4);
    j.model.d_model = 1024;
    j.model.n_heads = 8;
    j.model.n_layers = 8;
    assert_int_equal(plan_memory(&j, &hw, 2, &m2), DURE_OK);
    assert_int_equal(plan_memory(&j, &hw, 3, &m3), DURE_OK);
    assert_true(m3.total < m2.total);
    /* room for stage 3 alone */
    hw.mem_bytes = (double)(m2.total + m3.total) / 2 / PLAN_MEM_FILL;
    dure_log_set_quiet(1);
    assert_int_equal(plan_check_fit(&j, &hw, 2, "job.ini", &got), DURE_ERR_NOMEM);
    dure_log_set_quiet(0);
    assert_int_equal(got.total, m2.total);
    const char *e = dure_last_error();
    if (!strstr(e, "job.ini: not enough memory: parallel.zero_stage = 2 needs") ||
        !strstr(e, "(params ") || !strstr(e, "ZeRO 3 fits") ||
        !strstr(e, "parallel.zero_stage = 3")) {
        fail_msg("refusal text: %s", e);
    }
    assert_int_equal(plan_check_fit(&j, &hw, 3, "job.ini", &got), DURE_OK);
    assert_int_equal(got.total, m3.total);
    hw.mem_bytes = 1 << 20;
    dure_log_set_quiet(1);
    assert_int_equal(plan_check_fit(&j, &hw, 3, "job.ini", &got), DURE_ERR_NOMEM);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "no ZeRO stage fits"));
}

/* Exact mode (run.exact) at every stage: the carries of the worst rank and
 * the receive area, the whole gradient vector, no unit gradient buffers. */
static void test_memory_exact(void **state)
{
    (void)state;
    struct plan_job j;
    struct plan_memory m[PLAN_STAGES], plain;
    job_init(&j, 3, 3);
    j.exact = 1;
    uint64_t n = n_params(&j), s = (n + 2) / 3;
    uint64_t block = 12 * 64 * 64 + 13 * 64;
    /* 9 micro-batches, 3 per rank: rank 0 ([0, 3)) carries 1 vector, rank 1
     * ([3, 6): leaves 3 and 4 are no siblings) 2; every rank hands on 2
     * rows, and receives 2 rows of its shard from each of 2 peers. */
    const uint64_t exact = 4 * (2 * n + 2 * 2 * s);
    for (int st = 0; st < PLAN_STAGES; st++) {
        assert_int_equal(plan_memory(&j, &gpu, st, &m[st]), DURE_OK);
        assert_int_equal(m[st].exact_carries, 2);
        assert_int_equal(m[st].exact, exact);
        assert_int_equal(m[st].grads, 4 * n);
        j.exact = 0;
        assert_int_equal(plan_memory(&j, &gpu, st, &plain), DURE_OK);
        j.exact = 1;
        assert_int_equal(m[st].total, plain.total + exact + (m[st].grads - plain.grads) +
                                          m[st].working - plain.working);
    }
    assert_int_equal(m[2].working, 0);
    assert_int_equal(m[3].working, 2 * block * 2);
    char text[320];
    plan_memory_text(&m[3], text, sizeof text);
    assert_non_null(strstr(text, "exact mode (2 carries, receive area) "));
    /* room without exact mode's vectors only: refused, naming them */
    struct plan_hw hw = gpu;
    j.exact = 0;
    assert_int_equal(plan_memory(&j, &hw, 0, &plain), DURE_OK);
    j.exact = 1;
    hw.mem_bytes = (double)(plain.total + exact / 2) / PLAN_MEM_FILL;
    dure_log_set_quiet(1);
    assert_int_equal(plan_check_fit(&j, &hw, 0, "job.ini", &plain), DURE_ERR_NOMEM);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "exact mode (2 carries"));
    /* 4 micro-batches cannot be shared by 3 ranks: the sizes that can */
    j.global_batch = 8;
    dure_log_set_quiet(1);
    assert_int_equal(plan_memory(&j, &gpu, 0, &m[0]), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "1, 2 or 4"));
}

/* The CPU process's own memory: the baseline dure run measured (or the
 * constant), the libraries' runtime and each thread; none of it on a GPU,
 * where host memory is not the device's. */
static void test_memory_process(void **state)
{
    (void)state;
    struct plan_job j;
    struct plan_memory c, g, one;
    job_init(&j, 2, 2);
    j.threads = 6;
    j.process_bytes = 123456789;
    assert_int_equal(plan_memory(&j, &cpu, 1, &c), DURE_OK);
    assert_int_equal(c.process, 123456789);
    assert_int_equal(c.runtime, PLAN_CPU_RUNTIME_BYTES + 6 * PLAN_CPU_THREAD_BYTES);
    j.threads = 1;
    assert_int_equal(plan_memory(&j, &cpu, 1, &one), DURE_OK);
    assert_int_equal(c.total - one.total, 5 * PLAN_CPU_THREAD_BYTES);
    assert_int_equal(plan_memory(&j, &gpu, 1, &g), DURE_OK);
    assert_int_equal(g.process, 0);
    assert_int_equal(g.runtime, PLAN_CUDA_RUNTIME_BYTES);
    /* The start line names the terms. */
    char text[400];
    plan_memory_text(&c, text, sizeof text);
    assert_non_null(strstr(text, ", process 117.74, runtime 12.25, host "));
    /* dure plan's baseline, where nothing was measured, is the constant. */
    struct dure_jobspec *spec = NULL;
    assert_int_equal(jobspec_load_string("[run]\nthreads = 3\n[model]\nd_model = 64\n"
                                         "n_heads = 4\nn_layers = 2\n[data]\n"
                                         "path = x.h5\n",
                                         "job.ini", NULL, &spec),
                     DURE_OK);
    assert_int_equal(plan_job_from_spec(spec, 5, 1, 1, &j), DURE_OK);
    jobspec_free(spec);
    assert_int_equal(j.process_bytes, PLAN_CPU_PROCESS_BYTES);
    assert_int_equal(j.threads, 3);
}

/* ZeRO 2-3's work on the rank itself: zeroing each unit's gradients,
 * adding the rank's part into its shard, stage 3's casts into the gathered
 * units; at the memory bandwidth, or at the CPU's measured rates. */
static void test_shard_work(void **state)
{
    (void)state;
    struct plan_job j;
    struct plan_time t[PLAN_STAGES];
    job_init(&j, 4, 4);
    double n = (double)n_params(&j), s = ceil(n / 4), A = 3;
    for (int st = 0; st < PLAN_STAGES; st++) {
        assert_int_equal(plan_time(&j, &gpu, &fab, st, &t[st]), DURE_OK);
        assert_float_equal(t[st].step_s,
                           t[st].compute_s + t[st].optimizer_s + t[st].shard_s + t[st].exposed_s,
                           1e-12);
        assert_float_equal(t[st].term_s[PLAN_TERM_SHARD], t[st].shard_s, 1e-15);
    }
    assert_true(t[0].shard_s == 0 && t[1].shard_s == 0);
    assert_float_equal(t[2].shard_s, A * (4 * n + 12 * s) / 1e11, 1e-12);
    /* stage 3 casts the rank's fp32 part into bf16 units twice (forward,
     * and backward after resharding) */
    assert_float_equal(t[3].shard_s, A * (4 * n + 12 * s + 2 * 6 * s) / 1e11, 1e-12);
    j.reshard = 0;
    assert_int_equal(plan_time(&j, &gpu, &fab, 3, &t[3]), DURE_OK);
    assert_float_equal(t[3].shard_s, A * (4 * n + 12 * s + 6 * s) / 1e11, 1e-12);
    /* exact mode keeps the gradients whole: stage 3's casts alone */
    j.reshard = 1;
    j.exact = 1;
    j.global_batch = 2 * 4 * 4; /* 4 micro-batches per rank, a power of 2 */
    assert_int_equal(plan_time(&j, &gpu, &fab, 3, &t[3]), DURE_OK);
    assert_float_equal(t[3].shard_s, 4 * 2 * 6 * s / 1e11, 1e-12);
    assert_int_equal(plan_time(&j, &gpu, &fab, 2, &t[2]), DURE_OK);
    assert_true(t[2].shard_s == 0);
}

/* A CPU step measured for the job: blocks scale with the layers, the
 * optimizer, norm and zeroing per parameter; another model's figures are
 * not used. */
static void test_cpu_measured_step(void **state)
{
    (void)state;
    struct plan_job j;
    struct plan_time t[PLAN_STAGES], flops;
    struct plan_hw hw = cpu;
    job_init(&j, 2, 2);
    double n = (double)n_params(&j), s = ceil(n / 2), A = 3;
    hw.step = (struct plan_cpu_step){.model = j.model, .outer_s = 1e-3, .block_s = 2e-3,
                                     .adamw_s = 3e-9, .norm_s = 1e-9, .zero_s = 0.5e-9,
                                     .accum_s = 0.25e-9};
    for (int st = 0; st < PLAN_STAGES; st++) {
        assert_int_equal(plan_time(&j, &hw, &fab, st, &t[st]), DURE_OK);
        assert_float_equal(t[st].compute_s, A * (1e-3 + 3 * 2e-3), 1e-15);
    }
    assert_float_equal(t[0].optimizer_s, n * 4e-9 + n * 0.5e-9, 1e-15);
    assert_float_equal(t[1].optimizer_s, s * 4e-9 + n * 0.5e-9, 1e-15);
    assert_float_equal(t[2].optimizer_s, s * 4e-9, 1e-15);
    assert_float_equal(t[2].shard_s, A * (n * 0.5e-9 + s * 0.25e-9), 1e-15);
    /* stage 3's casts copy fp32 at the memcpy bandwidth (1e10 B/s) */
    assert_float_equal(t[3].shard_s, A * (n * 0.5e-9 + s * 0.25e-9 + 2 * 8 * s / 1e10),
                       1e-15);
    /* another micro-batch: FLOPs at the peak again */
    j.model.micro_batch = 1;
    j.global_batch = 6;
    struct model_flops fl;
    model_flops_compute(&j.model, &fl);
    assert_int_equal(plan_time(&j, &hw, &fab, 0, &flops), DURE_OK);
    assert_float_equal(flops.compute_s, 3 * fl.per_micro_batch / 1e11, 1e-12);
    assert_float_equal(flops.optimizer_s, 28 * n / 1e10, 1e-12);
}

/* On a CPU whose cores all compute, the collectives hide behind nothing. */
static void test_cpu_busy_cores(void **state)
{
    (void)state;
    struct plan_job j;
    struct plan_time t;
    struct plan_hw hw = cpu;
    job_init(&j, 4, 4);
    j.threads = 2;
    j.comm_thread = JOBSPEC_COMM_THREAD_ON;
    hw.cores = 8;
    for (int st = 0; st < PLAN_STAGES; st++) {
        assert_int_equal(plan_time(&j, &hw, &fab, st, &t), DURE_OK);
        assert_true(t.comm_s > 0);
        assert_float_equal(t.exposed_s, t.comm_s, 1e-15);
    }
    /* with the communication thread (parallel.comm_thread = on), each
     * collective and the control exchange pay two wakes, as
     * intra-node latency: stage 0 all-reduces the gradients in the
     * bucketer's 64 KiB buckets, stage 1 reduce-scatters them once and
     * all-gathers the parameters, stage 2 reduce-scatters each of the 3
     * blocks and 2 outer units as its backward ends (train/zshard.h),
     * every micro-batch (3), and all-gathers the parameters, stage 3
     * gathers each unit twice and reduce-scatters it once, every
     * micro-batch. The
     * buckets take whole tensors and begin at block 0's three tail cuts:
     * 18 of them, not the 10 that 4n / 64 KiB makes: the head with the
     * last fc_proj bias, 5 a block (the fc and fc_proj weights, 64 KiB
     * each, one apiece), block 0 a sixth at its ln2 cut, and the
     * embeddings with block 0's ln1. */
    const double buckets = 18;
    assert_true(ceil(4.0 * (double)n_params(&j) / (1 << 16)) == 10);
    const double colls[PLAN_STAGES] = {buckets, buckets + 1, 3 * 5 + 1, 3 * 5 * 3};
    for (int st = 0; st < PLAN_STAGES; st++) {
        struct plan_time w;
        hw.step.wake_s = 0;
        assert_int_equal(plan_time(&j, &hw, &fab, st, &t), DURE_OK);
        hw.step.wake_s = 1e-4;
        assert_int_equal(plan_time(&j, &hw, &fab, st, &w), DURE_OK);
        double handoffs = 2 * (colls[st] + 1) * 1e-4;
        assert_float_equal(w.exposed_s - t.exposed_s, handoffs, 1e-12);
        assert_float_equal(w.term_s[PLAN_TERM_INTRA_LATENCY] - t.term_s[PLAN_TERM_INTRA_LATENCY],
                           handoffs, 1e-12);
        assert_float_equal(w.step_s - t.step_s, handoffs, 1e-12);
        /* auto on one node whose cores all compute, and off: the rank's
         * waits run the collectives, with no hand-off and no overlap */
        for (int mode = JOBSPEC_COMM_THREAD_AUTO; mode <= JOBSPEC_COMM_THREAD_OFF; mode++) {
            if (mode == JOBSPEC_COMM_THREAD_ON) {
                continue;
            }
            struct plan_time c;
            j.comm_thread = (enum jobspec_comm_thread)mode;
            assert_int_equal(plan_time(&j, &hw, &fab, st, &c), DURE_OK);
            assert_float_equal(c.exposed_s, t.exposed_s, 1e-15);
            assert_float_equal(c.exposed_s, c.comm_s, 1e-15);
            j.comm_thread = JOBSPEC_COMM_THREAD_ON;
        }
    }
    /* a spare core: overlap hides as on a GPU, and no wake takes a core */
    hw.cores = 9;
    assert_int_equal(plan_time(&j, &hw, &fab, 0, &t), DURE_OK);
    assert_true(t.exposed_s < t.comm_s);
    struct plan_time spare;
    hw.step.wake_s = 0;
    assert_int_equal(plan_time(&j, &hw, &fab, 0, &spare), DURE_OK);
    assert_float_equal(t.step_s, spare.step_s, 1e-15);
    /* auto keeps the thread there; off hides nothing */
    j.comm_thread = JOBSPEC_COMM_THREAD_AUTO;
    assert_int_equal(plan_time(&j, &hw, &fab, 0, &t), DURE_OK);
    assert_float_equal(t.exposed_s, spare.exposed_s, 1e-15);
    j.comm_thread = JOBSPEC_COMM_THREAD_OFF;
    assert_int_equal(plan_time(&j, &hw, &fab, 0, &t), DURE_OK);
    assert_float_equal(t.exposed_s, t.comm_s, 1e-15);
    /* the rule dure run takes too: off anywhere, auto on one busy node */
    assert_int_equal(plan_caller_runs(JOBSPEC_COMM_THREAD_OFF, 2, 4, 2, 9), 1);
    assert_int_equal(plan_caller_runs(JOBSPEC_COMM_THREAD_ON, 1, 4, 2, 8), 0);
    assert_int_equal(plan_caller_runs(JOBSPEC_COMM_THREAD_AUTO, 1, 4, 2, 8), 1);
    assert_int_equal(plan_caller_runs(JOBSPEC_COMM_THREAD_AUTO, 1, 4, 2, 9), 0);
    assert_int_equal(plan_caller_runs(JOBSPEC_COMM_THREAD_AUTO, 2, 4, 2, 8), 0);
    /* across nodes auto keeps the thread even on busy cores: its wakes */
    job_init(&j, 8, 4);
    j.threads = 2;
    hw.cores = 8;
    struct plan_time woken;
    hw.step.wake_s = 0;
    assert_int_equal(plan_time(&j, &hw, &fab, 3, &t), DURE_OK);
    hw.step.wake_s = 1e-4;
    assert_int_equal(plan_time(&j, &hw, &fab, 3, &woken), DURE_OK);
    assert_true(woken.step_s - t.step_s > 2 * 15 * 1e-4);
    j.comm_thread = JOBSPEC_COMM_THREAD_OFF;
    assert_int_equal(plan_time(&j, &hw, &fab, 3, &woken), DURE_OK);
    assert_float_equal(woken.step_s, t.step_s, 1e-15);
}

/* On a CPU node a collective within the node costs at least its copies at
 * the calibration's copy rate: shm moves b per rank for an all-gather of b
 * on 2 ranks (reads and writes the peer's half), 1.5 b for a
 * reduce-scatter (reads both halves of its own, writes it), 2.5 b for an
 * all-reduce; copy_s is per 8 bytes moved. */
static void test_cpu_cold_copies(void **state)
{
    (void)state;
    struct plan_job j;
    struct plan_time t, warm;
    struct plan_hw hw = cpu;
    job_init(&j, 2, 2);
    j.threads = 1;
    hw.cores = 2;
    double n = (double)n_params(&j), A = 3;
    assert_int_equal(plan_time(&j, &hw, &fab, 3, &warm), DURE_OK);
    hw.step.copy_s = 1e-6; /* slower than any alpha-beta here: the floor everywhere */
    assert_int_equal(plan_time(&j, &hw, &fab, 3, &t), DURE_OK);
    /* each unit of e elements: two fp32 gathers (4e each) and a 4e
     * reduce-scatter, every micro-batch */
    assert_float_equal(t.comm_s, A * (4 * n + 4 * n + 6 * n) / 8 * 1e-6, 1e-12);
    assert_float_equal(t.exposed_s, t.comm_s, 1e-15);
    assert_true(t.comm_s > warm.comm_s);
    assert_int_equal(plan_time(&j, &hw, &fab, 0, &t), DURE_OK);
    assert_float_equal(t.comm_s, 2.5 * 4 * n / 8 * 1e-6, 1e-12);
    /* a rate faster than the fabric's changes nothing */
    hw.step.copy_s = 1e-15;
    assert_int_equal(plan_time(&j, &hw, &fab, 3, &t), DURE_OK);
    assert_float_equal(t.comm_s, warm.comm_s, 1e-15);
    /* nor on a GPU, whose collectives are NCCL's */
    hw.step.copy_s = 1e-6;
    hw.gpu = 1;
    assert_int_equal(plan_time(&j, &hw, &fab, 3, &t), DURE_OK);
    hw.step.copy_s = 0;
    assert_int_equal(plan_time(&j, &hw, &fab, 3, &warm), DURE_OK);
    assert_float_equal(t.comm_s, warm.comm_s, 1e-15);
}

/* plan_cpu_calibrate measures a small model's blocks and the per-parameter
 * work on this CPU; a model too large to build here is left to FLOPs. */
static void test_cpu_calibrate(void **state)
{
    (void)state;
    struct plan_job j;
    struct plan_hw hw;
    struct plan_time t;
    job_init(&j, 1, 1);
    assert_int_equal(plan_hw_cpu_measure(1, 1, &hw), DURE_OK);
    assert_int_equal(hw.threads, 1);
    assert_true(hw.cores >= 1);
    assert_int_equal(plan_cpu_calibrate(&j, &hw), DURE_OK);
    const struct plan_cpu_step *cs = &hw.step;
    assert_true(cs->block_s > 0 && cs->outer_s >= 0);
    assert_true(cs->adamw_s > 0 && cs->norm_s > 0 && cs->zero_s > 0 && cs->accum_s > 0 &&
                cs->copy_s > 0);
    assert_int_equal(cs->model.micro_batch, j.model.micro_batch);
    assert_int_equal(cs->model.d_model, j.model.d_model);
    assert_non_null(strstr(cs->source, "measured: one- and two-block models"));
    assert_non_null(strstr(cs->source, "1 rank(s) at once"));
    /* a wake costs at least the futex round trip's share, well under a
     * scheduler's slice on average */
    assert_true(cs->wake_s > 1e-7 && cs->wake_s < 5e-3);
    assert_non_null(strstr(cs->source, "a thread's wake while they compute"));
    /* every rank of a node at once, each its own figures, their means */
    job_init(&j, 3, 3);
    assert_int_equal(plan_cpu_calibrate(&j, &hw), DURE_OK);
    assert_true(cs->block_s > 0 && cs->outer_s >= 0);
    assert_true(cs->adamw_s > 0 && cs->norm_s > 0 && cs->zero_s > 0 && cs->accum_s > 0 &&
                cs->copy_s > 0);
    assert_non_null(strstr(cs->source, "3 rank(s) at once"));
    job_init(&j, 1, 1);
    j.global_batch = 6;
    assert_int_equal(plan_time(&j, &hw, &fab, 0, &t), DURE_OK);
    assert_float_equal(t.compute_s, 3 * (cs->outer_s + 3 * cs->block_s), 1e-12);
    /* two blocks of d_model 8192 are 12.9 GB of parameters and gradients */
    j.model.d_model = 8192;
    j.model.n_heads = 64;
    assert_int_equal(plan_cpu_calibrate(&j, &hw), DURE_OK);
    assert_true(hw.step.block_s == 0 && hw.step.adamw_s == 0);
    assert_non_null(strstr(hw.step.source, "not measured (a two-block model needs"));
}

static void test_collective_times(void **state)
{
    (void)state;
    struct plan_job j;
    double lat[2], bw[2], n = 1 << 20;

    /* One rank: nothing to exchange. */
    job_init(&j, 1, 1);
    assert_true(plan_coll_time(&j, &fab, PLAN_ALLREDUCE, n, lat, bw) == 0);
    /* One node of 4: a ring all-reduce is 2 (L - 1) steps of n / L bytes. */
    job_init(&j, 4, 4);
    double t = plan_coll_time(&j, &fab, PLAN_ALLREDUCE, n, lat, bw);
    assert_float_equal(lat[0], 6 * 1e-6, 1e-15);
    assert_float_equal(bw[0], 6 * (n / 4) * 1e-9, 1e-15);
    assert_true(lat[1] == 0 && bw[1] == 0);
    assert_float_equal(t, lat[0] + bw[0], 1e-15);
    /* Reduce-scatter and all-gather: half of it. */
    assert_float_equal(plan_coll_time(&j, &fab, PLAN_REDUCE_SCATTER, n, lat, bw), t / 2, 1e-15);
    assert_float_equal(plan_coll_time(&j, &fab, PLAN_ALLGATHER, n, lat, bw), t / 2, 1e-15);
    /* Each collective on its own link: an all-gather 4x faster than the
     * level's link (shm copies where a reduce-scatter sums). */
    struct plan_fabric per = fab;
    per.intra.coll[PLAN_ALLGATHER] = (struct plan_link){0.5e-6, 0.25e-9};
    assert_float_equal(plan_coll_time(&j, &per, PLAN_ALLGATHER, n, lat, bw),
                       3 * 0.5e-6 + 3 * (n / 4) * 0.25e-9, 1e-15);
    assert_float_equal(plan_coll_time(&j, &per, PLAN_REDUCE_SCATTER, n, lat, bw), t / 2, 1e-15);
    assert_float_equal(plan_coll_time(&j, &per, PLAN_ALLREDUCE, n, lat, bw), t, 1e-15);
    /* 2 nodes x 4: intra phases plus a ring of 2 nodes over n / 4 each. */
    job_init(&j, 8, 4);
    t = plan_coll_time(&j, &fab, PLAN_ALLREDUCE, n, lat, bw);
    assert_float_equal(t, lat[0] + bw[0] + lat[1] + bw[1], 1e-15);
    assert_float_equal(lat[1], 2 * 1e-5, 1e-15);
    assert_float_equal(bw[1], 2 * (n / 8) * 1e-8, 1e-15);
    /* 1024 nodes x 1: the ring's 2 x 1023 latencies lose to a tree's
     * 2 log2(1024) for a small message. */
    job_init(&j, 1024, 1);
    plan_coll_time(&j, &fab, PLAN_ALLREDUCE, 4096, lat, bw);
    assert_float_equal(lat[1], 2 * 10 * 1e-5, 1e-15);
    assert_float_equal(bw[1], 2 * 4096 * 1e-8, 1e-15);
    /* ...and on 16 nodes a large message takes the ring: its bandwidth
     * term is (M-1)/M of the tree's, which outweighs 2 x 15 latencies. */
    job_init(&j, 16, 1);
    plan_coll_time(&j, &fab, PLAN_ALLREDUCE, 1e9, lat, bw);
    assert_float_equal(lat[1], 2 * 15 * 1e-5, 1e-12);
    assert_float_equal(bw[1], 2 * 15 * (1e9 / 16) * 1e-8, 1e-9);
}

/* With the exchange hidden behind backward, what stays exposed is the
 * bucket that starts only when backward ends: the embeddings and block 0's
 * ln1, before the bucketer's first cut (collectives/bucket.h), not the
 * cap's remainder. */
static void test_exposed_tail(void **state)
{
    (void)state;
    struct plan_job j;
    struct plan_time t;
    struct model_layout lay;
    double lat[2], bw[2];
    job_init(&j, 4, 4);
    j.model.micro_batch = 200;
    j.global_batch = 200 * 4 * 3;
    assert_int_equal(model_layout_compute(&j.model, &lay), DURE_OK);
    const double tail = 4.0 * (double)(lay.layer0 + 2 * (uint64_t)j.model.d_model);
    assert_true(tail < j.bucket_bytes && fmod(4.0 * (double)lay.total, j.bucket_bytes) != tail);
    assert_int_equal(plan_time(&j, &gpu, &fab, 0, &t), DURE_OK);
    assert_true(t.comm_s < t.compute_s / 3 / 3);
    plan_coll_time(&j, &fab, PLAN_ALLREDUCE, tail, lat, bw);
    assert_float_equal(t.exposed_s, lat[0] + bw[0] + lat[1] + bw[1], 1e-15);
    /* a cap below it: the embeddings' weight (D x PCI) alone, a tensor
     * larger than the cap being a bucket of its own; the cap's tail / 2
     * is not what dure run sends */
    j.bucket_bytes = tail / 2;
    const double embed_w = 4.0 * (double)(lay.embed_b - lay.embed_w);
    assert_true(embed_w > tail / 2 && embed_w < tail);
    assert_int_equal(plan_time(&j, &gpu, &fab, 0, &t), DURE_OK);
    plan_coll_time(&j, &fab, PLAN_ALLREDUCE, embed_w, lat, bw);
    assert_float_equal(t.exposed_s, lat[0] + bw[0] + lat[1] + bw[1], 1e-15);
}

static void test_step_time(void **state)
{
    (void)state;
    struct plan_job j;
    struct plan_time t, off;
    struct model_flops fl;
    job_init(&j, 4, 4);
    model_flops_compute(&j.model, &fl);
    assert_int_equal(plan_time(&j, &gpu, &fab, 0, &t), DURE_OK);
    assert_int_equal(t.accum, 3);
    assert_float_equal(t.compute_s, 3 * fl.per_micro_batch / (1e12 * 0.5), 1e-12);
    assert_float_equal(t.optimizer_s, 28.0 * (double)n_params(&j) / 1e11, 1e-12);
    assert_true(t.comm_s > 0 && t.exposed_s <= t.comm_s && t.exposed_s > 0);
    assert_float_equal(t.step_s, t.compute_s + t.optimizer_s + t.exposed_s, 1e-12);
    double sum = 0;
    for (int k = 0; k < PLAN_TERM_COUNT; k++) {
        sum += t.term_s[k];
    }
    assert_float_equal(sum, t.step_s, 1e-12);
    /* Without overlap every byte is exposed. */
    j.overlap = 0;
    assert_int_equal(plan_time(&j, &gpu, &fab, 0, &off), DURE_OK);
    assert_float_equal(off.exposed_s, off.comm_s, 1e-15);
    assert_float_equal(off.comm_s, t.comm_s, 1e-15);
    /* Stage 1 moves as much as stage 0 (reduce-scatter + all-gather), and
     * its optimizer touches a quarter of the parameters. */
    j.overlap = 1;
    struct plan_time s1, s2, s3;
    assert_int_equal(plan_time(&j, &gpu, &fab, 1, &s1), DURE_OK);
    assert_float_equal(s1.optimizer_s, 28.0 * ceil((double)n_params(&j) / 4) / 1e11, 1e-12);
    /* ...on the reduce-scatter's link, then the all-gather's: a free
     * all-gather leaves stage 1 the reduce-scatter's bytes, half of stage
     * 0's; stage 0 runs all-reduces and does not change. */
    struct plan_fabric per = fab;
    struct plan_time s1f, s0f;
    per.intra.coll[PLAN_ALLGATHER] = (struct plan_link){0, 1e-30};
    assert_int_equal(plan_time(&j, &gpu, &per, 1, &s1f), DURE_OK);
    assert_int_equal(plan_time(&j, &gpu, &per, 0, &s0f), DURE_OK);
    assert_float_equal(s0f.comm_s, t.comm_s, 1e-15);
    assert_float_equal(s1.comm_term_s[PLAN_TERM_INTRA_BANDWIDTH],
                       t.comm_term_s[PLAN_TERM_INTRA_BANDWIDTH], 1e-12);
    assert_float_equal(s1f.comm_term_s[PLAN_TERM_INTRA_BANDWIDTH],
                       t.comm_term_s[PLAN_TERM_INTRA_BANDWIDTH] / 2, 1e-12);
    /* Stage 2 reduce-scatters every micro-batch: more traffic than stage 1. */
    assert_int_equal(plan_time(&j, &gpu, &fab, 2, &s2), DURE_OK);
    assert_true(s2.comm_s > s1.comm_s);
    /* Stage 3 gathers twice and reduce-scatters once per micro-batch. */
    assert_int_equal(plan_time(&j, &gpu, &fab, 3, &s3), DURE_OK);
    assert_true(s3.comm_s > s2.comm_s);
    /* Without prefetch, stage 3's gathers are all exposed. */
    struct plan_time np;
    j.prefetch = 0;
    assert_int_equal(plan_time(&j, &gpu, &fab, 3, &np), DURE_OK);
    assert_true(np.exposed_s > s3.exposed_s);
    assert_float_equal(np.comm_s, s3.comm_s, 1e-15);
    /* The timesteps of a global batch over the step. */
    double T = (j.model.context_patches + 1) * j.model.patch_len;
    assert_float_equal(t.timesteps_per_s, j.global_batch * T / t.step_s, 1e-6);
}

static void test_dominant_at_scale(void **state)
{
    (void)state;
    struct plan_job j;
    struct plan_time t;
    job_init(&j, 4, 4);
    assert_int_equal(plan_time(&j, &gpu, &fab, 0, &t), DURE_OK);
    assert_int_equal(t.comm_dominant, PLAN_TERM_INTRA_BANDWIDTH);
    /* 65536 nodes of 4: small buckets make latency the largest term. */
    job_init(&j, 4 * 65536, 4);
    assert_int_equal(plan_time(&j, &gpu, &fab, 0, &t), DURE_OK);
    assert_int_equal(t.comm_dominant, PLAN_TERM_INTER_LATENCY);
    assert_string_equal(plan_term_name(t.comm_dominant), "inter-node latency");
}

static void test_recommend(void **state)
{
    (void)state;
    struct plan_job j;
    struct plan_advice a;
    struct plan_memory m0, m3;
    struct plan_hw small = gpu;
    job_init(&j, 4, 4);
    j.model.d_model = 512;
    j.model.n_heads = 8;
    j.model.n_layers = 8;
    /* A device too small for stage 0 but not for stage 3. */
    assert_int_equal(plan_memory(&j, &gpu, 0, &m0), DURE_OK);
    assert_int_equal(plan_memory(&j, &gpu, 3, &m3), DURE_OK);
    small.mem_bytes = ((double)m0.total + (double)m3.total) / 2 / PLAN_MEM_FILL;
    assert_int_equal(plan_recommend(&j, &small, &fab, &a), DURE_OK);
    assert_true(a.stage >= 1);
    assert_non_null(strstr(a.why_stage, "0: does not fit"));
    assert_true(a.micro_batch >= 1 && (j.global_batch / j.ranks) % a.micro_batch == 0);
    assert_true(a.bucket_bytes >= (1 << 20));
    /* Nothing fits: said, with the stage 3 need. */
    small.mem_bytes = 1024;
    assert_int_equal(plan_recommend(&j, &small, &fab, &a), DURE_OK);
    assert_int_equal(a.stage, -1);
    assert_non_null(strstr(a.why_stage, "no stage fits"));
}

static void test_bad_jobs(void **state)
{
    (void)state;
    struct plan_job j;
    struct plan_memory m;
    struct plan_time t;
    job_init(&j, 4, 4);
    assert_int_equal(plan_memory(&j, &gpu, 4, &m), DURE_ERR_ARG);
    j.global_batch = 10; /* not a multiple of 2 x 4 */
    assert_int_equal(plan_time(&j, &gpu, &fab, 0, &t), DURE_ERR_ARG);
    job_init(&j, 6, 4); /* 6 ranks do not fill nodes of 4 */
    assert_int_equal(plan_memory(&j, &gpu, 0, &m), DURE_ERR_ARG);
    struct plan_hw hw;
    assert_int_equal(plan_hw_builtin("h100", &hw), DURE_OK);
    assert_true(hw.gpu && hw.per_node == 8 && hw.peak_flops > 9e14);
    assert_int_equal(plan_hw_builtin("v100", &hw), DURE_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_by_stage),   cmocka_unit_test(test_collective_times),
        cmocka_unit_test(test_exposed_tail),
        cmocka_unit_test(test_step_time),         cmocka_unit_test(test_dominant_at_scale),
        cmocka_unit_test(test_recommend),         cmocka_unit_test(test_bad_jobs),
        cmocka_unit_test(test_check_fit),
        cmocka_unit_test(test_memory_exact),      cmocka_unit_test(test_memory_process),
        cmocka_unit_test(test_shard_work),        cmocka_unit_test(test_cpu_measured_step),
        cmocka_unit_test(test_cpu_busy_cores),    cmocka_unit_test(test_cpu_cold_copies),
        cmocka_unit_test(test_cpu_calibrate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
