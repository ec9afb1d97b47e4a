/* tune/sweep.c - see sweep.h. */
#include "tune/sweep.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/bench.h"
#include "common/mpi_check.h"
#include "common/timing.h"
#include "tune/links.h"
#include "tune/nccl_conf.h"
#include "tune/ompi_mpit.h"

dure_status_t tune_sweep_sizes(const struct tune_sweep_opts *o, size_t *bytes, int *n)
{
    dure_status_t st = DURE_OK;
    const double max = (double)o->max_bytes;
    *n = 0;
    for (int k = 0;; k++) {
        /* min * f^k, not a running product (no drift), to the nearest byte */
        double s = (double)o->min_bytes * pow(o->factor, k);
        if (s > max * (1 + TUNE_SIZE_SLACK)) {
            break;
        }
        size_t b = s >= max ? o->max_bytes : (size_t)llround(s);
        if (*n == 0 || b > bytes[*n - 1]) {
            DURE_CHECK(*n < TUNE_SIZES_MAX, DURE_ERR_ARG,
                       "sizes %zu to %zu bytes by a factor %g are more than %d: raise the factor "
                       "(-f) or narrow the range (-b, -e)", o->min_bytes, o->max_bytes, o->factor,
                       TUNE_SIZES_MAX);
            bytes[(*n)++] = b;
        }
    }
    DURE_CHECK(*n > 0, DURE_ERR_ARG, "no size between %zu and %zu bytes", o->min_bytes,
               o->max_bytes);
out:
    return st;
}

/*
 * The sizes of bytes[n] a level of `ranks` measures, into out; returns how
 * many. The harness rounds each size to whole elements, for reduce-scatter
 * and all-gather to 4 a rank: a size that rounds to nothing or to one
 * already measured there is left out, for every collective alike, so the
 * series' sizes ascend (tune_fit_points) and every collective of a level has
 * as many (dure's table sums the three of the exchange).
 */
static int level_sizes(const size_t *bytes, int n, int ranks, size_t *out)
{
    struct bench_spec per_rank;
    size_t last = 0;
    int m = 0;
    bench_spec_default(&per_rank, bench_coll_find("reducescatter"));
    for (int i = 0; i < n; i++) {
        size_t b = bench_total_for(&per_rank, ranks, bytes[i]);
        if (b > last) {
            out[m++] = bytes[i];
            last = b;
        }
    }
    return m;
}

void tune_sweep_spec(const struct tune_sweep_cfg *cfg, enum comm_coll coll,
                     struct bench_spec *spec)
{
    bench_spec_default(spec, bench_coll_find(tune_coll_name(coll)));
    spec->iters = cfg->opts.iters;
    spec->warmup = cfg->opts.warmup;
    spec->reps = 1;
    spec->passes = cfg->opts.reps;
    spec->min_rep_s = cfg->opts.min_rep_s;
}

/* One algorithm to measure. */
struct cand {
    enum tune_family family;
    int id;
    char name[TUNE_NAME_MAX];
};

#define CANDS_MAX 32

/* The candidates of a family for a collective; *n of them. */
static dure_status_t candidates(const struct tune_sweep_cfg *cfg, enum tune_family family,
                                enum comm_coll coll, struct cand *c, int *n)
{
    dure_status_t st = DURE_OK;
    *n = 0;
    switch (family) {
    case TUNE_FAMILY_DURE:
        for (int a = COMM_ALGO_NATIVE; a < COMM_ALGO_COUNT && *n < CANDS_MAX; a++) {
            c[*n] = (struct cand){family, a, ""};
            snprintf(c[*n].name, sizeof c[*n].name, "%s", comm_algo_name((enum comm_algo)a));
            (*n)++;
        }
        break;
    case TUNE_FAMILY_OMPI: {
        char names[CANDS_MAX][48];
        int count = 0;
        if (!cfg->ompi_usable) {
            break;
        }
        DURE_TRY(tune_ompi_algos(tune_ompi_coll_of(coll), &count, names, CANDS_MAX));
        for (int k = 0; k < count && k < CANDS_MAX; k++) {
            c[*n] = (struct cand){family, k, ""};
            snprintf(c[*n].name, sizeof c[*n].name, "%.47s", k == 0 ? "default" : names[k]);
            (*n)++;
        }
        break;
    }
    case TUNE_FAMILY_NCCL:
        c[(*n)++] = (struct cand){family, -1, "default"};
        for (int a = 0; a < TUNE_NCCL_ALGO_COUNT; a++) {
            for (int p = 0; p < TUNE_NCCL_PROTO_COUNT && *n < CANDS_MAX; p++) {
                c[*n] = (struct cand){family, a * TUNE_NCCL_PROTO_COUNT + p, ""};
                snprintf(c[*n].name, sizeof c[*n].name, "%s/%s",
                         tune_nccl_algo_name((enum tune_nccl_algo)a),
                         tune_nccl_proto_name((enum tune_nccl_proto)p));
                (*n)++;
            }
        }
        break;
    default:
        break;
    }
out:
    return st;
}

