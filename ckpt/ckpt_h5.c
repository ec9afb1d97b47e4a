/* ckpt/ckpt_h5.c - see ckpt_h5.h. */
#include "ckpt/ckpt_h5.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt/ckpt_sum.h"
#include "common/h5guard.h"

const char *const ckpt_dataset_names[CKPT_N_DATASETS] = {"params", "adam_m", "adam_v"};

uint64_t ckh5_file_bytes_max(uint64_t n)
{
    return CKPT_N_DATASETS * (n * sizeof(float) + ckpt_sum_blocks(n) * sizeof(uint32_t)) +
           (256u << 10);
}

/* ---------------------------------------------------------------- errors */

dure_status_t ckh5_fail(const char *file, int line, dure_status_t code, const char *fmt,
                        ...)
{
    char why[512], what[600];
    va_list ap;
    int pipeline = dure_h5_error_text(why, sizeof why);
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (pipeline) {
        dure_log_error(file, line,
                       "%s: Fletcher32 checksum mismatch, the data is damaged (%s)", what, why);
        return DURE_ERR_FORMAT;
    }
    if (why[0]) {
        dure_log_error(file, line, "%s: %s", what, why);
    } else {
        dure_log_error(file, line, "%s", what);
    }
    return code;
}

/* ---------------------------------------------------------------- metadata */

int ckpt_meta_equal(const struct ckpt_meta *a, const struct ckpt_meta *b)
{
    return a->step == b->step && a->opt_step == b->opt_step &&
           memcmp(&a->lr, &b->lr, sizeof a->lr) == 0 &&
           memcmp(&a->loss, &b->loss, sizeof a->loss) == 0 && a->epoch == b->epoch &&
           a->position == b->position && a->n_rng == b->n_rng &&
           memcmp(a->rng, b->rng,
                  sizeof a->rng[0] * (a->n_rng <= CKPT_RNG_MAX ? a->n_rng : 0)) == 0 &&
           a->seed == b->seed && a->config_hash == b->config_hash &&
           a->world_size == b->world_size && a->zero_stage == b->zero_stage &&
           a->n_params == b->n_params && strncmp(a->model, b->model, sizeof a->model) == 0;
}

/* An attribute of `n` elements: scalar when n is 0 and `array` false,
 * H5S_NULL when n is 0 and array, else [n]. */
static herr_t attr_put(hid_t loc, const char *name, hid_t type, int array, hsize_t n,
                       const void *buf)
{
    hid_t sp = !array   ? H5Screate(H5S_SCALAR)
               : n == 0 ? H5Screate(H5S_NULL)
                        : H5Screate_simple(1, &n, NULL);
    hid_t a = -1;
    herr_t rc = -1;
    if (sp < 0) {
        return -1;
    }
    a = H5Acreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        rc = (array && n == 0) ? 0 : H5Awrite(a, type, buf);
        if (H5Aclose(a) < 0) {
            rc = -1;
        }
    }
    H5Sclose(sp);
    return rc;
}

static herr_t attr_put_str(hid_t loc, const char *name, const char *s)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    herr_t rc = -1;
    /* Variable-length UTF-8: h5py returns it as str, h5dump prints it. */
    if (t >= 0 && H5Tset_size(t, H5T_VARIABLE) >= 0 && H5Tset_cset(t, H5T_CSET_UTF8) >= 0) {
        rc = attr_put(loc, name, t, 0, 0, &s);
    }
    if (t >= 0) {
        H5Tclose(t);
    }
    return rc;
}

