// model/kernels_cuda.cu - dure's CUDA kernels (see kernels_cuda.h). Each one
// mirrors the CPU reference kernel of the same name in kernels_cpu.c: bf16
// in and out, fp32 arithmetic, no atomics.
#include <cuda_bf16.h>

#include "model/acts.h"
#include "model/kernels_cpu.h"
#include "model/kernels_cuda.h"

typedef __nv_bfloat16 bf16;

namespace {

constexpr int kThreads = 256;
constexpr int kWarp = 32;
constexpr float kGeluS = 0.7978845608028654f;
constexpr float kGeluA = 0.044715f;

__device__ __forceinline__ float ld(const dure_bf16 *p, size_t i)
{
    return __bfloat162float(reinterpret_cast<const bf16 *>(p)[i]);
}

__device__ __forceinline__ void st(dure_bf16 *p, size_t i, float v)
{
    reinterpret_cast<bf16 *>(p)[i] = __float2bfloat16_rn(v);
}

// Butterfly sum: every lane gets the same value, in the same order each run.
__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = kWarp / 2; o > 0; o /= 2) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = kWarp / 2; o > 0; o /= 2) {
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    }
    return v;
}

unsigned grid_for(size_t n)
{
    size_t g = (n + kThreads - 1) / kThreads;
    return (unsigned)(g < (1u << 20) ? (g ? g : 1) : (1u << 20));
}

unsigned warp_rows_grid(int rows)
{
    int per_block = kThreads / kWarp;
    return (unsigned)((rows + per_block - 1) / per_block);
}

__global__ void cast_bf16(dure_bf16 *dst, const float *src, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        st(dst, i, src[i]);
    }
}

__global__ void patches(dure_bf16 *inp, float *tgt, const float *batch, int N, int PC,
                        size_t T_C, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / PC, k = i % PC, b = r / N, t = r % N;
        size_t src = b * T_C + t * PC + k;
        st(inp, i, batch[src]);
        tgt[i] = batch[src + PC];
    }
}

__global__ void patches_masked(dure_bf16 *inp, float *tgt, const float *batch,
                               const float *mask, int N, int C, int PC, size_t T_C,
                               size_t n)
{
    const int PCI = PC + C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / PCI, k = i % PCI, b = r / N, t = r % N;
        if (k >= (size_t)PC) {
            st(inp, i, mask[b * C + (k - PC)]);
            continue;
        }
        size_t src = b * T_C + t * PC + k;
        st(inp, i, mask[b * C + k % C] != 0.0f ? batch[src] : 0.0f);
        tgt[r * PC + k] = batch[src + PC];
    }
}

__global__ void fill_rows(dure_bf16 *out, const dure_bf16 *b, const dure_bf16 *pos,
                          int npos, int cols, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / cols, c = i % cols;
        float v = ld(b, c);
        if (pos) {
            v += ld(pos, (r % npos) * cols + c);
        }
        st(out, i, v);
    }
}

__global__ void fill_rows_f32(float *out, const dure_bf16 *b, int cols, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        out[i] = ld(b, i % cols);
    }
}

// partial[k * cols + c] = sum of x[r][c] over the rows of chunk k, in order.
__global__ void colsum_partial(float *partial, const dure_bf16 *x, int rows, int cols)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x, k = blockIdx.y;
    if (c >= cols) {
        return;
    }
    int r0 = (int)((long long)rows * k / MODEL_COLSUM_CHUNKS);
    int r1 = (int)((long long)rows * (k + 1) / MODEL_COLSUM_CHUNKS);
    float s = 0.0f;
    for (int r = r0; r < r1; r++) {
        s += ld(x, (size_t)r * cols + c);
    }
    partial[(size_t)k * cols + c] = s;
}

// dst[c] += sum over chunks k (in order) of partial[k * ld + c].
__global__ void colsum_finish(float *dst, const float *partial, int ld_, int cols)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) {
        return;
    }
    float s = 0.0f;
    for (int k = 0; k < MODEL_COLSUM_CHUNKS; k++) {
        s += partial[(size_t)k * ld_ + c];
    }
    dst[c] += s;
}

__global__ void pos_backward(float *dpos, const dure_bf16 *denc, int B, int N, int D)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)N * D) {
        return;
    }
    size_t n = i / D, c = i % D;
    float s = 0.0f;
    for (int b = 0; b < B; b++) {
        s += ld(denc, ((size_t)b * N + n) * D + c);
    }
    dpos[i] += s;
}

