/*
 * jobs/jobspec_keys.c - the key table and the conversion of one value.
 *
 * Every key of the job spec is one line in keys[] below; the parser, --set,
 * validation, the dumps and `dure help jobspec` all read this table.
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "collectives/comm.h"
#include "jobs/jobspec_priv.h"

_Static_assert(sizeof(enum jobspec_device) == sizeof(int), "enum fields are int-sized");
_Static_assert(sizeof(enum jobspec_layout) == sizeof(int), "enum fields are int-sized");

/* ------------------------------------------------------------ checks */

static dure_status_t check_nonempty(const struct jobspec_key *key, const char *value,
                                    const char *where)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(value[0] != '\0', DURE_ERR_ARG, "%s: %s.%s must not be empty", where,
               key->section, key->name);
out:
    return st;
}

/* Characters outside `allowed` (plus alphanumerics) are refused. */
static dure_status_t check_charset(const struct jobspec_key *key, const char *value,
                                   const char *where, const char *allowed,
                                   const char *what)
{
    dure_status_t st = DURE_OK;
    for (const char *p = value; *p; p++) {
        DURE_CHECK(isalnum((unsigned char)*p) || strchr(allowed, *p), DURE_ERR_ARG,
                   "%s: %s.%s = '%s': character '%c' not allowed in %s "
                   "(letters, digits and '%s')",
                   where, key->section, key->name, value, *p, what, allowed);
    }
out:
    return st;
}

static dure_status_t check_slurm_name(const struct jobspec_key *key, const char *value,
                                      const char *where)
{
    return check_charset(key, value, where, "._-", "a Slurm name");
}

static dure_status_t check_job_name(const struct jobspec_key *key, const char *value,
                                    const char *where)
{
    return check_charset(key, value, where, "._+-", "a job name");
}

static dure_status_t check_constraint(const struct jobspec_key *key, const char *value,
                                      const char *where)
{
    return check_charset(key, value, where, "._-&|*[]():,", "a Slurm constraint");
}

static dure_status_t check_hostlist(const struct jobspec_key *key, const char *value,
                                    const char *where)
{
    return check_charset(key, value, where, "._-,[]", "a Slurm host list");
}

static dure_status_t check_profile(const struct jobspec_key *key, const char *value,
                                   const char *where)
{
    return check_charset(key, value, where, "._-", "a profile name");
}

dure_status_t jobspec_slurm_time_parse(const char *text, long *seconds)
{
    long f[4] = {0, 0, 0, 0};
    int nf = 0, days = 0;
    const char *p = text;

    if (strcasecmp(text, "UNLIMITED") == 0 || strcasecmp(text, "INFINITE") == 0) {
        *seconds = -1;
        return DURE_OK;
    }
    for (;;) {
        if (!isdigit((unsigned char)*p) || nf == 4) {
            return DURE_ERR_ARG;
        }
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || v > 100000000L) {
            return DURE_ERR_ARG;
        }
        f[nf++] = v;
        p = end;
        if (*p == '-' && nf == 1 && !days) {
            days = 1;
        } else if (*p != ':') {
            break;
        }
        p++;
    }
    if (*p != '\0') {
        return DURE_ERR_ARG;
    }
    long s;
    if (days) { /* D-H, D-H:M, D-H:M:S */
        if (nf < 2) {
            return DURE_ERR_ARG;
        }
        s = f[0] * 86400 + f[1] * 3600 + f[2] * 60 + f[3];
    } else if (nf == 1) { /* M */
        s = f[0] * 60;
    } else if (nf == 2) { /* M:S */
        s = f[0] * 60 + f[1];
    } else if (nf == 3) { /* H:M:S */
        s = f[0] * 3600 + f[1] * 60 + f[2];
    } else {
        return DURE_ERR_ARG;
    }
    *seconds = s;
    return DURE_OK;
}

static dure_status_t check_slurm_time(const struct jobspec_key *key, const char *value,
                                      const char *where)
{
    dure_status_t st = DURE_OK;
    long s = 0;
    DURE_CHECK(jobspec_slurm_time_parse(value, &s) == DURE_OK && s != 0, DURE_ERR_ARG,
               "%s: %s.%s = '%s': expected a Slurm time limit: MM, MM:SS, HH:MM:SS, "
               "D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED",
               where, key->section, key->name, value);
out:
    return st;
}

/* "0:native,1M:shm,32M:ring": read by the parser `dure run` uses, so a spec
 * it would refuse after the job started is refused here; "" = built-in. */
static dure_status_t check_algo_table(const struct jobspec_key *key, const char *value,
                                      const char *where)
{
    dure_status_t st = DURE_OK;
    struct comm_algo_table t;

    if (value[0] == '\0') {
        goto out;
    }
    if (comm_algo_table_parse(value, &t) != DURE_OK) {
        DURE_FAIL(DURE_ERR_ARG, "%s: %s.%s = '%s': %s", where, key->section, key->name,
                  value, dure_last_error());
    }
out:
    return st;
}

