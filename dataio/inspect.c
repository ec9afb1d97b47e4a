/* dataio/inspect.c - see inspect.h. */
#include "dataio/inspect.h"

#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataio/format.h"
#include "dataio/h5util.h"
#include "dataio/stats.h"

/* Rows with NaN/Inf whose location is printed. */
#define SHOW_BAD 5

struct ictx {
    FILE *out;
    int problems;
    const char *path;
};

static void problem(struct ictx *ix, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct ictx *ix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(ix->out, "  problem: ");
    vfprintf(ix->out, fmt, ap);
    fputc('\n', ix->out);
    va_end(ap);
    ix->problems++;
}

static void type_name(hid_t t, char *buf, size_t len)
{
    size_t size = H5Tget_size(t);
    switch (H5Tget_class(t)) {
    case H5T_FLOAT: snprintf(buf, len, "float%zu", 8 * size); break;
    case H5T_INTEGER:
        snprintf(buf, len, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", 8 * size);
        break;
    case H5T_STRING: snprintf(buf, len, "string"); break;
    case H5T_ENUM: snprintf(buf, len, "enum"); break;
    case H5T_COMPOUND: snprintf(buf, len, "compound"); break;
    default: snprintf(buf, len, "other"); break;
    }
}

static void root_attrs(struct ictx *ix, hid_t fid)
{
    char s[1024];
    int64_t v = 0;
    double hz = 0;
    int rc = dataio_h5_attr_str(fid, "format", s, sizeof s);
    const char *bad = rc == 0 ? "missing" : "unreadable (not one string)";
    fprintf(ix->out, "format: %s%s%s", rc == 1 ? s : "(", rc == 1 ? "" : bad,
            rc == 1 ? "" : ")");
    if (rc != 1 || strcmp(s, DATAIO_FORMAT_NAME) != 0) {
        fputc('\n', ix->out);
        problem(ix, "root attribute 'format' is %s, not '%s'", rc == 1 ? s : bad,
                DATAIO_FORMAT_NAME);
    }
    rc = dataio_h5_attr_i64(fid, "format_version", &v);
    if (rc == 1) {
        fprintf(ix->out, " version %lld\n", (long long)v);
    }
    if (rc != 1 || v < 1 || v > DATAIO_FORMAT_VERSION) {
        problem(ix, "root attribute 'format_version' is %s%lld (this dure reads 1 to %d)",
                rc == 1 ? "" : "missing, ", (long long)v, DATAIO_FORMAT_VERSION);
    }
    rc = dataio_h5_attr_f64(fid, "sample_rate_hz", &hz);
    fprintf(ix->out, "sample rate: %g Hz\n", rc == 1 ? hz : 0.0);
    if (rc != 1 || !(hz > 0)) {
        problem(ix, "root attribute 'sample_rate_hz' is missing or not positive");
    }
    static const char *const prov[] = {"source", "created", "tool", "anonymization"};
    for (size_t i = 0; i < sizeof prov / sizeof *prov; i++) {
        if (dataio_h5_attr_str(fid, prov[i], s, sizeof s) == 1) {
            fprintf(ix->out, "%s: %s\n", prov[i], s);
        } else {
            problem(ix, "provenance attribute '%s' is missing", prov[i]);
        }
    }
    if (dataio_h5_attr_i64(fid, "anonymized", &v) != 1) {
        problem(ix, "provenance attribute 'anonymized' is missing");
    } else {
        fprintf(ix->out, "anonymized: %s\n", v ? "yes" : "no");
    }
    if (dataio_h5_attr_str(fid, "raw_columns", s, sizeof s) == 1) {
        fprintf(ix->out, "raw columns: %s%s\n", s[0] ? s : "none",
                s[0] ? " (identifying values stored as they are in /episode_meta)" : "");
    }
}

/* /signals: returns its shape (rows, cols) or -1 rows when unusable. */
static void signals(struct ictx *ix, hid_t fid, int64_t *rows, int64_t *cols)
{
    hid_t d = H5I_INVALID_HID, t = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    hid_t dcpl = H5I_INVALID_HID;
    hsize_t dims[8] = {0}, cd[8] = {0};
    char tn[32];
    *rows = -1;
    *cols = 0;
    if (dataio_h5_numeric_rank(fid, DATAIO_DSET_SIGNALS) == 0) {
        problem(ix, "no numeric dataset '%s'", DATAIO_DSET_SIGNALS);
        return;
    }
    if ((d = H5Dopen2(fid, DATAIO_DSET_SIGNALS, H5P_DEFAULT)) < 0 || (t = H5Dget_type(d)) < 0 ||
        (sp = H5Dget_space(d)) < 0 || (dcpl = H5Dget_create_plist(d)) < 0) {
        problem(ix, "'%s' cannot be queried (damaged object header?)", DATAIO_DSET_SIGNALS);
        goto done;
    }
    int rank = H5Sget_simple_extent_ndims(sp);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    type_name(t, tn, sizeof tn);
    fprintf(ix->out, "%s: %s, rank %d, shape [%llu%s%llu]", DATAIO_DSET_SIGNALS, tn, rank,
            (unsigned long long)dims[0], rank > 1 ? ", " : "",
            rank > 1 ? (unsigned long long)dims[1] : 0ull);
    if (H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, 8, cd) == rank) {
        fprintf(ix->out, ", chunks [%llu, %llu] = %llu bytes", (unsigned long long)cd[0],
                rank > 1 ? (unsigned long long)cd[1] : 1ull,
                (unsigned long long)(cd[0] * (rank > 1 ? cd[1] : 1) * H5Tget_size(t)));
        int nf = H5Pget_nfilters(dcpl);
        fprintf(ix->out, ", %d filter%s\n", nf, nf == 1 ? "" : "s");
        if (rank == 2 && cd[1] != dims[1]) {
            problem(ix, "'%s' chunks are %llu of %llu channels wide: a window then needs "
                    "one read per column chunk (the format chunks whole rows)",
                    DATAIO_DSET_SIGNALS, (unsigned long long)cd[1], (unsigned long long)dims[1]);
        }
    } else {
        fprintf(ix->out, ", not chunked\n");
        problem(ix, "'%s' is not chunked (the format requires chunks of whole rows)",
                DATAIO_DSET_SIGNALS);
    }
    if (rank != 2) {
        problem(ix, "'%s' has rank %d; expected 2 (timesteps, channels)", DATAIO_DSET_SIGNALS,
                rank);
    } else {
        *rows = (int64_t)dims[0];
        *cols = (int64_t)dims[1];
    }
    if (H5Tget_class(t) != H5T_FLOAT || H5Tget_size(t) != 4) {
        problem(ix, "'%s' holds %s; the format requires float32 (dure converts it when "
                "reading)", DATAIO_DSET_SIGNALS, tn);
    }
done:
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
}

