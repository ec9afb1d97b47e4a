/*
 * slurm/status.h - what a run directory says about its run: the jobs
 * submitted for it, the progress in metrics.jsonl, the jobs' logs.
 * `dure status` (launcher/cmd_status.c) puts it together.
 */
#ifndef DURE_SLURM_STATUS_H
#define DURE_SLURM_STATUS_H

#include <stddef.h>
#include <stdio.h>

#include "common/status.h"

/* Progress from the tail of RUN_DIR/metrics.jsonl. */
struct run_progress {
    long step;       /* last training step with a loss; -1 none */
    double loss;
    long val_step;   /* last step with a val_loss; -1 none */
    double val_loss;
    double step_s;   /* mean step time (s) over the last <= 20 step lines; 0 unknown */
    /* Over the same lines, the means of where the step went (metrics.jsonl):
     * comm_exposed_s, data_wait_s, comm_thread_cpu_s; NAN where none of
     * them holds a number (older runs; no communication thread). */
    double exposed_s, data_wait_s, thread_cpu_s;
    int steps_timed;     /* how many lines those means are over */
    long straggler_step; /* step of the last straggler report; -1 none */
    char straggler[160]; /* its text: "rank 3 on node07 (+31%, 2 checks; ...)" */
};

/*
 * Read the progress of the run in `run_dir`. A missing metrics.jsonl is
 * DURE_OK with step = -1 (the run has not started). Only the last 64 KiB of
 * the file are read, however long the run.
 */
dure_status_t run_progress_read(const char *run_dir, struct run_progress *p);

/* Job ids recorded in RUN_DIR/jobs, oldest first; free with run_jobs_free. */
dure_status_t run_jobs_read(const char *run_dir, char ***ids, size_t *count);
void run_jobs_free(char **ids, size_t count);

/*
 * The log of Slurm job `job_id` (its own numeric id) in `run_dir`
 * (NAME_JOBID.out, from --output=%x_%j.out) into buf; DURE_ERR_IO if none.
 */
dure_status_t run_log_find(const char *run_dir, const char *job_id, char *buf, size_t size);

/*
 * Print the first `max` lines of `path` that start with `prefix` (dure's own
 * error lines, "dure: error"), each after `indent`; *found gets their count.
 * Ranks' errors may sit anywhere in a log, before output flushed later.
 */
dure_status_t run_log_grep(const char *path, const char *prefix, int max, const char *indent,
                           FILE *out, int *found);

/* Print the last `lines` lines of `path`, each prefixed by `indent`. */
dure_status_t run_log_tail(const char *path, int lines, const char *indent, FILE *out);

#endif
