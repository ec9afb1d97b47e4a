/*
 * ckpt/ckpt_read.c - the serial checkpoint readers (metadata, description,
 * full verification) and the resume finder. See ckpt.h.
 */
#include "ckpt/ckpt.h"

#include <hdf5.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/h5guard.h"
#include "common/mpi_check.h"
#include "common/sha256.h"
#include "ckpt/ckpt_files.h"
#include "ckpt/ckpt_h5.h"
#include "ckpt/ckpt_sum.h"

/* ckpt_verify reads this many blocks (or version 1 chunks) per call. */
#define VERIFY_BLOCKS 4

/* ---------------------------------------------------------------- serial readers */

/* Open a checkpoint with the default (serial) driver. */
static dure_status_t open_serial(const char *path, hid_t *file)
{
    dure_status_t st = DURE_OK;
    struct stat sb;
    *file = -1;
    DURE_SYS_TRY(stat(path, &sb) == 0, "checkpoint '%s'", path);
    DURE_CHECK(S_ISREG(sb.st_mode), DURE_ERR_IO, "checkpoint '%s' is not a regular file",
               path);
    /* The file's structure first: libhdf5 1.10 trusts sizes it reads. */
    char what[PATH_MAX + 16];
    snprintf(what, sizeof what, "checkpoint '%s'", path);
    DURE_TRY(h5guard_path(path, what));
    *file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*file < 0) {
        st = ckh5_fail(__FILE__, __LINE__, DURE_ERR_FORMAT,
                       "checkpoint '%s' (%lld bytes) cannot be opened as HDF5", path,
                       (long long)sb.st_size);
    }
out:
    return st;
}

dure_status_t ckpt_read_meta(const char *path, struct ckpt_meta *meta)
{
    dure_status_t st = DURE_OK;
    struct dure_h5_quiet q;
    hid_t f = -1;
    dure_h5_quiet_begin(&q);
    DURE_TRY(open_serial(path, &f));
    DURE_TRY(ckh5_meta_read(f, path, meta));
out:
    if (f >= 0) {
        H5Fclose(f);
    }
    H5Eclear2(H5E_DEFAULT);
    dure_h5_quiet_end(&q);
    return st;
}

static dure_status_t dataset_describe(hid_t f, const char *path, const char *name,
                                      uint64_t n, uint32_t version,
                                      struct ckpt_dataset_info *info)
{
    dure_status_t st = DURE_OK;
    hid_t d = -1, dcpl = -1;
    hsize_t chunk = 0;
    memset(info, 0, sizeof *info);
    DURE_TRY(ckh5_dataset_open(f, path, name, n, &d));
    dcpl = H5Dget_create_plist(d);
    CKH5_CHECK(dcpl >= 0, "checkpoint '%s': dataset /%s", path, name);
    info->n = n;
    if (H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, 1, &chunk) == 1) {
        info->chunk = chunk;
    }
    info->fletcher32 = ckh5_fletcher32(dcpl);
    info->sum_block = version >= 2 ? CKPT_BLOCK_ELEMS : 0;
    info->storage_bytes = H5Dget_storage_size(d);
out:
    if (dcpl >= 0) {
        H5Pclose(dcpl);
    }
    if (d >= 0) {
        H5Dclose(d);
    }
    return st;
}

/* Open serially, read the metadata, and (version 2) the block sums into a
 * malloc'ed *sums (NULL for version 1). */
static dure_status_t open_checked(const char *path, hid_t *f, struct ckpt_meta *m,
                                  uint32_t *version, uint32_t **sums)
{
    dure_status_t st = DURE_OK;
    size_t words = 0;
    *sums = NULL;
    DURE_TRY(open_serial(path, f));
    DURE_TRY(ckh5_meta_read(*f, path, m));
    DURE_TRY(ckh5_version_read(*f, path, version));
    if (*version >= 2) {
        words = CKPT_N_DATASETS * (size_t)ckpt_sum_blocks(m->n_params);
        *sums = malloc(words * sizeof **sums);
        DURE_ALLOC_TRY(*sums, words * sizeof **sums);
        DURE_TRY(ckh5_sums_read(*f, path, m->n_params, *sums));
    }
out:
    return st;
}

dure_status_t ckpt_describe(const char *path, struct ckpt_meta *meta,
                            struct ckpt_dataset_info info[CKPT_N_DATASETS])
{
    dure_status_t st = DURE_OK;
    struct dure_h5_quiet q;
    hid_t f = -1;
    uint32_t version = 0;
    dure_h5_quiet_begin(&q);
    DURE_TRY(open_serial(path, &f));
    DURE_TRY(ckh5_meta_read(f, path, meta));
    DURE_TRY(ckh5_version_read(f, path, &version));
    for (int i = 0; i < CKPT_N_DATASETS; i++) {
        DURE_TRY(dataset_describe(f, path, ckpt_dataset_names[i], meta->n_params, version,
                                  &info[i]));
    }
out:
    if (f >= 0) {
        H5Fclose(f);
    }
    H5Eclear2(H5E_DEFAULT);
    dure_h5_quiet_end(&q);
    return st;
}

