/* tune/report.c - see report.h. */
#include "tune/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "common/json.h"
#include "common/strbuf.h"
#include "common/timing.h"

/* ---------------------------------------------------------------- crossovers */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The fastest of cands[0..m) by the models at `bytes`. */
static int fastest(const struct tune_series *const *cands, int m, double bytes)
{
    int best = 0;
    for (int c = 1; c < m; c++) {
        if (tune_fit_predict(&cands[c]->fit, bytes) < tune_fit_predict(&cands[best]->fit, bytes)) {
            best = c;
        }
    }
    return best;
}

#define GROUP_MAX 64
#define EVENTS_MAX 2048

/* The lower envelope of one group's models: where its fastest changes. */
static int envelope(const struct tune_series *const *cands, int m, struct tune_crossover *out,
                    int max, int found)
{
    double ev[EVENTS_MAX], x[4 * TUNE_PIECES_MAX];
    int ne = 0;
    const double lo = (double)cands[0]->pt[0].bytes;
    const double hi = (double)cands[0]->pt[cands[0]->n - 1].bytes;
    ev[ne++] = lo;
    ev[ne++] = hi;
    for (int a = 0; a < m; a++) {
        for (int b = a + 1; b < m; b++) {
            int nx = tune_fit_crossovers(&cands[a]->fit, &cands[b]->fit, lo, hi, x,
                                         4 * TUNE_PIECES_MAX);
            for (int i = 0; i < nx && ne < EVENTS_MAX; i++) {
                ev[ne++] = x[i];
            }
        }
    }
    qsort(ev, (size_t)ne, sizeof *ev, cmp_double);
    int prev = -1;
    for (int g = 0; g + 1 < ne; g++) {
        if (!(ev[g + 1] > ev[g])) {
            continue;
        }
        int now = fastest(cands, m, 0.5 * (ev[g] + ev[g + 1]));
        if (prev >= 0 && now != prev) {
            if (found < max) {
                out[found] = (struct tune_crossover){cands[0]->coll, cands[0]->level,
                                                     cands[0]->family, cands[prev], cands[now],
                                                     ev[g]};
            }
            found++;
        }
        prev = now;
    }
    return found;
}

int tune_crossovers(const struct tune_result *r, struct tune_crossover *out, int max)
{
    int found = 0;
    char *done = calloc((size_t)r->nseries + 1, 1);
    if (!done) {
        return 0;
    }
    for (int i = 0; i < r->nseries; i++) {
        const struct tune_series *cands[GROUP_MAX];
        int m = 0;
        if (done[i] || r->s[i].n < 2) {
            continue;
        }
        for (int j = i; j < r->nseries && m < GROUP_MAX; j++) {
            const struct tune_series *s = &r->s[j];
            if (s->coll == r->s[i].coll && s->level == r->s[i].level &&
                s->family == r->s[i].family && s->n == r->s[i].n) {
                cands[m++] = s;
                done[j] = 1;
            }
        }
        if (m > 1) {
            found = envelope(cands, m, out, max, found);
        }
    }
    free(done);
    return found;
}

/* ---------------------------------------------------------------- tune.json */

int tune_link_model(const struct tune_result *r, enum tune_level level, enum comm_coll coll,
                    double *alpha, double *beta, const struct tune_series **from)
{
    const struct tune_series *s = NULL;
    if (level == TUNE_LEVEL_NODE) {
        s = tune_result_find(r, coll, level, TUNE_FAMILY_DURE, COMM_ALGO_SHM);
    }
    if (!s || s->n == 0) {
        s = tune_result_find(r, coll, level, TUNE_FAMILY_DURE, COMM_ALGO_RING);
    }
    if ((!s || s->n == 0) && coll == COMM_ALLREDUCE) {
        s = tune_result_find(r, coll, level, TUNE_FAMILY_OMPI, 4);   /* ring */
    }
    if (!s || s->n == 0 || s->ranks < 2 || s->fit.npieces < 1) {
        return 0;
    }
    const double steps = (coll == COMM_ALLREDUCE ? 2.0 : 1.0) * (s->ranks - 1);
    *alpha = s->fit.piece[0].alpha / steps;
    *beta = s->fit.piece[s->fit.npieces - 1].beta * s->ranks / steps;
    if (level == TUNE_LEVEL_WORLD && r->nlinks > 0) {
        /* across nodes the links were measured directly: their median */
        double *v = malloc((size_t)r->nlinks * sizeof *v);
        if (!v) {
            return 0;
        }
        for (int i = 0; i < r->nlinks; i++) {
            v[i] = r->links[i].gbs;
        }
        double gbs = dure_median(v, r->nlinks);
        free(v);
        *beta = gbs > 0 ? 1.0 / (gbs * 1e9) : 0;
    }
    *from = s;
    return *beta > 0;
}

