/*
 * jobs/jobspec.h - the job spec: one INI file that says everything about a run.
 *
 * One table of keys (jobspec_keys()) drives everything: the libinih parser,
 * `--set section.key=value` overrides, validation and its error messages,
 * the resolved dump (INI and table) and `dure help jobspec`. A key exists in
 * the table, in struct dure_jobspec below, and nowhere else.
 *
 * Sections: run, model, data, optim, parallel, checkpoint, slurm (typed keys
 * from the table), data.NAME (one dataset of a mixture, typed keys from the
 * table's dataset part, any number of them), env (free KEY = VALUE pairs
 * exported into the job) and sweep (section.key = v1, v2, ... : one Slurm
 * array task per combination; data.NAME.key too).
 *
 * Lifecycle:
 *
 *     struct dure_jobspec *spec = NULL;
 *     DURE_TRY(jobspec_load("job.ini", overrides, &spec));   // parse + validate
 *     ... spec->model.d_model, spec->run.dir ...
 *     jobspec_free(spec);
 *
 * A loaded spec is "resolved": every key has its value (defaults filled in,
 * derived defaults such as run.dir = "runs/<run.name>" computed), and it is
 * valid (types, bounds, allowed values and cross-key rules hold). Its fields
 * are read-only for callers; change a spec only through jobspec_set(), which
 * re-resolves and re-validates.
 *
 * Error messages (also in dure_last_error()) name the place and what is
 * allowed:
 *     job.ini:12: unknown key 'd_modle' in [model] (did you mean 'd_model'?); keys of ...
 *     job.ini:7: run.device = 'gpu': allowed values: auto, cpu, cuda
 *     job.ini:9: model.n_layers = '0': out of bounds [1, 1024]
 *     --set optim.lr=abc: optim.lr = 'abc': expected a number
 *     job.ini: data.path is required: the dataset (HDF5 file, or a glob ...)
 */
#ifndef DURE_JOBS_JOBSPEC_H
#define DURE_JOBS_JOBSPEC_H

#include <glob.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/status.h"

/* ------------------------------------------------------------ value types */

/* How a key's text becomes the field it fills, and that field's C type. */
enum jobspec_type {
    JOBSPEC_INT,    /* int; decimal; bounds [min, max] */
    JOBSPEC_UINT64, /* uint64_t; decimal or 0x-hex; the full range */
    JOBSPEC_FLOAT,  /* double; finite; bounds [min, max] */
    JOBSPEC_BOOL,   /* bool; true/false, yes/no, on/off, 1/0 */
    JOBSPEC_STRING, /* char *, owned by the spec, never NULL ("" = unset) */
    JOBSPEC_ENUM,   /* an int-sized C enum: the index of the name in values[] */
    JOBSPEC_LIST,   /* struct jobspec_list: comma-separated, items trimmed */
};

/* A comma-separated list value; items and strings owned by the spec. */
struct jobspec_list {
    char **items; /* (count) NUL-terminated strings */
    size_t count;
};

/* Key flags. */
enum {
    JOBSPEC_F_REQUIRED = 1 << 0, /* no default: the spec must set it */
    JOBSPEC_F_MIN_EXCL = 1 << 1, /* numeric: value must be > min, not >= */
    JOBSPEC_F_MAX_EXCL = 1 << 2, /* numeric: value must be < max, not <= */
    JOBSPEC_F_RESULT = 1 << 3,   /* changes the numbers a run computes (hash) */
    JOBSPEC_F_PATH = 1 << 4,     /* a file system path (or glob) */
    JOBSPEC_F_LAYOUT = 1 << 5,   /* RESULT, but not with run.exact: how the work is
                                    spread, which exact mode keeps out of the bits */
};

struct jobspec_key;

/*
 * Extra validation of one key's value (text already converted and stored).
 * Returns DURE_OK, or DURE_ERR_ARG after logging a message that starts with
 * `where` (for example "job.ini:12" or "--set slurm.time=1h").
 */
typedef dure_status_t (*jobspec_check_fn)(const struct jobspec_key *key,
                                          const char *value, const char *where);

