/* slurm/render.c - fill slurm/batch.sh.in from a job spec. */
#include "slurm/render.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/strbuf.h"
#include "slurm/profile.h"
#include "slurm/shquote.h"

dure_status_t slurm_dure_path(const char *path, char *buf, size_t size)
{
    dure_status_t st = DURE_OK;
    char real[PATH_MAX];
    struct stat sb;
    const char *p = path ? path : "/proc/self/exe";

    DURE_SYS_TRY(realpath(p, real) != NULL, "cannot resolve the dure executable '%s'", p);
    DURE_SYS_TRY(stat(real, &sb) == 0, "cannot stat '%s'", real);
    DURE_CHECK(S_ISREG(sb.st_mode) && access(real, X_OK) == 0, DURE_ERR_ARG,
               "'%s' is not an executable file", real);
    DURE_CHECK(strlen(real) < size, DURE_ERR_ARG, "path too long: '%s'", real);
    memcpy(buf, real, strlen(real) + 1);
out:
    return st;
}

dure_status_t slurm_job_load(const char *ini, const char *const *overrides,
                             const char *dure_arg, struct slurm_job_loaded *l)
{
    dure_status_t st = DURE_OK;
    memset(l, 0, sizeof *l);
    DURE_SYS_TRY(getcwd(l->workdir, sizeof l->workdir) != NULL,
                 "cannot get the current directory");
    DURE_TRY(jobspec_load(ini, overrides, &l->spec));
    DURE_TRY(slurm_dure_path(dure_arg, l->dure, sizeof l->dure));
    l->job = (struct slurm_job){.spec = l->spec, .dure = l->dure, .workdir = l->workdir};
out:
    return st;
}

void slurm_job_loaded_free(struct slurm_job_loaded *l)
{
    jobspec_free(l->spec);
    l->spec = NULL;
}

void slurm_dirs_free(char **dirs, size_t count)
{
    for (size_t i = 0; dirs && i < count; i++) {
        free(dirs[i]);
    }
    free(dirs);
}

static dure_status_t abs_join(const char *workdir, const char *path, char **out)
{
    dure_status_t st = DURE_OK;
    int n = path[0] == '/' ? asprintf(out, "%s", path)
                           : asprintf(out, "%s/%s", workdir, path);
    DURE_CHECK(n >= 0, DURE_ERR_NOMEM, "out of memory joining '%s' and '%s'", workdir, path);
out:
    return st;
}

dure_status_t slurm_run_dirs(const struct slurm_job *job, char ***dirs, size_t *count)
{
    dure_status_t st = DURE_OK;
    size_t n = job->spec->sweep.ntasks ? job->spec->sweep.ntasks : 1;
    char **d = NULL;
    struct dure_jobspec *task = NULL;

    *dirs = NULL;
    *count = 0;
    d = calloc(n, sizeof *d);
    DURE_ALLOC_TRY(d, n * sizeof *d);
    for (size_t i = 0; i < n; i++) {
        const struct dure_jobspec *s = job->spec;
        if (job->spec->sweep.ntasks) {
            DURE_TRY(jobspec_sweep_task(job->spec, i, &task));
            s = task;
        }
        DURE_TRY(abs_join(job->workdir, s->run.dir, &d[i]));
        jobspec_free(task);
        task = NULL;
    }
    *dirs = d;
    *count = n;
    d = NULL;
out:
    jobspec_free(task);
    slurm_dirs_free(d, n);
    return st;
}

/* Rules of a job that Slurm will start: every task's batch fits its ranks. */
static dure_status_t check_layout(const struct dure_jobspec *spec, size_t index)
{
    dure_status_t st = DURE_OK;
    long ranks = (long)spec->slurm.nodes * spec->slurm.ntasks_per_node;
    long per_step = (long)spec->optim.micro_batch * ranks;
    char task[48] = "";
    if (spec->sweep.ntasks == 0 && index != (size_t)-1) {
        snprintf(task, sizeof task, " (sweep task %zu)", index);
    }
    DURE_CHECK(spec->optim.global_batch % per_step == 0, DURE_ERR_ARG,
               "%s%s: optim.global_batch = %d is not a multiple of optim.micro_batch * "
               "ranks = %d * %ld (slurm.nodes %d x slurm.ntasks_per_node %d)",
               spec->origin, task, spec->optim.global_batch, spec->optim.micro_batch,
               ranks, spec->slurm.nodes, spec->slurm.ntasks_per_node);
out:
    return st;
}

