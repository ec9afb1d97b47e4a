/*
 * train/train.h - the data-parallel training step of `dure run`.
 *
 * One train_t per rank, created collectively over the world communicator.
 * It owns the model, the optimizer (for the whole vector at ZeRO stage 0,
 * for this rank's shard at stages 1 and 2), the communicator and gradient
 * bucketer, the training and validation loaders, and the host staging
 * buffers of checkpoints, all allocated once in train_create.
 *
 * The global batch (optim.global_batch windows) means the same at every
 * world size: the loader hands rank r the contiguous part
 * [r*B/R, (r+1)*B/R) of each global batch, which this rank runs as
 * A = B / (micro_batch * R) micro-batches; micro-batch j of rank r is
 * global micro-batch r*A + j. The loss reported is the mean over the
 * global batch, summed in double in global micro-batch order (so it does
 * not depend on how the micro-batches were spread over ranks). Gradients
 * are summed by the collectives and scaled by 1 / (A * R) inside the
 * optimizer step.
 *
 * Gradient exchange, by parallel.zero_stage:
 *   0  bucketed all-reduce, the buckets of the last micro-batch started from
 *      the model's gradient-ready hook while backward goes on; AdamW on the
 *      whole vector on every rank.
 *   1  bucketed reduce-scatter onto the shard owners (same overlap), AdamW on
 *      this rank's shard of the parameters with shard-sized moments, then an
 *      all-gather of the updated parameters.
 *   2  the model is lent two unit-sized gradient buffers instead of a whole
 *      gradient vector (train/zshard.h): every micro-batch's gradients are
 *      reduce-scattered unit by unit as backward produces them and summed
 *      into a shard; AdamW and the all-gather as 1.
 *   3  as 2, and the parameters too are sharded: the model is lent each
 *      unit's parameters, all-gathered before its forward and again before
 *      its backward (parallel.prefetch ahead, parallel.reshard_after_forward);
 *      AdamW updates the shard in place, nothing is gathered after it.
 * The global gradient norm is sqrt of the sum over ranks of each shard's
 * squared norm (stage 0: the whole vector's, computed locally).
 *
 * Every step ends with one small control exchange (an all-gather, in
 * float64, of each rank's micro-batch losses, squared gradient norm and
 * stop-signal flag) so that all ranks
 * take the same decision at the same step: skip or stop on a non-finite
 * loss or gradient, stop for a signal. Its wait is watched: a rank that
 * died makes the others abort after parallel.watchdog_s.
 *
 * Fault injection (tests): DURE_FAULT_NAN=STEP[:RANK] makes rank RANK
 * (default 0) write a NaN into the first value of its batch at step STEP,
 * before the forward pass, so the NaN travels the real path (loss,
 * gradients, all-reduce) that corrupt input would take.
 * DURE_FAULT_SLOW=RANK:SECONDS makes rank RANK sleep SECONDS after its
 * forward and backward passes of every step: a slower device, whose delay
 * the others see as wait (the straggler tests).
 */
#ifndef DURE_TRAIN_TRAIN_H
#define DURE_TRAIN_TRAIN_H

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>

#include "collectives/comm.h"
#include "common/status.h"
#include "ckpt/ckpt.h"
#include "jobs/jobspec.h"
#include "train/manifest.h"
#include "train/metrics.h"
#include "train/straggler.h"
#include "launcher/ranks.h"

typedef struct train train_t;

/* What train_step decided for the run, beyond its metrics. */
struct train_step_result {
    struct dure_step_metrics metrics;
    int stop_signal;      /* a rank saw SIGUSR2/SIGTERM: checkpoint and stop */
};

/* What the launcher lends the run: nothing here names launcher/. */
struct train_hooks {
    comm_hang_fn on_hang;          /* the collectives watchdog's hook (the launcher's:
                                      print the report, abort the job); NULL: fail the wait */
    int (*stop_requested)(void);   /* a signal number when this rank was asked to stop
                                      at the next step boundary, else 0; NULL: never */
};

/* Memory this rank holds for the run, by lifetime class, in bytes. */
struct train_memory {
    uint64_t params;       /* fp32 parameters: the whole vector; stage 3 the shard */
    uint64_t grads;        /* the model's flat gradient vector (0 at stages 2-3) */
    uint64_t grad_shard;   /* stages 2-3: the reduced gradient shard (0 otherwise) */
    uint64_t working;      /* stages 2-3: unit gradient buffers and gathered units */
    uint64_t optimizer;    /* AdamW moments held by this rank */
    uint64_t staging;      /* host buffers for checkpoints */
    uint64_t exact;        /* exact mode: saved gradients, receive area (0 otherwise) */
};

/*
 * Build everything for `spec` on this rank: its device (run.device, picked
 * by its local rank), the communicator, the model with its parameters and
 * gradients in the communicator's memory, the optimizer, the loaders.
 * Collective over `world` (which must have been initialised with
 * MPI_THREAD_MULTIPLE): every rank returns the same status. `hooks` is
 * copied. `progress` receives rank 0's setup report (model size, memory,
 * peak FLOP/s); NULL for none. On failure *out is NULL, and an estimate of
 * the memory needed is in the message when memory is short (DURE_ERR_NOMEM).
 */
dure_status_t train_create(const struct dure_jobspec *spec, const struct dure_ranks *ranks,
                           MPI_Comm world, const struct train_hooks *hooks, FILE *progress,
                           train_t **out);

