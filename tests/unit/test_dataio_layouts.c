/* tests/unit/test_dataio_layouts.c - robomimic and ALOHA files, written
 * here with the HDF5 C API, read in place through the reader interface. */
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

#include "dataio/loader.h"
#include "dataio/reader.h"
#include "tests/support/tmpdir.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    return tmpdir_make(dir, sizeof dir, "layout");
}

static int teardown(void **state)
{
    (void)state;
    return tmpdir_remove(dir);
}

/* The value every test file stores: episode e, key k, timestep t, column j.
 * Exact in every stored type: key 1 is stored as int16, key 3 as float16
 * (small multiples of 1/4, negative too). */
static double val(int e, int k, int t, int j)
{
    if (k == 1) {
        return e * 1000 + k * 100 + t + j;
    }
    if (k == 3) {
        return 0.5 * t + 0.25 * j - 8.0 + e;
    }
    return e * 1000 + k * 100 + t + 0.25 * j;
}

/* A [T, cols] (cols 0 = 1-D) dataset of ftype; chunk rows 0 = contiguous. */
static void dset(hid_t loc, const char *name, hid_t ftype, int e, int k, int T, int cols,
                 int chunk, int gzip)
{
    hsize_t dims[2] = {(hsize_t)T, (hsize_t)(cols ? cols : 1)};
    int rank = cols ? 2 : 1, n = T * (cols ? cols : 1);
    double *v = malloc((size_t)n * sizeof *v);
    for (int t = 0; t < T; t++) {
        for (int j = 0; j < (cols ? cols : 1); j++) {
            v[t * (cols ? cols : 1) + j] = val(e, k, t, j);
        }
    }
    hid_t sp = H5Screate_simple(rank, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunk) {
        hsize_t cd[2] = {(hsize_t)chunk, dims[1]};
        H5Pset_chunk(dcpl, rank, cd);
        if (gzip) {
            H5Pset_shuffle(dcpl);
            H5Pset_deflate(dcpl, 4);
        }
    }
    hid_t d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    assert_true(d >= 0);
    assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    free(v);
}

static void str_attr(hid_t obj, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    H5Tset_size(t, strlen(v) + 1);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, v);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

/* Set the float64 root attribute `name` of the file at path. */
static void f64_attr(const char *path, const char *name, double v)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), sp = H5Screate(H5S_SCALAR);
    assert_true(f >= 0);
    hid_t a = H5Acreate2(f, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0 && H5Awrite(a, H5T_NATIVE_DOUBLE, &v) >= 0);
    H5Aclose(a);
    H5Sclose(sp);
    H5Fclose(f);
}

static hid_t group(hid_t loc, const char *name)
{
    hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(g >= 0);
    return g;
}

static const char *demos[] = {"demo_0", "demo_1", "demo_2", "demo_10"};
static const int lens[] = {50, 60, 40, 70};

/* robomimic: obs/eef_pos float64 [T,3] contiguous, obs/gripper float32 [T]
 * gzip+shuffle, obs/agentview_image uint8 [T,4,4,3], actions float32 [T,7]
 * chunked; mask/valid = [demo_1] as fixed-length strings (h5py's 'S'), and
 * with train_mask a mask/train of those names (NULL-terminated). */
static void make_robomimic(const char *path, int bad_num_samples, int empty_demo,
                           const char *const *train_mask)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t data = group(f, "data");
    str_attr(data, "env_args", "{\"env_name\": \"Lift\", \"type\": 1, \"env_kwargs\": "
                               "{\"control_freq\": 20, \"has_renderer\": false}}");
    /* Created in an order that is not the natural one. */
    for (int i = 3; i >= 0; i--) {
        int e = i, T = empty_demo && e == 2 ? 0 : lens[e];
        hid_t g = group(data, demos[e]);
        hid_t obs = group(g, "obs");
        dset(obs, "eef_pos", H5T_IEEE_F64LE, e, 0, T, 3, 0, 0);
        dset(obs, "gripper", H5T_IEEE_F32LE, e, 1, T, 0, T > 16 ? 16 : 1, 1);
        hsize_t id[4] = {(hsize_t)T, 4, 4, 3};
        hid_t sp = H5Screate_simple(4, id, NULL);
        hid_t im = H5Dcreate2(obs, "agentview_image", H5T_STD_U8LE, sp, H5P_DEFAULT,
                              H5P_DEFAULT, H5P_DEFAULT);
        H5Dclose(im);
        H5Sclose(sp);
        dset(g, "actions", H5T_IEEE_F32LE, e, 2, T, 7, T > 10 ? 10 : 1, 0);
        int64_t ns = T + (bad_num_samples && e == 1);
        hid_t asp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(g, "num_samples", H5T_STD_I64LE, asp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT64, &ns);
        H5Aclose(a);
        H5Sclose(asp);
        H5Gclose(obs);
        H5Gclose(g);
    }
    hid_t mask = group(f, "mask");
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 6);
    hsize_t one = 1;
    hid_t sp = H5Screate_simple(1, &one, NULL);
    hid_t d = H5Dcreate2(mask, "valid", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, "demo_1");
    H5Dclose(d);
    H5Sclose(sp);
    if (train_mask) {
        char names[8][8] = {{0}};
        hsize_t n = 0;
        for (; train_mask[n]; n++) {
            snprintf(names[n], sizeof names[n], "%s", train_mask[n]);
        }
        H5Tset_size(t, 8);
        sp = H5Screate_simple(1, &n, NULL);
        d = H5Dcreate2(mask, "train", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, names);
        H5Dclose(d);
        H5Sclose(sp);
    }
    H5Tclose(t);
    H5Gclose(mask);
    H5Gclose(data);
    H5Fclose(f);
}

