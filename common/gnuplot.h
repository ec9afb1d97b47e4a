/*
 * common/gnuplot.h - the one way dure draws a PNG: a gnuplot script built in
 * memory, data files in a private temporary directory, gnuplot run as a
 * program with the script on its standard input. Every path and title goes
 * into the script through gnuplot_quote, so names holding quotes, spaces or
 * gnuplot syntax draw as they are. gnuplot's standard output is discarded
 * (it writes the picture there when it cannot open the output), and a run
 * that leaves an output missing fails naming it.
 *
 *     struct gnuplot g;
 *     FILE *d = NULL; const char *data = NULL;
 *     DURE_TRY(gnuplot_begin(&g));
 *     DURE_TRY(gnuplot_data(&g, "busbw.dat", &d, &data));   (write rows, then
 *     DURE_TRY(gnuplot_data_close(&g, d));                    close it)
 *     gnuplot_output(&g, png);
 *     gnuplot_printf(&g, "plot "); gnuplot_quote(&g, data); ...
 *     DURE_TRY(gnuplot_run(&g, png));
 *   out:
 *     gnuplot_end(&g);                                       (always)
 */
#ifndef DURE_COMMON_GNUPLOT_H
#define DURE_COMMON_GNUPLOT_H

#include <stddef.h>
#include <stdio.h>

#include "common/status.h"

#define GNUPLOT_MAX_FILES 4

struct gnuplot {
    char dir[32];                          /* the private directory; "" when none */
    char *data[GNUPLOT_MAX_FILES];         /* paths of the data files made there */
    int ndata;
    const char *output[GNUPLOT_MAX_FILES]; /* the pictures the script draws (caller's) */
    int noutput;
    FILE *script;                          /* open_memstream over text */
    char *text;
    size_t len;
};

/* Make the private directory and start an empty script. gnuplot_end must
 * follow, whatever this returns. */
dure_status_t gnuplot_begin(struct gnuplot *g);

/* Create data file `name` in the private directory: *f to write it (close
 * with gnuplot_data_close), *path (owned by g) to name it in the script. */
dure_status_t gnuplot_data(struct gnuplot *g, const char *name, FILE **f, const char **path);
/* Close a data file, failing with DURE_ERR_IO when its writes did not land. */
dure_status_t gnuplot_data_close(struct gnuplot *g, FILE *f);

/* "set output PATH": the next plot goes to path, which must stay valid until
 * gnuplot_run. An earlier file there is removed first. */
void gnuplot_output(struct gnuplot *g, const char *path);

/* Script text, verbatim (printf format). */
void gnuplot_printf(struct gnuplot *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A string literal: single quotes, a quote inside doubled. */
void gnuplot_quote(struct gnuplot *g, const char *s);

/* Run gnuplot on the script. DURE_ERR_IO when it cannot start, fails, or
 * leaves an output unwritten; `what` names the drawing in the message. */
dure_status_t gnuplot_run(struct gnuplot *g, const char *what);

/* Remove the data files and the directory, free the script. */
void gnuplot_end(struct gnuplot *g);

#endif
