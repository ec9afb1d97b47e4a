/*
 * dataio/reader_files.c - the episode-files layout (one HDF5 file per
 * episode) behind dataio_reader_i.
 *
 * data.path is a glob (or one file); every match is one episode, taken in
 * natural name order (episode_2 before episode_10). Each file holds the
 * same datasets: ALOHA's /observations/qpos [T, 14], /observations/qvel,
 * /action [T, 14], or a machining run's /vibration_data [T, 3]; images
 * (rank 3 and up) are never channels. Each file is opened with HDF5 once,
 * at open, to find its datasets' bytes; then only its descriptor stays
 * open.
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "dataio/h5util.h"
#include "dataio/reader_impl.h"

static herr_t visit_key(hid_t obj, const char *name, const H5O_info_t *info, void *arg)
{
    if (info->type != H5O_TYPE_DATASET) {
        return 0;
    }
    int rank = dataio_h5_numeric_rank(obj, name);
    if (rank != 1 && rank != 2) {
        return 0;
    }
    return dataio_names_push(arg, name) == 0 ? 0 : -1;
}

static dure_status_t resolve_keys(hid_t fid, const char *file, const char *keys,
                                  struct dataio_names *rel)
{
    dure_status_t st = DURE_OK;
    struct dataio_names avail = {0};
    char **items = NULL;
    int n = 0;
    char list[768];

    DURE_CHECK(H5Ovisit2(fid, H5_INDEX_NAME, H5_ITER_INC, visit_key, &avail,
                         H5O_INFO_BASIC) >= 0,
               DURE_ERR_FORMAT, "file '%s': cannot list its datasets", file);
    if (avail.n > 1) { /* none: avail.v is NULL, which qsort may not take */
        qsort(avail.v, (size_t)avail.n, sizeof *avail.v, dataio_natural_qsort_cmp);
    }
    if (!keys || !keys[0]) {
        DURE_CHECK(avail.n > 0, DURE_ERR_FORMAT,
                   "file '%s' has no 1-D or 2-D numeric dataset to use as channels", file);
        for (int i = 0; i < avail.n; i++) {
            DURE_CHECK(dataio_names_push(rel, avail.v[i]) == 0, DURE_ERR_NOMEM,
                       "out of memory");
        }
        goto out;
    }
    DURE_TRY(dataio_split_list(keys, "data.keys", &items, &n));
    for (int i = 0; i < n; i++) {
        const char *k = items[i][0] == '/' ? items[i] + 1 : items[i];
        if (!dataio_h5_exists(fid, k)) {
            dataio_names_join(&avail, list, sizeof list);
            DURE_FAIL(DURE_ERR_FORMAT, "file '%s' has no key '%s' (available: %s)", file,
                      items[i], avail.n ? list : "none");
        }
        DURE_CHECK(dataio_names_push(rel, k) == 0, DURE_ERR_NOMEM, "out of memory");
    }
out:
    free(items);
    dataio_names_free(&avail);
    return st;
}

/* One descriptor per episode file stays open: make room for them. */
static dure_status_t ensure_fd_room(size_t n_files, const char *pattern)
{
    dure_status_t st = DURE_OK;
    struct rlimit rl;
    DURE_SYS_TRY(getrlimit(RLIMIT_NOFILE, &rl) == 0, "getrlimit(RLIMIT_NOFILE)");
    rlim_t need = (rlim_t)n_files + 256;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        DURE_CHECK(rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need, DURE_ERR_ARG,
                   "'%s' matches %zu files but this process may open only %llu files "
                   "(ulimit -n); raise the limit or merge the episodes with dure data "
                   "import", pattern, n_files, (unsigned long long)rl.rlim_max);
        rl.rlim_cur = need;
        DURE_SYS_TRY(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit(RLIMIT_NOFILE)");
    }
out:
    return st;
}

