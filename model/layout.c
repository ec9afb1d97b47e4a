/* model/layout.c - tensor offsets in the flat vector and parameter init. */
#include "model/layout.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const layer_names[LT_COUNT] = {
    "ln1_w", "ln1_b", "qkv_w", "qkv_b", "proj_w", "proj_b",
    "ln2_w", "ln2_b", "fc_w", "fc_b", "fc_proj_w", "fc_proj_b",
};

/* Shape (rows, cols) of block tensor k for width D. */
static void layer_shape(enum model_layer_tensor k, uint64_t D, uint64_t s[2])
{
    static const int rows_x[LT_COUNT] = {1, 1, 3, 3, 1, 1, 1, 1, 4, 4, 1, 1};
    static const int cols_x[LT_COUNT] = {0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 0};
    s[0] = rows_x[k] * D;
    s[1] = cols_x[k] ? cols_x[k] * D : 1;
}

/* a * b and a + b with overflow detection; *ok becomes 0 on overflow. */
static uint64_t mul_ok(uint64_t a, uint64_t b, int *ok)
{
    uint64_t r;
    if (__builtin_mul_overflow(a, b, &r)) {
        *ok = 0;
    }
    return r;
}

static uint64_t add_ok(uint64_t a, uint64_t b, int *ok)
{
    uint64_t r;
    if (__builtin_add_overflow(a, b, &r)) {
        *ok = 0;
    }
    return r;
}

dure_status_t model_layout_compute(const struct model_config *cfg,
                                   struct model_layout *lay)
{
    dure_status_t st = DURE_OK;
    int ok = 1;
    uint64_t D = (uint64_t)cfg->d_model, L = (uint64_t)cfg->n_layers;
    uint64_t PC = mul_ok((uint64_t)cfg->patch_len, (uint64_t)cfg->channels, &ok);
    uint64_t PCI = add_ok(PC, cfg->masked ? (uint64_t)cfg->channels : 0, &ok);
    uint64_t N = (uint64_t)cfg->context_patches;
    uint64_t at = 0;

    memset(lay, 0, sizeof *lay);
    lay->embed_w = at;
    at = add_ok(at, mul_ok(D, PCI, &ok), &ok);
    lay->embed_b = at;
    at = add_ok(at, D, &ok);
    lay->pos = at;
    at = add_ok(at, mul_ok(N, D, &ok), &ok);
    lay->layer0 = at;
    uint64_t in = 0;
    for (int k = 0; k < LT_COUNT; k++) {
        uint64_t s[2];
        layer_shape((enum model_layer_tensor)k, D, s);
        lay->in_layer[k] = in;
        in = add_ok(in, mul_ok(s[0], s[1], &ok), &ok);
    }
    lay->layer_stride = in;
    at = add_ok(at, mul_ok(in, L, &ok), &ok);
    lay->lnf_w = at;
    at = add_ok(at, D, &ok);
    lay->lnf_b = at;
    at = add_ok(at, D, &ok);
    lay->head_w = at;
    at = add_ok(at, mul_ok(PC, D, &ok), &ok);
    lay->head_b = at;
    at = add_ok(at, PC, &ok);
    lay->total = at;
    lay->n_tensors = 3 + LT_COUNT * (size_t)L + 4;
    /* Bytes of the largest buffers must fit too: 16 bytes per parameter
     * (params, grads, two moments) is the most anyone multiplies by. */
    (void)mul_ok(at, 16, &ok);
    DURE_CHECK(ok, DURE_ERR_NOMEM,
               "model sizes overflow 64-bit byte counts: model.d_model = %d, "
               "model.n_layers = %d, model.patch_len = %d, model.channels = %d, "
               "model.context_patches = %d",
               cfg->d_model, cfg->n_layers, cfg->patch_len, cfg->channels,
               cfg->context_patches);
out:
    return st;
}

const enum model_layer_tensor model_tail_cut_tensors[MODEL_TAIL_CUTS] = {LT_QKV_W, LT_PROJ_W,
                                                                         LT_LN2_W};

uint64_t model_layout_at(const struct model_layout *lay, int l,
                         enum model_layer_tensor k)
{
    return lay->layer0 + (uint64_t)l * lay->layer_stride + lay->in_layer[k];
}

static void set_tensor(struct model_tensor *t, const char *name, uint64_t offset,
                       uint64_t rows, uint64_t cols, int ndim, int layer)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->offset = (size_t)offset;
    t->count = (size_t)(rows * cols);
    t->ndim = ndim;
    t->shape[0] = (int)rows;
    t->shape[1] = (int)cols;
    t->layer = layer;
    t->decay = ndim == 2;
}

