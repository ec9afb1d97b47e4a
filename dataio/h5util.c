/* dataio/h5util.c - see h5util.h. */
#include "dataio/h5util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/h5guard.h"

dure_status_t dataio_h5_open_file(const char *path, hid_t fapl, hid_t *out)
{
    dure_status_t st = DURE_OK;
    struct stat sb;
    unsigned char sig[8];
    static const unsigned char h5sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    char why[512];
    int fd = -1;
    hid_t f = H5I_INVALID_HID;

    *out = H5I_INVALID_HID;
    /* A missing dataset is bad input (exit code 4), not an I/O fault. */
    DURE_TRY(dure_input_file_stat(path, "dataset file", &sb));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    DURE_SYS_TRY(fd >= 0, "dataset file '%s': open", path);
    /* The superblock signature is at offset 0 for files dure reads (a user
     * block would move it; HDF5 finds that case too, checked below). */
    ssize_t got = pread(fd, sig, sizeof sig, 0);
    if (got != (ssize_t)sizeof sig || memcmp(sig, h5sig, sizeof sig) != 0) {
        htri_t is = H5Fis_hdf5(path);
        H5Eclear2(H5E_DEFAULT);
        DURE_CHECK(is > 0, DURE_ERR_FORMAT,
                   "dataset file '%s' is not an HDF5 file (%lld bytes, no HDF5 "
                   "signature)", path, (long long)sb.st_size);
    }
    /* The file's structure before libhdf5 reads it: it trusts sizes. */
    snprintf(why, sizeof why, "dataset file '%s'", path);
    DURE_TRY(h5guard_path(path, why));
    f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (f < 0) {
        dure_h5_error_text(why, sizeof why);
        if (strstr(why, "truncated")) {
            DURE_FAIL(DURE_ERR_FORMAT,
                      "dataset file '%s' is truncated (%lld bytes on disk; HDF5: %s)",
                      path, (long long)sb.st_size, why);
        }
        DURE_FAIL(DURE_ERR_FORMAT, "dataset file '%s' cannot be opened as HDF5: %s",
                  path, why[0] ? why : "unknown HDF5 error");
    }
    *out = f;
    f = H5I_INVALID_HID;
out:
    if (f >= 0) {
        H5Fclose(f);
    }
    if (fd >= 0) {
        close(fd);
    }
    return st;
}

int dataio_h5_exists(hid_t loc, const char *name)
{
    /* H5Lexists fails on a missing intermediate group: test each prefix. */
    char buf[1024];
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof buf) {
        return 0;
    }
    memcpy(buf, name, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            htri_t e = H5Lexists(loc, buf, H5P_DEFAULT);
            if (e <= 0) {
                H5Eclear2(H5E_DEFAULT);
                return 0;
            }
            buf[i] = c;
        }
    }
    return 1;
}

