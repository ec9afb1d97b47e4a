/* train/train.c - the data-parallel training step; see train.h. */
#include "train/train.h"
#include "train/train_priv.h"

#include <cblas.h>
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collectives/bucket.h"
#include "collectives/comm.h"
#include "common/gpu.h"
#include "common/mpi_check.h"
#include "common/timing.h"
#include "ckpt/ckpt.h"
#include "dataio/loader.h"
#include "launcher/accum.h"
#include "launcher/exitcodes.h"
#include "launcher/peak.h"
#include "launcher/signals.h"
#include "model/flops.h"
#include "model/model.h"
#include "model/optim.h"

/*
 * Make a locally decided status collective: every rank returns the worst
 * status any rank had. A rank that was fine says which rank failed, so
 * its exit is explained in its own log too.
 */
static dure_status_t agree(MPI_Comm comm, dure_status_t mine, const char *what)
{
    int in[2] = {(int)mine, 0}, out[2] = {0, 0};
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    in[1] = mine != DURE_OK ? rank : -1;
    if (MPI_Allreduce(in, out, 2, MPI_INT, MPI_MAX, comm) != MPI_SUCCESS) {
        return DURE_ERR_MPI;
    }
    if (mine == DURE_OK && out[0] != DURE_OK && rank == 0) {
        dure_log_error(__FILE__, __LINE__, "%s failed on rank %d (see its message)", what,
                       out[1]);
    }
    return (dure_status_t)out[0];
}

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

/* CPU threads per rank: run.threads, or the cores this rank may use
 * (bound by the launcher: its affinity mask; unbound: a fair share). */
static int pick_threads(const struct dure_jobspec *spec, const struct dure_ranks *r)
{
    if (spec->run.threads > 0) {
        return spec->run.threads;
    }
    cpu_set_t set;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)online;
    if (online > 0 && mine < online) {
        return mine > 0 ? mine : 1;
    }
    int share = (int)(online / (r->local_size > 0 ? r->local_size : 1));
    return share > 0 ? share : 1;
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

static dure_status_t open_loader(train_t *t, MPI_Comm world, int val, dataio_loader_t **out)
{
    dure_status_t st = DURE_OK;
    const struct dure_jobspec *s = t->spec;
    struct dataio_loader_config cfg;
    char *keys = NULL;
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

    DURE_TRY(join_keys(&s->data.keys, &keys));
    dataio_loader_config_init(&cfg);
    cfg.path = s->data.path;
    cfg.layout = layouts[s->data.layout];
    cfg.keys = keys;
    cfg.split = DATAIO_SPLIT_TRAIN;
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
    cfg.val_fraction = s->data.val_path[0] ? 0.0 : s->data.val_fraction;
    if (val) {
        /* The same windows at every validation and every world size. */
        cfg.shuffle = 0;
        cfg.prefetch = 2;
        if (s->data.val_path[0]) {
            int64_t common = 0;
            char first[512];
            DURE_TRY(dataio_paths_overlap(s->data.path, s->data.val_path, &common, first,
                                          sizeof first));
            if (common > 0 && t->rank == 0) {
                dure_log_warn(__FILE__, __LINE__,
                              "data.val_path = '%s' overlaps the training data (data.path = "
                              "'%s'): %" PRId64 " file(s) in both, the first '%s'; the "
                              "validation loss will look better than it is",
                              s->data.val_path, s->data.path, common, first);
            }
            cfg.path = s->data.val_path;
            cfg.split = DATAIO_SPLIT_ALL;
        } else {
            cfg.split = DATAIO_SPLIT_VAL;
        }
        if (cfg.normalize) {
            /* Validate on data normalized as the model was trained: with the
             * training loader's statistics, never the validation file's own,
             * and without a second pass over the training split when the
             * file stores none. */
            dataio_loader_norm(t->train_ld, &cfg.norm_mean, &cfg.norm_std);
        }
    }
    DURE_TRY(dataio_loader_open(&cfg, out));
out:
    free(keys);
    return st;
}

