/* model/model.c - configuration checks, the buffers, and dispatch to the
 * compute backend the device names. */
#include "model/model.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/backend.h"
#include "model/flops.h"

void model_config_defaults(struct model_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->d_model = 128;
    cfg->n_layers = 4;
    cfg->n_heads = 4;
    cfg->patch_len = 16;
    cfg->context_patches = 16;
    cfg->channels = 0;
    cfg->loss = MODEL_LOSS_MSE;
    cfg->huber_delta = 1.0f;
    cfg->init_std = 0.02f;
    cfg->micro_batch = 8;
    cfg->deterministic = 0;
    cfg->masked = 0;
    cfg->seed = 1234;
}

int model_token_inputs(const struct model_config *cfg)
{
    return cfg->patch_len * cfg->channels + (cfg->masked ? cfg->channels : 0);
}

uint64_t model_loss_elems(const struct model_config *cfg, const float *mask)
{
    uint64_t per_channel = (uint64_t)cfg->context_patches * (uint64_t)cfg->patch_len;
    if (!mask) {
        return per_channel * (uint64_t)cfg->micro_batch * (uint64_t)cfg->channels;
    }
    uint64_t ones = 0;
    for (size_t i = 0; i < (size_t)cfg->micro_batch * (size_t)cfg->channels; i++) {
        ones += mask[i] != 0.0f;
    }
    return per_channel * ones;
}

/* Fail unless a * b fits the BLAS index type (int). */
static dure_status_t fits_int(long long a, long long b, const char *what)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(a * b <= INT_MAX, DURE_ERR_ARG,
               "%s = %lld exceeds %d, the largest BLAS/CUDA dimension dure supports",
               what, a * b, INT_MAX);
out:
    return st;
}

dure_status_t model_config_validate(const struct model_config *cfg)
{
    dure_status_t st = DURE_OK;
    struct model_layout lay;
    const struct {
        const char *key;
        int value;
    } positive[] = {
        {"model.d_model", cfg->d_model},
        {"model.n_layers", cfg->n_layers},
        {"model.n_heads", cfg->n_heads},
        {"model.patch_len", cfg->patch_len},
        {"model.context_patches", cfg->context_patches},
        {"model.channels", cfg->channels},
        {"optim.micro_batch", cfg->micro_batch},
    };
    for (size_t i = 0; i < sizeof positive / sizeof positive[0]; i++) {
        DURE_CHECK(positive[i].value > 0, DURE_ERR_ARG, "%s = %d must be positive%s",
                   positive[i].key, positive[i].value,
                   strcmp(positive[i].key, "model.channels") == 0
                       ? " (0 means: take it from the data; resolve it before model_create)"
                       : "");
    }
    DURE_CHECK(cfg->d_model % cfg->n_heads == 0, DURE_ERR_ARG,
               "model.d_model = %d is not divisible by model.n_heads = %d",
               cfg->d_model, cfg->n_heads);
    DURE_CHECK(cfg->masked == 0 || cfg->masked == 1, DURE_ERR_ARG,
               "model masked = %d is not 0 or 1", cfg->masked);
    DURE_CHECK(cfg->loss == MODEL_LOSS_MSE || cfg->loss == MODEL_LOSS_HUBER,
               DURE_ERR_ARG, "model.loss = %d is not mse or huber", (int)cfg->loss);
    DURE_CHECK(isfinite(cfg->huber_delta) && cfg->huber_delta > 0.0f, DURE_ERR_ARG,
               "model.huber_delta = %g must be a positive number",
               (double)cfg->huber_delta);
    DURE_CHECK(isfinite(cfg->init_std) && cfg->init_std > 0.0f, DURE_ERR_ARG,
               "model.init_std = %g must be a positive number", (double)cfg->init_std);
    DURE_TRY(fits_int(cfg->micro_batch, cfg->context_patches,
                      "optim.micro_batch * model.context_patches"));
    DURE_TRY(fits_int(4, cfg->d_model, "4 * model.d_model"));
    DURE_TRY(fits_int(cfg->patch_len, cfg->channels + (cfg->masked ? 1 : 0),
                      "model.patch_len * model.channels (+ model.channels with a mask)"));
    DURE_TRY(fits_int(cfg->context_patches, cfg->context_patches,
                      "model.context_patches^2"));
    DURE_TRY(fits_int((long long)cfg->micro_batch * cfg->n_heads,
                      (long long)cfg->context_patches,
                      "optim.micro_batch * model.n_heads * model.context_patches"));
    DURE_TRY(model_layout_compute(cfg, &lay));
out:
    return st;
}

