/*
 * model/model_cpu.c - the float32 CPU backend: one training step read top to
 * bottom, calling the kernels of kernels_cpu.c. It runs on devices whose
 * memory is host memory (device_compute "cpu").
 */
#include <stdlib.h>
#include <string.h>

#include "model/backend.h"
#include "model/kernels_cpu.h"

struct cpu_ctx {
    float *a[ACT_COUNT];    /* buffers carved from m->act (see acts.h) */
};

static void cpu_fini(model_t *m)
{
    free(m->ctx);
    m->ctx = NULL;
}

static dure_status_t cpu_init(model_t *m)
{
    dure_status_t st = DURE_OK;
    struct cpu_ctx *ctx = calloc(1, sizeof *ctx);
    DURE_ALLOC_TRY(ctx, sizeof *ctx);
    for (int i = 0; i < ACT_COUNT; i++) {
        ctx->a[i] = m->plan.count[i] ? (float *)((char *)m->act + m->plan.offset[i]) : NULL;
    }
    m->ctx = ctx;
out:
    return st;
}

static dure_status_t cpu_step(model_t *m, const float *batch, int backward, float *loss)
{
    dure_status_t st = DURE_OK;
    const struct model_config *cfg = &m->cfg;
    const struct model_layout *lay = &m->lay;
    struct cpu_ctx *ctx = m->ctx;
    float **a = ctx->a;
    float *p = m->params, *g = m->grads;
    int B = cfg->micro_batch, N = cfg->context_patches, D = cfg->d_model;
    int H = cfg->n_heads, L = cfg->n_layers;
    int PC = cfg->patch_len * cfg->channels, BN = B * N;
    size_t nD = (size_t)BN * D, n4D = 4 * nD, nAtt = (size_t)B * H * N * N;
    int det = cfg->deterministic, blas_threads = cpu_blas_enter();

    cpu_patches(a[ACT_INP], a[ACT_TGT], batch, B, N, cfg->patch_len, cfg->channels);
    cpu_embed_forward(det, a[ACT_ENC], a[ACT_INP], p + lay->embed_w, p + lay->embed_b,
                      p + lay->pos, B, N, PC, D);
    for (int l = 0; l < L; l++) {
#define W(k) (p + model_layout_at(lay, l, (k)))
        const float *x = l == 0 ? a[ACT_ENC] : a[ACT_RES3] + (l - 1) * nD;
        float *ln1 = a[ACT_LN1] + l * nD, *qkv = a[ACT_QKV] + 3 * l * nD;
        float *att = a[ACT_ATT] + l * nAtt, *atty = a[ACT_ATTY] + l * nD;
        float *res2 = a[ACT_RES2] + l * nD, *ln2 = a[ACT_LN2] + l * nD;
        float *fch = a[ACT_FCH] + l * n4D, *fchg = a[ACT_FCH_GELU] + l * n4D;
        float *res3 = a[ACT_RES3] + l * nD, *tmp = a[ACT_DSMALL];
        cpu_layernorm_forward(ln1, a[ACT_LN1_MEAN] + l * BN, a[ACT_LN1_RSTD] + l * BN,
                              x, W(LT_LN1_W), W(LT_LN1_B), BN, D);
        cpu_matmul_forward(det, qkv, ln1, W(LT_QKV_W), W(LT_QKV_B), BN, D, 3 * D);
        cpu_attention_forward(atty, att, qkv, B, N, D, H);
        cpu_matmul_forward(det, tmp, atty, W(LT_PROJ_W), W(LT_PROJ_B), BN, D, D);
        cpu_residual_forward(res2, x, tmp, nD);
        cpu_layernorm_forward(ln2, a[ACT_LN2_MEAN] + l * BN, a[ACT_LN2_RSTD] + l * BN,
                              res2, W(LT_LN2_W), W(LT_LN2_B), BN, D);
        cpu_matmul_forward(det, fch, ln2, W(LT_FC_W), W(LT_FC_B), BN, D, 4 * D);
        cpu_gelu_forward(fchg, fch, n4D);
        cpu_matmul_forward(det, tmp, fchg, W(LT_FCP_W), W(LT_FCP_B), BN, 4 * D, D);
        cpu_residual_forward(res3, res2, tmp, nD);
#undef W
    }
    const float *xL = a[ACT_RES3] + (L - 1) * nD;
    cpu_layernorm_forward(a[ACT_LNF], a[ACT_LNF_MEAN], a[ACT_LNF_RSTD], xL,
                          p + lay->lnf_w, p + lay->lnf_b, BN, D);
    cpu_matmul_forward(det, a[ACT_PRED], a[ACT_LNF], p + lay->head_w, p + lay->head_b,
                       BN, D, PC);
    *loss = (float)cpu_loss(backward ? a[ACT_DPRED] : NULL, a[ACT_PRED], a[ACT_TGT],
                            BN, PC, cfg->loss, cfg->huber_delta);
    if (!backward) {
        goto out;
    }

    float *dres = a[ACT_DRES], *dsmall = a[ACT_DSMALL], *dbig = a[ACT_DBIG];
    cpu_matmul_backward(det, dsmall, g + lay->head_w, g + lay->head_b, a[ACT_DPRED],
                        a[ACT_LNF], p + lay->head_w, BN, D, PC);
    memset(dres, 0, nD * sizeof(float));
    cpu_layernorm_backward(dres, g + lay->lnf_w, g + lay->lnf_b, dsmall, xL,
                           p + lay->lnf_w, a[ACT_LNF_MEAN], a[ACT_LNF_RSTD], BN, D);
    DURE_TRY(model_grad_ready(m, lay->lnf_w, lay->total - lay->lnf_w));
    for (int l = L - 1; l >= 0; l--) {
#define W(k) (p + model_layout_at(lay, l, (k)))
#define G(k) (g + model_layout_at(lay, l, (k)))
        const float *x = l == 0 ? a[ACT_ENC] : a[ACT_RES3] + (l - 1) * nD;
        const float *ln1 = a[ACT_LN1] + l * nD, *qkv = a[ACT_QKV] + 3 * l * nD;
        const float *att = a[ACT_ATT] + l * nAtt, *atty = a[ACT_ATTY] + l * nD;
        const float *res2 = a[ACT_RES2] + l * nD, *ln2 = a[ACT_LN2] + l * nD;
        const float *fch = a[ACT_FCH] + l * n4D, *fchg = a[ACT_FCH_GELU] + l * n4D;
        /* MLP branch: dres holds d(block output) = d(res3). */
        cpu_matmul_backward(det, dbig, G(LT_FCP_W), G(LT_FCP_B), dres, fchg, W(LT_FCP_W),
                            BN, 4 * D, D);
        cpu_gelu_backward(dbig, fch, dbig, n4D);
        cpu_matmul_backward(det, dsmall, G(LT_FC_W), G(LT_FC_B), dbig, ln2, W(LT_FC_W),
                            BN, D, 4 * D);
        cpu_layernorm_backward(dres, G(LT_LN2_W), G(LT_LN2_B), dsmall, res2, W(LT_LN2_W),
                               a[ACT_LN2_MEAN] + l * BN, a[ACT_LN2_RSTD] + l * BN, BN, D);
        /* Attention branch: dres now holds d(res2). */
        cpu_matmul_backward(det, dsmall, G(LT_PROJ_W), G(LT_PROJ_B), dres, atty, W(LT_PROJ_W),
                            BN, D, D);
        cpu_attention_backward(dbig, a[ACT_DATT], dsmall, qkv, att, B, N, D, H);
        cpu_matmul_backward(det, dsmall, G(LT_QKV_W), G(LT_QKV_B), dbig, ln1, W(LT_QKV_W),
                            BN, D, 3 * D);
        cpu_layernorm_backward(dres, G(LT_LN1_W), G(LT_LN1_B), dsmall, x, W(LT_LN1_W),
                               a[ACT_LN1_MEAN] + l * BN, a[ACT_LN1_RSTD] + l * BN, BN, D);
#undef W
#undef G
        DURE_TRY(model_grad_ready(m, model_layout_at(lay, l, LT_LN1_W), lay->layer_stride));
    }
    cpu_embed_backward(det, g + lay->embed_w, g + lay->embed_b, g + lay->pos, dres,
                       a[ACT_INP], B, N, PC, D);
    DURE_TRY(model_grad_ready(m, 0, lay->layer0));
out:
    cpu_blas_leave(blas_threads);
    return st;
}

const struct model_backend_i model_cpu_backend = {
    .name = "cpu",
    .bf16 = 0,
    .init = cpu_init,
    .fini = cpu_fini,
    .step = cpu_step,
};
