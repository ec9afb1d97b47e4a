/* common/sha256.c - see sha256.h. */
#include "common/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <unistd.h>

#define READ_BLOCK (1u << 20)

struct dure_sha256 {
    EVP_MD_CTX *ctx;
};

dure_status_t dure_sha256_new(dure_sha256_t **out)
{
    dure_status_t st = DURE_OK;
    dure_sha256_t *h = calloc(1, sizeof *h);
    *out = NULL;
    DURE_ALLOC_TRY(h, sizeof *h);
    h->ctx = EVP_MD_CTX_new();
    DURE_ALLOC_TRY(h->ctx, sizeof(void *));
    DURE_CHECK(EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1, DURE_ERR_INTERNAL,
               "libcrypto: EVP_DigestInit_ex(sha256) failed");
    *out = h;
    h = NULL;
out:
    dure_sha256_free(h);
    return st;
}

void dure_sha256_free(dure_sha256_t *h)
{
    if (h) {
        EVP_MD_CTX_free(h->ctx);
        free(h);
    }
}

dure_status_t dure_sha256_update(dure_sha256_t *h, const void *data, size_t len)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(EVP_DigestUpdate(h->ctx, data, len) == 1, DURE_ERR_INTERNAL,
               "libcrypto: EVP_DigestUpdate failed");
out:
    return st;
}

dure_status_t dure_sha256_final(dure_sha256_t *h, uint8_t digest[DURE_SHA256_BYTES])
{
    dure_status_t st = DURE_OK;
    unsigned int n = 0;
    DURE_CHECK(EVP_DigestFinal_ex(h->ctx, digest, &n) == 1 && n == DURE_SHA256_BYTES,
               DURE_ERR_INTERNAL, "libcrypto: EVP_DigestFinal_ex failed");
    DURE_CHECK(EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1, DURE_ERR_INTERNAL,
               "libcrypto: EVP_DigestInit_ex(sha256) failed");
out:
    return st;
}

dure_status_t dure_sha256_buf(const void *data, size_t len,
                              uint8_t digest[DURE_SHA256_BYTES])
{
    dure_status_t st = DURE_OK;
    dure_sha256_t *h = NULL;
    DURE_TRY(dure_sha256_new(&h));
    DURE_TRY(dure_sha256_update(h, data, len));
    DURE_TRY(dure_sha256_final(h, digest));
out:
    dure_sha256_free(h);
    return st;
}

dure_status_t dure_sha256_update_file(dure_sha256_t *h, const char *path, uint64_t *bytes)
{
    dure_status_t st = DURE_OK;
    uint64_t total = 0;
    unsigned char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    DURE_SYS_TRY(fd >= 0, "open '%s' for hashing", path);
    /* Sequential access doubles readahead on a cold file. */
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    buf = malloc(READ_BLOCK);
    DURE_ALLOC_TRY(buf, READ_BLOCK);
    for (;;) {
        ssize_t n = read(fd, buf, READ_BLOCK);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        DURE_SYS_TRY(n >= 0, "read '%s' at byte %llu", path, (unsigned long long)total);
        if (n == 0) {
            break;
        }
        DURE_TRY(dure_sha256_update(h, buf, (size_t)n));
        total += (uint64_t)n;
    }
    if (bytes) {
        *bytes = total;
    }
out:
    free(buf);
    if (fd >= 0) {
        close(fd);
    }
    return st;
}

dure_status_t dure_sha256_file(const char *path, uint8_t digest[DURE_SHA256_BYTES],
                               uint64_t *bytes)
{
    dure_status_t st = DURE_OK;
    dure_sha256_t *h = NULL;
    DURE_TRY(dure_sha256_new(&h));
    DURE_TRY(dure_sha256_update_file(h, path, bytes));
    DURE_TRY(dure_sha256_final(h, digest));
out:
    dure_sha256_free(h);
    return st;
}

dure_status_t dure_hmac_sha256(const void *key, size_t key_len, const void *msg,
                               size_t msg_len, uint8_t mac[DURE_SHA256_BYTES])
{
    dure_status_t st = DURE_OK;
    unsigned int n = 0;
    /* HMAC() takes an int key length, and reads a NULL key as "reuse the
     * previous key": an empty key gets a valid address instead. */
    static const unsigned char empty[1];
    DURE_CHECK(key_len <= INT_MAX, DURE_ERR_ARG, "HMAC-SHA256 key of %zu bytes is too long",
               key_len);
    DURE_CHECK(HMAC(EVP_sha256(), key_len ? key : empty, (int)key_len, msg, msg_len, mac,
                    &n) != NULL && n == DURE_SHA256_BYTES,
               DURE_ERR_INTERNAL, "libcrypto: HMAC(sha256) failed");
out:
    return st;
}

void dure_sha256_hex(const uint8_t digest[DURE_SHA256_BYTES], char hex[DURE_SHA256_HEX])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < DURE_SHA256_BYTES; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[2 * DURE_SHA256_BYTES] = '\0';
}

uint64_t dure_sha256_u64(const uint8_t digest[DURE_SHA256_BYTES])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | digest[i];
    }
    return v;
}
