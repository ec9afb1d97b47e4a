/* tests/unit/test_dataio_badinput.c - every bad dure file gets an error
 * naming the file, dataset and problem; dtypes are converted or refused;
 * writers leave nothing behind when they fail, nor `dure data stats` on a
 * full disk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataio/format.h"
#include "dataio/gen.h"
#include "dataio/reader.h"
#include "dataio/stats.h"
#include "tests/support/tmpdir.h"

static char dir[64];
static char path[128];
static char mounted[96]; /* test_stats_full_disk's tmpfs while mounted */

static int setup(void **state)
{
    (void)state;
    if (tmpdir_make(dir, sizeof dir, "bad") != 0) {
        return -1;
    }
    snprintf(path, sizeof path, "%s/f.h5", dir);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (mounted[0]) {
        umount2(mounted, MNT_DETACH);
    }
    return tmpdir_remove(dir);
}

/* How to spoil a hand-made dure file. */
struct spec {
    hid_t type;          /* of /signals */
    int rank;            /* of /signals */
    int no_signals, no_format, empty_episode, short_episodes, names;
    int dup_name;        /* both channels named "x" */
};

/* 3 episodes of 10 rows, 2 channels: value = row * 2 + channel. */
static void make(const struct spec *sp)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t t = H5Tcopy(H5T_C_S1), s1 = H5Screate(H5S_SCALAR);
    H5Tset_size(t, H5T_VARIABLE);
    const char *fmt = DATAIO_FORMAT_NAME;
    if (!sp->no_format) {
        hid_t a = H5Acreate2(f, "format", t, s1, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, t, &fmt);
        H5Aclose(a);
        int64_t v = 1;
        a = H5Acreate2(f, "format_version", H5T_STD_I64LE, s1, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT64, &v);
        H5Aclose(a);
    }
    double x[60];
    for (int i = 0; i < 60; i++) {
        x[i] = i;
    }
    if (!sp->no_signals) {
        hsize_t dims[3] = {30, 2, 1};
        if (sp->rank == 1) {
            dims[0] = 60;
        }
        hid_t ds = H5Screate_simple(sp->rank, dims, NULL);
        hid_t d = H5Dcreate2(f, "/signals", sp->type, ds, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(d >= 0);
        if (H5Tget_class(sp->type) == H5T_FLOAT || H5Tget_class(sp->type) == H5T_INTEGER) {
            assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
        }
        H5Dclose(d);
        H5Sclose(ds);
    }
    int64_t ep[4] = {0, 10, 20, 30};
    if (sp->empty_episode) {
        ep[2] = 10;
    }
    if (sp->short_episodes) {
        ep[1] = 3;
        ep[2] = 6;
    }
    hsize_t four = 4;
    hid_t es = H5Screate_simple(1, &four, NULL);
    hid_t d = H5Dcreate2(f, "/episodes", H5T_STD_I64LE, es, H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ep);
    H5Dclose(d);
    H5Sclose(es);
    hid_t g = H5Gcreate2(f, "/channels", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const char *names[3] = {"x", sp->dup_name ? "x" : "y", "z"};
    hsize_t nn = (hsize_t)(sp->names ? sp->names : 2);
    hid_t ns = H5Screate_simple(1, &nn, NULL);
    d = H5Dcreate2(g, "names", t, ns, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, names);
    H5Dclose(d);
    H5Sclose(ns);
    H5Gclose(g);
    H5Sclose(s1);
    H5Tclose(t);
    H5Fclose(f);
}

/* A generated dure file at p (episodes x length rows); *g its config. */
static void gen_ok(struct dataio_gen_config *g, const char *p, int64_t episodes, int64_t length)
{
    dataio_gen_config_init(g);
    g->path = p;
    g->episodes = episodes;
    g->length = length;
    assert_int_equal(dataio_gen_write(g), DURE_OK);
}

static struct spec good(void)
{
    struct spec s = {.type = H5T_IEEE_F32LE, .rank = 2};
    return s;
}

static void expect(dure_status_t want, const char *t1, const char *t2)
{
    struct dataio_reader_config rc = {.path = path, .layout = DATAIO_LAYOUT_DURE,
                                      .io = DATAIO_IO_SERIAL, .comm = MPI_COMM_NULL};
    dataio_reader_t *r = NULL;
    dure_log_set_quiet(1);
    dure_status_t st = dataio_reader_open(&rc, &r);
    dure_log_set_quiet(0);
    dataio_reader_close(r);
    assert_int_equal(st, want);
    const char *e = dure_last_error();
    if (!strstr(e, path) || !strstr(e, t1) || (t2 && !strstr(e, t2))) {
        fail_msg("error '%s' should name '%s', '%s' and '%s'", e, path, t1, t2 ? t2 : "");
    }
}

static void test_missing_not_hdf5_truncated(void **state)
{
    (void)state;
    unlink(path);
    expect(DURE_ERR_FORMAT, "No such file or directory", NULL);
    FILE *f = fopen(path, "w");
    fputs("time,x\n0,1\n", f);
    fclose(f);
    expect(DURE_ERR_FORMAT, "is not an HDF5 file", NULL);
    struct dataio_gen_config g;
    gen_ok(&g, path, 4, 3000);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size / 2), 0);
    expect(DURE_ERR_FORMAT, "is truncated", NULL);
}

