/* dataio/loader.c - the streaming loader; see loader.h for the contract. */
#include "dataio/loader.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/agree.h"
#include "common/mpi_check.h"
#include "common/strmap.h"
#include "common/timing.h"
#include "dataio/order.h"
#include "dataio/reader_impl.h"
#include "dataio/stats.h"

/* One batch buffer of the ring and the batch it holds. */
enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_FAILED };

struct slot {
    float *data;        /* (local_batch, W, C) */
    float *mask;        /* (local_batch, C) */
    int64_t *episode;   /* (local_batch) */
    int64_t *start;     /* (local_batch) */
    int *source;        /* (local_batch) */
    int64_t epoch, position;
    uint64_t seq;       /* the batch (sequence number) it holds */
    enum slot_state state;
};

/* One dataset of the loader. */
struct source {
    char *name;
    dataio_reader_t *reader;
    const struct dataio_dataset_info *info;
    struct dataio_windows win;
    int channels;                  /* C_d */
    int *to_union;                 /* (C_d) batch column of each channel */
    int direct;                    /* its channels are the batch's, in order:
                                      read straight into the batch */
    int check_finite;              /* no statistics know the NaN/Inf rows */
    float *mean, *std, *inv_std;   /* (C_d) each, one allocation */
    float *present;                /* (C) 1 where the batch column is its */
    dataio_scratch_t *scratch[2];  /* [0] the prefetch thread's, [1] the caller's */
    int64_t max_rows;              /* rows per coalesced read */
    dataio_split_t split;          /* its episodes the loader reads */
    int64_t per_epoch;             /* c_d: its positions in an epoch */
    double share;
};

struct dataio_loader {
    int n_src;
    struct source *src;            /* (n_src) */
    int64_t *src_windows;          /* (n_src) n_d */
    int64_t *src_first;            /* (n_src + 1) first slot of each in an epoch */
    int64_t n_epoch;               /* N: positions of an epoch */
    MPI_Comm comm;                 /* MPI_COMM_NULL when emulating ranks */
    int rank, world, lb, window, channels;
    char **channel_names, **channel_units; /* (names_cap) the batch's channels, C used */
    int names_cap;
    int64_t global_batch;
    uint64_t seed;
    int shuffle, normalize;
    dataio_nan_t on_nan;
    float *stage[2];               /* (W, max C_d) a window of an indirect dataset,
                                      per reading thread */

    void *(*buf_alloc)(size_t, void *);
    void (*buf_free)(void *, void *);
    void *buf_ctx;
    int nslots;
    struct slot *slots;            /* (nslots) */
    int64_t *meta;                 /* (nslots, 2, local_batch) episode, start */
    int *meta_src;                 /* (nslots, local_batch) source */
    float *masks;                  /* (nslots, local_batch, C) */

    /*
     * Ring state, under mu. Batches are numbered by sequence. Whoever fills
     * a batch first claims it: seq `head` is the next to claim (its cursor is
     * `prod`), seq `tail` the next to hand out (cursor `cons`). The prefetch
     * thread claims ahead while slots are free; a caller whose batch is not
     * ready reads the next unclaimed one itself instead of sleeping (its own
     * batch if nobody reads it yet). Seq s lives in slot
     * s % nslots; slots of seq < free_from are free (the caller holds seq
     * tail-1 until its next call).
     */
    pthread_mutex_t mu;
    pthread_cond_t cv_prod, cv_cons;
    pthread_t thread;
    int sync_ready, threaded, thread_started, stop, busy, held, failed;
    uint64_t head, tail, free_from, generation, err_seq;
    struct dataio_cursor prod, cons;
    dure_status_t err;
    char err_msg[1024];            /* of the first failed batch, err_seq */
    struct dataio_loader_stats stats;
};

void dataio_loader_config_init(struct dataio_loader_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->layout = DATAIO_LAYOUT_AUTO;
    cfg->split = DATAIO_SPLIT_TRAIN;
    cfg->comm = MPI_COMM_NULL;
    cfg->rank = 0;
    cfg->world_size = 1;
    cfg->seed = 1234;
    cfg->shuffle = 1;
    cfg->prefetch = 4;
    cfg->normalize = 1;
    cfg->on_nan = DATAIO_NAN_REFUSE;
    cfg->io = DATAIO_IO_AUTO;
}

/* The batch after the one at *c (epochs drop their last partial batch). */
static void advance(const dataio_loader_t *ld, struct dataio_cursor *c)
{
    c->position += ld->global_batch;
    if (c->position + ld->global_batch > ld->n_epoch) {
        c->epoch++;
        c->position = 0;
    }
}

/* "file F, episode E (name), timestep T, channel 'X'" for messages. */
static void where(const struct source *sr, int64_t e, int64_t t, int ch, char *buf,
                  size_t len)
{
    const struct dataio_dataset_info *in = sr->info;
    snprintf(buf, len, "file '%s'%s, episode %lld ('%s'), timestep %lld (row %lld), "
             "channel %d '%s'", in->path,
             in->layout == DATAIO_LAYOUT_DURE ? ", dataset '/signals'" : "", (long long)e,
             in->episode_names[e], (long long)t, (long long)(in->episode_start[e] + t), ch,
             in->channel_names[ch]);
}

/*
 * One window x (W, C_d) of source sr: normalizes it in place (if
 * normalizing) and returns nonzero if it holds a NaN or Inf. Branch-free
 * over the values (an exponent of all ones means NaN or Inf) so it
 * vectorizes; the check rides along with normalization for free. Without
 * normalization it runs only when no statistics list the non-finite rows
 * (with them, REFUSE already refused at open and SKIP left those windows
 * out).
 */
