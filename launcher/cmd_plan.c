/*
 * launcher/cmd_plan.c - `dure plan JOB.ini`: what the job's model needs per
 * rank at every ZeRO stage, how fast a step will go, what to choose, and
 * how that scales from one node to 260,000 GPUs (plan/plan.h).
 */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/strmap.h"
#include "dataio/reader.h"
#include "jobs/jobspec.h"
#include "launcher/plan_spec.h"
#include "launcher/cliopt.h"
#include "launcher/commands.h"
#include "launcher/exitcodes.h"
#include "model/flops.h"
#include "plan/plan.h"

/* The largest scale the table reaches: the seeds' national clusters. */
#define PLAN_MAX_GPUS 262144

void cmd_plan_usage(FILE *out)
{
    fprintf(out,
            "usage: dure plan JOB.ini [--gpus N] [--nodes N] [--gpu NAME] [--fabric FILE]\n"
            "                 [--json] [--set section.key=value ...]\n"
            "\n"
            "Plan a job before submitting it: the model's parameters and FLOPs per\n"
            "step; memory per rank at ZeRO stages 0-3 (parameters, gradients,\n"
            "optimizer, compute copy, working buffers, activations, workspace,\n"
            "communication buffers, runtime; on a CPU also the process itself) and\n"
            "whether it fits; the step time predicted from compute (FLOPs / peak x a\n"
            "stated efficiency; on this machine's CPU the job's blocks measured) and\n"
            "from communication (an alpha-beta model per fabric level, intra- and\n"
            "inter-node), the share that overlap cannot hide; a recommended stage,\n"
            "micro-batch and bucket size with the reason; and a table scaling the\n"
            "job from one node to %d GPUs, naming the term that dominates.\n"
            "  --gpus N      ranks in all (default slurm.nodes x slurm.ntasks_per_node)\n"
            "  --nodes N     nodes (default: from --gpus and the ranks per node)\n"
            "  --gpu NAME    h100, h200, a100, b200, or cpu (this machine's CPU,\n"
            "                measured: about 2 s); default h100 when\n"
            "                slurm.gpus_per_node > 0, else cpu\n"
            "  --fabric FILE the fitted fabric of `dure tune` (JSON); default built-in\n"
            "                for the hardware and slurm.profile\n"
            "  --json        print the plan as one JSON object\n"
            "  --set S.K=V   override a job-spec key (repeatable)\n"
            "model.channels = 0 is read from the data (the union of a mixture's\n"
            "channels); set it when the data is not reachable from here. Exit 0 when\n"
            "the job fits at its own ZeRO stage, 7 when it does not (naming the stage\n"
            "that would), 3 for a bad spec.\n",
            PLAN_MAX_GPUS);
}

/* model.channels, from the spec or from the data: the union of the
 * datasets' channels by name (a mixture's batches hold them all). */
static dure_status_t resolve_channels(const struct dure_jobspec *spec, int *channels)
{
    dure_status_t st = DURE_OK;
    dataio_reader_t *r = NULL;
    struct strmap names = STRMAP_INIT;
    struct jobspec_dataset_ref sets[JOBSPEC_MAX_DATASETS];
    static const dataio_layout_t layouts[] = {
        [JOBSPEC_LAYOUT_AUTO] = DATAIO_LAYOUT_AUTO,
        [JOBSPEC_LAYOUT_DURE] = DATAIO_LAYOUT_DURE,
        [JOBSPEC_LAYOUT_ROBOMIMIC] = DATAIO_LAYOUT_ROBOMIMIC,
        [JOBSPEC_LAYOUT_EPISODE_FILES] = DATAIO_LAYOUT_EPISODE_FILES,
    };
    int64_t n = 0, old = -1;

    if (spec->model.channels > 0) {
        *channels = spec->model.channels;
        goto out;
    }
    size_t count = jobspec_datasets(spec, sets);
    for (size_t d = 0; d < count; d++) {
        char keys[1024] = "";
        for (size_t i = 0; i < sets[d].keys->count; i++) {
            size_t len = strlen(keys);
            snprintf(keys + len, sizeof keys - len, "%s%s", i ? "," : "",
                     sets[d].keys->items[i]);
        }
        struct dataio_reader_config rc = {
            .path = sets[d].path, .layout = layouts[sets[d].layout], .keys = keys,
            .io = DATAIO_IO_SERIAL, .comm = MPI_COMM_NULL,
        };
        st = dataio_reader_open(&rc, &r);
        DURE_CHECK(st == DURE_OK, st,
                   "model.channels = 0 takes the channel count from the data, and "
                   "data.%s%spath = '%s' could not be read (above): set it with --set "
                   "model.channels=N", spec->mix.count ? sets[d].name : "",
                   spec->mix.count ? "." : "", sets[d].path);
        const struct dataio_dataset_info *in = dataio_reader_info(r);
        for (int j = 0; j < in->n_channels; j++) {
            DURE_TRY(strmap_put(&names, in->channel_names[j], n, &old));
            n += old < 0;
        }
        dataio_reader_close(r);
        r = NULL;
    }
    *channels = (int)n;
out:
    strmap_free(&names);
    dataio_reader_close(r);
    return st;
}

