/* dataio/h5raw.c - see h5raw.h. */
#include "dataio/h5raw.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "common/mpi_check.h"

static void seterr(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

dure_status_t h5raw_file_open(struct h5raw_file *f, const char *path, MPI_Comm comm)
{
    dure_status_t st = DURE_OK;
    f->fd = -1;
    f->fh = MPI_FILE_NULL;
    f->path = strdup(path);
    DURE_ALLOC_TRY(f->path, strlen(path) + 1);
    if (comm == MPI_COMM_NULL) {
        f->fd = open(path, O_RDONLY | O_CLOEXEC);
        DURE_SYS_TRY(f->fd >= 0, "dataset file '%s': open", path);
    } else {
        DURE_MPI_TRY(MPI_File_open(comm, path, MPI_MODE_RDONLY, MPI_INFO_NULL, &f->fh));
        DURE_MPI_TRY(MPI_File_set_errhandler(f->fh, MPI_ERRORS_RETURN));
    }
out:
    return st;
}

void h5raw_file_close(struct h5raw_file *f)
{
    if (f->fd >= 0) {
        close(f->fd);
    }
    if (f->fh != MPI_FILE_NULL) {
        MPI_File_close(&f->fh);
    }
    f->fd = -1;
    f->fh = MPI_FILE_NULL;
    free(f->path);
    f->path = NULL;
}

/* A read of len bytes at off that found the end of the file after `done`. */
static dure_status_t truncated(const struct h5raw_dset *d, uint64_t off, size_t done,
                               size_t len, char *err, size_t err_len)
{
    seterr(err, err_len,
           "%s: file ends at byte %llu, before the %zu bytes of data stored at offset "
           "%llu (truncated file?)",
           d->what, (unsigned long long)(off + done), len, (unsigned long long)off);
    return DURE_ERR_FORMAT;
}

/* Read exactly len bytes at off. */
static dure_status_t fetch(const struct h5raw_dset *d, uint64_t off, size_t len,
                           void *buf, uint64_t *bytes, char *err, size_t err_len)
{
    const struct h5raw_file *f = d->file;
    unsigned char *p = buf;
    size_t done = 0;
    while (done < len) {
        size_t want = len - done;
        if (f->fd >= 0) {
            ssize_t got = pread(f->fd, p + done, want, (off_t)(off + done));
            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got < 0) {
                seterr(err, err_len, "%s: read of %zu bytes at offset %llu failed: %s",
                       d->what, want, (unsigned long long)(off + done), strerror(errno));
                return DURE_ERR_IO;
            }
            if (got == 0) {
                return truncated(d, off, done, len, err, err_len);
            }
            done += (size_t)got;
        } else {
            int n = want > (1u << 30) ? (1 << 30) : (int)want;
            MPI_Status ms;
            int got = 0;
            int rc = MPI_File_read_at(f->fh, (MPI_Offset)(off + done), p + done, n,
                                      MPI_BYTE, &ms);
            if (rc == MPI_SUCCESS) {
                rc = MPI_Get_count(&ms, MPI_BYTE, &got);
            }
            if (rc != MPI_SUCCESS) {
                char msg[MPI_MAX_ERROR_STRING] = "";
                int ml = 0;
                MPI_Error_string(rc, msg, &ml);
                seterr(err, err_len, "%s: MPI_File_read_at of %d bytes at offset %llu: %s",
                       d->what, n, (unsigned long long)(off + done), msg);
                return DURE_ERR_IO;
            }
            if (got <= 0) {
                return truncated(d, off, done, len, err, err_len);
            }
            done += (size_t)got;
        }
    }
    *bytes += len;
    return DURE_OK;
}

static float half_to_float(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v;
    if (e == 0) {
        v = ldexpf((float)m, -24);
    } else if (e == 31) {
        v = m ? NAN : INFINITY;
    } else {
        v = ldexpf((float)(m + 1024), e - 25);
    }
    return s ? -v : v;
}

