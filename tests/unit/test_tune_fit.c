/* tests/unit/test_tune_fit.c - alpha-beta fits: exact lines recovered, the
 * minimax property against a brute-force search, pieces where one line
 * cannot fit, predictions, crossovers and bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "tune/fit.h"

static void test_exact_line_recovered(void **state)
{
    (void)state;
    struct tune_point p[8];
    for (int i = 0; i < 8; i++) {
        p[i].bytes = 4096.0 * pow(4, i);
        p[i].sec = 5e-6 + 1e-10 * p[i].bytes;
    }
    double a, b, e;
    assert_int_equal(tune_fit_line(p, 8, &a, &b, &e), DURE_OK);
    assert_true(fabs(a / 5e-6 - 1) < 1e-9);
    assert_true(fabs(b / 1e-10 - 1) < 1e-9);
    assert_true(e < 1e-9);

    struct tune_fit f;
    assert_int_equal(tune_fit_points(p, 8, 0.15, &f), DURE_OK);
    assert_int_equal(f.npieces, 1);
    assert_true(fabs(tune_fit_predict(&f, 1e6) / (5e-6 + 1e-4) - 1) < 1e-9);
}

/* The worst relative error of a line over the points. */
static double worst(const struct tune_point *p, int n, double a, double b)
{
    double w = 0;
    for (int i = 0; i < n; i++) {
        w = fmax(w, fabs((a + b * p[i].bytes) / p[i].sec - 1));
    }
    return w;
}

static void test_minimax_beats_any_line(void **state)
{
    (void)state;
    /* Noisy times around 2 us + 1 ns/KiB: no line fits exactly. */
    static const double noise[9] = {1.07, 0.93, 1.12, 0.96, 1.02, 0.88, 1.09, 0.97, 1.05};
    struct tune_point p[9];
    for (int i = 0; i < 9; i++) {
        p[i].bytes = 1024.0 * pow(2, i);
        p[i].sec = (2e-6 + 1e-12 * p[i].bytes) * noise[i];
    }
    double a, b, e;
    assert_int_equal(tune_fit_line(p, 9, &a, &b, &e), DURE_OK);
    assert_true(a >= 0 && b >= 0);
    assert_true(fabs(e - worst(p, 9, a, b)) < 1e-12);
    /* No line on a fine grid around the answer does better. */
    double grid_best = INFINITY;
    for (int i = 0; i <= 400; i++) {
        for (int j = 0; j <= 400; j++) {
            double ga = 4e-6 * i / 400, gb = 4e-12 * j / 400;
            grid_best = fmin(grid_best, worst(p, 9, ga, gb));
        }
    }
    assert_true(e <= grid_best + 1e-9);
    /* and the least-squares line (unweighted) is worse: the fit is not it */
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < 9; i++) {
        sx += p[i].bytes;
        sy += p[i].sec;
        sxx += p[i].bytes * p[i].bytes;
        sxy += p[i].bytes * p[i].sec;
    }
    double lb = (9 * sxy - sx * sy) / (9 * sxx - sx * sx), la = (sy - lb * sx) / 9;
    assert_true(worst(p, 9, la, lb) > e + 0.01);
}

/* The reference minimax: every line that levels three sizes with
 * alternating errors, and the edges alpha = 0 and beta = 0, kept when
 * alpha, beta >= 0, the best by its true worst error (the search
 * tune_fit_line's exchange replaced, O(n^4)). */
static double brute_minimax(const struct tune_point *p, int n)
{
    double best = INFINITY, umin = INFINITY, umax = 0, rmin = INFINITY, rmax = 0;
    for (int i = 0; i < n; i++) {
        umin = fmin(umin, 1 / p[i].sec);
        umax = fmax(umax, 1 / p[i].sec);
        rmin = fmin(rmin, p[i].bytes / p[i].sec);
        rmax = fmax(rmax, p[i].bytes / p[i].sec);
    }
    best = fmin(worst(p, n, 2 / (umin + umax), 0), worst(p, n, 0, 2 / (rmin + rmax)));
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            for (int k = j + 1; k < n; k++) {
                /* a/t + b x/t - 1 = +h, -h, +h at i, j, k: eliminate h */
                const struct tune_point *a = &p[i], *b = &p[j], *c = &p[k];
                double m11 = 1 / a->sec + 1 / b->sec, m12 = a->bytes / a->sec + b->bytes / b->sec;
                double m21 = 1 / c->sec + 1 / b->sec, m22 = c->bytes / c->sec + b->bytes / b->sec;
                double det = m11 * m22 - m12 * m21;
                if (fabs(det) < 1e-300) {
                    continue;
                }
                double al = (2 * m22 - 2 * m12) / det, be = (2 * m11 - 2 * m21) / det;
                if (al >= 0 && be >= 0) {
                    best = fmin(best, worst(p, n, al, be));
                }
            }
        }
    }
    return best;
}

