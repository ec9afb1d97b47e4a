/*
 * model/kernels_cpu.h - the CPU reference kernels, float32. Every reduction
 * runs in a fixed order (rows or columns are split between OpenMP threads,
 * never the summed dimension), so results do not depend on scheduling.
 * GEMMs go through OpenBLAS cblas_sgemm, which splits only output rows and
 * columns between its threads. Internal to model/ (and its tests).
 *
 * Threads: every kernel runs on the caller's OpenMP threads, GEMMs too:
 * they are split between those threads, each calling cblas_sgemm with
 * OpenBLAS single-threaded (bracket a step with cpu_blas_enter/leave), so
 * OpenBLAS's own thread pool never competes with OpenMP's for the cores.
 *
 * GEMM kernels take `fixed`: 0 splits each GEMM into one part per thread
 * (results bit-identical for a given thread count), 1 into parts of a fixed
 * size (bit-identical for any thread count; the model's deterministic mode).
 *
 * Conventions: rows = B * N tokens; weight matrices are (out, in), y = x W^T.
 * Backward functions ACCUMULATE (+=) into parameter gradients; input
 * gradients are overwritten unless the comment says "+=".
 */
#ifndef DURE_MODEL_KERNELS_CPU_H
#define DURE_MODEL_KERNELS_CPU_H

#include <stddef.h>

#include "model/model.h"

#define MODEL_LN_EPS 1e-5f

/* Make OpenBLAS single-threaded; returns its thread count for leave. */
int cpu_blas_enter(void);
void cpu_blas_leave(int saved);

/* Split the host batch (B, T, C) into token inputs inp and target
 * patches tgt (B*N, PC): token n is patch n, its target patch n + 1.
 * mask NULL: inp (B*N, PC) holds the patches. mask (B, C) of 0/1: inp
 * (B*N, PC + C), each row the patch with window b's masked channels set to
 * 0 (whatever the batch holds there), then mask[b] (model.h: Masks). */
void cpu_patches(float *inp, float *tgt, const float *batch, const float *mask,
                 int B, int N, int P, int C);

/* enc (B*N, D) = inp (B*N, PC) @ w (D, PC)^T + b (D) + pos[n] (N, D). */
void cpu_embed_forward(int fixed, float *enc, const float *inp, const float *w,
                       const float *b, const float *pos, int B, int N, int PC, int D);

/* dw += denc^T @ inp, db += sum over tokens, dpos[n] += sum over b. */
void cpu_embed_backward(int fixed, float *dw, float *db, float *dpos, const float *denc,
                        const float *inp, int B, int N, int PC, int D);

/* out (rows, D) = (inp - mean) * rstd * w + b; mean, rstd (rows) saved. */
void cpu_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                           const float *w, const float *b, int rows, int D);

/* dinp (rows, D) += ..., dw (D) += ..., db (D) += ... */
void cpu_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, const float *mean,
                            const float *rstd, int rows, int D);

/* out (rows, nout) = inp (rows, nin) @ w (nout, nin)^T + b (nout). */
void cpu_matmul_forward(int fixed, float *out, const float *inp, const float *w,
                        const float *b, int rows, int nin, int nout);

/* dinp (rows, nin) = dout @ w (skipped when dinp is NULL);
 * dw (nout, nin) += dout^T @ inp; db (nout) += column sums of dout. */
void cpu_matmul_backward(int fixed, float *dinp, float *dw, float *db, const float *dout,
                         const float *inp, const float *w, int rows, int nin, int nout);

/*
 * Causal multi-head attention. qkv (B*N, 3D): q of head h in columns
 * [h*hs, (h+1)*hs), k at D + h*hs, v at 2D + h*hs. att (B, H, N, N) gets
 * the softmax probabilities (zero above the diagonal), out (B*N, D) the
 * heads' outputs side by side. Scores are scaled by 1/sqrt(hs).
 */
void cpu_attention_forward(float *out, float *att, const float *qkv,
                           int B, int N, int D, int H);

/* dqkv (B*N, 3D) from dout (B*N, D); datt (B, H, N, N) is scratch. */
void cpu_attention_backward(float *dqkv, float *datt, const float *dout,
                            const float *qkv, const float *att,
                            int B, int N, int D, int H);

/* out = gelu(inp), tanh approximation, n elements. */
void cpu_gelu_forward(float *out, const float *inp, size_t n);

/* dinp = dout * gelu'(inp); dinp may alias dout. */
void cpu_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);

/* out = a + b, n elements. */
void cpu_residual_forward(float *out, const float *a, const float *b, size_t n);

/*
 * Mean loss of pred vs tgt (rows, cols) for `loss` (huber uses delta),
 * summed in double in row order. When dpred is not NULL it gets the
 * gradient of that mean with respect to pred; when row_loss is not NULL,
 * row_loss (rows) the sum of each row's terms. mask NULL: the mean over
 * all elements. mask (rows / N, C) of 0/1, with rows = B * N tokens of N
 * per window and cols = P * C laid out (P, C): element (r, k) counts only
 * where mask[(r / N) * C + k % C] is 1, the mean is over those, and the
 * others get dpred 0 (a mean of nothing is 0).
 */
double cpu_loss(float *dpred, float *row_loss, const float *pred, const float *tgt,
                const float *mask, int rows, int cols, int N, int C,
                enum model_loss loss, float delta);

#endif
