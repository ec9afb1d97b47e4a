/*
 * ckpt/async.h - checkpoints written by a helper thread while training goes on.
 *
 * ckpt_async_start copies this rank's shard of the state (params, adam_m,
 * adam_v) into a snapshot buffer allocated once at create, and hands
 * ckpt_save of that snapshot to the rank's helper thread; the training step
 * continues at once. The helper runs the same save as the synchronous path
 * (ckpt.h: temp file, fsync, SHA-256 sidecar, rename, `latest`), on its own
 * duplicate of the communicator, so publication stays atomic under every
 * fault: a crash mid-save leaves the previous checkpoint valid.
 *
 * At most one save is in flight: starting the next one (or ckpt_async_wait)
 * first waits for the previous one and returns its status, which is the
 * same on every rank (ckpt_save agrees on it). A failed background save
 * thus surfaces at the next checkpoint, at the end of the run, or at a stop
 * signal, on every rank at the same step.
 *
 * Threads: the helper calls MPI (the world must provide
 * MPI_THREAD_MULTIPLE) and HDF5 (rank 0 lays the file out). HDF5 is not
 * thread-safe here: while a save is in flight no other thread may call
 * HDF5. dure's training loop reads data without HDF5 (dataio/loader.h) and
 * makes every other checkpoint call through this object, which waits first.
 * The helper runs at a lower CPU priority (nice +10) than the training
 * threads, so on a busy node it yields to them.
 *
 * Memory: 3 * cap floats of snapshot, where cap is the largest shard the
 * rank will save (its ZeRO shard).
 */
#ifndef DURE_CKPT_ASYNC_H
#define DURE_CKPT_ASYNC_H

#include <mpi.h>
#include <stddef.h>

#include "common/status.h"
#include "ckpt/ckpt.h"

typedef struct ckpt_async ckpt_async_t;

/*
 * Duplicate `comm`, allocate the snapshot of 3 * cap floats, start the
 * helper thread. Collective over comm; the same status on every rank.
 */
dure_status_t ckpt_async_create(MPI_Comm comm, size_t cap, ckpt_async_t **out);

/*
 * Wait for the save in flight, then start saving this state in the
 * background. Arguments as ckpt_save (dir copied; the vectors are copied
 * before it returns, so the caller may change them at once); len <= cap.
 * Returns the status of the previous save (DURE_OK when there was none)
 * and, when it failed, does not start this one. Collective: every rank calls
 * it at the same step. *stall_s (may be NULL) receives the time the caller
 * was held: the wait for the previous save plus the copy.
 */
dure_status_t ckpt_async_start(ckpt_async_t *a, const char *dir, const struct ckpt_meta *meta,
                               const float *params, const float *adam_m, const float *adam_v,
                               size_t offset, size_t len, int keep, double *stall_s);

/*
 * Wait for the save in flight, if any. Its status (the same on every rank),
 * its step (*step, may be NULL) and timings (*io, may be NULL). Returns
 * DURE_OK with *step = 0 when nothing was in flight; a result is returned
 * once.
 */
dure_status_t ckpt_async_wait(ckpt_async_t *a, uint64_t *step, struct ckpt_io_stats *io);

/*
 * Without waiting: 1 when a save finished successfully and its result is
 * ready for ckpt_async_wait (which then returns at once), else 0. Local:
 * ranks may see the same save finish at different steps. A failed save
 * reads 0 here and is left for the next ckpt_async_start or wait, which
 * every rank reaches at the same step.
 */
int ckpt_async_done(ckpt_async_t *a);

/*
 * Stop the helper after any save in flight has finished (its status is
 * lost: wait first to see it) and free everything. Collective (the
 * duplicate communicator is freed). NULL is a no-op.
 */
void ckpt_async_destroy(ckpt_async_t *a);

#endif