void model_layout_tensors(const struct model_config *cfg,
                          const struct model_layout *lay,
                          struct model_tensor *tensors)
{
    uint64_t D = (uint64_t)cfg->d_model;
    uint64_t PC = (uint64_t)cfg->patch_len * (uint64_t)cfg->channels;
    int L = cfg->n_layers;
    struct model_tensor *t = tensors;

    set_tensor(t++, "embed_w", lay->embed_w, D, (uint64_t)model_token_inputs(cfg), 2, -1);
    set_tensor(t++, "embed_b", lay->embed_b, D, 1, 1, -1);
    set_tensor(t++, "pos", lay->pos, (uint64_t)cfg->context_patches, D, 2, -1);
    for (int l = 0; l < L; l++) {
        for (int k = 0; k < LT_COUNT; k++) {
            char name[32];
            uint64_t s[2];
            layer_shape((enum model_layer_tensor)k, D, s);
            snprintf(name, sizeof name, "layer%d.%s", l, layer_names[k]);
            set_tensor(t++, name, model_layout_at(lay, l, (enum model_layer_tensor)k),
                       s[0], s[1], s[1] > 1 ? 2 : 1, l);
        }
    }
    set_tensor(t++, "lnf_w", lay->lnf_w, D, 1, 1, L);
    set_tensor(t++, "lnf_b", lay->lnf_b, D, 1, 1, L);
    set_tensor(t++, "head_w", lay->head_w, PC, D, 2, L);
    set_tensor(t++, "head_b", lay->head_b, PC, 1, 1, L);
}

void model_layout_offsets(const struct model_layout *lay, const struct model_tensor *tensors,
                          size_t *offsets)
{
    for (size_t i = 0; i < lay->n_tensors; i++) {
        offsets[i] = tensors[i].offset;
    }
    offsets[lay->n_tensors] = (size_t)lay->total;
}

int model_layout_tail_cuts(const struct model_layout *lay, size_t cuts[MODEL_TAIL_CUTS])
{
    for (int i = 0; i < MODEL_TAIL_CUTS; i++) {
        cuts[i] = (size_t)model_layout_at(lay, 0, model_tail_cut_tensors[i]);
    }
    return MODEL_TAIL_CUTS;
}

/* splitmix64: a counter-based generator, so element i needs no state. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Standard normal for (seed, i) by Box-Muller on two 53-bit uniforms. */
static double normal_at(uint64_t seed, uint64_t i)
{
    uint64_t a = mix64(seed ^ mix64(2 * i));
    uint64_t b = mix64(seed ^ mix64(2 * i + 1));
    double u1 = ((double)(a >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
    double u2 = (double)(b >> 11) * 0x1.0p-53;         /* [0, 1) */
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Init kind of flat element i: 0 zero, 1 one, 2 normal(std), 3 normal(res std). */
static int init_kind(const struct model_layout *lay, uint64_t i)
{
    if (i < lay->embed_b) {
        return 2;
    }
    if (i < lay->pos) {
        return 0;
    }
    if (i < lay->layer0) {
        return 2;
    }
    if (i < lay->lnf_w) {
        uint64_t in = (i - lay->layer0) % lay->layer_stride;
        int k = LT_COUNT - 1;
        while (lay->in_layer[k] > in) {
            k--;
        }
        switch ((enum model_layer_tensor)k) {
        case LT_LN1_W: case LT_LN2_W:
            return 1;
        case LT_QKV_W: case LT_FC_W:
            return 2;
        case LT_PROJ_W: case LT_FCP_W:
            return 3;
        default:
            return 0;
        }
    }
    if (i < lay->lnf_b) {
        return 1;
    }
    if (i < lay->head_w) {
        return 0;
    }
    return i < lay->head_b ? 2 : 0;
}

void model_layout_init_range(const struct model_config *cfg,
                             const struct model_layout *lay,
                             uint64_t offset, uint64_t count, float *dst)
{
    double std = cfg->init_std;
    double res_std = std / sqrt(2.0 * cfg->n_layers);
    uint64_t seed = mix64(cfg->seed);
    #pragma omp parallel for schedule(static)
    for (uint64_t j = 0; j < count; j++) {
        uint64_t i = offset + j;
        switch (init_kind(lay, i)) {
        case 1:
            dst[j] = 1.0f;
            break;
        case 2:
            dst[j] = (float)(std * normal_at(seed, i));
            break;
        case 3:
            dst[j] = (float)(res_std * normal_at(seed, i));
            break;
        default:
            dst[j] = 0.0f;
            break;
        }
    }
}
