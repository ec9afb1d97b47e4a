/*
 * launcher/watchdog_hook.h - what the launcher does when a collective hangs.
 *
 * Library code never exits: the collectives' watchdog only reports. The
 * launcher installs this hook (comm_config.on_hang) in every command that
 * creates a communicator, so a hang ends the whole job with one report and
 * the documented exit code DURE_EXIT_WATCHDOG.
 */
#ifndef DURE_LAUNCHER_WATCHDOG_HOOK_H
#define DURE_LAUNCHER_WATCHDOG_HOOK_H

#include "collectives/comm.h"

/* comm_hang_fn: print r->text and MPI_Abort(MPI_COMM_WORLD,
 * DURE_EXIT_WATCHDOG), which makes mpirun/srun kill every rank. Does not
 * return. `arg` is unused (pass NULL). */
void dure_watchdog_abort(const struct comm_hang_report *r, void *arg);

#endif