/* ------------------------------------------------------------ the table */

static const char *const v_run_on_nan[] = {"stop", "skip", NULL};
static const char *const v_device[] = {"auto", "cpu", "cuda", NULL};
static const char *const v_loss[] = {"mse", "huber", NULL};
static const char *const v_layout[] = {"auto", "dure", "robomimic", "episode-files", NULL};
static const char *const a_layout[] = {"aloha", "episode-files", NULL};
static const char *const v_data_on_nan[] = {"refuse", "skip", NULL};
static const char *const v_io[] = {"auto", "serial", "mpiio", NULL};
static const char *const v_backend[] = {"auto", "nccl", "mpi", NULL};
static const char *const v_algo[] = {"auto", "native", "ring", "shm", "hier", NULL};
const char *const jobspec_comm_thread_names[] = {"auto", "on", "off", NULL};

#define OFF(sec, nm) offsetof(struct dure_jobspec, sec.nm)
#define BIG 1e9
#define R JOBSPEC_F_RESULT
#define L JOBSPEC_F_LAYOUT

#define K_INT(sec, nm, lo, hi, dflt, fl, hlp)                                 \
    {.section = #sec, .name = #nm, .type = JOBSPEC_INT, .flags = (fl),          \
     .min = (lo), .max = (hi), .def = (dflt), .offset = OFF(sec, nm), .help = (hlp)}
#define K_U64(sec, nm, dflt, fl, hlp)                                           \
    {.section = #sec, .name = #nm, .type = JOBSPEC_UINT64, .flags = (fl),       \
     .def = (dflt), .offset = OFF(sec, nm), .help = (hlp)}
#define K_FLOAT(sec, nm, lo, hi, dflt, fl, hlp)                               \
    {.section = #sec, .name = #nm, .type = JOBSPEC_FLOAT, .flags = (fl),        \
     .min = (lo), .max = (hi), .def = (dflt), .offset = OFF(sec, nm), .help = (hlp)}
#define K_BOOL(sec, nm, dflt, fl, hlp)                                          \
    {.section = #sec, .name = #nm, .type = JOBSPEC_BOOL, .flags = (fl),         \
     .def = (dflt), .offset = OFF(sec, nm), .help = (hlp)}
#define K_STR(sec, nm, dflt, fl, chk, hlp)                                      \
    {.section = #sec, .name = #nm, .type = JOBSPEC_STRING, .flags = (fl),       \
     .def = (dflt), .offset = OFF(sec, nm), .check = (chk), .help = (hlp)}
#define K_ENUM(sec, nm, vals, dflt, fl, hlp)                                    \
    {.section = #sec, .name = #nm, .type = JOBSPEC_ENUM, .flags = (fl),         \
     .def = (dflt), .values = (vals), .offset = OFF(sec, nm), .help = (hlp)}
#define K_ENUM_A(sec, nm, vals, alias, dflt, fl, hlp)                          \
    {.section = #sec, .name = #nm, .type = JOBSPEC_ENUM, .flags = (fl),         \
     .def = (dflt), .values = (vals), .aliases = (alias), .offset = OFF(sec, nm), \
     .help = (hlp)}
/* Keys of a [data.NAME] section: offsets into struct jobspec_dataset. */
#define DOFF(nm) offsetof(struct jobspec_dataset, nm)
#define DS_SECTION "data.NAME"
#define KD(nm, ty, fl, dflt, ...)                                               \
    {.section = DS_SECTION, .name = #nm, .type = (ty), .flags = (fl), .def = (dflt), \
     .offset = DOFF(nm), __VA_ARGS__}
#define K_LIST(sec, nm, dflt, fl, hlp)                                          \
    {.section = #sec, .name = #nm, .type = JOBSPEC_LIST, .flags = (fl),         \
     .def = (dflt), .offset = OFF(sec, nm), .help = (hlp)}

