/* tests/unit/test_dataio_order.c - window index and the global permutation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "dataio/order.h"

static void test_perm_is_a_bijection(void **state)
{
    (void)state;
    static const int64_t sizes[] = {1, 2, 3, 7, 64, 100, 1000, 4097};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int64_t n = sizes[k];
        unsigned char *seen = calloc((size_t)n, 1);
        int64_t fixed = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t v = dataio_perm(n, dataio_perm_key(42, 3), i);
            assert_true(v >= 0 && v < n);
            assert_false(seen[v]);
            seen[v] = 1;
            fixed += v == i;
        }
        /* A shuffle, not the identity: few fixed points for large n. */
        if (n >= 64) {
            assert_true(fixed < n / 8);
        }
        free(seen);
    }
}

static void test_perm_depends_on_seed_and_epoch_only(void **state)
{
    (void)state;
    int64_t n = 500, same_epoch = 0, same_seed = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t a = dataio_perm(n, dataio_perm_key(1, 0), i);
        assert_int_equal(a, dataio_perm(n, dataio_perm_key(1, 0), i));
        same_epoch += a == dataio_perm(n, dataio_perm_key(1, 1), i);
        same_seed += a == dataio_perm(n, dataio_perm_key(2, 0), i);
    }
    assert_true(same_epoch < 20);
    assert_true(same_seed < 20);
}

/* Episodes of lengths 10, 3 (too short for W = 4), 9, 4; stride 2. */
static void make_info(struct dataio_dataset_info *in, int64_t *start, uint8_t *is_val)
{
    static const int64_t len[] = {10, 3, 9, 4};
    memset(in, 0, sizeof *in);
    start[0] = 0;
    for (int e = 0; e < 4; e++) {
        start[e + 1] = start[e] + len[e];
    }
    in->path = "test";
    in->n_episodes = 4;
    in->episode_start = start;
    in->ep_split = is_val;
}

/* dataio_windows_build against every (episode, start) with start % 2 == 0,
 * start + 4 <= len, covering none of bad[n_bad]. */
static void check_brute_force(const int64_t *bad, int64_t n_bad)
{
    struct dataio_dataset_info in;
    int64_t start[5];
    make_info(&in, start, NULL);
    struct dataio_windows w;
    assert_int_equal(dataio_windows_build(&in, DATAIO_SPLIT_ALL, 4, 2, bad, n_bad, &w), DURE_OK);
    int64_t want_e[64], want_s[64], nw = 0;
    for (int64_t e = 0; e < 4; e++) {
        int64_t len = start[e + 1] - start[e];
        for (int64_t s = 0; s + 4 <= len; s += 2) {
            int ok = 1;
            for (int64_t b = 0; b < n_bad; b++) {
                int64_t g = bad[b];
                ok &= !(g >= start[e] + s && g < start[e] + s + 4);
            }
            if (ok) {
                want_e[nw] = e;
                want_s[nw] = s;
                nw++;
            }
        }
    }
    assert_int_equal(w.n, nw);
    assert_int_equal(w.n_excl, w.n_all - nw); /* each excluded window once */
    assert_int_equal(w.n_short, 1);
    assert_int_equal(w.first_short, 1);
    for (int64_t v = 0; v < w.n; v++) {
        int64_t e, s;
        dataio_windows_get(&w, v, &e, &s);
        assert_int_equal(e, want_e[v]);
        assert_int_equal(s, want_s[v]);
        /* Never across an episode boundary. */
        assert_true(start[e] + s + 4 <= start[e + 1]);
    }
    dataio_windows_free(&w);
}

static void test_windows_match_brute_force(void **state)
{
    (void)state;
    /* 2 (episode 0, t 2) and 15 (episode 2, rows 13..21, t 2). */
    const int64_t sparse[] = {2, 15};
    check_brute_force(sparse, 2);
    /* Runs whose windows overlap, across episodes 0-2 (rows 0-9, 10-12
     * too short, 13-21), the tails past the last window, episode 3's
     * last row. */
    const int64_t dense[] = {0, 1, 2, 3, 4, 5, 8, 9, 10, 12, 13, 14, 15, 16, 20, 21, 25};
    check_brute_force(dense, (int64_t)(sizeof dense / sizeof *dense));
    int64_t all[26];
    for (int i = 0; i < 26; i++) {
        all[i] = i;
    }
    check_brute_force(all, 26);
    /* The rows must ascend (the stats list them so): anything else is
     * refused, naming the row. */
    struct dataio_dataset_info in;
    int64_t start[5];
    struct dataio_windows w;
    const int64_t unsorted[] = {15, 2};
    make_info(&in, start, NULL);
    dure_log_set_quiet(1);
    assert_int_equal(dataio_windows_build(&in, DATAIO_SPLIT_ALL, 4, 2, unsorted, 2, &w),
                     DURE_ERR_ARG);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "row 2 at index 1 follows 15"));
}

