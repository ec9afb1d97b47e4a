/*
 * collectives/ring.c - dure's segmented, pipelined ring over MPI
 * point-to-point, for any placement of ranks (within or across nodes).
 *
 * Reduce-scatter: in round k every rank's piece contributes its k-th
 * segment; within a round, n - 1 steps pass partial sums to the right:
 * at step s rank r sends piece (r - s - 1) and receives piece (r - s - 2)
 * mod n, adding its own input, so after the last step it holds its own
 * piece r fully reduced. The next round's first step is posted before
 * this round's last step completes (two receive buffers), so the link
 * carries one segment while the previous one is added, and each received
 * segment is added while it is still in cache. All-gather then passes
 * finished pieces around the ring, segment by segment with two in
 * flight; all-reduce is the two.
 * Broadcast is a chain from the root, segment by segment.
 *
 * Order: element i of piece p is summed as ((x[p+1] + x[p+2]) + ...) + x[p]
 * over ranks mod n, the same every run at a given size: deterministic.
 * Buffers: two receive segments and one partial segment, allocated once.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/mpi_algos.h"
#include "collectives/reduce.h"
#include "common/mpi_check.h"

enum {
    RING_TAG = 0x7275,           /* the comm's private communicator: no one else sends */
    RING_SLEEP_MAX_NS = 100000,  /* the longest sleep between polls */
};

struct comm_ring {
    MPI_Comm mpi;
    int rank, size;
    size_t seg_bytes;
    float *tmp[2];               /* tmp[2][seg]: receive segments */
    float *partial;              /* partial[seg]: the running sum passed on */
    long spin_ns;                /* comm_config.spin_ns */
    const atomic_int *cancel;
    struct comm_shard *piece;    /* piece[size] of the current op */
    MPI_Request req[4];          /* [0] recv, [1] send of the step; [2], [3] the next round's */
};

static int mod(int a, int n)
{
    return ((a % n) + n) % n;
}

/* Wait for reqs, polling the watchdog's cancel flag: MPI_Testall in a
 * loop for spin_ns (collectives/mpi_algos.h), then between tests sleeps
 * growing to RING_SLEEP_MAX_NS (comm_backoff), so a wait for a peer that is
 * still computing leaves the core to this rank's compute thread. */
dure_status_t comm_mpi_wait(MPI_Request *reqs, int n, long spin_ns, const atomic_int *cancel,
                            const char *who)
{
    dure_status_t st = DURE_OK;
    int done = 0;
    struct comm_backoff b;
    comm_backoff_init(&b, spin_ns, RING_SLEEP_MAX_NS);
    for (;;) {
        DURE_MPI_TRY(MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE));
        if (done) {
            break;
        }
        if (comm_backoff_nap(&b)) {
            DURE_CHECK(!atomic_load(cancel), DURE_ERR_TIMEOUT,
                       "%s: wait cancelled by the watchdog", who);
        }
    }
out:
    return st;
}

static dure_status_t ring_wait(struct comm_ring *r, MPI_Request *reqs, int n)
{
    return comm_mpi_wait(reqs, n, r->spin_ns, r->cancel, "ring");
}

/* Segment k of piece p: [offset, offset + count). */
static struct comm_shard seg_of(const struct comm_ring *r, int p, size_t k, size_t seg)
{
    struct comm_shard s = r->piece[p];
    size_t start = k * seg;
    s.offset += start;
    s.count = s.count > start ? s.count - start : 0;
    if (s.count > seg) {
        s.count = seg;
    }
    return s;
}

/* Post step s of round k: receive piece (me - s - 2) into buf, send piece
 * (me - s - 1) from `from` (the input at step 0, the partial sum later). */
static dure_status_t post_step(struct comm_ring *r, const struct comm_op *op, size_t k, int s,
                               size_t seg, float *buf, const void *from, MPI_Request *rq)
{
    dure_status_t st = DURE_OK;
    const int n = r->size, me = r->rank;
    struct comm_shard in = seg_of(r, mod(me - s - 2, n), k, seg);
    struct comm_shard outp = seg_of(r, mod(me - s - 1, n), k, seg);
    if (!from) {
        from = comm_op_send_at(op, outp.offset);
    }
    rq[0] = rq[1] = MPI_REQUEST_NULL;
    if (in.count) {
        DURE_MPI_TRY(MPI_Irecv(buf, (int)in.count, MPI_FLOAT, mod(me - 1, n), RING_TAG, r->mpi,
                               &rq[0]));
    }
    if (outp.count) {
        DURE_MPI_TRY(MPI_Isend(from, (int)outp.count, MPI_FLOAT, mod(me + 1, n), RING_TAG,
                               r->mpi, &rq[1]));
    }
out:
    return st;
}

