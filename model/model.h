/*
 * model/model.h - the network dure trains: a decoder-only transformer over
 * multivariate time series, on any device of the device layer
 * (device/device.h): float32 on the CPU, bf16 compute with fp32 master
 * weights on CUDA, behind one interface. The device names the model's
 * compute backend (model/backend.h); the model names no device.
 *
 * Data. A training window is T = (context_patches + 1) * patch_len timesteps
 * of C channels, already normalized. A micro-batch is B = micro_batch
 * windows, float32, row-major (B, T, C): batch[(b * T + t) * C + c]. Token n
 * (n = 0..N-1, N = context_patches) is patch n, the P * C values of
 * timesteps n*P .. n*P+P-1 flattened as (P, C); its target is patch n + 1.
 *
 * Masks. A mixture of datasets with different channel sets (dataio/loader.h)
 * lays every window into the union of the channels with a mask (B, C):
 * mask[b * C + c] = 1 when window b's dataset has channel c, 0 when not.
 * A model created with cfg->masked = 1 takes that mask with every batch:
 * each token's input is then its P * C values, a masked channel's set to 0
 * whatever the batch holds, followed by the window's C mask values (PCI =
 * P * C + C inputs per token, model_token_inputs), so the network knows
 * which zeros are missing channels; and the loss is the mean over the
 * unmasked elements only (a masked element's prediction gets no gradient).
 * With masked = 0 (one dataset, or datasets that share their channels)
 * there is no mask and PCI = P * C: the network and its bits are the same
 * as before masks existed.
 *
 * Network (D = d_model, H = n_heads, L = n_layers, PC = patch_len * C,
 * PCI = model_token_inputs: PC, or PC + C when masked):
 *   x = token_input @ embed_w^T + embed_b + pos[n]               (B, N, D)
 *   L pre-LayerNorm blocks:
 *     x = x + proj(causal_attention(qkv(ln1(x))))
 *     x = x + fc_proj(gelu(fc(ln2(x))))                 MLP width 4 * D
 *   pred = lnf(x) @ head_w^T + head_b                            (B, N, PC)
 *   loss = mean over B * N * PC values of (pred - target)^2          (mse)
 *          or of huber(pred - target; huber_delta)                (huber)
 *          (masked: over the N * P * sum(mask) unmasked values; 0 when a
 *          micro-batch has none)
 *   where huber(d) = d^2 / 2 for |d| <= delta, delta * (|d| - delta / 2)
 *   beyond it (PyTorch's HuberLoss). gelu is the tanh approximation.
 *
 * Parameters and gradients. Each is ONE flat float32 vector of
 * model_param_count() elements, allocated once by model_create; every tensor
 * is a contiguous slice of it (model_tensors()), with no padding between
 * slices. Slices are in forward order: embed_w, embed_b, pos, then layer 0's
 * ln1_w .. fc_proj_b, layer 1's, ..., then lnf_w, lnf_b, head_w, head_b.
 * Backward finishes gradients from the END of the vector towards its start,
 * so a gradient bucketer walks the tensor list in reverse.
 *
 * Where the buffers live: in the model's device's memory (device/device.h).
 * params and grads come from the allocator passed to model_create (the
 * communicator's in a run, so the gradient exchange reads them in place;
 * the device's own otherwise); activations from the device. On cuda the
 * forward and backward run on a bf16 copy of the params (device memory,
 * private to the model) that model_params_changed() refreshes.
 * model_params()/model_grads() point into that memory: the collectives of
 * device_comm_backend() take them directly. Host copies go through
 * model_copy_to_host / model_copy_from_host (memcpy on cpu). The batch
 * passed to the step functions is always host memory.
 *
 * Threads: one model handle is used by one thread at a time. The CPU path
 * runs on the calling thread's OpenMP team (omp_set_num_threads /
 * OMP_NUM_THREADS), GEMMs included: each step splits them between the
 * OpenMP threads and makes OpenBLAS single-threaded for its duration
 * (restoring the caller's OpenBLAS thread count after), so the two thread
 * pools never compete for the cores.
 *
 * Determinism: dure's own kernels (CPU and CUDA) never use atomics or an
 * order that depends on thread scheduling, in either mode, so two runs with
 * the same configuration, seed, data and thread count give bit-identical
 * parameters. deterministic = 1 goes further: on cpu the GEMMs are cut into
 * parts of a fixed size instead of one part per thread, so the bits do not
 * depend on the thread count either (OpenBLAS's Haswell kernels round
 * differently for a different split; this costs some GEMM speed); on cuda
 * it forbids cuBLAS reductions through atomics (CUBLAS_ATOMICS_NOT_ALLOWED).
 * Bit-identity holds for one build on one CPU/GPU model, not across
 * OpenBLAS/cuBLAS versions, kernels (OPENBLAS_CORETYPE) or architectures.
 */
