/*
 * tests/fuzz/fuzz_csv.c - the CSV importer (`dure data import`) with
 * anonymization, against a reference reader written here.
 *
 * Input: one CSV file. The import's options follow its header: a column
 * named "ep" is the episode column, "t" the time column, "site" is hashed,
 * "op" dropped and "line" kept as metadata; the sample rate is 100 Hz; the
 * key comes from $DURE_ANON_KEY; chunks hold 8 rows. Every other column is
 * a channel.
 *
 * The reference reader below implements the documented rules plainly:
 * RFC 4180 quoting (a quote opens a field only at its start, "" inside
 * quotes is a quote, quoted fields span lines), blank lines skipped, CR/LF
 * endings, a UTF-8 BOM at the start; a header of unique non-empty names;
 * the same number of fields in every record; numbers by strtod with blanks
 * around, empty = NaN, a float32 overflow refused; times finite and
 * increasing within an episode; episodes of consecutive equal ids that
 * never come back; hashed and metadata columns constant per episode.
 *
 * Properties:
 *   - the importer fails (with a message, leaving no output file) exactly
 *     when the reference finds the input invalid;
 *   - otherwise the written file, read back with the dure reader, has the
 *     reference's episodes, row counts, channel names and float32 values
 *     bit for bit, /episode_meta/site holds HMAC-SHA256(key, value) (first
 *     128 bits, hex) of each episode's site and never the value itself,
 *     /episode_meta/line the raw values, and nothing of "op".
 * Inputs holding a NUL byte are only checked for the first property's
 * "fails with a message" part: their handling is issue 17's.
 */
#include <errno.h>
#include <float.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sha256.h"
#include "dataio/csv_import.h"
#include "dataio/h5util.h"
#include "tests/fuzz/support.h"

#define MAX_FIELDS 4096

static const char key[] = "fuzzing-key-0123456789abcdef";

/* ------------------------------------------------------------ reference CSV */

struct rec {
    char **f; /* (nf) fields */
    int nf;
};

struct csv_ref {
    struct rec *r; /* (n) records, the header first */
    int n;
};

static void ref_free(struct csv_ref *c)
{
    for (int i = 0; i < c->n; i++) {
        for (int j = 0; j < c->r[i].nf; j++) {
            free(c->r[i].f[j]);
        }
        free(c->r[i].f);
    }
    free(c->r);
}

struct field_buf {
    char *s;
    size_t len, cap;
};

static void fb_put(struct field_buf *b, char ch)
{
    if (b->len + 2 > b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->s = realloc(b->s, b->cap);
        FUZZ_ASSERT(b->s != NULL, "out of memory");
    }
    b->s[b->len++] = ch;
    b->s[b->len] = '\0';
}

static void rec_push(struct rec *r, struct field_buf *b)
{
    r->f = realloc(r->f, (size_t)(r->nf + 1) * sizeof *r->f);
    FUZZ_ASSERT(r->f != NULL, "out of memory");
    r->f[r->nf++] = b->s ? b->s : strdup("");
    FUZZ_ASSERT(r->f[r->nf - 1] != NULL, "out of memory");
    memset(b, 0, sizeof *b);
}

