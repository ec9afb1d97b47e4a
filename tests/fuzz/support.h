/*
 * tests/fuzz/support.h - what every libFuzzer harness of tests/fuzz/ shares:
 * a private temporary directory, inputs written to files there, and the
 * checks that turn a broken property into a crash libFuzzer reports.
 *
 * support.c defines LLVMFuzzerInitialize for every harness (logging
 * silenced, HDF5's error stack printing off, the directory created and
 * removed at exit); a harness defines LLVMFuzzerTestOneInput, which per
 * input calls fuzz_error_reset(), the call under test, and
 * fuzz_expect_error() on its status. Leaks are found by libFuzzer's own
 * LeakSanitizer check after each input.
 */
#ifndef DURE_TESTS_FUZZ_SUPPORT_H
#define DURE_TESTS_FUZZ_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "dataio/reader.h"

/* libFuzzer's entry points. Initialize (support.c) silences dure's log
 * (messages still reach dure_last_error()) and HDF5's error printing, and
 * creates the temporary directory ($TMPDIR, else /dev/shm, else /tmp);
 * it aborts on failure. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The temporary directory, removed at exit. */
const char *fuzz_dir(void);

/* Write data[size] to fuzz_dir()/name (replacing it) and put the full path
 * into path[cap]. Aborts on failure: the harness, not dure, is broken. */
void fuzz_write_file(const char *name, const uint8_t *data, size_t size, char *path,
                     size_t cap);

/* Forget the last error message, so that the next failure must set one. */
void fuzz_error_reset(void);

/*
 * The contract of every dure call: DURE_OK, or a known failure status with
 * a message (dure_last_error() not empty). `what` names the call in the
 * report. Returns st so callers can branch on it.
 */
dure_status_t fuzz_expect_error(dure_status_t st, const char *what);

/* Report a broken property (printf-like) and abort: libFuzzer keeps the input. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* fuzz_fail unless cond holds. */
#define FUZZ_ASSERT(cond, ...)                                                \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fuzz_fail(__VA_ARGS__);                                           \
        }                                                                     \
    } while (0)

/* Abort unless every HDF5 object (file, group, dataset, type, space, plist
 * opened by the code under test) is closed again: a leaked file handle also
 * makes HDF5 reuse the old file's cached metadata for the next input. */
void fuzz_expect_h5_closed(const char *what);

/* The first size bytes of data as a NUL-terminated malloc'ed string (bytes
 * after an embedded NUL are kept but unseen by C string functions). */
char *fuzz_strndup(const uint8_t *data, size_t size);

/*
 * Open `path` with the reader of `layout` (serial io) and check what every
 * reader promises: a failure has a message; an opened dataset has E >= 1
 * non-empty episodes with ascending row offsets from 0, C >= 1 named
 * channels, and every row reads (at most max_rows rows in all, in blocks),
 * a failed read with its message. For the dure layout the rows read equal
 * HDF5's own read of /signals (H5Dread converting to float), bit for bit.
 * Returns the open's status.
 */
dure_status_t fuzz_reader_check(const char *path, dataio_layout_t layout, const char *keys,
                                int64_t max_rows);

#endif