static void episodes(struct ictx *ix, hid_t fid, int64_t rows)
{
    int64_t *ep = NULL, n = 0;
    int shown = 0, empty = 0;
    dure_log_set_quiet(1);
    dure_status_t st = dataio_h5_read_i64(fid, DATAIO_DSET_EPISODES, ix->path, &ep, &n);
    dure_log_set_quiet(0);
    if (st != DURE_OK) {
        problem(ix, "%s", dure_last_error());
        return;
    }
    if (n < 2) {
        problem(ix, "'%s' has %lld values; it needs E+1 >= 2 row offsets", DATAIO_DSET_EPISODES,
                (long long)n);
    } else {
        if (ep[0] != 0) {
            problem(ix, "'%s' starts at %lld, not 0", DATAIO_DSET_EPISODES, (long long)ep[0]);
        }
        for (int64_t e = 0; e + 1 < n; e++) {
            if (ep[e + 1] == ep[e]) {
                empty++;
                if (shown++ < 10) {
                    problem(ix, "episode %lld is empty ('%s'[%lld] = '%s'[%lld] = %lld)",
                            (long long)e, DATAIO_DSET_EPISODES, (long long)e,
                            DATAIO_DSET_EPISODES, (long long)(e + 1), (long long)ep[e]);
                }
            } else if (ep[e + 1] < ep[e]) {
                problem(ix, "'%s' decreases at episode %lld (%lld then %lld)",
                        DATAIO_DSET_EPISODES, (long long)e, (long long)ep[e],
                        (long long)ep[e + 1]);
            }
        }
        if (empty > 10) {
            problem(ix, "%d more empty episodes", empty - 10);
        }
        if (rows >= 0 && ep[n - 1] != rows) {
            problem(ix, "'%s' ends at row %lld but '%s' has %lld rows", DATAIO_DSET_EPISODES,
                    (long long)ep[n - 1], DATAIO_DSET_SIGNALS, (long long)rows);
        }
    }
    free(ep);
}

