/* common/status.c - status names and the rank-aware error log. */
#include "common/status.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/mpi_check.h"

/* Set by the main thread, read by whichever thread logs (the
 * communication, watchdog and checkpoint threads log their failures). */
static atomic_int log_rank = -1;
static atomic_int log_quiet;
static _Thread_local char last_error[1024];

static const char *const status_names[DURE_STATUS_COUNT] = {
    [DURE_OK] = "DURE_OK",
    [DURE_ERR_ARG] = "DURE_ERR_ARG",
    [DURE_ERR_IO] = "DURE_ERR_IO",
    [DURE_ERR_FORMAT] = "DURE_ERR_FORMAT",
    [DURE_ERR_NOMEM] = "DURE_ERR_NOMEM",
    [DURE_ERR_MPI] = "DURE_ERR_MPI",
    [DURE_ERR_HDF5] = "DURE_ERR_HDF5",
    [DURE_ERR_CUDA] = "DURE_ERR_CUDA",
    [DURE_ERR_NCCL] = "DURE_ERR_NCCL",
    [DURE_ERR_NODEV] = "DURE_ERR_NODEV",
    [DURE_ERR_TIMEOUT] = "DURE_ERR_TIMEOUT",
    [DURE_ERR_NUMERIC] = "DURE_ERR_NUMERIC",
    [DURE_ERR_UNSUPPORTED] = "DURE_ERR_UNSUPPORTED",
    [DURE_ERR_INTERRUPTED] = "DURE_ERR_INTERRUPTED",
    [DURE_ERR_INTERNAL] = "DURE_ERR_INTERNAL",
};

const char *dure_status_name(dure_status_t st)
{
    if ((int)st < 0 || st >= DURE_STATUS_COUNT) {
        return "DURE_ERR_UNKNOWN";
    }
    return status_names[st];
}

void dure_log_set_rank(int rank) { atomic_store_explicit(&log_rank, rank, memory_order_relaxed); }
int dure_log_rank(void) { return atomic_load_explicit(&log_rank, memory_order_relaxed); }
void dure_log_set_quiet(int quiet)
{
    atomic_store_explicit(&log_quiet, quiet, memory_order_relaxed);
}
const char *dure_last_error(void) { return last_error; }

static void log_emit(const char *level, const char *file, int line,
                     const char *msg)
{
    char host[64] = "?";
    char rank[32] = "";
    char buf[1400];

    if (atomic_load_explicit(&log_quiet, memory_order_relaxed)) {
        return;
    }
    if (gethostname(host, sizeof host) != 0) {
        snprintf(host, sizeof host, "?");
    }
    host[sizeof host - 1] = '\0';
    const int r = dure_log_rank();
    if (r >= 0) {
        snprintf(rank, sizeof rank, " rank %d", r);
    }
    int n = snprintf(buf, sizeof buf, "dure: %s [%s%s] %s:%d: %s\n", level,
                     host, rank, file, line, msg);
    if (n < 0) {
        return;
    }
    size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    /* One write(2) per message so that lines from ranks do not interleave. */
    ssize_t w = write(STDERR_FILENO, buf, len);
    (void)w;
}

void dure_log_verror(const char *file, int line, const char *fmt, va_list ap)
{
    /* Formatted apart first: an argument may be dure_last_error() itself
     * (a message that wraps the one before it). */
    char msg[sizeof last_error];
    vsnprintf(msg, sizeof msg, fmt, ap);
    memcpy(last_error, msg, sizeof msg);
    log_emit("error", file, line, last_error);
}

void dure_log_error(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dure_log_verror(file, line, fmt, ap);
    va_end(ap);
}

void dure_log_warn(const char *file, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_emit("warning", file, line, msg);
}

void dure_log_syserr(const char *file, int line, const char *fmt, ...)
{
    int saved = errno;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dure_log_error(file, line, "%s: %s", msg, strerror(saved));
}

void dure_log_mpi_error(const char *file, int line, const char *what, int rc)
{
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) {
        snprintf(msg, sizeof msg, "MPI error code %d", rc);
    }
    dure_log_error(file, line, "%s failed: %s", what, msg);
}
