/*
 * collectives/mpi_backend.c - the mpi backend: host buffers, four
 * algorithms (native, ring, shm, hier; collectives/mpi_algos.h), chosen per
 * operation by the dispatcher from the algorithm table.
 *
 * Asynchronous operations need no slots here: the dispatcher's
 * communication thread runs these blocking ones in start order.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/mpi_algos.h"
#include "collectives/reduce.h"
#include "common/mpi_check.h"

struct comm_native {
    MPI_Comm mpi;
    int rank, size;
    int *counts;                 /* counts[size], displs[size]: for the v-collectives */
    int *displs;
};

struct mpi_ctx {
    MPI_Comm mpi;
    int rank, size;
    long spin_ns;                /* comm_config.spin_ns: the tree's point-to-point waits */
    const atomic_int *cancel;
    struct comm_native *native;
    struct comm_ring *ring;
    struct comm_shm *shm;        /* NULL unless every rank is on this node */
    struct comm_hier *hier;      /* NULL unless the ranks span nodes of equal size */
};

/* COMM_AVG after MPI's sum: the same division the other algorithms fuse. */
static void divide(float *x, size_t n, int divisor)
{
    const float d = (float)divisor;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        x[i] /= d;
    }
}

/* Fill counts/displs (relative to the range start) from the op's pieces;
 * DURE_ERR_UNSUPPORTED when a piece overflows MPI's int counts. */
static dure_status_t native_layout(struct comm_native *nt, const struct comm_op *op)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(!op->pieces, DURE_ERR_INTERNAL,
               "native %s: MPI's collectives take adjacent pieces only", comm_coll_name(op->coll));
    for (int j = 0; j < nt->size; j++) {
        struct comm_shard p = comm_op_piece(op, nt->size, j);
        DURE_CHECK(p.count <= INT_MAX && p.offset - op->offset <= INT_MAX,
                   DURE_ERR_UNSUPPORTED,
                   "native %s: rank %d's piece of %zu elements exceeds MPI's int counts: use "
                   "algo ring or shm",
                   comm_coll_name(op->coll), j, p.count);
        nt->counts[j] = (int)p.count;
        nt->displs[j] = (int)(p.offset - op->offset);
    }
out:
    return st;
}

