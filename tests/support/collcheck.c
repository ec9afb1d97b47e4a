/* tests/support/collcheck.c - see collcheck.h. */
#include "tests/support/collcheck.h"

float collcheck_pat(int r, size_t i)
{
    return (float)((long)((i * 7 + (size_t)r * 13) % 17) - 8);
}

void collcheck_fill(float *x, size_t n, int r)
{
    for (size_t i = 0; i < n; i++) {
        x[i] = collcheck_pat(r, i);
    }
}

float collcheck_reduced(int size, size_t i, enum comm_redop op)
{
    float s = 0;
    for (int r = 0; r < size; r++) {
        s += collcheck_pat(r, i);
    }
    return op == COMM_AVG ? s / (float)size : s;
}

int collcheck_owner(size_t n, int size, size_t i)
{
    for (int r = 0; r < size; r++) {
        struct comm_shard sh = comm_shard_of(n, size, r);
        if (i >= sh.offset && i < sh.offset + sh.count) {
            return r;
        }
    }
    return -1;
}
