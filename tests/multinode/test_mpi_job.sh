#!/usr/bin/env bash
# tests/multinode/test_mpi_job.sh - MPI across namespaced nodes under
# `srun --mpi=pmix -N2` and `sbatch -N2`: 2 nodes x 1 rank and 2 nodes x 2
# ranks. Each rank reports its host, its local rank and size from the
# node-local communicator (MPI_COMM_TYPE_SHARED) and from Slurm, and sums
# over the node and over the world: only a correct placement gets every
# value right.
# shellcheck source=tests/multinode/lib.sh
. "$(dirname "$0")/lib.sh"

cat > "$T_TMP/where.c" <<'C'
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

/* "HOST rank R of N local L of S slurm_local SL node_sum NS world_sum WS":
 * node_sum is the sum of world ranks on this node's shared-memory
 * communicator, world_sum the sum of (rank + 1) over the world. */
int main(int argc, char **argv)
{
    int rank, size, lrank, lsize, node_sum, world_sum, one, len;
    char host[MPI_MAX_PROCESSOR_NAME];
    const char *sl = getenv("SLURM_LOCALID");
    MPI_Comm node;

    if (MPI_Init(&argc, &argv) != MPI_SUCCESS)
        return 10;
    if (MPI_Comm_rank(MPI_COMM_WORLD, &rank) != MPI_SUCCESS ||
        MPI_Comm_size(MPI_COMM_WORLD, &size) != MPI_SUCCESS ||
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL,
                            &node) != MPI_SUCCESS ||
        MPI_Comm_rank(node, &lrank) != MPI_SUCCESS || MPI_Comm_size(node, &lsize) != MPI_SUCCESS ||
        MPI_Get_processor_name(host, &len) != MPI_SUCCESS)
        MPI_Abort(MPI_COMM_WORLD, 11);
    one = rank + 1;
    if (MPI_Allreduce(&rank, &node_sum, 1, MPI_INT, MPI_SUM, node) != MPI_SUCCESS ||
        MPI_Allreduce(&one, &world_sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
        MPI_Abort(MPI_COMM_WORLD, 12);
    printf("%s rank %d of %d local %d of %d slurm_local %s node_sum %d world_sum %d\n", host,
           rank, size, lrank, lsize, sl ? sl : "-", node_sum, world_sum);
    if (fflush(stdout) != 0)
        MPI_Abort(MPI_COMM_WORLD, 13);
    return MPI_Finalize() == MPI_SUCCESS ? 0 : 14;
}
C
t_run "mpicc builds the placement probe" 0 mpicc -o "$T_TMP/where" "$T_TMP/where.c"
n1=${MN_NODES[0]} n2=${MN_NODES[1]}

t_run "srun --mpi=pmix -N2 -n2 runs one rank per node" 0 \
    timeout 60 srun --mpi=pmix -N2 -n2 --chdir="$T_TMP" ./where
t_eq "ranks 0 and 1 on two hosts, each alone on its node" "$(printf '%s\n' "$T_OUT" | sort)" \
    "$(printf '%s\n' "$n1 rank 0 of 2 local 0 of 1 slurm_local 0 node_sum 0 world_sum 3" \
        "$n2 rank 1 of 2 local 0 of 1 slurm_local 0 node_sum 1 world_sum 3")"

# Two ranks per node on nodes of one CPU: --overcommit (correctness only;
# Slurm refuses --ntasks-per-node above a node's CPUs even then, and
# places 4 tasks on 2 nodes in blocks of 2).
cat > "$T_TMP/job.sh" <<'SH'
#!/bin/bash
#SBATCH --job-name=dure-mn-where
#SBATCH --nodes=2
#SBATCH --ntasks=4
#SBATCH --overcommit
#SBATCH --time=2
srun --mpi=pmix ./where
SH
t_run "sbatch -N2 -n4 --overcommit runs 2 x 2 ranks" 0 \
    timeout 120 sbatch --wait --parsable --chdir="$T_TMP" --output="$T_TMP/job.out" "$T_TMP/job.sh"
job=$(mn_job_id "$T_OUT")
t_eq "ranks 0-1 on the first node, 2-3 on the second, local ranks 0 and 1 on each" \
    "$(sort "$T_TMP/job.out" 2>&1)" \
    "$(printf '%s\n' "$n1 rank 0 of 4 local 0 of 2 slurm_local 0 node_sum 1 world_sum 10" \
        "$n1 rank 1 of 4 local 1 of 2 slurm_local 1 node_sum 1 world_sum 10" \
        "$n2 rank 2 of 4 local 0 of 2 slurm_local 0 node_sum 5 world_sum 10" \
        "$n2 rank 3 of 4 local 1 of 2 slurm_local 1 node_sum 5 world_sum 10")"
rec=$(slurm_jobcomp "$job")
t_eq "the job's completion record says COMPLETED" "$(slurm_field "$rec" JobState)" COMPLETED
t_eq "the job ran on both nodes" "$(slurm_field "$rec" NodeCnt)" 2

t_done