/* One key of the job spec. The table is static and lives forever. */
struct jobspec_key {
    const char *section;        /* "model" */
    const char *name;           /* "d_model" */
    enum jobspec_type type;
    unsigned flags;             /* JOBSPEC_F_* */
    double min, max;            /* bounds for INT and FLOAT (see flags) */
    const char *def;            /* default as INI text; NULL when REQUIRED */
    const char *const *values;  /* ENUM: allowed names, NULL-terminated */
    const char *const *aliases; /* ENUM: {"alias", "name", ..., NULL}: another
                                   spelling of a value, stored as the value */
    size_t offset;              /* offsetof(struct dure_jobspec, field) */
    jobspec_check_fn check;     /* extra validation, or NULL */
    const char *help;           /* one line for `dure help jobspec` */
};

/* ------------------------------------------------------------ enum values */

enum jobspec_run_on_nan { JOBSPEC_RUN_NAN_STOP, JOBSPEC_RUN_NAN_SKIP };
enum jobspec_device { JOBSPEC_DEVICE_AUTO, JOBSPEC_DEVICE_CPU, JOBSPEC_DEVICE_CUDA };
enum jobspec_loss { JOBSPEC_LOSS_MSE, JOBSPEC_LOSS_HUBER };
/* AUTO: found from the file (dataio_layout_detect). */
enum jobspec_layout {
    JOBSPEC_LAYOUT_AUTO,
    JOBSPEC_LAYOUT_DURE,
    JOBSPEC_LAYOUT_ROBOMIMIC,
    JOBSPEC_LAYOUT_EPISODE_FILES,
};
enum jobspec_data_on_nan { JOBSPEC_DATA_NAN_REFUSE, JOBSPEC_DATA_NAN_SKIP };
/* AUTO: the loader's default, chosen by measurement (dataio/). */
enum jobspec_io { JOBSPEC_IO_AUTO, JOBSPEC_IO_SERIAL, JOBSPEC_IO_MPIIO };
/* AUTO: nccl when a GPU and NCCL are present, else mpi. */
enum jobspec_backend {
    JOBSPEC_BACKEND_AUTO,
    JOBSPEC_BACKEND_NCCL,
    JOBSPEC_BACKEND_MPI,
};
/* AUTO: comm_caller_runs_auto (collectives/comm.h); ON: a communication
 * thread; OFF: the caller's waits run the collectives (plan_caller_runs). */
enum jobspec_comm_thread {
    JOBSPEC_COMM_THREAD_AUTO,
    JOBSPEC_COMM_THREAD_ON,
    JOBSPEC_COMM_THREAD_OFF,
};
/* Their names in a job spec (and `dure tune --comm-thread`), by value,
 * NULL-terminated. */
extern const char *const jobspec_comm_thread_names[];
enum jobspec_algo {
    JOBSPEC_ALGO_AUTO,
    JOBSPEC_ALGO_NATIVE,
    JOBSPEC_ALGO_RING,
    JOBSPEC_ALGO_SHM,
    JOBSPEC_ALGO_HIER,
};

/* ------------------------------------------------------------ the spec */

struct jobspec_run {
    char *name;                     /* "dure" */
    char *dir;                      /* run directory; default "runs/<name>" */
    int steps;                      /* optimizer steps in total */
    uint64_t seed;
    bool deterministic;             /* bitwise-reproducible reductions */
    bool exact;                     /* the same bits on any world size (train/exact.h) */
    int log_every;                  /* steps between progress lines */
    int val_every;                  /* steps between validations; 0 = never */
    int val_batches;                /* batches per validation */
    enum jobspec_run_on_nan on_nan; /* NaN/Inf loss: stop or skip the step */
    enum jobspec_device device;
    int threads;                    /* CPU threads per rank; 0 = auto */
    bool elastic;                   /* restart on fewer nodes after a failure */
};

struct jobspec_model {
    int d_model;
    int n_layers;
    int n_heads;            /* divides d_model */
    int patch_len;          /* timesteps per token */
    int context_patches;    /* window = (context_patches + 1) * patch_len */
    int channels;           /* 0 = from the data */
    enum jobspec_loss loss;
    double huber_delta;     /* loss = huber only */
    double init_std;
};

