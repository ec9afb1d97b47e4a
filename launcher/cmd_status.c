/*
 * launcher/cmd_status.c - `dure status RUN_DIR`: the jobs of a run and what
 * became of them, the last step and loss, the time left and where the
 * step's time goes.
 */
#include <ctype.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/timing.h"
#include "jobs/jobspec.h"
#include "launcher/commands.h"
#include "launcher/exitcodes.h"
#include "slurm/query.h"
#include "slurm/status.h"
#include "train/failure.h"

void cmd_status_usage(FILE *out)
{
    fprintf(out,
            "usage: dure status RUN_DIR\n"
            "       dure status --failed-nodes RUN_DIR\n"
            "\n"
            "Show a run submitted with dure submit: each job id in RUN_DIR/jobs with\n"
            "its Slurm state and exit code (from scontrol while Slurm still holds\n"
            "the job, then the job completion record or sacct), the last step and\n"
            "loss from RUN_DIR/metrics.jsonl, the ETA of a running job, the step\n"
            "time with its exposed communication, loader wait and communication\n"
            "thread CPU (means of the last 20 steps), and for a failed job dure's\n"
            "error lines and the end of its log. For a sweep's run directory, one\n"
            "line per task. The newest failure record\n"
            "(RUN_DIR/failures/: a collective that hung, the ranks and hosts that\n"
            "failed, what the survivors saw) and the nodes excluded from the run\n"
            "(RUN_DIR/excluded_nodes) are shown too.\n"
            "\n"
            "  --failed-nodes   print only the nodes the newest failure record says to\n"
            "                   exclude, one per line (inside a Slurm job: only records\n"
            "                   of this job's current attempt); for batch scripts\n");
}

/* The verdict on one run directory. */
struct run_view {
    char state[400];       /* finished, running, pending, failed: ..., ... */
    int failed;            /* the last job ended badly */
    struct slurm_job_info last; /* the job the verdict is about */
    struct run_progress prog;
    int steps;             /* run.steps, 0 unknown */
};

static dure_status_t view_run(const char *dir, struct slurm_query *q, FILE *out,
                              int verbose, struct run_view *v)
{
    dure_status_t st = DURE_OK;
    char **ids = NULL, path[PATH_MAX];
    size_t nids = 0;
    struct dure_jobspec *spec = NULL;
    int have_active = 0;

    memset(v, 0, sizeof *v);
    snprintf(v->last.state, sizeof v->last.state, "UNKNOWN");
    v->last.exit_code = -1;
    snprintf(path, sizeof path, "%s/job.ini", dir);
    if (access(path, R_OK) == 0 && jobspec_load(path, NULL, &spec) == DURE_OK) {
        v->steps = spec->run.steps;
    }
    DURE_TRY(run_progress_read(dir, &v->prog));
    DURE_TRY(run_jobs_read(dir, &ids, &nids));
    for (size_t i = 0; i < nids; i++) {
        struct slurm_job_info j;
        st = slurm_job_query(q, ids[i], &j);
        if (st == DURE_ERR_UNSUPPORTED) {
            /* No Slurm client here (logged): the run's own files still tell. */
            st = DURE_OK;
        }
        DURE_TRY(st);
        if (verbose) {
            fprintf(out, "job       %-10s %s", j.id, j.state);
            if (j.reason[0] && slurm_job_is_active(&j)) {
                fprintf(out, " (%s)", j.reason);
            }
            if (j.exit_code >= 0 && !slurm_job_is_active(&j)) {
                fprintf(out, ", exit %d", j.exit_code);
                if (j.signal) {
                    fprintf(out, " signal %d", j.signal);
                }
            }
            if (j.restarts > 0) {
                fprintf(out, ", requeued %d times", j.restarts);
            }
            fprintf(out, "  [%s]\n", j.source);
        }
        /* The verdict follows the first job still active, else the last one. */
        if (!have_active) {
            v->last = j;
            have_active = slurm_job_is_active(&j);
        }
    }
    snprintf(path, sizeof path, "%s/FINISHED", dir);
    if (access(path, F_OK) == 0) {
        snprintf(v->state, sizeof v->state, "finished");
    } else if (nids == 0) {
        snprintf(v->state, sizeof v->state, "not submitted (no job ids in %s/jobs)", dir);
    } else if (strcmp(v->last.state, "RUNNING") == 0) {
        snprintf(v->state, sizeof v->state, "running (job %s)", v->last.id);
    } else if (have_active) {
        snprintf(v->state, sizeof v->state, "%s (job %s%s%s)", v->last.state, v->last.id,
                 v->last.reason[0] ? ": " : "", v->last.reason);
        for (char *c = v->state; *c && *c != ' '; c++) {
            *c = (char)tolower((unsigned char)*c);
        }
    } else if (v->last.exit_code == DURE_EXIT_PREEMPTED) {
        v->failed = 1;
        snprintf(v->state, sizeof v->state,
                 "stopped: job %s exit 75 (%s) and not requeued; submit again to resume",
                 v->last.id, dure_exit_meaning(75));
    } else if (strcmp(v->last.state, "COMPLETED") == 0) {
        snprintf(v->state, sizeof v->state,
                 "stopped: job %s completed but the run has not finished", v->last.id);
    } else if (strcmp(v->last.state, "UNKNOWN") == 0) {
        snprintf(v->state, sizeof v->state, "unknown: Slurm has no record of job %s",
                 v->last.id);
    } else {
        v->failed = 1;
        snprintf(v->state, sizeof v->state, "failed: job %s %s", v->last.id, v->last.state);
        if (v->last.exit_code > 0) {
            size_t n = strlen(v->state);
            snprintf(v->state + n, sizeof v->state - n, " with exit code %d (%s)",
                     v->last.exit_code, dure_exit_meaning(v->last.exit_code));
        } else if (v->last.signal > 0) {
            size_t n = strlen(v->state);
            snprintf(v->state + n, sizeof v->state - n, " by signal %d", v->last.signal);
        }
    }
out:
    jobspec_free(spec);
    run_jobs_free(ids, nids);
    return st;
}

