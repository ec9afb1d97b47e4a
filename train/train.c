/* train/train.c - the data-parallel training step; see train.h. */
#include "train/train.h"
#include "train/train_priv.h"

#include <cblas.h>
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collectives/bucket.h"
#include "collectives/comm.h"
#include "common/agree.h"
#include "common/fsutil.h"
#include "common/mpi_check.h"
#include "common/timing.h"
#include "ckpt/ckpt.h"
#include "dataio/loader.h"
#include "device/device.h"
#include "model/flops.h"
#include "model/model.h"
#include "model/optim.h"
#include "train/exact.h"
#include "plan/plan.h"

/* ---------------------------------------------------------------- setup */

/* DURE_FAULT_NAN=STEP[:RANK] (see train.h); malformed values are refused. */
static dure_status_t read_fault_env(train_t *t)
{
    dure_status_t st = DURE_OK;
    const char *s = getenv("DURE_FAULT_NAN");
    char *end = NULL;
    if (!s || !*s) {
        goto out;
    }
    long step = strtol(s, &end, 10);
    long rank = 0;
    if (*end == ':') {
        rank = strtol(end + 1, &end, 10);
    }
    DURE_CHECK(*end == '\0' && step > 0 && rank >= 0 && rank < t->world_size, DURE_ERR_ARG,
               "DURE_FAULT_NAN='%s': expected STEP[:RANK] with STEP >= 1 and RANK < %d", s,
               t->world_size);
    t->fault_nan_step = step;
    t->fault_nan_rank = (int)rank;
out:
    return st;
}

/* DURE_FAULT_SLOW=RANK:SECONDS (see train.h); malformed values are refused. */
static dure_status_t read_slow_env(train_t *t)
{
    dure_status_t st = DURE_OK;
    const char *s = getenv("DURE_FAULT_SLOW");
    char *end = NULL;
    t->fault_slow_rank = -1;
    if (!s || !*s) {
        goto out;
    }
    long rank = strtol(s, &end, 10);
    double secs = *end == ':' ? strtod(end + 1, &end) : -1;
    DURE_CHECK(*end == '\0' && rank >= 0 && rank < t->world_size && secs > 0 && secs < 60,
               DURE_ERR_ARG,
               "DURE_FAULT_SLOW='%s': expected RANK:SECONDS with RANK < %d and 0 < SECONDS "
               "< 60",
               s, t->world_size);
    t->fault_slow_rank = (int)rank;
    t->fault_slow_s = secs;
out:
    return st;
}

/* CPU threads per rank (plan_rank_cpus). */
static int pick_threads(const struct dure_jobspec *spec, const struct dure_ranks *r)
{
    int threads, cores;
    plan_rank_cpus(spec->run.threads, r->local_size, &threads, &cores);
    return threads;
}

static dure_status_t join_keys(const struct jobspec_list *l, char **out)
{
    dure_status_t st = DURE_OK;
    size_t len = 1;
    for (size_t i = 0; i < l->count; i++) {
        len += strlen(l->items[i]) + 1;
    }
    char *s = malloc(len);
    DURE_ALLOC_TRY(s, len);
    s[0] = '\0';
    for (size_t i = 0; i < l->count; i++) {
        if (i) {
            strcat(s, ",");
        }
        strcat(s, l->items[i]);
    }
    *out = s;
out:
    return st;
}

/*
 * The training loader of the spec's datasets (val < 0; jobspec_datasets:
 * data.path, or a mixture), or the validation loader of dataset val: its
 * val_path read whole, else its held-out episodes, normalized with the
 * training loader's statistics of that dataset, in the training loader's
 * channels.
 */
static dure_status_t open_loader(train_t *t, MPI_Comm world, int val, dataio_loader_t **out)
{
    dure_status_t st = DURE_OK;
    const struct dure_jobspec *s = t->spec;
    struct dataio_loader_config cfg;
    struct jobspec_dataset_ref sets[JOBSPEC_MAX_DATASETS];
    struct dataio_source src[JOBSPEC_MAX_DATASETS];
    char *keys[JOBSPEC_MAX_DATASETS] = {NULL};
    static const dataio_layout_t layouts[] = {
        [JOBSPEC_LAYOUT_AUTO] = DATAIO_LAYOUT_AUTO,
        [JOBSPEC_LAYOUT_DURE] = DATAIO_LAYOUT_DURE,
        [JOBSPEC_LAYOUT_ROBOMIMIC] = DATAIO_LAYOUT_ROBOMIMIC,
        [JOBSPEC_LAYOUT_EPISODE_FILES] = DATAIO_LAYOUT_EPISODE_FILES,
    };
    static const dataio_io_t ios[] = {
        [JOBSPEC_IO_AUTO] = DATAIO_IO_AUTO,
        [JOBSPEC_IO_SERIAL] = DATAIO_IO_SERIAL,
        [JOBSPEC_IO_MPIIO] = DATAIO_IO_MPIIO,
    };
    const size_t n = jobspec_datasets(s, sets);

    dataio_loader_config_init(&cfg);
    cfg.n_sources = (int)n;
    cfg.sources = src;
    cfg.balance_alpha = s->data.balance_alpha;
    cfg.sample_rate_hz = s->data.sample_rate_hz;
    cfg.split = val >= 0 ? DATAIO_SPLIT_VAL : DATAIO_SPLIT_TRAIN;
    cfg.window = t->window;
    cfg.global_batch = s->optim.global_batch;
    cfg.comm = world;
    cfg.seed = s->run.seed;
    cfg.shuffle = s->data.shuffle;
    cfg.prefetch = s->data.prefetch;
    cfg.normalize = s->data.normalize;
    cfg.on_nan = s->data.on_nan == JOBSPEC_DATA_NAN_SKIP ? DATAIO_NAN_SKIP : DATAIO_NAN_REFUSE;
    cfg.io = ios[s->data.io];
    cfg.expect_channels = s->model.channels;
    cfg.val_fraction = s->data.val_fraction;
    for (size_t d = 0; d < n; d++) {
        DURE_TRY(join_keys(sets[d].keys, &keys[d]));
        src[d] = (struct dataio_source){
            .name = sets[d].name, .path = sets[d].path, .layout = layouts[sets[d].layout],
            .keys = keys[d], .weight = sets[d].weight, .own_val = sets[d].val_path[0] != 0,
        };
    }
    if (val >= 0) {
        /* The same windows at every validation and every world size. */
        cfg.shuffle = 0;
        cfg.prefetch = 2;
        cfg.channel_names = dataio_loader_channel_names(t->train_ld);
        cfg.n_channel_names = dataio_loader_channels(t->train_ld);
        cfg.n_sources = 1;
        cfg.sources = &src[val];
        if (src[val].own_val) {
            int64_t common = 0;
            char first[512];
            DURE_TRY(dataio_paths_overlap(sets[val].path, sets[val].val_path, &common, first,
                                          sizeof first));
            if (common > 0 && t->rank == 0) {
                dure_log_warn(__FILE__, __LINE__,
                              "data.%s%sval_path = '%s' overlaps the training data (path = "
                              "'%s'): %" PRId64 " file(s) in both, the first '%s'; the "
                              "validation loss will look better than it is",
                              s->mix.count ? sets[val].name : "", s->mix.count ? "." : "",
                              sets[val].val_path, sets[val].path, common, first);
            }
            src[val].path = sets[val].val_path;
        }
        if (cfg.normalize) {
            /* Validate on data normalized as the model was trained: with the
             * training loader's statistics, never the validation file's own,
             * and without a second pass over the training split when the
             * file stores none. */
            dataio_loader_source_norm(t->train_ld, val, &src[val].norm_mean,
                                      &src[val].norm_std);
        }
    }
    DURE_TRY(dataio_loader_open(&cfg, out));
out:
    for (size_t d = 0; d < n; d++) {
        free(keys[d]);
    }
    return st;
}

