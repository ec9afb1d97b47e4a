/*
 * tests/unit/test_model.c - gradient checks of every CPU kernel and of the
 * whole model against central finite differences of a double-precision
 * reference written here independently of model/kernels_cpu.c (plain loops,
 * no BLAS); the tensor table; configuration errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/flops.h"
#include "model/kernels_cpu.h"
#include "model/layout.h"
#include "model/model.h"
#include "tests/support/testdev.h"

/* Deterministic test data: xorshift64* uniforms in [-1, 1). */
static uint64_t ref_rng_state = 88172645463325252ULL;

static double ref_uniform(void)
{
    ref_rng_state ^= ref_rng_state >> 12;
    ref_rng_state ^= ref_rng_state << 25;
    ref_rng_state ^= ref_rng_state >> 27;
    uint64_t r = ref_rng_state * 2685821657736338717ULL;
    return (double)(r >> 11) * 0x1.0p-52 - 1.0;
}

static void ref_fill(float *x, size_t n, double scale)
{
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)(scale * ref_uniform());
    }
}

static void ref_layernorm(double *out, const double *x, const double *w,
                          const double *b, int rows, int D)
{
    for (int r = 0; r < rows; r++) {
        const double *xr = x + (size_t)r * D;
        double m = 0.0, v = 0.0;
        for (int c = 0; c < D; c++) {
            m += xr[c];
        }
        m /= D;
        for (int c = 0; c < D; c++) {
            v += (xr[c] - m) * (xr[c] - m);
        }
        v /= D;
        double rs = 1.0 / sqrt(v + 1e-5);
        for (int c = 0; c < D; c++) {
            out[(size_t)r * D + c] = (xr[c] - m) * rs * w[c] + b[c];
        }
    }
}

/* out (rows, nout) = x (rows, nin) @ w (nout, nin)^T + b */
static void ref_matmul(double *out, const double *x, const double *w,
                       const double *b, int rows, int nin, int nout)
{
    for (int r = 0; r < rows; r++) {
        for (int o = 0; o < nout; o++) {
            double s = b[o];
            for (int i = 0; i < nin; i++) {
                s += x[(size_t)r * nin + i] * w[(size_t)o * nin + i];
            }
            out[(size_t)r * nout + o] = s;
        }
    }
}

static void ref_attention(double *out, const double *qkv, int B, int N, int D, int H)
{
    int hs = D / H;
    double *p = malloc(sizeof(double) * (size_t)N);
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            for (int i = 0; i < N; i++) {
                const double *q = qkv + ((size_t)b * N + i) * 3 * D + h * hs;
                double mx = -INFINITY, s = 0.0;
                for (int j = 0; j <= i; j++) {
                    const double *k = qkv + ((size_t)b * N + j) * 3 * D + D + h * hs;
                    double dot = 0.0;
                    for (int d = 0; d < hs; d++) {
                        dot += q[d] * k[d];
                    }
                    p[j] = dot / sqrt((double)hs);
                    mx = p[j] > mx ? p[j] : mx;
                }
                for (int j = 0; j <= i; j++) {
                    p[j] = exp(p[j] - mx);
                    s += p[j];
                }
                double *o = out + ((size_t)b * N + i) * D + h * hs;
                for (int d = 0; d < hs; d++) {
                    double acc = 0.0;
                    for (int j = 0; j <= i; j++) {
                        acc += p[j] / s * qkv[((size_t)b * N + j) * 3 * D + 2 * D + h * hs + d];
                    }
                    o[d] = acc;
                }
            }
        }
    }
    free(p);
}

static void ref_gelu(double *out, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double u = sqrt(2.0 / M_PI) * (x[i] + 0.044715 * x[i] * x[i] * x[i]);
        out[i] = 0.5 * x[i] * (1.0 + tanh(u));
    }
}

/* keep (n) of 0/1, NULL = every element: the mean over the kept ones. */
static double ref_loss(const double *pred, const double *tgt, const double *keep, size_t n,
                       enum model_loss loss, double delta)
{
    double s = 0.0, kept = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = pred[i] - tgt[i], ad = fabs(d);
        kept += keep ? keep[i] : 1.0;
        if (keep && keep[i] == 0.0) {
            continue;
        }
        if (loss == MODEL_LOSS_HUBER) {
            s += ad <= delta ? 0.5 * d * d : delta * (ad - 0.5 * delta);
        } else {
            s += d * d;
        }
    }
    return kept > 0.0 ? s / kept : 0.0;
}

/* The mean loss of the whole model with parameters p (double, flat layout);
 * mask (B, C) for a masked model (model.h: Masks), else NULL. */
static double ref_model_loss(const struct model_config *cfg,
                             const struct model_layout *lay, const double *p,
                             const float *batch, const float *mask)
{
    int B = cfg->micro_batch, N = cfg->context_patches, D = cfg->d_model;
    int C = cfg->channels, PC = cfg->patch_len * C, BN = B * N, L = cfg->n_layers;
    int PCI = PC + (mask ? C : 0);
    size_t T = (size_t)(N + 1) * cfg->patch_len;
    double *inp = malloc(sizeof(double) * BN * PCI), *tgt = malloc(sizeof(double) * BN * PC);
    double *keep = malloc(sizeof(double) * BN * PC);
    double *x = malloc(sizeof(double) * BN * D), *ln = malloc(sizeof(double) * BN * D);
    double *qkv = malloc(sizeof(double) * BN * 3 * D), *y = malloc(sizeof(double) * BN * D);
    double *t = malloc(sizeof(double) * BN * D), *f = malloc(sizeof(double) * BN * 4 * D);
    double *pred = malloc(sizeof(double) * BN * PC);
    for (int b = 0; b < B; b++) {
        for (int n = 0; n < N; n++) {
            for (int k = 0; k < PC; k++) {
                size_t src = (size_t)b * T * cfg->channels + (size_t)n * PC + k;
                double on = mask ? mask[b * C + k % C] : 1.0;
                inp[((size_t)b * N + n) * PCI + k] = on != 0.0 ? batch[src] : 0.0;
                tgt[((size_t)b * N + n) * PC + k] = batch[src + PC];
                keep[((size_t)b * N + n) * PC + k] = on;
            }
            for (int c = 0; mask && c < C; c++) {
                inp[((size_t)b * N + n) * PCI + PC + c] = mask[b * C + c];
            }
        }
    }
    ref_matmul(x, inp, p + lay->embed_w, p + lay->embed_b, BN, PCI, D);
    for (int r = 0; r < BN; r++) {
        for (int c = 0; c < D; c++) {
            x[(size_t)r * D + c] += p[lay->pos + (size_t)(r % N) * D + c];
        }
    }
    for (int l = 0; l < L; l++) {
#define P_(k) (p + model_layout_at(lay, l, (k)))
        ref_layernorm(ln, x, P_(LT_LN1_W), P_(LT_LN1_B), BN, D);
        ref_matmul(qkv, ln, P_(LT_QKV_W), P_(LT_QKV_B), BN, D, 3 * D);
        ref_attention(y, qkv, B, N, D, cfg->n_heads);
        ref_matmul(t, y, P_(LT_PROJ_W), P_(LT_PROJ_B), BN, D, D);
        for (size_t i = 0; i < (size_t)BN * D; i++) {
            x[i] += t[i];
        }
        ref_layernorm(ln, x, P_(LT_LN2_W), P_(LT_LN2_B), BN, D);
        ref_matmul(f, ln, P_(LT_FC_W), P_(LT_FC_B), BN, D, 4 * D);
        ref_gelu(f, f, (size_t)BN * 4 * D);
        ref_matmul(t, f, P_(LT_FCP_W), P_(LT_FCP_B), BN, 4 * D, D);
        for (size_t i = 0; i < (size_t)BN * D; i++) {
            x[i] += t[i];
        }
#undef P_
    }
    ref_layernorm(ln, x, p + lay->lnf_w, p + lay->lnf_b, BN, D);
    ref_matmul(pred, ln, p + lay->head_w, p + lay->head_b, BN, D, PC);
    double loss = ref_loss(pred, tgt, keep, (size_t)BN * PC, cfg->loss, cfg->huber_delta);
    free(inp), free(tgt), free(keep), free(x), free(ln), free(qkv), free(y), free(t), free(f);
    free(pred);
    return loss;
}


