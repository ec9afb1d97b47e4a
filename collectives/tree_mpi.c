/*
 * collectives/tree_mpi.c - the exact reduce-scatter on the mpi backend:
 * point-to-point transport of every rank's frontier rows to the owners of
 * their elements, then the owner's adds in the micro-batch tree
 * (collectives/tree.c). Works within a node and across nodes.
 *
 * Rounds k = 1 .. size-1: send this rank's rows at the piece of rank + k,
 * receive rank - k's rows at this rank's piece (each pair of ranks meets
 * once, and no rank waits on more than one peer at a time). Messages carry
 * at most TREE_MSG_MAX floats (MPI counts are int); longer pieces go in
 * several messages with the same tag, which MPI keeps in order.
 */
#include <stdatomic.h>

#include "collectives/mpi_algos.h"
#include "collectives/tree.h"
#include "common/mpi_check.h"

enum {
    TREE_TAG = 0x7472,           /* + row: the comm's private communicator */
    TREE_MSG_MAX = 1 << 30,
};

dure_status_t comm_tree_mpi_run(MPI_Comm mpi, int rank, int size, long spin_ns,
                                const atomic_int *cancel, const struct comm_op *op)
{
    dure_status_t st = DURE_OK;
    const struct comm_tree *t = op->tree;
    const struct comm_shard mine = comm_op_piece(op, size, rank);
    const struct comm_shard shard = comm_shard_of(op->total, size, rank);
    const size_t chunk = op->total / (size_t)size + (op->total % (size_t)size != 0);
    MPI_Request req[2 * TREE_FRONTIER_MAX];

    for (int k = 1; k < size; k++) {
        const int to = (rank + k) % size, from = (rank - k + size) % size;
        const struct comm_shard theirs = comm_op_piece(op, size, to);
        uint64_t lo, hi;
        tree_rank_range(t->leaves, size, from, &lo, &hi);
        const int rows_from = (int)tree_frontier(t->leaves, lo, hi, -1, NULL, 0);
        const size_t longest = mine.count > theirs.count ? mine.count : theirs.count;
        for (size_t at = 0; at < longest; at += TREE_MSG_MAX) {
            int n = 0;
            if (at < mine.count) {
                int cnt = (int)(mine.count - at < TREE_MSG_MAX ? mine.count - at : TREE_MSG_MAX);
                for (int f = 0; f < rows_from; f++) {
                    float *dst = comm_tree_recv_at(t, rank, from, f, chunk, shard.offset,
                                                   mine.offset + at);
                    DURE_MPI_TRY(MPI_Irecv(dst, cnt, MPI_FLOAT, from, TREE_TAG + f, mpi,
                                           &req[n++]));
                }
            }
            if (at < theirs.count) {
                int cnt = (int)(theirs.count - at < TREE_MSG_MAX ? theirs.count - at
                                                                 : TREE_MSG_MAX);
                for (int f = 0; f < t->rows; f++) {
                    DURE_MPI_TRY(MPI_Isend(t->row[f] + theirs.offset + at, cnt, MPI_FLOAT, to,
                                           TREE_TAG + f, mpi, &req[n++]));
                }
            }
            DURE_TRY(comm_mpi_wait(req, n, spin_ns, cancel, "exact reduce-scatter"));
        }
    }
    DURE_TRY(comm_tree_combine(t, size, rank, op->total, mine.offset, mine.count,
                               comm_tree_add_host, NULL));
out:
    return st;
}
