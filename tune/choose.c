/* tune/choose.c - see choose.h. */
#include "tune/choose.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tune/ompi_fixed.h"

/* Where the choice changes from candidate a to b between sizes lo < hi. */
static size_t boundary(const struct tune_series *a, const struct tune_series *b, size_t lo,
                       size_t hi)
{
    double x[TUNE_PIECES_MAX * 4];
    int nx = tune_fit_crossovers(&a->fit, &b->fit, (double)lo, (double)hi, x, 4 * TUNE_PIECES_MAX);
    for (int i = 0; i < nx; i++) {
        size_t at = ((size_t)x[i] + 4095) / 4096 * 4096;
        if (x[i] > (double)lo && at > lo && at < hi) {
            return at;
        }
    }
    return hi;
}

int tune_choose(const struct tune_series *const *cands, int m, const int *deflt,
                const int *alias, double min_gain, struct tune_segment *out)
{
    const int n = cands[0]->n;
    int nseg = 0, prev = -1, pick[TUNE_SIZES_MAX];
    for (int c = 1; c < m; c++) {
        if (cands[c]->n != n) {
            return -1;
        }
        for (int k = 0; k < n; k++) {
            if (cands[c]->pt[k].bytes != cands[0]->pt[k].bytes) {
                return -1;
            }
        }
    }
    for (int k = 0; k < n; k++) {
        int d = deflt ? deflt[k] : -1;
        int a = d >= 0 && alias ? alias[k] : -1;
        int best = -1;
        for (int c = 0; c < m; c++) {
            if (c != d && c != a && cands[c]->pt[k].vetoed) {
                continue;
            }
            if (best < 0 || cands[c]->pt[k].sec < cands[best]->pt[k].sec) {
                best = c;
            }
        }
        best = best < 0 ? 0 : best;   /* all vetoed, no default: the first */
        best = best == a ? d : best;  /* the default's own algorithm: no change */
        /* the default measured twice (itself and its alias): its better time */
        double dsec = d >= 0 ? cands[d]->pt[k].sec : 0;
        if (a >= 0 && cands[a]->pt[k].sec < dsec) {
            dsec = cands[a]->pt[k].sec;
        }
        pick[k] = best;
        if (d >= 0 && best != d && dsec / cands[best]->pt[k].sec < min_gain) {
            pick[k] = d;
        }
    }
    /* A change must win at two neighbouring sizes at least: alone at one
     * size it was, in --verify, as often a bias of that size's placement in
     * memory as a better algorithm (Open MPI's recursive halving at 330 KiB
     * and 645 KiB on 2 ranks: 1.4x when rechecked, 0.92x and 0.99x when
     * verified; at 3 sizes an octave a real gain spans more than one). */
    int runs[TUNE_SIZES_MAX];   /* what runs at size k (the default: its own algorithm) */
    for (int k = 0; k < n; k++) {
        int d = deflt ? deflt[k] : -1;
        runs[k] = pick[k] == d && d >= 0 && alias && alias[k] >= 0 ? alias[k] : pick[k];
    }
    for (int k = 0; k < n && deflt; k++) {
        int alone = (k == 0 || runs[k - 1] != pick[k]) && (k == n - 1 || runs[k + 1] != pick[k]);
        if (deflt[k] >= 0 && pick[k] != deflt[k] && alone) {
            pick[k] = deflt[k];
        }
    }
    for (int k = 0; k < n; k++) {
        if (pick[k] == prev) {
            continue;
        }
        size_t from = 0;
        if (k > 0) {
            from = boundary(cands[prev], cands[pick[k]], cands[0]->pt[k - 1].bytes,
                            cands[0]->pt[k].bytes);
        }
        out[nseg++] = (struct tune_segment){from, pick[k]};
        prev = pick[k];
    }
    return nseg;
}

enum tune_level tune_job_level(const struct tune_result *r)
{
    return r->nodes > 1 ? TUNE_LEVEL_WORLD : TUNE_LEVEL_NODE;
}

const struct comm_algo_table *tune_dure_builtin(const struct tune_result *r)
{
    return comm_algo_table_builtin(
        r->nodes, r->nodes > 0 && r->ranks % r->nodes == 0 ? r->ranks / r->nodes : 0);
}

