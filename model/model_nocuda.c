/* model/model_nocuda.c - the cuda backend of a build without CUDA. */
#include "model/backend.h"

dure_status_t model_cuda_backend(const struct model_backend_i **out)
{
    dure_status_t st = DURE_OK;
    *out = NULL;
    DURE_FAIL(DURE_ERR_UNSUPPORTED,
              "run.device = cuda, but this dure was built without CUDA "
              "(USE_CUDA=no): use run.device = cpu or rebuild with CUDA");
out:
    return st;
}
