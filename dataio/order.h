/*
 * dataio/order.h - the windows of a split and their global order.
 *
 * Windows are numbered episode by episode (split episodes in file order),
 * starts 0, S, 2S, ... within each; windows that hold a non-finite row can
 * be excluded. Memory is O(episodes + excluded windows), never O(windows).
 * The order of epoch k is a keyed pseudo-random permutation of [0, N): a
 * balanced Feistel network on the next power of four with cycle walking,
 * so the i-th element is computed directly, without storing a table.
 */
#ifndef DURE_DATAIO_ORDER_H
#define DURE_DATAIO_ORDER_H

#include <stdint.h>

#include "common/status.h"
#include "dataio/reader.h"

struct dataio_windows {
    int64_t n;            /* N: windows in the order (after exclusion) */
    int64_t n_all;        /* windows before exclusion */
    int64_t window;       /* W timesteps */
    int64_t stride;       /* S timesteps */
    int64_t n_eps;        /* split episodes with at least one window */
    int64_t *ep;          /* (n_eps) their episode indices, ascending */
    int64_t *cum;         /* (n_eps + 1) windows before each of them */
    int64_t n_excl;
    int64_t *excl;        /* (n_excl) excluded window ids, ascending, unique */
    int64_t n_short;      /* split episodes shorter than W (no window) */
    int64_t first_short;  /* the first of them, or -1 */
};

/*
 * Index the windows of `split` (W, S >= 1). Windows holding any of the
 * n_bad global rows bad_rows (ascending; NULL when n_bad is 0) are
 * excluded. DURE_ERR_ARG when split is VAL and the file defines no split.
 */
dure_status_t dataio_windows_build(const struct dataio_dataset_info *info,
                                   dataio_split_t split, int64_t window, int64_t stride,
                                   const int64_t *bad_rows, int64_t n_bad,
                                   struct dataio_windows *out);
void dataio_windows_free(struct dataio_windows *w);

/* Window v in [0, N): its episode and first timestep. */
void dataio_windows_get(const struct dataio_windows *w, int64_t v, int64_t *episode,
                        int64_t *start);

/*
 * The validation episodes of E under a held-out fraction f in [0, 1):
 * n = round(f * E), at least 1 when f > 0, at most E - 1, the first n
 * elements of the permutation of [0, E) keyed by (seed, -1). *val is
 * malloc'd ((*n) entries, NULL when 0). dure data gen, dure data import
 * and the run-time split (data.val_fraction) all pick them so.
 */
dure_status_t dataio_val_episodes(int64_t n_episodes, double fraction, uint64_t seed,
                                  int64_t **val, int64_t *n);

/* The seed of held-out validation episodes at run time (data.val_fraction):
 * not run.seed, so that the runs of a seed sweep validate on the same
 * episodes; the default seed of dure data gen and import, so that they pick
 * the same episodes for the same fraction. */
#define DATAIO_SPLIT_SEED 1234

/* Most datasets in one mixture. */
#define DATAIO_MIX_MAX 64

/*
 * A mixture's composition: dataset d (of n <= DATAIO_MIX_MAX) has windows[d] windows and
 * weight[d] > 0; its share is weight x windows^alpha, normalized. An epoch
 * is total = sum windows positions; count[d] of them (the shares times
 * total, rounded by largest remainders, ties to the lower index) come from
 * d, in slots [first[d], first[d+1]). first has n + 1 entries. share may
 * be NULL.
 */
void dataio_mix_plan(int n, const int64_t *windows, const double *weight, double alpha,
                     int64_t *count, int64_t *first, double *share);

/*
 * Position p of an epoch of a mixture planned as above: its dataset *d and
 * the window *v of d (in [0, windows[d])). Shuffled: slot = perm(total,
 * (seed, epoch), p); d's j-th slot is window perm(windows[d], key of (seed,
 * d, epoch, j / windows[d]), j mod windows[d]). Not shuffled: slots in
 * order, windows in order. With one dataset this is the plain order:
 * v = perm(windows[0], (seed, epoch), p).
 */
void dataio_mix_locate(int n, const int64_t *windows, const int64_t *first, uint64_t seed,
                       int shuffle, int64_t epoch, int64_t p, int *d, int64_t *v);

/* The permutation key of an epoch. */
uint64_t dataio_perm_key(uint64_t seed, int64_t epoch);

/* Element i of the permutation of [0, n) under key (a bijection in i). */
int64_t dataio_perm(int64_t n, uint64_t key, int64_t i);

#endif
