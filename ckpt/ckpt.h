/*
 * ckpt/ckpt.h - sharded training checkpoints in HDF5.
 *
 * One checkpoint is one HDF5 file, dir/ckpt-<step, 8 digits>.h5, holding the
 * whole flat state of a run whatever its world size:
 *
 *   /params     float32 [N]  fp32 master weights
 *   /adam_m     float32 [N]  AdamW first moment
 *   /adam_v     float32 [N]  AdamW second moment
 *   /checksums  uint32 [3, B] CRC-32C of each block of 1 Mi elements of the
 *                            three, in that order (ckpt_sum.h)
 *   root attributes          struct ckpt_meta, field by field, plus
 *                            format = "dure-checkpoint", format_version = 2,
 *                            dure_version
 *
 * Format version 2 stores the datasets contiguously, without an HDF5
 * filter, so that each byte is written once: HDF5 1.10 under MPI-IO writes
 * fill values into every chunk of a filtered dataset at creation, and
 * filtered parallel writes are slow (measured here: a version 1 save reached
 * 0.39-0.52x `dd conv=fsync`). Every read checks the blocks it touches
 * against /checksums. Version 1 files (chunked, HDF5's Fletcher32 filter on
 * every chunk, no /checksums) are still read and verified.
 *
 * The save: rank 0 creates the file with serial HDF5 (attributes, datasets
 * allocated but not written: ckh5_skeleton_create) and reserves its space;
 * then each rank writes its own contiguous shard [offset, offset + len) of
 * the three datasets with pwrite at their offsets in the file, sums its
 * pieces of the checksum blocks, and rank 0 joins and writes them. A rank
 * that holds the whole vector (zero_stage 0) passes a pointer to its shard's
 * first element. No HDF5 call touches the numbers, so a helper thread can
 * write them (ckpt/async.h) while HDF5 is used elsewhere. Loading reads any
 * [offset, offset + len) with parallel HDF5, so a run can resume on a
 * different world size: the caller re-cuts the shards. The checkpoint
 * directory must be one file system that every rank sees coherently (local,
 * Lustre, GPFS, or NFS with close-to-open consistency).
 *
 * Integrity beyond the block sums: after the file is complete its SHA-256 is
 * written to dir/ckpt-<step>.h5.sha256 in `sha256sum` format (a file cannot
 * contain its own hash; the sidecar can be checked with `sha256sum -c` from
 * dir, with no dure at hand). SHA-256 rather than a 64-bit hash because
 * checkpoints are evidence for reproduced runs and must resist more than
 * accidental corruption; with the CPU's SHA extensions (through libcrypto)
 * it runs at about 2 GB/s, several times the disk's write bandwidth.
 *
 * The save protocol, so that nothing is ever overwritten in place and a crash
 * at any point leaves the previous checkpoint valid:
 *   1. rank 0 creates ckpt-<step>.h5.tmp and reserves its space; all ranks
 *      write their shards and the checksums into it;
 *   2. each rank fsyncs its own writes while one rank computes the file's
 *      SHA-256 (ranks on other nodes than rank 0 flush first, so the hasher
 *      sees their bytes);
 *   3. write the sidecar (temp name, fsync, rename), then rename the .tmp to
 *      ckpt-<step>.h5, fsync the directory (a sidecar with no .h5, or an .h5
 *      whose sidecar does not match, is never taken for a valid checkpoint);
 *   4. write dir/latest (one line: the file name) under a temp name, fsync,
 *      rename, fsync the directory;
 *   5. delete checkpoints older than the newest `keep`, and stale temp files.
 * Every step's outcome is agreed by all ranks before the next one starts, so
 * a failure on any rank (a full disk, say) fails the save on every rank with
 * the same status, and removes the partial temp file. The file's space is
 * reserved (fallocate) before any data is written, so that running out of
 * space fails at once, on rank 0, rather than part way through one rank's
 * writes.
 *
 * How `dure run` uses it (sh = comm_shard_of(N, size, rank)):
 *   start    ckpt_find_latest_valid(world, dir, path, cap, &meta, &found);
 *            if found: ckpt_load(world, path, model, N, &meta, w + off,
 *            m + off, v + off, off, len) with [off, off + len) = sh, or
 *            [0, N) on every rank for zero_stage 0; then restore the step,
 *            opt_step, loader cursor (epoch, position) and RNG words, and
 *            compare config_hash with the job spec's RESULT hash.
 *   save     every [checkpoint] every steps, and at the step boundary where
 *            any rank has seen SIGUSR2/SIGTERM (a flag set by the handler,
 *            OR-reduced over the ranks at each boundary; never call ckpt_save
 *            from a handler): ckpt_save(world, dir, &meta, w + off, m + off,
 *            v + off, off, len, keep, &io), print io.total_s, then exit
 *            DURE_EXIT_PREEMPTED (75) after a signal.
 * For a bitwise-exact resume, meta must carry everything the next step
 * reads besides the tensors: with the same world size the state after load
 * is the state that was saved, bit for bit.
 */
