/* tune/fit.c - see fit.h. */
#include "tune/fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Worst relative error of alpha + beta x over p[0..n); once it reaches
 * `bound` (the best candidate's so far) the error that did, without
 * scoring the rest: such a line is no better (a fit of 58 sizes in pieces:
 * 0.36 s -> 0.24 s here). */
static double worst_error(const struct tune_point *p, int n, double alpha, double beta,
                          double bound)
{
    double worst = 0;
    for (int i = 0; i < n && worst < bound; i++) {
        double e = fabs((alpha + beta * p[i].bytes) / p[i].sec - 1.0);
        if (e > worst) {
            worst = e;
        }
    }
    return worst;
}

/* Solve the 3x3 system m z = r by Cramer's rule; 0 when singular. */
static int solve3(const double m[3][3], const double r[3], double z[3])
{
    double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
                 m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                 m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    if (fabs(det) < 1e-300) {
        return 0;
    }
    for (int c = 0; c < 3; c++) {
        double a[3][3];
        memcpy(a, m, sizeof a);
        for (int k = 0; k < 3; k++) {
            a[k][c] = r[k];
        }
        z[c] = (a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) -
                a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
                a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])) / det;
    }
    return 1;
}

struct best_line {
    double alpha, beta, err;
};

/* Sign of the line's error at q: alpha/t + beta x/t - 1. */
static double err_at(const struct tune_point *q, double alpha, double beta)
{
    return (alpha + beta * q->bytes) / q->sec - 1.0;
}

/*
 * The unconstrained minimax line of q[0..n), n >= 3 (sizes ascending,
 * distinct), by Remez's exchange: the errors of the line that levels a
 * reference of three sizes (+h, -h, +h) bound the optimum from below
 * (de la Vallee Poussin), and the optimum levels the reference where that
 * bound is largest. Each step solves the reference's 3x3 system, finds the
 * size with the worst error and, when it exceeds |h|, swaps it into the
 * reference so that the signs still alternate; |h| grows at every swap, so
 * no reference repeats. O(n) a step, a few steps (the triples' search it
 * replaced was O(n^4): 45 s for a 69-size sweep's pieces). 0 when a system
 * is singular or 4n steps do not settle (the caller keeps the edges'
 * lines).
 */
static int remez(const struct tune_point *q, int n, double *alpha, double *beta)
{
    int ref[3] = {0, n / 2, n - 1};
    for (int step = 0; step < 4 * n; step++) {
        double m[3][3], r[3] = {1, 1, 1}, z[3];
        for (int row = 0; row < 3; row++) {
            const struct tune_point *pt = &q[ref[row]];
            m[row][0] = 1.0 / pt->sec;
            m[row][1] = pt->bytes / pt->sec;
            m[row][2] = row == 1 ? 1 : -1;
        }
        if (!solve3(m, r, z)) {
            return 0;
        }
        int worst = -1;
        double we = fabs(z[2]) * (1 + 1e-12) + 1e-15;
        for (int i = 0; i < n; i++) {
            double e = fabs(err_at(&q[i], z[0], z[1]));
            if (e > we) {
                we = e;
                worst = i;
            }
        }
        if (worst < 0) {
            *alpha = z[0];
            *beta = z[1];
            return 1;
        }
        /* the reference's errors alternate in sign: swap the new size in
         * next to (or in place of) the one of its own sign */
        int same[3];
        double sw = err_at(&q[worst], z[0], z[1]);
        for (int k = 0; k < 3; k++) {
            same[k] = (err_at(&q[ref[k]], z[0], z[1]) > 0) == (sw > 0);
        }
        if (worst < ref[0]) {
            if (same[0]) {
                ref[0] = worst;
            } else {
                ref[2] = ref[1], ref[1] = ref[0], ref[0] = worst;
            }
        } else if (worst < ref[1]) {
            ref[same[0] ? 0 : 1] = worst;
        } else if (worst < ref[2]) {
            ref[same[1] ? 1 : 2] = worst;
        } else if (same[2]) {
            ref[2] = worst;
        } else {
            ref[0] = ref[1], ref[1] = ref[2], ref[2] = worst;
        }
    }
    return 0;
}