/* The compute backends of this build: one per device kind of the
 * Makefile's DEVICES list (DURE_DEVICES, see device/registry.c), each
 * model/model_NAME.c's model_NAME_backend. */
#define DEVICE(name) extern const struct model_backend_i model_##name##_backend;
DURE_DEVICES
#undef DEVICE

static const struct model_backend_i *const backends[] = {
#define DEVICE(name) &model_##name##_backend,
    DURE_DEVICES
#undef DEVICE
};

dure_status_t model_backend_find(const char *compute, const struct model_backend_i **out)
{
    dure_status_t st = DURE_OK;
    *out = NULL;
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        if (strcmp(backends[i]->name, compute) == 0) {
            *out = backends[i];
            goto out;
        }
    }
    DURE_FAIL(DURE_ERR_UNSUPPORTED, "this dure has no model compute backend for '%s' devices",
              compute);
out:
    return st;
}

static void fmt_bytes(char *buf, size_t len, uint64_t bytes)
{
    snprintf(buf, len, "%.3g GiB", (double)bytes / (1024.0 * 1024.0 * 1024.0));
}

static dure_status_t state_alloc(model_t *m, float **p, uint64_t bytes, const char *what)
{
    dure_status_t st = DURE_OK;
    st = m->state.alloc(m->state.ctx, (size_t)bytes, (void **)p);
    if (st != DURE_OK) {
        *p = NULL;
        DURE_FAIL(st, "cannot allocate %llu bytes for the %s", (unsigned long long)bytes,
                  what);
    }
out:
    return st;
}

dure_status_t model_unit_bounds(const struct model_config *cfg, size_t *bounds)
{
    dure_status_t st = DURE_OK;
    struct model_layout lay;
    DURE_TRY(model_layout_compute(cfg, &lay));
    bounds[0] = 0;
    for (int l = 0; l <= cfg->n_layers; l++) {
        bounds[1 + l] = (size_t)(lay.layer0 + (uint64_t)l * lay.layer_stride);
    }
    bounds[cfg->n_layers + 2] = (size_t)lay.total;
out:
    return st;
}

dure_status_t model_param_init(const struct model_config *cfg, size_t offset, size_t count,
                               float *host)
{
    dure_status_t st = DURE_OK;
    struct model_layout lay;
    DURE_TRY(model_config_validate(cfg));
    DURE_TRY(model_layout_compute(cfg, &lay));
    DURE_CHECK(offset <= lay.total && count <= lay.total - offset, DURE_ERR_ARG,
               "initial parameters [%zu, %zu) lie outside the %llu-element vector", offset,
               offset + count, (unsigned long long)lay.total);
    model_layout_init_range(cfg, &lay, offset, count, host);
out:
    return st;
}

/* params (initialised) and grads (zero) unless lent, activations (zero);
 * then the backend. */
static dure_status_t alloc_buffers(model_t *m)
{
    dure_status_t st = DURE_OK;
    float *stage = NULL;
    uint64_t n = m->lay.total, pbytes = n * sizeof(float);
    /* Host staging for the initialisation, in floats. */
    const uint64_t chunk = n < MODEL_INIT_CHUNK ? n : MODEL_INIT_CHUNK;

    if (!m->src.params) {
        DURE_TRY(state_alloc(m, &m->params, pbytes, "parameters"));
    }
    if (!m->src.grads) {
        DURE_TRY(state_alloc(m, &m->grads, pbytes, "gradients"));
    }
    DURE_TRY(device_alloc(m->dev, (size_t)m->plan.total_bytes, "the activations", &m->act));
    DURE_TRY(device_zero(m->dev, m->act, (size_t)m->plan.total_bytes));
    if (m->grads) {
        DURE_TRY(device_zero(m->dev, m->grads, (size_t)pbytes));
    }
    if (!m->params) {
        goto out;
    }
    /* The init is a function of (seed, index): the same values on every
     * device, computed on the host in chunks. */
    stage = malloc((size_t)chunk * sizeof(float));
    DURE_ALLOC_TRY(stage, chunk * sizeof(float));
    for (uint64_t off = 0; off < n; off += chunk) {
        uint64_t cnt = n - off < chunk ? n - off : chunk;
        model_layout_init_range(&m->cfg, &m->lay, off, cnt, stage);
        DURE_TRY(device_copy_from_host(m->dev, m->params + off, stage,
                                       (size_t)cnt * sizeof(float)));
    }
out:
    free(stage);
    return st;
}