/* One link of tune_link_model: alpha_s, beta_s_per_byte, from. */
static int put_link(struct json_writer *w, const struct tune_result *r, enum tune_level level,
                    enum comm_coll coll, const char *key)
{
    double alpha = 0, beta = 0;
    const struct tune_series *s = NULL;
    char from[128];
    if (!tune_link_model(r, level, coll, &alpha, &beta, &s)) {
        return 0;
    }
    snprintf(from, sizeof from, "%s %s %s, %d ranks on %d node(s)%s",
             tune_family_name(s->family), s->name, tune_coll_name(coll), s->ranks, s->nodes,
             level == TUNE_LEVEL_WORLD && r->nlinks ? "; beta: the median link" : "");
    json_key(w, key);
    json_begin_object(w);
    json_key(w, "alpha_s");
    json_double(w, alpha);
    json_key(w, "beta_s_per_byte");
    json_double(w, beta);
    json_key(w, "from");
    json_string(w, from);
    return 1;
}

/* "levels": per level the all-reduce's link, and under "collectives" the
 * link each of the three collectives dure plan times sees. */
static void put_levels(struct json_writer *w, const struct tune_result *r)
{
    static const char *const names[TUNE_LEVEL_COUNT] = {"intra", "inter"};
    static const enum comm_coll colls[] = {COMM_ALLREDUCE, COMM_REDUCE_SCATTER,
                                           COMM_ALLGATHER};
    json_begin_object(w);
    for (int l = 0; l < TUNE_LEVEL_COUNT; l++) {
        if (!put_link(w, r, (enum tune_level)l, COMM_ALLREDUCE, names[l])) {
            continue;
        }
        json_key(w, "collectives");
        json_begin_object(w);
        for (size_t c = 0; c < sizeof colls / sizeof colls[0]; c++) {
            if (put_link(w, r, (enum tune_level)l, colls[c], tune_coll_name(colls[c]))) {
                json_end_object(w);
            }
        }
        json_end_object(w);
        json_end_object(w);
    }
    json_end_object(w);
}

static void put_series(struct json_writer *w, const struct tune_series *s, double tol)
{
    json_begin_object(w);
    json_key(w, "collective");
    json_string(w, tune_coll_name(s->coll));
    json_key(w, "level");
    json_string(w, tune_level_name(s->level));
    json_key(w, "ranks");
    json_int(w, s->ranks);
    json_key(w, "nodes");
    json_int(w, s->nodes);
    json_key(w, "family");
    json_string(w, tune_family_name(s->family));
    json_key(w, "algorithm");
    json_string(w, s->name);
    json_key(w, "id");
    json_int(w, s->id);
    json_key(w, "hops");
    json_int(w, s->hops);
    json_key(w, "fit");
    json_begin_object(w);
    json_key(w, "pieces");
    json_begin_array(w);
    for (int i = 0; i < s->fit.npieces; i++) {
        const struct tune_piece *p = &s->fit.piece[i];
        json_begin_object(w);
        json_key(w, "min_bytes");
        json_uint(w, (uint64_t)p->lo);
        json_key(w, "max_bytes");
        json_uint(w, (uint64_t)p->hi);
        json_key(w, "alpha_s");
        json_double(w, p->alpha);
        json_key(w, "beta_s_per_byte");
        json_double(w, p->beta);
        json_key(w, "alpha_per_hop_s");
        if (s->hops > 0 && p->alpha >= 0) {
            json_double(w, p->alpha / s->hops);
        } else {
            json_null(w);
        }
        json_end_object(w);
    }
    json_end_array(w);
    json_key(w, "worst_error");
    json_double(w, s->fit.worst_err);
    json_key(w, "within_tolerance");
    json_bool(w, s->fit.worst_err <= tol);
    if (s->retimed) {
        json_key(w, "first_timings_worst_error");
        json_double(w, s->first_worst_err);
    }
    json_end_object(w);
    json_key(w, "points");
    json_begin_array(w);
    for (int k = 0; k < s->n; k++) {
        const struct tune_meas *m = &s->pt[k];
        double pred = tune_fit_predict(&s->fit, (double)m->bytes);
        json_begin_object(w);
        json_key(w, "bytes");
        json_uint(w, m->bytes);
        json_key(w, "time_s");
        json_double(w, m->sec);
        json_key(w, "busbw_gbs");
        json_double(w, m->busbw);
        json_key(w, "wrong");
        json_int(w, m->wrong);
        json_key(w, "predicted_s");
        json_double(w, pred);
        json_key(w, "error");
        json_double(w, pred / m->sec - 1.0);
        if (m->rechecked) {
            json_key(w, "recheck");
            json_begin_object(w);
            json_key(w, "time_s");
            json_double(w, m->recheck_sec);
            json_key(w, "default_time_s");
            json_double(w, m->recheck_default_sec);
            json_key(w, "vetoed");
            json_bool(w, m->vetoed);
            json_end_object(w);
        }
        json_end_object(w);
    }
    json_end_array(w);
    json_end_object(w);
}

