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

#define BIG ((size_t)8 << 20)

static void test_big_buffer_is_heap_and_kept(void **state)
{
    (void)state;
#ifdef __SANITIZE_ADDRESS__
    skip(); /* ASan's allocator replaces glibc's: nothing to observe */
#endif
    assert_int_equal(dure_malloc_reuse_large((size_t)64 << 20), 0);
    char *p = malloc(BIG);
    assert_non_null(p);
    memset(p, 1, BIG);
    struct mallinfo2 mi = mallinfo2();
    /* Without the tuning glibc maps 8 MiB afresh (hblkhd counts it). */
    assert_true(mi.hblkhd < BIG);
    free(p);
    mi = mallinfo2();
    assert_true(mi.fordblks >= BIG); /* kept for the next allocation */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_big_buffer_is_heap_and_kept),
    };
    return cmocka_run_group_tests_name("malloc_tune", tests, NULL, NULL);
}