dure_status_t comm_native_run(struct comm_native *nt, const struct comm_op *op)
{
    dure_status_t st = DURE_OK;
    const size_t es = comm_dtype_size(op->dtype);
    const size_t chunk = INT_MAX;
    struct comm_shard mine = comm_op_piece(op, nt->size, nt->rank);

    switch (op->coll) {
    case COMM_ALLREDUCE:
        for (size_t at = 0; at < op->count; at += chunk) {
            int c = (int)(op->count - at < chunk ? op->count - at : chunk);
            void *recv = comm_op_recv_at(op, at);
            const void *send = comm_op_in_place(op, at) ? MPI_IN_PLACE : comm_op_send_at(op, at);
            DURE_MPI_TRY(MPI_Allreduce(send, recv, c, MPI_FLOAT, MPI_SUM, nt->mpi));
        }
        if (op->redop == COMM_AVG) {
            divide(comm_op_recv_at(op, 0), op->count, nt->size);
        }
        break;
    case COMM_REDUCE_SCATTER:
        DURE_TRY(native_layout(nt, op));
        if (op->count == 0) {
            break;
        }
        if (comm_op_in_place(op, op->offset)) {
            /* MPI leaves the result at the start of the buffer. */
            char *range = comm_op_recv_at(op, op->offset);
            DURE_MPI_TRY(MPI_Reduce_scatter(MPI_IN_PLACE, range, nt->counts, MPI_FLOAT, MPI_SUM,
                                            nt->mpi));
            if (mine.count && mine.offset != op->offset) {
                memmove(comm_op_recv_at(op, mine.offset), range, mine.count * es);
            }
        } else {
            DURE_MPI_TRY(MPI_Reduce_scatter(comm_op_send_at(op, op->offset),
                                            comm_op_recv_at(op, mine.offset), nt->counts,
                                            MPI_FLOAT, MPI_SUM, nt->mpi));
        }
        if (op->redop == COMM_AVG && mine.count) {
            divide(comm_op_recv_at(op, mine.offset), mine.count, nt->size);
        }
        break;
    case COMM_ALLGATHER: {
        DURE_TRY(native_layout(nt, op));
        if (op->count == 0) {
            break;
        }
        const void *send = comm_op_in_place(op, mine.offset) ? MPI_IN_PLACE
                                                             : comm_op_send_at(op, mine.offset);
        int equal = 1;
        for (int j = 1; j < nt->size; j++) {
            equal &= nt->counts[j] == nt->counts[0];
        }
        if (equal) {
            /* MPI's own all-gather: often better tuned than the v-form, and the
             * one Open MPI lets dure tune force (tune/ompi_rules.h). The send
             * count and type even in place, where MPI ignores them: Open MPI
             * 4.1's coll_tuned sizes the message from them, for its fixed
             * decision and its rules file alike (count 0: every call 0 bytes). */
            DURE_MPI_TRY(MPI_Allgather(send, nt->counts[0], comm_dtype_mpi(op->dtype),
                                       comm_op_recv_at(op, op->offset), nt->counts[0],
                                       comm_dtype_mpi(op->dtype), nt->mpi));
        } else {
            DURE_MPI_TRY(MPI_Allgatherv(send, (int)mine.count, comm_dtype_mpi(op->dtype),
                                        comm_op_recv_at(op, op->offset), nt->counts, nt->displs,
                                        comm_dtype_mpi(op->dtype), nt->mpi));
        }
        break;
    }
    case COMM_BROADCAST:
        if (nt->rank == op->root && !comm_op_in_place(op, op->offset) && op->count) {
            memcpy(comm_op_recv_at(op, op->offset), comm_op_send_at(op, op->offset),
                   op->count * es);
        }
        for (size_t at = 0; at < op->count; at += chunk) {
            int c = (int)(op->count - at < chunk ? op->count - at : chunk);
            DURE_MPI_TRY(MPI_Bcast(comm_op_recv_at(op, op->offset + at), c,
                                   comm_dtype_mpi(op->dtype), op->root,
                                   nt->mpi));
        }
        break;
    case COMM_BARRIER:
        DURE_MPI_TRY(MPI_Barrier(nt->mpi));
        break;
    default:
        DURE_FAIL(DURE_ERR_INTERNAL, "native: unknown collective %d", (int)op->coll);
    }
out:
    return st;
}

dure_status_t comm_native_create(const struct comm_backend_args *a, struct comm_native **out)
{
    dure_status_t st = DURE_OK;
    struct comm_native *nt = calloc(1, sizeof *nt);
    *out = NULL;
    DURE_ALLOC_TRY(nt, sizeof *nt);
    nt->mpi = a->mpi;
    nt->rank = a->rank;
    nt->size = a->size;
    nt->counts = calloc((size_t)a->size, sizeof *nt->counts);
    DURE_ALLOC_TRY(nt->counts, (size_t)a->size * sizeof *nt->counts);
    nt->displs = calloc((size_t)a->size, sizeof *nt->displs);
    DURE_ALLOC_TRY(nt->displs, (size_t)a->size * sizeof *nt->displs);
    *out = nt;
    nt = NULL;
out:
    comm_native_destroy(nt);
    return st;
}

void comm_native_destroy(struct comm_native *nt)
{
    if (!nt) {
        return;
    }
    free(nt->counts);
    free(nt->displs);
    free(nt);
}

/* ---------------------------------------------------------------- the backend */

static dure_status_t mpi_run(void *vctx, const struct comm_op *op)
{
    struct mpi_ctx *ctx = vctx;
    switch (op->algo) {
    case COMM_ALGO_RING:
        return comm_ring_run(ctx->ring, op);
    case COMM_ALGO_SHM:
        if (ctx->shm) {
            return comm_shm_run(ctx->shm, op);
        }
        return comm_ring_run(ctx->ring, op);
    case COMM_ALGO_HIER:
        if (ctx->hier && comm_hier_handles(ctx->hier, op)) {
            return comm_hier_run(ctx->hier, op);
        }
        return comm_ring_run(ctx->ring, op);
    default:
        return comm_native_run(ctx->native, op);
    }
}

