/*
 * tests/fuzz/fuzz_jobspec.c - the job-spec parser: INI text and --set strings.
 *
 * Input: the INI text, then up to MAX_SETS `--set` assignments, each after a
 * NUL byte ("[run]\nsteps = 3\0optim.lr=1e-3\0env.X=1"). The text goes
 * through a file and jobspec_load, as `dure run` reads it.
 *
 * Properties:
 *   - a failed load returns *out = NULL and a status with a message;
 *   - a loaded spec, dumped as INI, loads again (no overrides) to the same
 *     dump byte for byte and to the same hashes, ALL and RESULT: what
 *     `dure submit` writes as job.ini is what the job runs;
 *   - every sweep task builds, and its dump loads again to the same dump;
 *   - the table (`dure jobspec`) prints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/jobspec.h"
#include "tests/fuzz/support.h"

#define MAX_SETS 4
#define MAX_TASKS 4

/* spec dumped, loaded again, dumped again: both dumps and hashes equal. */
static void check_round_trip(const struct dure_jobspec *spec, const char *what)
{
    char *text = NULL, *again = NULL;
    struct dure_jobspec *back = NULL;
    uint64_t h[2], hb[2];

    FUZZ_ASSERT(jobspec_format_ini(spec, &text, NULL) == DURE_OK, "%s: dump failed", what);
    fuzz_error_reset();
    dure_status_t st = jobspec_load_string(text, "<dump>", NULL, &back);
    FUZZ_ASSERT(st == DURE_OK, "%s: its dump does not load again: %s\n--- dump:\n%s", what,
                dure_last_error(), text);
    FUZZ_ASSERT(jobspec_format_ini(back, &again, NULL) == DURE_OK, "%s: dump failed", what);
    FUZZ_ASSERT(strcmp(text, again) == 0,
                "%s: dump, load, dump differs\n--- first:\n%s\n--- second:\n%s", what, text,
                again);
    FUZZ_ASSERT(jobspec_hash(spec, JOBSPEC_HASH_ALL, &h[0]) == DURE_OK &&
                    jobspec_hash(spec, JOBSPEC_HASH_RESULT, &h[1]) == DURE_OK &&
                    jobspec_hash(back, JOBSPEC_HASH_ALL, &hb[0]) == DURE_OK &&
                    jobspec_hash(back, JOBSPEC_HASH_RESULT, &hb[1]) == DURE_OK,
                "%s: hash failed", what);
    FUZZ_ASSERT(h[0] == hb[0] && h[1] == hb[1], "%s: hashes change through the dump", what);
    jobspec_free(back);
    free(text);
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    const char *sets[MAX_SETS + 1] = {NULL};
    char *copy = fuzz_strndup(data, size);
    struct dure_jobspec *spec = NULL;
    size_t text_len = strnlen(copy, size);
    int n = 0;

    /* The parts after the text, each NUL-terminated in the copy. */
    for (size_t at = text_len + 1; at <= size && n < MAX_SETS; at += strlen(copy + at) + 1) {
        sets[n++] = copy + at;
    }
    fuzz_write_file("job.ini", data, text_len, path, sizeof path);
    fuzz_error_reset();
    dure_status_t st = fuzz_expect_error(jobspec_load(path, sets, &spec), "jobspec_load");
    FUZZ_ASSERT((st == DURE_OK) == (spec != NULL), "jobspec_load: status %s but spec %p",
                dure_status_name(st), (void *)spec);
    if (st == DURE_OK) {
        check_round_trip(spec, "the loaded spec");
        FILE *devnull = fopen("/dev/null", "w");
        FUZZ_ASSERT(devnull != NULL, "cannot open /dev/null");
        FUZZ_ASSERT(jobspec_print_table(spec, devnull) == DURE_OK, "print_table failed");
        fclose(devnull);
        for (size_t i = 0; i < spec->sweep.ntasks && i < MAX_TASKS; i++) {
            struct dure_jobspec *task = NULL;
            fuzz_error_reset();
            st = jobspec_sweep_task(spec, i, &task);
            FUZZ_ASSERT(st == DURE_OK, "sweep task %zu of a loaded spec fails: %s", i,
                        dure_last_error());
            check_round_trip(task, "a sweep task");
            jobspec_free(task);
        }
    }
    jobspec_free(spec);
    free(copy);
    return 0;
}
