/* slurm/submit.c - prepare run directories, call sbatch, record job ids. */
#include "slurm/submit.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/strbuf.h"
#include "slurm/proc.h"
#include "slurm/query.h"
#include "slurm/shquote.h"

/* Append one line to DIR/jobs in a single write (O_APPEND: whole lines). */
static dure_status_t record_job(const char *dir, const char *id)
{
    dure_status_t st = DURE_OK;
    char *path = NULL, *line = NULL;
    int fd = -1;

    DURE_CHECK(asprintf(&path, "%s/jobs", dir) >= 0 && asprintf(&line, "%s\n", id) >= 0,
               DURE_ERR_NOMEM, "out of memory");
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    DURE_SYS_TRY(fd >= 0, "cannot open '%s'", path);
    DURE_SYS_TRY(write(fd, line, strlen(line)) == (ssize_t)strlen(line),
                 "cannot record job %s in '%s'", id, path);
    DURE_SYS_TRY(fsync(fd) == 0, "cannot flush '%s'", path);
out:
    if (fd >= 0) {
        close(fd);
    }
    free(path);
    free(line);
    return st;
}

static int path_exists(const char *dir, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0) {
        return 0;
    }
    int r = access(p, F_OK) == 0;
    free(p);
    return r;
}

/*
 * A run directory's previous spec must compute the same numbers as this one
 * (JOBSPEC_HASH_RESULT: Slurm resources, [env] or logging may change between
 * submissions, the model, data or optimizer may not); its jobs must be over.
 */
static dure_status_t check_run_dir(const char *dir, const struct dure_jobspec *spec,
                                   struct slurm_query *q)
{
    dure_status_t st = DURE_OK;
    struct dure_jobspec *old = NULL;
    char *path = NULL, *line = NULL;
    FILE *f = NULL;
    size_t cap = 0;
    uint64_t h_old = 0, h_new = 0;
    char hex_old[17], hex_new[17];

    DURE_CHECK(asprintf(&path, "%s/job.ini", dir) >= 0, DURE_ERR_NOMEM, "out of memory");
    if (access(path, F_OK) == 0) {
        DURE_TRY(jobspec_load(path, NULL, &old));
        DURE_TRY(jobspec_hash(old, JOBSPEC_HASH_RESULT, &h_old));
        DURE_TRY(jobspec_hash(spec, JOBSPEC_HASH_RESULT, &h_new));
        jobspec_hash_hex(h_old, hex_old);
        jobspec_hash_hex(h_new, hex_new);
        DURE_CHECK(h_old == h_new, DURE_ERR_ARG,
                   "run directory %s holds a job spec that computes something else "
                   "(result hash %s, this one %s): give this run its own run.name or "
                   "run.dir, or remove the directory (compare: dure jobspec %s)",
                   dir, hex_old, hex_new, path);
    }
    free(path);
    path = NULL;
    DURE_CHECK(asprintf(&path, "%s/jobs", dir) >= 0, DURE_ERR_NOMEM, "out of memory");
    f = fopen(path, "r");
    while (f && getline(&line, &cap, f) > 0) {
        struct slurm_job_info info;
        line[strcspn(line, "\n")] = '\0';
        if (!line[0]) {
            continue;
        }
        DURE_TRY(slurm_job_query(q, line, &info));
        DURE_CHECK(!slurm_job_is_active(&info), DURE_ERR_ARG,
                   "run directory %s: job %s is still %s: wait for it, scancel it, or "
                   "submit with --chain to queue more jobs behind it in one go",
                   dir, line, info.state);
    }
out:
    if (f) {
        fclose(f);
    }
    free(line);
    free(path);
    jobspec_free(old);
    return st;
}

