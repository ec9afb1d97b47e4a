/*
 * tests/mpi/test_coll_bucket.c - the gradient bucketer: the plan (reverse
 * layer order, size cap, empty and oversized tensors), buckets starting the
 * moment they are complete and always in bucket order, all-reduce and
 * reduce-scatter results over several steps, overlap off, ranges of whole
 * tensors as the model reports them, cuts, and bad input.
 */
#include "tests/support/mpitest.h"

#include <stdlib.h>
#include <string.h>

#include "collectives/bucket.h"

/* tensor sizes in forward order; 0 is an empty tensor */
static const size_t lens[] = {3, 5, 1000, 0, 2000, 7};
enum { NT = 6 };
static size_t offsets[NT + 1];
static size_t total;
static comm_t *cm;
static int rank, size;
/* cap of 1005 floats */
static const double cap_mb = 1005.0 * 4 / 1048576.0;

static float pat(int r, size_t i, int step)
{
    return (float)((long)((i * 5 + (size_t)r * 11 + (size_t)step * 3) % 13) - 6);
}

static float avg_at(size_t i, int step)
{
    float s = 0;
    for (int r = 0; r < size; r++) {
        s += pat(r, i, step);
    }
    return s / (float)size;
}

static int setup(void **state)
{
    (void)state;
    struct comm_config cfg;
    rank = mpitest_rank();
    size = mpitest_size();
    offsets[0] = 0;
    for (int t = 0; t < NT; t++) {
        offsets[t + 1] = offsets[t] + lens[t];
    }
    total = offsets[NT];
    comm_config_default(&cfg);
    cfg.backend = COMM_BACKEND_MPI;
    cfg.watchdog_s = 60;
    return comm_create(MPI_COMM_WORLD, &cfg, &cm) == DURE_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    comm_destroy(cm);
    return 0;
}

/* b's buckets are want[0 .. n), in bucket order. */
static void assert_buckets(const comm_bucketer_t *b, const struct comm_bucket *want, int n)
{
    assert_int_equal(comm_bucketer_count(b), n);
    for (int i = 0; i < n; i++) {
        struct comm_bucket k = comm_bucketer_bucket(b, i);
        assert_int_equal(k.offset, want[i].offset);
        assert_int_equal(k.count, want[i].count);
        assert_int_equal(k.first_tensor, want[i].first_tensor);
        assert_int_equal(k.last_tensor, want[i].last_tensor);
    }
}

static void test_plan(void **state)
{
    (void)state;
    comm_bucketer_t *b = NULL;
    float *g = calloc(total, sizeof *g);
    struct comm_bucket_config cfg = {cap_mb, COMM_BUCKET_ALLREDUCE, COMM_AVG, 1,
                                     NULL, NULL, 0, 0};
    assert_int_equal(comm_bucketer_create(cm, g, offsets, NT, &cfg, &b), DURE_OK);
    /* backward order: [t5] [t3 t4] (t4 alone exceeds the cap, empty t3
     * rides along) [t1 t2] (exactly the cap) [t0] */
    const struct comm_bucket want[] = {
        {offsets[5], 7, 5, 5},
        {offsets[3], 2000, 3, 4},
        {offsets[1], 1005, 1, 2},
        {offsets[0], 3, 0, 0},
    };
    assert_buckets(b, want, 4);
    assert_int_equal(comm_bucketer_bucket(b, 4).count, 0);
    comm_bucketer_free(b);
    free(g);
}

static void run_steps(enum comm_bucket_mode mode, int overlap)
{
    comm_bucketer_t *b = NULL;
    float *g = calloc(total, sizeof *g);
    struct comm_bucket_config cfg = {cap_mb, mode, COMM_AVG, overlap, NULL, NULL, 0, 0};
    assert_non_null(g);
    assert_int_equal(comm_bucketer_create(cm, g, offsets, NT, &cfg, &b), DURE_OK);
    struct comm_shard sh = comm_shard_of(total, size, rank);
    for (int step = 0; step < 3; step++) {
        for (size_t i = 0; i < total; i++) {
            g[i] = pat(rank, i, step);
        }
        uint64_t seq0 = comm_seq(cm);
        if (rank == 0) {
            /* backward order: each bucket starts the moment it is complete */
            const int order[] = {5, 4, 3, 2, 1, 0};
            const uint64_t started_after[] = {1, 1, 2, 2, 3, 4};
            for (int k = 0; k < NT; k++) {
                assert_int_equal(comm_bucketer_ready(b, order[k]), DURE_OK);
                assert_int_equal(comm_seq(cm) - seq0, overlap ? started_after[k] : 0);
            }
        } else {
            /* another order on the other ranks: buckets still start in
             * bucket order, so the collectives match */
            const int order[] = {0, 2, 1, 3, 5};
            const uint64_t started_after[] = {0, 0, 0, 0, 1};
            for (int k = 0; k < 5; k++) {
                assert_int_equal(comm_bucketer_ready(b, order[k]), DURE_OK);
                assert_int_equal(comm_seq(cm) - seq0, overlap ? started_after[k] : 0);
            }
            /* tensor 4 is left for finish to mark */
        }
        assert_int_equal(comm_bucketer_finish(b), DURE_OK);
        assert_int_equal(comm_seq(cm) - seq0, 4);
        size_t lo = mode == COMM_BUCKET_ALLREDUCE ? 0 : sh.offset;
        size_t hi = mode == COMM_BUCKET_ALLREDUCE ? total : sh.offset + sh.count;
        for (size_t i = lo; i < hi; i++) {
            if (g[i] != avg_at(i, step)) {
                print_error("mode %d step %d element %zu: got %g want %g\n", (int)mode, step, i,
                            (double)g[i], (double)avg_at(i, step));
                fail();
            }
        }
    }
    comm_bucketer_free(b);
    free(g);
}

