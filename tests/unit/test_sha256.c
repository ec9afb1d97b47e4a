/* tests/unit/test_sha256.c - common/sha256: SHA-256 (FIPS 180-4 examples,
 * one-shot and incremental) and HMAC-SHA256 (RFC 4231 test cases 1-7). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sha256.h"

/* The first n bytes of a digest in hex (RFC 4231 case 5 truncates). */
static void hex(const uint8_t *d, size_t n, char *out)
{
    char full[DURE_SHA256_HEX];
    dure_sha256_hex(d, full);
    memcpy(out, full, 2 * n);
    out[2 * n] = '\0';
}

/* Bytes from a hex string (test vectors); returns the length. */
static size_t unhex(const char *s, unsigned char *out)
{
    size_t n = strlen(s) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(s + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
    return n;
}

static void test_sha256_fips_examples(void **state)
{
    (void)state;
    uint8_t d[DURE_SHA256_BYTES];
    char h[DURE_SHA256_HEX];
    assert_int_equal(dure_sha256_buf("abc", 3, d), DURE_OK);
    hex(d, 32, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_true(dure_sha256_u64(d) == 0xba7816bf8f01cfeaull);
    assert_int_equal(dure_sha256_buf("", 0, d), DURE_OK);
    hex(d, 32, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_int_equal(dure_sha256_buf(m, strlen(m), d), DURE_OK);
    hex(d, 32, h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* One million 'a', fed in uneven pieces to exercise block boundaries;
     * then the same hasher again, since final resets it. */
    dure_sha256_t *s = NULL;
    char buf[997];
    memset(buf, 'a', sizeof buf);
    assert_int_equal(dure_sha256_new(&s), DURE_OK);
    for (int round = 0; round < 2; round++) {
        size_t left = 1000000;
        while (left) {
            size_t n = left < sizeof buf ? left : sizeof buf;
            assert_int_equal(dure_sha256_update(s, buf, n), DURE_OK);
            left -= n;
        }
        assert_int_equal(dure_sha256_final(s, d), DURE_OK);
        hex(d, 32, h);
        assert_string_equal(h,
                            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }
    dure_sha256_free(s);
}

struct rfc4231 {
    const char *key, *data, *mac; /* hex */
    size_t mac_bytes;
};

static void test_hmac_rfc4231(void **state)
{
    (void)state;
    static const struct rfc4231 cases[] = {
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", 32},
        {"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", 32},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe", 32},
        {"0102030405060708090a0b0c0d0e0f10111213141516171819",
         "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b", 32},
        {"0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c",
         "546573742057697468205472756e636174696f6e", "a3b6167473100ee06e0c796c2955552b", 16},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048617368204b6579204669727374",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", 32},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b2d73697a65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a6520646174612e20546865206b6579206e6565647320746f20626520686173686564206265666f7265206265696e6720757365642062792074686520484d414320616c676f726974686d2e",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2", 32},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        unsigned char key[256], data[256];
        uint8_t mac[DURE_SHA256_BYTES];
        char h[DURE_SHA256_HEX];
        size_t kl = unhex(cases[i].key, key), dl = unhex(cases[i].data, data);
        assert_int_equal(dure_hmac_sha256(key, kl, data, dl, mac), DURE_OK);
        hex(mac, cases[i].mac_bytes, h);
        assert_string_equal(h, cases[i].mac);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_fips_examples),
        cmocka_unit_test(test_hmac_rfc4231),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