/*
 * The plan's memory estimate for this rank (plan_memory: the one model of
 * it, the one dure plan and dure submit print), checked before anything
 * is allocated against what the device has free: a GPU's own free
 * memory, or MemAvailable shared by the node's ranks (Linux overcommits:
 * without this the allocations succeed and the OOM killer ends the run
 * mid-step with no message). DURE_ERR_NOMEM (exit 7) naming the terms and
 * the ZeRO stage that would fit; unknown capacity skips the check.
 */
static dure_status_t check_memory(train_t *t, const struct dure_ranks *r)
{
    dure_status_t st = DURE_OK;
    struct plan_job job;
    struct plan_hw hw;
    uint64_t avail = 0, reserve = 0;
    int shared = 0, per_node = r->local_size > 0 ? r->local_size : 1;
    DURE_TRY(plan_job_from_spec(t->spec, t->channels, t->world_size, per_node, &job));
    /* On the CPU the plan counts this process as it is (its RSS when
     * train_create began) and the threads it computes on. */
    job.threads = pick_threads(t->spec, r);
    job.process_bytes = t->rss_base_kb > 0 ? (uint64_t)t->rss_base_kb * 1024 : 0;
    DURE_TRY(device_mem_info(t->dev, t->world_size, &avail, &reserve, &shared));
    memset(&hw, 0, sizeof hw);
    snprintf(hw.name, sizeof hw.name, "%s", device_kind(t->dev));
    hw.gpu = strcmp(device_kind(t->dev), "cpu") != 0;
    hw.per_node = per_node;
    hw.mem_bytes = (double)avail / (shared ? per_node : 1);
    t->mem_avail = (uint64_t)hw.mem_bytes;
    if (avail == 0) {
        DURE_TRY(plan_memory(&job, &hw, t->zero_stage, &t->plan_mem));
        goto out;
    }
    DURE_TRY(plan_check_fit(&job, &hw, t->zero_stage, "dure run", &t->plan_mem));
out:
    return st;
}

/* The model's gradient-ready hook: the range goes to the bucketer (in
 * exact mode after the last micro-batch's tree adds on it). */
static dure_status_t on_grad_ready(void *ctx, size_t offset, size_t count)
{
    dure_status_t st = DURE_OK;
    train_t *t = ctx;
    if (t->exact) {
        DURE_TRY(train_exact_micro(t, t->accum - 1, offset, count));
    }
    DURE_TRY(comm_bucketer_ready_range(t->bucketer, offset, count));
out:
    return st;
}

static dure_status_t setup_comm(train_t *t, MPI_Comm world, const struct dure_ranks *r,
                                comm_hang_fn on_hang)
{
    dure_status_t st = DURE_OK;
    const struct dure_jobspec *s = t->spec;
    int threads, cores;
    int per_node = r->local_size > 0 ? r->local_size : 1;
    plan_rank_cpus(s->run.threads, per_node, &threads, &cores);
    struct comm_config cc;
    static const enum comm_backend backends[] = {
        [JOBSPEC_BACKEND_AUTO] = COMM_BACKEND_AUTO,
        [JOBSPEC_BACKEND_NCCL] = COMM_BACKEND_NCCL,
        [JOBSPEC_BACKEND_MPI] = COMM_BACKEND_MPI,
    };
    static const enum comm_algo algos[] = {
        [JOBSPEC_ALGO_AUTO] = COMM_ALGO_AUTO,
        [JOBSPEC_ALGO_NATIVE] = COMM_ALGO_NATIVE,
        [JOBSPEC_ALGO_RING] = COMM_ALGO_RING,
        [JOBSPEC_ALGO_SHM] = COMM_ALGO_SHM,
        [JOBSPEC_ALGO_HIER] = COMM_ALGO_HIER,
    };

    comm_config_default(&cc);
    /* Gradients live in the device's memory: the backend must reach it. */
    const char *need = device_comm_backend(t->dev);
    DURE_TRY(comm_backend_parse(need, &cc.backend));
    if (backends[s->parallel.backend] != COMM_BACKEND_AUTO &&
        backends[s->parallel.backend] != cc.backend) {
        const char *want = comm_backend_name(backends[s->parallel.backend]);
        /* With run.device = auto the device was chosen because none that
         * `want` reaches is visible: a missing device (exit 6), not a
         * contradictory job spec. */
        DURE_CHECK(s->run.device != JOBSPEC_DEVICE_AUTO, DURE_ERR_NODEV,
                   "parallel.backend = %s, but no device it reaches is visible (run.device = "
                   "auto chose %s): use parallel.backend = %s or auto",
                   want, device_kind(t->dev), need);
        DURE_FAIL(DURE_ERR_ARG,
                  "parallel.backend = %s with run.device = %s: %s does not reach %s memory; "
                  "use parallel.backend = %s or auto",
                  want, device_kind(t->dev), want, device_kind(t->dev), need);
    }
    cc.algo = algos[s->parallel.algo];
    cc.algo_table = s->parallel.algo_table;
    cc.ring_seg_bytes = (size_t)s->parallel.ring_segment_kib << 10;
    cc.deterministic = s->run.deterministic;
    cc.watchdog_s = s->parallel.watchdog_s;
    cc.on_hang = on_hang;
    cc.device = t->dev;
    cc.caller_runs = cc.backend == COMM_BACKEND_MPI &&
                     plan_caller_runs(s->parallel.comm_thread, r->node_count, per_node,
                                      threads, cores);
    cc.spin_ns = comm_spin_ns(cc.caller_runs, per_node, threads, cores);
    DURE_TRY(comm_create(world, &cc, &t->comm));
out:
    return st;
}

