/*
 * tests/support/collcheck.h - inputs and expected values for the tests of
 * dure's collectives (tests/mpi/test_coll.c, test_coll_hier.c).
 *
 * The inputs are small integers, so sums over up to 32 ranks are exact in
 * float whatever the order: any wrong element, offset or order of pieces
 * shows as a wrong value.
 */
#ifndef DURE_TESTS_COLLCHECK_H
#define DURE_TESTS_COLLCHECK_H

#include <stddef.h>

#include "collectives/comm.h"

/* Rank r's input at global index i: an integer in [-8, 8]. */
float collcheck_pat(int r, size_t i);
/* x[i] = collcheck_pat(r, i), i < n. */
void collcheck_fill(float *x, size_t n, int r);
/* The reduction over ranks 0..size-1 at index i (sum, or sum / size). */
float collcheck_reduced(int size, size_t i, enum comm_redop op);
/* The rank whose shard (comm_shard_of(n, size, rank)) holds index i; -1 none. */
int collcheck_owner(size_t n, int size, size_t i);

/* Compare got[k] with want_expr evaluated at i = first + k, k < n; print the
 * first mismatch of each kind and fail the cmocka test. */
#define COLLCHECK_RANGE(what, got, first, n, want_expr)                                \
    do {                                                                               \
        for (size_t k_ = 0; k_ < (n); k_++) {                                          \
            size_t i = (first) + k_;                                                   \
            float w_ = (want_expr);                                                    \
            if ((got)[k_] != w_) {                                                     \
                print_error("%s: element %zu: got %g, want %g\n", (what), i,           \
                            (double)(got)[k_], (double)w_);                            \
                fail();                                                                \
            }                                                                          \
        }                                                                              \
    } while (0)

#endif