static dure_status_t reduce_scatter_phase(struct comm_ring *r, const struct comm_op *op,
                                          size_t rounds, size_t seg)
{
    dure_status_t st = DURE_OK;
    const int n = r->size, me = r->rank;
    const int divisor = op->redop == COMM_AVG ? n : 1;
    unsigned t = 0; /* steps so far: picks the receive buffer */

    DURE_TRY(post_step(r, op, 0, 0, seg, r->tmp[0], NULL, &r->req[0]));
    for (size_t k = 0; k < rounds; k++) {
        for (int s = 0; s < n - 1; s++, t++) {
            float *buf = r->tmp[t % 2];
            if (s > 0) {
                DURE_TRY(post_step(r, op, k, s, seg, buf, r->partial, &r->req[0]));
            }
            const int last = s == n - 2;
            if (last && k + 1 < rounds) {
                /* The next round's first step sends input only, into the other
                 * receive buffer (its segment was added at the step before):
                 * post it before this step completes, so that the link does
                 * not idle between rounds. */
                DURE_TRY(post_step(r, op, k + 1, 0, seg, r->tmp[(t + 1) % 2], NULL,
                                   &r->req[2]));
            }
            DURE_TRY(ring_wait(r, r->req, 2));
            struct comm_shard in = seg_of(r, mod(me - s - 2, n), k, seg);
            float *dst = last ? comm_op_recv_at(op, in.offset) : r->partial;
            comm_reduce2_f32(dst, buf, comm_op_send_at(op, in.offset), in.count,
                             last ? divisor : 1);
            if (last && k + 1 < rounds) {
                r->req[0] = r->req[2];
                r->req[1] = r->req[3];
            }
        }
    }
out:
    return st;
}

/*
 * Pass finished pieces around: after it every rank's range holds every
 * piece. Each step moves its piece in segments of `seg` elements, two in
 * flight (slot j % 2), straight between the ranks' output buffers. Whole
 * pieces as one message would exceed the transport's eager limit from a
 * few MiB on (Open MPI's TCP: btl_tcp_eager_limit, 1 MiB in the site
 * profile tcp) and wait for a rendezvous handshake whose reply queues
 * behind the other direction's data: measured on a 1 Gbit/s link, that
 * cost a 4 MiB all-reduce of 2 ranks up to a quarter of its time.
 */
static dure_status_t allgather_phase(struct comm_ring *r, const struct comm_op *op, size_t seg)
{
    dure_status_t st = DURE_OK;
    const int n = r->size, me = r->rank;
    const MPI_Datatype dt = comm_dtype_mpi(op->dtype);
    for (int i = 0; i < 4; i++) {
        r->req[i] = MPI_REQUEST_NULL;
    }
    for (int s = 0; s < n - 1; s++) {
        struct comm_shard out_p = r->piece[mod(me - s, n)];
        struct comm_shard in_p = r->piece[mod(me - s - 1, n)];
        size_t longest = out_p.count > in_p.count ? out_p.count : in_p.count;
        for (size_t at = 0, j = 0; at < longest; at += seg, j++) {
            MPI_Request *rq = &r->req[2 * (j % 2)];
            size_t oc = out_p.count > at ? out_p.count - at : 0;
            size_t ic = in_p.count > at ? in_p.count - at : 0;
            oc = oc > seg ? seg : oc;
            ic = ic > seg ? seg : ic;
            /* The slot's previous segment (j - 2) must be done first. */
            DURE_TRY(ring_wait(r, rq, 2));
            if (ic) {
                DURE_MPI_TRY(MPI_Irecv(comm_op_recv_at(op, in_p.offset + at), (int)ic, dt,
                                       mod(me - 1, n), RING_TAG, r->mpi, &rq[0]));
            }
            if (oc) {
                DURE_MPI_TRY(MPI_Isend(comm_op_recv_at(op, out_p.offset + at), (int)oc, dt,
                                       mod(me + 1, n), RING_TAG, r->mpi, &rq[1]));
            }
        }
        /* The next step forwards what this one received. */
        DURE_TRY(ring_wait(r, r->req, 4));
    }
out:
    return st;
}

