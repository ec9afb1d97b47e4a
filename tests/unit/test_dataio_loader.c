/* tests/unit/test_dataio_loader.c - generator, writer, reader, stats and the
 * streaming loader on real files (ranks emulated in one process). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataio/format.h"
#include "dataio/gen.h"
#include "dataio/inspect.h"
#include "dataio/loader.h"
#include "dataio/order.h"
#include "dataio/reader.h"
#include "dataio/stats.h"
#include "tests/support/tmpdir.h"

#define W 64
#define C 5

static char dir[64];
static char gen_path[128];
static const char *const gen_names5[] = {
    "cell0.j0.pos", "cell0.j0.torque", "cell0.j1.pos", "cell0.j1.torque", "cell0.spindle.vib",
};
static struct dataio_gen_config gcfg;

static int setup(void **state)
{
    (void)state;
    if (tmpdir_make(dir, sizeof dir, "dataio") != 0) {
        return -1;
    }
    snprintf(gen_path, sizeof gen_path, "%s/gen.h5", dir);
    dataio_gen_config_init(&gcfg);
    gcfg.path = gen_path;
    gcfg.episodes = 6;
    gcfg.length = 700;
    gcfg.channels = C;
    gcfg.seed = 99;
    gcfg.val_fraction = 0.2;
    gcfg.chunk_rows = 100; /* many chunks: reads cross chunk boundaries */
    return dataio_gen_write(&gcfg) == DURE_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return tmpdir_remove(dir);
}

static dataio_reader_t *open_reader(const char *path)
{
    struct dataio_reader_config rc = {.path = path, .layout = DATAIO_LAYOUT_DURE,
                                      .io = DATAIO_IO_SERIAL, .comm = MPI_COMM_NULL};
    dataio_reader_t *r = NULL;
    assert_int_equal(dataio_reader_open(&rc, &r), DURE_OK);
    return r;
}

static void test_reader_returns_generated_rows(void **state)
{
    (void)state;
    dataio_reader_t *r = open_reader(gen_path);
    const struct dataio_dataset_info *in = dataio_reader_info(r);
    assert_int_equal(in->n_episodes, 6);
    assert_int_equal(in->n_channels, C);
    assert_string_equal(in->channel_names[4], "cell0.spindle.vib");
    assert_string_equal(in->channel_units[1], "N*m");
    assert_true(in->sample_rate_hz == 100.0);
    dataio_scratch_t *s = NULL;
    assert_int_equal(dataio_scratch_create(r, 700, &s), DURE_OK);
    float *got = malloc(700 * C * sizeof *got), *want = malloc(700 * C * sizeof *want);
    for (int64_t e = 0; e < 6; e++) {
        assert_int_equal(in->episode_start[e + 1] - in->episode_start[e], 700);
        assert_int_equal(dataio_gen_rows(&gcfg, e, 0, 700, want), DURE_OK);
        assert_int_equal(dataio_reader_read_logged(r, e, 0, 700, got, s), DURE_OK);
        assert_memory_equal(got, want, 700 * C * sizeof *got);
        /* A range that starts and ends inside chunks. */
        assert_int_equal(dataio_reader_read_logged(r, e, 155, 333, got, s), DURE_OK);
        assert_memory_equal(got, want + 155 * C, 333 * C * sizeof *got);
    }
    free(got);
    free(want);
    dataio_scratch_free(s);
    dataio_reader_close(r);
}

static void test_gen_is_deterministic_for_a_seed(void **state)
{
    (void)state;
    char p2[160], p3[160];
    struct dataio_gen_config g = gcfg;
    snprintf(p2, sizeof p2, "%s/same.h5", dir);
    snprintf(p3, sizeof p3, "%s/other.h5", dir);
    g.path = p2;
    assert_int_equal(dataio_gen_write(&g), DURE_OK);
    g.path = p3;
    g.seed = 100;
    assert_int_equal(dataio_gen_write(&g), DURE_OK);
    dataio_reader_t *a = open_reader(gen_path), *b = open_reader(p2), *c = open_reader(p3);
    dataio_scratch_t *s = NULL;
    assert_int_equal(dataio_scratch_create(a, 700, &s), DURE_OK);
    float *x = malloc(700 * C * 4), *y = malloc(700 * C * 4), *z = malloc(700 * C * 4);
    assert_int_equal(dataio_reader_read_logged(a, 3, 0, 700, x, s), DURE_OK);
    assert_int_equal(dataio_reader_read_logged(b, 3, 0, 700, y, s), DURE_OK);
    assert_int_equal(dataio_reader_read_logged(c, 3, 0, 700, z, s), DURE_OK);
    assert_memory_equal(x, y, 700 * C * 4);
    assert_memory_not_equal(x, z, 700 * C * 4);
    /* The same split too. */
    for (int e = 0; e < 6; e++) {
        assert_int_equal(dataio_reader_info(a)->ep_split[e], dataio_reader_info(b)->ep_split[e]);
    }
    free(x);
    free(y);
    free(z);
    dataio_scratch_free(s);
    dataio_reader_close(a);
    dataio_reader_close(b);
    dataio_reader_close(c);
    unlink(p2);
    unlink(p3);
}