int dataio_h5_numeric_rank(hid_t loc, const char *name)
{
    int rank = 0;
    H5O_info_t oi;
    hid_t d = H5I_INVALID_HID, t = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    if (!dataio_h5_exists(loc, name) ||
        H5Oget_info_by_name2(loc, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0 ||
        oi.type != H5O_TYPE_DATASET || (d = H5Dopen2(loc, name, H5P_DEFAULT)) < 0 ||
        (t = H5Dget_type(d)) < 0 || (sp = H5Dget_space(d)) < 0) {
        goto done;
    }
    H5T_class_t c = H5Tget_class(t);
    if (c == H5T_INTEGER || c == H5T_FLOAT || c == H5T_ENUM) {
        rank = H5Sget_simple_extent_ndims(sp);
        rank = rank < 0 ? 0 : rank;
    }
done:
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    H5Eclear2(H5E_DEFAULT);
    return rank;
}

/* Pack n strings into one block: (n) pointers followed by the characters. */
static dure_status_t pack_strings(const char *const *src, const size_t *lens,
                                  int64_t n, char ***out)
{
    dure_status_t st = DURE_OK;
    size_t total = (size_t)n * sizeof(char *);
    for (int64_t i = 0; i < n; i++) {
        total += lens[i] + 1;
    }
    char **v = malloc(total ? total : 1);
    DURE_ALLOC_TRY(v, total);
    char *p = (char *)(v + n);
    for (int64_t i = 0; i < n; i++) {
        memcpy(p, src[i] ? src[i] : "", lens[i]);
        p[lens[i]] = '\0';
        v[i] = p;
        p += lens[i] + 1;
    }
    *out = v;
out:
    return st;
}

/*
 * Dataset d (named `name`) of n elements of type t, read whole: its storage
 * must hold them. A crafted file can claim billions of elements in a few
 * bytes, and dure would allocate for all of them before HDF5 reads fill
 * values or zeros. Contiguous and compact storage holds n x size bytes;
 * chunked storage, filtered, at least 1/1032 of that (deflate's largest
 * ratio); nothing is needed for n = 0.
 */
static dure_status_t storage_check(hid_t d, hid_t t, const char *what, const char *name,
                                   int64_t n)
{
    dure_status_t st = DURE_OK;
    hid_t dcpl = H5Dget_create_plist(d);
    DURE_CHECK(dcpl >= 0, DURE_ERR_FORMAT, "%s: layout of '%s'", what, name);
    double need = (double)n * (double)H5Tget_size(t);
    double have = (double)H5Dget_storage_size(d);
    double ratio = H5Pget_layout(dcpl) == H5D_CHUNKED ? 1032.0 : 1.0;
    DURE_CHECK(n == 0 || need <= have * ratio, DURE_ERR_FORMAT,
               "%s: dataset '%s' claims %lld elements (%.0f bytes), its storage holds %.0f "
               "bytes: damaged",
               what, name, (long long)n, need, have);
out:
    if (dcpl >= 0) H5Pclose(dcpl);
    return st;
}

dure_status_t dataio_h5_read_strings(hid_t loc, const char *name,
                                     const char *what, char ***out, int64_t *n)
{
    dure_status_t st = DURE_OK;
    hid_t d = H5I_INVALID_HID, ft = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    hid_t sp = H5I_INVALID_HID;
    hsize_t dims[1] = {0};
    char **vl = NULL;
    char *fixed = NULL;
    const char **ptrs = NULL;
    size_t *lens = NULL;
    int vl_read = 0;

    *out = NULL;
    *n = 0;
    DURE_CHECK(dataio_h5_exists(loc, name), DURE_ERR_FORMAT,
               "%s has no dataset '%s'", what, name);
    DURE_CHECK((d = H5Dopen2(loc, name, H5P_DEFAULT)) >= 0, DURE_ERR_FORMAT,
               "%s: '%s' is not a dataset", what, name);
    DURE_CHECK((ft = H5Dget_type(d)) >= 0, DURE_ERR_FORMAT, "%s: type of '%s'", what, name);
    DURE_CHECK(H5Tget_class(ft) == H5T_STRING, DURE_ERR_FORMAT,
               "%s: dataset '%s' must hold strings", what, name);
    DURE_CHECK((sp = H5Dget_space(d)) >= 0, DURE_ERR_FORMAT, "%s: space of '%s'", what, name);
    DURE_CHECK(H5Sget_simple_extent_ndims(sp) == 1, DURE_ERR_FORMAT,
               "%s: dataset '%s' has rank %d; expected 1", what, name,
               H5Sget_simple_extent_ndims(sp));
    H5Sget_simple_extent_dims(sp, dims, NULL);
    int64_t cnt = (int64_t)dims[0];
    DURE_TRY(storage_check(d, ft, what, name, cnt));
    lens = calloc(cnt ? (size_t)cnt : 1, sizeof *lens);
    DURE_ALLOC_TRY(lens, cnt * sizeof *lens);
    ptrs = calloc(cnt ? (size_t)cnt : 1, sizeof *ptrs);
    DURE_ALLOC_TRY(ptrs, cnt * sizeof *ptrs);
    mt = H5Tcopy(H5T_C_S1);
    DURE_CHECK(mt >= 0, DURE_ERR_HDF5, "H5Tcopy");
    if (H5Tis_variable_str(ft) > 0) {
        vl = calloc(cnt ? (size_t)cnt : 1, sizeof *vl);
        DURE_ALLOC_TRY(vl, cnt * sizeof *vl);
        DURE_CHECK(H5Tset_size(mt, H5T_VARIABLE) >= 0, DURE_ERR_HDF5, "H5Tset_size");
        H5Tset_cset(mt, H5Tget_cset(ft));
        DURE_TRY(h5guard_vlen_dataset(d, name, cnt, DATAIO_H5_STR_MAX, what));
        DURE_CHECK(H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, vl) >= 0,
                   DURE_ERR_FORMAT, "%s: cannot read strings '%s'", what, name);
        vl_read = 1;
        for (int64_t i = 0; i < cnt; i++) {
            ptrs[i] = vl[i] ? vl[i] : "";
            lens[i] = strlen(ptrs[i]);
        }
    } else {
        size_t sz = H5Tget_size(ft);
        fixed = malloc((size_t)cnt * sz + 1);
        DURE_ALLOC_TRY(fixed, (size_t)cnt * sz + 1);
        DURE_CHECK(H5Tset_size(mt, sz) >= 0, DURE_ERR_HDF5, "H5Tset_size");
        H5Tset_strpad(mt, H5T_STR_NULLPAD);
        H5Tset_cset(mt, H5Tget_cset(ft));
        DURE_CHECK(H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, fixed) >= 0,
                   DURE_ERR_FORMAT, "%s: cannot read strings '%s'", what, name);
        for (int64_t i = 0; i < cnt; i++) {
            ptrs[i] = fixed + (size_t)i * sz;
            lens[i] = strnlen(ptrs[i], sz);
        }
    }
    DURE_TRY(pack_strings(ptrs, lens, cnt, out));
    *n = cnt;