static void test_missing_dataset_and_format(void **state)
{
    (void)state;
    struct spec s = good();
    s.no_signals = 1;
    make(&s);
    expect(DURE_ERR_FORMAT, "has no dataset '/signals'", NULL);
    s = good();
    s.no_format = 1;
    make(&s);
    expect(DURE_ERR_FORMAT, "is not a dure dataset", "set data.layout");
    s = good();
    s.names = 3;
    make(&s);
    expect(DURE_ERR_FORMAT, "'/channels/names' names 3 channels but '/signals' has 2", NULL);
}

/* Channels are matched by name (mixtures, validation loaders): two of one
 * dataset with one name would share a batch column, the second's values
 * overwriting the first's. */
static void test_duplicate_channel_names(void **state)
{
    (void)state;
    struct spec s = good();
    s.dup_name = 1;
    make(&s);
    expect(DURE_ERR_FORMAT, "dataset '/channels/names': channels 0 and 1 are both named 'x'",
           NULL);
}

static void test_wrong_rank(void **state)
{
    (void)state;
    struct spec s = good();
    s.rank = 1;
    make(&s);
    expect(DURE_ERR_FORMAT, "dataset '/signals' has rank 1; expected 2", NULL);
    s.rank = 3;
    make(&s);
    expect(DURE_ERR_FORMAT, "dataset '/signals' has rank 3 (shape 30 x 2 x 1)", NULL);
}

static void test_dtypes_converted_or_refused(void **state)
{
    (void)state;
    hid_t half = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(half, 15, 10, 5, 0, 10);
    H5Tset_size(half, 2);
    H5Tset_ebias(half, 15);
    hid_t types[] = {H5T_IEEE_F64LE, H5T_IEEE_F32BE, H5T_STD_I16LE, H5T_STD_U8LE,
                     H5T_STD_I64BE, half};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        struct spec s = good();
        s.type = types[i];
        make(&s);
        struct dataio_reader_config rc = {.path = path, .layout = DATAIO_LAYOUT_DURE,
                                          .io = DATAIO_IO_SERIAL, .comm = MPI_COMM_NULL};
        dataio_reader_t *r = NULL;
        assert_int_equal(dataio_reader_open(&rc, &r), DURE_OK);
        dataio_scratch_t *sc = NULL;
        assert_int_equal(dataio_scratch_create(r, 10, &sc), DURE_OK);
        float x[20];
        assert_int_equal(dataio_reader_read_logged(r, 2, 0, 10, x, sc), DURE_OK);
        for (int k = 0; k < 20; k++) {
            assert_true(x[k] == (float)(40 + k)); /* rows 20..29 */
        }
        dataio_scratch_free(sc);
        dataio_reader_close(r);
    }
    H5Tclose(half);
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, 8);
    struct spec s = good();
    s.type = str;
    make(&s);
    expect(DURE_ERR_FORMAT, "dataset '/signals': unsupported dtype (string)", NULL);
    H5Tclose(str);
    hid_t cmp = H5Tcreate(H5T_COMPOUND, 8);
    H5Tinsert(cmp, "a", 0, H5T_NATIVE_FLOAT);
    H5Tinsert(cmp, "b", 4, H5T_NATIVE_FLOAT);
    s.type = cmp;
    make(&s);
    expect(DURE_ERR_FORMAT, "unsupported dtype (compound)", NULL);
    H5Tclose(cmp);
    /* Layouts HDF5 converts and dure would decode as IEEE or whole
     * integers, reading other values: refused. */
    hid_t bias = H5Tcopy(H5T_IEEE_F32LE), narrow = H5Tcopy(H5T_STD_I32LE);
    H5Tset_ebias(bias, 100);
    H5Tset_precision(narrow, 12);
    s.type = bias;
    make(&s);
    expect(DURE_ERR_FORMAT, "dataset '/signals': unsupported 4-byte float format", NULL);
    s.type = narrow;
    make(&s);
    expect(DURE_ERR_FORMAT, "dataset '/signals': unsupported integer type: 12 bits at bit 0 of 4 "
           "bytes", NULL);
    H5Tclose(bias);
    H5Tclose(narrow);
}