/* A candidate line: beta >= 0, and alpha >= 0 unless free_alpha, when the
 * line need only be positive from the piece's first size x0 on (p[0]). */
static void consider(const struct tune_point *p, int n, int free_alpha, double alpha, double beta,
                     struct best_line *b)
{
    if (!(beta >= 0) || !isfinite(alpha) || !isfinite(beta)) {
        return;
    }
    if (!(alpha >= 0) && !(free_alpha && alpha + beta * p[0].bytes > 0)) {
        return;
    }
    double e = worst_error(p, n, alpha, beta, b->err);
    if (e < b->err) {
        b->alpha = alpha;
        b->beta = beta;
        b->err = e;
    }
}

/* n >= 1 points of positive times, sizes >= 0 ascending and distinct. */
static inline dure_status_t check_points(const struct tune_point *p, int n)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(n >= 1, DURE_ERR_ARG, "a fit needs at least one measured size");
    for (int i = 0; i < n; i++) {
        DURE_CHECK(p[i].bytes >= 0 && isfinite(p[i].bytes) && p[i].sec > 0 && isfinite(p[i].sec),
                   DURE_ERR_ARG, "fit: point %d (%g bytes, %g s) is not a positive time", i,
                   p[i].bytes, p[i].sec);
        DURE_CHECK(i == 0 || p[i].bytes > p[i - 1].bytes, DURE_ERR_ARG,
                   "fit: sizes must ascend (point %d: %g bytes after %g)", i, p[i].bytes,
                   p[i - 1].bytes);
    }
out:
    return st;
}

/*
 * The minimax line of p[0..n) (see tune_fit_line), alpha free to be negative
 * when free_alpha (a piece above the first: its line applies from p[0] on,
 * p sorted by bytes, so a line positive at p[0] is positive on the piece).
 * Minimax in scaled units (bytes / xs, seconds / ts, which leave relative
 * errors unchanged). The functions 1/t and x/t form a Haar system on
 * distinct sizes, so the unconstrained optimum equioscillates on three
 * points (remez finds them). The worst error is convex in (alpha, beta):
 * when that optimum breaks a constraint, the constrained one lies on the
 * edge alpha = 0 or beta = 0, a one-parameter minimax exact in closed form
 * (alpha + beta x0 > 0 holds for any line whose worst error is below 1).
 * Each candidate is scored by its true worst error.
 */
static dure_status_t fit_line(const struct tune_point *p, int n, int free_alpha, double *alpha,
                              double *beta, double *err)
{
    dure_status_t st = DURE_OK;
    struct tune_point *q = NULL;
    double xs = 0, ts = 0;

    DURE_TRY(check_points(p, n));
    for (int i = 0; i < n; i++) {
        xs = fmax(xs, p[i].bytes);
        ts = fmax(ts, p[i].sec);
    }
    xs = xs > 0 ? xs : 1;
    q = calloc((size_t)n, sizeof *q);
    DURE_ALLOC_TRY(q, (size_t)n * sizeof *q);
    for (int i = 0; i < n; i++) {
        q[i].bytes = p[i].bytes / xs;
        q[i].sec = p[i].sec / ts;
    }

    struct best_line b = {0, 0, INFINITY};
    double ra = 0, rb = 0;
    double rmin = INFINITY, rmax = 0, umin = INFINITY, umax = 0;
    for (int i = 0; i < n; i++) {
        rmin = fmin(rmin, q[i].bytes / q[i].sec);
        rmax = fmax(rmax, q[i].bytes / q[i].sec);
        umin = fmin(umin, 1.0 / q[i].sec);
        umax = fmax(umax, 1.0 / q[i].sec);
    }
    consider(q, n, free_alpha, 2.0 / (umin + umax), 0, &b);           /* beta = 0 */
    if (rmax > 0) {
        consider(q, n, free_alpha, 0, 2.0 / (rmin + rmax), &b);       /* alpha = 0 */
    }
    if (n == 2) {                                           /* the line through both */
        double beta2 = (q[1].sec - q[0].sec) / (q[1].bytes - q[0].bytes);
        consider(q, n, free_alpha, q[0].sec - beta2 * q[0].bytes, beta2, &b);
    }
    if (n >= 3 && remez(q, n, &ra, &rb)) {
        consider(q, n, free_alpha, ra, rb, &b);
    }
    DURE_CHECK(isfinite(b.err), DURE_ERR_INTERNAL, "fit: no line with %s",
               free_alpha ? "beta >= 0" : "alpha, beta >= 0");
    *alpha = b.alpha * ts;
    *beta = b.beta * ts / xs;
    *err = b.err;
out:
    free(q);
    return st;
}