/* One stored element as float32. */
static float load(const struct h5raw_dset *d, const unsigned char *p)
{
    unsigned char b[8];
    memcpy(b, p, (size_t)d->size);
    if (d->swap) {
        for (int i = 0; i < d->size / 2; i++) {
            unsigned char t = b[i];
            b[i] = b[d->size - 1 - i];
            b[d->size - 1 - i] = t;
        }
    }
    switch (d->kind * 16 + d->size) {
    case H5RAW_FLOAT * 16 + 2: { uint16_t v; memcpy(&v, b, 2); return half_to_float(v); }
    case H5RAW_FLOAT * 16 + 4: { float v; memcpy(&v, b, 4); return v; }
    case H5RAW_FLOAT * 16 + 8: { double v; memcpy(&v, b, 8); return (float)v; }
    case H5RAW_INT * 16 + 1: { int8_t v; memcpy(&v, b, 1); return (float)v; }
    case H5RAW_INT * 16 + 2: { int16_t v; memcpy(&v, b, 2); return (float)v; }
    case H5RAW_INT * 16 + 4: { int32_t v; memcpy(&v, b, 4); return (float)v; }
    case H5RAW_INT * 16 + 8: { int64_t v; memcpy(&v, b, 8); return (float)v; }
    case H5RAW_UINT * 16 + 1: { uint8_t v; memcpy(&v, b, 1); return (float)v; }
    case H5RAW_UINT * 16 + 2: { uint16_t v; memcpy(&v, b, 2); return (float)v; }
    case H5RAW_UINT * 16 + 4: { uint32_t v; memcpy(&v, b, 4); return (float)v; }
    default: { uint64_t v; memcpy(&v, b, 8); return (float)v; }
    }
}

/* nrows rows of src (row pitch src_row elements), first ncols columns. */
static void convert(const struct h5raw_dset *d, const unsigned char *src, int64_t nrows,
                    int64_t src_row, int64_t ncols, float *dst, int64_t stride)
{
    size_t es = (size_t)d->size;
    if (d->kind == H5RAW_FLOAT && d->size == 4 && !d->swap) {
        for (int64_t r = 0; r < nrows; r++) {
            memcpy(dst + r * stride, src + (size_t)(r * src_row) * es, (size_t)ncols * 4);
        }
        return;
    }
    for (int64_t r = 0; r < nrows; r++) {
        const unsigned char *row = src + (size_t)(r * src_row) * es;
        for (int64_t c = 0; c < ncols; c++) {
            dst[r * stride + c] = load(d, row + (size_t)c * es);
        }
    }
}

/* Can rows go from the file straight into a destination of this pitch? */
static int direct_read(const struct h5raw_dset *d, int64_t dst_stride)
{
    int native = d->kind == H5RAW_FLOAT && d->size == 4 && !d->swap;
    if (!native || d->cols != dst_stride) {
        return 0;
    }
    return d->layout == H5RAW_CONTIGUOUS ||
           (d->layout == H5RAW_CHUNKED && d->ncc == 1 && d->ccols == d->cols &&
            d->nfilters == 0);
}