static dure_status_t open_quiet(const char *path, dataio_layout_t layout, const char *keys,
                                dataio_reader_t **r)
{
    struct dataio_reader_config rc = {.path = path, .layout = layout, .keys = keys,
                                      .io = DATAIO_IO_SERIAL, .comm = MPI_COMM_NULL};
    dure_log_set_quiet(1);
    dure_status_t st = dataio_reader_open(&rc, r);
    dure_log_set_quiet(0);
    return st;
}

static void check_error(const char *path, dataio_layout_t layout, const char *keys,
                        const char *text)
{
    dataio_reader_t *r = NULL;
    assert_int_not_equal(open_quiet(path, layout, keys, &r), DURE_OK);
    assert_null(r);
    if (!strstr(dure_last_error(), text)) {
        fail_msg("error '%s' does not mention '%s'", dure_last_error(), text);
    }
}

/* Check row t of episode e against the keys (key index, columns) given. */
static void check_rows(dataio_reader_t *r, int e, int e_file, const int *key, const int *cols,
                       int nk)
{
    const struct dataio_dataset_info *in = dataio_reader_info(r);
    int64_t T = in->episode_start[e + 1] - in->episode_start[e];
    dataio_scratch_t *s = NULL;
    assert_int_equal(dataio_scratch_create(r, T, &s), DURE_OK);
    float *x = malloc((size_t)(T * in->n_channels) * sizeof *x);
    assert_int_equal(dataio_reader_read_logged(r, e, 0, T, x, s), DURE_OK);
    for (int64_t t = 0; t < T; t++) {
        int ch = 0;
        for (int k = 0; k < nk; k++) {
            for (int j = 0; j < cols[k]; j++, ch++) {
                float want = (float)val(e_file, key[k], (int)t, j);
                if (x[t * in->n_channels + ch] != want) {
                    fail_msg("episode %d t %lld channel %d: %g, want %g", e, (long long)t, ch,
                             x[t * in->n_channels + ch], want);
                }
            }
        }
    }
    free(x);
    dataio_scratch_free(s);
}