dure_status_t tune_fit_line(const struct tune_point *p, int n, double *alpha, double *beta,
                            double *err)
{
    return fit_line(p, n, 0, alpha, beta, err);
}

/*
 * Pieces over seg (the line of points i..j at seg[i * n + j]): up to kmax
 * of them, each of at least m = TUNE_PIECE_MIN_SIZES sizes (one size alone
 * always "fits", two fit exactly: see TUNE_PIECE_MIN_SIZES), the first from
 * point 0; with fewer than m sizes in all, one line over them. cost[k][j]
 * covers points 0..j with k pieces, from[k][j] is the first point of the
 * last piece. Returns the pieces of the lowest cost over all the points,
 * the fewest on a tie.
 * - cap = INFINITY (minimax): cost is the worst error, and the search stops
 *   at the fewest pieces within tol.
 * - cap finite (when no fit meets tol, cap its worst error): pieces above
 *   cap are not allowed, and cost is the sum of each piece's error above
 *   tol, so that the sizes a line can follow are fitted within tol and the
 *   miss stays where it is. Minimax alone spreads it: a series whose last
 *   three sizes no line could fit within 19% came out in 3 pieces, each
 *   15-19% off.
 */
static int pieces(const struct best_line *seg, int n, int kmax, double tol, double cap,
                  double *cost, int *from)
{
    const int m = TUNE_PIECE_MIN_SIZES, minimax = isinf(cap);
    int best_k = 1;
    for (int k = 1; k <= kmax; k++) {
        for (int j = 0; j < n; j++) {
            cost[k * n + j] = INFINITY;
            from[k * n + j] = -1;
            if (k == 1 && j + 1 < m && j != n - 1) {
                continue;
            }
            /* the last piece is points i..j */
            for (int i = k == 1 ? 0 : m * (k - 1); i <= (k == 1 ? 0 : j - m + 1); i++) {
                const double e = seg[i * n + j].err, prev = k == 1 ? 0 : cost[(k - 1) * n + i - 1];
                if (e > cap || !isfinite(prev)) {
                    continue;
                }
                double c = minimax ? fmax(prev, e) : prev + (e > tol ? e - tol : 0);
                if (c < cost[k * n + j]) {
                    cost[k * n + j] = c;
                    from[k * n + j] = i;
                }
            }
        }
        if (cost[k * n + n - 1] < cost[best_k * n + n - 1]) {
            best_k = k;
        }
        if (minimax && cost[best_k * n + n - 1] <= tol) {
            break;
        }
    }
    return best_k;
}