/* Undo the filter pipeline of chunk idx into s->dec. */
static dure_status_t decode_chunk(const struct h5raw_dset *d, int64_t idx,
                                  struct h5raw_scratch *s, uint64_t *bytes, char *err,
                                  size_t err_len)
{
    dure_status_t st;
    const struct h5raw_chunk *ch = &d->chunks[idx];
    size_t want = (size_t)(d->crows * d->ccols * d->size);
    unsigned char *bufs[3] = {s->zin, s->dec, s->tmp};
    int cur = 0;
    size_t len = (size_t)ch->size;

    if (s->cached == d && s->cached_chunk == idx) {
        return DURE_OK;
    }
    s->cached = NULL;
    st = fetch(d, ch->addr, len, s->zin, bytes, err, err_len);
    if (st != DURE_OK) {
        return st;
    }
    for (int i = d->nfilters - 1; i >= 0; i--) {
        if (ch->filter_mask & (1u << i)) {
            continue;
        }
        int nxt = (cur + 1) % 3;
        if (d->filters[i] == H5Z_FILTER_DEFLATE) {
            uLongf out = (uLongf)(s->cap.zin < s->cap.dec ? s->cap.zin : s->cap.dec);
            int zrc = uncompress(bufs[nxt], &out, bufs[cur], (uLong)len);
            if (zrc != Z_OK) {
                seterr(err, err_len, "%s: chunk %lld at offset %llu does not inflate "
                       "(zlib error %d: corrupt data?)", d->what, (long long)idx,
                       (unsigned long long)ch->addr, zrc);
                return DURE_ERR_FORMAT;
            }
            len = (size_t)out;
            cur = nxt;
        } else if (d->filters[i] == H5Z_FILTER_SHUFFLE) {
            size_t es = (size_t)d->size, n = len / es;
            for (size_t b = 0; b < es; b++) {
                for (size_t k = 0; k < n; k++) {
                    bufs[nxt][k * es + b] = bufs[cur][b * n + k];
                }
            }
            memcpy(bufs[nxt] + n * es, bufs[cur] + n * es, len - n * es);
            cur = nxt;
        } else if (d->filters[i] == H5Z_FILTER_FLETCHER32) {
            /* The checksum is the last 4 bytes; dropping it is the decode. */
            if (len < 4) {
                seterr(err, err_len, "%s: chunk %lld is too short for its checksum",
                       d->what, (long long)idx);
                return DURE_ERR_FORMAT;
            }
            len -= 4;
        }
    }
    if (len != want) {
        seterr(err, err_len, "%s: chunk %lld decodes to %zu bytes; expected %zu",
               d->what, (long long)idx, len, want);
        return DURE_ERR_FORMAT;
    }
    if (bufs[cur] != s->dec) {
        memcpy(s->dec, bufs[cur], len);
    }
    s->cached = d;
    s->cached_chunk = idx;
    return DURE_OK;
}

/* A direct read being extended while file and destination stay contiguous. */
struct pending {
    uint64_t off;
    size_t len;
    unsigned char *dst;
};

static dure_status_t pend(const struct h5raw_dset *d, struct pending *p, uint64_t off,
                          size_t len, unsigned char *dst, uint64_t *bytes, char *err,
                          size_t err_len)
{
    if (p->len > 0 && off == p->off + p->len && dst == p->dst + p->len) {
        p->len += len;
        return DURE_OK;
    }
    dure_status_t st = p->len ? fetch(d, p->off, p->len, p->dst, bytes, err, err_len)
                              : DURE_OK;
    p->off = off;
    p->len = len;
    p->dst = dst;
    return st;
}

static dure_status_t read_chunked(const struct h5raw_dset *d, int64_t r0, int64_t n,
                                  float *dst, int64_t stride, struct h5raw_scratch *s,
                                  uint64_t *bytes, char *err, size_t err_len)
{
    dure_status_t st = DURE_OK;
    size_t es = (size_t)d->size;
    int direct = direct_read(d, stride);
    unsigned all_skipped = (1u << d->nfilters) - 1;
    struct pending p = {0, 0, NULL};

    for (int64_t rc = r0 / d->crows; rc <= (r0 + n - 1) / d->crows; rc++) {
        int64_t base = rc * d->crows;
        int64_t a = (r0 > base ? r0 : base) - base;
        int64_t b = (r0 + n < base + d->crows ? r0 + n : base + d->crows) - base;
        float *orow = dst + (base + a - r0) * stride;
        for (int64_t cc = 0; cc < d->ncc; cc++) {
            int64_t idx = rc * d->ncc + cc;
            const struct h5raw_chunk *ch = &d->chunks[idx];
            int64_t c0 = cc * d->ccols;
            int64_t take = d->cols - c0 < d->ccols ? d->cols - c0 : d->ccols;
            if (d->nfilters == 0 || (ch->filter_mask & all_skipped) == all_skipped) {
                uint64_t off = ch->addr + (uint64_t)(a * d->ccols) * es;
                size_t len = (size_t)((b - a) * d->ccols) * es;
                if (direct) {
                    st = pend(d, &p, off, len, (unsigned char *)orow, bytes, err, err_len);
                } else {
                    st = fetch(d, off, len, s->raw, bytes, err, err_len);
                    if (st == DURE_OK) {
                        convert(d, s->raw, b - a, d->ccols, take, orow + c0, stride);
                    }
                }
            } else {
                st = decode_chunk(d, idx, s, bytes, err, err_len);
                if (st == DURE_OK) {
                    convert(d, s->dec + (size_t)(a * d->ccols) * es, b - a, d->ccols, take,
                            orow + c0, stride);
                }
            }
            if (st != DURE_OK) {
                return st;
            }
        }
    }
    return p.len ? fetch(d, p.off, p.len, p.dst, bytes, err, err_len) : DURE_OK;
}

