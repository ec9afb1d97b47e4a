/* slurm/status.c - progress, job ids and logs of a run directory. */
#include "slurm/status.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

#define TAIL_BYTES 65536
#define STEP_TIME_WINDOW 20

/* The step line keys whose means over the window run_progress has. */
static const char *const window_key[] = {"step_s", "comm_exposed_s", "data_wait_s",
                                         "comm_thread_cpu_s"};
enum { NKEYS = sizeof window_key / sizeof window_key[0] };

dure_status_t run_progress_read(const char *run_dir, struct run_progress *p)
{
    dure_status_t st = DURE_OK;
    char *path = NULL, *buf = NULL;
    FILE *f = NULL;
    /* The last STEP_TIME_WINDOW step lines with a step time: each key's
     * value, NAN where the line had none. */
    double win[STEP_TIME_WINDOW][NKEYS];
    double *mean[NKEYS] = {&p->step_s, &p->exposed_s, &p->data_wait_s, &p->thread_cpu_s};
    int ntimes = 0, next = 0;

    p->step = p->val_step = p->straggler_step = -1;
    p->loss = p->val_loss = p->step_s = 0;
    p->exposed_s = p->data_wait_s = p->thread_cpu_s = NAN;
    p->steps_timed = 0;
    p->straggler[0] = '\0';
    DURE_CHECK(asprintf(&path, "%s/metrics.jsonl", run_dir) >= 0, DURE_ERR_NOMEM,
               "out of memory");
    f = fopen(path, "r");
    if (!f && errno == ENOENT) {
        goto out;
    }
    DURE_SYS_TRY(f != NULL, "cannot open '%s'", path);
    DURE_SYS_TRY(fseek(f, 0, SEEK_END) == 0, "cannot seek '%s'", path);
    long size = ftell(f);
    DURE_SYS_TRY(size >= 0, "cannot tell the size of '%s'", path);
    long from = size > TAIL_BYTES ? size - TAIL_BYTES : 0;
    DURE_SYS_TRY(fseek(f, from, SEEK_SET) == 0, "cannot seek '%s'", path);
    buf = malloc((size_t)(size - from) + 1);
    DURE_ALLOC_TRY(buf, (size_t)(size - from) + 1);
    size_t n = fread(buf, 1, (size_t)(size - from), f);
    DURE_SYS_TRY(!ferror(f), "cannot read '%s'", path);
    buf[n] = '\0';
    /* From the middle of the file, the first line may be cut: skip it. */
    char *line = from > 0 ? strchr(buf, '\n') : buf;
    while (line && *line) {
        if (*line == '\n') {
            line++;
            continue;
        }
        char *nl = strchr(line, '\n');
        if (!nl) {
            break; /* a line still being written */
        }
        *nl = '\0';
        double step, v;
        if (json_line_number(line, "step", &step)) {
            if (json_line_number(line, "loss", &v)) {
                p->step = (long)step;
                p->loss = v;
            }
            if (json_line_number(line, "val_loss", &v)) {
                p->val_step = (long)step;
                p->val_loss = v;
            }
            const char *sg = strstr(line, "\"straggler\":\"");
            if (sg) {
                sg += strlen("\"straggler\":\"");
                p->straggler_step = (long)step;
                snprintf(p->straggler, sizeof p->straggler, "%.*s",
                         (int)strcspn(sg, "\""), sg);
            }
            if (json_line_number(line, window_key[0], &v) && v > 0) {
                win[next][0] = v;
                for (int k = 1; k < NKEYS; k++) {
                    win[next][k] = json_line_number(line, window_key[k], &v) ? v : NAN;
                }
                next = (next + 1) % STEP_TIME_WINDOW;
                ntimes += ntimes < STEP_TIME_WINDOW;
            }
        }
        line = nl + 1;
    }
    p->steps_timed = ntimes;
    for (int k = 0; k < NKEYS; k++) {
        double sum = 0;
        int n = 0;
        for (int i = 0; i < ntimes; i++) {
            if (!isnan(win[i][k])) {
                sum += win[i][k];
                n++;
            }
        }
        if (n) {
            *mean[k] = sum / n;
        }
    }
out:
    if (f) {
        fclose(f);
    }
    free(buf);
    free(path);
    return st;
}

void run_jobs_free(char **ids, size_t count)
{
    for (size_t i = 0; ids && i < count; i++) {
        free(ids[i]);
    }
    free(ids);
}

