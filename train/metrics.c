/* train/metrics.c - JSON lines and the progress display; see metrics.h. */
#include "train/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/timing.h"

struct dure_metrics {
    FILE *file;          /* RUN_DIR/metrics.jsonl, append */
    char path[4096];
    FILE *progress;      /* NULL: no display */
    int tty;             /* progress is a terminal: update one line */
    int line_open;       /* a tty line is drawn and not yet ended */
    long total_steps;
    int log_every;
    long first_step;     /* first step this process took */
    long steps_seen;
    double sum_step_s;   /* over steps after this process's first */
    double first_step_s;
    double last_draw;    /* monotonic seconds of the last tty redraw */
    double last_val;     /* NAN until a validation pass */
    char mark[128];      /* shown at the end of progress lines; "" = none */
};

/* A metric: exact (17 digits, so `dure verify` can compare bits) or a
 * measurement (6 digits); NaN and Inf are null. */
static void put_num(struct json_writer *w, const char *key, double v, int exact)
{
    json_key(w, key);
    json_number(w, v, exact ? 17 : 6);
}

/*
 * Is the progress stream a terminal that can take an updating line? Under
 * mpirun, Open MPI hands each rank a pseudo-terminal whatever mpirun's own
 * stdout is, so a rank's isatty() says nothing about where the text ends
 * up: there, ask about the stdout of the parent (mpirun on one node; on
 * other nodes orted, whose stdout is no terminal).
 */
static int is_terminal(FILE *f)
{
    char link[64], target[256];
    if (!isatty(fileno(f))) {
        return 0;
    }
    if (!getenv("OMPI_COMM_WORLD_RANK")) {
        return 1;
    }
    snprintf(link, sizeof link, "/proc/%ld/fd/1", (long)getppid());
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) {
        return 0;
    }
    target[n] = '\0';
    return strncmp(target, "/dev/pts/", 9) == 0 || strncmp(target, "/dev/tty", 8) == 0;
}

