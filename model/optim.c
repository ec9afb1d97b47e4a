/* model/optim.c - AdamW on a slice, LR schedule, clipping (see optim.h). */
#include "model/optim.h"

#include <math.h>
#include <stdlib.h>

/*
 * State on the device, one allocation (the optimizer's lifetime class):
 *   m, v       (len) floats each
 *   partials   (n_partials) doubles: device_sq_norm's chunk sums
 *   seg        (n_seg) struct device_segment, uploaded once
 */
struct optim {
    struct optim_config cfg;
    device_t *dev;                /* borrowed */
    size_t offset, len;
    struct device_segment *host_seg; /* (n_seg) host copy, built at create */
    size_t n_seg;
    void *state;                  /* the device allocation */
    float *m, *v;                 /* carved from state */
    double *partials;
    struct device_segment *seg;
    double *host_partials;        /* (n_partials) host */
    size_t n_partials;
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
    opt->host_seg = calloc(n_tensors ? n_tensors : 1, sizeof *opt->host_seg);
    DURE_ALLOC_TRY(opt->host_seg, n_tensors * sizeof *opt->host_seg);
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
        struct device_segment *last = opt->n_seg ? &opt->host_seg[opt->n_seg - 1] : NULL;
        if (last && last->decay == t[i].decay) {
            last->end = e - lo;
        } else {
            opt->host_seg[opt->n_seg++] = (struct device_segment){b - lo, e - lo, t[i].decay};
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

dure_status_t optim_create(const struct optim_config *cfg, device_t *dev,
                           const struct model_tensor *tensors, size_t n_tensors,
                           size_t offset, size_t len, optim_t **out)
{
    dure_status_t st = DURE_OK;
    optim_t *opt = NULL;
    *out = NULL;
    DURE_TRY(check_config(cfg));
    DURE_CHECK(len > 0, DURE_ERR_ARG, "optimizer slice at offset %zu is empty", offset);
    opt = calloc(1, sizeof *opt);
    DURE_ALLOC_TRY(opt, sizeof *opt);
    opt->cfg = *cfg;
    opt->dev = dev;
    opt->offset = offset;
    opt->len = len;
    DURE_TRY(build_segments(opt, tensors, n_tensors));
    opt->n_partials = device_sq_norm_chunks(len);
    size_t mbytes = 2 * len * sizeof(float), pbytes = opt->n_partials * sizeof(double);
    size_t sbytes = opt->n_seg * sizeof(struct device_segment);
    /* 2 * len floats keep the doubles and the segments 8-byte aligned. */
    DURE_TRY(device_alloc(dev, mbytes + pbytes + sbytes, "the optimizer state", &opt->state));
    opt->m = opt->state;
    opt->v = opt->m + len;
    opt->partials = (double *)((char *)opt->state + mbytes);
    opt->seg = (struct device_segment *)((char *)opt->state + mbytes + pbytes);
    DURE_TRY(device_zero(dev, opt->m, mbytes));
    DURE_TRY(device_copy_from_host(dev, opt->seg, opt->host_seg, sbytes));
    opt->host_partials = calloc(opt->n_partials, sizeof(double));
    DURE_ALLOC_TRY(opt->host_partials, pbytes);
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
    if (opt->state) {
        (void)device_sync(opt->dev);
        device_free(opt->dev, opt->state);
    }
    free(opt->host_partials);
    free(opt->host_seg);
    free(opt);
}

size_t optim_offset(const optim_t *opt) { return opt->offset; }

size_t optim_len(const optim_t *opt) { return opt->len; }

dure_status_t optim_grad_sq_norm(optim_t *opt, const float *grads, double *sq)
{
    return device_sq_norm(opt->dev, grads, opt->len, opt->partials, opt->host_partials, sq);
}

dure_status_t optim_adamw_update(optim_t *opt, int t, float lr, float grad_scale,
                                 float *params, const float *grads)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(t >= 1, DURE_ERR_ARG, "AdamW step %d must be >= 1", t);
    struct device_adamw h = {
        .lr = lr,
        .beta1 = opt->cfg.beta1,
        .beta2 = opt->cfg.beta2,
        .eps = opt->cfg.eps,
        .bc1 = (float)(1.0 - pow(opt->cfg.beta1, t)),
        .bc2 = (float)(1.0 - pow(opt->cfg.beta2, t)),
        .grad_scale = grad_scale,
        .weight_decay = opt->cfg.weight_decay,
    };
    DURE_TRY(device_adamw(opt->dev, &h, opt->seg, opt->n_seg, params, grads, opt->m, opt->v,
                          opt->len));
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
    if (to_host) {
        DURE_TRY(device_copy_to_host(opt->dev, dst, src, bytes));
    } else {
        DURE_TRY(device_copy_from_host(opt->dev, dst, src, bytes));
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
