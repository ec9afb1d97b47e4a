/* common/topo.c - the job's topology; see topo.h. */
#include "common/topo.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mpi_check.h"

/* What each rank contributes to the gather. */
struct topo_entry {
    char host[DURE_TOPO_HOST_MAX];
    int local_rank;
};

dure_status_t dure_topo_gather(MPI_Comm comm, int local_rank, struct dure_topo *t)
{
    dure_status_t st = DURE_OK;
    struct topo_entry mine, *all = NULL;
    char name[MPI_MAX_PROCESSOR_NAME] = "";
    int len = 0, size = 0;

    memset(t, 0, sizeof *t);
    memset(&mine, 0, sizeof mine);
    DURE_MPI_TRY(MPI_Comm_size(comm, &size));
    DURE_MPI_TRY(MPI_Get_processor_name(name, &len));
    snprintf(mine.host, sizeof mine.host, "%.*s", (int)sizeof mine.host - 1, name);
    mine.local_rank = local_rank;
    all = calloc((size_t)size, sizeof *all);
    DURE_ALLOC_TRY(all, (size_t)size * sizeof *all);
    DURE_MPI_TRY(MPI_Allgather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine,
                               MPI_BYTE, comm));

    t->size = size;
    t->host = calloc((size_t)size, sizeof *t->host);
    t->node_of = calloc((size_t)size, sizeof *t->node_of);
    t->local_rank = calloc((size_t)size, sizeof *t->local_rank);
    t->count = calloc((size_t)size, sizeof *t->count);
    t->leader = calloc((size_t)size, sizeof *t->leader);
    DURE_CHECK(t->host && t->node_of && t->local_rank && t->count && t->leader, DURE_ERR_NOMEM,
               "out of memory for the topology of %d ranks", size);
    for (int r = 0; r < size; r++) {
        int n = 0;
        while (n < t->nodes && strcmp(t->host[n], all[r].host) != 0) {
            n++;
        }
        if (n == t->nodes) {
            memcpy(t->host[n], all[r].host, sizeof t->host[n]);
            t->leader[n] = r;
            t->nodes++;
        }
        t->node_of[r] = n;
        t->local_rank[r] = all[r].local_rank >= 0 ? all[r].local_rank : t->count[n];
        t->count[n]++;
    }
out:
    free(all);
    if (st != DURE_OK) {
        dure_topo_free(t);
    }
    return st;
}

void dure_topo_free(struct dure_topo *t)
{
    if (!t) {
        return;
    }
    free(t->host);
    free(t->node_of);
    free(t->local_rank);
    free(t->count);
    free(t->leader);
    memset(t, 0, sizeof *t);
}

int dure_topo_ranks_per_node(const struct dure_topo *t)
{
    for (int n = 1; n < t->nodes; n++) {
        if (t->count[n] != t->count[0]) {
            return -1;
        }
    }
    return t->nodes > 0 ? t->count[0] : -1;
}

/* Append to buf[cap] at *used; marks a cut with "..." and stops growing. */
static void put(char *buf, size_t cap, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t cap, size_t *used, const char *fmt, ...)
{
    va_list ap;
    if (*used >= cap) {
        return;
    }
    va_start(ap, fmt);
    int w = vsnprintf(buf + *used, cap - *used, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= cap - *used) {
        if (cap >= 4) {
            memcpy(buf + cap - 4, "...", 4);
        }
        *used = cap;
        return;
    }
    *used += (size_t)w;
}

/* The node's ranks as "0-3" when consecutive, else "0,2,5". */
static void put_ranks(const struct dure_topo *t, int n, char *buf, size_t cap, size_t *used)
{
    int first = -1, last = -1, runs = 1;
    for (int r = 0; r < t->size; r++) {
        if (t->node_of[r] != n) {
            continue;
        }
        if (first < 0) {
            first = r;
        } else if (r != last + 1) {
            runs = 0;
        }
        last = r;
    }
    if (runs && first != last) {
        put(buf, cap, used, "%d-%d", first, last);
        return;
    }
    const char *sep = "";
    for (int r = 0; r < t->size; r++) {
        if (t->node_of[r] == n) {
            put(buf, cap, used, "%s%d", sep, r);
            sep = ",";
        }
    }
}

void dure_topo_node_ranks(const struct dure_topo *t, int n, char *buf, size_t cap)
{
    size_t used = 0;
    if (cap == 0) {
        return;
    }
    buf[0] = '\0';
    put_ranks(t, n, buf, cap, &used);
}

void dure_topo_format(const struct dure_topo *t, char *buf, size_t cap)
{
    size_t used = 0;
    int per = dure_topo_ranks_per_node(t);
    if (cap == 0) {
        return;
    }
    buf[0] = '\0';
    if (per > 0) {
        put(buf, cap, &used, "%d node(s) x %d rank(s):", t->nodes, per);
    } else {
        put(buf, cap, &used, "%d node(s), %d rank(s):", t->nodes, t->size);
    }
    for (int n = 0; n < t->nodes; n++) {
        put(buf, cap, &used, "%s %s rank%s ", n ? "," : "", t->host[n], t->count[n] > 1 ? "s" : "");
        put_ranks(t, n, buf, cap, &used);
        put(buf, cap, &used, " (leader %d)", t->leader[n]);
    }
}