dure_status_t model_create(const struct model_config *cfg, device_t *dev,
                           const struct dure_allocator *state, model_t **out)
{
    return model_create_units(cfg, dev, state, NULL, out);
}

dure_status_t model_create_units(const struct model_config *cfg, device_t *dev,
                                 const struct dure_allocator *state,
                                 const struct model_unit_source *src, model_t **out)
{
    dure_status_t st = DURE_OK;
    model_t *m = NULL;
    struct model_memory mem;
    *out = NULL;

    DURE_TRY(model_config_validate(cfg));
    DURE_TRY(model_memory_estimate(cfg, device_compute(dev), &mem));
    m = calloc(1, sizeof *m);
    DURE_ALLOC_TRY(m, sizeof *m);
    m->cfg = *cfg;
    m->dev = dev;
    m->ready_unit = -1;
    m->state = state ? *state : device_allocator(dev);
    if (src) {
        m->src = *src;
        DURE_CHECK(src->params || src->grads, DURE_ERR_ARG,
                   "a unit source must lend parameters, gradients or both");
    }
    DURE_TRY(model_backend_find(device_compute(dev), &m->iface));
    DURE_TRY(model_layout_compute(cfg, &m->lay));
    m->n_units = cfg->n_layers + 2;
    m->units = calloc((size_t)m->n_units + 1, sizeof *m->units);
    DURE_ALLOC_TRY(m->units, ((size_t)m->n_units + 1) * sizeof *m->units);
    DURE_TRY(model_unit_bounds(cfg, m->units));
    DURE_TRY(model_act_plan_compute(cfg, m->iface->bf16, &m->plan));
    m->tensors = calloc(m->lay.n_tensors, sizeof *m->tensors);
    DURE_ALLOC_TRY(m->tensors, m->lay.n_tensors * sizeof *m->tensors);
    m->offsets = calloc(m->lay.n_tensors + 1, sizeof *m->offsets);
    DURE_ALLOC_TRY(m->offsets, (m->lay.n_tensors + 1) * sizeof *m->offsets);
    model_layout_tensors(cfg, &m->lay, m->tensors);
    model_layout_offsets(&m->lay, m->tensors, m->offsets);
    m->window_loss = calloc((size_t)cfg->micro_batch, sizeof *m->window_loss);
    DURE_ALLOC_TRY(m->window_loss, (size_t)cfg->micro_batch * sizeof *m->window_loss);

    st = alloc_buffers(m);
    if (st == DURE_OK) {
        st = m->iface->init(m);
    }
    if (st == DURE_ERR_NOMEM) {
        char p[32], g[32], c[32], a[32], t[32];
        fmt_bytes(p, sizeof p, mem.params);
        fmt_bytes(g, sizeof g, mem.grads);
        fmt_bytes(c, sizeof c, mem.compute_params);
        fmt_bytes(a, sizeof a, mem.activations + mem.workspace);
        fmt_bytes(t, sizeof t, mem.total - mem.optimizer);
        DURE_FAIL(DURE_ERR_NOMEM,
                  "cannot allocate the model on %s: it needs an estimated %s "
                  "(params %s, grads %s, compute copy %s, activations %s; %llu "
                  "parameters, model.d_model = %d, model.n_layers = %d, "
                  "optim.micro_batch = %d)",
                  device_kind(dev), t, p, g, c, a, (unsigned long long)m->lay.total,
                  cfg->d_model, cfg->n_layers, cfg->micro_batch);
    }
    DURE_TRY(st);
    *out = m;
    m = NULL;
out:
    model_destroy(m);
    return st;
}

void model_destroy(model_t *m)
{
    if (!m) {
        return;
    }
    if (m->ctx) {
        m->iface->fini(m);
    }
    if (m->dev) {
        /* Work queued on the buffers must end before they are freed. */
        (void)device_sync(m->dev);
        device_free(m->dev, m->act);
    }
    if (m->state.free) {
        m->state.free(m->state.ctx, m->grads);
        m->state.free(m->state.ctx, m->params);
    }
    free(m->window_loss);
    free(m->units);
    free(m->offsets);
    free(m->tensors);
    free(m);
}