dure_status_t run_jobs_read(const char *run_dir, char ***ids, size_t *count)
{
    dure_status_t st = DURE_OK;
    char *path = NULL, *line = NULL;
    char **v = NULL;
    size_t n = 0, cap = 0;
    FILE *f = NULL;

    *ids = NULL;
    *count = 0;
    DURE_CHECK(asprintf(&path, "%s/jobs", run_dir) >= 0, DURE_ERR_NOMEM, "out of memory");
    f = fopen(path, "r");
    if (!f && errno == ENOENT) {
        goto out;
    }
    DURE_SYS_TRY(f != NULL, "cannot open '%s'", path);
    while (getline(&line, &cap, f) > 0) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0]) {
            continue;
        }
        char **nv = realloc(v, (n + 1) * sizeof *v);
        DURE_ALLOC_TRY(nv, (n + 1) * sizeof *v);
        v = nv;
        v[n] = strdup(line);
        DURE_ALLOC_TRY(v[n], strlen(line) + 1);
        n++;
    }
    DURE_SYS_TRY(!ferror(f), "cannot read '%s'", path);
    *ids = v;
    *count = n;
    v = NULL;
    n = 0;
out:
    if (f) {
        fclose(f);
    }
    free(line);
    free(path);
    run_jobs_free(v, n);
    return st;
}

dure_status_t run_log_find(const char *run_dir, const char *job_id, char *buf, size_t size)
{
    dure_status_t st = DURE_OK;
    char suffix[64];
    DIR *d = NULL;
    struct dirent *e;
    int found = 0;

    snprintf(suffix, sizeof suffix, "_%s.out", job_id);
    d = opendir(run_dir);
    DURE_SYS_TRY(d != NULL, "cannot open run directory '%s'", run_dir);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (len > sl && strcmp(e->d_name + len - sl, suffix) == 0) {
            int w = snprintf(buf, size, "%s/%s", run_dir, e->d_name);
            found = w > 0 && (size_t)w < size;
            break;
        }
    }
    DURE_CHECK(found, DURE_ERR_IO, "no log of job %s in %s", job_id, run_dir);
out:
    if (d) {
        closedir(d);
    }
    return st;
}

dure_status_t run_log_grep(const char *path, const char *prefix, int max, const char *indent,
                           FILE *out, int *found)
{
    dure_status_t st = DURE_OK;
    FILE *f = NULL;
    char *line = NULL;
    size_t cap = 0, plen = strlen(prefix);

    *found = 0;
    f = fopen(path, "r");
    DURE_SYS_TRY(f != NULL, "cannot open '%s'", path);
    while (*found < max && getline(&line, &cap, f) > 0) {
        if (strncmp(line, prefix, plen) == 0) {
            line[strcspn(line, "\n")] = '\0';
            fprintf(out, "%s%s\n", indent, line);
            ++*found;
        }
    }
    DURE_SYS_TRY(!ferror(f), "cannot read '%s'", path);
out:
    if (f) {
        fclose(f);
    }
    free(line);
    return st;
}

dure_status_t run_log_tail(const char *path, int lines, const char *indent, FILE *out)
{
    dure_status_t st = DURE_OK;
    FILE *f = NULL;
    char *buf = NULL;

    f = fopen(path, "r");
    DURE_SYS_TRY(f != NULL, "cannot open '%s'", path);
    DURE_SYS_TRY(fseek(f, 0, SEEK_END) == 0, "cannot seek '%s'", path);
    long size = ftell(f);
    DURE_SYS_TRY(size >= 0, "cannot tell the size of '%s'", path);
    long from = size > 8192 ? size - 8192 : 0;
    DURE_SYS_TRY(fseek(f, from, SEEK_SET) == 0, "cannot seek '%s'", path);
    buf = malloc((size_t)(size - from) + 1);
    DURE_ALLOC_TRY(buf, (size_t)(size - from) + 1);
    size_t n = fread(buf, 1, (size_t)(size - from), f);
    buf[n] = '\0';
    while (n > 0 && buf[n - 1] == '\n') {
        buf[--n] = '\0';
    }
    const char *start = buf;
    int seen = 0;
    for (size_t i = n; i > 0; i--) {
        if (buf[i - 1] == '\n' && ++seen == lines) {
            start = buf + i;
            break;
        }
    }
    for (const char *l = start; *l;) {
        size_t len = strcspn(l, "\n");
        fprintf(out, "%s%.*s\n", indent, (int)len, l);
        l += len + (l[len] == '\n');
    }
out:
    if (f) {
        fclose(f);
    }
    free(buf);
    return st;
}