dure_status_t plan_job_of_spec(const struct dure_jobspec *spec, int ranks, int per_node,
                               struct plan_job *job)
{
    dure_status_t st = DURE_OK;
    int channels = 0;
    DURE_TRY(resolve_channels(spec, &channels));
    DURE_TRY(plan_job_from_spec(spec, channels, ranks, per_node, job));
out:
    return st;
}

/* l's {"alpha_s": A, "beta_s_per_byte": B} into *out; `key` names it. */
static dure_status_t load_link(const char *path, const char *key, const struct json_value *l,
                               struct plan_link *out)
{
    dure_status_t st = DURE_OK;
    const struct json_value *a = json_get(l, "alpha_s");
    const struct json_value *b = json_get(l, "beta_s_per_byte");
    DURE_CHECK(a && b && a->type == JSON_NUMBER && b->type == JSON_NUMBER && a->number >= 0 &&
                   b->number > 0,
               DURE_ERR_FORMAT, "%s: %s needs numbers alpha_s >= 0 and beta_s_per_byte > 0",
               path, key);
    *out = (struct plan_link){a->number, b->number};
out:
    return st;
}

/* --fabric FILE: {"format": 1, "levels": {"intra": {"alpha_s": A,
 * "beta_s_per_byte": B, "collectives": {"reducescatter": {"alpha_s": ...,
 * "beta_s_per_byte": ...}, ...}}, "inter": {...}}} (the fitted model of
 * dure tune). A level's own link serves every collective "collectives"
 * does not name (allreduce, reducescatter, allgather).
 * *fab holds the built-in fabric on entry; a level the file lacks keeps it
 * (a tune on one node measures no inter-node level, one with a rank per
 * node no intra-node level) and the source says which. */
