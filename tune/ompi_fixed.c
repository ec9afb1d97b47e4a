/* tune/ompi_fixed.c - see ompi_fixed.h. */
#include "tune/ompi_fixed.h"

#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <string.h>

/* Below `below` bytes, algorithm `alg`; a band's last step has SIZE_MAX. */
struct step {
    size_t below;
    int alg;
};

/* Communicators of fewer than `ranks_below` ranks (and more than the
 * previous band's) decide by `steps`; the last band has INT_MAX. */
struct band {
    int ranks_below;
    const struct step *steps;
};

#define END SIZE_MAX
#define BAND(r, ...) {r, (const struct step[]){__VA_ARGS__}}

/* allreduce, commutative: total bytes */
static const struct band allreduce[] = {
    BAND(4, {8, 4}, {4096, 3}, {8192, 4}, {16384, 3}, {65536, 4}, {262144, 5}, {END, 6}),
    BAND(8, {16, 4}, {8192, 3}, {END, 6}),
    BAND(16, {8192, 3}, {END, 6}),
    BAND(32, {64, 5}, {4096, 3}, {END, 6}),
    BAND(64, {128, 5}, {END, 6}),
    BAND(128, {262144, 3}, {END, 6}),
    BAND(256, {131072, 2}, {262144, 3}, {END, 6}),
    BAND(512, {4096, 2}, {END, 6}),
    BAND(2048, {2048, 2}, {16384, 3}, {END, 6}),
    BAND(4096, {2048, 2}, {4096, 5}, {16384, 3}, {END, 6}),
    BAND(INT_MAX, {2048, 2}, {16384, 5}, {32768, 3}, {END, 6}),
};

/* reduce_scatter, commutative: total bytes (the sum of the counts) */
static const struct band reduce_scatter[] = {
    BAND(4, {65536, 3}, {131072, 4}, {END, 3}),
    BAND(8, {8, 1}, {262144, 2}, {END, 3}),
    BAND(32, {262144, 2}, {END, 3}),
    BAND(64, {64, 1}, {2048, 2}, {524288, 4}, {END, 3}),
    BAND(128, {256, 1}, {512, 2}, {2048, 4}, {4096, 2}, {END, 4}),
    BAND(256, {256, 1}, {512, 2}, {END, 4}),
    BAND(512, {256, 1}, {1024, 2}, {END, 4}),
    BAND(1024, {512, 1}, {2048, 2}, {8192, 4}, {16384, 2}, {END, 4}),
    BAND(2048, {512, 1}, {4096, 2}, {16384, 4}, {32768, 2}, {END, 4}),
    BAND(4096, {512, 1}, {4096, 2}, {END, 4}),
    BAND(INT_MAX, {1024, 1}, {8192, 2}, {END, 4}),
};

/* allgather: the send count's bytes (one rank's piece) */
static const struct band allgather[] = {
    BAND(3, {END, 6}),
    BAND(32, {END, 3}),
    BAND(64, {1024, 3}, {65536, 5}, {END, 4}),
    BAND(128, {512, 3}, {65536, 5}, {END, 4}),
    BAND(256, {512, 3}, {131072, 5}, {524288, 4}, {1048576, 5}, {END, 4}),
    BAND(512, {32, 3}, {128, 2}, {1024, 3}, {131072, 5}, {524288, 4}, {1048576, 5}, {END, 4}),
    BAND(1024, {64, 3}, {256, 2}, {2048, 3}, {END, 5}),
    BAND(2048, {4, 3}, {8, 2}, {16, 3}, {32, 2}, {256, 3}, {512, 2}, {4096, 3}, {END, 5}),
    BAND(4096, {32, 2}, {128, 3}, {512, 2}, {4096, 3}, {END, 5}),
    BAND(INT_MAX, {2, 3}, {8, 2}, {16, 3}, {512, 2}, {4096, 3}, {END, 5}),
};

/* bcast: total bytes */
static const struct band bcast[] = {
    BAND(4, {32, 3}, {256, 5}, {512, 3}, {1024, 7}, {32768, 1}, {131072, 5}, {262144, 2},
         {524288, 1}, {1048576, 6}, {END, 5}),
    BAND(8, {64, 5}, {128, 6}, {2048, 5}, {8192, 6}, {1048576, 1}, {END, 2}),
    BAND(16, {8, 7}, {64, 5}, {4096, 7}, {16384, 5}, {32768, 6}, {END, 1}),
    BAND(32, {4096, 7}, {1048576, 6}, {END, 8}),
    BAND(64, {2048, 6}, {END, 7}),
    BAND(128, {END, 7}),
    BAND(256, {2, 6}, {16384, 5}, {32768, 1}, {65536, 5}, {END, 7}),
    BAND(1024, {16384, 7}, {32768, 4}, {END, 7}),
    BAND(2048, {524288, 7}, {END, 8}),
    BAND(4096, {262144, 7}, {END, 8}),
    BAND(INT_MAX, {8192, 7}, {16384, 5}, {262144, 7}, {END, 8}),
};

static int pick(const struct band *b, int ranks, size_t bytes)
{
    while (b->ranks_below != INT_MAX && ranks >= b->ranks_below) {
        b++;
    }
    const struct step *s = b->steps;
    while (s->below != END && bytes >= s->below) {
        s++;
    }
    return s->alg;
}

/* 1 when this process runs an Open MPI of the 4.1 series: the tables above
 * are that series' (4.0 and 5.0 decide otherwise). */
static int series_4_1(void)
{
    static int known = -1;
    if (known < 0) {
        char v[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        known = MPI_Get_library_version(v, &len) == MPI_SUCCESS &&
                strstr(v, "Open MPI v4.1.") != NULL;
    }
    return known;
}

int tune_ompi_fixed_pick(int coll_id, int comm_size, size_t msg_bytes)
{
    if (!series_4_1()) {
        return 0;
    }
    switch (coll_id) {
    case 2:
        return pick(allreduce, comm_size, msg_bytes);
    case 12:
        return pick(reduce_scatter, comm_size, msg_bytes);
    case 0:
        return pick(allgather, comm_size,
                    comm_size < 1 ? 0 : msg_bytes / (size_t)comm_size);
    case 7:
        return pick(bcast, comm_size, msg_bytes);
    default:
        return 0;
    }
}

int tune_ompi_is_default(int coll_id, int comm_size, size_t msg_bytes, int alg)
{
    return alg == 0 || alg == tune_ompi_fixed_pick(coll_id, comm_size, msg_bytes);
}
