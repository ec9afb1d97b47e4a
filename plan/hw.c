/* plan/hw.c - the hardware and fabrics a plan is made for; see plan.h. */
#include "plan/plan.h"

#include <cblas.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/timing.h"
#include "device/device.h"

/*
 * Datasheet figures: dense bf16 tensor-core peak (no sparsity), HBM
 * capacity and bandwidth, SXM parts in 8-GPU nodes. The efficiency is what
 * a well-fed transformer step reaches on such parts in published runs
 * (40-45% MFU), not a measurement of dure's kernels: `make gpu-check`
 * measures dure's own MFU where a GPU is lent.
 */
static const struct plan_hw gpus[] = {
    {.name = "a100", .gpu = 1, .peak_flops = 312e12, .efficiency = 0.42,
     .mem_bytes = 80.0 * (1 << 30), .mem_bw = 2.04e12, .per_node = 8,
     .source = "datasheet A100 SXM 80GB"},
    {.name = "h100", .gpu = 1, .peak_flops = 989.4e12, .efficiency = 0.40,
     .mem_bytes = 80.0 * (1 << 30), .mem_bw = 3.35e12, .per_node = 8,
     .source = "datasheet H100 SXM 80GB"},
    {.name = "h200", .gpu = 1, .peak_flops = 989.4e12, .efficiency = 0.40,
     .mem_bytes = 141e9, .mem_bw = 4.8e12, .per_node = 8,
     .source = "datasheet H200 SXM 141GB"},
    {.name = "b200", .gpu = 1, .peak_flops = 2.25e15, .efficiency = 0.38,
     .mem_bytes = 180e9, .mem_bw = 8.0e12, .per_node = 8,
     .source = "datasheet B200 180GB"},
};

dure_status_t plan_hw_builtin(const char *name, struct plan_hw *out)
{
    dure_status_t st = DURE_OK;
    for (size_t i = 0; i < sizeof gpus / sizeof gpus[0]; i++) {
        if (strcmp(name, gpus[i].name) == 0) {
            *out = gpus[i];
            goto out;
        }
    }
    DURE_FAIL(DURE_ERR_ARG, "--gpu %s: known hardware is h100, h200, a100, b200 and cpu",
              name);
out:
    return st;
}

/* Best-of-five memcpy of 64 MiB: bytes moved (read + write) per second. */
static dure_status_t measure_mem_bw(double *bw)
{
    dure_status_t st = DURE_OK;
    size_t bytes = 64u << 20;
    char *buf = malloc(2 * bytes);
    DURE_ALLOC_TRY(buf, 2 * bytes);
    memset(buf, 1, 2 * bytes);
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = dure_now_s();
        memcpy(buf + bytes, buf, bytes);
        double dt = dure_now_s() - t0;
        if (dt > 0 && 2.0 * (double)bytes / dt > best) {
            best = 2.0 * (double)bytes / dt;
        }
    }
    DURE_CHECK(best > 0, DURE_ERR_INTERNAL, "memcpy bandwidth measurement gave no time");
    *bw = best;
out:
    free(buf);
    return st;
}

static double mem_available(void)
{
    int64_t b = dure_mem_available();
    return b > 0 ? (double)b : 0;
}

dure_status_t plan_hw_cpu_measure(int ranks_per_node, int threads, struct plan_hw *out)
{
    dure_status_t st = DURE_OK;
    cpu_set_t set;
    int cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    int per_node = ranks_per_node > 0 ? ranks_per_node : 1;
    if (threads <= 0) {
        threads = cores / per_node > 0 ? cores / per_node : 1;
    }
    double peak = 0, bw = 0;

    memset(out, 0, sizeof *out);
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    DURE_TRY(device_peak_cpu_measure(0, &peak));
    DURE_TRY(measure_mem_bw(&bw));
    snprintf(out->name, sizeof out->name, "cpu");
    out->gpu = 0;
    out->peak_flops = peak;
    /* dure's CPU step reaches 0.86-0.93 of this sgemm peak (bench/run.d/model.sh). */
    out->efficiency = 0.85;
    out->mem_bytes = mem_available() / per_node;
    out->mem_bw = bw;
    out->per_node = per_node;
    out->threads = threads;
    out->cores = cores;
    snprintf(out->source, sizeof out->source,
             "measured: sgemm 768^3 on %d thread(s), memcpy 64 MiB", threads);
out:
    return st;
}

/*
 * Built-in fabrics. beta is the inverse of the bus bandwidth a ring reaches
 * on the level (nccl-tests busbw), alpha the per-step latency. GPU nodes:
 * NVLink within the node; across nodes one 400 Gb/s NIC per GPU (InfiniBand
 * NDR or RoCE), or 100 GbE over TCP. CPU nodes: shared memory within the
 * node (measured here: collectives/README.md), TCP between nodes.
 */
void plan_fabric_builtin(const struct plan_hw *hw, const char *profile,
                         struct plan_fabric *out)
{
    const char *p = profile && *profile ? profile : (hw->gpu ? "ib" : "tcp");
    double nvlink = strcmp(hw->name, "b200") == 0   ? 800e9
                    : strcmp(hw->name, "a100") == 0 ? 230e9
                                                     : 400e9;
    struct plan_link intra = {2e-6, 1.0 / 10e9}, inter;
    memset(out, 0, sizeof *out);
    if (hw->gpu) {
        intra = (struct plan_link){1e-6, 1.0 / nvlink};
    }
    if (strcmp(p, "tcp") == 0) {
        inter = (struct plan_link){30e-6, 1.0 / (hw->gpu ? 11e9 : 1.2e9)};
    } else if (strcmp(p, "local") == 0) {
        inter = intra;
    } else {
        /* ib, roce, and any site profile without a fabric of its own */
        inter = (struct plan_link){8e-6, 1.0 / 45e9};
    }
    plan_level_set(&out->intra, intra.alpha_s, intra.beta_s);
    plan_level_set(&out->inter, inter.alpha_s, inter.beta_s);
    snprintf(out->source, sizeof out->source,
             "built-in for %s, profile %s: intra %.3g us + 1/(%.3g GB/s), inter %.3g us + "
             "1/(%.3g GB/s)",
             hw->name, p, intra.alpha_s * 1e6, 1e-9 / intra.beta_s, inter.alpha_s * 1e6,
             1e-9 / inter.beta_s);
}
