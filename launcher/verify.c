/* launcher/verify.c - see verify.h. */
#include "launcher/verify.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/json.h"
#include "ckpt/ckpt.h"

#define PATH_CAP 1024
#define CMP_BLOCK ((size_t)1 << 20) /* floats per checkpoint read */

/* Manifest fields that differ between any two runs by design ([*]: any index). */
static const char *const ignored_fields[] = {
    "created_at",
    "run_dir",
    "command",
    "launch",
    "resumed_from",
    "resumed_from.checkpoint",
    "resumed_from.step",
    "world.hosts[*].name",
    "jobspec.run.name",
    "jobspec.slurm.job_name",       /* a label, from run.name unless set */
    "jobspec.run.dir",
    "jobspec.checkpoint.dir",
    /* Covers run.dir too; every job-spec field is compared one by one. */
    "jobspec_hash",
};

/* Fields exact mode keeps out of the bits (how the work is spread):
 * ignored too when both runs ran in exact mode under the same contract. */
static const char *const exact_layout_fields[] = {
    "world.size",
    "world.nodes",
    "world.ranks_per_node[*]",
    "world.hosts[*].ranks[*]",
    "world.hosts[*].local_ranks[*]",
    "world.hosts[*].leader",
    "algorithms.allreduce",
    "algorithms.reduce_scatter",
    "algorithms.allgather",
    "algorithms.algo_table",
    "algorithms.ring_segment",
    "deterministic",
    "jobspec.run.deterministic",
    "jobspec.run.threads",
    "jobspec.parallel.zero_stage",
    "jobspec.parallel.prefetch",
    "jobspec.parallel.reshard_after_forward",
    "jobspec.parallel.bucket_mb",
    "jobspec.parallel.overlap",
    "jobspec.parallel.algo",
    "jobspec.parallel.algo_table",
    "jobspec.parallel.ring_segment_kib",
    "jobspec.slurm.nodes",
    "jobspec.slurm.ntasks_per_node",
    "jobspec.slurm.gpus_per_node",
    "jobspec.slurm.cpus_per_task",
};

/* ---------------------------------------------------------------- manifest */

struct leaf {
    char *path;
    char *text;
};

struct leaves {
    struct leaf *v;
    size_t n, cap;
};

static void leaves_free(struct leaves *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].path);
        free(l->v[i].text);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static dure_status_t leaves_add(struct leaves *l, const char *path, const char *a,
                                const char *b, const char *c)
{
    dure_status_t st = DURE_OK;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        struct leaf *nv = realloc(l->v, cap * sizeof *nv);
        DURE_ALLOC_TRY(nv, cap * sizeof *nv);
        l->v = nv;
        l->cap = cap;
    }
    size_t len = strlen(a) + strlen(b) + strlen(c) + 1;
    char *text = malloc(len);
    char *p = strdup(path);
    if (!text || !p) {
        free(text);
        free(p);
        DURE_ALLOC_TRY(NULL, len);
    }
    snprintf(text, len, "%s%s%s", a, b, c);
    l->v[l->n].path = p;
    l->v[l->n].text = text;
    l->n++;
out:
    return st;
}

/* Every leaf of v as "path = text"; strings quoted, numbers as written. */
static dure_status_t flatten(const struct json_value *v, char *path, size_t plen,
                             struct leaves *out)
{
    dure_status_t st = DURE_OK;
    size_t i = 0;
    switch (v->type) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        if (!v->child) {
            DURE_TRY(leaves_add(out, path, v->type == JSON_OBJECT ? "{}" : "[]", "", ""));
        }
        for (const struct json_value *c = v->child; c; c = c->next, i++) {
            int n = v->type == JSON_OBJECT
                        ? snprintf(path + plen, PATH_CAP - plen, "%s%s", plen ? "." : "",
                                   c->key)
                        : snprintf(path + plen, PATH_CAP - plen, "[%zu]", i);
            DURE_CHECK(n > 0 && (size_t)n < PATH_CAP - plen, DURE_ERR_FORMAT,
                       "manifest field path '%s...' is too long", path);
            DURE_TRY(flatten(c, path, plen + (size_t)n, out));
            path[plen] = '\0';
        }
        break;
    case JSON_STRING:
        DURE_TRY(leaves_add(out, path, "\"", v->str, "\""));
        break;
    case JSON_NUMBER:
        DURE_TRY(leaves_add(out, path, v->num, "", ""));
        break;
    case JSON_BOOL:
        DURE_TRY(leaves_add(out, path, v->boolean ? "true" : "false", "", ""));
        break;
    case JSON_NULL:
        DURE_TRY(leaves_add(out, path, "null", "", ""));
        break;
    }
