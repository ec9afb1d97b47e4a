/* plan/plan.c - memory and step-time models of a job; see plan.h. */
#include "plan/plan.h"

#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collectives/bucket.h"
#include "collectives/comm.h"
#include "collectives/tree.h"
#include "model/acts.h"
#include "model/flops.h"
#include "model/layout.h"

const char *plan_term_name(enum plan_term t)
{
    static const char *const names[PLAN_TERM_COUNT] = {
        [PLAN_TERM_COMPUTE] = "compute",
        [PLAN_TERM_OPTIMIZER] = "optimizer",
        [PLAN_TERM_SHARD] = "shard work",
        [PLAN_TERM_INTRA_LATENCY] = "intra-node latency",
        [PLAN_TERM_INTRA_BANDWIDTH] = "intra-node bandwidth",
        [PLAN_TERM_INTER_LATENCY] = "inter-node latency",
        [PLAN_TERM_INTER_BANDWIDTH] = "inter-node bandwidth",
    };
    return (unsigned)t < PLAN_TERM_COUNT ? names[t] : "?";
}

static uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

static dure_status_t check_job(const struct plan_job *job, int stage)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(stage >= 0 && stage < PLAN_STAGES, DURE_ERR_ARG,
               "ZeRO stage %d: the stages are 0, 1, 2 and 3", stage);
    DURE_CHECK(job->ranks >= 1 && job->per_node >= 1 && job->per_node <= job->ranks &&
                   job->ranks % job->per_node == 0,
               DURE_ERR_ARG,
               "%d rank(s) with %d per node: the ranks must fill whole nodes", job->ranks,
               job->per_node);
    DURE_CHECK(job->bucket_bytes > 0 && job->prefetch >= 0, DURE_ERR_ARG,
               "bucket of %g bytes, prefetch %d: both must be positive", job->bucket_bytes,
               job->prefetch);
out:
    return st;
}

/* Elements of the largest unit ZeRO 3 gathers at once: the embeddings, one
 * block, or the final LayerNorm and head. */
static uint64_t largest_layer(const struct model_layout *lay, int n_layers)
{
    uint64_t head = lay->total - lay->layer0 - (uint64_t)n_layers * lay->layer_stride;
    uint64_t m = lay->layer0 > lay->layer_stride ? lay->layer0 : lay->layer_stride;
    return head > m ? head : m;
}

dure_status_t plan_memory(const struct plan_job *job, const struct plan_hw *hw, int stage,
                          struct plan_memory *out)
{
    dure_status_t st = DURE_OK;
    struct model_layout lay;
    struct model_act_plan acts;
    struct model_config mc = job->model;

    memset(out, 0, sizeof *out);
    DURE_TRY(check_job(job, stage));
    DURE_TRY(model_layout_compute(&mc, &lay));
    /* bf16 activations on a GPU, float32 on the CPU, as the model's backends */
    DURE_TRY(model_act_plan_compute(&mc, hw->gpu, &acts));

