/* dataio/reader_dure.c - the dure format (FORMAT.md) behind dataio_reader_i. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataio/format.h"
#include "dataio/h5util.h"
#include "dataio/reader_impl.h"
#include "dataio/stats.h"

/* /episodes must be E+1 strictly ascending offsets from 0 to T_total. */
static dure_status_t check_episodes(const char *path, const int64_t *ep, int64_t n,
                                    int64_t rows)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(n >= 2, DURE_ERR_FORMAT,
               "file '%s', dataset '%s' has %lld values; it needs E+1 >= 2 row offsets",
               path, DATAIO_DSET_EPISODES, (long long)n);
    DURE_CHECK(ep[0] == 0, DURE_ERR_FORMAT,
               "file '%s', dataset '%s' starts at row %lld; it must start at 0", path,
               DATAIO_DSET_EPISODES, (long long)ep[0]);
    for (int64_t e = 0; e + 1 < n; e++) {
        DURE_CHECK(ep[e + 1] != ep[e], DURE_ERR_FORMAT,
                   "file '%s', dataset '%s': episode %lld is empty (offsets %lld and "
                   "%lld are both %lld)", path, DATAIO_DSET_EPISODES, (long long)e,
                   (long long)e, (long long)(e + 1), (long long)ep[e]);
        DURE_CHECK(ep[e + 1] > ep[e], DURE_ERR_FORMAT,
                   "file '%s', dataset '%s': offsets decrease at episode %lld (%lld then "
                   "%lld)", path, DATAIO_DSET_EPISODES, (long long)e, (long long)ep[e],
                   (long long)ep[e + 1]);
    }
    DURE_CHECK(ep[n - 1] == rows, DURE_ERR_FORMAT,
               "file '%s', dataset '%s' ends at row %lld but '%s' has %lld rows", path,
               DATAIO_DSET_EPISODES, (long long)ep[n - 1], DATAIO_DSET_SIGNALS,
               (long long)rows);
out:
    return st;
}

static dure_status_t read_split(hid_t fid, struct dataio_layout_ctx *c)
{
    dure_status_t st = DURE_OK;
    int64_t *val = NULL, nval = 0;
    if (!dataio_h5_exists(fid, DATAIO_DSET_VAL_EPISODES)) {
        goto out;
    }
    DURE_TRY(dataio_h5_read_i64(fid, DATAIO_DSET_VAL_EPISODES, c->path, &val, &nval));
    c->ep_split = calloc((size_t)c->n_episodes, 1);
    DURE_ALLOC_TRY(c->ep_split, (size_t)c->n_episodes);
    c->split_from = DATAIO_DSET_VAL_EPISODES;
    for (int64_t i = 0; i < nval; i++) {
        DURE_CHECK(val[i] >= 0 && val[i] < c->n_episodes, DURE_ERR_FORMAT,
                   "file '%s', dataset '%s': episode %lld does not exist (%lld episodes)",
                   c->path, DATAIO_DSET_VAL_EPISODES, (long long)val[i],
                   (long long)c->n_episodes);
        c->ep_split[val[i]] = DATAIO_EP_VAL;
    }
out:
    free(val);
    return st;
}

static dure_status_t read_channels(hid_t fid, struct dataio_layout_ctx *c)
{
    dure_status_t st = DURE_OK;
    char **names = NULL, **units = NULL;
    int64_t nn = 0, nu = 0;
    DURE_TRY(dataio_h5_read_strings(fid, DATAIO_DSET_CHANNEL_NAMES, c->path, &names, &nn));
    DURE_CHECK(nn == c->n_channels, DURE_ERR_FORMAT,
               "file '%s': '%s' names %lld channels but '%s' has %d", c->path,
               DATAIO_DSET_CHANNEL_NAMES, (long long)nn, DATAIO_DSET_SIGNALS,
               c->n_channels);
    if (dataio_h5_exists(fid, DATAIO_DSET_CHANNEL_UNITS)) {
        DURE_TRY(dataio_h5_read_strings(fid, DATAIO_DSET_CHANNEL_UNITS, c->path, &units,
                                        &nu));
        DURE_CHECK(nu == c->n_channels, DURE_ERR_FORMAT,
                   "file '%s': '%s' has %lld units for %d channels", c->path,
                   DATAIO_DSET_CHANNEL_UNITS, (long long)nu, c->n_channels);
    }
    DURE_TRY(dataio_strv_new(c->n_channels, &c->channel_names));
    DURE_TRY(dataio_strv_new(c->n_channels, &c->channel_units));
    for (int i = 0; i < c->n_channels; i++) {
        DURE_TRY(dataio_strdup(names[i], &c->channel_names[i]));
        DURE_TRY(dataio_strdup(units ? units[i] : "", &c->channel_units[i]));
    }
out:
    free(names);
    free(units);
    return st;
}

static dure_status_t dure_open(const struct dataio_reader_config *cfg, void **ctxp,
                               struct dataio_dataset_info *info)
{
    dure_status_t st = DURE_OK;
    struct dataio_layout_ctx *c = NULL;
    hid_t fapl = H5I_INVALID_HID, fid = H5I_INVALID_HID;
    char fmt[64] = "";
    int64_t ver = 0, n_ep = 0;

