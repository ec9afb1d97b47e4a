/* dataio/reader.c - the reader dispatcher and what the layouts share. */
#include "dataio/reader.h"

#include <ctype.h>
#include <glob.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/mpi_check.h"
#include "common/strmap.h"
#include "dataio/format.h"
#include "dataio/h5util.h"
#include "dataio/order.h"
#include "dataio/reader_impl.h"
#include "dataio/stats.h"

/*
 * The io mode AUTO stands for. Measured by bench/dataio_io.c (2 ranks,
 * random 512 x 16 windows from a page-cached file): pread per rank beat
 * MPI_File_read_at (ROMIO/OMPIO add per-call locking and request
 * bookkeeping and gain nothing on a node-local file); see FORMAT.md.
 */
#define DATAIO_IO_MEASURED_DEFAULT DATAIO_IO_SERIAL

struct dataio_reader {
    const struct dataio_reader_i *iface;
    void *ctx;
    struct dataio_dataset_info info;
    uint8_t *held_out;            /* (E) the split of dataio_reader_hold_out */
    char stale_why[256];          /* info.stats_stale's text */
};

struct dataio_scratch {
    dataio_reader_t *r;
    int64_t max_rows;
    void *block;
};

static const char *const layout_names[] = {"auto", "dure", "robomimic", "episode-files"};
static const char *const split_names[] = {"train", "val", "all"};

static dure_status_t parse_name(const char *s, const char *const *names, int n,
                                const char *what, int *out)
{
    dure_status_t st = DURE_OK;
    char all[128] = "";
    for (int i = 0; i < n; i++) {
        if (s && strcmp(s, names[i]) == 0) {
            *out = i;
            goto out;
        }
        size_t used = strlen(all);
        snprintf(all + used, sizeof all - used, "%s%s", i ? ", " : "", names[i]);
    }
    DURE_FAIL(DURE_ERR_ARG, "%s '%s' is not one of %s", what, s ? s : "(null)", all);
out:
    return st;
}

dure_status_t dataio_layout_parse(const char *s, dataio_layout_t *out)
{
    int v = 0;
    if (s && strcmp(s, "aloha") == 0) {
        *out = DATAIO_LAYOUT_EPISODE_FILES; /* ALOHA is one case of it */
        return DURE_OK;
    }
    dure_status_t st = parse_name(s, layout_names, 4, "data.layout", &v);
    *out = (dataio_layout_t)v;
    return st;
}

const char *dataio_layout_name(dataio_layout_t l)
{
    return (unsigned)l < 4 ? layout_names[l] : "?";
}

static herr_t find_demo(hid_t g, const char *name, const H5L_info_t *info, void *arg)
{
    (void)g;
    (void)info;
    (void)arg;
    return strncmp(name, "demo", 4) == 0; /* 1 stops the iteration: found */
}

static herr_t find_numeric(hid_t obj, const char *name, const H5O_info_t *info, void *arg)
{
    (void)arg;
    if (info->type != H5O_TYPE_DATASET) {
        return 0;
    }
    int rank = dataio_h5_numeric_rank(obj, name);
    return rank == 1 || rank == 2;
}

