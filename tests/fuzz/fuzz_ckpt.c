/*
 * tests/fuzz/fuzz_ckpt.c - the checkpoint readers: `dure ckpt inspect`
 * (ckpt_read_meta, ckpt_describe), `dure ckpt verify` (ckpt_verify and the
 * SHA-256 sidecar) and ckpt_read_dataset (`dure verify`'s comparison).
 *
 * Input: one byte choosing the sidecar (none, the file's true digest, a
 * wrong digest, the true digest under another file name), then the file
 * ckpt-00000001.h5.
 *
 * Properties:
 *   - every call fails with a message, or succeeds;
 *   - ckpt_verify succeeds exactly when its report says every check passed
 *     and lists no problem; it fails with DURE_ERR_IO or DURE_ERR_FORMAT and
 *     at least one problem otherwise; the hash passes only with the true
 *     sidecar;
 *   - a verified file describes: the same metadata as ckpt_read_meta, every
 *     dataset of n_params floats with Fletcher32, and its first floats read.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "common/sha256.h"
#include "tests/fuzz/support.h"

#define READ_MAX 256

enum sidecar { SIDE_NONE, SIDE_TRUE, SIDE_WRONG, SIDE_OTHER_NAME };

static void write_sidecar(enum sidecar mode, const uint8_t *file, size_t size)
{
    uint8_t digest[DURE_SHA256_BYTES];
    char hex[DURE_SHA256_HEX], text[256], path[512];
    int n;

    if (mode == SIDE_NONE) {
        snprintf(path, sizeof path, "%s/ckpt-00000001.h5.sha256", fuzz_dir());
        unlink(path);
        return;
    }
    FUZZ_ASSERT(dure_sha256_buf(file, size, digest) == DURE_OK, "sha256 failed");
    if (mode == SIDE_WRONG) {
        digest[0] ^= 1;
    }
    dure_sha256_hex(digest, hex);
    n = snprintf(text, sizeof text, "%s  %s\n", hex,
                 mode == SIDE_OTHER_NAME ? "ckpt-00000002.h5" : "ckpt-00000001.h5");
    fuzz_write_file("ckpt-00000001.h5.sha256", (const uint8_t *)text, (size_t)n, path,
                    sizeof path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    struct ckpt_meta meta, described;
    struct ckpt_dataset_info info[CKPT_N_DATASETS];
    struct ckpt_verify_report rep;
    float buf[READ_MAX];

    if (size < 1) {
        return 0;
    }
    enum sidecar mode = (enum sidecar)(data[0] % 4);
    fuzz_write_file("ckpt-00000001.h5", data + 1, size - 1, path, sizeof path);
    write_sidecar(mode, data + 1, size - 1);

    fuzz_error_reset();
    dure_status_t meta_st = fuzz_expect_error(ckpt_read_meta(path, &meta), "ckpt_read_meta");
    fuzz_error_reset();
    dure_status_t desc_st =
        fuzz_expect_error(ckpt_describe(path, &described, info), "ckpt_describe");
    memset(&rep, 0, sizeof rep);
    fuzz_error_reset();
    dure_status_t st = fuzz_expect_error(ckpt_verify(path, &rep), "ckpt_verify");
    int all_ok = rep.meta_ok && rep.datasets_ok && rep.hash_present && rep.hash_ok;
    FUZZ_ASSERT(memchr(rep.problems, '\0', sizeof rep.problems) != NULL,
                "problems not terminated");
    FUZZ_ASSERT((st == DURE_OK) == all_ok, "verify %s but report meta %d datasets %d hash "
                "%d/%d", dure_status_name(st), rep.meta_ok, rep.datasets_ok,
                rep.hash_present, rep.hash_ok);
    FUZZ_ASSERT((st == DURE_OK) == (rep.problems[0] == '\0'),
                "verify %s with problems '%s'", dure_status_name(st), rep.problems);
    FUZZ_ASSERT(st == DURE_OK || st == DURE_ERR_IO || st == DURE_ERR_FORMAT,
                "verify failed with %s", dure_status_name(st));
    FUZZ_ASSERT(!rep.hash_ok || mode == SIDE_TRUE, "hash passes with sidecar mode %d", mode);
    FUZZ_ASSERT(!rep.meta_ok || meta_st == DURE_OK, "verify reads metadata, read_meta fails");
    if (st == DURE_OK) {
        FUZZ_ASSERT(desc_st == DURE_OK, "a verified file does not describe: %s",
                    dure_last_error());
        FUZZ_ASSERT(ckpt_meta_equal(&meta, &described), "read_meta and describe disagree");
        for (int i = 0; i < CKPT_N_DATASETS; i++) {
            FUZZ_ASSERT(info[i].n == meta.n_params && info[i].fletcher32,
                        "verified dataset %d: %llu floats (n_params %llu), fletcher32 %d", i,
                        (unsigned long long)info[i].n, (unsigned long long)meta.n_params,
                        info[i].fletcher32);
        }
    }
    if (desc_st == DURE_OK) {
        for (int i = 0; i < CKPT_N_DATASETS; i++) {
            size_t len = info[i].n < READ_MAX ? (size_t)info[i].n : READ_MAX;
            fuzz_error_reset();
            dure_status_t rs = fuzz_expect_error(ckpt_read_dataset(path, i, 0, len, buf),
                                                 "ckpt_read_dataset");
            FUZZ_ASSERT(st != DURE_OK || rs == DURE_OK, "verified, but dataset %d does not "
                        "read: %s", i, dure_last_error());
        }
    }
    fuzz_expect_h5_closed("the checkpoint readers");
    return 0;
}
