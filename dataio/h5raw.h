/*
 * dataio/h5raw.h - read an HDF5 dataset's values without calling HDF5.
 *
 * h5raw_dset_open() asks HDF5 (main thread) where a 1-D or 2-D numeric
 * dataset's bytes are: one contiguous extent, or the address, size and
 * filter mask of every chunk. h5raw_read() then fetches rows with pread(2)
 * or MPI_File_read_at and converts them to float32 in the caller's buffer;
 * it calls no HDF5 function, so a prefetch thread may use it while the
 * main thread uses HDF5. Supported: float16/32/64 and 8-64 bit (unsigned)
 * integers of either byte order (booleans: integer enums), contiguous,
 * compact and chunked layouts, the deflate, shuffle and fletcher32 filters.
 * Anything else is refused at open with a message naming it.
 */
#ifndef DURE_DATAIO_H5RAW_H
#define DURE_DATAIO_H5RAW_H

#include <hdf5.h>
#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

/* An open data file: a descriptor (serial) or an MPI file handle (mpiio). */
struct h5raw_file {
    char *path;
    int fd;        /* >= 0 in serial mode */
    MPI_File fh;   /* != MPI_FILE_NULL in mpiio mode */
};

/* Open path for raw reads: pread when comm is MPI_COMM_NULL, else
 * MPI_File_open over comm (collective). f->path is a copy. */
dure_status_t h5raw_file_open(struct h5raw_file *f, const char *path, MPI_Comm comm);
/* Collective in mpiio mode. Safe on a zeroed or already closed file. */
void h5raw_file_close(struct h5raw_file *f);

enum h5raw_layout { H5RAW_CONTIGUOUS, H5RAW_CHUNKED, H5RAW_MEMORY };
enum h5raw_kind { H5RAW_FLOAT, H5RAW_INT, H5RAW_UINT };

struct h5raw_chunk {
    uint64_t addr;         /* file offset */
    uint64_t size;         /* stored bytes (after filters) */
    uint32_t filter_mask;  /* bit i set = filter i of the pipeline skipped */
};

#define H5RAW_MAX_FILTERS 4

struct h5raw_dset {
    char *what;                 /* "file 'F', dataset 'D'" for messages */
    const struct h5raw_file *file;
    int rank;                   /* 1 or 2 */
    int64_t rows, cols;         /* shape as (rows, cols); 1-D: cols = 1 */
    enum h5raw_kind kind;
    int size;                   /* bytes per element: 1, 2, 4 or 8 */
    int swap;                   /* stored in the other byte order */
    enum h5raw_layout layout;
    uint64_t addr;              /* CONTIGUOUS: offset of element 0 */
    int64_t crows, ccols;       /* CHUNKED: chunk shape */
    int64_t nrc, ncc;           /* CHUNKED: chunks along rows, along cols */
    struct h5raw_chunk *chunks; /* CHUNKED: (nrc, ncc) */
    int nfilters;
    int filters[H5RAW_MAX_FILTERS]; /* pipeline in write order (H5Z ids) */
    uint64_t max_chunk_stored;  /* largest stored chunk, bytes */
    unsigned char *mem;         /* MEMORY: rows*cols*size stored bytes */
};

/*
 * Describe dataset `name` of the open HDF5 file `fid` whose bytes are read
 * from `f`. `file_label` names the file in messages. Checks rank (1 or 2),
 * dtype, layout, filters, and that every declared value is stored (storage
 * HDF5 never allocated, which reads as fill values, is refused before
 * anything is sized by the declared shape). Problems of the file are
 * DURE_ERR_FORMAT. d is owned by the caller (h5raw_dset_free).
 */
dure_status_t h5raw_dset_open(hid_t fid, const char *name, const char *file_label,
                              const struct h5raw_file *f, struct h5raw_dset *d);
void h5raw_dset_free(struct h5raw_dset *d);

/* "float64 [120, 7], chunked 100 x 7 (5 chunks), deflate" into buf. */
void h5raw_describe(const struct h5raw_dset *d, char *buf, size_t len);

/* Scratch sizes a read of up to max_rows rows of d into a destination of
 * row pitch dst_stride needs (nothing for the raw buffer when rows can be
 * read straight into the destination); take the max over datasets, then
 * carve one allocation with h5raw_scratch_init. */
struct h5raw_scratch_size {
    size_t raw;   /* stored bytes of a row range, before conversion */
    size_t zin;   /* one stored (compressed) chunk */
    size_t dec;   /* one decoded chunk, and as much again for unshuffling */
};
void h5raw_scratch_need(const struct h5raw_dset *d, int64_t max_rows, int64_t dst_stride,
                        struct h5raw_scratch_size *need);
size_t h5raw_scratch_total(const struct h5raw_scratch_size *need);

struct h5raw_scratch {
    unsigned char *raw, *zin, *dec, *tmp;
    struct h5raw_scratch_size cap;
    const struct h5raw_dset *cached;  /* decoded chunk in dec, if any */
    int64_t cached_chunk;
};
/* Point s at `block` (h5raw_scratch_total(need) bytes, 64-byte aligned). */
void h5raw_scratch_init(struct h5raw_scratch *s, const struct h5raw_scratch_size *need,
                        unsigned char *block);

/*
 * Rows [r0, r0+n) of d, all its columns, as float32 into
 * dst[i * dst_stride + j] for row i, column j (dst points at the first
 * destination column). Adds fetched bytes to *bytes. No HDF5 calls, no
 * logging: on error writes the message into err and returns the status.
 */
dure_status_t h5raw_read(const struct h5raw_dset *d, int64_t r0, int64_t n,
                         float *dst, int64_t dst_stride, struct h5raw_scratch *s,
                         uint64_t *bytes, char *err, size_t err_len);

#endif