dure_status_t dataio_layout_detect(const char *path, dataio_layout_t *out, char *why,
                                   size_t why_len)
{
    dure_status_t st = DURE_OK;
    hid_t fid = H5I_INVALID_HID, g = H5I_INVALID_HID;
    struct dure_h5_quiet q;
    char fmt[64] = "";
    const char *reason = NULL;

    *out = DATAIO_LAYOUT_AUTO;
    dure_h5_quiet_begin(&q);
    if (strpbrk(path, "*?[")) {
        *out = DATAIO_LAYOUT_EPISODE_FILES;
        reason = "a glob: one file per episode";
        goto out;
    }
    DURE_TRY(dataio_h5_open_file(path, H5P_DEFAULT, &fid));
    if (dataio_h5_attr_str(fid, "format", fmt, sizeof fmt) == 1 &&
        strcmp(fmt, DATAIO_FORMAT_NAME) == 0) {
        *out = DATAIO_LAYOUT_DURE;
        reason = "format attribute '" DATAIO_FORMAT_NAME "'";
    } else if (dataio_h5_exists(fid, DATAIO_DSET_SIGNALS) &&
               dataio_h5_exists(fid, DATAIO_DSET_EPISODES)) {
        *out = DATAIO_LAYOUT_DURE;
        reason = "/signals and /episodes, but no dure format attribute";
    } else if (dataio_h5_exists(fid, "data") &&
               (g = H5Gopen2(fid, "data", H5P_DEFAULT)) >= 0 &&
               H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, find_demo, NULL) > 0) {
        *out = DATAIO_LAYOUT_ROBOMIMIC;
        reason = "data/demo_N groups";
    } else if (H5Ovisit2(fid, H5_INDEX_NAME, H5_ITER_INC, find_numeric, NULL,
                         H5O_INFO_BASIC) > 0) {
        *out = DATAIO_LAYOUT_EPISODE_FILES;
        reason = "numeric datasets: the file is one episode";
    }
    H5Eclear2(H5E_DEFAULT);
    DURE_CHECK(*out != DATAIO_LAYOUT_AUTO, DURE_ERR_FORMAT,
               "cannot tell the layout of '%s': no dure format attribute, no robomimic "
               "data/demo_N groups, and no 1-D or 2-D numeric dataset to read as channels",
               path);
out:
    if (why && reason) {
        snprintf(why, why_len, "%s", reason);
    }
    if (g >= 0) H5Gclose(g);
    if (fid >= 0) H5Fclose(fid);
    dure_h5_quiet_end(&q);
    return st;
}


const char *dataio_split_name(dataio_split_t s)
{
    return (unsigned)s < 3 ? split_names[s] : "?";
}

dure_status_t dataio_names_repeat(const char *const *names, int n, int *a, int *b)
{
    dure_status_t st = DURE_OK;
    struct strmap seen = STRMAP_INIT;
    *a = *b = -1;
    for (int j = 0; j < n; j++) {
        int64_t old = -1;
        DURE_TRY(strmap_put(&seen, names[j], j, &old));
        if (old >= 0) {
            *a = (int)old;
            *b = j;
            break;
        }
    }
out:
    strmap_free(&seen);
    return st;
}

int dataio_same_rate(double a, double b) { return fabs(a - b) <= 1e-6 * b; }

/* Channels are matched by name (mixtures, validation loaders). */
static dure_status_t check_channel_names(const struct dataio_dataset_info *in)
{
    dure_status_t st = DURE_OK;
    int a, b;
    DURE_TRY(dataio_names_repeat(in->channel_names, in->n_channels, &a, &b));
    DURE_CHECK(a < 0, DURE_ERR_FORMAT, "'%s'%s: channels %d and %d are both named '%s'%s",
               in->path,
               in->layout == DATAIO_LAYOUT_DURE ? ", dataset '" DATAIO_DSET_CHANNEL_NAMES "'"
                                                : "",
               a, b, in->channel_names[b < 0 ? 0 : b],
               in->layout == DATAIO_LAYOUT_DURE ? "" : " (a key given twice in data.keys?)");
out:
    return st;
}

