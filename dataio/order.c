/* dataio/order.c - see order.h. */
#include "dataio/order.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

dure_status_t dataio_val_episodes(int64_t n_episodes, double fraction, uint64_t seed,
                                  int64_t **val, int64_t *n)
{
    dure_status_t st = DURE_OK;
    int64_t k = llround(fraction * (double)n_episodes);
    *val = NULL;
    *n = 0;
    if (fraction > 0 && k == 0) {
        k = 1;
    }
    if (k >= n_episodes) {
        k = n_episodes - 1;
    }
    if (k <= 0) {
        goto out;
    }
    *val = malloc((size_t)k * sizeof **val);
    DURE_ALLOC_TRY(*val, (size_t)k * sizeof **val);
    uint64_t key = dataio_perm_key(seed, -1);
    for (int64_t i = 0; i < k; i++) {
        (*val)[i] = dataio_perm(n_episodes, key, i);
    }
    *n = k;
out:
    return st;
}

uint64_t dataio_perm_key(uint64_t seed, int64_t epoch)
{
    return splitmix64(seed ^ splitmix64((uint64_t)epoch + 0x5851f42d4c957f2dull));
}

/* Rounds: 6 rounds of a balanced Feistel network with a strong round
 * function are indistinguishable from random for this use. */
#define ROUNDS 6

void dataio_mix_plan(int n, const int64_t *windows, const double *weight, double alpha,
                     int64_t *count, int64_t *first, double *share)
{
    double sum = 0, w[DATAIO_MIX_MAX];
    int64_t total = 0, given = 0;
    for (int d = 0; d < n; d++) {
        w[d] = windows[d] > 0 ? weight[d] * pow((double)windows[d], alpha) : 0.0;
        sum += w[d];
        total += windows[d];
    }
    for (int d = 0; d < n; d++) {
        double exact = sum > 0 ? w[d] / sum * (double)total : 0.0;
        count[d] = (int64_t)floor(exact);
        given += count[d];
        if (share) {
            share[d] = sum > 0 ? w[d] / sum : 0.0;
        }
    }
    /* Largest remainders take what floor left over. */
    while (given < total) {
        int best = -1;
        double rem = -1;
        for (int d = 0; d < n; d++) {
            double r = w[d] / sum * (double)total - (double)count[d];
            if (w[d] > 0 && r > rem) {
                rem = r;
                best = d;
            }
        }
        count[best]++;
        given++;
    }
    first[0] = 0;
    for (int d = 0; d < n; d++) {
        first[d + 1] = first[d] + count[d];
    }
}