/* ------------------------------------------------------------ FD harness */

typedef double (*scalar_fn)(void *ctx);

static double *to_double(const float *x, size_t n)
{
    double *d = malloc(n * sizeof *d);
    assert_non_null(d);
    for (size_t i = 0; i < n; i++) {
        d[i] = x[i];
    }
    return d;
}

/*
 * Central differences of fn with respect to var[0..n) against analytic.
 * Fails when the largest error exceeds rtol times the largest numeric
 * gradient, or when the gradient is trivially zero (a check that cannot
 * fail is no check).
 */
static void check_fd(const char *what, scalar_fn fn, void *ctx, double *var,
                     const float *analytic, size_t n, double rtol)
{
    const double h = 1e-5;
    double maxn = 0.0, maxerr = 0.0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        double save = var[i];
        var[i] = save + h;
        double fp = fn(ctx);
        var[i] = save - h;
        double fm = fn(ctx);
        var[i] = save;
        double num = (fp - fm) / (2.0 * h);
        double err = fabs(num - (double)analytic[i]);
        maxn = fabs(num) > maxn ? fabs(num) : maxn;
        if (err > maxerr) {
            maxerr = err;
            worst = i;
        }
    }
    if (!(maxn > 1e-6) || !(maxerr <= rtol * maxn)) {
        fail_msg("%s: max |numeric| %.3e, max error %.3e at element %zu (> %.1e relative)",
                 what, maxn, maxerr, worst, rtol);
    }
}

/* sum(dy * out) in double */
static double dot(const double *dy, const double *out, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        s += dy[i] * out[i];
    }
    return s;
}

static void assert_close(const char *what, const float *got, const double *want,
                         size_t n, double rtol)
{
    double maxw = 0.0, maxerr = 0.0;
    for (size_t i = 0; i < n; i++) {
        maxw = fabs(want[i]) > maxw ? fabs(want[i]) : maxw;
        double e = fabs((double)got[i] - want[i]);
        maxerr = e > maxerr ? e : maxerr;
    }
    if (!(maxerr <= rtol * maxw)) {
        fail_msg("%s: differs from the double reference: max error %.3e, max "
                 "|value| %.3e", what, maxerr, maxw);
    }
}

/* ------------------------------------------------------------ layernorm */

struct ln_ctx {
    int rows, D;
    double *x, *w, *b, *dy, *out;
};

static double ln_scalar(void *p)
{
    struct ln_ctx *c = p;
    ref_layernorm(c->out, c->x, c->w, c->b, c->rows, c->D);
    return dot(c->dy, c->out, (size_t)c->rows * c->D);
}

static void test_grad_layernorm(void **state)
{
    (void)state;
    enum { R = 5, D = 13 };
    float x[R * D], w[D], b[D], dy[R * D], out[R * D], mean[R], rstd[R];
    float dx[R * D] = {0}, dw[D] = {0}, db[D] = {0};
    ref_fill(x, R * D, 2.0);
    ref_fill(w, D, 1.0);
    ref_fill(b, D, 1.0);
    ref_fill(dy, R * D, 1.0);
    cpu_layernorm_forward(out, mean, rstd, x, w, b, R, D);
    cpu_layernorm_backward(dx, dw, db, dy, x, w, mean, rstd, R, D);
    double ref_out[R * D];
    struct ln_ctx c = {R, D, to_double(x, R * D), to_double(w, D), to_double(b, D),
                       to_double(dy, R * D), ref_out};
    ref_layernorm(ref_out, c.x, c.w, c.b, R, D);
    assert_close("layernorm", out, ref_out, R * D, 1e-5);
    check_fd("layernorm dinp", ln_scalar, &c, c.x, dx, R * D, 1e-4);
    check_fd("layernorm dw", ln_scalar, &c, c.w, dw, D, 1e-4);
    check_fd("layernorm db", ln_scalar, &c, c.b, db, D, 1e-4);
    free(c.x), free(c.w), free(c.b), free(c.dy);
}

/* ------------------------------------------------------------ matmul */

struct mm_ctx {
    int rows, nin, nout;
    double *x, *w, *b, *dy, *out;
};

static double mm_scalar(void *p)
{
    struct mm_ctx *c = p;
    ref_matmul(c->out, c->x, c->w, c->b, c->rows, c->nin, c->nout);
    return dot(c->dy, c->out, (size_t)c->rows * c->nout);
}

