/*
 * tune/choose.h - from measurements to choices: which algorithm to use from
 * which message size, for dure's algorithm table, Open MPI's rules and
 * NCCL's tuner file.
 *
 * A choice leaves the default (Open MPI's or NCCL's own decision, or dure's
 * built-in table) only where another candidate was measured at least
 * min_gain times faster, so that noise does not rewrite what works; between
 * two measured sizes where the choice changes, the boundary is the sizes'
 * model crossover when it lies between them (rounded up to 4 KiB), else the
 * larger size.
 */
#ifndef DURE_TUNE_CHOOSE_H
#define DURE_TUNE_CHOOSE_H

#include "tune/ompi_rules.h"
#include "tune/nccl_conf.h"
#include "tune/tune.h"

/* From `from_bytes` up (0 for the first segment), use candidate `cand`. */
struct tune_segment {
    size_t from_bytes;
    int cand;
};

/*
 * cands[0..m): fitted series measured at the same sizes (same n and bytes).
 * deflt[k]: the default candidate at size k, or NULL for none (the fastest
 * wins). alias[k] (NULL: none): the candidate that runs what the default
 * runs at size k (Open MPI's fixed decision's own algorithm,
 * tune_ompi_fixed_pick), or -1: it is the default there, never a change,
 * and the default's time is the better of the two. A candidate vetoed at
 * size k (pt[k].vetoed: it lost its gain when timed again,
 * tune_recheck) is not chosen there. A change from the default must
 * be chosen at two neighbouring sizes at least (the same candidate): one
 * alone is left at the default. At most cands[0]->n segments are
 * written to out; returns how many (>= 1), or -1 when the candidates' sizes
 * differ.
 */
int tune_choose(const struct tune_series *const *cands, int m, const int *deflt,
                const int *alias, double min_gain, struct tune_segment *out);

/* The level whose communicator is the job's: world across nodes, else node. */
enum tune_level tune_job_level(const struct tune_result *r);

/* dure's built-in algorithm table for r's shape (ranks assumed placed in
 * blocks): the default the table's choices are judged against. */
const struct comm_algo_table *tune_dure_builtin(const struct tune_result *r);

/*
 * dure's algorithm table for the job's level, from the summed time of
 * all-reduce, reduce-scatter and all-gather of each dure algorithm measured
 * for all three (the gradient exchange), against the built-in table.
 * An empty table (t->n = 0) when no dure algorithm was measured for all three.
 */
dure_status_t tune_choose_dure_table(const struct tune_result *r, struct comm_algo_table *t);

/*
 * Open MPI rules from the ompi series: for each collective and level, a
 * communicator-size group at the level's size with the chosen algorithms
 * (0 where Open MPI's default stays, also where the fastest algorithm is
 * the one Open MPI 4.1's fixed decision runs there), and groups of 0
 * (defaults) for every other size. *changed counts the rules that are not 0.
 */
dure_status_t tune_choose_ompi_rules(const struct tune_result *r, struct tune_ompi_rules *rs,
                                     int *changed);

/* nccl_tuner.conf rows where a pinned algorithm/protocol beat NCCL's own
 * choice, matching the level's node and rank counts exactly. */
dure_status_t tune_choose_nccl_conf(const struct tune_result *r, struct tune_nccl_conf *c);

#endif