dure_status_t ckh5_meta_write(hid_t f, const char *path, const struct ckpt_meta *m)
{
    dure_status_t st = DURE_OK;
    const uint32_t version = CKPT_FORMAT_VERSION;
#define PUT(name, type, ptr)                                                               \
    CKH5_CHECK(attr_put(f, name, type, 0, 0, ptr) >= 0,                                    \
               "checkpoint '%s': write attribute '%s'", path, name)
    CKH5_CHECK(attr_put_str(f, "format", CKPT_FORMAT) >= 0,
               "checkpoint '%s': write attribute 'format'", path);
    PUT("format_version", H5T_NATIVE_UINT32, &version);
    CKH5_CHECK(attr_put_str(f, "dure_version", DURE_VERSION) >= 0,
               "checkpoint '%s': write attribute 'dure_version'", path);
    PUT("step", H5T_NATIVE_UINT64, &m->step);
    PUT("opt_step", H5T_NATIVE_UINT64, &m->opt_step);
    PUT("lr", H5T_NATIVE_DOUBLE, &m->lr);
    PUT("loss", H5T_NATIVE_DOUBLE, &m->loss);
    PUT("epoch", H5T_NATIVE_UINT64, &m->epoch);
    PUT("position", H5T_NATIVE_UINT64, &m->position);
    CKH5_CHECK(attr_put(f, "rng", H5T_NATIVE_UINT64, 1, m->n_rng, m->rng) >= 0,
               "checkpoint '%s': write attribute 'rng'", path);
    PUT("seed", H5T_NATIVE_UINT64, &m->seed);
    PUT("config_hash", H5T_NATIVE_UINT64, &m->config_hash);
    PUT("world_size", H5T_NATIVE_UINT32, &m->world_size);
    PUT("zero_stage", H5T_NATIVE_UINT32, &m->zero_stage);
    PUT("n_params", H5T_NATIVE_UINT64, &m->n_params);
#undef PUT
    CKH5_CHECK(attr_put_str(f, "model", m->model) >= 0,
               "checkpoint '%s': write attribute 'model'", path);
out:
    return st;
}

/* Open attribute `name` of f into *a; FORMAT if absent. */
static dure_status_t attr_open(hid_t f, const char *path, const char *name, hid_t *a)
{
    dure_status_t st = DURE_OK;
    htri_t ex = H5Aexists(f, name);
    *a = -1;
    CKH5_CHECK(ex >= 0, "checkpoint '%s': look up attribute '%s'", path, name);
    DURE_CHECK(
        ex > 0, DURE_ERR_FORMAT,
        "checkpoint '%s': attribute '%s' is missing (not a dure checkpoint, or damaged)",
        path, name);
    *a = H5Aopen(f, name, H5P_DEFAULT);
    CKH5_CHECK(*a >= 0, "checkpoint '%s': open attribute '%s'", path, name);
out:
    return st;
}

/* Element count of the open attribute a. */
static dure_status_t attr_count(hid_t a, const char *path, const char *name, hssize_t *n)
{
    dure_status_t st = DURE_OK;
    hid_t sp = H5Aget_space(a);
    CKH5_CHECK(sp >= 0, "checkpoint '%s': attribute '%s'", path, name);
    *n = H5Sget_select_npoints(sp);
    CKH5_CHECK(*n >= 0, "checkpoint '%s': attribute '%s'", path, name);
out:
    if (sp >= 0) {
        H5Sclose(sp);
    }
    return st;
}

/* Read attribute `name` of n elements of `type` into buf; FORMAT if absent
 * or of another size. */
static dure_status_t attr_get(hid_t f, const char *path, const char *name, hid_t type,
                              hssize_t n, void *buf)
{
    dure_status_t st = DURE_OK;
    hid_t a = -1;
    hssize_t got = 0;
    DURE_TRY(attr_open(f, path, name, &a));
    DURE_TRY(attr_count(a, path, name, &got));
    DURE_CHECK(got == n, DURE_ERR_FORMAT,
               "checkpoint '%s': attribute '%s' has %lld elements, expected %lld", path,
               name, (long long)got, (long long)n);
    if (n > 0) {
        CKH5_CHECK(H5Aread(a, type, buf) >= 0, "checkpoint '%s': read attribute '%s'", path,
                   name);
    }
out:
    if (a >= 0) {
        H5Aclose(a);
    }
    return st;
}

