/*
 * launcher/cmd_run.c - `dure run JOB.ini [--set section.key=value ...]`.
 *
 * One process per GPU (or per CPU core set) under mpirun or srun. Every rank
 * loads the job spec, builds its part of the run (train/train.h), resumes
 * from the newest valid checkpoint in checkpoint.dir, and trains until
 * run.steps, writing metrics (rank 0), validating every run.val_every steps
 * and checkpointing every checkpoint.every steps. A completed run leaves
 * RUN_DIR/FINISHED; starting it again with the same spec does nothing and
 * exits 0, with a spec that computes something else exits 3 saying how to
 * start a new run. A run that fails before writing anything leaves no run
 * directory behind.
 *
 * Stopping: SIGUSR2 or SIGTERM on any rank makes every rank stop at the
 * same step boundary, write a checkpoint and exit 75 (DURE_EXIT_PREEMPTED).
 * Errors every rank agrees on (a bad spec, a non-finite loss) end every rank
 * with the same exit code; an error only one rank sees mid-run (a read
 * error, a failed allocation) aborts the whole job with that code, so no
 * rank is left waiting in a collective.
 */
#include <getopt.h>
#include <glob.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collectives/comm.h"
#include "common/agree.h"
#include "common/fsutil.h"
#include "common/mpi_check.h"
#include "common/status.h"
#include "common/timing.h"
#include "common/topo.h"
#include "jobs/jobspec.h"
#include "launcher/commands.h"
#include "launcher/exitcodes.h"
#include "train/manifest.h"
#include "train/metrics.h"
#include "launcher/ranks.h"
#include "launcher/signals.h"
#include "train/train.h"
#include "launcher/watchdog_hook.h"

void cmd_run_usage(FILE *out)
{
    fprintf(out,
            "usage: dure run JOB.ini [--set section.key=value ...]\n"
            "\n"
            "Train the model of a job spec, data parallel over the ranks of mpirun or\n"
            "srun (one process per GPU, or per CPU core set):\n"
            "    mpirun -np 2 dure run jobs/demo-cpu.ini\n"
            "    srun --mpi=pmix dure run job.ini\n"
            "\n"
            "The run continues from the newest valid checkpoint in checkpoint.dir.\n"
            "Metrics go to RUN_DIR/metrics.jsonl; rank 0 shows progress. SIGUSR2 or\n"
            "SIGTERM: checkpoint at the next step boundary and exit 75. A finished\n"
            "run (RUN_DIR/FINISHED) exits 0 at once.\n"
            "\n"
            "  -s, --set KEY=VALUE   override a job-spec key (repeatable), e.g.\n"
            "                        --set run.steps=100 --set parallel.zero_stage=1\n"
            "\n"
            "Exit status:\n");
    static const int codes[] = {DURE_EXIT_OK,      DURE_EXIT_FAILURE, DURE_EXIT_USAGE,
                                DURE_EXIT_CONFIG,  DURE_EXIT_DATA,    DURE_EXIT_NUMERIC,
                                DURE_EXIT_NODEV,   DURE_EXIT_NOMEM,   DURE_EXIT_PREEMPTED,
                                DURE_EXIT_WATCHDOG};
    dure_exit_codes_print(out, codes, sizeof codes / sizeof codes[0]);
}

/*
 * This rank alone may have failed while the others wait inside a
 * collective: end the whole job (with this failure's exit code) rather than
 * leave them waiting for the watchdog. Called before anything collective
 * is torn down.
 */
static void abort_job(int rank, dure_status_t st)
{
    dure_log_error(__FILE__, __LINE__, "rank %d failed (%s): aborting the job", rank,
                   dure_status_name(st));
    MPI_Abort(MPI_COMM_WORLD, dure_exit_code(st));
}

/* RUN_DIR/FINISHED: written last, atomically, by rank 0. result_hash is
 * the spec's JOBSPEC_HASH_RESULT, so that a later start can tell whether it
 * is the same run. */
