/*
 * dataio/reader.h - one interface over the dataset layouts dure reads.
 *
 * A dataset is E episodes, episode e being T_e timesteps x C channels of
 * float32 after conversion. Three layouts are read in place, without
 * conversion of the files:
 *
 *   dure           the dure format (dataio/FORMAT.md): /signals [T_total, C]
 *                  and /episodes [E+1] row offsets.
 *   robomimic      robomimic/LIBERO: data/demo_N/obs/<key> and
 *                  data/demo_N/actions, per-demo num_samples attribute,
 *                  optional mask/train, mask/valid.
 *   episode-files  one HDF5 file per episode (a glob of files), each with the
 *                  same datasets: ALOHA's /observations/qpos and /action, a
 *                  machining run's /vibration_data [N, 3]. "aloha" is an alias.
 *
 * Each layout is an implementation of struct dataio_reader_i behind the opaque
 * dataio_reader_t; dataio_reader_open() picks it from the layout, or from
 * the file itself (DATAIO_LAYOUT_AUTO, dataio_layout_detect).
 *
 * Threading. The HDF5 library dure links is not thread-safe, and the
 * training thread calls HDF5 too (checkpoints). So a reader calls HDF5 only
 * in open() and close(), on the caller's thread: open() resolves where every
 * dataset's bytes lie in its file (contiguous offset or chunk addresses), and
 * read() fetches and converts raw bytes with pread(2) (io serial) or
 * MPI_File_read_at (io mpiio) without calling HDF5. read() may then run on
 * a prefetch thread while the main thread uses HDF5, and several read()
 * calls may run at once as long as each has its own scratch.
 */
#ifndef DURE_DATAIO_READER_H
#define DURE_DATAIO_READER_H

#include <mpi.h>
#include <stdint.h>

#include "common/status.h"

typedef enum {
    DATAIO_LAYOUT_AUTO = 0,      /* detected from the file (dataio_layout_detect) */
    DATAIO_LAYOUT_DURE,
    DATAIO_LAYOUT_ROBOMIMIC,
    DATAIO_LAYOUT_EPISODE_FILES,
} dataio_layout_t;

/*
 * How a rank reads the file. SERIAL: every rank opens the file alone with
 * HDF5's serial (sec2) driver and reads with pread(2). MPIIO: all ranks of
 * the communicator open it together with parallel HDF5 (MPI-IO driver,
 * collective metadata reads: one rank reads metadata, all receive it) and
 * read data with MPI_File_read_at. AUTO is the default chosen by
 * measurement (bench/dataio_io.c; see dataio/FORMAT.md, "Reading").
 */
typedef enum {
    DATAIO_IO_AUTO = 0,
    DATAIO_IO_SERIAL,
    DATAIO_IO_MPIIO,
} dataio_io_t;

/* Which episodes: the file's training split, its validation split, or all. */
typedef enum {
    DATAIO_SPLIT_TRAIN = 0,
    DATAIO_SPLIT_VAL,
    DATAIO_SPLIT_ALL,
} dataio_split_t;

/* Parse "auto"|"dure"|"robomimic"|"episode-files" ("aloha" is an alias of
 * episode-files); DURE_ERR_ARG naming the value on anything else. */
dure_status_t dataio_layout_parse(const char *s, dataio_layout_t *out);
const char *dataio_layout_name(dataio_layout_t layout);
const char *dataio_split_name(dataio_split_t split);

/*
 * The layout of path, from the file itself: a glob pattern is episode-files;
 * an HDF5 file with the dure format attribute (or /signals and /episodes) is
 * dure, one with data/demo_* groups robomimic, any other with a 1-D or 2-D
 * numeric dataset episode-files (the file is one episode). `why` (may be
 * NULL) receives the reason in a few words. Errors: the file cannot be
 * opened (as dataio_h5_open_file: DURE_ERR_FORMAT for a missing or non-HDF5
 * file) or nothing fits (DURE_ERR_FORMAT, naming what was looked for).
 * Calls HDF5: main thread.
 */
dure_status_t dataio_layout_detect(const char *path, dataio_layout_t *out, char *why,
                                   size_t why_len);

