/*
 * common/mpi_check.h - check macro for MPI calls.
 *
 * Communicators that dure creates use MPI_ERRORS_RETURN so that a failing
 * call comes back here as a status instead of aborting inside the library.
 */
#ifndef DURE_COMMON_MPI_CHECK_H
#define DURE_COMMON_MPI_CHECK_H

#include <mpi.h>

#include "common/status.h"

/* Log the MPI error string of `rc` for `what`. */
void dure_log_mpi_error(const char *file, int line, const char *what, int rc);

#define DURE_MPI_TRY(call)                                                    \
    do {                                                                      \
        int mpi_rc_ = (call);                                                 \
        if (mpi_rc_ != MPI_SUCCESS) {                                         \
            dure_log_mpi_error(__FILE__, __LINE__, #call, mpi_rc_);           \
            st = DURE_ERR_MPI;                                                \
            goto out;                                                         \
        }                                                                     \
    } while (0)

#endif
