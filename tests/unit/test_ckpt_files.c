/*
 * tests/unit/test_ckpt_files.c - the checkpoint directory protocol without
 * MPI: file names, the sha256sum-format sidecar, atomic small files, listing
 * and pruning (keep newest K, never what is newer than the save), and the
 * dataset fingerprint of the run manifest (full and sampled).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sha256.h"
#include "ckpt/ckpt.h"
#include "ckpt/ckpt_files.h"
#include "train/manifest.h"
#include "tests/support/tmpdir.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    return tmpdir_make(dir, sizeof dir, "ckpt-unit");
}

static int teardown(void **state)
{
    (void)state;
    return tmpdir_remove(dir);
}

static void touch(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int exists(const char *name)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void test_names(void **state)
{
    (void)state;
    uint64_t s = 0;
    char buf[64];
    assert_true(ckpt_name_step("ckpt-00000100.h5", &s));
    assert_int_equal(s, 100);
    assert_true(ckpt_name_step("ckpt-123456789.h5", &s));
    assert_int_equal(s, 123456789);
    assert_false(ckpt_name_step("ckpt-0000100.h5", &s)); /* 7 digits */
    assert_false(ckpt_name_step("ckpt-00000100.h5.tmp", &s));
    assert_false(ckpt_name_step("ckpt-00000100.h5.sha256", &s));
    assert_false(ckpt_name_step("ckpt-0000010x.h5", &s));
    assert_false(ckpt_name_step("latest", &s));
    assert_int_equal(ckpt_path("runs/a/checkpoints", 42, buf, sizeof buf), DURE_OK);
    assert_string_equal(buf, "runs/a/checkpoints/ckpt-00000042.h5");
    dure_log_set_quiet(1);
    assert_int_equal(ckpt_path("runs/a/a-very-long-directory-name-that-does-not-fit", 1,
                               buf, sizeof buf),
                     DURE_ERR_ARG);
    dure_log_set_quiet(0);
    assert_string_equal(ckpt_basename("a/b/ckpt-00000001.h5"), "ckpt-00000001.h5");
}

static void test_sidecar_round_trip_and_refusals(void **state)
{
    (void)state;
    char path[256], hex[DURE_SHA256_HEX], got[DURE_SHA256_HEX];
    snprintf(path, sizeof path, "%s/ckpt-00000007.h5", dir);
    memset(hex, 'a', 64);
    hex[64] = '\0';
    hex[0] = '0';
    assert_int_equal(ckpt_sidecar_write(path, hex), DURE_OK);
    assert_int_equal(ckpt_sidecar_read(path, got), DURE_OK);
    assert_string_equal(got, hex);
    assert_false(exists("ckpt-00000007.h5.sha256.tmp"));

    dure_log_set_quiet(1);
    /* Another file's line, an uppercase digest, a short digest, nothing. */
    touch("ckpt-00000007.h5.sha256", "0aaa  ckpt-00000008.h5\n");
    assert_int_equal(ckpt_sidecar_read(path, got), DURE_ERR_FORMAT);
    assert_non_null(
        strstr(dure_last_error(), "does not hold a SHA-256 line for 'ckpt-00000007.h5'"));
    char line[128];
    snprintf(line, sizeof line, "%s  ckpt-00000008.h5\n", hex);
    touch("ckpt-00000007.h5.sha256", line);
    assert_int_equal(ckpt_sidecar_read(path, got), DURE_ERR_FORMAT);
    snprintf(line, sizeof line, "A%s  ckpt-00000007.h5\n", hex + 1);
    touch("ckpt-00000007.h5.sha256", line);
    assert_int_equal(ckpt_sidecar_read(path, got), DURE_ERR_FORMAT);
    touch("ckpt-00000007.h5.sha256", "");
    assert_int_equal(ckpt_sidecar_read(path, got), DURE_ERR_FORMAT);
    assert_non_null(strstr(dure_last_error(), "is empty"));
    snprintf(path, sizeof path, "%s/ckpt-00000009.h5", dir);
    assert_int_equal(ckpt_sidecar_read(path, got), DURE_ERR_IO);
    assert_non_null(strstr(dure_last_error(), "ckpt-00000009.h5.sha256"));
    dure_log_set_quiet(0);
}