/* /signals [rows, cols] float32 added to a file without one: contiguous
 * and never written (chunk_rows 0), or chunked [chunk_rows, 2] with only
 * its first chunk (none without columns). */
static void add_unwritten_signals(hsize_t rows, hsize_t cols, hsize_t chunk_rows)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hsize_t dims[2] = {rows, cols}, cd[2] = {chunk_rows, 2};
    hsize_t maxd[2] = {H5S_UNLIMITED, H5S_UNLIMITED};
    hid_t sp = H5Screate_simple(2, dims, chunk_rows ? maxd : NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunk_rows) {
        H5Pset_chunk(dcpl, 2, cd);
    }
    hid_t d = H5Dcreate2(f, "/signals", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    assert_true(d >= 0);
    if (chunk_rows && cols) {
        float one[16] = {0};
        hsize_t start[2] = {0, 0}, count[2] = {8, 2};
        hid_t mem = H5Screate_simple(2, count, NULL);
        H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, count, NULL);
        assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, mem, sp, H5P_DEFAULT, one) >= 0);
        H5Sclose(mem);
    }
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Fclose(f);
}

/* A dataset declared far larger than what the file stores would be read as
 * fill values (zeros) for hours: refused at open, without sizing anything
 * by the declared shape (a chunk table of 2^30 entries here). */
static void test_unwritten_storage(void **state)
{
    (void)state;
    struct spec s = good();
    s.no_signals = 1;
    make(&s);
    add_unwritten_signals((hsize_t)1 << 28, 2, 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size < 100000);
    expect(DURE_ERR_FORMAT, "dataset '/signals' declares [268435456, 2] float32 values (2 GiB) "
           "but only 0 of its 2147483648 bytes are stored", "fill values");
    make(&s);
    add_unwritten_signals((hsize_t)1 << 40, 2, 1024);
    expect(DURE_ERR_FORMAT, "declares [1099511627776, 2] float32 values (8192 GiB) but only 1 "
           "of its 1073741824 chunks are stored", NULL);
    /* No columns: no chunk to find, however many rows (the chunk table
     * was once walked row by row: 2^34 empty rows of chunks, a hang). */
    make(&s);
    add_unwritten_signals((hsize_t)1 << 40, 0, 64);
    expect(DURE_ERR_FORMAT, "dataset '/signals' has shape [1099511627776, 0]: no channels", NULL);
}

/* An unfiltered chunk whose index says it stores half its shape: dure
 * would read past it, libhdf5 1.10 copies the shape's bytes out of a
 * buffer of the stored size. The chunk B-tree's first key (after "TREE",
 * type 1, level, entries, two sibling addresses) starts with that size. */
static void test_short_unfiltered_chunk(void **state)
{
    (void)state;
    struct spec s = good();
    s.no_signals = 1;
    make(&s);
    add_unwritten_signals(8, 2, 8);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    static unsigned char b[1 << 20];
    size_t n = fread(b, 1, sizeof b, fp);
    size_t at = 0;
    while (at + 28 < n && memcmp(b + at, "TREE\1", 5) != 0) {
        at++;
    }
    assert_true(at + 28 < n);
    assert_int_equal(b[at + 24], 64); /* 8 rows x 2 x 4 bytes */
    b[at + 24] = 32;
    assert_int_equal(fseek(fp, (long)at + 24, SEEK_SET), 0);
    assert_int_equal(fwrite(b + at + 24, 1, 1, fp), 1);
    fclose(fp);
    expect(DURE_ERR_FORMAT, "dataset '/signals': its unfiltered chunk at row 0 stores 32 bytes, "
           "not the 64 of its shape: damaged", NULL);
}

