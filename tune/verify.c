/* tune/verify.c - see verify.h. */
#include "tune/verify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collectives/bench.h"
#include "common/json.h"
#include "common/mpi_check.h"
#include "tune/choose.h"
#include "tune/nccl_conf.h"
#include "tune/ompi_fixed.h"
#include "tune/ompi_rules.h"

dure_status_t tune_read_algo_table(const char *path, struct comm_algo_table *t)
{
    dure_status_t st = DURE_OK;
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, found = 0;
    DURE_SYS_TRY(f != NULL, "cannot read the algorithm table file '%s'", path);
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char *p = line + strspn(line, " \t");
        if (strncmp(p, "algo_table", 10) != 0) {
            continue;
        }
        p += 10 + strspn(p + 10, " \t");
        DURE_CHECK(*p == '=', DURE_ERR_FORMAT, "%s:%d: algo_table: expected '=' after the key",
                   path, lineno);
        p++;
        p += strspn(p, " \t");
        p[strcspn(p, " \t\r\n;")] = '\0';
        dure_log_set_quiet(1);
        st = comm_algo_table_parse(p, t);
        dure_log_set_quiet(0);
        DURE_CHECK(st == DURE_OK, DURE_ERR_FORMAT, "%s:%d: algo_table: %s", path, lineno,
                   dure_last_error());
        found = 1;
        break;
    }
    DURE_SYS_TRY(!ferror(f), "read '%s'", path);
    DURE_CHECK(found, DURE_ERR_FORMAT, "%s: no 'algo_table = ...' line", path);
out:
    free(line);
    if (f) {
        fclose(f);
    }
    return st;
}

/* A cache of communicators by algorithm id, for one family and collective. */
#define CACHE_MAX 32
struct comm_cache {
    int n;
    int id[CACHE_MAX];
    comm_t *c[CACHE_MAX];
};

static void cache_free(struct comm_cache *k)
{
    for (int i = 0; i < k->n; i++) {
        comm_destroy(k->c[i]);
    }
    k->n = 0;
}

static dure_status_t cache_get(struct comm_cache *k, const struct tune_sweep_cfg *cfg,
                               enum comm_coll coll, enum tune_family family, int id, comm_t **out)
{
    dure_status_t st = DURE_OK;
    char why[512] = "";
    for (int i = 0; i < k->n; i++) {
        if (k->id[i] == id) {
            *out = k->c[i];
            goto out;
        }
    }
    DURE_CHECK(k->n < CACHE_MAX, DURE_ERR_INTERNAL, "verify: too many algorithms");
    DURE_TRY(tune_sweep_comm(&cfg->comm, MPI_COMM_WORLD, coll, family, id, out, why, sizeof why));
    DURE_CHECK(*out, DURE_ERR_UNSUPPORTED, "verify: %s %s algorithm %d cannot run here: %s",
               tune_coll_name(coll), tune_family_name(family), id, why);
    k->id[k->n] = id;
    k->c[k->n++] = *out;
out:
    return st;
}

/* Time emitted against default at one size; append the row. */
static dure_status_t measure(const struct tune_sweep_cfg *cfg, enum comm_coll coll,
                             enum tune_family family, size_t bytes, comm_t *emitted,
                             comm_t *deflt, int heap, struct tune_verify_row *row)
{
    dure_status_t st = DURE_OK;
    struct bench_spec spec;
    struct bench_point pt;
    tune_sweep_spec(cfg, coll, &spec);
    const struct bench_variant v[2] = {{.comm = emitted, .in_place = 1, .heap = heap},
                                       {.comm = deflt, .in_place = 1, .heap = heap}};
    DURE_TRY(bench_measure(MPI_COMM_WORLD, &spec, v, 2, &bytes, 1, &pt));
    row->coll = coll;
    row->family = family;
    row->bytes = pt.bytes;
    row->sec_emitted = pt.v[0].sec;
    row->sec_default = pt.v[1].sec;
    row->wrong = pt.v[0].wrong + pt.v[1].wrong;
out:
    return st;
}

