/* train/manifest.c - see manifest.h. */
#include "train/manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "common/mpi_check.h"
#include "launcher/version.h"

#define MAX_LAUNCHES 100000

/* ---------------------------------------------------------------- fingerprint */

static dure_status_t read_at(int fd, const char *path, unsigned char *buf, size_t len,
                             uint64_t off)
{
    dure_status_t st = DURE_OK;
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        DURE_SYS_TRY(n >= 0, "read '%s' at byte %llu", path,
                     (unsigned long long)(off + got));
        DURE_CHECK(n > 0, DURE_ERR_IO, "'%s' shrank while it was fingerprinted", path);
        got += (size_t)n;
    }
out:
    return st;
}

/* The sampled digest of one file of `size` bytes (see manifest.h). */
static dure_status_t sample_file(const char *path, uint64_t size,
                                 uint8_t digest[DURE_SHA256_BYTES])
{
    dure_status_t st = DURE_OK;
    dure_sha256_t *h = NULL;
    unsigned char *buf = NULL, le[8];
    int fd = -1;
    const uint64_t span = (uint64_t)MANIFEST_SAMPLE_BLOCKS * MANIFEST_SAMPLE_BYTES;
    DURE_TRY(dure_sha256_new(&h));
    for (int i = 0; i < 8; i++) {
        le[i] = (unsigned char)(size >> (8 * i));
    }
    DURE_TRY(dure_sha256_update(h, le, sizeof le));
    if (size <= span) {
        DURE_TRY(dure_sha256_update_file(h, path, NULL));
    } else {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        DURE_SYS_TRY(fd >= 0, "open dataset '%s'", path);
        buf = malloc(MANIFEST_SAMPLE_BYTES);
        DURE_ALLOC_TRY(buf, MANIFEST_SAMPLE_BYTES);
        for (uint64_t i = 0; i < MANIFEST_SAMPLE_BLOCKS; i++) {
            uint64_t off =
                i * (size - MANIFEST_SAMPLE_BYTES) / (MANIFEST_SAMPLE_BLOCKS - 1);
            DURE_TRY(read_at(fd, path, buf, MANIFEST_SAMPLE_BYTES, off));
            DURE_TRY(dure_sha256_update(h, buf, MANIFEST_SAMPLE_BYTES));
        }
    }
    DURE_TRY(dure_sha256_final(h, digest));
out:
    if (fd >= 0) {
        close(fd);
    }
    free(buf);
    dure_sha256_free(h);
    return st;
}

dure_status_t manifest_fingerprint(const char *const *paths, size_t n,
                                   enum manifest_fp_mode mode,
                                   struct manifest_fingerprint *fp,
                                   char (*file_hex)[DURE_SHA256_HEX])
{
    dure_status_t st = DURE_OK;
    dure_sha256_t *all = NULL;
    uint64_t total = 0;
    memset(fp, 0, sizeof *fp);
    DURE_CHECK(n > 0, DURE_ERR_ARG, "no dataset file to fingerprint");
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        DURE_SYS_TRY(stat(paths[i], &sb) == 0, "dataset '%s'", paths[i]);
        DURE_CHECK(S_ISREG(sb.st_mode), DURE_ERR_IO, "dataset '%s' is not a regular file",
                   paths[i]);
        total += (uint64_t)sb.st_size;
    }
    if (mode == MANIFEST_FP_AUTO) {
        mode = total <= MANIFEST_FULL_MAX_BYTES ? MANIFEST_FP_FULL : MANIFEST_FP_SAMPLED;
    }
    if (mode == MANIFEST_FP_FULL) {
        snprintf(fp->mode, sizeof fp->mode, "full");
    } else {
        snprintf(fp->mode, sizeof fp->mode, "sampled-%dx%uMiB", MANIFEST_SAMPLE_BLOCKS,
                 MANIFEST_SAMPLE_BYTES >> 20);
    }
    DURE_TRY(dure_sha256_new(&all));
    for (size_t i = 0; i < n; i++) {
        uint8_t d[DURE_SHA256_BYTES];
        char hex[DURE_SHA256_HEX];
        uint64_t size = 0;
        struct stat sb;
        if (mode == MANIFEST_FP_FULL) {
            DURE_TRY(dure_sha256_file(paths[i], d, &size));
        } else {
            DURE_SYS_TRY(stat(paths[i], &sb) == 0, "dataset '%s'", paths[i]);
            DURE_TRY(sample_file(paths[i], (uint64_t)sb.st_size, d));
        }
        dure_sha256_hex(d, hex);
        if (file_hex) {
            memcpy(file_hex[i], hex, DURE_SHA256_HEX);
        }
        DURE_TRY(dure_sha256_update(all, hex, 64));
        DURE_TRY(dure_sha256_update(all, "  ", 2));
        DURE_TRY(dure_sha256_update(all, paths[i], strlen(paths[i])));
        DURE_TRY(dure_sha256_update(all, "\n", 1));
    }
    {
        uint8_t d[DURE_SHA256_BYTES];
        DURE_TRY(dure_sha256_final(all, d));
        dure_sha256_hex(d, fp->value);
    }
    fp->bytes = total;
