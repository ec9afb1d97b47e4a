/* dataio/csv_import.c - see csv_import.h. */
#include "dataio/csv_import.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sha256.h"
#include "dataio/format.h"
#include "dataio/order.h"
#include "dataio/reader_impl.h"

#define ROWS_PER_APPEND 4096
/* Bytes of the HMAC kept, in hex: 128 bits. */
#define HASH_BYTES 16

void dataio_import_config_init(struct dataio_import_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->seed = 1234;
}

dure_status_t dataio_import_add_column(struct dataio_import_config *cfg, dataio_col_role_t role,
                                       const char *names)
{
    dure_status_t st = DURE_OK;
    char **items = NULL;
    int n = 0;
    static const char *const flag[] = {"--hash", "--drop", "--meta"};
    DURE_TRY(dataio_split_list(names, flag[role], &items, &n));
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < cfg->n_cols; j++) {
            DURE_CHECK(strcmp(cfg->cols[j].name, items[i]) != 0, DURE_ERR_ARG,
                       "column '%s' is given both %s and %s", items[i],
                       flag[cfg->cols[j].role], flag[role]);
        }
        struct dataio_import_col *c = realloc(cfg->cols, (size_t)(cfg->n_cols + 1) * sizeof *c);
        DURE_ALLOC_TRY(c, (size_t)(cfg->n_cols + 1) * sizeof *c);
        cfg->cols = c;
        DURE_TRY(dataio_strdup(items[i], &c[cfg->n_cols].name));
        c[cfg->n_cols].role = role;
        cfg->n_cols++;
    }
out:
    free(items);
    return st;
}

void dataio_import_config_free(struct dataio_import_config *cfg)
{
    for (int i = 0; i < cfg->n_cols; i++) {
        free(cfg->cols[i].name);
    }
    free(cfg->cols);
    cfg->cols = NULL;
    cfg->n_cols = 0;
}

/* ------------------------------------------------------------ CSV reader */

struct csv {
    FILE *f;
    const char *path;
    char *line;          /* getline buffer */
    size_t line_cap;
    char *out;           /* unquoted field text, fields NUL-separated */
    size_t out_cap;
    size_t *start;       /* (nf) field offsets into out */
    int nf, cap_f;
    int64_t line_no;     /* physical lines read so far */
    int64_t rec_line;    /* first line of the current record */
};

static dure_status_t out_put(struct csv *c, size_t *len, char ch)
{
    dure_status_t st = DURE_OK;
    if (*len + 1 >= c->out_cap) {
        size_t cap = c->out_cap ? 2 * c->out_cap : 1024;
        char *p = realloc(c->out, cap);
        DURE_ALLOC_TRY(p, cap);
        c->out = p;
        c->out_cap = cap;
    }
    c->out[(*len)++] = ch;
out:
    return st;
}

static dure_status_t field_start(struct csv *c, size_t at)
{
    dure_status_t st = DURE_OK;
    if (c->nf == c->cap_f) {
        int cap = c->cap_f ? 2 * c->cap_f : 32;
        size_t *p = realloc(c->start, (size_t)cap * sizeof *p);
        DURE_ALLOC_TRY(p, (size_t)cap * sizeof *p);
        c->start = p;
        c->cap_f = cap;
    }
    c->start[c->nf++] = at;
out:
    return st;
}

