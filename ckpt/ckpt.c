/*
 * ckpt/ckpt.c - the collective checkpoint save and load. See ckpt.h; the
 * HDF5 layout lives in ckpt_h5.c, the directory protocol in ckpt_files.c and
 * the serial readers in ckpt_read.c.
 */
#include "ckpt/ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/agree.h"
#include "common/fsutil.h"
#include "common/h5guard.h"
#include "common/mpi_check.h"
#include "common/sha256.h"
#include "common/timing.h"
#include "ckpt/ckpt_files.h"
#include "ckpt/ckpt_h5.h"
#include "ckpt/ckpt_sum.h"

/* Bytes per pwrite call (Linux writes at most about 2 GiB at once). */
#define WRITE_STEP ((size_t)1 << 30)

/* dure_agree on one step of the checkpoint at path: no rank enters the next
 * collective call after another has failed. */
static dure_status_t agree(MPI_Comm comm, dure_status_t local, const char *what,
                           const char *path)
{
    char step[4400];
    snprintf(step, sizeof step, "checkpoint '%s': %s", path, what);
    return dure_agree(comm, local, step);
}

/* ---------------------------------------------------------------- save */

/* Arguments every rank can check alone. */
static dure_status_t save_check_args(const char *dir, const struct ckpt_meta *m,
                                     const float *p, const float *am, const float *av,
                                     size_t offset, size_t len, int keep)
{
    dure_status_t st = DURE_OK;
    struct stat sb;
    DURE_CHECK(dir && m, DURE_ERR_ARG, "ckpt_save: dir and meta are required");
    DURE_CHECK(m->n_params > 0, DURE_ERR_ARG,
               "checkpoint in '%s': n_params is 0, nothing to save", dir);
    DURE_CHECK(offset <= m->n_params && len <= m->n_params - offset, DURE_ERR_ARG,
               "checkpoint in '%s': shard [%zu, %zu) lies outside the %llu parameters", dir,
               offset, offset + len, (unsigned long long)m->n_params);
    DURE_CHECK(len == 0 || (p && am && av), DURE_ERR_ARG,
               "checkpoint in '%s': params, adam_m and adam_v are required for a shard of "
               "%zu elements",
               dir, len);
    DURE_CHECK(m->n_rng <= CKPT_RNG_MAX, DURE_ERR_ARG,
               "checkpoint in '%s': %u RNG words, at most %d", dir, m->n_rng, CKPT_RNG_MAX);
    DURE_CHECK(memchr(m->model, '\0', sizeof m->model) != NULL, DURE_ERR_ARG,
               "checkpoint in '%s': model description is not terminated", dir);
    DURE_CHECK(keep >= 0, DURE_ERR_ARG, "checkpoint in '%s': keep = %d must be >= 0", dir,
               keep);
    {
        /* A rank's write past its file size limit fails with EFBIG part way
         * through the collective write, which would leave the others waiting:
         * refuse now. */
        struct rlimit lim;
        uint64_t need = ckh5_file_bytes_max(m->n_params);
        DURE_SYS_TRY(getrlimit(RLIMIT_FSIZE, &lim) == 0, "getrlimit(RLIMIT_FSIZE)");
        DURE_CHECK(lim.rlim_cur == RLIM_INFINITY || (uint64_t)lim.rlim_cur >= need,
                   DURE_ERR_IO,
                   "checkpoint in '%s': the file size limit (ulimit -f) of %llu bytes is "
                   "below the checkpoint's size (up to %llu bytes)",
                   dir, (unsigned long long)lim.rlim_cur, (unsigned long long)need);
    }
    DURE_SYS_TRY(stat(dir, &sb) == 0, "checkpoint directory '%s'", dir);
    DURE_CHECK(S_ISDIR(sb.st_mode), DURE_ERR_ARG,
               "checkpoint directory '%s' is not a directory", dir);
out:
    return st;
}

static int cmp_range(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : (x[1] < y[1] ? -1 : x[1] > y[1]);
}

/*
 * Collective: the shards tile [0, N) exactly and every rank passes rank 0's
 * metadata. Same result on every rank.
 */
