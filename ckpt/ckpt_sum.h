/*
 * ckpt/ckpt_sum.h - the per-block checksums of a checkpoint (internal to
 * ckpt/).
 *
 * Format version 2 stores /params, /adam_m and /adam_v contiguously, without
 * an HDF5 filter, and beside them /checksums, uint32 [3, B]: the CRC-32C
 * (Castagnoli, as in iSCSI, ext4 and Python's crc32c package) of block b of
 * dataset i, that is of the little-endian bytes of elements
 * [b*E, min((b+1)*E, N)) with E = CKPT_BLOCK_ELEMS. Anyone can check a block
 * without dure:
 *     crc32c(f['params'][b*E:(b+1)*E].tobytes()) == f['checksums'][0, b]
 * CRC-32C because x86 computes it in hardware (SSE 4.2), several times
 * faster than the disk takes the bytes; elsewhere a table does it.
 *
 * A block may straddle two ranks' shards. Each rank sums the pieces of its
 * own shard (one piece per block it touches), rank 0 gathers them and joins
 * the pieces of each block (the CRC combine of zlib): nobody reads another rank's
 * data, and the whole state is summed once, spread over the ranks.
 */
#ifndef DURE_CKPT_CKPT_SUM_H
#define DURE_CKPT_CKPT_SUM_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

/* Elements per checksum block: 1 Mi floats, 4 MiB. */
#define CKPT_BLOCK_ELEMS ((uint64_t)1 << 20)

/* Blocks of a vector of n elements (0 for n = 0). */
uint64_t ckpt_sum_blocks(uint64_t n);

/* CRC-32C of the bytes of buf[len] (the block or piece of a block). */
uint32_t ckpt_sum_crc(const float *buf, size_t len);

/* The sum of one rank's part of one block. */
struct ckpt_piece {
    uint32_t dataset; /* 0 params, 1 adam_m, 2 adam_v */
    uint32_t crc;     /* CRC-32C of the piece's bytes */
    uint64_t start;   /* first element of the piece */
    uint64_t len;     /* elements, >= 1; start and start + len in one block */
};

/* Pieces a shard of len elements can cut into, at most (for sizing). */
size_t ckpt_sum_pieces_max(size_t len);

/*
 * Sum this rank's shard buf[len] = elements [offset, offset + len) of
 * dataset `dataset`, one piece per block it touches, into out[] (room for
 * ckpt_sum_pieces_max(len)); returns how many were written.
 */
size_t ckpt_sum_pieces(int dataset, const float *buf, size_t offset, size_t len,
                       struct ckpt_piece *out);

/*
 * Join the pieces of every rank (any order; sorted here) into sums[3][B] for
 * vectors of n elements. The pieces must tile each dataset exactly:
 * DURE_ERR_INTERNAL naming the first gap or overlap otherwise.
 */
dure_status_t ckpt_sum_join(struct ckpt_piece *pieces, size_t count, uint64_t n,
                            uint32_t *sums);

#endif