static dure_status_t write_finished(const struct dure_jobspec *spec, long steps,
                                    double loss, double val, double baseline)
{
    const char *run_dir = spec->run.dir;
    uint64_t h = 0;
    char hex[17];
    dure_status_t st = DURE_OK;
    char path[4200], text[256];
    time_t now = time(NULL);
    struct tm tm;
    char when[32];
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(path, sizeof path, "%s/FINISHED", run_dir);
    DURE_CHECK(n > 0 && (size_t)n < sizeof path, DURE_ERR_ARG, "run.dir too long: %s",
               run_dir);
    DURE_TRY(jobspec_hash(spec, JOBSPEC_HASH_RESULT, &h));
    jobspec_hash_hex(h, hex);
    n = snprintf(text, sizeof text,
                 "steps %ld\nfinished %s\ntrain_loss %.17g\nval_loss %.17g\n"
                 "baseline_loss %.17g\nresult_hash %s\n",
                 steps, when, loss, val, baseline, hex);
    DURE_CHECK(n > 0 && (size_t)n < sizeof text, DURE_ERR_INTERNAL,
               "FINISHED text of %d bytes does not fit", n);
    DURE_TRY(dure_file_write_atomic(path, text, (size_t)n, 0644));
out:
    return st;
}

/* Rank 0 decides, every rank learns the decision. */
static dure_status_t bcast_status(dure_status_t st)
{
    int v = (int)st;
    if (MPI_Bcast(&v, 1, MPI_INT, 0, MPI_COMM_WORLD) != MPI_SUCCESS) {
        return DURE_ERR_MPI;
    }
    return (dure_status_t)v;
}

/* What was launched: the run's arguments as typed and where its ranks
 * run, for the manifest. */
struct run_args {
    int argc;
    char **argv;
    const struct dure_topo *topo;
};

/* "dure run JOB.ini --set ..." into a malloc'ed string (NULL when out of memory). */
static char *command_line(const struct run_args *a)
{
    size_t len = sizeof "dure";
    for (int i = 0; i < a->argc; i++) {
        len += strlen(a->argv[i]) + 1;
    }
    char *s = malloc(len);
    if (!s) {
        return NULL;
    }
    strcpy(s, "dure");
    for (int i = 0; i < a->argc; i++) {
        strcat(s, " ");
        strcat(s, a->argv[i]);
    }
    return s;
}

/* Everything a manifest_info points at, owned here. */
struct manifest_parts {
    struct manifest_kv *kv;       /* (n_keys) "section.key" -> value */
    char *text;                   /* the names and values kv points into */
    char *command;
    glob_t files;                 /* every dataset's path and val_path expanded */
    char hash[17];
    struct train_comm_desc comm;
    struct manifest_kv algos[5];
    struct manifest_exact exact;
};

static void manifest_parts_free(struct manifest_parts *p)
{
    if (p->files.gl_pathv) {
        globfree(&p->files);
    }
    free(p->command);
    free(p->text);
    free(p->kv);
}