static void test_allreduce_steps(void **state)
{
    (void)state;
    run_steps(COMM_BUCKET_ALLREDUCE, 1);
}

static void test_reduce_scatter_steps(void **state)
{
    (void)state;
    run_steps(COMM_BUCKET_REDUCE_SCATTER, 1);
}

static void test_overlap_off(void **state)
{
    (void)state;
    run_steps(COMM_BUCKET_ALLREDUCE, 0);
}

static void test_default_size_and_one_bucket(void **state)
{
    (void)state;
    comm_bucketer_t *b = NULL;
    float *g = calloc(total, sizeof *g);
    struct comm_bucket_config cfg = {0, COMM_BUCKET_ALLREDUCE, COMM_SUM, 1, NULL, NULL, 0, 0};
    assert_int_equal(comm_bucketer_create(cm, g, offsets, NT, &cfg, &b), DURE_OK);
    /* the default cap is far above 3015 floats: one bucket */
    assert_int_equal(comm_bucketer_count(b), 1);
    assert_int_equal(comm_bucketer_bucket(b, 0).count, total);
    assert_int_equal(comm_bucketer_finish(b), DURE_OK);
    comm_bucketer_free(b);
    /* no tensors at all */
    size_t zero = 0;
    assert_int_equal(comm_bucketer_create(cm, NULL, &zero, 0, &cfg, &b), DURE_OK);
    assert_int_equal(comm_bucketer_count(b), 0);
    assert_int_equal(comm_bucketer_finish(b), DURE_OK);
    comm_bucketer_free(b);
    free(g);
}

static void test_errors(void **state)
{
    (void)state;
    comm_bucketer_t *b = NULL;
    float *g = calloc(total, sizeof *g);
    struct comm_bucket_config cfg = {cap_mb, COMM_BUCKET_ALLREDUCE, COMM_AVG, 0,
                                     NULL, NULL, 0, 0};
    dure_log_set_quiet(1);
    size_t bad[] = {0, 10, 5};
    assert_int_equal(comm_bucketer_create(cm, g, bad, 2, &cfg, &b), DURE_ERR_ARG);
    assert_null(b);
    assert_non_null(strstr(dure_last_error(), "offsets[2] = 5 is below offsets[1] = 10"));
    cfg.bucket_mb = cap_mb;
    assert_int_equal(comm_bucketer_create(cm, g, offsets, NT, &cfg, &b), DURE_OK);
    assert_int_equal(comm_bucketer_ready(b, 6), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "tensor 6 is not in [0, 6)"));
    assert_int_equal(comm_bucketer_ready(b, 2), DURE_OK);
    assert_int_equal(comm_bucketer_ready(b, 2), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "marked ready twice"));
    assert_int_equal(comm_bucketer_finish(b), DURE_OK);
    /* a new step: tensor 2 may be marked again */
    assert_int_equal(comm_bucketer_ready(b, 2), DURE_OK);
    assert_int_equal(comm_bucketer_finish(b), DURE_OK);
    comm_bucketer_free(b);
    dure_log_set_quiet(0);
    free(g);
}

/* The model reports whole-tensor ranges, last first: each one completes
 * buckets that start at once, and the result is the same. */
