/*
 * launcher/signals.h - SIGUSR2 and SIGTERM as a request to stop cleanly.
 *
 * Slurm sends SIGUSR2 before preemption or the time limit (--signal=USR2@N;
 * USR2 because NCCL may catch USR1) and SIGTERM when it cancels or preempts.
 * The handler only records the signal; the training loop reads the flag
 * once per step and all ranks agree on it (an all-reduce of the flag), so
 * every rank stops at the same step boundary, writes its checkpoint shard
 * and exits with DURE_EXIT_PREEMPTED.
 */
#ifndef DURE_LAUNCHER_SIGNALS_H
#define DURE_LAUNCHER_SIGNALS_H

#include "common/status.h"

/* Install the handlers (SA_RESTART, so interrupted I/O is retried). */
dure_status_t dure_signals_install(void);

/* The signal number received since install (first one wins), or 0. */
int dure_signals_pending(void);

/* Restore the default dispositions. */
void dure_signals_restore(void);

#endif
