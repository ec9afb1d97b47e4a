/*
 * collectives/hier.c - hierarchical collectives for communicators that span
 * nodes: shared memory within a node, a rail between nodes.
 *
 * The ranks form n nodes of L ranks each, placed in blocks (world rank
 * g = b * L + l for node b and local rank l: srun's and mpirun's default).
 * Local rank l of every node forms rail l, a communicator of n ranks that
 * talks only to the same local rank on the other nodes (rail-aligned, as
 * NCCL's PXN does), so the L rails share the inter-node links evenly.
 *
 * All-reduce of a range (c elements):
 *   1. node reduce-scatter (shm): local rank l gets the node's sum of
 *      piece l = comm_shard_of(c, L, l);
 *   2. rail all-reduce of piece l across the n nodes, by its size: a
 *      direct exchange (every rank sends its whole piece to every other,
 *      one latency for any n), recursive doubling (log2 n exchanges of the
 *      whole piece, n a power of 2), or the pipelined ring (bandwidth-bound
 *      sizes);
 *   3. node all-gather (shm) of the pieces.
 * Each rank sends (n-1)/n * c/L over the link and back, against (N-1)/N * c
 * for a flat ring of N = nL ranks: a third less over the link at 2 x 2.
 *
 * Reduce-scatter of a range (in place; the global shard layout
 * S_g = comm_shard_of(total, N, g) is kept):
 *   1. for each node block b, a node reduce-scatter whose pieces are the
 *      shards of node b's ranks: local rank l then holds the node sums of
 *      S_{b*L+l} for every b;
 *   2. rail reduce-scatter (ring) with piece b = S_{b*L+l}: rank g ends with
 *      its own shard summed over all nodes.
 * All-gather is the reverse: rail all-gather, then the node all-gathers.
 * Out of place, reduce-scatter and all-gather run as the flat ring (the
 * intermediate node sums need the whole range as scratch; training's
 * ZeRO calls are in place). Broadcast and barrier run as the flat ring.
 *
 * Order: every element is summed in a fixed order (shm: local rank 0 + 1 +
 * ...; then the rail's ring, pairwise doubling or rail-rank order), so
 * results repeat bitwise run to run on the same placement: deterministic.
 * Buffers: the shm and ring algorithms' own, and one receive segment for
 * the direct exchange and recursive doubling, all allocated at creation.
 */
#include <stdlib.h>
#include <string.h>

#include "collectives/mpi_algos.h"
#include "collectives/reduce.h"
#include "common/mpi_check.h"

enum {
    HIER_RD_BYTES = 64 << 10,     /* recursive doubling up to this piece size; the
                                   * direct exchange up to this times (n - 1) pieces */
    HIER_RD_TAG = 0x6864,
};

struct comm_hier {
    int rank, size;
    int nodes, local_size;        /* n, L */
    int node, local_rank;         /* b, l */
    MPI_Comm node_mpi, rail_mpi;  /* owned */
    struct comm_shm *shm;         /* over node_mpi; NULL when L == 1 */
    struct comm_ring *rail;       /* over rail_mpi; NULL when n == 1 */
    long spin_ns;                /* comm_config.spin_ns: the point-to-point waits */
    const atomic_int *cancel;
    struct comm_shard *node_piece;/* node_piece[L] of the current sub-operation */
    struct comm_shard *rail_piece;/* rail_piece[n] */
    float *rd;                    /* rd[HIER_RD_BYTES / 4]: receive segment of the direct
                                   * exchange and of recursive doubling */
    MPI_Request *rq;              /* rq[2 * (n - 1)]: the direct exchange's requests */
    const float **src;            /* src[n]: its summands in rail order */
};

/* ---------------------------------------------------------------- placement */

