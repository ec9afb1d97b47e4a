/*
 * tests/unit/test_model_cuda.c - the cuda backend against the CPU reference:
 * same initialisation, losses and gradients within bf16 tolerance, training
 * steps that track each other, AdamW on device memory equal to the host's.
 * Skips (with the reason printed) when no GPU is visible; the no-GPU error
 * path itself is checked everywhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/gpu.h"
#include "model/model.h"
#include "tests/support/gpuskip.h"
#include "model/optim.h"

static int skip_without_gpu(void) { return gpuskip_needed("CPU-vs-CUDA agreement"); }

static void config(struct model_config *cfg)
{
    model_config_defaults(cfg);
    cfg->d_model = 64;
    cfg->n_layers = 2;
    cfg->n_heads = 4;
    cfg->patch_len = 4;
    cfg->channels = 6;
    cfg->context_patches = 16;
    cfg->micro_batch = 4;
    cfg->init_std = 0.05f;
}

static float *make_batch(const struct model_config *cfg, double phase)
{
    size_t T = (size_t)(cfg->context_patches + 1) * cfg->patch_len;
    size_t n = (size_t)cfg->micro_batch * T * cfg->channels;
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) {
        size_t c = i % cfg->channels, t = (i / cfg->channels) % T;
        x[i] = (float)(sin(0.11 * (double)(c + 1) * (double)t + phase + (double)(i / (T * cfg->channels))) +
                       0.1 * cos(1.7 * (double)i));
    }
    return x;
}

static void test_no_gpu_is_a_clear_error(void **state)
{
    (void)state;
    struct model_config cfg;
    model_t *m = NULL;
    if (dure_gpu_available()) {
        skip();
    }
    config(&cfg);
    cfg.device = MODEL_DEVICE_CUDA;
    dure_log_set_quiet(1);
    dure_status_t st = model_create(&cfg, &m);
    dure_log_set_quiet(0);
    assert_null(m);
    assert_true(st == DURE_ERR_NODEV || st == DURE_ERR_UNSUPPORTED);
    assert_non_null(strstr(dure_last_error(), "run.device = cuda"));
    print_message("no GPU: %s\n", dure_last_error());
}

/* Relative L2 distance between a host vector and a device-side model's. */
static double rel_l2(const float *a, const float *b, size_t n)
{
    double d = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        s += (double)a[i] * a[i];
    }
    return sqrt(d / (s > 0.0 ? s : 1.0));
}

static void test_cpu_and_cuda_agree(void **state)
{
    (void)state;
    struct model_config cfg;
    model_t *cpu = NULL, *gpu = NULL;
    if (skip_without_gpu()) {
        skip();
    }
    config(&cfg);
    assert_int_equal(model_create(&cfg, &cpu), DURE_OK);
    cfg.device = MODEL_DEVICE_CUDA;
    assert_int_equal(model_create(&cfg, &gpu), DURE_OK);
    assert_int_equal(model_memory_kind(gpu), MODEL_MEM_CUDA);
    assert_non_null(model_cuda_stream(gpu));
    size_t n = model_param_count(cpu), nt;
    const struct model_tensor *t = model_tensors(cpu, &nt);
    float *hp = malloc(n * sizeof(float)), *hg = malloc(n * sizeof(float));
    assert_int_equal(model_copy_to_host(gpu, MODEL_BUF_PARAMS, 0, n, hp), DURE_OK);
    assert_memory_equal(hp, model_params(cpu), n * sizeof(float));

    float *batch = make_batch(&cfg, 0.3);
    float lc, lg, vc, vg;
    double base;
    assert_int_equal(model_baseline_loss(&cfg, batch, &base), DURE_OK);
    assert_int_equal(model_forward_backward(cpu, batch, &lc), DURE_OK);
    assert_int_equal(model_forward_backward(gpu, batch, &lg), DURE_OK);
    print_message("loss cpu %.6f cuda %.6f (baseline %.6f)\n", lc, lg, base);
    assert_float_equal(lg, lc, 0.02 * lc + 1e-3);
    assert_int_equal(model_forward(gpu, batch, &vg), DURE_OK);
    assert_int_equal(model_forward(cpu, batch, &vc), DURE_OK);
    assert_true(vg == lg); /* forward only: the same loss, bit for bit */
    assert_int_equal(model_copy_to_host(gpu, MODEL_BUF_GRADS, 0, n, hg), DURE_OK);
    double all = rel_l2(model_grads(cpu), hg, n);
    print_message("gradient relative L2 error, whole vector: %.4f\n", all);
    assert_true(all < 0.05);
    for (size_t i = 0; i < nt; i++) {
        double e = rel_l2(model_grads(cpu) + t[i].offset, hg + t[i].offset, t[i].count);
        if (!(e < 0.15)) {
            fail_msg("tensor %s: cpu and cuda gradients differ by %.3f (relative L2)",
                     t[i].name, e);
        }
    }

    /* Five AdamW steps each: the losses track each other. */
    struct optim_config oc = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
    optim_t *oc_cpu = NULL, *oc_gpu = NULL;
    assert_int_equal(optim_create(&oc, t, nt, 0, n, MODEL_MEM_HOST, &oc_cpu), DURE_OK);
    assert_int_equal(optim_create(&oc, t, nt, 0, n, MODEL_MEM_CUDA, &oc_gpu), DURE_OK);
    for (int s = 1; s <= 5; s++) {
        double sc, sg;
        assert_int_equal(optim_grad_sq_norm(oc_cpu, model_grads(cpu), &sc), DURE_OK);
        assert_int_equal(optim_grad_sq_norm(oc_gpu, model_grads(gpu), &sg), DURE_OK);
        assert_float_equal(sg, sc, 0.1 * sc);
        assert_int_equal(optim_adamw_update(oc_cpu, s, 1e-3f, optim_clip_scale(sqrt(sc), 1.0f),
                                            model_params(cpu), model_grads(cpu)), DURE_OK);
        assert_int_equal(optim_adamw_update(oc_gpu, s, 1e-3f, optim_clip_scale(sqrt(sg), 1.0f),
                                            model_params(gpu), model_grads(gpu)), DURE_OK);
        assert_int_equal(model_params_changed(gpu), DURE_OK);
        assert_int_equal(model_zero_grad(cpu), DURE_OK);
        assert_int_equal(model_zero_grad(gpu), DURE_OK);
        assert_int_equal(model_forward_backward(cpu, batch, &lc), DURE_OK);
        assert_int_equal(model_forward_backward(gpu, batch, &lg), DURE_OK);
        print_message("step %d: loss cpu %.6f cuda %.6f\n", s, lc, lg);
        assert_float_equal(lg, lc, 0.03 * lc + 1e-3);
    }
    optim_destroy(oc_cpu);
    optim_destroy(oc_gpu);
    free(hp), free(hg), free(batch);
    model_destroy(cpu);
    model_destroy(gpu);
}