static dure_status_t load_fabric(const char *path, struct plan_fabric *fab)
{
    dure_status_t st = DURE_OK;
    json_doc_t *doc = NULL;
    static const char *const names[2] = {"intra", "inter"};
    static const char *const colls[PLAN_COLLS] = {"allreduce", "reducescatter", "allgather"};
    struct plan_level *levels_out[2] = {&fab->intra, &fab->inter};
    const char *kept = NULL;
    char key[96];
    int found = 0;

    DURE_TRY(json_parse_file(path, &doc));
    const struct json_value *fmt = json_get(json_root(doc), "format");
    DURE_CHECK(fmt && fmt->type == JSON_NUMBER && fmt->number == 1, DURE_ERR_FORMAT,
               "%s: \"format\" must be 1 (a fabric written by dure tune)", path);
    const struct json_value *levels = json_get(json_root(doc), "levels");
    for (int i = 0; i < 2; i++) {
        const struct json_value *l = levels ? json_get(levels, names[i]) : NULL;
        if (!l) {
            kept = names[i];
            continue;
        }
        struct plan_link link;
        snprintf(key, sizeof key, "levels.%s", names[i]);
        DURE_TRY(load_link(path, key, l, &link));
        plan_level_set(levels_out[i], link.alpha_s, link.beta_s);
        const struct json_value *per = json_get(l, "collectives");
        DURE_CHECK(!per || per->type == JSON_OBJECT, DURE_ERR_FORMAT,
                   "%s: levels.%s.collectives must be an object", path, names[i]);
        for (const struct json_value *c = per ? per->child : NULL; c; c = c->next) {
            int k = 0;
            while (k < PLAN_COLLS && strcmp(c->key, colls[k]) != 0) {
                k++;
            }
            DURE_CHECK(k < PLAN_COLLS, DURE_ERR_FORMAT,
                       "%s: levels.%s.collectives.%.32s: not a collective dure plan times "
                       "(allreduce, reducescatter, allgather)",
                       path, names[i], c->key);
            snprintf(key, sizeof key, "levels.%s.collectives.%s", names[i], colls[k]);
            DURE_TRY(load_link(path, key, c, &levels_out[i]->coll[k]));
        }
        found++;
    }
    DURE_CHECK(found > 0, DURE_ERR_FORMAT,
               "%s: \"levels\" holds neither intra nor inter (a model of dure tune has one "
               "or both)",
               path);
    snprintf(fab->source, sizeof fab->source, "%.120s%s%s%s", path, kept ? "; " : "",
             kept ? kept : "", kept ? " level built in" : "");
out:
    json_free(doc);
    return st;
}

static double gib(uint64_t b) { return (double)b / (double)(1ull << 30); }

struct plan_ctx {
    struct plan_job job;
    struct plan_hw hw;
    struct plan_fabric fab;
    struct plan_memory mem[PLAN_STAGES];
    struct plan_time tm[PLAN_STAGES];
    struct plan_advice adv;
    struct model_flops fl;
    int nodes;
    int spec_stage;
};

