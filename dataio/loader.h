/*
 * dataio/loader.h - the streaming loader: batches of training windows.
 *
 * A window is W consecutive timesteps x C channels of one episode; windows
 * never cross an episode boundary. The windows of a split are enumerated
 * episode by episode, starts 0, S, 2S, ... (stride S, default W: windows
 * tile each episode without overlap; an episode's tail shorter than W is
 * not used, an episode shorter than W gives no window).
 *
 * Global order. Epoch k visits the N windows in the order of a
 * pseudo-random permutation of [0, N) computed from (seed, k) alone (a
 * keyed Feistel network: O(1) memory whatever N; identity when shuffle is
 * off). Global batch b of an epoch is positions [p, p + B) with p = b*B.
 * Rank r of R takes the CONTIGUOUS part [p + r*B/R, p + (r+1)*B/R). So the
 * order does not depend on the number of ranks: 1 rank with global batch B
 * sees exactly the windows that R ranks with B/R each see, concatenated in
 * rank order. An epoch has floor(N / B) batches; the last N mod B positions
 * of an epoch are dropped (they differ from epoch to epoch).
 *
 * Mixtures. A loader may read D datasets (sources) at once, each with a
 * weight w_d. Dataset d has n_d windows and a share s_d = w_d n_d^alpha /
 * sum (alpha = balance_alpha). An epoch is N = sum n_d positions, of which
 * c_d = s_d N (largest remainders) come from dataset d: position p maps to
 * slot perm(N, (seed, epoch), p), the slots [C_d, C_d + c_d) belong to d,
 * and d's j-th slot is its window perm(n_d, (seed, d, epoch, j / n_d),
 * j mod n_d): an oversampled dataset repeats in fresh orders, an
 * undersampled one shows other windows every epoch. Every dataset's share
 * is exact in each epoch, the order is a function of (seed, epoch) alone,
 * and the cursor (epoch, position) resumes it exactly at any world size.
 * One dataset is the plain order above (its windows are the N positions).
 * Windows are laid into the union of the datasets' channels (by name, in
 * order of first appearance): a dataset's missing channels are 0 and
 * masked (batch.mask); each dataset is normalized with its own statistics.
 * Sample rates must agree (sample_rate_hz, else the first dataset's rate):
 * a dataset at another rate is refused, naming both (dure does not
 * resample).
 *
 * Data path. A prefetch thread fills `prefetch` preallocated batch buffers
 * ahead of the consumer (a consumer that finds its batch not ready reads
 * one itself rather than sleep); reads of windows that are adjacent in the
 * file and in the batch are coalesced into one read per run of contiguous
 * chunks; values are converted to float32 and (by default) normalized per
 * channel with the training split's mean and standard deviation. The
 * prefetch thread never calls HDF5 (not thread-safe here): the training
 * thread may write checkpoints with HDF5 meanwhile. Memory is (prefetch +
 * 1) batch buffers plus per-thread scratch, fixed at open, whatever the
 * file size and the number of datasets' rows. Nothing is allocated per
 * batch.
 *
 * Typical use (one loader per rank; `comm` shared):
 *
 *     struct dataio_loader_config cfg;
 *     dataio_loader_config_init(&cfg);
 *     cfg.path = "data/train.h5"; cfg.window = 272; cfg.global_batch = 32;
 *     cfg.comm = MPI_COMM_WORLD; cfg.seed = 1234;
 *     DURE_TRY(dataio_loader_open(&cfg, &ld));
 *     for (step ...) {
 *         struct dataio_batch b;
 *         DURE_TRY(dataio_loader_next(ld, &b));   // b.data: (local_batch, W, C)
 *         ...
 *     }
 *     dataio_loader_cursor(ld, &cur);              // into the checkpoint
 *     dataio_loader_close(ld);
 */
#ifndef DURE_DATAIO_LOADER_H
#define DURE_DATAIO_LOADER_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "dataio/reader.h"

/* What to do with windows that hold a NaN or Inf (job spec data.on_nan). */
typedef enum {
    DATAIO_NAN_REFUSE = 0, /* fail with DURE_ERR_FORMAT (exit code 4: bad
                              data), naming file, dataset, episode, timestep,
                              channel (at open when statistics know the rows;
                              else when the batch is read) */
    DATAIO_NAN_SKIP,       /* leave such windows out of the index (every rank
                              agrees which, so the order stays global) */
} dataio_nan_t;

/* One dataset of a mixture (dataio_loader_config.sources). */
struct dataio_source {
    const char *name;          /* [data.NAME]: names it in metrics and messages */
    const char *path;          /* file or glob */
    dataio_layout_t layout;    /* AUTO = from the file */
    const char *keys;          /* channels (robomimic/episode-files) */
    double weight;             /* > 0 */
    /* It has its own validation data (data.NAME.val_path): nothing is held
     * out of it (val_fraction does not apply), and a validation loader
     * given that file as path reads all of it (split ALL). */
    int own_val;
    /* Normalize with these (C_d) instead of the dataset's statistics (e.g.
     * the training loader's dataio_loader_source_norm); NULL = its own. */
    const float *norm_mean, *norm_std;
};

