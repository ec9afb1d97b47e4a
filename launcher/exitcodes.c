/* launcher/exitcodes.c - from library status to process exit code. */
#include "launcher/exitcodes.h"

int dure_exit_code(dure_status_t st)
{
    switch (st) {
    case DURE_OK:
        return DURE_EXIT_OK;
    case DURE_ERR_ARG:
        return DURE_EXIT_CONFIG;
    case DURE_ERR_FORMAT:
        return DURE_EXIT_DATA;
    case DURE_ERR_NUMERIC:
        return DURE_EXIT_NUMERIC;
    case DURE_ERR_NODEV:
        return DURE_EXIT_NODEV;
    case DURE_ERR_NOMEM:
        return DURE_EXIT_NOMEM;
    case DURE_ERR_TIMEOUT:
        return DURE_EXIT_WATCHDOG;
    case DURE_ERR_INTERRUPTED:
        return DURE_EXIT_PREEMPTED;
    default:
        return DURE_EXIT_FAILURE;
    }
}