static dure_status_t sbatch_line(struct strbuf *sb, const char *opt, const char *what,
                                 const char *value)
{
    dure_status_t st = DURE_OK;
    strbuf_printf(sb, "#SBATCH --%s=", opt);
    DURE_TRY(sbatch_quote_append(sb, what, value));
    strbuf_putc(sb, '\n');
out:
    return st;
}

static dure_status_t sbatch_lines(const struct slurm_job *job, char **dirs,
                                  struct strbuf *sb)
{
    dure_status_t st = DURE_OK;
    const struct jobspec_slurm *s = &job->spec->slurm;
    struct strbuf out = STRBUF_INIT;
    char num[32];

    DURE_TRY(sbatch_line(sb, "job-name", "slurm.job_name", s->job_name));
    strbuf_printf(sb, "#SBATCH --nodes=%d\n", s->nodes);
    strbuf_printf(sb, "#SBATCH --ntasks-per-node=%d\n", s->ntasks_per_node);
    if (s->gpus_per_node > 0) {
        /* One rank per GPU (ntasks_per_node = gpus_per_node): each task gets
         * exactly one GPU, the one closest to its CPUs, as its device 0
         * (CUDA_VISIBLE_DEVICES per task), which dure_ranks_pick_gpu takes. */
        strbuf_printf(sb, "#SBATCH --gpus-per-node=%d\n", s->gpus_per_node);
        strbuf_puts(sb, "#SBATCH --gpu-bind=single:1\n");
    }
    strbuf_printf(sb, "#SBATCH --cpus-per-task=%d\n", s->cpus_per_task);
    DURE_TRY(sbatch_line(sb, "time", "slurm.time", s->time));
    const struct {
        const char *opt, *key, *value;
    } optional[] = {
        {"partition", "slurm.partition", s->partition},
        {"account", "slurm.account", s->account},
        {"qos", "slurm.qos", s->qos},
        {"constraint", "slurm.constraint", s->constraint},
        {"exclude", "slurm.exclude", s->exclude},
    };
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++) {
        if (optional[i].value[0]) {
            DURE_TRY(sbatch_line(sb, optional[i].opt, optional[i].key, optional[i].value));
        }
    }
    if (s->signal_lead_s > 0) {
        /* USR2, not USR1: NCCL may use USR1 itself. */
        strbuf_printf(sb, "#SBATCH --signal=USR2@%d\n", s->signal_lead_s);
    }
    strbuf_puts(sb, s->requeue ? "#SBATCH --requeue\n" : "#SBATCH --no-requeue\n");
    strbuf_puts(sb, "#SBATCH --open-mode=append\n");
    /* Logs in the run directory: each array task in its own, task-NNN. */
    if (job->spec->sweep.ntasks) {
        char *base = NULL;
        DURE_TRY(abs_join(job->workdir, job->spec->run.dir, &base));
        st = slurm_pattern_escape(&out, "run.dir", base);
        free(base);
        DURE_TRY(st);
        strbuf_puts(&out, "/task-%3a/%x_%j.out");
    } else {
        DURE_TRY(slurm_pattern_escape(&out, "run.dir", dirs[0]));
        strbuf_puts(&out, "/%x_%j.out");
    }
    DURE_TRY(strbuf_status(&out));
    DURE_TRY(sbatch_line(sb, "output", "run.dir", strbuf_str(&out)));
    DURE_TRY(sbatch_line(sb, "chdir", "the working directory", job->workdir));
    if (job->spec->sweep.ntasks) {
        snprintf(num, sizeof num, "0-%zu", job->spec->sweep.ntasks - 1);
        strbuf_printf(sb, "#SBATCH --array=%s\n", num);
    }
out:
    strbuf_free(&out);
    return st;
}

static void env_lines(struct strbuf *sb, const struct jobspec_env *env)
{
    for (size_t i = 0; i < env->count; i++) {
        strbuf_printf(sb, "export %s=", env->vars[i].name);
        shquote_append(sb, env->vars[i].value);
        strbuf_putc(sb, '\n');
    }
}

