/*
 * collectives/watchdog.h - the hang watchdog of a communicator (internal).
 *
 * The executor of collectives brackets each one with begin/end. A thread of
 * the watchdog's own checks the running collective every period; one that
 * runs longer than the timeout is reported once, through `fire`. Which ranks
 * have not joined, and why: on this node from a board in a node-local MPI-3
 * shared window (every rank writes there the sequence number of the
 * collective it last began, and its pid, so a rank that stalls before the
 * collective, died (kill -9) or was stopped shows up by name and state); on
 * other nodes from the heartbeat side channel (heartbeat.h), which also
 * tells a silent peer (dead, stopped, node down, link cut) from one that is
 * alive but behind, and gives every rank's host name.
 */
#ifndef DURE_COLLECTIVES_WATCHDOG_H
#define DURE_COLLECTIVES_WATCHDOG_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "collectives/backend.h"
#include "collectives/comm.h"

struct comm_watchdog;

/* Called once on the watchdog thread with the filled report. */
typedef void (*comm_watchdog_fire_fn)(const struct comm_hang_report *r, void *arg);

/*
 * Create the board (collective over mpi) and, when timeout_s > 0, start the
 * watchdog thread. With timeout_s <= 0 *out is NULL and begin/end are no-ops.
 */
dure_status_t comm_watchdog_create(MPI_Comm mpi, double timeout_s, comm_watchdog_fire_fn fire,
                                   void *arg, struct comm_watchdog **out);

/* The collective `op` (seq, kind, bytes on this rank) begins / ends on this
 * rank. Called by whichever thread executes it; cheap (one mutex). */
void comm_watchdog_begin(struct comm_watchdog *w, const struct comm_op *op, size_t bytes,
                         const char *algo);
/* The comm's setup step `what` (its backend's construction, which may wait
 * for peers: ncclCommInitRank) begins on this rank, under the same timeout;
 * the report names the step and the backend. */
void comm_watchdog_begin_setup(struct comm_watchdog *w, const char *what, const char *backend);
void comm_watchdog_end(struct comm_watchdog *w);

/* Stop the thread and free. `collective` = 0 after a hang: free local
 * memory only, since the peers may be gone. NULL is a no-op. */
void comm_watchdog_destroy(struct comm_watchdog *w, int collective);

/* Stop the thread only (no report after it) and leave w allocated: after a
 * hang whose collective is still stuck on a detached thread, that thread
 * calls comm_watchdog_end (and begin, for what it ran next) when the
 * collective returns. NULL is a no-op. */
void comm_watchdog_stop(struct comm_watchdog *w);

#endif
