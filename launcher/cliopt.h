/*
 * launcher/cliopt.h - one parser per kind of command-line value, one form of
 * message. Each function stores the value and returns 0, or prints
 *
 *     dure CMD: OPT 'TEXT' is not an integer in [LO, HI]
 *     dure CMD: OPT 'TEXT' is not a number in [LO, HI]     (">= LO" when HI
 *                                                           is infinite)
 *     dure CMD: OPT 'TEXT' is not a size (bytes, or with K, M, G)
 *
 * to stderr and returns -1; the caller prints its usage and exits with
 * DURE_EXIT_USAGE. Unbounded ranges (INT64_MIN..INT64_MAX, -inf..inf) drop
 * the range from the message. NaN and infinities are never numbers here, and
 * leading white space is refused (strtol and strtod would skip it).
 */
#ifndef DURE_LAUNCHER_CLIOPT_H
#define DURE_LAUNCHER_CLIOPT_H

#include <stddef.h>
#include <stdint.h>

int cli_i64(const char *cmd, const char *opt, const char *s, int64_t lo, int64_t hi,
            int64_t *out);
int cli_int(const char *cmd, const char *opt, const char *s, int lo, int hi, int *out);
int cli_f64(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);
/* A byte count > 0: digits with an optional binary K, M or G (comm_parse_bytes). */
int cli_size(const char *cmd, const char *opt, const char *s, size_t *out);

#endif