static dure_status_t new_row(struct tune_verify *v, struct tune_verify_row **row)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(v->n < TUNE_VERIFY_ROWS_MAX, DURE_ERR_INTERNAL, "verify: too many rows");
    *row = &v->row[v->n++];
    memset(*row, 0, sizeof **row);
out:
    return st;
}

static int file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* The first series of (family, coll) at the job's level (tune_job_level): its
 * sizes are every such series' sizes. NULL when none. */
static const struct tune_series *model_series(const struct tune_result *m,
                                              enum tune_family family, enum comm_coll coll)
{
    const enum tune_level level = tune_job_level(m);
    for (int i = 0; i < m->nseries; i++) {
        if (m->s[i].family == family && m->s[i].coll == coll && m->s[i].level == level) {
            return &m->s[i];
        }
    }
    return NULL;
}

/* Whether the two communicators' ring segments make algorithm `a` of
 * `emitted` send other messages at `bytes` than `deflt` would: the ring,
 * or hier's rail across nodes, whose pieces (bytes / ranks) the two cut
 * differently (comm_ring_segment_for). */
static int uses_ring(const comm_t *c, enum comm_algo a)
{
    return a == COMM_ALGO_RING || (a == COMM_ALGO_HIER && comm_node_count(c) > 1);
}

static int ring_segment_differs(const comm_t *emitted, const comm_t *deflt, enum comm_algo a,
                                size_t bytes)
{
    const size_t segs[2] = {comm_ring_segment(emitted), comm_ring_segment(deflt)};
    return uses_ring(emitted, a) &&
           tune_segments_differ(segs, 2, bytes / (size_t)comm_size(emitted));
}

/* "hier", or "hier/1M" where the segments differ (seg) and a runs the ring. */
static void algo_text(const comm_t *c, enum comm_algo a, int seg, char *buf, size_t len)
{
    char s[16];
    comm_format_bytes(comm_ring_segment(c), s, sizeof s);
    if (seg && uses_ring(c, a)) {
        snprintf(buf, len, "%s/%s", comm_algo_name(a), s);
    } else {
        snprintf(buf, len, "%s", comm_algo_name(a));
    }
}

