/* collectives/watchdog.c - see watchdog.h. */
#include "collectives/watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collectives/heartbeat.h"
#include "common/mpi_check.h"

/* One rank's line on the board; a cache line each so writers do not share. */
struct board_slot {
    _Atomic uint64_t joined;   /* seq of the last collective this rank began */
    int32_t pid;
    int32_t rank;              /* rank in the comm's communicator */
    char pad[48];
};

struct comm_watchdog {
    double timeout_s;
    comm_watchdog_fire_fn fire;
    void *arg;
    int rank, size;

    struct comm_heartbeat *hb; /* the side channel: every rank's progress and host */
    struct comm_hang_missing *miss; /* [size] scratch of the report */

    MPI_Comm node;             /* the ranks of this comm on this node */
    MPI_Win win;
    struct board_slot *board;  /* board[local_size], in the shared window */
    int local_rank, local_size;

    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    int fired;
    /* the running collective or setup step, under mu */
    int active;
    struct timespec t0;
    const char *setup;         /* the setup step's name, or NULL for a collective */
    enum comm_coll coll;
    uint64_t seq;
    size_t bytes;
    const char *algo;
};

static double elapsed_s(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + 1e-9 * (double)(now.tv_nsec - t0->tv_nsec);
}

const char *comm_peer_state_name(enum comm_peer_state s)
{
    switch (s) {
    case COMM_PEER_BEHIND:
        return "behind";
    case COMM_PEER_SILENT:
        return "silent";
    case COMM_PEER_GONE:
        return "gone";
    case COMM_PEER_STOPPED:
        return "stopped";
    }
    return "?";
}

/* A process of this node: gone, stopped (SIGSTOP), or running. */
static enum comm_peer_state local_state(pid_t pid)
{
    char path[64], buf[256];
    if (kill(pid, 0) != 0 && errno == ESRCH) {
        return COMM_PEER_GONE;
    }
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f) {
        return COMM_PEER_BEHIND;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "pid (comm) S ...": the state follows the last ')'. */
    const char *close = strrchr(buf, ')');
    return close && close[1] == ' ' && (close[2] == 'T' || close[2] == 't') ? COMM_PEER_STOPPED
                                                                           : COMM_PEER_BEHIND;
}

/*
 * Fill miss[] with every rank that has not begun `seq`, or began it and
 * cannot finish it (stopped, gone, silent): those on this node from the
 * board (their process state read directly), the others from the side
 * channel. Returns how many.
 */
static int find_missing(struct comm_watchdog *w, uint64_t seq, struct comm_hang_missing *miss)
{
    int n = 0;
    /* A peer unheard for this long is not running. */
    double silent_after = 3.0 * comm_heartbeat_period(w->hb);
    for (int r = 0; r < w->size; r++) {
        struct comm_peer peer;
        const struct board_slot *slot = NULL;
        if (r == w->rank) {
            continue;
        }
        for (int i = 0; i < w->local_size; i++) {
            if (w->board[i].rank == r) {
                slot = &w->board[i];
            }
        }
        comm_heartbeat_peer(w->hb, r, &peer);
        struct comm_hang_missing m = {.rank = r, .host = peer.host, .joined = peer.joined};
        if (slot) {
            m.joined = atomic_load_explicit(&slot->joined, memory_order_acquire);
            m.state = local_state((pid_t)slot->pid);
        } else {
            m.state = peer.silent_s > silent_after ? COMM_PEER_SILENT : COMM_PEER_BEHIND;
            m.silent_s = peer.silent_s;
        }
        /* A rank that joined but was stopped, died or fell silent inside
         * the operation cannot finish it either: named too, its last
         * joined seq being this one. */
        if (m.joined < seq || m.state != COMM_PEER_BEHIND) {
            miss[n++] = m;
        }
    }
    return n;
}

