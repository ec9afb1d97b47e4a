/*
 * dataio/inspect.h - `dure data inspect`: describe a dataset, list every
 * problem found.
 *
 * The layout is detected from the file unless given. For the dure layout
 * every rule of FORMAT.md is checked on its own, so one problem does not
 * hide the next; robomimic and episode-files sets are checked by opening
 * them with their reader. Unless `quick`, all data are streamed
 * once to find NaN/Inf values and to compare stored statistics with fresh
 * ones.
 */
#ifndef DURE_DATAIO_INSPECT_H
#define DURE_DATAIO_INSPECT_H

#include <stdint.h>
#include <stdio.h>

#include "common/status.h"
#include "dataio/reader.h"

struct dataio_inspect_config {
    const char *path;
    dataio_layout_t layout; /* AUTO: detected (dataio_layout_detect) */
    const char *keys;      /* robomimic/episode-files channel keys, as in the loader */
    int64_t window;        /* report episodes shorter than this (0 = skip) */
    int quick;             /* 1 = metadata only, no pass over the data */
};

/*
 * Write the report to out and the number of problems to *problems.
 * Returns a failing status (logged) only when the file cannot be examined
 * at all (missing, not HDF5, truncated); problems inside a readable file
 * are counted and printed, not returned.
 */
dure_status_t dataio_inspect(const struct dataio_inspect_config *cfg, FILE *out,
                             int *problems);

#endif
