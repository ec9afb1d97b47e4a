/*
 * collectives/tree.h - the exact reduce-scatter of exact mode (run.exact):
 * the micro-batch tree of common/sumtree.h across ranks.
 *
 * Rank r of R holds micro-batches [r M / R, (r + 1) M / R) of the M per
 * step and has reduced them to its frontier rows (struct tree_plan). The
 * owner of each element (comm_shard_of) receives every rank's rows at its
 * shard, pushes them through a tree_stack in rank order and keeps the
 * root: the grouping is the tree's, never the ranks'.
 */
#ifndef DURE_COLLECTIVES_TREE_H
#define DURE_COLLECTIVES_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "common/sumtree.h"

/*
 * One rank's part of an exact reduce-scatter (comm_tree_reduce_scatter*):
 * its frontier rows, full vectors of the op's `total` elements in the
 * comm's memory, and a receive area. After the op, for the elements of the
 * range this rank owns (comm_shard_of), row[rows - 1] holds the root over
 * every rank's rows; the rows' other elements of the range are scratch.
 */
struct comm_tree {
    uint64_t leaves;          /* M, spread over the ranks as tree_rank_range */
    int rows;
    float *row[TREE_FRONTIER_MAX];
    int rows_max;             /* the most rows of any rank */
    float *recv;              /* (size - 1) * rows_max * ceil(total / size) floats */
};

/* Floats of comm_tree.recv for `total` elements over `size` ranks. */
size_t comm_tree_recv_count(size_t total, int size, int rows_max);

/* Where rank s's row f arrives in recv: this rank's piece starting at global
 * element piece_off of its shard (shard_off, chunk = ceil(total / size)). */
float *comm_tree_recv_at(const struct comm_tree *t, int rank, int s, int f, size_t chunk,
                         size_t shard_off, size_t piece_off);

/*
 * The owner's step: push every rank's rows (this rank's own, the others' in
 * recv) at this rank's piece [off, off + count) and leave the root in
 * row[rows - 1]. add(ctx, dst, src) adds `count` floats at the two
 * addresses handed to it through comm_tree_combine's handle table.
 */
typedef dure_status_t (*comm_tree_add_fn)(void *ctx, float *dst, const float *src,
                                          size_t count);
dure_status_t comm_tree_combine(const struct comm_tree *t, int size, int rank, size_t total,
                                size_t off, size_t count, comm_tree_add_fn add, void *ctx);

/* The host add: dst[i] += src[i], i < count (ctx unused). */
dure_status_t comm_tree_add_host(void *ctx, float *dst, const float *src, size_t count);

/* The same on a CUDA stream (a cudaStream_t), queued, not waited for: the
 * nccl backend's add (collectives/tree_cuda.cu; CUDA builds only). */
dure_status_t comm_tree_add_cuda(float *dst, const float *src, size_t count, void *stream);

#endif