static dure_status_t verify_dure(const struct tune_sweep_cfg *cfg, const char *dir,
                                 const struct tune_result *m, struct tune_verify *v,
                                 FILE *progress)
{
    dure_status_t st = DURE_OK;
    char path[4200], text[256];
    struct comm_algo_table t;
    comm_t *emitted = NULL, *deflt = NULL;
    char *saved = NULL;
    int env_set = 0;

    snprintf(path, sizeof path, "%s/algo_table.ini", dir);
    if (!file_exists(path)) {
        goto out;
    }
    DURE_TRY(tune_read_algo_table(path, &t));
    comm_algo_table_format(&t, text, sizeof text);
    /* the default is the built-in table, whatever $DURE_ALGO_TABLE says */
    const char *env = getenv("DURE_ALGO_TABLE");
    saved = env ? strdup(env) : NULL;
    unsetenv("DURE_ALGO_TABLE");
    env_set = 1;
    struct comm_config ce = cfg->comm, cd = cfg->comm;
    ce.backend = cd.backend = COMM_BACKEND_MPI;
    ce.algo = cd.algo = COMM_ALGO_AUTO;
    ce.algo_table = text;
    cd.algo_table = NULL;
    /* and the default segment, whatever $DURE_RING_SEGMENT_KIB says; the
     * emitted one is the model's (the default where it was not recorded) */
    ce.ring_seg_bytes = m->ring_seg_bytes ? m->ring_seg_bytes : COMM_RING_SEG_BYTES;
    cd.ring_seg_bytes = COMM_RING_SEG_BYTES;
    DURE_TRY(comm_create(MPI_COMM_WORLD, &ce, &emitted));
    DURE_TRY(comm_create(MPI_COMM_WORLD, &cd, &deflt));
    for (int c = 0; c <= COMM_BROADCAST; c++) {
        const struct tune_series *s = model_series(m, TUNE_FAMILY_DURE, (enum comm_coll)c);
        if (!s || !cfg->coll[c]) {
            continue;
        }
        for (int k = 0; k < s->n; k++) {
            struct tune_verify_row *row = NULL;
            DURE_TRY(new_row(v, &row));
            enum comm_algo ea = comm_algo_for(emitted, (enum comm_coll)c, s->pt[k].bytes);
            enum comm_algo da = comm_algo_for(deflt, (enum comm_coll)c, s->pt[k].bytes);
            int seg = ring_segment_differs(emitted, deflt, ea, s->pt[k].bytes);
            /* The same algorithm: the default's communicator on both sides
             * (each communicator registers buffers of its own, and two of
             * them running shm measured 0.63x to 1.34x against each other) */
            row->changed = ea != da || seg;
            row->segment_only = ea == da && seg;
            DURE_TRY(measure(cfg, (enum comm_coll)c, TUNE_FAMILY_DURE, s->pt[k].bytes,
                             row->changed ? emitted : deflt, deflt, 0, row));
            algo_text(emitted, ea, seg, row->emitted, sizeof row->emitted);
            algo_text(deflt, da, seg, row->deflt, sizeof row->deflt);
        }
        if (progress) {
            fprintf(progress, "# verify %s dure (table %s): %d sizes\n",
                    tune_coll_name((enum comm_coll)c), text, s->n);
            fflush(progress);
        }
    }
out:
    comm_destroy(emitted);
    comm_destroy(deflt);
    if (env_set && saved) {
        setenv("DURE_ALGO_TABLE", saved, 1);
    }
    free(saved);
    return st;
}

static dure_status_t verify_ompi(const struct tune_sweep_cfg *cfg, const char *dir,
                                 const struct tune_result *m, struct tune_verify *v,
                                 FILE *progress)
{
    dure_status_t st = DURE_OK;
    char path[4200];
    struct tune_ompi_rules *rs = NULL;
    struct comm_cache cache = {0};

    snprintf(path, sizeof path, "%s/ompi_rules.conf", dir);
    if (!file_exists(path)) {
        goto out;
    }
    rs = calloc(1, sizeof *rs);
    DURE_ALLOC_TRY(rs, sizeof *rs);
    DURE_TRY(tune_ompi_rules_parse(path, rs));
    DURE_CHECK(cfg->ompi_usable, DURE_ERR_UNSUPPORTED,
               "%s: cannot verify Open MPI rules: Open MPI's algorithms cannot be forced here",
               path);
    for (int c = 0; c <= COMM_BROADCAST; c++) {
        const struct tune_series *s = model_series(m, TUNE_FAMILY_OMPI, (enum comm_coll)c);
        const struct tune_ompi_coll *oc = tune_ompi_coll_of((enum comm_coll)c);
        comm_t *deflt = NULL, *emitted = NULL;
        if (!s || !cfg->coll[c]) {
            continue;
        }
        DURE_TRY(cache_get(&cache, cfg, (enum comm_coll)c, TUNE_FAMILY_OMPI, 0, &deflt));
        for (int k = 0; k < s->n; k++) {
            struct tune_verify_row *row = NULL;
            int alg = tune_ompi_rules_pick(rs, oc->id, s->ranks, s->pt[k].bytes);
            DURE_TRY(cache_get(&cache, cfg, (enum comm_coll)c, TUNE_FAMILY_OMPI, alg, &emitted));
            DURE_TRY(new_row(v, &row));
            DURE_TRY(measure(cfg, (enum comm_coll)c, TUNE_FAMILY_OMPI, s->pt[k].bytes, emitted,
                             deflt, 1, row));
            const char *name = tune_ompi_algo_name(oc, alg);
            snprintf(row->emitted, sizeof row->emitted, "%s",
                     alg == 0 ? "default" : name ? name : "?");
            snprintf(row->deflt, sizeof row->deflt, "default");
            row->changed = !tune_ompi_is_default(oc->id, s->ranks, s->pt[k].bytes, alg);
        }
        cache_free(&cache);
        if (progress) {
            fprintf(progress, "# verify %s ompi: %d sizes\n", tune_coll_name((enum comm_coll)c),
                    s->n);
            fflush(progress);
        }
    }
out:
    cache_free(&cache);
    free(rs);
    return st;
}