// One warp per row.
__global__ void layernorm_forward(dure_bf16 *out, float *mean, float *rstd,
                                  const dure_bf16 *inp, const dure_bf16 *w,
                                  const dure_bf16 *b, int rows, int D)
{
    int row = blockIdx.x * (blockDim.x / kWarp) + threadIdx.x / kWarp;
    int lane = threadIdx.x % kWarp;
    if (row >= rows) {
        return;
    }
    const dure_bf16 *x = inp + (size_t)row * D;
    float s = 0.0f;
    for (int c = lane; c < D; c += kWarp) {
        s += ld(x, c);
    }
    float m = warp_sum(s) / (float)D;
    float v = 0.0f;
    for (int c = lane; c < D; c += kWarp) {
        float d = ld(x, c) - m;
        v += d * d;
    }
    float rs = 1.0f / sqrtf(warp_sum(v) / (float)D + MODEL_LN_EPS);
    for (int c = lane; c < D; c += kWarp) {
        st(out, (size_t)row * D + c, (ld(x, c) - m) * rs * ld(w, c) + ld(b, c));
    }
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = rs;
    }
}

__global__ void layernorm_backward_inp(float *dinp, const dure_bf16 *dout,
                                       const dure_bf16 *inp, const dure_bf16 *w,
                                       const float *mean, const float *rstd, int rows,
                                       int D)
{
    int row = blockIdx.x * (blockDim.x / kWarp) + threadIdx.x / kWarp;
    int lane = threadIdx.x % kWarp;
    if (row >= rows) {
        return;
    }
    size_t base = (size_t)row * D;
    float m = mean[row], rs = rstd[row], sg = 0.0f, sgx = 0.0f;
    for (int c = lane; c < D; c += kWarp) {
        float dn = ld(dout, base + c) * ld(w, c);
        sg += dn;
        sgx += dn * (ld(inp, base + c) - m) * rs;
    }
    sg = warp_sum(sg) / (float)D;
    sgx = warp_sum(sgx) / (float)D;
    for (int c = lane; c < D; c += kWarp) {
        float xh = (ld(inp, base + c) - m) * rs;
        float g = ld(dout, base + c) * ld(w, c);
        dinp[base + c] += (g - sg - xh * sgx) * rs;
    }
}

// partial (chunks, 2D): [k][c] = sum dout * xhat, [k][D + c] = sum dout.
__global__ void layernorm_backward_params(float *partial, const dure_bf16 *dout,
                                          const dure_bf16 *inp, const float *mean,
                                          const float *rstd, int rows, int D)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x, k = blockIdx.y;
    if (c >= D) {
        return;
    }
    int r0 = (int)((long long)rows * k / MODEL_COLSUM_CHUNKS);
    int r1 = (int)((long long)rows * (k + 1) / MODEL_COLSUM_CHUNKS);
    float sw = 0.0f, sb = 0.0f;
    for (int r = r0; r < r1; r++) {
        size_t i = (size_t)r * D + c;
        float g = ld(dout, i);
        sw += g * (ld(inp, i) - mean[r]) * rstd[r];
        sb += g;
    }
    partial[(size_t)k * 2 * D + c] = sw;
    partial[(size_t)k * 2 * D + D + c] = sb;
}

__global__ void permute(dure_bf16 *y, const dure_bf16 *x, int ld_, int col0, int N, int H,
                        int hs, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t d = i % hs, t = (i / hs) % N, h = (i / ((size_t)hs * N)) % H;
        size_t b = i / ((size_t)hs * N * H);
        reinterpret_cast<bf16 *>(y)[i] =
            reinterpret_cast<const bf16 *>(x)[(b * N + t) * ld_ + col0 + h * hs + d];
    }
}

__global__ void unpermute(dure_bf16 *x, const dure_bf16 *y, int ld_, int col0, int N,
                          int H, int hs, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t d = i % hs, t = (i / hs) % N, h = (i / ((size_t)hs * N)) % H;
        size_t b = i / ((size_t)hs * N * H);
        reinterpret_cast<bf16 *>(x)[(b * N + t) * ld_ + col0 + h * hs + d] =
            reinterpret_cast<const bf16 *>(y)[i];
    }
}

// One warp per row; row r is query i = r % N, which sees keys 0..i.
__global__ void softmax_forward(dure_bf16 *att, const float *scores, int rows, int N)
{
    int row = blockIdx.x * (blockDim.x / kWarp) + threadIdx.x / kWarp;
    int lane = threadIdx.x % kWarp;
    if (row >= rows) {
        return;
    }
    int i = row % N;
    const float *s = scores + (size_t)row * N;
    float mx = -INFINITY;
    for (int j = lane; j <= i; j += kWarp) {
        mx = fmaxf(mx, s[j]);
    }
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int j = lane; j <= i; j += kWarp) {
        sum += expf(s[j] - mx);
    }
    float inv = 1.0f / warp_sum(sum);
    for (int j = lane; j < N; j += kWarp) {
        st(att, (size_t)row * N + j, j <= i ? expf(s[j] - mx) * inv : 0.0f);
    }
}