    /* model_layout_compute checked that 16 bytes per parameter fit 64 bits. */
    uint64_t n = lay.total, s = ceil_div(n, (uint64_t)job->ranks);
    uint64_t bucket = (uint64_t)job->bucket_bytes;
    uint64_t cbytes = hw->gpu ? 2 : 4; /* compute dtype */
    out->params = 4 * (stage == 3 ? s : n);
    out->grads = 4 * (stage >= 2 && !job->exact ? s : n);
    out->optimizer = 8 * (stage == 0 ? n : s);
    out->compute = hw->gpu && stage < 3 ? 2 * n : 0;
    uint64_t layer = largest_layer(&lay, mc.n_layers);
    if (stage >= 2) {
        uint64_t slots = job->reshard ? (uint64_t)job->prefetch + 1 : (uint64_t)mc.n_layers + 2;
        out->working = (job->exact ? 0 : 2 * layer * 4) +
                       (stage == 3 ? slots * layer * cbytes : 0);
    }
    if (job->exact) {
        int rows = 0;
        DURE_TRY(tree_plan_worst((uint64_t)job->global_batch / (uint64_t)mc.micro_batch,
                                 job->ranks, &out->exact_carries, &rows));
        out->exact = 4 * ((uint64_t)out->exact_carries * n +
                          comm_tree_recv_count(n, job->ranks, rows));
    }
    out->activations = acts.saved_bytes;
    out->workspace = acts.scratch_bytes;
    out->comm = 2 * (bucket < 4 * n ? bucket : 4 * n) + (hw->gpu ? PLAN_NCCL_BYTES : 0);
    if (hw->gpu) {
        out->runtime = PLAN_CUDA_RUNTIME_BYTES;
    } else {
        out->process = job->process_bytes;
        out->runtime = PLAN_CPU_RUNTIME_BYTES +
                       (uint64_t)(job->threads > 0 ? job->threads : 1) * PLAN_CPU_THREAD_BYTES;
        uint64_t window = (uint64_t)(mc.context_patches + 1) * (uint64_t)mc.patch_len;
        uint64_t batch = (uint64_t)job->global_batch / (uint64_t)job->ranks * window *
                         (uint64_t)mc.channels * 4;
        uint64_t held = stage == 0 ? n : s;
        out->host = batch * (uint64_t)(job->data_prefetch + 4) + 8 * held;
    }
    const uint64_t parts[] = {out->params,    out->grads, out->optimizer, out->compute,
                              out->working,   out->exact, out->activations, out->workspace,
                              out->comm,      out->process, out->runtime, out->host};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        DURE_CHECK(!__builtin_add_overflow(out->total, parts[i], &out->total),
                   DURE_ERR_NOMEM,
                   "memory per rank overflows 64-bit byte counts: model.d_model = %d, "
                   "model.n_layers = %d, optim.micro_batch = %d",
                   mc.d_model, mc.n_layers, mc.micro_batch);
    }
    out->fits = (double)out->total <= hw->mem_bytes * PLAN_MEM_FILL;
out:
    return st;
}

dure_status_t plan_job_from_spec(const struct dure_jobspec *spec, int channels, int ranks,
                                 int per_node, struct plan_job *out)
{
    dure_status_t st = DURE_OK;
    memset(out, 0, sizeof *out);
    model_config_defaults(&out->model);
    out->model.d_model = spec->model.d_model;
    out->model.n_layers = spec->model.n_layers;
    out->model.n_heads = spec->model.n_heads;
    out->model.patch_len = spec->model.patch_len;
    out->model.context_patches = spec->model.context_patches;
    out->model.micro_batch = spec->optim.micro_batch;
    out->model.channels = channels;
    DURE_TRY(model_config_validate(&out->model));
    out->global_batch = spec->optim.global_batch;
    out->ranks = ranks;
    out->per_node = per_node;
    out->bucket_bytes = (spec->parallel.bucket_mb > 0 ? spec->parallel.bucket_mb
                                                     : COMM_BUCKET_MB_DEFAULT) *
                        (double)(1 << 20);
    out->prefetch = spec->parallel.prefetch;
    out->reshard = spec->parallel.reshard_after_forward;
    out->overlap = spec->parallel.overlap;
    out->exact = spec->run.exact;
    out->data_prefetch = spec->data.prefetch;
    out->threads = spec->run.threads;
    out->comm_thread = spec->parallel.comm_thread;
    out->process_bytes = PLAN_CPU_PROCESS_BYTES;
out:
    return st;
}

static double gib(uint64_t b) { return (double)b / (double)(1ull << 30); }

void plan_memory_text(const struct plan_memory *m, char *buf, size_t len)
{
    /* MiB below a GiB in all, so a small job's terms are not all 0.00 */
    const int mib = m->total < (1ull << 30);
    const double u = mib ? (double)(1ull << 20) : (double)(1ull << 30);
    char exact[96] = "";
    if (m->exact) {
        snprintf(exact, sizeof exact, "exact mode (%d carries, receive area) %.2f, ",
                 m->exact_carries, (double)m->exact / u);
    }
    snprintf(buf, len,
             "params %.2f, grads %.2f, optimizer %.2f, compute copy %.2f, working %.2f, "
             "%sactivations %.2f, workspace %.2f, comm %.2f, process %.2f, runtime %.2f, "
             "host %.2f %s",
             (double)m->params / u, (double)m->grads / u, (double)m->optimizer / u,
             (double)m->compute / u, (double)m->working / u, exact,
             (double)m->activations / u, (double)m->workspace / u, (double)m->comm / u,
             (double)m->process / u, (double)m->runtime / u, (double)m->host / u,
             mib ? "MiB" : "GiB");
}

