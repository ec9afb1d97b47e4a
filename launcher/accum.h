/*
 * launcher/accum.h - the ZeRO stage 2 gradient accumulator on a GPU.
 *
 * At stage 2 each micro-batch's reduced gradient shard is summed into a
 * shard-sized accumulator; on the CPU that is a loop in train/train.c,
 * on a GPU this kernel (launcher/accum.cu) on the model's stream.
 */
#ifndef DURE_LAUNCHER_ACCUM_H
#define DURE_LAUNCHER_ACCUM_H

#include <stddef.h>

#include "common/status.h"

/*
 * acc[i] = g[i] (first != 0) or acc[i] += g[i], i < n, both device memory,
 * enqueued on `stream` (a cudaStream_t) and waited for. A build without CUDA
 * returns DURE_ERR_UNSUPPORTED.
 */
dure_status_t dure_accum_device(float *acc, const float *g, size_t n, int first,
                                void *stream);

#endif
