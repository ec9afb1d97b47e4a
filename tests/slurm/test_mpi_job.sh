#!/usr/bin/env bash
# tests/slurm/test_mpi_job.sh - a 2-rank MPI job through sbatch and
# `srun --mpi=pmix` on the test cluster: both ranks start as one world,
# talk, and the job's exit code and completion record come back.
# shellcheck source=tests/slurm/lib.sh
. "$(dirname "$0")/lib.sh"

cat > "$T_TMP/hello.c" <<'C'
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

/* Each rank prints its rank, the world size, the sum of rank + 1 over the
 * world (3 on 2 ranks: only a real 2-rank world gets it) and the Slurm task
 * id and MPI plugin that srun gave it. */
int main(int argc, char **argv)
{
    int rank, size, mine, sum;
    const char *procid = getenv("SLURM_PROCID");
    const char *mpi = getenv("SLURM_MPI_TYPE");

    if (MPI_Init(&argc, &argv) != MPI_SUCCESS)
        return 10;
    if (MPI_Comm_rank(MPI_COMM_WORLD, &rank) != MPI_SUCCESS ||
        MPI_Comm_size(MPI_COMM_WORLD, &size) != MPI_SUCCESS)
        MPI_Abort(MPI_COMM_WORLD, 11);
    mine = rank + 1;
    if (MPI_Allreduce(&mine, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
        MPI_Abort(MPI_COMM_WORLD, 12);
    printf("rank %d of %d sum %d procid %s mpi %s\n", rank, size, sum,
           procid ? procid : "-", mpi ? mpi : "-");
    if (fflush(stdout) != 0)
        MPI_Abort(MPI_COMM_WORLD, 13);
    return MPI_Finalize() == MPI_SUCCESS ? 0 : 14;
}
C
t_run "mpicc builds the MPI test program" 0 mpicc -o "$T_TMP/hello" "$T_TMP/hello.c"

cat > "$T_TMP/job.sh" <<'SH'
#!/bin/bash
#SBATCH --job-name=dure-mpi-smoke
#SBATCH --ntasks=2
#SBATCH --time=2
srun --mpi=pmix ./hello
SH
t_run "sbatch --wait runs the 2-rank job" 0 \
    timeout 120 sbatch --wait --parsable --chdir="$T_TMP" --output="$T_TMP/job.out" "$T_TMP/job.sh"
job=$(printf '%s\n' "$T_OUT" | sed -n 's/^\([0-9][0-9]*\).*/\1/p' | tail -n 1)

T_OUT=$(sort "$T_TMP/job.out" 2>&1)
t_eq "both ranks report, in one world of 2 that reduced to 3, as Slurm tasks 0 and 1 under PMIx" \
    "$T_OUT" "$(printf 'rank 0 of 2 sum 3 procid 0 mpi pmix\nrank 1 of 2 sum 3 procid 1 mpi pmix')"

rec=$(slurm_jobcomp "$job")
t_eq "the job's completion record says COMPLETED" "$(slurm_field "$rec" JobState)" COMPLETED
t_eq "the job's completion record has exit code 0" "$(slurm_field "$rec" ExitCode)" 0:0
t_eq "the job ran 2 tasks" "$(slurm_field "$rec" ProcCnt)" 2

t_done
