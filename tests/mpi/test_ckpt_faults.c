/*
 * tests/mpi/test_ckpt_faults.c - checkpoint saves that fail part way leave
 * the previous checkpoint and `latest` intact, on every rank:
 *   - a full disk: a small tmpfs mounted for the test when running as root;
 *     otherwise a real write failure from the kernel's file size limit
 *     (RLIMIT_FSIZE with SIGXFSZ ignored: writes past it fail with EFBIG);
 *   - leftovers of a save that crashed (a temp file, an orphan sidecar, a
 *     sidecar that no longer matches) are skipped, then cleaned up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

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

#define N 50000 /* 3 x 200 KB of state: one checkpoint fits the 1000k tmpfs, two do not */

static dure_status_t save(const char *dir, uint64_t step, uint64_t seed)
{
    struct ckpt_meta m;
    size_t off, len;
    fx_meta(&m, N, step);
    fx_shard(N, mpitest_rank(), mpitest_size(), &off, &len);
    float *v = malloc(3 * (len + 1) * sizeof *v);
    assert_non_null(v);
    for (int i = 0; i < 3; i++) {
        fx_fill(v + (size_t)i * len, seed, i, off, len);
    }
    dure_status_t st =
        ckpt_save(MPI_COMM_WORLD, dir, &m, v, v + len, v + 2 * len, off, len, 2, NULL);
    free(v);
    return st;
}

static void read_latest(const char *dir, char *buf, size_t cap)
{
    char p[256];
    snprintf(p, sizeof p, "%s/latest", dir);
    FILE *f = fopen(p, "r");
    buf[0] = '\0';
    if (f) {
        if (!fgets(buf, (int)cap, f)) {
            buf[0] = '\0';
        }
        fclose(f);
    }
}

/* The previous checkpoint is whole: verified, found for resume, loadable. */
static void assert_step1_intact(const char *dir)
{
    char path[CKPT_PATH_MAX], found_path[CKPT_PATH_MAX], latest[64];
    struct ckpt_verify_report r;
    struct ckpt_meta m;
    int found = 0;
    assert_int_equal(ckpt_path(dir, 1, path, sizeof path), DURE_OK);
    if (mpitest_rank() == 0) {
        assert_int_equal(ckpt_verify(path, &r), DURE_OK);
        read_latest(dir, latest, sizeof latest);
        assert_string_equal(latest, "ckpt-00000001.h5\n");
        assert_int_equal(fx_count_suffix(dir, ".tmp"), 0);
        assert_int_equal(fx_count_suffix(dir, ".h5"), 1);
    }
    assert_int_equal(ckpt_find_latest_valid(MPI_COMM_WORLD, dir, found_path,
                                            sizeof found_path, &m, &found),
                     DURE_OK);
    assert_int_equal(found, 1);
    assert_int_equal(m.step, 1);
    size_t off, len;
    fx_shard(N, mpitest_rank(), mpitest_size(), &off, &len);
    float *p = malloc((len + 1) * sizeof *p);
    assert_non_null(p);
    assert_int_equal(ckpt_load(MPI_COMM_WORLD, found_path, m.model, N, NULL, p, NULL, NULL,
                               off, len, NULL),
                     DURE_OK);
    assert_int_equal(fx_mismatch(p, 1, 0, off, len), -1);
    free(p);
}

