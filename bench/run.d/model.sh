#!/usr/bin/env bash
# bench/run.d/model.sh BUILD_DIR - CPU training step of the model (d_model 512,
# 8 layers, 64 patches of context, micro-batch 16) against OpenBLAS sgemm,
# both measured in the same process with the same threads and OpenBLAS
# kernel choice. Run twice: with OpenBLAS's own kernel choice, and, on CPUs
# with AVX-512, with OPENBLAS_CORETYPE=SkylakeX (OpenBLAS 0.3.21 takes some
# newer AMD cores for Haswell and leaves half the GEMM speed unused).
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN="$ROOT/$BUILD/bench/model_step"
[ -x "$BIN" ] || { echo "model bench: $BIN not built (make tests-build)" >&2; exit 1; }
mkdir -p "$ROOT/bench/results"
# shellcheck source=bench/lib/load.sh
. "$ROOT/bench/lib/load.sh"
load_before
rc=0
"$BIN" --steps 5 --name model_cpu_step --json "$ROOT/bench/results/model_cpu_step.json" || rc=1
if grep -qw avx512f /proc/cpuinfo; then
    OPENBLAS_CORETYPE=SkylakeX "$BIN" --steps 5 --name model_cpu_step_skx \
        --json "$ROOT/bench/results/model_cpu_step_skx.json" || rc=1
fi
load_after
exit $rc
