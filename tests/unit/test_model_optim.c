/*
 * tests/unit/test_model_optim.c - AdamW, the learning-rate schedule and
 * clipping against hand-computed values; slice-wise (ZeRO) updates equal to
 * one update of the whole vector; bad optimizer settings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "tests/support/testdev.h"
#include "model/optim.h"

static const struct optim_config adam = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                                         .weight_decay = 0.1f};

static void test_lr_schedule(void **state)
{
    (void)state;
    struct optim_schedule s = {.lr = 1e-3f, .min_lr = 1e-4f, .warmup_steps = 10,
                               .total_steps = 110};
    assert_float_equal(optim_lr_at(&s, 0), 1e-4, 1e-10);   /* 1e-3 * 1/10 */
    assert_float_equal(optim_lr_at(&s, 4), 5e-4, 1e-10);   /* 1e-3 * 5/10 */
    assert_float_equal(optim_lr_at(&s, 9), 1e-3, 1e-10);
    assert_float_equal(optim_lr_at(&s, 10), 1e-3, 1e-10);  /* cosine starts at the peak */
    assert_float_equal(optim_lr_at(&s, 60), 5.5e-4, 1e-9); /* half way: (lr + min) / 2 */
    /* a quarter of the way: min + (lr - min) * (1 + cos(pi / 4)) / 2 */
    assert_float_equal(optim_lr_at(&s, 35), 1e-4 + 9e-4 * (1.0 + sqrt(0.5)) / 2.0, 1e-9);
    assert_float_equal(optim_lr_at(&s, 110), 1e-4, 1e-10);
    assert_float_equal(optim_lr_at(&s, 500), 1e-4, 1e-10); /* past the end: the floor */
    s.warmup_steps = 0;
    assert_float_equal(optim_lr_at(&s, 0), 1e-3, 1e-10);
}

static void test_clip_scale(void **state)
{
    (void)state;
    assert_float_equal(optim_clip_scale(2.0, 1.0f), 1.0 / (2.0 + 1e-6), 1e-7);
    assert_float_equal(optim_clip_scale(0.5, 1.0f), 1.0, 0.0);
    assert_float_equal(optim_clip_scale(1e9, 0.0f), 1.0, 0.0); /* 0 = no clipping */
}

/* Two one-element tensors: "w" decays (2-D), "b" does not. */
static const struct model_tensor two[2] = {
    {.name = "w", .offset = 0, .count = 1, .ndim = 2, .shape = {1, 1}, .decay = 1},
    {.name = "b", .offset = 1, .count = 1, .ndim = 1, .shape = {1, 1}, .decay = 0},
};

static void test_adamw_by_hand(void **state)
{
    (void)state;
    optim_t *opt = NULL;
    float p[2] = {1.0f, 1.0f}, g[2] = {0.5f, 0.5f};
    assert_int_equal(optim_create(&adam, testdev_cpu(), two, 2, 0, 2, &opt), DURE_OK);
    /* t = 1: m = 0.05, v = 0.0125, m^ = 0.5, v^ = 0.25, step = 0.5 / 0.5 = 1
     * w: 1 - 0.1 * (1 + 0.1 * 1) = 0.89;  b: 1 - 0.1 * 1 = 0.9 */
    assert_int_equal(optim_adamw_update(opt, 1, 0.1f, 1.0f, p, g), DURE_OK);
    assert_float_equal(p[0], 0.89, 1e-6);
    assert_float_equal(p[1], 0.9, 1e-6);
    /* t = 2 with g = -1 scaled by 0.5: m = -0.005, v = 0.024375,
     * m^ = -0.005 / 0.19, v^ = 0.024375 / 0.0975 = 0.25, step = m^ / 0.5
     * w: 0.89 - 0.1 * (step + 0.1 * 0.89);  b: 0.9 - 0.1 * step */
    g[0] = g[1] = -1.0f;
    assert_int_equal(optim_adamw_update(opt, 2, 0.1f, 0.5f, p, g), DURE_OK);
    double step = -0.005 / 0.19 / 0.5;
    assert_float_equal(p[0], 0.89 - 0.1 * (step + 0.089), 1e-6);
    assert_float_equal(p[1], 0.9 - 0.1 * step, 1e-6);
    float m[2], v[2];
    assert_int_equal(optim_moment_to_host(opt, OPTIM_M, m), DURE_OK);
    assert_int_equal(optim_moment_to_host(opt, OPTIM_V, v), DURE_OK);
    assert_float_equal(m[0], -0.005, 1e-8);
    assert_float_equal(v[1], 0.024375, 1e-8);
    double sq;
    assert_int_equal(optim_grad_sq_norm(opt, g, &sq), DURE_OK);
    assert_float_equal(sq, 2.0, 0.0);
    optim_destroy(opt);
}

static uint64_t rng = 42;

static float uniform(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng >> 40) * 0x1.0p-24) * 2.0f - 1.0f;
}