static const struct jobspec_key keys[] = {
    /* [run] */
    K_STR(run, name, "dure", 0, check_nonempty,
          "name of the run; names the run directory and the Slurm job"),
    K_STR(run, dir, "", JOBSPEC_F_PATH, NULL,
          "run directory (metrics, checkpoints, logs); default runs/<run.name>, "
          "relative to where dure is started"),
    K_INT(run, steps, 1, BIG, "300", R, "optimizer steps in total"),
    K_U64(run, seed, "1234", R, "seed of parameter initialization and of the data order"),
    K_BOOL(run, deterministic, "false", R | L,
           "fixed reduction order: bitwise-reproducible results at one world size"),
    K_BOOL(run, exact, "false", R,
           "exact mode: bitwise-identical results on every world size that divides "
           "optim.global_batch / optim.micro_batch, at any zero_stage (0-3), prefetch, "
           "bucket_mb and overlap, and across a resume on another world size (sums in a "
           "fixed tree over the micro-batches; implies deterministic kernels); costs up "
           "to log2(micro-batches per rank) extra gradient vectors, and at zero_stage "
           "2-3 the whole gradient vector (counted by dure plan)"),
    K_INT(run, log_every, 1, BIG, "10", 0, "steps between progress lines"),
    K_INT(run, val_every, 0, BIG, "50", R, "steps between validations; 0 = never"),
    K_INT(run, val_batches, 1, 1e6, "4", R, "batches per validation"),
    K_ENUM(run, on_nan, v_run_on_nan, "stop", R,
           "a NaN or Inf loss: stop the run, or skip the step"),
    K_ENUM(run, device, v_device, "auto", R, "auto: cuda when a GPU is visible, else cpu"),
    K_INT(run, threads, 0, 4096, "0", 0, "CPU threads per rank; 0 = the cores Slurm or "
                                         "mpirun gives the rank"),
    K_BOOL(run, elastic, "false", 0,
           "after a node failure, restart on what is left (at least slurm.min_nodes), "
           "resharding the last checkpoint and raising gradient accumulation to keep "
           "optim.global_batch"),
    /* [model] */
    K_INT(model, d_model, 1, 65536, "128", R, "width of the transformer"),
    K_INT(model, n_layers, 1, 1024, "4", R, "transformer blocks"),
    K_INT(model, n_heads, 1, 1024, "4", R, "attention heads; must divide d_model"),
    K_INT(model, patch_len, 1, 65536, "16", R, "timesteps per token (patch)"),
    K_INT(model, context_patches, 1, 1048576, "16", R,
          "patches of context; a training window is (context_patches + 1) * "
          "patch_len timesteps"),
    K_INT(model, channels, 0, 65536, "0", R, "input channels; 0 = from the data"),
    K_ENUM(model, loss, v_loss, "mse", R, "loss on normalized values"),
    K_FLOAT(model, huber_delta, 0, 1e30, "1", R | JOBSPEC_F_MIN_EXCL,
            "Huber loss threshold (loss = huber)"),
    K_FLOAT(model, init_std, 0, 10, "0.02", R | JOBSPEC_F_MIN_EXCL,
            "standard deviation of the initial weights"),
    /* [data] */
    K_STR(data, path, NULL, R | JOBSPEC_F_REQUIRED | JOBSPEC_F_PATH, check_nonempty,
          "the dataset: an HDF5 file (a glob of files for layout = episode-files); a "
          "mixture names its datasets in [data.NAME] sections instead"),
    K_ENUM_A(data, layout, v_layout, a_layout, "auto", R,
             "auto: from the file; dure: dure's format; robomimic: data/demo_N/obs/<key>; "
             "episode-files (alias aloha): one file per episode"),
    K_LIST(data, keys, "", R,
           "comma list of datasets to use as channels, concatenated in order "
           "(robomimic, episode-files)"),
    K_STR(data, val_path, "", R | JOBSPEC_F_PATH, NULL,
          "validation dataset; empty = the file's validation split"),
    K_FLOAT(data, val_fraction, 0, 1, "0.1", R | JOBSPEC_F_MAX_EXCL,
            "share of episodes held out for validation where the data define no split "
            "and val_path is empty (by episode; the same for every seed and world size)"),
    K_FLOAT(data, balance_alpha, 0, 1, "0", R,
            "mixture: dataset d gives windows in proportion to weight_d x windows_d^alpha "
            "(0: the weights as given; 1: in proportion to size too)"),
    K_FLOAT(data, sample_rate_hz, 0, 1e9, "0", R,
            "the run's sample rate; 0 = the first dataset's; a dataset at another rate "
            "is refused (resample it first)"),
    K_INT(data, prefetch, 1, 1024, "4", 0, "batches read ahead by the loader"),
    K_BOOL(data, normalize, "true", R, "per-channel normalization from the file's stats"),
    K_ENUM(data, on_nan, v_data_on_nan, "refuse", R,
           "NaN or Inf in the data: refuse the file, or skip those windows"),
    K_ENUM(data, io, v_io, "auto", 0,
           "HDF5 reads: serial per rank or MPI-IO; auto = the measured default"),
    K_BOOL(data, shuffle, "true", R, "global shuffle of windows each epoch"),
    /* [optim] */
    K_FLOAT(optim, lr, 0, 10, "3e-4", R, "peak learning rate (after warm-up)"),
    K_FLOAT(optim, min_lr, 0, 10, "3e-5", R, "learning rate at the end of the cosine decay"),
    K_INT(optim, warmup_steps, 0, BIG, "20", R, "steps of linear warm-up"),
    K_FLOAT(optim, weight_decay, 0, 10, "0.1", R, "AdamW decoupled weight decay"),
    K_FLOAT(optim, beta1, 0, 1, "0.9", R | JOBSPEC_F_MAX_EXCL, "AdamW beta1"),
    K_FLOAT(optim, beta2, 0, 1, "0.95", R | JOBSPEC_F_MAX_EXCL, "AdamW beta2"),
    K_FLOAT(optim, eps, 0, 1, "1e-8", R | JOBSPEC_F_MIN_EXCL, "AdamW epsilon"),
    K_FLOAT(optim, grad_clip, 0, 1e30, "1", R, "global gradient-norm clip; 0 = off"),
    K_INT(optim, global_batch, 1, 1073741824, "32", R,
          "windows per optimizer step, all ranks together"),
    K_INT(optim, micro_batch, 1, 1073741824, "8", R,
          "windows per rank per forward/backward; global_batch / (micro_batch * "
          "ranks) accumulation steps, exactly"),
    /* [parallel] */
    K_ENUM(parallel, backend, v_backend, "auto", R,
           "gradient exchange: auto = nccl with a GPU and NCCL, else mpi"),
    K_INT(parallel, zero_stage, 0, 3, "0", R | L,
          "0: all-reduce; 1: optimizer state sharded; 2: gradients sharded too; 3: "
          "parameters sharded too, gathered one unit (layer) at a time"),
    K_INT(parallel, prefetch, 0, 64, "1", 0,
          "zero_stage 3: units whose all-gather runs ahead of the compute"),
    K_BOOL(parallel, reshard_after_forward, "true", 0,
           "zero_stage 3: free a unit's gathered parameters after its forward and "
           "gather them again for backward; false keeps them (memory of the whole "
           "model in the compute dtype)"),
    K_FLOAT(parallel, bucket_mb, 0, 65536, "0", R | L,
            "gradient bucket size in MiB; 0 = the measured default"),
    K_ENUM(parallel, algo, v_algo, "auto", R | L,
           "MPI all-reduce algorithm; auto = per size from algo_table; hier = shm within "
           "each node, a rail between nodes"),
    K_STR(parallel, algo_table, "", R | L, check_algo_table,
          "per-size algorithms, e.g. '0:native,1M:shm,32M:ring'; empty = built-in"),
    K_INT(parallel, ring_segment_kib, 0, 65536, "0", 0,
          "KiB the ring (and hier's rail between nodes) moves per message; 0 = "
          "$DURE_RING_SEGMENT_KIB, else 256; 1024 suits a fast TCP fabric whose CPUs "
          "carry both directions. Never changes a result"),
    K_BOOL(parallel, overlap, "true", 0, "overlap gradient exchange with backward"),
    K_ENUM(parallel, comm_thread, jobspec_comm_thread_names, "auto", 0,
           "mpi: on = a communication thread runs the asynchronous collectives; off = "
           "the rank's own waits run them (no overlap, no hand-offs); auto = off on one "
           "node whose cores all compute, else on"),
    K_FLOAT(parallel, watchdog_s, 0, 1e7, "600", JOBSPEC_F_MIN_EXCL,
            "seconds a collective may hang before the job is aborted"),
    K_INT(parallel, straggler_every, 0, BIG, "50", 0,
          "steps between straggler checks (each rank's compute and wait time "
          "gathered); 0 = off"),
    K_FLOAT(parallel, straggler_slowdown, 0, 100, "0.2", JOBSPEC_F_MIN_EXCL,
            "a rank whose compute time per step exceeds the median's by more than this "
            "fraction, two checks in a row, is reported as a straggler"),
    /* [checkpoint] */
    K_INT(checkpoint, every, 0, BIG, "100", 0,
          "steps between checkpoints; 0 = only at the end and on USR2/TERM"),
    K_INT(checkpoint, keep, 1, 1e6, "3", 0, "newest checkpoints kept"),
    K_STR(checkpoint, dir, "", JOBSPEC_F_PATH, NULL,
          "checkpoint directory; default <run.dir>/checkpoints"),
    K_BOOL(checkpoint, async, "true", 0,
           "periodic checkpoints: copy the state and write it on a helper thread while "
           "training goes on (the last one and a signal's are written at once)"),
    /* [slurm] */
    K_STR(slurm, job_name, "", 0, check_job_name,
          "Slurm job name; default run.name with other characters than letters, "
          "digits and ._- replaced by _"),
    K_INT(slurm, nodes, 1, 1e6, "1", 0, "nodes"),
    K_INT(slurm, min_nodes, 0, 1e6, "0", 0,
          "with run.elastic: the fewest nodes the job may run on after a failure; "
          "0 = slurm.nodes (not elastic)"),
    K_INT(slurm, gpus_per_node, 0, 64, "0", 0, "GPUs per node; 0 = a CPU job"),
    K_STR(slurm, gpu_type, "", 0, check_slurm_name,
          "h100, h200, a100 or b200: dure submit refuses a job whose plan does not fit "
          "that GPU's memory; empty = not checked"),
    K_INT(slurm, ntasks_per_node, 0, 4096, "0", 0,
          "ranks per node; 0 = gpus_per_node (one rank per GPU), or 1 on a CPU job"),
    K_INT(slurm, cpus_per_task, 1, 4096, "1", 0,
          "CPU cores per rank (also exported as SRUN_CPUS_PER_TASK)"),
    K_STR(slurm, time, "00:30:00", 0, check_slurm_time,
          "time limit: MM, HH:MM:SS, D-HH:MM:SS or UNLIMITED"),
    K_STR(slurm, partition, "", 0, check_slurm_name, "partition; empty = the cluster's default"),
    K_STR(slurm, account, "", 0, check_slurm_name, "account to charge; empty = your default"),
    K_STR(slurm, qos, "", 0, check_slurm_name, "quality of service; empty = the default"),
    K_STR(slurm, constraint, "", 0, check_constraint, "node features, e.g. 'h100&ib'"),
    K_STR(slurm, exclude, "", 0, check_hostlist, "nodes not to use, e.g. 'gpu[01-03]'"),
    K_INT(slurm, signal_lead_s, 0, 65535, "120", 0,
          "USR2 this many seconds before the time limit: the run checkpoints and "
          "requeues"),
    K_BOOL(slurm, requeue, "true", 0,
           "requeue after preemption or the time-limit signal (exit 75)"),
    K_INT(slurm, max_restarts, 0, 1000, "3", 0,
          "requeue only while SLURM_RESTART_COUNT is below this"),
    K_STR(slurm, profile, "", 0, check_profile,
          "site environment profile (NCCL/UCX variables) from slurm/profiles.ini "
          "or $DURE_PROFILES; empty = none"),
    /* [data.NAME]: one dataset of a mixture (jobspec_dataset_keys) */
    KD(path, JOBSPEC_STRING, R | JOBSPEC_F_REQUIRED | JOBSPEC_F_PATH, NULL,
       .check = check_nonempty,
       .help = "the dataset: an HDF5 file (a glob of files for layout = episode-files)"),
    KD(layout, JOBSPEC_ENUM, R, "auto", .values = v_layout, .aliases = a_layout,
       .help = "as data.layout: auto, dure, robomimic, episode-files (alias aloha)"),
    KD(keys, JOBSPEC_LIST, R, "",
       .help = "channels (robomimic, episode-files), as data.keys"),
    KD(weight, JOBSPEC_FLOAT, R | JOBSPEC_F_MIN_EXCL, "1", .min = 0, .max = 1e6,
       .help = "its share of the training windows, before balancing (data.balance_alpha)"),
    KD(val_path, JOBSPEC_STRING, R | JOBSPEC_F_PATH, "",
       .help = "its validation data; empty = its own split (or data.val_fraction)"),
};

