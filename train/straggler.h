/*
 * train/straggler.h - ranks that are persistently slower than the rest.
 *
 * Every rank adds each step's compute time (the step's wall time less the
 * time blocked in communication and waiting for data) and wait time (time
 * blocked in communication) to a window. Every parallel.straggler_every
 * steps the ranks exchange their window's means (one all-gather of 2 floats
 * per rank, through the run's communicator, so it is watched like any
 * collective) and rank 0 judges:
 *   slowdown   compute / the median compute - 1; a rank above
 *              parallel.straggler_slowdown at two checks in a row is a
 *              straggler (one slow window is noise; a persistently slow GPU,
 *              a throttled CPU or a busy node is not);
 *   scores     as NVIDIA's NVRx straggler detection: against the fastest
 *              rank (fastest / this, 0..1) and against the rank's own best
 *              window (best / this, 0..1: a rank that became slower);
 *   wait       the rank that waited most and the median wait: a slow link
 *              shows as wait time on the ranks across it, not as compute.
 * The judgement is rank 0's alone (the others pass NULL reports).
 */
#ifndef DURE_TRAIN_STRAGGLER_H
#define DURE_TRAIN_STRAGGLER_H

#include <stdint.h>

#include "common/status.h"
#include "train/metrics.h"

#define STRAGGLER_HOST_MAX 64

/* What a check found; rank 0 only. */
struct straggler_report {
    int checked;            /* 1: this step ended a window */
    int found;              /* 1: a straggler (the slowest one is described) */
    int n_stragglers;       /* ranks that are stragglers now */
    int rank;               /* the worst straggler */
    char host[STRAGGLER_HOST_MAX];
    double compute_s;       /* its compute per step, window mean */
    double median_s;        /* the median rank's */
    double slowdown;        /* compute_s / median_s - 1 */
    double score_fastest;   /* fastest rank's compute / its */
    double score_own;       /* its own best window's compute / this window's */
    int checks;             /* consecutive checks it has been above the threshold */
    int wait_rank;          /* the rank that waited most per step */
    char wait_host[STRAGGLER_HOST_MAX];
    double wait_s;          /* its wait per step */
    double median_wait_s;
};

#endif
