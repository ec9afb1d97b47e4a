/* collectives/nccl_nocuda.c - the nccl backend of a build without CUDA. */
#include "collectives/backend.h"

int comm_backend_nccl_usable(void) { return 0; }

dure_status_t comm_backend_nccl_create(const struct comm_backend_args *a,
                                       const struct comm_backend_i **iface, void **ctx)
{
    dure_status_t st = DURE_OK;
    (void)a;
    *iface = NULL;
    *ctx = NULL;
    DURE_FAIL(DURE_ERR_NODEV,
              "backend = nccl: this dure was built without CUDA (USE_CUDA=no): use backend = mpi");
out:
    return st;
}