static void print_progress(const struct run_view *v, FILE *out)
{
    const struct run_progress *p = &v->prog;
    if (p->step < 0) {
        fprintf(out, "progress  no steps yet\n");
        return;
    }
    fprintf(out, "progress  step %ld", p->step);
    if (v->steps > 0) {
        fprintf(out, " of %d (%.0f%%)", v->steps, 100.0 * (double)p->step / v->steps);
    }
    fprintf(out, ", loss %.6g", p->loss);
    if (p->val_step >= 0) {
        fprintf(out, ", val_loss %.6g at step %ld", p->val_loss, p->val_step);
    }
    fputc('\n', out);
    if (p->straggler_step >= 0) {
        fprintf(out, "straggler %s at step %ld\n", p->straggler, p->straggler_step);
    }
    if (strncmp(v->state, "running", 7) == 0 && p->step_s > 0 && v->steps > 0) {
        char eta[32];
        dure_format_duration(p->step_s * (double)(v->steps - p->step), eta, sizeof eta);
        fprintf(out, "eta       %s (%.3g s/step)\n", eta, p->step_s);
    }
    if (p->step_s > 0) {
        /* Where the step goes (metrics.jsonl, rank 0), for a run that
         * scales worse than it should. */
        fprintf(out, "time      %.1f ms a step", 1e3 * p->step_s);
        const struct {
            const char *what;
            double s;
        } part[] = {{"exposed communication", p->exposed_s},
                    {"loader wait", p->data_wait_s},
                    {"communication thread CPU", p->thread_cpu_s}};
        const char *sep = ": ";
        for (size_t i = 0; i < sizeof part / sizeof part[0]; i++) {
            if (!isnan(part[i].s)) {
                fprintf(out, "%s%s %.1f ms", sep, part[i].what, 1e3 * part[i].s);
                sep = ", ";
            }
        }
        fprintf(out, " (means of the last %d step(s))\n", p->steps_timed);
    }
}