static void test_grad_matmul(void **state)
{
    (void)state;
    enum { R = 5, NI = 7, NO = 6 };
    float x[R * NI], w[NO * NI], b[NO], dy[R * NO], out[R * NO];
    float dx[R * NI], dw[NO * NI] = {0}, db[NO] = {0};
    ref_fill(x, R * NI, 1.0);
    ref_fill(w, NO * NI, 1.0);
    ref_fill(b, NO, 1.0);
    ref_fill(dy, R * NO, 1.0);
    cpu_matmul_forward(0, out, x, w, b, R, NI, NO);
    cpu_matmul_backward(0, dx, dw, db, dy, x, w, R, NI, NO);
    double ref_out[R * NO];
    struct mm_ctx c = {R, NI, NO, to_double(x, R * NI), to_double(w, NO * NI),
                       to_double(b, NO), to_double(dy, R * NO), ref_out};
    ref_matmul(ref_out, c.x, c.w, c.b, R, NI, NO);
    assert_close("matmul", out, ref_out, R * NO, 1e-5);
    check_fd("matmul dinp", mm_scalar, &c, c.x, dx, R * NI, 1e-4);
    check_fd("matmul dw", mm_scalar, &c, c.w, dw, NO * NI, 1e-4);
    check_fd("matmul db", mm_scalar, &c, c.b, db, NO, 1e-4);
    /* Parameter gradients accumulate: a second backward doubles them. */
    float dw1 = dw[3], db1 = db[2];
    cpu_matmul_backward(0, NULL, dw, db, dy, x, w, R, NI, NO);
    assert_float_equal(dw[3], 2.0f * dw1, 1e-5f * (1.0f + fabsf(dw1)));
    assert_float_equal(db[2], 2.0f * db1, 1e-5f * (1.0f + fabsf(db1)));
    free(c.x), free(c.w), free(c.b), free(c.dy);
}

/* The GEMMs split between OpenMP threads along M or N: check every split
 * path (forward, dinp, dw; M >= N and M < N) with sizes large enough for
 * several threads to get a part, against the formulas in double. */
static void check_matmul_split(int fixed, int R, int NI, int NO)
{
    float *x = malloc(sizeof(float) * R * NI), *w = malloc(sizeof(float) * NO * NI);
    float *b = malloc(sizeof(float) * NO), *dy = malloc(sizeof(float) * R * NO);
    float *out = malloc(sizeof(float) * R * NO), *dx = malloc(sizeof(float) * R * NI);
    float *dw = calloc((size_t)NO * NI, sizeof(float)), *db = calloc((size_t)NO, sizeof(float));
    double *want = malloc(sizeof(double) * (size_t)(R > NO ? R : NO) * (NI > NO ? NI : NO));
    ref_fill(x, (size_t)R * NI, 1.0);
    ref_fill(w, (size_t)NO * NI, 1.0);
    ref_fill(b, NO, 1.0);
    ref_fill(dy, (size_t)R * NO, 1.0);
    cpu_matmul_forward(fixed, out, x, w, b, R, NI, NO);
    cpu_matmul_backward(fixed, dx, dw, db, dy, x, w, R, NI, NO);
    double *xd = to_double(x, (size_t)R * NI), *wd = to_double(w, (size_t)NO * NI);
    double *bd = to_double(b, NO);
    ref_matmul(want, xd, wd, bd, R, NI, NO);
    assert_close("split matmul forward", out, want, (size_t)R * NO, 1e-5);
    for (int r = 0; r < R; r++) {        /* dinp = dy @ w */
        for (int i = 0; i < NI; i++) {
            double s = 0.0;
            for (int o = 0; o < NO; o++) {
                s += (double)dy[r * NO + o] * w[o * NI + i];
            }
            want[r * NI + i] = s;
        }
    }
    assert_close("split matmul dinp", dx, want, (size_t)R * NI, 1e-5);
    for (int o = 0; o < NO; o++) {       /* dw = dy^T @ x */
        for (int i = 0; i < NI; i++) {
            double s = 0.0;
            for (int r = 0; r < R; r++) {
                s += (double)dy[r * NO + o] * x[r * NI + i];
            }
            want[o * NI + i] = s;
        }
    }
    assert_close("split matmul dw", dw, want, (size_t)NO * NI, 1e-5);
    for (int o = 0; o < NO; o++) {
        double s = 0.0;
        for (int r = 0; r < R; r++) {
            s += dy[r * NO + o];
        }
        want[o] = s;
    }
    assert_close("split matmul db", db, want, NO, 1e-5);
    free(x), free(w), free(b), free(dy), free(out), free(dx), free(dw), free(db);
    free(want), free(xd), free(wd), free(bd);
}

static void test_matmul_thread_split(void **state)
{
    (void)state;
    int saved = omp_get_max_threads();
    int blas = cpu_blas_enter();
    omp_set_num_threads(3); /* uneven parts, whatever the machine */
    check_matmul_split(0, 150, 70, 40);  /* forward, dinp split M; dw split N */
    check_matmul_split(0, 40, 150, 100); /* forward, dinp split N (B offset by rows, columns) */
    check_matmul_split(0, 40, 50, 100);  /* dw split M (A transposed: offset by columns) */
    /* deterministic mode: parts of 256 whatever the thread count */
    check_matmul_split(1, 600, 30, 20);
    check_matmul_split(1, 20, 600, 300);
    check_matmul_split(1, 20, 30, 600);
    omp_set_num_threads(saved);
    cpu_blas_leave(blas);
}

/* ------------------------------------------------------------ attention */

struct att_ctx {
    int B, N, D, H;
    double *qkv, *dy, *out;
};

static double att_scalar(void *p)
{
    struct att_ctx *c = p;
    ref_attention(c->out, c->qkv, c->B, c->N, c->D, c->H);
    return dot(c->dy, c->out, (size_t)c->B * c->N * c->D);
}

static void test_grad_attention(void **state)
{
    (void)state;
    enum { B = 2, N = 5, D = 8, H = 2 };
    float qkv[B * N * 3 * D], dy[B * N * D], out[B * N * D], att[B * H * N * N];
    float dqkv[B * N * 3 * D], datt[B * H * N * N];
    ref_fill(qkv, B * N * 3 * D, 1.5);
    ref_fill(dy, B * N * D, 1.0);
    cpu_attention_forward(out, att, qkv, B, N, D, H);
    for (int r = 0; r < B * H * N; r++) {
        int i = r % N;
        double s = 0.0;
        for (int j = 0; j < N; j++) {
            if (j > i) {
                assert_true(att[r * N + j] == 0.0f); /* causal: no future */
            }
            s += att[r * N + j];
        }
        assert_float_equal(s, 1.0, 1e-6);
    }
    cpu_attention_backward(dqkv, datt, dy, qkv, att, B, N, D, H);
    double ref_out[B * N * D];
    struct att_ctx c = {B, N, D, H, to_double(qkv, B * N * 3 * D),
                        to_double(dy, B * N * D), ref_out};
    ref_attention(ref_out, c.qkv, B, N, D, H);
    assert_close("attention", out, ref_out, B * N * D, 1e-5);
    check_fd("attention dqkv", att_scalar, &c, c.qkv, dqkv, B * N * 3 * D, 1e-4);
    free(c.qkv), free(c.dy);
}