static void put_file(struct json_writer *w, const char *key, const char *name)
{
    json_key(w, key);
    json_string(w, name);
}

struct report_doc {
    const struct tune_result *r;
    const struct tune_outputs *o;
    const struct tune_crossover *cx;
    int ncx;
};

static void put_report(struct json_writer *w, const void *arg)
{
    const struct report_doc *d = arg;
    const struct tune_result *r = d->r;
    const struct tune_outputs *o = d->o;
    json_begin_object(w);
    json_key(w, "format");
    json_int(w, TUNE_FORMAT);
    json_key(w, "kind");
    json_string(w, "dure-tune");
    json_key(w, "created");
    json_string(w, r->created);
    json_key(w, "dure_version");
    json_string(w, r->dure_version);
    json_key(w, "mpi_library");
    json_string(w, r->mpi_library);
    json_key(w, "backend");
    json_string(w, r->backend);
    json_key(w, "ring_segment_bytes");
    json_int(w, (int64_t)r->ring_seg_bytes);
    json_key(w, "ring_segment_probe");
    if (r->ring_probe.nseg) {
        const struct tune_ring_probe *p = &r->ring_probe;
        json_begin_object(w);
        json_key(w, "algorithm");
        json_string(w, p->algo);
        json_key(w, "sizes");
        json_int(w, p->nsizes);
        json_key(w, "min_bytes");
        json_int(w, (int64_t)p->min_bytes);
        json_key(w, "max_bytes");
        json_int(w, (int64_t)p->max_bytes);
        json_key(w, "segments");
        json_begin_array(w);
        for (int i = 0; i < p->nseg; i++) {
            json_begin_object(w);
            json_key(w, "bytes");
            json_int(w, (int64_t)p->seg_bytes[i]);
            if (p->nsizes) {
                json_key(w, "time_s");
                json_double(w, p->sec[i]);
                for (int e = 0; e < TUNE_EXCHANGE_N; e++) {
                    char key[48];
                    snprintf(key, sizeof key, "%s_time_s", tune_coll_name(tune_exchange[e]));
                    json_key(w, key);
                    json_double(w, p->coll_sec[e][i]);
                }
            }
            json_end_object(w);
        }
        json_end_array(w);
        json_end_object(w);
    } else {
        json_null(w);
    }
    json_key(w, "world");
    json_begin_object(w);
    json_key(w, "ranks");
    json_int(w, r->ranks);
    json_key(w, "nodes");
    json_int(w, r->nodes);
    json_key(w, "host0");
    json_string(w, r->host0);
    json_end_object(w);
    json_key(w, "sweep");
    json_begin_object(w);
    json_key(w, "min_bytes");
    json_uint(w, r->opts.min_bytes);
    json_key(w, "max_bytes");
    json_uint(w, r->opts.max_bytes);
    json_key(w, "factor");
    json_double(w, r->opts.factor);
    json_key(w, "iters");
    json_int(w, r->opts.iters);
    json_key(w, "warmup");
    json_int(w, r->opts.warmup);
    json_key(w, "reps");
    json_int(w, r->opts.reps);
    json_key(w, "tolerance");
    json_double(w, r->opts.tolerance);
    json_key(w, "min_gain");
    json_double(w, r->opts.min_gain);
    if (r->opts.caller_runs >= 0) {
        json_key(w, "collectives_run_by");
        json_string(w, r->opts.caller_runs ? "caller" : "thread");
    }
    json_key(w, "min_rep_s");
    json_double(w, r->opts.min_rep_s);
    json_key(w, "type");
    json_string(w, "float");
    json_key(w, "op");
    json_string(w, "sum");
    json_end_object(w);
    json_key(w, "levels");
    put_levels(w, r);
    json_key(w, "series");
    json_begin_array(w);
    for (int i = 0; i < r->nseries; i++) {
        put_series(w, &r->s[i], r->opts.tolerance);
    }
    json_end_array(w);
    json_key(w, "crossovers");
    json_begin_array(w);
    for (int i = 0; i < d->ncx; i++) {
        const struct tune_crossover *c = &d->cx[i];
        json_begin_object(w);
        json_key(w, "collective");
        json_string(w, tune_coll_name(c->coll));
        json_key(w, "level");
        json_string(w, tune_level_name(c->level));
        json_key(w, "family");
        json_string(w, tune_family_name(c->family));
        json_key(w, "faster_below");
        json_string(w, c->from->name);
        json_key(w, "faster_above");
        json_string(w, c->to->name);
        json_key(w, "bytes");
        json_uint(w, (uint64_t)llround(c->bytes));
        json_end_object(w);
    }
    json_end_array(w);
    json_key(w, "links");
    json_begin_array(w);
    for (int i = 0; i < r->nlinks; i++) {
        json_begin_object(w);
        json_key(w, "a");
        json_string(w, r->links[i].a);
        json_key(w, "b");
        json_string(w, r->links[i].b);
        json_key(w, "gbs");
        json_double(w, r->links[i].gbs);
        json_end_object(w);
    }
    json_end_array(w);
    json_key(w, "choices");
    json_begin_object(w);
    json_key(w, "algo_table");
    if (o->have_table) {
        char table[256];
        comm_algo_table_format(&o->table, table, sizeof table);
        json_string(w, table);
    } else {
        json_null(w);
    }
    json_key(w, "ompi_rules");
    json_int(w, o->ompi_rules);
    json_key(w, "ompi_rules_changed");
    json_int(w, o->ompi_changed);
    json_key(w, "nccl_rules");
    json_int(w, o->nccl_rules);
    json_end_object(w);
    json_key(w, "files");
    json_begin_object(w);
    put_file(w, "model", "tune.json");
    put_file(w, "algo_table", o->table_file);
    put_file(w, "profile", o->profile_file);
    put_file(w, "ompi_rules", o->ompi_file);
    put_file(w, "nccl_tuner", o->nccl_file);
    put_file(w, "plot", o->plot_file);
    json_end_object(w);
    json_end_object(w);
}