/* Next record into fields; *eof = 1 at the end. Blank lines are skipped. */
static dure_status_t csv_next(struct csv *c, int *eof)
{
    dure_status_t st = DURE_OK;
    size_t len = 0;
    int quoted = 0, in_field_quotes = 0;
    *eof = 0;
    c->nf = 0;
    for (;;) {
        errno = 0;
        ssize_t n = getline(&c->line, &c->line_cap, c->f);
        if (n < 0) {
            DURE_SYS_TRY(errno == 0, "'%s': read after line %lld", c->path, (long long)c->line_no);
            DURE_CHECK(!in_field_quotes, DURE_ERR_FORMAT,
                       "%s:%lld: column %d: quoted field is never closed", c->path,
                       (long long)c->rec_line, c->nf);
            if (c->nf == 0) {
                *eof = 1;
                goto out;
            }
            break;
        }
        c->line_no++;
        if (!in_field_quotes) {
            while (n > 0 && (c->line[n - 1] == '\n' || c->line[n - 1] == '\r')) {
                c->line[--n] = '\0';
            }
            if (n == 0) {
                continue; /* blank line */
            }
            c->rec_line = c->line_no;
            if (c->line_no == 1 && n >= 3 && memcmp(c->line, "\xef\xbb\xbf", 3) == 0) {
                memmove(c->line, c->line + 3, (size_t)n - 2);
                n -= 3;
            }
            DURE_TRY(field_start(c, 0));
        } else {
            /* A quoted field spans lines: the newline is part of it. */
            while (n > 0 && (c->line[n - 1] == '\n' || c->line[n - 1] == '\r')) {
                c->line[--n] = '\0';
            }
            DURE_TRY(out_put(c, &len, '\n'));
        }
        for (ssize_t i = 0; i < n; i++) {
            char ch = c->line[i];
            if (in_field_quotes) {
                if (ch == '"' && i + 1 < n && c->line[i + 1] == '"') {
                    DURE_TRY(out_put(c, &len, '"'));
                    i++;
                } else if (ch == '"') {
                    in_field_quotes = 0;
                } else {
                    DURE_TRY(out_put(c, &len, ch));
                }
            } else if (ch == ',') {
                DURE_TRY(out_put(c, &len, '\0'));
                DURE_TRY(field_start(c, len));
                quoted = 0;
            } else if (ch == '"' && !quoted && len == c->start[c->nf - 1]) {
                in_field_quotes = quoted = 1;
            } else if (ch == '"') {
                DURE_FAIL(DURE_ERR_FORMAT,
                          "%s:%lld: column %d: stray quote inside a field (quote the whole "
                          "field and double inner quotes)", c->path, (long long)c->line_no,
                          c->nf);
            } else {
                DURE_TRY(out_put(c, &len, ch));
            }
        }
        if (!in_field_quotes) {
            break;
        }
    }
    DURE_TRY(out_put(c, &len, '\0'));
out:
    return st;
}

static const char *field(const struct csv *c, int i) { return c->out + c->start[i]; }

/* ------------------------------------------------------------- importer */

/* A string set (open addressing) for the episode ids seen so far. */
struct strset {
    char **slot;
    size_t cap, n;
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    }
    return h;
}

static dure_status_t strset_add(struct strset *s, const char *v, int *was_there)
{
    dure_status_t st = DURE_OK;
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        char **slot = calloc(cap, sizeof *slot);
        DURE_ALLOC_TRY(slot, cap * sizeof *slot);
        for (size_t i = 0; i < s->cap; i++) {
            if (s->slot[i]) {
                size_t j = fnv1a(s->slot[i]) & (cap - 1);
                while (slot[j]) {
                    j = (j + 1) & (cap - 1);
                }
                slot[j] = s->slot[i];
            }
        }
        free(s->slot);
        s->slot = slot;
        s->cap = cap;
    }
    size_t j = fnv1a(v) & (s->cap - 1);
    while (s->slot[j]) {
        if (strcmp(s->slot[j], v) == 0) {
            *was_there = 1;
            goto out;
        }
        j = (j + 1) & (s->cap - 1);
    }
    *was_there = 0;
    DURE_TRY(dataio_strdup(v, &s->slot[j]));
    s->n++;
out:
    return st;
}

static void strset_free(struct strset *s)
{
    for (size_t i = 0; i < s->cap; i++) {
        free(s->slot[i]);
    }
    free(s->slot);
}

/* What each header column becomes. */
enum role { R_CHANNEL, R_EPISODE, R_TIME, R_HASH, R_DROP, R_META };

/* Per-episode string columns (hashed, meta, and the episode id). */
struct pcol {
    int col;             /* header index */
    char *name;
    int hashed;
    struct dataio_names values;  /* (episodes) stored values */
    char *cur;           /* raw value of the current episode */
};

