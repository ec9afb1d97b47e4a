/*
 * slurm/submit.h - `dure submit`: prepare run directories and call sbatch.
 *
 * Files in a run directory (the base run.dir of a sweep holds the first two):
 *   batch.sh   the rendered batch script that was submitted
 *   job.ini    the resolved job spec the job runs (a task's own for sweeps)
 *   jobs       job ids, one per line, appended at each submission; array
 *              tasks' run directories get "ARRAYID_TASK"
 */
#ifndef DURE_SLURM_SUBMIT_H
#define DURE_SLURM_SUBMIT_H

#include <stdio.h>

#include "common/status.h"
#include "slurm/render.h"

struct slurm_submit_opts {
    int chain;   /* jobs to submit, each --dependency=afterany on the one before */
    int dry_run; /* print what would be done; touch nothing, call no sbatch */
    FILE *out;   /* where to report (job ids, or the dry run) */
};

/*
 * Submit `job`. Refuses (DURE_ERR_ARG, nothing submitted) a run directory
 * whose job.ini computes something else (JOBSPEC_HASH_RESULT differs: a
 * different model, data, optimizer, seed, ...) or that has a job still
 * pending or running; a finished run (FINISHED) is reported and not
 * submitted. job.ini is rewritten, so Slurm resources may change. On success prints one line per job ("submitted job ID ...")
 * and appends each id to the jobs files.
 */
dure_status_t slurm_submit(const struct slurm_job *job, const struct slurm_submit_opts *opts);

#endif