dure_status_t h5raw_read(const struct h5raw_dset *d, int64_t r0, int64_t n, float *dst,
                         int64_t stride, struct h5raw_scratch *s, uint64_t *bytes,
                         char *err, size_t err_len)
{
    dure_status_t st = DURE_OK;
    size_t es = (size_t)d->size;
    if (r0 < 0 || n < 0 || r0 + n > d->rows) {
        seterr(err, err_len, "%s: rows [%lld, %lld) are outside its %lld rows", d->what,
               (long long)r0, (long long)(r0 + n), (long long)d->rows);
        return DURE_ERR_INTERNAL;
    }
    if (n == 0) {
        return DURE_OK;
    }
    switch (d->layout) {
    case H5RAW_MEMORY:
        convert(d, d->mem + (size_t)(r0 * d->cols) * es, n, d->cols, d->cols, dst, stride);
        break;
    case H5RAW_CONTIGUOUS: {
        uint64_t off = d->addr + (uint64_t)(r0 * d->cols) * es;
        size_t len = (size_t)(n * d->cols) * es;
        if (direct_read(d, stride)) {
            st = fetch(d, off, len, dst, bytes, err, err_len);
        } else {
            st = fetch(d, off, len, s->raw, bytes, err, err_len);
            if (st == DURE_OK) {
                convert(d, s->raw, n, d->cols, d->cols, dst, stride);
            }
        }
        break;
    }
    case H5RAW_CHUNKED:
        st = read_chunked(d, r0, n, dst, stride, s, bytes, err, err_len);
        break;
    }
    return st;
}

void h5raw_scratch_need(const struct h5raw_dset *d, int64_t max_rows, int64_t dst_stride,
                        struct h5raw_scratch_size *need)
{
    int64_t width = d->layout == H5RAW_CHUNKED && d->ccols > d->cols ? d->ccols : d->cols;
    size_t raw = direct_read(d, dst_stride) || d->layout == H5RAW_MEMORY
                     ? 0
                     : (size_t)(max_rows * width) * (size_t)d->size;
    if (raw > need->raw) {
        need->raw = raw;
    }
    if (d->layout == H5RAW_CHUNKED && d->nfilters > 0) {
        size_t chunk = (size_t)(d->crows * d->ccols * d->size);
        size_t big = chunk > d->max_chunk_stored ? chunk : (size_t)d->max_chunk_stored;
        if (big > need->zin) {
            need->zin = big;
        }
        if (big > need->dec) {
            need->dec = big;
        }
    }
}

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

size_t h5raw_scratch_total(const struct h5raw_scratch_size *need)
{
    return round64(need->raw) + round64(need->zin) + 2 * round64(need->dec) + 64;
}