struct imp {
    const struct dataio_import_config *cfg;
    char **header;       /* (ncol) of the first file */
    int ncol;
    enum role *role;     /* (ncol) */
    int *chan_of;        /* (ncol) channel index or -1 */
    int nchan;
    struct pcol *pc;     /* (npc) */
    int npc;
    unsigned char *key;
    size_t key_len;
    dataio_writer_t *w;
    float *rows;         /* (ROWS_PER_APPEND, C) */
    int64_t nrows;       /* rows buffered */
    int64_t ep_rows;     /* rows of the current episode */
    int in_episode;
    char *cur_id;        /* current episode id (raw) */
    int64_t cur_id_line;
    const char *ep_file;  /* where the current episode started */
    int64_t ep_line;
    struct strset seen;
    double t_first, t_prev;
    double rate;         /* samples per second, once known */
    int64_t total_rows;
};

static dure_status_t read_key(struct imp *im)
{
    dure_status_t st = DURE_OK;
    const struct dataio_import_config *cfg = im->cfg;
    FILE *f = NULL;
    if (cfg->key_file) {
        unsigned char buf[4096];
        f = fopen(cfg->key_file, "rb");
        DURE_SYS_TRY(f != NULL, "anonymization key file '%s'", cfg->key_file);
        size_t n = fread(buf, 1, sizeof buf, f);
        DURE_SYS_TRY(!ferror(f), "anonymization key file '%s': read", cfg->key_file);
        if (n > 0 && buf[n - 1] == '\n') {
            n--;
        }
        im->key = malloc(n ? n : 1);
        DURE_ALLOC_TRY(im->key, n);
        memcpy(im->key, buf, n);
        im->key_len = n;
        explicit_bzero(buf, sizeof buf);
    } else {
        const char *k = getenv(DATAIO_ANON_KEY_ENV);
        DURE_CHECK(k, DURE_ERR_ARG,
                   "columns to hash need a secret key: give --key-file PATH or set %s",
                   DATAIO_ANON_KEY_ENV);
        im->key_len = strlen(k);
        im->key = malloc(im->key_len ? im->key_len : 1);
        DURE_ALLOC_TRY(im->key, im->key_len);
        memcpy(im->key, k, im->key_len);
    }
    DURE_CHECK(im->key_len >= DATAIO_ANON_KEY_MIN, DURE_ERR_ARG,
               "the anonymization key from %s is %zu bytes; at least %d are required "
               "(e.g. head -c 32 /dev/urandom | base64)",
               cfg->key_file ? cfg->key_file : DATAIO_ANON_KEY_ENV, im->key_len,
               DATAIO_ANON_KEY_MIN);
out:
    if (f) {
        fclose(f);
    }
    return st;
}

static dure_status_t hash_hex(const struct imp *im, const char *v,
                              char out[2 * HASH_BYTES + 1])
{
    dure_status_t st = DURE_OK;
    uint8_t mac[DURE_SHA256_BYTES];
    char full[DURE_SHA256_HEX];
    DURE_TRY(dure_hmac_sha256(im->key, im->key_len, v, strlen(v), mac));
    dure_sha256_hex(mac, full);
    memcpy(out, full, 2 * HASH_BYTES);
    out[2 * HASH_BYTES] = '\0';
out:
    explicit_bzero(mac, sizeof mac);
    return st;
}

static const char *role_flag(enum role r)
{
    switch (r) {
    case R_HASH: return "--hash";
    case R_DROP: return "--drop";
    case R_META: return "--meta";
    case R_EPISODE: return "--episode-col";
    case R_TIME: return "--time-col";
    default: return "channel";
    }
}