static uint32_t scan_window(const dataio_loader_t *ld, const struct source *sr, float *x)
{
    const int64_t W = ld->window, C = sr->channels;
    const float *mean = sr->mean, *inv = sr->inv_std;
    uint32_t bad = 0;
    for (int64_t t = 0; t < W; t++) {
        float *row = x + t * C;
        if (ld->normalize) {
#pragma omp simd reduction(| : bad)
            for (int64_t c = 0; c < C; c++) {
                uint32_t bits;
                memcpy(&bits, &row[c], sizeof bits);
                bad |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
                row[c] = (row[c] - mean[c]) * inv[c];
            }
        } else {
#pragma omp simd reduction(| : bad)
            for (int64_t c = 0; c < C; c++) {
                uint32_t bits;
                memcpy(&bits, &row[c], sizeof bits);
                bad |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
            }
        }
    }
    return bad;
}

/* "NaN at <where>..." for the first non-finite value of window x (W, C_d);
 * normalization keeps NaN and Inf what they are. */
static dure_status_t refuse_window(const struct source *sr, const float *x, int64_t e,
                                   int64_t start, char *err, size_t err_len)
{
    int64_t k = 0;
    while (isfinite(x[k])) {
        k++;
    }
    char loc[700];
    where(sr, e, start + k / sr->channels, (int)(k % sr->channels), loc, sizeof loc);
    snprintf(err, err_len, "%s: %s value; set data.on_nan = skip to leave windows with NaN "
             "or Inf out", loc, isnan(x[k]) ? "NaN" : "Inf");
    return DURE_ERR_FORMAT;
}

/* Read the windows of the batch at (epoch, position) into s. Runs on the
 * prefetch thread (tid 0) or the caller's (tid 1): no HDF5, no logging;
 * errors go to err. */
static dure_status_t fill(dataio_loader_t *ld, struct slot *s, int64_t epoch, int64_t pos,
                          int tid, uint64_t *bytes, char *err, size_t err_len)
{
    dure_status_t st = DURE_OK;
    const int64_t W = ld->window, C = ld->channels;
    const int64_t first = pos + (int64_t)ld->rank * ld->lb;

    s->epoch = epoch;
    s->position = pos;
    for (int i = 0; i < ld->lb; i++) {
        int64_t v = 0;
        dataio_mix_locate(ld->n_src, ld->src_windows, ld->src_first, ld->seed, ld->shuffle,
                          epoch, first + i, &s->source[i], &v);
        dataio_windows_get(&ld->src[s->source[i]].win, v, &s->episode[i], &s->start[i]);
        memcpy(s->mask + (size_t)i * (size_t)C, ld->src[s->source[i]].present,
               (size_t)C * sizeof *s->mask);
    }
    for (int i = 0; i < ld->lb;) {
        struct source *sr = &ld->src[s->source[i]];
        float *x = s->data + (size_t)i * (size_t)(W * C);
        if (!sr->direct) {
            /* Another channel set: read the window aside, normalize it there,
             * lay it into its columns of the batch (the others are 0). */
            float *stage = ld->stage[tid];
            st = dataio_reader_read(sr->reader, s->episode[i], s->start[i], W, stage,
                                    sr->scratch[tid], bytes, err, err_len);
            if (st != DURE_OK) {
                return st;
            }
            if ((ld->normalize || sr->check_finite) && scan_window(ld, sr, stage) != 0) {
                return refuse_window(sr, stage, s->episode[i], s->start[i], err, err_len);
            }
            memset(x, 0, (size_t)(W * C) * sizeof *x);
            for (int64_t t = 0; t < W; t++) {
                const float *in = stage + t * sr->channels;
                float *out = x + t * C;
                for (int c = 0; c < sr->channels; c++) {
                    out[sr->to_union[c]] = in[c];
                }
            }
            i++;
            continue;
        }
        /* Windows adjacent in the episode and in the batch: one read. */
        int j = i + 1;
        while (j < ld->lb && s->source[j] == s->source[i] && s->episode[j] == s->episode[i] &&
               s->start[j] == s->start[j - 1] + W && (j - i + 1) * W <= sr->max_rows) {
            j++;
        }
        st = dataio_reader_read(sr->reader, s->episode[i], s->start[i], (j - i) * W, x,
                                sr->scratch[tid], bytes, err, err_len);
        if (st != DURE_OK) {
            return st;
        }
        if (ld->normalize || sr->check_finite) {
            for (int k = i; k < j; k++) {
                float *xk = s->data + (size_t)k * (size_t)(W * C);
                if (scan_window(ld, sr, xk) != 0) {
                    return refuse_window(sr, xk, s->episode[k], s->start[k], err, err_len);
                }
            }
        }
        i = j;
    }
    return st;
}

/* Claim the next batch into its slot (under mu); returns its cursor. */
static struct slot *claim(dataio_loader_t *ld, struct dataio_cursor *c, uint64_t *seq)
{
    *seq = ld->head++;
    *c = ld->prod;
    advance(ld, &ld->prod);
    struct slot *s = &ld->slots[*seq % (uint64_t)ld->nslots];
    s->seq = *seq;
    s->state = SLOT_FILLING;
    return s;
}

/* Fill a claimed slot without the lock held; record the outcome under it. */
static void fill_claimed(dataio_loader_t *ld, struct slot *s, uint64_t seq,
                         struct dataio_cursor c, int prefetcher)
{
    char err[1024] = "";
    uint64_t bytes = 0, gen = ld->generation;
    ld->busy += prefetcher;
    pthread_mutex_unlock(&ld->mu);
    double t0 = dure_now_s();
    dure_status_t st = fill(ld, s, c.epoch, c.position, !prefetcher, &bytes, err, sizeof err);
    double dt = dure_now_s() - t0;
    pthread_mutex_lock(&ld->mu);
    ld->busy -= prefetcher;
    ld->stats.read_s += dt;
    ld->stats.bytes_read += bytes;
    if (gen != ld->generation) {
        return; /* the cursor moved meanwhile: this batch is not wanted */
    }
    s->state = st == DURE_OK ? SLOT_READY : SLOT_FAILED;
    if (st != DURE_OK && (!ld->failed || seq < ld->err_seq)) {
        ld->failed = 1;
        ld->err_seq = seq;
        ld->err = st;
        snprintf(ld->err_msg, sizeof ld->err_msg, "%s", err);
    }
}