/* Stages 2-3 outside exact mode: the model is lent its gradients, which
 * zshard reduces unit by unit (no bucketer). */
static int grads_lent(const train_t *t) { return t->zs && zshard_lends_grads(t->zs); }

/* The model, its parameters and gradients in the communicator's memory (so
 * the exchange reads them in place: on one node an MPI-3 shared window),
 * and the gradient buckets over its tensors. */
static dure_status_t setup_model(train_t *t, const struct model_config *mc)
{
    dure_status_t st = DURE_OK;
    const struct dure_jobspec *s = t->spec;
    struct comm_bucket_config bc;
    size_t cuts[MODEL_TAIL_CUTS];
    struct dure_allocator state = comm_allocator(t->comm);
    int n_tensors = 0;

    if (t->zero_stage == 3 || (t->zero_stage == 2 && !t->exact)) {
        /* The model is lent its gradient buffers (and at stage 3 its
         * parameters) unit by unit: no bucketer, each unit's gradients
         * reduce-scattered as its backward ends (train/zshard.h). Exact
         * mode at stage 3 is lent the parameters alone: the gradients
         * stay whole in the model for the micro-batch tree, below. */
        DURE_TRY(zshard_create(t->comm, t->dev, mc, t->zero_stage, s->parallel.prefetch,
                               s->parallel.reshard_after_forward, !t->exact, &t->zs));
        struct model_unit_source src = zshard_source(t->zs);
        DURE_TRY(model_create_units(mc, t->dev, &state, &src, &t->model));
        DURE_TRY(zshard_attach(t->zs, t->model));
    } else {
        DURE_TRY(model_create(mc, t->dev, &state, &t->model));
    }
    t->n = model_param_count(t->model);
    t->shard = comm_shard_of(t->n, t->world_size, t->rank);
    if (grads_lent(t)) {
        goto out;
    }
    const size_t *offsets = model_tensor_offsets(t->model, &n_tensors);
    bc.bucket_mb = s->parallel.bucket_mb;
    bc.mode = t->zero_stage == 0 ? COMM_BUCKET_ALLREDUCE : COMM_BUCKET_REDUCE_SCATTER;
    bc.redop = COMM_SUM; /* scaled by 1 / (A * R) in the optimizer step */
    bc.overlap = s->parallel.overlap;
    bc.tree = NULL;
    bc.n_cuts = model_grad_tail_cuts(t->model, cuts);
    bc.cuts = cuts;
    /* exact mode at stage 3: the parameter gathers run beside the buckets */
    bc.reserve = t->zs ? zshard_inflight_max(t->zs) : 0;
    if (t->exact) {
        DURE_TRY(train_exact_setup(t));
        bc.mode = t->zero_stage == 0 ? COMM_BUCKET_EXACT_ALLREDUCE
                                     : COMM_BUCKET_EXACT_REDUCE_SCATTER;
        bc.tree = &t->tree;
    }
    DURE_TRY(comm_bucketer_create(t->comm, model_grads(t->model), offsets, n_tensors, &bc,
                                  &t->bucketer));
out:
    return st;
}

static dure_status_t alloc_buffers(train_t *t)
{
    dure_status_t st = DURE_OK;
    size_t opt_len = optim_len(t->opt);
    /* A slot: the micro-batch losses, the squared norm, the stop signal,
     * exact mode's norm frontier, a mixture's per-dataset sums of each
     * micro-batch; validation: losses and baselines. */
    int ctl = t->accum + 2 + (t->exact ? t->norm_max : 0);
    t->n_sets = dataio_loader_sources(t->train_ld);
    t->sets_at = ctl;
    if (t->n_sets > 1) {
        ctl += 3 * t->accum * t->n_sets;
    }
    t->slot = 2 * t->accum > ctl ? 2 * t->accum : ctl;
    size_t ctl_bytes = (size_t)t->world_size * (size_t)t->slot * sizeof(double);
    t->ctl_host = calloc(1, ctl_bytes);
    DURE_ALLOC_TRY(t->ctl_host, ctl_bytes);
    DURE_TRY(comm_mem_alloc(t->comm, ctl_bytes, &t->ctl_comm));
    size_t held = t->zero_stage == 3 ? t->shard.count : t->n;
    size_t stage = 2 * opt_len * sizeof(float) +
                   device_host_stage_bytes(t->dev, held * sizeof(float));
    t->stage = malloc(stage ? stage : 1);
    DURE_ALLOC_TRY(t->stage, stage);
out:
    return st;
}

static void report_setup(const train_t *t, const struct model_config *mc,
                         const char *peak_what, FILE *out)
{
    struct train_memory mem;
    char table[256] = "", seg[16] = "", exact[512] = "";
    train_memory(t, &mem);
    if (t->exact) {
        uint64_t sent = 0, plain = 0;
        train_exact_traffic(t, &sent, &plain);
        snprintf(exact, sizeof exact,
                 "run: exact mode: %llu micro-batches per step summed in a fixed tree; "
                 "%d saved gradient vector(s), %" PRIu64 " B in all; gradient exchange "
                 "%" PRIu64 " B per step from this rank (default mode %" PRIu64 " B)\n",
                 (unsigned long long)t->plan->leaves, t->plan->slots, mem.exact, sent,
                 plain);
    }
    comm_algo_table_text(t->comm, table, sizeof table);
    comm_ring_segment_text(t->comm, seg, sizeof seg);
    model_print_summary(mc, device_compute(t->dev), out);
    fprintf(out,
            "run: %d rank(s), backend %s (algorithms %s, ring segment %s), zero_stage %d, "
            "%d bucket(s), "
            "overlap %s, collectives run by %s\n"
            "run: global batch %d windows of %d timesteps = %d x %d micro-batches x %d "
            "ranks\n"
            "run: memory per rank: params %" PRIu64 " B, grads %" PRIu64 " B, grad shard "
            "%" PRIu64 " B, working %" PRIu64 " B, optimizer %" PRIu64 " B, checkpoint "
            "staging %" PRIu64 " B\n"
            "run: MFU peak per rank: %s\n"
            "%s",
            t->world_size, comm_backend_name(comm_backend(t->comm)), table, seg, t->zero_stage,
            t->bucketer ? comm_bucketer_count(t->bucketer) : 0,
            t->spec->parallel.overlap ? "on" : "off",
            !comm_caller_runs(t->comm) ? "their own thread or stream"
            : t->spec->parallel.comm_thread == JOBSPEC_COMM_THREAD_OFF
                ? "the rank's waits (parallel.comm_thread = off)"
                : "the rank's waits (parallel.comm_thread = auto: the node's cores all compute)",
            t->spec->optim.global_batch, t->window,
            t->micro, t->accum, t->world_size, mem.params, mem.grads, mem.grad_shard,
            mem.working, mem.optimizer, mem.staging, peak_what, exact);
    char terms[400];
    plan_memory_text(&t->plan_mem, terms, sizeof terms);
    fprintf(out,
            "run: plan: memory per rank %.1f MiB at zero_stage %d (%s) of %.2f GiB %s\n",
            (double)t->plan_mem.total / (double)(1ull << 20), t->zero_stage, terms,
            (double)t->mem_avail / (double)(1ull << 30),
            t->mem_avail ? "available" : "(capacity unknown: not checked)");
    if (t->zero_stage == 3) {
        fprintf(out, "run: zero_stage 3: %d unit(s), prefetch %d, reshard_after_forward %s\n",
                mc->n_layers + 2, t->spec->parallel.prefetch,
                t->spec->parallel.reshard_after_forward ? "true" : "false");
    }
    fflush(out);
}