static void test_robomimic_keys_in_order(void **state)
{
    (void)state;
    char p[128];
    snprintf(p, sizeof p, "%s/robomimic.hdf5", dir);
    make_robomimic(p, 0, 0, NULL);
    dataio_reader_t *r = NULL;
    assert_int_equal(open_quiet(p, DATAIO_LAYOUT_ROBOMIMIC, "eef_pos, actions,obs/gripper", &r),
                     DURE_OK);
    const struct dataio_dataset_info *in = dataio_reader_info(r);
    assert_int_equal(in->n_episodes, 4);
    assert_int_equal(in->n_channels, 11);
    assert_string_equal(in->channel_names[0], "eef_pos[0]");
    assert_string_equal(in->channel_names[3], "actions[0]");
    assert_string_equal(in->channel_names[10], "obs/gripper");
    assert_true(in->sample_rate_hz == 20.0);
    for (int e = 0; e < 4; e++) {
        assert_string_equal(in->episode_names[e], demos[e]); /* demo_10 last */
        assert_int_equal(in->episode_start[e + 1] - in->episode_start[e], lens[e]);
        assert_int_equal(in->ep_split[e], e == 1);
        static const int key[] = {0, 2, 1}, cols[] = {3, 7, 1};
        check_rows(r, e, e, key, cols, 3);
    }
    dataio_reader_close(r);

    /* Default keys: obs/ datasets sorted (the image excluded), then actions. */
    assert_int_equal(open_quiet(p, DATAIO_LAYOUT_ROBOMIMIC, NULL, &r), DURE_OK);
    in = dataio_reader_info(r);
    assert_int_equal(in->n_channels, 11);
    assert_string_equal(in->channel_names[0], "obs/eef_pos[0]");
    assert_string_equal(in->channel_names[3], "obs/gripper");
    assert_string_equal(in->channel_names[4], "actions[0]");
    static const int key[] = {0, 1, 2}, cols[] = {3, 1, 7};
    check_rows(r, 3, 3, key, cols, 3);
    dataio_reader_close(r);

    /* The loader streams it like any other layout. */
    struct dataio_loader_config c;
    dataio_loader_config_init(&c);
    c.path = p;
    c.layout = DATAIO_LAYOUT_ROBOMIMIC;
    c.keys = "actions";
    c.window = 20;
    c.global_batch = 2;
    dataio_loader_t *ld = NULL;
    assert_int_equal(dataio_loader_open(&c, &ld), DURE_OK);
    assert_int_equal(dataio_loader_windows(ld), 2 + 2 + 3); /* demo_1 is validation */
    struct dataio_batch b;
    assert_int_equal(dataio_loader_next(ld, &b), DURE_OK);
    assert_int_equal(b.channels, 7);
    dataio_loader_close(ld);

    /* mask/train names the demos that train: demo_2 is in neither mask and
     * was trained on before mask/train was read. */
    static const char *const train[] = {"demo_0", "demo_10", NULL};
    make_robomimic(p, 0, 0, train);
    c.layout = DATAIO_LAYOUT_AUTO;
    assert_int_equal(dataio_loader_open(&c, &ld), DURE_OK);
    in = dataio_loader_info(ld);
    assert_int_equal(in->layout, DATAIO_LAYOUT_ROBOMIMIC);
    assert_string_equal(in->split_from, "mask/train, mask/valid");
    assert_int_equal(in->ep_split[2], DATAIO_EP_UNUSED);
    assert_int_equal(dataio_loader_windows(ld), 2 + 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(dataio_loader_next(ld, &b), DURE_OK);
        assert_true(b.episode[0] == 0 || b.episode[0] == 3);
        assert_true(b.episode[1] == 0 || b.episode[1] == 3);
    }
    dataio_loader_close(ld);
    unlink(p);
}

static void test_robomimic_errors(void **state)
{
    (void)state;
    char p[128];
    snprintf(p, sizeof p, "%s/bad.hdf5", dir);
    make_robomimic(p, 0, 0, NULL);
    check_error(p, DATAIO_LAYOUT_ROBOMIMIC, "eef_pos,joint_vel",
                "demo 'data/demo_0' has no key 'joint_vel' (available: obs/eef_pos, "
                "obs/gripper, actions)");
    check_error(p, DATAIO_LAYOUT_ROBOMIMIC, "agentview_image",
                "dataset '/data/demo_0/obs/agentview_image' has rank 4 (shape 50 x 4 x 4 x 3)");
    check_error(p, DATAIO_LAYOUT_DURE, NULL, "is not a dure dataset");
    make_robomimic(p, 1, 0, NULL);
    check_error(p, DATAIO_LAYOUT_ROBOMIMIC, NULL,
                "demo 'data/demo_1': attribute num_samples = 61 but its datasets have 60");
    make_robomimic(p, 0, 1, NULL);
    check_error(p, DATAIO_LAYOUT_ROBOMIMIC, NULL, "demo 'data/demo_2' is an empty episode");
    static const char *const missing[] = {"demo_0", "demo_7", NULL};
    make_robomimic(p, 0, 0, missing);
    check_error(p, DATAIO_LAYOUT_AUTO, NULL, "'mask/train' names demo 'demo_7' (entry 1), "
                "which is not in data/ (4 demos, from 'demo_0' to 'demo_10')");
    unlink(p);
}

/* ALOHA: qpos float32 [T,4], effort int16 big-endian [T,4], action float64
 * [T,4], f16 IEEE half [T,2], images uint8 [T,4,4]. */
static void make_aloha(const char *path, int e, int T, int bad_action_rows)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t obs = group(f, "observations");
    dset(obs, "qpos", H5T_IEEE_F32LE, e, 0, T, 4, 8, 0);
    dset(obs, "effort", H5T_STD_I16BE, e, 1, T, 4, 0, 0);
    hid_t half = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(half, 15, 10, 5, 0, 10);
    H5Tset_size(half, 2);
    H5Tset_ebias(half, 15);
    dset(obs, "f16", half, e, 3, T, 2, 0, 0);
    H5Tclose(half);
    hid_t imgs = group(obs, "images");
    hsize_t id[3] = {(hsize_t)T, 4, 4};
    hid_t sp = H5Screate_simple(3, id, NULL);
    hid_t im = H5Dcreate2(imgs, "cam_high", H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                          H5P_DEFAULT);
    H5Dclose(im);
    H5Sclose(sp);
    dset(f, "action", H5T_IEEE_F64LE, e, 2, T + bad_action_rows, 4, 0, 0);
    H5Gclose(imgs);
    H5Gclose(obs);
    H5Fclose(f);
}

