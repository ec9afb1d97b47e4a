/*
 * common/timing.h - the clock and the statistic every measurement in dure
 * uses: monotonic wall time, and the median of repetitions (benchmarks
 * report medians; see bench/run.sh); and how a duration reads.
 */
#ifndef DURE_COMMON_TIMING_H
#define DURE_COMMON_TIMING_H

#include <stddef.h>
#include <time.h>

/* Seconds on CLOCK_MONOTONIC: for intervals only, not a date. */
double dure_now_s(void);

/* Seconds on `clock` (a thread's CPU time: CLOCK_THREAD_CPUTIME_ID, or
 * pthread_getcpuclockid's); NAN when it cannot be read. */
double dure_clock_s(clockid_t clock);

/* Median of v[0..n), n >= 1; sorts v in place. */
double dure_median(double *v, int n);

/* Seconds, rounded, as "1h02m03s", "2m05s" or "7s" into buf; "?" when
 * negative or not finite. */
void dure_format_duration(double seconds, char *buf, size_t n);

#endif