static void *producer(void *arg)
{
    dataio_loader_t *ld = arg;
    pthread_mutex_lock(&ld->mu);
    while (!ld->stop) {
        if (ld->failed || ld->head >= ld->free_from + (uint64_t)ld->nslots) {
            pthread_cond_wait(&ld->cv_prod, &ld->mu);
            continue;
        }
        struct dataio_cursor c;
        uint64_t seq;
        struct slot *s = claim(ld, &c, &seq);
        fill_claimed(ld, s, seq, c, 1);
        pthread_cond_broadcast(&ld->cv_cons);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

static void fill_batch(const dataio_loader_t *ld, const struct slot *s, struct dataio_batch *b)
{
    b->data = s->data;
    b->mask = s->mask;
    b->source = s->source;
    b->episode = s->episode;
    b->start = s->start;
    b->epoch = s->epoch;
    b->position = s->position;
    b->local_batch = ld->lb;
    b->window = ld->window;
    b->channels = ld->channels;
}

dure_status_t dataio_loader_next(dataio_loader_t *ld, struct dataio_batch *batch)
{
    dure_status_t st = DURE_OK;
    char msg[1024];
    pthread_mutex_lock(&ld->mu);
    if (ld->held) {
        ld->free_from = ld->tail;
        ld->held = 0;
        pthread_cond_signal(&ld->cv_prod);
    }
    struct slot *s = &ld->slots[ld->tail % (uint64_t)ld->nslots];
    double t0 = dure_now_s();
    for (;;) {
        if (s->seq == ld->tail && s->state == SLOT_READY) {
            break;
        }
        if (s->seq == ld->tail && s->state == SLOT_FAILED) {
            st = ld->err;
            snprintf(msg, sizeof msg, "%s", ld->err_msg);
            pthread_mutex_unlock(&ld->mu);
            DURE_FAIL(st, "%s", msg);
        }
        if (ld->head == ld->tail ||
            (!ld->failed && ld->head < ld->free_from + (uint64_t)ld->nslots)) {
            /* Nobody reads this batch yet: read it here, now. Or the prefetch
             * thread is reading it: read a later one meanwhile instead of
             * sleeping (two readers when the data are the bottleneck). */
            struct dataio_cursor c;
            uint64_t seq;
            struct slot *t = claim(ld, &c, &seq);
            fill_claimed(ld, t, seq, c, 0);
            continue;
        }
        pthread_cond_wait(&ld->cv_cons, &ld->mu);
    }
    ld->stats.wait_s += dure_now_s() - t0;
    fill_batch(ld, s, batch);
    ld->cons.epoch = s->epoch;
    ld->cons.position = s->position;
    advance(ld, &ld->cons);
    ld->tail++;
    ld->held = 1;
    ld->stats.batches++;
    ld->stats.windows += (uint64_t)ld->lb;
    pthread_mutex_unlock(&ld->mu);
out:
    return st;
}

void dataio_loader_cursor(const dataio_loader_t *ld, struct dataio_cursor *cur)
{
    pthread_mutex_lock((pthread_mutex_t *)&ld->mu);
    *cur = ld->cons;
    pthread_mutex_unlock((pthread_mutex_t *)&ld->mu);
}

dure_status_t dataio_loader_set_cursor(dataio_loader_t *ld, const struct dataio_cursor *cur)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(cur->epoch >= 0 && cur->position >= 0, DURE_ERR_ARG,
               "loader cursor (epoch %lld, position %lld) is negative", (long long)cur->epoch,
               (long long)cur->position);
    struct dataio_cursor c = *cur;
    if (c.position + ld->global_batch > ld->n_epoch) {
        c.epoch++;
        c.position = 0;
    }
    pthread_mutex_lock(&ld->mu);
    ld->generation++;
    while (ld->busy) {
        /* The batch being read is dropped, but its slot must be left
         * alone until the reading stops. */
        pthread_cond_wait(&ld->cv_cons, &ld->mu);
    }
    for (int i = 0; i < ld->nslots; i++) {
        ld->slots[i].seq = UINT64_MAX;
        ld->slots[i].state = SLOT_FREE;
    }
    ld->head = ld->tail = ld->free_from = 0;
    ld->held = ld->failed = 0;
    ld->prod = ld->cons = c;
    ld->err = DURE_OK;
    ld->err_msg[0] = '\0';
    pthread_cond_signal(&ld->cv_prod);
    pthread_mutex_unlock(&ld->mu);
out:
    return st;
}

int dataio_loader_channels(const dataio_loader_t *ld) { return ld->channels; }
const char *const *dataio_loader_channel_names(const dataio_loader_t *ld)
{
    return (const char *const *)ld->channel_names;
}
const char *const *dataio_loader_channel_units(const dataio_loader_t *ld)
{
    return (const char *const *)ld->channel_units;
}
int dataio_loader_local_batch(const dataio_loader_t *ld) { return ld->lb; }
int64_t dataio_loader_windows(const dataio_loader_t *ld) { return ld->n_epoch; }
int64_t dataio_loader_batches_per_epoch(const dataio_loader_t *ld)
{
    return ld->n_epoch / ld->global_batch;
}

int dataio_loader_sources(const dataio_loader_t *ld) { return ld->n_src; }
const char *dataio_loader_source_name(const dataio_loader_t *ld, int d)
{
    return ld->src[d].name;
}
const struct dataio_dataset_info *dataio_loader_source_info(const dataio_loader_t *ld, int d)
{
    return ld->src[d].info;
}
int64_t dataio_loader_source_windows(const dataio_loader_t *ld, int d)
{
    return ld->src[d].win.n;
}
int64_t dataio_loader_source_per_epoch(const dataio_loader_t *ld, int d)
{
    return ld->src[d].per_epoch;
}
double dataio_loader_source_share(const dataio_loader_t *ld, int d) { return ld->src[d].share; }

void dataio_loader_source_norm(const dataio_loader_t *ld, int d, const float **mean,
                               const float **std)
{
    *mean = ld->src[d].mean;
    *std = ld->src[d].std;
}

void dataio_loader_norm(const dataio_loader_t *ld, const float **mean, const float **std)
{
    dataio_loader_source_norm(ld, 0, mean, std);
}

const struct dataio_dataset_info *dataio_loader_info(const dataio_loader_t *ld)
{
    return ld->src[0].info;
}

void dataio_loader_stats(const dataio_loader_t *ld, struct dataio_loader_stats *out)
{
    pthread_mutex_lock((pthread_mutex_t *)&ld->mu);
    *out = ld->stats;
    pthread_mutex_unlock((pthread_mutex_t *)&ld->mu);
}

/* --------------------------------------------------------------- open */

static void *default_alloc(size_t bytes, void *ctx)
{
    (void)ctx;
    return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
}

static void default_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

static dure_status_t check_config(const struct dataio_loader_config *cfg, int rank, int world)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(cfg->n_sources >= 0 && cfg->n_sources <= DATAIO_MIX_MAX, DURE_ERR_ARG,
               "%d datasets in one mixture: at most %d", cfg->n_sources, DATAIO_MIX_MAX);
    DURE_CHECK(cfg->n_sources > 0 || (cfg->path && cfg->path[0]), DURE_ERR_ARG,
               "data.path is empty");
    for (int d = 0; d < cfg->n_sources; d++) {
        const struct dataio_source *sc = &cfg->sources[d];
        DURE_CHECK(sc->name && sc->name[0] && sc->path && sc->path[0], DURE_ERR_ARG,
                   "dataset %d of the mixture has no name or no path", d);
        DURE_CHECK(sc->weight > 0 && isfinite(sc->weight), DURE_ERR_ARG,
                   "data.%s.weight = %g must be positive", sc->name, sc->weight);
        DURE_CHECK(!sc->norm_mean == !sc->norm_std, DURE_ERR_ARG,
                   "normalization override of '%s' needs both mean and std", sc->name);
    }
    DURE_CHECK(cfg->balance_alpha >= 0 && cfg->balance_alpha <= 1, DURE_ERR_ARG,
               "data.balance_alpha = %g must be in [0, 1]", cfg->balance_alpha);
    DURE_CHECK(cfg->window >= 1, DURE_ERR_ARG, "window of %d timesteps must be >= 1",
               cfg->window);
    DURE_CHECK(cfg->stride >= 0, DURE_ERR_ARG, "window stride %d must be >= 0", cfg->stride);
    DURE_CHECK(cfg->global_batch >= 1, DURE_ERR_ARG, "global batch %d must be >= 1",
               cfg->global_batch);
    DURE_CHECK(world >= 1 && rank >= 0 && rank < world, DURE_ERR_ARG,
               "rank %d of world size %d is not a rank", rank, world);
    DURE_CHECK(cfg->global_batch % world == 0, DURE_ERR_ARG,
               "global batch %d is not a multiple of the %d ranks", cfg->global_batch, world);
    DURE_CHECK(cfg->prefetch >= 1 && cfg->prefetch <= 1024, DURE_ERR_ARG,
               "data.prefetch = %d must be in 1..1024", cfg->prefetch);
    DURE_CHECK(cfg->comm != MPI_COMM_NULL || cfg->io != DATAIO_IO_MPIIO, DURE_ERR_ARG,
               "data.io = mpiio needs a communicator");
    DURE_CHECK(!cfg->norm_mean == !cfg->norm_std, DURE_ERR_ARG,
               "normalization override needs both mean and std");
out:
    return st;
}

