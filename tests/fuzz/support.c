/* tests/fuzz/support.c - see support.h. */
#include "tests/fuzz/support.h"

#include <dirent.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp_dir[256];

static void remove_dir(void)
{
    DIR *d = opendir(tmp_dir);
    if (!d) {
        return;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char p[512];
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", tmp_dir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);
    rmdir(tmp_dir);
}

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fuzz: property broken: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Memory-backed when it can be: the code under test fsyncs its outputs,
     * which costs a disk flush per input elsewhere. */
    const char *base = getenv("TMPDIR");
    if (!base || !*base) {
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    }
    dure_log_set_quiet(1);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    /* HDF5 keeps freed fixed-size structures for reuse up to 64 KiB per
     * kind by default; its metadata cache (about 600 KiB) then goes back to
     * malloc at every close, and under ASan comes back as fresh pages at
     * every open. 2 MiB per kind, 16 MiB in all, keep it; the array and
     * block lists keep their defaults (4 MiB/256 KiB, 16 MiB/1 MiB). */
    H5set_free_list_limits(16 << 20, 2 << 20, 4 << 20, 256 << 10, 16 << 20, 1 << 20);
    snprintf(tmp_dir, sizeof tmp_dir, "%s/dure-fuzz.XXXXXX", base);
    if (!mkdtemp(tmp_dir)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(remove_dir);
    return 0;
}

const char *fuzz_dir(void) { return tmp_dir; }

void fuzz_write_file(const char *name, const uint8_t *data, size_t size, char *path,
                     size_t cap)
{
    int n = snprintf(path, cap, "%s/%s", tmp_dir, name);
    FUZZ_ASSERT(n > 0 && (size_t)n < cap, "path of '%s' does not fit", name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_ASSERT(fd >= 0, "cannot create '%s'", path);
    for (size_t done = 0; done < size;) {
        ssize_t w = write(fd, data + done, size - done);
        FUZZ_ASSERT(w > 0, "cannot write '%s'", path);
        done += (size_t)w;
    }
    close(fd);
}

void fuzz_error_reset(void)
{
    /* The quiet log still records the message: an empty one clears it. */
    dure_log_error(__FILE__, __LINE__, "%s", "");
}

dure_status_t fuzz_expect_error(dure_status_t st, const char *what)
{
    FUZZ_ASSERT((int)st >= 0 && st < DURE_STATUS_COUNT, "%s returned status %d, not a "
                "dure_status_t", what, (int)st);
    FUZZ_ASSERT(st != DURE_ERR_INTERNAL, "%s: broken invariant: %s", what, dure_last_error());
    FUZZ_ASSERT(st == DURE_OK || dure_last_error()[0] != '\0',
                "%s failed with %s but logged no message", what, dure_status_name(st));
    return st;
}

void fuzz_expect_h5_closed(const char *what)
{
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    FUZZ_ASSERT(n == 0, "%s left %zd HDF5 object(s) open (files %zd, datasets %zd, "
                "groups %zd, types %zd, attributes %zd)", what, n,
                H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_FILE),
                H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_DATASET),
                H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_GROUP),
                H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_DATATYPE),
                H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ATTR));
}

char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    FUZZ_ASSERT(s != NULL, "out of memory copying %zu bytes", size);
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Rows [row0, row0+n) of dataset d (/signals) as HDF5 itself reads them,
 * into ref (n, C); 0 on success, -1 when HDF5 cannot (nothing to compare). */
static int h5_reference_rows(hid_t d, int64_t row0, int64_t n, int C, float *ref)
{
    int rc = -1;
    hid_t fs = d < 0 ? -1 : H5Dget_space(d);
    hsize_t dims[2], start[2] = {(hsize_t)row0, 0}, count[2] = {(hsize_t)n, (hsize_t)C};
    hid_t ms = H5Screate_simple(2, count, NULL);
    if (fs >= 0 && ms >= 0 && H5Sget_simple_extent_ndims(fs) == 2 &&
        H5Sget_simple_extent_dims(fs, dims, NULL) == 2 && dims[1] == (hsize_t)C &&
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
        H5Dread(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, ref) >= 0) {
        rc = 0;
    }
    if (ms >= 0) {
        H5Sclose(ms);
    }
    if (fs >= 0) {
        H5Sclose(fs);
    }
    return rc;
}