/* Read every block of one dataset, so that each is checked: against its
 * CRC-32C (version 2) or by Fletcher32 (version 1, which must have it:
 * ckh5_read_checked). */
static dure_status_t verify_dataset(hid_t f, const char *path, int which, uint64_t n,
                                    uint32_t version, const uint32_t *sums, float **buf,
                                    size_t *cap)
{
    dure_status_t st = DURE_OK;
    hid_t d = -1;
    const char *name = ckpt_dataset_names[which];
    struct ckpt_dataset_info info;
    DURE_TRY(dataset_describe(f, path, name, n, version, &info));
    size_t block = (size_t)(info.chunk ? info.chunk : CKPT_BLOCK_ELEMS) * VERIFY_BLOCKS;
    if (block > n) {
        block = (size_t)n;
    }
    if (block > *cap) {
        float *nb = realloc(*buf, block * sizeof(float));
        DURE_ALLOC_TRY(nb, block * sizeof(float));
        *buf = nb;
        *cap = block;
    }
    DURE_TRY(ckh5_dataset_open(f, path, name, n, &d));
    for (uint64_t off = 0; off < n; off += block) {
        size_t len = (size_t)(n - off < block ? n - off : block);
        DURE_TRY(ckh5_read_checked(d, H5P_DEFAULT, path, which, sums, n, (size_t)off, len,
                                   *buf));
    }
out:
    if (d >= 0) {
        H5Dclose(d);
    }
    return st;
}

static void report_problem(struct ckpt_verify_report *r)
{
    size_t used = strlen(r->problems);
    snprintf(r->problems + used, sizeof r->problems - used, "%s%s", used ? "\n" : "",
             dure_last_error());
}

dure_status_t ckpt_verify(const char *path, struct ckpt_verify_report *r)
{
    dure_status_t st = DURE_OK, s2;
    struct dure_h5_quiet q;
    struct ckpt_meta m;
    hid_t f = -1;
    float *buf = NULL;
    size_t cap = 0;
    uint32_t version = 0, *sums = NULL;
    uint8_t digest[DURE_SHA256_BYTES];
    char want[DURE_SHA256_HEX];

    memset(r, 0, sizeof *r);
    dure_h5_quiet_begin(&q);
    /* Hash first: a file that is not there or not readable stops here. */
    st = dure_sha256_file(path, digest, NULL);
    if (st != DURE_OK) {
        report_problem(r);
        goto out;
    }
    dure_sha256_hex(digest, r->sha256);
    s2 = ckpt_sidecar_read(path, want);
    if (s2 == DURE_OK) {
        r->hash_present = 1;
        r->hash_ok = strcmp(want, r->sha256) == 0;
        if (!r->hash_ok) {
            s2 = DURE_ERR_FORMAT;
            dure_log_error(__FILE__, __LINE__,
                           "checkpoint '%s': content hash mismatch: the file's SHA-256 is "
                           "%s, its sidecar says %s (the file was changed or damaged after "
                           "it was saved)",
                           path, r->sha256, want);
        }
    }
    if (s2 != DURE_OK) {
        report_problem(r);
        st = s2 == DURE_ERR_IO ? DURE_ERR_FORMAT : s2;
    }
    s2 = open_checked(path, &f, &m, &version, &sums);
    if (s2 != DURE_OK) {
        report_problem(r);
        st = DURE_ERR_FORMAT;
        goto out;
    }
    r->meta_ok = 1;
    r->datasets_ok = 1;
    for (int i = 0; i < CKPT_N_DATASETS; i++) {
        s2 = verify_dataset(f, path, i, m.n_params, version, sums, &buf, &cap);
        if (s2 != DURE_OK) {
            r->datasets_ok = 0;
            report_problem(r);
            st = s2 == DURE_ERR_NOMEM ? s2 : DURE_ERR_FORMAT;
        }
    }
out:
    free(sums);
    free(buf);
    if (f >= 0) {
        H5Fclose(f);
    }
    H5Eclear2(H5E_DEFAULT);
    dure_h5_quiet_end(&q);
    return st;
}