dure_status_t tune_report_write(const struct tune_result *r, const struct tune_outputs *o,
                                const char *path)
{
    dure_status_t st = DURE_OK;
    struct report_doc d = {r, o, NULL, tune_crossovers(r, NULL, 0)};
    struct tune_crossover *cx = NULL;
    if (d.ncx > 0) {
        cx = calloc((size_t)d.ncx, sizeof *cx);
        DURE_ALLOC_TRY(cx, (size_t)d.ncx * sizeof *cx);
        tune_crossovers(r, cx, d.ncx);
        d.cx = cx;
    }
    DURE_TRY(json_write_file(path, 1, put_report, &d));
out:
    free(cx);
    return st;
}

/* ---------------------------------------------------------------- reader */

struct rd {
    const char *path;
};

/* obj.key as a JSON value of `type`; DURE_ERR_FORMAT naming the line. */
static dure_status_t field(const struct rd *rd, const struct json_value *obj, const char *ctx,
                           const char *key, enum json_type type, const struct json_value **out)
{
    dure_status_t st = DURE_OK;
    static const char *const type_names[] = {"null", "true/false", "a number", "a string",
                                             "an array", "an object"};
    const struct json_value *v = json_get(obj, key);
    DURE_CHECK(v, DURE_ERR_FORMAT, "%s:%d: %s: field '%s' is missing", rd->path, obj->line, ctx,
               key);
    DURE_CHECK(v->type == type, DURE_ERR_FORMAT, "%s:%d: %s: field '%s' must be %s", rd->path,
               v->line, ctx, key, type_names[type]);
    *out = v;
out:
    return st;
}

/* A number field within [lo, hi]. */
static dure_status_t number(const struct rd *rd, const struct json_value *obj, const char *ctx,
                            const char *key, double lo, double hi, double *out)
{
    dure_status_t st = DURE_OK;
    const struct json_value *v = NULL;
    DURE_TRY(field(rd, obj, ctx, key, JSON_NUMBER, &v));
    DURE_CHECK(v->number >= lo && v->number <= hi, DURE_ERR_FORMAT,
               "%s:%d: %s: field '%s' = %s is outside [%g, %g]", rd->path, v->line, ctx, key,
               v->num, lo, hi);
    *out = v->number;
out:
    return st;
}

/* "caller" 1, "thread" 0, else -1 (sweep.collectives_run_by). */
static int run_by_parse(const char *s)
{
    return strcmp(s, "caller") == 0 ? 1 : strcmp(s, "thread") == 0 ? 0 : -1;
}