static dure_status_t save_check_collective(MPI_Comm comm, const char *path,
                                           const struct ckpt_meta *m, size_t offset,
                                           size_t len)
{
    dure_status_t st = DURE_OK, local = DURE_OK;
    int rank = 0, size = 1;
    uint64_t mine[2] = {offset, len}, *all = NULL;
    struct ckpt_meta root;
    DURE_MPI_TRY(MPI_Comm_rank(comm, &rank));
    DURE_MPI_TRY(MPI_Comm_size(comm, &size));
    all = malloc(2 * sizeof *all * (size_t)size);
    DURE_ALLOC_TRY(all, 2 * sizeof *all * (size_t)size);
    DURE_MPI_TRY(MPI_Allgather(mine, 2, MPI_UINT64_T, all, 2, MPI_UINT64_T, comm));
    qsort(all, (size_t)size, 2 * sizeof *all, cmp_range);
    uint64_t next = 0;
    for (int r = 0; r < size && st == DURE_OK; r++) {
        if (all[2 * r + 1] == 0) {
            continue;
        }
        DURE_CHECK(all[2 * r] == next, DURE_ERR_ARG,
                   "checkpoint '%s': the ranks' shards do not tile the %llu parameters: "
                   "%s at element %llu",
                   path, (unsigned long long)m->n_params,
                   all[2 * r] > next ? "gap" : "overlap",
                   (unsigned long long)(all[2 * r] > next ? next : all[2 * r]));
        next = all[2 * r] + all[2 * r + 1];
    }
    DURE_CHECK(next == m->n_params, DURE_ERR_ARG,
               "checkpoint '%s': the ranks' shards cover %llu of %llu parameters", path,
               (unsigned long long)next, (unsigned long long)m->n_params);
    memcpy(&root, m, sizeof root);
    DURE_MPI_TRY(MPI_Bcast(&root, (int)sizeof root, MPI_BYTE, 0, comm));
    local = ckpt_meta_equal(&root, m) ? DURE_OK : DURE_ERR_INTERNAL;
    if (local != DURE_OK) {
        dure_log_error(__FILE__, __LINE__,
                       "checkpoint '%s': rank %d's metadata (step %llu) differs from "
                       "rank 0's (step %llu): the ranks are out of step",
                       path, rank, (unsigned long long)m->step,
                       (unsigned long long)root.step);
    }
    DURE_TRY(agree(comm, local, "metadata consistency check", path));
out:
    free(all);
    return st;
}

/* pwrite all of buf[bytes] at `at`, in pieces the kernel accepts. */
static dure_status_t write_at(int fd, const char *path, const void *buf, size_t bytes,
                              uint64_t at)
{
    dure_status_t st = DURE_OK;
    const char *p = buf;
    while (bytes > 0) {
        size_t step = bytes < WRITE_STEP ? bytes : WRITE_STEP;
        ssize_t n = pwrite(fd, p, step, (off_t)at);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        DURE_SYS_TRY(n > 0, "checkpoint '%s': write %zu bytes at byte %llu", path, step,
                     (unsigned long long)at);
        p += n;
        at += (uint64_t)n;
        bytes -= (size_t)n;
    }
out:
    return st;
}

/*
 * Rank 0 lays out `tmp` (metadata and allocated, unwritten datasets) and
 * reserves its space; every rank learns where the bytes go.
 */
static dure_status_t save_skeleton(MPI_Comm comm, int rank, const char *tmp,
                                   const struct ckpt_meta *m, struct ckh5_layout *lay)
{
    dure_status_t st = DURE_OK, local = DURE_OK;
    if (rank == 0) {
        local = ckh5_skeleton_create(tmp, m, lay);
        if (local == DURE_OK) {
            /* the collective writes that follow cannot then run out of
             * space part way: parallel HDF5 does not fail symmetrically
             * when one rank's write fails, and the ranks would hang */
            local = dure_file_reserve(tmp, 0, lay->file_bytes, "checkpoint");
        }
    }
    DURE_TRY(agree(comm, local, "file layout and space reservation", tmp));
    DURE_MPI_TRY(MPI_Bcast(lay, (int)sizeof *lay, MPI_BYTE, 0, comm));
out:
    return st;
}

/*
 * Every rank writes its shard of the three datasets straight to their
 * offsets, then sums its pieces of the checksum blocks while the disk takes
 * the bytes; rank 0 joins the pieces and writes /checksums. Same status on
 * every rank. fd: this rank's descriptor of tmp (open, write-only).
 */