void h5raw_scratch_init(struct h5raw_scratch *s, const struct h5raw_scratch_size *need,
                        unsigned char *block)
{
    s->cap = *need;
    s->raw = block;
    s->zin = s->raw + round64(need->raw);
    s->dec = s->zin + round64(need->zin);
    s->tmp = s->dec + round64(need->dec);
    s->cached = NULL;
    s->cached_chunk = -1;
}

/* --------------------------------------------------------------- open */

static dure_status_t check_type(hid_t t, struct h5raw_dset *d)
{
    dure_status_t st = DURE_OK;
    hid_t base = H5I_INVALID_HID;
    H5T_class_t cls = H5Tget_class(t);
    if (cls == H5T_ENUM) {
        base = H5Tget_super(t);
        DURE_CHECK(base >= 0, DURE_ERR_FORMAT, "%s: enum base type", d->what);
        t = base;
        cls = H5Tget_class(t);
    }
    d->size = (int)H5Tget_size(t);
    H5T_order_t ord = H5Tget_order(t);
    d->swap = ord == H5T_ORDER_BE;
    DURE_CHECK(ord == H5T_ORDER_LE || ord == H5T_ORDER_BE ||
                   (cls != H5T_FLOAT && cls != H5T_INTEGER),
               DURE_ERR_FORMAT, "%s: unsupported byte order", d->what);
    if (cls == H5T_FLOAT) {
        size_t spos, epos, esize, mpos, msize;
        DURE_CHECK(H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize) >= 0,
                   DURE_ERR_FORMAT, "%s: float fields", d->what);
        int ieee = (d->size == 2 && esize == 5 && msize == 10) ||
                   (d->size == 4 && esize == 8 && msize == 23) ||
                   (d->size == 8 && esize == 11 && msize == 52);
        /* dure decodes the bits itself: every field where IEEE 754 puts
         * it, its bias, and the implied leading 1 (HDF5 would convert any
         * other layout, and dure would read other values than it). */
        DURE_CHECK(ieee && mpos == 0 && epos == msize && spos == (size_t)(8 * d->size - 1) &&
                       H5Tget_offset(t) == 0 && H5Tget_precision(t) == (size_t)(8 * d->size) &&
                       H5Tget_ebias(t) == ((size_t)1 << (esize - 1)) - 1 &&
                       H5Tget_norm(t) == H5T_NORM_IMPLIED,
                   DURE_ERR_FORMAT,
                   "%s: unsupported %d-byte float format (dure converts IEEE "
                   "float16, float32 and float64)", d->what, d->size);
        d->kind = H5RAW_FLOAT;
    } else if (cls == H5T_INTEGER) {
        DURE_CHECK(d->size == 1 || d->size == 2 || d->size == 4 || d->size == 8,
                   DURE_ERR_FORMAT, "%s: unsupported %d-byte integer type",
                   d->what, d->size);
        DURE_CHECK(H5Tget_offset(t) == 0 && H5Tget_precision(t) == (size_t)(8 * d->size),
                   DURE_ERR_FORMAT,
                   "%s: unsupported integer type: %zu bits at bit %d of %d bytes (dure reads "
                   "whole 8-64 bit integers)", d->what, H5Tget_precision(t), H5Tget_offset(t),
                   d->size);
        d->kind = H5Tget_sign(t) == H5T_SGN_NONE ? H5RAW_UINT : H5RAW_INT;
    } else {
        static const char *names[] = {"integer", "float", "time", "string", "bitfield",
                                      "opaque", "compound", "reference", "enum",
                                      "variable-length", "array"};
        DURE_FAIL(DURE_ERR_FORMAT,
                  "%s: unsupported dtype (%s); dure reads float16/32/64 and 8-64 bit "
                  "integers",
                  d->what, cls >= 0 && cls < (int)(sizeof names / sizeof *names)
                               ? names[cls] : "unknown");
    }
out:
    if (base >= 0) H5Tclose(base);
    return st;
}