static dure_status_t print_failure_log(const char *dir, const struct run_view *v, FILE *out)
{
    char log[PATH_MAX];
    if (!v->failed || !v->last.job_id[0]) {
        return DURE_OK;
    }
    dure_log_set_quiet(1);
    dure_status_t st = run_log_find(dir, v->last.job_id, log, sizeof log);
    dure_log_set_quiet(0);
    if (st != DURE_OK) {
        fprintf(out, "log       none found for job %s in %s\n", v->last.job_id, dir);
        return DURE_OK;
    }
    int errors = 0;
    dure_status_t st2 = run_log_grep(log, "dure: error", 5, "error     ", out, &errors);
    if (st2 != DURE_OK) {
        return st2;
    }
    fprintf(out, "log       %s, last lines:\n", log);
    return run_log_tail(log, 8, "  | ", out);
}

/* "launches  0: 2 ranks on 2 nodes; 1: 1 rank on 1 node from step 200":
 * the world of every launch, from the run's manifests. */
static void print_launches(const char *dir, FILE *out)
{
    char path[PATH_MAX + 64];
    int printed = 0;
    for (int k = 0;; k++) {
        json_doc_t *doc = NULL;
        if (k == 0) {
            snprintf(path, sizeof path, "%s/manifest.json", dir);
        } else {
            snprintf(path, sizeof path, "%s/manifest.launch-%d.json", dir, k);
        }
        if (access(path, R_OK) != 0) {
            break;
        }
        dure_log_set_quiet(1);
        dure_status_t st = json_parse_file(path, &doc);
        dure_log_set_quiet(0);
        if (st != DURE_OK) {
            fprintf(out, "%s%d: %s unreadable", printed ? "; " : "launches  ", k, path);
            printed = 1;
            continue;
        }
        const struct json_value *world = json_get(json_root(doc), "world");
        const struct json_value *size = json_get(world, "size"), *nodes = json_get(world, "nodes");
        const struct json_value *from = json_get(json_root(doc), "resumed_from");
        const struct json_value *step = json_get(from, "step");
        int ranks = size && size->type == JSON_NUMBER ? (int)size->number : -1;
        int n = nodes && nodes->type == JSON_NUMBER ? (int)nodes->number : -1;
        fprintf(out, "%s%d: %d rank%s on %d node%s", printed ? "; " : "launches  ", k, ranks,
                ranks == 1 ? "" : "s", n, n == 1 ? "" : "s");
        if (step && step->type == JSON_NUMBER) {
            fprintf(out, " from step %.0f", step->number);
        }
        printed = 1;
        json_free(doc);
    }
    if (printed) {
        fputc('\n', out);
    }
}

/* The newest failure record, merged (train/failure.h), and the exclusions. */
static dure_status_t print_failures(const char *dir, FILE *out)
{
    dure_status_t st = DURE_OK;
    struct failure_summary f;
    char path[PATH_MAX + 32], line[512];
    FILE *ex = NULL;
    DURE_TRY(failure_summary_read(dir, NULL, 0, &f));
    if (f.launch >= 0) {
        fprintf(out, "failure   launch %d%s%s at step %ld (%s): %s seq %llu hung %.1f s\n",
                f.launch, f.job[0] ? ", job " : "", f.job, f.step, f.time, f.op,
                (unsigned long long)f.seq, f.waited_s);
        for (int i = 0; i < f.n_failed; i++) {
            const struct failure_node *x = &f.failed[i];
            fprintf(out, "failed    %s: rank%s %s %s", x->host, strchr(x->ranks, ',') ? "s" : "",
                    x->ranks, x->state);
            if (strcmp(x->state, "silent") == 0) {
                fprintf(out, " for %.1f s", x->silent_s);
            }
            fprintf(out, " (seen by %d of %d reporting node(s))%s\n", x->accusers,
                    f.n_reporters, f.exclude[i] ? "; excluded" : "");
        }
        for (int i = 0; i < f.n_reporters; i++) {
            fprintf(out, "survivor  %s: rank%s %s recorded it and exited %d\n",
                    f.reporters[i].host, strchr(f.reporters[i].ranks, ',') ? "s" : "",
                    f.reporters[i].ranks, f.exit_code);
        }
    }
    snprintf(path, sizeof path, "%s/excluded_nodes", dir);
    ex = fopen(path, "re");
    while (ex && fgets(line, sizeof line, ex)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0]) {
            fprintf(out, "excluded  %s\n", line);
        }
    }