out:
    if (vl_read) {
        H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, vl);
    }
    free(vl);
    free(fixed);
    free(ptrs);
    free(lens);
    if (mt >= 0) H5Tclose(mt);
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    if (d >= 0) H5Dclose(d);
    return st;
}

static dure_status_t write_1d(hid_t loc, const char *name, hid_t ftype, hid_t mtype,
                              const void *v, int64_t n)
{
    dure_status_t st = DURE_OK;
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5I_INVALID_HID, d = H5I_INVALID_HID;
    DURE_CHECK((sp = H5Screate_simple(1, dims, NULL)) >= 0, DURE_ERR_HDF5, "space '%s'", name);
    DURE_CHECK((d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) >= 0,
               DURE_ERR_HDF5, "cannot create dataset '%s'", name);
    if (n > 0) {
        DURE_CHECK(H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0, DURE_ERR_HDF5,
                   "cannot write dataset '%s'", name);
    }
out:
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    return st;
}

dure_status_t dataio_h5_write_strings(hid_t loc, const char *name,
                                      const char *const *s, int64_t n)
{
    dure_status_t st = DURE_OK;
    hid_t t = H5Tcopy(H5T_C_S1);
    DURE_CHECK(t >= 0, DURE_ERR_HDF5, "H5Tcopy");
    DURE_CHECK(H5Tset_size(t, H5T_VARIABLE) >= 0 && H5Tset_cset(t, H5T_CSET_UTF8) >= 0,
               DURE_ERR_HDF5, "string type for '%s'", name);
    DURE_TRY(write_1d(loc, name, t, t, s, n));
out:
    if (t >= 0) H5Tclose(t);
    return st;
}