static int64_t mem_available_bytes(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long long kb = -1;
    if (!f) {
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    return kb < 0 ? -1 : (int64_t)kb * 1024;
}

static double gib(uint64_t b) { return (double)b / (1024.0 * 1024.0 * 1024.0); }

/*
 * Refuse, before allocating, a run whose host memory would not fit: what
 * every rank of this node needs against MemAvailable. (Linux overcommits:
 * without this, the allocations succeed and the OOM killer ends the run
 * mid-step with no message.) GPU runs are checked by the model's own
 * allocation, which fails cleanly with its estimate.
 */
static dure_status_t check_memory(const train_t *t, const struct model_config *mc,
                                  const struct dure_ranks *r)
{
    dure_status_t st = DURE_OK;
    struct model_memory mem;
    DURE_TRY(model_memory_estimate(mc, &mem));
    if (t->on_device) {
        goto out;
    }
    uint64_t shards = t->zero_stage > 0 ? (uint64_t)t->world_size : 1;
    uint64_t opt = mem.optimizer / shards;
    uint64_t gshard = t->zero_stage == 2 ? mem.grads / shards : 0;
    uint64_t batch = (uint64_t)t->micro * (uint64_t)t->accum * (uint64_t)t->window *
                     (uint64_t)t->channels * sizeof(float);
    uint64_t loaders = batch * (uint64_t)(t->spec->data.prefetch + 1 + 3);
    uint64_t need = mem.total - mem.optimizer + opt + gshard + 2 * opt + loaders;
    uint64_t ranks = r->local_size > 0 ? (uint64_t)r->local_size : 1;
    int64_t avail = mem_available_bytes();
    DURE_CHECK(avail < 0 || need * ranks <= (uint64_t)avail, DURE_ERR_NOMEM,
               "not enough memory: this run needs about %.2f GiB per rank (params %.2f, "
               "grads %.2f, activations+workspace %.2f, optimizer %.2f, checkpoint staging "
               "%.2f, batches %.2f GiB) x %" PRIu64 " ranks on this node = %.2f GiB, but "
               "only %.2f GiB are available: use fewer ranks per node, a smaller "
               "model.d_model/n_layers or optim.micro_batch, or zero_stage = 1",
               gib(need), gib(mem.params), gib(mem.grads + gshard),
               gib(mem.activations + mem.workspace), gib(opt), gib(2 * opt), gib(loaders),
               ranks, gib(need * ranks), gib((uint64_t)avail));
out:
    return st;
}

/* Hook of the model: gradients of [offset, offset + count) are final. */
static dure_status_t on_grad_ready(void *ctx, size_t offset, size_t count)
{
    dure_status_t st = DURE_OK;
    train_t *t = ctx;
    /* Ranges come whole tensors at a time, last tensor first. */
    int lo = 0, hi = t->n_tensors;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (t->tensor_off[mid] < offset) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    DURE_CHECK(lo < t->n_tensors && t->tensor_off[lo] == offset, DURE_ERR_INTERNAL,
               "gradient range [%zu, +%zu) does not start at a tensor boundary", offset,
               count);
    for (int i = lo; i < t->n_tensors && t->tensor_off[i] < offset + count; i++) {
        DURE_CHECK(t->tensor_off[i + 1] <= offset + count, DURE_ERR_INTERNAL,
                   "gradient range [%zu, +%zu) ends inside tensor %d", offset, count, i);
        DURE_TRY(comm_bucketer_ready(t->bucketer, i));
    }
out:
    return st;
}

static dure_status_t setup_comm(train_t *t, MPI_Comm world, comm_hang_fn on_hang)
{
    dure_status_t st = DURE_OK;
    const struct dure_jobspec *s = t->spec;
    struct comm_config cc;
    struct comm_bucket_config bc;
    size_t n_t = 0;
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
    };

    comm_config_default(&cc);
    cc.backend = backends[s->parallel.backend];
    /* Gradients live where the model puts them: the backend must match. */
    if (cc.backend == COMM_BACKEND_AUTO) {
        cc.backend = t->on_device ? COMM_BACKEND_NCCL : COMM_BACKEND_MPI;
    }
    DURE_CHECK(!(t->on_device && cc.backend == COMM_BACKEND_MPI), DURE_ERR_UNSUPPORTED,
               "parallel.backend = mpi with a model on the GPU: the gradients are in GPU "
               "memory; use backend = nccl (or auto)");
    if (!t->on_device && cc.backend == COMM_BACKEND_NCCL) {
        /* With run.device = auto the CPU was chosen because no GPU is visible:
         * that is a missing device (exit 6), not a contradictory job spec. */
        DURE_CHECK(s->run.device != JOBSPEC_DEVICE_AUTO, DURE_ERR_NODEV,
                   "parallel.backend = nccl, but no CUDA device is visible (run.device = "
                   "auto chose the CPU): use parallel.backend = mpi or auto");
        DURE_FAIL(DURE_ERR_ARG,
                  "parallel.backend = nccl with run.device = cpu: NCCL exchanges GPU memory; "
                  "use parallel.backend = mpi or auto, or run.device = cuda");
    }
    cc.algo = algos[s->parallel.algo];
    cc.algo_table = s->parallel.algo_table;
    cc.deterministic = s->run.deterministic;
    cc.watchdog_s = s->parallel.watchdog_s;
    cc.on_hang = on_hang;
    cc.cuda_stream = model_cuda_stream(t->model);
    DURE_TRY(comm_create(world, &cc, &t->comm));

    const struct model_tensor *tens = model_tensors(t->model, &n_t);
    t->n_tensors = (int)n_t;
    t->tensor_off = malloc((n_t + 1) * sizeof *t->tensor_off);
    DURE_ALLOC_TRY(t->tensor_off, (n_t + 1) * sizeof *t->tensor_off);
    for (size_t i = 0; i < n_t; i++) {
        t->tensor_off[i] = tens[i].offset;
    }
    t->tensor_off[n_t] = t->n;
    bc.bucket_mb = s->parallel.bucket_mb;
    bc.mode = t->zero_stage == 0 ? COMM_BUCKET_ALLREDUCE : COMM_BUCKET_REDUCE_SCATTER;
    bc.redop = COMM_SUM; /* scaled by 1 / (A * R) in the optimizer step */
    bc.overlap = s->parallel.overlap;
    DURE_TRY(comm_bucketer_create(t->comm, model_grads(t->model), t->tensor_off,
                                  t->n_tensors, &bc, &t->bucketer));
out:
    return st;
}

