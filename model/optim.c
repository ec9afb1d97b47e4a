/* model/optim.c - AdamW on a slice, LR schedule, clipping (see optim.h). */
#include "model/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/sumtree.h"
#include "model/optim_dev.h"

/* Elements per partial sum of the squared norm: the reduction order depends
 * on this constant only, never on the thread count. */
#define SQ_CHUNK ((size_t)1 << 16)

/* A run of the slice where weight decay is uniformly on or off. */
struct optim_segment {
    size_t begin, end;    /* relative to the slice start */
    int decay;
};

struct optim {
    struct optim_config cfg;
    enum model_mem mem;
    size_t offset, len;
    struct optim_segment *seg;   /* (n_seg) */
    size_t n_seg;
    float *m, *v;                /* (len) each, one allocation, in mem */
    double *partials;            /* (n_partials) in mem */
    double *host_partials;       /* (n_partials) host */
    size_t n_partials;
    /* cuda, exact mode's norm: a tile's first element and length, its
     * value; room for the tiles of any range of at most len elements. */
    size_t max_tiles;
    uint64_t *tile_first;        /* (max_tiles) in mem */
    uint32_t *tile_len;          /* (max_tiles) in mem */
    double *tile_val;            /* (max_tiles) in mem */
};

float optim_lr_at(const struct optim_schedule *sched, int s)
{
    if (s < sched->warmup_steps) {
        return sched->lr * (float)(s + 1) / (float)sched->warmup_steps;
    }
    int span = sched->total_steps - sched->warmup_steps;
    double p = (double)(s - sched->warmup_steps) / (double)(span > 1 ? span : 1);
    p = p < 0.0 ? 0.0 : p > 1.0 ? 1.0 : p;
    double c = 0.5 * (1.0 + cos(M_PI * p));
    return (float)(sched->min_lr + (sched->lr - sched->min_lr) * c);
}

float optim_clip_scale(double norm, float max_norm)
{
    if (max_norm > 0.0f && norm > max_norm) {
        return (float)(max_norm / (norm + 1e-6));
    }
    return 1.0f;
}

static dure_status_t check_config(const struct optim_config *cfg)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f, DURE_ERR_ARG,
               "optim.beta1 = %g must be in [0, 1)", (double)cfg->beta1);
    DURE_CHECK(cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f, DURE_ERR_ARG,
               "optim.beta2 = %g must be in [0, 1)", (double)cfg->beta2);
    DURE_CHECK(cfg->eps > 0.0f && isfinite(cfg->eps), DURE_ERR_ARG,
               "optim.eps = %g must be a positive number", (double)cfg->eps);
    DURE_CHECK(cfg->weight_decay >= 0.0f && isfinite(cfg->weight_decay), DURE_ERR_ARG,
               "optim.weight_decay = %g must be >= 0", (double)cfg->weight_decay);
out:
    return st;
}

/* Intersect the tensors with [offset, offset + len) into decay segments,
 * merging neighbours with the same flag. */
static dure_status_t build_segments(optim_t *opt, const struct model_tensor *t,
                                    size_t n_tensors)
{
    dure_status_t st = DURE_OK;
    size_t lo = opt->offset, hi = opt->offset + opt->len, covered = lo;
    opt->seg = calloc(n_tensors ? n_tensors : 1, sizeof *opt->seg);
    DURE_ALLOC_TRY(opt->seg, n_tensors * sizeof *opt->seg);
    for (size_t i = 0; i < n_tensors; i++) {
        size_t b = t[i].offset, e = t[i].offset + t[i].count;
        DURE_CHECK(b == (i ? t[i - 1].offset + t[i - 1].count : 0), DURE_ERR_ARG,
                   "tensor '%s' at offset %zu does not follow the previous one",
                   t[i].name, b);
        b = b > lo ? b : lo;
        e = e < hi ? e : hi;
        if (b >= e) {
            continue;
        }
        struct optim_segment *last = opt->n_seg ? &opt->seg[opt->n_seg - 1] : NULL;
        if (last && last->decay == t[i].decay) {
            last->end = e - lo;
        } else {
            opt->seg[opt->n_seg++] = (struct optim_segment){b - lo, e - lo, t[i].decay};
        }
        covered = e;
    }
    DURE_CHECK(covered == hi, DURE_ERR_ARG,
               "optimizer slice [%zu, %zu) extends past the %zu-element parameter "
               "vector", lo, hi,
               n_tensors ? t[n_tensors - 1].offset + t[n_tensors - 1].count : 0);
out:
    return st;
}