static void check_info(const struct dataio_dataset_info *info)
{
    FUZZ_ASSERT(info->n_episodes >= 1 && info->n_channels >= 1, "%lld episodes, %d channels",
                (long long)info->n_episodes, info->n_channels);
    FUZZ_ASSERT(info->episode_start[0] == 0, "episode 0 starts at row %lld",
                (long long)info->episode_start[0]);
    for (int64_t e = 0; e < info->n_episodes; e++) {
        FUZZ_ASSERT(info->episode_start[e + 1] > info->episode_start[e],
                    "episode %lld is empty or reversed", (long long)e);
        FUZZ_ASSERT(info->episode_names[e] != NULL, "episode %lld has no name", (long long)e);
        FUZZ_ASSERT(!info->ep_split || info->ep_split[e] <= DATAIO_EP_UNUSED,
                    "ep_split[%lld] = %d", (long long)e, info->ep_split[e]);
    }
    for (int c = 0; c < info->n_channels; c++) {
        FUZZ_ASSERT(info->channel_names[c] && info->channel_units[c], "channel %d unnamed", c);
    }
    FUZZ_ASSERT(info->sample_rate_hz >= 0, "sample rate %g", info->sample_rate_hz);
    FUZZ_ASSERT(info->n_storage >= 0 && (info->n_storage == 0 || info->storage),
                "storage lines");
}

/* Floats equal bit for bit, or both NaN. */
static int same_float(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (a != a && b != b);
}

dure_status_t fuzz_reader_check(const char *path, dataio_layout_t layout, const char *keys,
                                int64_t max_rows)
{
    enum { BLOCK = 64 };
    struct dataio_reader_config cfg = {.path = path, .layout = layout, .keys = keys,
                                       .io = DATAIO_IO_SERIAL, .comm = MPI_COMM_NULL};
    dataio_reader_t *r = NULL;
    dataio_scratch_t *scratch = NULL;
    float *rows = NULL, *ref = NULL;
    char err[512];
    hid_t f = -1, d = -1;

    fuzz_error_reset();
    dure_status_t st = fuzz_expect_error(dataio_reader_open(&cfg, &r), "dataio_reader_open");
    FUZZ_ASSERT((st == DURE_OK) == (r != NULL), "open: status and reader disagree");
    if (st != DURE_OK) {
        fuzz_expect_h5_closed("a failed reader open");
        return st;
    }
    const struct dataio_dataset_info *info = dataio_reader_info(r);
    check_info(info);
    const int C = info->n_channels;
    FUZZ_ASSERT(dataio_scratch_create(r, BLOCK, &scratch) == DURE_OK, "scratch: %s",
                dure_last_error());
    rows = malloc((size_t)BLOCK * (size_t)C * sizeof *rows);
    ref = malloc((size_t)BLOCK * (size_t)C * sizeof *ref);
    FUZZ_ASSERT(rows && ref, "out of memory for %d channels", C);
    if (layout == DATAIO_LAYOUT_DURE) {
        f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        d = f < 0 ? -1 : H5Dopen2(f, "/signals", H5P_DEFAULT);
    }
    int64_t budget = max_rows;
    for (int64_t e = 0; e < info->n_episodes && budget > 0; e++) {
        int64_t T = info->episode_start[e + 1] - info->episode_start[e];
        for (int64_t t0 = 0; t0 < T && budget > 0; t0 += BLOCK) {
            int64_t n = T - t0 < BLOCK ? T - t0 : BLOCK;
            uint64_t bytes = 0;
            err[0] = '\0';
            dure_status_t rs = dataio_reader_read(r, e, t0, n, rows, scratch, &bytes, err,
                                                  sizeof err);
            FUZZ_ASSERT((int)rs >= 0 && rs < DURE_STATUS_COUNT && rs != DURE_ERR_INTERNAL,
                        "read returned %d: %s", (int)rs, err);
            FUZZ_ASSERT(rs == DURE_OK || err[0] != '\0', "a failed read (%s) gave no message",
                        dure_status_name(rs));
            budget -= n;
            if (rs != DURE_OK) {
                budget = 0;
                break;
            }
            int64_t row0 = info->episode_start[e] + t0;
            if (d >= 0 && h5_reference_rows(d, row0, n, C, ref) == 0) {
                for (int64_t i = 0; i < n * C; i++) {
                    FUZZ_ASSERT(same_float(rows[i], ref[i]),
                                "row %lld channel %lld: dure reads %.9g, HDF5 %.9g",
                                (long long)(row0 + i / C), (long long)(i % C),
                                (double)rows[i], (double)ref[i]);
                }
            }
        }
    }
    if (d >= 0) {
        H5Dclose(d);
    }
    if (f >= 0) {
        H5Fclose(f);
    }
    free(rows);
    free(ref);
    dataio_scratch_free(scratch);
    dataio_reader_close(r);
    fuzz_expect_h5_closed("a reader");
    return st;
}
