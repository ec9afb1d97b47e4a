/*
 * device/cpu.c - the CPU: host memory, no queue (every call is done when
 * it returns). It fills in only what is particular to it (the allocator,
 * the measured sgemm peak, the memory available); the dispatcher's host
 * loops (device/host.c) do the rest.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "device/device_impl.h"

#define CPU_ALIGN 64

static enum device_probe cpu_usable(int *count, char *why, size_t cap)
{
    (void)why;
    (void)cap;
    *count = 1;
    return DEVICE_PRESENT;
}

static uint64_t phys_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

static dure_status_t cpu_alloc(void *ctx, size_t bytes, void **p)
{
    (void)ctx;
    uint64_t phys = phys_bytes();
    /* aligned_alloc wants a multiple of the alignment, and never 0. */
    size_t rounded = (bytes + CPU_ALIGN - 1) & ~(size_t)(CPU_ALIGN - 1);
    *p = NULL;
    /* Linux may promise more than it has and kill the process on first
     * touch: refuse what can never fit instead. */
    if (rounded >= bytes && (phys == 0 || rounded <= phys)) {
        *p = aligned_alloc(CPU_ALIGN, rounded ? rounded : CPU_ALIGN);
    }
    return *p ? DURE_OK : DURE_ERR_NOMEM;
}

static void cpu_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static void cpu_destroy(void *ctx) { (void)ctx; }

static dure_status_t cpu_peak(void *ctx, double *flops, char *what, size_t cap)
{
    dure_status_t st = DURE_OK;
    (void)ctx;
    DURE_TRY(device_peak_cpu_measure(0, flops));
    snprintf(what, cap, "sgemm 768^3, %d thread(s): %.1f GFLOP/s",
             openblas_get_num_threads(), *flops / 1e9);
out:
    return st;
}

/* MemAvailable from /proc/meminfo (Linux overcommits: what an allocation
 * would get is not a test of what fits); the physical size without it. */
static dure_status_t cpu_mem_info(void *ctx, int peers, uint64_t *avail, uint64_t *reserve)
{
    (void)ctx;
    (void)peers;
    int64_t b = dure_mem_available();
    *reserve = 0;
    *avail = b >= 0 ? (uint64_t)b : phys_bytes();
    return DURE_OK;
}

static const struct device_i cpu_iface = {
    .alloc = cpu_alloc,
    .free = cpu_free,
    .destroy = cpu_destroy,
    .peak_flops = cpu_peak,
    .mem_info = cpu_mem_info,
};

static dure_status_t cpu_create(int ordinal, const struct device_i **iface, void **ctx)
{
    (void)ordinal;
    *iface = &cpu_iface;
    *ctx = NULL;
    return DURE_OK;
}

const struct device_entry device_cpu_entry = {
    .name = "cpu",
    .compute = "cpu",
    .comm = "mpi",
    .host_memory = 1,
    .exclusive = 0,
    .usable = cpu_usable,
    .create = cpu_create,
};