/*
 * Storage HDF5 never allocated reads back as the fill value: a dataset
 * declared far larger than what is stored (a 10 GiB /signals in a 55 KB
 * file, a damaged dimension) would train on zeros after reading for
 * hours. Refused at open, before anything is sized by the declared shape:
 * `stored` of `declared` units (chunks, bytes) are in the file.
 */
static dure_status_t unwritten(const struct h5raw_dset *d, double declared, double stored,
                               const char *units)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(stored >= declared, DURE_ERR_FORMAT,
               "%s declares [%lld, %lld] %s%d values (%.4g GiB) but only %.0f of its %.0f "
               "%s are stored: HDF5 would return fill values for the rest (data never "
               "written, or a damaged file)", d->what, (long long)d->rows, (long long)d->cols,
               d->kind == H5RAW_FLOAT ? "float" : "int", 8 * d->size,
               (double)d->rows * (double)d->cols * d->size / 1073741824.0, stored, declared,
               units);
out:
    return st;
}

static dure_status_t open_chunks(hid_t dset, hid_t dcpl, int rank, struct h5raw_dset *d)
{
    dure_status_t st = DURE_OK;
    hid_t sp = H5I_INVALID_HID;
    hsize_t cdims[2] = {1, 1};
    DURE_CHECK(H5Pget_chunk(dcpl, rank, cdims) == rank, DURE_ERR_FORMAT,
               "%s: chunk shape", d->what);
    d->crows = (int64_t)cdims[0];
    d->ccols = rank == 2 ? (int64_t)cdims[1] : 1;
    d->nrc = (d->rows + d->crows - 1) / d->crows;
    d->ncc = (d->cols + d->ccols - 1) / d->ccols;
    int nf = H5Pget_nfilters(dcpl);
    DURE_CHECK(nf >= 0 && nf <= H5RAW_MAX_FILTERS, DURE_ERR_FORMAT,
               "%s: %d filters in its pipeline; dure reads at most %d", d->what, nf,
               H5RAW_MAX_FILTERS);
    d->nfilters = nf;
    /* Before a table of every chunk: all must be stored (see unwritten()). */
    hsize_t stored = 0;
    DURE_CHECK((sp = H5Dget_space(dset)) >= 0 && H5Dget_num_chunks(dset, sp, &stored) >= 0,
               DURE_ERR_FORMAT,
               "%s: cannot count its chunks", d->what);
    DURE_TRY(unwritten(d, (double)d->nrc * (double)d->ncc, (double)stored, "chunks"));
    for (int i = 0; i < nf; i++) {
        unsigned flags = 0, cd[8];
        size_t ncd = 8;
        char name[64] = "";
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof name,
                                         name, NULL);
        DURE_CHECK(id == H5Z_FILTER_DEFLATE || id == H5Z_FILTER_SHUFFLE ||
                       id == H5Z_FILTER_FLETCHER32,
                   DURE_ERR_FORMAT,
                   "%s: compressed with filter %d (%s), which dure does not decode "
                   "(deflate, shuffle and fletcher32 are supported); rewrite it with "
                   "h5repack -f NONE", d->what, (int)id, name[0] ? name : "unknown");
        d->filters[i] = (int)id;
    }
    size_t n = (size_t)(d->nrc * d->ncc);
    d->chunks = calloc(n ? n : 1, sizeof *d->chunks);
    DURE_ALLOC_TRY(d->chunks, n * sizeof *d->chunks);
    /* One pass over the n chunks (none when a dimension is 0, however
     * long the other: a loop over rows of empty columns never ends). A
     * chunk no filter changed holds its whole shape: dure reads its rows
     * in place, and libhdf5 1.10 copies the shape's bytes out of a buffer
     * of the stored size. */
    const uint64_t nominal = (uint64_t)(d->crows * d->ccols) * (uint64_t)d->size;
    const unsigned all_skipped = (1u << nf) - 1;
    for (size_t i = 0; i < n; i++) {
        int64_t rc = (int64_t)i / d->ncc, cc = (int64_t)i % d->ncc;
        hsize_t off[2] = {(hsize_t)(rc * d->crows), (hsize_t)(cc * d->ccols)};
        unsigned mask = 0;
        haddr_t addr = HADDR_UNDEF;
        hsize_t size = 0;
        struct h5raw_chunk *ch = &d->chunks[i];
        DURE_CHECK(H5Dget_chunk_info_by_coord(dset, off, &mask, &addr, &size) >= 0 &&
                       addr != HADDR_UNDEF,
                   DURE_ERR_FORMAT, "%s: cannot locate chunk at row %lld", d->what,
                   (long long)off[0]);
        DURE_CHECK(!(nf == 0 || (mask & all_skipped) == all_skipped) || size == nominal,
                   DURE_ERR_FORMAT,
                   "%s: its unfiltered chunk at row %lld stores %llu bytes, not the %llu of "
                   "its shape: damaged", d->what, (long long)off[0],
                   (unsigned long long)size, (unsigned long long)nominal);
        ch->addr = (uint64_t)addr;
        ch->size = (uint64_t)size;
        ch->filter_mask = mask;
        if (ch->size > d->max_chunk_stored) {
            d->max_chunk_stored = ch->size;
        }
    }