static void test_ready_ranges(void **state)
{
    (void)state;
    comm_bucketer_t *b = NULL;
    float *g = calloc(total, sizeof *g);
    struct comm_bucket_config cfg = {cap_mb, COMM_BUCKET_ALLREDUCE, COMM_AVG, 1,
                                     NULL, NULL, 0, 0};
    assert_non_null(g);
    assert_int_equal(comm_bucketer_create(cm, g, offsets, NT, &cfg, &b), DURE_OK);
    for (size_t i = 0; i < total; i++) {
        g[i] = pat(rank, i, 7);
    }
    uint64_t seq0 = comm_seq(cm);
    /* t3 (empty, at the same offset as t4), t4, t5: buckets 0 and 1 */
    assert_int_equal(comm_bucketer_ready_range(b, offsets[4], offsets[6] - offsets[4]), DURE_OK);
    assert_int_equal(comm_seq(cm) - seq0, 2);
    assert_int_equal(comm_bucketer_ready_range(b, offsets[1], offsets[3] - offsets[1]), DURE_OK);
    assert_int_equal(comm_seq(cm) - seq0, 3);
    assert_int_equal(comm_bucketer_ready_range(b, 0, offsets[1]), DURE_OK);
    assert_int_equal(comm_seq(cm) - seq0, 4);
    assert_int_equal(comm_bucketer_finish(b), DURE_OK);
    assert_int_equal(comm_seq(cm) - seq0, 4);
    for (size_t i = 0; i < total; i++) {
        if (g[i] != avg_at(i, 7)) {
            print_error("element %zu: got %g want %g\n", i, (double)g[i], (double)avg_at(i, 7));
            fail();
        }
    }
    dure_log_set_quiet(1);
    assert_int_equal(comm_bucketer_ready_range(b, 1, 4), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "[1, 5) does not start at a tensor boundary"));
    assert_int_equal(comm_bucketer_ready_range(b, 0, 100), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "[0, 100) ends inside tensor 2 [8, 1008)"));
    assert_int_equal(comm_bucketer_ready_range(b, offsets[5], 8), DURE_ERR_ARG);
    assert_int_equal(comm_bucketer_ready_range(b, offsets[5], 7), DURE_OK);
    assert_int_equal(comm_bucketer_ready_range(b, offsets[5], 7), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "tensor 5 marked ready twice"));
    dure_log_set_quiet(0);
    assert_int_equal(comm_bucketer_finish(b), DURE_OK);
    comm_bucketer_free(b);
    free(g);
}

/* Cuts: a bucket begins at each, whatever the cap (the default here, far
 * above the vector), and the result is the same; bad cuts are refused. */
static void test_cuts(void **state)
{
    (void)state;
    comm_bucketer_t *b = NULL;
    float *g = calloc(total, sizeof *g);
    const size_t cuts[] = {offsets[2], offsets[4]};
    struct comm_bucket_config cfg = {0, COMM_BUCKET_ALLREDUCE, COMM_AVG, 1, NULL, cuts, 2, 0};
    assert_non_null(g);
    assert_int_equal(comm_bucketer_create(cm, g, offsets, NT, &cfg, &b), DURE_OK);
    /* [t3 t4 t5] (empty t3 sits at the cut offsets[4] and rides along),
     * [t2], [t0 t1] */
    const struct comm_bucket want[] = {
        {offsets[3], 2007, 3, 5},
        {offsets[2], 1000, 2, 2},
        {offsets[0], 8, 0, 1},
    };
    assert_buckets(b, want, 3);
    for (size_t i = 0; i < total; i++) {
        g[i] = pat(rank, i, 4);
    }
    uint64_t seq0 = comm_seq(cm);
    assert_int_equal(comm_bucketer_ready_range(b, offsets[2], total - offsets[2]), DURE_OK);
    assert_int_equal(comm_seq(cm) - seq0, 2);
    assert_int_equal(comm_bucketer_finish(b), DURE_OK);
    for (size_t i = 0; i < total; i++) {
        if (g[i] != avg_at(i, 4)) {
            print_error("element %zu: got %g want %g\n", i, (double)g[i], (double)avg_at(i, 4));
            fail();
        }
    }
    comm_bucketer_free(b);
    dure_log_set_quiet(1);
    const size_t inside[] = {5}, descending[] = {offsets[4], offsets[2]}, beyond[] = {4000};
    cfg.cuts = inside;
    cfg.n_cuts = 1;
    assert_int_equal(comm_bucketer_create(cm, g, offsets, NT, &cfg, &b), DURE_ERR_ARG);
    assert_null(b);
    assert_non_null(strstr(dure_last_error(), "cut 0 at 5 is not an ascending tensor boundary "
                                              "of the 3015-element vector"));
    cfg.cuts = descending;
    cfg.n_cuts = 2;
    assert_int_equal(comm_bucketer_create(cm, g, offsets, NT, &cfg, &b), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "cut 1 at 8 is not an ascending"));
    cfg.cuts = beyond;
    cfg.n_cuts = 1;
    assert_int_equal(comm_bucketer_create(cm, g, offsets, NT, &cfg, &b), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "cut 0 at 4000"));
    cfg.cuts = NULL;
    assert_int_equal(comm_bucketer_create(cm, g, offsets, NT, &cfg, &b), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "1 cuts at NULL"));
    dure_log_set_quiet(0);
    free(g);
}

