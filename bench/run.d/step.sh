#!/usr/bin/env bash
# bench/run.d/step.sh BUILD - the training step's gradient all-reduce on the
# buffers dure run really uses (the model's gradients from the
# communicator's allocator, exchanged by the bucketer) against
# MPI_Allreduce on a heap buffer, 4K..256M on 2 ranks, median of 3
# interleaved runs (build/bench/step_allreduce). Target: >= 0.95x at every
# size, >= 2x from 32M. Writes bench/results/step_allreduce.json.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
# shellcheck source=bench/lib/load.sh
. "$ROOT/bench/lib/load.sh"
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
load_before
mpirun -np 2 "$BUILD/bench/step_allreduce" bench/results/step_allreduce.json
load_after
