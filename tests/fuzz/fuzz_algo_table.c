/*
 * tests/fuzz/fuzz_algo_table.c - the algorithm-table parser ([parallel]
 * algo_table, $DURE_ALGO_TABLE) and byte sizes (`dure bench -b 64K`).
 *
 * Input: the table text ("0:native,1M:shm,32M:ring").
 *
 * Properties:
 *   - a refused table fails with DURE_ERR_ARG and a message, and leaves the
 *     caller's table untouched;
 *   - an accepted table starts at 0, grows strictly, has at most
 *     COMM_ALGO_TABLE_MAX entries, never names auto, and formats to text
 *     that parses to the same table;
 *   - comm_algo_table_pick gives each entry's algorithm from its first byte
 *     up to the next entry;
 *   - comm_parse_bytes accepts exactly what the table accepts as a size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/comm.h"
#include "tests/fuzz/support.h"

static int same_table(const struct comm_algo_table *a, const struct comm_algo_table *b)
{
    if (a->n != b->n) {
        return 0;
    }
    for (int i = 0; i < a->n; i++) {
        if (a->entry[i].min_bytes != b->entry[i].min_bytes ||
            a->entry[i].algo != b->entry[i].algo) {
            return 0;
        }
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    struct comm_algo_table t, back, untouched;
    char buf[1024];

    memset(&t, 0xa5, sizeof t);
    untouched = t;
    fuzz_error_reset();
    dure_status_t st = fuzz_expect_error(comm_algo_table_parse(text, &t), "algo_table_parse");
    if (st != DURE_OK) {
        FUZZ_ASSERT(st == DURE_ERR_ARG, "refused with %s", dure_status_name(st));
        FUZZ_ASSERT(memcmp(&t, &untouched, sizeof t) == 0, "a refused table was written");
    } else {
        FUZZ_ASSERT(t.n >= 1 && t.n <= COMM_ALGO_TABLE_MAX, "%d entries", t.n);
        FUZZ_ASSERT(t.entry[0].min_bytes == 0, "starts at %zu", t.entry[0].min_bytes);
        for (int i = 0; i < t.n; i++) {
            FUZZ_ASSERT(t.entry[i].algo > COMM_ALGO_AUTO && t.entry[i].algo < COMM_ALGO_COUNT,
                        "entry %d has algorithm %d", i, (int)t.entry[i].algo);
            FUZZ_ASSERT(i == 0 || t.entry[i].min_bytes > t.entry[i - 1].min_bytes,
                        "entry %d does not grow", i);
            FUZZ_ASSERT(comm_algo_table_pick(&t, t.entry[i].min_bytes) == t.entry[i].algo,
                        "pick at entry %d's start", i);
            if (i + 1 < t.n) {
                FUZZ_ASSERT(comm_algo_table_pick(&t, t.entry[i + 1].min_bytes - 1) ==
                                t.entry[i].algo,
                            "pick just below entry %d", i + 1);
            }
        }
        comm_algo_table_format(&t, buf, sizeof buf);
        fuzz_error_reset();
        FUZZ_ASSERT(comm_algo_table_parse(buf, &back) == DURE_OK,
                    "formatted '%s' does not parse: %s", buf, dure_last_error());
        FUZZ_ASSERT(same_table(&t, &back), "'%s' formatted as '%s' parses differently", text,
                    buf);
    }
    /* A table of one entry "SIZE:native" holds exactly when SIZE is a size. */
    if (strlen(text) < 64 && !strchr(text, ',') && !strchr(text, ':')) {
        size_t bytes = 0;
        int ok = comm_parse_bytes(text, &bytes) == 0;
        snprintf(buf, sizeof buf, "0:native,%s:ring", text);
        fuzz_error_reset();
        int table_ok = comm_algo_table_parse(buf, &back) == DURE_OK;
        FUZZ_ASSERT(table_ok == (ok && bytes > 0), "'%s': size %d, in a table %d", text, ok,
                    table_ok);
        FUZZ_ASSERT(!table_ok || back.entry[1].min_bytes == bytes, "'%s': %zu vs %zu", text,
                    bytes, back.entry[1].min_bytes);
    }
    free(text);
    return 0;
}
