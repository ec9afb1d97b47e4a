/*
 * tune/health.h - the admin's verdict on a fabric: against a stored
 * baseline (an earlier tune.json), every collective/algorithm/level/size
 * whose bus bandwidth fell by more than a threshold; with ranks on several
 * nodes, every node pair whose point-to-point bandwidth is far below the
 * fastest pair's (or fell against the baseline), by host name, and the node
 * common to the slow pairs.
 */
#ifndef DURE_TUNE_HEALTH_H
#define DURE_TUNE_HEALTH_H

#include <stdio.h>

#include "tune/tune.h"

/*
 * Mark in slow[0..n) the links slower than (1 - threshold) x the fastest of
 * the n links (the pairs of a healthy fabric are alike; a bad node makes all
 * its pairs slow, so a median could be one of them). Needs n >= 2 (three
 * nodes); returns how many are marked.
 */
int tune_link_outliers(const struct tune_link *links, int n, double threshold, int *slow);

/*
 * Judge r (fitted or not) against baseline (NULL: links only) at
 * `threshold` (0.2 = a fall of more than 20%). Prints one line per finding
 * and a verdict line ("health: OK ..." or "health: UNHEALTHY ...") to out;
 * *findings gets their number (0 = healthy). DURE_ERR_ARG when the baseline
 * was measured on another number of ranks or nodes, or shares no measured
 * point with r: nothing could be compared, which is not a verdict.
 */
dure_status_t tune_health(const struct tune_result *r, const struct tune_result *baseline,
                          const char *baseline_path, double threshold, FILE *out,
                          int *findings);

#endif