__global__ void softmax_backward(dure_bf16 *att, const float *dp, float scale, int rows,
                                 int N)
{
    int row = blockIdx.x * (blockDim.x / kWarp) + threadIdx.x / kWarp;
    int lane = threadIdx.x % kWarp;
    if (row >= rows) {
        return;
    }
    int i = row % N;
    size_t base = (size_t)row * N;
    float s = 0.0f;
    for (int j = lane; j <= i; j += kWarp) {
        s += ld(att, base + j) * dp[base + j];
    }
    s = warp_sum(s);
    for (int j = lane; j < N; j += kWarp) {
        float v = j <= i ? ld(att, base + j) * (dp[base + j] - s) * scale : 0.0f;
        st(att, base + j, v);
    }
}

__device__ __forceinline__ float gelu_tanh(float x)
{
    return tanhf(kGeluS * (x + kGeluA * x * x * x));
}

__global__ void gelu_forward(dure_bf16 *out, const dure_bf16 *inp, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float x = ld(inp, i);
        st(out, i, 0.5f * x * (1.0f + gelu_tanh(x)));
    }
}

__global__ void gelu_backward(dure_bf16 *dinp, const dure_bf16 *inp, const dure_bf16 *dout,
                              size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float x = ld(inp, i), t = gelu_tanh(x);
        float du = kGeluS * (1.0f + 3.0f * kGeluA * x * x);
        float g = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
        st(dinp, i, ld(dout, i) * g);
    }
}

__global__ void residual_forward(dure_bf16 *out, const dure_bf16 *a, const dure_bf16 *b,
                                 size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        st(out, i, ld(a, i) + ld(b, i));
    }
}

__global__ void loss_rows(float *row_loss, dure_bf16 *dpred, const float *pred,
                          const float *tgt, const float *mask, int rows, int cols, int N,
                          int C, int huber, float delta, float inv)
{
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) {
        return;
    }
    float s = 0.0f;
    for (int c = 0; c < cols; c++) {
        size_t i = (size_t)r * cols + c;
        if (mask && mask[(size_t)(r / N) * C + c % C] == 0.0f) {
            if (dpred) {
                st(dpred, i, 0.0f);
            }
            continue;
        }
        float d = pred[i] - tgt[i], g;
        if (huber) {
            float ad = fabsf(d);
            s += ad <= delta ? 0.5f * d * d : delta * (ad - 0.5f * delta);
            g = ad <= delta ? d : (d > 0.0f ? delta : -delta);
        } else {
            s += d * d;
            g = 2.0f * d;
        }
        if (dpred) {
            st(dpred, i, g * inv);
        }
    }
    row_loss[r] = s;
}

} // namespace

