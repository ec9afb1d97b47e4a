/*
 * common/alloc.h - an allocator handed from the owner of a memory kind to
 * the code that needs buffers of that kind.
 *
 * The owner of a memory kind allocates it (STYLE.md): the device owns its
 * device memory (device_allocator), the communicator owns the memory its
 * fast paths read in place (comm_allocator: on one node an MPI-3 shared
 * window). model_create takes one of these for the parameters and
 * gradients, so the buffers the gradient exchange reads are the
 * communicator's without the model knowing whose they are.
 */
#ifndef DURE_COMMON_ALLOC_H
#define DURE_COMMON_ALLOC_H

#include <stddef.h>

#include "common/status.h"

struct dure_allocator {
    /* *p = `bytes` of the owner's memory (contents undefined), or fail with
     * a logged status and *p = NULL. May be collective (the communicator's
     * on one node): then every rank makes the same sequence of calls. */
    dure_status_t (*alloc)(void *ctx, size_t bytes, void **p);
    /* Free what alloc returned; NULL is a no-op. Collective when alloc is. */
    void (*free)(void *ctx, void *p);
    void *ctx;
};

#endif