static dure_status_t alloc_buffers(train_t *t)
{
    dure_status_t st = DURE_OK;
    size_t opt_len = optim_len(t->opt);
    t->slot = 2 * t->accum > t->accum + 2 ? 2 * t->accum : t->accum + 2;
    size_t ctl_bytes = (size_t)t->world_size * (size_t)t->slot * sizeof(double);
    t->ctl_host = calloc(1, ctl_bytes);
    DURE_ALLOC_TRY(t->ctl_host, ctl_bytes);
    DURE_TRY(comm_mem_alloc(t->comm, ctl_bytes, &t->ctl_comm));
    size_t stage = 2 * opt_len + (t->on_device ? t->n : 0);
    t->stage = malloc(stage * sizeof(float) + 1);
    DURE_ALLOC_TRY(t->stage, stage * sizeof(float));
    if (t->zero_stage == 2) {
        size_t bytes = t->shard.count * sizeof(float);
        if (t->on_device) {
            DURE_TRY(comm_mem_alloc(t->comm, bytes, (void **)&t->grad_acc));
        } else {
            t->grad_acc = malloc(bytes + 1);
            DURE_ALLOC_TRY(t->grad_acc, bytes);
        }
    }
out:
    return st;
}

static void report_setup(const train_t *t, const struct model_config *mc,
                         const char *peak_what, FILE *out)
{
    struct train_memory mem;
    char table[256] = "";
    train_memory(t, &mem);
    comm_algo_table_text(t->comm, table, sizeof table);
    model_print_summary(mc, out);
    fprintf(out,
            "run: %d rank(s), backend %s (algorithms %s), zero_stage %d, %d bucket(s), "
            "overlap %s\n"
            "run: global batch %d windows of %d timesteps = %d x %d micro-batches x %d "
            "ranks\n"
            "run: memory per rank: params %" PRIu64 " B, grads %" PRIu64 " B, grad shard "
            "%" PRIu64 " B, optimizer %" PRIu64 " B, checkpoint staging %" PRIu64 " B\n"
            "run: MFU peak per rank: %s\n",
            t->world_size, comm_backend_name(comm_backend(t->comm)), table, t->zero_stage,
            comm_bucketer_count(t->bucketer), t->spec->parallel.overlap ? "on" : "off",
            t->spec->optim.global_batch, t->window, t->micro, t->accum, t->world_size,
            mem.params, mem.grads, mem.grad_shard, mem.optimizer, mem.staging, peak_what);
    fflush(out);
}

