/*
 * train/failure.h - the failure record of a run: what the survivors of a
 * hung collective saw, and what `dure status` and the batch script make of
 * it.
 *
 * When a collective hangs past parallel.watchdog_s, every surviving rank
 * whose watchdog fires writes RUN_DIR/failures/launch-<K>/rank-<R>.json
 * (atomically, before it exits 124), K being the launch of the run
 * (train/manifest.h: 0 for the first start, k for manifest.launch-k.json):
 *
 * {"format": "dure-failure", "format_version": 1,
 *  "time": "2026-12-06T04:36:35Z", "launch": 1,
 *  "job": "3233000", "restart": 0,             (SLURM_JOB_ID, SLURM_RESTART_COUNT; "" and -1 outside Slurm)
 *  "rank": 0, "size": 4, "host": "fl-n1",      (the survivor)
 *  "step": 120,                                (the step in progress: steps done + 1)
 *  "collective": {"op": "all-reduce", "seq": 121, "bytes": 15680, "algo": "native",
 *                 "waited_s": 5.2},
 *  "missing": [{"rank": 2, "host": "fl-n2", "state": "silent", "silent_s": 5.3,
 *               "joined": 120}, ...],          (state: behind, silent, gone, stopped)
 *  "exit_code": 124}
 *
 * Reading merges the records of one launch (failure_summary_read): who
 * reported, which ranks and hosts failed, and which nodes to exclude from
 * the next attempt. A node is excluded when at least half of the reporting
 * nodes saw ranks on it silent, gone or stopped (a dead node reports
 * nothing; a partition reports both ways): a node that merely lags
 * ("behind") is not. If that would exclude every reporting node (two nodes
 * cut apart see each other silent), the node of the lowest reporting rank
 * is kept: it holds rank 0 and the batch script, whose view wins.
 */
#ifndef DURE_TRAIN_FAILURE_H
#define DURE_TRAIN_FAILURE_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/comm.h"
#include "common/status.h"

#define FAILURE_FORMAT "dure-failure"
#define FAILURE_FORMAT_VERSION 1
#define FAILURE_HOST_MAX 64
#define FAILURE_NODES_MAX 64

/*
 * Write this rank's record of the hang `r` into run_dir (see above); `step`
 * is the step in progress, `exit_code` what this rank exits with. Safe on
 * any thread (no MPI). The directory is created when missing.
 */
dure_status_t failure_record_write(const char *run_dir, int launch, long step,
                                   const struct comm_hang_report *r, int exit_code);

/* One node in a merged view. */
struct failure_node {
    char host[FAILURE_HOST_MAX];
    char ranks[256];   /* "2, 3" */
    char state[16];    /* failed nodes: the worst state seen ("silent", ...) */
    double silent_s;   /* the longest silence seen */
    int accusers;      /* reporting nodes that saw it fail */
};

/* The records of one launch, merged. */
struct failure_summary {
    int launch;                 /* -1: no record at all */
    char time[32];              /* the earliest record's */
    char job[32];
    int restart;
    long step;
    char op[32];
    uint64_t seq;
    double waited_s;            /* the longest wait reported */
    int exit_code;              /* the survivors' */
    int n_records;
    struct failure_node reporters[FAILURE_NODES_MAX]; /* ranks that wrote a record, by node */
    int n_reporters;
    struct failure_node failed[FAILURE_NODES_MAX];    /* ranks seen failed, by node */
    int n_failed;
    int exclude[FAILURE_NODES_MAX]; /* 1: failed[i] is to be excluded */
};

/*
 * Merge the records of the newest launch in run_dir that has any; with
 * job non-NULL, only records of that Slurm job and restart count (the
 * batch script asks about its own attempt). s->launch = -1 when there is
 * none. DURE_ERR_FORMAT naming the file for a record that does not parse.
 */
dure_status_t failure_summary_read(const char *run_dir, const char *job, int restart,
                                   struct failure_summary *s);

#endif