out:
    return st;
}

static int cmp_leaf(const void *x, const void *y)
{
    return strcmp(((const struct leaf *)x)->path, ((const struct leaf *)y)->path);
}

static int in_list(const char *norm, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(norm, list[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Is `path` (with any "[digits]" read as "[*]") one of ignored_fields, or
 * with `exact` one of exact_layout_fields? */
static int is_ignored(const char *path, int exact)
{
    char norm[PATH_CAP];
    size_t o = 0;
    for (const char *p = path; *p && o + 4 < sizeof norm; p++) {
        if (*p == '[') {
            const char *q = p + 1;
            while (*q >= '0' && *q <= '9') {
                q++;
            }
            if (q > p + 1 && *q == ']') {
                memcpy(norm + o, "[*]", 3);
                o += 3;
                p = q;
                continue;
            }
        }
        norm[o++] = *p;
    }
    norm[o] = '\0';
    return in_list(norm, ignored_fields, sizeof ignored_fields / sizeof ignored_fields[0]) ||
           (exact && in_list(norm, exact_layout_fields,
                             sizeof exact_layout_fields / sizeof exact_layout_fields[0]));
}

static dure_status_t load_manifest(const char *run, json_doc_t **doc, struct leaves *l)
{
    dure_status_t st = DURE_OK;
    char path[PATH_CAP];
    int n = snprintf(path, sizeof path, "%s/manifest.json", run);
    DURE_CHECK(n > 0 && (size_t)n < sizeof path, DURE_ERR_ARG, "run path '%s' is too long",
               run);
    DURE_TRY(json_parse_file(path, doc));
    DURE_CHECK(json_root(*doc)->type == JSON_OBJECT, DURE_ERR_FORMAT,
               "'%s' is not a JSON object", path);
    path[0] = '\0';
    DURE_TRY(flatten(json_root(*doc), path, 0, l));
    qsort(l->v, l->n, sizeof *l->v, cmp_leaf);
out:
    return st;
}

static void compare_manifests(const struct leaves *a, const struct leaves *b, int exact,
                              FILE *out, struct verify_result *r)
{
    size_t i = 0, j = 0;
    char ignored[2048] = "";
    while (i < a->n || j < b->n) {
        int c = i == a->n ? 1 : j == b->n ? -1 : strcmp(a->v[i].path, b->v[j].path);
        const char *path = c <= 0 ? a->v[i].path : b->v[j].path;
        const char *ta = c <= 0 ? a->v[i].text : "(absent)";
        const char *tb = c >= 0 ? b->v[j].text : "(absent)";
        if (c != 0 || strcmp(ta, tb) != 0) {
            if (is_ignored(path, exact)) {
                r->manifest_ignored++;
                size_t used = strlen(ignored);
                snprintf(ignored + used, sizeof ignored - used, "%s%s", used ? ", " : "",
                         path);
            } else {
                if (r->manifest_diffs == 0) {
                    fprintf(out, "manifest: fields that differ (A vs B):\n");
                }
                r->manifest_diffs++;
                fprintf(out, "  %s: %s vs %s\n", path, ta, tb);
            }
        }
        i += c <= 0;
        j += c >= 0;
    }
    if (r->manifest_diffs == 0) {
        fprintf(out, "manifest: all %zu fields agree\n", a->n > b->n ? a->n : b->n);
    }
    if (r->manifest_ignored) {
        fprintf(out, "manifest: ignored, differ by design: %s\n", ignored);
    }
}

/* The text of the leaf at `path`, or NULL. */
static const char *leaf_text(const struct leaves *l, const char *path)
{
    struct leaf key = {.path = (char *)path};
    const struct leaf *f = bsearch(&key, l->v, l->n, sizeof *l->v, cmp_leaf);
    return f ? f->text : NULL;
}

/*
 * Exact mode (run.exact): say whether the two runs' contracts allow bitwise
 * agreement across world sizes and layouts. Returns 1 when both ran in exact
 * mode under the same contract (the layout fields are then ignored).
 */
static int compare_exact(const struct leaves *a, const struct leaves *b, FILE *out)
{
    const char *prefix = "exact.";
    const size_t np = strlen(prefix);
    const char *sa = leaf_text(a, "exact.contract"), *sb = leaf_text(b, "exact.contract");
    if (!sa && !sb) {
        const char *wa = leaf_text(a, "world.size"), *wb = leaf_text(b, "world.size");
        if (wa && wb && strcmp(wa, wb) != 0) {
            fprintf(out,
                    "exact mode: off in both runs, on %s vs %s ranks: their sums are "
                    "grouped by rank, so bitwise agreement is not expected (run.exact = "
                    "true gives it)\n",
                    wa, wb);
        }
        return 0;
    }
    if (!sa || !sb) {
        fprintf(out,
                "exact mode: run %s only: the other groups its sums by rank, so the two "
                "agree bitwise only at the same world size and layout\n",
                sa ? "A" : "B");
        return 0;
    }
    /* Every field of either contract must match. */
    for (int side = 0; side < 2; side++) {
        const struct leaves *x = side ? b : a, *y = side ? a : b;
        for (size_t i = 0; i < x->n; i++) {
            if (strncmp(x->v[i].path, prefix, np) != 0) {
                continue;
            }
            const char *other = leaf_text(y, x->v[i].path);
            if (!other || strcmp(other, x->v[i].text) != 0) {
                const char *ta = side ? (other ? other : "(absent)") : x->v[i].text;
                const char *tb = side ? x->v[i].text : (other ? other : "(absent)");
                fprintf(out,
                        "exact mode: the contracts differ (%s: %s vs %s): the runs sum in "
                        "different trees, so bitwise agreement is not expected\n",
                        x->v[i].path, ta, tb);
                return 0;
            }
        }
    }
    const char *m = leaf_text(a, "exact.micro_batches_per_step");
    /* sa is the JSON string, quotes included. */
    fprintf(out,
            "exact mode: both runs, contract %.*s with %s micro-batches per step: world "
            "size, ZeRO stage (stage 3's prefetch and resharding too), buckets, overlap "
            "and algorithms may differ (ignored)\n",
            (int)(strlen(sa) > 2 ? strlen(sa) - 2 : 0), sa + 1, m ? m : "?");
    return 1;
}

/* ---------------------------------------------------------------- metrics */

struct mrec {
    uint64_t step;
    const char *key; /* points into the line's document */
    const char *lit; /* the number as written */
    double value;
    size_t order; /* line number: the last record of a (step, key) wins */
};

struct metrics {
    struct mrec *v;
    size_t n, cap;
    json_doc_t **docs; /* one per line, owning keys and literals */
    size_t ndocs, capdocs;
    char **paths;      /* the dotted keys of nested values ("datasets.mill.loss") */
    size_t npaths, cappaths;
    int truncated_tail;
};

static void metrics_free(struct metrics *m)
{
    for (size_t i = 0; i < m->ndocs; i++) {
        json_free(m->docs[i]);
    }
    free(m->docs);
    for (size_t i = 0; i < m->npaths; i++) {
        free(m->paths[i]);
    }
    free(m->paths);
    free(m->v);
    memset(m, 0, sizeof *m);
}

static int is_timing_key(const char *k)
{
    size_t n = strlen(k);
    return (n >= 2 && strcmp(k + n - 2, "_s") == 0) || strcmp(k, "mfu") == 0 ||
           strcmp(k, "time") == 0;
}

/* Every number of object o (a line, or an object within it) but the step
 * and the timings, keyed by its dotted path under prefix (NULL: the line
 * itself, whose keys are used as they are). */
static dure_status_t metrics_add_numbers(struct metrics *m, const struct json_value *o,
                                         const char *prefix, uint64_t step, size_t lineno)
{
    dure_status_t st = DURE_OK;
    char *path = NULL;
    for (const struct json_value *c = o->child; c; c = c->next) {
        if ((c->type != JSON_NUMBER && c->type != JSON_OBJECT) ||
            (!prefix && strcmp(c->key, "step") == 0) || is_timing_key(c->key)) {
            continue;
        }
        const char *key = c->key;
        if (prefix) {
            DURE_CHECK(asprintf(&path, "%s.%s", prefix, c->key) >= 0, DURE_ERR_NOMEM,
                       "out of memory reading metrics");
            if (m->npaths == m->cappaths) {
                size_t cap = m->cappaths ? 2 * m->cappaths : 64;
                char **np = realloc(m->paths, cap * sizeof *np);
                DURE_ALLOC_TRY(np, cap * sizeof *np);
                m->paths = np;
                m->cappaths = cap;
            }
            m->paths[m->npaths++] = path;
            key = path;
            path = NULL;
        }
        if (c->type == JSON_OBJECT) {
            DURE_TRY(metrics_add_numbers(m, c, key, step, lineno));
            continue;
        }
        if (m->n == m->cap) {
            size_t cap = m->cap ? 2 * m->cap : 1024;
            struct mrec *nv = realloc(m->v, cap * sizeof *nv);
            DURE_ALLOC_TRY(nv, cap * sizeof *nv);
            m->v = nv;
            m->cap = cap;
        }
        m->v[m->n++] = (struct mrec){step, key, c->num, c->number, lineno};
    }
out:
    free(path);
    return st;
}

static dure_status_t metrics_add_line(struct metrics *m, json_doc_t *doc, size_t lineno,
                                      const char *where)
{
    dure_status_t st = DURE_OK;
    const struct json_value *root = json_root(doc), *step = json_get(root, "step");
    DURE_CHECK(root->type == JSON_OBJECT && step && step->type == JSON_NUMBER &&
                   step->number >= 0 && step->number == floor(step->number),
               DURE_ERR_FORMAT, "%s: a metrics line needs a whole \"step\" number", where);
    DURE_TRY(metrics_add_numbers(m, root, NULL, (uint64_t)step->number, lineno));
out:
    return st;
}

static int cmp_mrec(const void *x, const void *y)
{
    const struct mrec *a = x, *b = y;
    if (a->step != b->step) {
        return a->step < b->step ? -1 : 1;
    }
    int c = strcmp(a->key, b->key);
    if (c) {
        return c;
    }
    return a->order < b->order ? -1 : a->order > b->order;
}

static dure_status_t load_metrics(const char *run, struct metrics *m)
{
    dure_status_t st = DURE_OK;
    char path[PATH_CAP], where[PATH_CAP + 32];
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    FILE *f = NULL;
    int n = snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    DURE_CHECK(n > 0 && (size_t)n < sizeof path, DURE_ERR_ARG, "run path '%s' is too long",
               run);
    f = fopen(path, "re");
    DURE_SYS_TRY(f != NULL, "open '%s'", path);
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t l = (size_t)len;
        /* Only the last line can lack its newline: a write cut short by a
         * crash. It may fail to parse; any other line must not. */
        int complete = l > 0 && line[l - 1] == '\n';
        while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r')) {
            l--;
        }
        if (l == 0) {
            continue;
        }
        json_doc_t *doc = NULL;
        snprintf(where, sizeof where, "%s line %zu", path, lineno);
        if (!complete) {
            dure_log_set_quiet(1);
        }
        st = json_parse(line, l, where, &doc);
        if (!complete) {
            dure_log_set_quiet(0);
        }
        if (st != DURE_OK && !complete) {
            m->truncated_tail = 1;
            st = DURE_OK;
            continue;
        }
        if (st != DURE_OK) {
            goto out;
        }
        if (m->ndocs == m->capdocs) {
            size_t nc = m->capdocs ? 2 * m->capdocs : 256;
            json_doc_t **nd = realloc(m->docs, nc * sizeof *nd);
            if (!nd) {
                json_free(doc);
                DURE_ALLOC_TRY(nd, nc * sizeof *nd);
            }
            m->docs = nd;
            m->capdocs = nc;
        }
        m->docs[m->ndocs++] = doc;
        DURE_TRY(metrics_add_line(m, doc, lineno, where));
    }
    DURE_SYS_TRY(!ferror(f), "read '%s'", path);
    /* Keep the last record of each (step, key). */
    qsort(m->v, m->n, sizeof *m->v, cmp_mrec);
    size_t o = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (i + 1 < m->n && m->v[i + 1].step == m->v[i].step &&
            strcmp(m->v[i + 1].key, m->v[i].key) == 0) {
            continue;
        }
        m->v[o++] = m->v[i];
    }
    m->n = o;
out:
    free(line);
    if (f) {
        fclose(f);
    }
    return st;
}

