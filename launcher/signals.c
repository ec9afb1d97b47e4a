/* launcher/signals.c - stop requests by signal; see signals.h. */
#include "launcher/signals.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t pending;

static void on_signal(int sig)
{
    if (!pending) {
        pending = sig;
    }
}

dure_status_t dure_signals_install(void)
{
    dure_status_t st = DURE_OK;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    DURE_SYS_TRY(sigemptyset(&sa.sa_mask) == 0, "sigemptyset");
    DURE_SYS_TRY(sigaction(SIGUSR2, &sa, NULL) == 0, "cannot handle SIGUSR2");
    DURE_SYS_TRY(sigaction(SIGTERM, &sa, NULL) == 0, "cannot handle SIGTERM");
    pending = 0;
out:
    return st;
}

int dure_signals_pending(void) { return pending; }

void dure_signals_restore(void)
{
    signal(SIGUSR2, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
}
