/*
 * launcher/preflight.c - the probes of `dure preflight` (see preflight.h):
 * what every rank and every node's leader sees, gathered on rank 0, which
 * judges them (launcher/preflight_report.c).
 */
#include "launcher/preflight_priv.h"

#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collectives/comm.h"
#include "common/agree.h"
#include "common/fsutil.h"
#include "common/mpi_check.h"
#include "common/sha256.h"
#include "device/device.h"
#include "launcher/plan_spec.h"
#include "launcher/signals.h"
#include "launcher/version.h"
#include "slurm/proc.h"
#include "train/manifest.h"

enum {
    PF_INTRA_BYTES = 8 << 20,    /* all-reduce within a node */
    PF_INTER_BYTES = 4 << 20,    /* all-reduce between leaders, and each pair's exchange */
    PF_REPS = 3,
    PF_CLOCK_TRIPS = 5,
    PF_SIGNAL_WAIT_MS = 5000,
};

/* ---------------------------------------------------------------- one rank */

static void copy_why(char *dst, size_t cap, const char *what)
{
    snprintf(dst, cap, "%s", what);
}

static void probe_versions(struct pf_probe *p)
{
    struct dure_versions v;
    uint8_t d[DURE_SHA256_BYTES];
    dure_versions_get(&v);
    snprintf(p->versions, sizeof p->versions, "dure %s (%s); MPI %s; HDF5 %s; NCCL %s; CUDA %s",
             v.dure, v.git, v.mpi, v.hdf5, v.gpu_built ? v.nccl : "not built",
             v.gpu_built ? v.cuda_runtime : "not built");
    snprintf(p->dure, sizeof p->dure, "%s", v.dure);
    comm_env_text(p->coll_env, sizeof p->coll_env);
    dure_log_set_quiet(1);
    dure_status_t st = dure_sha256_file("/proc/self/exe", d, NULL);
    dure_log_set_quiet(0);
    if (st == DURE_OK) {
        dure_sha256_hex(d, p->exe_sha);
    } else {
        snprintf(p->exe_sha, sizeof p->exe_sha, "unreadable");
    }
}

static void probe_cpus(struct pf_probe *p, const struct pf_options *o)
{
    CPU_ZERO(&p->cpus);
    if (sched_getaffinity(0, sizeof p->cpus, &p->cpus) != 0) {
        p->cpu_state = PF_BAD;
        snprintf(p->cpu_why, sizeof p->cpu_why, "sched_getaffinity: %s", strerror(errno));
        return;
    }
    p->ncpus = CPU_COUNT(&p->cpus);
    p->cpu_state = PF_OK;
    if (o->spec->run.threads > p->ncpus) {
        p->cpu_state = PF_BAD;
        snprintf(p->cpu_why, sizeof p->cpu_why,
                 "run.threads = %d, but the rank is bound to %d CPU(s)", o->spec->run.threads,
                 p->ncpus);
    }
}

/* The GPU this rank would drive (dure_ranks_pick_gpu's choice): its
 * CUDA_VISIBLE_DEVICES entry, which names the physical device. */
static void probe_gpu(struct pf_probe *p, const struct dure_ranks *r, const struct pf_options *o)
{
    int count = 0;
    const struct dure_jobspec *s = o->spec;
    if (s->run.device != JOBSPEC_DEVICE_CUDA && s->slurm.gpus_per_node == 0) {
        p->gpu_state = PF_NA;
        snprintf(p->gpu, sizeof p->gpu, "cpu job");
        return;
    }
    dure_status_t st = device_kind_count("cuda", &count, 1);
    if (st != DURE_OK || count == 0) {
        p->gpu_state = PF_BAD;
        snprintf(p->gpu, sizeof p->gpu, "none");
        copy_why(p->gpu_why, sizeof p->gpu_why,
                 "no CUDA device visible, but the job wants one per rank");
        return;
    }
    int ordinal = r->local_rank % count;
    const char *vis = getenv("CUDA_VISIBLE_DEVICES");
    char list[256] = "";
    if (vis && *vis) {
        snprintf(list, sizeof list, "%s", vis);
        char *save = NULL, *tok = strtok_r(list, ",", &save);
        for (int i = 0; tok && i < ordinal; i++) {
            tok = strtok_r(NULL, ",", &save);
        }
        snprintf(p->gpu, sizeof p->gpu, "%s", tok ? tok : "?");
    } else {
        snprintf(p->gpu, sizeof p->gpu, "%d", ordinal);
    }
    p->gpu_state = PF_OK;
}