static dure_status_t save_write_data(MPI_Comm comm, int rank, int fd, const char *tmp,
                                     const struct ckh5_layout *lay,
                                     const struct ckpt_meta *m, const float *const bufs[3],
                                     size_t offset, size_t len)
{
    dure_status_t st = DURE_OK, local = DURE_OK;
    int size = 1, mine = 0;
    size_t per = ckpt_sum_pieces_max(len);
    struct ckpt_piece *pieces = NULL, *all = NULL;
    int *counts = NULL, *displs = NULL;
    uint32_t *sums = NULL;
    uint64_t blocks = ckpt_sum_blocks(m->n_params);

    DURE_MPI_TRY(MPI_Comm_size(comm, &size));
    for (int i = 0; i < CKPT_N_DATASETS && local == DURE_OK && len > 0; i++) {
        local = write_at(fd, tmp, bufs[i], len * sizeof(float),
                         lay->data[i] + offset * sizeof(float));
    }
    if (local == DURE_OK && len > 0) {
        /* Start the write-back now; the checksums below overlap it. Only a
         * hint: the fsync later is what makes the bytes durable. */
        (void)sync_file_range(fd, (off_t)(lay->data[0] + offset * sizeof(float)),
                              (off_t)(lay->data[2] - lay->data[0] + len * sizeof(float)),
                              SYNC_FILE_RANGE_WRITE);
    }
    pieces = malloc(CKPT_N_DATASETS * per * sizeof *pieces);
    if (!pieces && local == DURE_OK) {
        local = DURE_ERR_NOMEM;
        dure_log_error(__FILE__, __LINE__, "checkpoint '%s': out of memory for %zu checksums",
                       tmp, CKPT_N_DATASETS * per);
    }
    for (int i = 0; i < CKPT_N_DATASETS && local == DURE_OK; i++) {
        mine += (int)ckpt_sum_pieces(i, bufs[i], offset, len, pieces + mine);
    }
    DURE_TRY(agree(comm, local, "data write", tmp));

    /* Rank 0 gathers every rank's pieces (a few per rank and block). */
    int bytes = mine * (int)sizeof *pieces, total = 0;
    if (rank == 0) {
        counts = malloc((size_t)size * sizeof *counts);
        displs = malloc((size_t)size * sizeof *displs);
    }
    local = rank != 0 || (counts && displs) ? DURE_OK : DURE_ERR_NOMEM;
    DURE_TRY(agree(comm, local, "checksum gather", tmp));
    DURE_MPI_TRY(MPI_Gather(&bytes, 1, MPI_INT, counts, 1, MPI_INT, 0, comm));
    if (rank == 0) {
        for (int r = 0; r < size; r++) {
            displs[r] = total;
            total += counts[r];
        }
        all = malloc(total ? (size_t)total : 1);
        sums = malloc(CKPT_N_DATASETS * blocks * sizeof *sums);
        local = all && sums ? DURE_OK : DURE_ERR_NOMEM;
        if (local != DURE_OK) {
            dure_log_error(__FILE__, __LINE__, "checkpoint '%s': out of memory joining "
                           "the checksums", tmp);
        }
    }
    DURE_TRY(agree(comm, local, "checksum gather", tmp));
    DURE_MPI_TRY(MPI_Gatherv(pieces, bytes, MPI_BYTE, all, counts, displs, MPI_BYTE, 0, comm));
    if (rank == 0) {
        local = ckpt_sum_join(all, (size_t)total / sizeof *all, m->n_params, sums);
        if (local == DURE_OK) {
            local = write_at(fd, tmp, sums, CKPT_N_DATASETS * blocks * sizeof *sums,
                             lay->sums);
        }
    }
    DURE_TRY(agree(comm, local, "checksum write", tmp));
out:
    free(sums);
    free(all);
    free(displs);
    free(counts);
    free(pieces);
    return st;
}

/* Rank 0, after the file is flushed and hashed: sidecar, rename, latest. */
static dure_status_t save_publish(const char *dir, const char *tmp, const char *path,
                                  const char *hex)
{
    dure_status_t st = DURE_OK;
    char latest[CKPT_PATH_MAX], side[CKPT_PATH_MAX], line[CKPT_PATH_MAX];
    int side_written = 0;
    int n = snprintf(latest, sizeof latest, "%s/latest", dir);
    DURE_CHECK(n >= 0 && (size_t)n < sizeof latest, DURE_ERR_ARG,
               "checkpoint directory path '%s' is too long", dir);
    DURE_TRY(ckpt_sidecar_path(path, side, sizeof side));
    /* Sidecar first: until the rename below, it names no file (or an older
     * file of the same step, which it then fails to match: never valid). */
    DURE_TRY(ckpt_sidecar_write(path, hex));
    side_written = 1;
    DURE_SYS_TRY(rename(tmp, path) == 0, "rename '%s' to '%s'", tmp, path);
    side_written = 0;
    DURE_TRY(ckpt_fsync_dir(dir));
    snprintf(line, sizeof line, "%s\n", ckpt_basename(path));
    DURE_TRY(ckpt_write_atomic(latest, line));
    DURE_TRY(ckpt_fsync_dir(dir));
out:
    if (side_written) {
        unlink(side);
    }
    return st;
}

