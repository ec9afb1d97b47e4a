/*
 * tests/unit/test_model_train.c - the CPU model trains: a tiny model
 * overfits one fixed batch; runs are bit-reproducible; gradients accumulate
 * over micro-batches; validation and the naive baseline are what they say.
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
#include "model/model.h"
#include "tests/support/testdev.h"
#include "model/optim.h"

static void tiny_config(struct model_config *cfg)
{
    model_config_defaults(cfg);
    cfg->d_model = 32;
    cfg->n_layers = 2;
    cfg->n_heads = 4;
    cfg->patch_len = 4;
    cfg->channels = 3;
    cfg->context_patches = 8;
    cfg->micro_batch = 4;
}

static size_t batch_len(const struct model_config *cfg)
{
    return (size_t)cfg->micro_batch * (cfg->context_patches + 1) * cfg->patch_len *
           cfg->channels;
}

/* Sensor-like windows: per channel a sine of its own frequency and phase. */
static float *make_batch(const struct model_config *cfg, double phase)
{
    size_t n = batch_len(cfg), T = (size_t)(cfg->context_patches + 1) * cfg->patch_len;
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    for (size_t b = 0; b < (size_t)cfg->micro_batch; b++) {
        for (size_t t = 0; t < T; t++) {
            for (size_t c = 0; c < (size_t)cfg->channels; c++) {
                double f = 0.07 * (double)(c + 1) + 0.05 * (double)b;
                x[(b * T + t) * cfg->channels + c] =
                    (float)(1.3 * sin(f * (double)t + phase + (double)c));
            }
        }
    }
    return x;
}

/* Train `steps` AdamW steps on one batch; return the losses at start and end. */
static void train(model_t *m, const float *batch, int steps, float lr, float *first,
                  float *last)
{
    size_t nt;
    const struct model_tensor *t = model_tensors(m, &nt);
    struct optim_config oc = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                              .weight_decay = 0.0f};
    struct optim_schedule sc = {.lr = lr, .min_lr = lr / 10, .warmup_steps = 10,
                                .total_steps = steps};
    optim_t *opt = NULL;
    size_t n = model_param_count(m);
    assert_int_equal(optim_create(&oc, testdev_cpu(), t, nt, 0, n, &opt), DURE_OK);
    for (int s = 0; s < steps; s++) {
        float loss;
        double sq;
        assert_int_equal(model_zero_grad(m), DURE_OK);
        assert_int_equal(model_forward_backward(m, batch, NULL, &loss), DURE_OK);
        assert_true(isfinite(loss));
        if (s == 0) {
            *first = loss;
        }
        assert_int_equal(optim_grad_sq_norm(opt, model_grads(m), &sq), DURE_OK);
        float scale = optim_clip_scale(sqrt(sq), 1.0f);
        assert_int_equal(optim_adamw_update(opt, s + 1, optim_lr_at(&sc, s), scale,
                                            model_params(m), model_grads(m)),
                         DURE_OK);
        assert_int_equal(model_params_changed(m), DURE_OK);
    }
    assert_int_equal(model_forward(m, batch, NULL, last), DURE_OK);
    optim_destroy(opt);
}

static void test_overfits_one_batch(void **state)
{
    (void)state;
    struct model_config cfg;
    model_t *m = NULL;
    float first, last;
    double base;
    tiny_config(&cfg);
    float *batch = make_batch(&cfg, 0.0);
    assert_int_equal(model_create(&cfg, testdev_cpu(), NULL, &m), DURE_OK);
    assert_int_equal(model_baseline_loss(&cfg, batch, NULL, &base), DURE_OK);
    train(m, batch, 300, 3e-3f, &first, &last);
    print_message("overfit: loss %.4g -> %.4g (%.0fx), baseline %.4g\n", first, last,
                  first / last, base);
    assert_true(last * 100.0f <= first);
    assert_true(last < base);
    model_destroy(m);
    free(batch);
}

