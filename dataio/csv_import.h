/*
 * dataio/csv_import.h - `dure data import`: CSV logs into the dure format,
 * with anonymization of identifying columns.
 *
 * Input: one or more CSV files with a header row (RFC 4180 quoting), the
 * same header in every file. Without an episode column every file is one
 * episode; with one, consecutive rows with the same id form an episode
 * (ids must not come back after another id). Columns:
 *   episode column   the id; stored in /episode_meta/<col> unless hashed
 *                    or dropped like any identifying column
 *   time column      seconds, strictly increasing within an episode; gives
 *                    the sample rate when none is given
 *   --hash columns   replaced by HMAC-SHA256(key, value), 128 bits in hex,
 *                    stored per episode in /episode_meta/<col>
 *   --drop columns   removed
 *   --meta columns   kept as they are, per episode in /episode_meta/<col>
 *                    (recorded as raw in the provenance: raw_columns)
 *   every other      a numeric channel (float32); an empty field is NaN
 * Hashed and meta columns must be constant within an episode. The key
 * comes from key_file or the DURE_ANON_KEY environment variable, is at
 * least 16 bytes, and is never written anywhere; the file's provenance
 * attributes say which columns were hashed or dropped and how.
 */
#ifndef DURE_DATAIO_CSV_IMPORT_H
#define DURE_DATAIO_CSV_IMPORT_H

#include <stdint.h>

#include "common/status.h"

/* Environment variable holding the anonymization key. */
#define DATAIO_ANON_KEY_ENV "DURE_ANON_KEY"
#define DATAIO_ANON_KEY_MIN 16
/* Fewest different byte values a key may have (whitespace-only keys are
 * refused too): "aaaa..." or "abab..." are not secrets. */
#define DATAIO_ANON_KEY_MIN_DISTINCT 4

typedef enum { DATAIO_COL_HASH, DATAIO_COL_DROP, DATAIO_COL_META } dataio_col_role_t;

struct dataio_import_col {
    char *name;
    dataio_col_role_t role;
};

struct dataio_import_config {
    const char *path;                 /* output file */
    const char *const *inputs;        /* (n_inputs) CSV files, in episode order */
    int n_inputs;
    const char *episode_col;          /* NULL = one episode per file */
    const char *time_col;             /* NULL = none */
    double sample_rate_hz;            /* 0 = from time_col */
    struct dataio_import_col *cols;   /* (n_cols) owned; dataio_import_add_column */
    int n_cols;
    const char *key_file;             /* NULL = $DURE_ANON_KEY */
    const char *units;                /* "col=unit,col=unit" or NULL */
    double val_fraction;              /* share of episodes for validation */
    uint64_t seed;                    /* picks the validation episodes */
    const char *source;               /* provenance text; NULL = generic */
    int64_t chunk_rows;               /* 0 = the format's default */
};

struct dataio_import_result {
    int64_t episodes, rows;
    int channels;
    double sample_rate_hz;
    int anonymized;     /* identifying columns hashed or dropped, none kept raw */
    int raw_columns;    /* --meta columns and an unhashed episode column: their
                           values are stored as they are */
};

/* Zero the config; seed 1234, no validation split. */
void dataio_import_config_init(struct dataio_import_config *cfg);

/* Give columns (a comma list) a role; DURE_ERR_ARG if one already has one. */
dure_status_t dataio_import_add_column(struct dataio_import_config *cfg,
                                       dataio_col_role_t role, const char *names);

/* Free what add_column allocated. */
void dataio_import_config_free(struct dataio_import_config *cfg);

/*
 * Import. Errors name the file, line and column of malformed CSV, columns
 * missing from a header, a missing or short key. On any error nothing is
 * left at cfg->path (the output is written to a temporary file and renamed
 * at the end).
 */
dure_status_t dataio_import(const struct dataio_import_config *cfg,
                            struct dataio_import_result *res);

#endif