#define NALL (sizeof keys / sizeof keys[0])
#define NDATASET 5 /* the KD lines above, last in keys[] */
#define NKEYS (NALL - NDATASET)

static const char *const sections[] = {"run",  "model", "data", "optim",
                                       "parallel", "checkpoint", "slurm", DS_SECTION,
                                       "env", "sweep", NULL};

const struct jobspec_key *jobspec_dataset_keys(size_t *count)
{
    *count = NDATASET;
    return keys + NKEYS;
}

const struct jobspec_key *jobspec_keys(size_t *count)
{
    *count = NKEYS;
    return keys;
}

const char *const *jobspec_sections(void) { return sections; }

const struct jobspec_key *jobspec_key_find(const char *section, const char *name)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0) {
            return &keys[i];
        }
    }
    return NULL;
}

size_t jobspec_key_index(const struct jobspec_key *key) { return (size_t)(key - keys); }

void *jobspec_field(struct dure_jobspec *spec, const struct jobspec_key *key)
{
    return (char *)spec + key->offset;
}

const void *jobspec_field_const(const struct dure_jobspec *spec,
                                const struct jobspec_key *key)
{
    return (const char *)spec + key->offset;
}

void jobspec_key_fullname(const struct jobspec_key *key, char *buf, size_t size)
{
    snprintf(buf, size, "%s.%s", key->section, key->name);
}

