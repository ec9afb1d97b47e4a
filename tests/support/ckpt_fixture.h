/*
 * tests/support/ckpt_fixture.h - helpers for the checkpoint tests: state
 * vectors whose every element is known from its index, shard layouts, temp
 * directories shared by the ranks, and file damage.
 */
#ifndef DURE_TESTS_CKPT_FIXTURE_H
#define DURE_TESTS_CKPT_FIXTURE_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt/ckpt.h"

/* Element i of state vector `which` (0 params, 1 adam_m, 2 adam_v) of a run
 * seeded `seed`: arbitrary bit patterns, every value distinct. */
float fx_value(uint64_t seed, int which, uint64_t i);

/* Fill buf[0..len) with elements [offset, offset+len) of vector `which`. */
void fx_fill(float *buf, uint64_t seed, int which, size_t offset, size_t len);

/* Index of the first element of buf that differs bitwise from the expected
 * values, or -1 when all match. */
long fx_mismatch(const float *buf, uint64_t seed, int which, size_t offset, size_t len);

/* Rank r of R's part of [0, n): the first n % R ranks get one more element. */
void fx_shard(size_t n, int r, int nranks, size_t *offset, size_t *len);

/* Metadata of a test model with n parameters at `step`. */
void fx_meta(struct ckpt_meta *m, uint64_t n, uint64_t step);

/* Collective: rank 0 creates a fresh directory under /tmp and every rank
 * gets its name (cap >= 64). */
void fx_tempdir(MPI_Comm comm, char *dir, size_t cap);

/* Collective: rank 0 removes dir and everything in it. */
void fx_rmtree(MPI_Comm comm, const char *dir);

/* Flip the bits of `count` bytes of the file starting `at` bytes from its
 * end (at > 0) or its start (at <= 0 means offset -at). Returns 0 on success. */
int fx_flip_bytes(const char *path, long at, size_t count);

/* Number of directory entries of dir whose name ends with suffix. */
int fx_count_suffix(const char *dir, const char *suffix);

#endif