static void print_text(const struct plan_ctx *c, const char *file, FILE *out)
{
    const struct plan_job *j = &c->job;
    const struct plan_memory *m = c->mem;
    const struct plan_time *t = c->tm;
    fprintf(out, "dure plan: %s on %d x %s (%d node(s) of %d)\n", file, j->ranks, c->hw.name,
            c->nodes, j->per_node);
    fprintf(out,
            "model: %" PRIu64 " parameters, %.4g GFLOP per micro-batch of %d windows, "
            "global batch %d windows\n",
            c->fl.params, c->fl.per_micro_batch / 1e9, j->model.micro_batch,
            j->global_batch);
    fprintf(out, "hardware: %.4g TFLOP/s x efficiency %.2f, %.1f GiB, %.3g GB/s memory (%s)\n",
            c->hw.peak_flops / 1e12, c->hw.efficiency, c->hw.mem_bytes / (1ull << 30),
            c->hw.mem_bw / 1e9, c->hw.source);
    if (!c->hw.gpu) {
        fprintf(out, "step: %s", c->hw.step.source);
        if (c->hw.step.block_s > 0) {
            fprintf(out, ": %.3g ms per block, %.3g ms outside them per micro-batch; "
                    "AdamW %.3g ns, norm %.3g ns, zeroing %.3g ns, adding %.3g ns per "
                    "parameter; copying %.3g ns per element; a wake %.3g us",
                    c->hw.step.block_s * 1e3, c->hw.step.outer_s * 1e3,
                    c->hw.step.adamw_s * 1e9, c->hw.step.norm_s * 1e9,
                    c->hw.step.zero_s * 1e9, c->hw.step.accum_s * 1e9,
                    c->hw.step.copy_s * 1e9, c->hw.step.wake_s * 1e6);
        }
        fprintf(out, "\n");
    }
    fprintf(out, "fabric: %s\n\n", c->fab.source);

    fprintf(out, "%-30s %9s %9s %9s %9s\n", "memory per rank (GiB)", "ZeRO 0", "ZeRO 1",
            "ZeRO 2", "ZeRO 3");
#define ROW(label, field)                                                                    \
    fprintf(out, "  %-28s %9.3f %9.3f %9.3f %9.3f\n", label, gib(m[0].field), gib(m[1].field), \
            gib(m[2].field), gib(m[3].field))
    ROW("parameters (fp32)", params);
    ROW("gradients (fp32)", grads);
    ROW("optimizer (AdamW m, v)", optimizer);
    ROW(c->hw.gpu ? "compute copy (bf16)" : "compute copy", compute);
    ROW("working (unit grads, layers)", working);
    if (j->exact) {
        fprintf(out, "  %-28s %9d %9d %9d %9d\n", "exact mode: carries (4N each)",
                m[0].exact_carries, m[1].exact_carries, m[2].exact_carries,
                m[3].exact_carries);
        ROW("exact: carries, receive area", exact);
    }
    ROW("activations", activations);
    ROW("workspace", workspace);
    ROW("communication buffers", comm);
    if (!c->hw.gpu) {
        ROW("process (before training)", process);
    }
    ROW(c->hw.gpu ? "runtime (CUDA, cuBLAS)" : "runtime (libraries, threads)", runtime);
    ROW("host (batches, ckpt staging)", host);
    ROW("total", total);
#undef ROW
    fprintf(out, "  %-28s %9s %9s %9s %9s\n", "fits", m[0].fits ? "yes" : "NO",
            m[1].fits ? "yes" : "NO", m[2].fits ? "yes" : "NO", m[3].fits ? "yes" : "NO");
    fprintf(out, "  (a rank may fill %.0f%% of %.1f GiB)\n\n", PLAN_MEM_FILL * 100,
            c->hw.mem_bytes / (1ull << 30));

    fprintf(out, "%-30s %9s %9s %9s %9s\n", "step time (ms)", "ZeRO 0", "ZeRO 1", "ZeRO 2",
            "ZeRO 3");
#define TROW(label, expr)                                                                    \
    fprintf(out, "  %-28s %9.4g %9.4g %9.4g %9.4g\n", label, (t[0].expr) * 1e3,              \
            (t[1].expr) * 1e3, (t[2].expr) * 1e3, (t[3].expr) * 1e3)
    TROW("compute", compute_s);
    TROW("optimizer", optimizer_s);
    TROW("shard work (ZeRO 2-3)", shard_s);
    TROW("communication (all)", comm_s);
    TROW("exposed after overlap", exposed_s);
    TROW("step", step_s);
#undef TROW
    fprintf(out, "  %-28s %9.4g %9.4g %9.4g %9.4g\n", "timesteps/s", t[0].timesteps_per_s,
            t[1].timesteps_per_s, t[2].timesteps_per_s, t[3].timesteps_per_s);
    fprintf(out, "  %-28s", "dominant term");
    for (int s = 0; s < PLAN_STAGES; s++) {
        fprintf(out, " %s%s", plan_term_name(t[s].dominant), s < PLAN_STAGES - 1 ? "," : "\n");
    }
    fprintf(out, "\nrecommendation:\n  stage:       %s\n  micro-batch: %s\n  bucket:      %s\n",
            c->adv.why_stage, c->adv.why_micro, c->adv.why_bucket);
}

/* The scaling table: per-rank work fixed (micro-batch x accumulation of
 * the planned size), the global batch growing with the GPUs. */