/* A string field whose value `parse` maps to >= 0. */
static dure_status_t named(const struct rd *rd, const struct json_value *obj, const char *ctx,
                           const char *key, int (*parse)(const char *), const char *allowed,
                           int *out)
{
    dure_status_t st = DURE_OK;
    const struct json_value *v = NULL;
    DURE_TRY(field(rd, obj, ctx, key, JSON_STRING, &v));
    *out = parse(v->str);
    DURE_CHECK(*out >= 0, DURE_ERR_FORMAT, "%s:%d: %s: field '%s' = '%s' is not one of %s",
               rd->path, v->line, ctx, key, v->str, allowed);
out:
    return st;
}

static dure_status_t read_series(const struct rd *rd, const struct json_value *o, int index,
                                 struct tune_result *r)
{
    dure_status_t st = DURE_OK;
    char ctx[64];
    const struct json_value *v = NULL, *pts = NULL;
    int coll = 0, level = 0, family = 0;
    double ranks = 0, nodes = 0, id = 0, hops = 0;
    struct tune_series *s = NULL;

    snprintf(ctx, sizeof ctx, "series[%d]", index);
    DURE_CHECK(o->type == JSON_OBJECT, DURE_ERR_FORMAT, "%s:%d: %s must be an object", rd->path,
               o->line, ctx);
    DURE_TRY(named(rd, o, ctx, "collective", tune_coll_parse,
                   "allreduce, reducescatter, allgather, broadcast", &coll));
    DURE_TRY(named(rd, o, ctx, "level", tune_level_parse, "node, world", &level));
    DURE_TRY(named(rd, o, ctx, "family", tune_family_parse, "dure, ompi, nccl", &family));
    DURE_TRY(number(rd, o, ctx, "ranks", 1, 1 << 30, &ranks));
    DURE_TRY(number(rd, o, ctx, "nodes", 1, 1 << 30, &nodes));
    DURE_TRY(number(rd, o, ctx, "id", -1, 1 << 20, &id));
    DURE_TRY(number(rd, o, ctx, "hops", 0, 1 << 30, &hops));
    DURE_TRY(field(rd, o, ctx, "algorithm", JSON_STRING, &v));
    DURE_TRY(tune_result_add_series(r, (enum comm_coll)coll, (enum tune_level)level, (int)ranks,
                                    (int)nodes, (enum tune_family)family, (int)id, v->str,
                                    (int)hops, &s));
    DURE_TRY(field(rd, o, ctx, "points", JSON_ARRAY, &pts));
    DURE_CHECK(pts->count >= 1 && pts->count <= TUNE_SIZES_MAX, DURE_ERR_FORMAT,
               "%s:%d: %s: field 'points' has %zu entries; 1 to %d allowed", rd->path, pts->line,
               ctx, pts->count, TUNE_SIZES_MAX);
    int k = 0;
    for (const struct json_value *p = pts->child; p; p = p->next, k++) {
        char pctx[96];
        double bytes = 0, wrong = 0;
        snprintf(pctx, sizeof pctx, "%s.points[%d]", ctx, k);
        DURE_CHECK(p->type == JSON_OBJECT, DURE_ERR_FORMAT, "%s:%d: %s must be an object",
                   rd->path, p->line, pctx);
        DURE_TRY(number(rd, p, pctx, "bytes", 1, 1e18, &bytes));
        DURE_TRY(number(rd, p, pctx, "time_s", 1e-12, 1e9, &s->pt[k].sec));
        DURE_TRY(number(rd, p, pctx, "busbw_gbs", 0, 1e9, &s->pt[k].busbw));
        DURE_TRY(number(rd, p, pctx, "wrong", 0, 1e18, &wrong));
        s->pt[k].bytes = (size_t)bytes;
        s->pt[k].wrong = (long)wrong;
        DURE_CHECK(k == 0 || s->pt[k].bytes > s->pt[k - 1].bytes, DURE_ERR_FORMAT,
                   "%s:%d: %s: bytes %zu after %zu: sizes must ascend", rd->path, p->line, pctx,
                   s->pt[k].bytes, s->pt[k - 1].bytes);
    }
    s->n = k;
out:
    return st;
}