/* Set (or with value NULL unset) an environment variable, keeping the old value. */
static void swap_env(const char *name, const char *value, char **saved)
{
    const char *old = getenv(name);
    *saved = old ? strdup(old) : NULL;
    if (value) {
        setenv(name, value, 1);
    } else {
        unsetenv(name);
    }
}

static void restore_env(const char *name, char *saved)
{
    if (saved) {
        setenv(name, saved, 1);
        free(saved);
    } else {
        unsetenv(name);
    }
}

dure_status_t tune_sweep_comm(const struct comm_config *base, MPI_Comm mpi, enum comm_coll coll,
                              enum tune_family family, int id, comm_t **out, char *why,
                              size_t why_len)
{
    dure_status_t st = DURE_OK;
    struct comm_config cfg = *base;
    char *old_algo = NULL, *old_proto = NULL;
    int env_swapped = 0;

    *out = NULL;
    cfg.algo_table = NULL;
    switch (family) {
    case TUNE_FAMILY_DURE:
        cfg.backend = COMM_BACKEND_MPI;
        cfg.algo = (enum comm_algo)id;
        break;
    case TUNE_FAMILY_OMPI:
        cfg.backend = COMM_BACKEND_MPI;
        cfg.algo = COMM_ALGO_NATIVE;
        DURE_TRY(tune_ompi_force(tune_ompi_coll_of(coll), id));
        break;
    case TUNE_FAMILY_NCCL:
        cfg.backend = COMM_BACKEND_NCCL;
        cfg.algo = COMM_ALGO_AUTO;
        swap_env("NCCL_ALGO",
                 id < 0 ? NULL
                        : tune_nccl_algo_env((enum tune_nccl_algo)(id / TUNE_NCCL_PROTO_COUNT)),
                 &old_algo);
        swap_env("NCCL_PROTO",
                 id < 0 ? NULL
                        : tune_nccl_proto_env((enum tune_nccl_proto)(id % TUNE_NCCL_PROTO_COUNT)),
                 &old_proto);
        env_swapped = 1;
        break;
    default:
        DURE_FAIL(DURE_ERR_INTERNAL, "sweep: unknown family %d", (int)family);
    }
    dure_log_set_quiet(1);
    dure_status_t made = comm_create(mpi, &cfg, out);
    dure_log_set_quiet(0);
    if (made == DURE_ERR_ARG || made == DURE_ERR_UNSUPPORTED || made == DURE_ERR_NCCL) {
        snprintf(why, why_len, "%s", dure_last_error());
        *out = NULL;
    } else {
        DURE_TRY(made);
    }
    if (*out && family == TUNE_FAMILY_DURE && id == COMM_ALGO_HIER &&
        comm_node_count(*out) == 1) {
        /* On one node hier is shm: measuring it again would only add noise. */
        snprintf(why, why_len, "algo = hier is shm on one node");
        comm_destroy(*out);
        *out = NULL;
    }
    if (family == TUNE_FAMILY_OMPI) {
        DURE_TRY(tune_ompi_force(tune_ompi_coll_of(coll), 0));
    }
out:
    if (env_swapped) {
        restore_env("NCCL_ALGO", old_algo);
        restore_env("NCCL_PROTO", old_proto);
    }
    return st;
}

struct level {
    enum tune_level level;
    MPI_Comm mpi;
    int ranks, nodes;
};

