/*
 * tests/unit/test_model_cuda.c - the cuda backend against the CPU reference:
 * same initialisation, losses and gradients within bf16 tolerance (a 2-layer
 * and a 12-layer model: the residual stream's gradient accumulates in fp32,
 * so depth must not widen the gap), training steps that track each other,
 * and bit-identical repeats. Skips (with the reason printed) when no GPU is
 * visible, fails then under DURE_REQUIRE_GPU=1 (make gpu-check); the no-GPU
 * error path itself is checked everywhere.
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

#include "model/model.h"
#include "model/optim.h"
#include "tests/support/testdev.h"

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
    device_t *dev = NULL;
    int n = 0;
    if (device_kind_count("cuda", &n, 1) == DURE_OK) {
        skip();
    }
    dure_log_set_quiet(1);
    dure_status_t st = device_open("cuda", 0, 1, &dev);
    dure_log_set_quiet(0);
    assert_null(dev);
    assert_int_equal(st, DURE_ERR_NODEV);
    assert_non_null(strstr(dure_last_error(), "use run.device = cpu"));
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

/* The cuda model against the cpu one on the same batch and steps; masked:
 * a masked model (model.h: Masks), every third channel of each window off. */
static void check_agreement(int n_layers, int masked)
{
    struct model_config cfg;
    model_t *cpu = NULL, *gpu = NULL;
    float *mask = NULL;
    device_t *dev = testdev_cuda();
    if (!dev) {
        skip();
    }
    config(&cfg);
    cfg.n_layers = n_layers;
    cfg.masked = masked;
    if (masked) {
        size_t nm = (size_t)cfg.micro_batch * cfg.channels;
        mask = malloc(nm * sizeof *mask);
        for (size_t i = 0; i < nm; i++) {
            mask[i] = (i / (size_t)cfg.channels + i) % 3 != 0;
        }
    }
    assert_int_equal(model_create(&cfg, testdev_cpu(), NULL, &cpu), DURE_OK);
    assert_int_equal(model_create(&cfg, dev, NULL, &gpu), DURE_OK);
    assert_true(model_device(gpu) == dev);
    size_t n = model_param_count(cpu), nt;
    const struct model_tensor *t = model_tensors(cpu, &nt);
    float *hp = malloc(n * sizeof(float)), *hg = malloc(n * sizeof(float));
    assert_int_equal(model_copy_to_host(gpu, MODEL_BUF_PARAMS, 0, n, hp), DURE_OK);
    assert_memory_equal(hp, model_params(cpu), n * sizeof(float));

    float *batch = make_batch(&cfg, 0.3);
    float lc, lg, vc, vg;
    double base;
    assert_int_equal(model_baseline_loss(&cfg, batch, mask, &base), DURE_OK);
    assert_int_equal(model_forward_backward(cpu, batch, mask, &lc), DURE_OK);
    assert_int_equal(model_forward_backward(gpu, batch, mask, &lg), DURE_OK);
    print_message("%d layers: loss cpu %.6f cuda %.6f (baseline %.6f)\n", n_layers, lc, lg,
                  base);
    assert_float_equal(lg, lc, 0.02 * lc + 1e-3);
    assert_int_equal(model_forward(gpu, batch, mask, &vg), DURE_OK);
    assert_int_equal(model_forward(cpu, batch, mask, &vc), DURE_OK);
    assert_true(vg == lg); /* forward only: the same loss, bit for bit */
    assert_int_equal(model_copy_to_host(gpu, MODEL_BUF_GRADS, 0, n, hg), DURE_OK);
    double all = rel_l2(model_grads(cpu), hg, n);
    print_message("%d layers: gradient relative L2 error, whole vector: %.4f\n", n_layers,
                  all);
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
    assert_int_equal(optim_create(&oc, testdev_cpu(), t, nt, 0, n, &oc_cpu), DURE_OK);
    assert_int_equal(optim_create(&oc, dev, t, nt, 0, n, &oc_gpu), DURE_OK);
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
        assert_int_equal(model_forward_backward(cpu, batch, mask, &lc), DURE_OK);
        assert_int_equal(model_forward_backward(gpu, batch, mask, &lg), DURE_OK);
        print_message("%d layers, step %d: loss cpu %.6f cuda %.6f\n", n_layers, s, lc, lg);
        assert_float_equal(lg, lc, 0.03 * lc + 1e-3);
    }
    optim_destroy(oc_cpu);
    optim_destroy(oc_gpu);
    if (masked) {
        /* The window losses (last forward: the same parameters' batch). */
        const float *wc = model_window_losses(cpu), *wg = model_window_losses(gpu);
        for (int b = 0; b < cfg.micro_batch; b++) {
            assert_float_equal(wg[b], wc[b], 0.03 * wc[b] + 1e-3);
        }
    }
    free(hp), free(hg), free(batch), free(mask);
    model_destroy(cpu);
    model_destroy(gpu);
}

static void test_cpu_and_cuda_agree(void **state)
{
    (void)state;
    check_agreement(2, 0);
}

static void test_cpu_and_cuda_agree_masked(void **state)
{
    (void)state;
    check_agreement(2, 1);
}

static void test_cpu_and_cuda_agree_deep(void **state)
{
    (void)state;
    check_agreement(12, 0);
}

static void test_cuda_deterministic(void **state)
{
    (void)state;
    struct model_config cfg;
    model_t *a = NULL, *b = NULL;
    device_t *dev = testdev_cuda();
    if (!dev) {
        skip();
    }
    config(&cfg);
    cfg.deterministic = 1;
    assert_int_equal(model_create(&cfg, dev, NULL, &a), DURE_OK);
    assert_int_equal(model_create(&cfg, dev, NULL, &b), DURE_OK);
    float *batch = make_batch(&cfg, 1.0), la, lb;
    size_t n = model_param_count(a);
    float *ga = malloc(n * sizeof(float)), *gb = malloc(n * sizeof(float));
    assert_int_equal(model_forward_backward(a, batch, NULL, &la), DURE_OK);
    assert_int_equal(model_forward_backward(b, batch, NULL, &lb), DURE_OK);
    assert_true(la == lb);
    assert_int_equal(model_copy_to_host(a, MODEL_BUF_GRADS, 0, n, ga), DURE_OK);
    assert_int_equal(model_copy_to_host(b, MODEL_BUF_GRADS, 0, n, gb), DURE_OK);
    assert_memory_equal(ga, gb, n * sizeof(float));
    free(ga), free(gb), free(batch);
    model_destroy(a);
    model_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_gpu_is_a_clear_error),
        cmocka_unit_test(test_cpu_and_cuda_agree),
        cmocka_unit_test(test_cpu_and_cuda_agree_masked),
        cmocka_unit_test(test_cpu_and_cuda_agree_deep),
        cmocka_unit_test(test_cuda_deterministic),
    };
    return cmocka_run_group_tests_name("model_cuda", tests, NULL, NULL);
}
