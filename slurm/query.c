/* slurm/query.c - job state from scontrol, the jobcomp file or sacct. */
#include "slurm/query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slurm/proc.h"

/* The value of " Key=" (or "Key=" at the start) in a record, up to a blank. */
static int field(const char *line, const char *key, char *buf, size_t size)
{
    size_t klen = strlen(key);
    for (const char *p = strstr(line, key); p; p = strstr(p + 1, key)) {
        if (p != line && p[-1] != ' ' && p[-1] != '\n') {
            continue;
        }
        const char *v = p + klen;
        size_t n = strcspn(v, " \n");
        if (n >= size) {
            n = size - 1;
        }
        memcpy(buf, v, n);
        buf[n] = '\0';
        return 1;
    }
    return 0;
}

int slurm_job_parse_record(const char *line, struct slurm_job_info *out)
{
    char v[64];
    if (!field(line, "JobState=", out->state, sizeof out->state)) {
        return 0;
    }
    out->reason[0] = '\0';
    if (field(line, "Reason=", v, sizeof v) && strcmp(v, "None") != 0) {
        snprintf(out->reason, sizeof out->reason, "%s", v);
    }
    out->exit_code = -1;
    out->signal = 0;
    if (field(line, "ExitCode=", v, sizeof v)) {
        int code = -1, sig = 0;
        if (sscanf(v, "%d:%d", &code, &sig) >= 1) {
            out->exit_code = code;
            out->signal = sig;
        }
    }
    field(line, "JobId=", out->job_id, sizeof out->job_id);
    out->restarts = -1;
    if (field(line, "Restarts=", v, sizeof v)) {
        out->restarts = atoi(v);
    }
    return 1;
}

int slurm_jobcomp_matches(const char *line, const char *id)
{
    char a[32], t[32], want_a[32], want_t[32];
    const char *us = strchr(id, '_');
    if (us) {
        snprintf(want_a, sizeof want_a, "%.*s", (int)(us - id), id);
        snprintf(want_t, sizeof want_t, "%s", us + 1);
        return field(line, "ArrayJobId=", a, sizeof a) && strcmp(a, want_a) == 0 &&
               field(line, "ArrayTaskId=", t, sizeof t) && strcmp(t, want_t) == 0;
    }
    return field(line, "JobId=", a, sizeof a) && strcmp(a, id) == 0 &&
           !field(line, "ArrayJobId=", t, sizeof t);
}

int slurm_job_is_active(const struct slurm_job_info *job)
{
    static const char *const active[] = {"PENDING", "RUNNING", "CONFIGURING",
                                         "COMPLETING", "SUSPENDED", "REQUEUED",
                                         "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING",
                                         "SIGNALING", "STAGE_OUT", "STOPPED", NULL};
    for (int i = 0; active[i]; i++) {
        if (strcmp(job->state, active[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static dure_status_t read_config(struct slurm_query *q)
{
    dure_status_t st = DURE_OK;
    const char *argv[] = {"scontrol", "show", "config", NULL};
    struct proc_result r = {0};

    q->configured = 1;
    DURE_TRY(proc_run(argv, &r));
    for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
        char key[64], val[1024];
        if (sscanf(line, "%63s = %1023[^\n]", key, val) != 2) {
            continue;
        }
        if (strcmp(key, "JobCompType") == 0) {
            snprintf(q->jobcomp_type, sizeof q->jobcomp_type, "%.63s", val);
        } else if (strcmp(key, "JobCompLoc") == 0) {
            snprintf(q->jobcomp_loc, sizeof q->jobcomp_loc, "%s", val);
        }
    }
out:
    proc_result_free(&r);
    return st;
}

/* The last record of `id` in the jobcomp/filetxt file (a requeued job has several). */
static int jobcomp_lookup(const struct slurm_query *q, const char *id,
                          struct slurm_job_info *out)
{
    FILE *f = fopen(q->jobcomp_loc, "r");
    char *line = NULL;
    size_t cap = 0;
    int found = 0;
    if (!f) {
        return 0;
    }
    while (getline(&line, &cap, f) > 0) {
        if (slurm_jobcomp_matches(line, id)) {
            found |= slurm_job_parse_record(line, out);
        }
    }
    free(line);
    fclose(f);
    return found;
}

static dure_status_t sacct_lookup(const char *id, struct slurm_job_info *out, int *found)
{
    dure_status_t st = DURE_OK;
    const char *argv[] = {"sacct", "-n", "-P", "-X", "-j", id, "-o", "State,ExitCode", NULL};
    struct proc_result r = {0};

    *found = 0;
    st = proc_run(argv, &r);
    if (st == DURE_ERR_UNSUPPORTED) { /* no sacct on this system */
        st = DURE_OK;
        goto out;
    }
    DURE_TRY(st);
    if (r.exit_code != 0) {
        goto out;
    }
    /* Last line: "STATE|CODE:SIG"; State may read "CANCELLED by 0". */
    char *last = NULL;
    for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
        last = line;
    }
    int code = -1, sig = 0;
    char state[32];
    if (last && sscanf(last, "%31[^| ]%*[^|]|%d:%d", state, &code, &sig) == 3) {
        snprintf(out->state, sizeof out->state, "%s", state);
        out->exit_code = code;
        out->signal = sig;
        *found = 1;
    }
out:
    proc_result_free(&r);
    return st;
}

dure_status_t slurm_job_query(struct slurm_query *q, const char *id,
                              struct slurm_job_info *out)
{
    dure_status_t st = DURE_OK;
    const char *argv[] = {"scontrol", "show", "job", "-o", id, NULL};
    struct proc_result r = {0};
    int found = 0;

    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", id);
    snprintf(out->state, sizeof out->state, "UNKNOWN");
    out->exit_code = -1;
    out->restarts = -1;
    snprintf(out->source, sizeof out->source, "none");

    DURE_TRY(proc_run(argv, &r));
    if (r.exit_code == 0 && slurm_job_parse_record(r.out, out)) {
        snprintf(out->source, sizeof out->source, "scontrol");
        goto out;
    }
    if (!q->configured) {
        DURE_TRY(read_config(q));
    }
    if (strcmp(q->jobcomp_type, "jobcomp/filetxt") == 0 && jobcomp_lookup(q, id, out)) {
        snprintf(out->source, sizeof out->source, "jobcomp");
        goto out;
    }
    DURE_TRY(sacct_lookup(id, out, &found));
    if (found) {
        snprintf(out->source, sizeof out->source, "sacct");
    }
out:
    proc_result_free(&r);
    return st;
}