static void test_runs_are_bit_identical(void **state)
{
    (void)state;
    struct model_config cfg;
    model_t *a = NULL, *b = NULL;
    float fa, la, fb, lb;
    tiny_config(&cfg);
    cfg.deterministic = 1;
    float *batch = make_batch(&cfg, 0.5);
    assert_int_equal(model_create(&cfg, testdev_cpu(), NULL, &a), DURE_OK);
    assert_int_equal(model_create(&cfg, testdev_cpu(), NULL, &b), DURE_OK);
    size_t n = model_param_count(a);
    assert_memory_equal(model_params(a), model_params(b), n * sizeof(float));
    train(a, batch, 5, 1e-3f, &fa, &la);
    train(b, batch, 5, 1e-3f, &fb, &lb);
    assert_true(la == lb);
    assert_memory_equal(model_params(a), model_params(b), n * sizeof(float));
    assert_memory_equal(model_grads(a), model_grads(b), n * sizeof(float));
    /* another seed, other parameters */
    model_destroy(b);
    cfg.seed = 99;
    assert_int_equal(model_create(&cfg, testdev_cpu(), NULL, &b), DURE_OK);
    assert_memory_not_equal(model_params(a), model_params(b), n * sizeof(float));
    model_destroy(a);
    model_destroy(b);
    free(batch);
}

/* deterministic = 1: the same bits for any thread count (GEMMs cut into
 * parts of a fixed size; every other reduction has a fixed order). */
static void test_deterministic_across_thread_counts(void **state)
{
    (void)state;
    struct model_config cfg;
    float *p[2] = {NULL, NULL}, f, l[2];
    int threads[2] = {1, 3}, saved = omp_get_max_threads();
    size_t n = 0;
    tiny_config(&cfg);
    cfg.context_patches = 80; /* 320 tokens: the token GEMMs have 2 parts */
    cfg.deterministic = 1;
    float *batch = make_batch(&cfg, 0.7);
    for (int k = 0; k < 2; k++) {
        model_t *m = NULL;
        omp_set_num_threads(threads[k]);
        assert_int_equal(model_create(&cfg, testdev_cpu(), NULL, &m), DURE_OK);
        train(m, batch, 2, 1e-3f, &f, &l[k]);
        n = model_param_count(m);
        p[k] = malloc(n * sizeof(float));
        memcpy(p[k], model_params(m), n * sizeof(float));
        model_destroy(m);
    }
    omp_set_num_threads(saved);
    assert_true(l[0] == l[1]);
    assert_memory_equal(p[0], p[1], n * sizeof(float));
    free(p[0]), free(p[1]), free(batch);
}

