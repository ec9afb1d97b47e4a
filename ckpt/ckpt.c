/*
 * ckpt/ckpt.c - the collective checkpoint save and load. See ckpt.h; the
 * HDF5 layout lives in ckpt_h5.c, the directory protocol in ckpt_files.c and
 * the serial readers in ckpt_read.c.
 */
#include "ckpt/ckpt.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/agree.h"
#include "common/mpi_check.h"
#include "common/sha256.h"
#include "common/timing.h"
#include "ckpt/ckpt_files.h"
#include "ckpt/ckpt_h5.h"

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

/*
 * Create `tmp` and write metadata and this rank's shard of the three
 * datasets, collectively. Agrees after each collective step, and closes
 * what it opened on every rank, failure or not.
 */
static dure_status_t save_write_h5(MPI_Comm comm, const char *tmp,
                                   const struct ckpt_meta *m, const float *const bufs[3],
                                   size_t offset, size_t len, int *collective)
{
    dure_status_t st = DURE_OK, local = DURE_OK;
    hid_t fapl = -1, dxpl = -1, dcpl = -1, space = -1, file = -1, d = -1;
    hsize_t n = m->n_params;
    int rank = 0;
    DURE_MPI_TRY(MPI_Comm_rank(comm, &rank));
    hsize_t chunk = n < CHUNK_ELEMS ? n : CHUNK_ELEMS;

    fapl = H5Pcreate(H5P_FILE_ACCESS);
    dxpl = H5Pcreate(H5P_DATASET_XFER);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    space = H5Screate_simple(1, &n, NULL);
    if (fapl < 0 || dxpl < 0 || dcpl < 0 || space < 0 ||
        H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0 ||
        H5Pset_coll_metadata_write(fapl, 1) < 0 ||
        H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) < 0 ||
        H5Pset_chunk(dcpl, 1, &chunk) < 0 || H5Pset_fletcher32(dcpl) < 0 ||
        /* Every element is written: no fill needed. (With a filter in the
         * pipeline, HDF5 1.10 under MPI-IO allocates and fills every chunk at
         * creation anyway; measured: an extra page-cache write of the state,
         * cheap next to the disk. Creating serially and opening in parallel
         * fills at open instead: no gain.) */
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0 ||
        /* No timestamps: two identical states give identical files. */
        H5Pset_obj_track_times(dcpl, 0) < 0) {
        local = ckh5_fail(__FILE__, __LINE__, DURE_ERR_HDF5,
                          "checkpoint '%s': set up HDF5 property lists", tmp);
    }
    DURE_TRY(agree(comm, local, "HDF5 setup", tmp));

    file = H5Fcreate(tmp, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
    local = file >= 0 ? DURE_OK
                      : ckh5_fail(__FILE__, __LINE__, DURE_ERR_IO,
                                  "checkpoint '%s': create the file", tmp);
    DURE_TRY(agree(comm, local, "file creation", tmp));

    if (rank == 0) {
        local = ckpt_reserve(tmp, ckh5_file_bytes_max(m->n_params));
    }
    DURE_TRY(agree(comm, local, "space reservation", tmp));

    DURE_TRY(agree(comm, ckh5_meta_write(file, tmp, m), "metadata write", tmp));

    for (int i = 0; i < CKPT_N_DATASETS; i++) {
        const char *name = ckpt_dataset_names[i];
        d = H5Dcreate2(file, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        local = d >= 0 ? DURE_OK
                       : ckh5_fail(__FILE__, __LINE__, DURE_ERR_HDF5,
                                   "checkpoint '%s': create dataset /%s", tmp, name);
        DURE_TRY(agree(comm, local, "dataset creation", tmp));
        local = ckh5_dataset_io(d, dxpl, 1, offset, len, (void *)(uintptr_t)bufs[i]) >= 0
                    ? DURE_OK
                    : ckh5_fail(__FILE__, __LINE__, DURE_ERR_IO,
                                "checkpoint '%s': write elements [%zu, %zu) of /%s", tmp,
                                offset, offset + len, name);
        DURE_TRY(agree(comm, local, "dataset write", tmp));
        H5D_mpio_actual_io_mode_t mode = H5D_MPIO_NO_COLLECTIVE;
        if (H5Pget_mpio_actual_io_mode(dxpl, &mode) < 0 || mode == H5D_MPIO_NO_COLLECTIVE) {
            *collective = 0;
        }
        herr_t rc = H5Dclose(d);
        d = -1;
        local = rc >= 0 ? DURE_OK
                        : ckh5_fail(__FILE__, __LINE__, DURE_ERR_IO,
                                    "checkpoint '%s': close dataset /%s", tmp, name);
        DURE_TRY(agree(comm, local, "dataset close", tmp));
    }
    {
        /* Closing flushes the metadata: on a full disk this is where it fails. */
        herr_t rc = H5Fclose(file);
        file = -1;
        local = rc >= 0 ? DURE_OK
                        : ckh5_fail(__FILE__, __LINE__, DURE_ERR_IO,
                                    "checkpoint '%s': close (flush) the file", tmp);
        DURE_TRY(agree(comm, local, "file close", tmp));
    }
out:
    if (d >= 0) {
        H5Dclose(d);
    }
    if (file >= 0) {
        H5Fclose(file);
    }
    if (space >= 0) {
        H5Sclose(space);
    }
    if (dcpl >= 0) {
        H5Pclose(dcpl);
    }
    if (dxpl >= 0) {
        H5Pclose(dxpl);
    }
    if (fapl >= 0) {
        H5Pclose(fapl);
    }
    H5Eclear2(H5E_DEFAULT);
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

dure_status_t ckpt_save(MPI_Comm comm, const char *dir, const struct ckpt_meta *meta,
                        const float *params, const float *adam_m, const float *adam_v,
                        size_t offset, size_t len, int keep, struct ckpt_io_stats *stats)
{
    dure_status_t st = DURE_OK, local = DURE_OK;
    struct dure_h5_quiet q;
    int rank = 0, size = 1, tmp_may_exist = 0;
    char path[CKPT_PATH_MAX] = "", tmp[CKPT_PATH_MAX] = "", hex[DURE_SHA256_HEX] = "";
    const float *const bufs[3] = {params, adam_m, adam_v};
    struct ckpt_meta m;
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

    /* A temp file left by a crashed save of the same step. */
    if (rank == 0 && unlink(tmp) != 0 && errno != ENOENT) {
        local = DURE_ERR_IO;
        dure_log_syserr(__FILE__, __LINE__, "remove stale '%s'", tmp);
    }
    DURE_TRY(agree(comm, local, "stale temp file removal", path));
    tmp_may_exist = 1;

    t = dure_now_s();
    int collective = 1, all_collective = 0;
    DURE_TRY(save_write_h5(comm, tmp, &m, bufs, offset, len, &collective));
    times[1] = dure_now_s() - t;

    /* The contents are final once the file is closed: rank 0 flushes them to
     * disk while another rank (when there is one) hashes them. */
    int hasher = size > 1 ? 1 : 0;
    if (rank == 0) {
        t = dure_now_s();
        local = ckpt_fsync_path(tmp);
        times[2] = dure_now_s() - t;
    }
    if (rank == hasher && local == DURE_OK) {
        uint8_t digest[DURE_SHA256_BYTES];
        t = dure_now_s();
        local = dure_sha256_file(tmp, digest, &bytes);
        dure_sha256_hex(digest, hex);
        times[3] = dure_now_s() - t;
    }
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
    DURE_MPI_TRY(MPI_Allreduce(&collective, &all_collective, 1, MPI_INT, MPI_MIN, comm));
    if (stats) {
        stats->total_s = tmax[0];
        stats->write_s = tmax[1];
        stats->sync_s = tmax[2];
        stats->hash_s = tmax[3];
        stats->bytes = bytes;
        stats->collective = all_collective;
    }
out:
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
        if (local == DURE_OK && ckh5_dataset_io(d, dxpl, 0, offset, len, bufs[i]) < 0) {
            local = ckh5_fail(__FILE__, __LINE__, DURE_ERR_IO,
                              "checkpoint '%s': read elements [%zu, %zu) of /%s", path,
                              offset, offset + len, ckpt_dataset_names[i]);
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
    H5Eclear2(H5E_DEFAULT);
    dure_h5_quiet_end(&q);
    return st;
}
