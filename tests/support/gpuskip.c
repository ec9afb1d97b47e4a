/* tests/support/gpuskip.c - see gpuskip.h. */
#include "tests/support/gpuskip.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/gpu.h"

int gpuskip_needed(const char *what)
{
    struct dure_gpu_versions v;
    dure_gpu_versions(&v);
    if (!v.built) {
        print_message("skipped: this dure was built without CUDA (USE_CUDA=no)\n");
        return 1;
    }
    if (!dure_gpu_available()) {
        print_message("skipped: no CUDA device visible (driver %d), %s not checked\n",
                      v.cuda_driver, what);
        return 1;
    }
    return 0;
}
