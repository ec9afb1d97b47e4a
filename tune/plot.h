/*
 * tune/plot.h - the PNG of a tune: one panel per collective, time per
 * operation against size (log-log), each algorithm's measured points and
 * its alpha-beta model's curve (solid dure, dashed Open MPI, dotted NCCL),
 * drawn with gnuplot (common/gnuplot.h).
 */
#ifndef DURE_TUNE_PLOT_H
#define DURE_TUNE_PLOT_H

#include "tune/tune.h"

/* Draw r's fitted series of `level` into png. */
dure_status_t tune_plot(const struct tune_result *r, enum tune_level level, const char *png);

#endif