dure_status_t plan_check_fit(const struct plan_job *job, const struct plan_hw *hw, int stage,
                             const char *what, struct plan_memory *mem)
{
    dure_status_t st = DURE_OK;
    struct plan_memory other;
    char terms[400], hint[128] = "no ZeRO stage fits: use more ranks, a smaller "
                                 "model.d_model/n_layers or optim.micro_batch";
    DURE_TRY(plan_memory(job, hw, stage, mem));
    if (mem->fits) {
        goto out;
    }
    for (int s = 0; s < PLAN_STAGES; s++) {
        if (s != stage && plan_memory(job, hw, s, &other) == DURE_OK && other.fits) {
            snprintf(hint, sizeof hint, "ZeRO %d fits (%.2f GiB): parallel.zero_stage = %d", s,
                     gib(other.total), s);
            break;
        }
    }
    plan_memory_text(mem, terms, sizeof terms);
    DURE_FAIL(DURE_ERR_NOMEM,
              "%s: not enough memory: parallel.zero_stage = %d needs %.2f GiB per rank (%s), "
              "more than %.0f%% of %.2f GiB on %s: %s",
              what, stage, gib(mem->total), terms, PLAN_MEM_FILL * 100,
              hw->mem_bytes / (double)(1ull << 30), hw->name, hint);
out:
    return st;
}

void plan_level_set(struct plan_level *l, double alpha_s, double beta_s)
{
    for (int c = 0; c < PLAN_COLLS; c++) {
        l->coll[c] = (struct plan_link){alpha_s, beta_s};
    }
}

/* Ring over p ranks of one level: `steps` messages of `chunk` bytes each. */
static void level_cost(const struct plan_link *l, double steps, double chunk, double *lat,
                       double *bw)
{
    *lat += steps * l->alpha_s;
    *bw += steps * chunk * l->beta_s;
}

double plan_coll_time(const struct plan_job *job, const struct plan_fabric *fab,
                      enum plan_coll coll, double bytes, double lat[2], double bw[2])
{
    int L = job->per_node, M = job->ranks / job->per_node;
    /* An all-reduce is a reduce-scatter and an all-gather: twice the phases. */
    double phases = coll == PLAN_ALLREDUCE ? 2 : 1;
    const struct plan_link *intra = &fab->intra.coll[coll], *inter = &fab->inter.coll[coll];
    lat[0] = lat[1] = bw[0] = bw[1] = 0;
    if (L > 1) {
        level_cost(intra, phases * (L - 1), bytes / L, &lat[0], &bw[0]);
    }
    if (M > 1) {
        double shard = bytes / L;
        double ring_lat = 0, ring_bw = 0, tree_lat = 0, tree_bw = 0;
        level_cost(inter, phases * (M - 1), shard / M, &ring_lat, &ring_bw);
        /* A pipelined tree: 2 log2(M) hops of latency, each rank sending and
         * receiving the whole shard once per phase. */
        tree_lat = phases * ceil(log2((double)M)) * inter->alpha_s;
        tree_bw = phases * shard * inter->beta_s;
        if (ring_lat + ring_bw <= tree_lat + tree_bw) {
            lat[1] = ring_lat;
            bw[1] = ring_bw;
        } else {
            lat[1] = tree_lat;
            bw[1] = tree_bw;
        }
    }
    return lat[0] + lat[1] + bw[0] + bw[1];
}

int plan_caller_runs(enum jobspec_comm_thread want, int nodes, int per_node, int threads,
                     int cores)
{
    return want == JOBSPEC_COMM_THREAD_OFF ||
           (want == JOBSPEC_COMM_THREAD_AUTO &&
            comm_caller_runs_auto(nodes, per_node, threads, cores));
}

