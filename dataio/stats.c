/* dataio/stats.c - see stats.h. */
#include "dataio/stats.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/agree.h"
#include "common/fsutil.h"
#include "common/mpi_check.h"
#include "dataio/format.h"
#include "dataio/h5util.h"

/* Channels per pass of dataio_moments_add: the block's sums live on the stack. */
#define GROUP 64

int64_t dataio_moments_add(struct dataio_moments *m, const float *x, int64_t n, int c,
                           int64_t *rows)
{
    int64_t bad = 0;
    for (int c0 = 0; c0 < c; c0 += GROUP) {
        int g = c - c0 < GROUP ? c - c0 : GROUP;
        double sum[GROUP] = {0}, mean[GROUP], m2[GROUP] = {0};
        int64_t cnt[GROUP] = {0};
        for (int64_t r = 0; r < n; r++) {
            const float *row = x + r * c + c0;
            for (int j = 0; j < g; j++) {
                if (isfinite(row[j])) {
                    sum[j] += row[j];
                    cnt[j]++;
                }
            }
        }
        for (int j = 0; j < g; j++) {
            mean[j] = cnt[j] ? sum[j] / (double)cnt[j] : 0.0;
        }
        /* Second pass over the block: deviations from the block mean. */
        for (int64_t r = 0; r < n; r++) {
            const float *row = x + r * c + c0;
            for (int j = 0; j < g; j++) {
                if (isfinite(row[j])) {
                    double d = row[j] - mean[j];
                    m2[j] += d * d;
                }
            }
        }
        for (int j = 0; j < g; j++) {
            struct dataio_moments b = {cnt[j], mean[j], m2[j]};
            dataio_moments_merge(&m[c0 + j], &b, 1);
        }
    }
    for (int64_t r = 0; r < n; r++) {
        const float *row = x + r * c;
        for (int j = 0; j < c; j++) {
            if (!isfinite(row[j])) {
                if (rows) {
                    rows[bad] = r;
                }
                bad++;
                break;
            }
        }
    }
    return bad;
}

void dataio_moments_merge(struct dataio_moments *a, const struct dataio_moments *b, int c)
{
    for (int j = 0; j < c; j++) {
        if (b[j].n == 0) {
            continue;
        }
        if (a[j].n == 0) {
            a[j] = b[j];
            continue;
        }
        double na = (double)a[j].n, nb = (double)b[j].n, n = na + nb;
        double delta = b[j].mean - a[j].mean;
        a[j].mean += delta * nb / n;
        a[j].m2 += b[j].m2 + delta * delta * na * nb / n;
        a[j].n += b[j].n;
    }
}

dure_status_t dataio_stats_alloc(int c, struct dataio_stats **out)
{
    dure_status_t st = DURE_OK;
    struct dataio_stats *s = calloc(1, sizeof *s);
    DURE_ALLOC_TRY(s, sizeof *s);
    s->n_channels = c;
    s->mean = calloc((size_t)c, sizeof *s->mean);
    s->std = calloc((size_t)c, sizeof *s->std);
    s->count = calloc((size_t)c, sizeof *s->count);
    DURE_ALLOC_TRY(s->mean && s->std && s->count ? s : NULL, 3 * (size_t)c * 8);
    *out = s;
    s = NULL;
out:
    dataio_stats_free(s);
    return st;
}

void dataio_stats_free(struct dataio_stats *s)
{
    if (!s) {
        return;
    }
    free(s->mean);
    free(s->std);
    free(s->count);
    free(s->nonfinite_rows);
    free(s);
}

/* A growable int64 list. */
struct rows {
    int64_t *v;
    int64_t n, cap;
};

