/* launcher/exitcodes.c - from library status to process exit code. */
#include "launcher/exitcodes.h"

static const struct {
    int code;
    const char *meaning;
} exits[] = {
    {DURE_EXIT_OK, "success"},
    {DURE_EXIT_FAILURE, "runtime error (I/O, MPI, CUDA, ...)"},
    {DURE_EXIT_USAGE, "bad command line"},
    {DURE_EXIT_CONFIG, "invalid job spec"},
    {DURE_EXIT_DATA, "dataset missing or invalid"},
    {DURE_EXIT_NUMERIC, "NaN or Inf loss"},
    {DURE_EXIT_NODEV, "no GPU visible"},
    {DURE_EXIT_NOMEM, "out of memory"},
    {DURE_EXIT_DIFFER, "the runs' numbers differ"},
    {DURE_EXIT_MANIFEST_DIFFER, "the runs' manifests differ"},
    {DURE_EXIT_PREFLIGHT, "dure preflight: a node failed a check, named in the log"},
    {DURE_EXIT_UNHEALTHY, "dure tune: unhealthy (a busbw fell, or a slow node pair)"},
    {DURE_EXIT_PREEMPTED, "stopped by a signal, checkpoint saved"},
    {DURE_EXIT_WATCHDOG, "a collective hung past the watchdog"},
};

const char *dure_exit_meaning(int code)
{
    for (size_t i = 0; i < sizeof exits / sizeof exits[0]; i++) {
        if (exits[i].code == code) {
            return exits[i].meaning;
        }
    }
    return "failure";
}

void dure_exit_codes_print(FILE *out, const int *codes, int n)
{
    for (int i = 0; i < n; i++) {
        fprintf(out, "  %3d  %s\n", codes[i], dure_exit_meaning(codes[i]));
    }
}

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
