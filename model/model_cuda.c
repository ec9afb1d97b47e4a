/*
 * model/model_cuda.c - the CUDA backend: the same step as model_cpu.c, kernel
 * by kernel, with bf16 weights and activations, fp32 master weights and
 * gradients, GEMMs through cuBLAS (bf16 inputs, fp32 accumulation) and
 * dure's kernels (kernels_cuda.cu) for everything else. The gradient of the
 * residual stream accumulates in fp32 across the blocks (each LayerNorm
 * backward adds into it); the GEMMs read a bf16 copy of it. Everything is
 * queued on the device's stream (device_stream).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/cuda_check.h"
#include "model/backend.h"
#include "model/cublas_cuda.h"
#include "model/kernels_cuda.h"

struct cuda_ctx {
    cudaStream_t stream;    /* the device's; not owned */
    const struct dure_cublas *cublas; /* the library's functions (cublas_cuda.h) */
    cublasHandle_t blas;
    void *a[ACT_COUNT];     /* buffers carved from m->act (see acts.h) */
    dure_bf16 *wbf;         /* (n_params) bf16 compute copy of the params, device */
    float *host_loss;       /* (B*N) pinned host copy of the row losses */
    int blas_ok;
};

/* A call through c->cublas, checked. */
#define DURE_CUBLAS_TRY(c, fn, ...)                                           \
    do {                                                                      \
        cublasStatus_t cb_rc_ = (c)->cublas->fn(__VA_ARGS__);                 \
        if (cb_rc_ != CUBLAS_STATUS_SUCCESS) {                                \
            st = DURE_ERR_CUDA;                                               \
            dure_log_error(__FILE__, __LINE__, "cuBLAS %s failed: %s (%d)", #fn, \
                           (c)->cublas->status_string(cb_rc_), (int)cb_rc_);  \
            goto out;                                                         \
        }                                                                     \
    } while (0)

/*
 * Row-major C (M, N) = alpha op(A) op(B) + beta C, op(A) (M, K), op(B) (K, N);
 * A and B bf16, C bf16 or fp32 (c_fp32), fp32 accumulation. cuBLAS is
 * column-major, so it computes C^T = op(B)^T op(A)^T with the operands
 * swapped. batch > 1: strided batched with element strides sa, sb, sc.
 */