/* Call sbatch; the job id (before any ";cluster") into id. */
static dure_status_t sbatch(const char *script, const char *after, char *id, size_t size)
{
    dure_status_t st = DURE_OK;
    char dep[96];
    const char *argv[6] = {"sbatch", "--parsable", NULL, NULL, NULL, NULL};
    int n = 2;
    struct proc_result r = {0};

    if (after) {
        snprintf(dep, sizeof dep, "--dependency=afterany:%s", after);
        argv[n++] = dep;
    }
    argv[n++] = script;
    DURE_TRY(proc_run(argv, &r));
    r.err[strcspn(r.err, "\n")] = '\0';
    DURE_CHECK(r.exit_code == 0, DURE_ERR_IO, "sbatch %s failed (exit %d): %s", script,
               r.exit_code, r.err);
    size_t len = strcspn(r.out, ";\n");
    DURE_CHECK(len > 0 && len < size && strspn(r.out, "0123456789") == len, DURE_ERR_FORMAT,
               "sbatch --parsable printed '%s', not a job id", r.out);
    memcpy(id, r.out, len);
    id[len] = '\0';
out:
    proc_result_free(&r);
    return st;
}

/* Everything the submission writes: per task its spec; the base dir the script. */
struct plan {
    char **dirs;          /* (ntasks) absolute run directories */
    size_t ntasks;
    char *base;           /* absolute base run directory (== dirs[0] unless a sweep) */
    char **spec_text;     /* (ntasks) job.ini contents */
    char *base_spec_text; /* the sweep's own spec, for base/job.ini; NULL otherwise */
    struct dure_jobspec **specs; /* (ntasks) sweep tasks' specs; NULLs otherwise */
    char *script;
    char *script_path;
};

static void plan_free(struct plan *p)
{
    for (size_t i = 0; i < p->ntasks; i++) {
        if (p->spec_text) {
            free(p->spec_text[i]);
        }
        if (p->specs) {
            jobspec_free(p->specs[i]);
        }
    }
    free(p->spec_text);
    free(p->specs);
    free(p->base_spec_text);
    free(p->base);
    free(p->script);
    free(p->script_path);
    slurm_dirs_free(p->dirs, p->ntasks);
}

static dure_status_t plan_make(const struct slurm_job *job, struct plan *p)
{
    dure_status_t st = DURE_OK;
    const struct dure_jobspec *spec = job->spec;

    DURE_TRY(slurm_render(job, &p->script));
    DURE_TRY(slurm_run_dirs(job, &p->dirs, &p->ntasks));
    p->spec_text = calloc(p->ntasks, sizeof *p->spec_text);
    p->specs = calloc(p->ntasks, sizeof *p->specs);
    DURE_ALLOC_TRY(p->spec_text, p->ntasks * sizeof *p->spec_text);
    DURE_ALLOC_TRY(p->specs, p->ntasks * sizeof *p->specs);
    for (size_t i = 0; i < p->ntasks; i++) {
        if (spec->sweep.ntasks) {
            DURE_TRY(jobspec_sweep_task(spec, i, &p->specs[i]));
        }
        DURE_TRY(jobspec_format_ini(p->specs[i] ? p->specs[i] : spec, &p->spec_text[i], NULL));
    }
    if (spec->sweep.ntasks) {
        DURE_CHECK(asprintf(&p->base, "%s%s%s", spec->run.dir[0] == '/' ? "" : job->workdir,
                            spec->run.dir[0] == '/' ? "" : "/", spec->run.dir) >= 0,
                   DURE_ERR_NOMEM, "out of memory");
        DURE_TRY(jobspec_format_ini(spec, &p->base_spec_text, NULL));
    } else {
        p->base = strdup(p->dirs[0]);
        DURE_ALLOC_TRY(p->base, strlen(p->dirs[0]) + 1);
    }
    DURE_CHECK(asprintf(&p->script_path, "%s/batch.sh", p->base) >= 0, DURE_ERR_NOMEM,
               "out of memory");
out:
    return st;
}