/* ------------------------------------------------------------ suggestions */

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[64];
    if (lb >= 64 || la >= 64) {
        return (size_t)-1;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (up + 1 < best) {
                best = up + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *jobspec_suggest(const char *name, const char *const *names)
{
    const char *best = NULL;
    size_t best_d = 3; /* at most two edits away */
    for (const char *const *n = names; *n; n++) {
        size_t d = edit_distance(name, *n);
        if (d < best_d) {
            best_d = d;
            best = *n;
        }
    }
    return best;
}

/* ------------------------------------------------------------ values */

dure_status_t jobspec_text_check(const char *what, const char *text, const char *where)
{
    dure_status_t st = DURE_OK;
    size_t n = strlen(text);
    for (const char *p = text; *p; p++) {
        unsigned char c = (unsigned char)*p;
        DURE_CHECK(c >= 0x20 && c != 0x7f, DURE_ERR_ARG,
                   "%s: %s: control character 0x%02x (%s) in the value: not allowed",
                   where, what, c, c == '\n' ? "newline" : c == '\t' ? "tab" : "control");
        /* The dump writes "key = value": a ';' first follows its blank. */
        DURE_CHECK(!(c == ';' && (p == text || p[-1] == ' ')), DURE_ERR_ARG,
                   "%s: %s: %s would start a comment in an INI file: not allowed in a "
                   "value",
                   where, what, p == text ? "';' first" : "' ;'");
    }
    DURE_CHECK(n == 0 || (text[0] != ' ' && text[n - 1] != ' '), DURE_ERR_ARG,
               "%s: %s: leading or trailing blanks would be lost in an INI file", where,
               what);
out:
    return st;
}

static void describe_bounds(const struct jobspec_key *key, char *buf, size_t size)
{
    if (key->type == JOBSPEC_INT) {
        snprintf(buf, size, "[%.0f, %.0f]", key->min, key->max);
    } else {
        snprintf(buf, size, "%c%g, %g%c", (key->flags & JOBSPEC_F_MIN_EXCL) ? '(' : '[',
                 key->min, key->max, (key->flags & JOBSPEC_F_MAX_EXCL) ? ')' : ']');
    }
}

static int in_bounds(const struct jobspec_key *key, double v)
{
    int lo = (key->flags & JOBSPEC_F_MIN_EXCL) ? v > key->min : v >= key->min;
    int hi = (key->flags & JOBSPEC_F_MAX_EXCL) ? v < key->max : v <= key->max;
    return lo && hi;
}

void jobspec_list_release(struct jobspec_list *l)
{
    for (size_t i = 0; i < l->count; i++) {
        free(l->items[i]);
    }
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* Split on commas, trimming blanks around items. Empty text = empty list. */
dure_status_t jobspec_list_parse(const char *text, const char *where, const char *what,
                                 struct jobspec_list *out)
{
    dure_status_t st = DURE_OK;
    struct jobspec_list l = {NULL, 0};
    size_t n = 1;

    if (text[0] != '\0') {
        for (const char *p = text; *p; p++) {
            n += *p == ',';
        }
        l.items = calloc(n, sizeof *l.items);
        DURE_ALLOC_TRY(l.items, n * sizeof *l.items);
        const char *p = text;
        for (size_t i = 0; i < n; i++) {
            size_t len = strcspn(p, ",");
            const char *b = p, *e = p + len;
            while (b < e && *b == ' ') {
                b++;
            }
            while (e > b && e[-1] == ' ') {
                e--;
            }
            DURE_CHECK(e > b, DURE_ERR_ARG, "%s: %s = '%s': item %zu of the list is empty",
                       where, what, text, i + 1);
            l.items[i] = strndup(b, (size_t)(e - b));
            DURE_ALLOC_TRY(l.items[i], (size_t)(e - b) + 1);
            l.count = i + 1;
            p += len + (p[len] == ',');
        }
    }
    *out = l;
    l.items = NULL;
    l.count = 0;
out:
    jobspec_list_release(&l);
    return st;
}

dure_status_t jobspec_value_parse(const struct jobspec_key *key, const char *text,
                                  const char *where, void *field)
{
    dure_status_t st = DURE_OK;
    char what[96], bounds[64];
    char *end = NULL;
    char *s = NULL;
    struct jobspec_list l = {NULL, 0};

    snprintf(what, sizeof what, "%s.%s", key->section, key->name);
    DURE_TRY(jobspec_text_check(what, text, where));
    switch (key->type) {
    case JOBSPEC_INT: {
        describe_bounds(key, bounds, sizeof bounds);
        errno = 0;
        long long v = strtoll(text, &end, 10);
        DURE_CHECK(end != text && *end == '\0', DURE_ERR_ARG,
                   "%s: %s = '%s': expected an integer in %s", where, what, text, bounds);
        DURE_CHECK(errno != ERANGE && in_bounds(key, (double)v), DURE_ERR_ARG,
                   "%s: %s = '%s': out of bounds %s", where, what, text, bounds);
        *(int *)field = (int)v;
        break;
    }
    case JOBSPEC_UINT64: {
        int hex = text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
        errno = 0;
        unsigned long long v = strtoull(text, &end, hex ? 16 : 10);
        DURE_CHECK(isdigit((unsigned char)text[0]) && end != text + (hex ? 2 : 0) &&
                       *end == '\0' && errno != ERANGE,
                   DURE_ERR_ARG,
                   "%s: %s = '%s': expected an unsigned 64-bit integer (decimal or 0x hex)",
                   where, what, text);
        *(uint64_t *)field = (uint64_t)v;
        break;
    }
    case JOBSPEC_FLOAT: {
        describe_bounds(key, bounds, sizeof bounds);
        errno = 0;
        double v = strtod(text, &end);
        DURE_CHECK(end != text && *end == '\0' && isfinite(v), DURE_ERR_ARG,
                   "%s: %s = '%s': expected a number in %s", where, what, text, bounds);
        DURE_CHECK(in_bounds(key, v), DURE_ERR_ARG, "%s: %s = '%s': out of bounds %s",
                   where, what, text, bounds);
        *(double *)field = v;
        break;
    }
    case JOBSPEC_BOOL: {
        static const char *const yes[] = {"true", "yes", "on", "1", NULL};
        static const char *const no[] = {"false", "no", "off", "0", NULL};
        int v = -1;
        for (int i = 0; yes[i]; i++) {
            if (strcasecmp(text, yes[i]) == 0) {
                v = 1;
            } else if (strcasecmp(text, no[i]) == 0) {
                v = 0;
            }
        }
        DURE_CHECK(v >= 0, DURE_ERR_ARG,
                   "%s: %s = '%s': allowed values: true, false (or yes/no, on/off, 1/0)",
                   where, what, text);
        *(bool *)field = v == 1;
        break;
    }
    case JOBSPEC_ENUM: {
        int v = -1;
        const char *name = text;
        for (int i = 0; key->aliases && key->aliases[i]; i += 2) {
            if (strcasecmp(text, key->aliases[i]) == 0) {
                name = key->aliases[i + 1];
            }
        }
        for (int i = 0; key->values[i]; i++) {
            if (strcasecmp(name, key->values[i]) == 0) {
                v = i;
            }
        }
        if (v < 0) {
            char allowed[256] = "";
            for (int i = 0; key->values[i]; i++) {
                size_t n = strlen(allowed);
                snprintf(allowed + n, sizeof allowed - n, "%s%s", i ? ", " : "",
                         key->values[i]);
            }
            DURE_FAIL(DURE_ERR_ARG, "%s: %s = '%s': allowed values: %s", where, what, text,
                      allowed);
        }
        *(int *)field = v;
        break;
    }
    case JOBSPEC_STRING:
        if (key->check) {
            DURE_TRY(key->check(key, text, where));
        }
        s = strdup(text);
        DURE_ALLOC_TRY(s, strlen(text) + 1);
        free(*(char **)field);
        *(char **)field = s;
        s = NULL;
        break;
    case JOBSPEC_LIST:
        DURE_TRY(jobspec_list_parse(text, where, what, &l));
        jobspec_list_release((struct jobspec_list *)field);
        *(struct jobspec_list *)field = l;
        l.items = NULL;
        l.count = 0;
        break;
    }
out:
    free(s);
    jobspec_list_release(&l);
    return st;
}

void jobspec_value_release(const struct jobspec_key *key, void *field)
{
    if (key->type == JOBSPEC_STRING) {
        free(*(char **)field);
        *(char **)field = NULL;
    } else if (key->type == JOBSPEC_LIST) {
        jobspec_list_release((struct jobspec_list *)field);
    }
}

dure_status_t jobspec_value_copy(const struct jobspec_key *key, const void *src,
                                 void *dst)
{
    dure_status_t st = DURE_OK;
    switch (key->type) {
    case JOBSPEC_INT:
    case JOBSPEC_ENUM:
        *(int *)dst = *(const int *)src;
        break;
    case JOBSPEC_UINT64:
        *(uint64_t *)dst = *(const uint64_t *)src;
        break;
    case JOBSPEC_FLOAT:
        *(double *)dst = *(const double *)src;
        break;
    case JOBSPEC_BOOL:
        *(bool *)dst = *(const bool *)src;
        break;
    case JOBSPEC_STRING: {
        const char *s = *(char *const *)src;
        if (s) {
            char *d = strdup(s);
            DURE_ALLOC_TRY(d, strlen(s) + 1);
            *(char **)dst = d;
        }
        break;
    }
    case JOBSPEC_LIST: {
        const struct jobspec_list *sl = src;
        struct jobspec_list *dl = dst;
        if (sl->count) {
            dl->items = calloc(sl->count, sizeof *dl->items);
            DURE_ALLOC_TRY(dl->items, sl->count * sizeof *dl->items);
            for (size_t i = 0; i < sl->count; i++) {
                dl->items[i] = strdup(sl->items[i]);
                DURE_ALLOC_TRY(dl->items[i], strlen(sl->items[i]) + 1);
                dl->count = i + 1;
            }
        }
        break;
    }
    }
out:
    if (st != DURE_OK) {
        jobspec_value_release(key, dst);
    }
    return st;
}

/* The shortest %g form that reads back as exactly the same double. */
static void append_double(struct strbuf *sb, double v)
{
    char buf[40];
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, sizeof buf, "%.0f", v); /* 600, not 6e+02 */
        strbuf_puts(sb, buf);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) {
            break;
        }
    }
    strbuf_puts(sb, buf);
}

