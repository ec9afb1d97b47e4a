/*
 * tests/unit/test_ckpt_sum.c - the per-block CRC-32Cs of checkpoint format
 * version 2: the known check value; pieces summed on each rank's shard and
 * joined on rank 0 give the CRC-32C of each whole block (against a plain
 * bit-at-a-time reference), whatever the cut; pieces that do not tile the
 * vector are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt_sum.h"

/* The definition, one bit at a time: the reference. */
static uint32_t crc32c_ref(const void *buf, size_t n)
{
    const unsigned char *p = buf;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) {
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        }
    }
    return ~c;
}

/* Two full blocks and a short third one. */
#define N (2 * CKPT_BLOCK_ELEMS + 12345)

static float *vec(int which)
{
    float *v = malloc(N * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < N; i++) {
        v[i] = (float)((i * 2654435761u + (size_t)which * 97u) % 100003u) * 0.001f;
    }
    return v;
}

/* Sum the three vectors cut at `cuts` (ascending, inside (0, N)) the way
 * ranks would, join, and compare with the reference's whole-block CRCs. */
static void check_cut(float *const v[3], const size_t *cuts, size_t n_cuts)
{
    size_t bounds[8];
    size_t nb = 0, count = 0, blocks = (size_t)ckpt_sum_blocks(N);
    bounds[nb++] = 0;
    for (size_t i = 0; i < n_cuts; i++) {
        bounds[nb++] = cuts[i];
    }
    bounds[nb++] = N;
    struct ckpt_piece *p = malloc(3 * (nb - 1) * ckpt_sum_pieces_max(N) * sizeof *p);
    uint32_t *sums = malloc(3 * blocks * sizeof *sums);
    assert_non_null(p);
    assert_non_null(sums);
    /* Shards handed in reverse order: the join must not depend on it. */
    for (size_t s = nb - 1; s-- > 0;) {
        for (int d = 0; d < 3; d++) {
            size_t off = bounds[s], len = bounds[s + 1] - bounds[s];
            count += ckpt_sum_pieces(d, v[d] + off, off, len, p + count);
        }
    }
    assert_int_equal(ckpt_sum_join(p, count, N, sums), DURE_OK);
    for (int d = 0; d < 3; d++) {
        for (size_t b = 0; b < blocks; b++) {
            size_t at = b * CKPT_BLOCK_ELEMS;
            size_t len = N - at < CKPT_BLOCK_ELEMS ? N - at : CKPT_BLOCK_ELEMS;
            assert_int_equal(sums[d * blocks + b], crc32c_ref(v[d] + at, len * sizeof(float)));
        }
    }
    free(sums);
    free(p);
}

static void test_any_cut_gives_whole_block_sums(void **state)
{
    (void)state;
    float *v[3] = {vec(0), vec(1), vec(2)};
    const size_t none[1] = {0};
    const size_t aligned[1] = {CKPT_BLOCK_ELEMS};
    const size_t inside[3] = {1, CKPT_BLOCK_ELEMS + 7, 2 * CKPT_BLOCK_ELEMS + 1};
    const size_t one_block_three_ways[2] = {1000, 2000};
    check_cut(v, none, 0);
    check_cut(v, aligned, 1);
    check_cut(v, inside, 3);
    check_cut(v, one_block_three_ways, 2);
    /* A one-element difference changes exactly its block's sum. */
    uint32_t before = ckpt_sum_crc(v[1] + CKPT_BLOCK_ELEMS, CKPT_BLOCK_ELEMS);
    v[1][CKPT_BLOCK_ELEMS + 5] += 1.0f;
    assert_int_not_equal(ckpt_sum_crc(v[1] + CKPT_BLOCK_ELEMS, CKPT_BLOCK_ELEMS), before);
    for (int d = 0; d < 3; d++) {
        free(v[d]);
    }
}

static void test_check_value(void **state)
{
    (void)state;
    /* The catalogue's check value pins the reference; the fast path (8
     * bytes at a time, then a tail) must agree with it. */
    union {
        float f[3];
        char c[12];
    } u;
    memset(&u, 0, sizeof u);
    memcpy(u.c, "12345678", 8);
    assert_int_equal(crc32c_ref("123456789", 9), 0xE3069283u);
    assert_int_equal(ckpt_sum_crc(u.f, 2), crc32c_ref("12345678", 8));
    assert_int_equal(ckpt_sum_crc(u.f, 3), crc32c_ref(u.c, 12));
    assert_int_equal(ckpt_sum_crc(u.f, 0), 0);
}

static void test_pieces_per_block(void **state)
{
    (void)state;
    float *v = vec(0);
    struct ckpt_piece p[8];
    /* [B - 3, 2B + 4): the tail of block 0, all of block 1, the head of 2. */
    size_t off = CKPT_BLOCK_ELEMS - 3, len = CKPT_BLOCK_ELEMS + 7;
    assert_true(ckpt_sum_pieces_max(len) >= 3);
    assert_int_equal(ckpt_sum_pieces(2, v + off, off, len, p), 3);
    assert_int_equal(p[0].dataset, 2);
    assert_int_equal(p[0].start, off);
    assert_int_equal(p[0].len, 3);
    assert_int_equal(p[1].start, CKPT_BLOCK_ELEMS);
    assert_int_equal(p[1].len, CKPT_BLOCK_ELEMS);
    assert_int_equal(p[2].start, 2 * CKPT_BLOCK_ELEMS);
    assert_int_equal(p[2].len, 4);
    assert_int_equal(p[1].crc, ckpt_sum_crc(v + CKPT_BLOCK_ELEMS, CKPT_BLOCK_ELEMS));
    assert_int_equal(ckpt_sum_pieces(0, v, 0, 0, p), 0);
    free(v);
}

static void test_join_refuses_gaps_and_overlaps(void **state)
{
    (void)state;
    float *v[3] = {vec(0), vec(1), vec(2)};
    size_t blocks = (size_t)ckpt_sum_blocks(N), count = 0;
    struct ckpt_piece *p = malloc(8 * ckpt_sum_pieces_max(N) * sizeof *p);
    uint32_t *sums = malloc(3 * blocks * sizeof *sums);
    assert_non_null(p);
    assert_non_null(sums);
    /* Dataset 1 misses elements [100, 200). */
    for (int d = 0; d < 3; d++) {
        if (d == 1) {
            count += ckpt_sum_pieces(d, v[d], 0, 100, p + count);
            count += ckpt_sum_pieces(d, v[d] + 200, 200, N - 200, p + count);
        } else {
            count += ckpt_sum_pieces(d, v[d], 0, N, p + count);
        }
    }
    assert_int_equal(ckpt_sum_join(p, count, N, sums), DURE_ERR_INTERNAL);
    assert_non_null(strstr(dure_last_error(), "dataset 1 has no piece starting at element 100"));
    /* Dataset 0 twice over. */
    count = 0;
    for (int d = 0; d < 3; d++) {
        count += ckpt_sum_pieces(d, v[d], 0, N, p + count);
    }
    count += ckpt_sum_pieces(0, v[0], 0, 10, p + count);
    assert_int_equal(ckpt_sum_join(p, count, N, sums), DURE_ERR_INTERNAL);
    free(sums);
    free(p);
    for (int d = 0; d < 3; d++) {
        free(v[d]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_value),
        cmocka_unit_test(test_any_cut_gives_whole_block_sums),
        cmocka_unit_test(test_pieces_per_block),
        cmocka_unit_test(test_join_refuses_gaps_and_overlaps),
    };
    dure_log_set_quiet(1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
