/* model/flops.c - parameter count, FLOPs and memory of a configuration. */
#include "model/flops.h"

#include <string.h>

#include "model/acts.h"
#include "model/backend.h"
#include "model/layout.h"

void model_flops_compute(const struct model_config *cfg, struct model_flops *f)
{
    double D = cfg->d_model, L = cfg->n_layers, N = cfg->context_patches;
    double PC = (double)cfg->patch_len * cfg->channels;
    double PCI = PC + (cfg->masked ? (double)cfg->channels : 0.0);
    /* The same count as model_layout_compute, in double so that any size
     * (even an invalid one) gives a number. */
    double params = D * PCI + D + N * D + L * (12.0 * D * D + 13.0 * D) + 2.0 * D
                    + PC * D + PC;
    double attn = L * N * D;
    memset(f, 0, sizeof *f);
    f->params = (uint64_t)params;
    f->per_token = 6.0 * params + 12.0 * attn;
    f->forward_per_token = 2.0 * params + 4.0 * attn;
    f->per_timestep = f->per_token / cfg->patch_len;
    f->per_micro_batch = f->per_token * cfg->micro_batch * N;
}

dure_status_t model_memory_estimate(const struct model_config *cfg, const char *compute,
                                    struct model_memory *mem)
{
    dure_status_t st = DURE_OK;
    struct model_layout lay;
    struct model_act_plan plan;
    const struct model_backend_i *be = NULL;
    memset(mem, 0, sizeof *mem);
    DURE_TRY(model_backend_find(compute, &be));
    DURE_TRY(model_layout_compute(cfg, &lay));
    DURE_TRY(model_act_plan_compute(cfg, be->bf16, &plan));
    /* model_layout_compute checked that 16 bytes per parameter fit. */
    mem->params = lay.total * 4;
    mem->grads = lay.total * 4;
    mem->compute_params = be->bf16 ? lay.total * 2 : 0;
    mem->optimizer = lay.total * 8;
    mem->activations = plan.saved_bytes;
    mem->workspace = plan.scratch_bytes;
    DURE_CHECK(!__builtin_add_overflow(lay.total * 18, plan.total_bytes, &mem->total),
               DURE_ERR_NOMEM,
               "model memory overflows 64-bit byte counts: model.d_model = %d, "
               "model.n_layers = %d, optim.micro_batch = %d",
               cfg->d_model, cfg->n_layers, cfg->micro_batch);
    if (!be->bf16) {
        mem->total -= lay.total * 2;
    }
out:
    return st;
}

static double mib(uint64_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

void model_print_summary(const struct model_config *cfg, const char *compute, FILE *out)
{
    struct model_flops f;
    struct model_memory mem;
    model_flops_compute(cfg, &f);
    fprintf(out,
            "model: %llu parameters (d_model %d, n_layers %d, n_heads %d, "
            "patch_len %d, context_patches %d, channels %d)\n",
            (unsigned long long)f.params, cfg->d_model, cfg->n_layers, cfg->n_heads,
            cfg->patch_len, cfg->context_patches, cfg->channels);
    fprintf(out,
            "model: %.4g GFLOP per micro-batch step (%.4g MFLOP per token, %.4g "
            "MFLOP per timestep; 6N + attention)\n",
            f.per_micro_batch / 1e9, f.per_token / 1e6, f.per_timestep / 1e6);
    if (model_memory_estimate(cfg, compute, &mem) == DURE_OK) {
        fprintf(out,
                "model: memory on %s: params %.1f MiB, grads %.1f MiB, compute copy "
                "%.1f MiB, activations %.1f MiB, workspace %.1f MiB, AdamW state "
                "%.1f MiB (unsharded), total %.1f MiB\n",
                compute, mib(mem.params),
                mib(mem.grads), mib(mem.compute_params), mib(mem.activations),
                mib(mem.workspace), mib(mem.optimizer), mib(mem.total));
    }
}
