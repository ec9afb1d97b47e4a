/*
 * slurm/render.h - the batch script of a job spec, from slurm/batch.sh.in.
 *
 * One script serves a plain job and a job array (a [sweep]): it holds the
 * absolute run directory of every task and picks its own by
 * SLURM_ARRAY_TASK_ID. Each run directory must hold job.ini (the task's
 * resolved spec) before the job starts; dure submit writes it.
 */
#ifndef DURE_SLURM_RENDER_H
#define DURE_SLURM_RENDER_H

#include <limits.h>
#include <stddef.h>

#include "common/status.h"
#include "jobs/jobspec.h"

/* What a batch script is rendered from; nothing here is owned. */
struct slurm_job {
    const struct dure_jobspec *spec; /* as loaded, with its [sweep] if any */
    const char *dure;                /* absolute path of the dure the job runs */
    const char *workdir;             /* absolute; sbatch --chdir, base of relative paths */
    const char *profiles;            /* profile file; NULL = slurm_profiles_path() */
};

/*
 * The absolute run directory of each task (one for a plain job, one per
 * sweep task), as workdir + run.dir unless run.dir is absolute. *dirs is an
 * array of *count malloc'ed strings owned by the caller (slurm_dirs_free).
 */
dure_status_t slurm_run_dirs(const struct slurm_job *job, char ***dirs, size_t *count);
void slurm_dirs_free(char **dirs, size_t count);

/*
 * Render the batch script. Checks what only a Slurm job needs (the global
 * batch divides over nodes * ntasks_per_node ranks, the profile exists,
 * values fit on #SBATCH lines). *script is malloc'ed, owned by the caller.
 */
dure_status_t slurm_render(const struct slurm_job *job, char **script);

/*
 * The dure executable a job runs, as an absolute path into buf: `path` made
 * absolute (it must be an executable file), or this process's own
 * executable when `path` is NULL. Compute nodes must see the same path.
 */
dure_status_t slurm_dure_path(const char *path, char *buf, size_t size);

/*
 * A job as `dure render` and `dure submit` take it from their command line:
 * the spec at `ini` with `overrides` (NULL-terminated, may be NULL) applied,
 * the dure executable `dure_arg` (NULL: this one; see slurm_dure_path) and
 * the current directory as the workdir. l->job points into l; l->spec is
 * owned by l. Free with slurm_job_loaded_free (a zeroed l is fine).
 */
struct slurm_job_loaded {
    struct slurm_job job;
    struct dure_jobspec *spec;
    char dure[PATH_MAX];
    char workdir[PATH_MAX];
};

dure_status_t slurm_job_load(const char *ini, const char *const *overrides,
                             const char *dure_arg, struct slurm_job_loaded *l);
void slurm_job_loaded_free(struct slurm_job_loaded *l);

/* The embedded slurm/batch.sh.in (NUL-terminated). */
extern const char slurm_batch_template[];

#endif
