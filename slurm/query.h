/*
 * slurm/query.h - the state of a Slurm job by id, from wherever Slurm still
 * knows it: the controller (scontrol show job) while the job is queued,
 * running or recently ended; afterwards the job completion record
 * (JobCompType=jobcomp/filetxt: the JobCompLoc file) or accounting (sacct).
 */
#ifndef DURE_SLURM_QUERY_H
#define DURE_SLURM_QUERY_H

#include "common/status.h"

struct slurm_job_info {
    char id[64];        /* as asked: "123" or "123_4" (array task) */
    char job_id[32];    /* Slurm's own id of the job (an array task has one), or "" */
    char state[32];     /* JobState: PENDING, RUNNING, COMPLETED, FAILED, ...; UNKNOWN */
    char reason[64];    /* Reason= when the controller gives one, else "" */
    int exit_code;      /* batch script's exit code; -1 unknown */
    int signal;         /* signal that ended it; 0 none */
    int restarts;       /* times requeued; -1 unknown */
    char source[16];    /* "scontrol", "jobcomp", "sacct" or "none" */
};

/* Cached cluster facts for a series of queries; zero-initialise, then query. */
struct slurm_query {
    int configured;        /* config read */
    char jobcomp_type[64]; /* "jobcomp/filetxt", ... */
    char jobcomp_loc[1024];
};

/*
 * Look job `id` up. A job Slurm no longer knows is DURE_OK with state
 * "UNKNOWN" and source "none"; DURE_ERR_UNSUPPORTED when no Slurm client
 * can be run at all.
 */
dure_status_t slurm_job_query(struct slurm_query *q, const char *id,
                              struct slurm_job_info *out);

/* The job is queued, running, completing, suspended or being requeued. */
int slurm_job_is_active(const struct slurm_job_info *job);

/*
 * Parse one record of `scontrol show job -o` or one jobcomp/filetxt line
 * (both "Key=value Key=value ...") into *out's state, reason, exit code,
 * signal and restarts. Returns 1 if the line has a JobState.
 */
int slurm_job_parse_record(const char *line, struct slurm_job_info *out);

/*
 * Whether a jobcomp/filetxt line is the record of `id` ("123": JobId=123
 * outside arrays; "123_4": ArrayJobId=123 ArrayTaskId=4).
 */
int slurm_jobcomp_matches(const char *line, const char *id);

#endif