/* Reference moments in long double, two passes over the training rows. */
static void test_stored_stats_match_two_pass(void **state)
{
    (void)state;
    dataio_reader_t *r = open_reader(gen_path);
    const struct dataio_dataset_info *in = dataio_reader_info(r);
    assert_non_null(in->stats);
    assert_int_equal(in->stats->split, DATAIO_SPLIT_TRAIN);
    float *x = malloc(700 * C * 4);
    long double sum[C] = {0}, m2[C] = {0};
    int64_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t e = 0; e < 6; e++) {
            if (in->ep_split[e] == DATAIO_EP_VAL) {
                continue;
            }
            assert_int_equal(dataio_gen_rows(&gcfg, e, 0, 700, x), DURE_OK);
            for (int64_t t = 0; t < 700; t++) {
                for (int j = 0; j < C; j++) {
                    if (pass == 0) {
                        sum[j] += x[t * C + j];
                    } else {
                        long double d = x[t * C + j] - sum[j] / n;
                        m2[j] += d * d;
                    }
                }
                n += pass == 0;
            }
        }
    }
    for (int j = 0; j < C; j++) {
        double mean = (double)(sum[j] / n), sd = (double)sqrtl(m2[j] / n);
        assert_int_equal(in->stats->count[j], n);
        assert_true(fabs(in->stats->mean[j] - mean) <= 1e-9 * (fabs(mean) + sd));
        assert_true(fabs(in->stats->std[j] - sd) <= 1e-9 * sd);
    }
    free(x);
    dataio_reader_close(r);
}

static void base_cfg(struct dataio_loader_config *c, const char *path, int batch)
{
    dataio_loader_config_init(c);
    c->path = path;
    c->window = W;
    c->global_batch = batch;
    c->seed = 5;
    c->prefetch = 2;
}

static dataio_loader_t *open_loader(const struct dataio_loader_config *c)
{
    dataio_loader_t *ld = NULL;
    assert_int_equal(dataio_loader_open(c, &ld), DURE_OK);
    return ld;
}

static void test_loader_windows_hold_normalized_data(void **state)
{
    (void)state;
    struct dataio_loader_config c;
    base_cfg(&c, gen_path, 4);
    dataio_loader_t *ld = open_loader(&c);
    const struct dataio_dataset_info *in = dataio_loader_info(ld);
    const float *mean, *sd;
    dataio_loader_norm(ld, &mean, &sd);
    assert_int_equal(dataio_loader_channels(ld), C);
    assert_int_equal(dataio_loader_local_batch(ld), 4);
    /* 5 training episodes x floor(700 / 64) = 10 windows. */
    assert_int_equal(dataio_loader_windows(ld), 50);
    assert_int_equal(dataio_loader_batches_per_epoch(ld), 12);
    float *want = malloc(W * C * 4);
    for (int b = 0; b < 5; b++) {
        struct dataio_batch bt;
        assert_int_equal(dataio_loader_next(ld, &bt), DURE_OK);
        assert_int_equal(bt.position, 4 * b);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(in->ep_split[bt.episode[i]], DATAIO_EP_TRAIN);
            assert_int_equal(bt.start[i] % W, 0);
            assert_true(bt.start[i] + W <= 700);
            assert_int_equal(dataio_gen_rows(&gcfg, bt.episode[i], bt.start[i], W, want), DURE_OK);
            for (int k = 0; k < W * C; k++) {
                float x = (want[k] - mean[k % C]) / sd[k % C];
                assert_true(fabsf(bt.data[i * W * C + k] - x) <= 1e-5f * (1 + fabsf(x)));
            }
        }
    }
    struct dataio_loader_stats st;
    dataio_loader_stats(ld, &st);
    assert_int_equal(st.batches, 5);
    assert_true(st.bytes_read >= 5 * 4 * W * C * 4);
    free(want);
    dataio_loader_close(ld);
}

/* Batches of `n` steps of a loader as (episode, start) pairs and data. */
static void run(dataio_loader_t *ld, int steps, int64_t *ids, float *data)
{
    int lb = dataio_loader_local_batch(ld);
    for (int s = 0; s < steps; s++) {
        struct dataio_batch b;
        assert_int_equal(dataio_loader_next(ld, &b), DURE_OK);
        for (int i = 0; i < lb; i++) {
            ids[2 * (s * lb + i)] = b.episode[i];
            ids[2 * (s * lb + i) + 1] = b.start[i];
        }
        memcpy(data + (size_t)s * lb * W * C, b.data, (size_t)lb * W * C * 4);
    }
}

