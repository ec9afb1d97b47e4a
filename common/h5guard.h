/*
 * common/h5guard.h - structural checks of an HDF5 file's bytes before
 * libhdf5 reads the parts it does not check itself.
 *
 * dure opens HDF5 files from many plants. libhdf5 1.10 (Debian 12) trusts
 * some sizes it reads from the file, and crashes inside itself on crafted
 * files that the fuzzers of tests/fuzz/ found (tests/fuzz/README.md, Known
 * limits). Before each such read dure reads the same bytes with pread and
 * refuses the file when they do not hold together:
 *
 *  - every object's header (versions 1 and 2, continuation chunks included):
 *    every attribute message's name, type, shape and value lie inside it
 *    (H5O_attr_decode copies the value without looking), a chunked
 *    layout has no chunk dimension 0 (H5D__chunk_set_info divides by it),
 *    and an old-style group's local heap lies inside the file (H5HL_protect
 *    reads it at the size it states, into NULL when that fails);
 *  - a variable-length string (an attribute, or every element of a
 *    contiguous dataset): its global heap collection lies inside the file
 *    and parses, its objects lie inside the collection (H5HG_read copies
 *    past it otherwise), the object named exists and holds exactly the
 *    string's length, and that length is at most `cap` bytes (a length of
 *    gigabytes makes H5T__conv_vlen allocate and clear them).
 *
 * Refused as not checkable, named in the message: an attribute read as a
 * string that is in dense storage (a fractal heap: libver "latest" with more
 * than 8 attributes) or shared; variable-length strings in a dataset that is
 * not contiguous. Files HDF5 has open for writing are dure's own and are
 * not checked (their newest parts may not be on disk yet).
 *
 * Main thread only (HDF5 here is not thread-safe). Every failure returns
 * DURE_ERR_FORMAT with a message naming `what` (the caller's name for the
 * file; NULL: "file 'PATH'"), the object, attribute or dataset and the
 * fault.
 */
#ifndef DURE_COMMON_H5GUARD_H
#define DURE_COMMON_H5GUARD_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

/* Before H5Fopen of `path` (which already reads the root group's header
 * and its cached symbol table): from the superblock, every object reachable
 * from the root group through old-style groups (B-tree, symbol table nodes,
 * local heap) and compact links has its header checked as above. Groups
 * with dense link storage (a fractal heap) are not descended into. `what`
 * names the file in messages ("dataset file 'x.h5'"). */
dure_status_t h5guard_path(const char *path, const char *what);

/* Attribute `name` of object `obj` (whose header is checked as above): a
 * variable-length string with one element, whose heap object is sound and
 * at most cap bytes long. */
dure_status_t h5guard_vlen_attr(hid_t obj, const char *name, size_t cap, const char *what);

/* Dataset `d` (named `name` for messages) of n variable-length strings,
 * contiguous: every element's heap object is sound and at most cap bytes. */
dure_status_t h5guard_vlen_dataset(hid_t d, const char *name, int64_t n, size_t cap,
                                   const char *what);

#endif
