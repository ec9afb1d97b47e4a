/*
 * dataio/sha256.h - SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for
 * the keyed hashes that anonymize identifying columns on import. Checked
 * against the FIPS examples and the RFC 4231 test vectors
 * (tests/unit/test_dataio_sha256.c).
 */
#ifndef DURE_DATAIO_SHA256_H
#define DURE_DATAIO_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define DATAIO_SHA256_BYTES 32

struct dataio_sha256 {
    uint32_t h[8];
    uint64_t bytes;          /* message length so far */
    unsigned char blk[64];   /* partial block */
    size_t n;                /* bytes in blk */
};

void dataio_sha256_init(struct dataio_sha256 *s);
void dataio_sha256_update(struct dataio_sha256 *s, const void *data, size_t len);
void dataio_sha256_final(struct dataio_sha256 *s, unsigned char out[DATAIO_SHA256_BYTES]);

/* One-shot digest of data. */
void dataio_sha256(const void *data, size_t len, unsigned char out[DATAIO_SHA256_BYTES]);

/* HMAC-SHA256(key, msg); keys longer than 64 bytes are hashed first. */
void dataio_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                        unsigned char out[DATAIO_SHA256_BYTES]);

#endif