/* Free everything; collective (the communicator is torn down). NULL is a no-op. */
void train_destroy(train_t *t);

/* Steps completed so far (0 for a fresh run, the checkpoint's after resume). */
long train_steps_done(const train_t *t);

/* The memory this rank holds (for tests and the setup report). */
void train_memory(const train_t *t, struct train_memory *mem);

/* How the gradients travel, for the manifest: the resolved backend, the
 * algorithm of each collective at the gradient vector's size, the table. */
struct train_comm_desc {
    const char *backend;        /* "mpi" or "nccl"; static */
    const char *allreduce;      /* algorithm names; static */
    const char *reduce_scatter;
    const char *allgather;
    char algo_table[256];
    char ring_segment[16];      /* "256K"; "none" on nccl */
};
void train_comm_describe(const train_t *t, struct train_comm_desc *d);

/* Exact mode's contract for the manifest: 1 and *c filled when run.exact is
 * on, 0 otherwise. */
int train_exact_contract(const train_t *t, struct manifest_exact *c);

/*
 * This rank's memory as measured against the plan's estimate: host RSS
 * when train_create began (the process's baseline: libraries, MPI) and its
 * peak since (VmHWM), in bytes; plan: plan_memory's total for the run,
 * plan_process its part for the process before training (on the cpu
 * device the measured base itself; 0 on a GPU).
 * host_is_device: 1 on the cpu device, where RSS is what the plan counts
 * (on a GPU it counts device memory, which RSS does not show).
 */
struct train_mem_measured {
    uint64_t base, peak, plan, plan_process;
    /* Shared memory this rank maps now (RssShmem: the node's communication
     * windows, its peers' included) and its share of it (Pss_Shmem: each
     * page divided among the ranks that map it); 0 when unknown. */
    uint64_t shm_rss, shm_pss;
    int host_is_device;
};
void train_memory_measured(const train_t *t, struct train_mem_measured *m);

/*
 * Continue from the newest valid checkpoint in checkpoint.dir, if any
 * (collective). *resumed = 1, `from` (capacity cap) the checkpoint's path,
 * and the model, optimizer moments, step counters and loader cursor
 * restored when one was found; a different world size or ZeRO stage re-cuts
 * the shards.
 */
dure_status_t train_resume(train_t *t, int *resumed, char *from, size_t cap);

/*
 * One optimizer step (collective). On success fills *res. A non-finite loss
 * or gradient norm fails with DURE_ERR_NUMERIC naming the step and rank when
 * run.on_nan = stop; with skip the update is dropped and metrics.skipped set.
 */
dure_status_t train_step(train_t *t, struct train_step_result *res);

#define TRAIN_MAX_DATASETS 64 /* = JOBSPEC_MAX_DATASETS */

/* A validation: overall and per dataset. */
struct train_val {
    double loss, baseline;       /* one dataset: its own; a mixture: the sum
                                    over datasets of share x theirs */
    int n;                       /* datasets */
    const char *name[TRAIN_MAX_DATASETS];      /* valid while t lives */
    double loss_d[TRAIN_MAX_DATASETS], baseline_d[TRAIN_MAX_DATASETS];
};

/*
 * Validation over run.val_batches global batches of each dataset's
 * validation windows, the same windows every time (collective): mean loss
 * and the naive baseline's (repeat the last patch) on the same windows.
 * Without validation, loss and baseline are NaN and n is 0.
 */
dure_status_t train_validate(train_t *t, struct train_val *out);

/*
 * Account one step's compute and wait time (m: this rank's own metrics of
 * the step) for the straggler checks (train/straggler.h). Every
 * parallel.straggler_every steps this is collective (all ranks at the same
 * step) and rank 0's *r (may be NULL elsewhere) says what it found; other
 * steps are local and cheap. A no-op with straggler_every = 0.
 */
dure_status_t train_straggler_step(train_t *t, const struct dure_step_metrics *m,
                                   struct straggler_report *r);

/* What train_save and train_save_collect report about one checkpoint. */
struct train_save_report {
    uint64_t step;             /* the checkpoint's step; 0: none */
    char path[CKPT_PATH_MAX];  /* the file it is (or will be) published as */
    int background;            /* 1: written by the helper thread (checkpoint.async) */
    double stall_s;            /* train_save: time the training loop was held */
    struct ckpt_io_stats io;   /* the save's timings and size, once it has finished
                                  (train_save without background; train_save_collect) */
};

/*
 * Checkpoint the current step into checkpoint.dir (collective). With
 * checkpoint.async and now = 0, the state is copied and written in the
 * background (ckpt/async.h): *r tells the stall, and train_save_collect the
 * rest once it is done. Otherwise (now = 1: at the end of the run or on a
 * stop signal, or async off) any background save finishes first, then this
 * one is written before returning. A background save that failed makes the
 * next train_save (or a waiting collect) fail on every rank.
 */
dure_status_t train_save(train_t *t, int now, struct train_save_report *r);

/*
 * The result of a background save: with wait = 0 only when one has
 * finished successfully (local: ranks may see it at different steps), with
 * wait = 1 after waiting for the one in flight (collective, the same status
 * everywhere). r->step = 0 when there is nothing to report.
 */
dure_status_t train_save_collect(train_t *t, int wait, struct train_save_report *r);

#endif
