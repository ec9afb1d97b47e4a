/* model/optim_nocuda.c - the device half of the optimizer in a build
 * without CUDA: every call reports that CUDA is not built in. */
#include "model/optim_dev.h"

static dure_status_t no_cuda(void)
{
    dure_status_t st = DURE_OK;
    DURE_FAIL(DURE_ERR_UNSUPPORTED,
              "optimizer state on cuda, but this dure was built without CUDA "
              "(USE_CUDA=no)");
out:
    return st;
}

dure_status_t optim_dev_alloc(void **ptr, size_t bytes)
{
    (void)bytes;
    *ptr = NULL;
    return no_cuda();
}

void optim_dev_free(void *ptr) { (void)ptr; }

dure_status_t optim_dev_copy(void *dst, const void *src, size_t bytes, int to_host)
{
    (void)dst, (void)src, (void)bytes, (void)to_host;
    return no_cuda();
}

dure_status_t optim_dev_adamw(const struct optim_dev_step *s, float weight_decay,
                              float *params, const float *grads, float *m, float *v,
                              size_t n)
{
    (void)s, (void)weight_decay, (void)params, (void)grads, (void)m, (void)v, (void)n;
    return no_cuda();
}

dure_status_t optim_dev_sq_norm(const float *g, size_t n, size_t chunk,
                                double *partials, double *host_partials,
                                double *out)
{
    (void)g, (void)n, (void)chunk, (void)partials, (void)host_partials;
    *out = 0.0;
    return no_cuda();
}

dure_status_t optim_dev_tree_tiles(const float *g, uint64_t base, const uint64_t *first,
                                   const uint32_t *len, size_t ntiles, double *val,
                                   double *host_val)
{
    (void)g, (void)base, (void)first, (void)len, (void)ntiles, (void)val, (void)host_val;
    return no_cuda();
}