static void print_dry_run(const struct plan *p, const struct slurm_submit_opts *o)
{
    FILE *out = o->out;
    fprintf(out, "# dure submit --dry-run: nothing was written or submitted.\n");
    if (p->base_spec_text) {
        fprintf(out, "# would create %s with job.ini (the sweep's spec)\n", p->base);
    }
    for (size_t i = 0; i < p->ntasks; i++) {
        fprintf(out, "# would create %s with job.ini:\n", p->dirs[i]);
        for (const char *l = p->spec_text[i]; *l;) {
            size_t n = strcspn(l, "\n");
            fprintf(out, "#   %.*s\n", (int)n, l);
            l += n + (l[n] == '\n');
        }
    }
    fprintf(out, "# would write %s:\n", p->script_path);
    fputs(p->script, out);
    for (int k = 0; k < o->chain; k++) {
        struct strbuf sb = STRBUF_INIT;
        shquote_append(&sb, p->script_path);
        if (k == 0) {
            fprintf(out, "# would run: sbatch --parsable %s\n", strbuf_str(&sb));
        } else {
            fprintf(out,
                    "# would run: sbatch --parsable --dependency=afterany:<job %d> %s\n",
                    k, strbuf_str(&sb));
        }
        strbuf_free(&sb);
    }
}

dure_status_t slurm_submit(const struct slurm_job *job, const struct slurm_submit_opts *o)
{
    dure_status_t st = DURE_OK;
    struct plan p = {0};
    struct slurm_query q = {0};
    char id[64] = "", prev[64] = "";
    size_t finished = 0;

    DURE_CHECK(o->chain >= 1, DURE_ERR_ARG, "--chain must be at least 1 (got %d)", o->chain);
    DURE_TRY(plan_make(job, &p));
    if (o->dry_run) {
        print_dry_run(&p, o);
        goto out;
    }
    DURE_TRY(check_run_dir(p.base, job->spec, &q));
    for (size_t i = 0; i < p.ntasks; i++) {
        if (job->spec->sweep.ntasks) {
            DURE_TRY(check_run_dir(p.dirs[i], p.specs[i], &q));
        }
        finished += path_exists(p.dirs[i], "FINISHED");
    }
    if (finished == p.ntasks) {
        fprintf(o->out, "run %s has finished (FINISHED marker): nothing submitted\n", p.base);
        goto out;
    }
    DURE_TRY(dure_mkdirs(p.base));
    for (size_t i = 0; i < p.ntasks; i++) {
        char *ini = NULL;
        DURE_TRY(dure_mkdirs(p.dirs[i]));
        DURE_CHECK(asprintf(&ini, "%s/job.ini", p.dirs[i]) >= 0, DURE_ERR_NOMEM,
                   "out of memory");
        st = dure_file_write_atomic(ini, p.spec_text[i], strlen(p.spec_text[i]), 0644);
        free(ini);
        DURE_TRY(st);
    }
    if (p.base_spec_text) {
        char *ini = NULL;
        DURE_CHECK(asprintf(&ini, "%s/job.ini", p.base) >= 0, DURE_ERR_NOMEM, "out of memory");
        st = dure_file_write_atomic(ini, p.base_spec_text, strlen(p.base_spec_text), 0644);
        free(ini);
        DURE_TRY(st);
    }
    DURE_TRY(dure_file_write_atomic(p.script_path, p.script, strlen(p.script), 0755));
    for (int k = 0; k < o->chain; k++) {
        DURE_TRY(sbatch(p.script_path, k ? prev : NULL, id, sizeof id));
        DURE_TRY(record_job(p.base, id));
        for (size_t i = 0; job->spec->sweep.ntasks && i < p.ntasks; i++) {
            char task_id[96];
            snprintf(task_id, sizeof task_id, "%s_%zu", id, i);
            DURE_TRY(record_job(p.dirs[i], task_id));
        }
        if (job->spec->sweep.ntasks) {
            fprintf(o->out, "submitted job array %s (%zu tasks) for %s/task-*\n", id,
                    p.ntasks, p.base);
        } else {
            fprintf(o->out, "submitted job %s for %s%s%s\n", id, p.base,
                    k ? ", after job " : "", k ? prev : "");
        }
        snprintf(prev, sizeof prev, "%s", id);
    }
out:
    plan_free(&p);
    return st;
}