/* Mean/std used to normalize source sr: the override, its stats, or 0/1
 * without normalization. */
static dure_status_t setup_norm(dataio_loader_t *ld, struct source *sr,
                                const struct dataio_source *in, const struct dataio_stats *s)
{
    dure_status_t st = DURE_OK;
    int c = sr->channels;
    sr->mean = malloc(3 * (size_t)c * sizeof *sr->mean);
    DURE_ALLOC_TRY(sr->mean, 3 * (size_t)c * sizeof *sr->mean);
    sr->std = sr->mean + c;
    sr->inv_std = sr->std + c;
    for (int j = 0; j < c; j++) {
        double m = 0.0, sd = 1.0;
        if (ld->normalize) {
            m = in->norm_mean ? in->norm_mean[j] : s->mean[j];
            sd = in->norm_std ? in->norm_std[j] : s->std[j];
            DURE_CHECK(isfinite(m) && isfinite(sd) && sd >= 0, DURE_ERR_FORMAT,
                       "'%s': channel %d '%s' has normalization mean %g, std %g",
                       sr->info->path, j, sr->info->channel_names[j], m, sd);
            if (sd == 0.0) {
                if (ld->rank == 0) {
                    dure_log_warn(__FILE__, __LINE__,
                                  "'%s': channel %d '%s' is constant (std 0): centred "
                                  "but not scaled", sr->info->path, j,
                                  sr->info->channel_names[j]);
                }
                sd = 1.0;
            }
        }
        sr->mean[j] = (float)m;
        sr->std[j] = (float)sd;
        sr->inv_std[j] = (float)(1.0 / sd);
    }
out:
    return st;
}