/* Distance in units in the last place between two doubles of the same sign. */
static uint64_t ulp_distance(double a, double b)
{
    int64_t ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    /* Map the sign-magnitude bit patterns onto one ordered integer line. */
    ia = ia < 0 ? INT64_MIN - ia : ia;
    ib = ib < 0 ? INT64_MIN - ib : ib;
    return ia > ib ? (uint64_t)ia - (uint64_t)ib : (uint64_t)ib - (uint64_t)ia;
}

static void describe_diff(FILE *out, const struct mrec *a, const struct mrec *b)
{
    double d = fabs(a->value - b->value);
    double rel = d / fmax(fabs(a->value), fabs(b->value));
    fprintf(out,
            "  first difference at step %" PRIu64 ": %s = %s (A) vs %s (B): |diff| %.3g, "
            "relative %.3g, %" PRIu64 " ulp as double",
            a->step, a->key, a->lit, b->lit, d, rel, ulp_distance(a->value, b->value));
    float fa = (float)a->value, fb = (float)b->value;
    if ((double)fa == a->value && (double)fb == b->value) {
        fprintf(out, ", %" PRIu64 " ulp as float32", ulp_distance(fa, fb) >> 29);
    }
    fputc('\n', out);
}

static void compare_metrics(const struct metrics *a, const struct metrics *b, FILE *out,
                            struct verify_result *r)
{
    size_t i = 0, j = 0, ndiff = 0, only_a = 0, only_b = 0;
    uint64_t last_diff = 0;
    const struct mrec *first_a = NULL, *first_b = NULL; /* the first difference */
    while (i < a->n || j < b->n) {
        const struct mrec *x = i < a->n ? &a->v[i] : NULL, *y = j < b->n ? &b->v[j] : NULL;
        int c = !x                   ? 1
                : !y                 ? -1
                : x->step != y->step ? (x->step < y->step ? -1 : 1)
                                     : strcmp(x->key, y->key);
        int differs = c != 0 || memcmp(&x->value, &y->value, sizeof x->value) != 0;
        if (c == 0) {
            r->values_compared++;
        }
        if (differs) {
            const struct mrec *here = c <= 0 ? x : y;
            ndiff++;
            only_a += c < 0;
            only_b += c > 0;
            last_diff = here->step;
            if (!r->has_first_diff) {
                r->has_first_diff = 1;
                r->first_diff_step = here->step;
                first_a = c <= 0 ? x : NULL;
                first_b = c >= 0 ? y : NULL;
            }
        }
        i += c <= 0;
        j += c >= 0;
    }
    r->metrics_identical = ndiff == 0 && a->n > 0;
    if (a->n == 0) {
        fprintf(out, "metrics: no step metrics to compare\n");
    } else if (ndiff == 0) {
        fprintf(out,
                "metrics: bitwise identical (%" PRIu64 " values, steps %" PRIu64
                "..%" PRIu64 "; timings ignored)\n",
                r->values_compared, a->v[0].step, a->v[a->n - 1].step);
    } else {
        fprintf(out,
                "metrics: DIFFER: %zu of %zu values, steps %" PRIu64 "..%" PRIu64
                " (%zu logged by A only, %zu by B only)\n",
                ndiff, r->values_compared + only_a + only_b, r->first_diff_step, last_diff,
                only_a, only_b);
        if (first_a && first_b) {
            describe_diff(out, first_a, first_b);
        } else {
            const struct mrec *o = first_a ? first_a : first_b;
            fprintf(out,
                    "  first difference at step %" PRIu64 ": %s is logged by run %s only\n",
                    o->step, o->key, first_a ? "A" : "B");
        }
    }
    if (a->truncated_tail || b->truncated_tail) {
        fprintf(out, "metrics: ignored an incomplete last line in run %s\n",
                a->truncated_tail && b->truncated_tail ? "A and B"
                : a->truncated_tail                    ? "A"
                                                       : "B");
    }
}