out:
    if (sp >= 0) H5Sclose(sp);
    return st;
}

dure_status_t h5raw_dset_open(hid_t fid, const char *name, const char *file_label,
                              const struct h5raw_file *f, struct h5raw_dset *d)
{
    dure_status_t st = DURE_OK;
    hid_t dset = H5I_INVALID_HID, sp = H5I_INVALID_HID, t = H5I_INVALID_HID;
    hid_t dcpl = H5I_INVALID_HID;
    hsize_t dims[H5S_MAX_RANK];
    size_t wlen = strlen(file_label) + strlen(name) + 32;

    memset(d, 0, sizeof *d);
    d->file = f;
    d->what = malloc(wlen);
    DURE_ALLOC_TRY(d->what, wlen);
    snprintf(d->what, wlen, "file '%s', dataset '%s%s'", file_label, name[0] == '/' ? "" : "/",
             name);
    dset = H5Dopen2(fid, name, H5P_DEFAULT);
    DURE_CHECK(dset >= 0, DURE_ERR_FORMAT, "%s: not found", d->what);
    DURE_CHECK((sp = H5Dget_space(dset)) >= 0 && (t = H5Dget_type(dset)) >= 0 &&
                   (dcpl = H5Dget_create_plist(dset)) >= 0,
               DURE_ERR_FORMAT, "%s: cannot query it", d->what);
    int rank = H5Sget_simple_extent_ndims(sp);
    DURE_CHECK(rank >= 0, DURE_ERR_FORMAT, "%s: cannot get its rank", d->what);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    if (rank != 1 && rank != 2) {
        char shape[128] = "";
        size_t used = 0;
        for (int i = 0; i < rank && used < sizeof shape - 24; i++) {
            used += (size_t)snprintf(shape + used, sizeof shape - used, "%s%llu",
                                     i ? " x " : "", (unsigned long long)dims[i]);
        }
        DURE_FAIL(DURE_ERR_FORMAT,
                  "%s has rank %d (shape %s); dure reads 1-D [T] or 2-D [T, C] "
                  "datasets as channels", d->what, rank, rank ? shape : "scalar");
    }
    d->rank = rank;
    d->rows = (int64_t)dims[0];
    d->cols = rank == 2 ? (int64_t)dims[1] : 1;
    DURE_CHECK(d->cols > 0, DURE_ERR_FORMAT,
               "%s has shape [%lld, 0]: no channels", d->what, (long long)d->rows);
    DURE_TRY(check_type(t, d));
    DURE_CHECK(H5Pget_external_count(dcpl) == 0, DURE_ERR_FORMAT,
               "%s: stored in external files, which dure does not read", d->what);
    switch (H5Pget_layout(dcpl)) {
    case H5D_CONTIGUOUS: {
        haddr_t a = H5Dget_offset(dset);
        H5Eclear2(H5E_DEFAULT);
        double declared = (double)d->rows * (double)d->cols * d->size;
        DURE_TRY(unwritten(d, declared,
                           a == HADDR_UNDEF ? 0.0 : (double)H5Dget_storage_size(dset),
                           "bytes"));
        d->layout = H5RAW_CONTIGUOUS;
        d->addr = (uint64_t)a;
        break;
    }
    case H5D_CHUNKED:
        d->layout = H5RAW_CHUNKED;
        DURE_TRY(open_chunks(dset, dcpl, rank, d));
        break;
    case H5D_COMPACT: {
        /* At most 64 KiB, kept in memory: read once, here. */
        size_t bytes = (size_t)(d->rows * d->cols) * (size_t)d->size;
        d->layout = H5RAW_MEMORY;
        /* libhdf5 1.10.8 copies from the layout message whatever its size
         * field says, NULL when it says 0: a damaged file crashes it
         * (tests/fuzz/regress/h5_robomimic/compact-size). Refuse first. */
        hsize_t stored = H5Dget_storage_size(dset);
        DURE_CHECK(stored == bytes, DURE_ERR_FORMAT,
                   "%s: its compact storage holds %llu bytes, its shape needs %zu: damaged",
                   d->what, (unsigned long long)stored, bytes);
        d->mem = malloc(bytes ? bytes : 1);
        DURE_ALLOC_TRY(d->mem, bytes);
        if (bytes) {
            DURE_CHECK(H5Dread(dset, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, d->mem) >= 0,
                       DURE_ERR_FORMAT, "%s: cannot read its compact data", d->what);
        }
        break;
    }
    default:
        DURE_FAIL(DURE_ERR_FORMAT, "%s: virtual datasets are not supported", d->what);
    }
out:
    if (dcpl >= 0) H5Pclose(dcpl);
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (dset >= 0) H5Dclose(dset);
    if (st != DURE_OK) {
        h5raw_dset_free(d);
    }
    return st;
}

