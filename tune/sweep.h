/*
 * tune/sweep.h - measure every algorithm: dure's own (native, ring, shm, hier and
 * whatever else the algorithm table knows) and Open MPI's coll_tuned
 * algorithms on the mpi backend, NCCL's algorithm x protocol pairs on the
 * nccl backend; for all-reduce, reduce-scatter, all-gather and broadcast;
 * within a node and, when the job spans nodes, across them; with dure
 * bench's harness (collectives/bench.h: nccl-tests' warm-up, repetitions,
 * median, and a check of every result).
 *
 * Each algorithm gets a communicator of its own, created with it forced
 * (dure: cfg.algo; Open MPI: tune/ompi_mpit.h; NCCL: NCCL_ALGO and
 * NCCL_PROTO set while the NCCL communicator is created); up to
 * BENCH_MAX_VARIANTS of them are timed interleaved in each repetition, so
 * noise falls on them alike.
 */
#ifndef DURE_TUNE_SWEEP_H
#define DURE_TUNE_SWEEP_H

#include <stdio.h>

#include <mpi.h>

#include "collectives/bench.h"
#include "collectives/comm.h"
#include "tune/tune.h"

struct tune_sweep_cfg {
    struct tune_sweep_opts opts;
    int family[TUNE_FAMILY_COUNT];   /* 1: sweep this family (if the backend has it) */
    int coll[COMM_BROADCAST + 1];    /* 1: sweep this collective */
    struct comm_config comm;         /* backend, watchdog and its hook for every comm */
    size_t link_bytes;               /* node-pair ping-pong message */
    int ompi_usable;                 /* tune_ompi_open said Open MPI can be forced */
    int nodes;                       /* nodes the job spans (dure tune's probe communicator) */
};

/*
 * A communicator over `mpi` (collective over it) that runs algorithm `id`
 * of `family` for `coll`, from `base` (backend, watchdog). *out = NULL and
 * `why` filled when that algorithm cannot run here (shm across nodes, an
 * NCCL pair the hardware lacks); other failures are returned.
 */
dure_status_t tune_sweep_comm(const struct comm_config *base, MPI_Comm mpi, enum comm_coll coll,
                              enum tune_family family, int id, comm_t **out, char *why,
                              size_t why_len);

/*
 * dure tune's timing rules for `coll` (bench.h): -n operations a repetition,
 * more below opts.min_rep_s (TUNE_REP_MIN_S unless --min-rep-us says); -w
 * warm-up; each of the -R repetitions in a
 * pass of its own over the sizes (bench_spec.passes), so that a burst of
 * noise moves one repetition of several sizes, not every repetition of one
 * (back to back, bursts set single sizes 2x off their neighbours: no model
 * of the fabric should follow them).
 */
void tune_sweep_spec(const struct tune_sweep_cfg *cfg, enum comm_coll coll,
                     struct bench_spec *spec);

/*
 * --ring-segments: dure's ring (hier's rail when the job spans nodes)
 * all-reduce, reduce-scatter and all-gather (tune_exchange: a segment
 * serves all three in a job) in each of segs[n] (bytes, n <=
 * TUNE_RING_SEGS_MAX), timed interleaved at the sweep's sizes whose pieces
 * (size / ranks) the segments cut differently (comm_ring_segment_for):
 * elsewhere they send the same messages. The fastest by the time summed
 * over those sizes and collectives replaces segs[0] only when it is
 * TUNE_RING_SEGMENT_GAIN faster; cfg->comm.ring_seg_bytes becomes the
 * choice, so the sweep that follows, and the files it writes, use it. The
 * probe goes to r->ring_probe. No size large enough: segs[0], and a line
 * says why. A wrong result is an error naming the segment and size.
 * Collective over MPI_COMM_WORLD.
 */
#define TUNE_RING_SEGMENT_GAIN 1.1
/* Whether ring segments segs[n] (configured bytes) cut pieces of `piece`
 * bytes into other messages (comm_ring_segment_for). */
int tune_segments_differ(const size_t *segs, int n, size_t piece);
dure_status_t tune_sweep_ring_segment(struct tune_sweep_cfg *cfg, const size_t *segs, int n,
                                      struct tune_result *r, FILE *progress);

#define TUNE_SIZE_SLACK 1e-4 /* relative: 100 bytes at 1 MiB */

/*
 * The sizes min, min*f, min*f^2, ... up to max, each to the nearest byte,
 * into bytes[TUNE_SIZES_MAX], *n of them; DURE_ERR_ARG, naming the range
 * and factor, when they are more than TUNE_SIZES_MAX or none. A size at
 * most TUNE_SIZE_SLACK above max is max: a factor given to a few digits of
 * a root (-f 1.25992105 for the cube root of 2, a hair above it) lands 30
 * steps later a few bytes past 2^10 times min, and the range asked for
 * would lose its end.
 */
dure_status_t tune_sweep_sizes(const struct tune_sweep_opts *o, size_t *bytes, int *n);

/*
 * Collective over MPI_COMM_WORLD. Appends the series of every family and
 * collective asked for (and the node-pair links) to r; every rank gets rank
 * 0's node's results. Progress lines go to `progress` on rank 0 (NULL:
 * none). An algorithm that cannot run here (shm across nodes, an NCCL
 * pair the hardware lacks) is skipped with a line saying why. Then every
 * group of algorithms timed together of which a series misses the fit's
 * tolerance (rank 0's fit) is timed once more with twice the passes, and
 * those timings replace the first (tune_series.retimed); not when a result
 * was wrong.
 */
dure_status_t tune_sweep_run(const struct tune_sweep_cfg *cfg, struct tune_result *r,
                             FILE *progress);

#endif
