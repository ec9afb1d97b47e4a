/* dataio/csv_import.c - see csv_import.h. */
#include "dataio/csv_import.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/fsutil.h"
#include "common/sha256.h"
#include "common/strmap.h"
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
            /* Text stops at a NUL further on: "2\0 1.7" would read as 2 and two
             * plant names differing after one would hash alike. */
            DURE_CHECK(ch != '\0', DURE_ERR_FORMAT,
                       "%s:%lld:%zd: a NUL byte (in column %d): CSV is text; is this a "
                       "binary or UTF-16 file?", c->path, (long long)c->line_no, i + 1, c->nf);
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
    struct strmap col_of; /* header name -> its index */
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
    struct strmap seen;  /* episode ids seen so far */
    double t_first, t_prev;
    double rate;         /* samples per second, once known */
    int64_t total_rows;
};

/*
 * Keys with too little entropy to keep plant names secret, in the obvious
 * ways: only blanks, one byte repeated, or fewer than DATAIO_ANON_KEY_MIN_DISTINCT
 * different bytes (a pattern such as "abababab..."). Random keys (head -c 32
 * /dev/urandom | base64) have dozens.
 */
static dure_status_t check_key_entropy(const unsigned char *k, size_t n, const char *from)
{
    dure_status_t st = DURE_OK;
    unsigned char seen[256] = {0};
    int distinct = 0, blank = 1;
    for (size_t i = 0; i < n; i++) {
        distinct += !seen[k[i]];
        seen[k[i]] = 1;
        blank &= k[i] == ' ' || k[i] == '\t' || k[i] == '\r' || k[i] == '\n';
    }
    DURE_CHECK(!blank, DURE_ERR_ARG,
               "the anonymization key from %s is only whitespace: anyone could rebuild the "
               "hashes of plant names; use a random key (head -c 32 /dev/urandom | base64)",
               from);
    DURE_CHECK(distinct >= DATAIO_ANON_KEY_MIN_DISTINCT, DURE_ERR_ARG,
               "the anonymization key from %s has %d different byte%s in %zu%s: too "
               "predictable to keep plant names secret; use a random key (head -c 32 "
               "/dev/urandom | base64)", from, distinct, distinct == 1 ? "" : "s", n,
               distinct == 1 ? " (one byte repeated)" : "");
out:
    return st;
}

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
    DURE_TRY(check_key_entropy(im->key, im->key_len,
                               cfg->key_file ? cfg->key_file : DATAIO_ANON_KEY_ENV));
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
        int64_t j = -1;
        DURE_TRY(dataio_strdup(field(c, i), &im->header[i]));
        DURE_CHECK(im->header[i][0], DURE_ERR_FORMAT, "%s:%lld: column %d has an empty name",
                   c->path, (long long)c->rec_line, i + 1);
        DURE_TRY(strmap_put(&im->col_of, im->header[i], i, &j));
        DURE_CHECK(j < 0, DURE_ERR_FORMAT, "%s:%lld: columns %lld and %d are both named '%s'",
                   c->path, (long long)c->rec_line, (long long)j + 1, i + 1, im->header[i]);
        /* The list for messages: its first columns are enough. */
        DURE_CHECK(i >= 64 || dataio_names_push(&hdr, im->header[i]) == 0, DURE_ERR_NOMEM,
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
        int found = (int)strmap_get(&im->col_of, name);
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
    DURE_CHECK(im->nchan <= DATAIO_FORMAT_MAX_CHANNELS, DURE_ERR_FORMAT,
               "%s:%lld: %d columns are channels; the dure format holds at most %d (leave "
               "columns out with --drop)", c->path, (long long)c->rec_line, im->nchan,
               DATAIO_FORMAT_MAX_CHANNELS);
out:
    dataio_names_free(&hdr);
    return st;
}