out:
    dure_sha256_free(all);
    return st;
}

/* ---------------------------------------------------------------- topology */

static void write_world(struct json_writer *w, const struct dure_topo *t)
{
    json_key(w, "world");
    json_begin_object(w);
    json_key(w, "size");
    json_int(w, t->size);
    json_key(w, "nodes");
    json_int(w, t->nodes);
    json_key(w, "ranks_per_node");
    json_begin_array(w);
    for (int n = 0; n < t->nodes; n++) {
        json_int(w, t->count[n]);
    }
    json_end_array(w);
    json_key(w, "hosts");
    json_begin_array(w);
    for (int n = 0; n < t->nodes; n++) {
        json_begin_object(w);
        json_key(w, "name");
        json_string(w, t->host[n]);
        json_key(w, "leader");
        json_int(w, t->leader[n]);
        json_key(w, "ranks");
        json_begin_array(w);
        for (int r = 0; r < t->size; r++) {
            if (t->node_of[r] == n) {
                json_int(w, r);
            }
        }
        json_end_array(w);
        json_key(w, "local_ranks");
        json_begin_array(w);
        for (int r = 0; r < t->size; r++) {
            if (t->node_of[r] == n) {
                json_int(w, t->local_rank[r]);
            }
        }
        json_end_array(w);
        json_end_object(w);
    }
    json_end_array(w);
    json_end_object(w);
}

/* ---------------------------------------------------------------- writing */

static void write_kv_object(struct json_writer *w, const char *key,
                            const struct manifest_kv *kv, size_t n)
{
    json_key(w, key);
    json_begin_object(w);
    for (size_t i = 0; i < n; i++) {
        json_key(w, kv[i].key);
        json_string(w, kv[i].value);
    }
    json_end_object(w);
}

static void write_libraries(struct json_writer *w)
{
    struct dure_versions v;
    dure_versions_get(&v);
    json_key(w, "dure");
    json_begin_object(w);
    json_key(w, "version");
    json_string(w, v.dure);
    json_key(w, "git");
    json_string(w, v.git);
    json_end_object(w);
    json_key(w, "libraries");
    json_begin_object(w);
    json_key(w, "mpi");
    json_string(w, v.mpi);
    json_key(w, "hdf5");
    json_string(w, v.hdf5);
    json_key(w, "openblas");
    json_string(w, v.openblas);
    json_key(w, "nccl");
    json_string(w, v.gpu_built ? v.nccl : "not built");
    json_key(w, "cuda_runtime");
    json_string(w, v.gpu_built ? v.cuda_runtime : "not built");
    json_key(w, "cuda_driver");
    json_string(w, v.gpu_built ? v.cuda_driver : "not built");
    json_key(w, "gpu_code");
    json_string(w, v.gpu_code);
    json_end_object(w);
}