static dure_status_t verify_nccl(const struct tune_sweep_cfg *cfg, const char *dir,
                                 const struct tune_result *m, struct tune_verify *v,
                                 FILE *progress)
{
    dure_status_t st = DURE_OK;
    char path[4200];
    struct tune_nccl_conf *conf = NULL;
    struct comm_cache cache = {0};

    snprintf(path, sizeof path, "%s/nccl_tuner.conf", dir);
    if (!file_exists(path) || !cfg->family[TUNE_FAMILY_NCCL]) {
        goto out;
    }
    conf = calloc(1, sizeof *conf);
    DURE_ALLOC_TRY(conf, sizeof *conf);
    DURE_TRY(tune_nccl_conf_parse(path, conf));
    for (int c = 0; c <= COMM_BROADCAST; c++) {
        const struct tune_series *s = model_series(m, TUNE_FAMILY_NCCL, (enum comm_coll)c);
        comm_t *deflt = NULL, *emitted = NULL;
        if (!s || !cfg->coll[c]) {
            continue;
        }
        DURE_TRY(cache_get(&cache, cfg, (enum comm_coll)c, TUNE_FAMILY_NCCL, -1, &deflt));
        for (int k = 0; k < s->n; k++) {
            struct tune_verify_row *row = NULL;
            const struct tune_nccl_rule *rule =
                tune_nccl_conf_pick(conf, tune_nccl_coll_of((enum comm_coll)c), s->pt[k].bytes,
                                    s->nodes, s->ranks);
            int id = rule ? (int)rule->algo * TUNE_NCCL_PROTO_COUNT + (int)rule->proto : -1;
            DURE_TRY(cache_get(&cache, cfg, (enum comm_coll)c, TUNE_FAMILY_NCCL, id, &emitted));
            DURE_TRY(new_row(v, &row));
            DURE_TRY(measure(cfg, (enum comm_coll)c, TUNE_FAMILY_NCCL, s->pt[k].bytes, emitted,
                             deflt, 0, row));
            if (rule) {
                snprintf(row->emitted, sizeof row->emitted, "%s/%s",
                         tune_nccl_algo_name(rule->algo), tune_nccl_proto_name(rule->proto));
            } else {
                snprintf(row->emitted, sizeof row->emitted, "default");
            }
            snprintf(row->deflt, sizeof row->deflt, "default");
            row->changed = rule != NULL;
        }
        cache_free(&cache);
        if (progress) {
            fprintf(progress, "# verify %s nccl: %d sizes\n", tune_coll_name((enum comm_coll)c),
                    s->n);
            fflush(progress);
        }
    }
out:
    cache_free(&cache);
    free(conf);
    return st;
}

/*
 * One round of the recheck: every size of the job's level where the
 * rules r implies leave Open MPI's default for an algorithm not timed again
 * there yet is timed against the default, interleaved; the algorithm is
 * vetoed at that size unless it was `gain` times faster. *timed: how many.
 */