void jobspec_value_append(struct strbuf *sb, const struct jobspec_key *key,
                          const void *field)
{
    switch (key->type) {
    case JOBSPEC_INT:
        strbuf_printf(sb, "%d", *(const int *)field);
        break;
    case JOBSPEC_UINT64:
        strbuf_printf(sb, "%" PRIu64, *(const uint64_t *)field);
        break;
    case JOBSPEC_FLOAT:
        append_double(sb, *(const double *)field);
        break;
    case JOBSPEC_BOOL:
        strbuf_puts(sb, *(const bool *)field ? "true" : "false");
        break;
    case JOBSPEC_ENUM:
        strbuf_puts(sb, key->values[*(const int *)field]);
        break;
    case JOBSPEC_STRING: {
        const char *s = *(char *const *)field;
        strbuf_puts(sb, s ? s : "");
        break;
    }
    case JOBSPEC_LIST: {
        const struct jobspec_list *l = field;
        for (size_t i = 0; i < l->count; i++) {
            strbuf_printf(sb, "%s%s", i ? ", " : "", l->items[i]);
        }
        break;
    }
    }
}

/* ------------------------------------------------------------ help */

static void help_type(const struct jobspec_key *key, char *buf, size_t size)
{
    char bounds[64];
    switch (key->type) {
    case JOBSPEC_INT:
        describe_bounds(key, bounds, sizeof bounds);
        snprintf(buf, size, "int %s", bounds);
        break;
    case JOBSPEC_UINT64:
        snprintf(buf, size, "uint64");
        break;
    case JOBSPEC_FLOAT:
        describe_bounds(key, bounds, sizeof bounds);
        snprintf(buf, size, "float %s", bounds);
        break;
    case JOBSPEC_BOOL:
        snprintf(buf, size, "bool");
        break;
    case JOBSPEC_STRING:
        snprintf(buf, size, (key->flags & JOBSPEC_F_PATH) ? "path" : "string");
        break;
    case JOBSPEC_ENUM: {
        size_t n = 0;
        for (int i = 0; key->values[i] && n < size; i++) {
            n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? "|" : "", key->values[i]);
        }
        break;
    }
    case JOBSPEC_LIST:
        snprintf(buf, size, "list");
        break;
    }
}