dure_status_t tune_choose_dure_table(const struct tune_result *r, struct comm_algo_table *t)
{
    dure_status_t st = DURE_OK;
    const enum tune_level level = tune_job_level(r);
    struct tune_series sum[COMM_ALGO_COUNT];
    const struct tune_series *cands[COMM_ALGO_COUNT];
    int m = 0, deflt[TUNE_SIZES_MAX];
    struct tune_segment seg[TUNE_SIZES_MAX];
    struct tune_point p[TUNE_SIZES_MAX];

    for (int a = COMM_ALGO_NATIVE; a < COMM_ALGO_COUNT; a++) {
        const struct tune_series *s[TUNE_EXCHANGE_N];
        int ok = 1;
        for (int i = 0; i < TUNE_EXCHANGE_N; i++) {
            s[i] = tune_result_find(r, tune_exchange[i], level, TUNE_FAMILY_DURE, a);
            ok = ok && s[i] && s[i]->n == s[0]->n && s[i]->n > 0;
        }
        if (!ok) {
            continue;
        }
        struct tune_series *u = &sum[m];
        *u = *s[0];
        snprintf(u->name, sizeof u->name, "%s", comm_algo_name((enum comm_algo)a));
        for (int k = 0; k < u->n; k++) {
            u->pt[k].sec = s[0]->pt[k].sec + s[1]->pt[k].sec + s[2]->pt[k].sec;
            u->pt[k].vetoed = s[0]->pt[k].vetoed || s[1]->pt[k].vetoed || s[2]->pt[k].vetoed;
            p[k] = (struct tune_point){(double)u->pt[k].bytes, u->pt[k].sec};
        }
        DURE_TRY(tune_fit_points(p, u->n, r->opts.tolerance, &u->fit));
        cands[m++] = u;
    }
    memset(t, 0, sizeof *t);
    if (m == 0) {
        goto out;
    }
    const struct comm_algo_table *builtin = tune_dure_builtin(r);
    for (int k = 0; k < cands[0]->n; k++) {
        enum comm_algo want = comm_algo_table_pick(builtin, cands[0]->pt[k].bytes);
        deflt[k] = -1;
        for (int c = 0; c < m; c++) {
            if (cands[c]->id == (int)want) {
                deflt[k] = c;
            }
        }
    }
    int nseg = tune_choose(cands, m, deflt, NULL, r->opts.min_gain, seg);
    DURE_CHECK(nseg > 0, DURE_ERR_INTERNAL, "dure table: series measured at different sizes");
    DURE_CHECK(nseg <= COMM_ALGO_TABLE_MAX, DURE_ERR_UNSUPPORTED,
               "the fastest dure algorithm changes %d times over the sweep; an algorithm table "
               "holds %d entries: sweep fewer sizes (-f) or raise --min-gain",
               nseg, COMM_ALGO_TABLE_MAX);
    for (int i = 0; i < nseg; i++) {
        t->entry[t->n].min_bytes = seg[i].from_bytes;
        t->entry[t->n].algo = (enum comm_algo)cands[seg[i].cand]->id;
        t->n++;
    }
out:
    return st;
}

/* The series of one family, collective and level, with the default's index. */
static int gather(const struct tune_result *r, enum tune_family family, enum comm_coll coll,
                  enum tune_level level, int default_id, const struct tune_series **cands,
                  int max, int *deflt_index)
{
    int m = 0;
    *deflt_index = -1;
    for (int i = 0; i < r->nseries && m < max; i++) {
        const struct tune_series *s = &r->s[i];
        if (s->family == family && s->coll == coll && s->level == level && s->n > 0) {
            if (s->id == default_id) {
                *deflt_index = m;
            }
            cands[m++] = s;
        }
    }
    return m;
}

#define CANDS_MAX 64