static dure_status_t recheck_round(const struct tune_sweep_cfg *cfg, struct tune_result *r,
                                   const struct tune_ompi_rules *rs, double gain,
                                   struct comm_cache *caches, FILE *progress, int *timed)
{
    dure_status_t st = DURE_OK;
    const enum tune_level level = tune_job_level(r);
    *timed = 0;
    for (int c = 0; c <= COMM_BROADCAST; c++) {
        const struct tune_ompi_coll *oc = tune_ompi_coll_of((enum comm_coll)c);
        const struct tune_series *deflt_s =
            tune_result_find(r, (enum comm_coll)c, level, TUNE_FAMILY_OMPI, 0);
        comm_t *deflt = NULL, *emitted = NULL;
        if (!deflt_s || !cfg->coll[c] || deflt_s->ranks < 2) {
            continue;
        }
        for (int k = 0; k < deflt_s->n; k++) {
            size_t bytes = deflt_s->pt[k].bytes;
            int alg = tune_ompi_rules_pick(rs, oc->id, deflt_s->ranks, bytes);
            struct tune_series *s =
                tune_result_series(r, (enum comm_coll)c, level, TUNE_FAMILY_OMPI, alg);
            if (alg == 0 || !s || s->pt[k].rechecked) {
                continue;
            }
            struct tune_verify_row row;
            memset(&row, 0, sizeof row);
            DURE_TRY(cache_get(&caches[c], cfg, (enum comm_coll)c, TUNE_FAMILY_OMPI, 0, &deflt));
            DURE_TRY(cache_get(&caches[c], cfg, (enum comm_coll)c, TUNE_FAMILY_OMPI, alg,
                               &emitted));
            DURE_TRY(measure(cfg, (enum comm_coll)c, TUNE_FAMILY_OMPI, bytes, emitted, deflt, 1,
                             &row));
            struct tune_meas *m = &s->pt[k];
            m->rechecked = 1;
            m->recheck_sec = row.sec_emitted;
            m->recheck_default_sec = row.sec_default;
            m->vetoed = row.sec_default < gain * row.sec_emitted || row.wrong != 0;
            (*timed)++;
            if (progress) {
                char sz[32];
                comm_format_bytes(bytes, sz, sizeof sz);
                fprintf(progress, "# recheck: %s ompi %s: %s %.2f us, default %.2f us: "
                        "%.2fx, %s\n", tune_coll_name((enum comm_coll)c), sz, s->name,
                        1e6 * row.sec_emitted, 1e6 * row.sec_default,
                        row.sec_default / row.sec_emitted,
                        m->vetoed ? "below the gain asked: not chosen here" : "kept");
                fflush(progress);
            }
        }
    }
out:
    return st;
}

/*
 * One round of the recheck of dure's table: every size of the job's level
 * where the table chosen from r leaves the built-in table's algorithm for
 * one not timed again there yet. The table is chosen by the gradient
 * exchange's summed time (tune_choose_dure_table), so the exchange is
 * timed: each of its collectives, the algorithm against the default,
 * interleaved; vetoed at that size unless the default's sum is `gain`
 * times the algorithm's. *timed: how many.
 */