/* Element count of an array attribute. */
static dure_status_t attr_len(hid_t f, const char *path, const char *name, hssize_t *n)
{
    dure_status_t st = DURE_OK;
    hid_t a = -1;
    DURE_TRY(attr_open(f, path, name, &a));
    DURE_TRY(attr_count(a, path, name, n));
out:
    if (a >= 0) {
        H5Aclose(a);
    }
    return st;
}

/* A string attribute, variable- or fixed-length, into buf[cap]. */
static dure_status_t attr_get_str(hid_t f, const char *path, const char *name, char *buf,
                                  size_t cap)
{
    dure_status_t st = DURE_OK;
    hid_t a = -1, ft = -1, mt = -1;
    char *vl = NULL;
    hssize_t n = 0;
    DURE_TRY(attr_open(f, path, name, &a));
    /* One string: H5Aread writes every element of the attribute. */
    DURE_TRY(attr_count(a, path, name, &n));
    DURE_CHECK(n == 1, DURE_ERR_FORMAT,
               "checkpoint '%s': attribute '%s' holds %lld strings, not one", path, name,
               (long long)n);
    ft = H5Aget_type(a);
    CKH5_CHECK(ft >= 0, "checkpoint '%s': attribute '%s'", path, name);
    DURE_CHECK(H5Tget_class(ft) == H5T_STRING, DURE_ERR_FORMAT,
               "checkpoint '%s': attribute '%s' is not a string", path, name);
    mt = H5Tcopy(H5T_C_S1);
    /* HDF5 converts no string between character sets: read in the file's. */
    CKH5_CHECK(mt >= 0 && H5Tset_cset(mt, H5Tget_cset(ft)) >= 0,
               "checkpoint '%s': attribute '%s'", path, name);
    if (H5Tis_variable_str(ft) > 0) {
        char what[PATH_MAX + 16];
        snprintf(what, sizeof what, "checkpoint '%s'", path);
        DURE_TRY(h5guard_vlen_attr(f, name, cap - 1, what));
        CKH5_CHECK(H5Tset_size(mt, H5T_VARIABLE) >= 0 && H5Aread(a, mt, &vl) >= 0,
                   "checkpoint '%s': read attribute '%s'", path, name);
        DURE_CHECK(vl && strlen(vl) < cap, DURE_ERR_FORMAT,
                   "checkpoint '%s': attribute '%s' is longer than %zu bytes", path, name,
                   cap - 1);
        memcpy(buf, vl, strlen(vl) + 1);
    } else {
        size_t sz = H5Tget_size(ft);
        DURE_CHECK(sz > 0 && sz < cap, DURE_ERR_FORMAT,
                   "checkpoint '%s': attribute '%s' is longer than %zu bytes", path, name,
                   cap - 1);
        CKH5_CHECK(H5Tset_size(mt, sz + 1) >= 0 && H5Aread(a, mt, buf) >= 0,
                   "checkpoint '%s': read attribute '%s'", path, name);
        buf[sz] = '\0';
    }
out:
    if (vl) {
        H5free_memory(vl);
    }
    if (mt >= 0) {
        H5Tclose(mt);
    }
    if (ft >= 0) {
        H5Tclose(ft);
    }
    if (a >= 0) {
        H5Aclose(a);
    }
    return st;
}

