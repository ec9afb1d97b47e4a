/*
 * common/malloc_tune.h - keep large transient buffers in the heap.
 *
 * glibc serves allocations above a threshold (128 KiB, adapted up to a few
 * MiB) with a fresh mmap and gives freed heap tops back to the kernel, so a
 * buffer allocated, used and freed again and again is faulted in anew every
 * time; on the VMs measured here first-touch faults run at about 0.7 GB/s
 * (../shared/PLATFORM.md). HDF5's filter pipeline allocates one such buffer
 * per chunk on every checkpoint write (measured: the write call of a 128 MiB
 * dataset went from about 0.2 s to 0.06 s with this), and MPI libraries
 * allocate temporaries the same way: Open MPI 4.1's reduce-scatters take one
 * the size of the message per call, 10-50x slower at 16-64 MiB on 2 ranks
 * with glibc's defaults (tune/README.md).
 */
#ifndef DURE_COMMON_MALLOC_TUNE_H
#define DURE_COMMON_MALLOC_TUNE_H

#include <stddef.h>

/*
 * Process-wide, for dure's commands and benchmarks only (library code never
 * calls it): serve allocations below `keep_bytes` from the heap (below
 * 32 MiB where glibc refuses a higher threshold: older glibc caps it there;
 * 2.36 accepts 1 GiB) and keep up to `keep_bytes` of freed heap for reuse
 * instead of returning it. Costs that much resident memory after the largest
 * transient use. Returns 0 when glibc accepted both settings, -1 otherwise
 * (the defaults then stay: slower, not wrong).
 */
int dure_malloc_reuse_large(size_t keep_bytes);

/* What every dure command that runs collectives keeps (dure_mpi_up in
 * launcher/ranks.h: run, tune, bench, preflight), so that they run and time
 * Open MPI's algorithms alike and tune's rules hold for each of them. */
#define DURE_MALLOC_KEEP_BYTES ((size_t)1 << 30)

#endif
