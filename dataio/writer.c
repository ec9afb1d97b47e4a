/* dataio/writer.c - write a dure-format file (format.h) atomically. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dataio/format.h"
#include "dataio/h5util.h"
#include "dataio/reader_impl.h"
#include "dataio/stats.h"

struct meta {
    char *name;
    char **values; /* (n) */
    int64_t n;
};

struct dataio_writer {
    char *path, *tmp;
    hid_t fid, dset;
    int c;
    int64_t chunk_rows;
    float *buf;                /* (chunk_rows, C) rows not yet written */
    int64_t buf_rows;
    int64_t rows_written;      /* rows in /signals */
    int64_t *episodes;         /* (n_ep + 1) offsets of closed episodes */
    int64_t n_ep, cap_ep;
    int64_t *val;              /* (n_val) validation episodes */
    int64_t n_val;
    struct meta *meta;         /* (n_meta) */
    int n_meta;
    char **names, **units;     /* (C) */
    double sample_rate_hz;
    char *source, *anonymization, *raw_columns;
};

int64_t dataio_format_chunk_rows(int n_channels, int64_t total_rows)
{
    int64_t r = 1;
    int64_t row = 4 * (int64_t)(n_channels > 0 ? n_channels : 1);
    while (2 * r * row <= (int64_t)DATAIO_CHUNK_BYTES) {
        r *= 2;
    }
    /* A small dataset gets one chunk of its own size, not a mostly empty
     * one (HDF5 allocates edge chunks whole). */
    while (total_rows > 0 && r / 2 >= total_rows) {
        r /= 2;
    }
    return r;
}

static dure_status_t check_config(const struct dataio_writer_config *cfg)
{
    dure_status_t st = DURE_OK;
    int a, b;
    DURE_CHECK(cfg->path && cfg->path[0], DURE_ERR_ARG, "output path is empty");
    DURE_CHECK(cfg->n_channels >= 1 && cfg->n_channels <= DATAIO_FORMAT_MAX_CHANNELS,
               DURE_ERR_ARG, "'%s': %d channels (1 to %d are allowed)", cfg->path,
               cfg->n_channels, DATAIO_FORMAT_MAX_CHANNELS);
    DURE_CHECK(cfg->sample_rate_hz > 0, DURE_ERR_ARG,
               "'%s': sample rate %g Hz must be positive", cfg->path, cfg->sample_rate_hz);
    DURE_CHECK(cfg->chunk_rows >= 0, DURE_ERR_ARG, "'%s': chunk rows %lld < 0", cfg->path,
               (long long)cfg->chunk_rows);
    for (int i = 0; i < cfg->n_channels; i++) {
        DURE_CHECK(cfg->channel_names[i] && cfg->channel_names[i][0], DURE_ERR_ARG,
                   "'%s': channel %d has no name", cfg->path, i);
    }
    DURE_TRY(dataio_names_repeat(cfg->channel_names, cfg->n_channels, &a, &b));
    DURE_CHECK(a < 0, DURE_ERR_ARG, "'%s': channels %d and %d are both named '%s'", cfg->path,
               a, b, cfg->channel_names[b < 0 ? 0 : b]);
out:
    return st;
}

/* A temporary name in the destination's directory, so rename(2) is atomic. */
static dure_status_t make_tmp(const char *path, char **out)
{
    dure_status_t st = DURE_OK;
    char *dcopy = NULL, *bcopy = NULL, *tmp = NULL;
    int fd = -1;
    DURE_TRY(dataio_strdup(path, &dcopy));
    DURE_TRY(dataio_strdup(path, &bcopy));
    const char *dir = dirname(dcopy), *base = basename(bcopy);
    size_t len = strlen(dir) + strlen(base) + 32;
    tmp = malloc(len);
    DURE_ALLOC_TRY(tmp, len);
    snprintf(tmp, len, "%s/.%s.tmp-XXXXXX", dir, base);
    fd = mkstemp(tmp);
    DURE_SYS_TRY(fd >= 0, "cannot create a temporary file for '%s' in '%s'", path, dir);
    /* mkstemp makes it private (0600); give it a normal file's mode. */
    mode_t mask = umask(0);
    umask(mask);
    DURE_SYS_TRY(fchmod(fd, 0666 & ~mask) == 0, "'%s': chmod", tmp);
    close(fd);
    fd = -1;
    *out = tmp;
    tmp = NULL;
out:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    free(dcopy);
    free(bcopy);
    free(tmp);
    return st;
}