/* Open a 1-D numeric dataset and return its length. */
static dure_status_t open_1d(hid_t loc, const char *name, const char *what,
                             hid_t *d, int64_t *n)
{
    dure_status_t st = DURE_OK;
    hid_t sp = H5I_INVALID_HID, t = H5I_INVALID_HID;
    hsize_t dims[1] = {0};
    *d = H5I_INVALID_HID;
    DURE_CHECK(dataio_h5_exists(loc, name), DURE_ERR_FORMAT, "%s has no dataset '%s'",
               what, name);
    DURE_CHECK((*d = H5Dopen2(loc, name, H5P_DEFAULT)) >= 0, DURE_ERR_FORMAT,
               "%s: '%s' is not a dataset", what, name);
    DURE_CHECK((t = H5Dget_type(*d)) >= 0, DURE_ERR_FORMAT, "%s: type of '%s'", what, name);
    H5T_class_t c = H5Tget_class(t);
    DURE_CHECK(c == H5T_INTEGER || c == H5T_FLOAT, DURE_ERR_FORMAT,
               "%s: dataset '%s' must be numeric", what, name);
    DURE_CHECK((sp = H5Dget_space(*d)) >= 0, DURE_ERR_FORMAT, "%s: space of '%s'", what, name);
    DURE_CHECK(H5Sget_simple_extent_ndims(sp) == 1, DURE_ERR_FORMAT,
               "%s: dataset '%s' has rank %d; expected 1", what, name,
               H5Sget_simple_extent_ndims(sp));
    H5Sget_simple_extent_dims(sp, dims, NULL);
    *n = (int64_t)dims[0];
    DURE_TRY(storage_check(*d, t, what, name, *n));
out:
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (st != DURE_OK && *d >= 0) {
        H5Dclose(*d);
        *d = H5I_INVALID_HID;
    }
    return st;
}

dure_status_t dataio_h5_read_i64(hid_t loc, const char *name, const char *what,
                                 int64_t **out, int64_t *n)
{
    dure_status_t st = DURE_OK;
    hid_t d = H5I_INVALID_HID;
    int64_t *v = NULL;
    *out = NULL;
    DURE_TRY(open_1d(loc, name, what, &d, n));
    v = malloc(*n ? (size_t)*n * sizeof *v : 1);
    DURE_ALLOC_TRY(v, (size_t)*n * sizeof *v);
    if (*n > 0) {
        DURE_CHECK(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0,
                   DURE_ERR_FORMAT, "%s: cannot read '%s' as int64", what, name);
    }
    *out = v;
    v = NULL;
out:
    free(v);
    if (d >= 0) H5Dclose(d);
    return st;
}

dure_status_t dataio_h5_read_f64(hid_t loc, const char *name, const char *what,
                                 double *out, int64_t want)
{
    dure_status_t st = DURE_OK;
    hid_t d = H5I_INVALID_HID;
    int64_t n = 0;
    DURE_TRY(open_1d(loc, name, what, &d, &n));
    DURE_CHECK(n == want, DURE_ERR_FORMAT, "%s: dataset '%s' has %lld values; expected %lld",
               what, name, (long long)n, (long long)want);
    DURE_CHECK(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0,
               DURE_ERR_FORMAT, "%s: cannot read '%s'", what, name);
out:
    if (d >= 0) H5Dclose(d);
    return st;
}

dure_status_t dataio_h5_write_i64(hid_t loc, const char *name, const int64_t *v, int64_t n)
{
    return write_1d(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, v, n);
}

dure_status_t dataio_h5_write_f64(hid_t loc, const char *name, const double *v, int64_t n)
{
    return write_1d(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v, n);
}

static int attr_read(hid_t obj, const char *name, hid_t mtype, void *out)
{
    htri_t e = H5Aexists(obj, name);
    if (e <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return 0;
    }
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) {
        H5Eclear2(H5E_DEFAULT);
        return -1;
    }
    hid_t sp = H5Aget_space(a);
    int ok = sp >= 0 && H5Sget_simple_extent_npoints(sp) == 1 &&
             H5Aread(a, mtype, out) >= 0;
    if (sp >= 0) {
        H5Sclose(sp);
    }
    H5Aclose(a);
    H5Eclear2(H5E_DEFAULT);
    return ok ? 1 : -1;
}

int dataio_h5_attr_f64(hid_t obj, const char *name, double *out)
{
    return attr_read(obj, name, H5T_NATIVE_DOUBLE, out);
}

int dataio_h5_attr_i64(hid_t obj, const char *name, int64_t *out)
{
    return attr_read(obj, name, H5T_NATIVE_INT64, out);
}

