/*
 * dataio/h5util.h - small HDF5 helpers shared by the dataio readers and
 * writers: opening a dataset file with clear errors, string datasets and
 * attributes (HDF5's error stacks: common/h5err.h). Main thread only (HDF5 here is not thread-safe).
 */
#ifndef DURE_DATAIO_H5UTIL_H
#define DURE_DATAIO_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "common/h5err.h"
#include "common/status.h"

/*
 * Open `path` read-only with fapl, reporting clearly: missing file, not a
 * file, not HDF5, truncated or otherwise unreadable (with HDF5's reason).
 * DURE_ERR_FORMAT for all of these (bad input: exit code 4), DURE_ERR_IO
 * for other system errors (permissions, I/O errors).
 */
dure_status_t dataio_h5_open_file(const char *path, hid_t fapl, hid_t *out);

/* Does `name` (a path from loc) exist as a link? Never fails: 0 on error. */
int dataio_h5_exists(hid_t loc, const char *name);

/* The rank of `name` if it is a numeric (integer, float or integer enum)
 * dataset, else 0. Never fails. */
int dataio_h5_numeric_rank(hid_t loc, const char *name);

/* The longest variable-length string the readers below take (1 MiB): its
 * heap object is checked first (common/h5guard.h). */
#define DATAIO_H5_STR_MAX ((size_t)1 << 20)

/*
 * Read a 1-D string dataset (fixed or variable length) into *out, an array
 * of n malloc'd strings inside one malloc'd block: free(*out) frees all.
 * `what` names the file for messages. Variable-length strings must be
 * contiguous and sound (common/h5guard.h).
 */
dure_status_t dataio_h5_read_strings(hid_t loc, const char *name,
                                     const char *what, char ***out, int64_t *n);

/* Write strings (n) as a 1-D variable-length UTF-8 string dataset. */
dure_status_t dataio_h5_write_strings(hid_t loc, const char *name,
                                      const char *const *s, int64_t n);

/* Read a 1-D integer dataset as int64 (n values, malloc'd). */
dure_status_t dataio_h5_read_i64(hid_t loc, const char *name, const char *what,
                                 int64_t **out, int64_t *n);

/* Write n values as a 1-D int64 (or float64) dataset. */
dure_status_t dataio_h5_write_i64(hid_t loc, const char *name,
                                  const int64_t *v, int64_t n);
dure_status_t dataio_h5_write_f64(hid_t loc, const char *name,
                                  const double *v, int64_t n);

/* Read a 1-D float dataset of n (exactly `want`) values as double. */
dure_status_t dataio_h5_read_f64(hid_t loc, const char *name, const char *what,
                                 double *out, int64_t want);

/* Scalar attributes on an object. Readers return 0 = absent, 1 = read,
 * <0 = present but not convertible, or (strings) refused by the check of
 * common/h5guard.h, which logs why. */
int dataio_h5_attr_f64(hid_t obj, const char *name, double *out);
int dataio_h5_attr_i64(hid_t obj, const char *name, int64_t *out);
int dataio_h5_attr_str(hid_t obj, const char *name, char *buf, size_t len);
dure_status_t dataio_h5_set_attr_str(hid_t obj, const char *name, const char *v);
dure_status_t dataio_h5_set_attr_f64(hid_t obj, const char *name, double v);
dure_status_t dataio_h5_set_attr_i64(hid_t obj, const char *name, int64_t v);

/* Create the groups of a path such as "/a/b/c" up to "/a/b" (all missing). */
dure_status_t dataio_h5_make_parents(hid_t file, const char *path);

#endif