#ifndef DURE_MODEL_MODEL_H
#define DURE_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/alloc.h"
#include "common/status.h"
#include "device/device.h"

enum model_loss {
    MODEL_LOSS_MSE = 0,
    MODEL_LOSS_HUBER,
};

/* The [model] section of the job spec plus what the run driver decides. */
struct model_config {
    int d_model;          /* D: width of the residual stream */
    int n_layers;         /* L: transformer blocks */
    int n_heads;          /* H: attention heads; must divide d_model */
    int patch_len;        /* P: timesteps per token */
    int context_patches;  /* N: tokens of context (and of targets) */
    int channels;         /* C: channels per timestep (resolved from data) */
    enum model_loss loss;
    float huber_delta;    /* > 0; used when loss == MODEL_LOSS_HUBER */
    float init_std;       /* > 0; std of the normal init of weight matrices */
    int micro_batch;      /* B: windows per forward/backward call */
    int deterministic;    /* 1: fixed-order reductions (see above) */
    int masked;           /* 1: batches come with a channel mask (see Masks) */
    uint64_t seed;        /* parameter initialisation seed ([run] seed) */
};

/* Defaults of the job spec ([model] section); channels = 0 (from the data),
 * micro_batch = 8, masked 0, seed 1234. */
void model_config_defaults(struct model_config *cfg);

/* PCI, the inputs of one token: patch_len * channels, plus channels when
 * cfg->masked (the mask values). */
int model_token_inputs(const struct model_config *cfg);

/* The elements a micro-batch's loss averages over: B * N * P * C, or with
 * a mask (B, C) N * P * (its number of ones). */
uint64_t model_loss_elems(const struct model_config *cfg, const float *mask);

/*
 * Check every field; DURE_ERR_ARG with a message naming the key
 * ("model.d_model = 130 is not divisible by model.n_heads = 4") on the
 * first bad one, DURE_ERR_NOMEM when the sizes overflow 64-bit byte counts.
 */
dure_status_t model_config_validate(const struct model_config *cfg);

/* One tensor of the flat vectors. Shapes are row-major, (out, in) for
 * weight matrices as in y = x @ W^T. */
struct model_tensor {
    char name[32];        /* "embed_w", "layer3.qkv_w", "head_b" */
    size_t offset;        /* first element in the flat vector */
    size_t count;         /* elements: shape[0] * shape[1] */
    int ndim;             /* 1 or 2 */
    int shape[2];         /* shape[1] == 1 when ndim == 1 */
    int layer;            /* -1 embeddings, 0..L-1 blocks, L final LN + head */
    int decay;            /* 1: AdamW weight decay applies (2-D tensors) */
};

typedef struct model model_t;

/*
 * Create a model on device `dev` (borrowed: it must outlive the model):
 * validate cfg, allocate parameters and gradients with `state` (NULL: the
 * device's own allocator; each one allocation, params first, then grads,
 * never reallocated; a collective allocator is called the same way on
 * every rank) and the activations for cfg->micro_batch windows from the
 * device, initialise the parameters from cfg->seed and zero the gradients.
 * Initialisation is identical on every device and independent of the
 * thread count. A device whose compute backend this build lacks fails with
 * DURE_ERR_UNSUPPORTED. A size that cannot be allocated fails with
 * DURE_ERR_NOMEM and a message giving the estimated bytes by component.
 * On failure *out is NULL.
 */
dure_status_t model_create(const struct model_config *cfg, device_t *dev,
                           const struct dure_allocator *state, model_t **out);

/* Free everything the model owns; NULL is a no-op. */
void model_destroy(model_t *m);

/* The configuration the model was created with (owned by the model). */
const struct model_config *model_get_config(const model_t *m);

/* Elements of the flat parameter (and gradient) vector. */
size_t model_param_count(const model_t *m);

/* The tensor table, in forward (= flat vector) order; owned by the model,
 * valid until model_destroy. */
const struct model_tensor *model_tensors(const model_t *m, size_t *n_tensors);

/* The tensor boundaries: offsets[0 .. n_tensors], offsets[t] the first
 * element of tensor t and offsets[n_tensors] the parameter count (the form
 * collectives/bucket.h plans buckets from). Owned by the model. */
const size_t *model_tensor_offsets(const model_t *m, int *n_tensors);

/* The device the model was created on. */
device_t *model_device(const model_t *m);

/*
 * The flat float32 parameter vector (fp32 master weights on cuda) and the
 * flat float32 gradient vector, model_param_count() elements each, owned by
 * the model. The pointers never change. Whoever writes the parameters (the
 * optimizer, an all-gather, a checkpoint load) must call
 * model_params_changed() before the next forward.
 */
float *model_params(model_t *m);
float *model_grads(model_t *m);

