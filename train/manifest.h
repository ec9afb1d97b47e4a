/*
 * train/manifest.h - the run manifest: RUN_DIR/manifest.json, written at
 * the start of every launch of a run, the record that lets a national lab
 * prove what ran and reproduce it (`dure verify`).
 *
 * {
 *   "format": "dure-run-manifest", "format_version": 1,
 *   "created_at": "2026-11-20T09:14:03Z",        (UTC, differs between runs)
 *   "run_dir": "/abs/runs/demo",                  (differs between runs)
 *   "launch": 0,                                   (0 first start, k-th restart)
 *   "resumed_from": {"checkpoint": ".../ckpt-00000100.h5", "step": 100} | null,
 *   "command": "dure run job.ini --set ...",
 *   "dure": {"version": "0.1.0", "git": "2661bf39b535"},
 *   "libraries": {"mpi": .., "hdf5": .., "openblas": .., "nccl": ..,
 *                 "cuda_runtime": .., "cuda_driver": .., "gpu_code": ..},
 *   "world": {"size": 2, "nodes": 1, "ranks_per_node": [2],
 *             "hosts": [{"name": "node01", "leader": 0, "ranks": [0, 1],
 *                        "local_ranks": [0, 1]}]},          (nodes by lowest rank)
 *   "backend": "mpi", "algorithms": {"allreduce": "ring", ...},
 *   "seed": 1234, "deterministic": true,
 *   "jobspec_hash": "9f3c...", "jobspec": {"run.name": "demo", ...},
 *   "dataset": {"fingerprint": {"algorithm": "sha256", "mode": "full",
 *               "value": "<hex>"}, "bytes": N,
 *               "files": [{"path": .., "bytes": .., "sha256": ..}]}
 * }
 *
 * The first launch writes manifest.json; a restart (resume) never rewrites
 * it but writes manifest.launch-<k>.json beside it, so the record of the
 * original start stays as it was. Both are written atomically (temp file,
 * fsync, rename).
 */
#ifndef DURE_TRAIN_MANIFEST_H
#define DURE_TRAIN_MANIFEST_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sha256.h"
#include "common/status.h"
#include "common/topo.h"

#define MANIFEST_FORMAT "dure-run-manifest"
#define MANIFEST_FORMAT_VERSION 1

/* One "name": "value" pair, both caller-owned text. */
struct manifest_kv {
    const char *key;
    const char *value;
};

/*
 * How the dataset is fingerprinted:
 *   FULL     SHA-256 of every byte of every file (streamed, 1 MiB blocks).
 *   SAMPLED  per file: SHA-256 of its size (8 bytes, little-endian) followed
 *            by MANIFEST_SAMPLE_BLOCKS blocks of MANIFEST_SAMPLE_BYTES at
 *            evenly spaced offsets from the first byte to the last (the whole
 *            file when smaller than that). Detects a changed size and most
 *            rewrites, NOT a change confined between sampled blocks: the
 *            manifest then says "mode": "sampled-64x1MiB".
 *   AUTO     FULL for data up to MANIFEST_FULL_MAX_BYTES in all, SAMPLED
 *            above (at about 2 GB/s, 16 GiB takes some 8 s at start).
 */
enum manifest_fp_mode { MANIFEST_FP_AUTO, MANIFEST_FP_FULL, MANIFEST_FP_SAMPLED };
#define MANIFEST_SAMPLE_BLOCKS 64
#define MANIFEST_SAMPLE_BYTES (1u << 20)
#define MANIFEST_FULL_MAX_BYTES (16ull << 30)

struct manifest_fingerprint {
    char mode[32];               /* "full" or "sampled-64x1MiB" */
    char value[DURE_SHA256_HEX]; /* SHA-256 over the files' lines, see below */
    uint64_t bytes;              /* total size of the files */
};

/*
 * Fingerprint the dataset files paths[n] (n >= 1; several for file-per-episode
 * layouts). Each file gets a SHA-256 (full or sampled); `value` is the
 * SHA-256 of the lines "<hex>  <path>\n" in the given order, so a renamed or
 * reordered set differs too. file_hex (may be NULL) receives each file's
 * digest, [n]. A missing file is DURE_ERR_IO naming it.
 */
dure_status_t manifest_fingerprint(const char *const *paths, size_t n,
                                   enum manifest_fp_mode mode,
                                   struct manifest_fingerprint *fp,
                                   char (*file_hex)[DURE_SHA256_HEX]);

/* What the run knows at start; every pointer caller-owned, NULL where noted. */
struct manifest_info {
    const char *run_dir; /* the run directory (must exist) */
    const char *command; /* command line as typed; NULL: omitted */
    /* The resolved job spec, "section.key" -> value text, [n_jobspec]. */
    const struct manifest_kv *jobspec;
    size_t n_jobspec;
    /* E.g. jobspec_hash_hex of the ALL scope; NULL: omitted. */
    const char *jobspec_hash;
    /* Dataset files, [n_data_paths] (n may be 0), and how to fingerprint them. */
    const char *const *data_paths;
    size_t n_data_paths;
    enum manifest_fp_mode fp_mode;
    /* "nccl" or "mpi", and e.g. {"allreduce", "ring"}, {"algo_table", ...}. */
    const char *backend;
    const struct manifest_kv *algorithms;
    size_t n_algorithms;
    uint64_t seed;
    int deterministic;
    /* Checkpoint this launch resumed from and its step; NULL on a fresh start. */
    const char *resumed_from;
    uint64_t resumed_step;
    /* The world's topology (dure_topo_gather over the same comm); NULL:
     * manifest_write gathers it, local ranks numbered by host. */
    const struct dure_topo *topo;
};

/*
 * Write the manifest of this launch. Collective over `comm` (the run's world):
 * every rank reports its host name (unless info->topo is given), rank 0
 * fingerprints the dataset and
 * writes the file, and every rank returns rank 0's status. path (capacity
 * cap, may be NULL) receives the file's path, on every rank.
 */
dure_status_t manifest_write(MPI_Comm comm, const struct manifest_info *info, char *path,
                             size_t cap);

#endif
