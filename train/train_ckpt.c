/* train/train_ckpt.c - checkpoints of the training state; see train.h. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ckpt/async.h"
#include "ckpt/ckpt.h"
#include "common/timing.h"
#include "train/train.h"
#include "train/train_priv.h"

static void fill_meta(const train_t *t, struct ckpt_meta *meta)
{
    struct dataio_cursor cur;
    memset(meta, 0, sizeof *meta);
    dataio_loader_cursor(t->train_ld, &cur);
    meta->step = (uint64_t)t->step;
    meta->opt_step = t->opt_step;
    meta->lr = t->step > 0 ? optim_lr_at(&t->sched, (int)(t->step - 1)) : 0;
    meta->loss = t->last_loss;
    meta->epoch = (uint64_t)cur.epoch;
    meta->position = (uint64_t)cur.position;
    meta->n_rng = 0; /* nothing random but the loader order, keyed by (seed, epoch) */
    meta->seed = t->spec->run.seed;
    meta->config_hash = t->config_hash;
    meta->world_size = (uint32_t)t->world_size;
    meta->zero_stage = (uint32_t)t->zero_stage;
    meta->n_params = t->n;
    snprintf(meta->model, sizeof meta->model, "%s", t->model_desc);
}

dure_status_t train_ckpt_setup(train_t *t)
{
    dure_status_t st = DURE_OK;
    if (t->spec->checkpoint.async) {
        DURE_TRY(ckpt_async_create(t->world, t->shard.count, &t->saver));
    }
out:
    return st;
}

void train_ckpt_teardown(train_t *t)
{
    ckpt_async_destroy(t->saver);
    t->saver = NULL;
}

dure_status_t train_save(train_t *t, int now, struct train_save_report *r)
{
    dure_status_t st = DURE_OK;
    struct ckpt_meta meta;
    size_t opt_len = optim_len(t->opt);
    float *m = t->stage, *v = t->stage + opt_len;
    const void *params = NULL;
    /* Each rank writes its shard; at stage 0 it holds the whole vector and
     * its moments, and passes the shard's part of them. */
    size_t moff = t->zero_stage ? 0 : t->shard.offset;
    double t0 = dure_now_s();

    memset(r, 0, sizeof *r);
    fill_meta(t, &meta);
    r->step = meta.step;
    DURE_TRY(ckpt_path(t->spec->checkpoint.dir, meta.step, r->path, sizeof r->path));
    if (t->saver && now) {
        /* A save in flight finishes first; its failure is this one's. */
        DURE_TRY(ckpt_async_wait(t->saver, NULL, NULL));
    }
    DURE_TRY(optim_moment_to_host(t->opt, OPTIM_M, m));
    DURE_TRY(optim_moment_to_host(t->opt, OPTIM_V, v));
    /* The shard of the parameters, read in place where the device's memory
     * is host memory; staged at its global index, or at 0 at stage 3 (the
     * staging holds the shard alone). */
    float *host = t->stage + 2 * opt_len + (t->zero_stage == 3 ? 0 : t->shard.offset);
    const size_t bytes = t->shard.count * sizeof(float);
    DURE_TRY(device_host_view(t->dev, train_shard_params(t), host, bytes, &params));
    if (t->saver && !now) {
        double held = 0;
        r->background = 1;
        DURE_TRY(ckpt_async_start(t->saver, t->spec->checkpoint.dir, &meta, params, m + moff,
                                  v + moff, t->shard.offset, t->shard.count,
                                  t->spec->checkpoint.keep, &held));
    } else {
        DURE_TRY(ckpt_save(t->world, t->spec->checkpoint.dir, &meta, params, m + moff,
                           v + moff, t->shard.offset, t->shard.count, t->spec->checkpoint.keep,
                           &r->io));
    }
out:
    r->stall_s = dure_now_s() - t0;
    return st;
}