dure_status_t comm_hier_placement(MPI_Comm mpi, int rank, int local_rank, int local_size,
                                  int *uniform)
{
    dure_status_t st = DURE_OK;
    int mine[2], all[2];
    /* Blocks: node b holds ranks b*L .. b*L+L-1 in local-rank order. Any
     * other placement makes every rank's min differ from its max below. */
    const int block = rank % local_size == local_rank;
    mine[0] = block ? local_size : -1;
    mine[1] = block ? -local_size : -1;
    DURE_MPI_TRY(MPI_Allreduce(mine, all, 2, MPI_INT, MPI_MIN, mpi));
    *uniform = all[0] > 0 && all[0] == -all[1];
out:
    return st;
}

/* ---------------------------------------------------------------- rail all-reduce */

/*
 * Recursive doubling over the rail, in place on recv's [offset, offset +
 * count) (count * 4 <= HIER_RD_BYTES, rail size a power of 2): at step d
 * each rank swaps its partial sums with rail rank (b XOR d) and adds them,
 * the lower rank's first (IEEE addition commutes, so both partners hold the
 * same bits).
 */
static dure_status_t rail_rd(struct comm_hier *h, const struct comm_op *op, size_t offset,
                             size_t count)
{
    dure_status_t st = DURE_OK;
    float *x = comm_op_recv_at(op, offset);
    const float *in = comm_op_send_at(op, offset);
    if (in != x && count) {
        memcpy(x, in, count * sizeof *x);
    }
    for (int d = 1; d < h->nodes && count; d <<= 1) {
        const int peer = h->node ^ d;
        MPI_Request rq[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
        DURE_MPI_TRY(MPI_Irecv(h->rd, (int)count, MPI_FLOAT, peer, HIER_RD_TAG, h->rail_mpi,
                               &rq[0]));
        DURE_MPI_TRY(MPI_Isend(x, (int)count, MPI_FLOAT, peer, HIER_RD_TAG, h->rail_mpi, &rq[1]));
        DURE_TRY(comm_mpi_wait(rq, 2, h->spin_ns, h->cancel, "hier"));
        if (h->node < peer) {
            comm_reduce2_f32(x, x, h->rd, count, 1);
        } else {
            comm_reduce2_f32(x, h->rd, x, count, 1);
        }
    }
out:
    return st;
}

/*
 * Direct exchange over the rail, in place on recv's [offset, offset +
 * count) ((n - 1) * count * 4 <= HIER_RD_BYTES): every rank sends its piece
 * to every other and receives theirs into rd, then adds the n pieces in
 * rail order (node 0's + node 1's + ...), so every rank holds the same
 * bits. One exchange whatever n: the latency-bound sizes, where the ring
 * pays 2 (n - 1) dependent steps and recursive doubling log2 n.
 */
static dure_status_t rail_direct(struct comm_hier *h, const struct comm_op *op, size_t offset,
                                 size_t count)
{
    dure_status_t st = DURE_OK;
    const int n = h->nodes, me = h->node;
    float *x = comm_op_recv_at(op, offset);
    const float *in = comm_op_send_at(op, offset);
    int k = 0;
    if (count == 0) {
        goto out;
    }
    for (int p = 0; p < n; p++) {
        /* Peer p's piece lands in slot p (p < me) or p - 1 of rd. */
        float *slot = h->rd + (size_t)(p - (p > me)) * count;
        h->src[p] = p == me ? in : slot;
        if (p != me) {
            DURE_MPI_TRY(MPI_Irecv(slot, (int)count, MPI_FLOAT, p, HIER_RD_TAG, h->rail_mpi,
                                   &h->rq[k++]));
        }
    }
    for (int p = 0; p < n; p++) {
        if (p != me) {
            DURE_MPI_TRY(MPI_Isend(in, (int)count, MPI_FLOAT, p, HIER_RD_TAG, h->rail_mpi,
                                   &h->rq[k++]));
        }
    }
    DURE_TRY(comm_mpi_wait(h->rq, k, h->spin_ns, h->cancel, "hier"));
    comm_reduce_f32(x, NULL, h->src, n, count, 1);
out:
    return st;
}

/* op narrowed to a sub-operation: coll (summing) over [offset, offset +
 * count), reading `send` (whose first element is global index send_first),
 * with the given piece table (NULL: the standard layout). */
static struct comm_op sub_op(const struct comm_op *op, enum comm_coll coll, const void *send,
                             size_t send_first, size_t offset, size_t count,
                             const struct comm_shard *pieces)
{
    struct comm_op s = *op;
    s.coll = coll;
    s.redop = COMM_SUM;
    s.send = send;
    s.send_first = send_first;
    s.offset = offset;
    s.count = count;
    s.pieces = pieces;
    return s;
}

/* All-reduce (sum) of [offset, offset + count) across the rail, from op's
 * input into op's output. */
static dure_status_t rail_allreduce(struct comm_hier *h, const struct comm_op *op, size_t offset,
                                    size_t count)
{
    const int pow2 = (h->nodes & (h->nodes - 1)) == 0;
    if ((size_t)(h->nodes - 1) * count * sizeof(float) <= HIER_RD_BYTES) {
        return rail_direct(h, op, offset, count);
    }
    if (pow2 && count * sizeof(float) <= HIER_RD_BYTES) {
        return rail_rd(h, op, offset, count);
    }
    struct comm_op r = sub_op(op, COMM_ALLREDUCE, op->send, op->send_first, offset, count, NULL);
    return comm_ring_run(h->rail, &r);
}

/* ---------------------------------------------------------------- helpers */

/* dst[count] /= divisor, in one pass (COMM_AVG after sums). */
static void divide(float *dst, size_t count, int divisor)
{
    if (count && divisor > 1) {
        comm_reduce_f32(dst, NULL, (const float *const[]){dst}, 1, count, divisor);
    }
}

/* Global rank g's shard of a vector of `total` clipped to [lo, hi) (an
 * empty piece sits at lo or hi, so that pieces stay in order). */
static struct comm_shard clipped_shard(const struct comm_hier *h, size_t total, int g, size_t lo,
                                       size_t hi)
{
    struct comm_shard s = comm_shard_of(total, h->size, g), p;
    size_t a = s.offset > lo ? s.offset : lo;
    size_t e = s.offset + s.count < hi ? s.offset + s.count : hi;
    p.offset = a < hi ? a : hi;
    p.count = a < e ? e - a : 0;
    return p;
}

/* Pieces of node block b for a range op over `total`: the global shards
 * of node b's ranks, clipped to [lo, hi); *range gets their union. */
static void block_pieces(struct comm_hier *h, size_t total, int b, size_t lo, size_t hi,
                         struct comm_shard *range)
{
    for (int j = 0; j < h->local_size; j++) {
        h->node_piece[j] = clipped_shard(h, total, b * h->local_size + j, lo, hi);
    }
    const struct comm_shard *last = &h->node_piece[h->local_size - 1];
    range->offset = h->node_piece[0].offset;
    range->count = last->offset + last->count - range->offset;
}

/* The rail pieces of a range op: rail member b owns S_{b*L+l} clipped to [lo, hi). */
static void rail_pieces(struct comm_hier *h, size_t total, size_t lo, size_t hi)
{
    for (int b = 0; b < h->nodes; b++) {
        h->rail_piece[b] = clipped_shard(h, total, b * h->local_size + h->local_rank, lo, hi);
    }
}

/* A node-level sub-operation of op over [offset, offset + count) with the
 * pieces in h->node_piece, run in place on op's output. */
static dure_status_t node_op(struct comm_hier *h, const struct comm_op *op, enum comm_coll coll,
                             const void *send, size_t send_first, size_t offset, size_t count)
{
    struct comm_op s = sub_op(op, coll, send, send_first, offset, count, h->node_piece);
    return comm_shm_run(h->shm, &s);
}

/* ---------------------------------------------------------------- collectives */

static dure_status_t hier_allreduce(struct comm_hier *h, const struct comm_op *op)
{
    dure_status_t st = DURE_OK;
    const int divisor = op->redop == COMM_AVG ? h->size : 1;
    if (!h->shm) {
        /* One rank per node: the rail is the whole communicator. */
        DURE_TRY(rail_allreduce(h, op, op->offset, op->count));
        divide(comm_op_recv_at(op, op->offset), op->count, divisor);
        goto out;
    }
    for (int j = 0; j < h->local_size; j++) {
        h->node_piece[j] = comm_shard_of(op->count, h->local_size, j);
        h->node_piece[j].offset += op->offset;
    }
    const struct comm_shard mine = h->node_piece[h->local_rank];
    DURE_TRY(node_op(h, op, COMM_REDUCE_SCATTER, op->send, op->send_first, op->offset,
                     op->count));
    if (h->rail) {
        /* In place on the output from here on. */
        struct comm_op in_place = *op;
        in_place.send = op->recv;
        in_place.send_first = op->recv_first;
        DURE_TRY(rail_allreduce(h, &in_place, mine.offset, mine.count));
    }
    divide(comm_op_recv_at(op, mine.offset), mine.count, divisor);
    DURE_TRY(node_op(h, op, COMM_ALLGATHER, op->recv, op->recv_first, op->offset, op->count));
out:
    return st;
}

static dure_status_t hier_reduce_scatter(struct comm_hier *h, const struct comm_op *op)
{
    dure_status_t st = DURE_OK;
    const size_t lo = op->offset, hi = op->offset + op->count;
    const struct comm_shard me = comm_op_piece(op, h->size, h->rank);
    struct comm_shard range;
    if (h->shm) {
        for (int b = 0; b < h->nodes; b++) {
            block_pieces(h, op->total, b, lo, hi, &range);
            if (range.count) {
                DURE_TRY(node_op(h, op, COMM_REDUCE_SCATTER, op->send, op->send_first,
                                 range.offset, range.count));
            }
        }
    }
    if (h->rail) {
        struct comm_op r = *op;
        rail_pieces(h, op->total, lo, hi);
        r.redop = COMM_SUM;
        r.pieces = h->rail_piece;
        DURE_TRY(comm_ring_run(h->rail, &r));
    }
    divide(comm_op_recv_at(op, me.offset), me.count, op->redop == COMM_AVG ? h->size : 1);
out:
    return st;
}

static dure_status_t hier_allgather(struct comm_hier *h, const struct comm_op *op)
{
    dure_status_t st = DURE_OK;
    const size_t lo = op->offset, hi = op->offset + op->count;
    struct comm_shard range;
    if (h->rail) {
        struct comm_op r = *op;
        rail_pieces(h, op->total, lo, hi);
        r.pieces = h->rail_piece;
        DURE_TRY(comm_ring_run(h->rail, &r));
    }
    if (h->shm) {
        for (int b = 0; b < h->nodes; b++) {
            block_pieces(h, op->total, b, lo, hi, &range);
            if (range.count) {
                DURE_TRY(node_op(h, op, COMM_ALLGATHER, op->recv, op->recv_first, range.offset,
                                 range.count));
            }
        }
    }
out:
    return st;
}

int comm_hier_handles(const struct comm_hier *h, const struct comm_op *op)
{
    (void)h;
    switch (op->coll) {
    case COMM_ALLREDUCE:
        return 1;
    case COMM_REDUCE_SCATTER:
    case COMM_ALLGATHER:
        /* The intermediate node sums need the whole range: in place only. */
        return op->count == 0 || (comm_op_in_place(op, op->offset) &&
                                  comm_op_in_place(op, op->offset + op->count - 1));
    default:
        return 0;
    }
}

dure_status_t comm_hier_run(struct comm_hier *h, const struct comm_op *op)
{
    switch (op->coll) {
    case COMM_ALLREDUCE:
        return hier_allreduce(h, op);
    case COMM_REDUCE_SCATTER:
        return hier_reduce_scatter(h, op);
    default:
        return hier_allgather(h, op);
    }
}

/* ---------------------------------------------------------------- lifetime */

dure_status_t comm_hier_create(const struct comm_backend_args *a, struct comm_hier **out)
{
    dure_status_t st = DURE_OK;
    struct comm_hier *h = calloc(1, sizeof *h);
    *out = NULL;
    DURE_ALLOC_TRY(h, sizeof *h);
    h->node_mpi = h->rail_mpi = MPI_COMM_NULL;
    h->rank = a->rank;
    h->size = a->size;
    h->local_rank = a->local_rank;
    h->local_size = a->local_size;
    h->nodes = a->nodes;
    h->node = a->rank / a->local_size;
    h->cancel = a->cancel;
    h->spin_ns = a->cfg->spin_ns;
    DURE_MPI_TRY(MPI_Comm_split(a->mpi, h->node, h->local_rank, &h->node_mpi));
    DURE_MPI_TRY(MPI_Comm_set_errhandler(h->node_mpi, MPI_ERRORS_RETURN));
    DURE_MPI_TRY(MPI_Comm_split(a->mpi, h->local_rank, h->node, &h->rail_mpi));
    DURE_MPI_TRY(MPI_Comm_set_errhandler(h->rail_mpi, MPI_ERRORS_RETURN));
    h->node_piece = calloc((size_t)h->local_size, sizeof *h->node_piece);
    DURE_ALLOC_TRY(h->node_piece, (size_t)h->local_size * sizeof *h->node_piece);
    h->rail_piece = calloc((size_t)h->nodes, sizeof *h->rail_piece);
    DURE_ALLOC_TRY(h->rail_piece, (size_t)h->nodes * sizeof *h->rail_piece);
    h->rd = aligned_alloc(64, HIER_RD_BYTES);
    DURE_ALLOC_TRY(h->rd, HIER_RD_BYTES);
    memset(h->rd, 0, HIER_RD_BYTES);
    h->rq = calloc(2 * (size_t)h->nodes, sizeof *h->rq);
    DURE_ALLOC_TRY(h->rq, 2 * (size_t)h->nodes * sizeof *h->rq);
    h->src = calloc((size_t)h->nodes, sizeof *h->src);
    DURE_ALLOC_TRY(h->src, (size_t)h->nodes * sizeof *h->src);
    if (h->local_size > 1) {
        struct comm_backend_args na = *a;
        na.mpi = h->node_mpi;
        na.rank = h->local_rank;
        na.size = h->local_size;
        na.nodes = 1;
        DURE_TRY(comm_shm_create(&na, &h->shm));
    }
    if (h->nodes > 1) {
        struct comm_backend_args ra = *a;
        ra.mpi = h->rail_mpi;
        ra.rank = h->node;
        ra.size = h->nodes;
        ra.local_rank = 0;
        ra.local_size = 1;
        DURE_TRY(comm_ring_create(&ra, &h->rail));
    }
    *out = h;
    h = NULL;
out:
    comm_hier_destroy(h);
    return st;
}

struct comm_shm *comm_hier_shm(struct comm_hier *h)
{
    return h->shm;
}

void comm_hier_destroy(struct comm_hier *h)
{
    if (!h) {
        return;
    }
    comm_ring_destroy(h->rail);
    comm_shm_destroy(h->shm);
    if (h->rail_mpi != MPI_COMM_NULL) {
        MPI_Comm_free(&h->rail_mpi);
    }
    if (h->node_mpi != MPI_COMM_NULL) {
        MPI_Comm_free(&h->node_mpi);
    }
    free(h->node_piece);
    free(h->rail_piece);
    free(h->rd);
    free(h->rq);
    free(h->src);
    free(h);
}