static void test_exchange_matches_brute_force(void **state)
{
    (void)state;
    /* 500 noisy sweeps of 3 to 24 sizes (a fixed generator): latency,
     * bandwidth and noise vary, some with a knee one line cannot fit; the
     * exchange finds the reference search's worst error every time */
    uint64_t s = 88172645463325252u;
    for (int trial = 0; trial < 500; trial++) {
        struct tune_point p[24];
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        int n = 3 + (int)(s % 22);
        double a = 1e-6 * (1 + (double)(s >> 40 & 255)), b = 1e-11 * (1 + (double)(s >> 48 & 255));
        double x = 512;
        for (int i = 0; i < n; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            double noise = 0.7 + 0.6 * (double)(s >> 11) / 9007199254740992.0;
            x *= 1.2 + (double)(s & 15) / 8;
            p[i] = (struct tune_point){x, (a + b * x * (trial % 3 == 0 && i > n / 2 ? 5 : 1)) *
                                              noise};
        }
        double al, be, e;
        assert_int_equal(tune_fit_line(p, n, &al, &be, &e), DURE_OK);
        assert_true(al >= 0 && be >= 0);
        assert_true(fabs(e - worst(p, n, al, be)) < 1e-12);
        double ref = brute_minimax(p, n);
        if (fabs(e - ref) > 1e-9 * fmax(ref, 1e-3)) {
            fail_msg("trial %d (%d sizes): exchange %.12f, reference %.12f", trial, n, e, ref);
        }
    }
}

static void test_pieces_where_one_line_cannot_fit(void **state)
{
    (void)state;
    /* A protocol change at 64 KiB: latency and bandwidth both jump. */
    struct tune_point p[10];
    for (int i = 0; i < 10; i++) {
        double x = 4096.0 * pow(2, i);
        p[i].bytes = x;
        p[i].sec = x < 65536 ? 1e-6 + 1e-10 * x : 3e-5 + 4e-10 * x;
    }
    double a, b, e;
    assert_int_equal(tune_fit_line(p, 10, &a, &b, &e), DURE_OK);
    assert_true(e > 0.15);   /* one line is not good enough */

    struct tune_fit f;
    assert_int_equal(tune_fit_points(p, 10, 0.15, &f), DURE_OK);
    assert_int_equal(f.npieces, 2);
    assert_true(f.worst_err < 1e-9);
    assert_true(f.piece[0].lo == 4096 && f.piece[0].hi == 32768);
    assert_true(f.piece[1].lo == 65536 && f.piece[1].hi == p[9].bytes);
    assert_true(fabs(f.piece[1].alpha / 3e-5 - 1) < 1e-6);
    assert_true(fabs(f.piece[1].beta / 4e-10 - 1) < 1e-6);
    /* predictions use the piece that holds the size, extrapolating at the ends */
    assert_true(fabs(tune_fit_predict(&f, 16384) / (1e-6 + 1e-10 * 16384) - 1) < 1e-9);
    assert_true(fabs(tune_fit_predict(&f, 1e9) / (3e-5 + 4e-10 * 1e9) - 1) < 1e-6);
    assert_true(fabs(tune_fit_predict(&f, 100) / (1e-6 + 1e-10 * 100) - 1) < 1e-6);

    /* a looser tolerance takes one line */
    assert_int_equal(tune_fit_points(p, 10, e + 0.01, &f), DURE_OK);
    assert_int_equal(f.npieces, 1);
    assert_true(fabs(f.worst_err - e) < 1e-12);
}