/* ------------------------------------------------------------ gelu */

struct gelu_ctx {
    size_t n;
    double *x, *dy, *out;
};

static double gelu_scalar(void *p)
{
    struct gelu_ctx *c = p;
    ref_gelu(c->out, c->x, c->n);
    return dot(c->dy, c->out, c->n);
}

static void test_grad_gelu(void **state)
{
    (void)state;
    enum { n = 37 };
    float x[n], dy[n], out[n], dx[n];
    ref_fill(x, n, 4.0);
    ref_fill(dy, n, 1.0);
    cpu_gelu_forward(out, x, n);
    cpu_gelu_backward(dx, x, dy, n);
    double ref_out[n];
    struct gelu_ctx c = {n, to_double(x, n), to_double(dy, n), ref_out};
    ref_gelu(ref_out, c.x, n);
    assert_close("gelu", out, ref_out, n, 1e-6);
    check_fd("gelu dinp", gelu_scalar, &c, c.x, dx, n, 1e-5);
    free(c.x), free(c.dy);
}

/* ------------------------------------------------------------ embedding */

struct emb_ctx {
    int B, N, PC, D;
    double *inp, *w, *b, *pos, *dy, *out;
};

static double emb_scalar(void *p)
{
    struct emb_ctx *c = p;
    int rows = c->B * c->N;
    ref_matmul(c->out, c->inp, c->w, c->b, rows, c->PC, c->D);
    for (int r = 0; r < rows; r++) {
        for (int k = 0; k < c->D; k++) {
            c->out[(size_t)r * c->D + k] += c->pos[(size_t)(r % c->N) * c->D + k];
        }
    }
    return dot(c->dy, c->out, (size_t)rows * c->D);
}

static void test_grad_embed(void **state)
{
    (void)state;
    enum { B = 2, N = 3, P = 2, C = 3, PC = P * C, D = 5, T = (N + 1) * P };
    float batch[B * T * C], inp[B * N * PC], tgt[B * N * PC];
    float w[D * PC], b[D], pos[N * D], dy[B * N * D], enc[B * N * D];
    float dw[D * PC] = {0}, db[D] = {0}, dpos[N * D] = {0};
    ref_fill(batch, B * T * C, 1.0);
    ref_fill(w, D * PC, 1.0);
    ref_fill(b, D, 1.0);
    ref_fill(pos, N * D, 1.0);
    ref_fill(dy, B * N * D, 1.0);
    cpu_patches(inp, tgt, batch, NULL, B, N, P, C);
    /* Token n of window b is timesteps n*P .. n*P+P-1; its target is one
     * patch later. */
    assert_true(inp[(1 * N + 2) * PC + 4] == batch[(1 * T + 2 * P + 1) * C + 1]);
    assert_true(tgt[(1 * N + 2) * PC + 4] == batch[(1 * T + 3 * P + 1) * C + 1]);
    cpu_embed_forward(0, enc, inp, w, b, pos, B, N, PC, D);
    cpu_embed_backward(0, dw, db, dpos, dy, inp, B, N, PC, D);
    double ref_out[B * N * D];
    struct emb_ctx c = {B, N, PC, D, to_double(inp, B * N * PC), to_double(w, D * PC),
                        to_double(b, D), to_double(pos, N * D), to_double(dy, B * N * D),
                        ref_out};
    emb_scalar(&c);
    assert_close("embed", enc, ref_out, B * N * D, 1e-5);
    check_fd("embed dw", emb_scalar, &c, c.w, dw, D * PC, 1e-4);
    check_fd("embed db", emb_scalar, &c, c.b, db, D, 1e-4);
    check_fd("embed dpos", emb_scalar, &c, c.pos, dpos, N * D, 1e-4);
    free(c.inp), free(c.w), free(c.b), free(c.pos), free(c.dy);
}

/* ------------------------------------------------------------ loss */

struct loss_ctx {
    size_t n;
    double *pred, *tgt, *keep;
    enum model_loss loss;
    double delta;
};

static double loss_scalar(void *p)
{
    struct loss_ctx *c = p;
    return ref_loss(c->pred, c->tgt, c->keep, c->n, c->loss, c->delta);
}

static void check_loss(enum model_loss kind, float delta)
{
    enum { R = 3, K = 7 };
    float pred[R * K], tgt[R * K], dpred[R * K];
    ref_fill(pred, R * K, 1.0);
    ref_fill(tgt, R * K, 1.0);
    double got = cpu_loss(dpred, NULL, pred, tgt, NULL, R, K, 1, 1, kind, delta);
    struct loss_ctx c = {R * K, to_double(pred, R * K), to_double(tgt, R * K), NULL, kind,
                         delta};
    assert_float_equal(got, loss_scalar(&c), 1e-7);
    check_fd(kind == MODEL_LOSS_HUBER ? "huber dpred" : "mse dpred", loss_scalar, &c,
             c.pred, dpred, R * K, 1e-5);
    free(c.pred), free(c.tgt);
}

static void test_grad_loss(void **state)
{
    (void)state;
    check_loss(MODEL_LOSS_MSE, 1.0f);
    /* delta 0.3 with differences up to 2: both Huber branches are hit */
    check_loss(MODEL_LOSS_HUBER, 0.3f);
    float p[2] = {0.0f, 3.0f}, t[2] = {0.5f, 0.0f};
    /* by hand: (0.5 * 0.25 + 1 * (3 - 0.5)) / 2 */
    assert_float_equal(cpu_loss(NULL, NULL, p, t, NULL, 1, 2, 1, 1, MODEL_LOSS_HUBER, 1.0f),
                       (0.125 + 2.5) / 2.0, 1e-9);
    /* by hand: (0.25 + 9) / 2 */
    assert_float_equal(cpu_loss(NULL, NULL, p, t, NULL, 1, 2, 1, 1, MODEL_LOSS_MSE, 1.0f),
                       4.625, 1e-9);
}

/* ------------------------------------------------------------ whole model */

static void tiny_config(struct model_config *cfg)
{
    model_config_defaults(cfg);
    cfg->d_model = 8;
    cfg->n_layers = 2;
    cfg->n_heads = 2;
    cfg->patch_len = 2;
    cfg->channels = 3;
    cfg->context_patches = 4;
    cfg->micro_batch = 2;
}

struct model_ctx {
    const struct model_config *cfg;
    struct model_layout lay;
    double *p;
    const float *batch;
    const float *mask;
};