dure_status_t dataio_reader_open(const struct dataio_reader_config *cfg,
                                 dataio_reader_t **out)
{
    dure_status_t st = DURE_OK;
    dataio_reader_t *r = NULL;
    struct dataio_reader_config c = *cfg;
    struct dure_h5_quiet q;
    int quiet = 0;

    *out = NULL;
    DURE_CHECK(cfg->path && cfg->path[0], DURE_ERR_ARG, "data.path is empty");
    if (c.io == DATAIO_IO_AUTO) {
        c.io = DATAIO_IO_MEASURED_DEFAULT;
    }
    if (c.comm == MPI_COMM_NULL) {
        c.io = DATAIO_IO_SERIAL;
    }
    if (c.io == DATAIO_IO_MPIIO) {
        int init = 0;
        MPI_Initialized(&init);
        DURE_CHECK(init, DURE_ERR_ARG, "data.io = mpiio needs MPI to be initialised");
    } else {
        c.comm = MPI_COMM_NULL;
    }
    r = calloc(1, sizeof *r);
    DURE_ALLOC_TRY(r, sizeof *r);
    if (c.layout == DATAIO_LAYOUT_AUTO) {
        DURE_TRY(dataio_layout_detect(c.path, &c.layout, NULL, 0));
    }
    switch (c.layout) {
    case DATAIO_LAYOUT_DURE: r->iface = &dataio_reader_dure; break;
    case DATAIO_LAYOUT_ROBOMIMIC: r->iface = &dataio_reader_robomimic; break;
    case DATAIO_LAYOUT_EPISODE_FILES: r->iface = &dataio_reader_episode_files; break;
    default: DURE_FAIL(DURE_ERR_ARG, "data.layout %d is not a layout", (int)c.layout);
    }
    dure_h5_quiet_begin(&q);
    quiet = 1;
    r->info.layout = c.layout;
    r->info.io = c.io;
    r->info.path = NULL;
    DURE_TRY(r->iface->open(&c, &r->ctx, &r->info));
    DURE_TRY(check_channel_names(&r->info));
    if (r->info.stats) {
        /* Stats of data that have changed since (a loss of 30785): set aside,
         * so that the loader computes fresh ones and inspect reports them. */
        int stale = 0;
        DURE_TRY(dataio_stats_check_source(r, r->info.stats, r->stale_why,
                                           sizeof r->stale_why, &stale));
        if (stale) {
            r->info.stats = NULL;
            r->info.stats_stale = r->stale_why;
        }
    }
    *out = r;
    r = NULL;
out:
    if (quiet) {
        dure_h5_quiet_end(&q);
    }
    dataio_reader_close(r);
    return st;
}

int64_t dataio_episode_of_row(const struct dataio_dataset_info *in, int64_t row)
{
    int64_t lo = 0, hi = in->n_episodes - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo + 1) / 2;
        if (in->episode_start[mid] <= row) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    return lo;
}

int dataio_episode_in(const struct dataio_dataset_info *in, int64_t e, dataio_split_t split)
{
    int s = in->ep_split ? in->ep_split[e] : DATAIO_EP_TRAIN;
    return split == DATAIO_SPLIT_ALL || (split == DATAIO_SPLIT_TRAIN && s == DATAIO_EP_TRAIN) ||
           (split == DATAIO_SPLIT_VAL && s == DATAIO_EP_VAL);
}

dure_status_t dataio_reader_hold_out(dataio_reader_t *r, double fraction, uint64_t seed)
{
    dure_status_t st = DURE_OK;
    int64_t *val = NULL, n = 0, e_n = r->info.n_episodes;
    if (r->info.ep_split || fraction <= 0) {
        goto out;
    }
    DURE_CHECK(fraction < 1, DURE_ERR_ARG, "data.val_fraction = %g must be below 1", fraction);
    DURE_TRY(dataio_val_episodes(e_n, fraction, seed, &val, &n));
    if (n == 0) {
        goto out; /* one episode: nothing can be held out */
    }
    r->held_out = calloc((size_t)e_n, 1);
    DURE_ALLOC_TRY(r->held_out, (size_t)e_n);
    for (int64_t i = 0; i < n; i++) {
        r->held_out[val[i]] = DATAIO_EP_VAL;
    }
    r->info.ep_split = r->held_out;
    r->info.split_from = "data.val_fraction";
out:
    free(val);
    return st;
}