struct dataio_loader_config {
    /* A mixture: n_sources datasets in sources (copied at open), and then
     * path, layout, keys, norm_mean and norm_std below are not used. With
     * n_sources 0 they describe the one dataset. */
    int n_sources;
    const struct dataio_source *sources;
    double balance_alpha;      /* data.balance_alpha, in [0, 1] */
    double sample_rate_hz;     /* data.sample_rate_hz; 0 = the first dataset's */
    /* The channels of the batches (e.g. the training loader's, for a
     * validation loader of one of its datasets); NULL = the union of the
     * datasets'. A dataset channel not among them is an error. */
    const char *const *channel_names;
    int n_channel_names;
    const char *path;          /* data.path (a glob for episode-files) */
    dataio_layout_t layout;    /* data.layout; AUTO = from the file */
    const char *keys;          /* data.keys (robomimic/episode-files); see reader.h */
    dataio_split_t split;      /* TRAIN, VAL, or ALL (e.g. for data.val_path) */
    /* data.val_fraction: where the dataset defines no split, hold out this
     * share of its episodes for validation (dataio_reader_hold_out with
     * DATAIO_SPLIT_SEED); 0 = none. Give TRAIN and VAL loaders the same. */
    double val_fraction;
    int window;                /* W timesteps per window, >= 1 */
    int stride;                /* timesteps between window starts; 0 = W */
    int global_batch;          /* B windows per call summed over all ranks;
                                  must be a multiple of the world size */
    /* Ranks. With comm != MPI_COMM_NULL, rank and world size come from it
     * and dataio_loader_open/close are collective over it. With
     * MPI_COMM_NULL, `rank` and `world_size` are used as given (tests and
     * tools that emulate ranks in one process; io must then be SERIAL). */
    MPI_Comm comm;
    int rank, world_size;
    uint64_t seed;             /* run.seed */
    int shuffle;               /* data.shuffle: 1 = permute each epoch */
    int prefetch;              /* data.prefetch: batches read ahead, >= 1 */
    int normalize;             /* data.normalize: (x - mean) / std per channel */
    dataio_nan_t on_nan;       /* data.on_nan */
    dataio_io_t io;            /* data.io; AUTO = the measured default */
    int expect_channels;       /* model.channels; 0 = take them from the data */
    /* Normalize with these (C) instead of the file's statistics, e.g. a
     * validation loader with the training loader's dataio_loader_norm, or
     * values from a checkpoint. NULL = the file's stored /stats, else one
     * streamed pass over the training split at open. Copied at open. */
    const float *norm_mean, *norm_std;
    /* Optional allocator for the batch buffers (e.g. pinned host memory for
     * GPU copies); NULL = aligned_alloc. Called only in open, freed in close. */
    void *(*buf_alloc)(size_t bytes, void *ctx);
    void (*buf_free)(void *p, void *ctx);
    void *buf_ctx;
};

/* Defaults as in the job spec: layout auto, split train, stride = window,
 * comm MPI_COMM_NULL (rank 0 of 1), seed 1234, shuffle 1, prefetch 4,
 * normalize 1, on_nan refuse, io auto, expect_channels 0, no allocator.
 * path, window and global_batch must still be set. */
void dataio_loader_config_init(struct dataio_loader_config *cfg);

/*
 * One batch, handed out by dataio_loader_next. Every pointer is owned by
 * the loader and valid until the next call to dataio_loader_next,
 * dataio_loader_set_cursor or dataio_loader_close on this loader; the
 * caller may modify data in place (e.g. to move it to a device).
 */
struct dataio_batch {
    float *data;              /* (local_batch, W, C) float32, row-major; a
                                 channel its dataset lacks is 0 */
    const float *mask;        /* (local_batch, C) 1 = the window's dataset has
                                 the channel, 0 = not (its values are 0) */
    const int *source;        /* (local_batch) dataset of each window */
    const int64_t *episode;   /* (local_batch) episode of each window (in its
                                 dataset) */
    const int64_t *start;     /* (local_batch) first timestep of each window
                                 within its episode */
    int64_t epoch;            /* epoch of this batch */
    int64_t position;         /* global position of the batch's first window
                                 in the epoch (a multiple of B unless the
                                 cursor was set otherwise) */
    int local_batch;          /* B / world_size */
    int window;               /* W */
    int channels;             /* C */
};

/* Resume point: the batch that the next dataio_loader_next returns starts
 * at global position `position` of epoch `epoch`. The same on every rank,
 * and meaningful for any world size (the order is global). */
struct dataio_cursor {
    int64_t epoch;
    int64_t position;
};

