#!/usr/bin/env bash
# bench/run.d/ckpt.sh BUILD - checkpoint save and load rates on 2 ranks
# against dd to the same directory (conv=fsync for writes, cold reads), in
# one run; writes bench/results/ckpt_save.json and ckpt_load.json.
# DURE_BENCH_CKPT_MIB (per vector; the checkpoint holds 3) and
# DURE_BENCH_CKPT_REPS size it; DURE_BENCH_CKPT_DIR picks the file system.
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
mpirun -np 2 "$BUILD/bench/bench_ckpt" \
    --dir "${DURE_BENCH_CKPT_DIR:-$BUILD/bench-ckpt}" \
    --mib "${DURE_BENCH_CKPT_MIB:-128}" --reps "${DURE_BENCH_CKPT_REPS:-5}"