void plan_rank_cpus(int run_threads, int per_node, int *threads, int *cores)
{
    cpu_set_t set;
    int online = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : online;
    int bound = online > 0 && mine < online;
    if (per_node < 1) {
        per_node = 1;
    }
    if (run_threads > 0) {
        *threads = run_threads;
    } else if (bound) {
        *threads = mine > 0 ? mine : 1;
    } else {
        *threads = online / per_node > 0 ? online / per_node : 1;
    }
    *cores = bound ? mine * per_node : online;
}

/*
 * plan_coll_time on a CPU node: a collective within the node copies memory
 * the step last touched a layer or a pass before, while every rank of the
 * node copies too, so it takes at least the bytes each rank moves at the
 * calibration's copy rate (`dure tune` times the same buffers again and
 * again, warm in the caches: at ZeRO 3 here its alpha-beta priced the
 * step's collectives at a fifth of their time). What shm moves per rank of
 * L for a message of n bytes (reads and writes; collectives/shm.c's direct
 * path): an all-gather reads and writes the peers' (L-1) n / L; a
 * reduce-scatter reads every rank's n / L and writes its own; an
 * all-reduce does both. The floor goes into the intra-node bandwidth part.
 */
static double coll_time_cpu(const struct plan_job *job, const struct plan_hw *hw,
                            const struct plan_fabric *fab, enum plan_coll coll, double bytes,
                            double lat[2], double bw[2])
{
    double t = plan_coll_time(job, fab, coll, bytes, lat, bw);
    int L = job->per_node;
    if (hw->gpu || hw->step.copy_s <= 0 || L < 2) {
        return t;
    }
    double part = bytes / L, gather = 2 * (L - 1) * part, scatter = (L + 1) * part;
    double moved = coll == PLAN_ALLGATHER        ? gather
                   : coll == PLAN_REDUCE_SCATTER ? scatter
                                                 : gather + scatter;
    double floor_s = moved / 8 * hw->step.copy_s; /* copy_s: 4 B read and 4 B written */
    if (lat[0] + bw[0] < floor_s) {
        t += floor_s - lat[0] - bw[0];
        bw[0] = floor_s - lat[0];
    }
    return t;
}

/* One collective of `bytes`, accumulated by part into parts[4] (intra
 * lat, intra bw, inter lat, inter bw) and counted into *count. Returns its
 * time. */
static double priced(const struct plan_job *job, const struct plan_hw *hw,
                     const struct plan_fabric *fab, enum plan_coll coll, double bytes,
                     double parts[4], double *count)
{
    double lat[2], bw[2];
    double t = coll_time_cpu(job, hw, fab, coll, bytes, lat, bw);
    *count += 1;
    parts[0] += lat[0];
    parts[1] += bw[0];
    parts[2] += lat[1];
    parts[3] += bw[1];
    return t;
}

/*
 * The gradient exchange as dure run buckets it: comm_bucket_plan over the
 * model's tensors in buckets of at most `bucket` bytes, with block 0's
 * tail cuts (train/train.c). Each bucket's collective accumulated by part
 * into parts[4], their number into *count; *last the time of the bucket
 * that backward finishes last (the embeddings and block 0's ln1), the one
 * that can only start when it ends.
 */
static dure_status_t grad_buckets(const struct plan_job *job, const struct plan_hw *hw,
                                  const struct plan_fabric *fab, enum plan_coll coll,
                                  const struct model_layout *lay, double bucket, double parts[4],
                                  double *count, double *last)
{
    dure_status_t st = DURE_OK;
    size_t nt = lay->n_tensors, cuts[MODEL_TAIL_CUTS];
    struct model_tensor *tensors = calloc(nt, sizeof *tensors);
    size_t *offsets = calloc(nt + 1, sizeof *offsets);
    struct comm_bucket *b = calloc(nt, sizeof *b);
    int nb = 0;

    DURE_ALLOC_TRY(tensors, nt * sizeof *tensors);
    DURE_ALLOC_TRY(offsets, (nt + 1) * sizeof *offsets);
    DURE_ALLOC_TRY(b, nt * sizeof *b);
    model_layout_tensors(&job->model, lay, tensors);
    model_layout_offsets(lay, tensors, offsets);
    DURE_TRY(comm_bucket_plan(offsets, (int)nt, bucket / 1048576.0, cuts,
                              model_layout_tail_cuts(lay, cuts), b, &nb));
    for (int i = 0; i < nb; i++) {
        *last = priced(job, hw, fab, coll, 4.0 * (double)b[i].count, parts, count);
    }
out:
    free(b);
    free(offsets);
    free(tensors);
    return st;
}

