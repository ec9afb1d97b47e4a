/*
 * launcher/cliopt.c - command-line values: see cliopt.h.
 */
#include "launcher/cliopt.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "collectives/comm.h"

int cli_i64(const char *cmd, const char *opt, const char *s, int64_t lo, int64_t hi,
            int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!errno && end != s && !*end && !isspace((unsigned char)*s) && v >= lo && v <= hi) {
        *out = v;
        return 0;
    }
    if (lo == INT64_MIN && hi == INT64_MAX) {
        fprintf(stderr, "dure %s: %s '%s' is not an integer\n", cmd, opt, s);
    } else {
        fprintf(stderr, "dure %s: %s '%s' is not an integer in [%" PRId64 ", %" PRId64 "]\n", cmd,
                opt, s, lo, hi);
    }
    return -1;
}

int cli_int(const char *cmd, const char *opt, const char *s, int lo, int hi, int *out)
{
    int64_t v = 0;
    if (cli_i64(cmd, opt, s, lo, hi, &v) != 0) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cli_f64(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!errno && end != s && !*end && !isspace((unsigned char)*s) && isfinite(v) && v >= lo &&
        v <= hi) {
        *out = v;
        return 0;
    }
    if (isinf(lo) && isinf(hi)) {
        fprintf(stderr, "dure %s: %s '%s' is not a number\n", cmd, opt, s);
    } else if (isinf(hi)) {
        fprintf(stderr, "dure %s: %s '%s' is not a number >= %g\n", cmd, opt, s, lo);
    } else {
        fprintf(stderr, "dure %s: %s '%s' is not a number in [%g, %g]\n", cmd, opt, s, lo, hi);
    }
    return -1;
}

int cli_size(const char *cmd, const char *opt, const char *s, size_t *out)
{
    size_t v = 0;
    if (comm_parse_bytes(s, &v) == 0 && v > 0) {
        *out = v;
        return 0;
    }
    fprintf(stderr, "dure %s: %s '%s' is not a size (bytes, or with K, M, G)\n", cmd, opt, s);
    return -1;
}