dure_status_t dataio_writer_open(const struct dataio_writer_config *cfg,
                                 dataio_writer_t **out)
{
    dure_status_t st = DURE_OK;
    dataio_writer_t *w = NULL;
    hid_t sp = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, dapl = H5I_INVALID_HID;
    struct dure_h5_quiet q;
    char why[512];

    *out = NULL;
    DURE_TRY(check_config(cfg));
    w = calloc(1, sizeof *w);
    DURE_ALLOC_TRY(w, sizeof *w);
    w->fid = w->dset = H5I_INVALID_HID;
    w->c = cfg->n_channels;
    w->chunk_rows = cfg->chunk_rows ? cfg->chunk_rows : dataio_format_chunk_rows(w->c, 0);
    w->sample_rate_hz = cfg->sample_rate_hz;
    DURE_TRY(dataio_strdup(cfg->path, &w->path));
    DURE_TRY(dataio_strdup(cfg->source, &w->source));
    if (cfg->anonymization) {
        DURE_TRY(dataio_strdup(cfg->anonymization, &w->anonymization));
    }
    DURE_TRY(dataio_strdup(cfg->raw_columns, &w->raw_columns));
    DURE_TRY(dataio_strv_new(w->c, &w->names));
    DURE_TRY(dataio_strv_new(w->c, &w->units));
    for (int i = 0; i < w->c; i++) {
        DURE_TRY(dataio_strdup(cfg->channel_names[i], &w->names[i]));
        DURE_TRY(dataio_strdup(cfg->channel_units ? cfg->channel_units[i] : "",
                               &w->units[i]));
    }
    w->buf = malloc((size_t)(w->chunk_rows * w->c) * sizeof *w->buf);
    DURE_ALLOC_TRY(w->buf, (size_t)(w->chunk_rows * w->c) * sizeof *w->buf);
    w->cap_ep = 64;
    w->episodes = malloc((size_t)w->cap_ep * sizeof *w->episodes);
    DURE_ALLOC_TRY(w->episodes, (size_t)w->cap_ep * sizeof *w->episodes);
    w->episodes[0] = 0;
    DURE_TRY(make_tmp(w->path, &w->tmp));

    dure_h5_quiet_begin(&q);
    w->fid = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (w->fid < 0) {
        dure_h5_error_text(why, sizeof why);
    }
    dure_h5_quiet_end(&q);
    DURE_CHECK(w->fid >= 0, DURE_ERR_IO, "cannot create '%s': %s", w->tmp, why);
    hsize_t dims[2] = {0, (hsize_t)w->c}, maxd[2] = {H5S_UNLIMITED, (hsize_t)w->c};
    hsize_t chunk[2] = {(hsize_t)w->chunk_rows, (hsize_t)w->c};
    DURE_CHECK((sp = H5Screate_simple(2, dims, maxd)) >= 0 &&
                   (dcpl = H5Pcreate(H5P_DATASET_CREATE)) >= 0 &&
                   H5Pset_chunk(dcpl, 2, chunk) >= 0 &&
                   (dapl = H5Pcreate(H5P_DATASET_ACCESS)) >= 0 &&
                   /* Whole chunks go straight to the file, not via the cache. */
                   H5Pset_chunk_cache(dapl, 0, 0, 1.0) >= 0,
               DURE_ERR_HDF5, "'%s': dataset properties", w->tmp);
    w->dset = H5Dcreate2(w->fid, DATAIO_DSET_SIGNALS, H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl,
                         dapl);
    DURE_CHECK(w->dset >= 0, DURE_ERR_HDF5, "'%s': cannot create '%s'", w->tmp,
               DATAIO_DSET_SIGNALS);
    *out = w;
    w = NULL;
out:
    if (dapl >= 0) H5Pclose(dapl);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    dataio_writer_abort(w);
    return st;
}

