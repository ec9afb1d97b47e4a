/* model/kernels_cpu.c - CPU reference kernels (see kernels_cpu.h). */
#include "model/kernels_cpu.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#define GELU_S 0.7978845608028654f /* sqrt(2 / pi) */
#define GELU_A 0.044715f

/* This thread's share [*lo, *hi) of n items, in contiguous static blocks. */
static void thread_range(size_t n, size_t *lo, size_t *hi)
{
    size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
    *lo = n * id / nt;
    *hi = n * (id + 1) / nt;
}

/* Rows or columns of C per thread are multiples of this, so that no thread
 * gets a ragged edge of OpenBLAS's register tiles. */
#define GEMM_GRAIN 32

/* Deterministic runs cut C into parts of this size whatever the thread
 * count: some OpenBLAS kernels (Haswell's) round differently for a
 * different M or N, so the parts, not the threads, must fix the sums. */
#define GEMM_FIXED_PART 256

/* One single-threaded sgemm on rows (split_m) or columns [b, e) of C. */
static void sgemm_part(int split_m, int b, int e, enum CBLAS_TRANSPOSE opa,
                       enum CBLAS_TRANSPOSE opb, int M, int N, int K, float alpha,
                       const float *A, int lda, const float *B, int ldb, float beta,
                       float *C, int ldc)
{
    if (split_m) {
        /* rows b..e of op(A): A's rows (no transpose) or its columns */
        const float *a = opa == CblasTrans ? A + b : A + (size_t)b * lda;
        cblas_sgemm(CblasRowMajor, opa, opb, e - b, N, K, alpha, a, lda, B, ldb, beta,
                    C + (size_t)b * ldc, ldc);
    } else {
        const float *bb = opb == CblasTrans ? B + (size_t)b * ldb : B + b;
        cblas_sgemm(CblasRowMajor, opa, opb, M, e - b, K, alpha, A, lda, bb, ldb, beta,
                    C + b, ldc);
    }
}

/*
 * Row-major C (M, N) = alpha op(A) op(B) + beta C, split between the OpenMP
 * threads along the larger of M and N; each part is a single-threaded
 * cblas_sgemm over the full K. fixed = 0: one part per thread (fastest);
 * bit-identical for a given thread count. fixed = 1: parts of
 * GEMM_FIXED_PART, dealt to the threads; bit-identical for any thread count.
 */
static void sgemm_par(int fixed, int ta, int tb, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc)
{
    enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE opb = tb ? CblasTrans : CblasNoTrans;
    int split_m = M >= N, lim = split_m ? M : N;
    int grain = fixed ? GEMM_FIXED_PART : GEMM_GRAIN;
    size_t units = (size_t)(lim + grain - 1) / (size_t)grain;
    #pragma omp parallel
    {
        size_t lo, hi;
        thread_range(units, &lo, &hi);
        if (fixed) {
            for (size_t u = lo; u < hi; u++) {
                int b = (int)u * grain, e = b + grain < lim ? b + grain : lim;
                sgemm_part(split_m, b, e, opa, opb, M, N, K, alpha, A, lda, B, ldb, beta,
                           C, ldc);
            }
        } else if (lo < hi) {
            int b = (int)lo * grain, e = (int)hi * grain < lim ? (int)hi * grain : lim;
            sgemm_part(split_m, b, e, opa, opb, M, N, K, alpha, A, lda, B, ldb, beta, C,
                       ldc);
        }
    }
}

int cpu_blas_enter(void)
{
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
    return saved;
}

void cpu_blas_leave(int saved)
{
    openblas_set_num_threads(saved);
}

void cpu_patches(float *inp, float *tgt, const float *batch, const float *mask,
                 int B, int N, int P, int C)
{
    size_t PC = (size_t)P * C, T = (size_t)(N + 1) * P, PCI = PC + (size_t)C;
    /* Patches of one window are contiguous: inputs are its first N * PC
     * values, targets the N * PC values one patch later. */
    for (int b = 0; b < B; b++) {
        const float *w = batch + (size_t)b * T * C;
        memcpy(tgt + (size_t)b * N * PC, w + PC, (size_t)N * PC * sizeof(float));
        if (!mask) {
            memcpy(inp + (size_t)b * N * PC, w, (size_t)N * PC * sizeof(float));
            continue;
        }
        const float *mb = mask + (size_t)b * C;
        for (int n = 0; n < N; n++) {
            float *row = inp + ((size_t)b * N + n) * PCI;
            const float *x = w + (size_t)n * PC;
            /* A select, not a product: NaN * 0 would leak a masked NaN. */
            for (size_t k = 0; k < PC; k++) {
                row[k] = mb[k % C] != 0.0f ? x[k] : 0.0f;
            }
            memcpy(row + PC, mb, (size_t)C * sizeof(float));
        }
    }
}

