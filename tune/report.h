/*
 * tune/report.h - what dure tune writes and reads back: the fitted model
 * (tune.json, format 1: tune/README.md documents every field), the dure
 * algorithm table as a job-spec snippet, the site profile section that
 * installs every tuning file, and the human summary.
 */
#ifndef DURE_TUNE_REPORT_H
#define DURE_TUNE_REPORT_H

#include <stdio.h>

#include "tune/choose.h"
#include "tune/tune.h"

/* What was chosen and which files hold it (file names relative to the
 * output directory; NULL when not written). */
struct tune_outputs {
    int have_table;
    struct comm_algo_table table;
    int ompi_rules;                /* rules written (-1: no Open MPI sweep) */
    int ompi_changed;              /* of them, not Open MPI's own choice */
    int nccl_rules;                /* rows written (-1: no NCCL sweep) */
    const char *table_file, *profile_file, *ompi_file, *nccl_file, *plot_file;
};

/* A change of the fastest algorithm of one family at one collective and
 * level, by the models: below `bytes` `from` is faster, above it `to`. */
struct tune_crossover {
    enum comm_coll coll;
    enum tune_level level;
    enum tune_family family;
    const struct tune_series *from, *to;
    double bytes;
};

/*
 * The crossovers of r's fitted series (lower envelope of each family's
 * models over the measured range), at most max, in series order; returns
 * how many there are (may exceed max: only max are written).
 */
int tune_crossovers(const struct tune_result *r, struct tune_crossover *out, int max);

/*
 * The link of one level as collective `coll` (all-reduce, reduce-scatter or
 * all-gather) sees it, as dure plan reads it (plan/plan.h: a message of n
 * bytes between two ranks costs alpha + beta * n, and the collective is a
 * ring of such messages): from the fit of the algorithm dure runs at that
 * level (within a node shm, as the built-in algorithm table has it; across
 * nodes the ring; else dure's ring, else, for the all-reduce, Open MPI's),
 * taken as a ring whose `steps` (2(p-1) for an all-reduce, p-1 for its
 * halves) each move n/p bytes: alpha = the first piece's alpha / steps,
 * beta = the last piece's beta * p / steps. Across nodes, beta is 1 / the
 * median measured link bandwidth instead, when links were measured. *from
 * names the series; 0 when no such series was measured at that level or
 * the fit left no bandwidth term (dure plan needs beta > 0).
 */
int tune_link_model(const struct tune_result *r, enum tune_level level, enum comm_coll coll,
                    double *alpha, double *beta, const struct tune_series **from);

/* Write tune.json (atomically). */
dure_status_t tune_report_write(const struct tune_result *r, const struct tune_outputs *o,
                                const char *path);

/*
 * Read a tune.json back (a baseline, or the sweep --verify repeats) into r
 * (initialised by the caller, freed with tune_result_free): world, sweep,
 * series with their points (not their fits), links. DURE_ERR_IO when
 * unreadable; DURE_ERR_FORMAT naming FILE:LINE, the field and what is wrong.
 */
dure_status_t tune_report_read(const char *path, struct tune_result *r);

/* The job-spec snippet: [parallel] algo_table = TABLE, with a comment. */
dure_status_t tune_write_algo_table(const struct tune_result *r,
                                    const struct comm_algo_table *t, const char *path);

/*
 * The site profile section [name] (slurm/profiles.ini format) exporting
 * DURE_ALGO_TABLE, Open MPI's dynamic rules parameters pointing at
 * ompi_path and NCCL_TUNER_CONFIG_FILE at nccl_path (absolute paths; NULL
 * when not written).
 */
dure_status_t tune_write_profile(const struct tune_result *r, const char *name,
                                 const struct comm_algo_table *t, const char *ompi_path,
                                 const char *nccl_path, const char *path);

/* The summary printed by dure tune: per series the model, its worst error
 * and pieces; the crossovers. */
void tune_report_print(FILE *out, const struct tune_result *r);

#endif
