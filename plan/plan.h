/*
 * plan/plan.h - capacity planning: the memory a job needs on each rank at
 * every ZeRO stage, and the step time it will reach, from the job's model
 * and a description of the hardware alone (nothing is allocated, no device
 * or network is touched), from one node to hundreds of thousands of GPUs.
 *
 * The models, and what they assume (printed by `dure plan`, so a reader can
 * check each term against a measurement):
 *
 * Memory per rank (R ranks, N parameters, S = ceil(N / R) the shard):
 *   params     fp32 master parameters: 4N, at stage 3 4S
 *   grads      fp32 gradients: 4N at stages 0-1; 4S at stages 2-3 (4N in
 *              exact mode: the model keeps the whole vector for the tree)
 *   optimizer  AdamW's two fp32 moments: 8N at stage 0, 8S at stages 1-3
 *   compute    the bf16 compute copy on a GPU: 2N at stages 0-2; none on
 *              the CPU (it computes on the fp32 parameters)
 *   working    stages 2-3: two units' fp32 gradients (the one the backward
 *              writes, the one being reduce-scattered; not in exact mode);
 *              stage 3 also (prefetch + 1) gathered units in the compute
 *              dtype (every unit with reshard_after_forward = false)
 *              (train/zshard.h)
 *   exact      exact mode (run.exact; train/exact.h), at every stage: the
 *              partial-subtree carries, 4N each (tree_plan.slots of the
 *              worst rank: about log2 of the micro-batches per rank, none
 *              with one), and the exact reduce-scatter's receive area,
 *              4 rows_max (R - 1) S (common/sumtree.h: tree_plan_worst)
 *   activations, workspace: the model's own plan for one micro-batch
 *              (model/acts.h), exactly what the model allocates
 *   comm       the collectives' buffers: two gradient buckets (the MPI
 *              backend's staging), on a GPU NCCL's buffers (an assumed
 *              PLAN_NCCL_BYTES)
 *   process    on the CPU, the process before training allocates anything
 *              (libraries, MPI; a CUDA build's libraries hold their static
 *              data even without a GPU): dure run measures its own RSS at
 *              start, dure plan takes PLAN_CPU_PROCESS_BYTES; 0 on a GPU
 *   runtime    on a GPU the CUDA context and cuBLAS workspace
 *              (PLAN_CUDA_RUNTIME_BYTES); on the CPU what the libraries add
 *              once training starts (PLAN_CPU_RUNTIME_BYTES) and each
 *              compute thread (PLAN_CPU_THREAD_BYTES x run.threads)
 *   host       on the CPU, where host memory is the device's: the loader's
 *              batches in flight (data.prefetch + 4 global batches' share)
 *              and the checkpoint staging (the moments this rank writes;
 *              its parameters are written in place); 0 on a GPU
 *
 * Time of one optimizer step on one rank, A micro-batches of B windows:
 *   compute    A * FLOPs(micro-batch) / (peak * efficiency); forward 1/3,
 *              backward 2/3 of it (model/flops.h's 6N + attention count).
 *              On a CPU measured for the job (plan_cpu_calibrate): A *
 *              (outer + n_layers * block)
 *   optimizer  AdamW streams 28 bytes per parameter it owns (read p, g, m,
 *              v; write p, m, v) at the device's memory bandwidth. On a
 *              CPU measured: AdamW and the gradient norm per parameter it
 *              owns, and the zeroing of the gradients (stages 0-1: the
 *              whole vector; 2-3 are lent theirs unit by unit)
 *   shard      ZeRO 2-3's work on the rank itself, per micro-batch (train/
 *              zshard.h): each unit's gradients zeroed (4N bytes written),
 *              the rank's part added into its shard (12S), and at stage 3
 *              its part cast into each gathered unit (S x (4 + compute
 *              bytes), twice with reshard_after_forward), at the memory
 *              bandwidth; on a CPU the zeroing and adding measured
 *   comm       the collectives of the step under an alpha-beta model per
 *              fabric level and collective: a message of n bytes between
 *              two ranks costs alpha + beta * n (struct plan_level).
 *              Collectives are hierarchical (ranks of a
 *              node reduce-scatter over the intra-node level, equal local
 *              ranks of all nodes exchange their shard over the inter-node
 *              level, the node all-gathers), the inter-node part a ring or
 *              a tree (2 log2(M) steps), whichever is faster for the size.
 *              Gradients travel in dure run's buckets (comm_bucket_plan:
 *              whole tensors up to the cap, begun at block 0's tail cuts;
 *              each bucket pays its latency), at ZeRO 2 outside exact mode
 *              unit by unit, as the model's backward finishes each.
 *   exposed    what compute cannot hide: buckets overlap the backward that
 *              produces them (all but the last bucket can hide), ZeRO 1-2's
 *              parameter all-gather after the optimizer cannot, ZeRO 3's
 *              per-layer gathers hide behind the previous layer's compute
 *              (prefetch), except the first. On a CPU whose cores all
 *              compute (ranks per node x threads >= cores) nothing hides:
 *              the collectives' copies and sums are those cores' work,
 *              and each collective (and the step's control exchange) adds
 *              two wakes of a thread that must take a core from the
 *              compute (plan_cpu_step.wake_s), to the intra-node latency.
 *   step       compute + optimizer + shard + exposed
 */