dure_status_t tune_fit_points(const struct tune_point *p, int n, double tol, struct tune_fit *out)
{
    dure_status_t st = DURE_OK;
    struct best_line *seg = NULL;   /* [n][n]: the line of points i..j */
    double *cost = NULL;            /* [TUNE_PIECES_MAX + 1][n]: pieces()'s cost, k pieces, 0..j */
    int *from = NULL;               /* [TUNE_PIECES_MAX + 1][n]: first point of the last piece */

    DURE_TRY(check_points(p, n));
    seg = malloc((size_t)n * (size_t)n * sizeof *seg);
    DURE_ALLOC_TRY(seg, (size_t)n * (size_t)n * sizeof *seg);
    cost = malloc((size_t)(TUNE_PIECES_MAX + 1) * (size_t)n * sizeof *cost);
    DURE_ALLOC_TRY(cost, (size_t)(TUNE_PIECES_MAX + 1) * (size_t)n * sizeof *cost);
    from = malloc((size_t)(TUNE_PIECES_MAX + 1) * (size_t)n * sizeof *from);
    DURE_ALLOC_TRY(from, (size_t)(TUNE_PIECES_MAX + 1) * (size_t)n * sizeof *from);
    for (int i = 0; i < n; i++) {
        for (int j = i; j < n; j++) {
            struct best_line *b = &seg[i * n + j];
            DURE_TRY(fit_line(p + i, j - i + 1, i > 0, &b->alpha, &b->beta, &b->err));
        }
    }
    const int m = TUNE_PIECE_MIN_SIZES;
    const int kmax = n / m < 1 ? 1 : n / m < TUNE_PIECES_MAX ? n / m : TUNE_PIECES_MAX;
    int best_k = pieces(seg, n, kmax, tol, INFINITY, cost, from);
    const double worst = cost[best_k * n + n - 1];
    if (worst > tol) {
        best_k = pieces(seg, n, kmax, tol, worst * (1 + 1e-9) + 1e-15, cost, from);
    }
    memset(out, 0, sizeof *out);
    out->npieces = best_k;
    for (int k = best_k, j = n - 1; k >= 1; k--) {
        int i = from[k * n + j];
        const struct best_line *b = &seg[i * n + j];
        out->piece[k - 1] = (struct tune_piece){p[i].bytes, p[j].bytes, b->alpha, b->beta};
        out->worst_err = fmax(out->worst_err, b->err);
        j = i - 1;
    }
out:
    free(seg);
    free(cost);
    free(from);
    return st;
}

static const struct tune_piece *piece_for(const struct tune_fit *f, double bytes)
{
    const struct tune_piece *pc = &f->piece[0];
    for (int i = 1; i < f->npieces; i++) {
        if (bytes >= f->piece[i].lo) {
            pc = &f->piece[i];
        }
    }
    return pc;
}

double tune_fit_predict(const struct tune_fit *f, double bytes)
{
    const struct tune_piece *pc = piece_for(f, bytes);
    return pc->alpha + pc->beta * bytes;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int sign_of(double d)
{
    return (d > 0) - (d < 0);
}

int tune_fit_crossovers(const struct tune_fit *a, const struct tune_fit *b, double lo, double hi,
                        double *out, int max)
{
    /* Events: the range ends, every piece start, and every root of the
     * difference within an interval where both models are one line. */
    double ev[4 * TUNE_PIECES_MAX + 2];
    int ne = 0, found = 0;
    ev[ne++] = lo;
    ev[ne++] = hi;
    for (int i = 0; i < a->npieces; i++) {
        if (a->piece[i].lo > lo && a->piece[i].lo < hi) {
            ev[ne++] = a->piece[i].lo;
        }
    }
    for (int i = 0; i < b->npieces; i++) {
        if (b->piece[i].lo > lo && b->piece[i].lo < hi) {
            ev[ne++] = b->piece[i].lo;
        }
    }
    qsort(ev, (size_t)ne, sizeof *ev, cmp_double);
    int nbreak = ne;
    for (int g = 0; g + 1 < nbreak; g++) {
        double mid = 0.5 * (ev[g] + ev[g + 1]);
        const struct tune_piece *pa = piece_for(a, mid), *pb = piece_for(b, mid);
        double dbeta = pa->beta - pb->beta;
        if (dbeta != 0) {
            double x = -(pa->alpha - pb->alpha) / dbeta;
            if (x > ev[g] && x < ev[g + 1]) {
                ev[ne++] = x;
            }
        }
    }
    qsort(ev, (size_t)ne, sizeof *ev, cmp_double);
    int prev = 0;
    for (int g = 0; g + 1 < ne; g++) {
        if (ev[g + 1] <= ev[g]) {
            continue;
        }
        double mid = 0.5 * (ev[g] + ev[g + 1]);
        int s = sign_of(tune_fit_predict(a, mid) - tune_fit_predict(b, mid));
        if (s != 0 && prev != 0 && s != prev && found < max) {
            out[found++] = ev[g];
        }
        if (s != 0) {
            prev = s;
        }
    }
    return found;
}