static dure_status_t gemm(const struct cuda_ctx *c, int ta, int tb, int M, int N, int K,
                          float alpha, const void *A, int lda, long long sa,
                          const void *B, int ldb, long long sb, float beta, void *C,
                          int c_fp32, int ldc, long long sc, int batch)
{
    dure_status_t st = DURE_OK;
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cudaDataType_t ct = c_fp32 ? CUDA_R_32F : CUDA_R_16BF;
    if (batch == 1) {
        DURE_CUBLAS_TRY(c, gemm_ex, c->blas, opb, opa, N, M, K, &alpha, B, CUDA_R_16BF, ldb,
                        A, CUDA_R_16BF, lda, &beta, C, ct, ldc, CUBLAS_COMPUTE_32F,
                        CUBLAS_GEMM_DEFAULT);
    } else {
        DURE_CUBLAS_TRY(c, gemm_strided_batched_ex, c->blas, opb, opa, N, M, K, &alpha, B,
                        CUDA_R_16BF, ldb, sb, A, CUDA_R_16BF, lda, sa, &beta, C, ct, ldc, sc,
                        batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    }
out:
    return st;
}

/* out (rows, nout) = inp (rows, nin) @ w (nout, nin)^T + b: fill the bias,
 * then accumulate the product onto it (as cpu_matmul_forward). */
static dure_status_t matmul_forward(struct cuda_ctx *c, dure_bf16 *out,
                                    const dure_bf16 *inp, const dure_bf16 *w,
                                    const dure_bf16 *b, int rows, int nin, int nout)
{
    dure_status_t st = DURE_OK;
    DURE_CUDA_TRY(cuk_fill_rows(out, b, NULL, 1, rows, nout, c->stream));
    DURE_TRY(gemm(c, 0, 1, rows, nout, nin, 1.0f, inp, nin, 0, w, nin, 0, 1.0f, out,
                  0, nout, 0, 1));
out:
    return st;
}

/* dinp = dout @ w (skipped when NULL); dw += dout^T @ inp; db += colsum. */
static dure_status_t matmul_backward(struct cuda_ctx *c, dure_bf16 *dinp, float *dw,
                                     float *db, const dure_bf16 *dout,
                                     const dure_bf16 *inp, const dure_bf16 *w, int rows,
                                     int nin, int nout)
{
    dure_status_t st = DURE_OK;
    if (dinp) {
        DURE_TRY(gemm(c, 0, 0, rows, nin, nout, 1.0f, dout, nout, 0, w, nin, 0, 0.0f,
                      dinp, 0, nin, 0, 1));
    }
    DURE_TRY(gemm(c, 1, 0, nout, nin, rows, 1.0f, dout, nout, 0, inp, nin, 0, 1.0f,
                  dw, 1, nin, 0, 1));
    DURE_CUDA_TRY(cuk_colsum_add(db, c->a[ACT_PARTIAL], dout, rows, nout, c->stream));
out:
    return st;
}

/* Causal attention of one block: qkv (BN, 3D) -> out (BN, D), att saved. */
static dure_status_t attention_forward(struct cuda_ctx *c, const struct model_config *cfg,
                                       dure_bf16 *out, dure_bf16 *att,
                                       const dure_bf16 *qkv)
{
    dure_status_t st = DURE_OK;
    int B = cfg->micro_batch, N = cfg->context_patches, D = cfg->d_model;
    int H = cfg->n_heads, hs = D / H, BH = B * H;
    dure_bf16 *q = c->a[ACT_Q], *k = c->a[ACT_K], *v = c->a[ACT_V], *y = c->a[ACT_Y];
    float *scores = c->a[ACT_DATT];
    DURE_CUDA_TRY(cuk_permute(q, qkv, 3 * D, 0, B, N, H, hs, c->stream));
    DURE_CUDA_TRY(cuk_permute(k, qkv, 3 * D, D, B, N, H, hs, c->stream));
    DURE_CUDA_TRY(cuk_permute(v, qkv, 3 * D, 2 * D, B, N, H, hs, c->stream));
    /* scores (BH, N, N) = q k^T / sqrt(hs), fp32 for the softmax */
    DURE_TRY(gemm(c, 0, 1, N, N, hs, 1.0f / sqrtf((float)hs), q, hs,
                  (long long)N * hs, k, hs, (long long)N * hs, 0.0f, scores, 1, N,
                  (long long)N * N, BH));
    DURE_CUDA_TRY(cuk_softmax_forward(att, scores, BH * N, N, c->stream));
    DURE_TRY(gemm(c, 0, 0, N, hs, N, 1.0f, att, N, (long long)N * N, v, hs,
                  (long long)N * hs, 0.0f, y, 0, hs, (long long)N * hs, BH));
    DURE_CUDA_TRY(cuk_unpermute(out, y, D, 0, B, N, H, hs, c->stream));
out:
    return st;
}

/* dqkv (BN, 3D) from dout (BN, D); att is overwritten with dS. */
static dure_status_t attention_backward(struct cuda_ctx *c, const struct model_config *cfg,
                                        dure_bf16 *dqkv, const dure_bf16 *dout,
                                        const dure_bf16 *qkv, dure_bf16 *att)
{
    dure_status_t st = DURE_OK;
    int B = cfg->micro_batch, N = cfg->context_patches, D = cfg->d_model;
    int H = cfg->n_heads, hs = D / H, BH = B * H;
    long long sN = (long long)N * hs, sNN = (long long)N * N;
    dure_bf16 *q = c->a[ACT_Q], *k = c->a[ACT_K], *v = c->a[ACT_V], *y = c->a[ACT_Y];
    float *dp = c->a[ACT_DATT];
    DURE_CUDA_TRY(cuk_permute(q, qkv, 3 * D, 0, B, N, H, hs, c->stream));
    DURE_CUDA_TRY(cuk_permute(k, qkv, 3 * D, D, B, N, H, hs, c->stream));
    DURE_CUDA_TRY(cuk_permute(v, qkv, 3 * D, 2 * D, B, N, H, hs, c->stream));
    DURE_CUDA_TRY(cuk_permute(y, dout, D, 0, B, N, H, hs, c->stream));
    /* dP = dY V^T (fp32); then V is free: dV = P^T dY into it */
    DURE_TRY(gemm(c, 0, 1, N, N, hs, 1.0f, y, hs, sN, v, hs, sN, 0.0f, dp, 1, N, sNN,
                  BH));
    DURE_TRY(gemm(c, 1, 0, N, hs, N, 1.0f, att, N, sNN, y, hs, sN, 0.0f, v, 0, hs, sN,
                  BH));
    DURE_CUDA_TRY(cuk_softmax_backward(att, dp, 1.0f / sqrtf((float)hs), BH * N, N,
                                       c->stream));
    /* dQ = dS K into y (dY is used up); dK = dS^T Q into k */
    DURE_TRY(gemm(c, 0, 0, N, hs, N, 1.0f, att, N, sNN, k, hs, sN, 0.0f, y, 0, hs, sN,
                  BH));
    DURE_TRY(gemm(c, 1, 0, N, hs, N, 1.0f, att, N, sNN, q, hs, sN, 0.0f, k, 0, hs, sN,
                  BH));
    DURE_CUDA_TRY(cuk_unpermute(dqkv, y, 3 * D, 0, B, N, H, hs, c->stream));
    DURE_CUDA_TRY(cuk_unpermute(dqkv, k, 3 * D, D, B, N, H, hs, c->stream));
    DURE_CUDA_TRY(cuk_unpermute(dqkv, v, 3 * D, 2 * D, B, N, H, hs, c->stream));
out:
    return st;
}

static void cuda_fini(model_t *m)
{
    struct cuda_ctx *c = m->ctx;
    /* Teardown: report nothing, free everything that exists. */
    if (!c) {
        return;
    }
    (void)cudaStreamSynchronize(c->stream);
    device_free(m->dev, c->wbf);
    (void)cudaFreeHost(c->host_loss);
    if (c->blas_ok) {
        (void)c->cublas->destroy(c->blas);
    }
    free(c);
    m->ctx = NULL;
}

static dure_status_t cuda_to_compute(model_t *m, void *dst, const float *src, size_t count)
{
    dure_status_t st = DURE_OK;
    struct cuda_ctx *c = m->ctx;
    DURE_CUDA_TRY(cuk_cast_bf16(dst, src, count, c->stream));
out:
    return st;
}

static dure_status_t cuda_params_changed(model_t *m)
{
    struct cuda_ctx *c = m->ctx;
    return cuda_to_compute(m, c->wbf, m->params, m->lay.total);
}

static const void *cuda_compute_params(model_t *m)
{
    return ((struct cuda_ctx *)m->ctx)->wbf;
}

static dure_status_t cuda_init(model_t *m)
{
    dure_status_t st = DURE_OK;
    struct cuda_ctx *c = NULL;
    uint64_t n = m->lay.total;
    int BN = m->cfg.micro_batch * m->cfg.context_patches;

    c = calloc(1, sizeof *c);
    DURE_ALLOC_TRY(c, sizeof *c);
    m->ctx = c;
    c->stream = (cudaStream_t)device_stream(m->dev);
    DURE_TRY(dure_cublas_load(NULL, &c->cublas));
    DURE_CUBLAS_TRY(c, create, &c->blas);
    c->blas_ok = 1;
    DURE_CUBLAS_TRY(c, set_stream, c->blas, c->stream);
    /* Deterministic runs forbid cuBLAS reductions through atomics. */
    DURE_CUBLAS_TRY(c, set_atomics_mode, c->blas,
                    m->cfg.deterministic ? CUBLAS_ATOMICS_NOT_ALLOWED : CUBLAS_ATOMICS_ALLOWED);
    DURE_CUDA_TRY(cudaMallocHost((void **)&c->host_loss, (size_t)BN * sizeof(float)));
    for (int i = 0; i < ACT_COUNT; i++) {
        c->a[i] = m->plan.count[i] ? (char *)m->act + m->plan.offset[i] : NULL;
    }
    if (m->params) {
        /* Lent parameters arrive in bf16 already (model_unit_source). */
        DURE_TRY(device_alloc(m->dev, (size_t)n * 2, "the bf16 compute parameters",
                              (void **)&c->wbf));
        DURE_TRY(cuda_params_changed(m));
    }
out:
    if (st != DURE_OK) {
        cuda_fini(m);
    }
    return st;
}

/* One forward (and backward) unit by unit, as cpu_step (model_cpu.c):
 * tensors addressed relative to their unit's first element. */
static dure_status_t cuda_step(model_t *m, const float *batch, const float *mask, int backward,
                               float *loss)
{
    dure_status_t st = DURE_OK;
    const struct model_config *cfg = &m->cfg;
    const struct model_layout *lay = &m->lay;
    struct cuda_ctx *c = m->ctx;
    cudaStream_t s = c->stream;
    void **a = c->a;
    const void *pv = NULL;
    const dure_bf16 *p = NULL;
    float *g = NULL;
    int B = cfg->micro_batch, N = cfg->context_patches, D = cfg->d_model;
    int L = cfg->n_layers, U = L + 2, PC = cfg->patch_len * cfg->channels, BN = B * N;
    int PCI = model_token_inputs(cfg);
    /* The unmasked mean's 1 / (rows * cols) as the kernel computed it
     * before masks, so unmasked runs keep their bits. */
    uint64_t elems = model_loss_elems(cfg, mask);
    float inv = mask ? (elems ? 1.0f / (float)elems : 0.0f) : 1.0f / ((float)BN * (float)PC);
    const float *dmask = mask ? (const float *)a[ACT_MASK] : NULL;
    size_t nD = (size_t)BN * D, n4D = 4 * nD, nAtt = (size_t)B * cfg->n_heads * N * N;
    size_t nbatch = (size_t)B * (N + 1) * cfg->patch_len * cfg->channels;
#define BUF(i) ((dure_bf16 *)a[(i)])
#define F32(i) ((float *)a[(i)])
#define W(k) (p + lay->in_layer[(k)])
#define G(k) (g + lay->in_layer[(k)])
#define HEAD(x) (lay->x - lay->lnf_w)

    DURE_TRY(model_units_begin(m, backward));
    DURE_CUDA_TRY(cudaMemcpyAsync(a[ACT_BATCH], batch, nbatch * sizeof(float),
                                  cudaMemcpyHostToDevice, s));
    if (mask) {
        DURE_CUDA_TRY(cudaMemcpyAsync(a[ACT_MASK], mask,
                                      (size_t)B * cfg->channels * sizeof(float),
                                      cudaMemcpyHostToDevice, s));
    }
    DURE_CUDA_TRY(cuk_patches(BUF(ACT_INP), F32(ACT_TGT), F32(ACT_BATCH), dmask, B, N,
                              cfg->patch_len, cfg->channels, s));
    DURE_TRY(model_unit_params(m, 0, MODEL_PASS_FORWARD, &pv));
    p = pv;
    DURE_CUDA_TRY(cuk_fill_rows(BUF(ACT_ENC), p + lay->embed_b, p + lay->pos, N, BN, D, s));
    DURE_TRY(gemm(c, 0, 1, BN, D, PCI, 1.0f, BUF(ACT_INP), PCI, 0, p + lay->embed_w,
                  PCI, 0, 1.0f, BUF(ACT_ENC), 0, D, 0, 1));
    DURE_TRY(model_unit_params_done(m, 0, MODEL_PASS_FORWARD));
    for (int l = 0; l < L; l++) {
        const dure_bf16 *x = l == 0 ? BUF(ACT_ENC) : BUF(ACT_RES3) + (l - 1) * nD;
        dure_bf16 *ln1 = BUF(ACT_LN1) + l * nD, *qkv = BUF(ACT_QKV) + 3 * l * nD;
        dure_bf16 *att = BUF(ACT_ATT) + l * nAtt, *atty = BUF(ACT_ATTY) + l * nD;
        dure_bf16 *res2 = BUF(ACT_RES2) + l * nD, *ln2 = BUF(ACT_LN2) + l * nD;
        dure_bf16 *fch = BUF(ACT_FCH) + l * n4D, *fchg = BUF(ACT_FCH_GELU) + l * n4D;
        dure_bf16 *res3 = BUF(ACT_RES3) + l * nD, *tmp = BUF(ACT_DSMALL);
        DURE_TRY(model_unit_params(m, 1 + l, MODEL_PASS_FORWARD, &pv));
        p = pv;
        DURE_CUDA_TRY(cuk_layernorm_forward(ln1, F32(ACT_LN1_MEAN) + l * BN,
                                            F32(ACT_LN1_RSTD) + l * BN, x, W(LT_LN1_W),
                                            W(LT_LN1_B), BN, D, s));
        DURE_TRY(matmul_forward(c, qkv, ln1, W(LT_QKV_W), W(LT_QKV_B), BN, D, 3 * D));
        DURE_TRY(attention_forward(c, cfg, atty, att, qkv));
        DURE_TRY(matmul_forward(c, tmp, atty, W(LT_PROJ_W), W(LT_PROJ_B), BN, D, D));
        DURE_CUDA_TRY(cuk_residual_forward(res2, x, tmp, nD, s));
        DURE_CUDA_TRY(cuk_layernorm_forward(ln2, F32(ACT_LN2_MEAN) + l * BN,
                                            F32(ACT_LN2_RSTD) + l * BN, res2, W(LT_LN2_W),
                                            W(LT_LN2_B), BN, D, s));
        DURE_TRY(matmul_forward(c, fch, ln2, W(LT_FC_W), W(LT_FC_B), BN, D, 4 * D));
        DURE_CUDA_TRY(cuk_gelu_forward(fchg, fch, n4D, s));
        DURE_TRY(matmul_forward(c, tmp, fchg, W(LT_FCP_W), W(LT_FCP_B), BN, 4 * D, D));
        DURE_CUDA_TRY(cuk_residual_forward(res3, res2, tmp, nD, s));
        DURE_TRY(model_unit_params_done(m, 1 + l, MODEL_PASS_FORWARD));
    }
    const dure_bf16 *xL = BUF(ACT_RES3) + (L - 1) * nD;
    DURE_TRY(model_unit_params(m, U - 1, MODEL_PASS_FORWARD, &pv));
    p = pv;
    DURE_CUDA_TRY(cuk_layernorm_forward(BUF(ACT_LNF), F32(ACT_LNF_MEAN), F32(ACT_LNF_RSTD),
                                        xL, p + HEAD(lnf_w), p + HEAD(lnf_b), BN, D, s));
    /* The head writes fp32 predictions: the loss sees them unrounded. */
    DURE_CUDA_TRY(cuk_fill_rows_f32(F32(ACT_PRED), p + HEAD(head_b), BN, PC, s));
    DURE_TRY(gemm(c, 0, 1, BN, PC, D, 1.0f, BUF(ACT_LNF), D, 0, p + HEAD(head_w), D, 0,
                  1.0f, F32(ACT_PRED), 1, PC, 0, 1));
    DURE_TRY(model_unit_params_done(m, U - 1, MODEL_PASS_FORWARD));
    DURE_CUDA_TRY(cuk_loss(F32(ACT_LOSS), backward ? BUF(ACT_DPRED) : NULL, F32(ACT_PRED),
                           F32(ACT_TGT), dmask, BN, PC, N, cfg->channels,
                           cfg->loss == MODEL_LOSS_HUBER, cfg->huber_delta, inv, s));
    DURE_CUDA_TRY(cudaMemcpyAsync(c->host_loss, a[ACT_LOSS], (size_t)BN * sizeof(float),
                                  cudaMemcpyDeviceToHost, s));
    if (backward) {
        /* dres: d(residual stream), fp32; dres_bf: its bf16 copy, refreshed
         * before each GEMM that reads it. */
        float *dres = F32(ACT_DRES);
        dure_bf16 *dres_bf = BUF(ACT_DRES_BF16), *dsmall = BUF(ACT_DSMALL);
        dure_bf16 *dbig = BUF(ACT_DBIG);
        float *part = F32(ACT_PARTIAL);
        DURE_TRY(model_unit_params(m, U - 1, MODEL_PASS_BACKWARD, &pv));
        p = pv;
        DURE_TRY(model_unit_grads(m, U - 1, &g));
        DURE_TRY(matmul_backward(c, dsmall, g + HEAD(head_w), g + HEAD(head_b),
                                 BUF(ACT_DPRED), BUF(ACT_LNF), p + HEAD(head_w), BN, D, PC));
        DURE_CUDA_TRY(cudaMemsetAsync(dres, 0, nD * sizeof(float), s));
        DURE_CUDA_TRY(cuk_layernorm_backward(dres, g + HEAD(lnf_w), g + HEAD(lnf_b), part,
                                             dsmall, xL, p + HEAD(lnf_w), F32(ACT_LNF_MEAN),
                                             F32(ACT_LNF_RSTD), BN, D, s));
        DURE_TRY(model_unit_params_done(m, U - 1, MODEL_PASS_BACKWARD));
        DURE_TRY(model_unit_grads_done(m, U - 1));
        for (int l = L - 1; l >= 0; l--) {
            const dure_bf16 *x = l == 0 ? BUF(ACT_ENC) : BUF(ACT_RES3) + (l - 1) * nD;
            const dure_bf16 *ln1 = BUF(ACT_LN1) + l * nD, *qkv = BUF(ACT_QKV) + 3 * l * nD;
            dure_bf16 *att = BUF(ACT_ATT) + l * nAtt;
            const dure_bf16 *atty = BUF(ACT_ATTY) + l * nD, *res2 = BUF(ACT_RES2) + l * nD;
            const dure_bf16 *ln2 = BUF(ACT_LN2) + l * nD, *fch = BUF(ACT_FCH) + l * n4D;
            const dure_bf16 *fchg = BUF(ACT_FCH_GELU) + l * n4D;
            DURE_TRY(model_unit_params(m, 1 + l, MODEL_PASS_BACKWARD, &pv));
            p = pv;
            DURE_TRY(model_unit_grads(m, 1 + l, &g));
            DURE_CUDA_TRY(cuk_cast_bf16(dres_bf, dres, nD, s));
            DURE_TRY(matmul_backward(c, dbig, G(LT_FCP_W), G(LT_FCP_B), dres_bf, fchg,
                                     W(LT_FCP_W), BN, 4 * D, D));
            DURE_CUDA_TRY(cuk_gelu_backward(dbig, fch, dbig, n4D, s));
            DURE_TRY(matmul_backward(c, dsmall, G(LT_FC_W), G(LT_FC_B), dbig, ln2, W(LT_FC_W),
                                     BN, D, 4 * D));
            DURE_CUDA_TRY(cuk_layernorm_backward(dres, G(LT_LN2_W), G(LT_LN2_B), part, dsmall,
                                                 res2, W(LT_LN2_W), F32(ACT_LN2_MEAN) + l * BN,
                                                 F32(ACT_LN2_RSTD) + l * BN, BN, D, s));
            DURE_TRY(model_block_grads_done_from(m, l, LT_LN2_W));
            DURE_CUDA_TRY(cuk_cast_bf16(dres_bf, dres, nD, s));
            DURE_TRY(matmul_backward(c, dsmall, G(LT_PROJ_W), G(LT_PROJ_B), dres_bf, atty,
                                     W(LT_PROJ_W), BN, D, D));
            DURE_TRY(model_block_grads_done_from(m, l, LT_PROJ_W));
            DURE_TRY(attention_backward(c, cfg, dbig, dsmall, qkv, att));
            DURE_TRY(matmul_backward(c, dsmall, G(LT_QKV_W), G(LT_QKV_B), dbig, ln1,
                                     W(LT_QKV_W), BN, D, 3 * D));
            DURE_TRY(model_block_grads_done_from(m, l, LT_QKV_W));
            DURE_CUDA_TRY(cuk_layernorm_backward(dres, G(LT_LN1_W), G(LT_LN1_B), part, dsmall,
                                                 x, W(LT_LN1_W), F32(ACT_LN1_MEAN) + l * BN,
                                                 F32(ACT_LN1_RSTD) + l * BN, BN, D, s));
            DURE_TRY(model_unit_params_done(m, 1 + l, MODEL_PASS_BACKWARD));
            DURE_TRY(model_unit_grads_done(m, 1 + l));
        }
        DURE_TRY(model_unit_grads(m, 0, &g));
        DURE_CUDA_TRY(cuk_cast_bf16(dres_bf, dres, nD, s));
        DURE_TRY(gemm(c, 1, 0, D, PCI, BN, 1.0f, dres_bf, D, 0, BUF(ACT_INP), PCI, 0,
                      1.0f, g + lay->embed_w, 1, PCI, 0, 1));
        DURE_CUDA_TRY(cuk_colsum_add(g + lay->embed_b, part, dres_bf, BN, D, s));
        DURE_CUDA_TRY(cuk_pos_backward(g + lay->pos, dres_bf, B, N, D, s));
        DURE_TRY(model_unit_grads_done(m, 0));
    }
    DURE_CUDA_TRY(cudaStreamSynchronize(s));
    double sum = 0.0;
    for (int r = 0; r < BN; r++) {
        sum += c->host_loss[r];
    }
    *loss = mask ? (float)(elems ? sum / (double)elems : 0.0) : (float)(sum / ((double)BN * PC));
    model_window_losses_set(m, c->host_loss, mask);
#undef BUF
#undef F32
#undef W
#undef G
#undef HEAD
out:
    return st;
}

const struct model_backend_i model_cuda_backend = {
    .name = "cuda",
    .bf16 = 1,
    .init = cuda_init,
    .fini = cuda_fini,
    .step = cuda_step,
    .params_changed = cuda_params_changed,
    .compute_params = cuda_compute_params,
    .to_compute = cuda_to_compute,
};