static double model_scalar(void *c_)
{
    struct model_ctx *c = c_;
    return ref_model_loss(c->cfg, &c->lay, c->p, c->batch, c->mask);
}

/* Random parameters (LayerNorm weights near 1) so that no gradient is zero
 * by symmetry. */
static void randomize_params(model_t *m)
{
    size_t nt;
    const struct model_tensor *t = model_tensors(m, &nt);
    float *p = model_params(m);
    ref_fill(p, model_param_count(m), 0.4);
    for (size_t i = 0; i < nt; i++) {
        size_t len = strlen(t[i].name);
        if (strstr(t[i].name, "ln") && strcmp(t[i].name + len - 2, "_w") == 0) {
            for (size_t k = 0; k < t[i].count; k++) {
                p[t[i].offset + k] += 1.0f;
            }
        }
    }
}

/* The model's loss and every tensor's gradient against the double
 * reference; mask (micro_batch, channels) for a masked model, else NULL. */
static void check_model_grads(enum model_loss loss, float delta, const float *mask)
{
    struct model_config cfg;
    model_t *m = NULL;
    tiny_config(&cfg);
    cfg.loss = loss;
    cfg.huber_delta = delta;
    cfg.masked = mask != NULL;
    int T = (cfg.context_patches + 1) * cfg.patch_len;
    size_t nb = (size_t)cfg.micro_batch * T * cfg.channels;
    float *batch = malloc(nb * sizeof *batch);
    ref_fill(batch, nb, 1.0);
    assert_int_equal(model_create(&cfg, testdev_cpu(), NULL, &m), DURE_OK);
    randomize_params(m);
    float floss;
    assert_int_equal(model_forward_backward(m, batch, mask, &floss), DURE_OK);
    size_t n = model_param_count(m), nt;
    const struct model_tensor *t = model_tensors(m, &nt);
    struct model_ctx c = {&cfg, {0}, to_double(model_params(m), n), batch, mask};
    assert_int_equal(model_layout_compute(&cfg, &c.lay), DURE_OK);
    double ref = model_scalar(&c);
    assert_float_equal(floss, ref, 1e-5 * ref);
    /* Tensor by tensor, so a wrong small gradient is not hidden by a large
     * one elsewhere. */
    for (size_t i = 0; i < nt; i++) {
        char what[64];
        snprintf(what, sizeof what, "model %s%s: %s", loss == MODEL_LOSS_HUBER ? "huber" : "mse",
                 mask ? " masked" : "", t[i].name);
        check_fd(what, model_scalar, &c, c.p + t[i].offset, model_grads(m) + t[i].offset,
                 t[i].count, 1e-4);
    }
    free(c.p);
    free(batch);
    model_destroy(m);
}

static void test_grad_model_mse(void **state)
{
    (void)state;
    check_model_grads(MODEL_LOSS_MSE, 1.0f, NULL);
}

static void test_grad_model_huber(void **state)
{
    (void)state;
    check_model_grads(MODEL_LOSS_HUBER, 0.5f, NULL);
}

/* tiny_config's 2 windows of 3 channels: window 0 lacks channel 1, window
 * 1 has only channel 1. */
static const float tiny_mask[2 * 3] = {1, 0, 1, 0, 1, 0};

static void test_grad_model_masked(void **state)
{
    (void)state;
    check_model_grads(MODEL_LOSS_MSE, 1.0f, tiny_mask);
    check_model_grads(MODEL_LOSS_HUBER, 0.5f, tiny_mask);
}

/* cpu_patches with a mask: masked inputs are 0 whatever the batch holds,
 * each token ends with its window's mask; targets are not touched. */
static void test_patches_masked(void **state)
{
    (void)state;
    enum { B = 2, N = 2, P = 2, C = 3, PC = P * C, PCI = PC + C, T = (N + 1) * P };
    float batch[B * T * C], inp[B * N * PCI], tgt[B * N * PC];
    for (int i = 0; i < B * T * C; i++) {
        batch[i] = (float)(i + 1);
    }
    batch[(1 * T + 1) * C + 0] = NAN; /* window 1 lacks channel 0 */
    cpu_patches(inp, tgt, batch, tiny_mask, B, N, P, C);
    for (int b = 0; b < B; b++) {
        for (int n = 0; n < N; n++) {
            const float *row = inp + (size_t)(b * N + n) * PCI;
            for (int k = 0; k < PC; k++) {
                float x = batch[(b * T + n * P) * C + k];
                assert_true(row[k] == (tiny_mask[b * C + k % C] != 0.0f ? x : 0.0f));
                assert_true(tgt[(b * N + n) * PC + k] == batch[(b * T + n * P) * C + PC + k]);
            }
            assert_memory_equal(row + PC, tiny_mask + b * C, C * sizeof(float));
        }
    }
}

/* cpu_loss with a mask: the mean over the unmasked elements only, their
 * gradient, 0 for the masked ones, row sums; nothing unmasked gives 0. */
static void test_loss_masked(void **state)
{
    (void)state;
    enum { B = 2, N = 2, P = 2, C = 3, R = B * N, K = P * C };
    float pred[R * K], tgt[R * K], dpred[R * K], rows[R];
    double keep[R * K];
    ref_fill(pred, R * K, 1.0);
    ref_fill(tgt, R * K, 1.0);
    for (int i = 0; i < R * K; i++) {
        keep[i] = tiny_mask[(i / K / N) * C + i % C];
    }
    for (int kind = 0; kind < 2; kind++) {
        enum model_loss l = kind ? MODEL_LOSS_HUBER : MODEL_LOSS_MSE;
        double got = cpu_loss(dpred, rows, pred, tgt, tiny_mask, R, K, N, C, l, 0.3f);
        struct loss_ctx c = {R * K, to_double(pred, R * K), to_double(tgt, R * K), keep, l,
                             0.3};
        assert_float_equal(got, loss_scalar(&c), 1e-7);
        check_fd(kind ? "masked huber dpred" : "masked mse dpred", loss_scalar, &c, c.pred,
                 dpred, R * K, 1e-5);
        double total = 0.0;
        for (int r = 0; r < R; r++) {
            total += rows[r];
        }
        /* (2 + 1) unmasked channels x 2 tokens x 2 timesteps */
        assert_float_equal(total / 12.0, got, 1e-6);
        for (int i = 0; i < R * K; i++) {
            if (keep[i] == 0.0) {
                assert_true(dpred[i] == 0.0f);
            }
        }
        free(c.pred), free(c.tgt);
    }
    static const float none[B * C] = {0};
    assert_true(cpu_loss(dpred, NULL, pred, tgt, none, R, K, N, C, MODEL_LOSS_MSE, 1.0f) == 0.0);
    for (int i = 0; i < R * K; i++) {
        assert_true(dpred[i] == 0.0f);
    }
}