/* db (cols) += column sums of x (rows, cols); columns split over threads,
 * rows summed in order. */
static void colsum_add(float *db, const float *x, int rows, int cols)
{
    #pragma omp parallel
    {
        size_t lo, hi;
        thread_range((size_t)cols, &lo, &hi);
        for (int r = 0; r < rows; r++) {
            const float *xr = x + (size_t)r * cols;
            #pragma omp simd
            for (size_t c = lo; c < hi; c++) {
                db[c] += xr[c];
            }
        }
    }
}

void cpu_embed_forward(int fixed, float *enc, const float *inp, const float *w,
                       const float *b, const float *pos, int B, int N, int PC, int D)
{
    int rows = B * N;
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *p = pos + (size_t)(r % N) * D;
        float *o = enc + (size_t)r * D;
        #pragma omp simd
        for (int c = 0; c < D; c++) {
            o[c] = b[c] + p[c];
        }
    }
    sgemm_par(fixed, 0, 1, rows, D, PC, 1.0f, inp, PC, w, PC, 1.0f, enc, D);
}

void cpu_embed_backward(int fixed, float *dw, float *db, float *dpos, const float *denc,
                        const float *inp, int B, int N, int PC, int D)
{
    int rows = B * N;
    sgemm_par(fixed, 1, 0, D, PC, rows, 1.0f, denc, D, inp, PC, 1.0f, dw, PC);
    colsum_add(db, denc, rows, D);
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *dp = dpos + (size_t)n * D;
        for (int b = 0; b < B; b++) {
            const float *g = denc + ((size_t)b * N + n) * D;
            #pragma omp simd
            for (int c = 0; c < D; c++) {
                dp[c] += g[c];
            }
        }
    }
}

void cpu_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                           const float *w, const float *b, int rows, int D)
{
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (size_t)r * D;
        float *o = out + (size_t)r * D;
        float s = 0.0f;
        #pragma omp simd reduction(+ : s)
        for (int c = 0; c < D; c++) {
            s += x[c];
        }
        float m = s / (float)D;
        float v = 0.0f;
        #pragma omp simd reduction(+ : v)
        for (int c = 0; c < D; c++) {
            float d = x[c] - m;
            v += d * d;
        }
        float rs = 1.0f / sqrtf(v / (float)D + MODEL_LN_EPS);
        #pragma omp simd
        for (int c = 0; c < D; c++) {
            o[c] = (x[c] - m) * rs * w[c] + b[c];
        }
        mean[r] = m;
        rstd[r] = rs;
    }
}

void cpu_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, const float *mean,
                            const float *rstd, int rows, int D)
{
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (size_t)r * D, *g = dout + (size_t)r * D;
        float *dx = dinp + (size_t)r * D;
        float m = mean[r], rs = rstd[r];
        float sg = 0.0f, sgx = 0.0f;
        #pragma omp simd reduction(+ : sg, sgx)
        for (int c = 0; c < D; c++) {
            float dn = g[c] * w[c];
            sg += dn;
            sgx += dn * (x[c] - m) * rs;
        }
        sg /= (float)D;
        sgx /= (float)D;
        #pragma omp simd
        for (int c = 0; c < D; c++) {
            float xh = (x[c] - m) * rs;
            dx[c] += (g[c] * w[c] - sg - xh * sgx) * rs;
        }
    }
    #pragma omp parallel
    {
        size_t lo, hi;
        thread_range((size_t)D, &lo, &hi);
        for (int r = 0; r < rows; r++) {
            const float *x = inp + (size_t)r * D, *g = dout + (size_t)r * D;
            float m = mean[r], rs = rstd[r];
            #pragma omp simd
            for (size_t c = lo; c < hi; c++) {
                dw[c] += g[c] * (x[c] - m) * rs;
                db[c] += g[c];
            }
        }
    }
}

