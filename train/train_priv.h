/*
 * train/train_priv.h - the state behind train_t, shared by the files of
 * the training driver (train/train.c: setup, step, validation;
 * train/train_ckpt.c: checkpoints). Not for other modules.
 */
#ifndef DURE_TRAIN_TRAIN_PRIV_H
#define DURE_TRAIN_TRAIN_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "ckpt/async.h"
#include "ckpt/ckpt.h"
#include "collectives/bucket.h"
#include "collectives/comm.h"
#include "collectives/tree.h"
#include "dataio/loader.h"
#include "device/device.h"
#include "train/train.h"
#include "train/zshard.h"
#include "model/model.h"
#include "model/optim.h"
#include "plan/plan.h"

struct train {
    const struct dure_jobspec *spec;
    struct train_hooks hooks;
    MPI_Comm world;              /* the caller's; not owned */
    int rank, world_size;
    int accum;                   /* A: micro-batches per step on this rank */
    int micro;                   /* windows per micro-batch */
    int window, channels;        /* W timesteps, C channels */
    size_t micro_elems;          /* micro * W * C floats */
    int masked;                  /* 1: datasets with different channel sets: the model
                                    takes the loader's masks (model.h: Masks) */
    /* A mixture's per-dataset training losses (n_sets > 1): each micro-batch
     * puts (loss sum, baseline sum, windows) of each dataset at slot
     * offset sets_at + (j * n_sets + d) * 3 of the control exchange; every
     * rank sums them in global micro-batch order (the same at any world
     * size) into step_sets. */
    int n_sets, sets_at;
    struct dure_step_dataset step_sets[TRAIN_MAX_DATASETS];
    int zero_stage;
    device_t *dev;               /* this rank's device; owned */

    model_t *model;
    optim_t *opt;
    comm_t *comm;
    comm_bucketer_t *bucketer;   /* stages 0-1, and 2-3 in exact mode */
    zshard_t *zs;                /* stages 2-3: the shards the model is lent from (in exact
                                    mode stage 3 only, parameters only) */
    dataio_loader_t *train_ld;
    /* Validation: one loader per dataset (a mixture is validated dataset
     * by dataset), n_val of them, 0 without validation. */
    int n_val;
    dataio_loader_t *val_ld[TRAIN_MAX_DATASETS];
    int val_batches[TRAIN_MAX_DATASETS]; /* global batches per validation */

    size_t n;                    /* parameters */
    struct comm_shard shard;     /* comm_shard_of(n, world_size, rank) */


    /* Exact mode (run.exact; train/exact.c), all NULL otherwise. */
    int exact;
    struct tree_plan *plan;      /* this rank's part of the micro-batch tree */
    float *saved;                /* (plan->slots * n) saved gradients, comm memory */
    float *tree_recv;            /* the exact reduce-scatter's receive area, comm memory */
    struct comm_tree tree;       /* rows: the model's gradients and saved vectors */
    struct tree_norm *norm;      /* the squared norm of this rank's shard, in tiles */
    int norm_max;                /* norm frontier values per rank in the control exchange */
    uint64_t *norm_bounds;       /* (world_size + 1) shard limits */
    /* Control exchange: `slot` doubles per rank, all-gathered as float64. */
    int slot;
    double *ctl_host;            /* (world_size * slot) host */
    void *ctl_comm;              /* the same bytes in the comm's memory */
    float *stage;                /* checkpoint staging, host: m, v (opt_len each) and,
                                    where the device's memory is not host memory,
                                    params (n; at stage 3 shard.count) */
    ckpt_async_t *saver;         /* checkpoint.async: the background writer, else NULL */
    struct train_straggler *strag; /* parallel.straggler_every > 0: the checks, else NULL */

    struct plan_memory plan_mem; /* plan_memory for this run, checked at setup */
    uint64_t mem_avail;          /* bytes this rank may use; 0 = unknown */
    long rss_base_kb;            /* VmRSS when train_create began */
    struct optim_schedule sched;
    long step;                   /* optimizer steps completed */
    double last_loss;            /* global mean loss of the last step; NaN before one */
    uint64_t opt_step;           /* AdamW t: updates applied */
    double peak_flops;           /* per rank */
    double flops_per_step;       /* model FLOPs of one global step */
    double timesteps_per_step;   /* global_batch * W */
    double wait_seen;            /* loader wait_s already attributed */
    double comm_cpu_seen;        /* comm_thread_cpu_s already attributed */
    double baseline[TRAIN_MAX_DATASETS]; /* naive baseline on each dataset's
                                            validation windows */
    int have_baseline;
    long fault_nan_step;         /* DURE_FAULT_NAN: step to poison, 0 = none */
    int fault_nan_rank;
    int fault_slow_rank;         /* DURE_FAULT_SLOW: rank whose compute is slowed, -1 = none */
    double fault_slow_s;         /* and by how much per step, seconds */
    uint64_t config_hash;        /* jobspec RESULT hash */
    char model_desc[CKPT_MODEL_MAX];
};

/* train/train_ckpt.c: the background checkpoint writer (checkpoint.async),
 * created after the buffers (collective) and torn down before the
 * communicator. */
dure_status_t train_ckpt_setup(train_t *t);
void train_ckpt_teardown(train_t *t);

/* train/straggler.c: the straggler checks' buffers and rank 0's history
 * (collective; the host names are gathered here), freed before the comm. */
dure_status_t train_straggler_setup(train_t *t);
void train_straggler_teardown(train_t *t);

/* This rank's fp32 parameters from element shard.offset on (stage 3: its
 * shard; otherwise that element of the model's whole vector). */
float *train_shard_params(train_t *t);

#endif