static dure_status_t recheck_dure_round(const struct tune_sweep_cfg *cfg, struct tune_result *r,
                                        double gain, struct comm_cache *caches, FILE *progress,
                                        int *timed)
{
    dure_status_t st = DURE_OK;
    const enum tune_level level = tune_job_level(r);
    const struct comm_algo_table *builtin = tune_dure_builtin(r);
    struct comm_algo_table t;
    /* every dure series of a level has the same sizes */
    const struct tune_series *sizes = model_series(r, TUNE_FAMILY_DURE, COMM_ALLREDUCE);
    *timed = 0;
    DURE_TRY(tune_choose_dure_table(r, &t));
    for (int k = 0; sizes && t.n > 0 && k < sizes->n; k++) {
        const enum comm_algo a = comm_algo_table_pick(&t, sizes->pt[k].bytes);
        const enum comm_algo d = comm_algo_table_pick(builtin, sizes->pt[k].bytes);
        struct tune_series *s[TUNE_EXCHANGE_N];
        struct tune_verify_row row[TUNE_EXCHANGE_N];
        double sum = 0, sum_default = 0;
        long wrong = 0;
        int todo = a != d;
        for (int i = 0; i < TUNE_EXCHANGE_N; i++) {
            s[i] = tune_result_series(r, tune_exchange[i], level, TUNE_FAMILY_DURE, (int)a);
            todo = todo && s[i] && s[i]->n == sizes->n && !s[i]->pt[k].rechecked;
        }
        if (!todo) {
            continue;
        }
        for (int i = 0; i < TUNE_EXCHANGE_N; i++) {
            comm_t *ca = NULL, *cd = NULL;
            memset(&row[i], 0, sizeof row[i]);
            DURE_TRY(cache_get(&caches[tune_exchange[i]], cfg, tune_exchange[i],
                               TUNE_FAMILY_DURE, (int)d, &cd));
            DURE_TRY(cache_get(&caches[tune_exchange[i]], cfg, tune_exchange[i],
                               TUNE_FAMILY_DURE, (int)a, &ca));
            DURE_TRY(measure(cfg, tune_exchange[i], TUNE_FAMILY_DURE, s[i]->pt[k].bytes, ca, cd,
                             0, &row[i]));
            sum += row[i].sec_emitted;
            sum_default += row[i].sec_default;
            wrong += row[i].wrong;
        }
        const int vetoed = sum_default < gain * sum || wrong != 0;
        for (int i = 0; i < TUNE_EXCHANGE_N; i++) {
            struct tune_meas *m = &s[i]->pt[k];
            m->rechecked = 1;
            m->recheck_sec = row[i].sec_emitted;
            m->recheck_default_sec = row[i].sec_default;
            m->vetoed = vetoed;
        }
        (*timed)++;
        if (progress) {
            char sz[32];
            comm_format_bytes(s[0]->pt[k].bytes, sz, sizeof sz);
            fprintf(progress, "# recheck: dure table %s: %s %.2f us, default %s %.2f us "
                    "(all-reduce + reduce-scatter + all-gather): %.2fx, %s\n", sz,
                    comm_algo_name(a), 1e6 * sum, comm_algo_name(d), 1e6 * sum_default,
                    sum_default / sum, vetoed ? "below the gain asked: not chosen here" : "kept");
            fflush(progress);
        }
    }
out:
    return st;
}

dure_status_t tune_recheck(const struct tune_sweep_cfg *cfg, struct tune_result *r, double gain,
                           FILE *progress)
{
    dure_status_t st = DURE_OK;
    struct tune_ompi_rules *rs = NULL;
    struct comm_cache caches[COMM_BROADCAST + 1], dure_caches[COMM_BROADCAST + 1];
    struct tune_sweep_cfg again = *cfg;
    int changed = 0, timed = 0;

    memset(caches, 0, sizeof caches);
    memset(dure_caches, 0, sizeof dure_caches);
    /* three times the sweep's repetitions: a change is kept on the median
     * of many, not on a lucky few */
    again.opts.reps = 3 * cfg->opts.reps;
    DURE_TRY(tune_result_fit(r));
    /* Each round times only algorithms not yet timed at a size, and a veto
     * can only hand a size to another algorithm or back to the default:
     * at most one round per candidate algorithm, and then no change left. */
    if (cfg->family[TUNE_FAMILY_OMPI] && cfg->ompi_usable) {
        rs = calloc(1, sizeof *rs);
        DURE_ALLOC_TRY(rs, sizeof *rs);
        do {
            DURE_TRY(tune_choose_ompi_rules(r, rs, &changed));
            DURE_TRY(recheck_round(&again, r, rs, gain, caches, progress, &timed));
        } while (timed > 0);
    }
    if (cfg->family[TUNE_FAMILY_DURE]) {
        do {
            DURE_TRY(recheck_dure_round(&again, r, gain, dure_caches, progress, &timed));
        } while (timed > 0);
    }
out:
    for (int c = 0; c <= COMM_BROADCAST; c++) {
        cache_free(&caches[c]);
        cache_free(&dure_caches[c]);
    }
    free(rs);
    return st;
}