static dure_status_t rows_reserve(struct rows *l, int64_t more)
{
    dure_status_t st = DURE_OK;
    if (l->n + more > l->cap) {
        int64_t cap = l->cap ? l->cap : 64;
        while (cap < l->n + more) {
            cap *= 2;
        }
        int64_t *v = realloc(l->v, (size_t)cap * sizeof *v);
        DURE_ALLOC_TRY(v, (size_t)cap * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
out:
    return st;
}

/* This rank's share: the episodes whose first row falls in its row range. */
static int owner(int64_t first_row, int64_t total, int size)
{
    return (int)((__int128)first_row * size / (total ? total : 1));
}

static dure_status_t local_pass(dataio_reader_t *r, dataio_split_t split, int rank,
                                int size, struct dataio_moments *m, struct rows *bad)
{
    dure_status_t st = DURE_OK;
    const struct dataio_dataset_info *in = dataio_reader_info(r);
    int c = in->n_channels;
    int64_t block = (int64_t)(4u << 20) / (4 * c);
    block = block < 1 ? 1 : block;
    int64_t total = in->episode_start[in->n_episodes];
    dataio_scratch_t *s = NULL;
    float *buf = NULL;

    DURE_TRY(dataio_scratch_create(r, block, &s));
    buf = malloc((size_t)(block * c) * sizeof *buf);
    DURE_ALLOC_TRY(buf, (size_t)(block * c) * sizeof *buf);
    for (int64_t e = 0; e < in->n_episodes; e++) {
        if (owner(in->episode_start[e], total, size) != rank) {
            continue;
        }
        int counted = dataio_episode_in(in, e, split);
        int64_t len = in->episode_start[e + 1] - in->episode_start[e];
        for (int64_t t0 = 0; t0 < len; t0 += block) {
            int64_t n = len - t0 < block ? len - t0 : block;
            DURE_TRY(dataio_reader_read_logged(r, e, t0, n, buf, s));
            DURE_TRY(rows_reserve(bad, n));
            struct dataio_moments *mm = m;
            if (!counted) {
                /* Rows still scanned for non-finite values, not counted. */
                mm = NULL;
            }
            int64_t nb;
            if (mm) {
                nb = dataio_moments_add(mm, buf, n, c, bad->v + bad->n);
            } else {
                nb = 0;
                for (int64_t i = 0; i < n; i++) {
                    for (int j = 0; j < c; j++) {
                        if (!isfinite(buf[i * c + j])) {
                            bad->v[bad->n + nb++] = i;
                            break;
                        }
                    }
                }
            }
            for (int64_t i = 0; i < nb; i++) {
                bad->v[bad->n + i] += in->episode_start[e] + t0;
            }
            bad->n += nb;
        }
    }
out:
    free(buf);
    dataio_scratch_free(s);
    return st;
}

static dure_status_t combine(MPI_Comm comm, int size, int c, struct dataio_moments *m,
                             struct rows *bad)
{
    dure_status_t st = DURE_OK;
    double *mine = NULL, *all = NULL;
    int *counts = NULL, *displs = NULL;
    int64_t *rows = NULL;
    struct dataio_moments *tmp = NULL;

    mine = malloc((size_t)c * 3 * sizeof *mine);
    all = malloc((size_t)c * 3 * (size_t)size * sizeof *all);
    tmp = calloc((size_t)c, sizeof *tmp);
    DURE_ALLOC_TRY(mine && all && tmp ? mine : NULL, (size_t)c * 3 * (size_t)size * 8);
    for (int j = 0; j < c; j++) {
        mine[3 * j] = (double)m[j].n;
        mine[3 * j + 1] = m[j].mean;
        mine[3 * j + 2] = m[j].m2;
    }
    DURE_MPI_TRY(MPI_Allgather(mine, 3 * c, MPI_DOUBLE, all, 3 * c, MPI_DOUBLE, comm));
    /* Merge in rank order on every rank: the same result everywhere. */
    for (int j = 0; j < c; j++) {
        m[j] = (struct dataio_moments){0, 0.0, 0.0};
    }
    for (int p = 0; p < size; p++) {
        for (int j = 0; j < c; j++) {
            const double *v = all + (size_t)p * 3 * (size_t)c + 3 * (size_t)j;
            tmp[j] = (struct dataio_moments){(int64_t)v[0], v[1], v[2]};
        }
        dataio_moments_merge(m, tmp, c);
    }
    counts = malloc((size_t)size * sizeof *counts);
    displs = malloc((size_t)size * sizeof *displs);
    DURE_ALLOC_TRY(counts && displs ? counts : NULL, (size_t)size * 8);
    DURE_CHECK(bad->n < (1 << 30), DURE_ERR_UNSUPPORTED,
               "%lld rows hold NaN or Inf: too many to index", (long long)bad->n);
    int nb = (int)bad->n;
    DURE_MPI_TRY(MPI_Allgather(&nb, 1, MPI_INT, counts, 1, MPI_INT, comm));
    int64_t total = 0;
    for (int p = 0; p < size; p++) {
        displs[p] = (int)total;
        total += counts[p];
    }
    DURE_CHECK(total < (1 << 30), DURE_ERR_UNSUPPORTED,
               "%lld rows hold NaN or Inf: too many to index", (long long)total);
    rows = malloc((size_t)(total ? total : 1) * sizeof *rows);
    DURE_ALLOC_TRY(rows, (size_t)total * sizeof *rows);
    DURE_MPI_TRY(MPI_Allgatherv(bad->v, nb, MPI_INT64_T, rows, counts, displs, MPI_INT64_T,
                                comm));
    free(bad->v);
    bad->v = rows;
    bad->n = bad->cap = total;
    rows = NULL;
out:
    free(mine);
    free(all);
    free(tmp);
    free(counts);
    free(displs);
    free(rows);
    return st;
}

dure_status_t dataio_stats_compute(dataio_reader_t *r, dataio_split_t split, MPI_Comm comm,
                                   struct dataio_stats **out)
{
    dure_status_t st = DURE_OK;
    const struct dataio_dataset_info *in = dataio_reader_info(r);
    int c = in->n_channels, rank = 0, size = 1;
    struct dataio_moments *m = NULL;
    struct rows bad = {0};
    struct dataio_stats *s = NULL;
    char what[4200];

    *out = NULL;
    if (split == DATAIO_SPLIT_TRAIN && !in->ep_split) {
        split = DATAIO_SPLIT_ALL;
    }
    if (comm != MPI_COMM_NULL) {
        DURE_MPI_TRY(MPI_Comm_rank(comm, &rank));
        DURE_MPI_TRY(MPI_Comm_size(comm, &size));
    }
    m = calloc((size_t)c, sizeof *m);
    DURE_ALLOC_TRY(m, (size_t)c * sizeof *m);
    st = local_pass(r, split, rank, size, m, &bad);
    snprintf(what, sizeof what, "'%s': computing channel statistics", in->path);
    DURE_TRY(dure_agree(comm, st, what));
    if (comm != MPI_COMM_NULL) {
        DURE_TRY(combine(comm, size, c, m, &bad));
    }
    DURE_TRY(dataio_stats_alloc(c, &s));
    for (int j = 0; j < c; j++) {
        s->mean[j] = m[j].mean;
        s->std[j] = m[j].n ? sqrt(m[j].m2 / (double)m[j].n) : 0.0;
        s->count[j] = m[j].n;
    }
    s->split = split;
    DURE_TRY(dataio_stats_source(r, &s->source_rows, &s->source_episodes, &s->source_hash));
    s->has_source = 1;
    s->n_nonfinite_rows = bad.n;
    s->nonfinite_rows = bad.v;
    bad.v = NULL;
    *out = s;
    s = NULL;
out:
    free(m);
    free(bad.v);
    dataio_stats_free(s);
    return st;
}

dure_status_t dataio_stats_source(dataio_reader_t *r, int64_t *rows, int64_t *episodes,
                                  uint64_t *hash)
{
    dure_status_t st = DURE_OK;
    const struct dataio_dataset_info *in = dataio_reader_info(r);
    int64_t total = in->episode_start[in->n_episodes];
    int64_t k = total < DATAIO_STATS_SAMPLE_ROWS ? total : DATAIO_STATS_SAMPLE_ROWS;
    dataio_scratch_t *sc = NULL;
    float *row = NULL;
    uint64_t h = 0xcbf29ce484222325ull;
    DURE_TRY(dataio_scratch_create(r, 1, &sc));
    row = malloc((size_t)in->n_channels * sizeof *row);
    DURE_ALLOC_TRY(row, (size_t)in->n_channels * sizeof *row);
    for (int64_t i = 0; i < k; i++) {
        int64_t g = (int64_t)((__int128)i * total / k), e = dataio_episode_of_row(in, g);
        DURE_TRY(dataio_reader_read_logged(r, e, g - in->episode_start[e], 1, row, sc));
        const unsigned char *b = (const unsigned char *)row;
        for (size_t j = 0; j < (size_t)in->n_channels * sizeof *row; j++) {
            h = (h ^ b[j]) * 0x100000001b3ull;
        }
    }
    *rows = total;
    *episodes = in->n_episodes;
    *hash = h;
out:
    free(row);
    dataio_scratch_free(sc);
    return st;
}

dure_status_t dataio_stats_check_source(dataio_reader_t *r, const struct dataio_stats *s,
                                        char *why, size_t len, int *stale)
{
    dure_status_t st = DURE_OK;
    int64_t rows = 0, eps = 0;
    uint64_t h = 0;
    *stale = 0;
    why[0] = '\0';
    if (!s->has_source) {
        goto out;
    }
    DURE_TRY(dataio_stats_source(r, &rows, &eps, &h));
    if (rows != s->source_rows || eps != s->source_episodes) {
        snprintf(why, len, "they were computed on %lld rows in %lld episodes, the data now "
                 "have %lld rows in %lld", (long long)s->source_rows,
                 (long long)s->source_episodes, (long long)rows, (long long)eps);
        *stale = 1;
    } else if (h != s->source_hash) {
        snprintf(why, len, "the data changed after they were computed (%d sampled rows "
                 "differ in content)", DATAIO_STATS_SAMPLE_ROWS);
        *stale = 1;
    }
out:
    return st;
}

dure_status_t dataio_stats_load(hid_t fid, const char *label, int c, int64_t rows,
                                struct dataio_stats **out)
{
    dure_status_t st = DURE_OK;
    struct dataio_stats *s = NULL;
    hid_t g = H5I_INVALID_HID;
    int64_t *cnt = NULL, n = 0;
    char split[16] = "";
    char what[600];

    *out = NULL;
    if (!dataio_h5_exists(fid, DATAIO_GROUP_STATS)) {
        goto out;
    }
    snprintf(what, sizeof what, "file '%s', group '%s'", label, DATAIO_GROUP_STATS);
    DURE_CHECK((g = H5Gopen2(fid, DATAIO_GROUP_STATS, H5P_DEFAULT)) >= 0, DURE_ERR_FORMAT,
               "%s is not a group", what);
    DURE_TRY(dataio_stats_alloc(c, &s));
    DURE_TRY(dataio_h5_read_f64(g, "mean", what, s->mean, c));
    DURE_TRY(dataio_h5_read_f64(g, "std", what, s->std, c));
    DURE_TRY(dataio_h5_read_i64(g, "count", what, &cnt, &n));
    DURE_CHECK(n == c, DURE_ERR_FORMAT, "%s: 'count' has %lld values for %d channels", what,
               (long long)n, c);
    memcpy(s->count, cnt, (size_t)c * sizeof *cnt);
    DURE_TRY(dataio_h5_read_i64(g, "nonfinite_rows", what, &s->nonfinite_rows,
                                &s->n_nonfinite_rows));
    /* Rows the loader leaves out (on_nan = skip) and reads to name the bad
     * value: each must be a row of /signals, once. */
    for (int64_t i = 0; i < s->n_nonfinite_rows; i++) {
        int64_t r = s->nonfinite_rows[i];
        DURE_CHECK(r >= 0 && r < rows && (i == 0 || r > s->nonfinite_rows[i - 1]),
                   DURE_ERR_FORMAT,
                   "%s, dataset 'nonfinite_rows': value %lld at index %lld is not a row of "
                   "'%s' (0 to %lld) above the one before it",
                   what, (long long)r, (long long)i, DATAIO_DSET_SIGNALS, (long long)rows - 1);
    }
    s->split = dataio_h5_attr_str(g, "split", split, sizeof split) == 1 &&
                       strcmp(split, "train") == 0
                   ? DATAIO_SPLIT_TRAIN
                   : DATAIO_SPLIT_ALL;
    char hex[32] = "";
    s->has_source = dataio_h5_attr_i64(g, "source_rows", &s->source_rows) == 1 &&
                    dataio_h5_attr_i64(g, "source_episodes", &s->source_episodes) == 1 &&
                    dataio_h5_attr_str(g, "source_sample_hash", hex, sizeof hex) == 1 &&
                    sscanf(hex, "%16" SCNx64, &s->source_hash) == 1;
    *out = s;
    s = NULL;
out:
    free(cnt);
    if (g >= 0) H5Gclose(g);
    dataio_stats_free(s);
    return st;
}

dure_status_t dataio_stats_store(hid_t fid, const struct dataio_stats *s)
{
    dure_status_t st = DURE_OK;
    hid_t g = H5I_INVALID_HID;
    if (dataio_h5_exists(fid, DATAIO_GROUP_STATS)) {
        DURE_CHECK(H5Ldelete(fid, DATAIO_GROUP_STATS, H5P_DEFAULT) >= 0, DURE_ERR_HDF5,
                   "cannot replace group '%s'", DATAIO_GROUP_STATS);
    }
    g = H5Gcreate2(fid, DATAIO_GROUP_STATS, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    DURE_CHECK(g >= 0, DURE_ERR_HDF5, "cannot create group '%s'", DATAIO_GROUP_STATS);
    DURE_TRY(dataio_h5_write_f64(g, "mean", s->mean, s->n_channels));
    DURE_TRY(dataio_h5_write_f64(g, "std", s->std, s->n_channels));
    DURE_TRY(dataio_h5_write_i64(g, "count", s->count, s->n_channels));
    DURE_TRY(dataio_h5_write_i64(g, "nonfinite_rows", s->nonfinite_rows,
                                 s->n_nonfinite_rows));
    DURE_TRY(dataio_h5_set_attr_str(g, "split", dataio_split_name(s->split)));
    DURE_TRY(dataio_h5_set_attr_str(g, "method",
                                    "per-block two-pass mean/M2, Chan et al. merge; "
                                    "population std of finite values"));
    if (s->has_source) {
        char hex[32];
        snprintf(hex, sizeof hex, "%016" PRIx64, s->source_hash);
        DURE_TRY(dataio_h5_set_attr_i64(g, "source_rows", s->source_rows));
        DURE_TRY(dataio_h5_set_attr_i64(g, "source_episodes", s->source_episodes));
        DURE_TRY(dataio_h5_set_attr_str(g, "source_sample_hash", hex));
    }
out:
    if (g >= 0) H5Gclose(g);
    return st;
}

/* Room for the /stats dataio_stats_store writes: its 8-byte values twice
 * over (HDF5 may place a rewritten object apart from the freed one), and
 * 64 KiB for the group's and the datasets' headers, heaps and attributes. */
static uint64_t stats_reserve_bytes(const struct dataio_stats *s)
{
    return 2 * 8 * (3 * (uint64_t)s->n_channels + (uint64_t)s->n_nonfinite_rows) + 65536;
}

dure_status_t dataio_stats_update_file(const char *path, struct dataio_stats **out)
{
    dure_status_t st = DURE_OK;
    dataio_reader_t *r = NULL;
    struct dataio_stats *s = NULL;
    struct dataio_reader_config rc = {
        .path = path, .layout = DATAIO_LAYOUT_DURE, .io = DATAIO_IO_SERIAL,
        .comm = MPI_COMM_NULL,
    };
    struct dure_h5_quiet q;
    struct stat sb;
    hid_t fid = H5I_INVALID_HID;
    char why[512];

    DURE_TRY(dataio_reader_open(&rc, &r));
    DURE_TRY(dataio_stats_compute(r, DATAIO_SPLIT_TRAIN, MPI_COMM_NULL, &s));
    dataio_reader_close(r);
    r = NULL;
    /* HDF5 writes the new /stats past the file's end, then links it: a
     * write that runs out of space part way leaves the link pointing past
     * the end, and the whole dataset unreadable. So the space is reserved
     * first, generously (the values, and each object's header and heap
     * blocks), and a full disk leaves the file as it was. */
    DURE_SYS_TRY(stat(path, &sb) == 0, "'%s': stat", path);
    DURE_TRY(dure_file_reserve(path, (uint64_t)sb.st_size, stats_reserve_bytes(s),
                               "/stats in dataset file"));
    dure_h5_quiet_begin(&q);
    fid = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (fid < 0) {
        dure_h5_error_text(why, sizeof why);
    } else {
        st = dataio_stats_store(fid, s);
        if (H5Fclose(fid) < 0 && st == DURE_OK) {
            dure_h5_error_text(why, sizeof why);
            st = DURE_ERR_HDF5;
            dure_log_error(__FILE__, __LINE__, "'%s': closing after writing /stats: %s",
                           path, why);
        }
    }
    dure_h5_quiet_end(&q);
    DURE_CHECK(fid >= 0, DURE_ERR_IO, "'%s' cannot be opened for writing: %s", path, why);
    DURE_TRY(st);
    if (out) {
        *out = s;
        s = NULL;
    }
out:
    dataio_reader_close(r);
    dataio_stats_free(s);
    return st;
}
