/*
 * common/fsutil.h - file-system steps more than one module takes: creating a
 * directory with its parents, replacing a small file atomically and
 * durably, and reading the memory the kernel says is available.
 */
#ifndef DURE_COMMON_FSUTIL_H
#define DURE_COMMON_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common/status.h"

/*
 * mkdir -p: create `path` and its missing parents (mode 0777 less the
 * umask). Existing directories are fine; an existing non-directory is
 * DURE_ERR_IO naming it.
 */
dure_status_t dure_mkdirs(const char *path);

/*
 * Replace `path` with `len` bytes of `data`, atomically and durably: a
 * temporary file beside it (path.tmp.<pid>, mode `mode`), fsync, rename
 * over path, fsync of the directory. Readers see the old file or the whole
 * new one; on failure the temporary file is removed and path is untouched.
 */
dure_status_t dure_file_write_atomic(const char *path, const void *data, size_t len,
                                     mode_t mode);

/*
 * Reserve bytes [offset, offset + bytes) of disk for the existing file at
 * path without changing its size (fallocate with FALLOC_FL_KEEP_SIZE), so
 * that writes into that range cannot run out of space part way. Where the
 * file system cannot preallocate, checks the free space instead.
 * DURE_ERR_IO "not enough space for <what> '<path>'" with the size when the
 * space is not there; the file is untouched then.
 */
dure_status_t dure_file_reserve(const char *path, uint64_t offset, uint64_t bytes,
                                const char *what);

/*
 * stat(2) an input file that a user named: `what` names it in messages
 * ("CSV file", "dataset file"). A name that leads nowhere (missing, a
 * missing directory on the way, a symlink loop) or to something that is not
 * a regular file is bad input, DURE_ERR_FORMAT (exit code 4); other errors
 * (permissions, I/O) are DURE_ERR_IO. *sb may be NULL.
 */
dure_status_t dure_input_file_stat(const char *path, const char *what, struct stat *sb);

/* The value of field `key` ("VmRSS:", "VmHWM:") of /proc/self/status, in
 * KiB; -1 when it cannot be read. */
long dure_proc_status_kb(const char *key);
/* The same from another "Key:   N kB" file, e.g. /proc/self/smaps_rollup
 * (Pss_Shmem: this process's share of the shared memory it maps). */
long dure_proc_file_kb(const char *path, const char *key);

/* MemAvailable of /proc/meminfo in bytes; -1 when it cannot be read. */
int64_t dure_mem_available(void);

#endif
