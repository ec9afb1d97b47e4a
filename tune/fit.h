/*
 * tune/fit.h - latency-bandwidth (alpha-beta) models of measured collective
 * times: time(n) = alpha + beta * n for a message of n bytes, fitted to
 * minimise the worst relative error over the measured sizes, in pieces where
 * one line cannot meet the tolerance (a protocol change, cache or page-fault
 * effects), and the sizes where two models cross.
 *
 * Units: bytes for sizes, seconds for times; alpha in s, beta in s/byte.
 * Pure arithmetic: no MPI, no I/O.
 */
#ifndef DURE_TUNE_FIT_H
#define DURE_TUNE_FIT_H

#include "common/status.h"

/* Pieces per model at most: a sweep that needs more is reported as not
 * fitting within the tolerance. */
#define TUNE_PIECES_MAX 8

/* Measured sizes per piece at least. A line through two sizes (alpha free
 * above the first piece) meets both exactly whatever they are: such a piece
 * interpolates and proves nothing about the model. Three sizes leave one
 * degree of freedom for the tolerance to test. */
#define TUNE_PIECE_MIN_SIZES 3

/* One measured size: n bytes took sec seconds (median of repetitions). */
struct tune_point {
    double bytes;
    double sec;
};

/* One line of a model. It covers measured sizes [lo, hi]; prediction uses
 * it from lo (from 0 for the first piece) up to the next piece's lo. Above
 * the first piece alpha may be negative: it is where the piece's line meets
 * zero bytes, outside the sizes it applies to (beyond a cache or protocol
 * knee, time grows faster than the small sizes' line; alpha >= 0 there would
 * force a 2-size piece like 4 MiB -> 16 MiB at 10x the time to miss both). */
struct tune_piece {
    double lo, hi;           /* bytes: first and last measured size it fits */
    double alpha;            /* s; >= 0 in the first piece, alpha + beta lo > 0 in any */
    double beta;             /* s/byte */
};

struct tune_fit {
    int npieces;                             /* 1 = one line fits */
    struct tune_piece piece[TUNE_PIECES_MAX];
    double worst_err;                        /* max |predicted/measured - 1| over the points */
};

/*
 * The line alpha + beta * n with alpha, beta >= 0 that minimises the largest
 * relative error max_i |(alpha + beta x_i) / t_i - 1| over p[0..n) (exact
 * minimax: Remez's exchange, or the edge alpha = 0 or beta = 0). p sorted by
 * bytes, ascending, distinct; n >= 1, every bytes >= 0 and every sec > 0,
 * else DURE_ERR_ARG. *err receives the worst error.
 */
dure_status_t tune_fit_line(const struct tune_point *p, int n, double *alpha, double *beta,
                            double *err);

/*
 * Fit p[0..n) (sorted by bytes, ascending, distinct) with the fewest pieces
 * whose worst relative error is at most tol (0.15 = 15%); among as many
 * pieces, the lowest worst error. The first piece is a tune_fit_line line;
 * the others have beta >= 0 and alpha free (see struct tune_piece). Every
 * piece spans at least TUNE_PIECE_MIN_SIZES sizes, so at most
 * n / TUNE_PIECE_MIN_SIZES pieces (and TUNE_PIECES_MAX); fewer sizes than
 * that make one line over all of them. When no fit meets tol (a regime of
 * fewer sizes than a piece needs, at either end of the sweep or between two
 * knees, or noise), worst_err > tol is the lowest any fit reaches, and of
 * the fits that reach it the one whose pieces exceed tol by the least in
 * all (fewer pieces on a tie): the sizes a line can follow are fitted
 * within tol and the miss stays in its piece. The caller says so.
 * DURE_ERR_ARG for unsorted or non-positive input, or n < 1.
 */
dure_status_t tune_fit_points(const struct tune_point *p, int n, double tol, struct tune_fit *out);

/* The model's time for n bytes: the piece whose range holds n (see above). */
double tune_fit_predict(const struct tune_fit *f, double bytes);

/*
 * Sizes in [lo, hi] where model a stops or starts being faster than model b
 * (a's time minus b's changes sign), ascending, at most max of them, written
 * to out; returns how many. Exact on each interval where both are one line.
 */
int tune_fit_crossovers(const struct tune_fit *a, const struct tune_fit *b, double lo, double hi,
                        double *out, int max);

#endif
