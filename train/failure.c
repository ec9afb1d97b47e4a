/* train/failure.c - see failure.h. */
#include "train/failure.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/fsutil.h"
#include "common/json.h"

/* ---------------------------------------------------------------- write */

static void write_record(struct json_writer *w, int launch, long step,
                         const struct comm_hang_report *r, int exit_code)
{
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    const char *job = getenv("SLURM_JOB_ID"), *restart = getenv("SLURM_RESTART_COUNT");
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_begin_object(w);
    json_key(w, "format");
    json_string(w, FAILURE_FORMAT);
    json_key(w, "format_version");
    json_int(w, FAILURE_FORMAT_VERSION);
    json_key(w, "time");
    json_string(w, when);
    json_key(w, "launch");
    json_int(w, launch);
    json_key(w, "job");
    json_string(w, job ? job : "");
    json_key(w, "restart");
    json_int(w, job ? (restart ? atoi(restart) : 0) : -1);
    json_key(w, "rank");
    json_int(w, r->rank);
    json_key(w, "size");
    json_int(w, r->size);
    json_key(w, "host");
    json_string(w, r->host);
    json_key(w, "step");
    json_int(w, step);
    json_key(w, "collective");
    json_begin_object(w);
    json_key(w, "op");
    json_string(w, r->op);
    json_key(w, "seq");
    json_uint(w, r->seq);
    json_key(w, "bytes");
    json_uint(w, r->bytes);
    json_key(w, "algo");
    json_string(w, r->algo);
    json_key(w, "waited_s");
    json_double(w, r->waited_s);
    json_end_object(w);
    json_key(w, "missing");
    json_begin_array(w);
    for (int i = 0; i < r->n_missing; i++) {
        const struct comm_hang_missing *m = &r->missing[i];
        json_begin_object(w);
        json_key(w, "rank");
        json_int(w, m->rank);
        json_key(w, "host");
        json_string(w, m->host);
        json_key(w, "state");
        json_string(w, comm_peer_state_name(m->state));
        json_key(w, "silent_s");
        json_double(w, m->state == COMM_PEER_SILENT ? m->silent_s : 0.0);
        json_key(w, "joined");
        json_uint(w, m->joined);
        json_end_object(w);
    }
    json_end_array(w);
    json_key(w, "exit_code");
    json_int(w, exit_code);
    json_end_object(w);
}

dure_status_t failure_record_write(const char *run_dir, int launch, long step,
                                   const struct comm_hang_report *r, int exit_code)
{
    dure_status_t st = DURE_OK;
    char dir[PATH_MAX], path[PATH_MAX + 32];
    char *text = NULL;
    size_t len = 0;
    FILE *f = NULL;
    struct json_writer w;
    int n = snprintf(dir, sizeof dir, "%s/failures/launch-%d", run_dir, launch);
    DURE_CHECK(n > 0 && (size_t)n < sizeof dir, DURE_ERR_ARG,
               "run directory path '%s' is too long", run_dir);
    snprintf(path, sizeof path, "%s/rank-%d.json", dir, r->rank);
    DURE_TRY(dure_mkdirs(dir));
    f = open_memstream(&text, &len);
    DURE_SYS_TRY(f != NULL, "failure record '%s'", path);
    json_writer_init(&w, f, 1);
    write_record(&w, launch, step, r, exit_code);
    DURE_TRY(json_writer_finish(&w, path));
    fputc('\n', f);
    {
        int rc = fclose(f);
        f = NULL;
        DURE_SYS_TRY(rc == 0, "failure record '%s'", path);
    }
    DURE_TRY(dure_file_write_atomic(path, text, len, 0644));
out:
    if (f) {
        fclose(f);
    }
    free(text);
    return st;
}

/* ---------------------------------------------------------------- read */

/* How bad a failed rank's state is: gone > stopped > silent. */
static int state_rank(const char *s)
{
    return strcmp(s, "gone") == 0 ? 3 : strcmp(s, "stopped") == 0 ? 2 : 1;
}

static struct failure_node *node_of(struct failure_node *list, int *n, const char *host)
{
    for (int i = 0; i < *n; i++) {
        if (strcmp(list[i].host, host) == 0) {
            return &list[i];
        }
    }
    if (*n == FAILURE_NODES_MAX) {
        return NULL;
    }
    struct failure_node *x = &list[(*n)++];
    memset(x, 0, sizeof *x);
    snprintf(x->host, sizeof x->host, "%s", host);
    return x;
}