/* Roles of the header's columns; the header of the first file. */
static dure_status_t plan(struct imp *im, const struct csv *c)
{
    dure_status_t st = DURE_OK;
    const struct dataio_import_config *cfg = im->cfg;
    char list[512];
    struct dataio_names hdr = {0};
    im->ncol = c->nf;
    DURE_TRY(dataio_strv_new(c->nf, &im->header));
    im->role = calloc((size_t)c->nf, sizeof *im->role);
    im->chan_of = calloc((size_t)c->nf, sizeof *im->chan_of);
    DURE_ALLOC_TRY(im->role && im->chan_of ? im->role : NULL, (size_t)c->nf * 8);
    for (int i = 0; i < c->nf; i++) {
        DURE_TRY(dataio_strdup(field(c, i), &im->header[i]));
        DURE_CHECK(im->header[i][0], DURE_ERR_FORMAT, "%s:%lld: column %d has an empty name",
                   c->path, (long long)c->rec_line, i + 1);
        for (int j = 0; j < i; j++) {
            DURE_CHECK(strcmp(im->header[i], im->header[j]) != 0, DURE_ERR_FORMAT,
                       "%s:%lld: columns %d and %d are both named '%s'", c->path,
                       (long long)c->rec_line, j + 1, i + 1, im->header[i]);
        }
        DURE_CHECK(dataio_names_push(&hdr, im->header[i]) == 0, DURE_ERR_NOMEM,
                   "out of memory");
    }
    dataio_names_join(&hdr, list, sizeof list);
    struct { const char *name; enum role r; } want[2] = {{cfg->episode_col, R_EPISODE},
                                                       {cfg->time_col, R_TIME}};
    for (int k = 0; k < 2 + cfg->n_cols; k++) {
        const char *name = k < 2 ? want[k].name : cfg->cols[k - 2].name;
        if (!name) {
            continue;
        }
        enum role r = k < 2 ? want[k].r
                            : cfg->cols[k - 2].role == DATAIO_COL_HASH ? R_HASH
                            : cfg->cols[k - 2].role == DATAIO_COL_DROP ? R_DROP
                                                                       : R_META;
        int found = -1;
        for (int i = 0; i < im->ncol; i++) {
            if (strcmp(im->header[i], name) == 0) {
                found = i;
            }
        }
        DURE_CHECK(found >= 0, DURE_ERR_ARG, "%s: column '%s' (%s) is not in the header "
                   "(columns: %s)", c->path, name, role_flag(r), list);
        if (im->role[found] == R_EPISODE && (r == R_HASH || r == R_DROP || r == R_META)) {
            /* The episode id itself may be identifying: hash or drop it. */
            im->role[found] = r == R_META ? R_EPISODE : r;
            continue;
        }
        DURE_CHECK(im->role[found] == R_CHANNEL, DURE_ERR_ARG,
                   "column '%s' is given both %s and %s", name, role_flag(im->role[found]),
                   role_flag(r));
        im->role[found] = r;
    }
    for (int i = 0; i < im->ncol; i++) {
        im->chan_of[i] = im->role[i] == R_CHANNEL ? im->nchan++ : -1;
        int per_episode = im->role[i] == R_HASH || im->role[i] == R_META ||
                          im->role[i] == R_EPISODE ||
                          (cfg->episode_col && strcmp(im->header[i], cfg->episode_col) == 0 &&
                           im->role[i] != R_DROP);
        if (per_episode) {
            struct pcol *p = realloc(im->pc, (size_t)(im->npc + 1) * sizeof *p);
            DURE_ALLOC_TRY(p, (size_t)(im->npc + 1) * sizeof *p);
            im->pc = p;
            memset(&p[im->npc], 0, sizeof *p);
            p[im->npc].col = i;
            p[im->npc].name = im->header[i];
            p[im->npc].hashed = im->role[i] == R_HASH;
            im->npc++;
        }
    }
    DURE_CHECK(im->nchan >= 1, DURE_ERR_FORMAT,
               "%s: no column is left as a channel (columns: %s)", c->path, list);
out:
    dataio_names_free(&hdr);
    return st;
}

/* The episode id of a record: the episode column, whatever its role. */
static int id_col(const struct imp *im)
{
    if (!im->cfg->episode_col) {
        return -1;
    }
    for (int i = 0; i < im->ncol; i++) {
        if (strcmp(im->header[i], im->cfg->episode_col) == 0) {
            return i;
        }
    }
    return -1;
}

static dure_status_t flush_rows(struct imp *im)
{
    dure_status_t st = DURE_OK;
    if (im->nrows) {
        DURE_TRY(dataio_writer_append(im->w, im->rows, im->nrows));
        im->nrows = 0;
    }
out:
    return st;
}