/* Refresh the compute copy (bf16 on cuda) from the master parameters,
 * queued on the device (the next forward runs after it); a no-op on cpu. */
dure_status_t model_params_changed(model_t *m);

/* Set every gradient to zero (queued on the device). */
dure_status_t model_zero_grad(model_t *m);

/*
 * Called during model_forward_backward each time the gradients of the flat
 * range [offset, offset + count) are final for this call, from the end of
 * the vector to its start: head + final LN, then for each block L-1 .. 0
 * four ranges as its backward finishes each weight gradient: its MLP
 * branch (ln2, fc, fcp: two thirds of the block's elements, final before
 * the attention branch's backward starts), proj, qkv, then ln1; then the
 * embeddings (model_grad_tail_cuts). The ranges cover the vector exactly
 * once per call, each one whole tensors. The call comes after the work
 * producing the range was queued on the device (device_stream); order
 * dependent work after it on that queue. A status other than DURE_OK
 * aborts the step and is returned by it.
 */
typedef dure_status_t (*model_grad_ready_fn)(void *ctx, size_t offset, size_t count);

/* Install (fn != NULL) or remove (fn == NULL) the gradient-ready hook. */
void model_set_grad_ready(model_t *m, model_grad_ready_fn fn, void *ctx);

/*
 * Where the gradient-ready hook's last ranges begin: the offsets of block
 * 0's qkv_w, proj_w and ln2_w, ascending, into cuts[0 .. 3); returns 3.
 * After them the backward has only block 0's attention and the
 * embeddings left to compute, so a gradient bucket that spans one of
 * these offsets waits for the later range with nothing left to hide its
 * exchange behind (collectives/bucket.h: comm_bucket_config.cuts).
 */
#define MODEL_TAIL_CUTS 3
int model_grad_tail_cuts(const model_t *m, size_t cuts[MODEL_TAIL_CUTS]);

/*
 * Units. The flat vector is cut into U = n_layers + 2 units, contiguous and
 * in flat-vector order: unit 0 the embeddings (embed_w, embed_b, pos), unit
 * 1 + l block l, unit L + 1 the final LayerNorm and the head. A unit's
 * forward reads that unit's parameters only; its backward reads that
 * unit's parameters and adds to that unit's gradients only (the
 * embeddings' backward reads no parameter). These are the ranges the
 * gradient-ready hook reports (a block's in four, its MLP branch first:
 * model_grad_ready_fn), and what ZeRO stage 3 gathers one at a time.
 *
 * bounds[0 .. U] (U = cfg->n_layers + 2 + 1 entries): unit u is
 * [bounds[u], bounds[u + 1]); bounds[U] is the parameter count.
 * DURE_ERR_NOMEM naming the sizes when a count overflows (cfg is otherwise
 * taken as given).
 */
dure_status_t model_unit_bounds(const struct model_config *cfg, size_t *bounds);

/* The model's unit boundaries (model_unit_bounds), *n_units = U; owned by
 * the model. */
const size_t *model_units(const model_t *m, int *n_units);

/*
 * Element i of the initial parameter vector for cfg, i in [offset, offset +
 * count), into host[0 .. count): what model_create writes, a function of
 * (cfg->seed, i) only, so the owner of lent parameters (a ZeRO-3 rank and
 * its shard) initialises them alone. DURE_ERR_ARG for a range outside the
 * vector or an invalid cfg.
 */
/* Elements the host stages per chunk when it initialises parameters (1 MiB
 * of floats): freed memory the C library keeps stays in the peak RSS, so
 * the staging is small whatever the model's size. */
#define MODEL_INIT_CHUNK ((size_t)1 << 18)
dure_status_t model_param_init(const struct model_config *cfg, size_t offset, size_t count,
                               float *host);

enum model_pass {
    MODEL_PASS_FORWARD = 0,
    MODEL_PASS_BACKWARD,
};

