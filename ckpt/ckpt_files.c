/* ckpt/ckpt_files.c - see ckpt_files.h. */
#include "ckpt/ckpt_files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/ckpt.h"

#define NAME_PREFIX "ckpt-"
#define NAME_SUFFIX ".h5"
#define SIDECAR_SUFFIX ".sha256"
#define TMP_SUFFIX ".tmp"

dure_status_t ckpt_path(const char *dir, uint64_t step, char *buf, size_t cap)
{
    dure_status_t st = DURE_OK;
    int n = snprintf(buf, cap, "%s/" NAME_PREFIX "%08llu" NAME_SUFFIX, dir,
                     (unsigned long long)step);
    DURE_CHECK(n >= 0 && (size_t)n < cap, DURE_ERR_ARG,
               "checkpoint directory path '%s' is too long", dir);
out:
    return st;
}

dure_status_t ckpt_sidecar_path(const char *path, char *buf, size_t cap)
{
    dure_status_t st = DURE_OK;
    int n = snprintf(buf, cap, "%s" SIDECAR_SUFFIX, path);
    DURE_CHECK(n >= 0 && (size_t)n < cap, DURE_ERR_ARG, "checkpoint path '%s' is too long",
               path);
out:
    return st;
}

const char *ckpt_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int ckpt_name_step(const char *name, uint64_t *step)
{
    size_t plen = strlen(NAME_PREFIX), slen = strlen(NAME_SUFFIX);
    size_t len = strlen(name);
    if (len < plen + 8 + slen || strncmp(name, NAME_PREFIX, plen) != 0 ||
        strcmp(name + len - slen, NAME_SUFFIX) != 0 || len - plen - slen > 19) {
        return 0;
    }
    uint64_t v = 0;
    for (size_t i = plen; i < len - slen; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return 0;
        }
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *step = v;
    return 1;
}

dure_status_t ckpt_fsync_dir(const char *dir)
{
    dure_status_t st = DURE_OK;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DURE_SYS_TRY(fd >= 0, "open directory '%s' to flush it", dir);
    DURE_SYS_TRY(fsync(fd) == 0, "fsync directory '%s'", dir);
out:
    if (fd >= 0) {
        close(fd);
    }
    return st;
}

static dure_status_t write_all(int fd, const char *path, const char *text)
{
    dure_status_t st = DURE_OK;
    size_t left = strlen(text);
    while (left > 0) {
        ssize_t n = write(fd, text, left);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        DURE_SYS_TRY(n > 0, "write '%s'", path);
        text += n;
        left -= (size_t)n;
    }
out:
    return st;
}