dure_status_t train_create(const struct dure_jobspec *spec, const struct dure_ranks *ranks,
                           MPI_Comm world, const struct train_hooks *hooks, FILE *progress,
                           train_t **out)
{
    dure_status_t st = DURE_OK, local = DURE_OK;
    struct model_config mc;
    struct model_flops fl;
    struct optim_config oc;
    char peak_what[160] = "";
    static const char *const device_kinds[] = {
        [JOBSPEC_DEVICE_AUTO] = "auto",
        [JOBSPEC_DEVICE_CPU] = "cpu",
        [JOBSPEC_DEVICE_CUDA] = "cuda",
    };
    train_t *t = calloc(1, sizeof *t);

    *out = NULL;
    DURE_ALLOC_TRY(t, sizeof *t);
    t->rss_base_kb = dure_proc_status_kb("VmRSS:");
    t->spec = spec;
    t->hooks = *hooks;
    t->last_loss = NAN;
    t->world = world;
    t->rank = ranks->world_rank;
    t->world_size = ranks->world_size;
    t->zero_stage = spec->parallel.zero_stage;
    t->exact = spec->run.exact;
    t->window = (spec->model.context_patches + 1) * spec->model.patch_len;
    t->micro = spec->optim.micro_batch;
    /* The job spec makes micro_batch divide global_batch; the ranks must
     * divide the micro-batches. */
    uint64_t micro_batches = (uint64_t)(spec->optim.global_batch / t->micro);
    char sizes[256];
    tree_sizes_text(micro_batches, sizes, sizeof sizes);
    DURE_CHECK(micro_batches % (uint64_t)t->world_size == 0, DURE_ERR_ARG,
               "%d ranks cannot share the %llu micro-batches of a step (optim.global_batch "
               "= %d / optim.micro_batch = %d): world sizes that can for this job spec: %s",
               t->world_size, (unsigned long long)micro_batches, spec->optim.global_batch,
               t->micro, sizes);
    t->accum = (int)(micro_batches / (uint64_t)t->world_size);
    if (t->exact) {
        DURE_TRY(tree_plan_create(micro_batches, t->world_size, t->rank, &t->plan));
    }
    DURE_TRY(dure_agree(world, read_fault_env(t), "reading DURE_FAULT_NAN"));
    DURE_TRY(dure_agree(world, read_slow_env(t), "reading DURE_FAULT_SLOW"));

    int threads = pick_threads(spec, ranks);
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);

    /* This rank's device, from run.device and its index on the node. */
    local = device_open(device_kinds[spec->run.device], ranks->local_rank, ranks->local_size,
                        &t->dev);
    DURE_TRY(dure_agree(world, local, "device setup"));

    DURE_TRY(open_loader(t, world, -1, &t->train_ld));
    t->channels = dataio_loader_channels(t->train_ld);
    t->micro_elems = (size_t)t->micro * (size_t)t->window * (size_t)t->channels;
    /* Datasets that lack some of the union's channels: the model takes the
     * loader's masks (model.h: Masks). Otherwise no mask, and the model
     * and its bits are those of an unmasked run. */
    for (int d = 0; d < dataio_loader_sources(t->train_ld); d++) {
        t->masked |= dataio_loader_source_info(t->train_ld, d)->n_channels < t->channels;
    }
    if (t->masked && progress && t->rank == 0) {
        fprintf(progress, "data: the datasets' channel sets differ: %d channels in all, "
                "each window masked to its dataset's (", t->channels);
        for (int d = 0; d < dataio_loader_sources(t->train_ld); d++) {
            fprintf(progress, "%s%s %d", d ? ", " : "", dataio_loader_source_name(t->train_ld, d),
                    dataio_loader_source_info(t->train_ld, d)->n_channels);
        }
        fprintf(progress, ")\n");
    }
    for (int d = 0; spec->run.val_every > 0 && spec->run.val_batches > 0 &&
                    d < dataio_loader_sources(t->train_ld); d++) {
        t->n_val = d + 1; /* closed by train_destroy, whatever open_loader returns */
        DURE_TRY(open_loader(t, world, d, &t->val_ld[d]));
        const struct dataio_dataset_info *vi = dataio_loader_info(t->val_ld[d]);
        if (progress && t->rank == 0 && vi->split_from &&
            strcmp(vi->split_from, "data.val_fraction") == 0) {
            int64_t held = 0;
            for (int64_t e = 0; e < vi->n_episodes; e++) {
                held += dataio_episode_in(vi, e, DATAIO_SPLIT_VAL);
            }
            fprintf(progress, "data: '%s' defines no validation split: %" PRId64 " of its %"
                    PRId64 " episodes are held out for validation (data.val_fraction = %g)\n",
                    vi->path, held, vi->n_episodes, spec->data.val_fraction);
        }
        int64_t avail = dataio_loader_batches_per_epoch(t->val_ld[d]);
        t->val_batches[d] = spec->run.val_batches;
        if (avail < t->val_batches[d]) {
            if (t->rank == 0) {
                dure_log_warn(__FILE__, __LINE__,
                              "the validation split of '%s' holds %" PRId64 " global "
                              "batch(es) of %d windows, fewer than run.val_batches = %d: "
                              "using %" PRId64, vi->path, avail, spec->optim.global_batch,
                              t->val_batches[d], avail);
            }
            t->val_batches[d] = (int)avail;
        }
    }

    model_config_defaults(&mc);
    mc.d_model = spec->model.d_model;
    mc.n_layers = spec->model.n_layers;
    mc.n_heads = spec->model.n_heads;
    mc.patch_len = spec->model.patch_len;
    mc.context_patches = spec->model.context_patches;
    mc.channels = t->channels;
    mc.loss = spec->model.loss == JOBSPEC_LOSS_HUBER ? MODEL_LOSS_HUBER : MODEL_LOSS_MSE;
    mc.huber_delta = (float)spec->model.huber_delta;
    mc.init_std = (float)spec->model.init_std;
    mc.micro_batch = t->micro;
    /* Exact mode needs kernels whose bits do not depend on the thread count. */
    mc.deterministic = spec->run.deterministic || spec->run.exact;
    mc.seed = spec->run.seed;
    mc.masked = t->masked;
    snprintf(t->model_desc, sizeof t->model_desc,
             "d_model=%d n_layers=%d n_heads=%d patch_len=%d context_patches=%d channels=%d%s",
             mc.d_model, mc.n_layers, mc.n_heads, mc.patch_len, mc.context_patches,
             mc.channels, mc.masked ? " masked=1" : "");

    DURE_TRY(dure_agree(world, check_memory(t, ranks), "memory check"));
    DURE_TRY(dure_agree(world, setup_comm(t, world, ranks, hooks->on_hang), "communicator setup"));
    DURE_TRY(dure_agree(world, setup_model(t, &mc), "model setup"));

    oc.beta1 = (float)spec->optim.beta1;
    oc.beta2 = (float)spec->optim.beta2;
    oc.eps = (float)spec->optim.eps;
    oc.weight_decay = (float)spec->optim.weight_decay;
    size_t n_t = 0;
    const struct model_tensor *tens = model_tensors(t->model, &n_t);
    size_t off = t->zero_stage > 0 ? t->shard.offset : 0;
    size_t len = t->zero_stage > 0 ? t->shard.count : t->n;
    local = optim_create(&oc, t->dev, tens, n_t, off, len, &t->opt);
    if (local == DURE_OK) {
        local = alloc_buffers(t);
    }
    DURE_TRY(dure_agree(world, local, "buffer allocation"));
    DURE_TRY(train_ckpt_setup(t));
    DURE_TRY(train_straggler_setup(t));
    if (local == DURE_OK) {
        local = jobspec_hash(spec, JOBSPEC_HASH_RESULT, &t->config_hash);
    }
    if (local == DURE_OK) {
        /* Every rank measures at once, as it will run: cores shared alike. */
        MPI_Barrier(world);
        local = device_peak_flops(t->dev, &t->peak_flops, peak_what, sizeof peak_what);
    }
    DURE_TRY(dure_agree(world, local, "optimizer setup"));

    t->sched.lr = (float)spec->optim.lr;
    t->sched.min_lr = (float)spec->optim.min_lr;
    t->sched.warmup_steps = spec->optim.warmup_steps;
    t->sched.total_steps = spec->run.steps;
    model_flops_compute(&mc, &fl);
    t->flops_per_step = fl.per_micro_batch * (double)t->accum * (double)t->world_size;
    t->timesteps_per_step = (double)spec->optim.global_batch * (double)t->window;
    if (progress && t->rank == 0) {
        report_setup(t, &mc, peak_what, progress);
    }
    *out = t;
    t = NULL;
