/*
 * dataio/format.h - the dure dataset format (dataio/FORMAT.md) and its writer.
 *
 * One HDF5 file:
 *   /signals               float32 [T_total, C], chunked (R, C), R from
 *                          dataio_format_chunk_rows(C), no filters
 *   /episodes              int64 [E+1] row offsets: episode e is rows
 *                          [episodes[e], episodes[e+1]), strictly ascending
 *   /channels/names        string [C]
 *   /channels/units        string [C]
 *   /split/val             int64 [V] validation episode indices (optional)
 *   /episode_meta/<col>    string [E] per-episode metadata (import; hashed
 *                          when the column was identifying)
 *   /stats/{mean,std,count,nonfinite_rows}   per-channel moments (optional)
 * Root attributes: format, format_version, sample_rate_hz, source, created,
 * tool, anonymized, anonymization, raw_columns.
 *
 * Writers never leave a partial file: data go to a temporary file in the
 * destination's directory, renamed over the destination only by
 * dataio_writer_finish.
 */
#ifndef DURE_DATAIO_FORMAT_H
#define DURE_DATAIO_FORMAT_H

#include <stdint.h>

#include "common/status.h"
#include "dataio/reader.h"

#define DATAIO_FORMAT_NAME "dure-timeseries"
#define DATAIO_FORMAT_VERSION 1

#define DATAIO_DSET_SIGNALS "/signals"
#define DATAIO_DSET_EPISODES "/episodes"
#define DATAIO_DSET_CHANNEL_NAMES "/channels/names"
#define DATAIO_DSET_CHANNEL_UNITS "/channels/units"
#define DATAIO_DSET_VAL_EPISODES "/split/val"
#define DATAIO_GROUP_EPISODE_META "/episode_meta"
#define DATAIO_GROUP_STATS "/stats"

/* Most channels a dataset may have (writers and readers refuse more). */
#define DATAIO_FORMAT_MAX_CHANNELS 65536

/* Largest bytes per /signals chunk; see FORMAT.md "Chunking" for why. */
#define DATAIO_CHUNK_BYTES (4u << 20)

/* Rows per chunk for C float32 channels: the largest power of two with
 * R * C * 4 <= DATAIO_CHUNK_BYTES (at least 1): chunks of 2 to 4 MiB,
 * above HDF5's default 1 MiB chunk cache, so other HDF5 readers (h5py) read
 * only the bytes they select. When the dataset is known to have fewer
 * rows (total_rows > 0), the next power of two >= total_rows if smaller. */
int64_t dataio_format_chunk_rows(int n_channels, int64_t total_rows);

struct dataio_writer_config {
    const char *path;               /* destination; replaced atomically */
    int n_channels;                 /* C >= 1 */
    const char *const *channel_names; /* (C) non-empty, unique */
    const char *const *channel_units; /* (C) or NULL = "" for all */
    double sample_rate_hz;          /* > 0 */
    const char *source;             /* provenance: what the data are */
    /* Provenance of anonymization: NULL = nothing was done; else a
     * description of what was (stored in `anonymization`). */
    const char *anonymization;
    /* Identifying columns stored as they are in /episode_meta, a comma list
     * (`raw_columns`); NULL or "" = none. `anonymized` = 1 only with an
     * anonymization and no raw column. */
    const char *raw_columns;
    int64_t chunk_rows;             /* 0 = dataio_format_chunk_rows(C) */
};

typedef struct dataio_writer dataio_writer_t;

/* Create the temporary file next to cfg->path. Strings are copied. */
dure_status_t dataio_writer_open(const struct dataio_writer_config *cfg,
                                 dataio_writer_t **out);

/* Replace the sample rate given at open (> 0), e.g. once an importer has
 * measured it from a time column. */
dure_status_t dataio_writer_set_sample_rate(dataio_writer_t *w, double hz);

/* Append rows (n, C) float32 to the current episode. rows is the caller's. */
dure_status_t dataio_writer_append(dataio_writer_t *w, const float *rows,
                                   int64_t n);

/* Close the current episode; DURE_ERR_FORMAT if it has no rows. */
dure_status_t dataio_writer_end_episode(dataio_writer_t *w);

/* Episodes written so far (closed ones). */
int64_t dataio_writer_episodes(const dataio_writer_t *w);

/* Mark episodes as the validation split (indices < episodes at finish). */
dure_status_t dataio_writer_set_val(dataio_writer_t *w, const int64_t *episodes,
                                    int64_t n);

/* Per-episode string metadata /episode_meta/<name>, values (E) for the E
 * episodes written by finish time; copied. */
dure_status_t dataio_writer_set_episode_meta(dataio_writer_t *w, const char *name,
                                             const char *const *values,
                                             int64_t n);

/*
 * Write /episodes, split, metadata and attributes, compute and store the
 * per-channel stats (dataio/stats.h) and rename the file to its
 * destination. Frees w whatever happens; on failure the temporary file is
 * removed and the destination is untouched.
 */
dure_status_t dataio_writer_finish(dataio_writer_t *w);

/* Remove the temporary file and free w (NULL is fine). */
void dataio_writer_abort(dataio_writer_t *w);

#endif