/* Fill `in` for this launch (local work; no MPI). */
static dure_status_t manifest_prepare(struct manifest_parts *p, struct manifest_info *in,
                                      const struct dure_jobspec *spec, train_t *train,
                                      const struct run_args *args, const char *resumed_from,
                                      long step)
{
    dure_status_t st = DURE_OK;
    enum { NAME = 64, VALUE = 4096 };
    size_t n_keys = 0;
    const struct jobspec_key *keys = jobspec_keys(&n_keys);
    uint64_t h = 0;

    p->kv = calloc(n_keys, sizeof *p->kv);
    DURE_ALLOC_TRY(p->kv, n_keys * sizeof *p->kv);
    p->text = malloc(n_keys * (NAME + VALUE));
    DURE_ALLOC_TRY(p->text, n_keys * (NAME + VALUE));
    p->command = command_line(args);
    DURE_ALLOC_TRY(p->command, sizeof "dure");
    for (size_t i = 0; i < n_keys; i++) {
        char *name = p->text + i * (NAME + VALUE), *value = name + NAME;
        snprintf(name, NAME, "%s.%s", keys[i].section, keys[i].name);
        DURE_TRY(jobspec_value_format(spec, &keys[i], value, VALUE));
        p->kv[i].key = name;
        p->kv[i].value = value;
    }
    DURE_TRY(jobspec_hash(spec, JOBSPEC_HASH_ALL, &h));
    jobspec_hash_hex(h, p->hash);
    /* Every file read: a glob (one file per episode) is fingerprinted file by
     * file; a plain name is itself (GLOB_NOCHECK keeps a name glob would not
     * match, such as one holding '['). */
    DURE_TRY(jobspec_data_files(spec, &p->files));
    const char *const *data = (const char *const *)p->files.gl_pathv;
    size_t n_paths = p->files.gl_pathc;
    train_comm_describe(train, &p->comm);
    p->algos[0] = (struct manifest_kv){"allreduce", p->comm.allreduce};
    p->algos[1] = (struct manifest_kv){"reduce_scatter", p->comm.reduce_scatter};
    p->algos[2] = (struct manifest_kv){"allgather", p->comm.allgather};
    p->algos[3] = (struct manifest_kv){"algo_table", p->comm.algo_table};
    p->algos[4] = (struct manifest_kv){"ring_segment", p->comm.ring_segment};
    in->run_dir = spec->run.dir;
    in->command = p->command;
    in->jobspec = p->kv;
    in->n_jobspec = n_keys;
    in->jobspec_hash = p->hash;
    in->data_paths = data;
    in->n_data_paths = n_paths;
    in->fp_mode = MANIFEST_FP_AUTO;
    in->backend = p->comm.backend;
    in->algorithms = p->algos;
    in->n_algorithms = sizeof p->algos / sizeof p->algos[0];
    in->seed = spec->run.seed;
    in->deterministic = spec->run.deterministic;
    in->exact = train_exact_contract(train, &p->exact) ? &p->exact : NULL;
    in->resumed_from = resumed_from;
    in->resumed_step = (uint64_t)step;
    if (resumed_from) {
        struct ckpt_meta meta;
        DURE_TRY(ckpt_read_meta(resumed_from, &meta));
        in->resumed_world_size = meta.world_size;
    }
    in->topo = args->topo;
out:
    return st;
}

/*
 * RUN_DIR/manifest.json (or manifest.launch-<k>.json on a restart): the
 * resolved spec, dataset fingerprint, world, backend and algorithms
 * (train/manifest.h). Collective.
 */
static dure_status_t write_manifest(const struct dure_jobspec *spec, train_t *train,
                                    const struct run_args *args, const char *resumed_from,
                                    long step, int *launch)
{
    dure_status_t st = DURE_OK;
    struct manifest_parts parts;
    struct manifest_info in;
    char path[4200];
    const char *name;
    memset(&parts, 0, sizeof parts);
    memset(&in, 0, sizeof in);
    DURE_TRY(dure_agree(MPI_COMM_WORLD,
                        manifest_prepare(&parts, &in, spec, train, args, resumed_from, step),
                        "preparing the manifest"));
    DURE_TRY(manifest_write(MPI_COMM_WORLD, &in, path, sizeof path));
    /* manifest.json is launch 0, manifest.launch-<k>.json launch k. */
    name = strrchr(path, '/');
    name = name ? name + 1 : path;
    if (sscanf(name, "manifest.launch-%d.json", launch) != 1) {
        *launch = 0;
    }
out:
    manifest_parts_free(&parts);
    return st;
}

