/*
 * tests/unit/test_tree_cuda.c - exact mode's CUDA kernels against their CPU
 * references, bit for bit: the squared-norm tiles (optim_tree_tiles on the
 * cuda device against device_host_sq_tiles) and the exact reduce-scatter's
 * add (comm_tree_add_cuda against comm_tree_add_host). Skips, saying why,
 * without a GPU; fails instead under DURE_REQUIRE_GPU=1 (make gpu-check,
 * tests/gpu/exact.sh).
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
#include "device/device_impl.h"
#include "model/optim.h"
#include "tests/support/testdev.h"

/* Elements of the test vectors: several tiles, not a multiple of one. */
#define N ((size_t)40 * TREE_TILE + 333)

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

/* n floats of x on device d. */
static float *upload(device_t *d, const float *x, size_t n)
{
    void *p = NULL;
    assert_int_equal(device_alloc(d, n * sizeof(float), "test vector", &p), DURE_OK);
    assert_int_equal(device_copy_from_host(d, p, x, n * sizeof(float)), DURE_OK);
    return p;
}

static void test_norm_tiles_match_host(void **state)
{
    (void)state;
    device_t *d = testdev_cuda();
    if (!d) {
        skip();
    }
    const struct model_tensor one = {
        .name = "g", .offset = 0, .count = N, .ndim = 1, .shape = {(int)N, 1}, .decay = 0};
    float *g = malloc(N * sizeof *g);
    assert_non_null(g);
    fill(g, N, 1);
    float *dg = upload(d, g, N);
    struct optim_config oc = {0.9f, 0.95f, 1e-8f, 0.1f};
    optim_t *opt = NULL;
    assert_int_equal(optim_create(&oc, d, &one, 1, 0, N, &opt), DURE_OK);
    /* Ranges with edges that are not tile-aligned, as shards are. */
    const uint64_t cuts[][2] = {{0, N}, {1, N - 3}, {1000, 1001}, {4097, N / 2 + 7}};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        struct tree_norm *dev = NULL, *host = NULL;
        assert_int_equal(tree_norm_create(N, cuts[c][0], cuts[c][1], &dev), DURE_OK);
        assert_int_equal(tree_norm_create(N, cuts[c][0], cuts[c][1], &host), DURE_OK);
        assert_int_equal(optim_tree_tiles(opt, dev, dg + cuts[c][0]), DURE_OK);
        assert_int_equal(device_host_sq_tiles(NULL, g + cuts[c][0], host->lo, host->tile_first,
                                              host->tile_len, host->ntiles, host->val),
                         DURE_OK);
        assert_memory_equal(dev->val, host->val, host->ntiles * sizeof *host->val);
        tree_norm_free(dev);
        tree_norm_free(host);
    }
    optim_destroy(opt);
    device_free(d, dg);
    free(g);
}

static void test_add_matches_host(void **state)
{
    (void)state;
    device_t *d = testdev_cuda();
    if (!d) {
        skip();
    }
#if DURE_HAVE_CUDA /* comm_tree_add_cuda exists in CUDA builds only */
    float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *got = malloc(N * sizeof *got);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(got);
    fill(a, N, 2);
    fill(b, N, 3);
    float *da = upload(d, a, N), *db = upload(d, b, N);
    assert_int_equal(comm_tree_add_cuda(da, db, N, device_stream(d)), DURE_OK);
    assert_int_equal(device_copy_to_host(d, got, da, N * sizeof *got), DURE_OK);
    assert_int_equal(comm_tree_add_host(NULL, a, b, N), DURE_OK);
    assert_memory_equal(got, a, N * sizeof *a);
    device_free(d, da);
    device_free(d, db);
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
