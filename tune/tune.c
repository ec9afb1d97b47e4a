/* tune/tune.c - see tune.h. */
#include "tune/tune.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tune/nccl_conf.h"

void tune_result_init(struct tune_result *r)
{
    memset(r, 0, sizeof *r);
}

void tune_result_free(struct tune_result *r)
{
    free(r->s);
    free(r->links);
    tune_result_init(r);
}

dure_status_t tune_result_add_series(struct tune_result *r, enum comm_coll coll,
                                     enum tune_level level, int ranks, int nodes,
                                     enum tune_family family, int id, const char *name, int hops,
                                     struct tune_series **out)
{
    dure_status_t st = DURE_OK;
    if (r->nseries == r->cap) {
        int cap = r->cap ? 2 * r->cap : 32;
        struct tune_series *s = realloc(r->s, (size_t)cap * sizeof *s);
        DURE_ALLOC_TRY(s, (size_t)cap * sizeof *s);
        r->s = s;
        r->cap = cap;
    }
    struct tune_series *s = &r->s[r->nseries++];
    memset(s, 0, sizeof *s);
    s->coll = coll;
    s->level = level;
    s->ranks = ranks;
    s->nodes = nodes;
    s->family = family;
    s->id = id;
    snprintf(s->name, sizeof s->name, "%s", name);
    s->hops = hops;
    *out = s;
out:
    return st;
}

dure_status_t tune_result_add_link(struct tune_result *r, const char *a, const char *b,
                                   double gbs)
{
    dure_status_t st = DURE_OK;
    if (r->nlinks == r->link_cap) {
        int cap = r->link_cap ? 2 * r->link_cap : 16;
        struct tune_link *l = realloc(r->links, (size_t)cap * sizeof *l);
        DURE_ALLOC_TRY(l, (size_t)cap * sizeof *l);
        r->links = l;
        r->link_cap = cap;
    }
    struct tune_link *l = &r->links[r->nlinks++];
    snprintf(l->a, sizeof l->a, "%s", a);
    snprintf(l->b, sizeof l->b, "%s", b);
    l->gbs = gbs;
out:
    return st;
}

const struct tune_series *tune_result_find(const struct tune_result *r, enum comm_coll coll,
                                           enum tune_level level, enum tune_family family,
                                           int id)
{
    for (int i = 0; i < r->nseries; i++) {
        const struct tune_series *s = &r->s[i];
        if (s->coll == coll && s->level == level && s->family == family && s->id == id) {
            return s;
        }
    }
    return NULL;
}

struct tune_series *tune_result_series(struct tune_result *r, enum comm_coll coll,
                                       enum tune_level level, enum tune_family family, int id)
{
    const struct tune_series *s = tune_result_find(r, coll, level, family, id);
    return s ? &r->s[s - r->s] : NULL;
}

dure_status_t tune_result_fit(struct tune_result *r)
{
    dure_status_t st = DURE_OK;
    struct tune_point p[TUNE_SIZES_MAX];
    for (int i = 0; i < r->nseries; i++) {
        struct tune_series *s = &r->s[i];
        for (int k = 0; k < s->n; k++) {
            p[k] = (struct tune_point){(double)s->pt[k].bytes, s->pt[k].sec};
        }
        DURE_TRY(tune_fit_points(p, s->n, r->opts.tolerance, &s->fit));
    }
out:
    return st;
}

const struct tune_series *tune_result_first_wrong(const struct tune_result *r, int *at)
{
    for (int i = 0; i < r->nseries; i++) {
        for (int k = 0; k < r->s[i].n; k++) {
            if (r->s[i].pt[k].wrong) {
                *at = k;
                return &r->s[i];
            }
        }
    }
    return NULL;
}

static const char *const family_names[TUNE_FAMILY_COUNT] = {"dure", "ompi", "nccl"};
static const char *const level_names[TUNE_LEVEL_COUNT] = {"node", "world"};
static const char *const coll_names[] = {
    [COMM_ALLREDUCE] = "allreduce",
    [COMM_REDUCE_SCATTER] = "reducescatter",
    [COMM_ALLGATHER] = "allgather",
    [COMM_BROADCAST] = "broadcast",
};

const char *tune_family_name(enum tune_family f)
{
    return (unsigned)f < TUNE_FAMILY_COUNT ? family_names[f] : "?";
}

const char *tune_level_name(enum tune_level l)
{
    return (unsigned)l < TUNE_LEVEL_COUNT ? level_names[l] : "?";
}

const enum comm_coll tune_exchange[TUNE_EXCHANGE_N] = {COMM_ALLREDUCE, COMM_REDUCE_SCATTER,
                                                       COMM_ALLGATHER};

const char *tune_coll_name(enum comm_coll c)
{
    return (unsigned)c <= COMM_BROADCAST ? coll_names[c] : "?";
}

static int find_name(const char *s, const char *const *names, int n)
{
    for (int i = 0; s && i < n; i++) {
        if (names[i] && strcmp(s, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

int tune_family_parse(const char *s)
{
    return find_name(s, family_names, TUNE_FAMILY_COUNT);
}

int tune_level_parse(const char *s)
{
    return find_name(s, level_names, TUNE_LEVEL_COUNT);
}

int tune_coll_parse(const char *s)
{
    return find_name(s, coll_names, COMM_BROADCAST + 1);
}

static int ceil_log2(int p)
{
    int k = 0;
    while ((1 << k) < p) {
        k++;
    }
    return k;
}

int tune_hops(enum comm_coll coll, enum tune_family family, int id, int ranks)
{
    const int ring = coll == COMM_ALLREDUCE ? 2 * (ranks - 1) : ranks - 1;
    const int lg = ceil_log2(ranks);
    switch (family) {
    case TUNE_FAMILY_DURE:
        return id == COMM_ALGO_RING ? ring : 0;
    case TUNE_FAMILY_OMPI:
        /* algorithm numbers of Open MPI 4.1 (tune/ompi_rules.c) */
        switch (coll) {
        case COMM_ALLREDUCE:
            return id == 3 ? lg : id == 4 || id == 5 ? ring : id == 6 ? 2 * lg : 0;
        case COMM_REDUCE_SCATTER:
            return id == 2 || id == 4 ? lg : id == 3 ? ring : 0;
        case COMM_ALLGATHER:
            return id == 2 || id == 3 ? lg : id == 4 ? ring : id == 5 ? ranks / 2 : id == 6;
        case COMM_BROADCAST:
            return id == 6 ? lg : 0;
        default:
            return 0;
        }
    case TUNE_FAMILY_NCCL:
        if (id < 0) {
            return 0;
        }
        return id / TUNE_NCCL_PROTO_COUNT == TUNE_NCCL_RING   ? ring
               : id / TUNE_NCCL_PROTO_COUNT == TUNE_NCCL_TREE ? 2 * lg
                                                              : 0;
    default:
        return 0;
    }
}