/* ---------------------------------------------------------------- checkpoints */

/*
 * The run's checkpoint directory. The manifest names it as the spec did: a
 * relative checkpoint.dir is relative to where the run started, not to
 * here; under run.dir (the default, run.dir/checkpoints) it is found in run.
 */
static void ckpt_dir_of(const char *run, const json_doc_t *manifest, char *buf, size_t cap)
{
    const struct json_value *js = json_get(json_root(manifest), "jobspec");
    const struct json_value *d = json_get(js, "checkpoint.dir");
    const struct json_value *rd = json_get(js, "run.dir");
    size_t n = rd && rd->type == JSON_STRING ? strlen(rd->str) : 0;
    struct stat sb;
    if (d && d->type == JSON_STRING && d->str[0] != '/' && n > 0 &&
        strncmp(d->str, rd->str, n) == 0 && d->str[n] == '/') {
        snprintf(buf, cap, "%s%s", run, d->str + n);
    } else if (d && d->type == JSON_STRING && stat(d->str, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(buf, cap, "%s", d->str);
    } else {
        snprintf(buf, cap, "%s/checkpoints", run);
    }
}

static dure_status_t compare_checkpoints(const char *dir_a, const char *dir_b, int exact,
                                         FILE *out, struct verify_result *r)
{
    dure_status_t st = DURE_OK;
    uint64_t *sa = NULL, *sb = NULL;
    size_t na = 0, nb = 0;
    float *ba = NULL, *bb = NULL;
    char pa[CKPT_PATH_MAX], pb[CKPT_PATH_MAX];
    struct ckpt_meta ma, mb;
    DURE_TRY(ckpt_list_steps(dir_a, &sa, &na));
    DURE_TRY(ckpt_list_steps(dir_b, &sb, &nb));
    size_t i = 0, j = 0;
    while (i < na && j < nb && sa[i] != sb[j]) {
        if (sa[i] > sb[j]) {
            i++;
        } else {
            j++;
        }
    }
    if (i == na || j == nb) {
        fprintf(
            out,
            "checkpoints: no step checkpointed by both runs, parameters not compared\n");
        goto out;
    }
    r->ckpt_compared = 1;
    r->ckpt_step = sa[i];
    DURE_TRY(ckpt_path(dir_a, sa[i], pa, sizeof pa));
    DURE_TRY(ckpt_path(dir_b, sb[j], pb, sizeof pb));
    DURE_TRY(ckpt_read_meta(pa, &ma));
    DURE_TRY(ckpt_read_meta(pb, &mb));
    if (ma.n_params != mb.n_params) {
        fprintf(out,
                "checkpoints: step %" PRIu64 ": DIFFER: %" PRIu64 " vs %" PRIu64
                " parameters\n",
                sa[i], ma.n_params, mb.n_params);
        goto out;
    }
    ba = malloc(CMP_BLOCK * sizeof *ba);
    bb = malloc(CMP_BLOCK * sizeof *bb);
    DURE_ALLOC_TRY(ba, CMP_BLOCK * sizeof *ba);
    DURE_ALLOC_TRY(bb, CMP_BLOCK * sizeof *bb);
    int same = 1;
    for (int k = 0; k < CKPT_N_DATASETS; k++) {
        for (uint64_t off = 0; off < ma.n_params; off += CMP_BLOCK) {
            size_t len =
                (size_t)(ma.n_params - off < CMP_BLOCK ? ma.n_params - off : CMP_BLOCK);
            DURE_TRY(ckpt_read_dataset(pa, k, off, len, ba));
            DURE_TRY(ckpt_read_dataset(pb, k, off, len, bb));
            if (memcmp(ba, bb, len * sizeof *ba) == 0) {
                continue;
            }
            size_t e = 0;
            while (memcmp(&ba[e], &bb[e], sizeof *ba) == 0) {
                e++;
            }
            fprintf(out,
                    "checkpoints: step %" PRIu64 ": /%s DIFFERS first at element %" PRIu64
                    ": %.9g vs %.9g\n",
                    sa[i], ckpt_dataset_names[k], off + e, (double)ba[e], (double)bb[e]);
            same = 0;
            break;
        }
    }
    ma.world_size = mb.world_size;
    if (exact) {
        ma.zero_stage = mb.zero_stage; /* the writer's layout, not the state */
    }
    if (!ckpt_meta_equal(&ma, &mb)) {
        fprintf(out,
                "checkpoints: step %" PRIu64 ": metadata DIFFERS (step, lr, loss, "
                "loader cursor, RNG, seed, config hash or model)\n",
                sa[i]);
        same = 0;
    }
    r->ckpt_identical = same;
    if (same) {
        fprintf(out,
                "checkpoints: step %" PRIu64 ": params, adam_m, adam_v (%" PRIu64
                " each) and metadata bitwise identical\n",
                sa[i], ma.n_params);
    }
out:
    free(ba);
    free(bb);
    free(sa);
    free(sb);
    return st;
}

/* ---------------------------------------------------------------- entry */

dure_status_t verify_runs(const char *a, const char *b, FILE *out, struct verify_result *r)
{
    dure_status_t st = DURE_OK;
    json_doc_t *da = NULL, *db = NULL;
    struct leaves la = {0}, lb = {0};
    struct metrics ma = {0}, mb = {0};
    char ca[PATH_CAP], cb[PATH_CAP];
    memset(r, 0, sizeof *r);
    DURE_TRY(load_manifest(a, &da, &la));
    DURE_TRY(load_manifest(b, &db, &lb));
    DURE_TRY(load_metrics(a, &ma));
    DURE_TRY(load_metrics(b, &mb));
    fprintf(out, "dure verify: A = %s, B = %s\n", a, b);
    int exact = compare_exact(&la, &lb, out);
    compare_manifests(&la, &lb, exact, out, r);
    compare_metrics(&ma, &mb, out, r);
    ckpt_dir_of(a, da, ca, sizeof ca);
    ckpt_dir_of(b, db, cb, sizeof cb);
    DURE_TRY(compare_checkpoints(ca, cb, exact, out, r));
out:
    leaves_free(&la);
    leaves_free(&lb);
    metrics_free(&ma);
    metrics_free(&mb);
    json_free(da);
    json_free(db);
    return st;
}