/* The step plan_cpu_calibrate measured is this job's: the same shapes
 * (the layer count aside: the blocks scale it) and micro-batch. */
static int same_model(const struct model_config *a, const struct model_config *b)
{
    return a->d_model == b->d_model && a->n_heads == b->n_heads &&
           a->patch_len == b->patch_len && a->context_patches == b->context_patches &&
           a->channels == b->channels && a->micro_batch == b->micro_batch;
}

/*
 * ZeRO 2-3's work on the rank itself in one micro-batch of a model of n
 * parameters, s of them this rank's (train/zshard.c): the model is lent
 * each unit's gradient buffer zeroed (stages 2-3 outside exact mode), the
 * rank adds its part of the reduced unit into its shard, and at stage 3 it
 * casts its part of the parameters into each gathered unit.
 */
static double shard_work_s(const struct plan_job *job, const struct plan_hw *hw, int stage,
                           double n, double s, int measured)
{
    int lent = stage >= 2 && !job->exact;
    double gathers = stage < 3 ? 0 : job->reshard ? 2 : 1;
    double cast = gathers * s * (4 + (hw->gpu ? 2 : 4)) / hw->mem_bw;
    if (!lent) {
        return cast;
    }
    return cast + (measured ? n * hw->step.zero_s + s * hw->step.accum_s
                            : (4 * n + 12 * s) / hw->mem_bw);
}

static double sum4(const double p[4]) { return p[0] + p[1] + p[2] + p[3]; }

/*
 * Exposed part of a communication of parts[] (total T) that may hide behind
 * `window` seconds of compute, except `tail` (what can only start after
 * the compute ends): max(tail, T - window). Added to exposed[] in
 * proportion to each part.
 */
static void expose(const double parts[4], double window, double tail, double exposed[4])
{
    double total = sum4(parts);
    if (total <= 0) {
        return;
    }
    double e = total - window > tail ? total - window : tail;
    if (e > total) {
        e = total;
    }
    for (int i = 0; i < 4; i++) {
        exposed[i] += e * parts[i] / total;
    }
}

