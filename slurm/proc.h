/*
 * slurm/proc.h - run a Slurm client command (sbatch, squeue, scontrol, ...)
 * and collect what it prints. No shell is involved: arguments go to the
 * program exactly as given.
 */
#ifndef DURE_SLURM_PROC_H
#define DURE_SLURM_PROC_H

#include "common/status.h"

/* What a finished command left. Strings owned by the result. */
struct proc_result {
    int exit_code;   /* exit status, or 128 + signal if killed */
    char *out;       /* stdout, NUL-terminated, never NULL after proc_run */
    char *err;       /* stderr, likewise */
};

/*
 * Run argv[0] (found on PATH) with argv (NULL-terminated), stdin from
 * /dev/null, and wait for it. A program that cannot be started is
 * DURE_ERR_UNSUPPORTED ("sbatch: not found on PATH: is Slurm installed?");
 * any exit code is DURE_OK with res->exit_code set. Free with proc_result_free.
 */
dure_status_t proc_run(const char *const argv[], struct proc_result *res);

void proc_result_free(struct proc_result *res);

#endif
