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

/*
 * One forward (and backward) unit by unit: each unit's parameters and
 * gradient buffer come from model_unit_params / model_unit_grads, addressed
 * relative to the unit's first element (model.h: units). Within a block,
 * tensor k sits at lay->in_layer[k]; the head's tensors at their offset
 * less lnf_w, where the last unit starts.
 */
static dure_status_t cpu_step(model_t *m, const float *batch, const float *mask, int backward,
                              float *loss)
{
    dure_status_t st = DURE_OK;
    const struct model_config *cfg = &m->cfg;
    const struct model_layout *lay = &m->lay;
    struct cpu_ctx *ctx = m->ctx;
    float **a = ctx->a;
    const void *pv = NULL;
    const float *p = NULL;
    float *g = NULL;
    int B = cfg->micro_batch, N = cfg->context_patches, D = cfg->d_model;
    int H = cfg->n_heads, L = cfg->n_layers, U = L + 2;
    int PC = cfg->patch_len * cfg->channels, PCI = model_token_inputs(cfg), BN = B * N;
    size_t nD = (size_t)BN * D, n4D = 4 * nD, nAtt = (size_t)B * H * N * N;
    int det = cfg->deterministic, blas_threads = cpu_blas_enter();
#define W(k) (p + lay->in_layer[(k)])
#define G(k) (g + lay->in_layer[(k)])
#define HEAD(x) (lay->x - lay->lnf_w)

    DURE_TRY(model_units_begin(m, backward));
    cpu_patches(a[ACT_INP], a[ACT_TGT], batch, mask, B, N, cfg->patch_len, cfg->channels);
    DURE_TRY(model_unit_params(m, 0, MODEL_PASS_FORWARD, &pv));
    p = pv;
    cpu_embed_forward(det, a[ACT_ENC], a[ACT_INP], p + lay->embed_w, p + lay->embed_b,
                      p + lay->pos, B, N, PCI, D);
    DURE_TRY(model_unit_params_done(m, 0, MODEL_PASS_FORWARD));
    for (int l = 0; l < L; l++) {
        const float *x = l == 0 ? a[ACT_ENC] : a[ACT_RES3] + (l - 1) * nD;
        float *ln1 = a[ACT_LN1] + l * nD, *qkv = a[ACT_QKV] + 3 * l * nD;
        float *att = a[ACT_ATT] + l * nAtt, *atty = a[ACT_ATTY] + l * nD;
        float *res2 = a[ACT_RES2] + l * nD, *ln2 = a[ACT_LN2] + l * nD;
        float *fch = a[ACT_FCH] + l * n4D, *fchg = a[ACT_FCH_GELU] + l * n4D;
        float *res3 = a[ACT_RES3] + l * nD, *tmp = a[ACT_DSMALL];
        DURE_TRY(model_unit_params(m, 1 + l, MODEL_PASS_FORWARD, &pv));
        p = pv;
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
        DURE_TRY(model_unit_params_done(m, 1 + l, MODEL_PASS_FORWARD));
    }
    const float *xL = a[ACT_RES3] + (L - 1) * nD;
    DURE_TRY(model_unit_params(m, U - 1, MODEL_PASS_FORWARD, &pv));
    p = pv;
    cpu_layernorm_forward(a[ACT_LNF], a[ACT_LNF_MEAN], a[ACT_LNF_RSTD], xL,
                          p + HEAD(lnf_w), p + HEAD(lnf_b), BN, D);
    cpu_matmul_forward(det, a[ACT_PRED], a[ACT_LNF], p + HEAD(head_w), p + HEAD(head_b),
                       BN, D, PC);
    DURE_TRY(model_unit_params_done(m, U - 1, MODEL_PASS_FORWARD));
    *loss = (float)cpu_loss(backward ? a[ACT_DPRED] : NULL, a[ACT_LOSS], a[ACT_PRED],
                            a[ACT_TGT], mask, BN, PC, N, cfg->channels, cfg->loss,
                            cfg->huber_delta);
    model_window_losses_set(m, a[ACT_LOSS], mask);
    if (!backward) {
        goto out;
    }

    float *dres = a[ACT_DRES], *dsmall = a[ACT_DSMALL], *dbig = a[ACT_DBIG];
    DURE_TRY(model_unit_params(m, U - 1, MODEL_PASS_BACKWARD, &pv));
    p = pv;
    DURE_TRY(model_unit_grads(m, U - 1, &g));
    cpu_matmul_backward(det, dsmall, g + HEAD(head_w), g + HEAD(head_b), a[ACT_DPRED],
                        a[ACT_LNF], p + HEAD(head_w), BN, D, PC);
    memset(dres, 0, nD * sizeof(float));
    cpu_layernorm_backward(dres, g + HEAD(lnf_w), g + HEAD(lnf_b), dsmall, xL,
                           p + HEAD(lnf_w), a[ACT_LNF_MEAN], a[ACT_LNF_RSTD], BN, D);
    DURE_TRY(model_unit_params_done(m, U - 1, MODEL_PASS_BACKWARD));
    DURE_TRY(model_unit_grads_done(m, U - 1));
    for (int l = L - 1; l >= 0; l--) {
        const float *x = l == 0 ? a[ACT_ENC] : a[ACT_RES3] + (l - 1) * nD;
        const float *ln1 = a[ACT_LN1] + l * nD, *qkv = a[ACT_QKV] + 3 * l * nD;
        const float *att = a[ACT_ATT] + l * nAtt, *atty = a[ACT_ATTY] + l * nD;
        const float *res2 = a[ACT_RES2] + l * nD, *ln2 = a[ACT_LN2] + l * nD;
        const float *fch = a[ACT_FCH] + l * n4D, *fchg = a[ACT_FCH_GELU] + l * n4D;
        DURE_TRY(model_unit_params(m, 1 + l, MODEL_PASS_BACKWARD, &pv));
        p = pv;
        DURE_TRY(model_unit_grads(m, 1 + l, &g));
        /* MLP branch: dres holds d(block output) = d(res3). */
        cpu_matmul_backward(det, dbig, G(LT_FCP_W), G(LT_FCP_B), dres, fchg, W(LT_FCP_W),
                            BN, 4 * D, D);
        cpu_gelu_backward(dbig, fch, dbig, n4D);
        cpu_matmul_backward(det, dsmall, G(LT_FC_W), G(LT_FC_B), dbig, ln2, W(LT_FC_W),
                            BN, D, 4 * D);
        cpu_layernorm_backward(dres, G(LT_LN2_W), G(LT_LN2_B), dsmall, res2, W(LT_LN2_W),
                               a[ACT_LN2_MEAN] + l * BN, a[ACT_LN2_RSTD] + l * BN, BN, D);
        DURE_TRY(model_block_grads_done_from(m, l, LT_LN2_W));
        /* Attention branch: dres now holds d(res2). */
        cpu_matmul_backward(det, dsmall, G(LT_PROJ_W), G(LT_PROJ_B), dres, atty, W(LT_PROJ_W),
                            BN, D, D);
        DURE_TRY(model_block_grads_done_from(m, l, LT_PROJ_W));
        cpu_attention_backward(dbig, a[ACT_DATT], dsmall, qkv, att, B, N, D, H);
        cpu_matmul_backward(det, dsmall, G(LT_QKV_W), G(LT_QKV_B), dbig, ln1, W(LT_QKV_W),
                            BN, D, 3 * D);
        DURE_TRY(model_block_grads_done_from(m, l, LT_QKV_W));
        cpu_layernorm_backward(dres, G(LT_LN1_W), G(LT_LN1_B), dsmall, x, W(LT_LN1_W),
                               a[ACT_LN1_MEAN] + l * BN, a[ACT_LN1_RSTD] + l * BN, BN, D);
        DURE_TRY(model_unit_params_done(m, 1 + l, MODEL_PASS_BACKWARD));
        DURE_TRY(model_unit_grads_done(m, 1 + l));
    }
    DURE_TRY(model_unit_grads(m, 0, &g));
    cpu_embed_backward(det, g + lay->embed_w, g + lay->embed_b, g + lay->pos, dres,
                       a[ACT_INP], B, N, PCI, D);
    DURE_TRY(model_unit_grads_done(m, 0));
#undef W
#undef G
#undef HEAD
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