struct dataio_reader_config {
    const char *path;      /* the file; for episode-files a glob (or one file) */
    dataio_layout_t layout; /* AUTO = dataio_layout_detect */
    /*
     * Channels for robomimic/episode-files: a comma list of dataset paths,
     * relative to the demo group (robomimic; a bare name not found there is
     * looked up under obs/) or to the file root (episode-files), concatenated
     * in list order.
     * NULL or "" = every numeric 1-D or 2-D dataset of the first episode,
     * sorted by path (robomimic: obs/... then actions). Ignored for dure.
     */
    const char *keys;
    dataio_io_t io;        /* AUTO resolves to the measured default */
    /* MPIIO: the ranks that open the file together (collective open).
     * SERIAL: ignored. MPI_COMM_NULL forces SERIAL. */
    MPI_Comm comm;
};

/* The split an episode belongs to (dataio_dataset_info.ep_split). */
enum {
    DATAIO_EP_TRAIN = 0,
    DATAIO_EP_VAL = 1,
    DATAIO_EP_UNUSED = 2, /* in neither split (robomimic: named by no mask) */
};

/* Per-channel moments stored in a dure file (dure data stats) or computed. */
struct dataio_stats {
    int n_channels;
    double *mean;               /* (C) mean of the finite values */
    double *std;                /* (C) population standard deviation of them */
    int64_t *count;             /* (C) finite values that went into mean/std */
    int64_t n_nonfinite_rows;
    int64_t *nonfinite_rows;    /* (n_nonfinite_rows) rows, in the dataset's
                                   global row space (see episode_start), that
                                   hold a NaN or Inf in any channel; ascending */
    dataio_split_t split;       /* the episodes mean/std cover: TRAIN or ALL;
                                   nonfinite_rows always cover all episodes */
    /* What the statistics were computed from (dataio_stats_source): stored
     * with them, checked when they are loaded. has_source 0 = unknown
     * (stats stored by a dure that did not record it). */
    int has_source;
    int64_t source_rows, source_episodes;
    uint64_t source_hash;
};

/*
 * What a reader found at open; owned by the reader, valid until
 * dataio_reader_close(). The global row space numbers the rows of all
 * episodes in episode order: episode e is rows
 * [episode_start[e], episode_start[e+1]).
 */
struct dataio_dataset_info {
    dataio_layout_t layout;         /* resolved: never AUTO */
    dataio_io_t io;                 /* resolved: SERIAL or MPIIO */
    const char *path;               /* as given (the glob for episode-files) */
    int64_t n_episodes;             /* E >= 1 */
    const int64_t *episode_start;   /* (E+1) ascending, [0] = 0 */
    const char *const *episode_names; /* (E) "demo_3", file names, "3" */
    int n_channels;                 /* C >= 1 */
    const char *const *channel_names; /* (C) */
    const char *const *channel_units; /* (C) "" when the file does not say */
    double sample_rate_hz;          /* 0 when the file does not say */
    const uint8_t *ep_split;        /* (E) DATAIO_EP_*; NULL = no split is
                                       defined: every episode trains */
    const char *split_from;         /* what defines the split: "/split/val",
                                       "mask/train, mask/valid",
                                       "data.val_fraction" (dataio_reader_hold_out);
                                       NULL with no split */
    const struct dataio_stats *stats; /* stored in the file, or NULL (also when
                                       they no longer match the data) */
    const char *stats_stale;        /* why stored stats were set aside as stale
                                       (the data changed after they were
                                       computed), or NULL */
    int n_storage;
    const char *const *storage;     /* (n_storage) how the first episode's
                                       datasets are stored, one line each:
                                       "/signals: float32 [T, C] chunked ..." */
    int64_t bytes_per_row_on_disk;  /* sum over channels of the stored size */
};

/* The episode holding global row `row` (0 <= row < episode_start[E]). */
int64_t dataio_episode_of_row(const struct dataio_dataset_info *info, int64_t row);

/* Is episode e in `split`? TRAIN: training episodes (every episode when no
 * split is defined), VAL: validation episodes, ALL: every episode. */
int dataio_episode_in(const struct dataio_dataset_info *info, int64_t e,
                      dataio_split_t split);

/*
 * Do two data paths (files or globs) share a file (same device and inode)?
 * *n_common the count, first (capacity len) the first shared one. For a
 * validation path that repeats training data.
 */
