/*
 * tests/unit/test_device.c - the device layer: the pure choices (which
 * device a rank takes, a driver too old), the registry's errors, the host
 * reference loops by hand, and a third device kind registered here that
 * runs the model, the optimizer and the step's device calls through the
 * interface alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "device/device.h"
#include "common/sumtree.h"
#include "device/device_impl.h"
#include "model/model.h"
#include "model/optim.h"
#include "tests/support/testdev.h"

static void test_pick_one_device_per_rank(void **state)
{
    (void)state;
    int ord = -1;
    assert_int_equal(device_pick("cuda", 0, 1, 1, &ord), DURE_OK);
    assert_int_equal(ord, 0);
    assert_int_equal(device_pick("cuda", 3, 4, 8, &ord), DURE_OK);
    assert_int_equal(ord, 3);
    assert_int_equal(device_pick("cuda", 7, 8, 8, &ord), DURE_OK);
    assert_int_equal(ord, 7);
    dure_log_set_quiet(1);
    /* two ranks on a one-GPU node: refused, both numbers named */
    assert_int_equal(device_pick("cuda", 1, 2, 1, &ord), DURE_ERR_NODEV);
    assert_int_equal(ord, -1);
    assert_non_null(strstr(dure_last_error(), "2 rank(s) on this node but only 1 cuda"));
    assert_int_equal(device_pick("cuda", 0, 2, 1, &ord), DURE_ERR_NODEV);
    assert_int_equal(device_pick("cuda", 0, 9, 8, &ord), DURE_ERR_NODEV);
    assert_non_null(strstr(dure_last_error(), "9 rank(s) on this node but only 8"));
    assert_int_equal(device_pick("cuda", 2, 2, 4, &ord), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "local rank 2 of 2"));
    dure_log_set_quiet(0);
}

static void test_driver_too_old(void **state)
{
    (void)state;
    char why[512] = "";
    assert_int_equal(device_driver_too_old("CUDA", 13000, 13000, why, sizeof why), 0);
    assert_int_equal(device_driver_too_old("CUDA", 13020, 13000, why, sizeof why), 0);
    assert_string_equal(why, "");
    assert_int_equal(device_driver_too_old("CUDA", 12020, 13000, why, sizeof why), 1);
    assert_non_null(strstr(why, "supports CUDA 12.2, older than the CUDA 13.0 runtime"));
    assert_non_null(strstr(why, "update the driver"));
    assert_non_null(strstr(why, "CUDA_HOME and NVCC_GENCODE"));
}

static void test_registry(void **state)
{
    (void)state;
    device_t *d = NULL;
    size_t n = 0;
    const struct device_entry *const *reg = device_registry(&n);
    assert_true(n >= 1);
    assert_string_equal(reg[0]->name, "cpu");
    dure_log_set_quiet(1);
    assert_int_equal(device_open("tpu", 0, 1, &d), DURE_ERR_NODEV);
    assert_null(d);
    assert_non_null(strstr(dure_last_error(), "run.device = tpu: this dure has no such device "
                                              "(it was built with: cpu"));
    dure_log_set_quiet(0);
    assert_int_equal(device_open("cpu", 5, 8, &d), DURE_OK); /* cpu: shared by the node */
    assert_string_equal(device_kind(d), "cpu");
    assert_string_equal(device_compute(d), "cpu");
    assert_string_equal(device_comm_backend(d), "mpi");
    assert_null(device_stream(d));
    device_close(d);
    /* auto: an accelerator when one can be used, else the CPU */
    int gpus = 0;
    int have = device_kind_count("cuda", &gpus, 1) == DURE_OK;
    assert_int_equal(device_open("auto", 0, 1, &d), DURE_OK);
    assert_string_equal(device_kind(d), have ? "cuda" : "cpu");
    device_close(d);
    struct device_versions v;
    device_kind_versions("tpu", &v);
    assert_int_equal(v.built, 0);
    device_kind_versions("cpu", &v);
    assert_int_equal(v.built, 1);
}