dure_status_t ckpt_read_dataset(const char *path, int which, uint64_t offset, size_t len,
                                float *buf)
{
    dure_status_t st = DURE_OK;
    struct dure_h5_quiet q;
    struct ckpt_meta m;
    hid_t f = -1, d = -1;
    uint32_t version = 0, *sums = NULL;
    dure_h5_quiet_begin(&q);
    DURE_CHECK(which >= 0 && which < CKPT_N_DATASETS, DURE_ERR_ARG,
               "checkpoint '%s': no dataset number %d", path, which);
    DURE_TRY(open_checked(path, &f, &m, &version, &sums));
    DURE_CHECK(offset <= m.n_params && len <= m.n_params - offset, DURE_ERR_ARG,
               "checkpoint '%s': elements [%llu, %llu) lie outside its %llu parameters",
               path, (unsigned long long)offset, (unsigned long long)(offset + len),
               (unsigned long long)m.n_params);
    DURE_TRY(ckh5_dataset_open(f, path, ckpt_dataset_names[which], m.n_params, &d));
    DURE_TRY(ckh5_read_checked(d, H5P_DEFAULT, path, which, sums, m.n_params,
                               (size_t)offset, len, buf));
out:
    free(sums);
    if (d >= 0) {
        H5Dclose(d);
    }
    if (f >= 0) {
        H5Fclose(f);
    }
    H5Eclear2(H5E_DEFAULT);
    dure_h5_quiet_end(&q);
    return st;
}

/* ---------------------------------------------------------------- resume */

/* A candidate is valid when its sidecar matches and its metadata reads. */
static dure_status_t candidate_check(const char *path, struct ckpt_meta *m)
{
    dure_status_t st = DURE_OK;
    uint8_t digest[DURE_SHA256_BYTES];
    char got[DURE_SHA256_HEX], want[DURE_SHA256_HEX];
    DURE_TRY(ckpt_sidecar_read(path, want));
    DURE_TRY(dure_sha256_file(path, digest, NULL));
    dure_sha256_hex(digest, got);
    DURE_CHECK(strcmp(got, want) == 0, DURE_ERR_FORMAT,
               "checkpoint '%s': content hash mismatch (file %.16s..., sidecar %.16s...): "
               "truncated or damaged",
               path, got, want);
    DURE_TRY(ckpt_read_meta(path, m));
out:
    return st;
}

/* Rank 0's part of ckpt_find_latest_valid. */
static dure_status_t find_serial(const char *dir, char *path, size_t cap,
                                 struct ckpt_meta *m, int *found)
{
    dure_status_t st = DURE_OK;
    uint64_t *steps = NULL;
    size_t n = 0;
    *found = 0;
    DURE_TRY(ckpt_list_steps(dir, &steps, &n));
    for (size_t i = 0; i < n && !*found; i++) {
        DURE_TRY(ckpt_path(dir, steps[i], path, cap));
        if (candidate_check(path, m) == DURE_OK) {
            *found = 1;
            break;
        }
        dure_log_warn(__FILE__, __LINE__, "skipping checkpoint '%s' (%s)%s", path,
                      dure_last_error(), i + 1 < n ? "; trying the previous one" : "");
    }
    DURE_CHECK(n == 0 || *found, DURE_ERR_FORMAT,
               "no valid checkpoint in '%s': all %zu found are damaged (see the warnings "
               "above); move them away to start from step 0",
               dir, n);
    if (*found) {
        char latest[CKPT_PATH_MAX], line[CKPT_PATH_MAX] = "";
        FILE *lf = NULL;
        if (snprintf(latest, sizeof latest, "%s/latest", dir) < (int)sizeof latest &&
            (lf = fopen(latest, "re")) != NULL) {
            if (!fgets(line, sizeof line, lf)) {
                line[0] = '\0';
            }
            fclose(lf);
        }
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, ckpt_basename(path)) != 0) {
            dure_log_warn(__FILE__, __LINE__,
                          "'%s' names '%s' but the newest valid checkpoint is '%s'", latest,
                          line[0] ? line : "(nothing)", ckpt_basename(path));
        }
    }
out:
    free(steps);
    return st;
}

dure_status_t ckpt_find_latest_valid(MPI_Comm comm, const char *dir, char *path, size_t cap,
                                     struct ckpt_meta *meta_out, int *found)
{
    dure_status_t st = DURE_OK;
    int rank = 0;
    struct {
        int st;
        int found;
    } res = {DURE_OK, 0};
    struct ckpt_meta m;
    char buf[CKPT_PATH_MAX] = "";
    memset(&m, 0, sizeof m);
    *found = 0;
    DURE_MPI_TRY(MPI_Comm_rank(comm, &rank));
    if (rank == 0) {
        res.st = (int)find_serial(dir, buf, sizeof buf, &m, &res.found);
    }
    DURE_MPI_TRY(MPI_Bcast(&res, 2, MPI_INT, 0, comm));
    st = (dure_status_t)res.st;
    if (st != DURE_OK) {
        goto out;
    }
    if (res.found) {
        DURE_MPI_TRY(MPI_Bcast(buf, (int)sizeof buf, MPI_CHAR, 0, comm));
        DURE_MPI_TRY(MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, 0, comm));
        DURE_CHECK(strlen(buf) < cap, DURE_ERR_ARG,
                   "checkpoint path '%s' does not fit in %zu bytes", buf, cap);
        memcpy(path, buf, strlen(buf) + 1);
        if (meta_out) {
            memcpy(meta_out, &m, sizeof m);
        }
        *found = 1;
    }
out:
    return st;
}
