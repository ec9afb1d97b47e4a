/* tune/links.c - see links.h. */
#include "tune/links.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mpi_check.h"
#include "common/timing.h"

#define NAME_LEN TUNE_NAME_MAX

/* Partner of `me` in round `round` of a round-robin over n (even) players
 * (the circle method: player n-1 stays, the others rotate). */
static int partner(int me, int round, int n)
{
    if (me == n - 1) {
        return round;
    }
    if (me == round) {
        return n - 1;
    }
    return (2 * round - me + (n - 1)) % (n - 1);
}

/* Rank a waits 20 ms before each exchange with rank b (DURE_TUNE_SLOW_LINK=a:b):
 * far beyond what scheduling noise does to an exchange of a few ranks on a
 * loaded machine, so that a test finds that link and only that one. */
static int slow_with(int me, int other)
{
    const char *s = getenv("DURE_TUNE_SLOW_LINK");
    int a = -1, b = -1;
    return s && sscanf(s, "%d:%d", &a, &b) == 2 &&
           ((me == a && other == b) || (me == b && other == a));
}

dure_status_t tune_links_measure(MPI_Comm world, size_t bytes, int reps, struct tune_result *r)
{
    dure_status_t st = DURE_OK;
    MPI_Comm node = MPI_COMM_NULL, leaders = MPI_COMM_NULL;
    char *buf = NULL, *names = NULL;
    double *gbs = NULL, *all = NULL, *t = NULL;
    int *wranks = NULL;             /* [n]: world rank of each leader */
    int wrank = 0, lrank = 0, n = 0, me = 0;
    char host[MPI_MAX_PROCESSOR_NAME] = "", name[NAME_LEN];
    int hlen = 0;

    DURE_MPI_TRY(MPI_Comm_rank(world, &wrank));
    const char *as_node = getenv("DURE_TUNE_RANK_AS_NODE");
    if (as_node && atoi(as_node) == 1) {
        DURE_MPI_TRY(MPI_Comm_split(world, wrank, 0, &node));
    } else {
        DURE_MPI_TRY(MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, wrank, MPI_INFO_NULL,
                                         &node));
    }
    DURE_MPI_TRY(MPI_Comm_rank(node, &lrank));
    DURE_MPI_TRY(MPI_Comm_split(world, lrank == 0 ? 0 : MPI_UNDEFINED, wrank, &leaders));
    DURE_MPI_TRY(MPI_Get_processor_name(host, &hlen));
    if (as_node && atoi(as_node) == 1) {
        snprintf(name, sizeof name, "%.40s:%d", host, wrank);
    } else {
        snprintf(name, sizeof name, "%.47s", host);
    }
    if (leaders != MPI_COMM_NULL) {
        DURE_MPI_TRY(MPI_Comm_size(leaders, &n));
        DURE_MPI_TRY(MPI_Comm_rank(leaders, &me));
    }
    /* every rank learns n from rank 0 (a leader) to agree on doing nothing */
    DURE_MPI_TRY(MPI_Bcast(&n, 1, MPI_INT, 0, world));
    if (n < 2) {
        goto out;
    }
    if (leaders != MPI_COMM_NULL) {
        int players = n + n % 2;   /* an odd count gets a bye each round */
        wranks = malloc((size_t)n * sizeof *wranks);
        DURE_ALLOC_TRY(wranks, (size_t)n * sizeof *wranks);
        DURE_MPI_TRY(MPI_Allgather(&wrank, 1, MPI_INT, wranks, 1, MPI_INT, leaders));
        buf = malloc(bytes);
        DURE_ALLOC_TRY(buf, bytes);
        gbs = calloc((size_t)n * (size_t)n, sizeof *gbs);
        DURE_ALLOC_TRY(gbs, (size_t)n * (size_t)n * sizeof *gbs);
        all = calloc((size_t)n * (size_t)n, sizeof *all);
        DURE_ALLOC_TRY(all, (size_t)n * (size_t)n * sizeof *all);
        t = calloc((size_t)reps, sizeof *t);
        DURE_ALLOC_TRY(t, (size_t)reps * sizeof *t);
        names = calloc((size_t)n, NAME_LEN);
        DURE_ALLOC_TRY(names, (size_t)n * NAME_LEN);
        memset(buf, 1, bytes);
        for (int round = 0; round < players - 1; round++) {
            int p = partner(me, round, players);
            if (p >= n) {
                continue;   /* the bye */
            }
            int slow = slow_with(wrank, wranks[p]);
            for (int k = 0; k <= reps; k++) {
                double t0 = MPI_Wtime();
                if (slow) {
                    usleep(20000);
                }
                if (me < p) {
                    DURE_MPI_TRY(MPI_Send(buf, (int)bytes, MPI_BYTE, p, 0, leaders));
                    DURE_MPI_TRY(MPI_Recv(buf, (int)bytes, MPI_BYTE, p, 0, leaders,
                                          MPI_STATUS_IGNORE));
                } else {
                    DURE_MPI_TRY(MPI_Recv(buf, (int)bytes, MPI_BYTE, p, 0, leaders,
                                          MPI_STATUS_IGNORE));
                    DURE_MPI_TRY(MPI_Send(buf, (int)bytes, MPI_BYTE, p, 0, leaders));
                }
                if (k > 0) {   /* the first exchange warms the path up */
                    t[k - 1] = MPI_Wtime() - t0;
                }
            }
            if (me < p) {
                gbs[me * n + p] = 2.0 * (double)bytes / dure_median(t, reps) / 1e9;
            }
        }
        DURE_MPI_TRY(MPI_Reduce(gbs, all, n * n, MPI_DOUBLE, MPI_MAX, 0, leaders));
        DURE_MPI_TRY(MPI_Gather(name, NAME_LEN, MPI_CHAR, names, NAME_LEN, MPI_CHAR, 0, leaders));
        if (me == 0) {
            for (int a = 0; a < n; a++) {
                for (int b = a + 1; b < n; b++) {
                    DURE_TRY(tune_result_add_link(r, names + (size_t)a * NAME_LEN,
                                                  names + (size_t)b * NAME_LEN, all[a * n + b]));
                }
            }
        }
    }
    DURE_MPI_TRY(MPI_Barrier(world));
out:
    if (leaders != MPI_COMM_NULL) {
        MPI_Comm_free(&leaders);
    }
    if (node != MPI_COMM_NULL) {
        MPI_Comm_free(&node);
    }
    free(wranks);
    free(buf);
    free(names);
    free(gbs);
    free(all);
    free(t);
    return st;
}
