/*
 * collectives/shm.c - collectives through an MPI-3 shared window, for
 * communicators whose ranks all share one node's memory.
 *
 * Each rank owns one segment of the window: three counters (each on its own
 * cache line) and SHM_SLOTS slots of (size + 1) sub-pieces:
 *   in[j]  (j < size)  this rank's input for rank j's sub-piece
 *   out               this rank's finished sub-piece
 * A round moves one sub-piece per rank through one slot and advances the
 * round counter g, which every rank keeps in step (all ranks run the same
 * rounds). Flags are the counters: a rank publishes in = g + 1 after filling
 * in[], red = g + 1 after writing out, done = g + 1 when it has finished
 * reading its peers' slots; a slot is reused only after every peer's done
 * has passed the round that last used it.
 *
 * Waiting spins (with pause) for up to comm_config.spin_ns, then sleeps on the
 * counter itself as a process-shared futex (the window is mapped by several
 * processes, so not FUTEX_PRIVATE_FLAG), waking every SHM_SLEEP_NS to poll
 * the watchdog's cancel flag. A sleeper first counts itself in the waited-on
 * rank's `sleepers`; a publisher stores its counter, then calls FUTEX_WAKE
 * only when sleepers is non-zero, so a collective whose ranks arrive
 * together makes no system call. Both sides use sequentially consistent
 * operations (store counter / load sleepers against add sleepers / load
 * counter): either the publisher sees the sleeper, or the sleeper sees the
 * new value, and FUTEX_WAIT itself refuses to sleep on a changed word.
 * Sleeping matters on a CPU node: the communication thread shares a core
 * with the compute thread of its rank, and a spinning (or sched_yield-ing)
 * waiter took that core from the compute while the peer was still in its
 * backward pass (measured in collectives/README.md). When the caller runs
 * the collectives on a core of its own (comm.h), nothing else needs the
 * core, and a sleep's wake costs more than the spin: it spins for 2 ms.
 *
 * All-reduce, two-shot (large): copy the peers' sub-pieces into in[],
 * reduce my sub-piece from every rank's in[me] in rank order into my output
 * and out, copy the peers' out into my output. One-shot (small): every rank
 * copies its whole round into in[] and reduces all of it itself, in rank
 * order, so one flag wait is on the critical path. Both sum
 * rank 0 + rank 1 + ... per element: the deterministic order.
 *
 * Direct path (no staging copies): buffers from comm_mem_alloc live in
 * shared windows of their own (registered regions), mapped by every rank.
 * At the start of an operation each rank publishes where its buffers lie
 * (region and offset, or "not registered"); when every buffer a peer must
 * read is registered, ranks read each other's buffers in place: all-reduce
 * reduces its sub-piece straight from the peers' inputs and copies the
 * peers' results straight from their outputs, so each rank touches 2.5x
 * the message instead of 4x. Every rank waits at the end until its peers
 * have finished reading its buffers, since the caller may overwrite them
 * the moment the call returns.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "collectives/mpi_algos.h"
#include "collectives/reduce.h"
#include "common/mpi_check.h"

enum {
    SHM_SLOTS = 2,
    /* Sub-piece size: small enough that a round's in/out stay in L2 while
     * the peer reads them, large enough to amortise three flag waits. */
    SHM_PIECE_BYTES = 128 << 10,
    /* One-shot all-reduce up to this many bytes: measured crossover. */
    SHM_ONESHOT_BYTES = 32 << 10,
    /* Direct path from this many bytes: below it the extra descriptor
     * exchange costs more than the copies it saves. */
    SHM_DIRECT_BYTES = 64 << 10,
    SHM_CTRL_BYTES = 4096,
    /* A sleeper wakes at least this often to poll the watchdog's cancel flag. */
    SHM_SLEEP_NS = 50000000,
};

/* Where a rank's buffers lie, for the direct path. */
struct shm_desc {
    int32_t send_region, recv_region;  /* index into the registry, -1: not registered */
    uint64_t send_off, recv_off;       /* byte offset in the region of the reference element */
};

struct shm_ctrl {
    _Atomic uint64_t in;
    char pad0[56];
    _Atomic uint64_t red;
    char pad1[56];
    _Atomic uint64_t done;
    char pad2[56];
    _Atomic uint64_t desc_seq;         /* ops whose desc below is published */
    struct shm_desc desc[2];           /* by op parity: a fast peer may publish the
                                          next op's while this one's is still read */
    char pad3[8];
    _Atomic uint32_t sleepers;         /* peers asleep on one of this rank's counters */
    char pad4[60];
};
_Static_assert(sizeof(struct shm_ctrl) <= SHM_CTRL_BYTES, "shm_ctrl outgrew its page");