struct run_state {
    const struct dure_jobspec *spec;
    train_t *train;
    dure_metrics_t *metrics;     /* rank 0 only */
    int rank;
    long last_saved;             /* step of the newest checkpoint, -1 none */
    long last_val;               /* step of the last validation, -1 none */
    double held_s;               /* stall of the background checkpoint in flight */
    double val, baseline, loss;
};

static dure_status_t validate(struct run_state *rs, long step)
{
    dure_status_t st = DURE_OK;
    struct train_val v;
    struct dure_val_dataset sets[TRAIN_MAX_DATASETS];
    DURE_TRY(train_validate(rs->train, &v));
    rs->val = v.loss;
    rs->baseline = v.baseline;
    rs->last_val = step;
    for (int d = 0; d < v.n; d++) {
        sets[d] = (struct dure_val_dataset){v.name[d], v.loss_d[d], v.baseline_d[d]};
    }
    if (rs->metrics && !isnan(rs->val)) {
        DURE_TRY(dure_metrics_val(rs->metrics, step, rs->val, rs->baseline, sets, v.n));
    }
out:
    return st;
}

/* A finished checkpoint: a progress note and a metrics line (rank 0). */
static dure_status_t report_saved(struct run_state *rs, const struct train_save_report *r,
                                  double stall_s)
{
    dure_status_t st = DURE_OK;
    if (!rs->metrics) {
        goto out;
    }
    dure_metrics_note(rs->metrics,
                      "checkpoint: step %llu saved to %s%s: %.1f MB in %.3f s (write %.3f s, "
                      "sync %.3f s, hash %.3f s); training held %.1f ms",
                      (unsigned long long)r->step, r->path,
                      r->background ? " in the background" : "", (double)r->io.bytes / 1e6,
                      r->io.total_s, r->io.write_s, r->io.sync_s, r->io.hash_s, 1e3 * stall_s);
    DURE_TRY(dure_metrics_event(rs->metrics, (long)r->step,
                                "\"ckpt_save_s\":%.6g,\"ckpt_stall_s\":%.6g,\"ckpt\":\"%s\"",
                                r->io.total_s, stall_s, r->background ? "background" : "inline"));
out:
    return st;
}

/* Report a background checkpoint that has finished; wait = 1 waits for the
 * one in flight (collective), 0 only looks. */
static dure_status_t collect_saved(struct run_state *rs, int wait)
{
    dure_status_t st = DURE_OK;
    struct train_save_report r;
    DURE_TRY(train_save_collect(rs->train, wait, &r));
    if (r.step > 0) {
        DURE_TRY(report_saved(rs, &r, rs->held_s));
    }
out:
    return st;
}

/*
 * Checkpoint the current step: in the background (checkpoint.async) unless
 * `now`, which returns with the checkpoint on disk. The stall is the time
 * the training loop spends here, a wait for the previous background save
 * included.
 */
static dure_status_t save(struct run_state *rs, long step, int now)
{
    dure_status_t st = DURE_OK;
    struct train_save_report r;
    double t0 = dure_now_s();
    DURE_TRY(collect_saved(rs, 1));
    DURE_TRY(train_save(rs->train, now, &r));
    rs->last_saved = step;
    if (r.background) {
        rs->held_s = dure_now_s() - t0;
    } else {
        DURE_TRY(report_saved(rs, &r, dure_now_s() - t0));
    }
out:
    return st;
}

/*
 * A straggler check (rank 0): name the slowest persistent straggler in a
 * note, on the progress lines until a check finds none, and in metrics.jsonl
 * (strings and timing keys only: dure verify compares other numbers).
 */
