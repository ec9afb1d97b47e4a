/*
 * tests/fuzz/fuzz_h5_dure.c - the reader of dure's own format
 * (dataio/FORMAT.md): bytes written to a file and opened as a dataset.
 *
 * Input: an HDF5 file.
 *
 * Properties (fuzz_reader_check): the open fails with a message, or the
 * dataset's description holds together and every row reads, equal bit for
 * bit to HDF5's own read of /signals; a failed read has its message.
 */
#include "tests/fuzz/support.h"

#define MAX_ROWS 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    fuzz_write_file("data.h5", data, size, path, sizeof path);
    fuzz_reader_check(path, DATAIO_LAYOUT_DURE, NULL, MAX_ROWS);
    return 0;
}