static dure_status_t write_dataset(struct json_writer *w, const struct manifest_info *in)
{
    dure_status_t st = DURE_OK;
    char(*hex)[DURE_SHA256_HEX] = NULL;
    struct manifest_fingerprint fp;
    json_key(w, "dataset");
    if (in->n_data_paths == 0) {
        json_null(w);
        goto out;
    }
    hex = calloc(in->n_data_paths, sizeof *hex);
    DURE_ALLOC_TRY(hex, in->n_data_paths * sizeof *hex);
    DURE_TRY(manifest_fingerprint(in->data_paths, in->n_data_paths, in->fp_mode, &fp, hex));
    json_begin_object(w);
    json_key(w, "fingerprint");
    json_begin_object(w);
    json_key(w, "algorithm");
    json_string(w, "sha256");
    json_key(w, "mode");
    json_string(w, fp.mode);
    json_key(w, "value");
    json_string(w, fp.value);
    json_end_object(w);
    json_key(w, "bytes");
    json_uint(w, fp.bytes);
    json_key(w, "files");
    json_begin_array(w);
    for (size_t i = 0; i < in->n_data_paths; i++) {
        struct stat sb;
        json_begin_object(w);
        json_key(w, "path");
        json_string(w, in->data_paths[i]);
        json_key(w, "bytes");
        json_uint(w, stat(in->data_paths[i], &sb) == 0 ? (uint64_t)sb.st_size : 0);
        json_key(w, "sha256");
        json_string(w, hex[i]);
        json_end_object(w);
    }
    json_end_array(w);
    json_end_object(w);
out:
    free(hex);
    return st;
}

static dure_status_t write_manifest(FILE *f, const char *what,
                                    const struct manifest_info *in, int launch,
                                    const struct dure_topo *topo)
{
    dure_status_t st = DURE_OK;
    struct json_writer w;
    char when[32], abs_dir[PATH_MAX];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!realpath(in->run_dir, abs_dir)) {
        snprintf(abs_dir, sizeof abs_dir, "%s", in->run_dir);
    }

    json_writer_init(&w, f, 1);
    json_begin_object(&w);
    json_key(&w, "format");
    json_string(&w, MANIFEST_FORMAT);
    json_key(&w, "format_version");
    json_int(&w, MANIFEST_FORMAT_VERSION);
    json_key(&w, "created_at");
    json_string(&w, when);
    json_key(&w, "run_dir");
    json_string(&w, abs_dir);
    json_key(&w, "launch");
    json_int(&w, launch);
    json_key(&w, "resumed_from");
    if (in->resumed_from) {
        json_begin_object(&w);
        json_key(&w, "checkpoint");
        json_string(&w, in->resumed_from);
        json_key(&w, "step");
        json_uint(&w, in->resumed_step);
        json_end_object(&w);
    } else {
        json_null(&w);
    }
    if (in->command) {
        json_key(&w, "command");
        json_string(&w, in->command);
    }
    write_libraries(&w);
    write_world(&w, topo);
    json_key(&w, "backend");
    json_string(&w, in->backend);
    write_kv_object(&w, "algorithms", in->algorithms, in->n_algorithms);
    json_key(&w, "seed");
    json_uint(&w, in->seed);
    json_key(&w, "deterministic");
    json_bool(&w, in->deterministic);
    if (in->jobspec_hash) {
        json_key(&w, "jobspec_hash");
        json_string(&w, in->jobspec_hash);
    }
    write_kv_object(&w, "jobspec", in->jobspec, in->n_jobspec);
    DURE_TRY(write_dataset(&w, in));
    json_end_object(&w);
    fputc('\n', f);
    DURE_TRY(json_writer_finish(&w, what));
out:
    return st;
}

/*
 * Rank 0: pick manifest.json or manifest.launch-<k>.json, write it under a
 * temp name, fsync, and link it into place (link fails rather than replace
 * an existing file), then fsync the directory.
 */