static void test_pieces_span_three_sizes(void **state)
{
    (void)state;
    /* a knee (cache, protocol): from the sixth size on, time follows a
     * steeper line, which meets zero bytes below zero seconds: a negative
     * alpha, allowed above the first piece, where the line applies only from
     * its first size on. Three sizes above the knee make a piece. */
    struct tune_point p[8];
    for (int i = 0; i < 8; i++) {
        p[i].bytes = 4096.0 * pow(4, i);
        p[i].sec = i < 5 ? 2e-6 + 1e-10 * p[i].bytes : -50e-6 + 4e-10 * p[i].bytes;
    }
    struct tune_fit f;
    assert_int_equal(tune_fit_points(p, 8, 0.15, &f), DURE_OK);
    assert_int_equal(f.npieces, 2);
    assert_true(f.worst_err < 1e-9);
    assert_true(f.piece[0].lo == p[0].bytes && f.piece[0].hi == p[4].bytes);
    assert_true(f.piece[1].lo == p[5].bytes && f.piece[1].hi == p[7].bytes);
    assert_true(f.piece[0].alpha >= 0);
    assert_true(fabs(f.piece[1].alpha / -50e-6 - 1) < 1e-6);
    assert_true(fabs(f.piece[1].beta / 4e-10 - 1) < 1e-6);
    assert_true(fabs(tune_fit_predict(&f, p[7].bytes) / p[7].sec - 1) < 1e-9);

    /* the largest size alone 3x above the line of the others (a cliff at
     * the end of the sweep): a piece of the last two sizes would meet both
     * exactly and prove nothing, so there is none; the fit says it misses */
    struct tune_point q[7];
    for (int i = 0; i < 7; i++) {
        q[i].bytes = p[i].bytes;
        q[i].sec = (2e-6 + 1e-10 * q[i].bytes) * (i == 6 ? 3.0 : 1.0);
    }
    assert_int_equal(tune_fit_points(q, 7, 0.15, &f), DURE_OK);
    assert_true(f.worst_err > 0.15);
    for (int i = 0; i < f.npieces; i++) {
        int sizes = 0;
        for (int k = 0; k < 7; k++) {
            sizes += q[k].bytes >= f.piece[i].lo && q[k].bytes <= f.piece[i].hi;
        }
        assert_true(sizes >= TUNE_PIECE_MIN_SIZES);
        assert_true(f.piece[i].beta >= 0);
        assert_true(f.piece[i].alpha + f.piece[i].beta * f.piece[i].lo > 0);
    }
    /* five sizes hold no two pieces of three: one line must do, from zero
     * bytes (alpha >= 0), however bad */
    assert_int_equal(tune_fit_points(p + 2, 5, 0.15, &f), DURE_OK);
    assert_int_equal(f.npieces, 1);
    assert_true(f.piece[0].alpha >= 0);
    assert_true(f.worst_err > 0.15);
    /* fewer sizes than a piece needs: one line over them */
    assert_int_equal(tune_fit_points(p + 4, 2, 0.15, &f), DURE_OK);
    assert_int_equal(f.npieces, 1);
}

/* A miss no pieces can avoid stays where it is: the sizes before it are
 * fitted within the tolerance, not as far off as the miss. */