static dure_status_t report_straggler(struct run_state *rs, long step,
                                      const struct straggler_report *r)
{
    dure_status_t st = DURE_OK;
    char who[STRAGGLER_HOST_MAX + 96], mark[128];
    if (!rs->metrics || !r->checked) {
        goto out;
    }
    if (!r->found) {
        dure_metrics_mark(rs->metrics, NULL);
        goto out;
    }
    snprintf(who, sizeof who, "rank %d on %s (+%.0f%%, %d checks; scores %.2f fastest, %.2f own)",
             r->rank, r->host, 100.0 * r->slowdown, r->checks, r->score_fastest, r->score_own);
    snprintf(mark, sizeof mark, "straggler rank %d (%s) +%.0f%%", r->rank, r->host,
             100.0 * r->slowdown);
    dure_metrics_mark(rs->metrics, mark);
    dure_metrics_note(rs->metrics,
                      "straggler: rank %d on %s: compute %.1f ms/step, %.0f%% above the median "
                      "%.1f ms (%d checks in a row, %d straggler(s)); scores %.2f against the "
                      "fastest, %.2f against its own best; most waiting: rank %d on %s, %.1f "
                      "ms/step (median %.1f ms)",
                      r->rank, r->host, 1e3 * r->compute_s, 100.0 * r->slowdown,
                      1e3 * r->median_s, r->checks, r->n_stragglers, r->score_fastest,
                      r->score_own, r->wait_rank, r->wait_host, 1e3 * r->wait_s,
                      1e3 * r->median_wait_s);
    DURE_TRY(dure_metrics_event(rs->metrics, step,
                                "\"straggler\":\"%s\",\"straggler_compute_s\":%.6g,"
                                "\"median_compute_s\":%.6g,\"max_wait_s\":%.6g,"
                                "\"median_wait_s\":%.6g",
                                who, r->compute_s, r->median_s, r->wait_s, r->median_wait_s));
out:
    return st;
}

/*
 * Rank 0 notes the largest peak RSS over the ranks against the plan's
 * estimate (on the cpu device, where RSS is the plan's memory): above the
 * process's baseline against the plan less its process term (what the
 * plan models), then without the peers' shares of the node's shared
 * windows, then whole against the whole plan. Collective.
 */
static dure_status_t report_memory(struct run_state *rs, int rank)
{
    dure_status_t st = DURE_OK;
    struct train_mem_measured m;
    train_memory_measured(rs->train, &m);
    double grown = m.peak > m.base ? (double)(m.peak - m.base) : 0;
    double peers = m.shm_rss > m.shm_pss && m.shm_pss > 0 ? (double)(m.shm_rss - m.shm_pss) : 0;
    /* grown, grown without the peers' shares, those shares, the whole
     * peak without them, the plan above the baseline, the whole plan */
    double v[6] = {grown,
                   grown - peers,
                   peers,
                   (double)m.peak - peers,
                   (double)(m.plan - m.plan_process),
                   (double)m.plan},
           most[6];
    DURE_MPI_TRY(MPI_Reduce(v, most, 6, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD));
    if (rank == 0 && m.host_is_device && m.plan > 0) {
        const double mib = 1 << 20;
        dure_metrics_note(rs->metrics,
                          "memory: peak per rank %.1f MiB above a %.1f MiB process baseline "
                          "(the largest over the ranks); plan %.1f MiB above it (measured/plan "
                          "%.3f); without the peers' shares of the node's shared memory %.1f "
                          "MiB (%.1f MiB; measured/plan %.3f); whole process %.1f MiB, plan "
                          "%.1f MiB (measured/plan %.3f)",
                          most[0] / mib, (double)m.base / mib, most[4] / mib,
                          most[0] / most[4], most[1] / mib, most[2] / mib, most[1] / most[4],
                          most[3] / mib, most[5] / mib, most[3] / most[5]);
    }
out:
    return st;
}

/*
 * The training loop. Returns DURE_ERR_INTERRUPTED after the checkpoint of a
 * signal stop. *collective is 0 when the failure may be this rank's alone.
 */