static dure_status_t scaling(const struct plan_ctx *c, int stage, FILE *out,
                             struct json_writer *w)
{
    dure_status_t st = DURE_OK;
    struct plan_job j = c->job;
    int per_rank = c->job.global_batch / c->job.ranks;
    if (!w) {
        fprintf(out,
                "\nscaling at ZeRO %d (per-rank work fixed: %d windows per step; the global "
                "batch grows with the GPUs):\n"
                "  %8s %7s %12s %10s %13s %8s  %-12s %s\n",
                stage, per_rank, "GPUs", "nodes", "global batch", "step ms", "timesteps/s",
                "compute", "dominant", "largest communication term (share of comm)");
    } else {
        json_key(w, "scaling");
        json_begin_array(w);
    }
    for (long g = j.per_node; g <= PLAN_MAX_GPUS; g *= 8) {
        struct plan_time t;
        j.ranks = (int)g;
        j.global_batch = per_rank * (int)g;
        DURE_TRY(plan_time(&j, &c->hw, &c->fab, stage, &t));
        double share = t.compute_s / t.step_s;
        if (w) {
            json_begin_object(w);
            json_key(w, "gpus");
            json_int(w, g);
            json_key(w, "step_s");
            json_double(w, t.step_s);
            json_key(w, "timesteps_per_s");
            json_double(w, t.timesteps_per_s);
            json_key(w, "compute_share");
            json_double(w, share);
            json_key(w, "dominant");
            json_string(w, plan_term_name(t.dominant));
            json_key(w, "comm_dominant");
            json_string(w, t.comm_s > 0 ? plan_term_name(t.comm_dominant) : "none");
            json_end_object(w);
        } else if (t.comm_s > 0) {
            fprintf(out, "  %8ld %7ld %12d %10.4g %13.4g %7.1f%%  %-12s %s (%.0f%%)\n", g,
                    g / j.per_node, j.global_batch, t.step_s * 1e3, t.timesteps_per_s,
                    share * 100, plan_term_name(t.dominant), plan_term_name(t.comm_dominant),
                    100 * t.comm_term_s[t.comm_dominant] / t.comm_s);
        } else {
            fprintf(out, "  %8ld %7ld %12d %10.4g %13.4g %7.1f%%  %-12s none\n", g,
                    g / j.per_node, j.global_batch, t.step_s * 1e3, t.timesteps_per_s,
                    share * 100, plan_term_name(t.dominant));
        }
        if (g < PLAN_MAX_GPUS && g * 8 > PLAN_MAX_GPUS) {
            g = PLAN_MAX_GPUS / 8; /* end on the largest scale itself */
        }
    }
    if (w) {
        json_end_array(w);
    }
out:
    return st;
}

static void json_stage_objects(const struct plan_ctx *c, struct json_writer *w)
{
    json_key(w, "stages");
    json_begin_array(w);
    for (int s = 0; s < PLAN_STAGES; s++) {
        const struct plan_memory *m = &c->mem[s];
        const struct plan_time *t = &c->tm[s];
        const struct {
            const char *k;
            uint64_t v;
        } mb[] = {{"params", m->params},       {"grads", m->grads},
                  {"optimizer", m->optimizer}, {"compute", m->compute},
                  {"working", m->working},     {"exact", m->exact},
                  {"activations", m->activations},
                  {"workspace", m->workspace}, {"comm", m->comm},
                  {"process", m->process},     {"runtime", m->runtime},
                  {"host", m->host},
                  {"total", m->total}};
        json_begin_object(w);
        json_key(w, "stage");
        json_int(w, s);
        json_key(w, "memory_bytes");
        json_begin_object(w);
        for (size_t i = 0; i < sizeof mb / sizeof mb[0]; i++) {
            json_key(w, mb[i].k);
            json_uint(w, mb[i].v);
        }
        json_end_object(w);
        json_key(w, "fits");
        json_bool(w, m->fits);
        json_key(w, "compute_s");
        json_double(w, t->compute_s);
        json_key(w, "optimizer_s");
        json_double(w, t->optimizer_s);
        json_key(w, "shard_s");
        json_double(w, t->shard_s);
        json_key(w, "comm_s");
        json_double(w, t->comm_s);
        json_key(w, "exposed_s");
        json_double(w, t->exposed_s);
        json_key(w, "step_s");
        json_double(w, t->step_s);
        json_key(w, "timesteps_per_s");
        json_double(w, t->timesteps_per_s);
        json_key(w, "dominant");
        json_string(w, plan_term_name(t->dominant));
        json_end_object(w);
    }
    json_end_array(w);
}