dure_status_t ckh5_meta_read(hid_t f, const char *path, struct ckpt_meta *m)
{
    dure_status_t st = DURE_OK;
    char format[64];
    uint32_t version = 0;
    hssize_t n_rng = 0;
    memset(m, 0, sizeof *m);
    DURE_TRY(attr_get_str(f, path, "format", format, sizeof format));
    DURE_CHECK(strcmp(format, CKPT_FORMAT) == 0, DURE_ERR_FORMAT,
               "'%s' is not a dure checkpoint: its format attribute is '%s', not '%s'",
               path, format, CKPT_FORMAT);
    DURE_TRY(attr_get(f, path, "format_version", H5T_NATIVE_UINT32, 1, &version));
    DURE_CHECK(version >= 1 && version <= CKPT_FORMAT_VERSION, DURE_ERR_UNSUPPORTED,
               "checkpoint '%s' has format version %u; this dure reads up to %d", path,
               version, CKPT_FORMAT_VERSION);
    DURE_TRY(attr_get(f, path, "step", H5T_NATIVE_UINT64, 1, &m->step));
    DURE_TRY(attr_get(f, path, "opt_step", H5T_NATIVE_UINT64, 1, &m->opt_step));
    DURE_TRY(attr_get(f, path, "lr", H5T_NATIVE_DOUBLE, 1, &m->lr));
    DURE_TRY(attr_get(f, path, "loss", H5T_NATIVE_DOUBLE, 1, &m->loss));
    DURE_TRY(attr_get(f, path, "epoch", H5T_NATIVE_UINT64, 1, &m->epoch));
    DURE_TRY(attr_get(f, path, "position", H5T_NATIVE_UINT64, 1, &m->position));
    DURE_TRY(attr_len(f, path, "rng", &n_rng));
    DURE_CHECK(n_rng <= CKPT_RNG_MAX, DURE_ERR_FORMAT,
               "checkpoint '%s': attribute 'rng' has %lld words, at most %d allowed", path,
               (long long)n_rng, CKPT_RNG_MAX);
    m->n_rng = (uint32_t)n_rng;
    DURE_TRY(attr_get(f, path, "rng", H5T_NATIVE_UINT64, n_rng, m->rng));
    DURE_TRY(attr_get(f, path, "seed", H5T_NATIVE_UINT64, 1, &m->seed));
    DURE_TRY(attr_get(f, path, "config_hash", H5T_NATIVE_UINT64, 1, &m->config_hash));
    DURE_TRY(attr_get(f, path, "world_size", H5T_NATIVE_UINT32, 1, &m->world_size));
    DURE_TRY(attr_get(f, path, "zero_stage", H5T_NATIVE_UINT32, 1, &m->zero_stage));
    DURE_TRY(attr_get(f, path, "n_params", H5T_NATIVE_UINT64, 1, &m->n_params));
    DURE_TRY(attr_get_str(f, path, "model", m->model, sizeof m->model));
out:
    return st;
}

/* ---------------------------------------------------------------- skeleton */

/* A contiguous dataset of `type` and shape dims[rank], allocated at creation
 * and never filled; its byte offset into *addr. */
static dure_status_t skeleton_dataset(hid_t f, const char *path, const char *name,
                                      hid_t type, int rank, const hsize_t *dims,
                                      uint64_t *addr)
{
    dure_status_t st = DURE_OK;
    hid_t dcpl = -1, space = -1, d = -1;
    haddr_t at = HADDR_UNDEF;
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    space = H5Screate_simple(rank, dims, NULL);
    CKH5_CHECK(dcpl >= 0 && space >= 0 && H5Pset_layout(dcpl, H5D_CONTIGUOUS) >= 0 &&
                   H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) >= 0 &&
                   H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) >= 0 &&
                   /* No timestamps: two identical states give identical files. */
                   H5Pset_obj_track_times(dcpl, 0) >= 0,
               "checkpoint '%s': set up dataset /%s", path, name);
    d = H5Dcreate2(f, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CKH5_CHECK(d >= 0, "checkpoint '%s': create dataset /%s", path, name);
    at = H5Dget_offset(d);
    CKH5_CHECK(at != HADDR_UNDEF, "checkpoint '%s': dataset /%s has no storage", path, name);
    *addr = (uint64_t)at;
out:
    if (d >= 0 && H5Dclose(d) < 0 && st == DURE_OK) {
        st = ckh5_fail(__FILE__, __LINE__, DURE_ERR_IO, "checkpoint '%s': close /%s", path,
                       name);
    }
    if (space >= 0) {
        H5Sclose(space);
    }
    if (dcpl >= 0) {
        H5Pclose(dcpl);
    }
    return st;
}