/* Keep only the lines of steps <= keep_step (see dure_metrics_open). */
static dure_status_t truncate_history(const char *path, long keep_step)
{
    dure_status_t st = DURE_OK;
    char tmp[4200];
    FILE *in = NULL, *out = NULL;
    char *line = NULL;
    size_t cap = 0;

    in = fopen(path, "r");
    if (!in) {
        DURE_SYS_TRY(errno == ENOENT, "cannot read %s", path);
        goto out;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    DURE_SYS_TRY((out = fopen(tmp, "w")) != NULL, "cannot write %s", tmp);
    while (getline(&line, &cap, in) > 0) {
        long step = 0;
        if (sscanf(line, "{\"step\":%ld", &step) == 1 && step <= keep_step) {
            DURE_SYS_TRY(fputs(line, out) >= 0, "cannot write %s", tmp);
        }
    }
    DURE_SYS_TRY(!ferror(in), "cannot read %s", path);
    DURE_SYS_TRY(fflush(out) == 0 && fsync(fileno(out)) == 0, "cannot write %s", tmp);
    DURE_SYS_TRY(fclose(out) == 0, "cannot write %s", tmp);
    out = NULL;
    DURE_SYS_TRY(rename(tmp, path) == 0, "cannot rename %s to %s", tmp, path);
out:
    if (out) {
        fclose(out);
        unlink(tmp);
    }
    if (in) {
        fclose(in);
    }
    free(line);
    return st;
}

dure_status_t dure_metrics_open(dure_metrics_t **out, const char *run_dir,
                                long resume_step, long total_steps, int log_every,
                                FILE *progress)
{
    dure_status_t st = DURE_OK;
    dure_metrics_t *m = calloc(1, sizeof *m);
    DURE_ALLOC_TRY(m, sizeof *m);
    int n = snprintf(m->path, sizeof m->path, "%s/metrics.jsonl", run_dir);
    DURE_CHECK(n > 0 && (size_t)n < sizeof m->path, DURE_ERR_ARG,
               "run directory path is too long: %s", run_dir);
    DURE_TRY(truncate_history(m->path, resume_step));
    DURE_SYS_TRY((m->file = fopen(m->path, "a")) != NULL, "cannot open %s", m->path);
    m->progress = progress;
    m->tty = progress && is_terminal(progress);
    m->total_steps = total_steps;
    m->log_every = log_every > 0 ? log_every : 1;
    m->first_step = -1;
    m->last_val = NAN;
    *out = m;
    m = NULL;
out:
    if (m) {
        dure_metrics_close(m);
    }
    return st;
}

static double eta_s(const dure_metrics_t *m, long step)
{
    double mean = m->steps_seen > 1 ? m->sum_step_s / (double)(m->steps_seen - 1)
                                    : m->first_step_s;
    return mean * (double)(m->total_steps - step);
}

static void draw(dure_metrics_t *m, const struct dure_step_metrics *s)
{
    char eta[32], val[48] = "";
    dure_format_duration(eta_s(m, s->step), eta, sizeof eta);
    if (isfinite(m->last_val)) {
        snprintf(val, sizeof val, " | val %.4f", m->last_val);
    }
    /* A mixture's datasets, compactly: "; robot 0.123/0.456, mill ..." */
    char sets[256] = "";
    size_t at = 0;
    for (int d = 0; s->n_sets > 1 && d < s->n_sets && at < sizeof sets; d++) {
        /* A dataset with no window in this batch: "-". */
        int k = isnan(s->sets[d].loss)
                    ? snprintf(sets + at, sizeof sets - at, "%s %s -", d ? "," : ";",
                               s->sets[d].name)
                    : snprintf(sets + at, sizeof sets - at, "%s %s %.3f/%.3f", d ? "," : ";",
                               s->sets[d].name, s->sets[d].loss, s->sets[d].baseline);
        at += k > 0 ? (size_t)k : 0;
    }
    char step_time[32];
    if (s->step_s >= 1.0) {
        snprintf(step_time, sizeof step_time, "%.2f s/step", s->step_s);
    } else {
        snprintf(step_time, sizeof step_time, "%.1f ms/step", 1e3 * s->step_s);
    }
    fprintf(m->progress,
            "%sstep %*ld/%ld | loss %.4f%s%s | gnorm %.3f | lr %.2e | %s"
            " | %.4g k timesteps/s | mfu %.1f%% | eta %s%s%s%s%s",
            m->tty ? "\r\033[K" : "", snprintf(NULL, 0, "%ld", m->total_steps), s->step,
            m->total_steps, s->loss, sets, val, s->grad_norm, s->lr, step_time,
            s->timesteps_per_s / 1e3, 100.0 * s->mfu, eta,
            s->skipped ? " | SKIPPED (non-finite loss)" : "", m->mark[0] ? " | " : "",
            m->mark, m->tty ? "" : "\n");
    fflush(m->progress);
    m->line_open = m->tty;
}

dure_status_t dure_metrics_step(dure_metrics_t *m, const struct dure_step_metrics *s)
{
    dure_status_t st = DURE_OK;
    struct json_writer w;

    json_writer_init(&w, m->file, 0);
    json_begin_object(&w);
    json_key(&w, "step");
    json_int(&w, s->step);
    put_num(&w, "loss", s->loss, 1);
    put_num(&w, "grad_norm", s->grad_norm, 1);
    put_num(&w, "lr", s->lr, 1);
    put_num(&w, "step_s", s->step_s, 0);
    put_num(&w, "timesteps_per_s", s->timesteps_per_s, 0);
    put_num(&w, "mfu", s->mfu, 0);
    put_num(&w, "data_wait_s", s->data_wait_s, 0);
    put_num(&w, "comm_exposed_s", s->comm_exposed_s, 0);
    put_num(&w, "optimizer_s", s->optimizer_s, 0);
    put_num(&w, "comm_thread_cpu_s", s->comm_thread_cpu_s, 0);
    if (s->skipped) {
        json_key(&w, "skipped");
        json_bool(&w, 1);
    }
    if (s->n_sets > 1) {
        json_key(&w, "datasets");
        json_begin_object(&w);
        for (int d = 0; d < s->n_sets; d++) {
            json_key(&w, s->sets[d].name);
            json_begin_object(&w);
            put_num(&w, "loss", s->sets[d].loss, 1);
            put_num(&w, "baseline_loss", s->sets[d].baseline, 1);
            json_end_object(&w);
        }
        json_end_object(&w);
    }
    json_end_object(&w);
    fputc('\n', m->file);
    DURE_TRY(json_writer_finish(&w, m->path));
    DURE_SYS_TRY(fflush(m->file) == 0, "cannot write %s", m->path);

    if (m->first_step < 0) {
        m->first_step = s->step;
        m->first_step_s = s->step_s;
    } else {
        m->sum_step_s += s->step_s;
    }
    m->steps_seen++;
    if (!m->progress) {
        goto out;
    }
    int last = s->step >= m->total_steps;
    if (m->tty) {
        double t = dure_now_s();
        if (last || t - m->last_draw >= 0.1 || s->skipped) {
            m->last_draw = t;
            draw(m, s);
        }
    } else if (last || s->step == m->first_step || s->step % m->log_every == 0 ||
               s->skipped) {
        draw(m, s);
    }
out:
    return st;
}

dure_status_t dure_metrics_val(dure_metrics_t *m, long step, double val_loss,
                               double baseline_loss, const struct dure_val_dataset *sets,
                               int n)
{
    dure_status_t st = DURE_OK;
    struct json_writer w;
    json_writer_init(&w, m->file, 0);
    json_begin_object(&w);
    json_key(&w, "step");
    json_int(&w, step);
    put_num(&w, "val_loss", val_loss, 1);
    if (!isnan(baseline_loss)) {
        put_num(&w, "baseline_loss", baseline_loss, 1);
    }
    if (n > 1) {
        json_key(&w, "datasets");
        json_begin_object(&w);
        for (int d = 0; d < n; d++) {
            json_key(&w, sets[d].name);
            json_begin_object(&w);
            put_num(&w, "val_loss", sets[d].loss, 1);
            put_num(&w, "baseline_loss", sets[d].baseline, 1);
            json_end_object(&w);
        }
        json_end_object(&w);
    }
    json_end_object(&w);
    fputc('\n', m->file);
    DURE_TRY(json_writer_finish(&w, m->path));
    DURE_SYS_TRY(fflush(m->file) == 0, "cannot write %s", m->path);
    m->last_val = val_loss;
    if (m->progress && !m->tty) {
        fprintf(m->progress, "step %ld: validation loss %.6f (naive baseline %.6f)", step,
                val_loss, baseline_loss);
        for (int d = 0; n > 1 && d < n; d++) {
            fprintf(m->progress, "%s %s %.4f/%.4f", d ? "," : ";", sets[d].name,
                    sets[d].loss, sets[d].baseline);
        }
        fputc('\n', m->progress);
        fflush(m->progress);
    }
out:
    return st;
}

void dure_metrics_mark(dure_metrics_t *m, const char *text)
{
    if (m) {
        snprintf(m->mark, sizeof m->mark, "%s", text ? text : "");
    }
}

dure_status_t dure_metrics_event(dure_metrics_t *m, long step, const char *fields, ...)
{
    dure_status_t st = DURE_OK;
    va_list ap;
    fprintf(m->file, "{\"step\":%ld,", step);
    va_start(ap, fields);
    vfprintf(m->file, fields, ap);
    va_end(ap);
    fputs("}\n", m->file);
    DURE_SYS_TRY(fflush(m->file) == 0 && !ferror(m->file), "cannot write %s", m->path);
out:
    return st;
}

void dure_metrics_note(dure_metrics_t *m, const char *fmt, ...)
{
    va_list ap;
    if (!m || !m->progress) {
        return;
    }
    if (m->line_open) {
        fputc('\n', m->progress);
        m->line_open = 0;
    }
    va_start(ap, fmt);
    vfprintf(m->progress, fmt, ap);
    va_end(ap);
    fputc('\n', m->progress);
    fflush(m->progress);
}

dure_status_t dure_metrics_close(dure_metrics_t *m)
{
    dure_status_t st = DURE_OK;
    if (!m) {
        return st;
    }
    if (m->line_open) {
        fputc('\n', m->progress);
        fflush(m->progress);
    }
    if (m->file && fclose(m->file) != 0) {
        dure_log_syserr(__FILE__, __LINE__, "cannot close %s", m->path);
        st = DURE_ERR_IO;
    }
    free(m);
    return st;
}