static void test_gradients_accumulate(void **state)
{
    (void)state;
    struct model_config cfg;
    model_t *m = NULL;
    float l1, l2, l12a, l12b, lv;
    tiny_config(&cfg);
    float *x1 = make_batch(&cfg, 0.1), *x2 = make_batch(&cfg, 2.0);
    assert_int_equal(model_create(&cfg, testdev_cpu(), NULL, &m), DURE_OK);
    size_t n = model_param_count(m);
    float *g1 = malloc(n * sizeof(float)), *g2 = malloc(n * sizeof(float));
    assert_int_equal(model_forward_backward(m, x1, NULL, &l1), DURE_OK);
    memcpy(g1, model_grads(m), n * sizeof(float));
    assert_int_equal(model_zero_grad(m), DURE_OK);
    for (size_t i = 0; i < n; i++) {
        assert_true(model_grads(m)[i] == 0.0f);
    }
    assert_int_equal(model_forward_backward(m, x2, NULL, &l2), DURE_OK);
    memcpy(g2, model_grads(m), n * sizeof(float));
    assert_int_equal(model_zero_grad(m), DURE_OK);
    assert_int_equal(model_forward_backward(m, x1, NULL, &l12a), DURE_OK);
    assert_int_equal(model_forward_backward(m, x2, NULL, &l12b), DURE_OK);
    assert_true(l12a == l1 && l12b == l2);
    double maxg = 0.0, maxerr = 0.0;
    for (size_t i = 0; i < n; i++) {
        double want = (double)g1[i] + g2[i];
        maxg = fabs(want) > maxg ? fabs(want) : maxg;
        double e = fabs(model_grads(m)[i] - want);
        maxerr = e > maxerr ? e : maxerr;
    }
    assert_true(maxg > 0.0 && maxerr <= 1e-6 * maxg);
    /* validation: the same loss, gradients untouched */
    memcpy(g1, model_grads(m), n * sizeof(float));
    assert_int_equal(model_forward(m, x1, NULL, &lv), DURE_OK);
    assert_true(lv == l1);
    assert_memory_equal(g1, model_grads(m), n * sizeof(float));
    /* copies to and from host */
    float part[5];
    assert_int_equal(model_copy_to_host(m, MODEL_BUF_GRADS, 10, 5, part), DURE_OK);
    assert_memory_equal(part, model_grads(m) + 10, sizeof part);
    part[0] = 42.0f;
    assert_int_equal(model_copy_from_host(m, MODEL_BUF_PARAMS, n - 5, 5, part), DURE_OK);
    assert_true(model_params(m)[n - 5] == 42.0f);
    dure_log_set_quiet(1);
    assert_int_equal(model_copy_to_host(m, MODEL_BUF_PARAMS, n - 4, 5, part), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    assert_true(model_device(m) == testdev_cpu());
    free(g1), free(g2), free(x1), free(x2);
    model_destroy(m);
}

static void test_baseline_by_hand(void **state)
{
    (void)state;
    struct model_config cfg;
    double loss;
    model_config_defaults(&cfg);
    cfg.patch_len = 1;
    cfg.channels = 1;
    cfg.context_patches = 2;
    cfg.micro_batch = 1;
    float x[3] = {0.0f, 1.0f, 3.0f};
    /* predictions 0, 1 for targets 1, 3: mse (1 + 4) / 2 */
    assert_int_equal(model_baseline_loss(&cfg, x, NULL, &loss), DURE_OK);
    assert_float_equal(loss, 2.5, 1e-12);
    /* huber, delta 1: (0.5 * 1 + 1 * (2 - 0.5)) / 2 */
    cfg.loss = MODEL_LOSS_HUBER;
    assert_int_equal(model_baseline_loss(&cfg, x, NULL, &loss), DURE_OK);
    assert_float_equal(loss, 1.0, 1e-12);
    /* Masked: 2 windows of 2 channels (T = 3, (t, c) rows); window 0 has
     * channel 0 only, window 1 channel 1 only. The mean of the 4 unmasked
     * terms: window 0 (0 -> 1, 1 -> 3), window 1 (2 -> 2, 2 -> 6), mse. */
    cfg.loss = MODEL_LOSS_MSE;
    cfg.channels = 2;
    cfg.micro_batch = 2;
    const float y[12] = {0, 50, 1, 60, 3, 70, 90, 2, 80, 2, 70, 6};
    const float mask[4] = {1, 0, 0, 1}, none[4] = {0};
    assert_int_equal(model_baseline_loss(&cfg, y, mask, &loss), DURE_OK);
    assert_float_equal(loss, (1.0 + 4.0 + 0.0 + 16.0) / 4.0, 1e-12);
    assert_int_equal(model_baseline_loss(&cfg, y, none, &loss), DURE_OK);
    assert_float_equal(loss, 0.0, 0.0);
}

static void test_summary_and_memory(void **state)
{
    (void)state;
    struct model_config cfg;
    struct model_memory mem;
    char buf[2048] = {0};
    tiny_config(&cfg);
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    assert_non_null(f);
    model_print_summary(&cfg, "cpu", f);
    fclose(f);
    struct model_flops fl;
    model_flops_compute(&cfg, &fl);
    char want[64];
    snprintf(want, sizeof want, "model: %llu parameters", (unsigned long long)fl.params);
    assert_non_null(strstr(buf, want));
    assert_non_null(strstr(buf, "activations"));
    assert_non_null(strstr(buf, "memory on cpu"));
    assert_int_equal(model_memory_estimate(&cfg, "cpu", &mem), DURE_OK);
    assert_int_equal(mem.params, fl.params * 4);
    assert_int_equal(mem.compute_params, 0);
    assert_int_equal(mem.total, mem.params + mem.grads + mem.optimizer + mem.activations +
                                    mem.workspace);
    uint64_t cpu_acts = mem.activations;
    dure_log_set_quiet(1);
    dure_status_t st = model_memory_estimate(&cfg, "cuda", &mem);
    dure_log_set_quiet(0);
    if (st == DURE_ERR_UNSUPPORTED) {
        /* a CPU-only build: no cuda compute backend, said so */
        assert_non_null(strstr(dure_last_error(), "'cuda'"));
        return;
    }
    assert_int_equal(st, DURE_OK);
    assert_int_equal(mem.compute_params, fl.params * 2);
    assert_true(mem.activations < cpu_acts); /* bf16 activations */
    assert_int_equal(mem.total, mem.params + mem.grads + mem.compute_params + mem.optimizer +
                                    mem.activations + mem.workspace);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overfits_one_batch),
        cmocka_unit_test(test_runs_are_bit_identical),
        cmocka_unit_test(test_deterministic_across_thread_counts),
        cmocka_unit_test(test_gradients_accumulate),
        cmocka_unit_test(test_baseline_by_hand),
        cmocka_unit_test(test_summary_and_memory),
    };
    return cmocka_run_group_tests_name("model_train", tests, NULL, NULL);
}