dure_status_t train_create(const struct dure_jobspec *spec, const struct dure_ranks *ranks,
                           MPI_Comm world, comm_hang_fn on_hang, FILE *progress,
                           train_t **out)
{
    dure_status_t st = DURE_OK, local = DURE_OK;
    struct model_config mc;
    struct model_flops fl;
    struct optim_config oc;
    char peak_what[160] = "";
    int gpu = -1; /* the CUDA device of this rank; -1 on the CPU */
    train_t *t = calloc(1, sizeof *t);

    *out = NULL;
    DURE_ALLOC_TRY(t, sizeof *t);
    t->spec = spec;
    t->last_loss = NAN;
    t->world = world;
    t->rank = ranks->world_rank;
    t->world_size = ranks->world_size;
    t->zero_stage = spec->parallel.zero_stage;
    t->hook_err_tensor = -1;
    t->window = (spec->model.context_patches + 1) * spec->model.patch_len;
    t->micro = spec->optim.micro_batch;
    int per_step = t->micro * t->world_size;
    DURE_CHECK(spec->optim.global_batch % per_step == 0, DURE_ERR_ARG,
               "optim.global_batch = %d is not a multiple of optim.micro_batch (%d) x ranks "
               "(%d) = %d: the accumulation count must be a whole number",
               spec->optim.global_batch, t->micro, t->world_size, per_step);
    t->accum = spec->optim.global_batch / per_step;
    DURE_TRY(agree(world, read_fault_env(t), "DURE_FAULT_NAN"));

    int threads = pick_threads(spec, ranks);
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);

    int device_cuda = spec->run.device == JOBSPEC_DEVICE_CUDA ||
                      (spec->run.device == JOBSPEC_DEVICE_AUTO && dure_gpu_available());
    t->on_device = device_cuda;

    DURE_TRY(open_loader(t, world, 0, &t->train_ld));
    t->channels = dataio_loader_channels(t->train_ld);
    t->micro_elems = (size_t)t->micro * (size_t)t->window * (size_t)t->channels;
    if (spec->run.val_every > 0 && spec->run.val_batches > 0) {
        DURE_TRY(open_loader(t, world, 1, &t->val_ld));
        const struct dataio_dataset_info *vi = dataio_loader_info(t->val_ld);
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
        int64_t avail = dataio_loader_batches_per_epoch(t->val_ld);
        t->val_batches = spec->run.val_batches;
        if (avail < t->val_batches) {
            if (t->rank == 0) {
                dure_log_warn(__FILE__, __LINE__,
                              "the validation split holds %" PRId64 " global batch(es) of %d "
                              "windows, fewer than run.val_batches = %d: using %" PRId64,
                              avail, spec->optim.global_batch, t->val_batches, avail);
            }
            t->val_batches = (int)avail;
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
    mc.deterministic = spec->run.deterministic;
    mc.device = device_cuda ? MODEL_DEVICE_CUDA : MODEL_DEVICE_CPU;
    mc.seed = spec->run.seed;
    snprintf(t->model_desc, sizeof t->model_desc,
             "d_model=%d n_layers=%d n_heads=%d patch_len=%d context_patches=%d channels=%d",
             mc.d_model, mc.n_layers, mc.n_heads, mc.patch_len, mc.context_patches,
             mc.channels);

    local = check_memory(t, &mc, ranks);
    if (local == DURE_OK && device_cuda) {
        struct dure_ranks pick = *ranks;
        local = dure_ranks_pick_gpu(&pick);
        gpu = pick.gpu;
    }
    if (local == DURE_OK) {
        local = model_create(&mc, &t->model);
    }
    DURE_TRY(agree(world, local, "model setup"));
    t->n = model_param_count(t->model);
    t->shard = comm_shard_of(t->n, t->world_size, t->rank);

    local = setup_comm(t, world, on_hang);
    DURE_TRY(agree(world, local, "communicator setup"));

    oc.beta1 = (float)spec->optim.beta1;
    oc.beta2 = (float)spec->optim.beta2;
    oc.eps = (float)spec->optim.eps;
    oc.weight_decay = (float)spec->optim.weight_decay;
    size_t n_t = 0;
    const struct model_tensor *tens = model_tensors(t->model, &n_t);
    size_t off = t->zero_stage > 0 ? t->shard.offset : 0;
    size_t len = t->zero_stage > 0 ? t->shard.count : t->n;
    local = optim_create(&oc, tens, n_t, off, len, model_memory_kind(t->model), &t->opt);
    if (local == DURE_OK) {
        local = alloc_buffers(t);
    }
    if (local == DURE_OK) {
        local = jobspec_hash(spec, JOBSPEC_HASH_RESULT, &t->config_hash);
    }
    if (local == DURE_OK) {
        /* Every rank measures at once, as it will run: cores shared alike. */
        MPI_Barrier(world);
        local = dure_peak_flops(gpu, &t->peak_flops, peak_what, sizeof peak_what);
    }
    DURE_TRY(agree(world, local, "optimizer setup"));

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
    comm_bucketer_free(t->bucketer);
    if (t->comm) {
        comm_mem_free(t->comm, t->ctl_comm);
        if (t->on_device) {
            comm_mem_free(t->comm, t->grad_acc);
        } else {
            free(t->grad_acc);
        }
    }
    comm_destroy(t->comm);
    optim_destroy(t->opt);
    model_destroy(t->model);
    dataio_loader_close(t->val_ld);
    dataio_loader_close(t->train_ld);
    free(t->tensor_off);
    free(t->ctl_host);
    free(t->stage);
    free(t);
}

long train_steps_done(const train_t *t) { return t->step; }

void train_memory(const train_t *t, struct train_memory *mem)
{
    size_t opt_len = t->opt ? optim_len(t->opt) : 0;
    mem->params = (uint64_t)t->n * sizeof(float);
    mem->grads = (uint64_t)t->n * sizeof(float);
    mem->grad_shard = t->zero_stage == 2 ? (uint64_t)t->shard.count * sizeof(float) : 0;
    mem->optimizer = 2 * (uint64_t)opt_len * sizeof(float);
    mem->staging = (uint64_t)(2 * opt_len + (t->on_device ? t->n : 0)) * sizeof(float);
}

/* ---------------------------------------------------------------- control */

/*
 * All-gather `slot` doubles per rank (this rank's in ctl_host[rank*slot..])
 * through the communicator, so the exchange is watched by its watchdog.
 */
static dure_status_t control_exchange(train_t *t)
{
    dure_status_t st = DURE_OK;
    size_t per = (size_t)t->slot * 2; /* floats per rank */
    size_t total = per * (size_t)t->world_size;
    double *mine = t->ctl_host + (size_t)t->rank * (size_t)t->slot;
    float *dev = (float *)t->ctl_comm + per * (size_t)t->rank;
    DURE_TRY(comm_mem_upload(t->comm, dev, mine, per * sizeof(float)));
    DURE_TRY(comm_allgather(t->comm, dev, t->ctl_comm, total, COMM_F32));
    DURE_TRY(comm_mem_download(t->comm, t->ctl_host, t->ctl_comm, total * sizeof(float)));
out:
    return st;
}

/* ---------------------------------------------------------------- the step */

/* Add this rank's reduced shard of the model gradients into grad_acc
 * (first micro-batch: copy). */
static dure_status_t accumulate_shard(train_t *t, int first)
{
    dure_status_t st = DURE_OK;
    const float *g = model_grads(t->model) + t->shard.offset;
    size_t n = t->shard.count;
    if (t->on_device) {
        DURE_TRY(dure_accum_device(t->grad_acc, g, n, first, model_cuda_stream(t->model)));
    } else if (first) {
        memcpy(t->grad_acc, g, n * sizeof(float));
    } else {
        float *acc = t->grad_acc;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            acc[i] += g[i];
        }
    }
out:
    return st;
}