#ifndef DURE_CKPT_CKPT_H
#define DURE_CKPT_CKPT_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define CKPT_FORMAT "dure-checkpoint"
#define CKPT_FORMAT_VERSION 2
#define CKPT_RNG_MAX 8     /* uint64 words of RNG state a checkpoint can carry */
#define CKPT_MODEL_MAX 256 /* bytes of the model shape string, with its NUL */
#define CKPT_PATH_MAX 4096

/*
 * Everything but the tensors. The same on every rank: ckpt_save checks that
 * all ranks pass identical metadata and fails with DURE_ERR_INTERNAL if not.
 */
struct ckpt_meta {
    uint64_t step;     /* training steps completed; resume runs step `step` next */
    uint64_t opt_step; /* AdamW bias-correction counter t (differs from step when
                        * on_nan = skip dropped updates) */
    double lr;         /* learning rate applied at the last completed step */
    double loss;       /* training loss of the last completed step (NaN: unknown) */
    uint64_t epoch;    /* loader cursor: epochs completed */
    uint64_t position; /* loader cursor: windows of the current epoch consumed by
                        * all ranks together (independent of the world size) */
    uint32_t n_rng;    /* words used in rng[], 0..CKPT_RNG_MAX */
    uint64_t rng[CKPT_RNG_MAX]; /* global RNG state (identical on every rank) */
    uint64_t seed;              /* [run] seed the run started with */
    uint64_t config_hash;       /* hash of the resolved job spec, computed by the caller */
    uint32_t world_size;        /* ranks that wrote it (set by ckpt_save; informational) */
    uint32_t zero_stage;        /* [parallel] zero_stage of the writer (informational) */
    uint64_t n_params;          /* N, the length of /params, /adam_m and /adam_v */
    /* Model shape, e.g. "d_model=128 n_layers=4 n_heads=4 patch_len=16
     * context_patches=16 channels=6"; compared verbatim on load. */
    char model[CKPT_MODEL_MAX];
};

/* Timings and volume of one save or load, as this rank saw them. */
struct ckpt_io_stats {
    double total_s; /* wall time of the whole call */
    double write_s; /* file layout, data and checksum writes (load: open/read/close) */
    double sync_s;  /* fsync of the file and the directory (save only) */
    double hash_s;  /* SHA-256 of the whole file */
    uint64_t bytes; /* size of the checkpoint file */
};

/*
 * Write dir/ckpt-<meta->step>.h5 with the protocol above. Collective over
 * `comm`: every rank calls it with the same dir, meta and keep.
 *
 * params, adam_m, adam_v: this rank's shard, [len] floats each, elements
 * [offset, offset + len) of the full vectors of meta->n_params floats. The
 * shards of all ranks must tile [0, N) exactly (checked; len may be 0).
 * Read only; the caller keeps ownership. dir must exist.
 * keep: newest checkpoints to keep after this one is in place (>= 1), or 0
 * to keep all. An existing checkpoint of the same step is replaced by rename,
 * never rewritten. stats may be NULL.
 * On failure every rank returns the same non-OK status, no temp file is left,
 * and the previous checkpoints and `latest` are untouched.
 */
dure_status_t ckpt_save(MPI_Comm comm, const char *dir, const struct ckpt_meta *meta,
                        const float *params, const float *adam_m, const float *adam_v,
                        size_t offset, size_t len, int keep, struct ckpt_io_stats *stats);

/*
 * Read a checkpoint written by ckpt_save. Collective over `comm` (any size,
 * not necessarily the writer's): every rank passes the same path and
 * expectations and its own [offset, offset + len).
 *
 * expect_model, expect_n: the model this run built; a checkpoint of another
 * shape fails with DURE_ERR_FORMAT naming both shapes. expect_model NULL
 * skips the check (tools). meta_out receives the metadata (may be NULL).
 * params, adam_m, adam_v: caller-owned [len] floats; adam_m/adam_v may be
 * NULL to skip the moments (evaluation). Every block read is checked against
 * its CRC-32C (version 1 files: every chunk against its Fletcher32): a
 * damaged one fails with DURE_ERR_FORMAT naming the file, dataset and block. The content hash is not checked here (see
 * ckpt_find_latest_valid and ckpt_verify). stats may be NULL.
 */
