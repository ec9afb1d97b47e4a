/*
 * launcher/cmd_plot.c - `dure plot RUN_DIR`: loss and throughput as PNG.
 *
 * Reads RUN_DIR/metrics.jsonl (train/metrics.h), writes the columns
 * gnuplot needs to two data files, and draws with common/gnuplot (pngcairo)
 * RUN_DIR/loss.png (training loss per step,
 * validation loss and the naive baseline, log scale; for a mixture each
 * dataset's too, one colour per dataset: its training loss a line, its
 * validation points circles, its baseline dotted, the legend under the
 * plot with one entry per dataset) and RUN_DIR/throughput.png
 * (timesteps/s and MFU per step).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/gnuplot.h"
#include "common/json.h"
#include "common/status.h"
#include "launcher/commands.h"
#include "launcher/exitcodes.h"

void cmd_plot_usage(FILE *out)
{
    fprintf(out,
            "usage: dure plot [-o DIR] RUN_DIR\n"
            "\n"
            "Draw RUN_DIR/metrics.jsonl with gnuplot: loss.png (training and\n"
            "validation loss, naive baseline) and throughput.png (timesteps/s\n"
            "and MFU), written to RUN_DIR or to DIR.\n"
            "\n"
            "  -o, --out DIR   write the PNG files to DIR instead of RUN_DIR\n");
}

/* Datasets of a mixture drawn one curve each, at most. */
#define PLOT_MAX_SETS 16

struct plot_counts {
    long train, val, baseline;
    int nsets;                         /* datasets of a mixture */
    long val_sets, train_sets;         /* validation and training lines with datasets */
    char sets[PLOT_MAX_SETS][40];      /* their names, in order of appearance */
};

/* The data files: train (step loss ts/s mfu), val (step val_loss
 * baseline_loss|NaN), sets and train_sets (step, then val_loss or loss,
 * and baseline_loss, of each dataset of a mixture, in the order of the
 * first line that names them). */
struct plot_data {
    const char *train, *val, *sets, *train_sets;
};

/* A mixture's line (a validation's, key "val_loss", or a training step's,
 * key "loss"): one row of `sets` with each dataset's key and baseline. */
static dure_status_t write_sets(const char *line, const char *metrics, long lineno,
                                double step, const char *key, FILE *sets,
                                struct plot_counts *n)
{
    dure_status_t st = DURE_OK;
    json_doc_t *doc = NULL;
    double row[2 * PLOT_MAX_SETS];
    for (int d = 0; d < 2 * PLOT_MAX_SETS; d++) {
        row[d] = NAN;
    }
    DURE_TRY(json_parse(line, strlen(line), metrics, &doc));
    const struct json_value *all = json_get(json_root(doc), "datasets");
    DURE_CHECK(all && all->type == JSON_OBJECT, DURE_ERR_FORMAT,
               "%s:%ld: \"datasets\" is not an object", metrics, lineno);
    for (const struct json_value *v = all->child; v; v = v->next) {
        const struct json_value *l = json_get(v, key), *b = json_get(v, "baseline_loss");
        int d = 0;
        while (d < n->nsets && strcmp(n->sets[d], v->key) != 0) {
            d++;
        }
        if (d == n->nsets) {
            /* A run's datasets are fixed: the first line names them all. */
            DURE_CHECK(n->val_sets + n->train_sets == 0, DURE_ERR_FORMAT,
                       "%s:%ld: dataset '%s' was not in the earlier lines", metrics, lineno,
                       v->key);
            if (d == PLOT_MAX_SETS) {
                continue; /* drawn: the first PLOT_MAX_SETS */
            }
            snprintf(n->sets[d], sizeof n->sets[d], "%s", v->key);
            n->nsets++;
        }
        row[2 * d] = l && l->type == JSON_NUMBER ? l->number : NAN;
        row[2 * d + 1] = b && b->type == JSON_NUMBER ? b->number : NAN;
    }
    fprintf(sets, "%.0f", step);
    for (int d = 0; d < 2 * n->nsets; d++) {
        fprintf(sets, " %.9g", row[d]);
    }
    fputc('\n', sets);
    if (strcmp(key, "loss") == 0) {
        n->train_sets++;
    } else {
        n->val_sets++;
    }
out:
    json_free(doc);
    return st;
}

