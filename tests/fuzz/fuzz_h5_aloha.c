/*
 * tests/fuzz/fuzz_h5_aloha.c - the file-per-episode (ALOHA) reader: bytes
 * written to one to three files episode_N.hdf5 and opened by their glob.
 *
 * Input: one byte choosing data.keys (every numeric dataset, or one of a
 * few lists of the layout's usual names), then the files, separated by the
 * 8 bytes "DUREFILE".
 *
 * Properties (fuzz_reader_check): the open fails with a message, or the
 * description holds together and every row reads (or fails with its
 * message).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tests/fuzz/support.h"

#define MAX_ROWS 4096
#define MAX_FILES 3
#define SEPARATOR "DUREFILE"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {NULL, "observations/qpos,action", "action",
                                       "observations/qvel"};
    char path[512], name[64], glob[512];
    if (size < 1) {
        return 0;
    }
    const char *key = keys[data[0] % 4];
    data++;
    size--;
    int n = 0;
    while (n < MAX_FILES) {
        const uint8_t *sep = n + 1 < MAX_FILES
                                 ? memmem(data, size, SEPARATOR, sizeof SEPARATOR - 1)
                                 : NULL;
        size_t len = sep ? (size_t)(sep - data) : size;
        snprintf(name, sizeof name, "episode_%d.hdf5", n++);
        fuzz_write_file(name, data, len, path, sizeof path);
        if (!sep) {
            break;
        }
        data = sep + sizeof SEPARATOR - 1;
        size -= len + sizeof SEPARATOR - 1;
    }
    for (int i = n; i < MAX_FILES; i++) {
        snprintf(path, sizeof path, "%s/episode_%d.hdf5", fuzz_dir(), i);
        unlink(path);
    }
    snprintf(glob, sizeof glob, "%s/episode_*.hdf5", fuzz_dir());
    fuzz_reader_check(glob, DATAIO_LAYOUT_EPISODE_FILES, key, MAX_ROWS);
    return 0;
}