out:
    train_destroy(t);
    return st;
}

void train_destroy(train_t *t)
{
    if (!t) {
        return;
    }
    train_ckpt_teardown(t);
    train_straggler_teardown(t);
    /* The model's buffers are the comm's: free them before the comm, and
     * everything before the device. */
    comm_bucketer_free(t->bucketer);
    train_exact_free(t);
    optim_destroy(t->opt);
    model_destroy(t->model);
    zshard_free(t->zs);
    if (t->comm) {
        comm_mem_free(t->comm, t->ctl_comm);
    }
    comm_destroy(t->comm);
    device_close(t->dev);
    for (int d = 0; d < t->n_val; d++) {
        dataio_loader_close(t->val_ld[d]);
    }
    dataio_loader_close(t->train_ld);
    free(t->ctl_host);
    free(t->stage);
    free(t);
}

long train_steps_done(const train_t *t) { return t->step; }

void train_memory(const train_t *t, struct train_memory *mem)
{
    size_t opt_len = t->opt ? optim_len(t->opt) : 0;
    const int z3 = t->zero_stage == 3;
    uint64_t held = z3 ? (uint64_t)t->shard.count : (uint64_t)t->n;
    mem->params = held * sizeof(float);
    mem->grads = grads_lent(t) ? 0 : (uint64_t)t->n * sizeof(float);
    mem->grad_shard = grads_lent(t) ? (uint64_t)t->shard.count * sizeof(float) : 0;
    mem->working = t->zs ? (uint64_t)zshard_working_bytes(t->zs) : 0;
    mem->exact = train_exact_bytes(t);
    mem->optimizer = 2 * (uint64_t)opt_len * sizeof(float);
    mem->staging = 2 * (uint64_t)opt_len * sizeof(float) +
                   (t->dev ? device_host_stage_bytes(t->dev, (size_t)held * sizeof(float)) : 0);
    if (t->spec->checkpoint.async) {
        mem->staging += 3 * (uint64_t)t->shard.count * sizeof(float); /* the snapshot */
    }
}

/* ---------------------------------------------------------------- control */

/*
 * All-gather `slot` doubles per rank (this rank's in ctl_host[rank*slot..])
 * through the communicator, as float64, so the exchange is watched by its
 * watchdog.
 */
static dure_status_t control_exchange(train_t *t)
{
    dure_status_t st = DURE_OK;
    size_t per = (size_t)t->slot, total = per * (size_t)t->world_size;
    double *mine = t->ctl_host + (size_t)t->rank * per;
    double *dev = (double *)t->ctl_comm + (size_t)t->rank * per;
    DURE_TRY(comm_mem_upload(t->comm, dev, mine, per * sizeof(double)));
    DURE_TRY(comm_allgather(t->comm, dev, t->ctl_comm, total, COMM_F64));
    DURE_TRY(comm_mem_download(t->comm, t->ctl_host, t->ctl_comm, total * sizeof(double)));
out:
    return st;
}