dure_status_t optim_create(const struct optim_config *cfg,
                           const struct model_tensor *tensors, size_t n_tensors,
                           size_t offset, size_t len, enum model_mem mem,
                           optim_t **out)
{
    dure_status_t st = DURE_OK;
    optim_t *opt = NULL;
    *out = NULL;
    DURE_TRY(check_config(cfg));
    DURE_CHECK(len > 0, DURE_ERR_ARG, "optimizer slice at offset %zu is empty", offset);
    DURE_CHECK(mem == MODEL_MEM_HOST || mem == MODEL_MEM_CUDA, DURE_ERR_ARG,
               "optimizer memory kind %d is not host or cuda", (int)mem);
    opt = calloc(1, sizeof *opt);
    DURE_ALLOC_TRY(opt, sizeof *opt);
    opt->cfg = *cfg;
    opt->mem = mem;
    opt->offset = offset;
    opt->len = len;
    DURE_TRY(build_segments(opt, tensors, n_tensors));
    opt->n_partials = (len + SQ_CHUNK - 1) / SQ_CHUNK;
    size_t mbytes = 2 * len * sizeof(float), pbytes = opt->n_partials * sizeof(double);
    opt->host_partials = calloc(opt->n_partials, sizeof(double));
    DURE_ALLOC_TRY(opt->host_partials, pbytes);
    if (mem == MODEL_MEM_CUDA) {
        DURE_TRY(optim_dev_alloc((void **)&opt->m, mbytes));
        DURE_TRY(optim_dev_alloc((void **)&opt->partials, pbytes));
        /* A range's capped frontier: whole tiles plus up to one node per
         * level below the tile at each end. */
        opt->max_tiles = len / TREE_TILE + 2 * (TREE_TILE_LEVEL + 1);
        DURE_TRY(optim_dev_alloc((void **)&opt->tile_first, opt->max_tiles * sizeof(uint64_t)));
        DURE_TRY(optim_dev_alloc((void **)&opt->tile_len, opt->max_tiles * sizeof(uint32_t)));
        DURE_TRY(optim_dev_alloc((void **)&opt->tile_val, opt->max_tiles * sizeof(double)));
    } else {
        opt->m = calloc(2 * len, sizeof(float));
        DURE_ALLOC_TRY(opt->m, mbytes);
        opt->partials = opt->host_partials;
    }
    opt->v = opt->m + len;
    *out = opt;
    opt = NULL;
out:
    optim_destroy(opt);
    return st;
}

void optim_destroy(optim_t *opt)
{
    if (!opt) {
        return;
    }
    if (opt->mem == MODEL_MEM_CUDA) {
        optim_dev_free(opt->m);
        optim_dev_free(opt->partials);
        optim_dev_free(opt->tile_first);
        optim_dev_free(opt->tile_len);
        optim_dev_free(opt->tile_val);
    } else {
        free(opt->m);
    }
    free(opt->host_partials);
    free(opt->seg);
    free(opt);
}

size_t optim_offset(const optim_t *opt) { return opt->offset; }

size_t optim_len(const optim_t *opt) { return opt->len; }

dure_status_t optim_grad_sq_norm(optim_t *opt, const float *grads, double *sq)
{
    dure_status_t st = DURE_OK;
    if (opt->mem == MODEL_MEM_CUDA) {
        DURE_TRY(optim_dev_sq_norm(grads, opt->len, SQ_CHUNK, opt->partials,
                                   opt->host_partials, sq));
        goto out;
    }
    #pragma omp parallel for schedule(static)
    for (size_t c = 0; c < opt->n_partials; c++) {
        size_t b = c * SQ_CHUNK, e = b + SQ_CHUNK < opt->len ? b + SQ_CHUNK : opt->len;
        double s = 0.0;
        for (size_t i = b; i < e; i++) {
            s += (double)grads[i] * grads[i];
        }
        opt->partials[c] = s;
    }
    double total = 0.0;
    for (size_t c = 0; c < opt->n_partials; c++) {
        total += opt->partials[c];
    }
    *sq = total;
out:
    return st;
}

