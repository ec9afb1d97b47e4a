/* collectives/backoff.c - waiting without a busy core; see backend.h. */
#include "collectives/backend.h"

void comm_backoff_init(struct comm_backoff *b, long spin_ns, long max_ns)
{
    *b = (struct comm_backoff){.spin_ns = spin_ns, .max_ns = max_ns};
    clock_gettime(CLOCK_MONOTONIC, &b->t0);
}

int comm_backoff_nap(struct comm_backoff *b)
{
    if (b->nap_ns == 0) {
        /* The clock is read every 64 polls only: polls are cheap. */
        if (++b->polls % 64 != 0) {
            return 0;
        }
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - b->t0.tv_sec) * 1000000000L + (t.tv_nsec - b->t0.tv_nsec) < b->spin_ns) {
            return 0;
        }
        b->nap_ns = 1000;
    }
    const struct timespec d = {0, b->nap_ns};
    nanosleep(&d, NULL);
    b->nap_ns = b->nap_ns * 2 > b->max_ns ? b->max_ns : b->nap_ns * 2;
    return 1;
}