int dataio_h5_attr_str(hid_t obj, const char *name, char *buf, size_t len)
{
    int rc = -1;
    hid_t a = H5I_INVALID_HID, ft = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    hid_t sp = H5I_INVALID_HID;
    htri_t e = H5Aexists(obj, name);
    if (e <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return 0;
    }
    buf[0] = '\0';
    /* One string: H5Aread writes every element of the attribute. */
    if ((a = H5Aopen(obj, name, H5P_DEFAULT)) < 0 || (sp = H5Aget_space(a)) < 0 ||
        H5Sget_simple_extent_npoints(sp) != 1 || (ft = H5Aget_type(a)) < 0 ||
        H5Tget_class(ft) != H5T_STRING || (mt = H5Tcopy(H5T_C_S1)) < 0 ||
        H5Tset_cset(mt, H5Tget_cset(ft)) < 0) {
        goto done;
    }
    if (H5Tis_variable_str(ft) > 0) {
        char *s = NULL;
        if (h5guard_vlen_attr(obj, name, DATAIO_H5_STR_MAX, NULL) != DURE_OK ||
            H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Aread(a, mt, &s) < 0) {
            goto done;
        }
        snprintf(buf, len, "%s", s ? s : "");
        H5free_memory(s);
    } else {
        size_t sz = H5Tget_size(ft);
        char *tmp = calloc(1, sz + 1);
        if (!tmp || H5Tset_size(mt, sz) < 0 || H5Aread(a, mt, tmp) < 0) {
            free(tmp);
            goto done;
        }
        snprintf(buf, len, "%.*s", (int)strnlen(tmp, sz), tmp);
        free(tmp);
    }
    rc = 1;
done:
    if (mt >= 0) H5Tclose(mt);
    if (ft >= 0) H5Tclose(ft);
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    H5Eclear2(H5E_DEFAULT);
    return rc;
}

static dure_status_t set_attr(hid_t obj, const char *name, hid_t ftype, hid_t mtype,
                              const void *v)
{
    dure_status_t st = DURE_OK;
    hid_t sp = H5Screate(H5S_SCALAR), a = H5I_INVALID_HID;
    DURE_CHECK(sp >= 0, DURE_ERR_HDF5, "scalar space for attribute '%s'", name);
    if (H5Aexists(obj, name) > 0) {
        DURE_CHECK(H5Adelete(obj, name) >= 0, DURE_ERR_HDF5, "replace attribute '%s'", name);
    }
    DURE_CHECK((a = H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0,
               DURE_ERR_HDF5, "cannot create attribute '%s'", name);
    DURE_CHECK(H5Awrite(a, mtype, v) >= 0, DURE_ERR_HDF5, "cannot write attribute '%s'", name);
out:
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return st;
}

dure_status_t dataio_h5_set_attr_str(hid_t obj, const char *name, const char *v)
{
    dure_status_t st = DURE_OK;
    hid_t t = H5Tcopy(H5T_C_S1);
    DURE_CHECK(t >= 0 && H5Tset_size(t, H5T_VARIABLE) >= 0 &&
                   H5Tset_cset(t, H5T_CSET_UTF8) >= 0,
               DURE_ERR_HDF5, "string type for attribute '%s'", name);
    DURE_TRY(set_attr(obj, name, t, t, &v));
out:
    if (t >= 0) H5Tclose(t);
    return st;
}

dure_status_t dataio_h5_set_attr_f64(hid_t obj, const char *name, double v)
{
    return set_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

dure_status_t dataio_h5_set_attr_i64(hid_t obj, const char *name, int64_t v)
{
    return set_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

dure_status_t dataio_h5_make_parents(hid_t file, const char *path)
{
    dure_status_t st = DURE_OK;
    char buf[512];
    size_t n = strlen(path);
    DURE_CHECK(n < sizeof buf, DURE_ERR_ARG, "HDF5 path too long: '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i < n; i++) {
        if (buf[i] != '/') {
            continue;
        }
        buf[i] = '\0';
        if (!dataio_h5_exists(file, buf)) {
            hid_t g = H5Gcreate2(file, buf, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            DURE_CHECK(g >= 0, DURE_ERR_HDF5, "cannot create group '%s'", buf);
            H5Gclose(g);
        }
        buf[i] = '/';
    }
out:
    return st;
}