dure_status_t ckh5_skeleton_create(const char *path, const struct ckpt_meta *m,
                                   struct ckh5_layout *lay)
{
    dure_status_t st = DURE_OK;
    hid_t f = -1;
    hsize_t n = m->n_params, sums[2] = {CKPT_N_DATASETS, ckpt_sum_blocks(m->n_params)};
    struct stat sb;
    memset(lay, 0, sizeof *lay);
    f = H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
    CKH5_CHECK(f >= 0, "checkpoint '%s': create the file", path);
    DURE_TRY(ckh5_meta_write(f, path, m));
    for (int i = 0; i < CKPT_N_DATASETS; i++) {
        DURE_TRY(skeleton_dataset(f, path, ckpt_dataset_names[i], H5T_IEEE_F32LE, 1, &n,
                                  &lay->data[i]));
    }
    DURE_TRY(skeleton_dataset(f, path, CKPT_SUMS_NAME, H5T_STD_U32LE, 2, sums, &lay->sums));
    {
        /* Closing writes the headers and sets the file's size to its end of
         * allocation: the data regions become holes that the ranks fill. */
        herr_t rc = H5Fclose(f);
        f = -1;
        CKH5_CHECK(rc >= 0, "checkpoint '%s': close (flush) the file", path);
    }
    DURE_SYS_TRY(stat(path, &sb) == 0, "checkpoint '%s'", path);
    lay->file_bytes = (uint64_t)sb.st_size;
    for (int i = 0; i < CKPT_N_DATASETS; i++) {
        DURE_CHECK(lay->data[i] + n * sizeof(float) <= lay->file_bytes, DURE_ERR_HDF5,
                   "checkpoint '%s': /%s ends at byte %llu, beyond the file's %llu", path,
                   ckpt_dataset_names[i],
                   (unsigned long long)(lay->data[i] + n * sizeof(float)),
                   (unsigned long long)lay->file_bytes);
    }
out:
    if (f >= 0) {
        H5Fclose(f);
    }
    return st;
}

dure_status_t ckh5_version_read(hid_t f, const char *path, uint32_t *version)
{
    return attr_get(f, path, "format_version", H5T_NATIVE_UINT32, 1, version);
}

dure_status_t ckh5_sums_read(hid_t f, const char *path, uint64_t n, uint32_t *sums)
{
    dure_status_t st = DURE_OK;
    hid_t d = -1, sp = -1;
    hsize_t dims[2] = {0, 0}, want[2] = {CKPT_N_DATASETS, ckpt_sum_blocks(n)};
    htri_t ex = H5Lexists(f, CKPT_SUMS_NAME, H5P_DEFAULT);
    CKH5_CHECK(ex >= 0, "checkpoint '%s': look up dataset /%s", path, CKPT_SUMS_NAME);
    DURE_CHECK(ex > 0, DURE_ERR_FORMAT, "checkpoint '%s': dataset /%s is missing", path,
               CKPT_SUMS_NAME);
    d = H5Dopen2(f, CKPT_SUMS_NAME, H5P_DEFAULT);
    CKH5_CHECK(d >= 0, "checkpoint '%s': open dataset /%s", path, CKPT_SUMS_NAME);
    sp = H5Dget_space(d);
    CKH5_CHECK(sp >= 0, "checkpoint '%s': dataset /%s", path, CKPT_SUMS_NAME);
    DURE_CHECK(H5Sget_simple_extent_dims(sp, dims, NULL) == 2 && dims[0] == want[0] &&
                   dims[1] == want[1],
               DURE_ERR_FORMAT, "checkpoint '%s': dataset /%s is not [%llu, %llu]", path,
               CKPT_SUMS_NAME, (unsigned long long)want[0], (unsigned long long)want[1]);
    CKH5_CHECK(H5Dread(d, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, sums) >= 0,
               "checkpoint '%s': read dataset /%s", path, CKPT_SUMS_NAME);
out:
    if (sp >= 0) {
        H5Sclose(sp);
    }
    if (d >= 0) {
        H5Dclose(d);
    }
    return st;
}