/* Split metrics.jsonl into the two data files of g. */
static dure_status_t write_data(const char *metrics, struct gnuplot *g, struct plot_data *d,
                                struct plot_counts *n)
{
    dure_status_t st = DURE_OK;
    FILE *in = NULL, *train = NULL, *val = NULL, *sets = NULL, *train_sets = NULL;
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;

    DURE_SYS_TRY((in = fopen(metrics, "r")) != NULL, "cannot read %s", metrics);
    DURE_TRY(gnuplot_data(g, "train.dat", &train, &d->train));
    DURE_TRY(gnuplot_data(g, "val.dat", &val, &d->val));
    DURE_TRY(gnuplot_data(g, "sets.dat", &sets, &d->sets));
    DURE_TRY(gnuplot_data(g, "train_sets.dat", &train_sets, &d->train_sets));
    while (getline(&line, &cap, in) > 0) {
        double step = 0, loss = 0, tps = 0, mfu = 0, vl = 0, bl = NAN;
        lineno++;
        DURE_CHECK(json_line_number(line, "step", &step), DURE_ERR_FORMAT,
                   "%s:%ld: not a metrics line (no \"step\")", metrics, lineno);
        if (json_line_number(line, "val_loss", &vl)) {
            if (json_line_number(line, "baseline_loss", &bl)) {
                n->baseline++;
            }
            fprintf(val, "%.0f %.9g %.9g\n", step, vl, bl);
            n->val++;
            if (strstr(line, "\"datasets\"")) {
                DURE_TRY(write_sets(line, metrics, lineno, step, "val_loss", sets, n));
            }
        } else if (json_line_number(line, "loss", &loss)) {
            json_line_number(line, "timesteps_per_s", &tps);
            json_line_number(line, "mfu", &mfu);
            fprintf(train, "%.0f %.9g %.9g %.9g\n", step, loss, tps, 100.0 * mfu);
            n->train++;
            if (strstr(line, "\"datasets\"")) {
                DURE_TRY(write_sets(line, metrics, lineno, step, "loss", train_sets, n));
            }
        }
    }
    DURE_SYS_TRY(!ferror(in), "cannot read %s", metrics);
    DURE_CHECK(n->train > 0, DURE_ERR_FORMAT, "%s has no training steps to plot",
               metrics);
out:
    if (in) {
        fclose(in);
    }
    if (train && gnuplot_data_close(g, train) != DURE_OK && st == DURE_OK) {
        st = DURE_ERR_IO;
    }
    if (val && gnuplot_data_close(g, val) != DURE_OK && st == DURE_OK) {
        st = DURE_ERR_IO;
    }
    if (sets && gnuplot_data_close(g, sets) != DURE_OK && st == DURE_OK) {
        st = DURE_ERR_IO;
    }
    if (train_sets && gnuplot_data_close(g, train_sets) != DURE_OK && st == DURE_OK) {
        st = DURE_ERR_IO;
    }
    free(line);
    return st;
}

