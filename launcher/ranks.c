/* launcher/ranks.c - world and local ranks; see ranks.h. */
#include "launcher/ranks.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/comm.h"
#include "common/malloc_tune.h"
#include "common/mpi_check.h"

/* 1: parsed; 0: unset; -1: set but not a non-negative int (logged when
 * `complain`). */
static int env_int(const char *name, int *value, int complain)
{
    const char *s = getenv(name);
    if (!s || !*s) {
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v > INT_MAX) {
        if (!complain) {
            return -1;
        }
        dure_log_error(__FILE__, __LINE__,
                       "environment variable %s='%s' is not a non-negative integer",
                       name, s);
        return -1;
    }
    *value = (int)v;
    return 1;
}

int dure_ranks_local_from_env(int *local_rank, int *local_size, const char **source)
{
    static const struct {
        const char *rank, *size;
    } launchers[] = {
        {"OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"},
        {"SLURM_LOCALID", "SLURM_NTASKS_PER_NODE"},
    };
    for (size_t i = 0; i < sizeof launchers / sizeof launchers[0]; i++) {
        int rank = 0, size = -1;
        int got = env_int(launchers[i].rank, &rank, 1);
        if (got == 0) {
            continue;
        }
        if (got < 0) {
            return -1;
        }
        /* SLURM_NTASKS_PER_NODE may read "2(x3)" on heterogeneous layouts:
         * then the size is unknown rather than wrong. */
        if (env_int(launchers[i].size, &size, 0) != 1) {
            size = -1;
        }
        *local_rank = rank;
        *local_size = size;
        *source = launchers[i].rank;
        return 1;
    }
    return 0;
}

dure_status_t dure_ranks_init(struct dure_ranks *r, MPI_Comm world)
{
    dure_status_t st = DURE_OK;
    int split_rank = 0, split_size = 0, leader = 0;
    int env_rank = 0, env_size = -1;
    const char *src = NULL;

    memset(r, 0, sizeof *r);
    r->node_comm = MPI_COMM_NULL;
    DURE_MPI_TRY(MPI_Comm_rank(world, &r->world_rank));
    DURE_MPI_TRY(MPI_Comm_size(world, &r->world_size));
    DURE_MPI_TRY(MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, r->world_rank,
                                     MPI_INFO_NULL, &r->node_comm));
    DURE_MPI_TRY(MPI_Comm_set_errhandler(r->node_comm, MPI_ERRORS_RETURN));
    DURE_MPI_TRY(MPI_Comm_rank(r->node_comm, &split_rank));
    DURE_MPI_TRY(MPI_Comm_size(r->node_comm, &split_size));

    /* Nodes are counted by their leaders (local rank 0 of each split); the
     * node index is the number of leaders with a lower world rank. */
    leader = split_rank == 0;
    DURE_MPI_TRY(MPI_Allreduce(&leader, &r->node_count, 1, MPI_INT, MPI_SUM, world));
    DURE_MPI_TRY(MPI_Exscan(&leader, &r->node_index, 1, MPI_INT, MPI_SUM, world));
    if (r->world_rank == 0) {
        r->node_index = 0; /* MPI_Exscan leaves rank 0's result undefined */
    }
    DURE_MPI_TRY(MPI_Bcast(&r->node_index, 1, MPI_INT, 0, r->node_comm));

    int got = dure_ranks_local_from_env(&env_rank, &env_size, &src);
    DURE_CHECK(got >= 0, DURE_ERR_ARG, "cannot read the local rank: %s",
               dure_last_error());
    if (got == 1) {
        if (env_rank != split_rank || (env_size >= 0 && env_size != split_size)) {
            dure_log_warn(__FILE__, __LINE__,
                          "%s says local rank %d of %d, the node split says %d of %d: "
                          "using %s",
                          src, env_rank, env_size, split_rank, split_size, src);
        }
        r->local_rank = env_rank;
        r->local_size = env_size >= 0 ? env_size : split_size;
        r->local_source = src;
    } else {
        r->local_rank = split_rank;
        r->local_size = split_size;
        r->local_source = "MPI";
    }
out:
    if (st != DURE_OK) {
        dure_ranks_free(r);
    }
    return st;
}

void dure_ranks_free(struct dure_ranks *r)
{
    if (r && r->node_comm != MPI_COMM_NULL && r->node_comm != 0) {
        MPI_Comm_free(&r->node_comm);
        r->node_comm = MPI_COMM_NULL;
    }
}

dure_status_t dure_mpi_up(int *argc, char ***argv)
{
    dure_malloc_reuse_large(DURE_MALLOC_KEEP_BYTES);
    return comm_mpi_init(argc, argv);
}