static void test_order_does_not_depend_on_rank_count(void **state)
{
    (void)state;
    enum { B = 8, STEPS = 14 }; /* 6 batches per epoch: crosses 2 epochs */
    static int64_t one[STEPS * B * 2], part[STEPS * B * 2];
    static float d1[STEPS * B * W * C], dp[STEPS * (B / 2) * W * C];
    struct dataio_loader_config c;
    base_cfg(&c, gen_path, B);
    dataio_loader_t *ld = open_loader(&c);
    run(ld, STEPS, one, d1);
    dataio_loader_close(ld);
    for (int world = 2; world <= 4; world *= 2) {
        int lb = B / world;
        for (int r = 0; r < world; r++) {
            c.rank = r;
            c.world_size = world;
            c.prefetch = 1 + r; /* prefetch depth must not matter either */
            ld = open_loader(&c);
            run(ld, STEPS, part, dp);
            dataio_loader_close(ld);
            for (int s = 0; s < STEPS; s++) {
                /* Rank r holds the r-th contiguous part of each global batch. */
                assert_memory_equal(part + 2 * s * lb, one + 2 * (s * B + r * lb),
                                    (size_t)lb * 2 * sizeof *part);
                assert_memory_equal(dp + (size_t)s * lb * W * C,
                                    d1 + ((size_t)s * B + (size_t)r * lb) * W * C,
                                    (size_t)lb * W * C * 4);
            }
        }
    }
}

static void test_epoch_visits_distinct_windows(void **state)
{
    (void)state;
    struct dataio_loader_config c;
    base_cfg(&c, gen_path, 5);
    dataio_loader_t *ld = open_loader(&c);
    int64_t n = dataio_loader_windows(ld), per = dataio_loader_batches_per_epoch(ld);
    assert_int_equal(per, 10);
    static int64_t ids[2 * 50];
    static float data[50 * W * C];
    run(ld, (int)per, ids, data);
    for (int64_t i = 0; i < per * 5; i++) {
        for (int64_t j = 0; j < i; j++) {
            assert_false(ids[2 * i] == ids[2 * j] && ids[2 * i + 1] == ids[2 * j + 1]);
        }
    }
    struct dataio_batch b;
    assert_int_equal(dataio_loader_next(ld, &b), DURE_OK);
    assert_int_equal(b.epoch, 1);
    assert_int_equal(b.position, 0);
    (void)n;
    dataio_loader_close(ld);
    /* Without shuffle: file order. */
    c.shuffle = 0;
    ld = open_loader(&c);
    run(ld, 2, ids, data);
    assert_int_equal(ids[1], 0);
    assert_int_equal(ids[3], W);
    dataio_loader_close(ld);
}

