/* tests/support/testdev.c - see testdev.h. */
#include "tests/support/testdev.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

device_t *testdev_cuda(void)
{
    static device_t *dev;
    static int tried;
    const char *req = getenv("DURE_REQUIRE_GPU");
    if (!tried) {
        int n = 0;
        tried = 1;
        dure_log_set_quiet(1);
        if (device_kind_count("cuda", &n, 0) == DURE_OK) {
            dure_log_set_quiet(0);
            if (device_open("cuda", 0, 1, &dev) != DURE_OK) {
                fail_msg("a CUDA device is visible but cannot be opened: %s",
                         dure_last_error());
            }
        }
        dure_log_set_quiet(0);
    }
    if (!dev) {
        if (req && strcmp(req, "1") == 0) {
            fail_msg("DURE_REQUIRE_GPU=1 but no usable CUDA device: %s", dure_last_error());
        }
        print_message("skipped: %s\n", dure_last_error());
    }
    return dev;
}

device_t *testdev_cpu(void)
{
    static device_t *dev;
    if (!dev && device_open("cpu", 0, 1, &dev) != DURE_OK) {
        fail_msg("cannot open the cpu device: %s", dure_last_error());
    }
    return dev;
}
