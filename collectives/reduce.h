/*
 * collectives/reduce.h - the host reduction kernels of the mpi backend.
 *
 * Plain loops the compiler vectorises (OpenMP simd); memory bound, so one
 * pass over the data is what matters: the kernels fuse the division of
 * COMM_AVG and an optional second destination into the same pass.
 * tests/unit/test_coll_reduce.c checks them against a scalar reference.
 */
#ifndef DURE_COLLECTIVES_REDUCE_H
#define DURE_COLLECTIVES_REDUCE_H

#include <stddef.h>

/*
 * dst[i] = ((src[0][i] + src[1][i]) + src[2][i]) + ... + src[nsrc-1][i],
 * summed in that order (the deterministic modes rely on it), then divided
 * by `divisor` when divisor > 1. dst2, when not NULL, receives the same
 * values. dst may alias any src element-for-element (in place); n elements.
 */
void comm_reduce_f32(float *dst, float *dst2, const float *const *src, int nsrc, size_t n,
                     int divisor);

/* dst[i] = a[i] + b[i] (then / divisor when divisor > 1); the two-source case
 * of comm_reduce_f32 without the pointer array. dst may alias a or b. */
void comm_reduce2_f32(float *dst, const float *a, const float *b, size_t n, int divisor);

#endif
