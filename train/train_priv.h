/*
 * train/train_priv.h - the state behind train_t, shared by the files of
 * the training driver (train/train.c: setup, step, validation;
 * train/train_ckpt.c: checkpoints). Not for other modules.
 */
#ifndef DURE_TRAIN_TRAIN_PRIV_H
#define DURE_TRAIN_TRAIN_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/bucket.h"
#include "collectives/comm.h"
#include "ckpt/ckpt.h"
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
    int zero_stage;
    device_t *dev;               /* this rank's device; owned */

    model_t *model;
    optim_t *opt;
    comm_t *comm;
    comm_bucketer_t *bucketer;   /* stages 0-2 */
    zshard_t *zs;                  /* stage 3: the shards the model is lent from */
    dataio_loader_t *train_ld, *val_ld;
    int val_batches;             /* global batches per validation */

    size_t n;                    /* parameters */
    struct comm_shard shard;     /* comm_shard_of(n, world_size, rank) */

    /* Control exchange: `slot` doubles per rank, all-gathered as float64. */
    int slot;
    double *ctl_host;            /* (world_size * slot) host */
    void *ctl_comm;              /* the same bytes in the comm's memory */
    float *stage;                /* checkpoint staging, host: m, v (opt_len each) and,
                                    where the device's memory is not host memory,
                                    params (n; at stage 3 shard.count) */

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
    double baseline;             /* naive baseline on the validation windows */
    int have_baseline;
    long fault_nan_step;         /* DURE_FAULT_NAN: step to poison, 0 = none */
    int fault_nan_rank;
    uint64_t config_hash;        /* jobspec RESULT hash */
    char model_desc[CKPT_MODEL_MAX];
};

/* This rank's fp32 parameters from element shard.offset on (stage 3: its
 * shard; otherwise that element of the model's whole vector). */
float *train_shard_params(train_t *t);

#endif
