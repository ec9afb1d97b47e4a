# shellcheck shell=bash
# bench/lib/cluster.sh - sourced by the benchmarks that run across nodes
# (bench/run.d/multinode.sh, bench/run.d/tune_multinode.sh): mn_up DIR
# brings up a 2-node namespaced Slurm cluster of 1 CPU a node in DIR
# (tests/slurm/cluster.sh; the caller's EXIT trap must run
# `bash "$CLUSTER" down DIR`), loads its environment, and exports the Open
# MPI settings of the site profile tcp (slurm/profiles.ini), as the batch
# script of a job spec with slurm.profile = tcp would, for dure and the MPI
# peers alike. Needs ROOT and DURE. DURE_CLUSTER_TAG / DURE_CLUSTER_NET pick
# the cluster's names (default: a random tag).
CLUSTER=$ROOT/tests/slurm/cluster.sh

mn_up() { # DIR
    mkdir -p "$1"
    DURE_CLUSTER_NODES=2 DURE_CLUSTER_CPUS=1 \
        DURE_CLUSTER_TAG="${DURE_CLUSTER_TAG:-b$(od -An -N2 -tx2 /dev/urandom | tr -d ' ')}" \
        bash "$CLUSTER" up "$1" || return 1
    # shellcheck disable=SC1091
    . "$1/env.sh"
    local mpi_env
    mpi_env=$("$DURE" render "$ROOT/bench/job-demo.ini" --set slurm.profile=tcp \
        --set data.path=none.h5 | grep '^export OMPI_MCA_') || return 1
    eval "$mpi_env"
    mpi_env=${mpi_env//export /}
    echo "# Open MPI settings of slurm.profile = tcp: ${mpi_env//$'\n'/ }"
}