/*
 * What a masked channel holds cannot change the loss, the window losses or
 * any gradient (the loader writes 0 there, but the model must not rely on
 * it): two batches that differ only in masked values, huge ones and a NaN,
 * give the same bits. The same change in an unmasked value does change the
 * loss, so the comparison can fail.
 */
static void test_masked_values_inert(void **state)
{
    (void)state;
    struct model_config cfg;
    model_t *m = NULL;
    tiny_config(&cfg);
    cfg.masked = 1;
    int T = (cfg.context_patches + 1) * cfg.patch_len, C = cfg.channels;
    size_t nb = (size_t)cfg.micro_batch * T * C;
    float *x = malloc(nb * sizeof *x), *y = malloc(nb * sizeof *y);
    ref_fill(x, nb, 1.0);
    memcpy(y, x, nb * sizeof *x);
    for (size_t i = 0; i < nb; i++) {
        size_t b = i / ((size_t)T * C), c = i % (size_t)C;
        if (tiny_mask[b * C + c] == 0.0f) {
            y[i] = i % 7 == 0 ? NAN : 1e6f * (float)(i % 5) - 2e6f;
        }
    }
    assert_int_equal(model_create(&cfg, testdev_cpu(), NULL, &m), DURE_OK);
    randomize_params(m);
    size_t n = model_param_count(m);
    float *gx = malloc(n * sizeof *gx), lx, ly, wx[2];
    assert_int_equal(model_forward_backward(m, x, tiny_mask, &lx), DURE_OK);
    memcpy(gx, model_grads(m), n * sizeof *gx);
    memcpy(wx, model_window_losses(m), sizeof wx);
    assert_int_equal(model_zero_grad(m), DURE_OK);
    assert_int_equal(model_forward_backward(m, y, tiny_mask, &ly), DURE_OK);
    assert_true(isfinite(lx) && lx > 0.0f);
    assert_memory_equal(&lx, &ly, sizeof lx);
    assert_memory_equal(wx, model_window_losses(m), sizeof wx);
    assert_memory_equal(gx, model_grads(m), n * sizeof *gx);
    /* The loss is the windows' losses weighted by their unmasked counts
     * (2 and 1 of 3 channels). */
    assert_float_equal(lx, (2.0 * wx[0] + 1.0 * wx[1]) / 3.0, 1e-6 * lx);
    /* An unmasked value (window 0, channel 0, the last timestep: a target)
     * does count. */
    y[(size_t)(T - 1) * C] += 1.0f;
    assert_int_equal(model_forward(m, y, tiny_mask, &ly), DURE_OK);
    assert_true(ly != lx);
    /* A masked model given no mask is refused. */
    assert_int_equal(model_forward(m, x, NULL, &ly), DURE_ERR_ARG);
    free(gx), free(x), free(y);
    model_destroy(m);
}

/* ------------------------------------------------------------ layout */

static void test_tensor_table(void **state)
{
    (void)state;
    struct model_config cfg;
    struct model_flops f;
    model_t *m = NULL;
    tiny_config(&cfg);
    assert_int_equal(model_create(&cfg, testdev_cpu(), NULL, &m), DURE_OK);
    size_t nt, D = 8, PC = 6;
    const struct model_tensor *t = model_tensors(m, &nt);
    assert_int_equal(nt, 3 + 12 * 2 + 4);
    /* by hand: embed 8*6+8, pos 4*8, 2 blocks of 12*64+13*8, lnf 16, head 6*8+6 */
    assert_int_equal(model_param_count(m), 56 + 32 + 2 * 872 + 16 + 54);
    model_flops_compute(&cfg, &f);
    assert_int_equal(f.params, model_param_count(m));
    size_t at = 0;
    for (size_t i = 0; i < nt; i++) {
        assert_int_equal(t[i].offset, at); /* contiguous, forward order */
        assert_int_equal(t[i].count, (size_t)t[i].shape[0] * t[i].shape[1]);
        assert_int_equal(t[i].decay, t[i].ndim == 2);
        at += t[i].count;
    }
    assert_int_equal(at, model_param_count(m));
    assert_string_equal(t[0].name, "embed_w");
    assert_int_equal(t[0].shape[0], D);
    assert_int_equal(t[0].shape[1], PC);
    assert_string_equal(t[3 + 12 + 2].name, "layer1.qkv_w");
    assert_int_equal(t[3 + 12 + 2].shape[0], 3 * D);
    assert_int_equal(t[3 + 12 + 2].layer, 1);
    assert_string_equal(t[nt - 2].name, "head_w");
    /* the flops formula by hand: 6 N + 12 L N_ctx D per token */
    assert_float_equal(f.per_token, 6.0 * f.params + 12.0 * 2 * 4 * 8, 1e-6);
    assert_float_equal(f.per_micro_batch, f.per_token * 2 * 4, 1e-3);
    /* init: LayerNorm weights 1, biases 0, matrices with std init_std */
    const float *p = model_params(m);
    assert_true(p[t[3].offset] == 1.0f);  /* layer0.ln1_w */
    assert_true(p[t[4].offset] == 0.0f);  /* layer0.ln1_b */
    double s2 = 0.0;
    for (size_t k = 0; k < t[5].count; k++) {
        s2 += (double)p[t[5].offset + k] * p[t[5].offset + k];
    }
    double std = sqrt(s2 / t[5].count);
    assert_true(std > 0.015 && std < 0.025);
    model_destroy(m);
}

struct hook_rec {
    size_t n, off[64], cnt[64];
    const float *grads;       /* the model's (host memory: the CPU model) */
    float *snap;              /* (param count) each range as it was when reported */
};

static dure_status_t record_ready(void *ctx, size_t offset, size_t count)
{
    struct hook_rec *r = ctx;
    r->off[r->n] = offset;
    r->cnt[r->n] = count;
    r->n++;
    if (r->snap) {
        memcpy(r->snap + offset, r->grads + offset, count * sizeof *r->snap);
    }
    return DURE_OK;
}

static dure_status_t refuse_ready(void *ctx, size_t offset, size_t count)
{
    dure_status_t st = DURE_OK;
    (void)ctx;
    DURE_FAIL(DURE_ERR_MPI, "bucket [%zu, +%zu) could not be reduced", offset, count);
out:
    return st;
}