static dure_status_t broadcast_chain(struct comm_ring *r, const struct comm_op *op, size_t seg)
{
    dure_status_t st = DURE_OK;
    const int n = r->size, me = r->rank, root = op->root;
    const int last = mod(me - root, n) == n - 1;
    const size_t es = comm_dtype_size(op->dtype);
    MPI_Request send = MPI_REQUEST_NULL;

    for (size_t at = 0; at < op->count; at += seg) {
        size_t c = op->count - at < seg ? op->count - at : seg;
        void *dst = comm_op_recv_at(op, op->offset + at);
        if (me == root) {
            const void *src = comm_op_send_at(op, op->offset + at);
            if (src != dst) {
                memcpy(dst, src, c * es);
            }
        } else {
            MPI_Request rq = MPI_REQUEST_NULL;
            DURE_MPI_TRY(MPI_Irecv(dst, (int)c, comm_dtype_mpi(op->dtype), mod(me - 1, n),
                                   RING_TAG, r->mpi, &rq));
            DURE_TRY(ring_wait(r, &rq, 1));
        }
        if (!last) {
            /* At most one forward in flight: the next receive overlaps it. */
            DURE_TRY(ring_wait(r, &send, 1));
            DURE_MPI_TRY(MPI_Isend(dst, (int)c, comm_dtype_mpi(op->dtype), mod(me + 1, n),
                                   RING_TAG, r->mpi, &send));
        }
    }
    DURE_TRY(ring_wait(r, &send, 1));
out:
    return st;
}

dure_status_t comm_ring_run(struct comm_ring *r, const struct comm_op *op)
{
    dure_status_t st = DURE_OK;
    const int n = r->size, me = r->rank;
    const size_t es = comm_dtype_size(op->dtype);
    size_t longest = 0;

    if (op->coll == COMM_BARRIER) {
        DURE_MPI_TRY(MPI_Barrier(r->mpi));
        goto out;
    }
    for (int j = 0; j < n; j++) {
        r->piece[j] = comm_op_piece(op, n, j);
        longest = r->piece[j].count > longest ? r->piece[j].count : longest;
    }
    /* the same on every rank: the longest piece (the message, broadcast) */
    const size_t seg = comm_ring_segment_for(
                           r->seg_bytes, (op->coll == COMM_BROADCAST ? op->count : longest) * es) /
                       es;
    const size_t rounds = longest / seg + (longest % seg != 0);
    const struct comm_shard mine = r->piece[me];

    switch (op->coll) {
    case COMM_ALLREDUCE:
    case COMM_REDUCE_SCATTER:
        if (n == 1) {
            comm_reduce_f32(comm_op_recv_at(op, mine.offset), NULL,
                            (const float *const[]){comm_op_send_at(op, mine.offset)}, 1,
                            mine.count, 1);
        } else if (rounds > 0) {
            DURE_TRY(reduce_scatter_phase(r, op, rounds, seg));
        }
        if (op->coll == COMM_ALLREDUCE) {
            DURE_TRY(allgather_phase(r, op, seg));
        }
        break;
    case COMM_ALLGATHER:
        if (!comm_op_in_place(op, mine.offset) && mine.count) {
            memcpy(comm_op_recv_at(op, mine.offset), comm_op_send_at(op, mine.offset),
                   mine.count * es);
        }
        DURE_TRY(allgather_phase(r, op, seg));
        break;
    case COMM_BROADCAST:
        DURE_TRY(broadcast_chain(r, op, seg));
        break;
    default:
        DURE_FAIL(DURE_ERR_INTERNAL, "ring: unknown collective %d", (int)op->coll);
    }
out:
    return st;
}

dure_status_t comm_ring_create(const struct comm_backend_args *a, struct comm_ring **out)
{
    dure_status_t st = DURE_OK;
    struct comm_ring *r = calloc(1, sizeof *r);
    *out = NULL;
    DURE_ALLOC_TRY(r, sizeof *r);
    r->mpi = a->mpi;
    r->rank = a->rank;
    r->size = a->size;
    r->cancel = a->cancel;
    r->spin_ns = a->cfg->spin_ns;
    r->seg_bytes = a->cfg->ring_seg_bytes; /* resolved by comm_create */
    for (int i = 0; i < 2; i++) {
        r->tmp[i] = aligned_alloc(64, r->seg_bytes);
        DURE_ALLOC_TRY(r->tmp[i], r->seg_bytes);
    }
    r->partial = aligned_alloc(64, r->seg_bytes);
    DURE_ALLOC_TRY(r->partial, r->seg_bytes);
    r->piece = calloc((size_t)r->size, sizeof *r->piece);
    DURE_ALLOC_TRY(r->piece, (size_t)r->size * sizeof *r->piece);
    /* Touch the buffers now so that no page fault lands in a collective. */
    memset(r->tmp[0], 0, r->seg_bytes);
    memset(r->tmp[1], 0, r->seg_bytes);
    memset(r->partial, 0, r->seg_bytes);
    *out = r;
    r = NULL;
out:
    comm_ring_destroy(r);
    return st;
}

void comm_ring_destroy(struct comm_ring *r)
{
    if (!r) {
        return;
    }
    free(r->piece);
    free(r->tmp[0]);
    free(r->tmp[1]);
    free(r->partial);
    free(r);
}
