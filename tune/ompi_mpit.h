/*
 * tune/ompi_mpit.h - forcing Open MPI's collective algorithms one
 * communicator at a time, through the MPI tool interface.
 *
 * Open MPI's coll_tuned reads its forcing parameters
 * (coll_tuned_allreduce_algorithm, ...) each time a communicator is
 * created, and only when coll_tuned_use_dynamic_rules was 1 at MPI_Init.
 * So dure tune asks for dynamic rules in its own environment before
 * MPI_Init (which works the same under mpirun and srun: the process reads
 * OMPI_MCA_* variables itself), then for each algorithm K writes the
 * parameter with MPI_T_cvar_write and creates a communicator, which keeps
 * algorithm K for its lifetime: every algorithm is measured in one run,
 * interleaved. Algorithm 0 ("ignore") leaves Open MPI's own fixed decision,
 * exactly as without dynamic rules (tests/mpi/test_tune_ompi.c shows both).
 */
#ifndef DURE_TUNE_OMPI_MPIT_H
#define DURE_TUNE_OMPI_MPIT_H

#include <stddef.h>

#include "common/status.h"
#include "tune/ompi_rules.h"

/*
 * Before MPI_Init: set OMPI_MCA_coll_tuned_use_dynamic_rules=1 unless the
 * environment already sets it. A rules file named in the environment
 * (OMPI_MCA_coll_tuned_dynamic_rules_filename) would override every forced
 * algorithm, so it is removed, and *had_rules set, for the sweep to say so.
 */
void tune_ompi_prepare(int *had_rules);

/*
 * After MPI_Init: initialise the tool interface and check that this MPI is
 * Open MPI with coll_tuned's forcing parameters and dynamic rules on.
 * DURE_OK with *usable = 0 and `why` filled when it is not (another MPI,
 * dynamic rules switched off by the environment): no Open MPI sweep then.
 */
dure_status_t tune_ompi_open(int *usable, char *why, size_t why_len);
void tune_ompi_close(void);

/* Algorithms 0 .. *count-1 of the installed Open MPI for c, from its MPI_T
 * enumeration; names[k] (up to max) receives each name. */
dure_status_t tune_ompi_algos(const struct tune_ompi_coll *c, int *count,
                              char names[][48], int max);

/* Communicators created from now on use algorithm `alg` for c (0 = Open
 * MPI's own choice). */
dure_status_t tune_ompi_force(const struct tune_ompi_coll *c, int alg);

#endif