static void test_grad_ready_hook(void **state)
{
    (void)state;
    struct model_config cfg;
    struct hook_rec rec = {0};
    model_t *m = NULL;
    float loss;
    tiny_config(&cfg);
    size_t nb = (size_t)cfg.micro_batch * (cfg.context_patches + 1) * cfg.patch_len * cfg.channels;
    float *batch = calloc(nb, sizeof *batch);
    for (size_t i = 0; i < nb; i++) {
        batch[i] = (float)((i * 37) % 17) / 8.0f - 1.0f;
    }
    assert_int_equal(model_create(&cfg, testdev_cpu(), NULL, &m), DURE_OK);
    const size_t n = model_param_count(m);
    struct model_layout lay;
    assert_int_equal(model_layout_compute(&cfg, &lay), DURE_OK);
    rec.grads = model_grads(m);
    rec.snap = calloc(n, sizeof *rec.snap);
    assert_non_null(rec.snap);
    model_set_grad_ready(m, record_ready, &rec);
    assert_int_equal(model_zero_grad(m), DURE_OK);
    assert_int_equal(model_forward_backward(m, batch, NULL, &loss), DURE_OK);
    /* head + final LN; each block from the last in four, as its weight
     * gradients are finished: MLP branch (from ln2_w), proj, qkv, ln1; then
     * the embeddings: descending ranges that tile the vector exactly */
    assert_int_equal(rec.n, 4 * cfg.n_layers + 2);
    size_t end = n;
    for (size_t i = 0; i < rec.n; i++) {
        assert_int_equal(rec.off[i] + rec.cnt[i], end);
        end = rec.off[i];
    }
    assert_int_equal(end, 0);
    static const enum model_layer_tensor from[4] = {LT_LN2_W, LT_PROJ_W, LT_QKV_W, LT_LN1_W};
    for (int l = cfg.n_layers - 1, i = 1; l >= 0; l--, i += 4) {
        for (int k = 0; k < 4; k++) {
            assert_int_equal(rec.off[i + k], model_layout_at(&lay, l, from[k]));
        }
    }
    /* the tail cuts are where block 0's first three ranges begin */
    size_t cuts[MODEL_TAIL_CUTS];
    assert_int_equal(model_grad_tail_cuts(m, cuts), 3);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(cuts[k], rec.off[rec.n - 3 - k]);
    }
    /* each range was final when reported: nothing wrote it afterwards */
    size_t nonzero = 0;
    for (size_t k = 0; k < n; k++) {
        assert_true(rec.snap[k] == rec.grads[k]);
        nonzero += rec.grads[k] != 0.0f;
    }
    assert_true(nonzero > n / 2);
    rec.n = 0;
    assert_int_equal(model_forward(m, batch, NULL, &loss), DURE_OK);
    assert_int_equal(rec.n, 0);
    dure_log_set_quiet(1);
    model_set_grad_ready(m, refuse_ready, NULL);
    assert_int_equal(model_forward_backward(m, batch, NULL, &loss), DURE_ERR_MPI);
    dure_log_set_quiet(0);
    model_destroy(m);
    free(rec.snap);
    free(batch);
}

/* ------------------------------------------------------------ unit source */

/*
 * A unit source as the ZeRO-3 driver uses one, on the host: each unit's
 * parameters copied from a full vector into a working buffer of one unit,
 * poisoned with NaN at params_done (so a model reading them later computes
 * NaN); gradients into a zeroed buffer of one unit, added to a full vector
 * at grads_done. The calls are logged to check the contract's order.
 */
struct lend {
    const size_t *bounds;
    const float *params;      /* (n) the owner's vector */
    float *grads;             /* (n) what grads_done collected */
    float *work, *gwork;      /* (largest unit) */
    int held, gheld;          /* unit lent now; -1: none */
    char log[256];
    int fail_unit;            /* grads_done of this unit fails; -1: never */
};

static void lend_log(struct lend *l, char what, int unit)
{
    size_t len = strlen(l->log);
    snprintf(l->log + len, sizeof l->log - len, " %c%d", what, unit);
}

static dure_status_t lend_begin(void *ctx, int backward)
{
    struct lend *l = ctx;
    l->log[0] = backward ? 'B' : 'F';
    l->log[1] = '\0';
    return DURE_OK;
}

static dure_status_t lend_params(void *ctx, int unit, enum model_pass pass, const void **p)
{
    struct lend *l = ctx;
    assert_int_equal(l->held, -1);
    l->held = unit;
    memcpy(l->work, l->params + l->bounds[unit],
           (l->bounds[unit + 1] - l->bounds[unit]) * sizeof(float));
    lend_log(l, pass == MODEL_PASS_FORWARD ? 'f' : 'b', unit);
    *p = l->work;
    return DURE_OK;
}

static dure_status_t lend_params_done(void *ctx, int unit, enum model_pass pass)
{
    struct lend *l = ctx;
    (void)pass;
    assert_int_equal(l->held, unit);
    for (size_t i = 0; i < l->bounds[unit + 1] - l->bounds[unit]; i++) {
        l->work[i] = NAN;
    }
    l->held = -1;
    return DURE_OK;
}

static dure_status_t lend_grads(void *ctx, int unit, float **g)
{
    struct lend *l = ctx;
    assert_int_equal(l->gheld, -1);
    l->gheld = unit;
    memset(l->gwork, 0, (l->bounds[unit + 1] - l->bounds[unit]) * sizeof(float));
    lend_log(l, 'g', unit);
    *g = l->gwork;
    return DURE_OK;
}

static dure_status_t lend_grads_done(void *ctx, int unit)
{
    dure_status_t st = DURE_OK;
    struct lend *l = ctx;
    assert_int_equal(l->gheld, unit);
    for (size_t i = l->bounds[unit]; i < l->bounds[unit + 1]; i++) {
        l->grads[i] += l->gwork[i - l->bounds[unit]];
    }
    l->gheld = -1;
    DURE_CHECK(unit != l->fail_unit, DURE_ERR_MPI, "unit %d's reduce-scatter failed", unit);
out:
    return st;
}

/* A model on lent units computes bitwise what the model on its own buffers
 * does, calling the slots in the documented order; model_param_init is
 * model_create's initialisation; a failing slot fails the step. */