/* Split text[n] into records; 0, or -1 when the quoting is malformed. */
static int ref_parse(const char *text, size_t n, struct csv_ref *out)
{
    size_t pos = 0;
    long line_no = 0;
    for (;;) {
        struct rec r = {NULL, 0};
        struct field_buf b = {NULL, 0, 0};
        int in_q = 0, quoted = 0, started = 0;
        for (;;) {
            if (pos >= n) {
                if (in_q) {
                    goto bad;
                }
                if (!started) {
                    free(r.f);
                    return 0;
                }
                break;
            }
            const char *l = text + pos, *nl = memchr(l, '\n', n - pos);
            size_t len = nl ? (size_t)(nl - l) : n - pos;
            pos += nl ? len + 1 : len;
            line_no++;
            while (len > 0 && (l[len - 1] == '\n' || l[len - 1] == '\r')) {
                len--;
            }
            if (!in_q) {
                if (len == 0) {
                    continue;
                }
                if (line_no == 1 && len >= 3 && memcmp(l, "\xef\xbb\xbf", 3) == 0) {
                    l += 3;
                    len -= 3;
                }
                started = 1;
            } else {
                fb_put(&b, '\n');
            }
            for (size_t i = 0; i < len; i++) {
                char ch = l[i];
                if (in_q) {
                    if (ch == '"' && i + 1 < len && l[i + 1] == '"') {
                        fb_put(&b, '"');
                        i++;
                    } else if (ch == '"') {
                        in_q = 0;
                    } else {
                        fb_put(&b, ch);
                    }
                } else if (ch == ',') {
                    rec_push(&r, &b);
                    quoted = 0;
                } else if (ch == '"' && !quoted && b.len == 0) {
                    in_q = quoted = 1;
                } else if (ch == '"') {
                    goto bad;
                } else {
                    fb_put(&b, ch);
                }
            }
            if (!in_q) {
                break;
            }
        }
        rec_push(&r, &b);
        out->r = realloc(out->r, (size_t)(out->n + 1) * sizeof *out->r);
        FUZZ_ASSERT(out->r != NULL, "out of memory");
        out->r[out->n++] = r;
        continue;
    bad:
        free(b.s);
        out->r = realloc(out->r, (size_t)(out->n + 1) * sizeof *out->r);
        FUZZ_ASSERT(out->r != NULL, "out of memory");
        out->r[out->n++] = r; /* freed with the rest */
        return -1;
    }
}

/* ------------------------------------------------------------ reference import */

enum { COL_CHANNEL, COL_EP, COL_TIME, COL_SITE, COL_OP, COL_LINE };

struct expect {
    int valid;       /* 1 valid, 0 invalid, -1 the importer may go either way */
    int ncol, nchan;
    int role[MAX_FIELDS];
    int64_t n_ep, n_rows;
    int64_t *ep_rows;  /* (n_ep) */
    float *values;     /* (n_rows, nchan) */
    char **site, **line; /* (n_ep) raw per-episode values, or NULL */
};

static void expect_free(struct expect *x)
{
    for (int64_t e = 0; e < x->n_ep; e++) {
        free(x->site ? x->site[e] : NULL);
        free(x->line ? x->line[e] : NULL);
    }
    free(x->site);
    free(x->line);
    free(x->ep_rows);
    free(x->values);
}

/* The importer's number rule; 0 and *v, or -1. */
static int ref_number(const char *s, double *v)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    if (!*s) {
        *v = NAN;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    *v = strtod(s, &end);
    while (*end == ' ' || *end == '\t') {
        end++;
    }
    return end != s && *end == '\0' && errno != ERANGE ? 0 : -1;
}

