/* common/malloc_tune.c - see malloc_tune.h. */
#include "common/malloc_tune.h"

#include <limits.h>
#include <malloc.h>

/* The ceiling older glibc puts on M_MMAP_THRESHOLD on 64-bit (HEAP_MAX_SIZE / 2). */
#define MMAP_THRESHOLD_OLD_MAX (32 << 20)

int dure_malloc_reuse_large(size_t keep_bytes)
{
    int keep = keep_bytes > (size_t)INT_MAX ? INT_MAX : (int)keep_bytes;
    int ok = mallopt(M_MMAP_THRESHOLD, keep) ||
             mallopt(M_MMAP_THRESHOLD, keep < MMAP_THRESHOLD_OLD_MAX ? keep
                                                                      : MMAP_THRESHOLD_OLD_MAX);
    ok &= mallopt(M_TRIM_THRESHOLD, keep);
    return ok ? 0 : -1;
}