static void test_host_loops_by_hand(void **state)
{
    (void)state;
    device_t *d = testdev_cpu();
    float acc[3] = {9, 9, 9}, g[3] = {1, 2, 3};
    assert_int_equal(device_accumulate(d, acc, g, 3, 1), DURE_OK);
    assert_true(acc[0] == 1 && acc[1] == 2 && acc[2] == 3);
    assert_int_equal(device_accumulate(d, acc, g, 3, 0), DURE_OK);
    assert_true(acc[0] == 2 && acc[1] == 4 && acc[2] == 6);

    /* AdamW, first step: m = 0.1 g', v = 0.05 g'^2, m^ = g', v^ = g'^2:
     * p -= lr (sign(g') + wd p) (eps 0), decay on [0, 1) only. */
    float p[2] = {1.0f, 1.0f}, gr[2] = {0.5f, -0.25f}, m[2] = {0, 0}, v[2] = {0, 0};
    struct device_segment seg[2] = {{0, 1, 1}, {1, 2, 0}};
    struct device_adamw h = {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 0.0f,
                             .bc1 = 0.1f, .bc2 = 0.05f, .grad_scale = 2.0f,
                             .weight_decay = 0.5f};
    assert_int_equal(device_adamw(d, &h, seg, 2, p, gr, m, v, 2), DURE_OK);
    assert_float_equal(p[0], 1.0 - 0.1 * (1.0 + 0.5), 1e-6);
    assert_float_equal(p[1], 1.0 + 0.1, 1e-6);
    assert_float_equal(m[0], 0.1, 1e-7);
    assert_float_equal(v[1], 0.05 * 0.25, 1e-8);

    /* squared norm over more than one chunk, in chunk order */
    size_t n = DEVICE_SQ_CHUNK + 3, k = device_sq_norm_chunks(n);
    assert_int_equal(k, 2);
    float *x = malloc(n * sizeof *x);
    double part[2], host[2], sq = 0;
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) {
        x[i] = i < DEVICE_SQ_CHUNK ? 0.5f : 2.0f;
    }
    assert_int_equal(device_sq_norm(d, x, n, part, host, &sq), DURE_OK);
    assert_true(host[0] == 0.25 * DEVICE_SQ_CHUNK && host[1] == 12.0);
    assert_true(sq == 0.25 * DEVICE_SQ_CHUNK + 12.0);
    free(x);
}

/* ---------------------------------------------------------------- a third device */

/*
 * "sandbox": a device kind of its own, registered only here. Its memory is
 * host memory underneath but declared its own (host_memory = 0), so the
 * dispatcher supplies no default and every touch of it must come through
 * a slot; allocations are filled with NaN, so code that relies on fresh
 * memory being zero (instead of device_zero) shows. Each slot counts its
 * calls and does its work with the host reference loops.
 */
enum { C_ALLOC, C_ZERO, C_TO_HOST, C_FROM_HOST, C_ACC, C_ADAMW, C_SQ, C_TILES, C_SYNC, C_COUNT };
static int calls[C_COUNT];

static enum device_probe sb_usable(int *count, char *why, size_t cap)
{
    (void)why;
    (void)cap;
    *count = 1;
    return DEVICE_PRESENT;
}

static dure_status_t sb_alloc(void *ctx, size_t bytes, void **p)
{
    (void)ctx;
    calls[C_ALLOC]++;
    size_t n = (bytes + sizeof(float) - 1) / sizeof(float);
    float *f = malloc(n * sizeof(float) + 1);
    for (size_t i = 0; f && i < n; i++) {
        f[i] = NAN;
    }
    *p = f;
    return f ? DURE_OK : DURE_ERR_NOMEM;
}

static void sb_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static void sb_destroy(void *ctx) { (void)ctx; }

static dure_status_t sb_to_host(void *ctx, void *host, const void *src, size_t bytes)
{
    (void)ctx;
    calls[C_TO_HOST]++;
    memcpy(host, src, bytes);
    return DURE_OK;
}

static dure_status_t sb_from_host(void *ctx, void *dst, const void *host, size_t bytes)
{
    (void)ctx;
    calls[C_FROM_HOST]++;
    memcpy(dst, host, bytes);
    return DURE_OK;
}

static dure_status_t sb_zero(void *ctx, void *p, size_t bytes)
{
    calls[C_ZERO]++;
    return device_host_zero(ctx, p, bytes);
}

static dure_status_t sb_acc(void *ctx, float *acc, const float *g, size_t n, int first)
{
    calls[C_ACC]++;
    return device_host_accumulate(ctx, acc, g, n, first);
}