dure_status_t tune_report_read(const char *path, struct tune_result *r)
{
    dure_status_t st = DURE_OK;
    json_doc_t *doc = NULL;
    const struct rd rd = {path};
    const struct json_value *v = NULL, *world = NULL, *sweep = NULL, *series = NULL,
                            *links = NULL;
    double x = 0;

    DURE_TRY(json_parse_file(path, &doc));
    const struct json_value *root = json_root(doc);
    DURE_CHECK(root->type == JSON_OBJECT, DURE_ERR_FORMAT,
               "%s:%d: not a dure tune model (a JSON object is expected)", path, root->line);
    DURE_TRY(field(&rd, root, "the model", "kind", JSON_STRING, &v));
    DURE_CHECK(strcmp(v->str, "dure-tune") == 0, DURE_ERR_FORMAT,
               "%s:%d: field 'kind' = '%s': not a model written by dure tune", path, v->line,
               v->str);
    DURE_TRY(field(&rd, root, "the model", "format", JSON_NUMBER, &v));
    DURE_CHECK(v->number == TUNE_FORMAT, DURE_ERR_FORMAT,
               "%s:%d: field 'format' = %s: this dure reads format %d", path, v->line, v->num,
               TUNE_FORMAT);
    DURE_TRY(field(&rd, root, "the model", "world", JSON_OBJECT, &world));
    DURE_TRY(number(&rd, world, "world", "ranks", 1, 1 << 30, &x));
    r->ranks = (int)x;
    DURE_TRY(number(&rd, world, "world", "nodes", 1, 1 << 30, &x));
    r->nodes = (int)x;
    DURE_TRY(field(&rd, world, "world", "host0", JSON_STRING, &v));
    snprintf(r->host0, sizeof r->host0, "%s", v->str);
    DURE_TRY(field(&rd, root, "the model", "backend", JSON_STRING, &v));
    snprintf(r->backend, sizeof r->backend, "%s", v->str);
    r->ring_seg_bytes = 0; /* absent from older models: not recorded */
    if (json_get(root, "ring_segment_bytes")) {
        DURE_TRY(number(&rd, root, "the model", "ring_segment_bytes", 0,
                        (double)COMM_RING_SEG_MAX, &x));
        r->ring_seg_bytes = (size_t)x;
    }
    DURE_TRY(field(&rd, root, "the model", "created", JSON_STRING, &v));
    snprintf(r->created, sizeof r->created, "%s", v->str);
    DURE_TRY(field(&rd, root, "the model", "sweep", JSON_OBJECT, &sweep));
    DURE_TRY(number(&rd, sweep, "sweep", "min_bytes", 1, 1e18, &x));
    r->opts.min_bytes = (size_t)x;
    DURE_TRY(number(&rd, sweep, "sweep", "max_bytes", 1, 1e18, &x));
    r->opts.max_bytes = (size_t)x;
    DURE_TRY(number(&rd, sweep, "sweep", "factor", 1.000001, 1e6, &r->opts.factor));
    DURE_TRY(number(&rd, sweep, "sweep", "iters", 1, 1e6, &x));
    r->opts.iters = (int)x;
    DURE_TRY(number(&rd, sweep, "sweep", "warmup", 0, 1e6, &x));
    r->opts.warmup = (int)x;
    DURE_TRY(number(&rd, sweep, "sweep", "reps", 1, 1e6, &x));
    r->opts.reps = (int)x;
    DURE_TRY(number(&rd, sweep, "sweep", "tolerance", 0, 10, &r->opts.tolerance));
    DURE_TRY(number(&rd, sweep, "sweep", "min_gain", 1, 1e6, &r->opts.min_gain));
    r->opts.caller_runs = -1;
    if (json_get(sweep, "collectives_run_by")) {
        DURE_TRY(named(&rd, sweep, "sweep", "collectives_run_by", run_by_parse,
                       "caller, thread", &r->opts.caller_runs));
    }
    r->opts.min_rep_s = TUNE_REP_MIN_S;
    if (json_get(sweep, "min_rep_s")) {
        DURE_TRY(number(&rd, sweep, "sweep", "min_rep_s", 0, 1, &r->opts.min_rep_s));
    }
    DURE_TRY(field(&rd, root, "the model", "series", JSON_ARRAY, &series));
    int i = 0;
    for (const struct json_value *o = series->child; o; o = o->next, i++) {
        DURE_TRY(read_series(&rd, o, i, r));
    }
    DURE_TRY(field(&rd, root, "the model", "links", JSON_ARRAY, &links));
    i = 0;
    for (const struct json_value *o = links->child; o; o = o->next, i++) {
        char ctx[32];
        const struct json_value *a = NULL, *b = NULL;
        double gbs = 0;
        snprintf(ctx, sizeof ctx, "links[%d]", i);
        DURE_CHECK(o->type == JSON_OBJECT, DURE_ERR_FORMAT, "%s:%d: %s must be an object", path,
                   o->line, ctx);
        DURE_TRY(field(&rd, o, ctx, "a", JSON_STRING, &a));
        DURE_TRY(field(&rd, o, ctx, "b", JSON_STRING, &b));
        DURE_TRY(number(&rd, o, ctx, "gbs", 0, 1e9, &gbs));
        DURE_TRY(tune_result_add_link(r, a->str, b->str, gbs));
    }
out:
    json_free(doc);
    return st;
}