dure_status_t train_step(train_t *t, struct train_step_result *res)
{
    dure_status_t st = DURE_OK;
    const struct dure_jobspec *s = t->spec;
    struct dataio_batch b;
    struct dataio_loader_stats ls;
    double comm_s = 0, t0 = dure_now_s(), c0;
    int A = t->accum;
    long step = t->step + 1;

    memset(res, 0, sizeof *res);
    DURE_TRY(dataio_loader_next(t->train_ld, &b));
    DURE_CHECK(b.local_batch == A * t->micro && b.channels == t->channels,
               DURE_ERR_INTERNAL, "loader gave %d windows of %d channels, expected %d of %d",
               b.local_batch, b.channels, A * t->micro, t->channels);
    DURE_TRY(model_zero_grad(t->model));
    if (step == t->fault_nan_step && t->rank == t->fault_nan_rank) {
        b.data[0] = NAN;
    }

    double *mine = t->ctl_host + (size_t)t->rank * (size_t)t->slot;
    for (int j = 0; j < A; j++) {
        int last = j == A - 1;
        /* Stages 0/1 exchange once per step, overlapped with the last
         * backward; stage 2 with every backward. */
        int exchange = last || t->zero_stage == 2;
        float loss = 0;
        if (exchange && s->parallel.overlap) {
            model_set_grad_ready(t->model, on_grad_ready, t);
        }
        st = model_forward_backward(t->model, b.data + (size_t)j * t->micro_elems, &loss);
        model_set_grad_ready(t->model, NULL, NULL);
        DURE_TRY(st);
        mine[j] = loss;
        if (exchange) {
            c0 = dure_now_s();
            DURE_TRY(comm_bucketer_finish(t->bucketer));
            comm_s += dure_now_s() - c0;
        }
        if (t->zero_stage == 2) {
            DURE_TRY(accumulate_shard(t, j == 0));
            if (!last) {
                DURE_TRY(model_zero_grad(t->model));
            }
        }
    }

    /* Squared norm of this rank's part: the whole vector at stage 0 (every
     * rank holds the same reduced gradients), the shard at stages 1 and 2. */
    double sq = 0;
    const float *g = t->zero_stage == 2 ? t->grad_acc
                     : model_grads(t->model) + (t->zero_stage ? t->shard.offset : 0);
    DURE_TRY(optim_grad_sq_norm(t->opt, g, &sq));
    mine[A] = sq;
    mine[A + 1] = (double)dure_signals_pending();
    c0 = dure_now_s();
    DURE_TRY(control_exchange(t));
    comm_s += dure_now_s() - c0;

    /* Loss: mean over the global batch, in global micro-batch order. */
    double loss_sum = 0, sq_sum = 0;
    int bad_rank = -1, bad_micro = -1;
    for (int r = 0; r < t->world_size; r++) {
        const double *v = t->ctl_host + (size_t)r * (size_t)t->slot;
        for (int j = 0; j < A; j++) {
            if (!isfinite(v[j]) && bad_rank < 0) {
                bad_rank = r;
                bad_micro = j;
            }
            loss_sum += v[j];
        }
        sq_sum += t->zero_stage ? v[A] : (r == 0 ? v[A] : 0);
        if (v[A + 1] != 0) {
            res->stop_signal = (int)v[A + 1];
        }
    }
    double mean_scale = 1.0 / ((double)A * (double)t->world_size);
    double loss = loss_sum * mean_scale;
    double norm = sqrt(sq_sum) * mean_scale;
    float lr = optim_lr_at(&t->sched, (int)(step - 1));
    int nonfinite = bad_rank >= 0 || !isfinite(norm);

    if (nonfinite && s->run.on_nan == JOBSPEC_RUN_NAN_STOP) {
        if (bad_rank >= 0) {
            DURE_FAIL(DURE_ERR_NUMERIC,
                      "non-finite loss (%g) at step %ld on rank %d (micro-batch %d of %d): "
                      "stopping (run.on_nan = stop; skip drops such steps instead)",
                      t->ctl_host[(size_t)bad_rank * (size_t)t->slot + (size_t)bad_micro],
                      step, bad_rank, bad_micro, A);
        }
        DURE_FAIL(DURE_ERR_NUMERIC,
                  "non-finite gradient norm at step %ld (loss %g): stopping "
                  "(run.on_nan = stop; skip drops such steps instead)",
                  step, loss);
    }
    if (!nonfinite) {
        float scale = (float)mean_scale * optim_clip_scale(norm, (float)s->optim.grad_clip);
        float *p = model_params(t->model);
        size_t off = optim_offset(t->opt);
        const float *gu = t->zero_stage == 2 ? t->grad_acc : model_grads(t->model) + off;
        t->opt_step++;
        DURE_TRY(optim_adamw_update(t->opt, (int)t->opt_step, lr, scale, p + off, gu));
        if (t->zero_stage > 0) {
            c0 = dure_now_s();
            DURE_TRY(comm_allgather(t->comm, p + t->shard.offset, p, t->n, COMM_F32));
            comm_s += dure_now_s() - c0;
        }
        DURE_TRY(model_params_changed(t->model));
    } else if (t->rank == 0) {
        char where[32] = "";
        if (bad_rank >= 0) {
            snprintf(where, sizeof where, " on rank %d", bad_rank);
        }
        dure_log_warn(__FILE__, __LINE__,
                      "non-finite %s at step %ld%s: update skipped (run.on_nan = skip)",
                      bad_rank >= 0 ? "loss" : "gradient norm", step, where);
    }
    t->step = step;
    t->last_loss = loss;

    dataio_loader_stats(t->train_ld, &ls);
    struct dure_step_metrics *m = &res->metrics;
    m->step = step;
    m->loss = loss;
    m->grad_norm = norm;
    m->lr = lr;
    m->step_s = dure_now_s() - t0;
    m->timesteps_per_s = t->timesteps_per_step / m->step_s;
    m->mfu = t->peak_flops > 0
                 ? t->flops_per_step / m->step_s / (t->peak_flops * (double)t->world_size)
                 : 0;
    m->data_wait_s = ls.wait_s - t->wait_seen;
    t->wait_seen = ls.wait_s;
    m->comm_exposed_s = comm_s;
    m->skipped = nonfinite;
out:
    return st;
}