void h5raw_dset_free(struct h5raw_dset *d)
{
    free(d->what);
    free(d->chunks);
    free(d->mem);
    memset(d, 0, sizeof *d);
}

void h5raw_describe(const struct h5raw_dset *d, char *buf, size_t len)
{
    const char *kind = d->kind == H5RAW_FLOAT ? "float" : d->kind == H5RAW_INT ? "int" : "uint";
    int n = snprintf(buf, len, "%s%d%s [%lld", kind, 8 * d->size, d->swap ? " (big-endian)" : "",
                     (long long)d->rows);
    if (d->rank == 2 && n >= 0 && (size_t)n < len) {
        n += snprintf(buf + n, len - (size_t)n, ", %lld", (long long)d->cols);
    }
    if (n < 0 || (size_t)n >= len) {
        return;
    }
    switch (d->layout) {
    case H5RAW_CONTIGUOUS:
        n += snprintf(buf + n, len - (size_t)n, "], contiguous");
        break;
    case H5RAW_MEMORY:
        n += snprintf(buf + n, len - (size_t)n, "], compact");
        break;
    case H5RAW_CHUNKED:
        n += snprintf(buf + n, len - (size_t)n, "], chunked %lld x %lld (%lld chunks of %lld bytes)",
                      (long long)d->crows, (long long)d->ccols, (long long)(d->nrc * d->ncc),
                      (long long)(d->crows * d->ccols * d->size));
        break;
    }
    for (int i = 0; i < d->nfilters && n >= 0 && (size_t)n < len; i++) {
        const char *f = d->filters[i] == H5Z_FILTER_DEFLATE   ? "deflate"
                        : d->filters[i] == H5Z_FILTER_SHUFFLE ? "shuffle"
                                                              : "fletcher32";
        n += snprintf(buf + n, len - (size_t)n, "%s%s", i ? "+" : ", ", f);
    }
}