/* Append "rank R on HOST (why; last joined seq J)" items to buf. */
static void describe_missing(const struct comm_hang_missing *miss, int n, char *buf, size_t len)
{
    size_t used = strlen(buf);
    for (int i = 0; i < n && used < len; i++) {
        const struct comm_hang_missing *m = &miss[i];
        char why[96];
        switch (m->state) {
        case COMM_PEER_SILENT:
            snprintf(why, sizeof why, "silent for %.1f s: dead, stopped, or cut off", m->silent_s);
            break;
        case COMM_PEER_GONE:
            snprintf(why, sizeof why, "process gone");
            break;
        case COMM_PEER_STOPPED:
            snprintf(why, sizeof why, "process stopped");
            break;
        case COMM_PEER_BEHIND:
            snprintf(why, sizeof why, "alive, still at an earlier collective");
            break;
        }
        int k = snprintf(buf + used, len - used, "%srank %d on %s (%s; last joined seq %llu)",
                         i ? ", " : "", m->rank, m->host, why, (unsigned long long)m->joined);
        if (k < 0) {
            break;
        }
        used += (size_t)k;
    }
}

static void report(struct comm_watchdog *w, const char *setup, enum comm_coll coll,
                   uint64_t seq, size_t bytes, const char *algo, double waited)
{
    char missing[2048] = "";
    char text[2600];
    struct comm_peer me;
    int n_missing = setup ? 0 : find_missing(w, seq, w->miss);
    comm_heartbeat_peer(w->hb, w->rank, &me);
    describe_missing(w->miss, n_missing, missing, sizeof missing);
    if (setup) {
        /* No sequence number yet: which ranks began it is not known. */
        snprintf(text, sizeof text,
                 "collective hang: rank %d of %d on %s: %s (backend %s) did not complete in "
                 "%.1f s",
                 w->rank, w->size, me.host, setup, algo, waited);
    } else if (n_missing > 0) {
        snprintf(text, sizeof text,
                 "collective hang: rank %d of %d on %s: %s seq %llu (%zu bytes, algo %s) did "
                 "not complete in %.1f s; not joined: %s",
                 w->rank, w->size, me.host, comm_coll_name(coll), (unsigned long long)seq,
                 bytes, algo, waited, missing);
    } else {
        snprintf(text, sizeof text,
                 "collective hang: rank %d of %d on %s: %s seq %llu (%zu bytes, algo %s) did "
                 "not complete in %.1f s; every rank joined it (a link or the transport is "
                 "stuck)",
                 w->rank, w->size, me.host, comm_coll_name(coll), (unsigned long long)seq,
                 bytes, algo, waited);
    }
    struct comm_hang_report r = {
        .rank = w->rank,
        .size = w->size,
        .host = me.host,
        .op = setup ? setup : comm_coll_name(coll),
        .algo = algo,
        .seq = seq,
        .bytes = bytes,
        .waited_s = waited,
        .missing_known = !setup,
        .missing = w->miss,
        .n_missing = n_missing,
        .text = text,
    };
    w->fire(&r, w->arg);
}