dure_status_t dataio_paths_overlap(const char *a, const char *b, int64_t *n_common,
                                   char *first, size_t len)
{
    dure_status_t st = DURE_OK;
    glob_t ga = {0}, gb = {0};
    struct stat *sa = NULL, sb;
    *n_common = 0;
    first[0] = '\0';
    DURE_CHECK(glob(a, GLOB_NOCHECK, NULL, &ga) == 0 && glob(b, GLOB_NOCHECK, NULL, &gb) == 0,
               DURE_ERR_IO, "cannot expand the data paths '%s' and '%s'", a, b);
    sa = calloc(ga.gl_pathc, sizeof *sa);
    DURE_ALLOC_TRY(sa, ga.gl_pathc * sizeof *sa);
    for (size_t i = 0; i < ga.gl_pathc; i++) {
        if (stat(ga.gl_pathv[i], &sa[i]) != 0) {
            sa[i].st_nlink = 0; /* no file: matches nothing */
        }
    }
    /* Validation globs are small next to the training set: |a| x |b| is fine
     * for thousands of files. */
    for (size_t j = 0; j < gb.gl_pathc; j++) {
        if (stat(gb.gl_pathv[j], &sb) != 0) {
            continue;
        }
        for (size_t i = 0; i < ga.gl_pathc; i++) {
            if (sa[i].st_nlink && sa[i].st_dev == sb.st_dev && sa[i].st_ino == sb.st_ino) {
                if ((*n_common)++ == 0) {
                    snprintf(first, len, "%s", gb.gl_pathv[j]);
                }
                break;
            }
        }
    }
out:
    free(sa);
    if (ga.gl_pathv) {
        globfree(&ga);
    }
    if (gb.gl_pathv) {
        globfree(&gb);
    }
    return st;
}

const struct dataio_dataset_info *dataio_reader_info(const dataio_reader_t *r)
{
    return &r->info;
}

size_t dataio_scratch_bytes(dataio_reader_t *r, int64_t max_rows)
{
    return r->iface->scratch_bytes(r->ctx, max_rows);
}

dure_status_t dataio_scratch_create(dataio_reader_t *r, int64_t max_rows,
                                    dataio_scratch_t **out)
{
    dure_status_t st = DURE_OK;
    dataio_scratch_t *s = calloc(1, sizeof *s);
    DURE_ALLOC_TRY(s, sizeof *s);
    size_t bytes = r->iface->scratch_bytes(r->ctx, max_rows);
    bytes = (bytes + 63) & ~(size_t)63;
    s->block = aligned_alloc(64, bytes ? bytes : 64);
    DURE_ALLOC_TRY(s->block, bytes);
    s->r = r;
    s->max_rows = max_rows;
    if (r->iface->scratch_init) {
        r->iface->scratch_init(r->ctx, s->block, max_rows);
    }
    *out = s;
    s = NULL;
out:
    dataio_scratch_free(s);
    return st;
}

void dataio_scratch_free(dataio_scratch_t *s)
{
    if (s) {
        free(s->block);
        free(s);
    }
}

dure_status_t dataio_reader_read(dataio_reader_t *r, int64_t e, int64_t t0, int64_t n,
                                 float *dst, dataio_scratch_t *s, uint64_t *bytes_read,
                                 char *err, size_t err_len)
{
    const struct dataio_dataset_info *in = &r->info;
    if (e < 0 || e >= in->n_episodes || t0 < 0 || n < 0 || n > s->max_rows ||
        t0 + n > in->episode_start[e + 1] - in->episode_start[e]) {
        snprintf(err, err_len, "'%s': rows [%lld, %lld) of episode %lld are out of "
                 "range (or more than the scratch's %lld rows)", in->path, (long long)t0,
                 (long long)(t0 + n), (long long)e, (long long)s->max_rows);
        return DURE_ERR_INTERNAL;
    }
    return r->iface->read(r->ctx, e, t0, n, dst, s->block, bytes_read, err, err_len);
}

dure_status_t dataio_reader_read_logged(dataio_reader_t *r, int64_t e, int64_t t0,
                                        int64_t n, float *dst, dataio_scratch_t *s)
{
    dure_status_t st = DURE_OK;
    char err[1024] = "";
    uint64_t bytes = 0;
    st = dataio_reader_read(r, e, t0, n, dst, s, &bytes, err, sizeof err);
    if (st != DURE_OK) {
        DURE_FAIL(st, "%s", err);
    }
out:
    return st;
}

void dataio_reader_close(dataio_reader_t *r)
{
    if (!r) {
        return;
    }
    if (r->ctx) {
        r->iface->close(r->ctx);
    }
    free(r->held_out);
    free(r);
}

/* ------------------------------------------------------ shared context */

dure_status_t dataio_ctx_new(struct dataio_layout_ctx **out)
{
    dure_status_t st = DURE_OK;
    *out = calloc(1, sizeof **out);
    DURE_ALLOC_TRY(*out, sizeof **out);
out:
    return st;
}