/* More buckets than the comm's request slots (max_inflight 256): the
 * oldest are waited for as new ones start; every result is still right. */
static void test_more_buckets_than_slots(void **state)
{
    (void)state;
    enum { NM = 600 };
    size_t many[NM + 1];
    for (int t = 0; t <= NM; t++) {
        many[t] = (size_t)t * 3;
    }
    float *m = calloc(3 * NM, sizeof *m);
    comm_bucketer_t *b = NULL;
    struct comm_bucket_config cfg = {3 * 4 / 1048576.0, COMM_BUCKET_ALLREDUCE, COMM_AVG, 1,
                                     NULL, NULL, 0, 0};
    assert_int_equal(comm_bucketer_create(cm, m, many, NM, &cfg, &b), DURE_OK);
    assert_int_equal(comm_bucketer_count(b), NM);
    assert_true(comm_bucketer_count(b) > comm_max_inflight(cm));
    for (size_t i = 0; i < 3 * NM; i++) {
        m[i] = pat(rank, i, 0);
    }
    for (int t = NM - 1; t >= 0; t--) {
        assert_int_equal(comm_bucketer_ready(b, t), DURE_OK);
    }
    assert_int_equal(comm_bucketer_finish(b), DURE_OK);
    for (size_t i = 0; i < 3 * NM; i++) {
        if (m[i] != avg_at(i, 0)) {
            print_error("element %zu: got %g want %g\n", i, (double)m[i], (double)avg_at(i, 0));
            fail();
        }
    }
    comm_bucketer_free(b);
    free(m);
}

/* Other operations pending beside the buckets (ZeRO-3's parameter gathers
 * in exact mode): with cfg.reserve slots left to them, more buckets than the
 * comm's request slots still start while they are pending. */
static void test_reserve(void **state)
{
    (void)state;
    enum { NM = 600 };
    size_t many[NM + 1];
    for (int t = 0; t <= NM; t++) {
        many[t] = (size_t)t * 3;
    }
    float *m = calloc(3 * NM, sizeof *m), other[4] = {1, 2, 3, 4};
    comm_bucketer_t *b = NULL;
    comm_req_t *held = NULL;
    struct comm_bucket_config cfg = {3 * 4 / 1048576.0, COMM_BUCKET_ALLREDUCE, COMM_AVG, 1,
                                     NULL, NULL, 0, 1};
    assert_int_equal(comm_bucketer_create(cm, m, many, NM, &cfg, &b), DURE_OK);
    for (size_t i = 0; i < 3 * NM; i++) {
        m[i] = pat(rank, i, 0);
    }
    assert_int_equal(comm_allreduce_start(cm, other, other, 4, COMM_F32, COMM_SUM, &held),
                     DURE_OK);
    for (int t = NM - 1; t >= 0; t--) {
        assert_int_equal(comm_bucketer_ready(b, t), DURE_OK);
    }
    assert_int_equal(comm_bucketer_finish(b), DURE_OK);
    assert_int_equal(comm_wait(cm, held), DURE_OK);
    for (size_t i = 0; i < 3 * NM; i++) {
        if (m[i] != avg_at(i, 0)) {
            print_error("element %zu: got %g want %g\n", i, (double)m[i], (double)avg_at(i, 0));
            fail();
        }
    }
    assert_true(other[3] == 4.0f * (float)size);
    comm_bucketer_free(b);
    /* nothing left for the buckets */
    cfg.reserve = comm_max_inflight(cm);
    dure_log_set_quiet(1);
    assert_int_equal(comm_bucketer_create(cm, m, many, NM, &cfg, &b), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "256 are reserved for others"));
    free(m);
}

int main(int argc, char **argv)
{
    mpitest_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_allreduce_steps),
        cmocka_unit_test(test_reduce_scatter_steps),
        cmocka_unit_test(test_overlap_off),
        cmocka_unit_test(test_default_size_and_one_bucket),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_ready_ranges),
        cmocka_unit_test(test_cuts),
        cmocka_unit_test(test_more_buckets_than_slots),
        cmocka_unit_test(test_reserve),
    };
    return MPITEST_RUN_GROUP("coll_bucket", tests, setup, teardown);
}