/* ---------------------------------------------------------------- validation */

dure_status_t train_validate(train_t *t, double *val_loss, double *baseline_loss)
{
    dure_status_t st = DURE_OK;
    const struct dataio_cursor start = {0, 0};
    const struct model_config *mc = model_get_config(t->model);
    double sum = 0, base_sum = 0;
    long count = 0;
    int A = t->accum;

    *val_loss = NAN;
    *baseline_loss = NAN;
    if (!t->val_ld || t->val_batches <= 0) {
        goto out;
    }
    DURE_TRY(dataio_loader_set_cursor(t->val_ld, &start));
    double *mine = t->ctl_host + (size_t)t->rank * (size_t)t->slot;
    for (int i = 0; i < t->val_batches; i++) {
        struct dataio_batch b;
        DURE_TRY(dataio_loader_next(t->val_ld, &b));
        for (int j = 0; j < A; j++) {
            const float *x = b.data + (size_t)j * t->micro_elems;
            float loss = 0;
            double base = 0;
            DURE_TRY(model_forward(t->model, x, &loss));
            mine[j] = loss;
            if (!t->have_baseline) {
                DURE_TRY(model_baseline_loss(mc, x, &base));
            }
            mine[A + j] = base;
        }
        DURE_TRY(control_exchange(t));
        for (int r = 0; r < t->world_size; r++) {
            const double *v = t->ctl_host + (size_t)r * (size_t)t->slot;
            for (int j = 0; j < A; j++) {
                sum += v[j];
                base_sum += v[A + j];
                count++;
            }
        }
    }
    if (!t->have_baseline) {
        t->baseline = base_sum / (double)count;
        t->have_baseline = 1;
    }
    *val_loss = sum / (double)count;
    *baseline_loss = t->baseline;
out:
    return st;
}

void train_comm_describe(const train_t *t, struct train_comm_desc *d)
{
    size_t bytes = t->n * sizeof(float);
    d->backend = comm_backend_name(comm_backend(t->comm));
    d->allreduce = comm_algo_name(comm_algo_for(t->comm, COMM_ALLREDUCE, bytes));
    d->reduce_scatter = comm_algo_name(comm_algo_for(t->comm, COMM_REDUCE_SCATTER, bytes));
    d->allgather = comm_algo_name(comm_algo_for(t->comm, COMM_ALLGATHER, bytes));
    comm_algo_table_text(t->comm, d->algo_table, sizeof d->algo_table);
}