static void test_miss_stays_where_it_is(void **state)
{
    (void)state;
    /* 4 KiB .. 8 MiB: the slope doubles after 64 KiB (two pieces fit
     * exactly; one line over the first nine sizes misses by 25%), then
     * three sizes that no line fits within 30% (the middle one 2.5x its
     * line, the last 1.5x): minimax alone stops at the first fit that
     * misses by no more than those three must, here one line over the
     * first nine sizes */
    struct tune_point p[12];
    const double knee = 65536;
    for (int i = 0; i < 12; i++) {
        p[i].bytes = 4096.0 * pow(2, i);
        p[i].sec = p[i].bytes <= knee ? 2e-6 + 1e-10 * p[i].bytes
                                      : 2e-6 + 1e-10 * knee + 2e-10 * (p[i].bytes - knee);
    }
    p[10].sec *= 2.5;
    p[11].sec *= 1.5;
    struct tune_fit f;
    assert_int_equal(tune_fit_points(p, 12, 0.15, &f), DURE_OK);
    assert_true(f.worst_err > 0.15);
    const struct tune_piece *last = &f.piece[f.npieces - 1];
    double worst_before = 0, worst_last = 0;
    for (int i = 0; i < 12; i++) {
        double e = fabs(tune_fit_predict(&f, p[i].bytes) / p[i].sec - 1);
        if (p[i].bytes < last->lo) {
            worst_before = fmax(worst_before, e);
        } else {
            worst_last = fmax(worst_last, e);
        }
    }
    assert_true(last->lo >= p[8].bytes);     /* the miss's piece holds the falling sizes */
    assert_true(worst_before <= 0.15);
    assert_true(fabs(worst_last - f.worst_err) < 1e-9);
    /* and no fit misses by less: the minimax over the same sizes */
    double a, b, e;
    assert_int_equal(tune_fit_line(p + 9, 3, &a, &b, &e), DURE_OK);
    assert_true(f.worst_err <= e + 1e-12);
}

static void test_crossovers(void **state)
{
    (void)state;
    struct tune_fit lat = {.npieces = 1, .piece = {{0, 1e9, 10e-6, 1e-10}}};
    struct tune_fit bw = {.npieces = 1, .piece = {{0, 1e9, 1e-6, 4e-10}}};
    double x[4];
    /* 10 us + 0.1 ns/B = 1 us + 0.4 ns/B at 30000 bytes */
    assert_int_equal(tune_fit_crossovers(&lat, &bw, 1024, 1 << 20, x, 4), 1);
    assert_true(fabs(x[0] / 30000 - 1) < 1e-9);
    assert_int_equal(tune_fit_crossovers(&lat, &bw, 1 << 16, 1 << 20, x, 4), 0);

    /* a model in two pieces crosses the other twice */
    struct tune_fit two = {.npieces = 2,
                           .piece = {{0, 65536, 1e-6, 1e-10}, {131072, 1e9, 50e-6, 1e-10}}};
    struct tune_fit flat = {.npieces = 1, .piece = {{0, 1e9, 5e-6, 1e-10}}};
    assert_int_equal(tune_fit_crossovers(&two, &flat, 1024, 1 << 22, x, 4), 1);
    assert_true(x[0] == 131072);  /* the jump at the piece boundary */
    struct tune_fit slope = {.npieces = 1, .piece = {{0, 1e9, 3e-6, 3e-10}}};
    int n = tune_fit_crossovers(&two, &slope, 1024, 1 << 22, x, 4);
    assert_int_equal(n, 2);
    assert_true(x[0] == 131072);
    /* 50 us + 0.1 ns/B = 3 us + 0.3 ns/B at 235000 bytes */
    assert_true(fabs(x[1] / 235000 - 1) < 1e-9);
}

static void test_bad_input(void **state)
{
    (void)state;
    struct tune_point p[3] = {{4096, 1e-6}, {1024, 2e-6}, {8192, 3e-6}};
    struct tune_fit f;
    dure_log_set_quiet(1);
    assert_int_equal(tune_fit_points(p, 3, 0.15, &f), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "point 1: 1024 bytes after 4096"));
    double al, be, e;
    assert_int_equal(tune_fit_line(p, 3, &al, &be, &e), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "point 1: 1024 bytes after 4096"));
    p[1] = (struct tune_point){6000, 0};
    assert_int_equal(tune_fit_points(p, 3, 0.15, &f), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "point 1 (6000 bytes, 0 s)"));
    assert_int_equal(tune_fit_points(p, 0, 0.15, &f), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    /* one size is a trivial fit */
    assert_int_equal(tune_fit_points(p, 1, 0.15, &f), DURE_OK);
    assert_int_equal(f.npieces, 1);
    assert_true(f.worst_err < 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_line_recovered),
        cmocka_unit_test(test_minimax_beats_any_line),
        cmocka_unit_test(test_exchange_matches_brute_force),
        cmocka_unit_test(test_pieces_where_one_line_cannot_fit),
        cmocka_unit_test(test_pieces_span_three_sizes),
        cmocka_unit_test(test_miss_stays_where_it_is),
        cmocka_unit_test(test_crossovers),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
