/* model/acts.c - activation buffer sizes per backend (see acts.h). */
#include "model/acts.h"

#include <string.h>

#define PLAN_ALIGN 256u

dure_status_t model_act_plan_compute(const struct model_config *cfg, int bf16,
                                     struct model_act_plan *plan)
{
    dure_status_t st = DURE_OK;
    int ok = 1;
    uint64_t B = (uint64_t)cfg->micro_batch, N = (uint64_t)cfg->context_patches;
    uint64_t D = (uint64_t)cfg->d_model, H = (uint64_t)cfg->n_heads;
    uint64_t L = (uint64_t)cfg->n_layers;
    uint64_t PC = 0, BN = 0, BHNN = 0, LBN = 0, T = 0, BTC = 0, BC = 0;
    ok &= !__builtin_mul_overflow((uint64_t)cfg->patch_len, (uint64_t)cfg->channels, &PC);
    uint64_t PCI = PC + (cfg->masked ? (uint64_t)cfg->channels : 0);
    ok &= !__builtin_mul_overflow(B, (uint64_t)cfg->channels, &BC);
    ok &= !__builtin_mul_overflow(B, N, &BN);
    ok &= !__builtin_mul_overflow(BN, H * N, &BHNN);
    ok &= !__builtin_mul_overflow(L, BN, &LBN);
    ok &= !__builtin_mul_overflow(N + 1, (uint64_t)cfg->patch_len, &T);
    ok &= !__builtin_mul_overflow(B * T, (uint64_t)cfg->channels, &BTC);
    /* Each entry: elements as multiples of the products above. */
    struct {
        uint64_t a, b;     /* count = a * b */
        unsigned f32, b16; /* element bytes of a float32 / bf16 backend; 0 = absent */
        int scratch;
    } spec[ACT_COUNT] = {
        [ACT_INP]      = {BN, PCI, 4, 2, 0},
        [ACT_TGT]      = {BN, PC, 4, 4, 0},
        [ACT_ENC]      = {BN, D, 4, 2, 0},
        [ACT_LN1]      = {LBN, D, 4, 2, 0},
        [ACT_LN1_MEAN] = {LBN, 1, 4, 4, 0},
        [ACT_LN1_RSTD] = {LBN, 1, 4, 4, 0},
        [ACT_QKV]      = {LBN, 3 * D, 4, 2, 0},
        [ACT_ATT]      = {L, BHNN, 4, 2, 0},
        [ACT_ATTY]     = {LBN, D, 4, 2, 0},
        [ACT_RES2]     = {LBN, D, 4, 2, 0},
        [ACT_LN2]      = {LBN, D, 4, 2, 0},
        [ACT_LN2_MEAN] = {LBN, 1, 4, 4, 0},
        [ACT_LN2_RSTD] = {LBN, 1, 4, 4, 0},
        [ACT_FCH]      = {LBN, 4 * D, 4, 2, 0},
        [ACT_FCH_GELU] = {LBN, 4 * D, 4, 2, 0},
        [ACT_RES3]     = {LBN, D, 4, 2, 0},
        [ACT_LNF]      = {BN, D, 4, 2, 0},
        [ACT_LNF_MEAN] = {BN, 1, 4, 4, 0},
        [ACT_LNF_RSTD] = {BN, 1, 4, 4, 0},
        [ACT_PRED]     = {BN, PC, 4, 4, 0},
        [ACT_DRES]     = {BN, D, 4, 4, 1},
        [ACT_DSMALL]   = {BN, D, 4, 2, 1},
        [ACT_DBIG]     = {BN, 4 * D, 4, 2, 1},
        [ACT_DATT]     = {BHNN, 1, 4, 4, 1},
        [ACT_DPRED]    = {BN, PC, 4, 2, 1},
        [ACT_BATCH]    = {BTC, 1, 0, 4, 1},
        [ACT_Q]        = {BN, D, 0, 2, 1},
        [ACT_K]        = {BN, D, 0, 2, 1},
        [ACT_V]        = {BN, D, 0, 2, 1},
        [ACT_Y]        = {BN, D, 0, 2, 1},
        [ACT_LOSS]     = {BN, 1, 4, 4, 1},
        [ACT_MASK]     = {cfg->masked ? BC : 0, 1, 0, 4, 1},
        [ACT_PARTIAL]  = {MODEL_COLSUM_CHUNKS, PC > 4 * D ? PC : 4 * D, 0, 4, 1},
        [ACT_DRES_BF16] = {BN, D, 0, 2, 1},
    };

    memset(plan, 0, sizeof *plan);
    uint64_t at = 0;
    for (int i = 0; i < ACT_COUNT && ok; i++) {
        unsigned eb = bf16 ? spec[i].b16 : spec[i].f32;
        uint64_t count = 0, bytes = 0;
        if (eb == 0) {
            continue;
        }
        ok &= !__builtin_mul_overflow(spec[i].a, spec[i].b, &count);
        ok &= !__builtin_mul_overflow(count, (uint64_t)eb, &bytes);
        ok &= !__builtin_add_overflow(bytes, (uint64_t)PLAN_ALIGN - 1, &bytes);
        bytes &= ~(uint64_t)(PLAN_ALIGN - 1);
        plan->count[i] = count;
        plan->elem_bytes[i] = eb;
        plan->scratch[i] = spec[i].scratch;
        plan->offset[i] = at;
        ok &= !__builtin_add_overflow(at, bytes, &at);
        if (spec[i].scratch) {
            plan->scratch_bytes += bytes;
        } else {
            plan->saved_bytes += bytes;
        }
    }
    plan->total_bytes = at;
    DURE_CHECK(ok, DURE_ERR_NOMEM,
               "activation sizes overflow 64-bit byte counts: model.micro_batch = %d, "
               "model.context_patches = %d, model.d_model = %d, model.n_heads = %d, "
               "model.n_layers = %d",
               cfg->micro_batch, cfg->context_patches, cfg->d_model, cfg->n_heads,
               cfg->n_layers);
out:
    return st;
}