static dure_status_t flush(dataio_writer_t *w)
{
    dure_status_t st = DURE_OK;
    hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    if (w->buf_rows == 0) {
        goto out;
    }
    hsize_t dims[2] = {(hsize_t)(w->rows_written + w->buf_rows), (hsize_t)w->c};
    hsize_t start[2] = {(hsize_t)w->rows_written, 0};
    hsize_t count[2] = {(hsize_t)w->buf_rows, (hsize_t)w->c};
    DURE_CHECK(H5Dset_extent(w->dset, dims) >= 0, DURE_ERR_HDF5,
               "'%s': cannot grow '%s' to %llu rows", w->tmp, DATAIO_DSET_SIGNALS,
               (unsigned long long)dims[0]);
    DURE_CHECK((fs = H5Dget_space(w->dset)) >= 0 &&
                   H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
                   (ms = H5Screate_simple(2, count, NULL)) >= 0,
               DURE_ERR_HDF5, "'%s': selection", w->tmp);
    DURE_CHECK(H5Dwrite(w->dset, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, w->buf) >= 0,
               DURE_ERR_IO, "'%s': cannot write %lld rows of '%s' (disk full?)", w->tmp,
               (long long)w->buf_rows, DATAIO_DSET_SIGNALS);
    w->rows_written += w->buf_rows;
    w->buf_rows = 0;
out:
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return st;
}

dure_status_t dataio_writer_append(dataio_writer_t *w, const float *rows, int64_t n)
{
    dure_status_t st = DURE_OK;
    struct dure_h5_quiet q;
    dure_h5_quiet_begin(&q);
    while (n > 0) {
        int64_t take = w->chunk_rows - w->buf_rows;
        take = take < n ? take : n;
        memcpy(w->buf + w->buf_rows * w->c, rows, (size_t)(take * w->c) * sizeof *rows);
        w->buf_rows += take;
        rows += take * w->c;
        n -= take;
        if (w->buf_rows == w->chunk_rows) {
            st = flush(w);
            if (st != DURE_OK) {
                break;
            }
        }
    }
    dure_h5_quiet_end(&q);
    return st;
}

dure_status_t dataio_writer_end_episode(dataio_writer_t *w)
{
    dure_status_t st = DURE_OK;
    int64_t end = w->rows_written + w->buf_rows;
    DURE_CHECK(end > w->episodes[w->n_ep], DURE_ERR_FORMAT,
               "'%s': episode %lld is empty (no rows)", w->path, (long long)w->n_ep);
    if (w->n_ep + 2 > w->cap_ep) {
        int64_t cap = 2 * w->cap_ep;
        int64_t *v = realloc(w->episodes, (size_t)cap * sizeof *v);
        DURE_ALLOC_TRY(v, (size_t)cap * sizeof *v);
        w->episodes = v;
        w->cap_ep = cap;
    }
    w->episodes[++w->n_ep] = end;
out:
    return st;
}

int64_t dataio_writer_episodes(const dataio_writer_t *w) { return w->n_ep; }

dure_status_t dataio_writer_set_sample_rate(dataio_writer_t *w, double hz)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(hz > 0 && hz < 1e300, DURE_ERR_ARG, "'%s': sample rate %g Hz must be positive",
               w->path, hz);
    w->sample_rate_hz = hz;
out:
    return st;
}

dure_status_t dataio_writer_set_val(dataio_writer_t *w, const int64_t *episodes, int64_t n)
{
    dure_status_t st = DURE_OK;
    free(w->val);
    w->n_val = 0;
    w->val = malloc((size_t)(n ? n : 1) * sizeof *w->val);
    DURE_ALLOC_TRY(w->val, (size_t)n * sizeof *w->val);
    memcpy(w->val, episodes, (size_t)n * sizeof *w->val);
    w->n_val = n;
out:
    return st;
}

dure_status_t dataio_writer_set_episode_meta(dataio_writer_t *w, const char *name,
                                             const char *const *values, int64_t n)
{
    dure_status_t st = DURE_OK;
    struct meta *m = realloc(w->meta, (size_t)(w->n_meta + 1) * sizeof *m);
    DURE_ALLOC_TRY(m, (size_t)(w->n_meta + 1) * sizeof *m);
    w->meta = m;
    m = &w->meta[w->n_meta];
    memset(m, 0, sizeof *m);
    w->n_meta++;
    DURE_TRY(dataio_strdup(name, &m->name));
    DURE_TRY(dataio_strv_new(n, &m->values));
    m->n = n;
    for (int64_t i = 0; i < n; i++) {
        DURE_TRY(dataio_strdup(values[i], &m->values[i]));
    }
out:
    return st;
}

