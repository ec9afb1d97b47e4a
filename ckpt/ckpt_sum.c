/* ckpt/ckpt_sum.c - see ckpt_sum.h. */
#include "ckpt/ckpt_sum.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

/* The stored bytes are the host's floats as they are (ckpt.c writes them
 * raw), declared little-endian in the file. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "dure checkpoints store the host's float32 bytes as little-endian"
#endif

/* CRC-32C: the Castagnoli polynomial, bit-reflected. */
#define CRC32C_POLY 0x82F63B78u

/* Byte-at-a-time table for machines without the CRC32 instruction. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_hw;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = c & 1 ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        }
        crc_table[i] = c;
    }
#if defined(__x86_64__)
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_soft(uint32_t crc, const unsigned char *p, size_t n)
{
    while (n--) {
        crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    }
    return crc;
}

#if defined(__x86_64__)
/* SSE 4.2's CRC32 instruction: 8 bytes per instruction, about 8 GB/s on
 * one core (zlib's CRC-32 runs at 1.5-3 GB/s here, a cost the save would
 * pay on every byte). */
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc,
                                                           const unsigned char *p, size_t n)
{
    uint64_t c = crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
    }
    crc = (uint32_t)c;
    for (; n > 0; n--, p++) {
        crc = _mm_crc32_u8(crc, *p);
    }
    return crc;
}
#endif

/* Continue the CRC-32C `crc` (0 for nothing yet) over buf[n]. */
static uint32_t crc_update(uint32_t crc, const void *buf, size_t n)
{
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
#if defined(__x86_64__)
    if (crc_hw) {
        return ~crc_sse42(crc, buf, n);
    }
#endif
    return ~crc_soft(crc, buf, n);
}

/* GF(2) 32x32 matrix times vector, and matrix squared: zlib's
 * crc32_combine, for the Castagnoli polynomial. */
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
    uint32_t sum = 0;
    for (; vec; vec >>= 1, mat++) {
        if (vec & 1) {
            sum ^= *mat;
        }
    }
    return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat)
{
    for (int n = 0; n < 32; n++) {
        square[n] = gf2_times(mat, mat[n]);
    }
}

/* CRC-32C of A||B from crc1 = crc(A), crc2 = crc(B) and len2 = |B| bytes. */
static uint32_t crc_combine(uint32_t crc1, uint32_t crc2, uint64_t len2)
{
    uint32_t even[32], odd[32];
    if (len2 == 0) {
        return crc1;
    }
    /* odd: the operator for one zero bit; even: two; then square on. */
    odd[0] = CRC32C_POLY;
    uint32_t row = 1;
    for (int n = 1; n < 32; n++, row <<= 1) {
        odd[n] = row;
    }
    gf2_square(even, odd);
    gf2_square(odd, even);
    do {
        gf2_square(even, odd);
        if (len2 & 1) {
            crc1 = gf2_times(even, crc1);
        }
        len2 >>= 1;
        if (len2 == 0) {
            break;
        }
        gf2_square(odd, even);
        if (len2 & 1) {
            crc1 = gf2_times(odd, crc1);
        }
        len2 >>= 1;
    } while (len2 != 0);
    return crc1 ^ crc2;
}

uint64_t ckpt_sum_blocks(uint64_t n)
{
    return (n + CKPT_BLOCK_ELEMS - 1) / CKPT_BLOCK_ELEMS;
}

uint32_t ckpt_sum_crc(const float *buf, size_t len)
{
    return crc_update(0, buf, len * sizeof(float));
}

size_t ckpt_sum_pieces_max(size_t len)
{
    return (size_t)ckpt_sum_blocks(len) + 1;
}

size_t ckpt_sum_pieces(int dataset, const float *buf, size_t offset, size_t len,
                       struct ckpt_piece *out)
{
    size_t count = 0, at = offset, end = offset + len;
    while (at < end) {
        size_t block_end = (size_t)((at / CKPT_BLOCK_ELEMS + 1) * CKPT_BLOCK_ELEMS);
        size_t stop = block_end < end ? block_end : end;
        out[count].dataset = (uint32_t)dataset;
        out[count].crc = ckpt_sum_crc(buf + (at - offset), stop - at);
        out[count].start = at;
        out[count].len = stop - at;
        count++;
        at = stop;
    }
    return count;
}

static int cmp_piece(const void *a, const void *b)
{
    const struct ckpt_piece *x = a, *y = b;
    if (x->dataset != y->dataset) {
        return x->dataset < y->dataset ? -1 : 1;
    }
    return x->start < y->start ? -1 : x->start > y->start;
}

dure_status_t ckpt_sum_join(struct ckpt_piece *pieces, size_t count, uint64_t n,
                            uint32_t *sums)
{
    dure_status_t st = DURE_OK;
    uint64_t blocks = ckpt_sum_blocks(n);
    size_t i = 0;
    qsort(pieces, count, sizeof *pieces, cmp_piece);
    for (uint32_t d = 0; d < 3; d++) {
        for (uint64_t b = 0; b < blocks; b++) {
            uint64_t at = b * CKPT_BLOCK_ELEMS;
            uint64_t end = at + CKPT_BLOCK_ELEMS < n ? at + CKPT_BLOCK_ELEMS : n;
            uint32_t crc = 0;
            while (at < end) {
                DURE_CHECK(i < count && pieces[i].dataset == d && pieces[i].start == at &&
                               pieces[i].len <= end - at,
                           DURE_ERR_INTERNAL,
                           "checkpoint checksums: dataset %u has no piece starting at "
                           "element %llu (the shards do not tile it)",
                           d, (unsigned long long)at);
                crc = crc_combine(crc, pieces[i].crc, pieces[i].len * sizeof(float));
                at += pieces[i].len;
                i++;
            }
            sums[d * blocks + b] = crc;
        }
    }
    DURE_CHECK(i == count, DURE_ERR_INTERNAL,
               "checkpoint checksums: %zu pieces beyond the %llu elements", count - i,
               (unsigned long long)n);
out:
    return st;
}
