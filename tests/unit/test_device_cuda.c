/*
 * tests/unit/test_device_cuda.c - every CUDA kernel of device/ against the
 * host reference loops of device/host.c: accumulation, the fused AdamW over
 * hundreds of weight-decay segments of odd lengths (one launch), and the
 * chunked squared norm, plus bit-identical repeats. Skips with the reason
 * without a GPU; fails then under DURE_REQUIRE_GPU=1 (make gpu-check).
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
#include "device/device_impl.h"
#include "tests/support/testdev.h"

/* Odd sizes: not a multiple of a block, a warp or a chunk. */
#define N (3 * DEVICE_SQ_CHUNK + 4099)

static float value(size_t i, double f)
{
    return (float)(sin(f * (double)i) + 0.25 * cos(3.1 * f * (double)i));
}

static float *host_vec(double f)
{
    float *v = malloc(N * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < N; i++) {
        v[i] = value(i, f);
    }
    return v;
}

static float *dev_vec(device_t *d, const float *h)
{
    float *p = NULL;
    assert_int_equal(device_alloc(d, N * sizeof *p, "a test vector", (void **)&p), DURE_OK);
    assert_int_equal(device_copy_from_host(d, p, h, N * sizeof *p), DURE_OK);
    return p;
}

static void test_accumulate(void **state)
{
    (void)state;
    device_t *d = testdev_cuda();
    if (!d) {
        skip();
    }
    float *acc = host_vec(0.01), *g = host_vec(0.02), *back = malloc(N * sizeof(float));
    assert_non_null(back);
    float *dacc = dev_vec(d, acc), *dg = dev_vec(d, g);
    assert_int_equal(device_accumulate(d, dacc, dg, N, 0), DURE_OK);
    assert_int_equal(device_accumulate(d, dacc, dg, N, 0), DURE_OK);
    assert_int_equal(device_copy_to_host(d, back, dacc, N * sizeof(float)), DURE_OK);
    assert_int_equal(device_host_accumulate(NULL, acc, g, N, 0), DURE_OK);
    assert_int_equal(device_host_accumulate(NULL, acc, g, N, 0), DURE_OK);
    assert_memory_equal(back, acc, N * sizeof(float)); /* one rounding per add: exact */
    assert_int_equal(device_accumulate(d, dacc, dg, N, 1), DURE_OK);
    assert_int_equal(device_copy_to_host(d, back, dacc, N * sizeof(float)), DURE_OK);
    assert_memory_equal(back, g, N * sizeof(float));
    device_free(d, dacc);
    device_free(d, dg);
    free(acc), free(g), free(back);
}

static void test_fused_adamw(void **state)
{
    (void)state;
    device_t *d = testdev_cuda();
    if (!d) {
        skip();
    }
    /* About 500 segments of odd lengths, decay alternating. */
    enum { MAXSEG = 600 };
    struct device_segment seg[MAXSEG];
    size_t n_seg = 0, at = 0;
    while (at < N) {
        size_t len = 37 + (n_seg * 7919) % 1013;
        size_t end = at + len < N && n_seg < MAXSEG - 1 ? at + len : N;
        seg[n_seg] = (struct device_segment){at, end, (int)(n_seg % 2)};
        n_seg++;
        at = end;
    }
    float *p = host_vec(0.003), *g = host_vec(0.007);
    float *m = calloc(N, sizeof(float)), *v = calloc(N, sizeof(float));
    float *back = malloc(N * sizeof(float));
    assert_non_null(m);
    assert_non_null(v);
    assert_non_null(back);
    float *dp = dev_vec(d, p), *dg = dev_vec(d, g), *dm = dev_vec(d, m), *dv = dev_vec(d, v);
    struct device_segment *dseg = NULL;
    assert_int_equal(device_alloc(d, sizeof seg, "segments", (void **)&dseg), DURE_OK);
    assert_int_equal(device_copy_from_host(d, dseg, seg, n_seg * sizeof *seg), DURE_OK);
    for (int t = 1; t <= 3; t++) {
        struct device_adamw h = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                                 .bc1 = (float)(1 - pow(0.9, t)),
                                 .bc2 = (float)(1 - pow(0.95, t)), .grad_scale = 0.5f,
                                 .weight_decay = 0.1f};
        assert_int_equal(device_adamw(d, &h, dseg, n_seg, dp, dg, dm, dv, N), DURE_OK);
        assert_int_equal(device_host_adamw(NULL, &h, seg, n_seg, p, g, m, v, N), DURE_OK);
    }
    assert_int_equal(device_copy_to_host(d, back, dp, N * sizeof(float)), DURE_OK);
    for (size_t i = 0; i < N; i++) {
        if (!(fabs(back[i] - p[i]) <= 1e-6 * (1.0 + fabs(p[i])))) {
            fail_msg("element %zu: cuda %.9g, host %.9g", i, back[i], p[i]);
        }
    }
    device_free(d, dseg);
    device_free(d, dp), device_free(d, dg), device_free(d, dm), device_free(d, dv);
    free(p), free(g), free(m), free(v), free(back);
}

static void test_sq_norm(void **state)
{
    (void)state;
    device_t *d = testdev_cuda();
    if (!d) {
        skip();
    }
    size_t k = device_sq_norm_chunks(N);
    float *g = host_vec(0.011), *dg = dev_vec(d, g);
    double *dpart = NULL, *host = calloc(k, sizeof(double)), *ref = calloc(k, sizeof(double));
    double sq = 0, sq2 = 0, want = 0;
    assert_non_null(host);
    assert_non_null(ref);
    assert_int_equal(device_alloc(d, k * sizeof(double), "partials", (void **)&dpart), DURE_OK);
    assert_int_equal(device_sq_norm(d, dg, N, dpart, host, &sq), DURE_OK);
    assert_int_equal(device_sq_norm(d, dg, N, dpart, host, &sq2), DURE_OK);
    assert_true(sq == sq2); /* fixed order: the same bits */
    assert_int_equal(device_host_sq_norm_partials(NULL, g, N, ref), DURE_OK);
    for (size_t i = 0; i < k; i++) {
        want += ref[i];
    }
    assert_float_equal(sq, want, 1e-12 * want);
    device_free(d, dpart);
    device_free(d, dg);
    free(g), free(host), free(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accumulate),
        cmocka_unit_test(test_fused_adamw),
        cmocka_unit_test(test_sq_norm),
    };
    return cmocka_run_group_tests_name("device_cuda", tests, NULL, NULL);
}