void dataio_mix_locate(int n, const int64_t *windows, const int64_t *first, uint64_t seed,
                       int shuffle, int64_t epoch, int64_t p, int *d, int64_t *v)
{
    uint64_t key = dataio_perm_key(seed, epoch);
    if (n == 1) {
        *d = 0;
        *v = shuffle ? dataio_perm(windows[0], key, p) : p;
        return;
    }
    int64_t slot = shuffle ? dataio_perm(first[n], key, p) : p;
    int lo = 0, hi = n - 1;
    while (lo < hi) { /* the dataset whose slots hold `slot` */
        int mid = (lo + hi + 1) / 2;
        if (first[mid] <= slot) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    int64_t j = slot - first[lo], nd = windows[lo];
    *d = lo;
    if (!shuffle) {
        *v = j % nd;
        return;
    }
    uint64_t sub = dataio_perm_key(dataio_perm_key(seed ^ splitmix64((uint64_t)lo + 1), epoch),
                                   j / nd);
    *v = dataio_perm(nd, sub, j % nd);
}

int64_t dataio_perm(int64_t n, uint64_t key, int64_t i)
{
    if (n <= 1) {
        return 0;
    }
    int bits = 0;
    while (bits < 62 && ((int64_t)1 << bits) < n) {
        bits++;
    }
    int half = (bits + 1) / 2;
    uint64_t mask = ((uint64_t)1 << half) - 1;
    uint64_t x = (uint64_t)i;
    /* Cycle walking: the network permutes [0, 4^half); re-apply it until
     * the value falls in [0, n). 4^half < 4n, so a few steps on average. */
    do {
        uint64_t l = x >> half, r = x & mask;
        for (int k = 0; k < ROUNDS; k++) {
            uint64_t f = splitmix64(r ^ splitmix64(key + (uint64_t)k)) & mask;
            uint64_t t = l ^ f;
            l = r;
            r = t;
        }
        x = (l << half) | r;
    } while (x >= (uint64_t)n);
    return (int64_t)x;
}

/* Index j in ep[] of episode e, or -1. */
static int64_t find_ep(const struct dataio_windows *w, int64_t e)
{
    int64_t lo = 0, hi = w->n_eps;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (w->ep[mid] < e) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < w->n_eps && w->ep[lo] == e ? lo : -1;
}

/*
 * The ids of the windows holding a bad row, ascending and unique, streamed
 * from the ascending bad rows: each row's windows start at or after the
 * previous row's, so clipping at the last id taken drops the repeats.
 * Pass 0 counts, pass 1 stores: memory is the excluded windows alone, not
 * bad rows x windows per row (a sensor off for an hour at 1 kHz is 3.6
 * million rows).
 */
static dure_status_t exclude(const struct dataio_dataset_info *in, struct dataio_windows *w,
                             const int64_t *bad, int64_t n_bad)
{
    dure_status_t st = DURE_OK;
    int64_t n = 0;
    for (int pass = 0; pass < 2 && n_bad > 0; pass++) {
        int64_t next = 0; /* the lowest id not taken yet */
        n = 0;
        for (int64_t i = 0; i < n_bad; i++) {
            DURE_CHECK(pass == 1 || i == 0 || bad[i] > bad[i - 1], DURE_ERR_ARG,
                       "'%s': bad rows must ascend: row %lld at index %lld follows %lld",
                       in->path, (long long)bad[i], (long long)i,
                       (long long)(i ? bad[i - 1] : 0));
            int64_t e = dataio_episode_of_row(in, bad[i]);
            int64_t j = find_ep(w, e);
            if (j < 0) {
                continue;
            }
            int64_t t = bad[i] - in->episode_start[e];
            int64_t nwin = w->cum[j + 1] - w->cum[j];
            int64_t lo = t >= w->window ? (t - w->window + w->stride) / w->stride : 0;
            int64_t hi = t / w->stride < nwin - 1 ? t / w->stride : nwin - 1;
            int64_t first = w->cum[j] + lo > next ? w->cum[j] + lo : next, last = w->cum[j] + hi;
            for (int64_t id = first; id <= last; id++) {
                if (pass == 1) {
                    w->excl[n] = id;
                }
                n++;
            }
            next = last >= first ? last + 1 : next;
        }
        if (pass == 0) {
            if (n == 0) {
                break;
            }
            w->excl = malloc((size_t)n * sizeof *w->excl);
            DURE_ALLOC_TRY(w->excl, (size_t)n * sizeof *w->excl);
        }
    }
    w->n_excl = n;
out:
    return st;
}

dure_status_t dataio_windows_build(const struct dataio_dataset_info *in,
                                   dataio_split_t split, int64_t window, int64_t stride,
                                   const int64_t *bad_rows, int64_t n_bad,
                                   struct dataio_windows *w)
{
    dure_status_t st = DURE_OK;
    memset(w, 0, sizeof *w);
    w->window = window;
    w->stride = stride;
    w->first_short = -1;
    DURE_CHECK(window >= 1 && stride >= 1, DURE_ERR_ARG,
               "window %lld and stride %lld must be >= 1", (long long)window,
               (long long)stride);
    DURE_CHECK(split != DATAIO_SPLIT_VAL || in->ep_split, DURE_ERR_ARG,
               "'%s' defines no validation split: set data.val_fraction or "
               "data.val_path", in->path);
    w->ep = malloc((size_t)in->n_episodes * sizeof *w->ep);
    w->cum = malloc(((size_t)in->n_episodes + 1) * sizeof *w->cum);
    DURE_ALLOC_TRY(w->ep && w->cum ? w->ep : NULL, (size_t)in->n_episodes * 16);
    w->cum[0] = 0;
    for (int64_t e = 0; e < in->n_episodes; e++) {
        if (!dataio_episode_in(in, e, split)) {
            continue;
        }
        int64_t len = in->episode_start[e + 1] - in->episode_start[e];
        if (len < window) {
            if (w->n_short++ == 0) {
                w->first_short = e;
            }
            continue;
        }
        w->ep[w->n_eps] = e;
        w->cum[w->n_eps + 1] = w->cum[w->n_eps] + (len - window) / stride + 1;
        w->n_eps++;
    }
    w->n_all = w->cum[w->n_eps];
    DURE_TRY(exclude(in, w, bad_rows, n_bad));
    w->n = w->n_all - w->n_excl;
out:
    if (st != DURE_OK) {
        dataio_windows_free(w);
    }
    return st;
}

void dataio_windows_free(struct dataio_windows *w)
{
    free(w->ep);
    free(w->cum);
    free(w->excl);
    w->ep = w->cum = w->excl = NULL;
}

void dataio_windows_get(const struct dataio_windows *w, int64_t v, int64_t *episode,
                        int64_t *start)
{
    /* Rank v among the kept ids -> id: id = v + #{i : excl[i] - i <= v}. */
    int64_t lo = 0, hi = w->n_excl;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (w->excl[mid] - mid <= v) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    int64_t id = v + lo;
    /* Episode: the last j with cum[j] <= id. */
    int64_t a = 0, b = w->n_eps - 1;
    while (a < b) {
        int64_t mid = a + (b - a + 1) / 2;
        if (w->cum[mid] <= id) {
            a = mid;
        } else {
            b = mid - 1;
        }
    }
    *episode = w->ep[a];
    *start = (id - w->cum[a]) * w->stride;
}
