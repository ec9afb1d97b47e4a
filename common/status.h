/*
 * common/status.h - dure's status codes, error log and check macros.
 *
 * Every library function that can fail returns dure_status_t. Callers check
 * it with the DURE_TRY family below, which log host, rank, file and line and
 * jump to the function's cleanup label. The convention inside a function:
 *
 *     dure_status_t st = DURE_OK;
 *     float *buf = NULL;
 *     DURE_TRY(thing_open(&t));
 *     DURE_SYS_TRY((buf = malloc(n)) != NULL, "malloc %zu bytes", n);
 *     ...
 * out:
 *     free(buf);
 *     return st;
 *
 * The macros expand to do { ... } while (0), so they never capture an else,
 * and they always `goto out`, never return past allocated memory. Only
 * launcher/ turns a status into an exit code.
 */
#ifndef DURE_COMMON_STATUS_H
#define DURE_COMMON_STATUS_H

#include <stdarg.h>
#include <stddef.h>

typedef enum {
    DURE_OK = 0,
    DURE_ERR_ARG,         /* bad argument or configuration value */
    DURE_ERR_IO,          /* a file or stream operation failed */
    DURE_ERR_FORMAT,      /* a file's contents are not what they must be */
    DURE_ERR_NOMEM,       /* an allocation failed */
    DURE_ERR_MPI,         /* an MPI call failed */
    DURE_ERR_HDF5,        /* an HDF5 call failed */
    DURE_ERR_CUDA,        /* a CUDA runtime or cuBLAS call failed */
    DURE_ERR_NCCL,        /* an NCCL call failed */
    DURE_ERR_NODEV,       /* no usable GPU is visible */
    DURE_ERR_TIMEOUT,     /* an operation did not finish in time */
    DURE_ERR_NUMERIC,     /* NaN or Inf where a finite value is required */
    DURE_ERR_UNSUPPORTED, /* valid request this build or input cannot serve */
    DURE_ERR_INTERRUPTED, /* stopped by a signal */
    DURE_ERR_INTERNAL,    /* a broken invariant: a bug in dure */
    DURE_STATUS_COUNT
} dure_status_t;

/* Short stable name of a status ("DURE_ERR_IO"); never NULL. */
const char *dure_status_name(dure_status_t st);

/* Identity used in log prefixes. rank < 0 means "not known yet". */
void dure_log_set_rank(int rank);
int dure_log_rank(void);

/* Silence (quiet = 1) or restore error output; tests of failure paths use it. */
void dure_log_set_quiet(int quiet);

/*
 * Log an error as "dure: error [host rank R] file:line: message" on stderr.
 * Thread-safe; one write per message so ranks do not interleave mid-line.
 */
void dure_log_error(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void dure_log_verror(const char *file, int line, const char *fmt, va_list ap);

/* Same prefix, "warning" instead of "error". */
void dure_log_warn(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The text of the most recent error logged by this thread (without prefix);
 * tests use it to check that a failure names the right file, key or value.
 */
const char *dure_last_error(void);

/* Propagate a failing status from a dure call; the callee already logged why. */
#define DURE_TRY(expr)                                                        \
    do {                                                                      \
        st = (expr);                                                          \
        if (st != DURE_OK) {                                                  \
            goto out;                                                         \
        }                                                                     \
    } while (0)

/* Fail with a status and a formatted message. */
#define DURE_FAIL(code, ...)                                                  \
    do {                                                                      \
        st = (code);                                                          \
        dure_log_error(__FILE__, __LINE__, __VA_ARGS__);                      \
        goto out;                                                             \
    } while (0)

/* Fail with `code` unless `cond` holds. */
#define DURE_CHECK(cond, code, ...)                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            DURE_FAIL((code), __VA_ARGS__);                                   \
        }                                                                     \
    } while (0)

/* A libc call: `cond` false means failure, errno says why. */
#define DURE_SYS_TRY(cond, ...)                                               \
    do {                                                                      \
        if (!(cond)) {                                                        \
            dure_log_syserr(__FILE__, __LINE__, __VA_ARGS__);                 \
            st = DURE_ERR_IO;                                                 \
            goto out;                                                         \
        }                                                                     \
    } while (0)

/* An allocation: NULL means DURE_ERR_NOMEM. */
#define DURE_ALLOC_TRY(ptr, bytes)                                            \
    do {                                                                      \
        if ((ptr) == NULL) {                                                  \
            st = DURE_ERR_NOMEM;                                              \
            dure_log_error(__FILE__, __LINE__,                                \
                           "out of memory allocating %zu bytes for %s",       \
                           (size_t)(bytes), #ptr);                            \
            goto out;                                                         \
        }                                                                     \
    } while (0)

/* Log "message: strerror(errno)". */
void dure_log_syserr(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