/* Under REFUSE, a non-finite row the stats know of fails the open. */
static dure_status_t refuse_known_nan(struct source *sr, const struct dataio_stats *s,
                                      dataio_split_t split)
{
    dure_status_t st = DURE_OK;
    const struct dataio_dataset_info *in = sr->info;
    dataio_scratch_t *sc = NULL;
    float *row = NULL;
    for (int64_t i = 0; i < s->n_nonfinite_rows; i++) {
        int64_t g = s->nonfinite_rows[i], e = dataio_episode_of_row(in, g);
        if (!dataio_episode_in(in, e, split)) {
            continue;
        }
        int64_t t = g - in->episode_start[e];
        DURE_TRY(dataio_scratch_create(sr->reader, 1, &sc));
        row = malloc((size_t)sr->channels * sizeof *row);
        DURE_ALLOC_TRY(row, (size_t)sr->channels * sizeof *row);
        DURE_TRY(dataio_reader_read_logged(sr->reader, e, t, 1, row, sc));
        int ch = 0;
        while (ch + 1 < sr->channels && isfinite(row[ch])) {
            ch++;
        }
        char loc[700];
        where(sr, e, t, ch, loc, sizeof loc);
        DURE_FAIL(DURE_ERR_FORMAT,
                  "%s: %s value (%lld rows of the file hold NaN or Inf); set "
                  "data.on_nan = skip to leave windows with them out", loc,
                  isnan(row[ch]) ? "NaN" : "Inf", (long long)s->n_nonfinite_rows);
    }
out:
    free(row);
    dataio_scratch_free(sc);
    return st;
}

/* The datasets cfg describes: its mixture, or the one given by path. */
static void sources_of(const struct dataio_loader_config *cfg, struct dataio_source *one,
                       const struct dataio_source **v, int *n)
{
    if (cfg->n_sources > 0) {
        *v = cfg->sources;
        *n = cfg->n_sources;
        return;
    }
    *one = (struct dataio_source){
        .name = "data", .path = cfg->path, .layout = cfg->layout, .keys = cfg->keys,
        .weight = 1.0, .norm_mean = cfg->norm_mean, .norm_std = cfg->norm_std,
    };
    *v = one;
    *n = 1;
}

/* Open a dataset on this rank: reader, held-out split. */
static dure_status_t open_source(dataio_loader_t *ld, const struct dataio_loader_config *cfg,
                                 const struct dataio_source *in, struct source *sr)
{
    dure_status_t st = DURE_OK;
    struct dataio_reader_config rc = {
        .path = in->path, .layout = in->layout, .keys = in->keys, .io = cfg->io,
        .comm = ld->comm,
    };
    sr->name = strdup(in->name);
    DURE_ALLOC_TRY(sr->name, strlen(in->name) + 1);
    DURE_TRY(dataio_reader_open(&rc, &sr->reader));
    DURE_TRY(dataio_reader_hold_out(sr->reader, in->own_val ? 0.0 : cfg->val_fraction,
                                    DATAIO_SPLIT_SEED));
    sr->split = in->own_val && cfg->split == DATAIO_SPLIT_VAL ? DATAIO_SPLIT_ALL : cfg->split;
    sr->info = dataio_reader_info(sr->reader);
    sr->channels = sr->info->n_channels;
    DURE_CHECK(sr->split != DATAIO_SPLIT_VAL || sr->info->ep_split, DURE_ERR_ARG,
               "'%s' defines no validation split%s: set data.val_path, or run.val_every = "
               "0%s", sr->info->path,
               sr->info->n_episodes < 2 ? " and has one episode: nothing to hold out" : "",
               sr->info->n_episodes < 2 ? "" : ", or data.val_fraction above 0");
out:
    return st;
}

/* Statistics (stored, else one pass shared by the ranks: collective),
 * normalization and the window index of an open dataset. */