static dure_status_t draw(struct gnuplot *g, const struct plot_data *d, const char *outdir,
                          const char *title, const struct plot_counts *n)
{
    dure_status_t st = DURE_OK;
    char loss[4200], throughput[4200];

    snprintf(loss, sizeof loss, "%s/loss.png", outdir);
    snprintf(throughput, sizeof throughput, "%s/throughput.png", outdir);
    gnuplot_printf(g, "set terminal pngcairo size 1000,600 noenhanced\nset grid\n"
                      "set key inside top right opaque samplen 2 spacing 0.9 font ',9'\n"
                      "set xlabel 'step'\n");
    gnuplot_output(g, loss);
    if (n->nsets > 0) {
        /* Above the plot, in rows: the legend never covers the curves. */
        gnuplot_printf(g, "set key outside top center horizontal maxrows 2\n");
    }
    gnuplot_printf(g, "set title ");
    gnuplot_quote(g, title);
    gnuplot_printf(g, "\nset ylabel 'loss (normalized MSE)'\nset logscale y\nplot ");
    gnuplot_quote(g, d->train);
    gnuplot_printf(g, " using 1:2 with lines lw 1.5 lc 1 title 'train'");
    if (n->val > 0) {
        gnuplot_printf(g, ", ");
        gnuplot_quote(g, d->val);
        gnuplot_printf(g, " using 1:2 with linespoints pt 7 lw 2 lc 2 title 'validation'");
    }
    if (n->baseline > 0) {
        gnuplot_printf(g, ", ");
        gnuplot_quote(g, d->val);
        gnuplot_printf(g, " using 1:3 with lines dt 2 lw 2 lc 3 "
                          "title 'naive baseline (repeat last patch)'");
    }
    for (int k = 0; k < n->nsets; k++) {
        /* Dataset k in one colour and one legend entry: its training loss
         * (line), validation (circles) and baseline (dotted). */
        if (n->train_sets > 0) {
            gnuplot_printf(g, ", ");
            gnuplot_quote(g, d->train_sets);
            gnuplot_printf(g, " using 1:%d with lines lw 1 lc %d title ", 2 + 2 * k, k + 4);
            gnuplot_quote(g, n->sets[k]);
        }
        for (int base = 0; n->val_sets > 0 && base <= 1; base++) {
            gnuplot_printf(g, ", ");
            gnuplot_quote(g, d->sets);
            gnuplot_printf(g, " using 1:%d with %s lc %d ", 2 + 2 * k + base,
                           base ? "lines dt 3 lw 1" : "points pt 6", k + 4);
            if (n->train_sets > 0 || base) {
                gnuplot_printf(g, "notitle");
            } else {
                gnuplot_printf(g, "title ");
                gnuplot_quote(g, n->sets[k]);
            }
        }
    }
    gnuplot_printf(g, "\nset key inside top right\n");
    gnuplot_printf(g, "unset logscale y\n");
    gnuplot_output(g, throughput);
    gnuplot_printf(g, "set title ");
    gnuplot_quote(g, title);
    gnuplot_printf(g, "\nset ylabel 'timesteps/s'\nset y2label 'MFU (%%)'\n"
                      "set y2tics\nset ytics nomirror\nset yrange [0:*]\nset y2range [0:*]\n"
                      "plot ");
    gnuplot_quote(g, d->train);
    gnuplot_printf(g, " using 1:3 with lines lw 1.5 title 'timesteps/s', ");
    gnuplot_quote(g, d->train);
    gnuplot_printf(g, " using 1:4 axes x1y2 with lines lw 1 title 'MFU'\n");
    DURE_TRY(gnuplot_run(g, outdir));
out:
    return st;
}

int cmd_plot(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };
    dure_status_t st = DURE_OK;
    const char *outdir = NULL;
    char metrics[4200];
    struct gnuplot g;
    struct plot_data d = {NULL, NULL, NULL, NULL};
    int have_g = 0, opt;
    struct plot_counts n = {0};

    while ((opt = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (opt) {
        case 'o':
            outdir = optarg;
            break;
        default:
            cmd_plot_usage(stderr);
            return DURE_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "dure plot: expected one RUN_DIR\n");
        cmd_plot_usage(stderr);
        return DURE_EXIT_USAGE;
    }
    const char *run_dir = argv[optind];
    if (!outdir) {
        outdir = run_dir;
    }
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", run_dir);
    have_g = 1;
    DURE_TRY(gnuplot_begin(&g));
    DURE_TRY(write_data(metrics, &g, &d, &n));
    DURE_SYS_TRY(mkdir(outdir, 0777) == 0 || errno == EEXIST,
                 "dure plot: cannot create output directory '%s'", outdir);
    DURE_SYS_TRY(access(outdir, W_OK | X_OK) == 0, "dure plot: output directory '%s'", outdir);
    DURE_TRY(draw(&g, &d, outdir, run_dir, &n));
    printf("dure plot: wrote %s/loss.png and %s/throughput.png (%ld steps, %ld "
           "validation points",
           outdir, outdir, n.train, n.val);
    for (int k = 0; k < n.nsets; k++) {
        printf("%s%s", k ? ", " : "; per dataset: ", n.sets[k]);
    }
    if (n.train_sets > 0) {
        printf("; %ld steps with per-dataset training losses", n.train_sets);
    }
    printf(")\n");
out:
    if (have_g) {
        gnuplot_end(&g);
    }
    return st == DURE_ERR_FORMAT ? DURE_EXIT_DATA : dure_exit_code(st);
}