static dure_status_t print_json(const struct plan_ctx *c, int stage, FILE *out)
{
    dure_status_t st = DURE_OK;
    struct json_writer w;
    json_writer_init(&w, out, 0);
    json_begin_object(&w);
    json_key(&w, "hardware");
    json_string(&w, c->hw.name);
    json_key(&w, "ranks");
    json_int(&w, c->job.ranks);
    json_key(&w, "nodes");
    json_int(&w, c->nodes);
    json_key(&w, "params");
    json_uint(&w, c->fl.params);
    json_key(&w, "flops_per_micro_batch");
    json_double(&w, c->fl.per_micro_batch);
    json_key(&w, "peak_flops");
    json_double(&w, c->hw.peak_flops);
    json_key(&w, "efficiency");
    json_double(&w, c->hw.efficiency);
    json_key(&w, "mem_bytes");
    json_double(&w, c->hw.mem_bytes);
    json_key(&w, "fabric");
    json_string(&w, c->fab.source);
    json_stage_objects(c, &w);
    json_key(&w, "recommend");
    json_begin_object(&w);
    json_key(&w, "stage");
    json_int(&w, c->adv.stage);
    json_key(&w, "micro_batch");
    json_int(&w, c->adv.micro_batch);
    json_key(&w, "bucket_bytes");
    json_double(&w, c->adv.bucket_bytes);
    json_end_object(&w);
    DURE_TRY(scaling(c, stage, out, &w));
    json_end_object(&w);
    fputc('\n', out);
    DURE_TRY(json_writer_finish(&w, "the plan"));
out:
    return st;
}

struct plan_opts {
    const char *file, *gpu, *fabric;
    const char **sets;
    int gpus, nodes;
    int json;
};

static dure_status_t build(const struct dure_jobspec *spec, const struct plan_opts *o,
                           struct plan_ctx *c)
{
    dure_status_t st = DURE_OK;
    const char *gpu = o->gpu ? o->gpu : spec->slurm.gpus_per_node > 0 ? "h100" : "cpu";
    int per_node = spec->slurm.ntasks_per_node > 0 ? spec->slurm.ntasks_per_node : 1;
    long ranks = o->gpus > 0 ? o->gpus : (long)spec->slurm.nodes * per_node;

    memset(c, 0, sizeof *c);
    if (o->nodes > 0) {
        DURE_CHECK(ranks % o->nodes == 0, DURE_ERR_ARG,
                   "--gpus %ld over --nodes %d: the ranks must fill whole nodes", ranks,
                   o->nodes);
        per_node = (int)(ranks / o->nodes);
    } else if (ranks < per_node) {
        per_node = (int)ranks;
    }
    DURE_CHECK(ranks >= 1 && ranks <= PLAN_MAX_GPUS && ranks % per_node == 0, DURE_ERR_ARG,
               "%ld rank(s) with %d per node (slurm.ntasks_per_node): the ranks must fill "
               "whole nodes, at most %d in all",
               ranks, per_node, PLAN_MAX_GPUS);
    DURE_TRY(plan_job_of_spec(spec, (int)ranks, per_node, &c->job));
    if (strcmp(gpu, "cpu") == 0) {
        DURE_TRY(plan_hw_cpu_measure(per_node, spec->run.threads, &c->hw));
        c->job.threads = c->hw.threads;
        DURE_TRY(plan_cpu_calibrate(&c->job, &c->hw));
    } else {
        DURE_TRY(plan_hw_builtin(gpu, &c->hw));
    }
    plan_fabric_builtin(&c->hw, spec->slurm.profile, &c->fab);
    if (o->fabric) {
        DURE_TRY(load_fabric(o->fabric, &c->fab));
    }
    c->nodes = (int)(ranks / per_node);
    c->spec_stage = spec->parallel.zero_stage;
    model_flops_compute(&c->job.model, &c->fl);
    for (int s = 0; s < PLAN_STAGES; s++) {
        DURE_TRY(plan_memory(&c->job, &c->hw, s, &c->mem[s]));
        DURE_TRY(plan_time(&c->job, &c->hw, &c->fab, s, &c->tm[s]));
    }
    DURE_TRY(plan_recommend(&c->job, &c->hw, &c->fab, &c->adv));
out:
    return st;
}