struct jobspec_data {
    char *path;                    /* one dataset (or [data.NAME] sections);
                                      HDF5 file (or glob for episode-files) */
    enum jobspec_layout layout;
    struct jobspec_list keys;      /* channels (robomimic/episode-files), in order */
    char *val_path;                /* "" = the file's validation split */
    double val_fraction;           /* held out where the data define no split */
    double balance_alpha;          /* mixture: weight x windows^alpha */
    double sample_rate_hz;         /* the run's rate; 0 = the first dataset's */
    int prefetch;                  /* batches in flight */
    bool normalize;
    enum jobspec_data_on_nan on_nan;
    enum jobspec_io io;
    bool shuffle;
};

struct jobspec_optim {
    double lr;           /* peak learning rate, after warm-up */
    double min_lr;       /* end of the cosine decay; <= lr */
    int warmup_steps;
    double weight_decay;
    double beta1, beta2, eps;
    double grad_clip;    /* global gradient-norm clip; 0 = off */
    int global_batch;    /* windows per optimizer step, all ranks together */
    int micro_batch;     /* windows per rank per forward/backward; divides global_batch */
};

struct jobspec_parallel {
    enum jobspec_backend backend;
    int zero_stage;      /* 0, 1, 2 or 3 */
    int prefetch;        /* stage 3: unit all-gathers ahead of the compute */
    bool reshard_after_forward; /* stage 3: gather again for backward */
    double bucket_mb;    /* gradient bucket size in MiB; 0 = measured default */
    enum jobspec_algo algo;
    char *algo_table;    /* "0:native,1M:shm,32M:ring"; "" = built-in */
    int ring_segment_kib; /* the ring's segment; 0 = $DURE_RING_SEGMENT_KIB or 256 */
    bool overlap;        /* overlap gradient exchange with backward */
    enum jobspec_comm_thread comm_thread; /* who runs the asynchronous collectives */
    double watchdog_s;   /* a collective pending longer aborts the job */
    int straggler_every; /* steps between straggler checks; 0 = off */
    double straggler_slowdown; /* compute above the median by this fraction: straggler */
};

struct jobspec_checkpoint {
    int every;           /* steps between checkpoints; 0 = only on signal/end */
    int keep;            /* newest K kept */
    char *dir;           /* default "<run.dir>/checkpoints" */
    bool async;          /* periodic checkpoints written by a helper thread */
};

struct jobspec_slurm {
    char *job_name;      /* default: run.name with [^A-Za-z0-9._-] -> '_' */
    int nodes;
    int min_nodes;       /* run.elastic: fewest nodes after a failure; 0 = nodes */
    int gpus_per_node;   /* 0 = CPU job */
    char *gpu_type;      /* plan_hw_builtin name for dure submit's memory check; "" = none */
    int ntasks_per_node; /* resolved: gpus_per_node, or 1 on a CPU job */
    int cpus_per_task;
    char *time;          /* Slurm time limit, "00:30:00" */
    char *partition, *account, *qos, *constraint, *exclude; /* "" = unset */
    int signal_lead_s;   /* USR2 this many seconds before the time limit */
    bool requeue;        /* requeue on preemption (exit 75) */
    int max_restarts;    /* requeue while SLURM_RESTART_COUNT < this */
    char *profile;       /* named site environment profile; "" = none */
};

/* One [env] entry: exported into the job, after the profile's variables. */
struct jobspec_env_var {
    char *name;  /* [A-Za-z_][A-Za-z0-9_]* */
    char *value;
};

struct jobspec_env {
    struct jobspec_env_var *vars; /* (count), in file order */
    size_t count;
};

/* Free the variables of env and leave it empty (an empty env is fine). */
void jobspec_env_free(struct jobspec_env *env);

/* One [sweep] line: section.key = v1, v2, ... (each value valid for the key). */
struct jobspec_sweep_axis {
    const struct jobspec_key *key;
    char *dataset;               /* NAME for data.NAME.key; NULL for other keys */
    struct jobspec_list values;
};