dure_status_t train_save_collect(train_t *t, int wait, struct train_save_report *r)
{
    dure_status_t st = DURE_OK;
    memset(r, 0, sizeof *r);
    if (!t->saver || (!wait && !ckpt_async_done(t->saver))) {
        goto out;
    }
    DURE_TRY(ckpt_async_wait(t->saver, &r->step, &r->io));
    if (r->step > 0) {
        r->background = 1;
        DURE_TRY(ckpt_path(t->spec->checkpoint.dir, r->step, r->path, sizeof r->path));
    }
out:
    return st;
}

dure_status_t train_resume(train_t *t, int *resumed, char *from, size_t cap)
{
    dure_status_t st = DURE_OK;
    struct ckpt_meta meta;
    struct ckpt_io_stats io;
    char path[CKPT_PATH_MAX];
    int found = 0;
    size_t opt_len = optim_len(t->opt);
    float *m = t->stage, *v = t->stage + opt_len;
    /* Stage 0 loads the whole vector on every rank; stages 1 and 2 their
     * shard, then all-gather the parameters; stage 3 its shard alone. */
    size_t off = t->zero_stage ? t->shard.offset : 0;
    size_t len = t->zero_stage ? t->shard.count : t->n;

    *resumed = 0;
    DURE_TRY(ckpt_find_latest_valid(t->world, t->spec->checkpoint.dir, path, sizeof path,
                                    &meta, &found));
    if (!found) {
        goto out;
    }
    snprintf(from, cap, "%s", path);
    /* staged at the shard's global index, or at 0 where the staging holds
     * the shard alone (stage 3) */
    float *dev_params = t->zero_stage ? train_shard_params(t) : model_params(t->model);
    size_t at = t->zero_stage == 3 ? 0 : off;
    float *params = device_host_target(t->dev, dev_params, t->stage + 2 * opt_len + at);
    DURE_TRY(ckpt_load(t->world, path, t->model_desc, t->n, &meta, params, m, v, off, len,
                       &io));
    DURE_TRY(device_host_commit(t->dev, dev_params, params, len * sizeof(float)));
    DURE_TRY(optim_moment_from_host(t->opt, OPTIM_M, m));
    DURE_TRY(optim_moment_from_host(t->opt, OPTIM_V, v));
    if (t->zero_stage == 1 || t->zero_stage == 2) {
        float *p = model_params(t->model);
        DURE_TRY(comm_allgather(t->comm, p + t->shard.offset, p, t->n, COMM_F32));
    }
    DURE_TRY(model_params_changed(t->model));
    struct dataio_cursor cur = {(int64_t)meta.epoch, (int64_t)meta.position};
    DURE_TRY(dataio_loader_set_cursor(t->train_ld, &cur));
    t->step = (long)meta.step;
    t->last_loss = meta.loss;
    t->opt_step = meta.opt_step;
    *resumed = 1;
    if (t->rank == 0) {
        char want[17], got[17];
        jobspec_hash_hex(t->config_hash, want);
        jobspec_hash_hex(meta.config_hash, got);
        if (meta.config_hash != t->config_hash) {
            dure_log_warn(__FILE__, __LINE__,
                          "%s was written by a job spec whose result-relevant values differ "
                          "(hash %s, this spec %s): the resumed run will not reproduce an "
                          "uninterrupted one",
                          path, got, want);
        }
        printf("resume: %s: step %" PRIu64 ", written by %u rank(s) at zero_stage %u; "
               "loaded in %.3f s; data cursor epoch %" PRIu64 " position %" PRIu64 "\n",
               path, meta.step, meta.world_size, meta.zero_stage, io.total_s, meta.epoch,
               meta.position);
        if (meta.world_size != (uint32_t)t->world_size) {
            /* The global batch is the job spec's whatever the world: the
             * accumulation count takes up the difference. */
            printf("resume: world size %d instead of %u: shards re-cut, %d micro-batch(es) "
                   "of %d per rank and step, global batch %d kept\n",
                   t->world_size, meta.world_size, t->accum, t->micro,
                   t->spec->optim.global_batch);
        }
        fflush(stdout);
    }
out:
    return st;
}