dure_status_t tune_verify_run(const struct tune_sweep_cfg *cfg, const char *dir,
                              const struct tune_result *model, struct tune_verify *v,
                              FILE *progress)
{
    dure_status_t st = DURE_OK;
    int size = 0;
    v->n = 0;
    DURE_MPI_TRY(MPI_Comm_size(MPI_COMM_WORLD, &size));
    DURE_CHECK(size == model->ranks, DURE_ERR_ARG,
               "%s/tune.json was measured on %d rank(s); --verify must run on as many (this run "
               "has %d)", dir, model->ranks, size);
    if (cfg->family[TUNE_FAMILY_DURE]) {
        DURE_TRY(verify_dure(cfg, dir, model, v, progress));
    }
    if (cfg->family[TUNE_FAMILY_OMPI]) {
        DURE_TRY(verify_ompi(cfg, dir, model, v, progress));
    }
    DURE_TRY(verify_nccl(cfg, dir, model, v, progress));
    DURE_CHECK(v->n > 0, DURE_ERR_ARG,
               "%s: no tuning file of a family this run can measure (algo_table.ini, "
               "ompi_rules.conf, nccl_tuner.conf)", dir);
out:
    return st;
}

/* The speed-up of the emitted setting: default time / emitted time. */
static double speedup(const struct tune_verify_row *r)
{
    return r->sec_default / r->sec_emitted;
}

int tune_verify_judge(const struct tune_verify *v, enum tune_family f,
                      struct tune_verify_verdict *out)
{
    double seg_default = 0, seg_emitted = 0;
    memset(out, 0, sizeof *out);
    out->family = f;
    for (int i = 0; i < v->n; i++) {
        const struct tune_verify_row *r = &v->row[i];
        if (r->family != f) {
            continue;
        }
        double s = speedup(r);
        out->sizes++;
        if (r->segment_only) {
            out->segment_lowest = out->segment_changed++ == 0 || s < out->segment_lowest
                                      ? s
                                      : out->segment_lowest;
            seg_default += r->sec_default;
            seg_emitted += r->sec_emitted;
        } else if (r->changed) {
            out->lowest = out->changed++ == 0 || s < out->lowest ? s : out->lowest;
        } else {
            out->noise_lo = out->identical == 0 || s < out->noise_lo ? s : out->noise_lo;
            out->noise_hi = out->identical++ == 0 || s > out->noise_hi ? s : out->noise_hi;
        }
    }
    out->segment_gain = seg_emitted > 0 ? seg_default / seg_emitted : 0;
    out->met = (out->changed == 0 || out->lowest >= 1.2) &&
               (out->segment_changed == 0 || out->segment_gain >= TUNE_RING_SEGMENT_GAIN);
    return out->sizes > 0;
}

int tune_verify_print(FILE *out, const struct tune_verify *v)
{
    int all_met = 1;
    fprintf(out, "# verify: emitted settings against the defaults, interleaved in every "
                 "repetition (median); speed-up = default time / emitted time; identical: "
                 "the emitted setting is the default's (an A/A measurement)\n");
    fprintf(out, "# %-13s %-4s %8s  %-20s %-10s %11s %11s %8s\n", "collective", "fam", "size",
            "emitted", "default", "emitted(us)", "default(us)", "speed-up");
    for (int i = 0; i < v->n; i++) {
        const struct tune_verify_row *r = &v->row[i];
        char sz[32];
        comm_format_bytes(r->bytes, sz, sizeof sz);
        fprintf(out, "  %-13s %-4s %8s  %-20s %-10s %11.2f %11.2f %8.2f  (%s)\n",
                tune_coll_name(r->coll), tune_family_name(r->family), sz, r->emitted, r->deflt,
                1e6 * r->sec_emitted, 1e6 * r->sec_default, speedup(r),
                r->changed ? "changed" : "identical");
    }
    for (int f = 0; f < TUNE_FAMILY_COUNT; f++) {
        struct tune_verify_verdict d;
        if (!tune_verify_judge(v, (enum tune_family)f, &d)) {
            continue;
        }
        all_met = all_met && d.met;
        fprintf(out, "verify: %s: %d size(s), %d changed", tune_family_name(d.family), d.sizes,
                d.changed);
        if (d.changed) {
            fprintf(out, ": lowest speed-up %.2f (targets >= 1.0, >= 1.2)", d.lowest);
        }
        if (d.segment_changed) {
            fprintf(out, "; %d by the ring's segment alone: %.2fx summed (target >= %.2f, as "
                         "the probe chose it), lowest %.2f",
                    d.segment_changed, d.segment_gain, TUNE_RING_SEGMENT_GAIN, d.segment_lowest);
        }
        if (d.identical) {
            fprintf(out, "; %d identical to the default: noise floor %.2f to %.2f (A/A, not "
                         "judged)", d.identical, d.noise_lo, d.noise_hi);
        }
        fprintf(out, ": %s\n", d.met ? "targets met" : "target missed");
    }
    return all_met;
}

