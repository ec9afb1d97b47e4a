/*
 * common/topo.h - the job's topology: which host every rank runs on, the
 * nodes in order, ranks per node, local ranks and each node's leader.
 *
 * One table, gathered once, for everything that describes or checks the
 * placement: `dure run`'s topology line and the manifest's "world",
 * `dure bench`'s header, and `dure preflight`'s per-node table.
 *
 * Nodes are numbered in order of their lowest world rank; a node's leader
 * is that lowest rank. A rank's local rank is what its launcher said
 * (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID) when the caller passes it, else
 * its position among the ranks of its host in world-rank order.
 */
#ifndef DURE_COMMON_TOPO_H
#define DURE_COMMON_TOPO_H

#include <mpi.h>
#include <stddef.h>

#include "common/status.h"

#define DURE_TOPO_HOST_MAX 64      /* host names are cut to 63 bytes */

struct dure_topo {
    int size;                      /* ranks in the communicator */
    int nodes;                     /* distinct hosts */
    char (*host)[DURE_TOPO_HOST_MAX]; /* host[nodes]: each node's name */
    int *node_of;                  /* node_of[size]: the node of each rank */
    int *local_rank;               /* local_rank[size] */
    int *count;                    /* count[nodes]: ranks on each node */
    int *leader;                   /* leader[nodes]: lowest rank on each node */
};

/*
 * Gather the topology of `comm` onto every rank (collective). local_rank is
 * this rank's local rank from its launcher, or -1 to number the ranks of
 * each host in world-rank order. Free with dure_topo_free.
 */
dure_status_t dure_topo_gather(MPI_Comm comm, int local_rank, struct dure_topo *t);

/* Free the tables; accepts a zeroed or already-freed struct. */
void dure_topo_free(struct dure_topo *t);

/* Node n's ranks as "0-3" when consecutive, else "0,2,5" (cut with "..."). */
void dure_topo_node_ranks(const struct dure_topo *t, int n, char *buf, size_t cap);

/* Ranks on every node when all nodes hold the same number, else -1. */
int dure_topo_ranks_per_node(const struct dure_topo *t);

/*
 * One line for people: "2 node(s) x 2 rank(s): n1 ranks 0-1 (leader 0),
 * n2 ranks 2-3 (leader 2)" ("2 node(s), 3 rank(s): n1 ranks 0,2 (leader 0),
 * n2 rank 1 (leader 1)" when nodes differ or ranks interleave). Always NUL-terminated; a
 * long list ends in "...".
 */
void dure_topo_format(const struct dure_topo *t, char *buf, size_t cap);

#endif