dure_status_t ckpt_load(MPI_Comm comm, const char *path, const char *expect_model,
                        uint64_t expect_n, struct ckpt_meta *meta_out, float *params,
                        float *adam_m, float *adam_v, size_t offset, size_t len,
                        struct ckpt_io_stats *stats);

/*
 * Find the newest valid checkpoint in dir, for automatic resume. Collective
 * over `comm`: rank 0 does the work and broadcasts the answer.
 *
 * Candidates are the files ckpt-<step>.h5, newest step first. One is valid
 * when its sidecar exists and matches the file's SHA-256 and its metadata
 * reads back with the expected format. A candidate that is not valid is
 * reported (a warning naming the file and what is wrong) and the next older
 * one is tried; a `latest` pointer that disagrees with the result is
 * reported too.
 *
 * *found = 1 and path (capacity cap) and meta_out (may be NULL) filled when
 * one is valid; *found = 0 with DURE_OK when dir holds no checkpoint at all
 * (or does not exist): a fresh start. When checkpoints exist but none is
 * valid, returns DURE_ERR_FORMAT: silently restarting from step 0 would
 * throw the run away.
 */
dure_status_t ckpt_find_latest_valid(MPI_Comm comm, const char *dir, char *path, size_t cap,
                                     struct ckpt_meta *meta_out, int *found);

/*
 * Read only the metadata of a checkpoint (serial: no MPI needed). Checks the
 * format attributes; DURE_ERR_FORMAT naming the file when they are wrong.
 */
dure_status_t ckpt_read_meta(const char *path, struct ckpt_meta *meta);

/* What ckpt_verify found; one field per check. */
struct ckpt_verify_report {
    int meta_ok;         /* format attributes and metadata read back */
    int datasets_ok;     /* every block of every dataset passed its checksum */
    int hash_present;    /* the .sha256 sidecar exists and parses */
    int hash_ok;         /* and matches the file's SHA-256 */
    char sha256[65];     /* the file's SHA-256, lowercase hex */
    char problems[2048]; /* every problem found, one per line; "" when none */
};

/*
 * Check one checkpoint file completely (serial): metadata, a full read of
 * every dataset with its block checksums verified, and the SHA-256 against the
 * sidecar. Returns DURE_OK only when everything holds; otherwise the report
 * says what failed (each problem names the file and the dataset or check), and
 * the status is DURE_ERR_IO for a missing or unreadable file and
 * DURE_ERR_FORMAT for damaged contents. report may not be NULL.
 */
dure_status_t ckpt_verify(const char *path, struct ckpt_verify_report *report);

#define CKPT_N_DATASETS 3
/* "params", "adam_m", "adam_v": the dataset names, in this order. */
extern const char *const ckpt_dataset_names[CKPT_N_DATASETS];

/* How one dataset is stored. */
struct ckpt_dataset_info {
    uint64_t n;             /* float32 elements */
    uint64_t chunk;         /* elements per chunk (version 1); 0 when contiguous */
    int fletcher32;         /* 1 when the Fletcher32 filter is in its pipeline (version 1) */
    uint64_t sum_block;     /* elements per CRC-32C block in /checksums (version 2); 0 if none */
    uint64_t storage_bytes; /* bytes it takes in the file, checksums included */
};

/*
 * Metadata and dataset layout of a checkpoint, without reading the data
 * (serial). For `dure ckpt inspect`.
 */
dure_status_t ckpt_describe(const char *path, struct ckpt_meta *meta,
                            struct ckpt_dataset_info info[CKPT_N_DATASETS]);

/* 1 when the two metadata records are identical field by field (bitwise for
 * the doubles, up to the NUL for the model string). */
int ckpt_meta_equal(const struct ckpt_meta *a, const struct ckpt_meta *b);

/*
 * Read elements [offset, offset + len) of dataset `which` (0 params, 1 adam_m,
 * 2 adam_v) into buf[len] (serial; checksums checked). For tools that
 * compare or export checkpoints.
 */
dure_status_t ckpt_read_dataset(const char *path, int which, uint64_t offset, size_t len,
                                float *buf);

/*
 * Steps of the checkpoint files (ckpt-<step>.h5) in dir, newest first, in a
 * malloc'ed array (*steps, *n; the caller frees it). A missing dir gives n = 0.
 * Lists names only: validity is ckpt_find_latest_valid's business.
 */
dure_status_t ckpt_list_steps(const char *dir, uint64_t **steps, size_t *n);

/* dir/ckpt-<step 8 digits>.h5 into buf; DURE_ERR_ARG if it does not fit. */
dure_status_t ckpt_path(const char *dir, uint64_t step, char *buf, size_t cap);

#endif