/* The file at path opens, with its /stats. */
static void open_ok(void)
{
    struct dataio_reader_config rc = {.path = path, .layout = DATAIO_LAYOUT_DURE,
                                      .io = DATAIO_IO_SERIAL, .comm = MPI_COMM_NULL};
    dataio_reader_t *r = NULL;
    assert_int_equal(dataio_reader_open(&rc, &r), DURE_OK);
    assert_non_null(dataio_reader_info(r)->stats);
    dataio_reader_close(r);
}

/* Replace /stats/nonfinite_rows of the file at path with v[n]. */
static void set_nonfinite_rows(const int64_t *v, hsize_t n)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    assert_true(H5Ldelete(f, "/stats/nonfinite_rows", H5P_DEFAULT) >= 0);
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(f, "/stats/nonfinite_rows", H5T_STD_I64LE, sp, H5P_DEFAULT,
                         H5P_DEFAULT, H5P_DEFAULT);
    assert_true(d >= 0 && H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(f);
}

/* The rows /stats says hold a NaN or Inf: each a row of /signals, once,
 * ascending (the loader leaves them out and reads them to name the value);
 * anything else is refused naming the value and its index. */
static void test_nonfinite_rows_out_of_range(void **state)
{
    (void)state;
    struct dataio_gen_config g;
    gen_ok(&g, path, 2, 100); /* 200 rows */
    assert_int_equal(dataio_stats_update_file(path, NULL), DURE_OK);
    const int64_t ok[2] = {0, 199}, neg[1] = {-1}, past[1] = {200}, twice[2] = {7, 7};
    set_nonfinite_rows(ok, 2);
    open_ok();
    set_nonfinite_rows(neg, 1);
    expect(DURE_ERR_FORMAT, "'nonfinite_rows': value -1 at index 0 is not a row of '/signals' "
           "(0 to 199)", NULL);
    set_nonfinite_rows(past, 1);
    expect(DURE_ERR_FORMAT, "value 200 at index 0", NULL);
    set_nonfinite_rows(twice, 2);
    expect(DURE_ERR_FORMAT, "value 7 at index 1", NULL);
}

static void test_empty_episode(void **state)
{
    (void)state;
    struct spec s = good();
    s.empty_episode = 1;
    make(&s);
    expect(DURE_ERR_FORMAT, "dataset '/episodes': episode 1 is empty", NULL);
}

static void test_writer_refuses_and_leaves_nothing(void **state)
{
    (void)state;
    unlink(path);
    int before = tmpdir_count(dir);
    const char *names[2] = {"a", "a"};
    struct dataio_writer_config wc = {.path = path, .n_channels = 2, .channel_names = names,
                                      .sample_rate_hz = 10, .source = "t"};
    dataio_writer_t *w = NULL;
    dure_log_set_quiet(1);
    assert_int_equal(dataio_writer_open(&wc, &w), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "channels 0 and 1 are both named 'a'"));
    names[1] = "b";
    assert_int_equal(dataio_writer_open(&wc, &w), DURE_OK);
    float rows[4] = {1, 2, 3, 4};
    assert_int_equal(dataio_writer_end_episode(w), DURE_ERR_FORMAT);
    assert_non_null(strstr(dure_last_error(), "episode 0 is empty"));
    assert_int_equal(dataio_writer_append(w, rows, 2), DURE_OK);
    assert_int_equal(tmpdir_count(dir), before + 1); /* the temporary file */
    /* Rows never closed into an episode: finish refuses, removes the temp. */
    assert_int_equal(dataio_writer_finish(w), DURE_ERR_FORMAT);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "rows after the last episode were never closed"));
    assert_int_equal(tmpdir_count(dir), before);
    assert_int_not_equal(access(path, F_OK), 0);
    /* A directory that does not exist. */
    char nodir[160];
    snprintf(nodir, sizeof nodir, "%s/missing/f.h5", dir);
    wc.path = nodir;
    dure_log_set_quiet(1);
    assert_int_equal(dataio_writer_open(&wc, &w), DURE_ERR_IO);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "missing"));
    /* A failed generation over an existing file keeps the old file. */
    struct dataio_gen_config g;
    gen_ok(&g, path, 2, 100);
    struct stat a, b;
    assert_int_equal(stat(path, &a), 0);
    g.val_fraction = 2;
    dure_log_set_quiet(1);
    assert_int_equal(dataio_gen_write(&g), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    assert_int_equal(stat(path, &b), 0);
    assert_int_equal(a.st_ino, b.st_ino);
    assert_int_equal(tmpdir_count(dir), before + 1);
}
/* The bytes of the file at f into a malloc'd buffer, *len its size. */
static unsigned char *slurp(const char *f, size_t *len)
{
    struct stat sb;
    assert_int_equal(stat(f, &sb), 0);
    unsigned char *b = malloc((size_t)sb.st_size);
    assert_non_null(b);
    int fd = open(f, O_RDONLY);
    assert_true(fd >= 0);
    assert_true(read(fd, b, (size_t)sb.st_size) == sb.st_size);
    close(fd);
    *len = (size_t)sb.st_size;
    return b;
}