static void test_list_and_prune(void **state)
{
    (void)state;
    uint64_t *steps = NULL;
    size_t n = 0;
    const char *names[] = {"ckpt-00000010.h5", "ckpt-00000020.h5", "ckpt-00000030.h5",
                           "ckpt-00000040.h5", "ckpt-00000050.h5"};
    for (int i = 0; i < 5; i++) {
        char side[64];
        touch(names[i], "x");
        snprintf(side, sizeof side, "%s.sha256", names[i]);
        touch(side, "x");
    }
    touch("ckpt-00000060.h5.tmp", "crashed save");
    touch("latest.tmp", "crashed pointer");
    touch("ckpt-00000005.h5.sha256", "orphan");
    touch("notes.txt", "not ours");
    assert_int_equal(ckpt_list_steps(dir, &steps, &n), DURE_OK);
    assert_int_equal(n, 5);
    assert_int_equal(steps[0], 50);
    assert_int_equal(steps[4], 10);
    free(steps);

    /* Saved step 30 after resuming from it: 40 and 50 (left by a run whose
     * checkpoints were skipped) are neither counted nor deleted. */
    ckpt_prune(dir, 30, 2);
    assert_true(exists("ckpt-00000050.h5") && exists("ckpt-00000040.h5"));
    assert_true(exists("ckpt-00000030.h5") && exists("ckpt-00000020.h5"));
    assert_true(exists("ckpt-00000020.h5.sha256"));
    assert_false(exists("ckpt-00000010.h5") || exists("ckpt-00000010.h5.sha256"));
    assert_false(exists("ckpt-00000060.h5.tmp") || exists("latest.tmp"));
    assert_false(exists("ckpt-00000005.h5.sha256"));
    assert_true(exists("notes.txt"));

    ckpt_prune(dir, 50, 1);
    assert_int_equal(ckpt_list_steps(dir, &steps, &n), DURE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(steps[0], 50);
    free(steps);
    ckpt_prune(dir, 50, 0); /* keep all */
    assert_true(exists("ckpt-00000050.h5"));

    char missing[128];
    snprintf(missing, sizeof missing, "%s/none", dir);
    assert_int_equal(ckpt_list_steps(missing, &steps, &n), DURE_OK);
    assert_int_equal(n, 0);
    free(steps);
}

static void test_write_atomic_replaces(void **state)
{
    (void)state;
    char p[128], buf[32] = "";
    snprintf(p, sizeof p, "%s/latest", dir);
    assert_int_equal(ckpt_write_atomic(p, "ckpt-00000001.h5\n"), DURE_OK);
    assert_int_equal(ckpt_write_atomic(p, "ckpt-00000002.h5\n"), DURE_OK);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "ckpt-00000002.h5\n");
    assert_false(exists("latest.tmp"));
}

/* A sparse file of 80 MiB: SHA-256 of zeros is cheap to read. */
static void make_sparse(const char *p, off_t size)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, size), 0);
    close(fd);
}

static void poke(const char *p, off_t at)
{
    int fd = open(p, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "!", 1, at), 1);
    close(fd);
}

static void test_fingerprint_full_and_sampled(void **state)
{
    (void)state;
    char p[128];
    struct manifest_fingerprint full0, full1, samp0, samp1, samp2;
    char hex[1][DURE_SHA256_HEX];
    snprintf(p, sizeof p, "%s/big.h5", dir);
    const char *paths[1] = {p};
    const off_t size = 80 << 20;
    make_sparse(p, size);
    assert_int_equal(manifest_fingerprint(paths, 1, MANIFEST_FP_FULL, &full0, hex),
                     DURE_OK);
    assert_string_equal(full0.mode, "full");
    assert_int_equal(full0.bytes, (uint64_t)size);
    uint8_t d[DURE_SHA256_BYTES];
    char want[DURE_SHA256_HEX];
    assert_int_equal(dure_sha256_file(p, d, NULL), DURE_OK);
    dure_sha256_hex(d, want);
    assert_string_equal(hex[0], want);
    assert_int_equal(manifest_fingerprint(paths, 1, MANIFEST_FP_SAMPLED, &samp0, NULL),
                     DURE_OK);
    assert_string_equal(samp0.mode, "sampled-64x1MiB");
    /* AUTO picks full below 16 GiB. */
    assert_int_equal(manifest_fingerprint(paths, 1, MANIFEST_FP_AUTO, &full1, NULL),
                     DURE_OK);
    assert_string_equal(full1.value, full0.value);

    /* Block 1 starts at (80 - 1) MiB / 63 = 1.254 MiB: a byte at 1.5 MiB is
     * sampled, one at 1.1 MiB falls between blocks 0 and 1. */
    poke(p, (off_t)(1.5 * 1048576));
    assert_int_equal(manifest_fingerprint(paths, 1, MANIFEST_FP_SAMPLED, &samp1, NULL),
                     DURE_OK);
    assert_string_not_equal(samp1.value, samp0.value);
    poke(p, (off_t)(1.1 * 1048576));
    assert_int_equal(manifest_fingerprint(paths, 1, MANIFEST_FP_SAMPLED, &samp2, NULL),
                     DURE_OK);
    assert_string_equal(samp2.value, samp1.value); /* the documented blind spot */
    assert_int_equal(manifest_fingerprint(paths, 1, MANIFEST_FP_FULL, &full1, NULL),
                     DURE_OK);
    assert_string_not_equal(full1.value, full0.value);

    /* The set's order is part of the fingerprint; a missing file is named. */
    char q[128];
    snprintf(q, sizeof q, "%s/small.h5", dir);
    touch("small.h5", "episode");
    const char *ab[2] = {p, q}, *ba[2] = {q, p};
    struct manifest_fingerprint fab, fba;
    assert_int_equal(manifest_fingerprint(ab, 2, MANIFEST_FP_SAMPLED, &fab, NULL), DURE_OK);
    assert_int_equal(manifest_fingerprint(ba, 2, MANIFEST_FP_SAMPLED, &fba, NULL), DURE_OK);
    assert_string_not_equal(fab.value, fba.value);
    assert_int_equal(fab.bytes, (uint64_t)size + 7);
    snprintf(q, sizeof q, "%s/gone.h5", dir);
    const char *gone[1] = {q};
    dure_log_set_quiet(1);
    assert_int_equal(manifest_fingerprint(gone, 1, MANIFEST_FP_FULL, &fab, NULL),
                     DURE_ERR_IO);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "gone.h5"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sidecar_round_trip_and_refusals, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_list_and_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_atomic_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fingerprint_full_and_sampled, setup, teardown),
    };
    return cmocka_run_group_tests_name("ckpt files", tests, NULL, NULL);
}