static void channels(struct ictx *ix, hid_t fid, int64_t cols)
{
    char **names = NULL, **units = NULL;
    int64_t nn = 0, nu = 0;
    dure_log_set_quiet(1);
    dure_status_t st = dataio_h5_read_strings(fid, DATAIO_DSET_CHANNEL_NAMES, ix->path, &names, &nn);
    dure_log_set_quiet(0);
    if (st != DURE_OK) {
        problem(ix, "%s", dure_last_error());
    } else {
        if (cols > 0 && nn != cols) {
            problem(ix, "'%s' names %lld channels; '%s' has %lld", DATAIO_DSET_CHANNEL_NAMES,
                    (long long)nn, DATAIO_DSET_SIGNALS, (long long)cols);
        }
        for (int64_t i = 0; i < nn; i++) {
            if (!names[i][0]) {
                problem(ix, "channel %lld has an empty name", (long long)i);
            }
            for (int64_t j = 0; j < i; j++) {
                if (strcmp(names[i], names[j]) == 0) {
                    problem(ix, "channels %lld and %lld are both named '%s'", (long long)j,
                            (long long)i, names[i]);
                }
            }
        }
    }
    dure_log_set_quiet(1);
    st = dataio_h5_read_strings(fid, DATAIO_DSET_CHANNEL_UNITS, ix->path, &units, &nu);
    dure_log_set_quiet(0);
    if (st != DURE_OK) {
        problem(ix, "%s", dure_last_error());
    } else if (cols > 0 && nu != cols) {
        problem(ix, "'%s' has %lld units for %lld channels", DATAIO_DSET_CHANNEL_UNITS,
                (long long)nu, (long long)cols);
    }
    free(names);
    free(units);
}

/* Rules of FORMAT.md checked one by one on the raw HDF5 objects. */
static void dure_rules(struct ictx *ix, hid_t fid)
{
    int64_t rows = -1, cols = 0;
    root_attrs(ix, fid);
    signals(ix, fid, &rows, &cols);
    episodes(ix, fid, rows);
    channels(ix, fid, cols);
}

static void lengths(struct ictx *ix, const struct dataio_dataset_info *in, int64_t window)
{
    int64_t e_n = in->n_episodes, *len = malloc((size_t)e_n * sizeof *len);
    int64_t n_val = 0, n_unused = 0, short_n = 0, first_short = -1, windows = 0;
    if (!len) {
        problem(ix, "out of memory");
        return;
    }
    for (int64_t e = 0; e < e_n; e++) {
        len[e] = in->episode_start[e + 1] - in->episode_start[e];
        n_val += dataio_episode_in(in, e, DATAIO_SPLIT_VAL);
        n_unused += !dataio_episode_in(in, e, DATAIO_SPLIT_TRAIN) &&
                    !dataio_episode_in(in, e, DATAIO_SPLIT_VAL);
        if (window > 0) {
            if (len[e] < window) {
                if (short_n++ == 0) {
                    first_short = e;
                }
            } else {
                windows += (len[e] - window) / window + 1;
            }
        }
    }
    int64_t total = in->episode_start[e_n];
    for (int64_t i = 1; i < e_n; i++) { /* insertion sort is fine: report-time only */
        int64_t v = len[i], j = i;
        while (j > 0 && len[j - 1] > v) {
            len[j] = len[j - 1];
            j--;
        }
        len[j] = v;
    }
    fprintf(ix->out, "episodes: %lld (%lld validation", (long long)e_n, (long long)n_val);
    if (n_unused) {
        fprintf(ix->out, ", %lld in no split", (long long)n_unused);
    }
    fprintf(ix->out, ", %s%s), %lld timesteps\n", in->ep_split ? "split from " : "no split",
            in->ep_split ? in->split_from : "", (long long)total);
    fprintf(ix->out, "episode length: min %lld, median %lld, mean %.1f, max %lld timesteps",
            (long long)len[0], (long long)len[e_n / 2], (double)total / (double)e_n,
            (long long)len[e_n - 1]);
    if (in->sample_rate_hz > 0) {
        fprintf(ix->out, " (%.3g s to %.3g s)", (double)len[0] / in->sample_rate_hz,
                (double)len[e_n - 1] / in->sample_rate_hz);
    }
    fputc('\n', ix->out);
    if (window > 0) {
        fprintf(ix->out, "windows of %lld timesteps: %lld\n", (long long)window,
                (long long)windows);
        if (short_n) {
            problem(ix, "%lld episodes are shorter than the window of %lld timesteps and give "
                    "no window (the first: episode %lld '%s', %lld timesteps)",
                    (long long)short_n, (long long)window, (long long)first_short,
                    in->episode_names[first_short],
                    (long long)(in->episode_start[first_short + 1] -
                                in->episode_start[first_short]));
        }
    }
    free(len);
}