static void test_windows_split(void **state)
{
    (void)state;
    struct dataio_dataset_info in;
    int64_t start[5];
    uint8_t is_val[4] = {0, 0, 1, 0};
    make_info(&in, start, is_val);
    struct dataio_windows w;
    assert_int_equal(dataio_windows_build(&in, DATAIO_SPLIT_VAL, 4, 4, NULL, 0, &w), DURE_OK);
    assert_int_equal(w.n, 2); /* episode 2: starts 0 and 4 */
    for (int64_t v = 0; v < w.n; v++) {
        int64_t e, s;
        dataio_windows_get(&w, v, &e, &s);
        assert_int_equal(e, 2);
    }
    dataio_windows_free(&w);
    assert_int_equal(dataio_windows_build(&in, DATAIO_SPLIT_TRAIN, 4, 4, NULL, 0, &w), DURE_OK);
    assert_int_equal(w.n, 3); /* episode 0: 0, 4; episode 3: 0 */
    dataio_windows_free(&w);
    make_info(&in, start, NULL);
    dure_log_set_quiet(1);
    assert_int_equal(dataio_windows_build(&in, DATAIO_SPLIT_VAL, 4, 4, NULL, 0, &w), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "no validation split"));
}

/* A mixture's epoch: each dataset's count is its share of the positions
 * (largest remainders), an undersampled dataset shows distinct windows,
 * an oversampled one repeats in whole rounds, and alpha balances by size. */
static void test_mix_plan_and_locate(void **state)
{
    (void)state;
    enum { D = 3 };
    const int64_t windows[D] = {100, 37, 400};
    const double weight[D] = {1.0, 2.0, 1.0};
    int64_t count[D], first[D + 1];
    double share[D];
    /* alpha 0: shares 1/4, 2/4, 1/4 of 537 = 134.25, 268.5, 134.25. */
    dataio_mix_plan(D, windows, weight, 0.0, count, first, share);
    assert_int_equal(count[0], 134);
    assert_int_equal(count[1], 269);
    assert_int_equal(count[2], 134);
    assert_int_equal(first[3], 537);
    assert_true(share[1] == 0.5);
    for (int shuffle = 0; shuffle <= 1; shuffle++) {
        int64_t got[D] = {0};
        static int64_t hits[D][400];
        memset(hits, 0, sizeof hits);
        for (int64_t p = 0; p < first[D]; p++) {
            int d = -1;
            int64_t v = -1;
            dataio_mix_locate(D, windows, first, 7, shuffle, 2, p, &d, &v);
            assert_true(d >= 0 && d < D && v >= 0 && v < windows[d]);
            got[d]++;
            hits[d][v]++;
        }
        assert_memory_equal(got, count, sizeof got);
        /* Whole rounds, then distinct windows: dataset 1's 269 = 7 x 37 +
         * 10 slots show 10 windows 8 times and 27 windows 7 times;
         * dataset 2's 134 slots show 134 distinct windows of 400. */
        for (int d = 0; d < D; d++) {
            int64_t rounds = count[d] / windows[d], extra = 0;
            for (int64_t v = 0; v < windows[d]; v++) {
                assert_true(hits[d][v] == rounds || hits[d][v] == rounds + 1);
                extra += hits[d][v] == rounds + 1;
            }
            assert_int_equal(extra, count[d] % windows[d]);
        }
    }
    /* alpha 1: weight x n, so 100 : 74 : 400 of 537. */
    dataio_mix_plan(D, windows, weight, 1.0, count, first, share);
    assert_int_equal(count[0], 94);
    assert_int_equal(count[1], 69);
    assert_int_equal(count[2], 374);
    /* One dataset: the plain permutation. */
    int64_t one_first[2] = {0, 100}, v = 0;
    int d = -1;
    dataio_mix_locate(1, windows, one_first, 7, 1, 2, 13, &d, &v);
    assert_int_equal(d, 0);
    assert_int_equal(v, dataio_perm(100, dataio_perm_key(7, 2), 13));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_perm_is_a_bijection),
        cmocka_unit_test(test_perm_depends_on_seed_and_epoch_only),
        cmocka_unit_test(test_windows_match_brute_force),
        cmocka_unit_test(test_windows_split),
        cmocka_unit_test(test_mix_plan_and_locate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