/* x, or null where there is none (have == 0). */
static void double_or_null(struct json_writer *w, int have, double x)
{
    if (have) {
        json_double(w, x);
    } else {
        json_null(w);
    }
}

static void put_verify(struct json_writer *w, const void *arg)
{
    const struct tune_verify *v = arg;
    json_begin_object(w);
    json_key(w, "kind");
    json_string(w, "dure-tune-verify");
    json_key(w, "rows");
    json_begin_array(w);
    for (int i = 0; i < v->n; i++) {
        const struct tune_verify_row *r = &v->row[i];
        json_begin_object(w);
        json_key(w, "collective");
        json_string(w, tune_coll_name(r->coll));
        json_key(w, "family");
        json_string(w, tune_family_name(r->family));
        json_key(w, "bytes");
        json_uint(w, r->bytes);
        json_key(w, "emitted");
        json_string(w, r->emitted);
        json_key(w, "default");
        json_string(w, r->deflt);
        json_key(w, "changed");
        json_bool(w, r->changed);
        json_key(w, "segment_only");
        json_bool(w, r->segment_only);
        json_key(w, "emitted_s");
        json_double(w, r->sec_emitted);
        json_key(w, "default_s");
        json_double(w, r->sec_default);
        json_key(w, "speedup");
        json_double(w, speedup(r));
        json_key(w, "wrong");
        json_int(w, r->wrong);
        json_end_object(w);
    }
    json_end_array(w);
    json_key(w, "verdicts");
    json_begin_array(w);
    for (int f = 0; f < TUNE_FAMILY_COUNT; f++) {
        struct tune_verify_verdict d;
        if (!tune_verify_judge(v, (enum tune_family)f, &d)) {
            continue;
        }
        json_begin_object(w);
        json_key(w, "family");
        json_string(w, tune_family_name(d.family));
        json_key(w, "sizes");
        json_int(w, d.sizes);
        json_key(w, "changed");
        json_int(w, d.changed);
        json_key(w, "lowest_speedup");
        double_or_null(w, d.changed, d.lowest);
        json_key(w, "segment_changed");
        json_int(w, d.segment_changed);
        json_key(w, "segment_gain");
        double_or_null(w, d.segment_changed, d.segment_gain);
        json_key(w, "segment_lowest_speedup");
        double_or_null(w, d.segment_changed, d.segment_lowest);
        json_key(w, "identical");
        json_int(w, d.identical);
        json_key(w, "noise_floor");
        if (d.identical) {
            json_begin_object(w);
            json_key(w, "lowest");
            json_double(w, d.noise_lo);
            json_key(w, "highest");
            json_double(w, d.noise_hi);
            json_end_object(w);
        } else {
            json_null(w);
        }
        json_key(w, "targets_met");
        json_bool(w, d.met);
        json_end_object(w);
    }
    json_end_array(w);
    json_end_object(w);
}

dure_status_t tune_verify_write(const struct tune_verify *v, const char *path)
{
    return json_write_file(path, 1, put_verify, v);
}