static dure_status_t files_open(const struct dataio_reader_config *cfg, void **ctxp,
                                struct dataio_dataset_info *info)
{
    dure_status_t st = DURE_OK;
    struct dataio_layout_ctx *c = NULL;
    hid_t fapl = H5I_INVALID_HID, fid = H5I_INVALID_HID;
    struct dataio_names rel = {0};
    glob_t g;
    int globbed = 0;
    int64_t rate_from = -1; /* the file that first states a sample rate */
    char where[1200];

    DURE_TRY(dataio_ctx_new(&c));
    DURE_TRY(dataio_strdup(cfg->path, &c->path));
    int grc = glob(cfg->path, GLOB_ERR, NULL, &g);
    globbed = grc == 0;
    DURE_CHECK(grc != GLOB_NOMATCH, DURE_ERR_FORMAT, "no episode file matches '%s'",
               cfg->path);
    DURE_CHECK(grc == 0, DURE_ERR_IO, "cannot expand the glob '%s' (error %d)", cfg->path,
               grc);
    qsort(g.gl_pathv, g.gl_pathc, sizeof *g.gl_pathv, dataio_natural_qsort_cmp);
    DURE_TRY(ensure_fd_room(g.gl_pathc, cfg->path));
    DURE_TRY(dataio_fapl(cfg->io, cfg->comm, &fapl));

    c->files = calloc(g.gl_pathc, sizeof *c->files);
    DURE_ALLOC_TRY(c->files, g.gl_pathc * sizeof *c->files);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        c->files[i].fd = -1;
        c->files[i].fh = MPI_FILE_NULL;
    }
    c->n_files = (int)g.gl_pathc;
    for (size_t e = 0; e < g.gl_pathc; e++) {
        const char *file = g.gl_pathv[e];
        DURE_TRY(dataio_h5_open_file(file, fapl, &fid));
        if (e == 0) {
            DURE_TRY(resolve_keys(fid, file, cfg->keys, &rel));
            DURE_TRY(dataio_keyed_begin(c, (int64_t)g.gl_pathc, rel.n));
        }
        DURE_TRY(h5raw_file_open(&c->files[e], file, cfg->comm));
        snprintf(where, sizeof where, "file '%s'", file);
        DURE_TRY(dataio_keyed_add(c, (int64_t)e, fid, &c->files[e], "", rel.v, where));
        const char *base = strrchr(file, '/');
        DURE_TRY(dataio_strdup(base ? base + 1 : file, &c->episode_names[e]));
        /* One dataset, one rate (dure does not resample): the first stated. */
        double hz = 0.0;
        if (dataio_h5_attr_f64(fid, "sample_rate_hz", &hz) == 1 && hz > 0) {
            if (rate_from < 0) {
                info->sample_rate_hz = hz;
                rate_from = (int64_t)e;
            }
            DURE_CHECK(dataio_same_rate(hz, info->sample_rate_hz), DURE_ERR_FORMAT,
                       "file '%s' is sampled at %g Hz (attribute sample_rate_hz) but file "
                       "'%s' at %g Hz: the episodes of one dataset need one rate (dure does "
                       "not resample)", file, hz, g.gl_pathv[rate_from],
                       info->sample_rate_hz);
        }
        H5Fclose(fid);
        fid = H5I_INVALID_HID;
    }
    DURE_TRY(dataio_keyed_finish(c, rel.v));
    dataio_ctx_fill_info(c, info);
    *ctxp = c;
    c = NULL;
out:
    dataio_names_free(&rel);
    if (globbed) {
        globfree(&g);
    }
    if (fid >= 0) H5Fclose(fid);
    if (fapl >= 0) H5Pclose(fapl);
    dataio_ctx_free(c);
    return st;
}

const struct dataio_reader_i dataio_reader_episode_files = {
    .name = "episode-files",
    .open = files_open,
    .scratch_bytes = dataio_ctx_scratch_bytes,
    .scratch_init = dataio_ctx_scratch_init,
    .read = dataio_ctx_read,
    .close = dataio_ctx_free,
};
