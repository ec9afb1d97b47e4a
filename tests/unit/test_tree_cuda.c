/*
 * tests/unit/test_tree_cuda.c - exact mode's CUDA kernels against their CPU
 * references, bit for bit: the squared-norm tiles (optim_tree_tiles on
 * device memory against tree_sq_tile) and the exact reduce-scatter's add
 * (comm_tree_add_cuda against comm_tree_add_host). Skips, saying why,
 * without a GPU; tests/gpu/exact.sh runs it where there is one and fails
 * on a skip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/tree.h"
#include "common/sumtree.h"
#include "model/model.h"
#include "model/optim.h"
#include "tests/support/gpuskip.h"

static int skip_without_gpu(void) { return gpuskip_needed("exact mode's CUDA kernels"); }

/* A CUDA model whose parameter and gradient vectors serve as device buffers. */
static model_t *device_model(void)
{
    struct model_config cfg;
    model_t *m = NULL;
    model_config_defaults(&cfg);
    cfg.d_model = 64;
    cfg.n_layers = 2;
    cfg.n_heads = 4;
    cfg.patch_len = 4;
    cfg.channels = 6;
    cfg.context_patches = 16;
    cfg.micro_batch = 2;
    cfg.device = MODEL_DEVICE_CUDA;
    assert_int_equal(model_create(&cfg, &m), DURE_OK);
    return m;
}

/* Values over 40 binades: any other grouping of the sums shows. */
static void fill(float *x, size_t n, unsigned seed)
{
    uint64_t s = 0x9e3779b97f4a7c15ULL * (seed + 1);
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        double m = (double)(s % 2000001) / 1e6 - 1.0;
        x[i] = (float)ldexp(m, (int)((s >> 32) % 41) - 20);
    }
}

static void test_norm_tiles_match_host(void **state)
{
    (void)state;
    if (skip_without_gpu()) {
        skip();
    }
    model_t *m = device_model();
    size_t n = model_param_count(m), nt = 0;
    const struct model_tensor *t = model_tensors(m, &nt);
    float *g = malloc(n * sizeof *g);
    assert_non_null(g);
    fill(g, n, 1);
    assert_int_equal(model_copy_from_host(m, MODEL_BUF_GRADS, 0, n, g), DURE_OK);
    struct optim_config oc = {0.9f, 0.95f, 1e-8f, 0.1f};
    optim_t *opt = NULL;
    assert_int_equal(optim_create(&oc, t, nt, 0, n, MODEL_MEM_CUDA, &opt), DURE_OK);
    /* Ranges with edges that are not tile-aligned, as shards are. */
    const uint64_t cuts[][2] = {{0, n}, {1, n - 3}, {1000, 1001}, {4097, n / 2 + 7}};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        struct tree_norm *dev = NULL, *host = NULL;
        assert_int_equal(tree_norm_create(n, cuts[c][0], cuts[c][1], &dev), DURE_OK);
        assert_int_equal(tree_norm_create(n, cuts[c][0], cuts[c][1], &host), DURE_OK);
        assert_int_equal(optim_tree_tiles(opt, dev, model_grads(m) + cuts[c][0]), DURE_OK);
        tree_norm_tiles_host(host, g + cuts[c][0]);
        assert_memory_equal(dev->val, host->val, host->ntiles * sizeof *host->val);
        tree_norm_free(dev);
        tree_norm_free(host);
    }
    optim_destroy(opt);
    model_destroy(m);
    free(g);
}

static void test_add_matches_host(void **state)
{
    (void)state;
    if (skip_without_gpu()) {
        skip();
    }
#if DURE_HAVE_CUDA /* comm_tree_add_cuda exists in CUDA builds only */
    model_t *m = device_model();
    size_t n = model_param_count(m);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *got = malloc(n * sizeof *got);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(got);
    fill(a, n, 2);
    fill(b, n, 3);
    assert_int_equal(model_copy_from_host(m, MODEL_BUF_GRADS, 0, n, a), DURE_OK);
    assert_int_equal(model_copy_from_host(m, MODEL_BUF_PARAMS, 0, n, b), DURE_OK);
    assert_int_equal(comm_tree_add_cuda(model_grads(m), model_params(m), n,
                                        model_cuda_stream(m)),
                     DURE_OK);
    /* A synchronous copy on the legacy stream waits for the model's stream. */
    assert_int_equal(model_copy_to_host(m, MODEL_BUF_GRADS, 0, n, got), DURE_OK);
    assert_int_equal(comm_tree_add_host(NULL, a, b, n), DURE_OK);
    assert_memory_equal(got, a, n * sizeof *a);
    model_destroy(m);
    free(a);
    free(b);
    free(got);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_norm_tiles_match_host),
        cmocka_unit_test(test_add_matches_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