static void add_rank(struct failure_node *x, int rank)
{
    char item[16];
    snprintf(item, sizeof item, "%d", rank);
    /* A rank seen by several survivors is listed once. */
    for (const char *p = x->ranks; (p = strstr(p, item)) != NULL; p++) {
        int starts = p == x->ranks || p[-1] == ' ';
        int ends = p[strlen(item)] == '\0' || p[strlen(item)] == ',';
        if (starts && ends) {
            return;
        }
    }
    size_t used = strlen(x->ranks);
    snprintf(x->ranks + used, sizeof x->ranks - used, "%s%s", used ? ", " : "", item);
}

static const char *str_of(const struct json_value *obj, const char *key)
{
    const struct json_value *v = json_get(obj, key);
    return v && v->type == JSON_STRING ? v->str : NULL;
}

static int num_of(const struct json_value *obj, const char *key, double *out)
{
    const struct json_value *v = json_get(obj, key);
    if (!v || v->type != JSON_NUMBER) {
        return 0;
    }
    *out = v->number;
    return 1;
}

/* Per merge: which reporter hosts accused each failed node, and the lowest
 * rank each reporter host holds. */
struct merge {
    uint64_t accused_by[FAILURE_NODES_MAX];
    int lowest_rank[FAILURE_NODES_MAX];
};

static dure_status_t merge_record(const char *path, const struct json_value *root,
                                  struct failure_summary *s, struct merge *mg)
{
    dure_status_t st = DURE_OK;
    const char *format = str_of(root, "format"), *host = str_of(root, "host");
    const struct json_value *coll = json_get(root, "collective"), *miss = json_get(root, "missing");
    double rank = 0, step = 0, seq = 0, waited = 0, code = 0;
    DURE_CHECK(format && strcmp(format, FAILURE_FORMAT) == 0 && host && coll && miss &&
                   miss->type == JSON_ARRAY && num_of(root, "rank", &rank) &&
                   num_of(root, "step", &step) && num_of(coll, "seq", &seq) &&
                   num_of(coll, "waited_s", &waited) && num_of(root, "exit_code", &code),
               DURE_ERR_FORMAT, "'%s' is not a dure failure record", path);
    const char *when = str_of(root, "time"), *op = str_of(coll, "op");
    if (s->n_records == 0 || (when && strcmp(when, s->time) < 0)) {
        snprintf(s->time, sizeof s->time, "%s", when ? when : "");
    }
    if (s->n_records == 0 || (long)step < s->step) {
        s->step = (long)step;
        s->seq = (uint64_t)seq;
        snprintf(s->op, sizeof s->op, "%s", op ? op : "?");
    }
    if (waited > s->waited_s) {
        s->waited_s = waited;
    }
    s->exit_code = (int)code;
    s->n_records++;
    int rep = -1;
    struct failure_node *me = node_of(s->reporters, &s->n_reporters, host);
    if (me) {
        rep = (int)(me - s->reporters);
        add_rank(me, (int)rank);
        if (mg->lowest_rank[rep] < 0 || (int)rank < mg->lowest_rank[rep]) {
            mg->lowest_rank[rep] = (int)rank;
        }
    }
    for (const struct json_value *m = miss->child; m; m = m->next) {
        const char *mhost = str_of(m, "host"), *state = str_of(m, "state");
        double mrank = 0, silent = 0;
        if (!mhost || !state || !num_of(m, "rank", &mrank) || strcmp(state, "behind") == 0) {
            continue;
        }
        num_of(m, "silent_s", &silent);
        struct failure_node *x = node_of(s->failed, &s->n_failed, mhost);
        if (!x) {
            continue;
        }
        add_rank(x, (int)mrank);
        if (!x->state[0] || state_rank(state) > state_rank(x->state)) {
            snprintf(x->state, sizeof x->state, "%s", state);
        }
        if (silent > x->silent_s) {
            x->silent_s = silent;
        }
        if (rep >= 0) {
            mg->accused_by[x - s->failed] |= (uint64_t)1 << rep;
        }
    }
out:
    return st;
}