static dure_status_t end_episode(struct imp *im)
{
    dure_status_t st = DURE_OK;
    char hex[2 * HASH_BYTES + 1];
    if (!im->in_episode) {
        goto out;
    }
    if (im->cfg->time_col && im->ep_rows >= 2) {
        /* One dataset, one sample rate: measured on the first episode,
         * checked on the others. */
        double rate = (double)(im->ep_rows - 1) / (im->t_prev - im->t_first);
        if (im->rate == 0) {
            im->rate = rate;
        } else if (!im->cfg->sample_rate_hz) {
            DURE_CHECK(fabs(rate - im->rate) <= 0.01 * im->rate, DURE_ERR_FORMAT,
                       "%s:%lld: the episode starting here is sampled at %.6g Hz (column "
                       "'%s') but the first one at %.6g Hz; resample to one rate or give "
                       "--sample-rate", im->ep_file, (long long)im->ep_line, rate,
                       im->cfg->time_col, im->rate);
        }
    }
    DURE_CHECK(im->rate > 0, DURE_ERR_FORMAT,
               "%s:%lld: the first episode has %lld row; the sample rate cannot be measured "
               "from column '%s' (give --sample-rate)", im->ep_file, (long long)im->ep_line,
               (long long)im->ep_rows, im->cfg->time_col ? im->cfg->time_col : "?");
    DURE_TRY(flush_rows(im));
    DURE_TRY(dataio_writer_end_episode(im->w));
    for (int k = 0; k < im->npc; k++) {
        struct pcol *p = &im->pc[k];
        const char *v = p->cur ? p->cur : "";
        if (p->hashed) {
            DURE_TRY(hash_hex(im, v, hex));
            v = hex;
        }
        DURE_CHECK(dataio_names_push(&p->values, v) == 0, DURE_ERR_NOMEM, "out of memory");
        if (p->cur) {
            explicit_bzero(p->cur, strlen(p->cur));
        }
        free(p->cur);
        p->cur = NULL;
    }
    im->in_episode = 0;
    im->ep_rows = 0;
out:
    return st;
}

static dure_status_t parse_number(const struct csv *c, int col, const char *name, double *out)
{
    dure_status_t st = DURE_OK;
    const char *s = field(c, col);
    while (*s == ' ' || *s == '\t') s++;
    if (!*s) {
        *out = NAN;
        goto out;
    }
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    while (end && (*end == ' ' || *end == '\t')) end++;
    DURE_CHECK(end != s && *end == '\0' && errno != ERANGE, DURE_ERR_FORMAT,
               "%s:%lld: column %d '%s': '%s' is not a number", c->path, (long long)c->rec_line,
               col + 1, name, field(c, col));
    *out = v;
out:
    return st;
}

static dure_status_t record(struct imp *im, const struct csv *c, int new_episode)
{
    dure_status_t st = DURE_OK;
    const int C = im->nchan;
    if (new_episode) {
        DURE_TRY(end_episode(im));
        im->in_episode = 1;
        im->ep_file = c->path;
        im->ep_line = c->rec_line;
        for (int k = 0; k < im->npc; k++) {
            DURE_TRY(dataio_strdup(field(c, im->pc[k].col), &im->pc[k].cur));
        }
    } else {
        for (int k = 0; k < im->npc; k++) {
            const struct pcol *p = &im->pc[k];
            DURE_CHECK(strcmp(p->cur, field(c, p->col)) == 0, DURE_ERR_FORMAT,
                       "%s:%lld: column %d '%s' changes within an episode ('%s' then '%s'); "
                       "per-episode columns must be constant (--drop %s removes it)", c->path,
                       (long long)c->rec_line, p->col + 1, p->name,
                       p->hashed ? "<hidden>" : p->cur, p->hashed ? "<hidden>" : field(c, p->col),
                       p->name);
        }
    }
    float *row = im->rows + im->nrows * C;
    for (int i = 0; i < im->ncol; i++) {
        double v;
        if (im->role[i] == R_CHANNEL) {
            DURE_TRY(parse_number(c, i, im->header[i], &v));
            DURE_CHECK(isnan(v) || fabs(v) <= 3.4028234663852886e38 || isinf(v),
                       DURE_ERR_FORMAT, "%s:%lld: column %d '%s': %s overflows float32",
                       c->path, (long long)c->rec_line, i + 1, im->header[i], field(c, i));
            row[im->chan_of[i]] = (float)v;
        } else if (im->role[i] == R_TIME) {
            DURE_TRY(parse_number(c, i, im->header[i], &v));
            DURE_CHECK(isfinite(v), DURE_ERR_FORMAT, "%s:%lld: column %d '%s': time '%s' is "
                       "not a finite number", c->path, (long long)c->rec_line, i + 1,
                       im->header[i], field(c, i));
            if (im->ep_rows == 0) {
                im->t_first = v;
            } else {
                DURE_CHECK(v > im->t_prev, DURE_ERR_FORMAT,
                           "%s:%lld: column %d '%s': time %s does not increase (previous "
                           "%.17g)", c->path, (long long)c->rec_line, i + 1, im->header[i],
                           field(c, i), im->t_prev);
            }
            im->t_prev = v;
        }
    }
    im->nrows++;
    im->ep_rows++;
    im->total_rows++;
    if (im->nrows == ROWS_PER_APPEND) {
        DURE_TRY(flush_rows(im));
    }
out:
    return st;
}