dure_status_t dataio_paths_overlap(const char *a, const char *b, int64_t *n_common,
                                   char *first, size_t len);

/* Working memory of one thread's read() calls; sized at creation. */
typedef struct dataio_scratch dataio_scratch_t;

/*
 * The layout interface. open() and close() call HDF5 on the caller's
 * thread; read() must not (see the threading note above).
 */
struct dataio_reader_i {
    const char *name;
    /* Open cfg->path; fill *info (pointers owned by *ctx). Collective over
     * cfg->comm when the resolved io is MPIIO. */
    dure_status_t (*open)(const struct dataio_reader_config *cfg, void **ctx,
                          struct dataio_dataset_info *info);
    /* Bytes of scratch that read() needs for up to max_rows rows, and how
     * to prepare such a block once before its first read(). */
    size_t (*scratch_bytes)(void *ctx, int64_t max_rows);
    void (*scratch_init)(void *ctx, void *scratch, int64_t max_rows);
    /* Rows [t0, t0+n) of episode e, all channels, into dst (n, C) float32
     * row-major, converted from the stored dtype. scratch has at least
     * scratch_bytes(ctx, n) bytes. Adds the bytes fetched to *bytes_read.
     * On error, writes the message (naming file, dataset, rows) into
     * err[0..err_len) and returns the status without logging: the caller
     * may be a prefetch thread. */
    dure_status_t (*read)(void *ctx, int64_t e, int64_t t0, int64_t n,
                          float *dst, void *scratch, uint64_t *bytes_read,
                          char *err, size_t err_len);
    void (*close)(void *ctx);
};

typedef struct dataio_reader dataio_reader_t;

/*
 * Open a dataset. On success *out owns everything; release it with
 * dataio_reader_close(). Errors name the file, dataset or key and the
 * problem: missing file, not HDF5, truncated, missing dataset or key, wrong
 * rank, unsupported dtype (float32/float64/float16 and 8-64 bit integers
 * are converted; others are refused), empty episodes. Collective over
 * cfg->comm when the resolved io is MPIIO.
 */
dure_status_t dataio_reader_open(const struct dataio_reader_config *cfg,
                                 dataio_reader_t **out);

/* The dataset's description; owned by r, valid until dataio_reader_close. */
const struct dataio_dataset_info *dataio_reader_info(const dataio_reader_t *r);

/*
 * Where the dataset defines no split, hold out episodes for validation:
 * those of dataio_val_episodes(E, fraction, seed), the ones `dure data gen`
 * or `dure data import --val-fraction` would pick with that seed. The same
 * on every rank, whatever the world size. A dataset with a split, or
 * fraction 0, is left as it is. Sets info's ep_split and split_from.
 */
dure_status_t dataio_reader_hold_out(dataio_reader_t *r, double fraction, uint64_t seed);

/* Bytes a scratch for reads of up to max_rows rows takes. */
size_t dataio_scratch_bytes(dataio_reader_t *r, int64_t max_rows);

/* Scratch for one thread's reads of up to max_rows rows. Owned by the
 * caller; free with dataio_scratch_free (NULL is fine). */
dure_status_t dataio_scratch_create(dataio_reader_t *r, int64_t max_rows,
                                    dataio_scratch_t **out);
void dataio_scratch_free(dataio_scratch_t *s);

/*
 * Rows [t0, t0+n) of episode e into dst (n, C) float32 (see read() above),
 * n <= the scratch's max_rows. Calls no HDF5: safe on a prefetch thread.
 * Errors go into err (not logged) as described for read().
 */
dure_status_t dataio_reader_read(dataio_reader_t *r, int64_t e, int64_t t0,
                                 int64_t n, float *dst, dataio_scratch_t *s,
                                 uint64_t *bytes_read, char *err,
                                 size_t err_len);

/* Same, logging the error on the caller's thread (for tools and tests). */
dure_status_t dataio_reader_read_logged(dataio_reader_t *r, int64_t e,
                                        int64_t t0, int64_t n, float *dst,
                                        dataio_scratch_t *s);

/* Close files and free everything; r may be NULL. Collective over the
 * open's communicator when the io is MPIIO. */
void dataio_reader_close(dataio_reader_t *r);

#endif
