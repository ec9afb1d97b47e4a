/*
 * dataio/stats.h - per-channel mean and standard deviation, streamed.
 *
 * Moments are accumulated per block of rows with a two-pass mean/M2 on the
 * block and Chan et al.'s pairwise merge across blocks and ranks: stable
 * for long series with a large mean (no sum-of-squares cancellation).
 * Non-finite values are left out of the moments and their rows recorded.
 */
#ifndef DURE_DATAIO_STATS_H
#define DURE_DATAIO_STATS_H

#include <hdf5.h>
#include <mpi.h>
#include <stdint.h>

#include "common/status.h"
#include "dataio/reader.h"

/* Moments of one channel. */
struct dataio_moments {
    int64_t n;     /* finite values seen */
    double mean;
    double m2;     /* sum of squared deviations from the mean */
};

/* Fold rows x (n, C) into m (C), skipping non-finite values. Returns the
 * number of rows holding a non-finite value (if rows != NULL, their
 * indices in [0, n) are written there, ascending). */
int64_t dataio_moments_add(struct dataio_moments *m, const float *x, int64_t n, int c,
                           int64_t *rows);
/* a += b (Chan's merge), per channel. */
void dataio_moments_merge(struct dataio_moments *a, const struct dataio_moments *b, int c);

/* A stats record for C channels with no non-finite rows (free with
 * dataio_stats_free). */
dure_status_t dataio_stats_alloc(int c, struct dataio_stats **out);
void dataio_stats_free(struct dataio_stats *s);

/*
 * Stream every episode of r once: moments over the episodes of `split`
 * (TRAIN falls back to ALL when the file has no split), non-finite rows
 * over all episodes. With comm != MPI_COMM_NULL the episodes are shared
 * among its ranks and the results combined (collective; same result on
 * every rank). *out is the caller's.
 */
dure_status_t dataio_stats_compute(dataio_reader_t *r, dataio_split_t split,
                                   MPI_Comm comm, struct dataio_stats **out);

/* Rows sampled for the fingerprint of stored statistics. */
#define DATAIO_STATS_SAMPLE_ROWS 64

/*
 * What statistics are computed from, cheaply: the total rows, the
 * episodes, and an FNV-1a hash of DATAIO_STATS_SAMPLE_ROWS rows spread
 * evenly over the dataset (as float32). A change of shape, or of any
 * sampled row, changes it; a change confined between the sampled rows does
 * not (dure data inspect's full pass finds those). Reads through r (no HDF5).
 */
dure_status_t dataio_stats_source(dataio_reader_t *r, int64_t *rows, int64_t *episodes,
                                  uint64_t *hash);

/*
 * Do stored statistics still describe the data of r? DURE_OK with *why =
 * NULL when they do (or record no source to check); else *why (capacity
 * len, NUL-terminated) says what changed.
 */
dure_status_t dataio_stats_check_source(dataio_reader_t *r, const struct dataio_stats *s,
                                        char *why, size_t len, int *stale);

/* Read /stats of an open dure file of c channels and `rows` rows; *out =
 * NULL when absent. DURE_ERR_FORMAT naming the file and the value when
 * nonfinite_rows is not ascending within [0, rows). */
dure_status_t dataio_stats_load(hid_t fid, const char *label, int c, int64_t rows,
                                struct dataio_stats **out);

/* Write s as /stats of an open dure file, replacing an older /stats. */
dure_status_t dataio_stats_store(hid_t fid, const struct dataio_stats *s);

/*
 * `dure data stats`: compute the stats of the dure file at path and store
 * them in it (the file is modified in place after the whole pass has
 * succeeded; only the small /stats group is rewritten). *out (may be NULL)
 * receives the stats.
 */
dure_status_t dataio_stats_update_file(const char *path, struct dataio_stats **out);

#endif