static void test_cursor_resumes_exactly(void **state)
{
    (void)state;
    enum { B = 4 };
    static int64_t a[2 * 11 * B], b[2 * 6 * B];
    static float da[11 * B * W * C], db[6 * B * W * C];
    struct dataio_loader_config c;
    base_cfg(&c, gen_path, B);
    dataio_loader_t *ld = open_loader(&c);
    run(ld, 11, a, da); /* into epoch 0's last batch (12 per epoch) */
    struct dataio_cursor cur;
    dataio_loader_cursor(ld, &cur);
    assert_int_equal(cur.epoch, 0);
    assert_int_equal(cur.position, 44);
    run(ld, 6, a, da);    /* crosses into epoch 1 */
    /* Rewind the same loader while its prefetch thread is ahead. */
    assert_int_equal(dataio_loader_set_cursor(ld, &cur), DURE_OK);
    run(ld, 6, b, db);
    assert_memory_equal(a, b, sizeof b);
    assert_memory_equal(da, db, sizeof db);
    dataio_loader_close(ld);
    /* A fresh loader with 2 emulated ranks resumes the same windows. */
    c.world_size = 2;
    c.rank = 1;
    ld = open_loader(&c);
    assert_int_equal(dataio_loader_set_cursor(ld, &cur), DURE_OK);
    run(ld, 6, b, db);
    for (int s = 0; s < 6; s++) {
        assert_memory_equal(b + 2 * s * 2, a + 2 * (s * B + 2), 4 * sizeof *a);
    }
    dataio_loader_close(ld);
    struct dataio_cursor bad = {-1, 0};
    ld = open_loader(&c);
    dure_log_set_quiet(1);
    assert_int_equal(dataio_loader_set_cursor(ld, &bad), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    dataio_loader_close(ld);
}

static void test_norm_override_and_off(void **state)
{
    (void)state;
    struct dataio_loader_config c;
    base_cfg(&c, gen_path, 2);
    float m[C] = {1, 2, 3, 4, 5}, s[C] = {2, 2, 2, 2, 0.5f};
    c.norm_mean = m;
    c.norm_std = s;
    c.shuffle = 0;
    dataio_loader_t *ld = open_loader(&c);
    struct dataio_batch b;
    assert_int_equal(dataio_loader_next(ld, &b), DURE_OK);
    float *want = malloc(W * C * 4);
    assert_int_equal(dataio_gen_rows(&gcfg, b.episode[0], b.start[0], W, want), DURE_OK);
    for (int k = 0; k < W * C; k++) {
        assert_true(fabsf(b.data[k] - (want[k] - m[k % C]) / s[k % C]) < 1e-4f);
    }
    dataio_loader_close(ld);
    c.norm_mean = c.norm_std = NULL;
    c.normalize = 0;
    ld = open_loader(&c);
    assert_int_equal(dataio_loader_next(ld, &b), DURE_OK);
    assert_memory_equal(b.data, want, W * C * 4);
    free(want);
    dataio_loader_close(ld);
}

/* A dure file written with the writer: 4 episodes of 300 rows, one
 * non-finite value at (episode 2, timestep 137, channel 3) if bad. */
static void write_file(const char *path, int bad, float value, int keep_stats)
{
    const char *names[C] = {"a", "b", "c", "d", "e"};
    struct dataio_writer_config wc = {.path = path, .n_channels = C, .channel_names = names,
                                      .sample_rate_hz = 50, .source = "test"};
    dataio_writer_t *w = NULL;
    assert_int_equal(dataio_writer_open(&wc, &w), DURE_OK);
    float *x = malloc(300 * C * 4);
    for (int e = 0; e < 4; e++) {
        for (int i = 0; i < 300 * C; i++) {
            x[i] = (float)(e * 1000 + i);
        }
        if (bad && e == 2) {
            x[137 * C + 3] = value;
        }
        assert_int_equal(dataio_writer_append(w, x, 300), DURE_OK);
        assert_int_equal(dataio_writer_end_episode(w), DURE_OK);
    }
    free(x);
    assert_int_equal(dataio_writer_finish(w), DURE_OK);
    if (!keep_stats) {
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        assert_true(f >= 0);
        assert_true(H5Ldelete(f, "/stats", H5P_DEFAULT) >= 0);
        H5Fclose(f);
    }
}

static void test_nan_refused_with_location_or_skipped(void **state)
{
    (void)state;
    char p[160];
    snprintf(p, sizeof p, "%s/nan.h5", dir);
    write_file(p, 1, NAN, 1);
    struct dataio_loader_config c;
    base_cfg(&c, p, 2);
    dataio_loader_t *ld = NULL;
    dure_log_set_quiet(1);
    assert_int_equal(dataio_loader_open(&c, &ld), DURE_ERR_FORMAT);
    dure_log_set_quiet(0);
    const char *e = dure_last_error();
    assert_non_null(strstr(e, "nan.h5"));
    assert_non_null(strstr(e, "/signals"));
    assert_non_null(strstr(e, "episode 2"));
    assert_non_null(strstr(e, "timestep 137"));
    assert_non_null(strstr(e, "channel 3 'd'"));
    assert_non_null(strstr(e, "NaN"));

    c.on_nan = DATAIO_NAN_SKIP;
    ld = open_loader(&c);
    /* 4 episodes x 4 windows of 64 in 300 rows, minus the one holding row 137. */
    assert_int_equal(dataio_loader_windows(ld), 15);
    for (int s = 0; s < 7; s++) {
        struct dataio_batch b;
        assert_int_equal(dataio_loader_next(ld, &b), DURE_OK);
        for (int i = 0; i < 2; i++) {
            assert_false(b.episode[i] == 2 && b.start[i] == 128);
        }
        for (int k = 0; k < 2 * W * C; k++) {
            assert_true(isfinite(b.data[k]));
        }
    }
    dataio_loader_close(ld);

    /* No stored stats and no normalization: found when the batch is read. */
    write_file(p, 1, INFINITY, 0);
    c.on_nan = DATAIO_NAN_REFUSE;
    c.normalize = 0;
    c.shuffle = 0;
    ld = open_loader(&c);
    dure_status_t st = DURE_OK;
    dure_log_set_quiet(1);
    for (int s = 0; s < 8 && st == DURE_OK; s++) {
        struct dataio_batch b;
        st = dataio_loader_next(ld, &b);
    }
    dure_log_set_quiet(0);
    assert_int_equal(st, DURE_ERR_FORMAT);
    assert_non_null(strstr(dure_last_error(), "timestep 137"));
    assert_non_null(strstr(dure_last_error(), "Inf"));
    dataio_loader_close(ld);
    unlink(p);
}

static void test_stats_computed_at_open_when_not_stored(void **state)
{
    (void)state;
    char p[160];
    snprintf(p, sizeof p, "%s/nostats.h5", dir);
    write_file(p, 0, 0, 0);
    struct dataio_loader_config c;
    base_cfg(&c, p, 2);
    dataio_loader_t *ld = open_loader(&c);
    const float *m, *s;
    dataio_loader_norm(ld, &m, &s);
    /* Channel j of episode e, row t holds e*1000 + t*5 + j: the mean over
     * 4 episodes of 300 rows is 1500 + 747.5 + j. */
    for (int j = 0; j < C; j++) {
        assert_true(fabsf(m[j] - (1500.0f + 747.5f + (float)j)) < 1e-3f);
    }
    dataio_loader_close(ld);
    unlink(p);
}

/* Stats stored before the data changed (rows rewritten in place) used to be
 * used silently: set aside at open, reported by inspect, computed afresh by
 * the loader, and stored again by dure data stats. */
static void test_stale_stats_are_set_aside(void **state)
{
    (void)state;
    char p[160];
    snprintf(p, sizeof p, "%s/stale.h5", dir);
    struct dataio_gen_config g = gcfg;
    g.path = p;
    g.episodes = 3;
    g.length = 200;
    assert_int_equal(dataio_gen_write(&g), DURE_OK);
    dataio_reader_t *r = open_reader(p);
    assert_non_null(dataio_reader_info(r)->stats);
    assert_true(dataio_reader_info(r)->stats->has_source);
    double stored0 = dataio_reader_info(r)->stats->mean[0];
    dataio_reader_close(r);
    /* Row 0 (always sampled) becomes 1e4 in every channel. */
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/signals", H5P_DEFAULT), sp = H5Dget_space(d);
    hsize_t start[2] = {0, 0}, count[2] = {1, C};
    float row[C];
    for (int j = 0; j < C; j++) {
        row[j] = 1e4f;
    }
    hid_t mem = H5Screate_simple(2, count, NULL);
    H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, count, NULL);
    assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, mem, sp, H5P_DEFAULT, row) >= 0);
    H5Sclose(mem);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);

    r = open_reader(p);
    const struct dataio_dataset_info *in = dataio_reader_info(r);
    assert_null(in->stats);
    assert_non_null(in->stats_stale);
    assert_non_null(strstr(in->stats_stale, "the data changed after they were computed"));
    struct dataio_stats *fresh = NULL;
    assert_int_equal(dataio_stats_compute(r, DATAIO_SPLIT_TRAIN, MPI_COMM_NULL, &fresh),
                     DURE_OK);
    dataio_reader_close(r);

    struct dataio_loader_config c;
    base_cfg(&c, p, 2);
    dure_log_set_quiet(1);
    dataio_loader_t *ld = open_loader(&c);
    dure_log_set_quiet(0);
    const float *m, *sd;
    dataio_loader_norm(ld, &m, &sd);
    assert_true(fabs(m[0] - fresh->mean[0]) < 1e-3 * fabs(fresh->mean[0]));
    assert_true(fabs(fresh->mean[0] - stored0) > 1.0); /* the plant moved it */
    dataio_loader_close(ld);

    struct dataio_inspect_config ic = {.path = p, .quick = 1};
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    int problems = 0;
    assert_int_equal(dataio_inspect(&ic, out, &problems), DURE_OK);
    fclose(out);
    assert_int_equal(problems, 1);
    assert_non_null(strstr(text, "problem: stored /stats are stale: the data changed"));
    free(text);

    assert_int_equal(dataio_stats_update_file(p, NULL), DURE_OK);
    r = open_reader(p);
    assert_non_null(dataio_reader_info(r)->stats);
    assert_true(fabs(dataio_reader_info(r)->stats->mean[0] - fresh->mean[0]) < 1e-9);
    dataio_reader_close(r);
    dataio_stats_free(fresh);
    unlink(p);
}

