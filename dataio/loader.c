/* dataio/loader.c - the streaming loader; see loader.h for the contract. */
#include "dataio/loader.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/agree.h"
#include "common/mpi_check.h"
#include "common/timing.h"
#include "dataio/order.h"
#include "dataio/stats.h"

/* One batch buffer of the ring and the batch it holds. */
enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_FAILED };

struct slot {
    float *data;        /* (local_batch, W, C) */
    int64_t *episode;   /* (local_batch) */
    int64_t *start;     /* (local_batch) */
    int64_t epoch, position;
    uint64_t seq;       /* the batch (sequence number) it holds */
    enum slot_state state;
};

struct dataio_loader {
    dataio_reader_t *reader;
    const struct dataio_dataset_info *info;
    struct dataio_windows win;
    MPI_Comm comm;                 /* MPI_COMM_NULL when emulating ranks */
    int rank, world, lb, window, channels;
    int64_t global_batch;
    uint64_t seed;
    int shuffle, normalize;
    int check_finite;              /* no statistics know the NaN/Inf rows */
    dataio_nan_t on_nan;
    float *mean, *std, *inv_std;   /* (C) each, one allocation */

    void *(*buf_alloc)(size_t, void *);
    void (*buf_free)(void *, void *);
    void *buf_ctx;
    int nslots;
    struct slot *slots;            /* (nslots) */
    int64_t *meta;                 /* (nslots, 2, local_batch) episode, start */
    dataio_scratch_t *scratch[2];  /* [0] the prefetch thread's, [1] the caller's */
    int64_t max_rows;              /* rows per coalesced read */

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

static const char *const nan_names[] = {"refuse", "skip"};

dure_status_t dataio_nan_parse(const char *s, dataio_nan_t *out)
{
    dure_status_t st = DURE_OK;
    for (int i = 0; i < 2; i++) {
        if (s && strcmp(s, nan_names[i]) == 0) {
            *out = (dataio_nan_t)i;
            goto out;
        }
    }
    DURE_FAIL(DURE_ERR_ARG, "data.on_nan '%s' is not one of refuse, skip", s ? s : "(null)");
out:
    return st;
}

const char *dataio_nan_name(dataio_nan_t v) { return (unsigned)v < 2 ? nan_names[v] : "?"; }

void dataio_loader_config_init(struct dataio_loader_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->layout = DATAIO_LAYOUT_DURE;
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
    if (c->position + ld->global_batch > ld->win.n) {
        c->epoch++;
        c->position = 0;
    }
}

/* "file F, episode E (name), timestep T, channel 'X'" for messages. */
static void where(const dataio_loader_t *ld, int64_t e, int64_t t, int ch, char *buf,
                  size_t len)
{
    const struct dataio_dataset_info *in = ld->info;
    snprintf(buf, len, "file '%s'%s, episode %lld ('%s'), timestep %lld (row %lld), "
             "channel %d '%s'", in->path,
             in->layout == DATAIO_LAYOUT_DURE ? ", dataset '/signals'" : "", (long long)e,
             in->episode_names[e], (long long)t, (long long)(in->episode_start[e] + t), ch,
             in->channel_names[ch]);
}

/*
 * One window x (W, C): normalizes it in place (if normalizing) and returns
 * nonzero if it holds a NaN or Inf. Branch-free over the values (an
 * exponent of all ones means NaN or Inf) so it vectorizes; the check rides
 * along with normalization for free. Without normalization it runs only
 * when no statistics list the non-finite rows (with them, REFUSE already
 * refused at open and SKIP left those windows out).
 */
static uint32_t scan_window(const dataio_loader_t *ld, float *x)
{
    const int64_t W = ld->window, C = ld->channels;
    const float *mean = ld->mean, *inv = ld->inv_std;
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

/* Read the windows of the batch at (epoch, position) into s. Runs on the
 * prefetch thread or the caller's: no HDF5, no logging; errors go to err. */
static dure_status_t fill(dataio_loader_t *ld, struct slot *s, int64_t epoch, int64_t pos,
                          dataio_scratch_t *scratch, uint64_t *bytes, char *err,
                          size_t err_len)
{
    dure_status_t st = DURE_OK;
    const int64_t W = ld->window, C = ld->channels;
    const int64_t first = pos + (int64_t)ld->rank * ld->lb;
    const uint64_t key = dataio_perm_key(ld->seed, epoch);

    s->epoch = epoch;
    s->position = pos;
    for (int i = 0; i < ld->lb; i++) {
        int64_t v = ld->shuffle ? dataio_perm(ld->win.n, key, first + i) : first + i;
        dataio_windows_get(&ld->win, v, &s->episode[i], &s->start[i]);
    }
    /* Windows adjacent in the episode and in the batch: one read. */
    for (int i = 0; i < ld->lb;) {
        int j = i + 1;
        while (j < ld->lb && s->episode[j] == s->episode[i] &&
               s->start[j] == s->start[j - 1] + W && (j - i + 1) * W <= ld->max_rows) {
            j++;
        }
        st = dataio_reader_read(ld->reader, s->episode[i], s->start[i], (j - i) * W,
                                s->data + (size_t)i * (size_t)(W * C), scratch, bytes,
                                err, err_len);
        if (st != DURE_OK) {
            return st;
        }
        i = j;
    }
    if (!ld->normalize && !ld->check_finite) {
        return st; /* the statistics vouch for these rows: nothing to do */
    }
    for (int i = 0; i < ld->lb; i++) {
        float *x = s->data + (size_t)i * (size_t)(W * C);
        if (scan_window(ld, x) != 0) {
            /* Rare: find the first non-finite value to name it. */
            int64_t k = 0;
            while (isfinite(x[k])) {
                k++;
            }
            char loc[700];
            where(ld, s->episode[i], s->start[i] + k / C, (int)(k % C), loc, sizeof loc);
            snprintf(err, err_len, "%s: %s value; set data.on_nan = skip to leave windows "
                     "with NaN or Inf out", loc, isnan(x[k]) ? "NaN" : "Inf");
            return DURE_ERR_FORMAT;
        }
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
                         struct dataio_cursor c, dataio_scratch_t *scratch, int prefetcher)
{
    char err[1024] = "";
    uint64_t bytes = 0, gen = ld->generation;
    ld->busy += prefetcher;
    pthread_mutex_unlock(&ld->mu);
    double t0 = dure_now_s();
    dure_status_t st = fill(ld, s, c.epoch, c.position, scratch, &bytes, err, sizeof err);
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
        fill_claimed(ld, s, seq, c, ld->scratch[0], 1);
        pthread_cond_broadcast(&ld->cv_cons);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

static void fill_batch(const dataio_loader_t *ld, const struct slot *s, struct dataio_batch *b)
{
    b->data = s->data;
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
            fill_claimed(ld, t, seq, c, ld->scratch[1], 0);
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
    if (c.position + ld->global_batch > ld->win.n) {
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
    return ld->info->channel_names;
}
const char *const *dataio_loader_channel_units(const dataio_loader_t *ld)
{
    return ld->info->channel_units;
}
int dataio_loader_local_batch(const dataio_loader_t *ld) { return ld->lb; }
int dataio_loader_window(const dataio_loader_t *ld) { return ld->window; }
int64_t dataio_loader_windows(const dataio_loader_t *ld) { return ld->win.n; }
int64_t dataio_loader_batches_per_epoch(const dataio_loader_t *ld)
{
    return ld->win.n / ld->global_batch;
}

void dataio_loader_norm(const dataio_loader_t *ld, const float **mean, const float **std)
{
    *mean = ld->mean;
    *std = ld->std;
}

const struct dataio_dataset_info *dataio_loader_info(const dataio_loader_t *ld)
{
    return ld->info;
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
    DURE_CHECK(cfg->path && cfg->path[0], DURE_ERR_ARG, "data.path is empty");
    DURE_CHECK(cfg->window >= 1, DURE_ERR_ARG, "'%s': window of %d timesteps must be >= 1",
               cfg->path, cfg->window);
    DURE_CHECK(cfg->stride >= 0, DURE_ERR_ARG, "'%s': window stride %d must be >= 0",
               cfg->path, cfg->stride);
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

/* Mean/std used to normalize: the override, the file's, or computed. */
static dure_status_t setup_norm(dataio_loader_t *ld, const struct dataio_loader_config *cfg,
                                const struct dataio_stats *s)
{
    dure_status_t st = DURE_OK;
    int c = ld->channels;
    ld->mean = malloc(3 * (size_t)c * sizeof *ld->mean);
    DURE_ALLOC_TRY(ld->mean, 3 * (size_t)c * sizeof *ld->mean);
    ld->std = ld->mean + c;
    ld->inv_std = ld->std + c;
    for (int j = 0; j < c; j++) {
        double m = 0.0, sd = 1.0;
        if (ld->normalize) {
            m = cfg->norm_mean ? cfg->norm_mean[j] : s->mean[j];
            sd = cfg->norm_std ? cfg->norm_std[j] : s->std[j];
            DURE_CHECK(isfinite(m) && isfinite(sd) && sd >= 0, DURE_ERR_FORMAT,
                       "'%s': channel %d '%s' has normalization mean %g, std %g",
                       ld->info->path, j, ld->info->channel_names[j], m, sd);
            if (sd == 0.0) {
                if (ld->rank == 0) {
                    dure_log_warn(__FILE__, __LINE__,
                                  "'%s': channel %d '%s' is constant (std 0): centred "
                                  "but not scaled", ld->info->path, j,
                                  ld->info->channel_names[j]);
                }
                sd = 1.0;
            }
        }
        ld->mean[j] = (float)m;
        ld->std[j] = (float)sd;
        ld->inv_std[j] = (float)(1.0 / sd);
    }
out:
    return st;
}

/* Under REFUSE, a non-finite row the stats know of fails the open. */
static dure_status_t refuse_known_nan(dataio_loader_t *ld, const struct dataio_stats *s,
                                      dataio_split_t split)
{
    dure_status_t st = DURE_OK;
    const struct dataio_dataset_info *in = ld->info;
    dataio_scratch_t *sc = NULL;
    float *row = NULL;
    for (int64_t i = 0; i < s->n_nonfinite_rows; i++) {
        int64_t g = s->nonfinite_rows[i], e = dataio_episode_of_row(in, g);
        int val = in->is_val && in->is_val[e];
        if ((split == DATAIO_SPLIT_TRAIN && val) || (split == DATAIO_SPLIT_VAL && !val)) {
            continue;
        }
        int64_t t = g - in->episode_start[e];
        DURE_TRY(dataio_scratch_create(ld->reader, 1, &sc));
        row = malloc((size_t)ld->channels * sizeof *row);
        DURE_ALLOC_TRY(row, (size_t)ld->channels * sizeof *row);
        DURE_TRY(dataio_reader_read_logged(ld->reader, e, t, 1, row, sc));
        int ch = 0;
        while (ch + 1 < ld->channels && isfinite(row[ch])) {
            ch++;
        }
        char loc[700];
        where(ld, e, t, ch, loc, sizeof loc);
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

static dure_status_t alloc_ring(dataio_loader_t *ld, const struct dataio_loader_config *cfg)
{
    dure_status_t st = DURE_OK;
    size_t per = (size_t)ld->lb * (size_t)ld->window * (size_t)ld->channels * sizeof(float);
    ld->nslots = ld->threaded ? cfg->prefetch + 1 : 1;
    ld->slots = calloc((size_t)ld->nslots, sizeof *ld->slots);
    ld->meta = calloc((size_t)ld->nslots * 2 * (size_t)ld->lb, sizeof *ld->meta);
    DURE_ALLOC_TRY(ld->slots && ld->meta ? ld->slots : NULL,
                   (size_t)ld->nslots * (sizeof *ld->slots + 16 * (size_t)ld->lb));
    for (int i = 0; i < ld->nslots; i++) {
        struct slot *s = &ld->slots[i];
        s->data = ld->buf_alloc(per, ld->buf_ctx);
        DURE_ALLOC_TRY(s->data, per);
        /* Touch every page now: first-touch faults cost more than the reads. */
        memset(s->data, 0, per);
        s->episode = ld->meta + (size_t)i * 2 * (size_t)ld->lb;
        s->start = s->episode + ld->lb;
        s->seq = UINT64_MAX;
        s->state = SLOT_FREE;
    }
    /* Coalesce reads up to the whole batch when the reader reads straight
     * into the batch (no staging that grows with the rows); otherwise one
     * window at a time, so memory stays a small multiple of a batch. */
    int64_t whole = (int64_t)ld->lb * ld->window;
    size_t one = dataio_scratch_bytes(ld->reader, ld->window);
    ld->max_rows = dataio_scratch_bytes(ld->reader, whole) <= one + (1u << 20) ? whole
                                                                             : ld->window;
    for (int i = ld->threaded ? 0 : 1; i < 2; i++) {
        DURE_TRY(dataio_scratch_create(ld->reader, ld->max_rows, &ld->scratch[i]));
    }
out:
    return st;
}

static dure_status_t open_local(dataio_loader_t *ld, const struct dataio_loader_config *cfg)
{
    dure_status_t st = DURE_OK;
    struct dataio_reader_config rc = {
        .path = cfg->path, .layout = cfg->layout, .keys = cfg->keys, .io = cfg->io,
        .comm = ld->comm,
    };
    DURE_TRY(dataio_reader_open(&rc, &ld->reader));
    ld->info = dataio_reader_info(ld->reader);
    ld->channels = ld->info->n_channels;
    DURE_CHECK(cfg->expect_channels == 0 || cfg->expect_channels == ld->channels,
               DURE_ERR_FORMAT,
               "'%s' has %d channels but model.channels = %d (set model.channels = 0 to "
               "take them from the data, or choose data.keys)",
               ld->info->path, ld->channels, cfg->expect_channels);
    DURE_CHECK(cfg->split != DATAIO_SPLIT_VAL || ld->info->is_val, DURE_ERR_ARG,
               "'%s' defines no validation split: set data.val_path, or create the file "
               "with a validation fraction", ld->info->path);
out:
    return st;
}

dure_status_t dataio_loader_open(const struct dataio_loader_config *cfg, dataio_loader_t **out)
{
    dure_status_t st = DURE_OK;
    dataio_loader_t *ld = NULL;
    struct dataio_stats *computed = NULL;
    int rank = cfg->rank, world = cfg->world_size;

    *out = NULL;
    if (cfg->comm != MPI_COMM_NULL) {
        DURE_MPI_TRY(MPI_Comm_rank(cfg->comm, &rank));
        DURE_MPI_TRY(MPI_Comm_size(cfg->comm, &world));
    }
    DURE_TRY(check_config(cfg, rank, world));
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

    DURE_TRY(dure_agree(ld->comm, open_local(ld, cfg), "opening the dataset"));

    /* Statistics: needed to normalize (unless overridden) and, to skip,
     * the non-finite rows. The file's, else one pass shared by the ranks. */
    const struct dataio_stats *s = ld->info->stats;
    int need_norm = ld->normalize && !cfg->norm_mean;
    int compute = !s && (need_norm || ld->on_nan == DATAIO_NAN_SKIP);
    if (ld->comm != MPI_COMM_NULL) {
        /* The pass is collective: all ranks make it if any needs it. */
        int any = 0;
        DURE_MPI_TRY(MPI_Allreduce(&compute, &any, 1, MPI_INT, MPI_MAX, ld->comm));
        compute = any;
    }
    if (compute) {
        DURE_TRY(dataio_stats_compute(ld->reader, DATAIO_SPLIT_TRAIN, ld->comm, &computed));
        s = computed;
    }
    ld->check_finite = s == NULL;
    st = setup_norm(ld, cfg, s);
    if (st == DURE_OK && s && ld->on_nan == DATAIO_NAN_REFUSE) {
        st = refuse_known_nan(ld, s, cfg->split);
    }
    if (st == DURE_OK) {
        int64_t stride = cfg->stride ? cfg->stride : cfg->window;
        int skip = ld->on_nan == DATAIO_NAN_SKIP;
        st = dataio_windows_build(ld->info, cfg->split, cfg->window, stride,
                                  skip ? s->nonfinite_rows : NULL,
                                  skip ? s->n_nonfinite_rows : 0, &ld->win);
    }
    if (st == DURE_OK && ld->win.n_short > 0 && rank == 0) {
        dure_log_warn(__FILE__, __LINE__,
                      "'%s': %lld episodes of the %s split are shorter than the window of "
                      "%d timesteps and are not used (the first: episode %lld, %lld "
                      "timesteps)", ld->info->path, (long long)ld->win.n_short,
                      dataio_split_name(cfg->split), cfg->window,
                      (long long)ld->win.first_short,
                      (long long)(ld->info->episode_start[ld->win.first_short + 1] -
                                  ld->info->episode_start[ld->win.first_short]));
    }
    if (st == DURE_OK) {
        DURE_CHECK(ld->win.n_all > 0, DURE_ERR_FORMAT,
                   "'%s': no episode of the %s split is as long as the window of %d "
                   "timesteps", ld->info->path, dataio_split_name(cfg->split), cfg->window);
        DURE_CHECK(ld->win.n >= ld->global_batch, DURE_ERR_FORMAT,
                   "'%s': the %s split has %lld windows of %d timesteps%s, fewer than one "
                   "global batch of %lld", ld->info->path, dataio_split_name(cfg->split),
                   (long long)ld->win.n, cfg->window,
                   ld->win.n_excl ? " after leaving out those with NaN or Inf" : "",
                   (long long)ld->global_batch);
    }
    DURE_TRY(dure_agree(ld->comm, st, "indexing the dataset"));
    if (ld->comm != MPI_COMM_NULL) {
        /* Ranks on different nodes must see the same file. */
        int64_t mine[2] = {ld->win.n, ld->channels}, lo[2], hi[2];
        DURE_MPI_TRY(MPI_Allreduce(mine, lo, 2, MPI_INT64_T, MPI_MIN, ld->comm));
        DURE_MPI_TRY(MPI_Allreduce(mine, hi, 2, MPI_INT64_T, MPI_MAX, ld->comm));
        DURE_CHECK(lo[0] == hi[0] && lo[1] == hi[1], DURE_ERR_FORMAT,
                   "'%s': ranks see different datasets (%lld to %lld windows, %lld to %lld "
                   "channels): is the file the same on every node?", ld->info->path,
                   (long long)lo[0], (long long)hi[0], (long long)lo[1], (long long)hi[1]);
    }

    ld->threaded = 1;
    if (ld->info->io == DATAIO_IO_MPIIO) {
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
    dataio_stats_free(computed);
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
    dataio_scratch_free(ld->scratch[0]);
    dataio_scratch_free(ld->scratch[1]);
    dataio_windows_free(&ld->win);
    free(ld->mean);
    dataio_reader_close(ld->reader);
    if (ld->sync_ready) {
        pthread_cond_destroy(&ld->cv_prod);
        pthread_cond_destroy(&ld->cv_cons);
        pthread_mutex_destroy(&ld->mu);
    }
    free(ld);
}
