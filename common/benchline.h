/*
 * common/benchline.h - how a benchmark program reports one figure beside its
 * peer measured in the same run: the line bench/run.sh collects,
 *     bench: NAME: VALUE UNIT (PEER: VALUE UNIT, ratio R)
 * and the head of its JSON record, to which the program adds its own
 * members (sizes, repetitions, the load average) before closing it.
 */
#ifndef DURE_COMMON_BENCHLINE_H
#define DURE_COMMON_BENCHLINE_H

#include <stdio.h>

#include "common/json.h"

struct dure_bench_figure {
    const char *name;            /* "ckpt_save" */
    double value;
    const char *unit;            /* "GB/s" */
    const char *peer;            /* what it is measured against: "dd_write_fsync" */
    double peer_value;
    const char *peer_unit;
};

/* The 1-minute load average, to read noisy figures by; -1 when unknown. */
double dure_bench_load_average(void);

/* value / peer_value, or 0 when the peer measured 0. */
double dure_bench_ratio(const struct dure_bench_figure *f);

/* The bench: line, on out. */
void dure_bench_print(FILE *out, const struct dure_bench_figure *f);

/* Open the record's object in w and write name, value, unit, peer,
 * peer_value, peer_unit and ratio; the caller adds members and calls
 * json_end_object. */
void dure_bench_json_begin(struct json_writer *w, const struct dure_bench_figure *f);

#endif