void dataio_ctx_free(void *ctx)
{
    struct dataio_layout_ctx *c = ctx;
    if (!c) {
        return;
    }
    for (int64_t i = 0; i < c->n_dsets; i++) {
        h5raw_dset_free(&c->dsets[i]);
    }
    for (int i = 0; i < c->n_files; i++) {
        h5raw_file_close(&c->files[i]);
    }
    free(c->dsets);
    free(c->files);
    free(c->path);
    free(c->src);
    free(c->key_col);
    free(c->episode_start);
    dataio_strv_free(c->episode_names, c->n_episodes);
    dataio_strv_free(c->channel_names, c->n_channels);
    dataio_strv_free(c->channel_units, c->n_channels);
    free(c->ep_split);
    dataio_stats_free(c->stats);
    dataio_strv_free(c->storage, c->n_keys);
    free(c);
}

size_t dataio_ctx_scratch_bytes(void *ctx, int64_t max_rows)
{
    struct dataio_layout_ctx *c = ctx;
    struct h5raw_scratch_size need = {0, 0, 0};
    for (int64_t i = 0; i < c->n_dsets; i++) {
        h5raw_scratch_need(&c->dsets[i], max_rows, c->n_channels, &need);
    }
    return sizeof(struct h5raw_scratch) + 64 + h5raw_scratch_total(&need);
}

void dataio_ctx_scratch_init(void *ctx, void *scratch, int64_t max_rows)
{
    struct dataio_layout_ctx *c = ctx;
    struct h5raw_scratch_size need = {0, 0, 0};
    for (int64_t i = 0; i < c->n_dsets; i++) {
        h5raw_scratch_need(&c->dsets[i], max_rows, c->n_channels, &need);
    }
    struct h5raw_scratch *s = scratch;
    size_t head = (sizeof *s + 63) & ~(size_t)63;
    h5raw_scratch_init(s, &need, (unsigned char *)scratch + head);
}

dure_status_t dataio_ctx_read(void *ctx, int64_t e, int64_t t0, int64_t n, float *dst,
                              void *scratch, uint64_t *bytes_read, char *err,
                              size_t err_len)
{
    struct dataio_layout_ctx *c = ctx;
    for (int k = 0; k < c->n_keys; k++) {
        const struct dataio_src *src = &c->src[e * c->n_keys + k];
        dure_status_t st = h5raw_read(src->d, src->row0 + t0, n, dst + c->key_col[k],
                                      c->n_channels, scratch, bytes_read, err, err_len);
        if (st != DURE_OK) {
            return st;
        }
    }
    return DURE_OK;
}

void dataio_ctx_fill_info(struct dataio_layout_ctx *c, struct dataio_dataset_info *info)
{
    info->path = c->path;
    info->n_episodes = c->n_episodes;
    info->episode_start = c->episode_start;
    info->episode_names = (const char *const *)c->episode_names;
    info->n_channels = c->n_channels;
    info->channel_names = (const char *const *)c->channel_names;
    info->channel_units = (const char *const *)c->channel_units;
    info->ep_split = c->ep_split;
    info->split_from = c->split_from;
    info->stats = c->stats;
    info->bytes_per_row_on_disk = 0;
    info->n_storage = 0;
    info->storage = NULL;
    for (int k = 0; k < c->n_keys && c->n_episodes > 0; k++) {
        const struct h5raw_dset *d = c->src[k].d;
        info->bytes_per_row_on_disk += d->cols * d->size;
    }
    if (c->n_keys > 0 && c->n_episodes > 0 &&
        dataio_strv_new(c->n_keys, &c->storage) == DURE_OK) {
        for (int k = 0; k < c->n_keys; k++) {
            const struct h5raw_dset *d = c->src[k].d;
            char desc[512];
            const char *ds = strstr(d->what, "dataset '");
            int n = ds ? snprintf(desc, sizeof desc, "%.*s: ", (int)strcspn(ds + 9, "'"), ds + 9)
                       : snprintf(desc, sizeof desc, "%s: ", d->what);
            h5raw_describe(d, desc + n, sizeof desc - (size_t)n);
            c->storage[k] = strdup(desc);
        }
        info->n_storage = c->n_keys;
        info->storage = (const char *const *)c->storage;
    }
}

