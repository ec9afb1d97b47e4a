/*
 * tests/mpi/test_ckpt.c - checkpoints on 2 ranks with parallel HDF5: shard
 * round trips, resharding to other world sizes, zero_stage 0 shards, keep-K
 * pruning, the resume finder skipping damaged checkpoints, and refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sha256.h"
#include "ckpt/ckpt.h"
#include "tests/support/ckpt_fixture.h"
#include "tests/support/mpitest.h"

/*
 * ASan builds: unwind allocation stacks fully. Allocations that Open MPI's
 * MPI-IO components (io/ompio, fcoll, fbtl) keep until exit are reported as
 * leaks; by then MPI_Finalize has unloaded those components, and the fast
 * unwinder stops at their frames, so the libmpi/libopen-pal frames that
 * tests/lsan.supp suppresses never show. Environment options still override.
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "fast_unwind_on_malloc=0"; }

#define SEED 42
/* Not a multiple of the 2 ranks, and over one 1 Mi-element chunk so that a
 * chunk straddles the shard boundary. */
#define N_BIG ((size_t)(1u << 20) + 4099)
#define N_SMALL ((size_t)1001)

struct shard {
    size_t offset, len;
    float *v[3]; /* params, adam_m, adam_v: [len] each */
};

static void shard_alloc(struct shard *s, size_t offset, size_t len, int fill)
{
    s->offset = offset;
    s->len = len;
    for (int i = 0; i < 3; i++) {
        s->v[i] = malloc((len ? len : 1) * sizeof(float));
        assert_non_null(s->v[i]);
        if (fill) {
            fx_fill(s->v[i], SEED, i, offset, len);
        } else {
            memset(s->v[i], 0xA5, len * sizeof(float));
        }
    }
}

static void shard_free(struct shard *s)
{
    for (int i = 0; i < 3; i++) {
        free(s->v[i]);
    }
}

static dure_status_t save_step(const char *dir, size_t n, uint64_t step, int keep)
{
    struct ckpt_meta m;
    struct shard s;
    size_t off, len;
    fx_meta(&m, n, step);
    fx_shard(n, mpitest_rank(), mpitest_size(), &off, &len);
    shard_alloc(&s, off, len, 1);
    dure_status_t st =
        ckpt_save(MPI_COMM_WORLD, dir, &m, s.v[0], s.v[1], s.v[2], off, len, keep, NULL);
    shard_free(&s);
    return st;
}

static void test_roundtrip_same_world(void **state)
{
    (void)state;
    char dir[64], path[CKPT_PATH_MAX];
    struct ckpt_meta m, got;
    struct ckpt_io_stats io;
    struct shard s, r;
    size_t off, len;
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);
    fx_meta(&m, N_BIG, 7);
    fx_shard(N_BIG, mpitest_rank(), mpitest_size(), &off, &len);
    shard_alloc(&s, off, len, 1);
    assert_int_equal(
        ckpt_save(MPI_COMM_WORLD, dir, &m, s.v[0], s.v[1], s.v[2], off, len, 3, &io),
        DURE_OK);
    assert_true(io.bytes > 3 * N_BIG * sizeof(float));
    assert_true(io.total_s >= io.write_s && io.write_s > 0);

    assert_int_equal(ckpt_path(dir, 7, path, sizeof path), DURE_OK);
    shard_alloc(&r, off, len, 0);
    assert_int_equal(ckpt_load(MPI_COMM_WORLD, path, m.model, N_BIG, &got, r.v[0], r.v[1],
                               r.v[2], off, len, NULL),
                     DURE_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fx_mismatch(r.v[i], SEED, i, off, len), -1);
    }
    m.world_size = (uint32_t)mpitest_size(); /* ckpt_save records the real one */
    assert_true(ckpt_meta_equal(&m, &got));
    assert_int_equal(got.n_rng, 4);
    assert_true(got.rng[3] == m.rng[3] && got.rng[3] != 0);

    /* The sidecar holds the file's SHA-256 in sha256sum format. */
    uint8_t d[DURE_SHA256_BYTES];
    char hex[DURE_SHA256_HEX], line[256], want[256];
    assert_int_equal(dure_sha256_file(path, d, NULL), DURE_OK);
    dure_sha256_hex(d, hex);
    char side[CKPT_PATH_MAX + 16];
    snprintf(side, sizeof side, "%s.sha256", path);
    FILE *f = fopen(side, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    snprintf(want, sizeof want, "%s  ckpt-00000007.h5\n", hex);
    assert_string_equal(line, want);
    /* `latest` names it; no temp file is left. */
    snprintf(side, sizeof side, "%s/latest", dir);
    f = fopen(side, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "ckpt-00000007.h5\n");
    assert_int_equal(fx_count_suffix(dir, ".tmp"), 0);
    shard_free(&s);
    shard_free(&r);
    fx_rmtree(MPI_COMM_WORLD, dir);
}

