/*
 * tests/fuzz/fuzz_h5_robomimic.c - the robomimic/LIBERO reader: bytes
 * written to a file and opened in place.
 *
 * Input: one byte choosing data.keys (every numeric dataset, or one of a
 * few lists of the layout's usual names), then the HDF5 file.
 *
 * Properties (fuzz_reader_check): the open fails with a message, or the
 * description holds together and every row reads (or fails with its
 * message).
 */
#include "tests/fuzz/support.h"

#define MAX_ROWS 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {NULL, "robot0_eef_pos,actions", "actions",
                                       "obs/robot0_eef_pos,robot0_gripper_qpos"};
    char path[512];
    if (size < 1) {
        return 0;
    }
    fuzz_write_file("demo.hdf5", data + 1, size - 1, path, sizeof path);
    fuzz_reader_check(path, DATAIO_LAYOUT_ROBOMIMIC, keys[data[0] % 4], MAX_ROWS);
    return 0;
}
