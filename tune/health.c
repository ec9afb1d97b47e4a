/* tune/health.c - see health.h. */
#include "tune/health.h"

#include <stdlib.h>
#include <string.h>

int tune_link_outliers(const struct tune_link *links, int n, double threshold, int *slow)
{
    int marked = 0;
    double fastest = 0;
    for (int i = 0; i < n; i++) {
        slow[i] = 0;
        fastest = links[i].gbs > fastest ? links[i].gbs : fastest;
    }
    if (n < 2) {
        return 0;
    }
    for (int i = 0; i < n; i++) {
        if (links[i].gbs < (1.0 - threshold) * fastest) {
            slow[i] = 1;
            marked++;
        }
    }
    return marked;
}

static const struct tune_link *find_link(const struct tune_result *r, const char *a,
                                         const char *b)
{
    for (int i = 0; i < r->nlinks; i++) {
        const struct tune_link *l = &r->links[i];
        if ((strcmp(l->a, a) == 0 && strcmp(l->b, b) == 0) ||
            (strcmp(l->a, b) == 0 && strcmp(l->b, a) == 0)) {
            return l;
        }
    }
    return NULL;
}

/* A host in every one of the (at least two) slow links: the likely culprit. */
static const char *common_host(const struct tune_result *r, const int *slow, int nslow)
{
    if (nslow < 2) {
        return NULL;
    }
    for (int i = 0; i < r->nlinks; i++) {
        if (!slow[i]) {
            continue;
        }
        const char *cand[2] = {r->links[i].a, r->links[i].b};
        for (int c = 0; c < 2; c++) {
            int in_all = 1;
            for (int j = 0; j < r->nlinks && in_all; j++) {
                in_all = !slow[j] || strcmp(r->links[j].a, cand[c]) == 0 ||
                         strcmp(r->links[j].b, cand[c]) == 0;
            }
            if (in_all) {
                return cand[c];
            }
        }
        break;
    }
    return NULL;
}

dure_status_t tune_health(const struct tune_result *r, const struct tune_result *baseline,
                          const char *baseline_path, double threshold, FILE *out,
                          int *findings)
{
    dure_status_t st = DURE_OK;
    int *slow = NULL, compared = 0;
    *findings = 0;

    if (baseline) {
        DURE_CHECK(baseline->ranks == r->ranks && baseline->nodes == r->nodes, DURE_ERR_ARG,
                   "baseline %s was measured on %d rank(s) on %d node(s); this run has %d on "
                   "%d: run dure tune with the baseline's shape", baseline_path,
                   baseline->ranks, baseline->nodes, r->ranks, r->nodes);
        for (int i = 0; i < r->nseries; i++) {
            const struct tune_series *s = &r->s[i];
            const struct tune_series *b =
                tune_result_find(baseline, s->coll, s->level, s->family, s->id);
            for (int k = 0; b && k < s->n; k++) {
                for (int j = 0; j < b->n; j++) {
                    if (b->pt[j].bytes != s->pt[k].bytes || !(b->pt[j].busbw > 0)) {
                        continue;
                    }
                    compared++;
                    double ratio = s->pt[k].busbw / b->pt[j].busbw;
                    if (ratio < 1.0 - threshold) {
                        char sz[32];
                        comm_format_bytes(s->pt[k].bytes, sz, sizeof sz);
                        fprintf(out, "health: %s %s level, %s %s, %s: busbw %.3g GB/s, baseline "
                                     "%.3g GB/s (%.0f%% lower)\n", tune_coll_name(s->coll),
                                tune_level_name(s->level), tune_family_name(s->family), s->name,
                                sz, s->pt[k].busbw, b->pt[j].busbw, 100 * (1 - ratio));
                        (*findings)++;
                    }
                }
            }
        }
        for (int i = 0; i < r->nlinks; i++) {
            const struct tune_link *l = &r->links[i];
            const struct tune_link *bl = find_link(baseline, l->a, l->b);
            if (bl && bl->gbs > 0) {
                compared++;
                if (l->gbs < (1.0 - threshold) * bl->gbs) {
                    fprintf(out, "health: link %s <-> %s: %.3g GB/s, baseline %.3g GB/s "
                                 "(%.0f%% lower)\n", l->a, l->b, l->gbs, bl->gbs,
                            100 * (1 - l->gbs / bl->gbs));
                    (*findings)++;
                }
            }
        }
        DURE_CHECK(compared > 0, DURE_ERR_ARG,
                   "baseline %s shares no measured collective, size or link with this run: "
                   "nothing to compare", baseline_path);
    }
    if (r->nlinks > 0) {
        slow = calloc((size_t)r->nlinks, sizeof *slow);
        DURE_ALLOC_TRY(slow, (size_t)r->nlinks * sizeof *slow);
        int nslow = tune_link_outliers(r->links, r->nlinks, threshold, slow);
        double fastest = 0;
        for (int i = 0; i < r->nlinks; i++) {
            fastest = r->links[i].gbs > fastest ? r->links[i].gbs : fastest;
        }
        for (int i = 0; i < r->nlinks; i++) {
            if (slow[i]) {
                fprintf(out, "health: slow link %s <-> %s: %.3g GB/s, the fastest of %d links "
                             "%.3g GB/s\n", r->links[i].a, r->links[i].b, r->links[i].gbs,
                        r->nlinks, fastest);
            }
        }
        const char *host = common_host(r, slow, nslow);
        if (host) {
            fprintf(out, "health: node %s is in every slow link\n", host);
        }
        *findings += nslow;
    }
    if (*findings) {
        fprintf(out, "health: UNHEALTHY: %d finding(s) at a threshold of %.0f%%\n", *findings,
                100 * threshold);
    } else {
        fprintf(out, "health: OK (%d point(s) against the baseline, %d link(s); threshold "
                     "%.0f%%)\n", compared, r->nlinks, 100 * threshold);
    }
out:
    free(slow);
    return st;
}
