/*
 * train/metrics.h - per-step metrics: JSON lines in the run directory and
 * rank 0's progress display.
 *
 * Only rank 0 opens a writer. Every step appends one JSON object to
 * RUN_DIR/metrics.jsonl and flushes it (so `dure status`, `dure plot` and
 * `dure verify` can read a live run):
 *   {"step":N,"loss":..,"grad_norm":..,"lr":..,"step_s":..,
 *    "timesteps_per_s":..,"mfu":..,"data_wait_s":..,"comm_exposed_s":..,
 *    "optimizer_s":..,"comm_thread_cpu_s":..}
 * (a mixture's steps add "datasets", see struct dure_step_metrics)
 * plus {"step":N,"val_loss":..,"baseline_loss":..} after a validation pass
 * (baseline_loss: the naive forecast, repeat the last patch, on the same
 * validation windows). Losses are written
 * with 17 significant digits, so two runs' files compare bit for bit;
 * non-finite values are written as null (JSON has no NaN).
 *
 * Progress goes to a stream (stdout): on a terminal one line updated in
 * place (at most ten times a second, and on the last step); otherwise
 * (Slurm logs, pipes) one line every log_every steps, and always on the
 * first and the last step. Each line carries the ETA from the mean step time
 * of this process's steps so far (the first step, which warms caches, is
 * left out once there are others).
 */
#ifndef DURE_TRAIN_METRICS_H
#define DURE_TRAIN_METRICS_H

#include <stdio.h>

#include "common/status.h"

/* One dataset of a mixture in a step: the mean loss of its windows in the
 * global batch (each over its unmasked elements) and the naive baseline on
 * the same windows; both NAN when the batch held none of its windows. */
struct dure_step_dataset {
    const char *name;
    double loss, baseline;
};

/* What one optimizer step measured; times in seconds. */
struct dure_step_metrics {
    long step;               /* 1-based index of the step just taken */
    double loss;             /* mean over the global batch */
    double grad_norm;        /* global L2 norm before clipping */
    double lr;               /* learning rate used by this step */
    double step_s;           /* wall time of the step */
    double timesteps_per_s;  /* global batch timesteps / step_s */
    double mfu;              /* model FLOP/s / peak FLOP/s, 0..1 */
    double data_wait_s;      /* time blocked waiting for the loader */
    double comm_exposed_s;   /* communication time not hidden behind compute */
    double optimizer_s;      /* gradient norm, step decision and update, less the
                              * communication they wait for (in comm_exposed_s) */
    double comm_thread_cpu_s; /* CPU time of the communication thread since the
                              * previous step (comm_thread_cpu_s): what the
                              * overlapped exchange took from this rank's cores;
                              * NAN (null) when no such thread runs */
    int skipped;             /* 1: non-finite loss, update skipped (on_nan = skip) */
    /* A mixture (n_sets > 1): each dataset's training loss; the step's line
     * holds "datasets": {"NAME": {"loss": L, "baseline_loss": B}, ...} and
     * the progress line "NAME L/B" for each. NULL and 0 otherwise. */
    const struct dure_step_dataset *sets;
    int n_sets;
};

typedef struct dure_metrics dure_metrics_t;

/*
 * Open RUN_DIR/metrics.jsonl for appending. When resuming from a checkpoint
 * taken after step `resume_step` (0 for a fresh run), lines for later steps
 * left by an interrupted run are dropped first (the file is rewritten under
 * a temporary name and renamed), so the file reads as one run's history.
 * `total_steps` is the run's last step (for the ETA); `progress` may be NULL
 * for no display. The handle owns nothing the caller passed.
 */
dure_status_t dure_metrics_open(dure_metrics_t **out, const char *run_dir,
                                long resume_step, long total_steps, int log_every,
                                FILE *progress);

/* Append one step's line and update the progress display. */
dure_status_t dure_metrics_step(dure_metrics_t *m, const struct dure_step_metrics *s);

/* One dataset's validation (a mixture's line lists them). */
struct dure_val_dataset {
    const char *name;
    double loss, baseline;
};

/*
 * Append a validation line; the progress display shows it from then on.
 * baseline_loss may be NAN when there is none. With n > 1 datasets, the
 * line also holds each one's: "datasets": {"NAME": {"val_loss": L,
 * "baseline_loss": B}, ...}, and the progress line names them compactly.
 */
dure_status_t dure_metrics_val(dure_metrics_t *m, long step, double val_loss,
                               double baseline_loss, const struct dure_val_dataset *sets,
                               int n);

/*
 * Show `text` at the end of every progress line from now on ("straggler
 * rank 3 (node07) +31%"); NULL or "" removes it. NULL m is a no-op.
 */
void dure_metrics_mark(dure_metrics_t *m, const char *text);

/*
 * Append a line {"step":N,<fields>} for an event of that step (a checkpoint,
 * a straggler report): `fields` is printf-formatted JSON members without the
 * braces, e.g. "\"ckpt_stall_s\":%.6g". Keep numbers of events to timing keys
 * (names ending in _s): `dure verify` compares every other number.
 */
dure_status_t dure_metrics_event(dure_metrics_t *m, long step, const char *fields, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Print a message line on the progress stream without garbling the updating
 * line of a terminal (the line is ended first, and redrawn at the next step).
 */
void dure_metrics_note(dure_metrics_t *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Finish the progress line, close the file; accepts NULL. */
dure_status_t dure_metrics_close(dure_metrics_t *m);


#endif