/* The series of cand at this level in r, or NULL. */
static struct tune_series *series_of(struct tune_result *r, const struct level *lv,
                                     enum comm_coll coll, const struct cand *cd)
{
    return tune_result_series(r, coll, lv->level, cd->family, cd->id);
}

/* Again (tune_sweep_run's second look): whether rank 0's fit of any of
 * cands[0..n) missed the tolerance, the same answer on every rank; the
 * worst such series into *worst. Collective over MPI_COMM_WORLD. */
static dure_status_t missed(const struct tune_sweep_cfg *cfg, const struct level *lv,
                            enum comm_coll coll, const struct cand *cands, int n,
                            struct tune_result *r, const struct tune_series **worst, int *any)
{
    dure_status_t st = DURE_OK;
    *worst = NULL;
    for (int k = 0; k < n; k++) {
        const struct tune_series *s = series_of(r, lv, coll, &cands[k]);
        if (s && s->fit.worst_err > cfg->opts.tolerance &&
            (!*worst || s->fit.worst_err > (*worst)->fit.worst_err)) {
            *worst = s;
        }
    }
    *any = *worst != NULL;
    DURE_MPI_TRY(MPI_Bcast(any, 1, MPI_INT, 0, MPI_COMM_WORLD));
out:
    return st;
}

/* Measure cands[0..n) of one family for one collective at one level,
 * appending a series for each, up to BENCH_MAX_VARIANTS timed together.
 * again = 1 (tune_sweep_run's second look): only the groups timed together
 * of which a series missed the tolerance (by rank 0's fit), with twice the
 * passes, their series' timings replaced. */
static dure_status_t sweep_group(const struct tune_sweep_cfg *cfg, const struct level *lv,
                                 enum comm_coll coll, const struct cand *cands, int n,
                                 const size_t *bytes, int nsizes, int again,
                                 struct tune_result *r, FILE *progress)
{
    dure_status_t st = DURE_OK;
    comm_t *comms[BENCH_MAX_VARIANTS] = {0};
    struct bench_variant v[BENCH_MAX_VARIANTS];
    int used[BENCH_MAX_VARIANTS];
    struct bench_point *pts = calloc((size_t)nsizes, sizeof *pts);
    struct bench_spec spec;
    DURE_ALLOC_TRY(pts, (size_t)nsizes * sizeof *pts);
    tune_sweep_spec(cfg, coll, &spec);
    spec.passes *= again ? 2 : 1;
    DURE_TRY(bench_faults_from_env(&spec.faults));
    spec.faults.stall_rank = spec.faults.kill_rank = -1;   /* dure bench's; not repeated here */