static int col_of(const struct rec *h, const char *name)
{
    for (int i = 0; i < h->nf; i++) {
        if (strcmp(h->f[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

static void push_str(char ***v, int64_t n, const char *s)
{
    *v = realloc(*v, (size_t)(n + 1) * sizeof **v);
    FUZZ_ASSERT(*v != NULL && ((*v)[n] = strdup(s)) != NULL, "out of memory");
}

/* What a correct import of c gives (x->valid = 0 when it must fail). */
static void ref_import(const struct csv_ref *c, struct expect *x)
{
    memset(x, 0, sizeof *x);
    const struct rec *h = &c->r[0];
    if (h->nf > MAX_FIELDS) {
        x->valid = -1;
        return;
    }
    x->ncol = h->nf;
    static const char *const special[] = {"ep", "t", "site", "op", "line"};
    for (int i = 0; i < h->nf; i++) {
        if (!h->f[i][0] || col_of(h, h->f[i]) != i) {
            return; /* an empty or repeated name */
        }
        x->role[i] = COL_CHANNEL;
        for (int k = 0; k < 5; k++) {
            if (strcmp(h->f[i], special[k]) == 0) {
                x->role[i] = COL_EP + k;
            }
        }
        x->nchan += x->role[i] == COL_CHANNEL;
    }
    if (x->nchan == 0) {
        return;
    }
    int ep = col_of(h, "ep"), site = col_of(h, "site"), line = col_of(h, "line");
    const char *cur = NULL;
    char **seen = NULL;
    int64_t n_seen = 0;
    double t_prev = 0;
    x->values = malloc((size_t)(c->n) * (size_t)x->nchan * sizeof *x->values + 1);
    FUZZ_ASSERT(x->values != NULL, "out of memory");
    for (int r = 1; r < c->n; r++) {
        const struct rec *rec = &c->r[r];
        if (rec->nf != h->nf) {
            goto invalid;
        }
        int new_ep = x->n_rows == 0 || (ep >= 0 && strcmp(rec->f[ep], cur) != 0);
        if (new_ep) {
            for (int64_t i = 0; ep >= 0 && i < n_seen; i++) {
                if (strcmp(seen[i], rec->f[ep]) == 0) {
                    goto invalid; /* an episode that comes back */
                }
            }
            if (ep >= 0) {
                push_str(&seen, n_seen++, rec->f[ep]);
                cur = seen[n_seen - 1];
            }
            x->ep_rows = realloc(x->ep_rows, (size_t)(x->n_ep + 1) * sizeof *x->ep_rows);
            FUZZ_ASSERT(x->ep_rows != NULL, "out of memory");
            x->ep_rows[x->n_ep] = 0;
            push_str(&x->site, x->n_ep, site >= 0 ? rec->f[site] : "");
            push_str(&x->line, x->n_ep, line >= 0 ? rec->f[line] : "");
            x->n_ep++;
        } else if ((site >= 0 && strcmp(rec->f[site], x->site[x->n_ep - 1]) != 0) ||
                   (line >= 0 && strcmp(rec->f[line], x->line[x->n_ep - 1]) != 0)) {
            goto invalid; /* a per-episode value that changes */
        }
        float *row = x->values + x->n_rows * x->nchan;
        int ch = 0;
        for (int i = 0; i < h->nf; i++) {
            double v;
            if (x->role[i] == COL_CHANNEL) {
                if (ref_number(rec->f[i], &v) != 0 ||
                    !(isnan(v) || isinf(v) || fabs(v) <= FLT_MAX)) {
                    goto invalid;
                }
                row[ch++] = (float)v;
            } else if (x->role[i] == COL_TIME) {
                if (ref_number(rec->f[i], &v) != 0 || !isfinite(v) ||
                    (!new_ep && !(v > t_prev))) {
                    goto invalid;
                }
                t_prev = v;
            }
        }
        x->ep_rows[x->n_ep - 1]++;
        x->n_rows++;
    }
    /* No rows: one file without an episode column is an error; with one, the
     * file has no episode at all, which the writer may refuse. */
    x->valid = x->n_rows > 0 ? 1 : ep >= 0 ? -1 : 0;
    goto out;
invalid:
    x->valid = 0;
out:
    for (int64_t i = 0; i < n_seen; i++) {
        free(seen[i]);
    }
    free(seen);
}

/* ------------------------------------------------------------ the output */

static void check_meta(const char *path, const char *name, char **want, int64_t n,
                       int hashed)
{
    char dset[64], **got = NULL, hex[DURE_SHA256_HEX];
    uint8_t mac[DURE_SHA256_BYTES];
    int64_t ng = 0;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    FUZZ_ASSERT(f >= 0, "cannot open the import '%s'", path);
    snprintf(dset, sizeof dset, "/episode_meta/%s", name);
    if (!want) {
        FUZZ_ASSERT(H5Lexists(f, dset, H5P_DEFAULT) <= 0, "dropped column '%s' is stored",
                    name);
        H5Fclose(f);
        return;
    }
    FUZZ_ASSERT(dataio_h5_read_strings(f, dset, path, &got, &ng) == DURE_OK && ng == n,
                "%s: %lld values for %lld episodes", dset, (long long)ng, (long long)n);
    for (int64_t e = 0; e < n; e++) {
        if (hashed) {
            FUZZ_ASSERT(dure_hmac_sha256(key, strlen(key), want[e], strlen(want[e]), mac) ==
                            DURE_OK, "hmac failed");
            dure_sha256_hex(mac, hex);
            hex[32] = '\0';
            FUZZ_ASSERT(strcmp(got[e], hex) == 0, "%s[%lld] = '%s', not the HMAC %s", dset,
                        (long long)e, got[e], hex);
        } else {
            FUZZ_ASSERT(strcmp(got[e], want[e]) == 0, "%s[%lld] = '%s', not '%s'", dset,
                        (long long)e, got[e], want[e]);
        }
    }
    free(got);
    H5Fclose(f);
}

static void check_output(const char *path, const struct csv_ref *c, const struct expect *x)
{
    struct dataio_reader_config cfg = {.path = path, .layout = DATAIO_LAYOUT_DURE,
                                       .io = DATAIO_IO_SERIAL, .comm = MPI_COMM_NULL};
    dataio_reader_t *r = NULL;
    dataio_scratch_t *s = NULL;
    fuzz_error_reset();
    FUZZ_ASSERT(dataio_reader_open(&cfg, &r) == DURE_OK, "the import does not read back: %s",
                dure_last_error());
    const struct dataio_dataset_info *info = dataio_reader_info(r);
    FUZZ_ASSERT(info->n_episodes == x->n_ep && info->n_channels == x->nchan,
                "%lld episodes x %d channels; the reference has %lld x %d",
                (long long)info->n_episodes, info->n_channels, (long long)x->n_ep, x->nchan);
    for (int i = 0, ch = 0; i < x->ncol; i++) {
        if (x->role[i] == COL_CHANNEL) {
            FUZZ_ASSERT(strcmp(info->channel_names[ch], c->r[0].f[i]) == 0,
                        "channel %d is '%s', the header says '%s'", ch,
                        info->channel_names[ch], c->r[0].f[i]);
            ch++;
        }
    }
    int64_t longest = 0;
    for (int64_t e = 0; e < x->n_ep; e++) {
        int64_t T = info->episode_start[e + 1] - info->episode_start[e];
        FUZZ_ASSERT(T == x->ep_rows[e], "episode %lld has %lld rows; the reference %lld",
                    (long long)e, (long long)T, (long long)x->ep_rows[e]);
        longest = T > longest ? T : longest;
    }
    float *rows = malloc((size_t)longest * (size_t)x->nchan * sizeof *rows);
    FUZZ_ASSERT(rows && dataio_scratch_create(r, longest, &s) == DURE_OK, "scratch");
    const float *want = x->values;
    for (int64_t e = 0; e < x->n_ep; e++) {
        FUZZ_ASSERT(dataio_reader_read_logged(r, e, 0, x->ep_rows[e], rows, s) == DURE_OK,
                    "episode %lld does not read: %s", (long long)e, dure_last_error());
        for (int64_t i = 0; i < x->ep_rows[e] * x->nchan; i++, want++) {
            FUZZ_ASSERT(memcmp(&rows[i], want, sizeof *want) == 0 ||
                            (isnan(rows[i]) && isnan(*want)),
                        "episode %lld row %lld channel %lld: %.9g, the reference %.9g",
                        (long long)e, (long long)(i / x->nchan), (long long)(i % x->nchan),
                        (double)rows[i], (double)*want);
        }
    }
    free(rows);
    dataio_scratch_free(s);
    dataio_reader_close(r);
    int has[3] = {col_of(&c->r[0], "site") >= 0, col_of(&c->r[0], "line") >= 0,
                  col_of(&c->r[0], "op") >= 0};
    if (has[0]) {
        check_meta(path, "site", x->site, x->n_ep, 1);
    }
    if (has[1]) {
        check_meta(path, "line", x->line, x->n_ep, 0);
    }
    if (has[2]) {
        check_meta(path, "op", NULL, 0, 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char in[512], out[512];
    const char *inputs[1] = {in};
    struct csv_ref ref = {NULL, 0};
    struct expect x;
    struct dataio_import_config cfg;
    struct dataio_import_result res;
    int has_nul = memchr(data, '\0', size) != NULL;
    static int keyed;

    if (!keyed) {
        setenv(DATAIO_ANON_KEY_ENV, key, 1);
        keyed = 1;
    }
    memset(&x, 0, sizeof x);
    x.valid = -1;
    int parsed = ref_parse((const char *)data, size, &ref) == 0;
    if (!parsed || ref.n == 0) {
        x.valid = 0;
    } else {
        ref_import(&ref, &x);
    }
    fuzz_write_file("in.csv", data, size, in, sizeof in);
    snprintf(out, sizeof out, "%s/out.h5", fuzz_dir());
    unlink(out);
    dataio_import_config_init(&cfg);
    cfg.path = out;
    cfg.inputs = inputs;
    cfg.n_inputs = 1;
    cfg.sample_rate_hz = 100;
    cfg.chunk_rows = 8; /* small files, and episodes that span chunks */
    const struct rec *h = ref.n > 0 ? &ref.r[0] : NULL;
    if (h) {
        cfg.episode_col = col_of(h, "ep") >= 0 ? "ep" : NULL;
        cfg.time_col = col_of(h, "t") >= 0 ? "t" : NULL;
        FUZZ_ASSERT((col_of(h, "site") < 0 ||
                     dataio_import_add_column(&cfg, DATAIO_COL_HASH, "site") == DURE_OK) &&
                        (col_of(h, "op") < 0 ||
                         dataio_import_add_column(&cfg, DATAIO_COL_DROP, "op") == DURE_OK) &&
                        (col_of(h, "line") < 0 ||
                         dataio_import_add_column(&cfg, DATAIO_COL_META, "line") == DURE_OK),
                    "add_column failed");
    }
    fuzz_error_reset();
    dure_status_t st = fuzz_expect_error(dataio_import(&cfg, &res), "dataio_import");
    if (st != DURE_OK) {
        FUZZ_ASSERT(access(out, F_OK) != 0, "a failed import left '%s'", out);
    }
    if (!has_nul && x.valid == 1) {
        FUZZ_ASSERT(st == DURE_OK, "the import fails on a valid file: %s", dure_last_error());
        FUZZ_ASSERT(res.episodes == x.n_ep && res.rows == x.n_rows && res.channels == x.nchan,
                    "result %lld episodes, %lld rows, %d channels; the reference %lld, %lld, "
                    "%d", (long long)res.episodes, (long long)res.rows, res.channels,
                    (long long)x.n_ep, (long long)x.n_rows, x.nchan);
        /* Anonymized: something hashed or dropped, and nothing identifying
         * kept raw (the "line" metadata, the unhashed episode column). */
        FUZZ_ASSERT(res.anonymized == (h && (col_of(h, "site") >= 0 || col_of(h, "op") >= 0) &&
                                       col_of(h, "line") < 0 && col_of(h, "ep") < 0),
                    "anonymized = %d", res.anonymized);
        check_output(out, &ref, &x);
    } else if (!has_nul && x.valid == 0) {
        FUZZ_ASSERT(st != DURE_OK, "the import accepts an invalid file");
    }
    fuzz_expect_h5_closed("the import");
    dataio_import_config_free(&cfg);
    expect_free(&x);
    ref_free(&ref);
    unlink(out);
    return 0;
}
