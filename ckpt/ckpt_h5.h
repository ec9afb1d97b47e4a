/*
 * ckpt/ckpt_h5.h - HDF5 helpers shared by ckpt/ckpt.c (collective save
 * and load) and ckpt/ckpt_read.c (serial readers); internal to ckpt/.
 */
#ifndef DURE_CKPT_CKPT_H5_H
#define DURE_CKPT_CKPT_H5_H

#include <hdf5.h>

#include "common/h5err.h"
#include "common/status.h"
#include "ckpt/ckpt.h"

/*
 * Elements per chunk: 1 Mi floats = 4 MiB. Fletcher32 needs chunking; large
 * chunks keep the chunk index and the per-chunk filter overhead negligible
 * (a 1 GiB vector is 256 chunks), while a chunk shared by two ranks' shards
 * (at most one per boundary) stays cheap to gather. Measured with
 * bench/bench_ckpt.c (2 ranks, 384 MiB): 1 MiB chunks within noise of 4 MiB,
 * 16 MiB chunks about half as fast.
 */
#define CHUNK_ELEMS ((hsize_t)1 << 20)

/*
 * Upper bound of the size of a checkpoint file of n parameters: the three
 * datasets with one 4-byte checksum per chunk, plus generous room for the
 * superblock, attributes, object headers and chunk indexes (measured: about
 * 14 KiB for one chunk per dataset).
 */
uint64_t ckh5_file_bytes_max(uint64_t n);

/*
 * Log "<formatted>: <HDF5's innermost reasons>", clear HDF5's error stack and
 * return the status: DURE_ERR_FORMAT when a filter failed (a Fletcher32
 * checksum mismatch: the data is damaged), else `code`.
 */
dure_status_t ckh5_fail(const char *file, int line, dure_status_t code, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

/* Fail with an HDF5 error unless cond holds. */
#define CKH5_CHECK(cond, ...)                                                              \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            st = ckh5_fail(__FILE__, __LINE__, DURE_ERR_HDF5, __VA_ARGS__);                \
            goto out;                                                                      \
        }                                                                                  \
    } while (0)

/* Write struct ckpt_meta as root attributes of f (plus format, version and
 * dure_version). Collective in parallel files: identical on every rank. */
dure_status_t ckh5_meta_write(hid_t f, const char *path, const struct ckpt_meta *m);

/* Read and check them back; DURE_ERR_FORMAT naming path and attribute. */
dure_status_t ckh5_meta_read(hid_t f, const char *path, struct ckpt_meta *m);

/* Open dataset `name` of f and check it is float32 [n]. */
dure_status_t ckh5_dataset_open(hid_t f, const char *path, const char *name, uint64_t n,
                                hid_t *out);

/*
 * Read (write = 0) or write elements [offset, offset + len) of dataset d
 * from/into buf[len]; dxpl picks collective or independent transfer. A rank
 * with len 0 selects nothing but still takes part in a collective call.
 */
herr_t ckh5_dataset_io(hid_t d, hid_t dxpl, int write, size_t offset, size_t len,
                       void *buf);

#endif