    for (int g = 0; g < n; g += BENCH_MAX_VARIANTS) {
        int nv = 0, any = 0;
        const struct tune_series *worst = NULL;
        double t0 = dure_now_s();
        if (again) {
            const int in_group = n - g < BENCH_MAX_VARIANTS ? n - g : BENCH_MAX_VARIANTS;
            DURE_TRY(missed(cfg, lv, coll, &cands[g], in_group, r, &worst, &any));
            if (!any) {
                continue;
            }
            if (progress && worst) {
                fprintf(progress, "# %s %s %s %s: fit %.1f%% off, beyond the tolerance: timing "
                                  "its group again, %d passes\n", tune_coll_name(coll),
                        tune_level_name(lv->level), tune_family_name(worst->family),
                        worst->name, 100 * worst->fit.worst_err, spec.passes);
            }
        }
        for (int k = g; k < n && k < g + BENCH_MAX_VARIANTS; k++) {
            char why[512] = "";
            comm_t *c = NULL;
            if (again && !series_of(r, lv, coll, &cands[k])) {
                continue;   /* the first sweep skipped it, and said why */
            }
            DURE_TRY(tune_sweep_comm(&cfg->comm, lv->mpi, coll, cands[k].family, cands[k].id,
                                     &c, why, sizeof why));
            if (!c) {
                if (progress) {
                    fprintf(progress, "# %s %s: %s %s skipped: %s\n", tune_coll_name(coll),
                            tune_level_name(lv->level), tune_family_name(cands[k].family),
                            cands[k].name, why);
                }
                continue;
            }
            if (cands[k].family == TUNE_FAMILY_DURE && comm_ring_segment(c)) {
                r->ring_seg_bytes = comm_ring_segment(c);
            }
            v[nv] = (struct bench_variant){.comm = c, .in_place = 1,
                                           .heap = cands[k].family == TUNE_FAMILY_OMPI};
            if (cands[k].family != TUNE_FAMILY_DURE) {
                /* A forced algorithm may refuse this communicator (Open MPI's
                 * recursive doubling on 3 ranks returns MPI_ERR_UNSUPPORTED_
                 * OPERATION on every rank): try the smallest and largest
                 * sizes once, quietly, before timing it beside the others. */
                struct bench_spec probe = spec;
                struct bench_point pp[2];
                const size_t ends[2] = {bytes[0], bytes[nsizes - 1]};
                probe.iters = probe.reps = 1;
                probe.warmup = probe.check = 0;
                dure_log_set_quiet(1);
                dure_status_t tried = bench_measure(lv->mpi, &probe, &v[nv], 1, ends, 2, pp);
                dure_log_set_quiet(0);
                if (tried != DURE_OK) {
                    if (progress) {
                        fprintf(progress, "# %s %s: %s %s skipped: %s\n", tune_coll_name(coll),
                                tune_level_name(lv->level), tune_family_name(cands[k].family),
                                cands[k].name, dure_last_error());
                    }
                    comm_destroy(c);
                    continue;
                }
            }
            comms[nv] = c;
            used[nv++] = k;
        }
        if (nv == 0) {
            continue;
        }
        DURE_TRY(bench_measure(lv->mpi, &spec, v, nv, bytes, nsizes, pts));
        for (int j = 0; j < nv; j++) {
            const struct cand *cd = &cands[used[j]];
            struct tune_series *s = again ? series_of(r, lv, coll, cd) : NULL;
            if (s) {
                s->retimed = 1;
                s->first_worst_err = s->fit.worst_err;
            } else {
                DURE_TRY(tune_result_add_series(r, coll, lv->level, lv->ranks, lv->nodes,
                                                cd->family, cd->id, cd->name,
                                                tune_hops(coll, cd->family, cd->id, lv->ranks),
                                                &s));
            }
            s->n = nsizes;
            for (int i = 0; i < nsizes; i++) {
                s->pt[i] = (struct tune_meas){.bytes = pts[i].bytes,
                                              .sec = pts[i].v[j].sec,
                                              .busbw = pts[i].v[j].busbw_gbs,
                                              .wrong = pts[i].v[j].wrong};
            }
        }
        for (int j = 0; j < nv; j++) {
            comm_destroy(comms[j]);
            comms[j] = NULL;
        }
        if (progress) {
            fprintf(progress, "# %-13s %-5s %-4s", tune_coll_name(coll), tune_level_name(lv->level),
                    tune_family_name(cands[g].family));
            for (int j = 0; j < nv; j++) {
                fprintf(progress, "%s %s", j ? "," : "", cands[used[j]].name);
            }
            fprintf(progress, ": %d sizes%s in %.1f s\n", nsizes, again ? " again" : "",
                    dure_now_s() - t0);
            fflush(progress);
        }
    }
out:
    for (int j = 0; j < BENCH_MAX_VARIANTS; j++) {
        comm_destroy(comms[j]);
    }
    free(pts);
    return st;
}

int tune_segments_differ(const size_t *segs, int n, size_t piece)
{
    size_t lo = SIZE_MAX, hi = 0;
    for (int i = 0; i < n; i++) {
        size_t e = comm_ring_segment_for(segs[i], piece);
        lo = e < lo ? e : lo;
        hi = e > hi ? e : hi;
    }
    return lo != hi && piece > lo;
}

dure_status_t tune_sweep_ring_segment(struct tune_sweep_cfg *cfg, const size_t *segs, int n,
                                      struct tune_result *r, FILE *progress)
{
    dure_status_t st = DURE_OK;
    struct tune_ring_probe *p = &r->ring_probe;
    size_t bytes[TUNE_SIZES_MAX], sizes[TUNE_SIZES_MAX];
    struct bench_variant v[TUNE_RING_SEGS_MAX];
    comm_t *comms[TUNE_RING_SEGS_MAX] = {NULL};
    struct bench_point *pts = NULL;
    struct bench_spec spec;
    int nbytes = 0, size = 0, best = 0;
    char a[16], b[16];

