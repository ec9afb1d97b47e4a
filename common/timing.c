/* common/timing.c - see timing.h. */
#include "common/timing.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

double dure_clock_s(clockid_t clock)
{
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0) {
        return NAN;
    }
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double dure_now_s(void)
{
    return dure_clock_s(CLOCK_MONOTONIC);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double dure_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void dure_format_duration(double seconds, char *buf, size_t n)
{
    if (!isfinite(seconds) || seconds < 0) {
        snprintf(buf, n, "?");
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s >= 3600) {
        snprintf(buf, n, "%ldh%02ldm%02lds", s / 3600, s / 60 % 60, s % 60);
    } else if (s >= 60) {
        snprintf(buf, n, "%ldm%02lds", s / 60, s % 60);
    } else {
        snprintf(buf, n, "%lds", s);
    }
}