static dure_status_t index_source(dataio_loader_t *ld, const struct dataio_loader_config *cfg,
                                  const struct dataio_source *in, struct source *sr)
{
    dure_status_t st = DURE_OK;
    struct dataio_stats *computed = NULL;
    const struct dataio_stats *s = sr->info->stats;
    if (sr->info->stats_stale && ld->rank == 0) {
        dure_log_warn(__FILE__, __LINE__,
                      "'%s': the stored /stats are stale (%s): not used; computing fresh "
                      "ones (dure data stats stores them)", sr->info->path,
                      sr->info->stats_stale);
    }
    int need_norm = ld->normalize && !in->norm_mean;
    int compute = !s && (need_norm || ld->on_nan == DATAIO_NAN_SKIP);
    if (ld->comm != MPI_COMM_NULL) {
        /* The pass is collective: all ranks make it if any needs it. */
        int any = 0;
        DURE_MPI_TRY(MPI_Allreduce(&compute, &any, 1, MPI_INT, MPI_MAX, ld->comm));
        compute = any;
    }
    if (compute) {
        DURE_TRY(dataio_stats_compute(sr->reader, DATAIO_SPLIT_TRAIN, ld->comm, &computed));
        s = computed;
    }
    sr->check_finite = s == NULL;
    st = setup_norm(ld, sr, in, s);
    if (st == DURE_OK && s && ld->on_nan == DATAIO_NAN_REFUSE) {
        st = refuse_known_nan(sr, s, sr->split);
    }
    if (st == DURE_OK) {
        int64_t stride = cfg->stride ? cfg->stride : cfg->window;
        int skip = ld->on_nan == DATAIO_NAN_SKIP;
        st = dataio_windows_build(sr->info, sr->split, cfg->window, stride,
                                  skip ? s->nonfinite_rows : NULL,
                                  skip ? s->n_nonfinite_rows : 0, &sr->win);
    }
    if (st == DURE_OK && sr->win.n_short > 0 && ld->rank == 0) {
        dure_log_warn(__FILE__, __LINE__,
                      "'%s': %lld episodes of the %s split are shorter than the window of "
                      "%d timesteps and are not used (the first: episode %lld, %lld "
                      "timesteps)", sr->info->path, (long long)sr->win.n_short,
                      dataio_split_name(sr->split), cfg->window,
                      (long long)sr->win.first_short,
                      (long long)(sr->info->episode_start[sr->win.first_short + 1] -
                                  sr->info->episode_start[sr->win.first_short]));
    }
    if (st == DURE_OK) {
        DURE_CHECK(sr->win.n_all > 0, DURE_ERR_FORMAT,
                   "'%s': no episode of the %s split is as long as the window of %d "
                   "timesteps", sr->info->path, dataio_split_name(sr->split), cfg->window);
        DURE_CHECK(sr->win.n > 0, DURE_ERR_FORMAT,
                   "'%s': every window of the %s split holds NaN or Inf", sr->info->path,
                   dataio_split_name(sr->split));
    }
    DURE_TRY(dure_agree(ld->comm, st, "indexing a dataset"));
    if (ld->comm != MPI_COMM_NULL) {
        /* Ranks on different nodes must see the same file. */
        int64_t mine[2] = {sr->win.n, sr->channels}, lo[2], hi[2];
        DURE_MPI_TRY(MPI_Allreduce(mine, lo, 2, MPI_INT64_T, MPI_MIN, ld->comm));
        DURE_MPI_TRY(MPI_Allreduce(mine, hi, 2, MPI_INT64_T, MPI_MAX, ld->comm));
        DURE_CHECK(lo[0] == hi[0] && lo[1] == hi[1], DURE_ERR_FORMAT,
                   "'%s': ranks see different datasets (%lld to %lld windows, %lld to %lld "
                   "channels): is the file the same on every node?", sr->info->path,
                   (long long)lo[0], (long long)hi[0], (long long)lo[1], (long long)hi[1]);
    }
out:
    dataio_stats_free(computed);
    return st;
}

/*
 * The batch's channels: cfg's, or the union of the datasets' by name in
 * order of first appearance; each dataset's map into them. A dataset whose
 * channels are the batch's, in order, is read straight into the batch.
 */
static dure_status_t setup_channels(dataio_loader_t *ld, const struct dataio_loader_config *cfg)
{
    dure_status_t st = DURE_OK;
    struct strmap col = STRMAP_INIT;
    int64_t old = -1;
    int c = 0, cap = 0;
    for (int d = 0; d < ld->n_src; d++) {
        cap += ld->src[d].channels;
    }
    cap = cfg->channel_names ? cfg->n_channel_names : cap;
    DURE_TRY(dataio_strv_new(cap, &ld->channel_names));
    DURE_TRY(dataio_strv_new(cap, &ld->channel_units));
    ld->names_cap = cap;
    for (int j = 0; cfg->channel_names && j < cfg->n_channel_names; j++) {
        DURE_TRY(strmap_put(&col, cfg->channel_names[j], j, &old));
        DURE_TRY(dataio_strdup(cfg->channel_names[j], &ld->channel_names[j]));
        c++;
    }
    for (int d = 0; d < ld->n_src; d++) {
        struct source *sr = &ld->src[d];
        sr->to_union = malloc((size_t)sr->channels * sizeof *sr->to_union);
        DURE_ALLOC_TRY(sr->to_union, (size_t)sr->channels * sizeof *sr->to_union);
        for (int j = 0; j < sr->channels; j++) {
            const char *name = sr->info->channel_names[j];
            DURE_TRY(strmap_put(&col, name, c, &old));
            DURE_CHECK(old >= 0 || !cfg->channel_names, DURE_ERR_FORMAT,
                       "'%s' (dataset '%s') has channel '%s', which the training data do "
                       "not have", sr->info->path, sr->name, name);
            if (old < 0) {
                DURE_TRY(dataio_strdup(name, &ld->channel_names[c]));
                old = c++;
            }
            sr->to_union[j] = (int)old;
            if (!ld->channel_units[old]) {
                DURE_TRY(dataio_strdup(sr->info->channel_units[j], &ld->channel_units[old]));
            }
        }
    }
    ld->channels = c;
    DURE_CHECK(cfg->expect_channels == 0 || cfg->expect_channels == c, DURE_ERR_FORMAT,
               "'%s'%s has %d channels but model.channels = %d (set model.channels = 0 to "
               "take them from the data, or choose data.keys)", ld->src[0].info->path,
               ld->n_src > 1 ? " and the other datasets" : "", c, cfg->expect_channels);
    for (int j = 0; j < c; j++) {
        if (!ld->channel_units[j]) {
            DURE_TRY(dataio_strdup("", &ld->channel_units[j]));
        }
    }
    for (int d = 0; d < ld->n_src; d++) {
        struct source *sr = &ld->src[d];
        sr->present = calloc((size_t)c, sizeof *sr->present);
        DURE_ALLOC_TRY(sr->present, (size_t)c * sizeof *sr->present);
        sr->direct = sr->channels == c;
        for (int j = 0; j < sr->channels; j++) {
            sr->present[sr->to_union[j]] = 1.0f;
            sr->direct &= sr->to_union[j] == j;
        }
    }
out:
    strmap_free(&col);
    return st;
}

/* One sample rate per run: data.sample_rate_hz, else the first dataset's
 * that states one; a dataset at another refused (dure does not resample). */
