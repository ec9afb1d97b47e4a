/*
 * tune/tune.h - what `dure tune` measured and fitted, as data: the series
 * (one collective x algorithm x level, its measured sizes and its alpha-beta
 * model), the choices made from them, and the point-to-point links between
 * nodes. The sweep (tune/sweep.c) fills it, tune/report.c writes it as the
 * model file tune.json (format 1, documented in tune/README.md) and reads it
 * back as a baseline, tune/choose.c turns it into tuning files, and
 * tune/health.c judges it against a baseline.
 */
#ifndef DURE_TUNE_TUNE_H
#define DURE_TUNE_TUNE_H

#include <stddef.h>

#include "collectives/comm.h"
#include "common/status.h"
#include "tune/fit.h"

#define TUNE_FORMAT 1          /* "format" of tune.json */
#define TUNE_SIZES_MAX 96      /* sizes in one sweep: 4 an octave from 16 B to 1 GiB */
#define TUNE_NAME_MAX 48

/* Whose algorithms a series measures. */
enum tune_family {
    TUNE_FAMILY_DURE,          /* dure's own: native, ring, shm, hier (the algorithm table) */
    TUNE_FAMILY_OMPI,          /* Open MPI coll_tuned's, forced one at a time (id 0: default) */
    TUNE_FAMILY_NCCL,          /* NCCL's, NCCL_ALGO/NCCL_PROTO pinned (id -1 = its default) */
    TUNE_FAMILY_COUNT
};

/* Which communicator a series ran on. */
enum tune_level {
    TUNE_LEVEL_NODE,           /* the ranks of one node (every node at once) */
    TUNE_LEVEL_WORLD,          /* every rank, across nodes (measured when the job spans nodes) */
    TUNE_LEVEL_COUNT
};

/* One measured size: nccl-tests' rules (warm-up, repetitions, median of
 * repetition means over ranks), in place. */
struct tune_meas {
    size_t bytes;              /* total bytes (nccl-tests' size column) */
    double sec;                /* median time per operation */
    double busbw;              /* GB/s, nccl-tests' bus bandwidth */
    long wrong;                /* elements wrong, summed over ranks */
    /* The recheck (tune_recheck): this algorithm at this size was
     * timed again against the default, interleaved; vetoed when it was not
     * the recheck's gain faster there (dure: the exchange's summed time),
     * and then never chosen at this size. */
    int rechecked, vetoed;
    double recheck_sec, recheck_default_sec;
};

struct tune_series {
    enum comm_coll coll;
    enum tune_level level;
    int ranks, nodes;          /* of the communicator measured */
    enum tune_family family;
    int id;                    /* dure: enum comm_algo; ompi: algorithm number; nccl:
                                  algo * TUNE_NCCL_PROTO_COUNT + proto, -1 = NCCL's default */
    char name[TUNE_NAME_MAX];  /* "shm"; "ring" (ompi); "ring/simple" (nccl); "default" */
    int hops;                  /* steps of the algorithm on this communicator, 0 when it has
                                  no per-hop structure (alpha / hops = per-hop latency) */
    int n;                     /* measured sizes, ascending */
    struct tune_meas pt[TUNE_SIZES_MAX];
    struct tune_fit fit;       /* filled by tune_result_fit */
    int retimed;               /* 1: the sweep timed it again, with twice the passes, because
                                  a series timed with it missed the fit's tolerance
                                  (tune_sweep_run); pt holds the second timings */
    double first_worst_err;    /* retimed: the worst error of the first timings' fit */
};

/* Point-to-point bandwidth between two nodes (their first ranks). */
struct tune_link {
    char a[TUNE_NAME_MAX], b[TUNE_NAME_MAX];  /* host names */
    double gbs;                /* ping-pong bandwidth, GB/s */
};

/*
 * A repetition lasts at least this long unless --min-rep-us says
 * (bench_spec.min_rep_s): at 1-2 us an operation, 5 of them timed between
 * barriers measured single sizes 30% off their neighbours (the barrier's
 * exit skew between ranks), where 100 us of them cost nothing to speak of.
 */
#define TUNE_REP_MIN_S 100e-6

/* How the sweep ran. */
struct tune_sweep_opts {
    size_t min_bytes, max_bytes;
    double factor;             /* sizes grow by this factor (> 1) */
    int iters, warmup, reps;
    double tolerance;          /* fit: worst relative error allowed (0.15) */
    double min_gain;           /* a choice leaves the default only for this speed-up */
    int caller_runs;           /* 1: dure's collectives ran on the ranks' waits, 0: on a
                                  communication thread (comm_config.caller_runs); -1: not
                                  recorded (a model written before it was) */
    double min_rep_s;          /* a repetition's least duration (TUNE_REP_MIN_S unless
                                  --min-rep-us; a model written before it was recorded reads
                                  as TUNE_REP_MIN_S); 0: none, nccl-tests' -n alone */
};