#ifndef DURE_PLAN_PLAN_H
#define DURE_PLAN_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "jobs/jobspec.h"
#include "model/model.h"

#define PLAN_STAGES 4 /* ZeRO stages 0..3 */

/* Assumed on a GPU, where nothing can be measured in advance. */
#define PLAN_NCCL_BYTES (384ull << 20)          /* NCCL channels' buffers */
#define PLAN_CUDA_RUNTIME_BYTES (640ull << 20)  /* CUDA context + cuBLAS workspace */
/*
 * The CPU process's own memory (on the CPU host memory is the device's),
 * measured here with bench/run.d/zero3.sh's job (RSS from /proc/self/status;
 * README "dure plan" gives the breakdown):
 *   PLAN_CPU_PROCESS_BYTES  RSS when training begins (dure run's train_create,
 *                           after MPI_Init): 22 MiB in a CUDA build (NCCL's
 *                           and the CUDA runtime's static data, loaded even
 *                           without a GPU; cuBLAS is loaded only by a GPU
 *                           model, model/cublas_cuda.h), 19 MiB in a
 *                           CPU-only one. dure run counts its own measured
 *                           RSS instead.
 *   PLAN_CPU_RUNTIME_BYTES  what the libraries add once training starts,
 *                           whatever the model: HDF5's code and caches when
 *                           the loader opens the data (5.5 MiB), the
 *                           communicator (1.9 MiB), the first step's and
 *                           checkpoint's code (SHA-256, metrics: 2-3 MiB).
 *   PLAN_CPU_THREAD_BYTES   each compute thread's stack and OpenBLAS buffer:
 *                           peak RSS grew 2.6 MiB from 1 to 8 threads, 5.9
 *                           MiB from 1 to 16.
 */
#if DURE_HAVE_CUDA
#define PLAN_CPU_PROCESS_BYTES (22ull << 20)
#else
#define PLAN_CPU_PROCESS_BYTES (19ull << 20)
#endif
#define PLAN_CPU_RUNTIME_BYTES (10ull << 20)
#define PLAN_CPU_THREAD_BYTES (384ull << 10)
/* Fraction of a device's memory a plan may fill (fragmentation, allocator slack). */
#define PLAN_MEM_FILL 0.92

/*
 * One job's CPU step measured on this machine (plan_cpu_calibrate), per
 * micro-batch and per parameter, on the rank's threads. All 0 where
 * nothing was measured (a GPU, a model too large to time here): plan_time
 * then counts FLOPs at peak x efficiency and AdamW's bytes at mem_bw.
 */
struct plan_cpu_step {
    struct model_config model;  /* the model and micro-batch it was measured for */
    double outer_s;   /* a micro-batch's forward + backward less its blocks:
                         embeddings, final LayerNorm, head, loss */
    double block_s;   /* one transformer block's forward + backward */
    double adamw_s;   /* AdamW, seconds per parameter updated */
    double norm_s;    /* squared gradient norm, seconds per element */
    double zero_s;    /* zeroing the gradients, seconds per element */
    double accum_s;   /* adding gradients into others, seconds per element */
    double copy_s;    /* copying fp32 past the caches while every rank copies,
                         seconds per element (a node-local collective's copies) */
    double wake_s;    /* a thread woken by another while every rank computes,
                         mean seconds (a collective's handoff) */
    char source[224]; /* what was measured, or why not */
};

/* What one rank's device offers. */
struct plan_hw {
    char name[16];      /* "h100", "cpu" */
    int gpu;            /* 1: a GPU (bf16 compute copy, NCCL, CUDA runtime) */
    double peak_flops;  /* dense FLOP/s per rank at the compute precision */
    double efficiency;  /* fraction of the peak a step's compute reaches */
    double mem_bytes;   /* memory one rank may use */
    double mem_bw;      /* bytes/s of the rank's memory (the optimizer's bound) */
    int per_node;       /* devices (ranks) per node */
    char source[96];    /* where the figures come from ("datasheet", "measured") */
    int threads;        /* CPU: the threads per rank it was measured on */
    int cores;          /* CPU: the cores of a node (0: not known) */
    struct plan_cpu_step step; /* CPU: the job's step measured; 0 elsewhere */
};

