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
 * Elements per chunk of format version 1 files (chunked, with HDF5's
 * Fletcher32 filter): still read, no longer written.
 */
#define CKPT_V1_CHUNK_ELEMS ((hsize_t)1 << 20)

/* The dataset of format version 2's per-block CRC-32s (ckpt_sum.h). */
#define CKPT_SUMS_NAME "checksums"

/*
 * Upper bound of the size of a checkpoint file of n parameters: the three
 * datasets and their checksums, plus generous room for the superblock,
 * attributes and object headers (measured: about 3 KiB).
 */
uint64_t ckh5_file_bytes_max(uint64_t n);

/* Where a checkpoint's bytes are: offsets in the file of the contiguous
 * datasets, as ckh5_skeleton_create laid them out. */
struct ckh5_layout {
    uint64_t data[CKPT_N_DATASETS]; /* byte offset of /params, /adam_m, /adam_v */
    uint64_t sums;                  /* byte offset of /checksums */
    uint64_t file_bytes;            /* size of the file: the last byte of data included */
};

/*
 * Create `path` (exclusively; serial HDF5, one process) holding everything
 * but the numbers: the metadata attributes, and the three float32 [N]
 * datasets and /checksums uint32 [3, B] contiguous, their space allocated
 * and never filled (so nothing is written twice). The file is closed on
 * return, at its full size, its data regions holes until written; *lay says
 * where they are. The caller then writes the bytes without HDF5.
 */
dure_status_t ckh5_skeleton_create(const char *path, const struct ckpt_meta *m,
                                   struct ckh5_layout *lay);

/*
 * Read /checksums of a format version 2 file into sums[3 * B] (B =
 * ckpt_sum_blocks(n)). DURE_ERR_FORMAT when it is missing or of another shape.
 */
dure_status_t ckh5_sums_read(hid_t f, const char *path, uint64_t n, uint32_t *sums);

/* The format_version attribute of an open checkpoint (1 or 2). */
dure_status_t ckh5_version_read(hid_t f, const char *path, uint32_t *version);

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

/* 1 when HDF5's Fletcher32 filter is in the pipeline of dataset creation
 * property list dcpl (format version 1's per-chunk checksum), else 0. */
int ckh5_fletcher32(hid_t dcpl);

/*
 * Read elements [offset, offset + len) of dataset `which` (opened as d) into
 * buf[len] and check them: against sums (format version 2: the whole
 * /checksums, 3 * ckpt_sum_blocks(n) words), or, with sums NULL (version 1),
 * by HDF5's Fletcher32 filter as it reads (a dataset without the filter
 * fails with DURE_ERR_FORMAT: nothing would check it). A block only partly inside the
 * range is read whole into a scratch buffer, checked, and its part copied
 * out, so the caller only ever gets checked bytes. dxpl must be independent
 * (each rank reads alone). DURE_ERR_FORMAT naming the file, the dataset and
 * the block when the data is damaged.
 */
dure_status_t ckh5_read_checked(hid_t d, hid_t dxpl, const char *path, int which,
                                const uint32_t *sums, uint64_t n, size_t offset, size_t len,
                                float *buf);

#endif