/* ---------------------------------------------------------------- one node */

/* Every file of every dataset the job spec names (path and val_path of
 * each, globs expanded; a name no glob matches stays itself, and the
 * fingerprint then says it is missing). */
static dure_status_t data_paths(const struct dure_jobspec *s, glob_t *g,
                                const char *const **paths, size_t *n)
{
    dure_status_t st = DURE_OK;
    DURE_TRY(jobspec_data_files(s, g));
    *paths = (const char *const *)g->gl_pathv;
    *n = g->gl_pathc;
out:
    return st;
}

/* Leader: size and sampled SHA-256 of every data file. */
static void probe_data(struct pf_probe *p, const struct pf_options *o)
{
    glob_t g = {0};
    const char *const *paths = NULL;
    size_t n = 0;
    struct manifest_fingerprint fp;
    dure_log_set_quiet(1);
    dure_status_t st = data_paths(o->spec, &g, &paths, &n);
    if (st == DURE_OK) {
        st = manifest_fingerprint(paths, n, MANIFEST_FP_SAMPLED, &fp, NULL);
    }
    dure_log_set_quiet(0);
    if (st == DURE_OK) {
        p->data_state = PF_OK;
        snprintf(p->data_hex, sizeof p->data_hex, "%s", fp.value);
        p->data_bytes = fp.bytes;
    } else {
        p->data_state = PF_BAD;
        copy_why(p->data_why, sizeof p->data_why, dure_last_error());
    }
    if (g.gl_pathv) {
        globfree(&g);
    }
}

/* Leader: the estimate of one rank's memory (plan/plan.h) and what the
 * node has. Needs the data's channel count when model.channels = 0. */
static void probe_memory(struct pf_probe *p, const struct pf_options *o, int ranks, int per_node)
{
    struct plan_job job;
    struct plan_hw hw;
    struct plan_memory m;
    const struct dure_jobspec *s = o->spec;
    int gpu = s->run.device == JOBSPEC_DEVICE_CUDA || s->slurm.gpus_per_node > 0;
    memset(&hw, 0, sizeof hw);
    p->mem_avail = dure_mem_available();
    hw.gpu = gpu;
    hw.per_node = per_node;
    hw.mem_bytes = p->mem_avail > 0 ? (double)p->mem_avail / per_node : 0;
    dure_log_set_quiet(1);
    dure_status_t st = plan_job_of_spec(s, ranks, per_node, &job);
    if (st == DURE_OK) {
        st = plan_memory(&job, &hw, s->parallel.zero_stage, &m);
    }
    dure_log_set_quiet(0);
    if (st != DURE_OK) {
        p->mem_state = PF_NA;
        copy_why(p->mem_why, sizeof p->mem_why, dure_last_error());
        return;
    }
    p->mem_need = m.total;
    p->mem_state = PF_OK;
}

/* ---------------------------------------------------------------- run directory */

/*
 * Rank 0 creates run.dir and checkpoint.dir and writes a token file with a
 * random value; each leader reads it back (same directory?) and creates a
 * file in checkpoint.dir (writable?). Collective.
 */