/* Open dataset `name` and check it is float32 [n]. */
dure_status_t ckh5_dataset_open(hid_t f, const char *path, const char *name, uint64_t n,
                                hid_t *out)
{
    dure_status_t st = DURE_OK;
    hid_t d = -1, sp = -1, t = -1;
    hsize_t dims[2] = {0, 0};
    htri_t ex = H5Lexists(f, name, H5P_DEFAULT);
    CKH5_CHECK(ex >= 0, "checkpoint '%s': look up dataset /%s", path, name);
    DURE_CHECK(ex > 0, DURE_ERR_FORMAT, "checkpoint '%s': dataset /%s is missing", path,
               name);
    d = H5Dopen2(f, name, H5P_DEFAULT);
    CKH5_CHECK(d >= 0, "checkpoint '%s': open dataset /%s", path, name);
    sp = H5Dget_space(d);
    t = H5Dget_type(d);
    CKH5_CHECK(sp >= 0 && t >= 0, "checkpoint '%s': dataset /%s", path, name);
    int rank = H5Sget_simple_extent_dims(sp, dims, NULL);
    DURE_CHECK(
        rank == 1 && dims[0] == n, DURE_ERR_FORMAT,
        "checkpoint '%s': dataset /%s has shape %s%llu%s, expected [%llu] (n_params)", path,
        name, rank == 1 ? "[" : "of rank ", (unsigned long long)dims[0],
        rank == 1 ? "]" : "", (unsigned long long)n);
    DURE_CHECK(H5Tget_class(t) == H5T_FLOAT && H5Tget_size(t) == sizeof(float),
               DURE_ERR_FORMAT, "checkpoint '%s': dataset /%s is not float32", path, name);
    *out = d;
    d = -1;
out:
    if (t >= 0) {
        H5Tclose(t);
    }
    if (sp >= 0) {
        H5Sclose(sp);
    }
    if (d >= 0) {
        H5Dclose(d);
    }
    return st;
}

/*
 * Read or write elements [offset, offset + len) of dataset d from/to buf.
 * dxpl chooses collective or independent transfer.
 */
herr_t ckh5_dataset_io(hid_t d, hid_t dxpl, int write, size_t offset, size_t len, void *buf)
{
    hsize_t start = offset, count = len, mdim = len;
    hid_t fs = H5Dget_space(d);
    hid_t ms = H5Screate_simple(1, &mdim, NULL);
    herr_t rc = -1;
    if (fs < 0 || ms < 0) {
        goto done;
    }
    if (len == 0) {
        /* A rank with an empty shard still joins the collective call. */
        if (H5Sselect_none(fs) < 0 || H5Sselect_none(ms) < 0) {
            goto done;
        }
    } else if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL) < 0) {
        goto done;
    }
    rc = write ? H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, dxpl, buf)
               : H5Dread(d, H5T_NATIVE_FLOAT, ms, fs, dxpl, buf);
done : {
    /* Closing clears HDF5's error stack: keep the failure's for ckh5_fail. */
    hid_t err = rc < 0 ? H5Eget_current_stack() : -1;
    if (ms >= 0) {
        H5Sclose(ms);
    }
    if (fs >= 0) {
        H5Sclose(fs);
    }
    if (err >= 0) {
        H5Eset_current_stack(err);
    }
}
    return rc;
}