static void test_cuda_deterministic(void **state)
{
    (void)state;
    struct model_config cfg;
    model_t *a = NULL, *b = NULL;
    if (skip_without_gpu()) {
        skip();
    }
    config(&cfg);
    cfg.device = MODEL_DEVICE_CUDA;
    cfg.deterministic = 1;
    assert_int_equal(model_create(&cfg, &a), DURE_OK);
    assert_int_equal(model_create(&cfg, &b), DURE_OK);
    float *batch = make_batch(&cfg, 1.0), la, lb;
    size_t n = model_param_count(a);
    float *ga = malloc(n * sizeof(float)), *gb = malloc(n * sizeof(float));
    assert_int_equal(model_forward_backward(a, batch, &la), DURE_OK);
    assert_int_equal(model_forward_backward(b, batch, &lb), DURE_OK);
    assert_true(la == lb);
    assert_int_equal(model_copy_to_host(a, MODEL_BUF_GRADS, 0, n, ga), DURE_OK);
    assert_int_equal(model_copy_to_host(b, MODEL_BUF_GRADS, 0, n, gb), DURE_OK);
    assert_memory_equal(ga, gb, n * sizeof(float));
    free(ga), free(gb), free(batch);
    model_destroy(a);
    model_destroy(b);
}

static void test_cuda_adamw_matches_host(void **state)
{
    (void)state;
    if (skip_without_gpu()) {
        skip();
    }
    enum { n = 1000 };
    static const struct model_tensor t[2] = {
        {.name = "w", .offset = 0, .count = 600, .ndim = 2, .shape = {20, 30}, .decay = 1},
        {.name = "b", .offset = 600, .count = 400, .ndim = 1, .shape = {400, 1}, .decay = 0},
    };
    struct optim_config oc = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
    float hp[n], hg[n], back[n];
    for (int i = 0; i < n; i++) {
        hp[i] = (float)sin(i * 0.37);
        hg[i] = (float)cos(i * 0.11);
    }
    optim_t *host = NULL, *dev = NULL;
    void *dp = NULL, *dg = NULL;
    assert_int_equal(optim_create(&oc, t, 2, 0, n, MODEL_MEM_HOST, &host), DURE_OK);
    /* the shard [300, 1000) on the device, cutting through "w" */
    assert_int_equal(optim_create(&oc, t, 2, 300, n - 300, MODEL_MEM_CUDA, &dev), DURE_OK);
    struct model_config cfg;
    model_t *m = NULL;
    config(&cfg);
    cfg.device = MODEL_DEVICE_CUDA;
    assert_int_equal(model_create(&cfg, &m), DURE_OK);
    /* borrow the model's device buffers as scratch for params and grads */
    dp = model_params(m);
    dg = model_grads(m);
    assert_int_equal(model_copy_from_host(m, MODEL_BUF_PARAMS, 0, n, hp), DURE_OK);
    assert_int_equal(model_copy_from_host(m, MODEL_BUF_GRADS, 0, n, hg), DURE_OK);
    for (int s = 1; s <= 3; s++) {
        assert_int_equal(optim_adamw_update(host, s, 1e-2f, 0.5f, hp, hg), DURE_OK);
        assert_int_equal(optim_adamw_update(dev, s, 1e-2f, 0.5f, (float *)dp + 300,
                                            (const float *)dg + 300), DURE_OK);
    }
    assert_int_equal(model_copy_to_host(m, MODEL_BUF_PARAMS, 0, n, back), DURE_OK);
    for (int i = 300; i < n; i++) {
        assert_float_equal(back[i], hp[i], 1e-6 * (1.0 + fabs(hp[i])));
    }
    double sq_dev, sq_host = 0.0;
    for (int i = 300; i < n; i++) {
        sq_host += (double)hg[i] * hg[i];
    }
    assert_int_equal(optim_grad_sq_norm(dev, (const float *)dg + 300, &sq_dev), DURE_OK);
    assert_float_equal(sq_dev, sq_host, 1e-12 * sq_host);
    optim_destroy(host);
    optim_destroy(dev);
    model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_gpu_is_a_clear_error),
        cmocka_unit_test(test_cpu_and_cuda_agree),
        cmocka_unit_test(test_cuda_deterministic),
        cmocka_unit_test(test_cuda_adamw_matches_host),
    };
    return cmocka_run_group_tests_name("model_cuda", tests, NULL, NULL);
}