static dure_status_t check_rundir(MPI_Comm world, int rank, int leader, struct pf_probe *p,
                                  const struct pf_options *o)
{
    dure_status_t st = DURE_OK;
    char token[128] = "", value[40] = "", path[4352];
    const struct dure_jobspec *s = o->spec;
    int made = 0;
    if (rank == 0) {
        uint8_t d[DURE_SHA256_BYTES];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        char seed[64];
        snprintf(seed, sizeof seed, "%ld.%ld.%d", (long)ts.tv_sec, ts.tv_nsec, (int)getpid());
        dure_sha256_buf(seed, strlen(seed), d);
        snprintf(value, sizeof value, "%016" PRIx64, dure_sha256_u64(d));
        snprintf(token, sizeof token, ".preflight-%s", value);
        dure_log_set_quiet(1);
        made = dure_mkdirs(s->run.dir) == DURE_OK && dure_mkdirs(s->checkpoint.dir) == DURE_OK;
        if (made) {
            snprintf(path, sizeof path, "%s/%s", s->run.dir, token);
            made = dure_file_write_atomic(path, value, strlen(value), 0644) == DURE_OK;
        }
        dure_log_set_quiet(0);
        if (!made) {
            token[0] = '\0';
        }
    }
    DURE_MPI_TRY(MPI_Bcast(token, sizeof token, MPI_CHAR, 0, world));
    DURE_MPI_TRY(MPI_Bcast(value, sizeof value, MPI_CHAR, 0, world));
    if (leader) {
        p->rundir_state = PF_OK;
        if (!token[0]) {
            p->rundir_state = rank == 0 ? PF_BAD : PF_NA;
            snprintf(p->rundir_why, sizeof p->rundir_why,
                     rank == 0 ? "cannot create run.dir '%s' or checkpoint.dir, or write in it"
                               : "rank 0 could not prepare run.dir '%s'",
                     s->run.dir);
        } else {
            char got[40] = "";
            snprintf(path, sizeof path, "%s/%s", s->run.dir, token);
            FILE *f = fopen(path, "r");
            if (!f || !fgets(got, sizeof got, f) || strcmp(got, value) != 0) {
                p->rundir_state = PF_BAD;
                snprintf(p->rundir_why, sizeof p->rundir_why,
                         "run.dir '%s' is not the directory rank 0 sees (%s)", s->run.dir,
                         f ? "another token" : strerror(errno));
            }
            if (f) {
                fclose(f);
            }
            snprintf(path, sizeof path, "%s/.preflight-%s-%d", s->checkpoint.dir, value, rank);
            f = p->rundir_state == PF_OK ? fopen(path, "w") : NULL;
            if (p->rundir_state == PF_OK && (!f || fclose(f) != 0 || unlink(path) != 0)) {
                p->rundir_state = PF_BAD;
                snprintf(p->rundir_why, sizeof p->rundir_why,
                         "checkpoint.dir '%s' is not writable: %s", s->checkpoint.dir,
                         strerror(errno));
            }
        }
    }
    DURE_MPI_TRY(MPI_Barrier(world));
    if (rank == 0 && token[0]) {
        snprintf(path, sizeof path, "%s/%s", s->run.dir, token);
        unlink(path);
    }
out:
    return st;
}

/* ---------------------------------------------------------------- clocks */

/* CLOCK_REALTIME in seconds, plus DURE_PREFLIGHT_CLOCK_SKEW=HOST:SECONDS on HOST. */
static double wall_now(const char *host)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double t = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    const char *inj = getenv("DURE_PREFLIGHT_CLOCK_SKEW");
    const char *colon = inj ? strrchr(inj, ':') : NULL;
    if (colon && strlen(host) == (size_t)(colon - inj) && strncmp(inj, host, strlen(host)) == 0) {
        t += atof(colon + 1);
    }
    return t;
}

/* Rank 0 against each leader in turn: the offset of the leader's clock from
 * the round trip with the least delay, into offsets[node]. Collective. */