static dure_status_t write_attrs(dataio_writer_t *w)
{
    dure_status_t st = DURE_OK;
    char created[64];
    time_t now = time(NULL);
    struct tm tm;
    DURE_SYS_TRY(gmtime_r(&now, &tm) != NULL, "gmtime_r");
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    DURE_TRY(dataio_h5_set_attr_str(w->fid, "format", DATAIO_FORMAT_NAME));
    DURE_TRY(dataio_h5_set_attr_i64(w->fid, "format_version", DATAIO_FORMAT_VERSION));
    DURE_TRY(dataio_h5_set_attr_f64(w->fid, "sample_rate_hz", w->sample_rate_hz));
    DURE_TRY(dataio_h5_set_attr_str(w->fid, "source", w->source));
    DURE_TRY(dataio_h5_set_attr_str(w->fid, "created", created));
    DURE_TRY(dataio_h5_set_attr_str(w->fid, "tool", "dure " DURE_VERSION));
    DURE_TRY(dataio_h5_set_attr_i64(w->fid, "anonymized",
                                    w->anonymization && !w->raw_columns[0] ? 1 : 0));
    DURE_TRY(dataio_h5_set_attr_str(w->fid, "anonymization",
                                    w->anonymization ? w->anonymization : "none"));
    DURE_TRY(dataio_h5_set_attr_str(w->fid, "raw_columns", w->raw_columns));
out:
    return st;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static dure_status_t write_tables(dataio_writer_t *w)
{
    dure_status_t st = DURE_OK;
    char path[600];
    DURE_TRY(dataio_h5_write_i64(w->fid, DATAIO_DSET_EPISODES, w->episodes, w->n_ep + 1));
    DURE_TRY(dataio_h5_make_parents(w->fid, DATAIO_DSET_CHANNEL_NAMES));
    DURE_TRY(dataio_h5_write_strings(w->fid, DATAIO_DSET_CHANNEL_NAMES,
                                     (const char *const *)w->names, w->c));
    DURE_TRY(dataio_h5_write_strings(w->fid, DATAIO_DSET_CHANNEL_UNITS,
                                     (const char *const *)w->units, w->c));
    if (w->n_val > 0) {
        qsort(w->val, (size_t)w->n_val, sizeof *w->val, cmp_i64);
        for (int64_t i = 0; i < w->n_val; i++) {
            DURE_CHECK(w->val[i] >= 0 && w->val[i] < w->n_ep &&
                           (i == 0 || w->val[i] != w->val[i - 1]),
                       DURE_ERR_ARG, "'%s': validation episode %lld is not one of %lld "
                       "episodes, or repeated", w->path, (long long)w->val[i],
                       (long long)w->n_ep);
        }
        DURE_CHECK(w->n_val < w->n_ep, DURE_ERR_ARG,
                   "'%s': all %lld episodes are in the validation split; none is left "
                   "to train on", w->path, (long long)w->n_ep);
        DURE_TRY(dataio_h5_make_parents(w->fid, DATAIO_DSET_VAL_EPISODES));
        DURE_TRY(dataio_h5_write_i64(w->fid, DATAIO_DSET_VAL_EPISODES, w->val, w->n_val));
    }
    for (int i = 0; i < w->n_meta; i++) {
        DURE_CHECK(w->meta[i].n == w->n_ep, DURE_ERR_INTERNAL,
                   "'%s': metadata '%s' has %lld values for %lld episodes", w->path,
                   w->meta[i].name, (long long)w->meta[i].n, (long long)w->n_ep);
        snprintf(path, sizeof path, "%s/%s", DATAIO_GROUP_EPISODE_META, w->meta[i].name);
        DURE_TRY(dataio_h5_make_parents(w->fid, path));
        DURE_TRY(dataio_h5_write_strings(w->fid, path, (const char *const *)w->meta[i].values,
                                         w->meta[i].n));
    }
out:
    return st;
}

/* Flush the data to disk before the rename makes the file visible. */
static dure_status_t sync_file(const char *path)
{
    dure_status_t st = DURE_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    DURE_SYS_TRY(fd >= 0, "'%s': open for fsync", path);
    DURE_SYS_TRY(fsync(fd) == 0, "'%s': fsync", path);
out:
    if (fd >= 0) {
        close(fd);
    }
    return st;
}

static void close_h5(dataio_writer_t *w)
{
    if (w->dset >= 0) {
        H5Dclose(w->dset);
    }
    if (w->fid >= 0) {
        H5Fclose(w->fid);
    }
    w->dset = w->fid = H5I_INVALID_HID;
}

dure_status_t dataio_writer_finish(dataio_writer_t *w)
{
    dure_status_t st = DURE_OK;
    struct dure_h5_quiet q;
    int quiet = 0;
    dataio_reader_t *r = NULL;
    struct dataio_stats *s = NULL;
    char why[512];

    DURE_CHECK(w->episodes[w->n_ep] == w->rows_written + w->buf_rows, DURE_ERR_FORMAT,
               "'%s': %lld rows after the last episode were never closed", w->path,
               (long long)(w->rows_written + w->buf_rows - w->episodes[w->n_ep]));
    DURE_CHECK(w->n_ep >= 1, DURE_ERR_FORMAT, "'%s': no episode was written", w->path);
    dure_h5_quiet_begin(&q);
    quiet = 1;
    DURE_TRY(flush(w));
    DURE_TRY(write_tables(w));
    DURE_TRY(write_attrs(w));
    H5Dclose(w->dset);
    w->dset = H5I_INVALID_HID;
    herr_t hc = H5Fclose(w->fid);
    w->fid = H5I_INVALID_HID;
    DURE_CHECK(hc >= 0, DURE_ERR_IO, "'%s': closing failed (disk full?)", w->tmp);
    dure_h5_quiet_end(&q);
    quiet = 0;

    /* The stats come from reading the file back: the same code as
     * `dure data stats`, so a file never holds stats it would not get. */
    struct dataio_reader_config rc = {.path = w->tmp, .layout = DATAIO_LAYOUT_DURE,
                                      .io = DATAIO_IO_SERIAL, .comm = MPI_COMM_NULL};
    DURE_TRY(dataio_reader_open(&rc, &r));
    DURE_TRY(dataio_stats_compute(r, DATAIO_SPLIT_TRAIN, MPI_COMM_NULL, &s));
    dataio_reader_close(r);
    r = NULL;
    dure_h5_quiet_begin(&q);
    quiet = 1;
    w->fid = H5Fopen(w->tmp, H5F_ACC_RDWR, H5P_DEFAULT);
    if (w->fid < 0) {
        dure_h5_error_text(why, sizeof why);
        DURE_FAIL(DURE_ERR_IO, "cannot reopen '%s': %s", w->tmp, why);
    }
    DURE_TRY(dataio_stats_store(w->fid, s));
    hc = H5Fclose(w->fid);
    w->fid = H5I_INVALID_HID;
    DURE_CHECK(hc >= 0, DURE_ERR_IO, "'%s': closing failed (disk full?)", w->tmp);
    DURE_TRY(sync_file(w->tmp));
    DURE_SYS_TRY(rename(w->tmp, w->path) == 0, "cannot rename '%s' to '%s'", w->tmp,
                 w->path);
    free(w->tmp);
    w->tmp = NULL;
out:
    if (quiet) {
        dure_h5_quiet_end(&q);
    }
    dataio_reader_close(r);
    dataio_stats_free(s);
    dataio_writer_abort(w);
    return st;
}

void dataio_writer_abort(dataio_writer_t *w)
{
    if (!w) {
        return;
    }
    struct dure_h5_quiet q;
    dure_h5_quiet_begin(&q);
    close_h5(w);
    dure_h5_quiet_end(&q);
    if (w->tmp) {
        unlink(w->tmp);
    }
    for (int i = 0; i < w->n_meta; i++) {
        free(w->meta[i].name);
        dataio_strv_free(w->meta[i].values, w->meta[i].n);
    }
    free(w->meta);
    dataio_strv_free(w->names, w->c);
    dataio_strv_free(w->units, w->c);
    free(w->path);
    free(w->tmp);
    free(w->source);
    free(w->anonymization);
    free(w->raw_columns);
    free(w->buf);
    free(w->episodes);
    free(w->val);
    free(w);
}
