/*
 * collectives/registry.c - the collective backends of this build.
 *
 * The Makefile passes its COMM_BACKENDS list (CUDA builds: nccl mpi; CPU
 * builds: mpi) as DURE_COMM_BACKENDS = X(nccl) X(mpi): each X(NAME) names
 * the entry comm_backend_NAME defined by that backend's file. The order is
 * auto's order of preference.
 */
#include "collectives/backend.h"

#ifndef DURE_COMM_BACKENDS
#error "DURE_COMM_BACKENDS is set by the Makefile (COMM_BACKENDS)"
#endif

#define X(name) extern const struct comm_backend_entry comm_backend_##name;
DURE_COMM_BACKENDS
#undef X

const struct comm_backend_entry *const comm_backends[] = {
#define X(name) &comm_backend_##name,
    DURE_COMM_BACKENDS
#undef X
    NULL,
};