static dure_status_t sb_adamw(void *ctx, const struct device_adamw *h,
                              const struct device_segment *seg, size_t n_seg, float *p,
                              const float *g, float *m, float *v, size_t n)
{
    calls[C_ADAMW]++;
    return device_host_adamw(ctx, h, seg, n_seg, p, g, m, v, n);
}

static dure_status_t sb_sq(void *ctx, const float *g, size_t n, double *partials)
{
    calls[C_SQ]++;
    return device_host_sq_norm_partials(ctx, g, n, partials);
}

static dure_status_t sb_tiles(void *ctx, const float *g, uint64_t base, const uint64_t *first,
                              const uint32_t *len, size_t ntiles, double *val)
{
    calls[C_TILES]++;
    return device_host_sq_tiles(ctx, g, base, first, len, ntiles, val);
}

static dure_status_t sb_sync(void *ctx)
{
    (void)ctx;
    calls[C_SYNC]++;
    return DURE_OK;
}

static struct device_i sb_iface = {
    .alloc = sb_alloc,
    .free = sb_free,
    .destroy = sb_destroy,
    .copy_to_host = sb_to_host,
    .copy_from_host = sb_from_host,
    .zero = sb_zero,
    .accumulate = sb_acc,
    .adamw = sb_adamw,
    .sq_norm_partials = sb_sq,
    .sq_tiles = sb_tiles,
    .sync = sb_sync,
};

static dure_status_t sb_create(int ordinal, const struct device_i **iface, void **ctx)
{
    (void)ordinal;
    *iface = &sb_iface;
    *ctx = NULL;
    return DURE_OK;
}

static const struct device_entry sandbox_entry = {
    .name = "sandbox",
    .compute = "cpu", /* its memory is host memory underneath: the cpu kernels run on it */
    .comm = "mpi",
    .host_memory = 0,
    .exclusive = 1,
    .usable = sb_usable,
    .create = sb_create,
};

static void config(struct model_config *cfg)
{
    model_config_defaults(cfg);
    cfg->d_model = 32;
    cfg->n_layers = 2;
    cfg->n_heads = 4;
    cfg->patch_len = 4;
    cfg->channels = 3;
    cfg->context_patches = 8;
    cfg->micro_batch = 2;
}

/*
 * The step's device calls, as train/train.c makes them at ZeRO stage 2
 * with two micro-batches: zero, forward/backward, accumulate, zero,
 * forward/backward, accumulate, squared norm (and exact mode's, in tiles:
 * *tree_sq), AdamW, refresh. Returns the loss of a forward after the
 * update; params (n) receives the parameters.
 */
static float run_step(device_t *d, float *params, double *tree_sq)
{
    struct model_config cfg;
    model_t *m = NULL;
    optim_t *opt = NULL;
    float *acc = NULL, loss = 0, after = 0;
    double sq = 0;
    config(&cfg);
    size_t nb = (size_t)cfg.micro_batch * (cfg.context_patches + 1) * cfg.patch_len *
                cfg.channels;
    float *batch = malloc(2 * nb * sizeof *batch);
    assert_non_null(batch);
    for (size_t i = 0; i < 2 * nb; i++) {
        batch[i] = (float)sin(0.05 * (double)i) + 0.01f * (float)(i % 7);
    }
    assert_int_equal(model_create(&cfg, d, NULL, &m), DURE_OK);
    size_t n = model_param_count(m), nt = 0;
    const struct model_tensor *t = model_tensors(m, &nt);
    struct optim_config oc = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
    assert_int_equal(optim_create(&oc, d, t, nt, 0, n, &opt), DURE_OK);
    assert_int_equal(device_alloc(d, n * sizeof(float), "the gradient sum", (void **)&acc),
                     DURE_OK);
    for (int j = 0; j < 2; j++) {
        assert_int_equal(model_zero_grad(m), DURE_OK);
        assert_int_equal(model_forward_backward(m, batch + (size_t)j * nb, NULL, &loss), DURE_OK);
        assert_int_equal(device_accumulate(d, acc, model_grads(m), n, j == 0), DURE_OK);
    }
    assert_int_equal(optim_grad_sq_norm(opt, acc, &sq), DURE_OK);
    assert_true(isfinite(sq) && sq > 0);
    struct tree_norm *tn = NULL;
    double front[TREE_FRONTIER_MAX];
    size_t k = 0;
    uint64_t bounds[2] = {0, n};
    assert_int_equal(tree_norm_create(n, 0, n, &tn), DURE_OK);
    assert_int_equal(optim_tree_tiles(opt, tn, acc), DURE_OK);
    assert_int_equal(tree_norm_frontier(tn, front, &k), DURE_OK);
    assert_int_equal(tree_norm_combine(n, 1, bounds, front, TREE_FRONTIER_MAX, tree_sq),
                     DURE_OK);
    tree_norm_free(tn);
    /* Another order of the same squares: equal to rounding. */
    assert_true(fabs(*tree_sq - sq) <= 1e-12 * sq);
    assert_int_equal(optim_adamw_update(opt, 1, 1e-2f, 0.5f, model_params(m), acc), DURE_OK);
    assert_int_equal(model_params_changed(m), DURE_OK);
    assert_int_equal(model_forward(m, batch, NULL, &after), DURE_OK);
    assert_int_equal(model_copy_to_host(m, MODEL_BUF_PARAMS, 0, n, params), DURE_OK);
    device_free(d, acc);
    optim_destroy(opt);
    model_destroy(m);
    free(batch);
    return after;
}