const struct model_config *model_get_config(const model_t *m) { return &m->cfg; }

size_t model_param_count(const model_t *m) { return (size_t)m->lay.total; }

const struct model_tensor *model_tensors(const model_t *m, size_t *n_tensors)
{
    *n_tensors = m->lay.n_tensors;
    return m->tensors;
}

const size_t *model_tensor_offsets(const model_t *m, int *n_tensors)
{
    *n_tensors = (int)m->lay.n_tensors;
    return m->offsets;
}

device_t *model_device(const model_t *m) { return m->dev; }

float *model_params(model_t *m) { return m->params; }

float *model_grads(model_t *m) { return m->grads; }

dure_status_t model_params_changed(model_t *m)
{
    return m->params && m->iface->params_changed ? m->iface->params_changed(m) : DURE_OK;
}

dure_status_t model_zero_grad(model_t *m)
{
    return m->grads ? device_zero(m->dev, m->grads, (size_t)m->lay.total * sizeof(float))
                    : DURE_OK;
}

const size_t *model_units(const model_t *m, int *n_units)
{
    *n_units = m->n_units;
    return m->units;
}

size_t model_compute_bytes(const model_t *m) { return m->iface->bf16 ? 2 : sizeof(float); }

dure_status_t model_to_compute(model_t *m, void *dst, const float *src, size_t count)
{
    if (m->iface->to_compute) {
        return m->iface->to_compute(m, dst, src, count);
    }
    /* fp32 compute: a queued device copy (acc = g). */
    return dst == src ? DURE_OK : device_accumulate(m->dev, dst, src, count, 1);
}

dure_status_t model_units_begin(model_t *m, int backward)
{
    return m->src.begin ? m->src.begin(m->src.ctx, backward) : DURE_OK;
}

dure_status_t model_unit_params(model_t *m, int unit, enum model_pass pass, const void **p)
{
    if (m->src.params) {
        return m->src.params(m->src.ctx, unit, pass, p);
    }
    const void *base = m->iface->compute_params ? m->iface->compute_params(m) : m->params;
    *p = (const char *)base + m->units[unit] * model_compute_bytes(m);
    return DURE_OK;
}

dure_status_t model_unit_params_done(model_t *m, int unit, enum model_pass pass)
{
    return m->src.params && m->src.params_done ? m->src.params_done(m->src.ctx, unit, pass)
                                               : DURE_OK;
}

dure_status_t model_unit_grads(model_t *m, int unit, float **g)
{
    if (m->src.grads) {
        return m->src.grads(m->src.ctx, unit, g);
    }
    *g = m->grads + m->units[unit];
    return DURE_OK;
}

/* The hook gets unit's gradients from lo up to what it already has of the
 * unit (its end, at first); the unit's part from lo up is then reported. */
static dure_status_t report_from(model_t *m, int unit, size_t lo)
{
    const size_t end = m->ready_unit == unit ? m->ready_lo : m->units[unit + 1];
    m->ready_unit = unit;
    m->ready_lo = lo;
    return m->ready_fn && end > lo ? m->ready_fn(m->ready_ctx, lo, end - lo) : DURE_OK;
}

dure_status_t model_unit_grads_done(model_t *m, int unit)
{
    if (m->src.grads) {
        return m->src.grads_done ? m->src.grads_done(m->src.ctx, unit) : DURE_OK;
    }
    dure_status_t st = report_from(m, unit, m->units[unit]);
    m->ready_unit = -1;
    return st;
}

dure_status_t model_block_grads_done_from(model_t *m, int l, enum model_layer_tensor k)
{
    const int unit = 1 + l;
    return m->src.grads ? DURE_OK : report_from(m, unit, m->units[unit] + m->lay.in_layer[k]);
}

int model_grad_tail_cuts(const model_t *m, size_t cuts[MODEL_TAIL_CUTS])
{
    return model_layout_tail_cuts(&m->lay, cuts);
}

void model_set_grad_ready(model_t *m, model_grad_ready_fn fn, void *ctx)
{
    m->ready_fn = fn;
    m->ready_ctx = ctx;
    m->ready_unit = -1;
}