static void test_aloha_glob_in_natural_order(void **state)
{
    (void)state;
    static const int eps[] = {1, 2, 10}, T[] = {30, 40, 35};
    char p[128], glob[128];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/episode_%d.hdf5", dir, eps[i]);
        make_aloha(p, eps[i], T[i], 0);
    }
    snprintf(glob, sizeof glob, "%s/episode_*.hdf5", dir);
    dataio_reader_t *r = NULL;
    assert_int_equal(open_quiet(glob, DATAIO_LAYOUT_EPISODE_FILES, "/observations/qpos,action,"
                                "observations/effort,observations/f16", &r), DURE_OK);
    const struct dataio_dataset_info *in = dataio_reader_info(r);
    assert_int_equal(in->n_episodes, 3);
    assert_int_equal(in->n_channels, 14);
    assert_null(in->ep_split);
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "episode_%d.hdf5", eps[i]);
        assert_string_equal(in->episode_names[i], name);
        /* qpos float32, action float64, effort int16 big-endian, f16 half. */
        static const int key[] = {0, 2, 1, 3}, cols[] = {4, 4, 4, 2};
        check_rows(r, i, eps[i], key, cols, 4);
    }
    dataio_reader_close(r);

    /* Default keys: every 1-D/2-D numeric dataset, sorted; images excluded. */
    assert_int_equal(open_quiet(glob, DATAIO_LAYOUT_AUTO, NULL, &r), DURE_OK);
    in = dataio_reader_info(r);
    assert_int_equal(in->n_channels, 14);
    assert_string_equal(in->channel_names[0], "action[0]");
    assert_string_equal(in->channel_names[4], "observations/effort[0]");
    assert_string_equal(in->channel_names[8], "observations/f16[0]");
    assert_string_equal(in->channel_names[10], "observations/qpos[0]");
    dataio_reader_close(r);

    snprintf(p, sizeof p, "%s/episode_3.hdf5", dir);
    make_aloha(p, 3, 20, 1);
    check_error(glob, DATAIO_LAYOUT_EPISODE_FILES, "observations/qpos,action",
                "episode_3.hdf5': key 'action' has 21 timesteps but key 'observations/qpos' "
                "has 20");
    check_error(glob, DATAIO_LAYOUT_EPISODE_FILES, "observations/qvel",
                "has no key 'observations/qvel' (available: action, observations/effort");
    unlink(p);
    /* A key twice gives two channels of one name: refused, they would share a
     * batch column. */
    check_error(glob, DATAIO_LAYOUT_EPISODE_FILES, "action,observations/qpos,action",
                "channels 0 and 8 are both named 'action[0]'");
    /* The files state their rate: one of them at another is refused (dure
     * does not resample), naming both; a file that states none is taken to
     * be at the others'. */
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/episode_%d.hdf5", dir, eps[i]);
        if (i != 1) {
            f64_attr(p, "sample_rate_hz", i == 2 ? 50.0 : 100.0);
        }
    }
    check_error(glob, DATAIO_LAYOUT_EPISODE_FILES, "action", "episode_10.hdf5' is sampled at "
                "50 Hz (attribute sample_rate_hz) but file '");
    check_error(glob, DATAIO_LAYOUT_EPISODE_FILES, "action", "episode_1.hdf5' at 100 Hz");
    snprintf(p, sizeof p, "%s/episode_10.hdf5", dir);
    make_aloha(p, 10, 35, 0);
    f64_attr(p, "sample_rate_hz", 100.0);
    assert_int_equal(open_quiet(glob, DATAIO_LAYOUT_EPISODE_FILES, "action", &r), DURE_OK);
    assert_true(dataio_reader_info(r)->sample_rate_hz == 100.0);
    dataio_reader_close(r);
    snprintf(glob, sizeof glob, "%s/nothing_*.hdf5", dir);
    check_error(glob, DATAIO_LAYOUT_EPISODE_FILES, NULL, "no episode file matches");
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/episode_%d.hdf5", dir, eps[i]);
        unlink(p);
    }
}

int main(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_robomimic_keys_in_order),
        cmocka_unit_test(test_robomimic_errors),
        cmocka_unit_test(test_aloha_glob_in_natural_order),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
