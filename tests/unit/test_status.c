/* tests/unit/test_status.c - status names, the error log and check macros. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "launcher/exitcodes.h"

static int cleaned;

static dure_status_t fails_after_alloc(int fail)
{
    dure_status_t st = DURE_OK;
    char *buf = malloc(16);
    DURE_ALLOC_TRY(buf, 16);
    DURE_CHECK(!fail, DURE_ERR_ARG, "value %d for key '%s' is out of range", fail,
               "model.d_model");
out:
    free(buf);
    cleaned++;
    return st;
}

static dure_status_t propagates(int fail)
{
    dure_status_t st = DURE_OK;
    DURE_TRY(fails_after_alloc(fail));
    st = DURE_ERR_INTERNAL; /* reached only on success */
out:
    return st;
}

static void test_check_macros_clean_up_and_report(void **state)
{
    (void)state;
    dure_log_set_quiet(1);
    cleaned = 0;
    assert_int_equal(propagates(7), DURE_ERR_ARG);
    assert_int_equal(cleaned, 1);
    assert_string_equal(dure_last_error(),
                        "value 7 for key 'model.d_model' is out of range");
    assert_int_equal(propagates(0), DURE_ERR_INTERNAL);
    assert_int_equal(cleaned, 2);
    dure_log_set_quiet(0);
}

static dure_status_t sys_fails(void)
{
    dure_status_t st = DURE_OK;
    errno = ENOENT;
    DURE_SYS_TRY(0, "open '%s'", "data/missing.h5");
out:
    return st;
}

static void test_sys_try_appends_strerror(void **state)
{
    (void)state;
    dure_log_set_quiet(1);
    assert_int_equal(sys_fails(), DURE_ERR_IO);
    assert_string_equal(dure_last_error(),
                        "open 'data/missing.h5': No such file or directory");
    dure_log_set_quiet(0);
}

/* A message may wrap the one before it, passing dure_last_error() as an
 * argument: formatted into the same buffer it overwrote itself ("in X: in
 * X: ot a size"). */
static void test_error_wraps_the_last_one(void **state)
{
    (void)state;
    dure_log_set_quiet(1);
    assert_int_equal(sys_fails(), DURE_ERR_IO);
    dure_log_error(__FILE__, __LINE__, "in DURE_ALGO_TABLE='%s': %s", "0:x",
                   dure_last_error());
    dure_log_set_quiet(0);
    assert_string_equal(dure_last_error(), "in DURE_ALGO_TABLE='0:x': open "
                                           "'data/missing.h5': No such file or directory");
}

static void test_status_names_are_complete(void **state)
{
    (void)state;
    for (int s = 0; s < DURE_STATUS_COUNT; s++) {
        const char *n = dure_status_name((dure_status_t)s);
        assert_non_null(n);
        assert_int_equal(strncmp(n, "DURE_", 5), 0);
    }
    assert_string_equal(dure_status_name(DURE_ERR_HDF5), "DURE_ERR_HDF5");
    assert_string_equal(dure_status_name((dure_status_t)999), "DURE_ERR_UNKNOWN");
}

static void test_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(dure_exit_code(DURE_OK), 0);
    assert_int_equal(dure_exit_code(DURE_ERR_ARG), DURE_EXIT_CONFIG);
    assert_int_equal(dure_exit_code(DURE_ERR_TIMEOUT), DURE_EXIT_WATCHDOG);
    assert_int_equal(dure_exit_code(DURE_ERR_INTERRUPTED), DURE_EXIT_PREEMPTED);
    assert_int_equal(dure_exit_code(DURE_ERR_HDF5), DURE_EXIT_FAILURE);
    /* Every defined code has its own meaning; an undefined one is a failure. */
    assert_string_equal(dure_exit_meaning(DURE_EXIT_DATA), "dataset missing or invalid");
    assert_string_equal(dure_exit_meaning(DURE_EXIT_PREEMPTED),
                        "stopped by a signal, checkpoint saved");
    assert_string_equal(dure_exit_meaning(42), "failure");
    assert_int_equal(DURE_EXIT_PREEMPTED, 75);
    assert_int_equal(DURE_EXIT_WATCHDOG, 124);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_macros_clean_up_and_report),
        cmocka_unit_test(test_sys_try_appends_strerror),
        cmocka_unit_test(test_error_wraps_the_last_one),
        cmocka_unit_test(test_status_names_are_complete),
        cmocka_unit_test(test_exit_codes),
    };
    return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
