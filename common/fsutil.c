/* common/fsutil.c - see fsutil.h. */
#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

dure_status_t dure_mkdirs(const char *path)
{
    dure_status_t st = DURE_OK;
    struct stat sb;
    char *p = strdup(path);
    DURE_ALLOC_TRY(p, strlen(path) + 1);
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            DURE_SYS_TRY(mkdir(p, 0777) == 0 || errno == EEXIST,
                         "cannot create directory '%s'", p);
            *s = c;
            if (c == '\0') {
                break;
            }
        }
    }
    DURE_SYS_TRY(stat(path, &sb) == 0, "cannot stat '%s'", path);
    DURE_CHECK(S_ISDIR(sb.st_mode), DURE_ERR_IO, "'%s' exists and is not a directory", path);
out:
    free(p);
    return st;
}

dure_status_t dure_file_reserve(const char *path, uint64_t offset, uint64_t bytes,
                                const char *what)
{
    dure_status_t st = DURE_OK;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    DURE_SYS_TRY(fd >= 0, "open '%s' to reserve space", path);
    if (fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)bytes) != 0) {
        int err = errno;
        struct statvfs sv;
        if (err != EOPNOTSUPP && err != ENOSYS) {
            errno = err;
            DURE_SYS_TRY(0, "not enough space for %s '%s' (about %.1f MiB)", what, path,
                         (double)bytes / 1048576.0);
        }
        DURE_SYS_TRY(fstatvfs(fd, &sv) == 0, "free space for '%s'", path);
        DURE_CHECK((uint64_t)sv.f_bavail * sv.f_frsize >= bytes, DURE_ERR_IO,
                   "not enough space for %s '%s': about %.1f MiB needed, %.1f MiB free", what,
                   path, (double)bytes / 1048576.0,
                   (double)sv.f_bavail * (double)sv.f_frsize / 1048576.0);
    }
out:
    if (fd >= 0) {
        close(fd);
    }
    return st;
}

dure_status_t dure_file_write_atomic(const char *path, const void *data, size_t len,
                                     mode_t mode)
{
    dure_status_t st = DURE_OK;
    const char *bytes = data;
    char *tmp = NULL, *dircopy = NULL;
    int fd = -1, dfd = -1;

    DURE_CHECK(asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) >= 0, DURE_ERR_NOMEM,
               "out of memory naming a temporary file for '%s'", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    DURE_SYS_TRY(fd >= 0, "cannot create '%s'", tmp);
    for (size_t done = 0; done < len;) {
        ssize_t w = write(fd, bytes + done, len - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        DURE_SYS_TRY(w > 0, "cannot write '%s'", tmp);
        done += (size_t)w;
    }
    DURE_SYS_TRY(fsync(fd) == 0, "cannot flush '%s'", tmp);
    DURE_SYS_TRY(close(fd) == 0, "cannot close '%s'", tmp);
    fd = -1;
    DURE_SYS_TRY(rename(tmp, path) == 0, "cannot rename '%s' to '%s'", tmp, path);
    free(tmp);
    tmp = NULL;
    /* The rename itself is durable only once the directory is flushed. */
    dircopy = strdup(path);
    DURE_ALLOC_TRY(dircopy, strlen(path) + 1);
    dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DURE_SYS_TRY(dfd >= 0 && fsync(dfd) == 0, "cannot flush the directory of '%s'", path);
out:
    if (fd >= 0) {
        close(fd);
    }
    if (dfd >= 0) {
        close(dfd);
    }
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(dircopy);
    return st;
}

dure_status_t dure_input_file_stat(const char *path, const char *what, struct stat *sb)
{
    dure_status_t st = DURE_OK;
    struct stat mine;
    if (!sb) {
        sb = &mine;
    }
    if (stat(path, sb) != 0) {
        int e = errno;
        DURE_FAIL(e == ENOENT || e == ENOTDIR || e == ELOOP || e == ENAMETOOLONG
                      ? DURE_ERR_FORMAT
                      : DURE_ERR_IO,
                  "%s '%s': %s", what, path, strerror(e));
    }
    DURE_CHECK(S_ISREG(sb->st_mode), DURE_ERR_FORMAT, "%s '%s' is not a regular file%s",
               what, path, S_ISDIR(sb->st_mode) ? " (a directory)" : "");
out:
    return st;
}

long dure_proc_status_kb(const char *key)
{
    return dure_proc_file_kb("/proc/self/status", key);
}

long dure_proc_file_kb(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, strlen(key)) == 0) {
            v = strtol(line + strlen(key), NULL, 10);
        }
    }
    if (f) {
        fclose(f);
    }
    return v;
}

int64_t dure_mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long long kb = -1;
    if (!f) {
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    return kb < 0 ? -1 : (int64_t)kb * 1024;
}