/* Which failed nodes to exclude (see failure.h). */
static void decide(struct failure_summary *s, const struct merge *mg)
{
    int all_reporters = 1, keep = -1, keep_rank = -1;
    for (int i = 0; i < s->n_failed; i++) {
        s->failed[i].accusers = __builtin_popcountll(mg->accused_by[i]);
        s->exclude[i] = 2 * s->failed[i].accusers >= s->n_reporters;
    }
    for (int r = 0; r < s->n_reporters; r++) {
        int excluded = 0;
        for (int i = 0; i < s->n_failed; i++) {
            excluded |= s->exclude[i] && strcmp(s->failed[i].host, s->reporters[r].host) == 0;
        }
        all_reporters &= excluded;
        if (keep_rank < 0 || mg->lowest_rank[r] < keep_rank) {
            keep_rank = mg->lowest_rank[r];
            keep = r;
        }
    }
    if (s->n_reporters > 0 && all_reporters) {
        for (int i = 0; i < s->n_failed; i++) {
            if (strcmp(s->failed[i].host, s->reporters[keep].host) == 0) {
                s->exclude[i] = 0;
            }
        }
    }
}

/* "rank-<digits>.json" */
static int is_record_name(const char *name)
{
    size_t n = strlen(name), digits = strspn(name + 5, "0123456789");
    return n > 10 && strncmp(name, "rank-", 5) == 0 && digits > 0 &&
           strcmp(name + 5 + digits, ".json") == 0;
}

/* Records of one launch directory matching the filter, merged into s. */
static dure_status_t read_launch(const char *dir, const char *job, int restart,
                                 struct failure_summary *s)
{
    dure_status_t st = DURE_OK;
    DIR *d = opendir(dir);
    struct dirent *e;
    struct merge mg;
    json_doc_t *doc = NULL;
    memset(&mg, 0, sizeof mg);
    for (int i = 0; i < FAILURE_NODES_MAX; i++) {
        mg.lowest_rank[i] = -1;
    }
    DURE_SYS_TRY(d != NULL, "failure records '%s'", dir);
    while ((e = readdir(d)) != NULL) {
        char path[PATH_MAX + 300];
        if (!is_record_name(e->d_name)) {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        DURE_TRY(json_parse_file(path, &doc));
        const struct json_value *root = json_root(doc);
        const char *rjob = str_of(root, "job");
        double rrestart = -1;
        num_of(root, "restart", &rrestart);
        if (!job || (rjob && strcmp(rjob, job) == 0 && (int)rrestart == restart)) {
            DURE_TRY(merge_record(path, root, s, &mg));
            snprintf(s->job, sizeof s->job, "%s", rjob ? rjob : "");
            s->restart = (int)rrestart;
        }
        json_free(doc);
        doc = NULL;
    }
    decide(s, &mg);
out:
    json_free(doc);
    if (d) {
        closedir(d);
    }
    return st;
}

dure_status_t failure_summary_read(const char *run_dir, const char *job, int restart,
                                   struct failure_summary *s)
{
    dure_status_t st = DURE_OK;
    char base[PATH_MAX], dir[PATH_MAX + 32];
    DIR *d = NULL;
    struct dirent *e;
    int newest = -1;
    memset(s, 0, sizeof *s);
    s->launch = -1;
    snprintf(base, sizeof base, "%s/failures", run_dir);
    d = opendir(base);
    if (!d) {
        goto out; /* no failure recorded */
    }
    /* The newest launch with a (matching) record: numbers downwards. */
    while ((e = readdir(d)) != NULL) {
        int k = -1;
        char rest = 0;
        if (sscanf(e->d_name, "launch-%d%c", &k, &rest) == 1 && k > newest) {
            newest = k;
        }
    }
    for (int k = newest; k >= 0 && s->launch < 0; k--) {
        snprintf(dir, sizeof dir, "%s/launch-%d", base, k);
        DIR *probe = opendir(dir);
        if (!probe) {
            continue;
        }
        closedir(probe);
        DURE_TRY(read_launch(dir, job, restart, s));
        if (s->n_records > 0) {
            s->launch = k;
        }
    }
out:
    if (d) {
        closedir(d);
    }
    return st;
}