static dure_status_t open_writer(struct imp *im);

static dure_status_t import_file(struct imp *im, const char *path, int first_file)
{
    dure_status_t st = DURE_OK;
    struct csv c = {.path = path};
    int eof = 0, idc;
    c.f = fopen(path, "r");
    DURE_SYS_TRY(c.f != NULL, "CSV file '%s'", path);
    DURE_TRY(csv_next(&c, &eof));
    DURE_CHECK(!eof, DURE_ERR_FORMAT, "%s: empty file (no header line)", path);
    if (first_file) {
        DURE_TRY(plan(im, &c));
        im->rows = malloc((size_t)ROWS_PER_APPEND * (size_t)im->nchan * sizeof *im->rows);
        DURE_ALLOC_TRY(im->rows, (size_t)ROWS_PER_APPEND * (size_t)im->nchan * 4);
        DURE_TRY(open_writer(im));
    } else {
        DURE_CHECK(c.nf == im->ncol, DURE_ERR_FORMAT,
                   "%s:%lld: header has %d columns; '%s' had %d", path, (long long)c.rec_line,
                   c.nf, im->cfg->inputs[0], im->ncol);
        for (int i = 0; i < c.nf; i++) {
            DURE_CHECK(strcmp(field(&c, i), im->header[i]) == 0, DURE_ERR_FORMAT,
                       "%s:%lld: column %d is '%s'; in '%s' it is '%s' (all files need the "
                       "same header)", path, (long long)c.rec_line, i + 1, field(&c, i),
                       im->cfg->inputs[0], im->header[i]);
        }
    }
    idc = id_col(im);
    int file_start = 1;
    for (;;) {
        DURE_TRY(csv_next(&c, &eof));
        if (eof) {
            break;
        }
        DURE_CHECK(c.nf == im->ncol, DURE_ERR_FORMAT, "%s:%lld: %d fields; the header has %d",
                   path, (long long)c.rec_line, c.nf, im->ncol);
        int new_ep = file_start;
        if (idc >= 0) {
            const char *id = field(&c, idc);
            new_ep = !im->cur_id || strcmp(id, im->cur_id) != 0;
            if (new_ep) {
                int seen = 0;
                DURE_TRY(strset_add(&im->seen, id, &seen));
                DURE_CHECK(!seen, DURE_ERR_FORMAT,
                           "%s:%lld: column %d '%s': episode '%s' appears again after other "
                           "episodes (rows of an episode must be consecutive: sort by it)",
                           path, (long long)c.rec_line, idc + 1, im->header[idc],
                           im->role[idc] == R_HASH || im->role[idc] == R_DROP ? "<hidden>" : id);
                free(im->cur_id);
                im->cur_id = NULL;
                DURE_TRY(dataio_strdup(id, &im->cur_id));
                im->cur_id_line = c.rec_line;
            }
        }
        DURE_TRY(record(im, &c, new_ep));
        file_start = 0;
    }
    DURE_CHECK(!file_start || idc >= 0, DURE_ERR_FORMAT, "%s: no data rows after the header "
               "(an empty episode)", path);
out:
    if (c.f) {
        fclose(c.f);
    }
    free(c.line);
    free(c.out);
    free(c.start);
    return st;
}