/*
 * Which rank hashes the file while the others flush it. The hasher must see
 * every byte: on its own node the page cache shares them at once, but bytes
 * written on other nodes (a parallel file system) reach it only once their
 * writers have flushed them. So the ranks away from rank 0's node flush
 * first, then the last rank on rank 0's node hashes while the rest of that
 * node flushes (on one node: every flush overlaps the hash).
 * *home: this rank shares rank 0's node; *hasher: the hashing rank.
 */
static dure_status_t save_roles(MPI_Comm comm, int rank, int *home, int *hasher)
{
    dure_status_t st = DURE_OK;
    MPI_Comm node = MPI_COMM_NULL;
    int node_rank = 0, node_size = 1, lowest = 0, cand = -1;
    DURE_MPI_TRY(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node));
    DURE_MPI_TRY(MPI_Comm_rank(node, &node_rank));
    DURE_MPI_TRY(MPI_Comm_size(node, &node_size));
    DURE_MPI_TRY(MPI_Allreduce(&rank, &lowest, 1, MPI_INT, MPI_MIN, node));
    *home = lowest == 0;
    cand = *home && node_rank == node_size - 1 ? rank : -1;
    DURE_MPI_TRY(MPI_Allreduce(&cand, hasher, 1, MPI_INT, MPI_MAX, comm));
out:
    if (node != MPI_COMM_NULL) {
        MPI_Comm_free(&node);
    }
    return st;
}

dure_status_t ckpt_save(MPI_Comm comm, const char *dir, const struct ckpt_meta *meta,
                        const float *params, const float *adam_m, const float *adam_v,
                        size_t offset, size_t len, int keep, struct ckpt_io_stats *stats)
{
    dure_status_t st = DURE_OK, local = DURE_OK;
    struct dure_h5_quiet q;
    int rank = 0, size = 1, tmp_may_exist = 0, fd = -1, home = 1, hasher = 0;
    char path[CKPT_PATH_MAX] = "", tmp[CKPT_PATH_MAX] = "", hex[DURE_SHA256_HEX] = "";
    const float *const bufs[3] = {params, adam_m, adam_v};
    struct ckpt_meta m;
    struct ckh5_layout lay;
    double t0 = dure_now_s(), t;
    /* total, write, sync, hash: reduced with MAX so every rank reports the same. */
    double times[4] = {0, 0, 0, 0}, tmax[4];
    uint64_t bytes = 0;

    dure_h5_quiet_begin(&q);
    DURE_MPI_TRY(MPI_Comm_rank(comm, &rank));
    DURE_MPI_TRY(MPI_Comm_size(comm, &size));
    local = save_check_args(dir, meta, params, adam_m, adam_v, offset, len, keep);
    if (local == DURE_OK) {
        local = ckpt_path(dir, meta->step, path, sizeof path);
    }
    if (local == DURE_OK && snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        local = DURE_ERR_ARG;
        dure_log_error(__FILE__, __LINE__, "checkpoint path '%s' is too long", path);
    }
    DURE_TRY(agree(comm, local, "argument check", dir ? dir : "(null)"));
    memcpy(&m, meta, sizeof m);
    m.world_size = (uint32_t)size;
    DURE_TRY(save_check_collective(comm, path, &m, offset, len));
    DURE_TRY(save_roles(comm, rank, &home, &hasher));

    /* A temp file left by a crashed save of the same step. */
    if (rank == 0 && unlink(tmp) != 0 && errno != ENOENT) {
        local = DURE_ERR_IO;
        dure_log_syserr(__FILE__, __LINE__, "remove stale '%s'", tmp);
    }
    DURE_TRY(agree(comm, local, "stale temp file removal", path));
    tmp_may_exist = 1;

    t = dure_now_s();
    DURE_TRY(save_skeleton(comm, rank, tmp, &m, &lay));
    fd = open(tmp, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        local = DURE_ERR_IO;
        dure_log_syserr(__FILE__, __LINE__, "checkpoint '%s': open for writing", tmp);
    }
    DURE_TRY(agree(comm, local, "open for writing", tmp));
    DURE_TRY(save_write_data(comm, rank, fd, tmp, &lay, &m, bufs, offset, len));
    times[1] = dure_now_s() - t;

    /* The contents are final: each rank flushes its own writes (see
     * save_roles for the order) while the hasher hashes them. */
    t = dure_now_s();
    if (!home) {
        local = fsync(fd) == 0 ? DURE_OK : DURE_ERR_IO;
        if (local != DURE_OK) {
            dure_log_syserr(__FILE__, __LINE__, "checkpoint '%s': fsync", tmp);
        }
    }
    DURE_TRY(agree(comm, local, "flush on the other nodes", tmp));
    if (rank == hasher) {
        uint8_t digest[DURE_SHA256_BYTES];
        double th = dure_now_s();
        local = dure_sha256_file(tmp, digest, &bytes);
        dure_sha256_hex(digest, hex);
        times[3] = dure_now_s() - th;
    }
    if (home && local == DURE_OK && fsync(fd) != 0) {
        local = DURE_ERR_IO;
        dure_log_syserr(__FILE__, __LINE__, "checkpoint '%s': fsync", tmp);
    }
    times[2] = dure_now_s() - t;
    DURE_TRY(agree(comm, local, "flush and hash", path));
    DURE_MPI_TRY(MPI_Bcast(hex, DURE_SHA256_HEX, MPI_CHAR, hasher, comm));
    DURE_MPI_TRY(MPI_Bcast(&bytes, 1, MPI_UINT64_T, hasher, comm));

    if (rank == 0) {
        t = dure_now_s();
        local = save_publish(dir, tmp, path, hex);
        times[2] += dure_now_s() - t;
        if (local == DURE_OK) {
            ckpt_prune(dir, m.step, keep);
        }
    }
    DURE_TRY(agree(comm, local, "publish (sidecar, rename, latest)", path));
    tmp_may_exist = 0;
    times[0] = dure_now_s() - t0;
    DURE_MPI_TRY(MPI_Allreduce(times, tmax, 4, MPI_DOUBLE, MPI_MAX, comm));
    if (stats) {
        stats->total_s = tmax[0];
        stats->write_s = tmax[1];
        stats->sync_s = tmax[2];
        stats->hash_s = tmax[3];
        stats->bytes = bytes;
    }
out:
    if (fd >= 0) {
        close(fd);
    }
    if (st != DURE_OK && tmp_may_exist && rank == 0) {
        unlink(tmp);
    }
    dure_h5_quiet_end(&q);
    return st;
}

