#!/usr/bin/env bash
# tests/gpu/exact.sh - exact mode (run.exact) on a GPU machine. Not run by
# `make test` (no GPU there); run it by hand after a CUDA build, or from
# `make gpu-check` (tests/gpu/check.sh runs it):
#   make USE_CUDA=yes tests-build && bash tests/gpu/exact.sh
# Checks, each bit for bit:
#   1. test_tree_cuda with nothing skipped: the CUDA norm tiles and the
#      exact reduce-scatter's add against their CPU references;
#   2. dure run on cuda, 1 rank: exact mode twice, then at ZeRO 2 with
#      small buckets and overlap off, and at ZeRO 3 (bf16 unit gathers,
#      whole gradients through the tree): `dure verify` IDENTICAL;
#   3. with 2 (and 4) GPUs: 2 (4) ranks over NCCL (ncclSend/ncclRecv and
#      dure's add kernel) against 1 rank, at ZeRO 1 and 3 (2 and 3):
#      IDENTICAL.
# Exits 77 (skipped, not passed) without a visible GPU.
. "$(dirname "$0")/../lib.sh"
: "${DURE_BUILD:=$T_ROOT/build}"
DURE=$DURE_BUILD/dure
export NCCL_SOCKET_IFNAME=${NCCL_SOCKET_IFNAME:-lo}
command -v nvidia-smi > /dev/null || t_skip "gpu exact: no nvidia-smi, no GPU visible"
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
[ "$gpus" -ge 1 ] || t_skip "gpu exact: no GPU visible"
[ -x "$DURE" ] || { t_fail "$DURE not built (make USE_CUDA=yes tests-build)"; t_done; }

t_run "CUDA kernels of exact mode match the CPU references" 0 \
    env DURE_REQUIRE_GPU=1 "$DURE_BUILD/tests/unit/test_tree_cuda"
t_grep "nothing skipped" '^\[  PASSED  \] 2 test\(s\)'

"$DURE" data gen -o "$T_TMP/data.h5" --episodes 32 --length 1024 --channels 8 --seed 5 \
    > "$T_TMP/gen.log" 2>&1 || { cat "$T_TMP/gen.log"; t_fail "dure data gen"; t_done; }
cat > "$T_TMP/job.ini" <<INI
[run]
name = gpu-exact
steps = 8
seed = 3
exact = true
device = cuda
log_every = 1
val_every = 0
[model]
d_model = 128
n_layers = 2
n_heads = 4
patch_len = 8
context_patches = 16
[data]
path = $T_TMP/data.h5
[optim]
global_batch = 32
micro_batch = 4
[parallel]
backend = nccl
[checkpoint]
every = 4
INI
gpu_run() { # NAME NP [--set ...]
    local name=$1 np=$2; shift 2
    T_OUT=$(mpirun -np "$np" "$DURE" run "$T_TMP/job.ini" --set run.dir="$T_TMP/$name" "$@" 2>&1)
    T_RC=$?
    t_eq "$name: $np rank(s) $* trains on cuda (exit $T_RC)" "$T_RC" 0
    [ "$T_RC" -eq 0 ] || printf '%s\n' "$T_OUT" | tail -20
}
gpu_same() { # NAME
    t_run "$1: dure verify against 1 rank says IDENTICAL" 0 "$DURE" verify "$T_TMP/ref" "$T_TMP/$1"
}
gpu_run ref 1
gpu_run again 1
gpu_same again
gpu_run z2 1 --set parallel.zero_stage=2 --set parallel.bucket_mb=0.25 --set parallel.overlap=false
gpu_same z2
gpu_run z3 1 --set parallel.zero_stage=3
gpu_same z3
if [ "$gpus" -ge 2 ]; then
    gpu_run np2 2 --set parallel.zero_stage=1
    gpu_same np2
    gpu_run np2_z3 2 --set parallel.zero_stage=3 --set parallel.prefetch=0
    gpu_same np2_z3
else
    echo "note: 1 GPU: the world-size check over NCCL needs 2 or more GPUs"
fi
if [ "$gpus" -ge 4 ]; then
    gpu_run np4 4 --set parallel.zero_stage=2
    gpu_same np4
    gpu_run np4_z3 4 --set parallel.zero_stage=3
    gpu_same np4_z3
fi
t_done