/* The text for one @NAME@ of the template. */
static dure_status_t placeholder(const struct slurm_job *job, char **dirs, size_t ndirs,
                                 const struct jobspec_env *profile, const char *name,
                                 size_t len, struct strbuf *sb)
{
    dure_status_t st = DURE_OK;
    const struct dure_jobspec *spec = job->spec;
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(name, lit, len) == 0)
    if (IS("SBATCH")) {
        DURE_TRY(sbatch_lines(job, dirs, sb));
        uint64_t h = 0;
        char hex[17];
        DURE_TRY(jobspec_hash(spec, JOBSPEC_HASH_ALL, &h));
        jobspec_hash_hex(h, hex);
        strbuf_printf(sb, "# job spec hash: %s", hex);
    } else if (IS("DURE")) {
        shquote_append(sb, job->dure);
    } else if (IS("RUN_DIRS")) {
        for (size_t i = 0; i < ndirs; i++) {
            strbuf_puts(sb, ndirs > 1 ? "\n    " : "");
            shquote_append(sb, dirs[i]);
        }
        strbuf_puts(sb, ndirs > 1 ? "\n" : "");
    } else if (IS("MAX_RESTARTS")) {
        strbuf_printf(sb, "%d", spec->slurm.max_restarts);
    } else if (IS("REQUEUE")) {
        strbuf_puts(sb, spec->slurm.requeue ? "1" : "0");
    } else if (IS("EXCLUDE")) {
        shquote_append(sb, spec->slurm.exclude);
    } else if (IS("CPUS_PER_TASK")) {
        strbuf_printf(sb, "%d", spec->slurm.cpus_per_task);
    } else if (IS("PROFILE")) {
        shquote_append(sb, spec->slurm.profile[0] ? spec->slurm.profile : "(none)");
    } else if (IS("ENV")) {
        env_lines(sb, profile);
        env_lines(sb, &spec->env);
    } else {
        DURE_FAIL(DURE_ERR_INTERNAL, "slurm/batch.sh.in: unknown placeholder @%.*s@",
                  (int)len, name);
    }
#undef IS
out:
    return st;
}

dure_status_t slurm_render(const struct slurm_job *job, char **script)
{
    dure_status_t st = DURE_OK;
    struct strbuf sb = STRBUF_INIT;
    struct jobspec_env profile = {NULL, 0};
    struct dure_jobspec *task = NULL;
    char **dirs = NULL;
    size_t ndirs = 0;

    *script = NULL;
    DURE_CHECK(job->dure[0] == '/' && job->workdir[0] == '/', DURE_ERR_ARG,
               "the dure executable and the working directory must be absolute paths");
    if (job->spec->sweep.ntasks == 0) {
        DURE_TRY(check_layout(job->spec, (size_t)-1));
    }
    for (size_t i = 0; i < job->spec->sweep.ntasks; i++) {
        DURE_TRY(jobspec_sweep_task(job->spec, i, &task));
        DURE_TRY(check_layout(task, i));
        jobspec_free(task);
        task = NULL;
    }
    if (job->spec->slurm.profile[0]) {
        DURE_TRY(slurm_profile_load(job->spec->slurm.profile, job->profiles, &profile));
    }
    DURE_TRY(slurm_run_dirs(job, &dirs, &ndirs));
    for (const char *p = slurm_batch_template; *p;) {
        const char *at = strchr(p, '@');
        if (!at) {
            strbuf_puts(&sb, p);
            break;
        }
        strbuf_append(&sb, p, (size_t)(at - p));
        size_t n = 0;
        while (isupper((unsigned char)at[1 + n]) || at[1 + n] == '_') {
            n++;
        }
        if (n > 0 && at[1 + n] == '@') {
            DURE_TRY(placeholder(job, dirs, ndirs, &profile, at + 1, n, &sb));
            p = at + n + 2;
        } else {
            strbuf_putc(&sb, '@');
            p = at + 1;
        }
    }
    DURE_TRY(strbuf_detach(&sb, script, NULL));
out:
    jobspec_free(task);
    jobspec_env_free(&profile);
    slurm_dirs_free(dirs, ndirs);
    strbuf_free(&sb);
    return st;
}
