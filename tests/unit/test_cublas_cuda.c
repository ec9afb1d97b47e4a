/*
 * tests/unit/test_cublas_cuda.c - cuBLAS loaded on first use
 * (model/cublas_cuda.h): a missing library and a library without cuBLAS's
 * functions are refused by name; the real one resolves every function,
 * once, and answers a call. No GPU is needed: loading the library and
 * asking it for a status string touch no device. The CPU-only build has
 * no cuBLAS: there the tests skip, saying so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if DURE_HAVE_CUDA
#include "model/cublas_cuda.h"

/* Run load(soname) with stderr into buf; its status. */
static dure_status_t load_logged(const char *soname, const struct dure_cublas **t, char *buf,
                                 size_t size)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
    dure_status_t st = dure_cublas_load(soname, t);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    rewind(f);
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
    return st;
}

/* Before any load succeeds (cmocka runs the tests in order): failures
 * leave nothing loaded. */
static void test_refusals(void **state)
{
    (void)state;
    const struct dure_cublas *t = (const void *)1;
    char log[1024];
    assert_int_equal(load_logged("libdure-no-such-cublas.so.99", &t, log, sizeof log),
                     DURE_ERR_CUDA);
    assert_null(t);
    assert_non_null(strstr(log, "cannot load cuBLAS (libdure-no-such-cublas.so.99)"));
    /* a real library, but not cuBLAS: the first function it lacks */
    assert_int_equal(load_logged("libm.so.6", &t, log, sizeof log), DURE_ERR_CUDA);
    assert_null(t);
    assert_non_null(strstr(log, "libm.so.6 has no cublasCreate_v2"));
}

static void test_load(void **state)
{
    (void)state;
    const struct dure_cublas *t = NULL, *again = NULL;
    assert_int_equal(dure_cublas_load(NULL, &t), DURE_OK);
    assert_non_null(t);
    assert_true(t->create && t->destroy && t->set_stream && t->set_atomics_mode &&
                t->gemm_ex && t->gemm_strided_batched_ex && t->status_string);
    /* once per process: the same table, whatever the later name */
    assert_int_equal(dure_cublas_load("libdure-no-such-cublas.so.99", &again), DURE_OK);
    assert_ptr_equal(again, t);
    /* a real call into the library */
    const char *s = t->status_string(CUBLAS_STATUS_NOT_INITIALIZED);
    assert_non_null(s);
    assert_string_equal(s, "the library was not initialized");
}

#else
static void test_refusals(void **state)
{
    (void)state;
    printf("skip: the CPU-only build does not load cuBLAS\n");
    skip();
}

static void test_load(void **state)
{
    test_refusals(state);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