/* A registered region: one shared window, every rank's segment mapped. */
struct shm_region {
    MPI_Win win;
    char **base;                       /* base[size] */
    size_t *bytes;                     /* bytes[size] */
};

struct comm_shm {
    MPI_Comm mpi;
    MPI_Win win;
    int locked;
    int rank, size;
    size_t piece_bytes;          /* P, bytes of one sub-piece */
    size_t slot_bytes;           /* (size + 1) * P */
    struct shm_ctrl **ctrl;      /* ctrl[size]: every rank's counters */
    char **seg;                  /* seg[size]: every rank's first slot */
    uint64_t g;                  /* rounds completed, identical on all ranks */
    const atomic_int *cancel;
    uint64_t spin_ns;            /* comm_config.spin_ns */
    struct comm_shard *piece;    /* piece[size] of the current op */
    struct comm_shard *sub;      /* sub[size] of the current round */
    const float **src;           /* src[size]: reduction inputs */

    MPI_Comm alloc_mpi;          /* duplicate for the collective allocations */
    struct shm_region *region;   /* region[nregion], registered buffers */
    int nregion;
    uint64_t direct_ops;         /* ops that exchanged descriptors */
    const char **peer_send;      /* peer_send[size]: rank q's reference send element, mapped here */
    char **peer_recv;            /* peer_recv[size] */
    size_t *ref_send, *ref_recv; /* [size]: global index of each rank's reference elements */
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* The 32-bit futex word of a 64-bit counter: its low half. Counters only
 * grow and never by 2^32 during one wait, so the low half changes whenever
 * the counter does. */
static uint32_t *futex_word(_Atomic uint64_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (uint32_t *)((char *)p + 4);
#else
    return (uint32_t *)p;
#endif
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sleep on *p while its low half still reads seen, at most SHM_SLEEP_NS.
 * EAGAIN (changed already), EINTR and ETIMEDOUT all mean: look again. */
static dure_status_t futex_sleep(int j, _Atomic uint64_t *p, uint64_t seen)
{
    dure_status_t st = DURE_OK;
    const struct timespec limit = {0, SHM_SLEEP_NS};
    long rc = syscall(SYS_futex, futex_word(p), FUTEX_WAIT, (uint32_t)seen, &limit, NULL, 0);
    DURE_CHECK(rc == 0 || errno == EAGAIN || errno == EINTR || errno == ETIMEDOUT, DURE_ERR_IO,
               "shm: futex wait on rank %d's counter failed: %s", j, strerror(errno));
out:
    return st;
}

/* Wait until rank j's counter (at byte offset `which` in its ctrl) is at
 * least target: spin, then sleep (see the top of this file).
 * DURE_ERR_TIMEOUT when the watchdog cancels. */
static dure_status_t wait_one(struct comm_shm *s, int j, size_t which, uint64_t target)
{
    dure_status_t st = DURE_OK;
    _Atomic uint64_t *p = (_Atomic uint64_t *)((char *)s->ctrl[j] + which);
    _Atomic uint32_t *sleepers = &s->ctrl[j]->sleepers;
    int counted = 0;
    if (atomic_load_explicit(p, memory_order_acquire) >= target) {
        goto out;
    }
    const uint64_t t0 = now_ns();
    for (unsigned spins = 1;; spins++) {
        if (atomic_load_explicit(p, memory_order_acquire) >= target) {
            goto out;
        }
        cpu_relax();
        if ((spins & 63) == 0 && now_ns() - t0 >= s->spin_ns) {
            break;
        }
    }
    atomic_fetch_add(sleepers, 1);
    counted = 1;
    for (;;) {
        uint64_t v = atomic_load(p);
        if (v >= target) {
            break;
        }
        DURE_CHECK(!atomic_load(s->cancel), DURE_ERR_TIMEOUT,
                   "shm: waiting for rank %d cancelled by the watchdog", j);
        DURE_TRY(futex_sleep(j, p, v));
    }
out:
    if (counted) {
        atomic_fetch_sub(sleepers, 1);
    }
    return st;
}

static dure_status_t wait_peers(struct comm_shm *s, size_t which, uint64_t target)
{
    dure_status_t st = DURE_OK;
    for (int j = 0; j < s->size; j++) {
        if (j != s->rank) {
            DURE_TRY(wait_one(s, j, which, target));
        }
    }
out:
    return st;
}

/* Set my counter at `which` to v and wake the peers asleep on it. A failed
 * wake cannot lose anything: sleepers poll at least every SHM_SLEEP_NS. */
static void publish(struct comm_shm *s, size_t which, uint64_t v)
{
    _Atomic uint64_t *p = (_Atomic uint64_t *)((char *)s->ctrl[s->rank] + which);
    atomic_store(p, v);
    if (atomic_load(&s->ctrl[s->rank]->sleepers) != 0) {
        syscall(SYS_futex, futex_word(p), FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    }
}

#define CTRL_IN offsetof(struct shm_ctrl, in)
#define CTRL_RED offsetof(struct shm_ctrl, red)
#define CTRL_DONE offsetof(struct shm_ctrl, done)

static char *slot_in(const struct comm_shm *s, int rank, unsigned slot, int j)
{
    return s->seg[rank] + slot * s->slot_bytes + (size_t)j * s->piece_bytes;
}

static char *slot_out(const struct comm_shm *s, int rank, unsigned slot)
{
    return slot_in(s, rank, slot, s->size);
}

static void copy(void *dst, const void *src, size_t bytes)
{
    if (bytes && dst != src) {
        memcpy(dst, src, bytes);
    }
}

/* The sub-pieces of round k, P elements of each piece. */
static void round_subs(struct comm_shm *s, size_t k, size_t p_elems)
{
    for (int j = 0; j < s->size; j++) {
        size_t start = k * p_elems;
        s->sub[j].offset = s->piece[j].offset + start;
        s->sub[j].count = s->piece[j].count > start ? s->piece[j].count - start : 0;
        if (s->sub[j].count > p_elems) {
            s->sub[j].count = p_elems;
        }
    }
}

/* ---------------------------------------------------------------- direct path */

/* The part of rank q's buffers its peers read, by global element index:
 * input [*ref_s, *ref_s + *ns), output [*ref_r, *ref_r + *nr). The
 * reference elements also anchor the address translation. */
static void peer_reads(const struct comm_shm *s, const struct comm_op *op, int q, size_t *ref_s,
                       size_t *ns, size_t *ref_r, size_t *nr)
{
    *ref_s = *ref_r = op->offset;
    *ns = op->count;
    *nr = 0;
    switch (op->coll) {
    case COMM_ALLREDUCE:
        *nr = op->count;
        break;
    case COMM_REDUCE_SCATTER:
        *ref_r = s->piece[q].offset;
        break;
    case COMM_ALLGATHER:
        *ref_s = s->piece[q].offset;
        *ns = s->piece[q].count;
        break;
    default:
        *ns = q == op->root ? op->count : 0;
        break;
    }
}

/* Region holding [p, p + len) of this rank's memory: -1 when none, -2 when
 * nothing is needed (len 0). */
static int32_t find_region(const struct comm_shm *s, const void *p, size_t len, uint64_t *off)
{
    const uintptr_t a = (uintptr_t)p;
    *off = 0;
    if (len == 0) {
        return -2;
    }
    for (int r = 0; r < s->nregion; r++) {
        const uintptr_t b = (uintptr_t)s->region[r].base[s->rank];
        if (a >= b && a - b <= s->region[r].bytes[s->rank] &&
            len <= s->region[r].bytes[s->rank] - (a - b)) {
            *off = a - b;
            return r;
        }
    }
    return -1;
}

/* Publish where this rank's buffers lie, read everyone's; *direct = 1 when
 * every buffer a peer reads is registered (the same answer on every rank). */
static dure_status_t exchange(struct comm_shm *s, const struct comm_op *op, int *direct)
{
    dure_status_t st = DURE_OK;
    const size_t es = comm_dtype_size(op->dtype);
    const uint64_t no = ++s->direct_ops;
    const int par = (int)(no % 2);
    size_t ref_s, ns, ref_r, nr;
    struct shm_desc *d = &s->ctrl[s->rank]->desc[par];

    peer_reads(s, op, s->rank, &ref_s, &ns, &ref_r, &nr);
    d->send_region = find_region(s, ns ? comm_op_send_at(op, ref_s) : NULL, ns * es, &d->send_off);
    d->recv_region = find_region(s, nr ? comm_op_recv_at(op, ref_r) : NULL, nr * es, &d->recv_off);
    publish(s, offsetof(struct shm_ctrl, desc_seq), no);
    DURE_TRY(wait_peers(s, offsetof(struct shm_ctrl, desc_seq), no));

    *direct = 1;
    for (int q = 0; q < s->size; q++) {
        const struct shm_desc *dq = &s->ctrl[q]->desc[par];
        if (dq->send_region == -1 || dq->recv_region == -1) {
            *direct = 0;
        }
    }
    for (int q = 0; *direct && q < s->size; q++) {
        const struct shm_desc *dq = &s->ctrl[q]->desc[par];
        peer_reads(s, op, q, &s->ref_send[q], &ns, &s->ref_recv[q], &nr);
        s->peer_send[q] = dq->send_region >= 0
                              ? s->region[dq->send_region].base[q] + dq->send_off : NULL;
        s->peer_recv[q] = dq->recv_region >= 0
                              ? s->region[dq->recv_region].base[q] + dq->recv_off : NULL;
    }
out:
    return st;
}

static const void *peer_send_at(const struct comm_shm *s, int q, size_t i, size_t es)
{
    return s->peer_send[q] + (i - s->ref_send[q]) * es;
}

static const void *peer_recv_at(const struct comm_shm *s, int q, size_t i, size_t es)
{
    return s->peer_recv[q] + (i - s->ref_recv[q]) * es;
}

static dure_status_t run_direct(struct comm_shm *s, const struct comm_op *op, size_t rounds,
                                size_t p_elems)
{
    dure_status_t st = DURE_OK;
    const int me = s->rank, n = s->size;
    const size_t es = comm_dtype_size(op->dtype);
    const int divisor = op->redop == COMM_AVG ? n : 1;

    for (size_t k = 0; k < rounds; k++) {
        const uint64_t g = s->g;
        round_subs(s, k, p_elems);
        const struct comm_shard mine = s->sub[me];
        switch (op->coll) {
        case COMM_ALLREDUCE:
        case COMM_REDUCE_SCATTER:
            for (int q = 0; q < n; q++) {
                s->src[q] = q == me ? comm_op_send_at(op, mine.offset)
                                    : peer_send_at(s, q, mine.offset, es);
            }
            comm_reduce_f32(comm_op_recv_at(op, mine.offset), NULL, s->src, n, mine.count,
                            divisor);
            if (op->coll == COMM_ALLREDUCE) {
                /* the peers' results are final once they publish red */
                publish(s, CTRL_RED, g + 1);
                DURE_TRY(wait_peers(s, CTRL_RED, g + 1));
                for (int j = 0; j < n; j++) {
                    if (j != me) {
                        copy(comm_op_recv_at(op, s->sub[j].offset),
                             peer_recv_at(s, j, s->sub[j].offset, es), s->sub[j].count * es);
                    }
                }
            }
            break;
        case COMM_ALLGATHER:
            for (int j = 0; j < n; j++) {
                const void *from = j == me ? comm_op_send_at(op, mine.offset)
                                           : peer_send_at(s, j, s->sub[j].offset, es);
                copy(comm_op_recv_at(op, s->sub[j].offset), from, s->sub[j].count * es);
            }
            break;
        default: /* COMM_BROADCAST */
            for (int j = 0; j < n; j++) {
                const void *from = me == op->root
                                       ? comm_op_send_at(op, s->sub[j].offset)
                                       : peer_send_at(s, op->root, s->sub[j].offset, es);
                copy(comm_op_recv_at(op, s->sub[j].offset), from, s->sub[j].count * es);
            }
            break;
        }
        publish(s, CTRL_DONE, g + 1);
        s->g = g + 1;
    }
    /* The caller may overwrite its buffers once we return: not before every
     * peer is done reading them. */
    DURE_TRY(wait_peers(s, CTRL_DONE, s->g));
out:
    return st;
}

dure_status_t comm_shm_run(struct comm_shm *s, const struct comm_op *op)
{
    dure_status_t st = DURE_OK;
    const int me = s->rank, n = s->size;
    const size_t es = comm_dtype_size(op->dtype);
    const size_t p_elems = s->piece_bytes / es;
    const int divisor = op->redop == COMM_AVG ? n : 1;
    const int oneshot = op->coll == COMM_ALLREDUCE && op->count * es <= SHM_ONESHOT_BYTES;
    size_t longest = 0;

    for (int j = 0; j < n; j++) {
        s->piece[j] = comm_op_piece(op, n, j);
        longest = s->piece[j].count > longest ? s->piece[j].count : longest;
    }
    if (op->coll == COMM_BARRIER) {
        longest = 1; /* one empty round: its flags are the barrier */
        for (int j = 0; j < n; j++) {
            s->piece[j].count = 0;
        }
    }
    const size_t rounds = longest / p_elems + (longest % p_elems != 0) + (op->coll == COMM_BARRIER);
    if (op->coll != COMM_BARRIER && op->count * es >= SHM_DIRECT_BYTES) {
        int direct = 0;
        DURE_TRY(exchange(s, op, &direct));
        if (direct) {
            DURE_TRY(run_direct(s, op, rounds, p_elems));
            goto out;
        }
    }

    for (size_t k = 0; k < rounds; k++) {
        const uint64_t g = s->g;
        const unsigned slot = (unsigned)(g % SHM_SLOTS);
        round_subs(s, k, p_elems);
        const struct comm_shard mine = s->sub[me];
        if (g >= SHM_SLOTS) {
            DURE_TRY(wait_peers(s, CTRL_DONE, g + 1 - SHM_SLOTS));
        }

        /* Stage in: what the peers will read from my slot. */
        switch (op->coll) {
        case COMM_ALLREDUCE:
        case COMM_REDUCE_SCATTER:
            for (int j = 0; j < n; j++) {
                if (j != me || oneshot) {
                    copy(slot_in(s, me, slot, j), comm_op_send_at(op, s->sub[j].offset),
                         s->sub[j].count * es);
                }
            }
            break;
        case COMM_ALLGATHER:
            copy(slot_out(s, me, slot), comm_op_send_at(op, mine.offset), mine.count * es);
            copy(comm_op_recv_at(op, mine.offset), comm_op_send_at(op, mine.offset),
                 mine.count * es);
            break;
        case COMM_BROADCAST:
            if (me == op->root) {
                for (int j = 0; j < n; j++) {
                    copy(slot_in(s, me, slot, j), comm_op_send_at(op, s->sub[j].offset),
                         s->sub[j].count * es);
                    copy(comm_op_recv_at(op, s->sub[j].offset),
                         comm_op_send_at(op, s->sub[j].offset), s->sub[j].count * es);
                }
            }
            break;
        default:
            break;
        }
        publish(s, CTRL_IN, g + 1);
        if (op->coll == COMM_BROADCAST) {
            if (me != op->root) {
                const int root = op->root;
                DURE_TRY(wait_one(s, root, CTRL_IN, g + 1));
                for (int j = 0; j < n; j++) {
                    copy(comm_op_recv_at(op, s->sub[j].offset), slot_in(s, root, slot, j),
                         s->sub[j].count * es);
                }
            }
        } else {
            DURE_TRY(wait_peers(s, CTRL_IN, g + 1));
        }

        /* Reduce, in rank order. */
        if (op->coll == COMM_ALLREDUCE && oneshot) {
            for (int j = 0; j < n; j++) {
                for (int q = 0; q < n; q++) {
                    s->src[q] = (const float *)(q == me ? comm_op_send_at(op, s->sub[j].offset)
                                                        : slot_in(s, q, slot, j));
                }
                comm_reduce_f32(comm_op_recv_at(op, s->sub[j].offset), NULL, s->src, n,
                                s->sub[j].count, divisor);
            }
        } else if (op->coll == COMM_ALLREDUCE || op->coll == COMM_REDUCE_SCATTER) {
            for (int q = 0; q < n; q++) {
                s->src[q] = (const float *)(q == me ? comm_op_send_at(op, mine.offset)
                                                    : slot_in(s, q, slot, me));
            }
            float *out2 = op->coll == COMM_ALLREDUCE ? (float *)slot_out(s, me, slot) : NULL;
            comm_reduce_f32(comm_op_recv_at(op, mine.offset), out2, s->src, n, mine.count,
                            divisor);
        }
        publish(s, CTRL_RED, g + 1);

        /* Stage out: the peers' finished sub-pieces. */
        if ((op->coll == COMM_ALLREDUCE && !oneshot) || op->coll == COMM_ALLGATHER) {
            DURE_TRY(wait_peers(s, CTRL_RED, g + 1));
            for (int j = 0; j < n; j++) {
                if (j != me) {
                    copy(comm_op_recv_at(op, s->sub[j].offset), slot_out(s, j, slot),
                         s->sub[j].count * es);
                }
            }
        }
        publish(s, CTRL_DONE, g + 1);
        s->g = g + 1;
    }
out:
    return st;
}

/* ---------------------------------------------------------------- registered memory */

dure_status_t comm_shm_mem_alloc(struct comm_shm *s, size_t bytes, void **p)
{
    dure_status_t st = DURE_OK;
    MPI_Info info = MPI_INFO_NULL;
    struct shm_region reg = {MPI_WIN_NULL, NULL, NULL};
    int locked = 0;
    char *mine = NULL;

    *p = NULL;
    reg.base = calloc((size_t)s->size, sizeof *reg.base);
    DURE_ALLOC_TRY(reg.base, (size_t)s->size * sizeof *reg.base);
    reg.bytes = calloc((size_t)s->size, sizeof *reg.bytes);
    DURE_ALLOC_TRY(reg.bytes, (size_t)s->size * sizeof *reg.bytes);
    struct shm_region *grown = realloc(s->region, (size_t)(s->nregion + 1) * sizeof *grown);
    DURE_ALLOC_TRY(grown, (size_t)(s->nregion + 1) * sizeof *grown);
    s->region = grown;

    DURE_MPI_TRY(MPI_Info_create(&info));
    DURE_MPI_TRY(MPI_Info_set(info, "alloc_shared_noncontig", "true"));
    /* Never empty, so that every rank gets a base to free collectively. */
    bytes = bytes < 64 ? 64 : bytes;
    DURE_MPI_TRY(MPI_Win_allocate_shared((MPI_Aint)bytes, 1, info, s->alloc_mpi, &mine, &reg.win));
    DURE_MPI_TRY(MPI_Win_lock_all(MPI_MODE_NOCHECK, reg.win));
    locked = 1;
    for (int q = 0; q < s->size; q++) {
        MPI_Aint len = 0;
        int disp = 0;
        DURE_MPI_TRY(MPI_Win_shared_query(reg.win, q, &len, &disp, &reg.base[q]));
        reg.bytes[q] = (size_t)len;
    }
    s->region[s->nregion++] = reg;
    reg.win = MPI_WIN_NULL;
    reg.base = NULL;
    reg.bytes = NULL;
    *p = mine;
out:
    if (info != MPI_INFO_NULL) {
        MPI_Info_free(&info);
    }
    if (reg.win != MPI_WIN_NULL) {
        if (locked) {
            MPI_Win_unlock_all(reg.win);
        }
        MPI_Win_free(&reg.win);
    }
    free(reg.base);
    free(reg.bytes);
    return st;
}

int comm_shm_mem_free(struct comm_shm *s, void *p)
{
    for (int r = 0; r < s->nregion; r++) {
        if (s->region[r].base[s->rank] == p) {
            MPI_Win_unlock_all(s->region[r].win);
            MPI_Win_free(&s->region[r].win);
            free(s->region[r].base);
            free(s->region[r].bytes);
            memmove(&s->region[r], &s->region[r + 1],
                    (size_t)(s->nregion - r - 1) * sizeof *s->region);
            s->nregion--;
            return 1;
        }
    }
    return 0;
}

dure_status_t comm_shm_create(const struct comm_backend_args *a, struct comm_shm **out)
{
    dure_status_t st = DURE_OK;
    struct comm_shm *s = NULL;
    MPI_Info info = MPI_INFO_NULL;
    char *base = NULL;

    *out = NULL;
    s = calloc(1, sizeof *s);
    DURE_ALLOC_TRY(s, sizeof *s);
    s->win = MPI_WIN_NULL;
    s->alloc_mpi = MPI_COMM_NULL;
    s->mpi = a->mpi;
    s->rank = a->rank;
    s->size = a->size;
    s->cancel = a->cancel;
    s->spin_ns = (uint64_t)a->cfg->spin_ns;
    s->piece_bytes = SHM_PIECE_BYTES;
    s->slot_bytes = (size_t)(s->size + 1) * s->piece_bytes;
    s->ctrl = calloc((size_t)s->size, sizeof *s->ctrl);
    DURE_ALLOC_TRY(s->ctrl, (size_t)s->size * sizeof *s->ctrl);
    s->seg = calloc((size_t)s->size, sizeof *s->seg);
    DURE_ALLOC_TRY(s->seg, (size_t)s->size * sizeof *s->seg);
    s->piece = calloc((size_t)s->size, sizeof *s->piece);
    DURE_ALLOC_TRY(s->piece, (size_t)s->size * sizeof *s->piece);
    s->sub = calloc((size_t)s->size, sizeof *s->sub);
    DURE_ALLOC_TRY(s->sub, (size_t)s->size * sizeof *s->sub);
    s->src = calloc((size_t)s->size, sizeof *s->src);
    DURE_ALLOC_TRY(s->src, (size_t)s->size * sizeof *s->src);
    s->peer_send = calloc((size_t)s->size, sizeof *s->peer_send);
    DURE_ALLOC_TRY(s->peer_send, (size_t)s->size * sizeof *s->peer_send);
    s->peer_recv = calloc((size_t)s->size, sizeof *s->peer_recv);
    DURE_ALLOC_TRY(s->peer_recv, (size_t)s->size * sizeof *s->peer_recv);
    s->ref_send = calloc((size_t)s->size, sizeof *s->ref_send);
    DURE_ALLOC_TRY(s->ref_send, (size_t)s->size * sizeof *s->ref_send);
    s->ref_recv = calloc((size_t)s->size, sizeof *s->ref_recv);
    DURE_ALLOC_TRY(s->ref_recv, (size_t)s->size * sizeof *s->ref_recv);
    s->alloc_mpi = MPI_COMM_NULL;
    DURE_MPI_TRY(MPI_Comm_dup(a->mpi, &s->alloc_mpi));
    DURE_MPI_TRY(MPI_Comm_set_errhandler(s->alloc_mpi, MPI_ERRORS_RETURN));

    /* Non-contiguous: each rank's segment may start on its own pages (and
     * NUMA node, first touched by its owner). */
    DURE_MPI_TRY(MPI_Info_create(&info));
    DURE_MPI_TRY(MPI_Info_set(info, "alloc_shared_noncontig", "true"));
    MPI_Aint bytes = (MPI_Aint)(SHM_CTRL_BYTES + SHM_SLOTS * s->slot_bytes);
    DURE_MPI_TRY(MPI_Win_allocate_shared(bytes, 1, info, a->mpi, &base, &s->win));
    DURE_MPI_TRY(MPI_Win_lock_all(MPI_MODE_NOCHECK, s->win));
    s->locked = 1;
    memset(base, 0, (size_t)bytes);
    for (int j = 0; j < s->size; j++) {
        MPI_Aint seg_bytes = 0;
        int disp = 0;
        char *p = NULL;
        DURE_MPI_TRY(MPI_Win_shared_query(s->win, j, &seg_bytes, &disp, &p));
        DURE_CHECK(seg_bytes >= bytes, DURE_ERR_MPI,
                   "shm: rank %d's shared segment has %ld bytes, expected %ld", j,
                   (long)seg_bytes, (long)bytes);
        s->ctrl[j] = (struct shm_ctrl *)p;
        s->seg[j] = p + SHM_CTRL_BYTES;
    }
    DURE_MPI_TRY(MPI_Win_sync(s->win));
    DURE_MPI_TRY(MPI_Barrier(a->mpi));
    *out = s;
    s = NULL;
out:
    if (info != MPI_INFO_NULL) {
        MPI_Info_free(&info);
    }
    comm_shm_destroy(s);
    return st;
}

void comm_shm_destroy(struct comm_shm *s)
{
    if (!s) {
        return;
    }
    if (s->locked) {
        MPI_Win_unlock_all(s->win);
    }
    if (s->win != MPI_WIN_NULL) {
        MPI_Win_free(&s->win);
    }
    while (s->nregion > 0) {
        comm_shm_mem_free(s, s->region[0].base[s->rank]);
    }
    if (s->alloc_mpi != MPI_COMM_NULL) {
        MPI_Comm_free(&s->alloc_mpi);
    }
    free(s->region);
    free(s->peer_send);
    free(s->peer_recv);
    free(s->ref_send);
    free(s->ref_recv);
    free(s->src);
    free(s->sub);
    free(s->piece);
    free(s->seg);
    free(s->ctrl);
    free(s);
}
