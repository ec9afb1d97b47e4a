/*
 * launcher/preflight_priv.h - what the probes of `dure preflight`
 * (launcher/preflight.c) hand to the judge (launcher/preflight_report.c).
 */
#ifndef DURE_LAUNCHER_PREFLIGHT_PRIV_H
#define DURE_LAUNCHER_PREFLIGHT_PRIV_H

#include <sched.h>
#include <stdint.h>

#include "common/sha256.h"
#include "launcher/preflight.h"

/* What one rank saw, gathered to rank 0 as bytes. Fields marked "leader"
 * are filled by a node's lowest rank only. */
struct pf_probe {
    char exe_sha[DURE_SHA256_HEX];  /* SHA-256 of /proc/self/exe */
    char dure[32];                  /* dure's version, for the table */
    char versions[448];             /* dure, MPI, HDF5, NCCL, CUDA runtime */
    char coll_env[192];             /* the environment dure's collectives read, as
                                       "DURE_ALGO_TABLE=... DURE_RING_SEGMENT_KIB=..." */
    cpu_set_t cpus;                 /* the rank's CPU binding */
    int ncpus;
    int cpu_state;                  /* enum pf_state: run.threads fits */
    char cpu_why[96];
    int gpu_state;
    char gpu[32];                   /* the physical GPU it would drive, "cpu job", "none" */
    char gpu_why[96];
    int usr2;                       /* enum pf_state */
    char usr2_why[192];
    /* leader */
    int64_t mem_avail;              /* MemAvailable, bytes */
    uint64_t mem_need;              /* estimate per rank, bytes */
    int mem_state;                  /* PF_NA when the estimate could not be made */
    char mem_why[192];
    int rundir_state;
    char rundir_why[256];
    int data_state;
    char data_hex[DURE_SHA256_HEX];
    uint64_t data_bytes;
    char data_why[256];
    double intra_gbs;               /* all-reduce busbw within the node; -1: one rank */
};

/* Measured once for the whole job (known on rank 0). */
struct pf_shared {
    double *clock_offset;           /* [nodes]: seconds the node's clock is ahead of rank 0's */
    double inter_gbs;               /* all-reduce busbw between leaders; -1: one node */
    double *pair_gbs;               /* [nodes]: exchange rate of nodes k and k+1 (mod n) */
    int coll_env_differs;           /* some rank's coll_env is not rank 0's: the network
                                       was not measured (its communicators would refuse) */
};

/* Rank 0: judge every node on every check into *rep. */
dure_status_t preflight_judge(const struct dure_topo *t, const struct pf_probe *all,
                              const struct pf_shared *sh, const struct pf_options *o,
                              struct pf_report *rep);

#endif
