/*
 * ckpt/ckpt_files.h - the checkpoint directory protocol (internal to
 * ckpt/ckpt*.c): file names, the SHA-256 sidecar, the `latest` pointer,
 * durable renames and pruning. All of it is plain POSIX on one process
 * (rank 0 of a save); ckpt/ckpt.c does the HDF5 and MPI parts.
 */
#ifndef DURE_CKPT_CKPT_FILES_H
#define DURE_CKPT_CKPT_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "common/sha256.h"
#include "common/status.h"

/* "<path>.sha256": the sidecar of a checkpoint file. */
dure_status_t ckpt_sidecar_path(const char *path, char *buf, size_t cap);

/* Parse "name" out of "dir/name". Never fails: returns a pointer into path. */
const char *ckpt_basename(const char *path);

/*
 * Step of a checkpoint file name "ckpt-DDDDDDDD.h5" (exactly; digits may be
 * more than 8 for steps >= 10^8). 1 and *step when it matches, else 0.
 */
int ckpt_name_step(const char *name, uint64_t *step);

/* fsync a directory, so that renames and unlinks in it are durable. */
dure_status_t ckpt_fsync_dir(const char *dir);

/*
 * Write `text` to path durably and atomically: path.tmp (created exclusively
 * after removing a stale one), fsync, rename over path. No fsync of the
 * directory (the caller batches it).
 */
dure_status_t ckpt_write_atomic(const char *path, const char *text);

/* Write the sidecar of `path` with its hex digest, in sha256sum format. */
dure_status_t ckpt_sidecar_write(const char *path, const char hex[DURE_SHA256_HEX]);

/*
 * Read the sidecar of `path` into hex. DURE_ERR_IO when it is missing (the
 * message names it), DURE_ERR_FORMAT when it does not hold a digest for the
 * file's name.
 */
dure_status_t ckpt_sidecar_read(const char *path, char hex[DURE_SHA256_HEX]);


/*
 * After saving step `saved`: delete older checkpoints beyond the newest
 * `keep` (0 keeps all) and stale temp files. Files of steps above `saved`
 * (left by a run that was resumed from an older checkpoint) are neither
 * counted nor deleted. Failures are warnings: the save itself is complete.
 */
void ckpt_prune(const char *dir, uint64_t saved, int keep);

#endif