static void scan(struct ictx *ix, dataio_reader_t *r)
{
    const struct dataio_dataset_info *in = dataio_reader_info(r);
    struct dataio_stats *s = NULL;
    dataio_scratch_t *sc = NULL;
    float *row = NULL;
    int c = in->n_channels;
    dure_log_set_quiet(1);
    dure_status_t st = dataio_stats_compute(r, DATAIO_SPLIT_TRAIN, MPI_COMM_NULL, &s);
    if (st == DURE_OK) {
        st = dataio_scratch_create(r, 1, &sc);
    }
    dure_log_set_quiet(0);
    row = malloc((size_t)c * sizeof *row);
    if (st != DURE_OK || !row) {
        problem(ix, "reading the data failed: %s", st ? dure_last_error() : "out of memory");
        goto out;
    }
    if (s->n_nonfinite_rows) {
        problem(ix, "%lld rows hold NaN or Inf (data.on_nan = skip leaves their windows out)",
                (long long)s->n_nonfinite_rows);
    }
    for (int64_t i = 0; i < s->n_nonfinite_rows && i < SHOW_BAD; i++) {
        int64_t g = s->nonfinite_rows[i], e = dataio_episode_of_row(in, g);
        int64_t t = g - in->episode_start[e];
        if (dataio_reader_read_logged(r, e, t, 1, row, sc) != DURE_OK) {
            continue;
        }
        for (int j = 0; j < c; j++) {
            if (!isfinite(row[j])) {
                fprintf(ix->out, "    %s at episode %lld ('%s'), timestep %lld (row %lld), "
                        "channel %d '%s'\n", isnan(row[j]) ? "NaN" : "Inf", (long long)e,
                        in->episode_names[e], (long long)t, (long long)g, j,
                        in->channel_names[j]);
            }
        }
    }
    fprintf(ix->out, "statistics of the data (%s split):\n", dataio_split_name(s->split));
    for (int j = 0; j < c; j++) {
        fprintf(ix->out, "  %4d %-28s mean %12.6g  std %12.6g  (%lld values)\n", j,
                in->channel_names[j], s->mean[j], s->std[j], (long long)s->count[j]);
    }
    const struct dataio_stats *old = in->stats;
    if (old) {
        for (int j = 0; j < c; j++) {
            double tol = 1e-5 * (fabs(s->std[j]) + fabs(s->mean[j])) + 1e-9;
            if (fabs(old->mean[j] - s->mean[j]) > tol || fabs(old->std[j] - s->std[j]) > tol ||
                old->count[j] != s->count[j]) {
                problem(ix, "stored /stats are stale: channel %d '%s' has stored mean %g std %g "
                        "(%lld values) but the data give %g, %g (%lld); run dure data stats",
                        j, in->channel_names[j], old->mean[j], old->std[j],
                        (long long)old->count[j], s->mean[j], s->std[j], (long long)s->count[j]);
                break;
            }
        }
    } else if (in->layout == DATAIO_LAYOUT_DURE && !in->stats_stale) {
        fprintf(ix->out, "note: no stored /stats: run dure data stats (else the loader makes "
                "a pass over the data at every open)\n");
    }
out:
    free(row);
    dataio_scratch_free(sc);
    dataio_stats_free(s);
}