/* Saved by 2 ranks, loaded by 1 (each rank alone, the whole vector) and by
 * 2 ranks cut differently (rank 0 a small head, rank 1 the rest). */
static void test_reshard_on_load(void **state)
{
    (void)state;
    char dir[64], path[CKPT_PATH_MAX];
    struct ckpt_meta got;
    struct shard r;
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);
    assert_int_equal(save_step(dir, N_BIG, 3, 0), DURE_OK);
    assert_int_equal(ckpt_path(dir, 3, path, sizeof path), DURE_OK);

    shard_alloc(&r, 0, N_BIG, 0);
    assert_int_equal(ckpt_load(MPI_COMM_SELF, path, NULL, 0, &got, r.v[0], r.v[1], r.v[2],
                               0, N_BIG, NULL),
                     DURE_OK);
    assert_int_equal(got.world_size, 2);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fx_mismatch(r.v[i], SEED, i, 0, N_BIG), -1);
    }
    shard_free(&r);

    size_t head = 12345;
    size_t off = mpitest_rank() == 0 ? 0 : head;
    size_t len = mpitest_rank() == 0 ? head : N_BIG - head;
    shard_alloc(&r, off, len, 0);
    /* Evaluation loads need no moments. */
    assert_int_equal(ckpt_load(MPI_COMM_WORLD, path, got.model, N_BIG, NULL, r.v[0], NULL,
                               NULL, off, len, NULL),
                     DURE_OK);
    assert_int_equal(fx_mismatch(r.v[0], SEED, 0, off, len), -1);
    shard_free(&r);
    fx_rmtree(MPI_COMM_WORLD, dir);
}

/* zero_stage 0: every rank holds the whole vector and passes its shard. */
static void test_full_replicas_write_their_shard(void **state)
{
    (void)state;
    char dir[64], path[CKPT_PATH_MAX];
    struct ckpt_meta m;
    struct shard full, r;
    size_t off, len;
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);
    fx_meta(&m, N_SMALL, 1);
    m.zero_stage = 0;
    shard_alloc(&full, 0, N_SMALL, 1);
    fx_shard(N_SMALL, mpitest_rank(), mpitest_size(), &off, &len);
    assert_int_equal(ckpt_save(MPI_COMM_WORLD, dir, &m, full.v[0] + off, full.v[1] + off,
                               full.v[2] + off, off, len, 1, NULL),
                     DURE_OK);
    assert_int_equal(ckpt_path(dir, 1, path, sizeof path), DURE_OK);
    shard_alloc(&r, 0, N_SMALL, 0);
    assert_int_equal(ckpt_load(MPI_COMM_WORLD, path, m.model, N_SMALL, NULL, r.v[0], r.v[1],
                               r.v[2], 0, N_SMALL, NULL),
                     DURE_OK);
    for (int i = 0; i < 3; i++) {
        assert_memory_equal(r.v[i], full.v[i], N_SMALL * sizeof(float));
    }
    shard_free(&full);
    shard_free(&r);
    fx_rmtree(MPI_COMM_WORLD, dir);
}

/* One rank with an empty shard still takes part. */
static void test_empty_shard(void **state)
{
    (void)state;
    char dir[64], path[CKPT_PATH_MAX];
    struct ckpt_meta m;
    struct shard s, r;
    size_t off = 0, len = mpitest_rank() == 0 ? N_SMALL : 0;
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);
    fx_meta(&m, N_SMALL, 2);
    shard_alloc(&s, off, len, 1);
    assert_int_equal(
        ckpt_save(MPI_COMM_WORLD, dir, &m, s.v[0], s.v[1], s.v[2], off, len, 1, NULL),
        DURE_OK);
    assert_int_equal(ckpt_path(dir, 2, path, sizeof path), DURE_OK);
    shard_alloc(&r, 0, N_SMALL, 0);
    assert_int_equal(ckpt_load(MPI_COMM_SELF, path, m.model, N_SMALL, NULL, r.v[0], r.v[1],
                               r.v[2], 0, N_SMALL, NULL),
                     DURE_OK);
    assert_int_equal(fx_mismatch(r.v[2], SEED, 2, 0, N_SMALL), -1);
    shard_free(&s);
    shard_free(&r);
    fx_rmtree(MPI_COMM_WORLD, dir);
}

