/*
 * launcher/preflight.h - `dure preflight`: is every node of this job fit to
 * train the job spec, before any training time is spent?
 *
 * Every rank probes what it sees; the ranks that lead a node (its lowest
 * rank) check the node-wide things; rank 0 gathers everything and judges
 * each node on each check:
 *
 *   versions  the dure binary (SHA-256 of the executable) and the versions
 *             of dure, MPI, HDF5, NCCL and the CUDA runtime: the same on
 *             every rank (the value most nodes hold is the reference)
 *   cpus      each rank's CPU binding: run.threads fits it, and ranks of a
 *             node bound to parts of it do not share CPUs
 *   gpus      with run.device = cuda or slurm.gpus_per_node > 0: a GPU per
 *             rank, no two ranks of a node on the same one
 *   memory    the job spec's memory estimate per rank (plan/plan.h) times
 *             the node's ranks fits MemAvailable
 *   run dir   run.dir is the same directory on every node (a token written
 *             by rank 0 is read back), checkpoint.dir is writable
 *   data      the dataset's files exist and are identical on every node
 *             (size and SHA-256 of 64 sampled MiB per file)
 *   clock     each node's clock against rank 0's within max_skew_s
 *             (offset from the round trip with the smallest delay)
 *   usr2      under Slurm, SIGUSR2 sent with scancel to this step reaches
 *             every rank (a signal blocked by a wrapper would never
 *             checkpoint the run)
 *   network   all-reduce busbw within each node (shm) and between the
 *             nodes' leaders, and each pair of neighbouring nodes'
 *             exchange rate; against the site profile's minimums
 *             (DURE_PREFLIGHT_MIN_INTRA_GBS, DURE_PREFLIGHT_MIN_INTER_GBS;
 *             unset: reported only). A node all of whose links are slow is
 *             the bad one; with 2 nodes, both.
 *
 * Fault injection for tests: DURE_PREFLIGHT_CLOCK_SKEW=HOST:SECONDS adds
 * SECONDS to the clock that ranks on HOST report (a real clock cannot be
 * set per network namespace).
 */
#ifndef DURE_LAUNCHER_PREFLIGHT_H
#define DURE_LAUNCHER_PREFLIGHT_H

#include <mpi.h>
#include <stdio.h>

#include "common/status.h"
#include "common/topo.h"
#include "jobs/jobspec.h"
#include "launcher/ranks.h"

enum pf_check {
    PF_VERSIONS,
    PF_CPUS,
    PF_GPUS,
    PF_MEMORY,
    PF_RUNDIR,
    PF_DATA,
    PF_CLOCK,
    PF_SIGNAL,
    PF_NETWORK,
    PF_NCHECK
};

enum pf_state { PF_NA, PF_OK, PF_BAD };

struct pf_options {
    const struct dure_jobspec *spec;
    double max_skew_s;          /* clocks may differ this much (default 1) */
    double min_intra_gbs;       /* all-reduce busbw within a node; 0: report only */
    double min_inter_gbs;       /* between nodes (all-reduce and each pair); 0: report only */
    int signal_test;            /* 1: send SIGUSR2 with scancel (under Slurm only) */
};

/* One node x check cell: a short value for the table, and why it failed. */
struct pf_cell {
    enum pf_state state;
    char value[40];
    char why[256];
};

struct pf_node {
    char host[DURE_TOPO_HOST_MAX];
    char ranks[32];             /* "0-1" */
    struct pf_cell cell[PF_NCHECK];
    int bad;                    /* any cell PF_BAD */
};

struct pf_report {
    int nodes, ranks;
    struct pf_node *node;       /* node[nodes], in topology order */
    int bad_nodes;
};

/* The column title of a check ("versions", "cpus", ...). */
const char *preflight_check_name(enum pf_check c);

/*
 * Run every check (collective over `world`, whose topology is `topo` and
 * this rank `r`). On rank 0 *rep is filled (free with preflight_report_free);
 * elsewhere it is left empty. A failure of the checks themselves (MPI,
 * memory) is returned; a node that fails a check is not an error here.
 */
dure_status_t preflight_run(MPI_Comm world, const struct dure_topo *topo,
                            const struct dure_ranks *r, const struct pf_options *o,
                            struct pf_report *rep);
void preflight_report_free(struct pf_report *rep);

/* The node x check table with ✓/✗ and values, each bad node's reasons,
 * and the verdict line. */
void preflight_print(const struct pf_report *rep, FILE *out);

/* Append each bad node's name to `path` (one per line) unless listed there
 * already: the exclusion list the batch script hands to Slurm. When every
 * node is bad nothing is written (the job, not a node, is at fault: there is
 * nowhere better to go); *written is the number of names added. */
dure_status_t preflight_write_bad_nodes(const struct pf_report *rep, const char *path,
                                        int *written);

#endif