static dure_status_t check_rates(dataio_loader_t *ld, const struct dataio_loader_config *cfg)
{
    dure_status_t st = DURE_OK;
    double run = cfg->sample_rate_hz;
    int from = -1;
    for (int d = 0; d < ld->n_src && run <= 0; d++) {
        if (ld->src[d].info->sample_rate_hz > 0) {
            run = ld->src[d].info->sample_rate_hz;
            from = d;
        }
    }
    for (int d = 0; d < ld->n_src; d++) {
        const struct source *sr = &ld->src[d];
        double hz = sr->info->sample_rate_hz;
        if (hz <= 0) {
            if (ld->n_src > 1 && ld->rank == 0) {
                dure_log_warn(__FILE__, __LINE__, "'%s' (dataset '%s') does not state its "
                              "sample rate: taken to be the run's, %g Hz", sr->info->path,
                              sr->name, run);
            }
            continue;
        }
        DURE_CHECK(dataio_same_rate(hz, run), DURE_ERR_FORMAT,
                   "'%s' (dataset '%s') is sampled at %g Hz but the run's rate is %g Hz "
                   "(%s%s%s): dure does not resample; resample it to %g Hz, or set "
                   "data.sample_rate_hz", sr->info->path, sr->name, hz, run,
                   from < 0 ? "data.sample_rate_hz" : "that of dataset '",
                   from < 0 ? "" : ld->src[from].name, from < 0 ? "" : "'", run);
    }
out:
    return st;
}

/* Shares, windows per epoch and slots of each dataset. */
static dure_status_t plan(dataio_loader_t *ld, const struct dataio_loader_config *cfg,
                          const struct dataio_source *in)
{
    dure_status_t st = DURE_OK;
    int64_t count[DATAIO_MIX_MAX];
    double weight[DATAIO_MIX_MAX], share[DATAIO_MIX_MAX];
    ld->src_windows = calloc((size_t)ld->n_src, sizeof *ld->src_windows);
    ld->src_first = calloc((size_t)ld->n_src + 1, sizeof *ld->src_first);
    DURE_ALLOC_TRY(ld->src_windows && ld->src_first ? ld->src_first : NULL,
                   (size_t)(2 * ld->n_src + 1) * 8);
    for (int d = 0; d < ld->n_src; d++) {
        ld->src_windows[d] = ld->src[d].win.n;
        weight[d] = in[d].weight;
    }
    dataio_mix_plan(ld->n_src, ld->src_windows, weight, cfg->balance_alpha, count,
                    ld->src_first, share);
    ld->n_epoch = ld->src_first[ld->n_src];
    for (int d = 0; d < ld->n_src; d++) {
        ld->src[d].per_epoch = count[d];
        ld->src[d].share = share[d];
        if (count[d] == 0 && ld->rank == 0) {
            dure_log_warn(__FILE__, __LINE__, "dataset '%s' (share %.3g) gives no window in "
                          "an epoch of %lld: raise data.%s.weight", ld->src[d].name,
                          share[d], (long long)ld->n_epoch, ld->src[d].name);
        }
    }
    int64_t excl = 0;
    for (int d = 0; d < ld->n_src; d++) {
        excl += ld->src[d].win.n_excl;
    }
    DURE_CHECK(ld->n_epoch >= ld->global_batch, DURE_ERR_FORMAT,
               "'%s'%s: the %s split has %lld windows of %d timesteps%s, fewer than one "
               "global batch of %lld", ld->src[0].info->path,
               ld->n_src > 1 ? " and the other datasets" : "",
               dataio_split_name(ld->src[0].split), (long long)ld->n_epoch, cfg->window,
               excl ? " after leaving out those with NaN or Inf" : "",
               (long long)ld->global_batch);
out:
    return st;
}

static dure_status_t alloc_ring(dataio_loader_t *ld, const struct dataio_loader_config *cfg)
{
    dure_status_t st = DURE_OK;
    size_t lb = (size_t)ld->lb, C = (size_t)ld->channels;
    size_t per = lb * (size_t)ld->window * C * sizeof(float);
    ld->nslots = ld->threaded ? cfg->prefetch + 1 : 1;
    ld->slots = calloc((size_t)ld->nslots, sizeof *ld->slots);
    ld->meta = calloc((size_t)ld->nslots * 2 * lb, sizeof *ld->meta);
    ld->meta_src = calloc((size_t)ld->nslots * lb, sizeof *ld->meta_src);
    ld->masks = calloc((size_t)ld->nslots * lb * C, sizeof *ld->masks);
    DURE_ALLOC_TRY(ld->slots && ld->meta && ld->meta_src && ld->masks ? ld->slots : NULL,
                   (size_t)ld->nslots * (sizeof *ld->slots + (20 + 4 * C) * lb));
    for (int i = 0; i < ld->nslots; i++) {
        struct slot *s = &ld->slots[i];
        s->data = ld->buf_alloc(per, ld->buf_ctx);
        DURE_ALLOC_TRY(s->data, per);
        /* Touch every page now: first-touch faults cost more than the reads. */
        memset(s->data, 0, per);
        s->episode = ld->meta + (size_t)i * 2 * lb;
        s->start = s->episode + lb;
        s->source = ld->meta_src + (size_t)i * lb;
        s->mask = ld->masks + (size_t)i * lb * C;
        s->seq = UINT64_MAX;
        s->state = SLOT_FREE;
    }
    int stage_c = 0;
    for (int d = 0; d < ld->n_src; d++) {
        struct source *sr = &ld->src[d];
        /* Coalesce reads up to the whole batch when the reader reads straight
         * into the batch (no staging that grows with the rows); otherwise one
         * window at a time, so memory stays a small multiple of a batch. */
        int64_t whole = (int64_t)ld->lb * ld->window;
        size_t one = dataio_scratch_bytes(sr->reader, ld->window);
        sr->max_rows = sr->direct && dataio_scratch_bytes(sr->reader, whole) <= one + (1u << 20)
                           ? whole
                           : ld->window;
        for (int t = ld->threaded ? 0 : 1; t < 2; t++) {
            DURE_TRY(dataio_scratch_create(sr->reader, sr->max_rows, &sr->scratch[t]));
        }
        if (!sr->direct && sr->channels > stage_c) {
            stage_c = sr->channels;
        }
    }
    for (int t = ld->threaded ? 0 : 1; t < 2 && stage_c > 0; t++) {
        size_t bytes = (size_t)ld->window * (size_t)stage_c * sizeof(float);
        ld->stage[t] = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
        DURE_ALLOC_TRY(ld->stage[t], bytes);
    }
out:
    return st;
}

