/*
 * collectives/bench.h - measure and check dure's collectives the way
 * nccl-tests does: one harness owns warm-up, timing, the median, checking
 * and the report; each collective plugs in as one small struct.
 *
 * `dure bench` (launcher/cmd_bench.c) parses options and calls this; so can
 * any other tool that needs measured, checked collective times (`dure tune`):
 *
 *     struct comm_config cfg; comm_config_default(&cfg);
 *     cfg.backend = COMM_BACKEND_MPI; cfg.algo = COMM_ALGO_RING;   (the algorithm measured)
 *     comm_create(MPI_COMM_WORLD, &cfg, &c);
 *     struct bench_spec spec; bench_spec_default(&spec, bench_coll_find("allreduce"));
 *     struct bench_variant v = {.comm = c, .in_place = 1};
 *     const size_t sizes[] = {4096, 65536, 1 << 20};
 *     struct bench_point pts[3];
 *     DURE_TRY(bench_measure(MPI_COMM_WORLD, &spec, &v, 1, sizes, 3, pts));
 *     pts[k].v[0].sec, .busbw_gbs, .wrong     (the same on every rank)
 *
 * Numbers follow nccl-tests: algbw = bytes / time (GB = 1e9 bytes), busbw =
 * algbw * bus_factor(ranks); a repetition's time is the mean over ranks of
 * its time per operation, the reported time the median of the repetitions.
 * The data are small integers, so sums over up to 32 ranks are exact in
 * float and bfloat16: checking compares exactly (bf16 within its rounding,
 * avg within 1e-6) and any misplaced element is counted in #wrong.
 */
#ifndef DURE_COLLECTIVES_BENCH_H
#define DURE_COLLECTIVES_BENCH_H

#include <mpi.h>
#include <stddef.h>
#include <stdio.h>

#include "collectives/comm.h"
#include "common/status.h"

/* The parameters every collective's functions see. */
struct bench_args {
    int rank, nranks;
    enum comm_dtype dtype;
    enum comm_redop op;          /* collectives that reduce */
    int root;                    /* broadcast */
};

/*
 * Where one rank's data lie for a message of `total` elements (the whole
 * vector), nccl-tests' getCollByteCount. Out of place, the input is
 * send[in_count] and the output recv[out_count]; in place, both live in recv:
 * the input at recv + in_place_in, the output at recv + in_place_out
 * (element offsets). in_first and out_first are the global indices of the
 * first input and output element.
 */
struct bench_counts {
    size_t in_count, out_count;
    size_t in_first, out_first;
    size_t in_place_in, in_place_out;
};

/* One collective (nccl-tests' struct testColl). */
struct bench_coll {
    const char *name;            /* "allreduce", as in `dure bench NAME` */
    enum comm_coll coll;
    int reduces;                 /* takes a reduction (-o) */
    int per_rank_count;          /* the count column and the size rounding are per rank */
    double (*bus_factor)(int nranks);
    void (*counts)(const struct bench_args *a, size_t total, struct bench_counts *out);
    /* This rank's input: in[k] for global index c->in_first + k, k < c->in_count. */
    void (*init)(const struct bench_args *a, const struct bench_counts *c, float *in);
    /* The value global element i of the output must hold. */
    float (*expected)(const struct bench_args *a, size_t total, size_t i);
    /* One operation; send and recv are already placed (in place or not). */
    dure_status_t (*run)(comm_t *c, const struct bench_args *a, const void *send, void *recv,
                         size_t total);
};

/* The table, terminated by an entry whose name is NULL: allreduce,
 * reducescatter, allgather, broadcast. */
extern const struct bench_coll bench_colls[];
/* The entry named `name`, or NULL. */
const struct bench_coll *bench_coll_find(const char *name);

/* Fault injection, to test the checks and the watchdog; -1: none. Read
 * from the environment by bench_faults_from_env. */
struct bench_faults {
    int corrupt_rank;            /* DURE_BENCH_CORRUPT=R: rank R corrupts one element of
                                    every checked output */
    int stall_rank;              /* DURE_BENCH_STALL=R:S: rank R sleeps S seconds before */
    double stall_s;              /* its first collective */
    int kill_rank;               /* DURE_BENCH_KILL=R: rank R SIGKILLs itself there */
};

struct bench_point;

/* What to measure, apart from the communicator and the sizes. */
struct bench_spec {
    const struct bench_coll *coll;
    enum comm_dtype dtype;
    enum comm_redop op;
    int root;
    int iters;                   /* operations per timed repetition (-n) */
    int warmup;                  /* untimed operations per size and variant (-w) */
    int reps;                    /* timed repetitions per size; the median is reported (-R) */
    int passes;                  /* 1 (nccl-tests): a size's repetitions back to back. P > 1:
                                    the sweep over every size runs P times, `reps` per size
                                    each time, and a size reports the median of all P x reps:
                                    its repetitions lie apart in time, so one burst of the
                                    machine's noise cannot set its median (dure tune). The
                                    passes alternate between descending and ascending, the
                                    last ascending, so each starts where the one before ended
                                    (each pass in an order of its own measured worse: a small
                                    size after a large one is cold) */
    double min_rep_s;            /* 0 (nccl-tests): `iters` operations a repetition. > 0: at
                                    least iters, and more, up to BENCH_ITERS_MAX, so that a
                                    repetition lasts about this long by the warm-up's time
                                    (the slowest rank's, the first operation of several not
                                    counted; needs warmup >= 1), after as long a warm-up
                                    again: below some 100 us, the barrier's exit skew
                                    between ranks is a tenth of it */
    int check;                   /* 1: run once more on fresh input and count wrong elements */
    int memcpy_peer;             /* 1: time a single-core memcpy of each size on the first rank */
    struct bench_faults faults;  /* injected after the buffers exist (default: none) */
    /* Called on every rank after each size, with that size's results (NULL: none). */
    void (*progress)(const struct bench_point *p, void *arg);
    void *progress_arg;
};