static dure_status_t step(model_t *m, const float *batch, const float *mask, int backward,
                          float *loss)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(!mask == !m->cfg.masked, DURE_ERR_ARG,
               "a %s model was given %s mask", m->cfg.masked ? "masked" : "unmasked",
               mask ? "a" : "no");
    DURE_TRY(m->iface->step(m, batch, mask, backward, loss));
out:
    return st;
}

dure_status_t model_forward_backward(model_t *m, const float *batch, const float *mask,
                                     float *loss)
{
    return step(m, batch, mask, 1, loss);
}

dure_status_t model_forward(model_t *m, const float *batch, const float *mask, float *loss)
{
    return step(m, batch, mask, 0, loss);
}

const float *model_window_losses(const model_t *m) { return m->window_loss; }

void model_window_losses_set(model_t *m, const float *row_loss, const float *mask)
{
    const struct model_config *cfg = &m->cfg;
    int N = cfg->context_patches, C = cfg->channels;
    for (int b = 0; b < cfg->micro_batch; b++) {
        double sum = 0.0;
        int ones = C;
        for (int n = 0; n < N; n++) {
            sum += row_loss[(size_t)b * N + n];
        }
        if (mask) {
            ones = 0;
            for (int c = 0; c < C; c++) {
                ones += mask[(size_t)b * C + c] != 0.0f;
            }
        }
        m->window_loss[b] =
            ones ? (float)(sum / ((double)N * cfg->patch_len * ones)) : 0.0f;
    }
}

dure_status_t model_baseline_loss(const struct model_config *cfg, const float *batch,
                                  const float *mask, double *loss)
{
    dure_status_t st = DURE_OK;
    DURE_TRY(model_config_validate(cfg));
    size_t P = (size_t)cfg->patch_len, C = (size_t)cfg->channels;
    size_t N = (size_t)cfg->context_patches, T = (N + 1) * P, PC = P * C;
    double sum = 0.0, delta = cfg->huber_delta;
    uint64_t elems = model_loss_elems(cfg, mask);
    /* The prediction for patch n + 1 is patch n; over a window those are
     * the values PC apart. */
    for (size_t b = 0; b < (size_t)cfg->micro_batch; b++) {
        const float *w = batch + b * T * C;
        for (size_t i = 0; i < N * PC; i++) {
            if (mask && mask[b * C + i % C] == 0.0f) {
                continue;
            }
            double d = (double)w[i] - (double)w[i + PC];
            if (cfg->loss == MODEL_LOSS_HUBER) {
                double ad = fabs(d);
                sum += ad <= delta ? 0.5 * d * d : delta * (ad - 0.5 * delta);
            } else {
                sum += d * d;
            }
        }
    }
    *loss = mask ? (elems ? sum / (double)elems : 0.0)
                 : sum / ((double)cfg->micro_batch * (double)(N * PC));
out:
    return st;
}

static dure_status_t copy_range(model_t *m, enum model_buffer which, size_t offset,
                                size_t count, float *host, const float *chost,
                                int to_host)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(which == MODEL_BUF_PARAMS || which == MODEL_BUF_GRADS, DURE_ERR_ARG,
               "model buffer %d is not params or grads", (int)which);
    DURE_CHECK(offset <= m->lay.total && count <= m->lay.total - offset, DURE_ERR_ARG,
               "copy of [%zu, %zu) is outside the %llu-element %s vector", offset,
               offset + count, (unsigned long long)m->lay.total,
               which == MODEL_BUF_PARAMS ? "parameter" : "gradient");
    float *base = which == MODEL_BUF_PARAMS ? m->params : m->grads;
    DURE_CHECK(base, DURE_ERR_ARG, "the model's %s are lent by a unit source: copy them "
               "from their owner", which == MODEL_BUF_PARAMS ? "parameters" : "gradients");
    float *dev = base + offset;
    size_t bytes = count * sizeof(float);
    if (to_host) {
        DURE_TRY(device_copy_to_host(m->dev, host, dev, bytes));
    } else {
        DURE_TRY(device_copy_from_host(m->dev, dev, chost, bytes));
    }
out:
    return st;
}

dure_status_t model_copy_to_host(model_t *m, enum model_buffer which,
                                 size_t offset, size_t count, float *host)
{
    return copy_range(m, which, offset, count, host, NULL, 1);
}

dure_status_t model_copy_from_host(model_t *m, enum model_buffer which,
                                   size_t offset, size_t count, const float *host)
{
    return copy_range(m, which, offset, count, NULL, host, 0);
}