dure_status_t optim_tree_tiles(optim_t *opt, struct tree_norm *t, const float *g)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(t->hi - t->lo <= opt->len, DURE_ERR_ARG,
               "norm range of %llu elements is longer than the optimizer's slice (%zu)",
               (unsigned long long)(t->hi - t->lo), opt->len);
    if (opt->mem != MODEL_MEM_CUDA) {
        tree_norm_tiles_host(t, g);
        goto out;
    }
    DURE_CHECK(t->ntiles <= opt->max_tiles, DURE_ERR_INTERNAL, "%zu norm tiles, room for %zu",
               t->ntiles, opt->max_tiles);
    DURE_TRY(optim_dev_copy(opt->tile_first, t->tile_first, t->ntiles * sizeof(uint64_t), 0));
    DURE_TRY(optim_dev_copy(opt->tile_len, t->tile_len, t->ntiles * sizeof(uint32_t), 0));
    DURE_TRY(optim_dev_tree_tiles(g, t->lo, opt->tile_first, opt->tile_len, t->ntiles,
                                  opt->tile_val, t->val));
out:
    return st;
}

static void adamw_host(const struct optim_dev_step *s, float wd, float *p,
                       const float *g, float *m, float *v, size_t n)
{
    #pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * s->grad_scale;
        float mi = s->beta1 * m[i] + (1.0f - s->beta1) * gi;
        float vi = s->beta2 * v[i] + (1.0f - s->beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float mh = mi / s->bc1, vh = vi / s->bc2;
        p[i] -= s->lr * (mh / (sqrtf(vh) + s->eps) + wd * p[i]);
    }
}

dure_status_t optim_adamw_update(optim_t *opt, int t, float lr, float grad_scale,
                                 float *params, const float *grads)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(t >= 1, DURE_ERR_ARG, "AdamW step %d must be >= 1", t);
    struct optim_dev_step s = {
        .lr = lr,
        .beta1 = opt->cfg.beta1,
        .beta2 = opt->cfg.beta2,
        .eps = opt->cfg.eps,
        .bc1 = (float)(1.0 - pow(opt->cfg.beta1, t)),
        .bc2 = (float)(1.0 - pow(opt->cfg.beta2, t)),
        .grad_scale = grad_scale,
    };
    for (size_t i = 0; i < opt->n_seg; i++) {
        const struct optim_segment *sg = &opt->seg[i];
        float wd = sg->decay ? opt->cfg.weight_decay : 0.0f;
        size_t b = sg->begin, n = sg->end - sg->begin;
        if (opt->mem == MODEL_MEM_CUDA) {
            DURE_TRY(optim_dev_adamw(&s, wd, params + b, grads + b, opt->m + b,
                                     opt->v + b, n));
        } else {
            adamw_host(&s, wd, params + b, grads + b, opt->m + b, opt->v + b, n);
        }
    }
out:
    return st;
}

static dure_status_t moment_copy(optim_t *opt, enum optim_moment which, void *dst,
                                 const void *src, int to_host)
{
    dure_status_t st = DURE_OK;
    size_t bytes = opt->len * sizeof(float);
    DURE_CHECK(which == OPTIM_M || which == OPTIM_V, DURE_ERR_ARG,
               "optimizer moment %d is not m or v", (int)which);
    if (opt->mem == MODEL_MEM_CUDA) {
        DURE_TRY(optim_dev_copy(dst, src, bytes, to_host));
    } else {
        memcpy(dst, src, bytes);
    }
out:
    return st;
}

dure_status_t optim_moment_to_host(optim_t *opt, enum optim_moment which, float *host)
{
    return moment_copy(opt, which, host, which == OPTIM_V ? opt->v : opt->m, 1);
}

dure_status_t optim_moment_from_host(optim_t *opt, enum optim_moment which,
                                     const float *host)
{
    return moment_copy(opt, which, which == OPTIM_V ? opt->v : opt->m, host, 0);
}
