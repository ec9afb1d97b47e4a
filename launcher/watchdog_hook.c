/* launcher/watchdog_hook.c - see watchdog_hook.h. */
#include "launcher/watchdog_hook.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launcher/exitcodes.h"

void dure_watchdog_abort(const struct comm_hang_report *r, void *arg)
{
    char line[1200];
    (void)arg;
    /* The collective already logged the report; this line says what happens next. */
    int n = snprintf(line, sizeof line,
                     "dure: watchdog: rank %d aborting the job (exit code %d) after %s seq %llu "
                     "hung for %.1f s\n",
                     r->rank, DURE_EXIT_WATCHDOG, r->op, (unsigned long long)r->seq,
                     r->waited_s);
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, line, strlen(line));
        (void)w;
    }
    MPI_Abort(MPI_COMM_WORLD, DURE_EXIT_WATCHDOG);
    /* MPI_Abort does not return; if an MPI ever did, still end with the code. */
    _exit(DURE_EXIT_WATCHDOG);
}