/* This rank's slot of the control exchange, and rank r's after it. */
static double *ctl_mine(train_t *t) { return t->ctl_host + (size_t)t->rank * (size_t)t->slot; }

static const double *ctl_of(const train_t *t, int r)
{
    return t->ctl_host + (size_t)r * (size_t)t->slot;
}

/* ---------------------------------------------------------------- the step */

/*
 * What every rank decides from the control exchange at the end of a step:
 * the same numbers on every rank. Slot layout per rank: the A micro-batch
 * losses, then the squared norm of its gradient part, then its stop signal.
 */
struct step_decision {
    long step;                /* 1-based */
    double loss;              /* mean over the global batch */
    double norm;              /* L2 norm of the mean gradient */
    double mean_scale;        /* 1 / (A * R): sum of gradients -> mean */
    float lr;
    int bad_rank, bad_micro;  /* first non-finite micro-batch loss; -1: none */
    int nonfinite;            /* a loss or the norm is not finite */
    int stop_signal;          /* a rank saw this signal; 0: none */
};

/* Micro-batch j's windows (micro, W, C) and, for a masked model, their
 * channel mask (micro, C); NULL otherwise. */
static const float *micro_data(const train_t *t, const struct dataio_batch *b, int j)
{
    return b->data + (size_t)j * t->micro_elems;
}

static const float *micro_mask(const train_t *t, const struct dataio_batch *b, int j)
{
    return t->masked ? b->mask + (size_t)j * t->micro * t->channels : NULL;
}

/*
 * A mixture: micro-batch j's (loss sum, baseline sum, windows) of each
 * dataset into this rank's control slot (see train_priv.h), from the
 * model's window losses of the forward just run and each window's naive
 * baseline. Nothing for a single dataset.
 */
static dure_status_t note_sets(train_t *t, const struct dataio_batch *b, int j)
{
    dure_status_t st = DURE_OK;
    if (t->n_sets <= 1) {
        goto out;
    }
    struct model_config one = *model_get_config(t->model);
    double *v = ctl_mine(t) + t->sets_at + (size_t)j * t->n_sets * 3;
    const float *wl = model_window_losses(t->model);
    const float *mask = micro_mask(t, b, j);
    size_t per_window = (size_t)t->window * (size_t)t->channels;
    one.micro_batch = 1;
    memset(v, 0, (size_t)t->n_sets * 3 * sizeof *v);
    for (int i = 0; i < t->micro; i++) {
        double base = 0;
        int d = b->source[(size_t)j * t->micro + i];
        DURE_TRY(model_baseline_loss(&one, micro_data(t, b, j) + (size_t)i * per_window,
                                     mask ? mask + (size_t)i * t->channels : NULL, &base));
        v[3 * d] += wl[i];
        v[3 * d + 1] += base;
        v[3 * d + 2] += 1;
    }
out:
    return st;
}

/* Every rank: the step's per-dataset losses from all ranks' slots, summed
 * in global micro-batch order. A single dataset has no such slots
 * (alloc_buffers sizes them for a mixture only). */
static void sum_sets(train_t *t)
{
    for (int d = 0; t->n_sets > 1 && d < t->n_sets; d++) {
        double loss = 0, base = 0, n = 0;
        for (int r = 0; r < t->world_size; r++) {
            for (int j = 0; j < t->accum; j++) {
                const double *v = ctl_of(t, r) + t->sets_at + ((size_t)j * t->n_sets + d) * 3;
                loss += v[0];
                base += v[1];
                n += v[2];
            }
        }
        t->step_sets[d] = (struct dure_step_dataset){
            .name = dataio_loader_source_name(t->train_ld, d),
            .loss = n > 0 ? loss / n : NAN,
            .baseline = n > 0 ? base / n : NAN,
        };
    }
}

/* The step's batch; DURE_FAULT_NAN poisons it here (see train.h). */
static dure_status_t next_batch(train_t *t, long step, struct dataio_batch *b)
{
    dure_status_t st = DURE_OK;
    DURE_TRY(dataio_loader_next(t->train_ld, b));
    DURE_CHECK(b->local_batch == t->accum * t->micro && b->channels == t->channels,
               DURE_ERR_INTERNAL, "loader gave %d windows of %d channels, expected %d of %d",
               b->local_batch, b->channels, t->accum * t->micro, t->channels);
    if (step == t->fault_nan_step && t->rank == t->fault_nan_rank) {
        b->data[0] = NAN;
    }
out:
    return st;
}

/*
 * Forward and backward over this rank's A micro-batches, the gradient
 * exchange overlapped with the backward that produces it: stages 0/1 (and
 * stages 2/3 in exact mode) once per step with the last backward (buckets),
 * stages 2/3 otherwise unit by unit with every backward, each reduced part
 * summed into the shard (zshard). In exact mode each micro-batch's gradient
 * is computed alone and added into the saved vectors by the tree plan (at
 * stage 3 the model's parameters are still lent unit by unit). The losses
 * go to the control slot; *comm_s accumulates the exchange's exposed wait.
 */
static dure_status_t run_micro_batches(train_t *t, const struct dataio_batch *b,
                                       double *comm_s)
{
    dure_status_t st = DURE_OK;
    double *mine = ctl_mine(t);
    const int A = t->accum;

    if (grads_lent(t)) {
        for (int j = 0; j < A; j++) {
            float loss = 0;
            zshard_micro_batch(t->zs, j == 0);
            DURE_TRY(model_forward_backward(t->model, micro_data(t, b, j),
                                            micro_mask(t, b, j), &loss));
            DURE_TRY(zshard_backward_done(t->zs));
            DURE_TRY(note_sets(t, b, j));
            mine[j] = loss;
        }
        *comm_s += zshard_take_wait_s(t->zs);
        goto out;
    }
    DURE_TRY(model_zero_grad(t->model));
    for (int j = 0; j < A; j++) {
        const int last = j == A - 1;
        const int hook = last && t->spec->parallel.overlap;
        float loss = 0;
        if (t->exact && j > 0) {
            DURE_TRY(model_zero_grad(t->model));
        }
        if (hook) {
            model_set_grad_ready(t->model, on_grad_ready, t);
        }
        st = model_forward_backward(t->model, micro_data(t, b, j), micro_mask(t, b, j), &loss);
        model_set_grad_ready(t->model, NULL, NULL);
        DURE_TRY(st);
        mine[j] = loss;
        DURE_TRY(note_sets(t, b, j));
        if (t->exact && !hook) {
            /* (With the hook, it ran the last micro-batch's adds.) */
            DURE_TRY(train_exact_micro(t, j, 0, t->n));
        }
        if (last) {
            double c0 = dure_now_s();
            DURE_TRY(comm_bucketer_finish(t->bucketer));
            *comm_s += dure_now_s() - c0;
        }
    }
    if (t->zs) {
        /* exact mode at stage 3: the parameter gathers' waits */
        *comm_s += zshard_take_wait_s(t->zs);
    }
    if (t->rank == t->fault_slow_rank) {
        /* A slower device: its step's compute takes that much longer. */
        struct timespec slow = {(time_t)t->fault_slow_s,
                                (long)((t->fault_slow_s - (double)(time_t)t->fault_slow_s) * 1e9)};
        while (nanosleep(&slow, &slow) != 0) {
        }
    }
out:
    return st;
}