/*
 * [sweep]: tasks = the cartesian product of the axes, the last axis varying
 * fastest; ntasks = 0 when the spec has no sweep.
 */
struct jobspec_sweep {
    struct jobspec_sweep_axis *axes; /* (count), in file order */
    size_t count;
    size_t ntasks;
};

/* Most datasets in one mixture. */
#define JOBSPEC_MAX_DATASETS 64

struct jobspec_origin; /* private: where a value came from */

/*
 * One dataset of a mixture: a [data.NAME] section. Its keys are the dataset
 * part of the key table (jobspec_dataset_keys()); their offsets are into
 * this struct.
 */
struct jobspec_dataset {
    char *name;                    /* NAME: [A-Za-z0-9_-], at most 32 characters */
    char *path;                    /* required: HDF5 file or glob */
    enum jobspec_layout layout;
    struct jobspec_list keys;
    double weight;                 /* > 0: its share of the windows, before balancing */
    char *val_path;                /* "" = its own validation split */
    struct jobspec_origin *origin; /* private: (dataset keys) */
};

/* The [data.NAME] sections, in file order (then --set order). */
struct jobspec_mixture {
    struct jobspec_dataset *sets;  /* (count) */
    size_t count;
};

/*
 * A dataset a run reads, whichever way the spec names it: a [data.NAME]
 * section, or (without any) data.path as the one dataset "data", weight 1.
 * Pointers into the spec.
 */
struct jobspec_dataset_ref {
    const char *name, *path, *val_path;
    enum jobspec_layout layout;
    const struct jobspec_list *keys;
    double weight;
};

struct jobspec_state; /* private: where each value came from */

/* A resolved, valid job spec. Allocated by jobspec_load*, freed by jobspec_free. */
struct dure_jobspec {
    struct jobspec_run run;
    struct jobspec_model model;
    struct jobspec_data data;
    struct jobspec_optim optim;
    struct jobspec_parallel parallel;
    struct jobspec_checkpoint checkpoint;
    struct jobspec_slurm slurm;
    struct jobspec_mixture mix;
    struct jobspec_env env;
    struct jobspec_sweep sweep;
    char *origin;                /* the spec's file name, or "<string>" */
    struct jobspec_state *state;
};

/* ------------------------------------------------------------ the table */

/* The key table, in dump order; *count gets its length. Static storage. */
const struct jobspec_key *jobspec_keys(size_t *count);

/* The key section.name, or NULL. */
const struct jobspec_key *jobspec_key_find(const char *section, const char *name);

/* The keys of a [data.NAME] section (section "data.NAME" in messages;
 * offsets into struct jobspec_dataset); *count gets their number. */
const struct jobspec_key *jobspec_dataset_keys(size_t *count);

/* The datasets of a resolved spec into out (JOBSPEC_MAX_DATASETS entries):
 * returns how many, at least 1. */
size_t jobspec_datasets(const struct dure_jobspec *spec, struct jobspec_dataset_ref *out);

/* Every file the datasets name (path and val_path of each) appended to g
 * (zeroed by the caller; globfree after): globs expanded, a name no glob
 * matches kept as it is (GLOB_NOCHECK: a plain name holding '['). */
dure_status_t jobspec_data_files(const struct dure_jobspec *spec, glob_t *g);

/* The section names in order ("run", ..., "slurm", "env", "sweep"), NULL-terminated. */
const char *const *jobspec_sections(void);

/* ------------------------------------------------------------ loading */

/*
 * Parse the INI file at `path`, apply `overrides` in order (each
 * "section.key=value", as given to --set; NULL or a NULL-terminated array),
 * fill in defaults, resolve derived values and validate. On success *out is
 * a new spec owned by the caller (jobspec_free). On failure *out is NULL and
 * the status is DURE_ERR_ARG (bad content; the message names file:line or
 * the --set argument, the key, the value and what is allowed) or
 * DURE_ERR_IO (file unreadable) or DURE_ERR_NOMEM.
 * The first error stops the load.
 */