void jobspec_help(FILE *out)
{
    fprintf(out,
            "The dure job spec: an INI file, `dure run JOB.ini`, `dure submit JOB.ini`.\n"
            "Any key can be overridden on the command line: --set section.key=value.\n"
            "Values are taken literally (no quotes or escapes); ' ;' starts a comment.\n"
            "Relative paths are relative to the directory dure is started in.\n");
    const char *cur = "";
    for (size_t i = 0; i < NALL; i++) {
        const struct jobspec_key *k = &keys[i];
        char type[96];
        if (strcmp(cur, k->section) != 0) {
            cur = k->section;
            fprintf(out, "\n[%s]\n", cur);
            if (i == NKEYS) {
                fprintf(out, "  A mixture: one section per dataset, NAME of letters, digits, "
                        "'_' and '-'\n  (not together with data.path, data.layout, data.keys or "
                        "data.val_path);\n  --set data.NAME.key=value, [sweep] "
                        "data.NAME.weight.\n"
                        "  Channels are matched by name; datasets with different "
                        "channel sets train on the\n  union, each window masked to its "
                        "dataset's (the loss leaves the rest out).\n  Every dataset "
                        "must be sampled at data.sample_rate_hz (else the first's).\n");
            }
        }
        help_type(k, type, sizeof type);
        const char *def = k->def ? k->def : "";
        if (k->flags & JOBSPEC_F_REQUIRED) {
            def = "(required)";
        } else if (def[0] == '\0') {
            def = k->type == JOBSPEC_STRING || k->type == JOBSPEC_LIST ? "\"\"" : def;
        }
        fprintf(out, "  %-16s %-26s %-12s %s\n", k->name, type, def, k->help);
    }
    fprintf(out,
            "\n[env]\n"
            "  NAME = VALUE     exported into the job (after the slurm.profile's\n"
            "                   variables, so [env] wins); NAME is [A-Za-z_][A-Za-z0-9_]*\n"
            "\n[sweep]\n"
            "  section.key = v1, v2, ...\n"
            "                   one Slurm array task per value; several lines give the\n"
            "                   cartesian product (the last line varies fastest). Task i\n"
            "                   runs as run.name-i in run.dir/task-iii. [slurm] keys,\n"
            "                   run.dir and list keys cannot be swept; data.NAME.key\n"
            "                   sweeps a key of one dataset.\n");
}
