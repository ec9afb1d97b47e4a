/*
 * common/h5err.h - HDF5's errors, the one way dure handles them: the
 * automatic printing of HDF5's error stack turned off around a sequence of
 * calls, and the stack's innermost entries turned into one message. Main
 * thread only (HDF5 here is not thread-safe).
 */
#ifndef DURE_COMMON_H5ERR_H
#define DURE_COMMON_H5ERR_H

#include <hdf5.h>
#include <stddef.h>

/* HDF5 prints its error stack on stderr by default; dure reports errors
 * itself. Begin/end bracket a sequence of HDF5 calls with printing off and
 * restore the previous handler afterwards. */
struct dure_h5_quiet {
    H5E_auto2_t func;
    void *data;
};
void dure_h5_quiet_begin(struct dure_h5_quiet *q);
void dure_h5_quiet_end(const struct dure_h5_quiet *q);

/*
 * Why the last HDF5 call failed: the two innermost entries of the current
 * error stack (where the error was detected and why: errno text, checksum,
 * "truncated file: eof = ..."), joined by "; ", into buf (always
 * NUL-terminated; "" when the stack is empty); then clear the stack.
 * Returns 1 when a filter of the pipeline failed (a Fletcher32 checksum
 * mismatch: the data is damaged), else 0.
 */
int dure_h5_error_text(char *buf, size_t len);

#endif
