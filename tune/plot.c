/* tune/plot.c - see plot.h. */
#include "tune/plot.h"

#include <math.h>

#include "common/gnuplot.h"

/* Model curve points per measured step. */
#define CURVE_STEPS 8

dure_status_t tune_plot(const struct tune_result *r, enum tune_level level, const char *png)
{
    dure_status_t st = DURE_OK;
    struct gnuplot g;
    FILE *d = NULL;
    const char *data = NULL;
    char title[256];
    int block = 0;
    int first_block[COMM_BROADCAST + 2] = {0};

    DURE_TRY(gnuplot_begin(&g));
    DURE_TRY(gnuplot_data(&g, "tune.dat", &d, &data));
    /* Per collective, per series: a block of measured points, then a block
     * of the model's curve (gnuplot blocks are separated by two blank lines). */
    for (int c = 0; c <= COMM_BROADCAST; c++) {
        first_block[c] = block;
        for (int i = 0; i < r->nseries; i++) {
            const struct tune_series *s = &r->s[i];
            if ((int)s->coll != c || s->level != level || s->n == 0) {
                continue;
            }
            for (int k = 0; k < s->n; k++) {
                fprintf(d, "%zu %.6g\n", s->pt[k].bytes, 1e6 * s->pt[k].sec);
            }
            fprintf(d, "\n\n");
            double lo = (double)s->pt[0].bytes, hi = (double)s->pt[s->n - 1].bytes;
            int steps = CURVE_STEPS * (s->n > 1 ? s->n - 1 : 1);
            for (int k = 0; k <= steps; k++) {
                double x = lo * pow(hi / lo, (double)k / steps);
                fprintf(d, "%.6g %.6g\n", x, 1e6 * tune_fit_predict(&s->fit, x));
            }
            fprintf(d, "\n\n");
            block += 2;
        }
    }
    first_block[COMM_BROADCAST + 1] = block;
    st = gnuplot_data_close(&g, d);
    d = NULL;
    DURE_TRY(st);

    snprintf(title, sizeof title, "dure tune: %d rank(s) on %d node(s), %s level; points "
             "measured, lines the alpha-beta model", r->ranks, r->nodes, tune_level_name(level));
    gnuplot_printf(&g, "set terminal pngcairo size 1400,1000 noenhanced\n");
    gnuplot_output(&g, png);
    gnuplot_printf(&g, "set multiplot layout 2,2 title ");
    gnuplot_quote(&g, title);
    gnuplot_printf(&g, "\nset logscale x 2\nset logscale y 10\nset format x '%%.0b%%B'\n"
                       "set xlabel 'size (bytes)'\nset ylabel 'time per operation (us)'\n"
                       "set key top left font ',8'\nset grid\n");
    for (int c = 0; c <= COMM_BROADCAST; c++) {
        int color = 1;
        gnuplot_printf(&g, "set title ");
        gnuplot_quote(&g, tune_coll_name((enum comm_coll)c));
        gnuplot_printf(&g, "\n");
        if (first_block[c] == first_block[c + 1]) {
            gnuplot_printf(&g, "set label 1 'not measured' at graph 0.4,0.5\n"
                               "plot [1:2] [1:2] NaN notitle\nunset label 1\n");
            continue;
        }
        gnuplot_printf(&g, "plot ");
        for (int i = 0, b = first_block[c]; i < r->nseries; i++) {
            const struct tune_series *s = &r->s[i];
            char name[2 * TUNE_NAME_MAX];
            if ((int)s->coll != c || s->level != level || s->n == 0) {
                continue;
            }
            snprintf(name, sizeof name, "%s %s%s", tune_family_name(s->family), s->name,
                     s->fit.npieces > 1 ? " (pieces)" : "");
            gnuplot_printf(&g, "%s", b > first_block[c] ? ", " : "");
            gnuplot_quote(&g, data);
            gnuplot_printf(&g, " index %d using 1:2 with points pt 7 ps 0.7 lc %d title ", b,
                           color);
            gnuplot_quote(&g, name);
            gnuplot_printf(&g, ", ");
            gnuplot_quote(&g, data);
            gnuplot_printf(&g, " index %d using 1:2 with lines lc %d dt %d notitle", b + 1, color,
                           (int)s->family + 1);
            b += 2;
            color++;
        }
        gnuplot_printf(&g, "\n");
    }
    gnuplot_printf(&g, "unset multiplot\n");
    DURE_TRY(gnuplot_run(&g, png));
out:
    if (d) {
        fclose(d);
    }
    gnuplot_end(&g);
    return st;
}
