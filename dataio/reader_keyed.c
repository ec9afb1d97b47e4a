/* dataio/reader_keyed.c - the (episode, key) table that robomimic and aloha
 * fill; see reader_impl.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataio/format.h"
#include "dataio/h5util.h"
#include "dataio/reader_impl.h"

dure_status_t dataio_keyed_begin(struct dataio_layout_ctx *c, int64_t n_episodes, int n_keys)
{
    dure_status_t st = DURE_OK;
    size_t n = (size_t)(n_episodes * n_keys);
    c->n_episodes = n_episodes;
    c->n_keys = n_keys;
    c->dsets = calloc(n, sizeof *c->dsets);
    DURE_ALLOC_TRY(c->dsets, n * sizeof *c->dsets);
    c->n_dsets = (int64_t)n; /* zeroed entries are safe to free */
    c->src = calloc(n, sizeof *c->src);
    DURE_ALLOC_TRY(c->src, n * sizeof *c->src);
    c->episode_start = calloc((size_t)n_episodes + 1, sizeof *c->episode_start);
    DURE_ALLOC_TRY(c->episode_start, ((size_t)n_episodes + 1) * sizeof *c->episode_start);
    DURE_TRY(dataio_strv_new(n_episodes, &c->episode_names));
out:
    return st;
}

dure_status_t dataio_keyed_add(struct dataio_layout_ctx *c, int64_t e, hid_t fid,
                               const struct h5raw_file *f, const char *prefix,
                               char *const *rel, const char *where)
{
    dure_status_t st = DURE_OK;
    char path[1024];
    int64_t rows = 0;
    for (int k = 0; k < c->n_keys; k++) {
        int64_t i = e * c->n_keys + k;
        struct h5raw_dset *d = &c->dsets[i];
        snprintf(path, sizeof path, "%s%s", prefix, rel[k]);
        DURE_CHECK(dataio_h5_exists(fid, path), DURE_ERR_FORMAT, "%s has no key '%s'",
                   where, rel[k]);
        DURE_TRY(h5raw_dset_open(fid, path, f->path, f, d));
        if (k == 0) {
            rows = d->rows;
        } else {
            DURE_CHECK(d->rows == rows, DURE_ERR_FORMAT,
                       "%s: key '%s' has %lld timesteps but key '%s' has %lld", where,
                       rel[k], (long long)d->rows, rel[0], (long long)rows);
        }
        if (e > 0) {
            DURE_CHECK(d->cols == c->dsets[k].cols, DURE_ERR_FORMAT,
                       "%s: key '%s' has %lld columns but %lld in the first episode",
                       where, rel[k], (long long)d->cols, (long long)c->dsets[k].cols);
        }
        c->src[i].d = d;
        c->src[i].row0 = 0;
    }
    DURE_CHECK(rows > 0, DURE_ERR_FORMAT, "%s is an empty episode (0 timesteps)", where);
    c->episode_start[e + 1] = c->episode_start[e] + rows;
out:
    return st;
}

dure_status_t dataio_keyed_finish(struct dataio_layout_ctx *c, char *const *labels)
{
    dure_status_t st = DURE_OK;
    c->key_col = calloc((size_t)c->n_keys + 1, sizeof *c->key_col);
    DURE_ALLOC_TRY(c->key_col, ((size_t)c->n_keys + 1) * sizeof *c->key_col);
    for (int k = 0; k < c->n_keys; k++) {
        c->key_col[k + 1] = c->key_col[k] + c->dsets[k].cols;
    }
    DURE_CHECK(c->key_col[c->n_keys] <= DATAIO_FORMAT_MAX_CHANNELS, DURE_ERR_FORMAT,
               "'%s': the keys give %lld channels (at most %d)", c->path,
               (long long)c->key_col[c->n_keys], DATAIO_FORMAT_MAX_CHANNELS);
    c->n_channels = (int)c->key_col[c->n_keys];
    DURE_TRY(dataio_strv_new(c->n_channels, &c->channel_names));
    DURE_TRY(dataio_strv_new(c->n_channels, &c->channel_units));
    for (int k = 0; k < c->n_keys; k++) {
        const struct h5raw_dset *d = &c->dsets[k];
        for (int64_t j = 0; j < d->cols; j++) {
            char name[512];
            int64_t ch = c->key_col[k] + j;
            if (d->rank == 1) {
                snprintf(name, sizeof name, "%s", labels[k]);
            } else {
                snprintf(name, sizeof name, "%s[%lld]", labels[k], (long long)j);
            }
            DURE_TRY(dataio_strdup(name, &c->channel_names[ch]));
            DURE_TRY(dataio_strdup("", &c->channel_units[ch]));
        }
    }
out:
    return st;
}