dure_status_t plan_time(const struct plan_job *job, const struct plan_hw *hw,
                        const struct plan_fabric *fab, int stage, struct plan_time *out)
{
    dure_status_t st = DURE_OK;
    struct model_flops fl;
    struct model_layout lay;
    int per_pass = job->model.micro_batch * job->ranks;
    size_t *bounds = NULL; /* [units + 1] model_unit_bounds */

    memset(out, 0, sizeof *out);
    DURE_TRY(check_job(job, stage));
    DURE_CHECK(job->model.micro_batch > 0 && job->global_batch % per_pass == 0,
               DURE_ERR_ARG,
               "optim.global_batch = %d is not a multiple of optim.micro_batch (%d) x "
               "ranks (%d)",
               job->global_batch, job->model.micro_batch, job->ranks);
    DURE_CHECK(hw->peak_flops > 0 && hw->efficiency > 0 && hw->mem_bw > 0, DURE_ERR_ARG,
               "hardware '%s' has no peak FLOP/s, efficiency or memory bandwidth",
               hw->name);
    DURE_TRY(model_layout_compute(&job->model, &lay));
    model_flops_compute(&job->model, &fl);
    const int units = job->model.n_layers + 2;
    bounds = calloc((size_t)units + 1, sizeof *bounds);
    DURE_ALLOC_TRY(bounds, ((size_t)units + 1) * sizeof *bounds);
    DURE_TRY(model_unit_bounds(&job->model, bounds));

    int A = job->global_batch / per_pass;
    double n = (double)lay.total, R = job->ranks;
    double held = stage == 0 ? n : ceil(n / R);
    const struct plan_cpu_step *cs = &hw->step;
    int measured = cs->block_s > 0 && same_model(&cs->model, &job->model);
    double micro_s = measured ? cs->outer_s + job->model.n_layers * cs->block_s
                              : fl.per_micro_batch / (hw->peak_flops * hw->efficiency);
    double fwd_s = micro_s / 3, bwd_s = micro_s - fwd_s;
    double bucket = job->bucket_bytes;
    double cbytes = hw->gpu ? 2 : 4;
    double comm[4] = {0, 0, 0, 0}, exposed[4] = {0, 0, 0, 0};
    double window = job->overlap ? bwd_s : 0, colls = 0;

    out->accum = A;
    out->shard_s = A * shard_work_s(job, hw, stage, n, ceil(n / R), measured);
    out->compute_s = A * micro_s;
    out->optimizer_s = measured ? held * (cs->adamw_s + cs->norm_s) +
                                      (stage < 2 ? n * cs->zero_s : 0)
                                : 28.0 * held / hw->mem_bw;
    if (job->ranks > 1 && stage == 0) {
        /* One bucketed all-reduce, behind the last micro-batch's backward. */
        double last = 0;
        DURE_TRY(grad_buckets(job, hw, fab, PLAN_ALLREDUCE, &lay, bucket, comm, &colls, &last));
        expose(comm, window, last, exposed);
    } else if (job->ranks > 1 && stage < 3) {
        /* Reduce-scatters (stage 1: last micro-batch; stage 2: every one),
         * then the parameter all-gather after the optimizer. Stage 2 lends
         * the model its gradients unit by unit (train/zshard.h): each
         * unit's reduce-scatter starts as its backward ends, the
         * embeddings' (unit 0) last; exact mode and stage 1 bucket them. */
        double rs[4] = {0, 0, 0, 0}, ag[4] = {0, 0, 0, 0}, last = 0;
        if (stage == 2 && !job->exact) {
            for (int u = units - 1; u >= 0; u--) {
                last = priced(job, hw, fab, PLAN_REDUCE_SCATTER,
                              4.0 * (double)(bounds[u + 1] - bounds[u]), rs, &colls);
            }
        } else {
            DURE_TRY(grad_buckets(job, hw, fab, PLAN_REDUCE_SCATTER, &lay, bucket, rs, &colls,
                                  &last));
        }
        int passes = stage == 2 ? A : 1;
        for (int p = 0; p < passes; p++) {
            expose(rs, window, last, exposed);
        }
        colls *= passes;
        priced(job, hw, fab, PLAN_ALLGATHER, 4 * n, ag, &colls);
        expose(ag, 0, 0, exposed);
        for (int i = 0; i < 4; i++) {
            comm[i] = passes * rs[i] + ag[i];
        }
    } else if (job->ranks > 1) {
        /* ZeRO 3, per micro-batch: gather every layer for the forward (each
         * behind the previous layer's forward, the first exposed), gather it
         * again for the backward and reduce-scatter its gradients (behind
         * the backward; the last reduce-scatter exposed). */
        double fwd[4] = {0, 0, 0, 0}, bag[4] = {0, 0, 0, 0}, brs[4] = {0, 0, 0, 0};
        double first = 0, last = 0;
        for (int u = 0; u < units; u++) {
            double elems = (double)(bounds[u + 1] - bounds[u]);
            double g = priced(job, hw, fab, PLAN_ALLGATHER, cbytes * elems, fwd, &colls);
            first = u == 0 ? g : first;
            priced(job, hw, fab, PLAN_ALLGATHER, cbytes * elems, bag, &colls);
            double r = priced(job, hw, fab, PLAN_REDUCE_SCATTER, 4 * elems, brs, &colls);
            last = u == 0 ? r : last; /* the embeddings' gradients come last */
        }
        if (job->prefetch > 0) {
            /* Backward gathers and reduce-scatters share the link and hide
             * behind the same backward. */
            for (int i = 0; i < 4; i++) {
                brs[i] += bag[i];
                bag[i] = 0;
            }
        }
        for (int p = 0; p < A; p++) {
            expose(fwd, job->prefetch > 0 ? fwd_s * (units - 1) / units : 0, first,
                   exposed);
            expose(bag, 0, 0, exposed);
            expose(brs, window, last, exposed);
        }
        for (int i = 0; i < 4; i++) {
            comm[i] = A * (fwd[i] + bag[i] + brs[i]);
        }
        colls *= A;
    }
    int threads = job->threads > 0 ? job->threads : 1;
    int full = !hw->gpu && hw->cores > 0 && job->per_node * threads >= hw->cores;
    int caller = !hw->gpu && plan_caller_runs(job->comm_thread, job->ranks / job->per_node,
                                              job->per_node, threads, hw->cores);
    if (full || caller) {
        /* On a CPU the collectives are the cores' own work (each rank's
         * communication thread copies and sums): with every core
         * computing, overlap hides none of it; nor when the rank's own
         * waits run them (parallel.comm_thread = off). With the thread on
         * such a node, each collective also pays two wakes of a sleeping
         * thread that must take a core from the compute (the hand to the
         * communication thread, the wait for the peer), with the step's
         * control exchange: an intra-node latency. The rank's own waits
         * hand nothing over, and spin for their peers. */
        memcpy(exposed, comm, sizeof exposed);
        if (job->ranks > 1 && full && !caller) {
            double handoffs = 2 * (colls + 1) * hw->step.wake_s;
            exposed[0] += handoffs;
            comm[0] += handoffs;
        }
    }
    out->comm_s = sum4(comm);
    out->exposed_s = sum4(exposed);
    out->step_s = out->compute_s + out->optimizer_s + out->shard_s + out->exposed_s;
    out->term_s[PLAN_TERM_COMPUTE] = out->compute_s;
    out->term_s[PLAN_TERM_OPTIMIZER] = out->optimizer_s;
    out->term_s[PLAN_TERM_SHARD] = out->shard_s;
    out->term_s[PLAN_TERM_INTRA_LATENCY] = exposed[0];
    out->term_s[PLAN_TERM_INTRA_BANDWIDTH] = exposed[1];
    out->term_s[PLAN_TERM_INTER_LATENCY] = exposed[2];
    out->term_s[PLAN_TERM_INTER_BANDWIDTH] = exposed[3];
    for (int i = 0; i < 4; i++) {
        out->comm_term_s[PLAN_TERM_INTRA_LATENCY + i] = comm[i];
    }
    out->comm_dominant = PLAN_TERM_INTRA_LATENCY;
    for (int t = PLAN_TERM_INTRA_LATENCY + 1; t < PLAN_TERM_COUNT; t++) {
        if (out->comm_term_s[t] > out->comm_term_s[out->comm_dominant]) {
            out->comm_dominant = (enum plan_term)t;
        }
    }
    out->dominant = PLAN_TERM_COMPUTE;
    for (int t = 1; t < PLAN_TERM_COUNT; t++) {
        if (out->term_s[t] > out->term_s[out->dominant]) {
            out->dominant = (enum plan_term)t;
        }
    }
    out->timesteps_per_s = (double)job->global_batch *
                           (double)((job->model.context_patches + 1) * job->model.patch_len) /
                           out->step_s;
out:
    free(bounds);
    return st;
}