/* The reduced gradient this rank updates with: the stage 2/3 shard, or
 * its part of the model's gradient vector. */
static const float *update_grads(train_t *t)
{
    return grads_lent(t) ? zshard_grads(t->zs) : model_grads(t->model) + optim_offset(t->opt);
}

float *train_shard_params(train_t *t)
{
    return t->zero_stage == 3 ? zshard_params(t->zs) : model_params(t->model) + t->shard.offset;
}

/*
 * Exchange the losses, squared norms and stop signals, and decide as one:
 * the global mean loss (summed in global micro-batch order), the gradient
 * norm, whether anything is not finite (run.on_nan = stop: DURE_ERR_NUMERIC
 * naming the step and rank), whether to stop for a signal.
 */
static dure_status_t decide(train_t *t, long step, struct step_decision *d, double *comm_s)
{
    dure_status_t st = DURE_OK;
    const int A = t->accum;
    double *mine = ctl_mine(t), sq = 0, loss_sum = 0, sq_sum = 0;

    memset(d, 0, sizeof *d);
    d->step = step;
    d->bad_rank = d->bad_micro = -1;
    /* Squared norm of this rank's part: the whole vector at stage 0 (every
     * rank holds the same reduced gradients: rank 0's counts), the shard at
     * stages 1 and 2; exact mode: the shard's frontier in the tree over
     * elements. */
    if (t->exact) {
        DURE_TRY(train_exact_norm_part(t, mine + A + 2));
    } else {
        DURE_TRY(optim_grad_sq_norm(t->opt, update_grads(t), &sq));
    }
    mine[A] = sq;
    mine[A + 1] = t->hooks.stop_requested ? (double)t->hooks.stop_requested() : 0.0;
    double c0 = dure_now_s();
    DURE_TRY(control_exchange(t));
    *comm_s += dure_now_s() - c0;

    for (int r = 0; r < t->world_size; r++) {
        const double *v = ctl_of(t, r);
        for (int j = 0; j < A; j++) {
            if (!isfinite(v[j]) && d->bad_rank < 0) {
                d->bad_rank = r;
                d->bad_micro = j;
            }
            loss_sum += v[j];
        }
        sq_sum += t->zero_stage || r == 0 ? v[A] : 0;
        if (v[A + 1] != 0) {
            d->stop_signal = (int)v[A + 1];
        }
    }
    if (t->exact) {
        DURE_TRY(train_exact_loss(t, &loss_sum));
        DURE_TRY(train_exact_norm(t, (size_t)A + 2, &sq_sum));
    }
    sum_sets(t);
    d->mean_scale = 1.0 / ((double)A * (double)t->world_size);
    d->loss = loss_sum * d->mean_scale;
    d->norm = sqrt(sq_sum) * d->mean_scale;
    d->lr = optim_lr_at(&t->sched, (int)(step - 1));
    d->nonfinite = d->bad_rank >= 0 || !isfinite(d->norm);
    if (d->nonfinite && t->spec->run.on_nan == JOBSPEC_RUN_NAN_STOP) {
        if (d->bad_rank >= 0) {
            DURE_FAIL(DURE_ERR_NUMERIC,
                      "non-finite loss (%g) at step %ld on rank %d (micro-batch %d of %d): "
                      "stopping (run.on_nan = stop; skip drops such steps instead)",
                      ctl_of(t, d->bad_rank)[d->bad_micro], step, d->bad_rank, d->bad_micro, A);
        }
        DURE_FAIL(DURE_ERR_NUMERIC,
                  "non-finite gradient norm at step %ld (loss %g): stopping "
                  "(run.on_nan = stop; skip drops such steps instead)",
                  step, d->loss);
    }
out:
    return st;
}

/*
 * AdamW on this rank's slice with the clipped mean gradient, then (ZeRO)
 * the all-gather of the updated slices, then the compute copy; or, for a
 * non-finite step under run.on_nan = skip, nothing but a warning.
 */
static dure_status_t update(train_t *t, const struct step_decision *d, double *comm_s)
{
    dure_status_t st = DURE_OK;
    if (d->nonfinite) {
        if (t->rank == 0) {
            char where[32] = "";
            if (d->bad_rank >= 0) {
                snprintf(where, sizeof where, " on rank %d", d->bad_rank);
            }
            dure_log_warn(__FILE__, __LINE__,
                          "non-finite %s at step %ld%s: update skipped (run.on_nan = skip)",
                          d->bad_rank >= 0 ? "loss" : "gradient norm", d->step, where);
        }
        goto out;
    }
    float scale = (float)d->mean_scale *
                  optim_clip_scale(d->norm, (float)t->spec->optim.grad_clip);
    t->opt_step++;
    if (t->zero_stage == 3) {
        /* the next forward gathers the updated shards */
        DURE_TRY(optim_adamw_update(t->opt, (int)t->opt_step, d->lr, scale,
                                    zshard_params(t->zs), update_grads(t)));
        goto out;
    }
    float *p = model_params(t->model);
    DURE_TRY(optim_adamw_update(t->opt, (int)t->opt_step, d->lr, scale,
                                p + optim_offset(t->opt), update_grads(t)));
    if (t->zero_stage > 0) {
        double c0 = dure_now_s();
        DURE_TRY(comm_allgather(t->comm, p + t->shard.offset, p, t->n, COMM_F32));
        *comm_s += dure_now_s() - c0;
    }
    DURE_TRY(model_params_changed(t->model));
out:
    return st;
}