/* ---------------------------------------------------------------- snippets */

static void put_origin(struct strbuf *sb, const char *c, const struct tune_result *r)
{
    strbuf_printf(sb, "%s written by dure tune %s on %s\n", c, r->dure_version, r->created);
    strbuf_printf(sb, "%s measured on %d rank(s), %d node(s) (rank 0 on %s); sizes %zu to %zu "
                      "bytes\n", c, r->ranks, r->nodes, r->host0, r->opts.min_bytes,
                  r->opts.max_bytes);
}

dure_status_t tune_write_algo_table(const struct tune_result *r,
                                    const struct comm_algo_table *t, const char *path)
{
    dure_status_t st = DURE_OK;
    struct strbuf sb = STRBUF_INIT;
    char table[256];
    comm_algo_table_format(t, table, sizeof table);
    put_origin(&sb, ";", r);
    strbuf_puts(&sb, "; Paste into a job spec, or export DURE_ALGO_TABLE (and\n"
                     "; DURE_RING_SEGMENT_KIB) with these values.\n");
    strbuf_printf(&sb, "[parallel]\nalgo_table = %s\n", table);
    if (r->ring_seg_bytes) {
        /* the segment the table was measured with */
        strbuf_printf(&sb, "ring_segment_kib = %zu\n", r->ring_seg_bytes >> 10);
    }
    DURE_TRY(strbuf_status(&sb));
    DURE_TRY(dure_file_write_atomic(path, sb.buf, sb.len, 0644));
out:
    strbuf_free(&sb);
    return st;
}

dure_status_t tune_write_profile(const struct tune_result *r, const char *name,
                                 const struct comm_algo_table *t, const char *ompi_path,
                                 const char *nccl_path, const char *path)
{
    dure_status_t st = DURE_OK;
    struct strbuf sb = STRBUF_INIT;
    put_origin(&sb, "#", r);
    strbuf_printf(&sb, "# Add this section to the site's profile file (DURE_PROFILES) and set\n"
                       "# slurm.profile = %s in job specs. The paths are where dure tune wrote\n"
                       "# the files: copy them somewhere every node sees and edit if needed.\n",
                  name);
    strbuf_printf(&sb, "[%s]\n", name);
    if (t) {
        char table[256];
        comm_algo_table_format(t, table, sizeof table);
        strbuf_printf(&sb, "DURE_ALGO_TABLE = %s\n", table);
    }
    if (r->ring_seg_bytes) {
        /* the segment dure's algorithms were measured (and chosen) in */
        strbuf_printf(&sb, "DURE_RING_SEGMENT_KIB = %zu\n", r->ring_seg_bytes >> 10);
    }
    if (ompi_path) {
        strbuf_printf(&sb, "OMPI_MCA_coll_tuned_use_dynamic_rules = 1\n"
                           "OMPI_MCA_coll_tuned_dynamic_rules_filename = %s\n", ompi_path);
    }
    if (nccl_path) {
        strbuf_printf(&sb, "# NCCL_TUNER_PLUGIN must name NCCL's example tuner plugin, built at "
                           "the site\n# (libnccl-tuner-example.so from NCCL's plugins/tuner/"
                           "example).\nNCCL_TUNER_CONFIG_FILE = %s\n", nccl_path);
    }
    DURE_TRY(strbuf_status(&sb));
    DURE_TRY(dure_file_write_atomic(path, sb.buf, sb.len, 0644));
out:
    strbuf_free(&sb);
    return st;
}

/* ---------------------------------------------------------------- summary */

/*
 * Why a series misses the tolerance, for the admin: where its time falls by
 * more than the tolerance from one size to the next (no line that rises
 * with size follows that: Open MPI's all-reduce of 4 KiB on 2 ranks here
 * took 1.1-1.4x as long as its 5 KiB in every sweep), else a regime
 * narrower than a piece's three sizes, or noise.
 */