static void test_keep_newest_k(void **state)
{
    (void)state;
    char dir[64], path[CKPT_PATH_MAX];
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);
    for (uint64_t step = 10; step <= 50; step += 10) {
        assert_int_equal(save_step(dir, N_SMALL, step, 2), DURE_OK);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    assert_int_equal(fx_count_suffix(dir, ".h5"), 2);
    assert_int_equal(fx_count_suffix(dir, ".sha256"), 2);
    for (uint64_t step = 10; step <= 50; step += 10) {
        assert_int_equal(ckpt_path(dir, step, path, sizeof path), DURE_OK);
        assert_int_equal(access(path, F_OK) == 0, step >= 40);
    }
    /* Saving the same step again replaces it by rename. */
    assert_int_equal(save_step(dir, N_SMALL, 50, 2), DURE_OK);
    assert_int_equal(fx_count_suffix(dir, ".h5"), 2);
    fx_rmtree(MPI_COMM_WORLD, dir);
}

static void test_find_skips_damaged(void **state)
{
    (void)state;
    char dir[64], path[CKPT_PATH_MAX], found_path[CKPT_PATH_MAX];
    struct ckpt_meta m;
    int found = -1;
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);

    /* An empty or missing directory: a fresh start. */
    assert_int_equal(ckpt_find_latest_valid(MPI_COMM_WORLD, dir, found_path,
                                            sizeof found_path, &m, &found),
                     DURE_OK);
    assert_int_equal(found, 0);

    for (uint64_t step = 1; step <= 3; step++) {
        assert_int_equal(save_step(dir, N_SMALL, step, 0), DURE_OK);
    }
    assert_int_equal(ckpt_find_latest_valid(MPI_COMM_WORLD, dir, found_path,
                                            sizeof found_path, &m, &found),
                     DURE_OK);
    assert_int_equal(found, 1);
    assert_int_equal(m.step, 3);

    /* Newest damaged in the middle (a flipped data byte), the next one cut
     * short: both are skipped, with a warning each. */
    if (mpitest_rank() == 0) {
        assert_int_equal(ckpt_path(dir, 3, path, sizeof path), DURE_OK);
        assert_int_equal(fx_flip_bytes(path, -8192, 1), 0);
        assert_int_equal(ckpt_path(dir, 2, path, sizeof path), DURE_OK);
        assert_int_equal(truncate(path, 3000), 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    dure_log_set_quiet(1);
    assert_int_equal(ckpt_find_latest_valid(MPI_COMM_WORLD, dir, found_path,
                                            sizeof found_path, &m, &found),
                     DURE_OK);
    dure_log_set_quiet(0);
    assert_int_equal(found, 1);
    assert_int_equal(m.step, 1);
    assert_int_equal(ckpt_path(dir, 1, path, sizeof path), DURE_OK);
    assert_string_equal(found_path, path);

    /* None valid: an error, not a silent restart. */
    if (mpitest_rank() == 0) {
        char side[CKPT_PATH_MAX + 16];
        snprintf(side, sizeof side, "%s.sha256", path);
        assert_int_equal(unlink(side), 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    dure_log_set_quiet(1);
    assert_int_equal(ckpt_find_latest_valid(MPI_COMM_WORLD, dir, found_path,
                                            sizeof found_path, &m, &found),
                     DURE_ERR_FORMAT);
    dure_log_set_quiet(0);
    assert_int_equal(found, 0);
    if (mpitest_rank() == 0) {
        assert_non_null(strstr(dure_last_error(), "no valid checkpoint in"));
        assert_non_null(strstr(dure_last_error(), "all 3 found are damaged"));
    }
    fx_rmtree(MPI_COMM_WORLD, dir);
}

/* Byte offset of dataset `name` in a (contiguous, version 2) checkpoint. */
static long dataset_offset(const char *path, const char *name)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    assert_true(d >= 0);
    haddr_t at = H5Dget_offset(d);
    assert_true(at != HADDR_UNDEF);
    H5Dclose(d);
    H5Fclose(f);
    return (long)at;
}

/*
 * Every block read on load is checked against /checksums. N_BIG has block
 * 0 straddling the two ranks' shards (each reads it whole to check it) and
 * a short block 1 that only rank 1 reads: damage in either fails the load
 * on every rank with DURE_ERR_FORMAT naming the dataset and block.
 */
static void test_load_checks_block_sums(void **state)
{
    (void)state;
    char dir[64], path[CKPT_PATH_MAX];
    struct ckpt_meta m;
    struct shard r;
    size_t off, len;
    struct {
        const char *dataset;
        long element;
        const char *named;
    } cases[] = {
        {"params", 10, "/params block 0 (elements [0, 1048576))"},
        {"adam_v", (long)N_BIG - 5, "/adam_v block 1 (elements [1048576, 1052675))"},
    };
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);
    fx_meta(&m, N_BIG, 3);
    fx_shard(N_BIG, mpitest_rank(), mpitest_size(), &off, &len);
    shard_alloc(&r, off, len, 0);
    assert_int_equal(ckpt_path(dir, 3, path, sizeof path), DURE_OK);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        assert_int_equal(save_step(dir, N_BIG, 3, 0), DURE_OK);
        assert_int_equal(ckpt_load(MPI_COMM_WORLD, path, m.model, N_BIG, NULL, r.v[0],
                                   r.v[1], r.v[2], off, len, NULL),
                         DURE_OK);
        if (mpitest_rank() == 0) {
            long at = dataset_offset(path, cases[c].dataset) + 4 * cases[c].element;
            assert_int_equal(fx_flip_bytes(path, -at, 1), 0);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        dure_log_set_quiet(1);
        dure_status_t st = ckpt_load(MPI_COMM_WORLD, path, m.model, N_BIG, NULL, r.v[0],
                                     r.v[1], r.v[2], off, len, NULL);
        dure_log_set_quiet(0);
        assert_int_equal(st, DURE_ERR_FORMAT);
        /* The rank that read the block names it (both read block 0). */
        if (c == 0 || mpitest_rank() == 1) {
            assert_non_null(strstr(dure_last_error(), cases[c].named));
            assert_non_null(strstr(dure_last_error(), "fails its CRC-32C"));
        }
    }
    shard_free(&r);
    fx_rmtree(MPI_COMM_WORLD, dir);
}

/*
 * A file that says format version 1 has no /checksums: only HDF5's
 * Fletcher32 filter can check its data. Without the filter in a dataset's
 * pipeline (a version 2 file relabelled, or a version 1 file repacked
 * without filters) nothing checks it, so a damaged value must not load.
 */
static void test_load_refuses_unchecked_v1(void **state)
{
    (void)state;
    char dir[64], path[CKPT_PATH_MAX];
    struct ckpt_meta m;
    struct shard r;
    size_t off, len;
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);
    fx_meta(&m, N_SMALL, 4);
    assert_int_equal(save_step(dir, N_SMALL, 4, 0), DURE_OK);
    assert_int_equal(ckpt_path(dir, 4, path, sizeof path), DURE_OK);
    if (mpitest_rank() == 0) {
        const uint32_t v1 = 1;
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        assert_true(f >= 0);
        hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
        assert_true(a >= 0);
        assert_true(H5Awrite(a, H5T_NATIVE_UINT32, &v1) >= 0);
        H5Aclose(a);
        H5Fclose(f);
        long at = dataset_offset(path, "params") + 4 * 7;
        assert_int_equal(fx_flip_bytes(path, -at, 1), 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    fx_shard(N_SMALL, mpitest_rank(), mpitest_size(), &off, &len);
    shard_alloc(&r, off, len, 0);
    dure_log_set_quiet(1);
    dure_status_t st = ckpt_load(MPI_COMM_WORLD, path, m.model, N_SMALL, NULL, r.v[0],
                                 r.v[1], r.v[2], off, len, NULL);
    dure_log_set_quiet(0);
    assert_int_equal(st, DURE_ERR_FORMAT);
    assert_non_null(strstr(dure_last_error(), path));
    if (mpitest_rank() == 0) {
        assert_non_null(strstr(dure_last_error(), "dataset /params has no Fletcher32"));
        /* The serial reader `dure verify` compares runs with: refused too. */
        float one;
        dure_log_set_quiet(1);
        assert_int_equal(ckpt_read_dataset(path, 0, 7, 1, &one), DURE_ERR_FORMAT);
        dure_log_set_quiet(0);
        assert_non_null(strstr(dure_last_error(), "dataset /params has no Fletcher32"));
    }
    shard_free(&r);
    fx_rmtree(MPI_COMM_WORLD, dir);
}

static void test_refuses_other_model(void **state)
{
    (void)state;
    char dir[64], path[CKPT_PATH_MAX];
    struct shard r;
    size_t off, len;
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);
    assert_int_equal(save_step(dir, N_SMALL, 5, 0), DURE_OK);
    assert_int_equal(ckpt_path(dir, 5, path, sizeof path), DURE_OK);
    fx_shard(N_SMALL, mpitest_rank(), mpitest_size(), &off, &len);
    shard_alloc(&r, off, len, 0);
    dure_log_set_quiet(1);
    dure_status_t st = ckpt_load(MPI_COMM_WORLD, path, "d_model=16 n_layers=2", N_SMALL,
                                 NULL, r.v[0], r.v[1], r.v[2], off, len, NULL);
    dure_log_set_quiet(0);
    assert_int_equal(st, DURE_ERR_FORMAT);
    assert_non_null(strstr(dure_last_error(), "is for another model"));
    assert_non_null(strstr(dure_last_error(), "this run builds 'd_model=16 n_layers=2'"));
    assert_non_null(strstr(dure_last_error(), path));
    /* Nothing was written into the caller's buffers. */
    uint32_t bits;
    memcpy(&bits, r.v[0], sizeof bits);
    assert_int_equal(bits, 0xA5A5A5A5u);

    dure_log_set_quiet(1);
    char missing[CKPT_PATH_MAX];
    snprintf(missing, sizeof missing, "%s/ckpt-99999999.h5", dir);
    st = ckpt_load(MPI_COMM_WORLD, missing, NULL, 0, NULL, r.v[0], r.v[1], r.v[2], off, len,
                   NULL);
    dure_log_set_quiet(0);
    assert_int_equal(st, DURE_ERR_IO);
    assert_non_null(strstr(dure_last_error(), "ckpt-99999999.h5"));
    shard_free(&r);
    fx_rmtree(MPI_COMM_WORLD, dir);
}

/* Shards that overlap or leave a gap, and ranks that disagree on the
 * metadata, fail on every rank before anything is written. */
static void test_refuses_bad_shards_and_meta(void **state)
{
    (void)state;
    char dir[64];
    struct ckpt_meta m;
    struct shard s;
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);
    fx_meta(&m, N_SMALL, 9);
    shard_alloc(&s, 0, N_SMALL, 1);
    size_t off = mpitest_rank() == 0 ? 0 : 500, len = mpitest_rank() == 0 ? 501 : 501;
    dure_log_set_quiet(1);
    dure_status_t st =
        ckpt_save(MPI_COMM_WORLD, dir, &m, s.v[0], s.v[1], s.v[2], off, len, 1, NULL);
    dure_log_set_quiet(0);
    assert_int_equal(st, DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "overlap at element 500"));

    fx_shard(N_SMALL, mpitest_rank(), mpitest_size(), &off, &len);
    if (mpitest_rank() == 1) {
        m.step = 10;
    }
    dure_log_set_quiet(1);
    st = ckpt_save(MPI_COMM_WORLD, dir, &m, s.v[0] + off, s.v[1] + off, s.v[2] + off, off,
                   len, 1, NULL);
    dure_log_set_quiet(0);
    assert_int_equal(st, DURE_ERR_INTERNAL);
    MPI_Barrier(MPI_COMM_WORLD);
    assert_int_equal(fx_count_suffix(dir, ".h5"), 0);
    assert_int_equal(fx_count_suffix(dir, ".tmp"), 0);
    shard_free(&s);
    fx_rmtree(MPI_COMM_WORLD, dir);
}