void cpu_matmul_forward(int fixed, float *out, const float *inp, const float *w,
                        const float *b, int rows, int nin, int nout)
{
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        memcpy(out + (size_t)r * nout, b, (size_t)nout * sizeof(float));
    }
    sgemm_par(fixed, 0, 1, rows, nout, nin, 1.0f, inp, nin, w, nin, 1.0f, out, nout);
}

void cpu_matmul_backward(int fixed, float *dinp, float *dw, float *db, const float *dout,
                         const float *inp, const float *w, int rows, int nin, int nout)
{
    if (dinp) {
        sgemm_par(fixed, 0, 0, rows, nin, nout, 1.0f, dout, nout, w, nin, 0.0f, dinp, nin);
    }
    sgemm_par(fixed, 1, 0, nout, nin, rows, 1.0f, dout, nout, inp, nin, 1.0f, dw, nin);
    colsum_add(db, dout, rows, nout);
}

/* The per-(b, h) GEMMs are small: one (b, h) per OpenMP thread at a time. */
void cpu_attention_forward(float *out, float *att, const float *qkv,
                           int B, int N, int D, int H)
{
    int hs = D / H, ld = 3 * D;
    float scale = 1.0f / sqrtf((float)hs);
    #pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        const float *q = qkv + (size_t)b * N * ld + (size_t)h * hs;
        const float *k = q + D, *v = q + 2 * D;
        float *a = att + (size_t)bh * N * N;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, hs, scale,
                    q, ld, k, ld, 0.0f, a, N);
        for (int i = 0; i < N; i++) {
            float *ar = a + (size_t)i * N;
            float mx = ar[0];
            for (int j = 1; j <= i; j++) {
                mx = ar[j] > mx ? ar[j] : mx;
            }
            float s = 0.0f;
            for (int j = 0; j <= i; j++) {
                ar[j] = expf(ar[j] - mx);
                s += ar[j];
            }
            float inv = 1.0f / s;
            for (int j = 0; j <= i; j++) {
                ar[j] *= inv;
            }
            for (int j = i + 1; j < N; j++) {
                ar[j] = 0.0f;
            }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, hs, N, 1.0f,
                    a, N, v, ld, 0.0f, out + (size_t)b * N * D + (size_t)h * hs, D);
    }
}

void cpu_attention_backward(float *dqkv, float *datt, const float *dout,
                            const float *qkv, const float *att,
                            int B, int N, int D, int H)
{
    int hs = D / H, ld = 3 * D;
    float scale = 1.0f / sqrtf((float)hs);
    #pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        size_t base = (size_t)b * N * ld + (size_t)h * hs;
        const float *q = qkv + base, *k = q + D, *v = q + 2 * D;
        float *dq = dqkv + base, *dk = dq + D, *dv = dq + 2 * D;
        const float *a = att + (size_t)bh * N * N;
        const float *dy = dout + (size_t)b * N * D + (size_t)h * hs;
        float *da = datt + (size_t)bh * N * N;
        /* dA = dY V^T; dV = A^T dY */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, hs, 1.0f,
                    dy, D, v, ld, 0.0f, da, N);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, hs, N, 1.0f,
                    a, N, dy, D, 0.0f, dv, ld);
        /* softmax backward: dS = A * (dA - rowsum(A * dA)), times the scale */
        for (int i = 0; i < N; i++) {
            const float *ar = a + (size_t)i * N;
            float *dr = da + (size_t)i * N;
            float s = 0.0f;
            for (int j = 0; j <= i; j++) {
                s += ar[j] * dr[j];
            }
            for (int j = 0; j <= i; j++) {
                dr[j] = ar[j] * (dr[j] - s) * scale;
            }
            for (int j = i + 1; j < N; j++) {
                dr[j] = 0.0f;
            }
        }
        /* dQ = dS K; dK = dS^T Q */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, hs, N, 1.0f,
                    da, N, k, ld, 0.0f, dq, ld);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, hs, N, 1.0f,
                    da, N, q, ld, 0.0f, dk, ld);
    }
}