dure_status_t dataio_loader_open(const struct dataio_loader_config *cfg, dataio_loader_t **out)
{
    dure_status_t st = DURE_OK;
    dataio_loader_t *ld = NULL;
    int rank = cfg->rank, world = cfg->world_size, n = 0;
    struct dataio_source one;
    const struct dataio_source *in = NULL;

    *out = NULL;
    if (cfg->comm != MPI_COMM_NULL) {
        DURE_MPI_TRY(MPI_Comm_rank(cfg->comm, &rank));
        DURE_MPI_TRY(MPI_Comm_size(cfg->comm, &world));
    }
    DURE_TRY(check_config(cfg, rank, world));
    sources_of(cfg, &one, &in, &n);
    ld = calloc(1, sizeof *ld);
    DURE_ALLOC_TRY(ld, sizeof *ld);
    DURE_CHECK(pthread_mutex_init(&ld->mu, NULL) == 0 &&
                   pthread_cond_init(&ld->cv_prod, NULL) == 0 &&
                   pthread_cond_init(&ld->cv_cons, NULL) == 0,
               DURE_ERR_INTERNAL, "pthread init");
    ld->sync_ready = 1;
    ld->comm = cfg->comm;
    ld->rank = rank;
    ld->world = world;
    ld->window = cfg->window;
    ld->global_batch = cfg->global_batch;
    ld->lb = cfg->global_batch / world;
    ld->seed = cfg->seed;
    ld->shuffle = cfg->shuffle;
    ld->normalize = cfg->normalize;
    ld->on_nan = cfg->on_nan;
    ld->buf_alloc = cfg->buf_alloc ? cfg->buf_alloc : default_alloc;
    ld->buf_free = cfg->buf_alloc ? cfg->buf_free : default_free;
    ld->buf_ctx = cfg->buf_ctx;
    ld->src = calloc((size_t)n, sizeof *ld->src);
    DURE_ALLOC_TRY(ld->src, (size_t)n * sizeof *ld->src);
    ld->n_src = n;

    for (int d = 0; d < n; d++) {
        DURE_TRY(dure_agree(ld->comm, open_source(ld, cfg, &in[d], &ld->src[d]),
                            "opening a dataset"));
    }
    DURE_TRY(dure_agree(ld->comm, check_rates(ld, cfg), "checking the sample rates"));
    for (int d = 0; d < n; d++) {
        DURE_TRY(index_source(ld, cfg, &in[d], &ld->src[d]));
    }
    DURE_TRY(dure_agree(ld->comm, setup_channels(ld, cfg), "laying out the channels"));
    DURE_TRY(dure_agree(ld->comm, plan(ld, cfg, in), "planning the mixture"));

    ld->threaded = 1;
    if (ld->src[0].info->io == DATAIO_IO_MPIIO) {
        int provided = MPI_THREAD_SINGLE;
        DURE_MPI_TRY(MPI_Query_thread(&provided));
        ld->threaded = provided == MPI_THREAD_MULTIPLE;
    }
    DURE_TRY(alloc_ring(ld, cfg));
    if (ld->threaded) {
        DURE_CHECK(pthread_create(&ld->thread, NULL, producer, ld) == 0, DURE_ERR_INTERNAL,
                   "cannot start the prefetch thread");
        ld->thread_started = 1;
    }
    *out = ld;
    ld = NULL;
out:
    dataio_loader_close(ld);
    return st;
}

void dataio_loader_close(dataio_loader_t *ld)
{
    if (!ld) {
        return;
    }
    if (ld->thread_started) {
        pthread_mutex_lock(&ld->mu);
        ld->stop = 1;
        pthread_cond_broadcast(&ld->cv_prod);
        pthread_mutex_unlock(&ld->mu);
        pthread_join(ld->thread, NULL);
    }
    for (int i = 0; ld->slots && i < ld->nslots; i++) {
        if (ld->slots[i].data) {
            ld->buf_free(ld->slots[i].data, ld->buf_ctx);
        }
    }
    free(ld->slots);
    free(ld->meta);
    free(ld->meta_src);
    free(ld->masks);
    free(ld->stage[0]);
    free(ld->stage[1]);
    for (int d = 0; d < ld->n_src; d++) {
        struct source *sr = &ld->src[d];
        dataio_scratch_free(sr->scratch[0]);
        dataio_scratch_free(sr->scratch[1]);
        dataio_windows_free(&sr->win);
        free(sr->mean);
        free(sr->to_union);
        free(sr->present);
        free(sr->name);
        dataio_reader_close(sr->reader);
    }
    free(ld->src);
    free(ld->src_windows);
    free(ld->src_first);
    dataio_strv_free(ld->channel_names, ld->names_cap);
    dataio_strv_free(ld->channel_units, ld->names_cap);
    if (ld->sync_ready) {
        pthread_cond_destroy(&ld->cv_prod);
        pthread_cond_destroy(&ld->cv_cons);
        pthread_mutex_destroy(&ld->mu);
    }
    free(ld);
}