    DURE_TRY(dataio_ctx_new(&c));
    DURE_TRY(dataio_strdup(cfg->path, &c->path));
    DURE_TRY(dataio_fapl(cfg->io, cfg->comm, &fapl));
    DURE_TRY(dataio_h5_open_file(c->path, fapl, &fid));
    int rc = dataio_h5_attr_str(fid, "format", fmt, sizeof fmt);
    DURE_CHECK(rc == 1 && strcmp(fmt, DATAIO_FORMAT_NAME) == 0, DURE_ERR_FORMAT,
               "file '%s' is not a dure dataset (root attribute 'format' is %s%s%s, not "
               "'%s'); for robomimic or ALOHA files set data.layout", c->path,
               rc == 1 ? "'" : "", rc == 1 ? fmt : rc == 0 ? "missing" : "unreadable",
               rc == 1 ? "'" : "",
               DATAIO_FORMAT_NAME);
    rc = dataio_h5_attr_i64(fid, "format_version", &ver);
    DURE_CHECK(rc == 1 && ver >= 1 && ver <= DATAIO_FORMAT_VERSION, DURE_ERR_FORMAT,
               "file '%s': format_version %s%lld is not one this dure reads (1 to %d)",
               c->path, rc == 1 ? "" : "missing, ", (long long)ver, DATAIO_FORMAT_VERSION);
    DURE_CHECK(dataio_h5_exists(fid, DATAIO_DSET_SIGNALS), DURE_ERR_FORMAT,
               "file '%s' has no dataset '%s'", c->path, DATAIO_DSET_SIGNALS);

    c->files = calloc(1, sizeof *c->files);
    DURE_ALLOC_TRY(c->files, sizeof *c->files);
    c->files[0].fd = -1;
    c->files[0].fh = MPI_FILE_NULL;
    c->n_files = 1;
    DURE_TRY(h5raw_file_open(&c->files[0], c->path, cfg->comm));
    c->dsets = calloc(1, sizeof *c->dsets);
    DURE_ALLOC_TRY(c->dsets, sizeof *c->dsets);
    DURE_TRY(h5raw_dset_open(fid, DATAIO_DSET_SIGNALS, c->path, &c->files[0], &c->dsets[0]));
    c->n_dsets = 1;
    const struct h5raw_dset *d = &c->dsets[0];
    DURE_CHECK(d->rank == 2, DURE_ERR_FORMAT,
               "file '%s', dataset '%s' has rank 1; expected 2 (timesteps, channels)",
               c->path, DATAIO_DSET_SIGNALS);
    DURE_CHECK(d->cols >= 1 && d->cols <= DATAIO_FORMAT_MAX_CHANNELS, DURE_ERR_FORMAT,
               "file '%s', dataset '%s' has %lld channels (1 to %d are allowed)",
               c->path, DATAIO_DSET_SIGNALS, (long long)d->cols, DATAIO_FORMAT_MAX_CHANNELS);
    c->n_channels = (int)d->cols;

    DURE_CHECK(dataio_h5_exists(fid, DATAIO_DSET_EPISODES), DURE_ERR_FORMAT,
               "file '%s' has no dataset '%s'", c->path, DATAIO_DSET_EPISODES);
    DURE_TRY(dataio_h5_read_i64(fid, DATAIO_DSET_EPISODES, c->path, &c->episode_start,
                                &n_ep));
    DURE_TRY(check_episodes(c->path, c->episode_start, n_ep, d->rows));
    c->n_episodes = n_ep - 1;
    DURE_TRY(read_channels(fid, c));
    if (dataio_h5_attr_f64(fid, "sample_rate_hz", &info->sample_rate_hz) != 1) {
        info->sample_rate_hz = 0.0;
    }
    DURE_TRY(read_split(fid, c));
    DURE_TRY(dataio_stats_load(fid, c->path, c->n_channels, d->rows, &c->stats));

    DURE_TRY(dataio_strv_new(c->n_episodes, &c->episode_names));
    c->n_keys = 1;
    c->key_col = calloc(2, sizeof *c->key_col);
    DURE_ALLOC_TRY(c->key_col, 2 * sizeof *c->key_col);
    c->key_col[1] = c->n_channels;
    c->src = calloc((size_t)c->n_episodes, sizeof *c->src);
    DURE_ALLOC_TRY(c->src, (size_t)c->n_episodes * sizeof *c->src);
    for (int64_t e = 0; e < c->n_episodes; e++) {
        char name[32];
        snprintf(name, sizeof name, "%lld", (long long)e);
        DURE_TRY(dataio_strdup(name, &c->episode_names[e]));
        c->src[e].d = d;
        c->src[e].row0 = c->episode_start[e];
    }
    dataio_ctx_fill_info(c, info);
    *ctxp = c;
    c = NULL;
out:
    if (fid >= 0) H5Fclose(fid);
    if (fapl >= 0) H5Pclose(fapl);
    dataio_ctx_free(c);
    return st;
}

const struct dataio_reader_i dataio_reader_dure = {
    .name = "dure",
    .open = dure_open,
    .scratch_bytes = dataio_ctx_scratch_bytes,
    .scratch_init = dataio_ctx_scratch_init,
    .read = dataio_ctx_read,
    .close = dataio_ctx_free,
};