    DURE_CHECK(n >= 2 && n <= TUNE_RING_SEGS_MAX, DURE_ERR_ARG,
               "--ring-segments: %d segment(s); give 2 to %d", n, TUNE_RING_SEGS_MAX);
    DURE_TRY(tune_sweep_sizes(&cfg->opts, bytes, &nbytes));
    DURE_MPI_TRY(MPI_Comm_size(MPI_COMM_WORLD, &size));
    *p = (struct tune_ring_probe){.nseg = n};
    for (int i = 0; i < nbytes; i++) {
        if (tune_segments_differ(segs, n, bytes[i] / (size_t)size)) {
            sizes[p->nsizes++] = bytes[i];
        }
    }
    for (int i = 0; i < n; i++) {
        struct comm_config c = cfg->comm;
        p->seg_bytes[i] = segs[i];
        c.algo = COMM_ALGO_AUTO;
        /* One node: the ring. Across nodes the built-in table's hier, whose
         * rail is the ring (on nodes of different sizes the table makes it
         * the ring). */
        c.algo_table = cfg->nodes > 1 ? "0:hier" : "0:ring";
        c.ring_seg_bytes = segs[i];
        DURE_TRY(comm_create(MPI_COMM_WORLD, &c, &comms[i]));
        p->algo = comm_algo_name(comm_algo_for(comms[i], COMM_ALLREDUCE, 1));
        v[i] = (struct bench_variant){.comm = comms[i], .in_place = 1};
    }
    if (p->nsizes == 0) {
        if (progress) {
            fprintf(progress, "# ring segments: not probed: at no size up to %zu bytes do these "
                    "segments cut %d ranks' pieces differently; the ring keeps the first\n",
                    bytes[nbytes - 1], size);
        }
        cfg->comm.ring_seg_bytes = segs[0];
        goto out;
    }
    p->min_bytes = sizes[0];
    p->max_bytes = sizes[p->nsizes - 1];
    pts = calloc((size_t)p->nsizes, sizeof *pts);
    DURE_ALLOC_TRY(pts, (size_t)p->nsizes * sizeof *pts);
    /* The gradient exchange, as dure's table is chosen by (tune_exchange):
     * a segment serves all three collectives of a job. */
    for (int e = 0; e < TUNE_EXCHANGE_N; e++) {
        tune_sweep_spec(cfg, tune_exchange[e], &spec);
        DURE_TRY(bench_measure(MPI_COMM_WORLD, &spec, v, n, sizes, p->nsizes, pts));
        for (int i = 0; i < n; i++) {
            comm_format_bytes(segs[i], a, sizeof a);
            for (int k = 0; k < p->nsizes; k++) {
                DURE_CHECK(!pts[k].v[i].wrong, DURE_ERR_INTERNAL,
                           "ring segments: the %s %s in %s segments returned %ld wrong "
                           "element(s) at %zu bytes", p->algo, tune_coll_name(tune_exchange[e]),
                           a, pts[k].v[i].wrong, pts[k].bytes);
                p->coll_sec[e][i] += pts[k].v[i].sec;
                p->sec[i] += pts[k].v[i].sec;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        if (p->sec[i] < p->sec[best]) {
            best = i;
        }
    }
    if (p->sec[0] < TUNE_RING_SEGMENT_GAIN * p->sec[best]) {
        best = 0;
    }
    cfg->comm.ring_seg_bytes = segs[best];
    if (progress) {
        fprintf(progress, "# ring segments: %s all-reduce + reduce-scatter + all-gather at %d "
                "size(s) from %zu to %zu bytes:",
                p->algo, p->nsizes, p->min_bytes, p->max_bytes);
        for (int i = 0; i < n; i++) {
            comm_format_bytes(segs[i], a, sizeof a);
            fprintf(progress, "%s %s %.3f ms", i ? "," : "", a, 1e3 * p->sec[i]);
        }
        comm_format_bytes(segs[best], a, sizeof a);
        comm_format_bytes(segs[0], b, sizeof b);
        fprintf(progress, "; the sweep runs the ring in %s (%.2fx %s; another needs %.2fx)\n", a,
                p->sec[0] / p->sec[best], b, TUNE_RING_SEGMENT_GAIN);
        fflush(progress);
    }
out:
    for (int i = 0; i < TUNE_RING_SEGS_MAX; i++) {
        comm_destroy(comms[i]);
    }
    free(pts);
    return st;
}

dure_status_t tune_sweep_run(const struct tune_sweep_cfg *cfg, struct tune_result *r,
                             FILE *progress)
{
    dure_status_t st = DURE_OK;
    struct level levels[TUNE_LEVEL_COUNT];
    int nlevels = 0, rank = 0, size = 0, local_rank = 0, local_size = 0, leaders = 0;
    MPI_Comm node = MPI_COMM_NULL;
    size_t bytes[TUNE_SIZES_MAX], sizes[TUNE_SIZES_MAX];
    struct cand cands[CANDS_MAX];
    int nbytes = 0;

    DURE_TRY(tune_sweep_sizes(&cfg->opts, bytes, &nbytes));
    DURE_MPI_TRY(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    DURE_MPI_TRY(MPI_Comm_size(MPI_COMM_WORLD, &size));
    DURE_MPI_TRY(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL,
                                     &node));
    DURE_MPI_TRY(MPI_Comm_rank(node, &local_rank));
    DURE_MPI_TRY(MPI_Comm_size(node, &local_size));
    int lead = local_rank == 0;
    DURE_MPI_TRY(MPI_Allreduce(&lead, &leaders, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    DURE_MPI_TRY(MPI_Bcast(&local_size, 1, MPI_INT, 0, MPI_COMM_WORLD));
    r->ranks = size;
    r->nodes = leaders;
    r->opts = cfg->opts;
    levels[nlevels++] = (struct level){TUNE_LEVEL_NODE, node, local_size, 1};
    if (leaders > 1) {
        levels[nlevels++] = (struct level){TUNE_LEVEL_WORLD, MPI_COMM_WORLD, size, leaders};
    }
    /* Then a second look: a group of algorithms timed together of which a
     * series missed the fit's tolerance is timed again with twice the
     * passes, and its timings replace the first (a burst of noise that set
     * one size's median 1.3-1.7x its neighbours' in the first is outvoted;
     * a regime narrower than a piece, or a fall, is measured again as it
     * was). Not when a result was wrong: no tuning file comes of that. */
    for (int again = 0; again <= 1; again++) {
        if (again) {
            int stop = tune_result_first_wrong(r, &(int){0}) != NULL;
            DURE_MPI_TRY(MPI_Bcast(&stop, 1, MPI_INT, 0, MPI_COMM_WORLD));
            if (stop) {
                break;
            }
            DURE_TRY(tune_result_fit(r));
        }
        for (int l = 0; l < nlevels; l++) {
            if (levels[l].ranks < 2) {
                if (progress && !again) {
                    fprintf(progress, "# %s level: one rank, nothing to measure\n",
                            tune_level_name(levels[l].level));
                }
                continue;
            }
            int nsizes = level_sizes(bytes, nbytes, levels[l].ranks, sizes);
            DURE_CHECK(nsizes > 0, DURE_ERR_ARG, "sweep: %d ranks: every size up to %zu bytes "
                       "rounds to fewer than 4 elements a rank (raise -e)", levels[l].ranks,
                       bytes[nbytes - 1]);
            for (int f = 0; f < TUNE_FAMILY_COUNT; f++) {
                for (int c = 0; c <= COMM_BROADCAST; c++) {
                    int n = 0;
                    if (!cfg->family[f] || !cfg->coll[c]) {
                        continue;
                    }
                    DURE_TRY(candidates(cfg, (enum tune_family)f, (enum comm_coll)c, cands, &n));
                    DURE_TRY(sweep_group(cfg, &levels[l], (enum comm_coll)c, cands, n, sizes,
                                         nsizes, again, r, progress));
                }
            }
        }
    }
    DURE_TRY(tune_links_measure(MPI_COMM_WORLD, cfg->link_bytes, 5, r));
out:
    if (node != MPI_COMM_NULL) {
        MPI_Comm_free(&node);
    }
    return st;
}
