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

/* Read /stats of an open dure file; *out = NULL when absent. */
dure_status_t dataio_stats_load(hid_t fid, const char *label, int c,
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