/* nccl-tests' defaults: float sum, root 0, 20 iterations, 5 warm-up, 5
 * repetitions, one pass, no minimum repetition time, checking on, no memcpy
 * peer, no faults. */
void bench_spec_default(struct bench_spec *s, const struct bench_coll *coll);

/*
 * One side measured. Heap variants share one set of buffers, whatever their
 * comm (heap memory belongs to no comm); the others share theirs per comm
 * (comm_mem_alloc may register it with the comm). Buffers of their own
 * would time each variant on its own pages: on 2 ranks of a VM, one Open
 * MPI algorithm timed against itself on two communicators measured 0.57x
 * to 1.43x at 1-4 MiB with a buffer set each (0.8x in 8 runs of 21
 * repetitions: a bias, not noise), 0.91x to 1.09x on shared buffers.
 */
struct bench_variant {
    comm_t *comm;
    int in_place;
    int heap;                    /* buffers from the heap (page aligned) instead of
                                    comm_mem_alloc; host-memory comms only */
};

struct bench_sample {
    enum comm_algo algo;         /* what the variant's comm runs at this size */
    double sec;                  /* per operation (median over repetitions) */
    double algbw_gbs, busbw_gbs;
    long wrong;                  /* wrong output elements summed over ranks; 0 unchecked */
};

#define BENCH_MAX_VARIANTS 4
#define BENCH_ITERS_MAX 10000        /* operations a repetition at most (min_rep_s) */
struct bench_point {
    size_t bytes;                /* the message: total * element size */
    size_t total;                /* elements of the whole vector */
    size_t count;                /* nccl-tests' count column (per rank for the gathers) */
    struct bench_sample v[BENCH_MAX_VARIANTS];
    double memcpy_gbs;           /* with spec->memcpy_peer, else 0 */
};

/* Elements of the message measured for a requested size in bytes: rounded
 * down to whole elements and, for per-rank collectives, to a multiple of 4
 * elements per rank (nccl-tests). */
size_t bench_total_for(const struct bench_spec *s, int nranks, size_t bytes);

/*
 * Measure spec at every size of bytes[n] for each of the nv variants and
 * fill out[n]. Collective over `mpi`, which must hold exactly the ranks of
 * every variant's comm (it carries the barriers and the time reductions).
 * The variants (and the memcpy peer) are timed interleaved in each
 * repetition, so machine noise falls on all alike; repetition r starts with
 * variant r mod nv (then r+1, ...; the memcpy peer last), so no variant is
 * always timed first. Buffers are allocated
 * once for the largest size and freed before returning. Every rank gets the
 * same results. Fails on a collective's error, on a bf16 request to a comm
 * that cannot reduce it, and on heap buffers for a device-memory comm.
 */
dure_status_t bench_measure(MPI_Comm mpi, const struct bench_spec *spec,
                            const struct bench_variant *v, int nv, const size_t *bytes, int n,
                            struct bench_point *out);

/* Read DURE_BENCH_CORRUPT, DURE_BENCH_STALL and DURE_BENCH_KILL (unset or
 * empty: none); DURE_ERR_ARG names a malformed one. */
dure_status_t bench_faults_from_env(struct bench_faults *f);

/* ---------------------------------------------------------------- report */

/* What the report says about the run beside the points. variant_names are
 * the JSON keys of v[0..nv) ("out_of_place", "in_place"); compare = 1 is
 * the layout of `dure bench --compare` (dure beside MPI native and memcpy). */
struct bench_report {
    const struct bench_spec *spec;
    comm_t *comm;                /* the measured comm: backend, nodes, table */
    enum comm_algo algo;         /* as configured ("auto" or forced) */
    int deterministic;
    int compare;
    int heap;                    /* dure's buffers came from the heap */
    int nv;
    const char *const *variant_names;
    const char *const *variant_titles;   /* for the plot's legend */
    const char *topology;        /* where the ranks run (dure_topo_format); NULL: not shown */
};

/* Averages and the verdict of a finished run: avg_busbw is variant 0's
 * (compare) or the mean of both variants' (nccl-tests); wrong sums all. */
struct bench_summary {
    double avg_busbw, avg_busbw_peer;
    long wrong;
};
void bench_summarize(const struct bench_report *r, const struct bench_point *p, int n,
                     struct bench_summary *s);

/* nccl-tests' text table: header, one row per point, footer. */
void bench_print_header(FILE *out, const struct bench_report *r);
void bench_print_row(FILE *out, const struct bench_report *r, const struct bench_point *p);
void bench_print_footer(FILE *out, const struct bench_report *r, const struct bench_summary *s);
/* The results as one JSON object (written whole, or DURE_ERR_IO naming path). */
dure_status_t bench_write_json(const char *path, const struct bench_report *r,
                               const struct bench_point *p, int n, const struct bench_summary *s);
/* busbw against size, drawn with gnuplot into a PNG. */
dure_status_t bench_write_plot(const char *path, const struct bench_report *r,
                               const struct bench_point *p, int n);

#endif