dure_status_t tune_choose_ompi_rules(const struct tune_result *r, struct tune_ompi_rules *rs,
                                     int *changed)
{
    dure_status_t st = DURE_OK;
    const struct tune_series *cands[CANDS_MAX];
    struct tune_segment seg[TUNE_SIZES_MAX];
    int deflt[TUNE_SIZES_MAX], alias[TUNE_SIZES_MAX];

    rs->n = 0;
    *changed = 0;
    for (int ci = 0; ci <= COMM_BROADCAST; ci++) {
        const struct tune_ompi_coll *oc = tune_ompi_coll_of((enum comm_coll)ci);
        int sizes_done = 0, first = rs->n;
        for (int level = 0; level < TUNE_LEVEL_COUNT; level++) {
            int d = -1;
            int m = gather(r, TUNE_FAMILY_OMPI, (enum comm_coll)ci, (enum tune_level)level, 0,
                           cands, CANDS_MAX, &d);
            if (m == 0 || d < 0 || cands[0]->ranks < 2) {
                continue;
            }
            const int ranks = cands[0]->ranks;
            if (rs->n == first) {   /* below the measured sizes: Open MPI's own choice */
                DURE_TRY(tune_ompi_rules_add(rs, oc->id, 0, 0, 0));
            } else if (sizes_done < ranks) {   /* between the levels: defaults */
                DURE_TRY(tune_ompi_rules_add(rs, oc->id, sizes_done, 0, 0));
            }
            for (int k = 0; k < cands[0]->n; k++) {
                deflt[k] = d;
                alias[k] = -1;
                for (int c = 0; c < m; c++) {
                    if (c != d && tune_ompi_is_default(oc->id, ranks, cands[0]->pt[k].bytes,
                                                       cands[c]->id)) {
                        alias[k] = c;
                    }
                }
            }
            int nseg = tune_choose(cands, m, deflt, alias, r->opts.min_gain, seg);
            DURE_CHECK(nseg > 0, DURE_ERR_INTERNAL, "ompi %s: series of different sizes",
                       oc->name);
            for (int i = 0; i < nseg; i++) {
                DURE_TRY(tune_ompi_rules_add(rs, oc->id, ranks, seg[i].from_bytes,
                                             cands[seg[i].cand]->id));
            }
            sizes_done = ranks + 1;   /* larger communicators: not measured, defaults */
        }
        if (rs->n > first) {
            DURE_TRY(tune_ompi_rules_add(rs, oc->id, sizes_done, 0, 0));
        }
    }
    for (int i = 0; i < rs->n; i++) {
        *changed += rs->r[i].alg != 0;
    }
    DURE_TRY(tune_ompi_rules_check(rs, "the chosen Open MPI rules"));
out:
    return st;
}

dure_status_t tune_choose_nccl_conf(const struct tune_result *r, struct tune_nccl_conf *c)
{
    dure_status_t st = DURE_OK;
    const struct tune_series *cands[CANDS_MAX];
    struct tune_segment seg[TUNE_SIZES_MAX];
    int deflt[TUNE_SIZES_MAX];

    c->n = 0;
    for (int ci = 0; ci <= COMM_BROADCAST; ci++) {
        for (int level = 0; level < TUNE_LEVEL_COUNT; level++) {
            int d = -1;
            int m = gather(r, TUNE_FAMILY_NCCL, (enum comm_coll)ci, (enum tune_level)level, -1,
                           cands, CANDS_MAX, &d);
            if (m == 0 || d < 0) {
                continue;
            }
            for (int k = 0; k < cands[0]->n; k++) {
                deflt[k] = d;
            }
            int nseg = tune_choose(cands, m, deflt, NULL, r->opts.min_gain, seg);
            DURE_CHECK(nseg > 0, DURE_ERR_INTERNAL, "nccl %s: series of different sizes",
                       tune_coll_name((enum comm_coll)ci));
            for (int i = 0; i < nseg; i++) {
                const struct tune_series *s = cands[seg[i].cand];
                if (s->id < 0) {
                    continue;
                }
                size_t to = i + 1 < nseg ? seg[i + 1].from_bytes - 1 : SIZE_MAX;
                DURE_TRY(tune_nccl_conf_add(c, tune_nccl_coll_of((enum comm_coll)ci),
                                            seg[i].from_bytes, to,
                                            (enum tune_nccl_algo)(s->id / TUNE_NCCL_PROTO_COUNT),
                                            (enum tune_nccl_proto)(s->id % TUNE_NCCL_PROTO_COUNT),
                                            s->nodes, s->ranks));
            }
        }
    }
out:
    return st;
}