/* The bucket at which an all-reduce's latency costs at most 5% of its
 * bandwidth time, within [1 MiB, 256 MiB] and at most a quarter of the
 * gradients (so that buckets still overlap the backward). */
static double pick_bucket(const struct plan_job *job, const struct plan_fabric *fab,
                          double grad_bytes, char *why, size_t cap)
{
    double lat[2], bw[2], b = 1 << 20;
    for (; b < (256 << 20); b *= 2) {
        plan_coll_time(job, fab, PLAN_ALLREDUCE, b, lat, bw);
        if (lat[0] + lat[1] <= 0.05 * (bw[0] + bw[1])) {
            break;
        }
    }
    double cap_b = grad_bytes / 4 >= (1 << 20) ? grad_bytes / 4 : (1 << 20);
    if (b > cap_b) {
        snprintf(why, cap,
                 "%.0f MiB: a quarter of the %.1f MiB of gradients, so that at least 4 "
                 "buckets overlap the backward",
                 cap_b / (1 << 20), grad_bytes / (1 << 20));
        return cap_b;
    }
    plan_coll_time(job, fab, PLAN_ALLREDUCE, b, lat, bw);
    snprintf(why, cap,
             "%.0f MiB: the smallest bucket whose all-reduce spends at most 5%% on latency "
             "(%.3g of %.3g ms)",
             b / (1 << 20), (lat[0] + lat[1]) * 1e3, (lat[0] + lat[1] + bw[0] + bw[1]) * 1e3);
    return b;
}

