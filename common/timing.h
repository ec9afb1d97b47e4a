/*
 * common/timing.h - the clock and the statistic every measurement in dure
 * uses: monotonic wall time, and the median of repetitions (benchmarks
 * report medians; see bench/run.sh).
 */
#ifndef DURE_COMMON_TIMING_H
#define DURE_COMMON_TIMING_H

/* Seconds on CLOCK_MONOTONIC: for intervals only, not a date. */
double dure_now_s(void);

/* Median of v[0..n), n >= 1; sorts v in place. */
double dure_median(double *v, int n);

#endif