dure_status_t jobspec_load(const char *path, const char *const *overrides,
                           struct dure_jobspec **out);

/* As jobspec_load, from INI text in memory; `origin` names it in messages. */
dure_status_t jobspec_load_string(const char *text, const char *origin,
                                  const char *const *overrides,
                                  struct dure_jobspec **out);

/* Free a spec and everything it owns; NULL is a no-op. */
void jobspec_free(struct dure_jobspec *spec);

/*
 * Apply one "section.key=value" (same rules as --set, including env.NAME=V),
 * then re-resolve and re-validate. On failure the spec is unchanged.
 */
dure_status_t jobspec_set(struct dure_jobspec *spec, const char *assignment);

/* ------------------------------------------------------------ output */

/*
 * The resolved spec as INI text: every key of the table with its value,
 * then [env] and [sweep]. Loading this text gives a spec with the same
 * values and the same hash. *text is a NUL-terminated malloc'ed string owned
 * by the caller; *len (may be NULL) its length.
 */
dure_status_t jobspec_format_ini(const struct dure_jobspec *spec, char **text,
                                 size_t *len);

/* jobspec_format_ini written to a stream. */
dure_status_t jobspec_write_ini(const struct dure_jobspec *spec, FILE *out);

/*
 * Write the resolved spec as INI to `path` atomically (a temporary file in
 * the same directory, flushed, then renamed): readers never see half a file.
 */
dure_status_t jobspec_save(const struct dure_jobspec *spec, const char *path);

/*
 * The resolved spec as an aligned table, one key per line with its value and
 * where the value came from ("default", "job.ini:12", "--set", "derived").
 * Rank 0 prints it at the start of `dure run`.
 */
dure_status_t jobspec_print_table(const struct dure_jobspec *spec, FILE *out);

/* The text of one key's value as the INI dump writes it (buf NUL-terminated). */
dure_status_t jobspec_value_format(const struct dure_jobspec *spec,
                                   const struct jobspec_key *key, char *buf,
                                   size_t size);

/*
 * Which values a hash covers:
 *   ALL    every key of the table, [env] and [sweep]: "is this the same spec?"
 *          (manifests, `dure submit` refusing to mix specs in one run dir).
 *   RESULT only the keys flagged JOBSPEC_F_RESULT (model, data, optimizer,
 *          seed, determinism, ...): "would this compute the same numbers?"
 *          (checkpoint compatibility; paths, logging, checkpoint cadence and
 *          Slurm resources excluded). With run.exact the keys flagged
 *          JOBSPEC_F_LAYOUT (ZeRO stage, buckets, algorithms, deterministic)
 *          are left out too: exact mode computes the same numbers whatever
 *          they are.
 */
enum jobspec_hash_scope { JOBSPEC_HASH_ALL, JOBSPEC_HASH_RESULT };

/*
 * A stable 64-bit hash (FNV-1a over the canonical INI form of the covered
 * values): the same for equal values whatever their order or spelling in the
 * file, the same across runs, machines and dure builds that share the key
 * table's names and canonical formatting.
 */
dure_status_t jobspec_hash(const struct dure_jobspec *spec,
                           enum jobspec_hash_scope scope, uint64_t *hash);

/* The hash as 16 lowercase hex digits and a NUL. */
void jobspec_hash_hex(uint64_t hash, char out[17]);

/* ------------------------------------------------------------ sweeps */

/*
 * The spec of sweep task `index` (0 <= index < spec->sweep.ntasks): the base
 * spec with that task's values applied, no [sweep], run.name "<name>-<index>"
 * and run.dir "<run.dir>/task-<index, 3 digits>" unless those keys were set
 * explicitly by the sweep, checkpoint.dir re-derived. *out owned by the caller.
 */
dure_status_t jobspec_sweep_task(const struct dure_jobspec *spec, size_t index,
                                 struct dure_jobspec **out);

/* ------------------------------------------------------------ help */

/* `dure help jobspec`: every section and key, type, bounds, default, help. */
void jobspec_help(FILE *out);

#endif
