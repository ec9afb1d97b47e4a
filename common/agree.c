/* common/agree.c - see agree.h. */
#include "common/agree.h"

#include <limits.h>
#include <string.h>
#include <time.h>

#include "common/mpi_check.h"

/* MPI_Test calls before the wait starts sleeping, and the nap between them:
 * the first polls keep quick agreements quick. */
#define AGREE_SPIN_POLLS 1000
#define AGREE_NAP_NS 200000

dure_status_t dure_agree(MPI_Comm comm, dure_status_t mine, const char *what)
{
    dure_status_t st = DURE_OK;
    MPI_Request req = MPI_REQUEST_NULL;
    struct {
        int st;
        int rank;
    } in = {(int)mine, 0}, worst = {0, 0};

    if (comm == MPI_COMM_NULL) {
        return mine;
    }
    DURE_MPI_TRY(MPI_Comm_rank(comm, &in.rank));
    DURE_MPI_TRY(MPI_Iallreduce(&in, &worst, 1, MPI_2INT, MPI_MAXLOC, comm, &req));
    for (int polls = 0, done = 0;; polls++) {
        DURE_MPI_TRY(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
        if (done) {
            break;
        }
        if (polls >= AGREE_SPIN_POLLS) {
            const struct timespec nap = {0, AGREE_NAP_NS};
            nanosleep(&nap, NULL);
        }
    }
    st = (dure_status_t)worst.st;
    if (st != DURE_OK && mine == DURE_OK) {
        dure_log_error(__FILE__, __LINE__, "%s failed on rank %d (%s); see that rank's error",
                       what, worst.rank, dure_status_name(st));
    }
out:
    return st;
}

dure_status_t dure_agree_bytes(MPI_Comm comm, const void *mine, void *root, int len, int *first)
{
    dure_status_t st = DURE_OK;
    int rank = 0, differs = INT_MAX, lowest = INT_MAX;

    memcpy(root, mine, (size_t)len);
    *first = -1;
    if (comm == MPI_COMM_NULL) {
        goto out;
    }
    DURE_MPI_TRY(MPI_Comm_rank(comm, &rank));
    DURE_MPI_TRY(MPI_Bcast(root, len, MPI_BYTE, 0, comm));
    if (memcmp(root, mine, (size_t)len) != 0) {
        differs = rank;
    }
    DURE_MPI_TRY(MPI_Allreduce(&differs, &lowest, 1, MPI_INT, MPI_MIN, comm));
    *first = lowest == INT_MAX ? -1 : lowest;
out:
    return st;
}