/* The collectives a plan times: an all-reduce, and its two halves. */
enum plan_coll { PLAN_ALLREDUCE, PLAN_REDUCE_SCATTER, PLAN_ALLGATHER, PLAN_COLLS };

/* A link between two ranks: a message of n bytes costs alpha + beta * n. */
struct plan_link {
    double alpha_s;     /* seconds per message */
    double beta_s;      /* seconds per byte (1 / bandwidth) */
};

/*
 * One fabric level as each collective sees it: coll[c] is the link that,
 * in plan_coll_time's ring model, gives collective c's time on the level.
 * A real link is one link for all three (the built-in fabrics); what dure
 * runs within a node is not a ring of links (shm: the all-gather copies,
 * the reduce-scatter reads every rank's part and sums), so `dure tune`
 * fits each collective of that algorithm on its own (tune/report.h).
 */
struct plan_level {
    struct plan_link coll[PLAN_COLLS];
};

struct plan_fabric {
    struct plan_level intra; /* between ranks of one node */
    struct plan_level inter; /* between nodes, per rank (rail-aligned) */
    char source[160];        /* "built-in ib", "tune file X", ... */
};

/* The same link for every collective of level l. */
void plan_level_set(struct plan_level *l, double alpha_s, double beta_s);

/* Built-in hardware: "h100", "h200", "a100", "b200" (datasheet dense bf16
 * peaks and memory, 8 per node). DURE_ERR_ARG naming the known names for
 * anything else ("cpu" is measured: plan_hw_cpu_measure). */
dure_status_t plan_hw_builtin(const char *name, struct plan_hw *out);

/* The CPU of this machine for `ranks_per_node` ranks of `threads` threads
 * each (0: the cores one rank gets): sgemm peak, memcpy bandwidth,
 * MemAvailable shared by the ranks. Takes about a second. */
dure_status_t plan_hw_cpu_measure(int ranks_per_node, int threads, struct plan_hw *out);

/* Built-in fabric for the hardware and the site profile (slurm.profile:
 * "ib", "roce", "tcp", "local"; "" = the hardware's usual fabric). */
void plan_fabric_builtin(const struct plan_hw *hw, const char *profile,
                         struct plan_fabric *out);

/* The job to plan. */
struct plan_job {
    struct model_config model;  /* micro_batch and channels resolved; the
                                   compute (bf16 on a GPU) from hw */
    int global_batch;           /* windows per optimizer step */
    int ranks;                  /* R */
    int per_node;               /* ranks per node (<= R) */
    double bucket_bytes;        /* gradient bucket */
    int prefetch;               /* ZeRO 3: layers gathered ahead (>= 0) */
    int reshard;                /* ZeRO 3: gather again for backward (reshard_after_forward) */
    int overlap;                /* 1: buckets overlap backward */
    int exact;                  /* run.exact: the micro-batch tree's memory */
    int data_prefetch;          /* loader batches read ahead (data.prefetch) */
    int threads;                /* CPU compute threads per rank (run.threads;
                                   0: not known, counted as 1) */
    enum jobspec_comm_thread comm_thread; /* parallel.comm_thread (CPU: auto resolves
                                   with the hardware's cores, comm_caller_runs_auto) */
    uint64_t process_bytes;     /* CPU: the process's RSS before training
                                   (PLAN_CPU_PROCESS_BYTES; dure run's own) */
};

/*
 * parallel.comm_thread resolved for `nodes` nodes of `per_node` ranks, each
 * computing on `threads` threads of a node with `cores` cores: 1 when the
 * ranks' own waits run the collectives (off; auto where
 * comm_caller_runs_auto says so), 0 when a thread does. `dure run` (on the
 * mpi backend) and plan_time (on a CPU) both decide with it.
 */
int plan_caller_runs(enum jobspec_comm_thread want, int nodes, int per_node, int threads,
                     int cores);

/*
 * The CPU threads a rank computes on and the cores its node's ranks compute
 * on, as `dure run` picks them (and `dure tune` assumes them, to time the
 * collectives as a job runs them): *threads = run_threads when > 0, else
 * the CPUs of this rank's affinity mask when the launcher bound it, else a
 * fair share of the node's online CPUs among per_node ranks (at least 1);
 * *cores = the ranks' own CPUs (mask x per_node) when bound, else the
 * node's online CPUs.
 */
void plan_rank_cpus(int run_threads, int per_node, int *threads, int *cores);

/*
 * Measure job's CPU step on hw's threads (OpenMP and OpenBLAS set by
 * plan_hw_cpu_measure) into hw->step: a one- and a two-block model of the
 * job's shapes through the model's own forward + backward, and AdamW, the
 * gradient norm and zeroing per parameter through the cpu device. A model
 * whose two blocks need more than 1 GiB (or a quarter of hw->mem_bytes) is
 * not built: hw->step stays 0 and its source says so. About a second.
 */