static void expect_open_error(const struct dataio_loader_config *c, dure_status_t want,
                              const char *text)
{
    dataio_loader_t *ld = NULL;
    dure_log_set_quiet(1);
    assert_int_equal(dataio_loader_open(c, &ld), want);
    dure_log_set_quiet(0);
    assert_null(ld);
    if (!strstr(dure_last_error(), text)) {
        fail_msg("error '%s' does not mention '%s'", dure_last_error(), text);
    }
}

static void test_open_errors_name_the_problem(void **state)
{
    (void)state;
    struct dataio_loader_config c;
    base_cfg(&c, gen_path, 4);
    c.expect_channels = 16;
    expect_open_error(&c, DURE_ERR_FORMAT, "has 5 channels but model.channels = 16");
    base_cfg(&c, gen_path, 6);
    c.world_size = 4;
    expect_open_error(&c, DURE_ERR_ARG, "global batch 6 is not a multiple of the 4 ranks");
    base_cfg(&c, gen_path, 4);
    c.window = 701;
    expect_open_error(&c, DURE_ERR_FORMAT, "no episode of the train split is as long as the "
                                           "window of 701");
    base_cfg(&c, gen_path, 64);
    expect_open_error(&c, DURE_ERR_FORMAT, "fewer than one global batch of 64");
    char p[160];
    snprintf(p, sizeof p, "%s/nosplit.h5", dir);
    write_file(p, 0, 0, 1);
    base_cfg(&c, p, 2);
    c.split = DATAIO_SPLIT_VAL;
    expect_open_error(&c, DURE_ERR_ARG, "defines no validation split");
    unlink(p);
    /* The validation split of the generated file works. */
    base_cfg(&c, gen_path, 2);
    c.split = DATAIO_SPLIT_VAL;
    dataio_loader_t *ld = open_loader(&c);
    struct dataio_batch b;
    assert_int_equal(dataio_loader_next(ld, &b), DURE_OK);
    assert_int_equal(dataio_loader_info(ld)->ep_split[b.episode[0]], DATAIO_EP_VAL);
    dataio_loader_close(ld);
}