static dure_status_t describe(const struct imp *im, char *anon, size_t len, int *anonymized)
{
    dure_status_t st = DURE_OK;
    struct dataio_names h = {0}, d = {0};
    char lh[256], ld[256];
    for (int i = 0; i < im->ncol; i++) {
        struct dataio_names *l = im->role[i] == R_HASH ? &h : im->role[i] == R_DROP ? &d : NULL;
        DURE_CHECK(!l || dataio_names_push(l, im->header[i]) == 0, DURE_ERR_NOMEM,
                   "out of memory");
    }
    dataio_names_join(&h, lh, sizeof lh);
    dataio_names_join(&d, ld, sizeof ld);
    *anonymized = h.n + d.n > 0;
    snprintf(anon, len,
             "%s%s%s%s%s%s", h.n ? "identifying columns replaced per episode by "
                                   "HMAC-SHA256 under a secret key that is not stored "
                                   "(first 128 bits, hex): " : "",
             h.n ? lh : "", h.n && d.n ? "; " : "", d.n ? "columns dropped: " : "",
             d.n ? ld : "", "");
out:
    dataio_names_free(&h);
    dataio_names_free(&d);
    return st;
}

static dure_status_t units_of(const struct imp *im, char ***out)
{
    dure_status_t st = DURE_OK;
    char **items = NULL;
    int n = 0;
    DURE_TRY(dataio_strv_new(im->nchan, out));
    for (int j = 0; j < im->nchan; j++) {
        DURE_TRY(dataio_strdup("", &(*out)[j]));
    }
    if (!im->cfg->units) {
        goto out;
    }
    DURE_TRY(dataio_split_list(im->cfg->units, "--units", &items, &n));
    for (int k = 0; k < n; k++) {
        char *eq = strchr(items[k], '=');
        DURE_CHECK(eq && eq != items[k], DURE_ERR_ARG, "--units item '%s' is not COL=UNIT",
                   items[k]);
        *eq = '\0';
        int found = -1;
        for (int i = 0; i < im->ncol; i++) {
            if (strcmp(im->header[i], items[k]) == 0) {
                found = i;
            }
        }
        DURE_CHECK(found >= 0 && im->chan_of[found] >= 0, DURE_ERR_ARG,
                   "--units: '%s' is not a channel column", items[k]);
        free((*out)[im->chan_of[found]]);
        (*out)[im->chan_of[found]] = NULL;
        DURE_TRY(dataio_strdup(eq + 1, &(*out)[im->chan_of[found]]));
    }
out:
    free(items);
    return st;
}

static dure_status_t open_writer(struct imp *im)
{
    dure_status_t st = DURE_OK;
    const struct dataio_import_config *cfg = im->cfg;
    char **names = NULL, **units = NULL, anon[1024], source[512];
    int anonymized = 0;
    DURE_TRY(dataio_strv_new(im->nchan, &names));
    for (int i = 0; i < im->ncol; i++) {
        if (im->chan_of[i] >= 0) {
            DURE_TRY(dataio_strdup(im->header[i], &names[im->chan_of[i]]));
        }
    }
    DURE_TRY(units_of(im, &units));
    DURE_TRY(describe(im, anon, sizeof anon, &anonymized));
    /* Input file names are not recorded: they often name the plant. */
    snprintf(source, sizeof source, "%s%sdure data import of %d CSV file%s", cfg->source ? cfg->source : "",
             cfg->source ? "; " : "", cfg->n_inputs, cfg->n_inputs == 1 ? "" : "s");
    struct dataio_writer_config wc = {
        .path = cfg->path, .n_channels = im->nchan, .channel_names = (const char *const *)names,
        .channel_units = (const char *const *)units,
        /* Replaced once measured when it comes from the time column. */
        .sample_rate_hz = cfg->sample_rate_hz > 0 ? cfg->sample_rate_hz : 1.0,
        .source = source, .anonymization = anonymized ? anon : NULL,
        .chunk_rows = cfg->chunk_rows,
    };
    DURE_TRY(dataio_writer_open(&wc, &im->w));
out:
    dataio_strv_free(names, im->nchan);
    dataio_strv_free(units, im->nchan);
    return st;
}