/* The clamps below are float compares; GCC if-converts them (and so
 * vectorizes the GELU loops) only when it may assume compares do not trap.
 * That changes no result: dure never enables floating-point traps. */
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")

static inline float clampf(float x, float lo, float hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/*
 * exp(x) as 2^k * p(r), k = round(x / ln 2), r = x - k ln 2 (Cody-Waite),
 * p the degree-6 Taylor polynomial: relative error below 2e-7 on the
 * clamped range. Written in plain arithmetic (rounding by the 1.5 * 2^23
 * trick, 2^k assembled in the exponent bits) so that `omp simd` loops
 * vectorize it, which libm's tanhf does not allow.
 */
static inline float exp_approx(float x)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    x = clampf(x, -87.0f, 87.0f);
    float kf = x * 1.44269504088896341f + magic;
    int32_t kbits;
    memcpy(&kbits, &kf, sizeof kbits);
    kf -= magic;
    float r = x - kf * 0.693145751953125f - kf * 1.428606765330187e-06f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 +
              r * (1.0f / 120 + r * (1.0f / 720))))));
    /* Unsigned: for NaN input kbits is arbitrary and a signed shift would
     * overflow (undefined); the bits are the same for every finite x. */
    uint32_t ebits = ((uint32_t)kbits - 0x4B400000u + 127u) << 23;
    float scale;
    memcpy(&scale, &ebits, sizeof scale);
    return p * scale;
}

/* tanh(u) = 1 - 2 / (exp(2u) + 1), absolute error below 3e-7; |u| >= 9
 * rounds to +-1 in float anyway. */
static inline float tanh_approx(float u)
{
    u = clampf(u, -9.0f, 9.0f);
    return 1.0f - 2.0f / (exp_approx(2.0f * u) + 1.0f);
}

void cpu_gelu_forward(float *out, const float *inp, size_t n)
{
    #pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float t = tanh_approx(GELU_S * (x + GELU_A * x * x * x));
        out[i] = 0.5f * x * (1.0f + t);
    }
}

void cpu_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n)
{
    #pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float t = tanh_approx(GELU_S * (x + GELU_A * x * x * x));
        float du = GELU_S * (1.0f + 3.0f * GELU_A * x * x);
        float g = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
        dinp[i] = dout[i] * g;
    }
}

#pragma GCC pop_options

void cpu_residual_forward(float *out, const float *a, const float *b, size_t n)
{
    #pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        out[i] = a[i] + b[i];
    }
}

double cpu_loss(float *dpred, float *row_loss, const float *pred, const float *tgt,
                const float *mask, int rows, int cols, int N, int C,
                enum model_loss loss, float delta)
{
    size_t n = (size_t)rows * cols, kept = n;
    double sum = 0.0, row_sum = 0.0;
    if (mask) {
        kept = 0;
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < C; c++) {
                kept += mask[(size_t)(r / N) * C + c] != 0.0f;
            }
        }
        kept *= (size_t)(cols / C);
    }
    float inv = kept ? 1.0f / (float)kept : 0.0f;
    for (size_t i = 0; i < n; i++) {
        if (row_loss && i % (size_t)cols == 0) {
            row_sum = 0.0;
        }
        if (mask && mask[(i / (size_t)cols / (size_t)N) * C + i % (size_t)C] == 0.0f) {
            if (dpred) {
                dpred[i] = 0.0f;
            }
        } else {
            float d = pred[i] - tgt[i];
            float g;
            double term;
            if (loss == MODEL_LOSS_HUBER) {
                float ad = fabsf(d);
                if (ad <= delta) {
                    term = 0.5 * (double)d * d;
                    g = d;
                } else {
                    term = (double)delta * (ad - 0.5 * delta);
                    g = d > 0.0f ? delta : -delta;
                }
            } else {
                term = (double)d * d;
                g = 2.0f * d;
            }
            sum += term;
            row_sum += term;
            if (dpred) {
                dpred[i] = g * inv;
            }
        }
        if (row_loss && i % (size_t)cols == (size_t)cols - 1) {
            row_loss[i / (size_t)cols] = (float)row_sum;
        }
    }
    return kept ? sum / (double)kept : 0.0;
}