static dure_status_t check_clocks(MPI_Comm world, const struct dure_topo *t, int rank,
                                  double *offsets)
{
    dure_status_t st = DURE_OK;
    const char *host = t->host[t->node_of[rank]];
    for (int n = 1; n < t->nodes; n++) {
        int peer = t->leader[n];
        double best_rtt = 1e30;
        for (int k = 0; k < PF_CLOCK_TRIPS; k++) {
            double t0, t1 = 0, t2;
            if (rank == 0) {
                t0 = wall_now(host);
                DURE_MPI_TRY(MPI_Send(&t0, 1, MPI_DOUBLE, peer, 41, world));
                DURE_MPI_TRY(MPI_Recv(&t1, 1, MPI_DOUBLE, peer, 42, world, MPI_STATUS_IGNORE));
                t2 = wall_now(host);
                if (t2 - t0 < best_rtt) {
                    best_rtt = t2 - t0;
                    offsets[n] = t1 - 0.5 * (t0 + t2);
                }
            } else if (rank == peer) {
                DURE_MPI_TRY(MPI_Recv(&t0, 1, MPI_DOUBLE, 0, 41, world, MPI_STATUS_IGNORE));
                t1 = wall_now(host);
                DURE_MPI_TRY(MPI_Send(&t1, 1, MPI_DOUBLE, 0, 42, world));
            }
        }
    }
out:
    return st;
}

/* ---------------------------------------------------------------- SIGUSR2 */

/* Under Slurm: rank 0 asks scancel to send SIGUSR2 to this step; each rank
 * waits for it. Collective. */