dure_status_t dataio_inspect(const struct dataio_inspect_config *cfg, FILE *out, int *problems)
{
    dure_status_t st = DURE_OK;
    struct ictx ix = {out, 0, cfg->path};
    struct stat sb;
    hid_t fid = H5I_INVALID_HID;
    dataio_reader_t *r = NULL;
    struct dure_h5_quiet q;

    *problems = 0;
    fprintf(out, "file: %s", cfg->path);
    if (stat(cfg->path, &sb) == 0) {
        fprintf(out, " (%lld bytes)", (long long)sb.st_size);
    }
    fputc('\n', out);
    /* The file's own layout: used unless --layout says otherwise, and then
     * named, so that a robomimic file read as dure says what it is. */
    dataio_layout_t layout = cfg->layout, seen = DATAIO_LAYOUT_AUTO;
    char why[128] = "";
    dure_log_set_quiet(cfg->layout != DATAIO_LAYOUT_AUTO);
    st = dataio_layout_detect(cfg->path, &seen, why, sizeof why);
    dure_log_set_quiet(0);
    if (layout == DATAIO_LAYOUT_AUTO) {
        DURE_TRY(st);
        layout = seen;
        fprintf(out, "layout: %s (detected: %s; --layout overrides)\n",
                dataio_layout_name(layout), why);
    } else {
        st = DURE_OK;
        fprintf(out, "layout: %s (--layout)\n", dataio_layout_name(layout));
        if (seen != DATAIO_LAYOUT_AUTO && seen != layout) {
            fprintf(out, "note: the file looks like layout %s (%s): try --layout %s\n",
                    dataio_layout_name(seen), why, dataio_layout_name(seen));
        }
    }
    if (layout == DATAIO_LAYOUT_EPISODE_FILES) {
        glob_t g;
        int grc = glob(cfg->path, 0, NULL, &g);
        if (grc == 0) {
            fprintf(out, "files: %zu match\n", g.gl_pathc);
            globfree(&g);
        }
        DURE_CHECK(grc == 0, DURE_ERR_FORMAT, "no episode file matches '%s'", cfg->path);
    } else {
        /* A file that is missing, not HDF5 or truncated has nothing to list. */
        dure_h5_quiet_begin(&q);
        st = dataio_h5_open_file(cfg->path, H5P_DEFAULT, &fid);
        if (st == DURE_OK && layout == DATAIO_LAYOUT_DURE) {
            dure_rules(&ix, fid);
        }
        if (fid >= 0) {
            H5Fclose(fid);
        }
        dure_h5_quiet_end(&q);
        DURE_TRY(st);
    }
    struct dataio_reader_config rc = {.path = cfg->path, .layout = layout,
                                      .keys = cfg->keys, .io = DATAIO_IO_SERIAL,
                                      .comm = MPI_COMM_NULL};
    int before = ix.problems;
    dure_log_set_quiet(1);
    dure_status_t ro = dataio_reader_open(&rc, &r);
    dure_log_set_quiet(0);
    if (ro != DURE_OK) {
        /* The rules above already named what the reader trips on. */
        if (before == 0) {
            problem(&ix, "%s", dure_last_error());
        }
        goto out;
    }
    const struct dataio_dataset_info *in = dataio_reader_info(r);
    for (int k = 0; k < in->n_storage; k++) {
        fprintf(out, "stored: %s\n", in->storage[k] ? in->storage[k] : "?");
    }
    fprintf(out, "channels: %d\n", in->n_channels);
    for (int j = 0; j < in->n_channels; j++) {
        fprintf(out, "  %4d %-28s %s\n", j, in->channel_names[j], in->channel_units[j]);
    }
    lengths(&ix, in, cfg->window);
    if (in->stats) {
        fprintf(out, "stored stats: yes (%s split, %lld rows with NaN/Inf%s)\n",
                dataio_split_name(in->stats->split), (long long)in->stats->n_nonfinite_rows,
                in->stats->has_source ? ", source checked"
                                      : "; no source recorded: cannot tell if stale");
    } else if (in->stats_stale) {
        problem(&ix, "stored /stats are stale: %s; dure run would compute fresh ones at "
                "every open: run dure data stats", in->stats_stale);
    }
    if (!cfg->quick) {
        scan(&ix, r);
    }
out:
    dataio_reader_close(r);
    *problems = ix.problems;
    if (st == DURE_OK) {
        fprintf(out, "%d problem%s found\n", ix.problems, ix.problems == 1 ? "" : "s");
    }
    return st;
}