static dure_status_t train_loop(struct run_state *rs, int *collective)
{
    dure_status_t st = DURE_OK;
    const struct dure_jobspec *s = rs->spec;
    long steps = s->run.steps;

    *collective = 1;
    while (train_steps_done(rs->train) < steps) {
        struct train_step_result res;
        dure_watchdog_step(train_steps_done(rs->train) + 1);
        *collective = 0;
        st = train_step(rs->train, &res);
        /* A non-finite loss is decided by all ranks together. */
        *collective = st == DURE_ERR_NUMERIC;
        DURE_TRY(st);
        long step = res.metrics.step;
        rs->loss = res.metrics.loss;
        if (rs->metrics) {
            DURE_TRY(dure_metrics_step(rs->metrics, &res.metrics));
        }
        DURE_TRY(collect_saved(rs, 0));
        struct straggler_report sr;
        DURE_TRY(train_straggler_step(rs->train, &res.metrics, &sr));
        DURE_TRY(report_straggler(rs, step, &sr));
        if (s->run.val_every > 0 && (step % s->run.val_every == 0 || step == steps)) {
            DURE_TRY(validate(rs, step));
        }
        if (res.stop_signal) {
            dure_metrics_note(rs->metrics, "signal %d received: stopping at step %ld",
                              res.stop_signal, step);
            DURE_TRY(save(rs, step, 1));
            *collective = 1;
            st = DURE_ERR_INTERRUPTED;
            goto out;
        }
        if (s->checkpoint.every > 0 && step % s->checkpoint.every == 0) {
            DURE_TRY(save(rs, step, step == steps));
        }
    }
    *collective = 1;
out:
    return st;
}

static dure_status_t run(const struct dure_jobspec *spec, const struct dure_ranks *ranks,
                         const struct run_args *args, int *collective)
{
    dure_status_t st = DURE_OK;
    struct run_state rs = {spec, NULL, NULL, ranks->world_rank, -1, -1, 0, NAN, NAN, NAN};
    int rank = ranks->world_rank, resumed = 0;
    char from[CKPT_PATH_MAX] = "";
    FILE *progress = rank == 0 ? stdout : NULL, *report = NULL;
    char *report_text = NULL;
    size_t report_len = 0;
    double t0 = MPI_Wtime();

    *collective = 1;
    DURE_TRY(dure_signals_install());
    /* The resolved table and the setup report are shown once the setup has
     * succeeded: an error (bad data, no memory) then stands alone instead of
     * landing in the middle of a table. */
    if (rank == 0) {
        report = open_memstream(&report_text, &report_len); /* NULL: report directly */
    }
    const struct train_hooks hooks = {dure_watchdog_abort, dure_signals_pending};
    st = train_create(spec, ranks, MPI_COMM_WORLD, &hooks, report ? report : progress,
                      &rs.train);
    if (report) {
        fclose(report);
    }
    DURE_TRY(st);
    if (rank == 0) {
        char topo[1024];
        dure_topo_format(args->topo, topo, sizeof topo);
        st = jobspec_print_table(spec, stdout);
        printf("topology: %s; local ranks from %s\n", topo, ranks->local_source);
        fputs(report_text ? report_text : "", stdout);
        fflush(stdout);
    }
    DURE_TRY(bcast_status(st));
    DURE_TRY(train_resume(rs.train, &resumed, from, sizeof from));
    long done = train_steps_done(rs.train);
    int launch = 0;
    DURE_TRY(write_manifest(spec, rs.train, args, resumed ? from : NULL, done, &launch));
    dure_watchdog_record_to(spec->run.dir, launch);
    rs.last_saved = resumed ? done : -1;
    if (rank == 0) {
        DURE_TRY(bcast_status(dure_metrics_open(&rs.metrics, spec->run.dir, done,
                                                spec->run.steps, spec->run.log_every,
                                                progress)));
        dure_metrics_note(rs.metrics, "%s run '%s' at step %ld of %d on %d rank(s)",
                          resumed ? "resuming" : "starting", spec->run.name, done,
                          spec->run.steps, ranks->world_size);
    } else {
        DURE_TRY(bcast_status(DURE_OK));
    }

    DURE_TRY(train_loop(&rs, collective));

    long steps = train_steps_done(rs.train);
    if (spec->run.val_every > 0 && rs.last_val != steps) {
        DURE_TRY(validate(&rs, steps));
    }
    if (rs.last_saved != steps) {
        DURE_TRY(save(&rs, steps, 1));
    }
    DURE_TRY(collect_saved(&rs, 1));
    DURE_TRY(report_memory(&rs, rank));
    if (rank == 0) {
        double el = MPI_Wtime() - t0;
        char dur[32];
        dure_format_duration(el, dur, sizeof dur);
        if (isnan(rs.val)) {
            dure_metrics_note(rs.metrics, "finished: %ld steps (%s here) | train loss %.6f",
                              steps, dur, rs.loss);
        } else {
            dure_metrics_note(rs.metrics,
                              "finished: %ld steps (%s here) | train loss %.6f | validation "
                              "loss %.6f | naive baseline %.6f (validation/baseline %.3f)",
                              steps, dur, rs.loss, rs.val, rs.baseline, rs.val / rs.baseline);
        }
        st = write_finished(spec, steps, rs.loss, rs.val, rs.baseline);
    }
    DURE_TRY(bcast_status(st));
out:
    free(report_text);
    if (st != DURE_OK && !*collective) {
        abort_job(rank, st);
    }
    if (rs.metrics) {
        dure_status_t cst = dure_metrics_close(rs.metrics);
        if (st == DURE_OK) {
            st = cst;
        }
    }
    train_destroy(rs.train);
    /* A run stopped by signal keeps its handlers until the process exits:
     * the first rank to exit 75 makes srun (--kill-on-bad-exit) send
     * SIGTERM to the others, still in MPI_Finalize or exit handlers; they
     * must exit 75 too, not 143, or the batch script does not requeue. */
    if (st != DURE_ERR_INTERRUPTED) {
        dure_signals_restore();
    }
    return st;
}