/* `dure data stats` on a full disk: refused before anything is written,
 * the file byte for byte as it was (HDF5 would have left /stats pointing
 * past the file's end and the dataset unreadable); with room again, it
 * runs. A 512 KiB tmpfs, mounted as root (skipped otherwise). */
static void test_stats_full_disk_keeps_the_file(void **state)
{
    (void)state;
    char fs[96], f[128], fill[128];
    snprintf(fs, sizeof fs, "%s/fs", dir);
    assert_int_equal(mkdir(fs, 0755), 0);
    if (mount("tmpfs", fs, "tmpfs", MS_NOSUID | MS_NODEV, "size=512k") != 0) {
        printf("# skipped: mounting a tmpfs needs root (%s)\n", strerror(errno));
        rmdir(fs);
        skip();
    }
    snprintf(mounted, sizeof mounted, "%s", fs);
    snprintf(f, sizeof f, "%s/d.h5", fs);
    snprintf(fill, sizeof fill, "%s/fill", fs);
    struct dataio_gen_config g;
    gen_ok(&g, f, 2, 100);
    static const char block[4096];
    int fd = open(fill, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    while (write(fd, block, sizeof block) > 0) {
    }
    close(fd);
    size_t n0 = 0, n1 = 0;
    unsigned char *before = slurp(f, &n0);
    dure_log_set_quiet(1);
    assert_int_equal(dataio_stats_update_file(f, NULL), DURE_ERR_IO);
    dure_log_set_quiet(0);
    const char *e = dure_last_error();
    if (!strstr(e, "not enough space for /stats in dataset file '") || !strstr(e, f)) {
        fail_msg("error '%s' should say there is no room for /stats in '%s'", e, f);
    }
    unsigned char *after = slurp(f, &n1);
    assert_int_equal(n1, n0);
    assert_memory_equal(after, before, n0);
    free(after);
    free(before);
    assert_int_equal(unlink(fill), 0);
    assert_int_equal(dataio_stats_update_file(f, NULL), DURE_OK);
    snprintf(path, sizeof path, "%s", f);
    open_ok();
    snprintf(path, sizeof path, "%s/f.h5", dir);
    assert_int_equal(umount2(fs, 0), 0);
    mounted[0] = '\0';
    rmdir(fs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_not_hdf5_truncated),
        cmocka_unit_test(test_missing_dataset_and_format),
        cmocka_unit_test(test_duplicate_channel_names),
        cmocka_unit_test(test_wrong_rank),
        cmocka_unit_test(test_dtypes_converted_or_refused),
        cmocka_unit_test(test_empty_episode),
        cmocka_unit_test(test_nonfinite_rows_out_of_range),
        cmocka_unit_test(test_unwritten_storage),
        cmocka_unit_test(test_short_unfiltered_chunk),
        cmocka_unit_test(test_writer_refuses_and_leaves_nothing),
        cmocka_unit_test(test_stats_full_disk_keeps_the_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