static dure_status_t check_signal(MPI_Comm world, int rank, struct pf_probe *p,
                                  const struct pf_options *o)
{
    dure_status_t st = DURE_OK;
    const char *job = getenv("SLURM_JOB_ID"), *step = getenv("SLURM_STEP_ID");
    char target[64];
    int sent = 0;
    p->usr2 = PF_NA;
    if (!o->signal_test || !job || !step) {
        snprintf(p->usr2_why, sizeof p->usr2_why, "not a Slurm step");
        goto out;
    }
    DURE_TRY(dure_signals_install());
    DURE_MPI_TRY(MPI_Barrier(world));
    if (rank == 0) {
        struct proc_result res = {0};
        snprintf(target, sizeof target, "%s.%s", job, step);
        const char *argv[] = {"scancel", "--signal=USR2", target, NULL};
        /* scancel runs inside this step, so the signal reaches it too. */
        sent = proc_run(argv, &res) == DURE_OK &&
               (res.exit_code == 0 || res.exit_code == 128 + SIGUSR2);
        if (!sent) {
            dure_log_warn(__FILE__, __LINE__, "preflight: scancel --signal=USR2 %s failed: %s",
                          target, res.err && *res.err ? res.err : "not run");
        }
        proc_result_free(&res);
    }
    DURE_MPI_TRY(MPI_Bcast(&sent, 1, MPI_INT, 0, world));
    if (!sent) {
        snprintf(p->usr2_why, sizeof p->usr2_why, "scancel could not send SIGUSR2");
        goto restore;
    }
    for (int ms = 0; ms < PF_SIGNAL_WAIT_MS && dure_signals_pending() != SIGUSR2; ms += 10) {
        const struct timespec d = {0, 10 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
    if (dure_signals_pending() == SIGUSR2) {
        p->usr2 = PF_OK;
    } else {
        sigset_t pend, mask;
        sigpending(&pend);
        sigprocmask(SIG_BLOCK, NULL, &mask);
        p->usr2 = PF_BAD;
        snprintf(p->usr2_why, sizeof p->usr2_why,
                 "SIGUSR2 sent by scancel did not reach rank %d within %d s%s", rank,
                 PF_SIGNAL_WAIT_MS / 1000,
                 sigismember(&mask, SIGUSR2) ? ": it is blocked in this process (a wrapper "
                                               "that blocks signals?); the run could never "
                                               "checkpoint on preemption"
                                             : "");
        /* A blocked signal stays pending: do not let it act later. */
        if (sigismember(&pend, SIGUSR2)) {
            int sig = 0;
            sigset_t one;
            sigemptyset(&one);
            sigaddset(&one, SIGUSR2);
            sigwait(&one, &sig);
        }
    }
    DURE_MPI_TRY(MPI_Barrier(world));
restore:
    /* A copy that arrives late must not end the rank. */
    dure_signals_restore();
    signal(SIGUSR2, SIG_IGN);
out:
    return st;
}

/* ---------------------------------------------------------------- network */

/* busbw of an all-reduce of `bytes` on comm c: the median of PF_REPS. */
static dure_status_t allreduce_busbw(comm_t *c, MPI_Comm mpi, size_t bytes, double *gbs)
{
    dure_status_t st = DURE_OK;
    float *buf = NULL;
    double best[PF_REPS];
    size_t n = bytes / sizeof *buf;
    DURE_TRY(comm_mem_alloc(c, bytes, (void **)&buf));
    memset(buf, 0, bytes);
    DURE_TRY(comm_allreduce(c, buf, buf, n, COMM_F32, COMM_SUM));
    for (int k = 0; k < PF_REPS; k++) {
        DURE_MPI_TRY(MPI_Barrier(mpi));
        double t0 = MPI_Wtime();
        DURE_TRY(comm_allreduce(c, buf, buf, n, COMM_F32, COMM_SUM));
        double dt = MPI_Wtime() - t0, worst = 0;
        DURE_MPI_TRY(MPI_Allreduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, mpi));
        best[k] = worst;
    }
    /* median of 3 */
    double a = best[0], b = best[1], m = best[2];
    double med = a > b ? (b > m ? b : (a > m ? m : a)) : (a > m ? a : (b > m ? m : b));
    int size = comm_size(c);
    *gbs = med > 0 ? 2.0 * (size - 1) / size * (double)bytes / med / 1e9 : 0;
out:
    comm_mem_free(c, buf);
    return st;
}

static dure_status_t make_comm(MPI_Comm mpi, comm_t **c)
{
    struct comm_config cfg;
    comm_config_default(&cfg);
    cfg.backend = COMM_BACKEND_MPI;
    cfg.watchdog_s = 0;
    return comm_create(mpi, &cfg, c);
}

/* Leaders k and k+1 (mod n) exchange PF_INTER_BYTES both ways, pair after
 * pair; pair_gbs[k] is the rate one way. Collective over the leaders. */
static dure_status_t check_pairs(MPI_Comm leaders, int me, int n, double *pair_gbs)
{
    dure_status_t st = DURE_OK;
    char *out = NULL, *in = NULL;
    out = calloc(1, PF_INTER_BYTES);
    DURE_ALLOC_TRY(out, PF_INTER_BYTES);
    in = calloc(1, PF_INTER_BYTES);
    DURE_ALLOC_TRY(in, PF_INTER_BYTES);
    for (int k = 0; k < (n == 2 ? 1 : n); k++) {
        int a = k, b = (k + 1) % n;
        if (me != a && me != b) {
            continue;
        }
        int peer = me == a ? b : a;
        double best = 1e30;
        for (int rep = 0; rep <= PF_REPS; rep++) {
            double t0 = MPI_Wtime();
            DURE_MPI_TRY(MPI_Sendrecv(out, PF_INTER_BYTES, MPI_BYTE, peer, 43, in, PF_INTER_BYTES,
                                      MPI_BYTE, peer, 43, leaders, MPI_STATUS_IGNORE));
            double dt = MPI_Wtime() - t0;
            if (rep > 0 && dt < best) {
                best = dt;
            }
        }
        pair_gbs[k] = (double)PF_INTER_BYTES / best / 1e9;
    }
    /* Every leader learns every pair (each pair's rate from its first rank). */
    for (int k = 0; k < (n == 2 ? 1 : n); k++) {
        DURE_MPI_TRY(MPI_Bcast(&pair_gbs[k], 1, MPI_DOUBLE, k, leaders));
    }
out:
    free(out);
    free(in);
    return st;
}

static dure_status_t check_network(MPI_Comm world, const struct dure_topo *t,
                                   const struct dure_ranks *r, struct pf_probe *p,
                                   struct pf_shared *sh)
{
    dure_status_t st = DURE_OK;
    comm_t *node = NULL, *net = NULL;
    MPI_Comm leaders = MPI_COMM_NULL;
    const int leader = r->local_rank == 0;
    p->intra_gbs = -1;
    if (r->local_size > 1) {
        DURE_TRY(make_comm(r->node_comm, &node));
        DURE_TRY(allreduce_busbw(node, r->node_comm, PF_INTRA_BYTES, &p->intra_gbs));
    }
    DURE_MPI_TRY(MPI_Comm_split(world, leader ? 0 : MPI_UNDEFINED, r->world_rank, &leaders));
    if (leader && t->nodes > 1) {
        int me = 0;
        DURE_MPI_TRY(MPI_Comm_rank(leaders, &me));
        DURE_TRY(make_comm(leaders, &net));
        DURE_TRY(allreduce_busbw(net, leaders, PF_INTER_BYTES, &sh->inter_gbs));
        DURE_TRY(check_pairs(leaders, me, t->nodes, sh->pair_gbs));
    }
out:
    comm_destroy(net);
    comm_destroy(node);
    if (leaders != MPI_COMM_NULL) {
        MPI_Comm_free(&leaders);
    }
    return st;
}

/* ---------------------------------------------------------------- all of it */

dure_status_t preflight_run(MPI_Comm world, const struct dure_topo *topo,
                            const struct dure_ranks *r, const struct pf_options *o,
                            struct pf_report *rep)
{
    dure_status_t st = DURE_OK;
    struct pf_probe mine, *all = NULL;
    struct pf_shared sh;
    const int rank = r->world_rank, leader = r->local_rank == 0;
    int per_node = dure_topo_ranks_per_node(topo);

    memset(rep, 0, sizeof *rep);
    memset(&mine, 0, sizeof mine);
    memset(&sh, 0, sizeof sh);
    sh.pair_gbs = calloc((size_t)topo->nodes, sizeof *sh.pair_gbs);
    sh.clock_offset = calloc((size_t)topo->nodes, sizeof *sh.clock_offset);
    DURE_CHECK(sh.pair_gbs && sh.clock_offset, DURE_ERR_NOMEM,
               "out of memory for the preflight of %d nodes", topo->nodes);
    sh.inter_gbs = -1;

    probe_versions(&mine);
    probe_cpus(&mine, o);
    probe_gpu(&mine, r, o);
    if (leader) {
        probe_data(&mine, o);
        probe_memory(&mine, o, topo->size, per_node > 0 ? per_node : r->local_size);
    }
    DURE_TRY(check_rundir(world, rank, leader, &mine, o));
    DURE_TRY(check_clocks(world, topo, rank, sh.clock_offset));
    DURE_TRY(check_signal(world, rank, &mine, o));
    /* Where a rank's coll_env is not rank 0's, comm_create would refuse on
     * every rank: the network is not measured, and the judge names the
     * nodes that differ. (mine is zeroed: the bytes after the text match.) */
    char root_env[sizeof mine.coll_env];
    int first_env = -1;
    DURE_TRY(dure_agree_bytes(world, mine.coll_env, root_env, (int)sizeof root_env, &first_env));
    sh.coll_env_differs = first_env >= 0;
    if (sh.coll_env_differs) {
        mine.intra_gbs = -1;
    } else {
        DURE_TRY(check_network(world, topo, r, &mine, &sh));
    }

    if (rank == 0) {
        all = calloc((size_t)topo->size, sizeof *all);
        DURE_ALLOC_TRY(all, (size_t)topo->size * sizeof *all);
    }
    DURE_MPI_TRY(MPI_Gather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE,
                            0, world));
    if (rank == 0) {
        DURE_TRY(preflight_judge(topo, all, &sh, o, rep));
    }
out:
    free(all);
    free(sh.pair_gbs);
    free(sh.clock_offset);
    return st;
}