/*
 * A finished run of this spec: DURE_OK; of another spec (the result hash
 * in FINISHED differs: model, data, optimizer or steps changed),
 * DURE_ERR_ARG saying how to start a new run. FINISHED files without a
 * hash (older dure) count as this spec's.
 */
static dure_status_t check_finished(const struct dure_jobspec *spec, const char *path)
{
    dure_status_t st = DURE_OK;
    FILE *f = fopen(path, "r");
    char line[256], old[32] = "", hex[17];
    uint64_t h = 0;
    while (f && fgets(line, sizeof line, f)) {
        sscanf(line, "result_hash %31s", old);
    }
    if (f) {
        fclose(f);
    }
    DURE_TRY(jobspec_hash(spec, JOBSPEC_HASH_RESULT, &h));
    jobspec_hash_hex(h, hex);
    DURE_CHECK(!old[0] || strcmp(old, hex) == 0, DURE_ERR_ARG,
               "%s: run '%s' in %s finished with another job spec (result hash %s, this "
               "one %s: the model, data, optimizer or steps differ); nothing was run. To "
               "start a new run give it its own directory (--set run.dir=%s-2, or another "
               "run.name), or remove %s", spec->origin, spec->run.name, spec->run.dir, old,
               hex, spec->run.dir, spec->run.dir);
out:
    return st;
}

/* What prepare_dirs created: removed again if the run leaves them empty. */
struct made_dirs {
    int run, ckpt;
};