/* Counters since open (per rank). */
struct dataio_loader_stats {
    double wait_s;          /* time dataio_loader_next blocked for data */
    double read_s;          /* time spent reading + converting (all threads) */
    uint64_t bytes_read;    /* bytes fetched from files */
    uint64_t batches;       /* batches returned by dataio_loader_next */
    uint64_t windows;       /* windows in them (this rank) */
};

typedef struct dataio_loader dataio_loader_t;

/*
 * Open the dataset, build the window index of the split, load or compute
 * normalization statistics (the file's stored /stats, else one streamed
 * pass over the split shared among the ranks), allocate the batch buffers
 * and start the prefetch thread at cursor (0, 0). Collective over cfg->comm:
 * if any rank fails, every rank returns an error (the failing rank logs the
 * cause). Errors name the file, dataset and problem: everything the reader
 * refuses, plus a channel count that does not match expect_channels, no
 * window (all episodes shorter than W), fewer windows than one global
 * batch, B not a multiple of the world size, NaN/Inf under REFUSE when the
 * stored stats know of them, ranks that see different datasets. Episodes
 * shorter than W are skipped with one warning. On success *out owns
 * everything and cfg's strings are no longer referenced.
 */
dure_status_t dataio_loader_open(const struct dataio_loader_config *cfg,
                                 dataio_loader_t **out);

/*
 * The next batch of this rank. If the prefetch thread has it ready, returns
 * at once; otherwise reads a batch on the caller's thread rather than
 * sleeping (its own, or a later one while the thread finishes this one).
 * *batch is filled with pointers owned by the loader (see struct
 * dataio_batch for how long they live). On a read error returns the status
 * with the message logged on the caller's thread: DURE_ERR_IO for I/O,
 * DURE_ERR_FORMAT for bad data (NaN/Inf under REFUSE, naming file,
 * episode, timestep and channel; a truncated file). The loader can then
 * only be closed or given a new cursor. Call next, cursor and set_cursor
 * from one thread.
 */
dure_status_t dataio_loader_next(dataio_loader_t *ld, struct dataio_batch *batch);

/* Cursor of the batch the next call to dataio_loader_next will return. */
void dataio_loader_cursor(const dataio_loader_t *ld, struct dataio_cursor *cur);

/*
 * Restart at *cur (from a checkpoint, possibly written with another world
 * size): drops the prefetched batches and restarts prefetching there. A
 * position past the last full batch of the epoch means the next epoch.
 * DURE_ERR_ARG for a negative epoch or position. Invalidates the last batch.
 */
dure_status_t dataio_loader_set_cursor(dataio_loader_t *ld,
                                       const struct dataio_cursor *cur);

/* Shape and content of the batches; pointers valid until close. Channels
 * are the union's (units: the first dataset's that has the channel). */
int dataio_loader_channels(const dataio_loader_t *ld);
const char *const *dataio_loader_channel_names(const dataio_loader_t *ld);
const char *const *dataio_loader_channel_units(const dataio_loader_t *ld);
int dataio_loader_local_batch(const dataio_loader_t *ld);
int64_t dataio_loader_windows(const dataio_loader_t *ld);      /* N, all datasets */
int64_t dataio_loader_batches_per_epoch(const dataio_loader_t *ld);

/* Datasets of the loader (1 without a mixture), and of each: its name
 * ("data" for a single dataset given by path), description (reader.h),
 * windows n_d, windows per epoch c_d, share s_d. */
int dataio_loader_sources(const dataio_loader_t *ld);
const char *dataio_loader_source_name(const dataio_loader_t *ld, int d);
const struct dataio_dataset_info *dataio_loader_source_info(const dataio_loader_t *ld,
                                                             int d);
int64_t dataio_loader_source_windows(const dataio_loader_t *ld, int d);
int64_t dataio_loader_source_per_epoch(const dataio_loader_t *ld, int d);
double dataio_loader_source_share(const dataio_loader_t *ld, int d);

/* Per-channel mean and std (C_d, the dataset's own channels) used to
 * normalize dataset d (the identity, mean 0 and std 1, when normalize is
 * off); for de-normalizing predictions and for validation loaders.
 * dataio_loader_norm: dataset 0's. */
void dataio_loader_source_norm(const dataio_loader_t *ld, int d, const float **mean,
                               const float **std);
void dataio_loader_norm(const dataio_loader_t *ld, const float **mean,
                        const float **std);

/* Dataset 0's description (reader.h); valid until close. */
const struct dataio_dataset_info *dataio_loader_info(const dataio_loader_t *ld);

void dataio_loader_stats(const dataio_loader_t *ld, struct dataio_loader_stats *out);

/* Stop the prefetch thread, close the files, free everything. Collective
 * over the open's comm when io is MPIIO. ld may be NULL. */
void dataio_loader_close(dataio_loader_t *ld);

#endif