/* The episode id of a record: the episode column, whatever its role. */
static int id_col(const struct imp *im)
{
    return im->cfg->episode_col ? (int)strmap_get(&im->col_of, im->cfg->episode_col) : -1;
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
                int64_t seen = -1;
                DURE_TRY(strmap_put(&im->seen, id, 0, &seen));
                DURE_CHECK(seen < 0, DURE_ERR_FORMAT,
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

/*
 * Provenance of what was done to identifying columns: anon (the text of
 * the `anonymization` attribute) and raw (the columns stored as they are
 * in /episode_meta: --meta columns and an episode column neither hashed
 * nor dropped). The file is anonymized only when something was hashed or
 * dropped and nothing identifying is kept raw.
 */
static dure_status_t describe(const struct imp *im, char *anon, size_t len, char *raw,
                              size_t raw_len, int *anonymized)
{
    dure_status_t st = DURE_OK;
    struct dataio_names h = {0}, d = {0}, r = {0};
    char lh[256], ld[256];
    for (int i = 0; i < im->ncol; i++) {
        struct dataio_names *l = im->role[i] == R_HASH   ? &h
                                 : im->role[i] == R_DROP ? &d
                                 : im->role[i] == R_META || im->role[i] == R_EPISODE ? &r
                                                                                   : NULL;
        DURE_CHECK(!l || dataio_names_push(l, im->header[i]) == 0, DURE_ERR_NOMEM,
                   "out of memory");
    }
    dataio_names_join(&h, lh, sizeof lh);
    dataio_names_join(&d, ld, sizeof ld);
    dataio_names_join(&r, raw, raw_len);
    *anonymized = h.n + d.n > 0 && r.n == 0;
    snprintf(anon, len, "%s%s%s%s%s%s%s%s",
             h.n ? "identifying columns replaced per episode by HMAC-SHA256 under a secret "
                   "key that is not stored (first 128 bits, hex): " : "",
             h.n ? lh : "", h.n && d.n ? "; " : "", d.n ? "columns dropped: " : "",
             d.n ? ld : "", (h.n || d.n) && r.n ? "; " : "",
             r.n ? "columns kept raw (not anonymized): " : "", r.n ? raw : "");
out:
    dataio_names_free(&h);
    dataio_names_free(&d);
    dataio_names_free(&r);
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
        int found = (int)strmap_get(&im->col_of, items[k]);
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
    char **names = NULL, **units = NULL, anon[2048], raw[512], source[512];
    int anonymized = 0;
    DURE_TRY(dataio_strv_new(im->nchan, &names));
    for (int i = 0; i < im->ncol; i++) {
        if (im->chan_of[i] >= 0) {
            DURE_TRY(dataio_strdup(im->header[i], &names[im->chan_of[i]]));
        }
    }
    DURE_TRY(units_of(im, &units));
    DURE_TRY(describe(im, anon, sizeof anon, raw, sizeof raw, &anonymized));
    /* Input file names are not recorded: they often name the plant. */
    snprintf(source, sizeof source, "%s%sdure data import of %d CSV file%s", cfg->source ? cfg->source : "",
             cfg->source ? "; " : "", cfg->n_inputs, cfg->n_inputs == 1 ? "" : "s");
    struct dataio_writer_config wc = {
        .path = cfg->path, .n_channels = im->nchan, .channel_names = (const char *const *)names,
        .channel_units = (const char *const *)units,
        /* Replaced once measured when it comes from the time column. */
        .sample_rate_hz = cfg->sample_rate_hz > 0 ? cfg->sample_rate_hz : 1.0,
        .source = source, .anonymization = anon[0] ? anon : NULL, .raw_columns = raw,
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

/*
 * Before anything is written: every input is a readable file that is not
 * HDF5, and none is the output (-o a.csv a.csv would replace its own input
 * with the import).
 */
static dure_status_t check_inputs(const struct dataio_import_config *cfg)
{
    dure_status_t st = DURE_OK;
    static const unsigned char h5sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    struct stat out_sb, sb;
    FILE *f = NULL;
    int have_out = stat(cfg->path, &out_sb) == 0;
    for (int i = 0; i < cfg->n_inputs; i++) {
        const char *in = cfg->inputs[i];
        unsigned char sig[8];
        DURE_TRY(dure_input_file_stat(in, "CSV file", &sb));
        DURE_CHECK(!have_out || sb.st_dev != out_sb.st_dev || sb.st_ino != out_sb.st_ino,
                   DURE_ERR_ARG, "the output '%s' is the input '%s' (the same file): the "
                   "import would replace its own input; choose another -o", cfg->path, in);
        f = fopen(in, "rb");
        DURE_SYS_TRY(f != NULL, "CSV file '%s'", in);
        size_t n = fread(sig, 1, sizeof sig, f);
        DURE_SYS_TRY(!ferror(f), "CSV file '%s': read", in);
        fclose(f);
        f = NULL;
        DURE_CHECK(n < sizeof sig || memcmp(sig, h5sig, sizeof sig) != 0, DURE_ERR_FORMAT,
                   "'%s' is an HDF5 file, not CSV: dure reads HDF5 files in place (dure "
                   "data inspect '%s'; data.path and data.layout in the job spec)", in, in);
    }
out:
    if (f) {
        fclose(f);
    }
    return st;
}

static dure_status_t set_split(struct imp *im)
{
    dure_status_t st = DURE_OK;
    int64_t *val = NULL, n_val = 0;
    DURE_TRY(dataio_val_episodes(dataio_writer_episodes(im->w), im->cfg->val_fraction,
                                 im->cfg->seed, &val, &n_val));
    if (n_val > 0) {
        DURE_TRY(dataio_writer_set_val(im->w, val, n_val));
    }
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
    DURE_TRY(check_inputs(cfg));
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
    int hidden = 0;
    for (int i = 0; i < im.ncol; i++) {
        hidden |= im.role[i] == R_HASH || im.role[i] == R_DROP;
        res->raw_columns += im.role[i] == R_META || im.role[i] == R_EPISODE;
    }
    res->anonymized = hidden && res->raw_columns == 0;
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
    strmap_free(&im.seen);
    strmap_free(&im.col_of);
    return st;
}
