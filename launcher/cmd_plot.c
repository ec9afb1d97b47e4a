/*
 * launcher/cmd_plot.c - `dure plot RUN_DIR`: loss and throughput as PNG.
 *
 * Reads RUN_DIR/metrics.jsonl (train/metrics.h), writes the columns
 * gnuplot needs to two data files, and draws with common/gnuplot (pngcairo)
 * RUN_DIR/loss.png (training loss per step,
 * validation loss and the naive baseline, log scale) and
 * RUN_DIR/throughput.png (timesteps/s and MFU per step).
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

struct plot_counts {
    long train, val, baseline;
};

/* The two data files: train (step loss ts/s mfu) and val (step val_loss
 * baseline_loss|NaN). */
struct plot_data {
    const char *train, *val;
};

/* Split metrics.jsonl into the two data files of g. */
static dure_status_t write_data(const char *metrics, struct gnuplot *g, struct plot_data *d,
                                struct plot_counts *n)
{
    dure_status_t st = DURE_OK;
    FILE *in = NULL, *train = NULL, *val = NULL;
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;

    DURE_SYS_TRY((in = fopen(metrics, "r")) != NULL, "cannot read %s", metrics);
    DURE_TRY(gnuplot_data(g, "train.dat", &train, &d->train));
    DURE_TRY(gnuplot_data(g, "val.dat", &val, &d->val));
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
        } else if (json_line_number(line, "loss", &loss)) {
            json_line_number(line, "timesteps_per_s", &tps);
            json_line_number(line, "mfu", &mfu);
            fprintf(train, "%.0f %.9g %.9g %.9g\n", step, loss, tps, 100.0 * mfu);
            n->train++;
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
                      "set key outside right top vertical\nset xlabel 'step'\n");
    gnuplot_output(g, loss);
    gnuplot_printf(g, "set title ");
    gnuplot_quote(g, title);
    gnuplot_printf(g, "\nset ylabel 'loss (normalized MSE)'\nset logscale y\nplot ");
    gnuplot_quote(g, d->train);
    gnuplot_printf(g, " using 1:2 with lines lw 1.5 title 'train'");
    if (n->val > 0) {
        gnuplot_printf(g, ", ");
        gnuplot_quote(g, d->val);
        gnuplot_printf(g, " using 1:2 with linespoints pt 7 lw 2 title 'validation'");
    }
    if (n->baseline > 0) {
        gnuplot_printf(g, ", ");
        gnuplot_quote(g, d->val);
        gnuplot_printf(g, " using 1:3 with lines dt 2 lw 2 "
                          "title 'naive baseline (repeat last patch)'");
    }
    gnuplot_printf(g, "\nunset logscale y\n");
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
    struct plot_data d = {NULL, NULL};
    int have_g = 0, opt;
    struct plot_counts n = {0, 0, 0};

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
           "validation points)\n",
           outdir, outdir, n.train, n.val);
out:
    if (have_g) {
        gnuplot_end(&g);
    }
    return st == DURE_ERR_FORMAT ? DURE_EXIT_DATA : dure_exit_code(st);
}