/* Node-local comms: registered shared memory (collective), read in place by
 * the shm algorithm; across nodes of equal size, each node's own (hier's
 * node steps read it in place). Otherwise aligned host memory. */
static dure_status_t mpi_mem_alloc(void *vctx, size_t bytes, void **p)
{
    dure_status_t st = DURE_OK;
    struct mpi_ctx *ctx = vctx;
    struct comm_shm *shm = ctx->shm ? ctx->shm : ctx->hier ? comm_hier_shm(ctx->hier) : NULL;
    if (shm) {
        return comm_shm_mem_alloc(shm, bytes, p);
    }
    *p = NULL;
    if (bytes > 0) {
        size_t rounded = (bytes + 63) & ~(size_t)63;
        *p = aligned_alloc(64, rounded);
        DURE_ALLOC_TRY(*p, rounded);
    }
out:
    return st;
}

static void mpi_mem_free(void *vctx, void *p)
{
    struct mpi_ctx *ctx = vctx;
    struct comm_shm *shm = ctx->shm ? ctx->shm : ctx->hier ? comm_hier_shm(ctx->hier) : NULL;
    if (!shm || !comm_shm_mem_free(shm, p)) {
        free(p);
    }
}

static dure_status_t mpi_tree(void *vctx, const struct comm_op *op)
{
    struct mpi_ctx *ctx = vctx;
    return comm_tree_mpi_run(ctx->mpi, ctx->rank, ctx->size, ctx->spin_ns, ctx->cancel, op);
}

static void mpi_destroy(void *vctx)
{
    struct mpi_ctx *ctx = vctx;
    if (!ctx) {
        return;
    }
    comm_hier_destroy(ctx->hier);
    comm_shm_destroy(ctx->shm);
    comm_ring_destroy(ctx->ring);
    comm_native_destroy(ctx->native);
    free(ctx);
}

static const struct comm_backend_i mpi_backend = {
    .allreduce = mpi_run,
    .reduce_scatter = mpi_run,
    .allgather = mpi_run,
    .broadcast = mpi_run,
    .destroy = mpi_destroy,
    .barrier = mpi_run,
    .tree_reduce_scatter = mpi_tree,
    .mem_alloc = mpi_mem_alloc,
    .mem_free = mpi_mem_free,
};

static dure_status_t mpi_create(const struct comm_backend_args *a,
                                const struct comm_backend_i **iface, void **vctx)
{
    dure_status_t st = DURE_OK;
    struct mpi_ctx *ctx = calloc(1, sizeof *ctx);
    *vctx = NULL;
    DURE_ALLOC_TRY(ctx, sizeof *ctx);
    ctx->mpi = a->mpi;
    ctx->rank = a->rank;
    ctx->size = a->size;
    ctx->cancel = a->cancel;
    ctx->spin_ns = a->cfg->spin_ns;
    DURE_TRY(comm_native_create(a, &ctx->native));
    DURE_TRY(comm_ring_create(a, &ctx->ring));
    if (a->local_size == a->size) {
        DURE_TRY(comm_shm_create(a, &ctx->shm));
    } else if (a->uniform) {
        DURE_TRY(comm_hier_create(a, &ctx->hier));
    }
    *iface = &mpi_backend;
    *vctx = ctx;
    ctx = NULL;
out:
    mpi_destroy(ctx);
    return st;
}

/* MPI is always there: every process of an MPI job can run it. */
static int mpi_usable(void) { return 1; }

const struct comm_backend_entry comm_backend_mpi = {
    .name = "mpi",
    .id = COMM_BACKEND_MPI,
    .memory = COMM_MEM_HOST,
    .reduce_dtypes = COMM_BIT(COMM_F32),
    .copy_dtypes = COMM_BIT(COMM_F32) | COMM_BIT(COMM_F64),
    .algos = COMM_BIT(COMM_ALGO_NATIVE) | COMM_BIT(COMM_ALGO_RING) | COMM_BIT(COMM_ALGO_SHM) |
             COMM_BIT(COMM_ALGO_HIER),
    .algo_table = 1,
    .deterministic = 1,
    .async = 0,
    .usable = mpi_usable,
    .create = mpi_create,
};