/* ---------------------------------------------------------------- load */

static dure_status_t check_shape(const char *path, const struct ckpt_meta *m,
                                 const char *expect_model, uint64_t expect_n)
{
    dure_status_t st = DURE_OK;
    if (expect_model) {
        DURE_CHECK(strcmp(m->model, expect_model) == 0 && m->n_params == expect_n,
                   DURE_ERR_FORMAT,
                   "checkpoint '%s' is for another model: it holds '%s' (%llu parameters), "
                   "this run builds '%s' (%llu parameters)",
                   path, m->model, (unsigned long long)m->n_params, expect_model,
                   (unsigned long long)expect_n);
    }
out:
    return st;
}

/*
 * The stored block sums of an open checkpoint into a malloc'ed *sums, or
 * NULL for format version 1 (HDF5's Fletcher32 filter checks those).
 */
static dure_status_t load_sums(hid_t file, const char *path, uint64_t n, uint32_t **sums)
{
    dure_status_t st = DURE_OK;
    uint32_t version = 0;
    size_t words = CKPT_N_DATASETS * (size_t)ckpt_sum_blocks(n);
    *sums = NULL;
    DURE_TRY(ckh5_version_read(file, path, &version));
    if (version < 2) {
        goto out;
    }
    *sums = malloc(words * sizeof **sums);
    DURE_ALLOC_TRY(*sums, words * sizeof **sums);
    DURE_TRY(ckh5_sums_read(file, path, n, *sums));
out:
    return st;
}

dure_status_t ckpt_load(MPI_Comm comm, const char *path, const char *expect_model,
                        uint64_t expect_n, struct ckpt_meta *meta_out, float *params,
                        float *adam_m, float *adam_v, size_t offset, size_t len,
                        struct ckpt_io_stats *stats)
{
    dure_status_t st = DURE_OK, local = DURE_OK;
    struct dure_h5_quiet q;
    hid_t fapl = -1, dxpl = -1, file = -1, d = -1;
    float *const bufs[3] = {params, adam_m, adam_v};
    struct ckpt_meta m;
    struct stat sb;
    double t0 = dure_now_s(), tmax = 0;
    uint32_t *sums = NULL;