dure_status_t ckpt_write_atomic(const char *path, const char *text)
{
    dure_status_t st = DURE_OK;
    char tmp[CKPT_PATH_MAX];
    int fd = -1, created = 0;
    int n = snprintf(tmp, sizeof tmp, "%s" TMP_SUFFIX, path);
    DURE_CHECK(n >= 0 && (size_t)n < sizeof tmp, DURE_ERR_ARG, "path '%s' is too long",
               path);
    DURE_SYS_TRY(unlink(tmp) == 0 || errno == ENOENT, "remove stale '%s'", tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    DURE_SYS_TRY(fd >= 0, "create '%s'", tmp);
    created = 1;
    DURE_TRY(write_all(fd, tmp, text));
    DURE_SYS_TRY(fsync(fd) == 0, "fsync '%s'", tmp);
    DURE_SYS_TRY(close(fd) == 0, "close '%s'", tmp);
    fd = -1;
    DURE_SYS_TRY(rename(tmp, path) == 0, "rename '%s' to '%s'", tmp, path);
    created = 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (created) {
        unlink(tmp);
    }
    return st;
}

dure_status_t ckpt_sidecar_write(const char *path, const char hex[DURE_SHA256_HEX])
{
    dure_status_t st = DURE_OK;
    char side[CKPT_PATH_MAX], line[CKPT_PATH_MAX + 80];
    DURE_TRY(ckpt_sidecar_path(path, side, sizeof side));
    /* sha256sum's format: digest, two spaces, the name relative to the
     * sidecar's directory, so `sha256sum -c` works from there. */
    snprintf(line, sizeof line, "%s  %s\n", hex, ckpt_basename(path));
    DURE_TRY(ckpt_write_atomic(side, line));
out:
    return st;
}

dure_status_t ckpt_sidecar_read(const char *path, char hex[DURE_SHA256_HEX])
{
    dure_status_t st = DURE_OK;
    char side[CKPT_PATH_MAX], line[CKPT_PATH_MAX + 80];
    FILE *f = NULL;
    DURE_TRY(ckpt_sidecar_path(path, side, sizeof side));
    f = fopen(side, "re");
    DURE_SYS_TRY(f != NULL, "content hash sidecar '%s' of checkpoint '%s'", side, path);
    DURE_CHECK(fgets(line, sizeof line, f) != NULL, DURE_ERR_FORMAT,
               "content hash sidecar '%s' is empty", side);
    line[strcspn(line, "\r\n")] = '\0';
    size_t hl = strspn(line, "0123456789abcdef");
    DURE_CHECK(hl == 64 && strncmp(line + 64, "  ", 2) == 0 &&
                   strcmp(line + 66, ckpt_basename(path)) == 0,
               DURE_ERR_FORMAT,
               "content hash sidecar '%s' does not hold a SHA-256 line for '%s' "
               "(\"<64 hex digits>  %s\")",
               side, ckpt_basename(path), ckpt_basename(path));
    memcpy(hex, line, 64);
    hex[64] = '\0';
out:
    if (f) {
        fclose(f);
    }
    return st;
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

dure_status_t ckpt_list_steps(const char *dir, uint64_t **steps, size_t *n)
{
    dure_status_t st = DURE_OK;
    uint64_t *v = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *e;
    DIR *d = opendir(dir);
    *steps = NULL;
    *n = 0;
    if (!d && errno == ENOENT) {
        goto out;
    }
    DURE_SYS_TRY(d != NULL, "open checkpoint directory '%s'", dir);
    while ((e = readdir(d)) != NULL) {
        uint64_t s;
        if (!ckpt_name_step(e->d_name, &s)) {
            continue;
        }
        if (cnt == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            uint64_t *nv = realloc(v, ncap * sizeof *nv);
            DURE_ALLOC_TRY(nv, ncap * sizeof *nv);
            v = nv;
            cap = ncap;
        }
        v[cnt++] = s;
    }
    if (cnt > 1) {
        qsort(v, cnt, sizeof *v, cmp_desc);
    }
    *steps = v;
    *n = cnt;
    v = NULL;
out:
    free(v);
    if (d) {
        closedir(d);
    }
    return st;
}

static int is_stale_temp(const char *name)
{
    size_t len = strlen(name), tl = strlen(TMP_SUFFIX);
    if (len <= tl || strcmp(name + len - tl, TMP_SUFFIX) != 0) {
        return 0;
    }
    return strncmp(name, NAME_PREFIX, strlen(NAME_PREFIX)) == 0 ||
           strcmp(name, "latest" TMP_SUFFIX) == 0;
}

/* "ckpt-N.h5.sha256" of a step below `saved` whose .h5 is gone: a crash
 * between the two unlinks of a prune, or between sidecar and rename. */
static int is_orphan_sidecar(const char *dir, const char *name, uint64_t saved)
{
    char h5[CKPT_PATH_MAX];
    size_t len = strlen(name), sl = strlen(SIDECAR_SUFFIX);
    uint64_t step;
    if (len <= sl || strcmp(name + len - sl, SIDECAR_SUFFIX) != 0 ||
        len - sl >= sizeof h5) {
        return 0;
    }
    memcpy(h5, name, len - sl);
    h5[len - sl] = '\0';
    if (!ckpt_name_step(h5, &step) || step >= saved) {
        return 0;
    }
    if (snprintf(h5, sizeof h5, "%s/%.*s", dir, (int)(len - sl), name) >= (int)sizeof h5) {
        return 0;
    }
    return access(h5, F_OK) != 0 && errno == ENOENT;
}

static void remove_warn(const char *path)
{
    if (unlink(path) != 0 && errno != ENOENT) {
        dure_log_warn(__FILE__, __LINE__, "cannot remove old checkpoint file '%s': %s",
                      path, strerror(errno));
    }
}

void ckpt_prune(const char *dir, uint64_t saved, int keep)
{
    uint64_t *steps = NULL;
    size_t n = 0, kept = 0;
    char path[CKPT_PATH_MAX], side[CKPT_PATH_MAX];
    if (ckpt_list_steps(dir, &steps, &n) != DURE_OK) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (steps[i] > saved) {
            continue;
        }
        kept++;
        if (keep <= 0 || kept <= (size_t)keep) {
            continue;
        }
        if (ckpt_path(dir, steps[i], path, sizeof path) != DURE_OK ||
            ckpt_sidecar_path(path, side, sizeof side) != DURE_OK) {
            continue;
        }
        /* The .h5 goes first: a crash in between leaves an orphan sidecar,
         * never a checkpoint without its hash. */
        remove_warn(path);
        remove_warn(side);
    }
    free(steps);

    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if ((is_stale_temp(e->d_name) || is_orphan_sidecar(dir, e->d_name, saved)) &&
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path) {
            remove_warn(path);
        }
    }
    closedir(d);
}