dure_status_t plan_recommend(const struct plan_job *job, const struct plan_hw *hw,
                             const struct plan_fabric *fab, struct plan_advice *out)
{
    dure_status_t st = DURE_OK;
    struct plan_memory mem[PLAN_STAGES];
    struct plan_time tm;
    struct plan_job j = *job;
    struct model_flops fl;
    double best = 0;

    memset(out, 0, sizeof *out);
    out->stage = -1;
    out->micro_batch = job->model.micro_batch;
    model_flops_compute(&job->model, &fl);
    out->bucket_bytes = pick_bucket(job, fab, 4.0 * (double)fl.params, out->why_bucket,
                                    sizeof out->why_bucket);
    j.bucket_bytes = out->bucket_bytes;
    for (int s = 0; s < PLAN_STAGES; s++) {
        DURE_TRY(plan_memory(&j, hw, s, &mem[s]));
        if (!mem[s].fits) {
            continue;
        }
        DURE_TRY(plan_time(&j, hw, fab, s, &tm));
        if (out->stage < 0 || tm.step_s < best * 0.999) {
            out->stage = s;
            best = tm.step_s;
        }
    }
    if (out->stage < 0) {
        snprintf(out->why_stage, sizeof out->why_stage,
                 "no stage fits %.1f GiB per rank: stage 3 needs %.1f GiB; use more ranks, "
                 "a smaller optim.micro_batch or a smaller model",
                 hw->mem_bytes * PLAN_MEM_FILL / (1 << 30),
                 (double)mem[PLAN_STAGES - 1].total / (1 << 30));
        snprintf(out->why_micro, sizeof out->why_micro, "-");
        goto out;
    }
    char times[160] = "";
    for (int s = 0; s < PLAN_STAGES; s++) {
        size_t len = strlen(times);
        if (mem[s].fits) {
            DURE_TRY(plan_time(&j, hw, fab, s, &tm));
            snprintf(times + len, sizeof times - len, "%s%d: %.4g ms", len ? ", " : "", s,
                     tm.step_s * 1e3);
        } else {
            snprintf(times + len, sizeof times - len, "%s%d: does not fit", len ? ", " : "",
                     s);
        }
    }
    snprintf(out->why_stage, sizeof out->why_stage,
             "ZeRO %d, the fastest stage that fits (%.3g GiB per rank); steps at ZeRO %s",
             out->stage, (double)mem[out->stage].total / (1 << 30), times);
    /* The largest micro-batch dividing this rank's share that still fits:
     * fewer, larger passes (fewer ZeRO 2-3 exchanges, larger GEMMs). */
    int share = job->global_batch / job->ranks;
    for (int m = share; m >= 1; m--) {
        if (share % m != 0 || job->global_batch % job->ranks != 0) {
            continue;
        }
        j.model.micro_batch = m;
        struct plan_memory pm;
        DURE_TRY(plan_memory(&j, hw, out->stage, &pm));
        if (pm.fits) {
            out->micro_batch = m;
            snprintf(out->why_micro, sizeof out->why_micro,
                     "%d: the largest micro-batch dividing the %d windows per rank that fits "
                     "at ZeRO %d (%.3g GiB): fewer, larger passes",
                     m, share, out->stage, (double)pm.total / (1 << 30));
            break;
        }
    }
out:
    return st;
}
