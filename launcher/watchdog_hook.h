/*
 * launcher/watchdog_hook.h - what the launcher does when a collective hangs.
 *
 * Library code never exits: the collectives' watchdog only reports. The
 * launcher installs this hook (comm_config.on_hang) in every command that
 * creates a communicator, so a hang ends the whole job with one report and
 * the documented exit code DURE_EXIT_WATCHDOG. `dure run` also has every
 * survivor leave a failure record in the run directory (train/failure.h).
 */
#ifndef DURE_LAUNCHER_WATCHDOG_HOOK_H
#define DURE_LAUNCHER_WATCHDOG_HOOK_H

#include "collectives/comm.h"

/*
 * comm_hang_fn: write the failure record (when dure_watchdog_record_to was
 * called), print what happens next, and MPI_Abort(MPI_COMM_WORLD,
 * DURE_EXIT_WATCHDOG), which makes mpirun/srun kill every rank. Does not
 * return: should MPI_Abort not end the process within 2 s (a launcher
 * waiting on a dead node), the process exits 124 by itself, so every
 * survivor is gone within the watchdog timeout plus a few seconds. `arg` is
 * unused (pass NULL).
 */
void dure_watchdog_abort(const struct comm_hang_report *r, void *arg);

/* From now on a hang is recorded in run_dir/failures/launch-<launch>/
 * (copied). Call once the launch is known. */
void dure_watchdog_record_to(const char *run_dir, int launch);

/* The step in progress (steps done + 1), for the record; cheap, any thread. */
void dure_watchdog_step(long step);

#endif
