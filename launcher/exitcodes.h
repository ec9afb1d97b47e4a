/*
 * launcher/exitcodes.h - the exit codes of `dure`, documented in README.md.
 * Batch scripts and `dure status` rely on these values: never renumber.
 */
#ifndef DURE_LAUNCHER_EXITCODES_H
#define DURE_LAUNCHER_EXITCODES_H

#include <stdio.h>

#include "common/status.h"

/* What each means is said once, in launcher/exitcodes.c (dure_exit_meaning),
 * and in the README's table. */
enum {
    DURE_EXIT_OK = 0,        /* success */
    DURE_EXIT_FAILURE = 1,   /* a runtime error (I/O, MPI, CUDA, ...) */
    DURE_EXIT_USAGE = 2,     /* unknown command or option, bad arguments */
    DURE_EXIT_CONFIG = 3,    /* the job spec or a --set override is invalid */
    DURE_EXIT_DATA = 4,      /* the dataset is missing, malformed or invalid */
    DURE_EXIT_NUMERIC = 5,   /* NaN or Inf loss or gradient */
    DURE_EXIT_NODEV = 6,     /* a GPU was required and none is visible */
    DURE_EXIT_NOMEM = 7,     /* memory for the run could not be allocated */
    DURE_EXIT_DIFFER = 8,    /* dure verify: metrics or checkpointed state not bitwise identical */
    DURE_EXIT_MANIFEST_DIFFER = 9, /* dure verify: bitwise identical numbers, manifests differ */
    DURE_EXIT_PREFLIGHT = 10, /* dure preflight: a node failed a check (named on stderr) */
    DURE_EXIT_UNHEALTHY = 11, /* dure tune: busbw fell against the baseline, or a slow link */
    DURE_EXIT_PREEMPTED = 75,/* stopped by signal, checkpoint saved: resume */
    DURE_EXIT_WATCHDOG = 124 /* a collective hung past the watchdog timeout */
};

/* What an exit code of dure means ("invalid job spec"); "failure" for a
 * code dure does not define. */
const char *dure_exit_meaning(int code);

/* "  CODE  MEANING" lines for codes[0..n), for a command's usage. */
void dure_exit_codes_print(FILE *out, const int *codes, int n);

/* Exit code for a failing library status (DURE_OK maps to 0). */
int dure_exit_code(dure_status_t st);

#endif