/* A file without a split is split at open by data.val_fraction: the same
 * episodes dure data gen writes as /split/val for that fraction (its seed
 * left at DATAIO_SPLIT_SEED), in training and validation loaders alike. */
static void test_val_fraction_holds_out_episodes(void **state)
{
    (void)state;
    char none[160], stored[160];
    struct dataio_gen_config g = gcfg;
    g.episodes = 12;
    g.seed = DATAIO_SPLIT_SEED;
    snprintf(none, sizeof none, "%s/nosplit.h5", dir);
    snprintf(stored, sizeof stored, "%s/split.h5", dir);
    g.path = none;
    g.val_fraction = 0;
    assert_int_equal(dataio_gen_write(&g), DURE_OK);
    g.path = stored;
    g.val_fraction = 0.25;
    assert_int_equal(dataio_gen_write(&g), DURE_OK);
    dataio_reader_t *ref = open_reader(stored);
    const struct dataio_dataset_info *want = dataio_reader_info(ref);
    struct dataio_loader_config c;
    base_cfg(&c, none, 2);
    c.val_fraction = 0.25;
    int64_t n[2] = {0, 0};
    for (int v = 0; v < 2; v++) {
        c.split = v ? DATAIO_SPLIT_VAL : DATAIO_SPLIT_TRAIN;
        dataio_loader_t *ld = open_loader(&c);
        const struct dataio_dataset_info *in = dataio_loader_info(ld);
        assert_string_equal(in->split_from, "data.val_fraction");
        for (int e = 0; e < 12; e++) {
            assert_int_equal(in->ep_split[e], want->ep_split[e]);
        }
        n[v] = dataio_loader_windows(ld);
        dataio_loader_close(ld);
    }
    assert_int_equal(n[1], 3 * (700 / W));   /* 3 of 12 episodes held out */
    assert_int_equal(n[0], 9 * (700 / W));
    dataio_reader_close(ref);
    /* A file that has a split keeps it. */
    base_cfg(&c, gen_path, 2);
    c.val_fraction = 0.5;
    dataio_loader_t *ld = open_loader(&c);
    assert_string_equal(dataio_loader_info(ld)->split_from, "/split/val");
    dataio_loader_close(ld);
    unlink(none);
    unlink(stored);
}

static void test_short_episodes_are_skipped(void **state)
{
    (void)state;
    char p[160];
    snprintf(p, sizeof p, "%s/short.h5", dir);
    struct dataio_gen_config g = gcfg;
    g.path = p;
    g.episodes = 20;
    g.length = 200;
    g.min_length = 10;
    g.val_fraction = 0;
    assert_int_equal(dataio_gen_write(&g), DURE_OK);
    struct dataio_loader_config c;
    base_cfg(&c, p, 2);
    c.window = 100;
    dure_log_set_quiet(1);
    dataio_loader_t *ld = open_loader(&c);
    dure_log_set_quiet(0);
    int64_t want = 0;
    for (int e = 0; e < 20; e++) {
        want += dataio_gen_episode_length(&g, e) / 100;
    }
    assert_true(want > 0);
    assert_int_equal(dataio_loader_windows(ld), want);
    for (int s = 0; s < 4; s++) {
        struct dataio_batch b;
        assert_int_equal(dataio_loader_next(ld, &b), DURE_OK);
        for (int i = 0; i < 2; i++) {
            assert_true(b.start[i] + 100 <= dataio_gen_episode_length(&g, b.episode[i]));
        }
    }
    dataio_loader_close(ld);
    unlink(p);
}

/* Windows of a mixture's batches: (source, episode, start) of each. */
static void run_mix(dataio_loader_t *ld, int steps, int64_t *ids)
{
    int lb = dataio_loader_local_batch(ld);
    for (int s = 0; s < steps; s++) {
        struct dataio_batch b;
        assert_int_equal(dataio_loader_next(ld, &b), DURE_OK);
        for (int i = 0; i < lb; i++) {
            ids[3 * (s * lb + i)] = b.source[i];
            ids[3 * (s * lb + i) + 1] = b.episode[i];
            ids[3 * (s * lb + i) + 2] = b.start[i];
        }
    }
}