    dure_h5_quiet_begin(&q);
    if (stat(path, &sb) != 0) {
        local = DURE_ERR_IO;
        dure_log_syserr(__FILE__, __LINE__, "checkpoint '%s'", path);
    }
    DURE_TRY(agree(comm, local, "open", path));
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    dxpl = H5Pcreate(H5P_DATASET_XFER);
    /* Independent reads: a damaged chunk then fails on the rank that reads it
     * without leaving the others inside a collective; each rank reads one
     * contiguous range, so collective buffering would gain nothing. */
    if (fapl < 0 || dxpl < 0 || H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0 ||
        H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_INDEPENDENT) < 0) {
        local = ckh5_fail(__FILE__, __LINE__, DURE_ERR_HDF5,
                          "checkpoint '%s': set up HDF5 property lists", path);
    }
    DURE_TRY(agree(comm, local, "HDF5 setup", path));
    /* The file's structure first, on every rank: libhdf5 1.10 trusts sizes
     * it reads (common/h5guard.h). */
    char what[PATH_MAX + 16];
    snprintf(what, sizeof what, "checkpoint '%s'", path);
    local = h5guard_path(path, what);
    DURE_TRY(agree(comm, local, "structure check", path));
    file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    local = file >= 0 ? DURE_OK
                      : ckh5_fail(__FILE__, __LINE__, DURE_ERR_FORMAT,
                                  "checkpoint '%s' cannot be opened as HDF5", path);
    DURE_TRY(agree(comm, local, "open", path));
    local = ckh5_meta_read(file, path, &m);
    if (local == DURE_OK) {
        local = check_shape(path, &m, expect_model, expect_n);
    }
    if (local == DURE_OK && (offset > m.n_params || len > m.n_params - offset)) {
        local = DURE_ERR_ARG;
        dure_log_error(__FILE__, __LINE__,
                       "checkpoint '%s': shard [%zu, %zu) lies outside its %llu parameters",
                       path, offset, offset + len, (unsigned long long)m.n_params);
    }
    if (local == DURE_OK && len > 0 && !params) {
        local = DURE_ERR_ARG;
        dure_log_error(__FILE__, __LINE__, "checkpoint '%s': params buffer is NULL", path);
    }
    if (local == DURE_OK) {
        local = load_sums(file, path, m.n_params, &sums);
    }
    DURE_TRY(agree(comm, local, "metadata check", path));
    for (int i = 0; i < CKPT_N_DATASETS; i++) {
        /* All ranks skip the same moments: the pointer is NULL on all or on none. */
        int want = i == 0 || bufs[i] != NULL;
        int any = 0;
        DURE_MPI_TRY(MPI_Allreduce(&want, &any, 1, MPI_INT, MPI_MAX, comm));
        if (!any) {
            continue;
        }
        local = want ? DURE_OK : DURE_ERR_ARG;
        if (!want) {
            dure_log_error(__FILE__, __LINE__,
                           "checkpoint '%s': /%s requested by other ranks but not this one",
                           path, ckpt_dataset_names[i]);
        }
        DURE_TRY(agree(comm, local, "argument check", path));
        local = ckh5_dataset_open(file, path, ckpt_dataset_names[i], m.n_params, &d);
        if (local == DURE_OK) {
            local = ckh5_read_checked(d, dxpl, path, i, sums, m.n_params, offset, len,
                                      bufs[i]);
        }
        if (d >= 0) {
            H5Dclose(d);
            d = -1;
        }
        DURE_TRY(agree(comm, local, "dataset read", path));
    }
    if (meta_out) {
        memcpy(meta_out, &m, sizeof m);
    }
    tmax = dure_now_s() - t0;
    if (stats) {
        memset(stats, 0, sizeof *stats);
        DURE_MPI_TRY(MPI_Allreduce(&tmax, &stats->total_s, 1, MPI_DOUBLE, MPI_MAX, comm));
        stats->write_s = stats->total_s;
        stats->bytes = (uint64_t)sb.st_size;
    }
out:
    if (d >= 0) {
        H5Dclose(d);
    }
    if (file >= 0) {
        H5Fclose(file);
    }
    if (dxpl >= 0) {
        H5Pclose(dxpl);
    }
    if (fapl >= 0) {
        H5Pclose(fapl);
    }
    free(sums);
    H5Eclear2(H5E_DEFAULT);
    dure_h5_quiet_end(&q);
    return st;
}