static void print_miss(FILE *out, const struct tune_series *s, double tol)
{
    int worst = 0, fall = -1;
    double worst_e = 0, fall_r = 1 + tol;
    for (int k = 0; k < s->n; k++) {
        double e = fabs(tune_fit_predict(&s->fit, (double)s->pt[k].bytes) / s->pt[k].sec - 1);
        if (e > worst_e) {
            worst_e = e;
            worst = k;
        }
        if (k + 1 < s->n && s->pt[k].sec / s->pt[k + 1].sec > fall_r) {
            fall_r = s->pt[k].sec / s->pt[k + 1].sec;
            fall = k;
        }
    }
    char at[32], a[32], b[32];
    comm_format_bytes(s->pt[worst].bytes, at, sizeof at);
    fprintf(out, "    misses by %.1f%% at %s: ", 100 * worst_e, at);
    if (fall >= 0) {
        comm_format_bytes(s->pt[fall].bytes, a, sizeof a);
        comm_format_bytes(s->pt[fall + 1].bytes, b, sizeof b);
        fprintf(out, "the time falls %.0f%% from %s (%.2f us) to %s (%.2f us), which no line "
                     "rising with size follows\n", 100 * (1 - 1 / fall_r), a,
                1e6 * s->pt[fall].sec, b, 1e6 * s->pt[fall + 1].sec);
    } else if (s->retimed) {
        fprintf(out, "a regime of fewer sizes than a piece's %d (timed twice, the second time "
                     "with twice the passes: not a burst of noise; a smaller -f shows it)\n",
                TUNE_PIECE_MIN_SIZES);
    } else {
        fprintf(out, "a regime of fewer sizes than a piece's %d, or noise (a smaller -f or a "
                     "larger -R tells which)\n", TUNE_PIECE_MIN_SIZES);
    }
}

void tune_report_print(FILE *out, const struct tune_result *r)
{
    fprintf(out, "# model: time(n) = alpha + beta * n per piece; error = worst |predicted / "
                 "measured - 1| (tolerance %.0f%%)\n", 100 * r->opts.tolerance);
    fprintf(out, "# %-13s %-5s %-4s %-22s %10s %12s %10s %7s %s\n", "collective", "level",
            "fam", "algorithm", "alpha(us)", "beta(ps/B)", "hop(us)", "error", "pieces");
    for (int i = 0; i < r->nseries; i++) {
        const struct tune_series *s = &r->s[i];
        const struct tune_piece *p = &s->fit.piece[0];
        char hop[32] = "-";
        if (s->hops > 0) {
            snprintf(hop, sizeof hop, "%.3f", 1e6 * p->alpha / s->hops);
        }
        fprintf(out, "  %-13s %-5s %-4s %-22s %10.3f %12.3f %10s %6.1f%% %d%s",
                tune_coll_name(s->coll), tune_level_name(s->level), tune_family_name(s->family),
                s->name, 1e6 * p->alpha, 1e12 * p->beta, hop, 100 * s->fit.worst_err,
                s->fit.npieces,
                s->fit.worst_err > r->opts.tolerance ? " (not within tolerance)" : "");
        for (int k = 1; k < s->fit.npieces; k++) {
            char from[32];
            comm_format_bytes((size_t)s->fit.piece[k].lo, from, sizeof from);
            fprintf(out, "%s from %s: %.3f us + %.3f ps/B", k == 1 ? ";" : ",", from,
                    1e6 * s->fit.piece[k].alpha, 1e12 * s->fit.piece[k].beta);
        }
        if (s->retimed) {
            fprintf(out, "\n    timed again with twice the passes: its group's first timings "
                         "fitted within %.1f%%", 100 * s->first_worst_err);
        }
        fprintf(out, "\n    error per size (%%):");
        for (int k = 0; k < s->n; k++) {
            double pred = tune_fit_predict(&s->fit, (double)s->pt[k].bytes);
            fprintf(out, " %+.1f", 100 * (pred / s->pt[k].sec - 1));
        }
        fputc('\n', out);
        if (s->fit.worst_err > r->opts.tolerance) {
            print_miss(out, s, r->opts.tolerance);
        }
    }
    int n = tune_crossovers(r, NULL, 0);
    struct tune_crossover *cx = n > 0 ? calloc((size_t)n, sizeof *cx) : NULL;
    if (cx) {
        tune_crossovers(r, cx, n);
        fprintf(out, "# crossovers (where the fastest algorithm of a family changes, by the "
                     "models)\n");
        for (int i = 0; i < n; i++) {
            char at[32];
            comm_format_bytes(((size_t)cx[i].bytes + 1023) / 1024 * 1024, at, sizeof at);
            fprintf(out, "  %-13s %-5s %-4s %s faster below %s, %s above\n",
                    tune_coll_name(cx[i].coll), tune_level_name(cx[i].level),
                    tune_family_name(cx[i].family), cx[i].from->name, at, cx[i].to->name);
        }
        free(cx);
    }
}
