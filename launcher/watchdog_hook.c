/* launcher/watchdog_hook.c - see watchdog_hook.h. */
#include "launcher/watchdog_hook.h"

#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "launcher/exitcodes.h"
#include "train/failure.h"

/* How long MPI_Abort may take before the process ends itself. */
#define ABORT_GRACE_S 2

static char record_dir[PATH_MAX];
static int record_launch;
static atomic_long current_step;

void dure_watchdog_record_to(const char *run_dir, int launch)
{
    snprintf(record_dir, sizeof record_dir, "%s", run_dir);
    record_launch = launch;
}

void dure_watchdog_step(long step)
{
    atomic_store_explicit(&current_step, step, memory_order_relaxed);
}

static void say(const char *line)
{
    ssize_t w = write(STDERR_FILENO, line, strlen(line));
    (void)w;
}

/* Ends the process if MPI_Abort has not within ABORT_GRACE_S. */
static void *abort_guard(void *arg)
{
    (void)arg;
    struct timespec t = {ABORT_GRACE_S, 0};
    while (nanosleep(&t, &t) != 0) {
    }
    say("dure: watchdog: MPI_Abort did not end this rank: exiting 124 by itself\n");
    _exit(DURE_EXIT_WATCHDOG);
}

void dure_watchdog_abort(const struct comm_hang_report *r, void *arg)
{
    char line[PATH_MAX + 256];
    pthread_t guard;
    (void)arg;
    if (record_dir[0]) {
        long step = atomic_load_explicit(&current_step, memory_order_relaxed);
        if (failure_record_write(record_dir, record_launch, step, r, DURE_EXIT_WATCHDOG) ==
            DURE_OK) {
            snprintf(line, sizeof line,
                     "dure: watchdog: rank %d recorded the failure in "
                     "%s/failures/launch-%d/rank-%d.json\n",
                     r->rank, record_dir, record_launch, r->rank);
            say(line);
        }
    }
    /* The collective already logged the report; this line says what happens next. */
    snprintf(line, sizeof line,
             "dure: watchdog: rank %d aborting the job (exit code %d) after %s seq %llu "
             "hung for %.1f s\n",
             r->rank, DURE_EXIT_WATCHDOG, r->op, (unsigned long long)r->seq, r->waited_s);
    say(line);
    if (pthread_create(&guard, NULL, abort_guard, NULL) != 0) {
        _exit(DURE_EXIT_WATCHDOG);
    }
    MPI_Abort(MPI_COMM_WORLD, DURE_EXIT_WATCHDOG);
    /* MPI_Abort does not return; if an MPI ever did, still end with the code. */
    _exit(DURE_EXIT_WATCHDOG);
}
