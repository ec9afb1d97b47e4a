/*
 * common/strmap.h - a map from strings to int64 values: open addressing
 * with FNV-1a, for duplicate checks and name lookups in linear time (CSV
 * headers of 100,000 columns, channel names, episode ids).
 *
 *     struct strmap m = STRMAP_INIT;
 *     int64_t old;
 *     DURE_TRY(strmap_put(&m, name, i, &old));   // old >= 0: seen before
 *     ... strmap_get(&m, "x") ...                // -1 when absent
 *     strmap_free(&m);
 */
#ifndef DURE_COMMON_STRMAP_H
#define DURE_COMMON_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

struct strmap {
    char **key;    /* (cap) owned copies; NULL = empty slot */
    int64_t *val;  /* (cap) */
    size_t cap, n; /* cap a power of two, at most half full */
};

#define STRMAP_INIT {NULL, NULL, 0, 0}

/*
 * Map key to val (val >= 0) unless key is present: *old = the value it
 * has (the map is unchanged), or -1 when it was added (the key is copied).
 * DURE_ERR_NOMEM (logged) when memory runs out; the map stays valid.
 */
dure_status_t strmap_put(struct strmap *m, const char *key, int64_t val, int64_t *old);

/* The value of key, or -1 when absent. */
int64_t strmap_get(const struct strmap *m, const char *key);

/* Free the keys and the table, leaving an empty map; NULL-safe fields. */
void strmap_free(struct strmap *m);

#endif