/*
 * A stand-in optimizer loop (elementwise AdamW on gradients drawn from the
 * step's RNG state, so any sharding computes the same numbers): stopped at
 * step 4, saved, resumed into fresh buffers, it must end bitwise where an
 * uninterrupted run ends, on 2 ranks and on 1.
 */
static void toy_steps(float *w, float *am, float *av, size_t off, size_t len, uint64_t *rng,
                      uint64_t from, uint64_t to)
{
    for (uint64_t step = from; step < to; step++) {
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        for (size_t i = 0; i < len; i++) {
            float g = fx_value(*rng, 0, off + i);
            am[i] = 0.9f * am[i] + 0.1f * g;
            av[i] = 0.95f * av[i] + 0.05f * g * g;
            w[i] -= 3e-4f * am[i] / (sqrtf(av[i]) + 1e-8f);
        }
    }
}

static void test_exact_resume(void **state)
{
    (void)state;
    char dir[64], path[CKPT_PATH_MAX];
    struct ckpt_meta m, got;
    struct shard a, b;
    size_t off, len;
    int found = 0;
    uint64_t rng = 7;
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);
    fx_shard(N_SMALL, mpitest_rank(), mpitest_size(), &off, &len);

    shard_alloc(&a, off, len, 1); /* uninterrupted: steps 0..10 */
    toy_steps(a.v[0], a.v[1], a.v[2], off, len, &rng, 0, 10);

    shard_alloc(&b, off, len, 1); /* stopped after step 4 */
    rng = 7;
    toy_steps(b.v[0], b.v[1], b.v[2], off, len, &rng, 0, 4);
    fx_meta(&m, N_SMALL, 4);
    m.n_rng = 1;
    m.rng[0] = rng;
    assert_int_equal(
        ckpt_save(MPI_COMM_WORLD, dir, &m, b.v[0], b.v[1], b.v[2], off, len, 2, NULL),
        DURE_OK);
    shard_free(&b);

    /* Resume on 2 ranks, into fresh buffers. */
    assert_int_equal(
        ckpt_find_latest_valid(MPI_COMM_WORLD, dir, path, sizeof path, &got, &found),
        DURE_OK);
    assert_int_equal(found, 1);
    shard_alloc(&b, off, len, 0);
    assert_int_equal(ckpt_load(MPI_COMM_WORLD, path, m.model, N_SMALL, &got, b.v[0], b.v[1],
                               b.v[2], off, len, NULL),
                     DURE_OK);
    rng = got.rng[0];
    toy_steps(b.v[0], b.v[1], b.v[2], off, len, &rng, got.step, 10);
    for (int i = 0; i < 3; i++) {
        assert_memory_equal(a.v[i], b.v[i], len * sizeof(float));
    }
    shard_free(&b);

    /* Resume on 1 rank (each rank alone, the whole vector): the same. */
    struct shard c, full;
    shard_alloc(&c, 0, N_SMALL, 0);
    assert_int_equal(ckpt_load(MPI_COMM_SELF, path, m.model, N_SMALL, &got, c.v[0], c.v[1],
                               c.v[2], 0, N_SMALL, NULL),
                     DURE_OK);
    rng = got.rng[0];
    toy_steps(c.v[0], c.v[1], c.v[2], 0, N_SMALL, &rng, got.step, 10);
    shard_alloc(&full, 0, N_SMALL, 1);
    rng = 7;
    toy_steps(full.v[0], full.v[1], full.v[2], 0, N_SMALL, &rng, 0, 10);
    for (int i = 0; i < 3; i++) {
        assert_memory_equal(c.v[i], full.v[i], N_SMALL * sizeof(float));
        assert_memory_equal(c.v[i] + off, a.v[i], len * sizeof(float));
    }
    shard_free(&c);
    shard_free(&full);
    shard_free(&a);
    fx_rmtree(MPI_COMM_WORLD, dir);
}

int main(int argc, char **argv)
{
    mpitest_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_same_world),
        cmocka_unit_test(test_reshard_on_load),
        cmocka_unit_test(test_full_replicas_write_their_shard),
        cmocka_unit_test(test_empty_shard),
        cmocka_unit_test(test_keep_newest_k),
        cmocka_unit_test(test_find_skips_damaged),
        cmocka_unit_test(test_load_checks_block_sums),
        cmocka_unit_test(test_load_refuses_unchecked_v1),
        cmocka_unit_test(test_refuses_other_model),
        cmocka_unit_test(test_refuses_bad_shards_and_meta),
        cmocka_unit_test(test_exact_resume),
    };
    return MPITEST_RUN("ckpt (mpi)", tests);
}