/* Block b of dataset `which` against its stored sum. */
static dure_status_t check_block(const char *path, int which, const uint32_t *sums,
                                 uint64_t n, uint64_t b, const float *data)
{
    dure_status_t st = DURE_OK;
    uint64_t at = b * CKPT_BLOCK_ELEMS;
    uint64_t len = n - at < CKPT_BLOCK_ELEMS ? n - at : CKPT_BLOCK_ELEMS;
    uint32_t want = sums[(uint64_t)which * ckpt_sum_blocks(n) + b];
    uint32_t got = ckpt_sum_crc(data, (size_t)len);
    DURE_CHECK(got == want, DURE_ERR_FORMAT,
               "checkpoint '%s': /%s block %llu (elements [%llu, %llu)) fails its CRC-32C "
               "(stored %08x, computed %08x): the data is damaged",
               path, ckpt_dataset_names[which], (unsigned long long)b,
               (unsigned long long)at, (unsigned long long)(at + len), want, got);
out:
    return st;
}

int ckh5_fletcher32(hid_t dcpl)
{
    unsigned flags = 0, cd[4];
    size_t ncd = 4;
    int on = H5Pget_filter_by_id2(dcpl, H5Z_FILTER_FLETCHER32, &flags, &ncd, cd, 0, NULL,
                                  NULL) >= 0;
    H5Eclear2(H5E_DEFAULT);
    return on;
}

dure_status_t ckh5_read_checked(hid_t d, hid_t dxpl, const char *path, int which,
                                const uint32_t *sums, uint64_t n, size_t offset, size_t len,
                                float *buf)
{
    dure_status_t st = DURE_OK;
    float *scratch = NULL;
    hid_t dcpl = -1;
    if (!sums) {
        /* Version 1: HDF5's filter is the only check there is. */
        dcpl = H5Dget_create_plist(d);
        CKH5_CHECK(dcpl >= 0, "checkpoint '%s': dataset /%s", path, ckpt_dataset_names[which]);
        DURE_CHECK(ckh5_fletcher32(dcpl), DURE_ERR_FORMAT,
                   "checkpoint '%s': dataset /%s has no Fletcher32 checksum (format version "
                   "1 without its filter: the data cannot be checked)",
                   path, ckpt_dataset_names[which]);
    }
    if (ckh5_dataset_io(d, dxpl, 0, offset, len, buf) < 0) {
        st = ckh5_fail(__FILE__, __LINE__, DURE_ERR_IO,
                       "checkpoint '%s': read elements [%zu, %zu) of /%s", path, offset,
                       offset + len, ckpt_dataset_names[which]);
        goto out;
    }
    if (!sums || len == 0) {
        goto out;
    }
    for (uint64_t b = offset / CKPT_BLOCK_ELEMS; b * CKPT_BLOCK_ELEMS < offset + len; b++) {
        uint64_t at = b * CKPT_BLOCK_ELEMS;
        uint64_t end = n - at < CKPT_BLOCK_ELEMS ? n : at + CKPT_BLOCK_ELEMS;
        if (at >= offset && end <= offset + len) {
            DURE_TRY(check_block(path, which, sums, n, b, buf + (at - offset)));
            continue;
        }
        if (!scratch) {
            scratch = malloc(CKPT_BLOCK_ELEMS * sizeof *scratch);
            DURE_ALLOC_TRY(scratch, CKPT_BLOCK_ELEMS * sizeof *scratch);
        }
        if (ckh5_dataset_io(d, dxpl, 0, (size_t)at, (size_t)(end - at), scratch) < 0) {
            st = ckh5_fail(__FILE__, __LINE__, DURE_ERR_IO,
                           "checkpoint '%s': read block %llu of /%s", path,
                           (unsigned long long)b, ckpt_dataset_names[which]);
            goto out;
        }
        DURE_TRY(check_block(path, which, sums, n, b, scratch));
        uint64_t from = at > offset ? at : offset;
        uint64_t to = end < offset + len ? end : offset + len;
        memcpy(buf + (from - offset), scratch + (from - at), (size_t)(to - from) * sizeof *buf);
    }
out:
    if (dcpl >= 0) {
        H5Pclose(dcpl);
    }
    free(scratch);
    return st;
}