/* Rank 0 checks RUN_DIR/FINISHED and prepares the directories. */
static dure_status_t prepare_dirs(const struct dure_jobspec *spec, int rank, int *finished,
                                  struct made_dirs *made)
{
    dure_status_t st = DURE_OK;
    int flag = 0;
    if (rank == 0) {
        char path[4200];
        snprintf(path, sizeof path, "%s/FINISHED", spec->run.dir);
        flag = access(path, F_OK) == 0;
        if (flag) {
            st = check_finished(spec, path);
        } else {
            made->run = access(spec->run.dir, F_OK) != 0;
            made->ckpt = access(spec->checkpoint.dir, F_OK) != 0;
            st = dure_mkdirs(spec->run.dir);
            if (st == DURE_OK) {
                st = dure_mkdirs(spec->checkpoint.dir);
            }
        }
    }
    DURE_TRY(bcast_status(st));
    DURE_MPI_TRY(MPI_Bcast(&flag, 1, MPI_INT, 0, MPI_COMM_WORLD));
    *finished = flag;
out:
    return st;
}

/* A run that failed before writing anything leaves no empty directory
 * (rmdir refuses non-empty ones: a manifest or checkpoint stays). */
static void remove_empty_dirs(const struct dure_jobspec *spec, const struct made_dirs *made)
{
    if (made->ckpt) {
        rmdir(spec->checkpoint.dir);
    }
    if (made->run) {
        rmdir(spec->run.dir);
    }
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"set", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    dure_status_t st = DURE_OK;
    struct dure_jobspec *spec = NULL;
    struct dure_ranks ranks;
    struct dure_topo topo;
    const char **sets = NULL;
    int n_sets = 0, opt, mpi_up = 0, have_ranks = 0, collective = 1, finished = 0;
    struct made_dirs made = {0, 0};

    memset(&ranks, 0, sizeof ranks);
    memset(&topo, 0, sizeof topo);

    /* getopt_long permutes argv: keep the command line as typed for the manifest. */
    sets = calloc(2 * ((size_t)argc + 1), sizeof *sets);
    if (!sets) {
        fprintf(stderr, "dure run: out of memory\n");
        return DURE_EXIT_NOMEM;
    }
    char **typed = (char **)sets + argc + 1;
    memcpy(typed, argv, (size_t)argc * sizeof *typed);
    while ((opt = getopt_long(argc, argv, "s:", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            sets[n_sets++] = optarg;
            break;
        default:
            cmd_run_usage(stderr);
            free(sets);
            return DURE_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "dure run: expected one job spec (JOB.ini)\n");
        cmd_run_usage(stderr);
        free(sets);
        return DURE_EXIT_USAGE;
    }
    const char *job = argv[optind];

    DURE_TRY(dure_mpi_up(&argc, &argv));
    mpi_up = 1;
    DURE_TRY(dure_ranks_init(&ranks, MPI_COMM_WORLD));
    have_ranks = 1;
    dure_log_set_rank(ranks.world_rank);
    DURE_TRY(dure_topo_gather(MPI_COMM_WORLD, ranks.local_rank, &topo));

    /* Every rank parses; only rank 0 reports what is wrong. */
    if (ranks.world_rank != 0) {
        dure_log_set_quiet(1);
    }
    st = jobspec_load(job, sets, &spec);
    dure_log_set_quiet(0);
    DURE_TRY(dure_agree(MPI_COMM_WORLD, st, "reading the job spec"));
    DURE_TRY(prepare_dirs(spec, ranks.world_rank, &finished, &made));
    if (finished) {
        if (ranks.world_rank == 0) {
            printf("dure run: %s/FINISHED exists: run '%s' is complete, nothing to do\n",
                   spec->run.dir, spec->run.name);
        }
        goto out;
    }
    struct run_args args = {argc, typed, &topo};
    st = run(spec, &ranks, &args, &collective);
    if (st != DURE_OK && st != DURE_ERR_INTERRUPTED && ranks.world_rank == 0) {
        remove_empty_dirs(spec, &made);
    }
out:
    jobspec_free(spec);
    dure_topo_free(&topo);
    if (have_ranks) {
        dure_ranks_free(&ranks);
    }
    if (mpi_up) {
        comm_mpi_finalize();
    }
    free(sets);
    fflush(stdout);
    return dure_exit_code(st);
}
