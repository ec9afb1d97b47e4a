/*
 * collectives/comm_priv.h - the communicator's insides, shared by its three
 * files (internal):
 *   comm.c        lifetime and dispatch: the backend from the registry, the
 *                 algorithm table, argument checks, sequence numbers, the
 *                 watchdog's hook-up, memory
 *   comm_queue.c  asynchronous operations: the request pool, the queue and
 *                 its communication thread, wait and test
 *   comm_forms.c  the public collective forms, each turned into a comm_op
 */
#ifndef DURE_COLLECTIVES_COMM_PRIV_H
#define DURE_COLLECTIVES_COMM_PRIV_H

#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "collectives/backend.h"
#include "collectives/comm.h"
#include "collectives/watchdog.h"

enum { REQ_FREE, REQ_QUEUED, REQ_STARTED, REQ_DONE };

struct comm_req {
    struct comm_op op;
    size_t bytes;              /* bytes of the vector on this rank, for the watchdog */
    int state;                 /* REQ_*, under comm_queue.mu */
    dure_status_t st;
    void *handle;              /* the backend's, for async backends */
    struct comm_req *next_free;
};

/* Everything here is under mu. */
struct comm_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv_work;    /* the queue got work, or stop */
    pthread_cond_t cv_done;    /* an op finished */
    struct comm_req *reqs;     /* pool[nreqs]; one more than max_inflight, for a blocking call */
    int nreqs;
    int inflight;              /* started, not yet waited */
    struct comm_req *free_list;
    struct comm_req **ring;    /* ring[nreqs] of queued ops, FIFO */
    int head, len;
    int busy;                  /* an op is executing, on the thread or the caller */
    int stop;
    pthread_t thread;
    clockid_t thread_clock;    /* the thread's CPU-time clock (comm_thread_cpu_s) */
    int thread_started;
    int caller_runs;           /* no thread: waits run the FIFO (comm.h) */
};

struct comm {
    MPI_Comm mpi;              /* private duplicate: only the executor uses it */
    MPI_Comm ctl;              /* second duplicate for setup-time agreements */
    int rank, size, local_rank, local_size, nodes;
    int uniform;               /* comm_hier_placement: hier is possible */
    struct comm_config cfg;
    char *table_text;          /* owned copy of cfg.algo_table */
    struct comm_algo_table table;
    const struct comm_backend_entry *backend;
    const struct comm_backend_i *iface;
    void *ctx;
    struct comm_watchdog *wd;
    atomic_int cancel;         /* the watchdog gave up on the running op */
    uint64_t seq;
    /* Sticky: the first failure of a collective (a dure_status_t), set by
     * comm_break on whichever thread ran it and read by the caller's next
     * issue without the queue lock: atomic. */
    atomic_int broken;
    struct comm_queue q;
};

/* comm.c: check, number and place op, then run it (req NULL) or start it. */
dure_status_t comm_issue(comm_t *c, struct comm_op *op, comm_req_t **req);
/* comm.c: run one op to completion on the calling thread, under the watchdog. */
dure_status_t comm_exec(comm_t *c, const struct comm_op *op, size_t bytes);
/* comm.c: the name the watchdog reports for op's algorithm. */
const char *comm_op_algo_name(const comm_t *c, const struct comm_op *op);
/* comm.c: remember the first failure (any thread); later calls return it. */
void comm_break(comm_t *c, dure_status_t st);

/* comm_queue.c: the lock and the pool of `max_inflight` + 1 requests; first
 * thing after the comm is allocated (comm_queue_free undoes it). */
dure_status_t comm_queue_init(comm_t *c, int max_inflight);
/* comm_queue.c: start the communication thread, unless the backend is async. */
dure_status_t comm_queue_start(comm_t *c);
/* comm_queue.c: stop the thread: joined, or after a hang (`hung`) left
 * running. Returns 0 when it may still be inside a collective: nothing it
 * can touch may then be freed. */
int comm_queue_stop(comm_t *c, int hung);
/* comm_queue.c: free the lock and the pool (the thread is stopped). */
void comm_queue_free(comm_t *c);
/* comm_queue.c: run op (req NULL: to completion, behind pending work) or
 * start it and return *req. */
dure_status_t comm_queue_submit(comm_t *c, const struct comm_op *op, size_t bytes,
                                comm_req_t **req);

#endif