static void test_a_third_device_runs_the_step(void **state)
{
    (void)state;
    device_t *sb = NULL;
    struct model_config cfg;
    config(&cfg);
    size_t n = 0;
    {
        model_t *probe = NULL;
        assert_int_equal(model_create(&cfg, testdev_cpu(), NULL, &probe), DURE_OK);
        n = model_param_count(probe);
        model_destroy(probe);
    }
    float *p_cpu = malloc(n * sizeof(float)), *p_sb = malloc(n * sizeof(float));
    assert_non_null(p_cpu);
    assert_non_null(p_sb);
    assert_int_equal(device_open_entry(&sandbox_entry, 0, &sb), DURE_OK);
    memset(calls, 0, sizeof calls);
    double sq_cpu = 0, sq_sb = 0;
    float l_cpu = run_step(testdev_cpu(), p_cpu, &sq_cpu);
    float l_sb = run_step(sb, p_sb, &sq_sb);
    /* The same arithmetic through the interface: the same bits. */
    assert_true(l_cpu == l_sb);
    assert_memory_equal(&sq_cpu, &sq_sb, sizeof sq_cpu);
    assert_memory_equal(p_cpu, p_sb, n * sizeof(float));
    /* ... and it did go through the interface. */
    assert_int_equal(calls[C_ALLOC], 5);   /* params, grads, activations, optimizer, sum */
    assert_int_equal(calls[C_ACC], 2);
    assert_int_equal(calls[C_ADAMW], 1);   /* one call for every segment of the slice */
    assert_int_equal(calls[C_SQ], 1);
    assert_int_equal(calls[C_TILES], 1);
    assert_int_equal(calls[C_ZERO], 5);    /* grads, activations, moments, zero_grad x2 */
    /* the initial params, the segment table, the tiles' firsts and lengths */
    assert_int_equal(calls[C_FROM_HOST], 4);
    assert_int_equal(calls[C_TO_HOST], 3); /* the norm's partials, the tiles, the params */
    assert_int_equal(calls[C_SYNC], 2);    /* before freeing: the optimizer, the model */
    device_close(sb);
    free(p_cpu);
    free(p_sb);
}

static void test_a_device_missing_a_slot_is_refused(void **state)
{
    (void)state;
    device_t *d = NULL;
    sb_iface.adamw = NULL;
    dure_log_set_quiet(1);
    assert_int_equal(device_open_entry(&sandbox_entry, 0, &d), DURE_ERR_INTERNAL);
    dure_log_set_quiet(0);
    sb_iface.adamw = sb_adamw;
    assert_null(d);
    assert_non_null(strstr(dure_last_error(), "device kind sandbox has no adamw slot"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pick_one_device_per_rank),
        cmocka_unit_test(test_driver_too_old),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_host_loops_by_hand),
        cmocka_unit_test(test_a_third_device_runs_the_step),
        cmocka_unit_test(test_a_device_missing_a_slot_is_refused),
    };
    return cmocka_run_group_tests_name("device", tests, NULL, NULL);
}
