/* train/metrics.c - JSON lines and the progress display; see metrics.h. */
#include "train/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
};

void dure_format_duration(double seconds, char *buf, size_t n)
{
    if (!isfinite(seconds) || seconds < 0) {
        snprintf(buf, n, "?");
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s >= 3600) {
        snprintf(buf, n, "%ldh%02ldm%02lds", s / 3600, s / 60 % 60, s % 60);
    } else if (s >= 60) {
        snprintf(buf, n, "%ldm%02lds", s / 60, s % 60);
    } else {
        snprintf(buf, n, "%lds", s);
    }
}

/* JSON number or null; %.17g keeps doubles exact for bitwise comparison. */
/* ",\"key\":v" (null when not finite; 17 digits when exact); first: no comma. */
static void put_key_num(FILE *f, int first, const char *key, double v, int exact)
{
    fprintf(f, "%s\"%s\":", first ? "" : ",", key);
    if (!isfinite(v)) {
        fputs("null", f);
    } else {
        fprintf(f, exact ? "%.17g" : "%.6g", v);
    }
}

static void put_num(FILE *f, const char *key, double v, int exact)
{
    put_key_num(f, 0, key, v, exact);
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
    char step_time[32];
    if (s->step_s >= 1.0) {
        snprintf(step_time, sizeof step_time, "%.2f s/step", s->step_s);
    } else {
        snprintf(step_time, sizeof step_time, "%.1f ms/step", 1e3 * s->step_s);
    }
    fprintf(m->progress,
            "%sstep %*ld/%ld | loss %.4f%s | gnorm %.3f | lr %.2e | %s"
            " | %.4g k timesteps/s | mfu %.1f%% | eta %s%s%s",
            m->tty ? "\r\033[K" : "", snprintf(NULL, 0, "%ld", m->total_steps), s->step,
            m->total_steps, s->loss, val, s->grad_norm, s->lr, step_time,
            s->timesteps_per_s / 1e3, 100.0 * s->mfu, eta,
            s->skipped ? " | SKIPPED (non-finite loss)" : "", m->tty ? "" : "\n");
    fflush(m->progress);
    m->line_open = m->tty;
}

dure_status_t dure_metrics_step(dure_metrics_t *m, const struct dure_step_metrics *s)
{
    dure_status_t st = DURE_OK;
    FILE *f = m->file;

    fprintf(f, "{\"step\":%ld", s->step);
    put_num(f, "loss", s->loss, 1);
    put_num(f, "grad_norm", s->grad_norm, 1);
    put_num(f, "lr", s->lr, 1);
    put_num(f, "step_s", s->step_s, 0);
    put_num(f, "timesteps_per_s", s->timesteps_per_s, 0);
    put_num(f, "mfu", s->mfu, 0);
    put_num(f, "data_wait_s", s->data_wait_s, 0);
    put_num(f, "comm_exposed_s", s->comm_exposed_s, 0);
    if (s->skipped) {
        fprintf(f, ",\"skipped\":true");
    }
    fputs("}\n", f);
    DURE_SYS_TRY(fflush(f) == 0 && !ferror(f), "cannot write %s", m->path);

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
    fprintf(m->file, "{\"step\":%ld", step);
    put_num(m->file, "val_loss", val_loss, 1);
    if (!isnan(baseline_loss)) {
        put_num(m->file, "baseline_loss", baseline_loss, 1);
    }
    if (n > 1) {
        /* Names are [A-Za-z0-9_-] (jobspec): no escaping needed. */
        fputs(",\"datasets\":{", m->file);
        for (int d = 0; d < n; d++) {
            fprintf(m->file, "%s\"%s\":{", d ? "," : "", sets[d].name);
            put_key_num(m->file, 1, "val_loss", sets[d].loss, 1);
            put_num(m->file, "baseline_loss", sets[d].baseline, 1);
            fputs("}", m->file);
        }
        fputs("}", m->file);
    }
    fputs("}\n", m->file);
    DURE_SYS_TRY(fflush(m->file) == 0 && !ferror(m->file), "cannot write %s", m->path);
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
