/* launcher/signals.c - stop requests by signal; see signals.h. */
#include "launcher/signals.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>

/* The first stop signal; the handler may run on any of the process's
 * threads and the training loop reads it on its own: a lock-free atomic
 * (async-signal-safe), set once by compare-exchange. */
static atomic_int pending;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "a signal handler needs a lock-free atomic int");

static void on_signal(int sig)
{
    int none = 0;
    atomic_compare_exchange_strong(&pending, &none, sig);
}

dure_status_t dure_signals_install(void)
{
    dure_status_t st = DURE_OK;
    struct sigaction sa;
    atomic_store(&pending, 0); /* before the handlers: a signal from here on counts */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    DURE_SYS_TRY(sigemptyset(&sa.sa_mask) == 0, "sigemptyset");
    DURE_SYS_TRY(sigaction(SIGUSR2, &sa, NULL) == 0, "cannot handle SIGUSR2");
    DURE_SYS_TRY(sigaction(SIGTERM, &sa, NULL) == 0, "cannot handle SIGTERM");
out:
    return st;
}

int dure_signals_pending(void) { return atomic_load(&pending); }

void dure_signals_restore(void)
{
    signal(SIGUSR2, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
}