/* --ring-segments: dure's ring all-reduce timed in each segment, interleaved. */
#define TUNE_RING_SEGS_MAX 4
#define TUNE_EXCHANGE_N 3 /* the gradient exchange's collectives (tune_exchange) */

struct tune_ring_probe {
    int nseg;                  /* segments timed; 0 = no probe */
    size_t seg_bytes[TUNE_RING_SEGS_MAX];
    double sec[TUNE_RING_SEGS_MAX]; /* per operation, summed over the sizes and over
                                       the exchange's collectives (tune_exchange) */
    double coll_sec[TUNE_EXCHANGE_N][TUNE_RING_SEGS_MAX]; /* each collective's part */
    int nsizes;                /* the sweep's sizes whose pieces exceed the smallest segment */
    size_t min_bytes, max_bytes;
    const char *algo;          /* "ring" (one node), "hier" (its rail across nodes); static */
};

struct tune_result {
    int ranks, nodes;
    char backend[16];          /* "mpi", "nccl" */
    char created[32];          /* UTC, ISO 8601 */
    char dure_version[96];     /* "0.1.0 (rev abc)" */
    char mpi_library[256];
    char host0[TUNE_NAME_MAX]; /* rank 0's host */
    struct tune_sweep_opts opts;
    size_t ring_seg_bytes;     /* the segment dure's ring ran in (mpi); 0 = none */
    struct tune_ring_probe ring_probe; /* --ring-segments; nseg = 0: not probed */
    int nseries, cap;
    struct tune_series *s;     /* [cap], owned */
    int nlinks, link_cap;
    struct tune_link *links;   /* [link_cap], owned */
};

/* Empty result; free with tune_result_free (NULL-safe contents). */
void tune_result_init(struct tune_result *r);
void tune_result_free(struct tune_result *r);

/* A new series appended to r (zeroed but for the given fields). */
dure_status_t tune_result_add_series(struct tune_result *r, enum comm_coll coll,
                                     enum tune_level level, int ranks, int nodes,
                                     enum tune_family family, int id, const char *name, int hops,
                                     struct tune_series **out);
dure_status_t tune_result_add_link(struct tune_result *r, const char *a, const char *b,
                                   double gbs);

/* The series of (coll, level, family, id), or NULL; tune_result_series for
 * one to change (the sweep's second look, the recheck). */
const struct tune_series *tune_result_find(const struct tune_result *r, enum comm_coll coll,
                                           enum tune_level level, enum tune_family family,
                                           int id);
struct tune_series *tune_result_series(struct tune_result *r, enum comm_coll coll,
                                       enum tune_level level, enum tune_family family, int id);

/* Fit every series (tune_fit_points at opts.tolerance). */
dure_status_t tune_result_fit(struct tune_result *r);

/* The first series with a wrong element, or NULL: then no tuning file may be
 * written. *at receives the index of its first wrong size. */
const struct tune_series *tune_result_first_wrong(const struct tune_result *r, int *at);

const char *tune_family_name(enum tune_family f);   /* "dure", "ompi", "nccl" */
const char *tune_level_name(enum tune_level l);     /* "node", "world" */
/* nccl-tests' name of a collective: "allreduce", "reducescatter", ... */
const char *tune_coll_name(enum comm_coll c);

/* The collectives of the gradient exchange, whose summed time dure's table
 * and the ring's segment are chosen by: all-reduce, reduce-scatter,
 * all-gather. */
extern const enum comm_coll tune_exchange[TUNE_EXCHANGE_N];
/* Parse the names above; -1 when unknown. */
int tune_family_parse(const char *s);
int tune_level_parse(const char *s);
int tune_coll_parse(const char *s);

/*
 * Steps of an algorithm on `ranks` ranks, for the per-hop latency: rings
 * 2(p-1) for all-reduce and p-1 for reduce-scatter and all-gather,
 * recursive doubling/halving ceil(log2 p) per phase; 0 for algorithms
 * whose step count is not a property of the algorithm alone (MPI's or
 * NCCL's default choice, dure's native, shm).
 */
int tune_hops(enum comm_coll coll, enum tune_family family, int id, int ranks);

#endif
