/*
 * launcher/cmd_plot.c - `dure plot RUN_DIR`: loss and throughput as PNG.
 *
 * Reads RUN_DIR/metrics.jsonl (train/metrics.h), writes the columns
 * gnuplot needs to two data files in a private temporary directory, and
 * runs gnuplot (pngcairo) to draw RUN_DIR/loss.png (training loss per step,
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
#include <sys/wait.h>
#include <unistd.h>

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

/* Split metrics.jsonl into train.dat (step loss ts/s mfu) and val.dat
 * (step val_loss baseline_loss|NaN). */
static dure_status_t write_data(const char *metrics, const char *dir,
                                struct plot_counts *n)
{
    dure_status_t st = DURE_OK;
    char path[4200];
    FILE *in = NULL, *train = NULL, *val = NULL;
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;

    DURE_SYS_TRY((in = fopen(metrics, "r")) != NULL, "cannot read %s", metrics);
    snprintf(path, sizeof path, "%s/train.dat", dir);
    DURE_SYS_TRY((train = fopen(path, "w")) != NULL, "cannot write %s", path);
    snprintf(path, sizeof path, "%s/val.dat", dir);
    DURE_SYS_TRY((val = fopen(path, "w")) != NULL, "cannot write %s", path);
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
    DURE_SYS_TRY(fclose(train) == 0, "cannot write %s/train.dat", dir);
    train = NULL;
    DURE_SYS_TRY(fclose(val) == 0, "cannot write %s/val.dat", dir);
    val = NULL;
out:
    if (in) {
        fclose(in);
    }
    if (train) {
        fclose(train);
    }
    if (val) {
        fclose(val);
    }
    free(line);
    return st;
}

/* gnuplot strings are single-quoted; a quote inside is doubled. */
static void put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') {
            fputc('\'', f);
        }
        fputc(*s, f);
    }
    fputc('\'', f);
}

static dure_status_t run_gnuplot(const char *data, const char *outdir,
                                 const char *title, const struct plot_counts *n)
{
    dure_status_t st = DURE_OK;
    char path[4200], train[4200], val[4200];
    FILE *gp = NULL;

    snprintf(train, sizeof train, "%s/train.dat", data);
    snprintf(val, sizeof val, "%s/val.dat", data);
    gp = popen("gnuplot", "w");
    DURE_SYS_TRY(gp != NULL, "cannot start gnuplot");
    fprintf(gp, "set terminal pngcairo size 1000,600 noenhanced\nset grid\n"
                "set key outside right top vertical\nset xlabel 'step'\n");
    snprintf(path, sizeof path, "%s/loss.png", outdir);
    fputs("set output ", gp);
    put_quoted(gp, path);
    fputs("\nset title ", gp);
    put_quoted(gp, title);
    fprintf(gp, "\nset ylabel 'loss (normalized MSE)'\nset logscale y\n");
    fputs("plot ", gp);
    put_quoted(gp, train);
    fputs(" using 1:2 with lines lw 1.5 title 'train'", gp);
    if (n->val > 0) {
        fputs(", ", gp);
        put_quoted(gp, val);
        fputs(" using 1:2 with linespoints pt 7 lw 2 title 'validation'", gp);
    }
    if (n->baseline > 0) {
        fputs(", ", gp);
        put_quoted(gp, val);
        fputs(" using 1:3 with lines dt 2 lw 2 "
              "title 'naive baseline (repeat last patch)'",
              gp);
    }
    fputs("\nunset logscale y\nset output ", gp);
    snprintf(path, sizeof path, "%s/throughput.png", outdir);
    put_quoted(gp, path);
    fputs("\nset title ", gp);
    put_quoted(gp, title);
    fprintf(gp, "\nset ylabel 'timesteps/s'\nset y2label 'MFU (%%)'\n"
                "set y2tics\nset ytics nomirror\nset yrange [0:*]\nset y2range [0:*]\n");
    fputs("plot ", gp);
    put_quoted(gp, train);
    fputs(" using 1:3 with lines lw 1.5 title 'timesteps/s', ", gp);
    put_quoted(gp, train);
    fputs(" using 1:4 axes x1y2 with lines lw 1 title 'MFU'\n", gp);
    int rc = pclose(gp);
    gp = NULL;
    DURE_SYS_TRY(rc != -1, "cannot wait for gnuplot");
    DURE_CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, DURE_ERR_IO,
               "gnuplot failed (%s %d) drawing into %s",
               WIFEXITED(rc) ? "exit" : "signal",
               WIFEXITED(rc) ? WEXITSTATUS(rc) : WTERMSIG(rc), outdir);
out:
    if (gp) {
        pclose(gp);
    }
    return st;
}

static void remove_tmp(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/train.dat", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/val.dat", dir);
    unlink(path);
    rmdir(dir);
}

int cmd_plot(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };
    dure_status_t st = DURE_OK;
    const char *outdir = NULL;
    char metrics[4200], tmp[] = "/tmp/dure-plot.XXXXXX";
    int have_tmp = 0, opt;
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
    DURE_SYS_TRY(mkdtemp(tmp) != NULL, "cannot create a temporary directory");
    have_tmp = 1;
    DURE_TRY(write_data(metrics, tmp, &n));
    /* gnuplot cannot report a bad output path: it would write the PNG bytes
     * to stdout instead. Make sure the directory exists and is writable. */
    DURE_SYS_TRY(mkdir(outdir, 0777) == 0 || errno == EEXIST,
                 "dure plot: cannot create output directory '%s'", outdir);
    DURE_SYS_TRY(access(outdir, W_OK | X_OK) == 0, "dure plot: output directory '%s'", outdir);
    DURE_TRY(run_gnuplot(tmp, outdir, run_dir, &n));
    printf("dure plot: wrote %s/loss.png and %s/throughput.png (%ld steps, %ld "
           "validation points)\n",
           outdir, outdir, n.train, n.val);
out:
    if (have_tmp) {
        remove_tmp(tmp);
    }
    return st == DURE_ERR_FORMAT ? DURE_EXIT_DATA : dure_exit_code(st);
}
