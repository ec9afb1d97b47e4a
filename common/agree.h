/*
 * common/agree.h - every rank agrees on the worst status.
 *
 * A step that each rank decides alone (open a file, allocate, check a
 * value) must end the same way on every rank, or the ranks that succeeded
 * go on into the next collective call and wait forever for the one that
 * failed. dure_agree is the one place that makes such a status collective.
 */
#ifndef DURE_COMMON_AGREE_H
#define DURE_COMMON_AGREE_H

#include <mpi.h>

#include "common/status.h"

/*
 * Collective over comm: every rank brings its own status `mine` and every
 * rank returns the worst (highest-numbered) status any rank brought, so the
 * whole job ends with one exit code (a dataset missing on one node is bad
 * data, exit 4, everywhere). A rank that brought DURE_OK and gets a failure
 * logs "WHAT failed on rank R (STATUS); see that rank's error", R being the
 * lowest rank with the worst status (which logged why itself); a failing
 * rank logs nothing more. `what` names the step ("opening the dataset").
 * The wait sleeps between polls instead of spinning a core, since ranks may
 * wait here while another flushes a large file. comm == MPI_COMM_NULL (one
 * process, no MPI) returns mine. DURE_ERR_MPI when MPI itself fails.
 */
dure_status_t dure_agree(MPI_Comm comm, dure_status_t mine, const char *what);

/*
 * Collective over comm: does every rank hold rank 0's bytes? Each rank
 * brings mine[len] (the same len everywhere; unused bytes and padding
 * count, so zero them first); root[len] receives rank 0's, and *first the
 * lowest rank whose bytes differ, or -1 when none does (then every rank
 * resolved a setting from its own environment alike). comm ==
 * MPI_COMM_NULL: root = mine, -1. DURE_ERR_MPI when MPI itself fails.
 */
dure_status_t dure_agree_bytes(MPI_Comm comm, const void *mine, void *root, int len, int *first);

#endif