dure_status_t dataio_strv_new(int64_t n, char ***out)
{
    dure_status_t st = DURE_OK;
    *out = calloc(n > 0 ? (size_t)n : 1, sizeof **out);
    DURE_ALLOC_TRY(*out, (size_t)n * sizeof **out);
out:
    return st;
}

void dataio_strv_free(char **v, int64_t n)
{
    if (!v) {
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

dure_status_t dataio_strdup(const char *s, char **out)
{
    dure_status_t st = DURE_OK;
    *out = strdup(s ? s : "");
    DURE_ALLOC_TRY(*out, strlen(s ? s : "") + 1);
out:
    return st;
}

dure_status_t dataio_fapl(dataio_io_t io, MPI_Comm comm, hid_t *out)
{
    dure_status_t st = DURE_OK;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    DURE_CHECK(fapl >= 0, DURE_ERR_HDF5, "H5Pcreate(H5P_FILE_ACCESS)");
    if (io == DATAIO_IO_MPIIO) {
        DURE_CHECK(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) >= 0, DURE_ERR_HDF5,
                   "H5Pset_fapl_mpio");
        /* One rank reads each metadata block and broadcasts it. */
        DURE_CHECK(H5Pset_all_coll_metadata_ops(fapl, 1) >= 0, DURE_ERR_HDF5,
                   "H5Pset_all_coll_metadata_ops");
    }
    *out = fapl;
    fapl = H5I_INVALID_HID;
out:
    if (fapl >= 0) {
        H5Pclose(fapl);
    }
    return st;
}

int dataio_names_push(struct dataio_names *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) {
            return -1;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = strdup(s);
    if (!l->v[l->n]) {
        return -1;
    }
    l->n++;
    return 0;
}

void dataio_names_free(struct dataio_names *l)
{
    dataio_strv_free(l->v, l->n);
    memset(l, 0, sizeof *l);
}

void dataio_names_join(const struct dataio_names *l, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < l->n && used < len; i++) {
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", l->v[i]);
    }
    if (used >= len && len > 4) {
        memcpy(buf + len - 4, "...", 4);
    }
}

int dataio_natural_qsort_cmp(const void *a, const void *b)
{
    return dataio_natural_cmp(*(char *const *)a, *(char *const *)b);
}

int dataio_natural_cmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            while (*a == '0') a++;
            while (*b == '0') b++;
            size_t la = 0, lb = 0;
            while (isdigit((unsigned char)a[la])) la++;
            while (isdigit((unsigned char)b[lb])) lb++;
            if (la != lb) {
                return la < lb ? -1 : 1;
            }
            int c = strncmp(a, b, la);
            if (c) {
                return c;
            }
            a += la;
            b += lb;
        } else {
            if (*a != *b) {
                return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
            }
            a++;
            b++;
        }
    }
    return *a ? 1 : *b ? -1 : 0;
}

dure_status_t dataio_split_list(const char *list, const char *what, char ***items,
                                int *n)
{
    dure_status_t st = DURE_OK;
    size_t len = strlen(list);
    int cnt = 1;
    char **v = NULL;
    for (size_t i = 0; i < len; i++) {
        cnt += list[i] == ',';
    }
    /* (cnt) pointers, then a copy of the list cut at the commas. */
    v = malloc((size_t)cnt * sizeof *v + len + 1);
    DURE_ALLOC_TRY(v, (size_t)cnt * sizeof *v + len + 1);
    char *p = (char *)(v + cnt);
    memcpy(p, list, len + 1);
    for (int i = 0; i < cnt; i++) {
        char *end = strchr(p, ',');
        if (end) {
            *end = '\0';
        }
        while (isspace((unsigned char)*p)) p++;
        size_t l = strlen(p);
        while (l > 0 && isspace((unsigned char)p[l - 1])) p[--l] = '\0';
        DURE_CHECK(l > 0, DURE_ERR_ARG, "%s '%s': item %d is empty", what, list, i + 1);
        v[i] = p;
        p = end ? end + 1 : p + l;
    }
    *items = v;
    *n = cnt;
    v = NULL;
out:
    free(v);
    return st;
}
