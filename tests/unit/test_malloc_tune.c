/* tests/unit/test_malloc_tune.c - large freed buffers stay in the heap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "common/malloc_tune.h"

/* ASan's and TSan's allocators replace glibc's: nothing to observe. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER_MALLOC 1
#else
#define SANITIZER_MALLOC 0
#endif

#define BIG ((size_t)8 << 20)
#define LARGE ((size_t)48 << 20)

/* A buffer of `bytes`, allocated, touched and freed, came from the heap
 * (glibc's mapped blocks, hblkhd, do not count it) and stays there. */
static void heap_and_kept(size_t bytes)
{
    char *p = malloc(bytes);
    assert_non_null(p);
    memset(p, 1, bytes);
    struct mallinfo2 mi = mallinfo2();
    assert_true(mi.hblkhd < bytes);
    free(p);
    mi = mallinfo2();
    assert_true(mi.fordblks >= bytes); /* kept for the next allocation */
}

static void test_big_buffer_is_heap_and_kept(void **state)
{
    (void)state;
    if (SANITIZER_MALLOC) {
        skip();
    }
    assert_int_equal(dure_malloc_reuse_large((size_t)64 << 20), 0);
    heap_and_kept(BIG); /* without the tuning glibc maps 8 MiB afresh */
}

/* Above older glibc's 32 MiB ceiling for the threshold: heap too where
 * glibc accepts a higher one (2.36 does). */
static void test_above_32_mib_is_heap_and_kept(void **state)
{
    (void)state;
    if (SANITIZER_MALLOC) {
        skip();
    }
    if (mallopt(M_MMAP_THRESHOLD, (int)(LARGE + ((size_t)1 << 20))) == 0) {
        skip(); /* this glibc caps the threshold at 32 MiB */
    }
    assert_int_equal(dure_malloc_reuse_large((size_t)128 << 20), 0);
    heap_and_kept(LARGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_big_buffer_is_heap_and_kept),
        cmocka_unit_test(test_above_32_mib_is_heap_and_kept),
    };
    return cmocka_run_group_tests_name("malloc_tune", tests, NULL, NULL);
}
