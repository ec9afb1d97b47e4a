/*
 * launcher/ranks.h - who this process is: world rank and size from MPI,
 * local rank from the launcher's environment, and the node-local
 * communicator. The local rank and size pick this rank's device
 * (device_open).
 *
 * `dure run` is one process per GPU (or per CPU core set) under mpirun or
 * srun. The world rank and size come from MPI; the local rank (the index of
 * this process on its node, which picks its GPU) comes from the launcher:
 * Open MPI's OMPI_COMM_WORLD_LOCAL_RANK / OMPI_COMM_WORLD_LOCAL_SIZE, or
 * Slurm's SLURM_LOCALID / SLURM_NTASKS_PER_NODE (srun). When neither is set
 * the rank within an MPI_COMM_TYPE_SHARED split of the world is used, and
 * the source is recorded so the manifest can say where the number came from.
 */
#ifndef DURE_LAUNCHER_RANKS_H
#define DURE_LAUNCHER_RANKS_H

#include <mpi.h>

#include "common/status.h"

struct dure_ranks {
    int world_rank;          /* 0 .. world_size-1 */
    int world_size;
    int local_rank;          /* index of this process on its node */
    int local_size;          /* processes on this node */
    int node_count;          /* nodes in the job (distinct node communicators) */
    int node_index;          /* this node's index, 0 .. node_count-1 */
    const char *local_source;/* "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID" or "MPI" */
    MPI_Comm node_comm;      /* processes sharing this node; owned */
};

/*
 * Read the local rank from the environment, as the launchers set it:
 * Open MPI's variables first, then Slurm's. Returns 1 and fills the outputs
 * (and *source, a static string) when one is present and valid, 0 when
 * neither launcher set it, and -1 when a variable is set but not a
 * non-negative integer (the offending variable is logged).
 * local_size is -1 when the launcher did not say.
 */
int dure_ranks_local_from_env(int *local_rank, int *local_size, const char **source);

/*
 * Fill `r` for MPI communicator `world` (MPI must be initialised). The
 * node-local communicator is created here (collective over `world`) and
 * freed by dure_ranks_free. When the environment's local rank disagrees
 * with the node split (a launcher that lies, or ranks placed oddly) the
 * environment wins and a warning says so.
 */
dure_status_t dure_ranks_init(struct dure_ranks *r, MPI_Comm world);

/*
 * MPI up for a dure command that runs collectives (run, tune, bench,
 * preflight): first malloc keeps its large blocks in the heap
 * (dure_malloc_reuse_large(DURE_MALLOC_KEEP_BYTES)), then comm_mpi_init.
 * Checkpoint scratch and Open MPI's per-call temporaries then reuse freed
 * heap instead of faulting in fresh mappings on every call (with glibc's
 * defaults a recursive_halving reduce-scatter of 256-416 KiB on 2 ranks took
 * 1.5-2.4 ms, 36-55 us kept; reduce-scatters of 32-45 MiB 150-380 ms, 8-16 ms
 * kept), and every command runs and times Open MPI's algorithms as dure
 * tune timed the rules it writes.
 */
dure_status_t dure_mpi_up(int *argc, char ***argv);

/* Free the node communicator; accepts a zeroed or already-freed struct. */
void dure_ranks_free(struct dure_ranks *r);

#endif