static void fill_metrics(train_t *t, const struct step_decision *d, double step_s,
                         double comm_s, struct train_step_result *res)
{
    struct dataio_loader_stats ls;
    struct dure_step_metrics *m = &res->metrics;
    dataio_loader_stats(t->train_ld, &ls);
    m->step = d->step;
    m->loss = d->loss;
    m->grad_norm = d->norm;
    m->lr = d->lr;
    m->step_s = step_s;
    m->timesteps_per_s = t->timesteps_per_step / step_s;
    m->mfu = t->peak_flops > 0
                 ? t->flops_per_step / step_s / (t->peak_flops * (double)t->world_size)
                 : 0;
    m->data_wait_s = ls.wait_s - t->wait_seen;
    t->wait_seen = ls.wait_s;
    m->comm_exposed_s = comm_s;
    const double cpu = comm_thread_cpu_s(t->comm);
    m->comm_thread_cpu_s = cpu - t->comm_cpu_seen;
    t->comm_cpu_seen = cpu;
    m->skipped = d->nonfinite;
    m->sets = t->n_sets > 1 ? t->step_sets : NULL;
    m->n_sets = t->n_sets > 1 ? t->n_sets : 0;
    res->stop_signal = d->stop_signal;
}

dure_status_t train_step(train_t *t, struct train_step_result *res)
{
    dure_status_t st = DURE_OK;
    struct dataio_batch b;
    struct step_decision d;
    double comm_s = 0, t0 = dure_now_s();
    const long step = t->step + 1;

    memset(res, 0, sizeof *res);
    DURE_TRY(next_batch(t, step, &b));
    DURE_TRY(run_micro_batches(t, &b, &comm_s));
    /* the optimizer's part: the norm, the decision and the update, less
     * the communication they wait for */
    double o0 = dure_now_s(), comm_before = comm_s;
    DURE_TRY(decide(t, step, &d, &comm_s));
    DURE_TRY(update(t, &d, &comm_s));
    res->metrics.optimizer_s = dure_now_s() - o0 - (comm_s - comm_before);
    t->step = step;
    t->last_loss = d.loss;
    fill_metrics(t, &d, dure_now_s() - t0, comm_s, res);
out:
    return st;
}

/* ---------------------------------------------------------------- validation */

_Static_assert(TRAIN_MAX_DATASETS == JOBSPEC_MAX_DATASETS, "one dataset limit");

/* Mean loss and naive baseline over the validation batches of dataset d
 * (collective). The baseline is computed once: the windows do not change. */
static dure_status_t validate_dataset(train_t *t, int d, double *loss)
{
    dure_status_t st = DURE_OK;
    const struct dataio_cursor start = {0, 0};
    const struct model_config *mc = model_get_config(t->model);
    double sum = 0, base_sum = 0;
    long count = 0;
    int A = t->accum;

    DURE_TRY(dataio_loader_set_cursor(t->val_ld[d], &start));
    double *mine = ctl_mine(t);
    for (int i = 0; i < t->val_batches[d]; i++) {
        struct dataio_batch b;
        DURE_TRY(dataio_loader_next(t->val_ld[d], &b));
        for (int j = 0; j < A; j++) {
            const float *x = micro_data(t, &b, j), *mask = micro_mask(t, &b, j);
            float l = 0;
            double base = 0;
            DURE_TRY(model_forward(t->model, x, mask, &l));
            mine[j] = l;
            if (!t->have_baseline) {
                DURE_TRY(model_baseline_loss(mc, x, mask, &base));
            }
            mine[A + j] = base;
        }
        DURE_TRY(control_exchange(t));
        for (int r = 0; r < t->world_size; r++) {
            const double *v = ctl_of(t, r);
            for (int j = 0; j < A; j++) {
                sum += v[j];
                base_sum += v[A + j];
                count++;
            }
        }
    }
    if (!t->have_baseline) {
        t->baseline[d] = base_sum / (double)count;
    }
    *loss = sum / (double)count;
out:
    return st;
}

dure_status_t train_validate(train_t *t, struct train_val *out)
{
    dure_status_t st = DURE_OK;

    out->loss = NAN;
    out->baseline = NAN;
    out->n = 0;
    for (int d = 0; d < t->n_val; d++) {
        if (t->val_batches[d] <= 0) {
            goto out;
        }
    }
    for (int d = 0; d < t->n_val; d++) {
        DURE_TRY(validate_dataset(t, d, &out->loss_d[d]));
        out->baseline_d[d] = t->baseline[d];
        out->name[d] = dataio_loader_source_name(t->train_ld, d);
    }
    t->have_baseline = 1;
    out->n = t->n_val;
    if (t->n_val == 1) {
        out->loss = out->loss_d[0];
        out->baseline = out->baseline_d[0];
    } else if (t->n_val > 1) {
        /* The mixture's: each dataset as often as training draws it. */
        out->loss = 0;
        out->baseline = 0;
        for (int d = 0; d < t->n_val; d++) {
            double share = dataio_loader_source_share(t->train_ld, d);
            out->loss += share * out->loss_d[d];
            out->baseline += share * out->baseline_d[d];
        }
    }
out:
    return st;
}

void train_memory_measured(const train_t *t, struct train_mem_measured *m)
{
    long peak = dure_proc_status_kb("VmHWM:");
    m->base = t->rss_base_kb > 0 ? (uint64_t)t->rss_base_kb * 1024 : 0;
    m->peak = peak > 0 ? (uint64_t)peak * 1024 : 0;
    m->plan = t->plan_mem.total;
    m->plan_process = t->plan_mem.process;
    long shm = dure_proc_status_kb("RssShmem:");
    long shm_pss = dure_proc_file_kb("/proc/self/smaps_rollup", "Pss_Shmem:");
    m->shm_rss = shm > 0 ? (uint64_t)shm * 1024 : 0;
    m->shm_pss = shm_pss > 0 ? (uint64_t)shm_pss * 1024 : 0;
    m->host_is_device = strcmp(device_kind(t->dev), "cpu") == 0;
}

void train_comm_describe(const train_t *t, struct train_comm_desc *d)
{
    size_t bytes = t->n * sizeof(float);
    d->backend = comm_backend_name(comm_backend(t->comm));
    d->allreduce = comm_algo_name(comm_algo_for(t->comm, COMM_ALLREDUCE, bytes));
    d->reduce_scatter = comm_algo_name(comm_algo_for(t->comm, COMM_REDUCE_SCATTER, bytes));
    d->allgather = comm_algo_name(comm_algo_for(t->comm, COMM_ALLGATHER, bytes));
    comm_algo_table_text(t->comm, d->algo_table, sizeof d->algo_table);
    comm_ring_segment_text(t->comm, d->ring_segment, sizeof d->ring_segment);
}