/*
 * A unit source lends the model each unit's parameters and gradient
 * buffer for the time it computes on that unit, so that whoever owns them
 * need not keep the whole vector in one place: the ZeRO-3 driver gathers a
 * unit's parameters from the ranks' shards before its forward and again
 * before its backward, and reduce-scatters its gradients when its backward
 * is done. The model knows nothing of shards or communicators; it calls
 * the slots below, in this order, from the thread running the step:
 *
 *   begin(backward)                       at the start of every forward
 *                                         (backward 0) or forward_backward (1)
 *   params(u, FORWARD) .. params_done(u, FORWARD)       u = 0 .. U-1
 *   then, with backward:
 *   params(u, BACKWARD), grads(u) .. params_done(u, BACKWARD), grads_done(u)
 *                                         u = U-1 .. 1, then grads(0) ..
 *                                         grads_done(0) (no parameters)
 *
 * params: *p = the unit's bounds[u + 1] - bounds[u] parameters in the
 *   model's compute dtype (model_compute_bytes: float32 on cpu, bf16 on
 *   cuda), laid out as the unit's slice of the flat vector, in the model's
 *   device memory. They must stay unchanged until params_done(u, pass);
 *   work the model queues on the device (device_stream) after params
 *   returns may read them until then.
 * params_done: the model has queued all its work reading them.
 * grads: *g = an fp32 buffer of the unit's count elements in device memory
 *   to which the backward ADDS the unit's gradients (the source zeroes it
 *   first where it wants the gradient of this pass alone).
 * grads_done: the work producing the unit's gradients is queued; order
 *   what reads them after it on the device's queue.
 * A status other than DURE_OK aborts the step and is returned by it; after
 * a failed step the next begin starts afresh.
 *
 * Either params or grads may be NULL: the model then allocates and uses
 * its own of that kind (ZeRO 2 lends gradients only). Lent buffers are not
 * the model's: model_params() / model_grads() return NULL for them,
 * model_zero_grad() leaves lent gradients alone, model_params_changed()
 * is a no-op for lent parameters, and the gradient-ready hook is not
 * called for lent gradients (grads_done is).
 */
struct model_unit_source {
    void *ctx;
    dure_status_t (*begin)(void *ctx, int backward);                    /* may be NULL */
    dure_status_t (*params)(void *ctx, int unit, enum model_pass pass, const void **p);
    dure_status_t (*params_done)(void *ctx, int unit, enum model_pass pass); /* may be NULL */
    dure_status_t (*grads)(void *ctx, int unit, float **g);
    dure_status_t (*grads_done)(void *ctx, int unit);                  /* may be NULL */
};

/*
 * model_create with a unit source (copied; src->ctx must outlive the
 * model): what the source lends is not allocated. src NULL is
 * model_create. Fails as model_create does.
 */
dure_status_t model_create_units(const struct model_config *cfg, device_t *dev,
                                 const struct dure_allocator *state,
                                 const struct model_unit_source *src, model_t **out);

/* Bytes per element of the compute dtype the model runs on: 4 (float32,
 * cpu) or 2 (bf16, cuda). */
size_t model_compute_bytes(const model_t *m);

/*
 * dst[0 .. count) in the compute dtype = src[0 .. count) float32, both
 * device memory, queued on the device: how a parameter owner fills what it
 * lends (a copy on float32 devices, a cast to bf16 on cuda).
 */
dure_status_t model_to_compute(model_t *m, void *dst, const float *src, size_t count);

/*
 * Forward and backward on one micro-batch. batch: host float32
 * (micro_batch, (context_patches + 1) * patch_len, channels), normalized.
 * mask: host float32 (micro_batch, channels) of 0 and 1 when the model is
 * masked (see Masks), NULL when not; anything else is DURE_ERR_ARG.
 * *loss = the mean loss over the micro-batch (host value, synchronous).
 * The gradient of that mean loss is ADDED to model_grads() (call
 * model_zero_grad once per optimizer step; gradients of k micro-batches sum,
 * so the caller scales by 1 / (k * world_size) for the mean). A non-finite
 * loss is returned as is (the caller's on_nan policy decides).
 */
dure_status_t model_forward_backward(model_t *m, const float *batch, const float *mask,
                                     float *loss);

/* Forward only (validation): *loss as above; gradients untouched. */
dure_status_t model_forward(model_t *m, const float *batch, const float *mask, float *loss);

/*
 * The loss of each window of the last forward (micro_batch floats, owned
 * by the model, overwritten by the next forward): its mean over its own
 * unmasked elements (N * P * C, or N * P * the window's ones), so the
 * windows of one dataset can be averaged into that dataset's loss. All
 * zero before the first forward.
 */
const float *model_window_losses(const model_t *m);

/*
 * The naive baseline on the same batch: predict each target patch by
 * repeating the last input patch (prediction for patch n + 1 = patch n),
 * scored with cfg->loss, over the unmasked elements when mask (micro_batch,
 * channels) is not NULL (0 when there are none). Host computation in
 * double; needs no model.
 */
dure_status_t model_baseline_loss(const struct model_config *cfg, const float *batch,
                                  const float *mask, double *loss);

enum model_buffer {
    MODEL_BUF_PARAMS = 0,
    MODEL_BUF_GRADS,
};

/* Copy elements [offset, offset + count) of the params or grads to or from
 * host memory `host` (count floats). Synchronous; memcpy on cpu. */
dure_status_t model_copy_to_host(model_t *m, enum model_buffer which,
                                 size_t offset, size_t count, float *host);
dure_status_t model_copy_from_host(model_t *m, enum model_buffer which,
                                   size_t offset, size_t count, const float *host);

#endif