static dure_status_t check_config(const struct dataio_import_config *cfg)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(cfg->path && cfg->path[0], DURE_ERR_ARG, "import needs an output path");
    DURE_CHECK(cfg->n_inputs >= 1, DURE_ERR_ARG, "import needs at least one CSV file");
    DURE_CHECK(cfg->sample_rate_hz >= 0 && isfinite(cfg->sample_rate_hz), DURE_ERR_ARG,
               "--sample-rate %g must be positive", cfg->sample_rate_hz);
    DURE_CHECK(cfg->sample_rate_hz > 0 || cfg->time_col, DURE_ERR_ARG,
               "give --sample-rate HZ, or --time-col COL to measure it");
    DURE_CHECK(cfg->val_fraction >= 0 && cfg->val_fraction < 1, DURE_ERR_ARG,
               "--val-fraction %g must be in [0, 1)", cfg->val_fraction);
    for (int i = 0; i < cfg->n_cols; i++) {
        DURE_CHECK(!cfg->time_col || strcmp(cfg->cols[i].name, cfg->time_col) != 0,
                   DURE_ERR_ARG, "column '%s' is the time column; it cannot also be hashed, "
                   "dropped or kept as metadata", cfg->time_col);
    }
    DURE_CHECK(!cfg->time_col || !cfg->episode_col || strcmp(cfg->time_col, cfg->episode_col),
               DURE_ERR_ARG, "column '%s' cannot be both the episode and the time column",
               cfg->time_col);
out:
    return st;
}

static dure_status_t set_split(struct imp *im)
{
    dure_status_t st = DURE_OK;
    int64_t e = dataio_writer_episodes(im->w), *val = NULL;
    int64_t n_val = llround(im->cfg->val_fraction * (double)e);
    if (im->cfg->val_fraction > 0 && n_val == 0) {
        n_val = 1;
    }
    if (n_val >= e) {
        n_val = e - 1;
    }
    if (n_val <= 0) {
        goto out;
    }
    val = malloc((size_t)n_val * sizeof *val);
    DURE_ALLOC_TRY(val, (size_t)n_val * sizeof *val);
    uint64_t key = dataio_perm_key(im->cfg->seed, -1);
    for (int64_t i = 0; i < n_val; i++) {
        val[i] = dataio_perm(e, key, i);
    }
    DURE_TRY(dataio_writer_set_val(im->w, val, n_val));
out:
    free(val);
    return st;
}

dure_status_t dataio_import(const struct dataio_import_config *cfg,
                            struct dataio_import_result *res)
{
    dure_status_t st = DURE_OK;
    struct imp im;
    memset(&im, 0, sizeof im);
    im.cfg = cfg;
    im.rate = cfg->sample_rate_hz;
    memset(res, 0, sizeof *res);
    DURE_TRY(check_config(cfg));
    for (int i = 0; i < cfg->n_cols; i++) {
        if (cfg->cols[i].role == DATAIO_COL_HASH) {
            DURE_TRY(read_key(&im));
            break;
        }
    }
    for (int i = 0; i < cfg->n_inputs; i++) {
        DURE_TRY(import_file(&im, cfg->inputs[i], i == 0));
    }
    DURE_TRY(end_episode(&im));
    DURE_TRY(dataio_writer_set_sample_rate(im.w, im.rate));
    for (int k = 0; k < im.npc; k++) {
        DURE_TRY(dataio_writer_set_episode_meta(im.w, im.pc[k].name,
                                                (const char *const *)im.pc[k].values.v,
                                                im.pc[k].values.n));
    }
    DURE_TRY(set_split(&im));
    res->episodes = dataio_writer_episodes(im.w);
    res->rows = im.total_rows;
    res->channels = im.nchan;
    res->sample_rate_hz = im.rate;
    for (int i = 0; i < im.ncol; i++) {
        res->anonymized |= im.role[i] == R_HASH || im.role[i] == R_DROP;
    }
    st = dataio_writer_finish(im.w);
    im.w = NULL;
out:
    dataio_writer_abort(im.w);
    if (im.key) {
        explicit_bzero(im.key, im.key_len);
    }
    free(im.key);
    for (int k = 0; k < im.npc; k++) {
        free(im.pc[k].cur);
        dataio_names_free(&im.pc[k].values);
    }
    free(im.pc);
    dataio_strv_free(im.header, im.ncol);
    free(im.role);
    free(im.chan_of);
    free(im.rows);
    free(im.cur_id);
    strset_free(&im.seen);
    return st;
}