static void test_full_disk_keeps_previous(void **state)
{
    (void)state;
    char dir[64];
    int use_tmpfs = 0;
    struct rlimit old_limit;
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);
    /* DURE_TEST_NO_MOUNT=1 exercises the unprivileged path as root too. */
    if (mpitest_rank() == 0 && geteuid() == 0 && !getenv("DURE_TEST_NO_MOUNT")) {
        use_tmpfs =
            mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=1000k,mode=0755") == 0;
    }
    MPI_Bcast(&use_tmpfs, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (mpitest_rank() == 0) {
        printf("# full disk by %s\n",
               use_tmpfs ? "a 1000 KiB tmpfs" : "RLIMIT_FSIZE (not root)");
    }

    assert_int_equal(save(dir, 1, 1), DURE_OK);
    if (!use_tmpfs) {
        struct rlimit lim;
        getrlimit(RLIMIT_FSIZE, &old_limit);
        lim = old_limit;
        lim.rlim_cur = 300 * 1024;
        signal(SIGXFSZ, SIG_IGN);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    }
    dure_log_set_quiet(1);
    dure_status_t st = save(dir, 2, 2);
    dure_log_set_quiet(0);
    if (!use_tmpfs) {
        setrlimit(RLIMIT_FSIZE, &old_limit);
    }
    assert_int_equal(st, DURE_ERR_IO);
    /* The rank whose write failed says why; rank 0 names the failing rank. */
    const char *e = dure_last_error();
    if (use_tmpfs) {
        /* Rank 0 reserves the space before any data is written, and says
         * why it failed; the other ranks return the same status quietly. */
        if (mpitest_rank() == 0) {
            assert_non_null(strstr(e, "not enough space for checkpoint"));
            assert_non_null(strstr(e, "No space left on device"));
            assert_non_null(strstr(e, "ckpt-00000002.h5"));
        }
    } else {
        assert_non_null(strstr(e, "file size limit (ulimit -f)"));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    assert_step1_intact(dir);

    if (use_tmpfs && mpitest_rank() == 0) {
        assert_int_equal(umount2(dir, MNT_DETACH), 0);
    }
    fx_rmtree(MPI_COMM_WORLD, dir);
}

/* What a crash at each point of the protocol leaves behind. */
static void test_crash_leftovers_are_skipped_and_cleaned(void **state)
{
    (void)state;
    char dir[64], p[CKPT_PATH_MAX + 32], found_path[CKPT_PATH_MAX];
    struct ckpt_meta m;
    int found = 0;
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);
    assert_int_equal(save(dir, 1, 1), DURE_OK);
    if (mpitest_rank() == 0) {
        FILE *f;
        /* Crash during the HDF5 write of step 3. */
        snprintf(p, sizeof p, "%s/ckpt-00000003.h5.tmp", dir);
        assert_non_null(f = fopen(p, "w"));
        fputs("partial", f);
        fclose(f);
        /* Crash after the sidecar of step 2 was published, before the rename. */
        snprintf(p, sizeof p, "%s/ckpt-00000002.h5.sha256", dir);
        assert_non_null(f = fopen(p, "w"));
        fprintf(f, "%064d  ckpt-00000002.h5\n", 0);
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    assert_int_equal(ckpt_find_latest_valid(MPI_COMM_WORLD, dir, found_path,
                                            sizeof found_path, &m, &found),
                     DURE_OK);
    assert_int_equal(found, 1);
    assert_int_equal(m.step, 1);

    /* Step 2's file replaced by a different one of the same step while its
     * sidecar still describes the first: a crash between the two renames of
     * a re-save. It must be skipped, not trusted. */
    assert_int_equal(save(dir, 2, 2), DURE_OK);
    if (mpitest_rank() == 0) {
        char side[CKPT_PATH_MAX + 16], keep[CKPT_PATH_MAX + 16];
        snprintf(side, sizeof side, "%s/ckpt-00000002.h5.sha256", dir);
        snprintf(keep, sizeof keep, "%s/saved.sha256", dir);
        assert_int_equal(rename(side, keep), 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    assert_int_equal(save(dir, 2, 7), DURE_OK);
    if (mpitest_rank() == 0) {
        char side[CKPT_PATH_MAX + 16], keep[CKPT_PATH_MAX + 16];
        snprintf(side, sizeof side, "%s/ckpt-00000002.h5.sha256", dir);
        snprintf(keep, sizeof keep, "%s/saved.sha256", dir);
        assert_int_equal(rename(keep, side), 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    dure_log_set_quiet(1);
    assert_int_equal(ckpt_find_latest_valid(MPI_COMM_WORLD, dir, found_path,
                                            sizeof found_path, &m, &found),
                     DURE_OK);
    dure_log_set_quiet(0);
    assert_int_equal(m.step, 1);

    /* The next successful save cleans the stale temp file. */
    assert_int_equal(save(dir, 3, 3), DURE_OK);
    MPI_Barrier(MPI_COMM_WORLD);
    if (mpitest_rank() == 0) {
        assert_int_equal(fx_count_suffix(dir, ".tmp"), 0);
    }
    assert_int_equal(ckpt_find_latest_valid(MPI_COMM_WORLD, dir, found_path,
                                            sizeof found_path, &m, &found),
                     DURE_OK);
    assert_int_equal(m.step, 3);
    fx_rmtree(MPI_COMM_WORLD, dir);
}

/* The small files written after the HDF5 file (sidecar, then `latest`)
 * cannot be created: a directory sits where their temp file goes. */
static void test_publish_failures(void **state)
{
    (void)state;
    char dir[64], p[CKPT_PATH_MAX + 32], found_path[CKPT_PATH_MAX], latest[64];
    struct ckpt_meta m;
    int found = 0;
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);
    assert_int_equal(save(dir, 1, 1), DURE_OK);
    snprintf(p, sizeof p, "%s/ckpt-00000002.h5.sha256.tmp", dir);
    if (mpitest_rank() == 0) {
        assert_int_equal(mkdir(p, 0755), 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    dure_log_set_quiet(1);
    assert_int_equal(save(dir, 2, 2), DURE_ERR_IO);
    dure_log_set_quiet(0);
    if (mpitest_rank() == 0) {
        assert_non_null(strstr(dure_last_error(), "ckpt-00000002.h5.sha256.tmp"));
        assert_int_equal(rmdir(p), 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    assert_step1_intact(dir);

    /* `latest` cannot be updated: the checkpoint itself is complete and
     * valid, the save reports the failure, and the finder notices the stale
     * pointer. */
    snprintf(p, sizeof p, "%s/latest.tmp", dir);
    if (mpitest_rank() == 0) {
        assert_int_equal(mkdir(p, 0755), 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    dure_log_set_quiet(1);
    assert_int_equal(save(dir, 2, 2), DURE_ERR_IO);
    dure_log_set_quiet(0);
    if (mpitest_rank() == 0) {
        read_latest(dir, latest, sizeof latest);
        assert_string_equal(latest, "ckpt-00000001.h5\n");
        assert_int_equal(rmdir(p), 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    assert_int_equal(ckpt_find_latest_valid(MPI_COMM_WORLD, dir, found_path,
                                            sizeof found_path, &m, &found),
                     DURE_OK);
    assert_int_equal(m.step, 2);
    fx_rmtree(MPI_COMM_WORLD, dir);
}

/* A directory that does not exist, or a file where the directory should be. */
static void test_bad_directory(void **state)
{
    (void)state;
    dure_log_set_quiet(1);
    dure_status_t st = save("/nonexistent/dure-ckpt", 1, 1);
    dure_log_set_quiet(0);
    assert_int_equal(st, DURE_ERR_IO);
    assert_non_null(strstr(dure_last_error(), "/nonexistent/dure-ckpt"));
}

int main(int argc, char **argv)
{
    mpitest_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_disk_keeps_previous),
        cmocka_unit_test(test_crash_leftovers_are_skipped_and_cleaned),
        cmocka_unit_test(test_publish_failures),
        cmocka_unit_test(test_bad_directory),
    };
    return MPITEST_RUN("ckpt faults (mpi)", tests);
}