/*
 * Two datasets with different channel sets (the generator's 5 and 8
 * channels: the first 5 names are common) and weights 1 : 2. Each window
 * holds its own dataset's rows normalized with its own statistics, laid
 * into the union's columns, the columns it lacks 0 and masked; the shares
 * are the planned ones; the order is the same at any world size and resumes
 * from a cursor; a dataset at another sample rate is refused.
 */
static void test_mixture_of_channel_sets(void **state)
{
    (void)state;
    enum { B = 6, STEPS = 30, CU = 8 };
    char pb[160], pr[160];
    struct dataio_gen_config gb = gcfg;
    snprintf(pb, sizeof pb, "%s/mix8.h5", dir);
    gb.path = pb;
    gb.channels = CU;
    gb.episodes = 4;
    gb.length = 640;
    gb.seed = 7;
    gb.val_fraction = 0.25;
    assert_int_equal(dataio_gen_write(&gb), DURE_OK);
    struct dataio_source src[2] = {
        {.name = "a", .path = gen_path, .weight = 1.0},
        {.name = "b", .path = pb, .weight = 2.0},
    };
    const struct dataio_gen_config *gens[2] = {&gcfg, &gb};
    struct dataio_loader_config c;
    base_cfg(&c, NULL, B);
    c.n_sources = 2;
    c.sources = src;
    dataio_loader_t *ld = open_loader(&c);
    assert_int_equal(dataio_loader_sources(ld), 2);
    assert_string_equal(dataio_loader_source_name(ld, 1), "b");
    assert_int_equal(dataio_loader_channels(ld), CU);
    assert_string_equal(dataio_loader_channel_names(ld)[4], "cell0.spindle.vib");
    assert_string_equal(dataio_loader_channel_names(ld)[7], "cell0.ambient.temp");
    /* 50 + 30 windows; shares 1/3 and 2/3 of 80 = 26.67 and 53.33. */
    assert_int_equal(dataio_loader_source_windows(ld, 1), 30);
    assert_int_equal(dataio_loader_windows(ld), 80);
    assert_int_equal(dataio_loader_source_per_epoch(ld, 0), 27);
    assert_int_equal(dataio_loader_source_per_epoch(ld, 1), 53);

    float *want = malloc(W * CU * sizeof *want);
    int64_t from[2] = {0, 0};
    for (int s = 0; s < STEPS; s++) {
        struct dataio_batch b;
        assert_int_equal(dataio_loader_next(ld, &b), DURE_OK);
        for (int i = 0; i < B; i++) {
            int d = b.source[i];
            int cd = gens[d]->channels;
            const float *mean, *sd;
            dataio_loader_source_norm(ld, d, &mean, &sd);
            from[d] += b.epoch == 0;
            assert_int_equal(dataio_gen_rows(gens[d], b.episode[i], b.start[i], W, want),
                             DURE_OK);
            for (int k = 0; k < CU; k++) {
                assert_true(b.mask[i * CU + k] == (k < cd ? 1.0f : 0.0f));
            }
            for (int t = 0; t < W; t++) {
                for (int k = 0; k < CU; k++) {
                    float got = b.data[(i * W + t) * CU + k];
                    float x = k < cd ? (want[t * cd + k] - mean[k]) / sd[k] : 0.0f;
                    assert_true(fabsf(got - x) <= 1e-5f * (1 + fabsf(x)));
                }
            }
        }
    }
    /* Epoch 0 is the first 13 batches: 78 of its 80 positions. */
    assert_true(from[0] >= 27 - 2 && from[0] <= 27 && from[1] >= 53 - 2 && from[1] <= 53);
    assert_int_equal(from[0] + from[1], 78);
    free(want);
    dataio_loader_close(ld);

    /* The same windows at 2 ranks, and from a cursor. */
    static int64_t one[STEPS * B * 3], part[STEPS * B * 3];
    ld = open_loader(&c);
    run_mix(ld, STEPS, one);
    dataio_loader_close(ld);
    c.world_size = 2;
    c.rank = 1;
    ld = open_loader(&c);
    struct dataio_cursor cur = {1, 4 * B};
    assert_int_equal(dataio_loader_set_cursor(ld, &cur), DURE_OK);
    run_mix(ld, 5, part);
    for (int s = 0; s < 5; s++) {
        /* Epoch 1 starts at batch 13. */
        assert_memory_equal(part + 3 * s * (B / 2), one + 3 * ((13 + 4 + s) * B + B / 2),
                            3 * (B / 2) * sizeof *part);
    }
    dataio_loader_close(ld);

    /* A validation loader on the training channels: a dataset channel they
     * lack is an error. */
    base_cfg(&c, pb, 2);
    c.channel_names = gen_names5;
    c.n_channel_names = 5;
    expect_open_error(&c, DURE_ERR_FORMAT, "has channel 'cell0.spindle.current', which the "
                                           "training data do not have");

    /* Another sample rate: refused, naming both. */
    snprintf(pr, sizeof pr, "%s/mix50.h5", dir);
    gb.path = pr;
    gb.sample_rate_hz = 50;
    assert_int_equal(dataio_gen_write(&gb), DURE_OK);
    src[1].path = pr;
    base_cfg(&c, NULL, B);
    c.n_sources = 2;
    c.sources = src;
    expect_open_error(&c, DURE_ERR_FORMAT, "sampled at 50 Hz but the run's rate is 100 Hz");
    unlink(pb);
    unlink(pr);
}