out:
    if (ex) {
        fclose(ex);
    }
    return st;
}

/* --failed-nodes: the nodes to exclude, one per line; inside a Slurm job,
 * from this attempt's records only. */
static int print_failed_nodes(const char *dir)
{
    struct failure_summary f;
    const char *job = getenv("SLURM_JOB_ID"), *restart = getenv("SLURM_RESTART_COUNT");
    dure_status_t st =
        failure_summary_read(dir, job, job ? (restart ? atoi(restart) : 0) : 0, &f);
    for (int i = 0; st == DURE_OK && i < f.n_failed; i++) {
        if (f.exclude[i]) {
            printf("%s\n", f.failed[i].host);
        }
    }
    return dure_exit_code(st);
}

int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {{"failed-nodes", no_argument, NULL, 'f'},
                                         {NULL, 0, NULL, 0}};
    int failed_nodes = 0;
    struct slurm_query q = {0};
    struct dure_jobspec *spec = NULL;
    struct run_view v;
    char dir[PATH_MAX], path[PATH_MAX + 32];
    dure_status_t st = DURE_OK;
    int opt;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt == 'f') {
            failed_nodes = 1;
            continue;
        }
        cmd_status_usage(stderr);
        return DURE_EXIT_USAGE;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "dure status: expected one run directory\n\n");
        cmd_status_usage(stderr);
        return DURE_EXIT_USAGE;
    }
    if (!realpath(argv[optind], dir)) {
        fprintf(stderr, "dure status: run directory '%s': ", argv[optind]);
        perror(NULL);
        return DURE_EXIT_FAILURE;
    }
    if (failed_nodes) {
        return print_failed_nodes(dir);
    }
    printf("run       %s\n", dir);
    snprintf(path, sizeof path, "%s/job.ini", dir);
    if (access(path, R_OK) == 0) {
        st = jobspec_load(path, NULL, &spec);
        if (st != DURE_OK) {
            goto out;
        }
    }
    if (spec && spec->sweep.ntasks) {
        /* The array's own id stands for all its tasks: each task is shown below. */
        char **ids = NULL;
        size_t nids = 0;
        st = run_jobs_read(dir, &ids, &nids);
        if (st != DURE_OK) {
            goto out;
        }
        for (size_t i = 0; i < nids; i++) {
            printf("array     %s (%zu tasks: %s_0 ... %s_%zu)\n", ids[i], spec->sweep.ntasks,
                   ids[i], ids[i], spec->sweep.ntasks - 1);
        }
        run_jobs_free(ids, nids);
        size_t counts[4] = {0, 0, 0, 0}; /* finished, active, failed, other */
        for (size_t i = 0; i < spec->sweep.ntasks; i++) {
            struct run_view tv;
            snprintf(path, sizeof path, "%s/task-%03zu", dir, i);
            st = view_run(path, &q, stdout, 0, &tv);
            if (st != DURE_OK) {
                goto out;
            }
            printf("task %03zu  %s", i, tv.state);
            if (tv.prog.step >= 0) {
                printf("; step %ld, loss %.6g", tv.prog.step, tv.prog.loss);
            }
            putchar('\n');
            int active = strncmp(tv.state, "running", 7) == 0 ||
                         strncmp(tv.state, "pending", 7) == 0;
            counts[strcmp(tv.state, "finished") == 0 ? 0 : active ? 1 : tv.failed ? 2 : 3]++;
        }
        printf("state     %zu tasks: %zu finished, %zu pending or running, %zu failed, "
               "%zu other\n",
               spec->sweep.ntasks, counts[0], counts[1], counts[2], counts[3]);
        goto out;
    }
    st = view_run(dir, &q, stdout, 1, &v);
    if (st != DURE_OK) {
        goto out;
    }
    if (spec) {
        printf("spec      %s (run.name %s, %d steps)\n", path, spec->run.name,
               spec->run.steps);
    }
    print_progress(&v, stdout);
    printf("state     %s\n", v.state);
    print_launches(dir, stdout);
    st = print_failures(dir, stdout);
    if (st == DURE_OK) {
        st = print_failure_log(dir, &v, stdout);
    }
out:
    jobspec_free(spec);
    return dure_exit_code(st);
}