dure_status_t plan_cpu_calibrate(const struct plan_job *job, struct plan_hw *hw);

/*
 * The job of a job spec on `ranks` ranks, `per_node` per node, with its
 * data's `channels` resolved: the model, batch, bucket, ZeRO-3 schedule
 * and loader keys (what dure plan, dure run and dure submit all check).
 * DURE_ERR_ARG for an invalid model (model_config_validate).
 */
dure_status_t plan_job_from_spec(const struct dure_jobspec *spec, int channels, int ranks,
                                 int per_node, struct plan_job *out);

struct plan_memory {
    uint64_t params, grads, optimizer, compute, working, activations, workspace, comm,
        process, runtime, host;
    uint64_t exact;             /* exact mode's carries and receive area; 0 without */
    int exact_carries;          /* how many gradient-sized carries `exact` holds */
    uint64_t total;
    int fits;                   /* total <= hw.mem_bytes * PLAN_MEM_FILL */
};

/* The step time's terms (seconds, one optimizer step). */
enum plan_term {
    PLAN_TERM_COMPUTE,
    PLAN_TERM_OPTIMIZER,
    PLAN_TERM_SHARD,            /* ZeRO 2-3's zeroing, adding, casting on the rank */
    PLAN_TERM_INTRA_LATENCY,    /* exposed share of the intra-node alpha terms */
    PLAN_TERM_INTRA_BANDWIDTH,
    PLAN_TERM_INTER_LATENCY,
    PLAN_TERM_INTER_BANDWIDTH,
    PLAN_TERM_COUNT
};

struct plan_time {
    int accum;                  /* micro-batches per rank per step */
    double compute_s, optimizer_s, shard_s;
    double comm_s;              /* every collective of the step, end to end */
    double exposed_s;           /* the part of comm_s compute does not hide */
    double step_s;              /* compute + optimizer + shard + exposed */
    double term_s[PLAN_TERM_COUNT];  /* step_s split by term */
    double comm_term_s[PLAN_TERM_COUNT]; /* comm_s split by term (communication
                                            terms only; the others are 0) */
    enum plan_term comm_dominant;    /* the largest communication term */
    double timesteps_per_s;     /* the whole job's */
    enum plan_term dominant;    /* the largest term */
};

const char *plan_term_name(enum plan_term t);

/*
 * Memory per rank at ZeRO `stage` (0..3). DURE_ERR_ARG for a bad stage or
 * job (in exact mode also ranks that do not divide the micro-batches per
 * step), DURE_ERR_NOMEM when a byte count overflows (naming the keys).
 */
dure_status_t plan_memory(const struct plan_job *job, const struct plan_hw *hw, int stage,
                          struct plan_memory *out);

/*
 * Refuse a job whose memory at `stage` does not fit hw (plan_memory's
 * fits): DURE_ERR_NOMEM (exit 7) with "WHAT: not enough memory:
 * parallel.zero_stage = S needs X GiB per rank (the terms), more than F% of
 * C GiB on HW: " and the lowest other stage that fits, or that none does.
 * *mem receives the estimate either way.
 */
dure_status_t plan_check_fit(const struct plan_job *job, const struct plan_hw *hw, int stage,
                             const char *what, struct plan_memory *mem);

/* One line, the estimate's terms ("params 0.10, grads ... GiB"; in MiB
 * when the total is below a GiB). */
void plan_memory_text(const struct plan_memory *m, char *buf, size_t len);

/* Step time at `stage`. DURE_ERR_ARG when global_batch is not a multiple of
 * micro_batch * ranks (naming the three numbers). */
dure_status_t plan_time(const struct plan_job *job, const struct plan_hw *hw,
                        const struct plan_fabric *fab, int stage, struct plan_time *out);

/*
 * Time of one all-reduce, reduce-scatter or all-gather of a vector of
 * `bytes` over the job's ranks, on each level's link for that collective
 * (a reduce-scatter or all-gather takes half the ring steps of an
 * all-reduce); lat/bw receive its latency and bandwidth parts per level
 * (intra, inter), which sum to the result.
 */
double plan_coll_time(const struct plan_job *job, const struct plan_fabric *fab,
                      enum plan_coll coll, double bytes, double lat[2], double bw[2]);

/* What `dure plan` recommends, and why (one sentence per choice). */
struct plan_advice {
    int stage;                  /* -1: nothing fits */
    int micro_batch;
    double bucket_bytes;
    char why_stage[256], why_micro[256], why_bucket[256];
};

/* Choose the stage, micro-batch and bucket size for job on hw/fab. */
dure_status_t plan_recommend(const struct plan_job *job, const struct plan_hw *hw,
                             const struct plan_fabric *fab, struct plan_advice *out);

#endif