extern "C" {

cudaError_t cuk_cast_bf16(dure_bf16 *dst, const float *src, size_t n, cudaStream_t stream)
{
    cast_bf16<<<grid_for(n), kThreads, 0, stream>>>(dst, src, n);
    return cudaGetLastError();
}

cudaError_t cuk_patches(dure_bf16 *inp, float *tgt, const float *batch, const float *mask,
                        int B, int N, int P, int C, cudaStream_t stream)
{
    size_t PC = (size_t)P * C, n = (size_t)B * N * PC, T_C = (size_t)(N + 1) * P * C;
    if (mask) {
        size_t ni = (size_t)B * N * (PC + C);
        patches_masked<<<grid_for(ni), kThreads, 0, stream>>>(inp, tgt, batch, mask, N, C,
                                                              (int)PC, T_C, ni);
    } else {
        patches<<<grid_for(n), kThreads, 0, stream>>>(inp, tgt, batch, N, (int)PC, T_C, n);
    }
    return cudaGetLastError();
}

cudaError_t cuk_fill_rows(dure_bf16 *out, const dure_bf16 *b, const dure_bf16 *pos,
                          int npos, int rows, int cols, cudaStream_t stream)
{
    size_t n = (size_t)rows * cols;
    fill_rows<<<grid_for(n), kThreads, 0, stream>>>(out, b, pos, npos, cols, n);
    return cudaGetLastError();
}

cudaError_t cuk_fill_rows_f32(float *out, const dure_bf16 *b, int rows, int cols,
                              cudaStream_t stream)
{
    size_t n = (size_t)rows * cols;
    fill_rows_f32<<<grid_for(n), kThreads, 0, stream>>>(out, b, cols, n);
    return cudaGetLastError();
}

cudaError_t cuk_colsum_add(float *dst, float *partial, const dure_bf16 *x, int rows,
                           int cols, cudaStream_t stream)
{
    dim3 grid((unsigned)((cols + kThreads - 1) / kThreads), MODEL_COLSUM_CHUNKS);
    colsum_partial<<<grid, kThreads, 0, stream>>>(partial, x, rows, cols);
    colsum_finish<<<grid.x, kThreads, 0, stream>>>(dst, partial, cols, cols);
    return cudaGetLastError();
}

cudaError_t cuk_pos_backward(float *dpos, const dure_bf16 *denc, int B, int N, int D,
                             cudaStream_t stream)
{
    size_t n = (size_t)N * D;
    pos_backward<<<(unsigned)((n + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
        dpos, denc, B, N, D);
    return cudaGetLastError();
}

cudaError_t cuk_layernorm_forward(dure_bf16 *out, float *mean, float *rstd,
                                  const dure_bf16 *inp, const dure_bf16 *w,
                                  const dure_bf16 *b, int rows, int D,
                                  cudaStream_t stream)
{
    layernorm_forward<<<warp_rows_grid(rows), kThreads, 0, stream>>>(out, mean, rstd, inp,
                                                                     w, b, rows, D);
    return cudaGetLastError();
}

cudaError_t cuk_layernorm_backward(float *dinp, float *dw, float *db, float *partial,
                                   const dure_bf16 *dout, const dure_bf16 *inp,
                                   const dure_bf16 *w, const float *mean,
                                   const float *rstd, int rows, int D,
                                   cudaStream_t stream)
{
    layernorm_backward_inp<<<warp_rows_grid(rows), kThreads, 0, stream>>>(
        dinp, dout, inp, w, mean, rstd, rows, D);
    dim3 grid((unsigned)((D + kThreads - 1) / kThreads), MODEL_COLSUM_CHUNKS);
    layernorm_backward_params<<<grid, kThreads, 0, stream>>>(partial, dout, inp, mean,
                                                              rstd, rows, D);
    colsum_finish<<<grid.x, kThreads, 0, stream>>>(dw, partial, 2 * D, D);
    colsum_finish<<<grid.x, kThreads, 0, stream>>>(db, partial + D, 2 * D, D);
    return cudaGetLastError();
}

cudaError_t cuk_permute(dure_bf16 *y, const dure_bf16 *x, int ld_, int col0, int B, int N,
                        int H, int hs, cudaStream_t stream)
{
    size_t n = (size_t)B * N * H * hs;
    permute<<<grid_for(n), kThreads, 0, stream>>>(y, x, ld_, col0, N, H, hs, n);
    return cudaGetLastError();
}

cudaError_t cuk_unpermute(dure_bf16 *x, const dure_bf16 *y, int ld_, int col0, int B,
                          int N, int H, int hs, cudaStream_t stream)
{
    size_t n = (size_t)B * N * H * hs;
    unpermute<<<grid_for(n), kThreads, 0, stream>>>(x, y, ld_, col0, N, H, hs, n);
    return cudaGetLastError();
}

cudaError_t cuk_softmax_forward(dure_bf16 *att, const float *scores, int rows, int N,
                                cudaStream_t stream)
{
    softmax_forward<<<warp_rows_grid(rows), kThreads, 0, stream>>>(att, scores, rows, N);
    return cudaGetLastError();
}

cudaError_t cuk_softmax_backward(dure_bf16 *att, const float *dp, float scale, int rows,
                                 int N, cudaStream_t stream)
{
    softmax_backward<<<warp_rows_grid(rows), kThreads, 0, stream>>>(att, dp, scale, rows, N);
    return cudaGetLastError();
}

cudaError_t cuk_gelu_forward(dure_bf16 *out, const dure_bf16 *inp, size_t n,
                             cudaStream_t stream)
{
    gelu_forward<<<grid_for(n), kThreads, 0, stream>>>(out, inp, n);
    return cudaGetLastError();
}

cudaError_t cuk_gelu_backward(dure_bf16 *dinp, const dure_bf16 *inp, const dure_bf16 *dout,
                              size_t n, cudaStream_t stream)
{
    gelu_backward<<<grid_for(n), kThreads, 0, stream>>>(dinp, inp, dout, n);
    return cudaGetLastError();
}

cudaError_t cuk_residual_forward(dure_bf16 *out, const dure_bf16 *a, const dure_bf16 *b,
                                 size_t n, cudaStream_t stream)
{
    residual_forward<<<grid_for(n), kThreads, 0, stream>>>(out, a, b, n);
    return cudaGetLastError();
}

cudaError_t cuk_loss(float *row_loss, dure_bf16 *dpred, const float *pred,
                     const float *tgt, const float *mask, int rows, int cols, int N, int C,
                     int huber, float delta, float inv, cudaStream_t stream)
{
    loss_rows<<<(unsigned)((rows + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
        row_loss, dpred, pred, tgt, mask, rows, cols, N, C, huber, delta, inv);
    return cudaGetLastError();
}

} // extern "C"
