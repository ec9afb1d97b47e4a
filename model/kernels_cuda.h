/*
 * model/kernels_cuda.h - dure's own CUDA kernels, one per CPU reference
 * kernel of kernels_cpu.h, with bf16 storage and fp32 arithmetic. Included
 * from C (model/model_cuda.c) and implemented in model/kernels_cuda.cu.
 *
 * Every launcher enqueues on `stream` and returns cudaGetLastError(). No
 * kernel uses atomics: reductions are warp shuffles in a fixed tree or
 * loops in a fixed order, so results are bit-reproducible.
 *
 * Shapes as in kernels_cpu.h. bf16 buffers are typed dure_bf16 (the raw
 * 16 bits); gradients of parameters are fp32 and ACCUMULATED (+=).
 */
#ifndef DURE_MODEL_KERNELS_CUDA_H
#define DURE_MODEL_KERNELS_CUDA_H

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint16_t dure_bf16;

/* dst (n) bf16 = src (n) fp32, round to nearest even. */
cudaError_t cuk_cast_bf16(dure_bf16 *dst, const float *src, size_t n, cudaStream_t stream);

/* Split the batch (B, T, C) fp32 into token inputs inp bf16 and tgt (B*N,
 * PC) fp32 (target = the next patch), as cpu_patches: mask NULL, inp (B*N,
 * PC); mask (B, C) fp32 device, inp (B*N, PC + C), masked channels 0 then
 * the window's mask. */
cudaError_t cuk_patches(dure_bf16 *inp, float *tgt, const float *batch, const float *mask,
                        int B, int N, int P, int C, cudaStream_t stream);

/* out (rows, cols) = b (cols) broadcast over rows, plus pos[r % npos] (npos,
 * cols) when pos is not NULL. */
cudaError_t cuk_fill_rows(dure_bf16 *out, const dure_bf16 *b, const dure_bf16 *pos,
                          int npos, int rows, int cols, cudaStream_t stream);

/* out (rows, cols) fp32 = b (cols) broadcast over rows. */
cudaError_t cuk_fill_rows_f32(float *out, const dure_bf16 *b, int rows, int cols,
                              cudaStream_t stream);

/* partial (MODEL_COLSUM_CHUNKS, cols) = per row chunk column sums of x
 * (rows, cols); then dst (cols) += sum of the chunks in order. */
cudaError_t cuk_colsum_add(float *dst, float *partial, const dure_bf16 *x, int rows,
                           int cols, cudaStream_t stream);

/* dpos (N, D) += sum over b of denc (B, N, D), b in order. */
cudaError_t cuk_pos_backward(float *dpos, const dure_bf16 *denc, int B, int N, int D,
                             cudaStream_t stream);

cudaError_t cuk_layernorm_forward(dure_bf16 *out, float *mean, float *rstd,
                                  const dure_bf16 *inp, const dure_bf16 *w,
                                  const dure_bf16 *b, int rows, int D,
                                  cudaStream_t stream);

/* dinp (rows, D) fp32 += ... (the residual stream's gradient, kept in fp32);
 * dw, db (D) fp32 += ... (partial is scratch of MODEL_COLSUM_CHUNKS * 2D
 * floats). */
cudaError_t cuk_layernorm_backward(float *dinp, float *dw, float *db, float *partial,
                                   const dure_bf16 *dout, const dure_bf16 *inp,
                                   const dure_bf16 *w, const float *mean,
                                   const float *rstd, int rows, int D,
                                   cudaStream_t stream);

/* y (B, H, N, hs) = columns [col0 + h*hs, ...) of x (B*N, ld); and back. */
cudaError_t cuk_permute(dure_bf16 *y, const dure_bf16 *x, int ld, int col0, int B,
                        int N, int H, int hs, cudaStream_t stream);
cudaError_t cuk_unpermute(dure_bf16 *x, const dure_bf16 *y, int ld, int col0, int B,
                          int N, int H, int hs, cudaStream_t stream);

/* att (rows, N) bf16 = causal softmax of scores (rows, N) fp32, row r being
 * query r % N; zero above the diagonal. */
cudaError_t cuk_softmax_forward(dure_bf16 *att, const float *scores, int rows, int N,
                                cudaStream_t stream);

/* att (rows, N) <- dS = att * (dP - rowsum(att * dP)) * scale, in place. */
cudaError_t cuk_softmax_backward(dure_bf16 *att, const float *dp, float scale, int rows,
                                 int N, cudaStream_t stream);

cudaError_t cuk_gelu_forward(dure_bf16 *out, const dure_bf16 *inp, size_t n,
                             cudaStream_t stream);

/* dinp = dout * gelu'(inp); dinp may alias dout. */
cudaError_t cuk_gelu_backward(dure_bf16 *dinp, const dure_bf16 *inp, const dure_bf16 *dout,
                              size_t n, cudaStream_t stream);

cudaError_t cuk_residual_forward(dure_bf16 *out, const dure_bf16 *a, const dure_bf16 *b,
                                 size_t n, cudaStream_t stream);

/* row_loss (rows) = sum over the row of the loss terms (fp32, in order);
 * dpred (rows, cols) bf16 = gradient of the mean, each term's gradient
 * times inv = 1 / (elements averaged over) (not written when NULL). mask
 * NULL: every element counts; mask (rows / N, C) fp32 device: as cpu_loss,
 * only elements (r, k) with mask[(r / N) * C + k % C] = 1 (dpred 0 else). */
cudaError_t cuk_loss(float *row_loss, dure_bf16 *dpred, const float *pred,
                     const float *tgt, const float *mask, int rows, int cols, int N, int C,
                     int huber, float delta, float inv, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