static void test_slices_equal_full(void **state)
{
    (void)state;
    struct model_config cfg;
    model_t *m = NULL;
    model_config_defaults(&cfg);
    cfg.d_model = 16;
    cfg.n_layers = 2;
    cfg.channels = 3;
    cfg.patch_len = 4;
    cfg.context_patches = 4;
    cfg.micro_batch = 1;
    assert_int_equal(model_create(&cfg, testdev_cpu(), NULL, &m), DURE_OK);
    size_t n = model_param_count(m), nt;
    const struct model_tensor *t = model_tensors(m, &nt);
    float *p_full = malloc(n * sizeof(float)), *p_shard = malloc(n * sizeof(float));
    float *g = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        p_full[i] = p_shard[i] = uniform();
    }
    /* Three uneven shards whose borders cut through tensors. */
    size_t cut[4] = {0, n / 3 + 7, 2 * n / 3 + 1, n};
    optim_t *full = NULL, *shard[3] = {NULL, NULL, NULL};
    assert_int_equal(optim_create(&adam, testdev_cpu(), t, nt, 0, n, &full), DURE_OK);
    for (int r = 0; r < 3; r++) {
        assert_int_equal(optim_create(&adam, testdev_cpu(), t, nt, cut[r], cut[r + 1] - cut[r], &shard[r]),
                         DURE_OK);
    }
    for (int step = 1; step <= 3; step++) {
        double sq_full, sq_sum = 0.0, sq_ref = 0.0;
        for (size_t i = 0; i < n; i++) {
            g[i] = uniform();
            sq_ref += (double)g[i] * g[i];
        }
        assert_int_equal(optim_grad_sq_norm(full, g, &sq_full), DURE_OK);
        assert_float_equal(sq_full, sq_ref, 1e-9 * sq_ref);
        for (int r = 0; r < 3; r++) {
            double sq;
            assert_int_equal(optim_grad_sq_norm(shard[r], g + cut[r], &sq), DURE_OK);
            sq_sum += sq;
        }
        assert_float_equal(sq_sum, sq_full, 1e-12 * sq_full);
        float scale = optim_clip_scale(sqrt(sq_full), 1.0f);
        assert_true(scale < 1.0f); /* clipping is exercised */
        assert_int_equal(optim_adamw_update(full, step, 1e-2f, scale, p_full, g), DURE_OK);
        for (int r = 0; r < 3; r++) {
            assert_int_equal(optim_adamw_update(shard[r], step, 1e-2f, scale,
                                                p_shard + cut[r], g + cut[r]),
                             DURE_OK);
        }
    }
    assert_memory_equal(p_full, p_shard, n * sizeof(float));
    /* Decay applies to the 2-D tensors only: with zero gradients from a fresh
     * optimizer a bias stays, a weight shrinks by lr * wd. */
    optim_t *fresh = NULL;
    memset(g, 0, n * sizeof(float));
    assert_int_equal(optim_create(&adam, testdev_cpu(), t, nt, 0, n, &fresh), DURE_OK);
    float w0 = p_full[t[0].offset], b0 = p_full[t[1].offset];
    assert_int_equal(optim_adamw_update(fresh, 1, 0.5f, 1.0f, p_full, g), DURE_OK);
    assert_float_equal(p_full[t[0].offset], w0 * (1.0f - 0.5f * 0.1f), 1e-7);
    assert_true(p_full[t[1].offset] == b0);
    optim_destroy(fresh);
    optim_destroy(full);
    for (int r = 0; r < 3; r++) {
        optim_destroy(shard[r]);
    }
    free(p_full), free(p_shard), free(g);
    model_destroy(m);
}

static void expect_bad(const struct optim_config *cfg, size_t off, size_t len,
                       const char *needle)
{
    optim_t *opt = (optim_t *)two; /* must be reset to NULL */
    dure_log_set_quiet(1);
    assert_int_equal(optim_create(cfg, testdev_cpu(), two, 2, off, len, &opt), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    assert_null(opt);
    if (!strstr(dure_last_error(), needle)) {
        fail_msg("error '%s' does not mention '%s'", dure_last_error(), needle);
    }
}

static void test_bad_optim(void **state)
{
    (void)state;
    struct optim_config c = adam;
    c.beta1 = 1.0f;
    expect_bad(&c, 0, 2, "optim.beta1 = 1 must be in [0, 1)");
    c = adam;
    c.beta2 = -0.5f;
    expect_bad(&c, 0, 2, "optim.beta2");
    c = adam;
    c.eps = 0.0f;
    expect_bad(&c, 0, 2, "optim.eps");
    c = adam;
    c.weight_decay = -1.0f;
    expect_bad(&c, 0, 2, "optim.weight_decay");
    expect_bad(&adam, 1, 5, "slice [1, 6) extends past the 2-element parameter vector");
    expect_bad(&adam, 0, 0, "empty");
    optim_t *opt = NULL;
    float p[2] = {0}, g[2] = {0};
    assert_int_equal(optim_create(&adam, testdev_cpu(), two, 2, 0, 2, &opt), DURE_OK);
    dure_log_set_quiet(1);
    assert_int_equal(optim_adamw_update(opt, 0, 0.1f, 1.0f, p, g), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    optim_destroy(opt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lr_schedule),
        cmocka_unit_test(test_clip_scale),
        cmocka_unit_test(test_adamw_by_hand),
        cmocka_unit_test(test_slices_equal_full),
        cmocka_unit_test(test_bad_optim),
    };
    return cmocka_run_group_tests_name("model_optim", tests, NULL, NULL);
}