static void *watchdog_main(void *arg)
{
    struct comm_watchdog *w = arg;
    double period = w->timeout_s / 20.0;
    period = period < 0.01 ? 0.01 : period > 1.0 ? 1.0 : period;

    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        long ns = until.tv_nsec + (long)(period * 1e9);
        until.tv_sec += ns / 1000000000L;
        until.tv_nsec = ns % 1000000000L;
        pthread_cond_timedwait(&w->cv, &w->mu, &until);
        if (w->stop || w->fired || !w->active) {
            continue;
        }
        double waited = elapsed_s(&w->t0);
        if (waited < w->timeout_s) {
            continue;
        }
        w->fired = 1;
        const char *setup = w->setup;
        enum comm_coll coll = w->coll;
        uint64_t seq = w->seq;
        size_t bytes = w->bytes;
        const char *algo = w->algo;
        pthread_mutex_unlock(&w->mu);
        report(w, setup, coll, seq, bytes, algo, waited);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

dure_status_t comm_watchdog_create(MPI_Comm mpi, double timeout_s, comm_watchdog_fire_fn fire,
                                   void *arg, struct comm_watchdog **out)
{
    dure_status_t st = DURE_OK;
    struct comm_watchdog *w = NULL;
    struct board_slot *mine = NULL;
    MPI_Aint seg = 0;
    int disp = 0;

    *out = NULL;
    if (timeout_s <= 0) {
        return DURE_OK;
    }
    w = calloc(1, sizeof *w);
    DURE_ALLOC_TRY(w, sizeof *w);
    w->timeout_s = timeout_s;
    w->fire = fire;
    w->arg = arg;
    w->node = MPI_COMM_NULL;
    w->win = MPI_WIN_NULL;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);

    DURE_MPI_TRY(MPI_Comm_rank(mpi, &w->rank));
    DURE_MPI_TRY(MPI_Comm_size(mpi, &w->size));
    DURE_MPI_TRY(MPI_Comm_split_type(mpi, MPI_COMM_TYPE_SHARED, w->rank, MPI_INFO_NULL,
                                     &w->node));
    DURE_MPI_TRY(MPI_Comm_set_errhandler(w->node, MPI_ERRORS_RETURN));
    DURE_MPI_TRY(MPI_Comm_rank(w->node, &w->local_rank));
    DURE_MPI_TRY(MPI_Comm_size(w->node, &w->local_size));
    DURE_MPI_TRY(MPI_Win_allocate_shared((MPI_Aint)sizeof(struct board_slot), 1, MPI_INFO_NULL,
                                         w->node, &mine, &w->win));
    /* Default allocation is contiguous: rank 0's base addresses every slot. */
    DURE_MPI_TRY(MPI_Win_shared_query(w->win, 0, &seg, &disp, &w->board));
    atomic_store_explicit(&mine->joined, 0, memory_order_relaxed);
    mine->pid = (int32_t)getpid();
    mine->rank = w->rank;
    DURE_MPI_TRY(MPI_Barrier(w->node));
    w->miss = calloc((size_t)w->size, sizeof *w->miss);
    DURE_ALLOC_TRY(w->miss, (size_t)w->size * sizeof *w->miss);
    /* A period a tenth of the timeout: a dead peer has missed several beats
     * by the time a collective waiting on it times out. */
    DURE_TRY(comm_heartbeat_create(mpi, timeout_s / 10.0, &w->hb));

    DURE_CHECK(pthread_create(&w->thread, NULL, watchdog_main, w) == 0, DURE_ERR_INTERNAL,
               "cannot start the watchdog thread");
    w->thread_started = 1;
    *out = w;
    w = NULL;
out:
    comm_watchdog_destroy(w, 1);
    return st;
}

void comm_watchdog_begin(struct comm_watchdog *w, const struct comm_op *op, size_t bytes,
                         const char *algo)
{
    if (!w) {
        return;
    }
    atomic_store_explicit(&w->board[w->local_rank].joined, op->seq, memory_order_release);
    comm_heartbeat_joined(w->hb, op->seq);
    pthread_mutex_lock(&w->mu);
    w->active = 1;
    clock_gettime(CLOCK_MONOTONIC, &w->t0);
    w->setup = NULL;
    w->coll = op->coll;
    w->seq = op->seq;
    w->bytes = bytes;
    w->algo = algo;
    pthread_mutex_unlock(&w->mu);
}

void comm_watchdog_begin_setup(struct comm_watchdog *w, const char *what, const char *backend)
{
    if (!w) {
        return;
    }
    pthread_mutex_lock(&w->mu);
    w->active = 1;
    clock_gettime(CLOCK_MONOTONIC, &w->t0);
    w->setup = what;
    w->seq = 0;
    w->bytes = 0;
    w->algo = backend;
    pthread_mutex_unlock(&w->mu);
}

void comm_watchdog_end(struct comm_watchdog *w)
{
    if (!w) {
        return;
    }
    pthread_mutex_lock(&w->mu);
    w->active = 0;
    pthread_mutex_unlock(&w->mu);
}

void comm_watchdog_stop(struct comm_watchdog *w)
{
    if (!w || !w->thread_started) {
        return;
    }
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    w->thread_started = 0;
}

void comm_watchdog_destroy(struct comm_watchdog *w, int collective)
{
    if (!w) {
        return;
    }
    comm_watchdog_stop(w);
    comm_heartbeat_destroy(w->hb);
    free(w->miss);
    if (collective) {
        if (w->win != MPI_WIN_NULL) {
            MPI_Win_free(&w->win);
        }
        if (w->node != MPI_COMM_NULL) {
            MPI_Comm_free(&w->node);
        }
    }
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