static void test_unit_source(void **state)
{
    (void)state;
    struct model_config cfg;
    model_t *own = NULL, *lent = NULL;
    float loss_own = 0, loss_lent = 0;
    tiny_config(&cfg);
    cfg.n_layers = 3;
    size_t nb = (size_t)cfg.micro_batch * (cfg.context_patches + 1) * cfg.patch_len * cfg.channels;
    float *batch = malloc(nb * sizeof *batch);
    ref_fill(batch, nb, 1.0);
    assert_int_equal(model_create(&cfg, testdev_cpu(), NULL, &own), DURE_OK);
    size_t n = model_param_count(own);
    int U = 0;
    const size_t *bounds = model_units(own, &U);
    assert_int_equal(U, cfg.n_layers + 2);
    assert_int_equal(bounds[0], 0);
    assert_int_equal(bounds[U], n);
    size_t big = 0;
    for (int u = 0; u < U; u++) {
        assert_true(bounds[u] < bounds[u + 1]);
        big = bounds[u + 1] - bounds[u] > big ? bounds[u + 1] - bounds[u] : big;
    }

    /* model_param_init, in two pieces cut inside a tensor, is what
     * model_create wrote. */
    float *init = malloc(n * sizeof *init);
    assert_int_equal(model_param_init(&cfg, 0, 7, init), DURE_OK);
    assert_int_equal(model_param_init(&cfg, 7, n - 7, init + 7), DURE_OK);
    assert_memory_equal(init, model_params(own), n * sizeof *init);
    dure_log_set_quiet(1);
    assert_int_equal(model_param_init(&cfg, n - 1, 2, init), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    free(init);

    randomize_params(own);
    struct lend l = {.bounds = bounds, .params = model_params(own), .held = -1, .gheld = -1,
                     .fail_unit = -1};
    l.grads = calloc(n, sizeof *l.grads);
    l.work = malloc(big * sizeof *l.work);
    l.gwork = malloc(big * sizeof *l.gwork);
    struct model_unit_source src = {&l, lend_begin, lend_params, lend_params_done, lend_grads,
                                    lend_grads_done};
    assert_int_equal(model_create_units(&cfg, testdev_cpu(), NULL, &src, &lent), DURE_OK);
    assert_null(model_params(lent));
    assert_null(model_grads(lent));
    assert_int_equal(model_compute_bytes(lent), sizeof(float));

    assert_int_equal(model_forward_backward(own, batch, NULL, &loss_own), DURE_OK);
    assert_int_equal(model_forward_backward(lent, batch, NULL, &loss_lent), DURE_OK);
    assert_memory_equal(&loss_own, &loss_lent, sizeof loss_own);
    assert_memory_equal(model_grads(own), l.grads, n * sizeof *l.grads);
    assert_string_equal(l.log, "B f0 f1 f2 f3 f4 b4 g4 b3 g3 b2 g2 b1 g1 g0");

    assert_int_equal(model_forward(lent, batch, NULL, &loss_lent), DURE_OK);
    assert_memory_equal(&loss_own, &loss_lent, sizeof loss_own);
    assert_string_equal(l.log, "F f0 f1 f2 f3 f4");

    l.fail_unit = 2;
    dure_log_set_quiet(1);
    assert_int_equal(model_forward_backward(lent, batch, NULL, &loss_lent), DURE_ERR_MPI);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "unit 2's reduce-scatter failed"));

    model_destroy(lent);
    model_destroy(own);
    free(l.grads);
    free(l.work);
    free(l.gwork);
    free(batch);
}

/* ------------------------------------------------------------ bad configs */

static void expect_bad(const struct model_config *cfg, dure_status_t want,
                       const char *needle)
{
    model_t *m = (model_t *)cfg; /* must be reset to NULL on failure */
    dure_log_set_quiet(1);
    dure_status_t st = model_create(cfg, testdev_cpu(), NULL, &m);
    dure_log_set_quiet(0);
    assert_int_equal(st, want);
    assert_null(m);
    if (!strstr(dure_last_error(), needle)) {
        fail_msg("error '%s' does not mention '%s'", dure_last_error(), needle);
    }
}

static void test_bad_configs(void **state)
{
    (void)state;
    struct model_config cfg;
    tiny_config(&cfg);
    cfg.d_model = 130;
    cfg.n_heads = 4;
    expect_bad(&cfg, DURE_ERR_ARG, "model.d_model = 130 is not divisible by model.n_heads = 4");

    const char *keys[] = {"model.d_model", "model.n_layers", "model.n_heads",
                          "model.patch_len", "model.context_patches", "model.channels",
                          "optim.micro_batch"};
    for (int k = 0; k < 7; k++) {
        char want[64];
        tiny_config(&cfg);
        int *field[] = {&cfg.d_model, &cfg.n_layers, &cfg.n_heads, &cfg.patch_len,
                        &cfg.context_patches, &cfg.channels, &cfg.micro_batch};
        *field[k] = 0;
        snprintf(want, sizeof want, "%s = 0 must be positive", keys[k]);
        expect_bad(&cfg, DURE_ERR_ARG, want);
    }
    tiny_config(&cfg);
    cfg.huber_delta = -1.0f;
    cfg.loss = MODEL_LOSS_HUBER;
    expect_bad(&cfg, DURE_ERR_ARG, "model.huber_delta = -1");
    tiny_config(&cfg);
    cfg.init_std = NAN;
    expect_bad(&cfg, DURE_ERR_ARG, "model.init_std");
    tiny_config(&cfg);
    cfg.micro_batch = 1 << 20;
    cfg.context_patches = 1 << 12;
    expect_bad(&cfg, DURE_ERR_ARG, "optim.micro_batch * model.context_patches");

    /* 12 * D^2 * L parameters overflow 64-bit byte counts */
    tiny_config(&cfg);
    cfg.d_model = 1 << 28;
    cfg.n_heads = 1;
    cfg.n_layers = 1 << 30;
    expect_bad(&cfg, DURE_ERR_NOMEM, "overflow 64-bit byte counts");

    /* 6.6e12 parameters: representable, never allocatable here */
    tiny_config(&cfg);
    cfg.d_model = 32768;
    cfg.n_heads = 256;
    cfg.n_layers = 512;
    expect_bad(&cfg, DURE_ERR_NOMEM, "it needs an estimated");
    assert_non_null(strstr(dure_last_error(), "model.d_model = 32768"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_layernorm),
        cmocka_unit_test(test_grad_matmul),
        cmocka_unit_test(test_matmul_thread_split),
        cmocka_unit_test(test_grad_attention),
        cmocka_unit_test(test_grad_gelu),
        cmocka_unit_test(test_grad_embed),
        cmocka_unit_test(test_grad_loss),
        cmocka_unit_test(test_grad_model_mse),
        cmocka_unit_test(test_grad_model_huber),
        cmocka_unit_test(test_grad_model_masked),
        cmocka_unit_test(test_patches_masked),
        cmocka_unit_test(test_loss_masked),
        cmocka_unit_test(test_masked_values_inert),
        cmocka_unit_test(test_tensor_table),
        cmocka_unit_test(test_grad_ready_hook),
        cmocka_unit_test(test_unit_source),
        cmocka_unit_test(test_bad_configs),
    };
    return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