/* Plants of two profiles (no channel in common): the second's columns
 * come after the first's, each window holds its own plant's rows there and
 * zeros, masked, elsewhere. */
static void test_mixture_of_plants(void **state)
{
    (void)state;
    enum { B = 4, CM = 12, CA = 8 };
    char pm[160], pa[160];
    struct dataio_gen_config gm = gcfg, ga = gcfg;
    snprintf(pm, sizeof pm, "%s/mill.h5", dir);
    snprintf(pa, sizeof pa, "%s/arm.h5", dir);
    gm.path = pm;
    gm.sensors = dataio_gen_profile("mill")->sensors;
    gm.channels = CM;
    ga.path = pa;
    ga.sensors = dataio_gen_profile("arm")->sensors;
    ga.channels = CA;
    ga.seed = 3;
    assert_int_equal(dataio_gen_write(&gm), DURE_OK);
    assert_int_equal(dataio_gen_write(&ga), DURE_OK);
    struct dataio_source src[2] = {
        {.name = "mill", .path = pm, .weight = 1.0},
        {.name = "arm", .path = pa, .weight = 1.0},
    };
    const struct dataio_gen_config *gens[2] = {&gm, &ga};
    const int first[2] = {0, CM};
    struct dataio_loader_config c;
    base_cfg(&c, NULL, B);
    c.n_sources = 2;
    c.sources = src;
    dataio_loader_t *ld = open_loader(&c);
    assert_int_equal(dataio_loader_channels(ld), CM + CA);
    assert_string_equal(dataio_loader_channel_names(ld)[0], "cell0.spindle.vib");
    assert_string_equal(dataio_loader_channel_names(ld)[CM - 1], "cell2.ambient.temp");
    assert_string_equal(dataio_loader_channel_names(ld)[CM + 5], "cell1.j0.torque");
    assert_string_equal(dataio_loader_channel_units(ld)[CM + 5], "N*m");
    float *want = malloc(W * CM * sizeof *want);
    int seen[2] = {0, 0};
    for (int s = 0; s < 6; s++) {
        struct dataio_batch b;
        assert_int_equal(dataio_loader_next(ld, &b), DURE_OK);
        for (int i = 0; i < B; i++) {
            int d = b.source[i], cd = gens[d]->channels;
            const float *mean, *sd;
            seen[d]++;
            dataio_loader_source_norm(ld, d, &mean, &sd);
            assert_int_equal(dataio_gen_rows(gens[d], b.episode[i], b.start[i], W, want),
                             DURE_OK);
            for (int k = 0; k < CM + CA; k++) {
                int own = k >= first[d] && k < first[d] + cd;
                assert_true(b.mask[i * (CM + CA) + k] == (own ? 1.0f : 0.0f));
                for (int t = 0; t < W; t++) {
                    float got = b.data[(i * W + t) * (CM + CA) + k];
                    int j = k - first[d];
                    float x = own ? (want[t * cd + j] - mean[j]) / sd[j] : 0.0f;
                    assert_true(fabsf(got - x) <= 1e-5f * (1 + fabsf(x)));
                }
            }
        }
    }
    assert_true(seen[0] > 0 && seen[1] > 0);
    free(want);
    dataio_loader_close(ld);
    unlink(pm);
    unlink(pa);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_returns_generated_rows),
        cmocka_unit_test(test_gen_is_deterministic_for_a_seed),
        cmocka_unit_test(test_stored_stats_match_two_pass),
        cmocka_unit_test(test_loader_windows_hold_normalized_data),
        cmocka_unit_test(test_order_does_not_depend_on_rank_count),
        cmocka_unit_test(test_epoch_visits_distinct_windows),
        cmocka_unit_test(test_cursor_resumes_exactly),
        cmocka_unit_test(test_norm_override_and_off),
        cmocka_unit_test(test_nan_refused_with_location_or_skipped),
        cmocka_unit_test(test_stats_computed_at_open_when_not_stored),
        cmocka_unit_test(test_stale_stats_are_set_aside),
        cmocka_unit_test(test_open_errors_name_the_problem),
        cmocka_unit_test(test_short_episodes_are_skipped),
        cmocka_unit_test(test_val_fraction_holds_out_episodes),
        cmocka_unit_test(test_mixture_of_channel_sets),
        cmocka_unit_test(test_mixture_of_plants),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
