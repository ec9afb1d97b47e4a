/*
 * tests/unit/test_cliopt.c - launcher/cliopt: the values each parser takes,
 * the ones it refuses, and that the message names the command, the option,
 * the text and the range.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launcher/cliopt.h"

/* The parsers print to stderr: point it at a memory stream meanwhile. */
static char *msg;
static size_t msg_len;
static FILE *saved_stderr;

static void capture(void)
{
    saved_stderr = stderr;
    stderr = open_memstream(&msg, &msg_len);
    assert_non_null(stderr);
}

static const char *captured(void)
{
    fclose(stderr);
    stderr = saved_stderr;
    return msg;
}

static void release(void)
{
    free(msg);
    msg = NULL;
}

static void test_int_range(void **state)
{
    (void)state;
    int v = -1;
    assert_int_equal(cli_int("bench", "-n", "1000", 1, 1000, &v), 0);
    assert_int_equal(v, 1000);
    assert_int_equal(cli_int("bench", "-n", "-0", 0, 5, &v), 0);
    assert_int_equal(v, 0);

    const char *bad[] = {"1001", "0", "", "12x", "1e3", "3.0", " 5", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        v = 7;
        capture();
        assert_int_equal(cli_int("bench", "-n", bad[i], 1, 1000, &v), -1);
        char want[128];
        snprintf(want, sizeof want, "dure bench: -n '%s' is not an integer in [1, 1000]\n",
                 bad[i]);
        assert_string_equal(captured(), want);
        release();
        assert_int_equal(v, 7);
    }
}

static void test_i64_unbounded(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(cli_i64("data gen", "--seed", "-9223372036854775808", INT64_MIN,
                             INT64_MAX, &v), 0);
    assert_true(v == INT64_MIN);
    capture();
    assert_int_equal(cli_i64("data gen", "--seed", "lots", INT64_MIN, INT64_MAX, &v), -1);
    assert_string_equal(captured(), "dure data gen: --seed 'lots' is not an integer\n");
    release();
}

static void test_f64(void **state)
{
    (void)state;
    double v = 0;
    assert_int_equal(cli_f64("tune", "-f", "1.5e1", 1.01, 1024, &v), 0);
    assert_true(v == 15.0);
    assert_int_equal(cli_f64("preflight", "--budget", "0", 0, INFINITY, &v), 0);
    assert_true(v == 0.0);

    struct { const char *s; double lo, hi; const char *want; } bad[] = {
        {"1", 1.01, 1024, "dure tune: -f '1' is not a number in [1.01, 1024]\n"},
        {"nan", -INFINITY, INFINITY, "dure tune: -f 'nan' is not a number\n"},
        {"inf", 0, INFINITY, "dure tune: -f 'inf' is not a number >= 0\n"},
        {"-1", 0, INFINITY, "dure tune: -f '-1' is not a number >= 0\n"},
        {"soon", 0, INFINITY, "dure tune: -f 'soon' is not a number >= 0\n"},
        {"1e999", -INFINITY, INFINITY, "dure tune: -f '1e999' is not a number\n"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        v = 3;
        capture();
        assert_int_equal(cli_f64("tune", "-f", bad[i].s, bad[i].lo, bad[i].hi, &v), -1);
        assert_string_equal(captured(), bad[i].want);
        release();
        assert_true(v == 3);
    }
}

static void test_size(void **state)
{
    (void)state;
    size_t v = 0;
    assert_int_equal(cli_size("bench", "-b", "4K", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(cli_size("bench", "-b", "3M", &v), 0);
    assert_int_equal(v, 3u << 20);
    const char *bad[] = {"0", "4Q", "", "-4K"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        v = 9;
        capture();
        assert_int_equal(cli_size("bench", "-b", bad[i], &v), -1);
        char want[128];
        snprintf(want, sizeof want,
                 "dure bench: -b '%s' is not a size (bytes, or with K, M, G)\n", bad[i]);
        assert_string_equal(captured(), want);
        release();
        assert_int_equal(v, 9);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int_range),
        cmocka_unit_test(test_i64_unbounded),
        cmocka_unit_test(test_f64),
        cmocka_unit_test(test_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