int cmd_plan_check_submit(const struct dure_jobspec *spec, const char *file, FILE *out)
{
    dure_status_t st = DURE_OK;
    const struct jobspec_slurm *sl = &spec->slurm;
    struct plan_job job;
    struct plan_hw hw;
    struct plan_memory mem;
    int stage = spec->parallel.zero_stage;
    char terms[400];

    if (sl->gpus_per_node == 0 || !sl->gpu_type[0]) {
        fprintf(out, "submit: plan: memory not checked: %s\n",
                sl->gpus_per_node == 0
                    ? "a CPU job's node memory is known only where it runs (dure run checks "
                      "it at start)"
                    : "slurm.gpu_type is not set (h100, h200, a100 or b200 gives the GPUs' "
                      "memory)");
        goto out;
    }
    DURE_CHECK(plan_hw_builtin(sl->gpu_type, &hw) == DURE_OK, DURE_ERR_ARG,
               "%s: slurm.gpu_type = '%s' is not a GPU dure knows (above)", file, sl->gpu_type);
    DURE_TRY(plan_job_of_spec(spec, sl->nodes * sl->ntasks_per_node, sl->ntasks_per_node,
                              &job));
    DURE_TRY(plan_memory(&job, &hw, stage, &mem));
    plan_memory_text(&mem, terms, sizeof terms);
    fprintf(out, "submit: plan: memory per rank %.2f GiB at zero_stage %d (%s) of %.2f GiB on %s\n",
            gib(mem.total), stage, terms, hw.mem_bytes / (double)(1ull << 30), hw.name);
    DURE_TRY(plan_check_fit(&job, &hw, stage, file, &mem));
out:
    return dure_exit_code(st);
}

int cmd_plan(int argc, char **argv)
{
    static const struct option opts[] = {
        {"gpus", required_argument, NULL, 'g'},  {"nodes", required_argument, NULL, 'n'},
        {"gpu", required_argument, NULL, 'G'},   {"fabric", required_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},        {"set", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    struct plan_opts o = {0};
    struct dure_jobspec *spec = NULL;
    struct plan_ctx *c = calloc(1, sizeof *c);
    size_t nsets = 0;
    int opt, rc = DURE_EXIT_OK;
    dure_status_t st = DURE_OK;

    o.sets = calloc((size_t)argc + 1, sizeof *o.sets);
    if (!o.sets || !c) {
        fprintf(stderr, "dure plan: out of memory\n");
        rc = DURE_EXIT_NOMEM;
        goto done;
    }
    dure_getopt_reset();
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'g':
        case 'n':
            if (cli_int("plan", opt == 'g' ? "--gpus" : "--nodes", optarg, 1, INT_MAX,
                        opt == 'g' ? &o.gpus : &o.nodes) != 0) {
                rc = DURE_EXIT_USAGE;
                goto done;
            }
            break;
        case 'G': {
            struct plan_hw hw;
            if (strcmp(optarg, "cpu") != 0 && plan_hw_builtin(optarg, &hw) != DURE_OK) {
                rc = DURE_EXIT_USAGE;
                goto done;
            }
            o.gpu = optarg;
            break;
        }
        case 'f':
            o.fabric = optarg;
            break;
        case 'j':
            o.json = 1;
            break;
        case 's':
            o.sets[nsets++] = optarg;
            break;
        default:
            cmd_plan_usage(stderr);
            rc = DURE_EXIT_USAGE;
            goto done;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "dure plan: expected one job spec file\n\n");
        cmd_plan_usage(stderr);
        rc = DURE_EXIT_USAGE;
        goto done;
    }
    o.file = argv[optind];
    DURE_TRY(jobspec_load(o.file, o.sets, &spec));
    DURE_TRY(build(spec, &o, c));
    int stage = c->spec_stage;
    if (o.json) {
        DURE_TRY(print_json(c, c->adv.stage >= 0 ? c->adv.stage : stage, stdout));
    } else {
        print_text(c, o.file, stdout);
        DURE_TRY(scaling(c, c->adv.stage >= 0 ? c->adv.stage : stage, stdout, NULL));
    }
    DURE_TRY(plan_check_fit(&c->job, &c->hw, stage, o.file, &c->mem[stage]));
out:
    rc = dure_exit_code(st);
done:
    jobspec_free(spec);
    free(o.sets);
    free(c);
    return rc;
}