static dure_status_t publish(const struct manifest_info *in, const struct dure_topo *topo,
                             char path[PATH_MAX])
{
    dure_status_t st = DURE_OK;
    char tmp[PATH_MAX + 8];
    int launch = 0, n, fd = -1, tmp_made = 0;
    FILE *f = NULL;
    struct stat sb;
    DURE_SYS_TRY(stat(in->run_dir, &sb) == 0, "run directory '%s'", in->run_dir);
    DURE_CHECK(S_ISDIR(sb.st_mode), DURE_ERR_ARG, "run directory '%s' is not a directory",
               in->run_dir);
    for (;; launch++) {
        DURE_CHECK(launch < MAX_LAUNCHES, DURE_ERR_ARG,
                   "run directory '%s' already holds %d manifests", in->run_dir, launch);
        n = launch == 0 ? snprintf(path, PATH_MAX, "%s/manifest.json", in->run_dir)
                        : snprintf(path, PATH_MAX, "%s/manifest.launch-%d.json",
                                   in->run_dir, launch);
        DURE_CHECK(n > 0 && n < PATH_MAX, DURE_ERR_ARG,
                   "run directory path '%s' is too long", in->run_dir);
        if (access(path, F_OK) != 0 && errno == ENOENT) {
            break;
        }
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    DURE_SYS_TRY(unlink(tmp) == 0 || errno == ENOENT, "remove stale '%s'", tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    DURE_SYS_TRY(fd >= 0, "create '%s'", tmp);
    tmp_made = 1;
    f = fdopen(fd, "w");
    DURE_SYS_TRY(f != NULL, "open '%s'", tmp);
    fd = -1;
    DURE_TRY(write_manifest(f, path, in, launch, topo));
    DURE_SYS_TRY(fflush(f) == 0, "write '%s'", tmp);
    DURE_SYS_TRY(fsync(fileno(f)) == 0, "fsync '%s'", tmp);
    {
        int rc = fclose(f);
        f = NULL;
        DURE_SYS_TRY(rc == 0, "close '%s'", tmp);
    }
    DURE_SYS_TRY(link(tmp, path) == 0, "publish '%s'", path);
    {
        int dfd = open(in->run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DURE_SYS_TRY(dfd >= 0, "open run directory '%s'", in->run_dir);
        int rc = fsync(dfd);
        close(dfd);
        DURE_SYS_TRY(rc == 0, "fsync run directory '%s'", in->run_dir);
    }
out:
    if (f) {
        fclose(f);
    }
    if (fd >= 0) {
        close(fd);
    }
    if (tmp_made) {
        unlink(tmp);
    }
    return st;
}

dure_status_t manifest_write(MPI_Comm comm, const struct manifest_info *info, char *path,
                             size_t cap)
{
    dure_status_t st = DURE_OK;
    int rank = 0, result = DURE_OK;
    char buf[PATH_MAX] = "";
    struct dure_topo own;
    const struct dure_topo *topo = info->topo;
    memset(&own, 0, sizeof own);
    DURE_MPI_TRY(MPI_Comm_rank(comm, &rank));
    if (!topo) {
        DURE_TRY(dure_topo_gather(comm, -1, &own));
        topo = &own;
    }
    if (rank == 0) {
        result = (int)publish(info, topo, buf);
    }
    DURE_MPI_TRY(MPI_Bcast(&result, 1, MPI_INT, 0, comm));
    st = (dure_status_t)result;
    if (st == DURE_OK) {
        DURE_MPI_TRY(MPI_Bcast(buf, (int)sizeof buf, MPI_CHAR, 0, comm));
    }
    if (st == DURE_OK && path) {
        DURE_CHECK(strlen(buf) < cap, DURE_ERR_ARG, "manifest path '%s' is too long", buf);
        memcpy(path, buf, strlen(buf) + 1);
    }
out:
    dure_topo_free(&own);
    return st;
}
