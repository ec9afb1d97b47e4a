#!/usr/bin/env bash
# tests/gpu/check.sh - `make gpu-check`: everything only a GPU can show, in
# one command on a machine with one (or a few) GPUs, in about 5 minutes.
#
#   bash tests/gpu/check.sh [BUILD_DIR]      (default build-gpu)
#
# 1. builds dure with USE_CUDA=yes in BUILD_DIR;
# 2. the CUDA kernel tests (device/ and the model, CPU vs CUDA at 2 and 12
#    layers), none skipped: DURE_REQUIRE_GPU=1 turns a skip into a failure;
# 3. every collective on NCCL, float and bfloat16, odd sizes, checked
#    (`dure bench ... --backend nccl --check 1`);
# 4. `dure run` on cuda at ZeRO 0, 2 and 3 (3: bf16 unit gathers on NCCL,
#    prefetch 1), each twice with run.deterministic = true, then `dure
#    verify` bitwise; ZeRO 3 on every GPU (up to 8) against ZeRO 0 there;
#    exact mode (tests/gpu/exact.sh): 1 rank repeats bitwise across ZeRO
#    stages, buckets and overlap; 2 and 4 ranks over NCCL equal 1 rank;
# 5. CPU-vs-CUDA loss agreement of the same `dure run` job;
# 6. MFU of the 350M model of jobs/gpu-node8.ini on one GPU;
# 7. on 2 GPUs or more, `dure tune --backend nccl` (NCCL's algorithms and
#    protocols pinned in turn), its nccl_tuner.conf, and `--verify` of it
#    against NCCL's own choices (one GPU: skipped, named in the table).
# Prints one summary table; writes bench/results/gpu-check.json (the table)
# and gpu-*.json (NCCL bandwidths, MFU). Exit 0 when every check passed, 1
# when one failed or a prerequisite is missing (named), 77 when no GPU is
# visible: that is a skip, not a pass.
set -u
BUILD=${1:-build-gpu}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=tests/cpus.sh
. "$ROOT/tests/cpus.sh"

# ---------------------------------------------------------------- prerequisites
gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then
    gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
else
    gpus=$(find /dev -maxdepth 1 -name 'nvidia[0-9]*' 2>/dev/null | wc -l)
fi
if [ "$gpus" -eq 0 ]; then
    echo "gpu-check: no GPU visible (nvidia-smi lists none, no /dev/nvidiaN): nothing checked (skip, exit 77)"
    exit 77
fi
missing=()
for c in make gcc mpirun pkg-config; do
    command -v "$c" >/dev/null 2>&1 || missing+=("command $c")
done
if command -v pkg-config >/dev/null 2>&1; then
    for m in hdf5-openmpi cmocka openblas inih libcrypto zlib; do
        pkg-config --exists "$m" 2>/dev/null || missing+=("pkg-config $m")
    done
    if ! pkg-config --exists ompi-c 2>/dev/null && ! command -v mpicc >/dev/null 2>&1; then
        missing+=("the MPI C library (pkg-config ompi-c or mpicc)")
    fi
fi
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
[ -x "$CUDA_HOME/bin/nvcc" ] || missing+=("nvcc under CUDA_HOME=$CUDA_HOME")
if [ "${#missing[@]}" -gt 0 ]; then
    echo "gpu-check: missing on this machine:"
    printf '  - %s\n' "${missing[@]}"
    echo "gpu-check: bring them first (PLATFORM.md, last section: Debian packages unpacked"
    echo "           into a folder, PKG_CONFIG_PATH and LD_LIBRARY_PATH pointing there)"
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export NCCL_SOCKET_IFNAME=${NCCL_SOCKET_IFNAME:-lo}
np=$((gpus < 8 ? gpus : 8))
WORK=$(mktemp -d /tmp/dure-gpucheck-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
LOG="$ROOT/$BUILD/gpu-check-logs"
DURE="$ROOT/$BUILD/dure"
t_start=$(date +%s)

# ---------------------------------------------------------------- the table
rows=()        # "name|PASS or FAIL|detail|seconds"
failed=0
row() { # NAME RESULT DETAIL SECONDS
    rows+=("$1|$2|$3|$4")
    case $2 in PASS|SKIP) ;; *) failed=1 ;; esac
    printf 'gpu-check: %-28s %s  %s (%ss)\n' "$1" "$2" "$3" "$4"
}
# check NAME LOGFILE CMD...: run, record PASS/FAIL with the log's last line.
check() {
    local name=$1 log=$2 t0 rc
    shift 2
    t0=$(date +%s)
    "$@" > "$log" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ]; then
        row "$name" PASS "$(tail -1 "$log" | cut -c1-60)" $(($(date +%s) - t0))
    else
        row "$name" FAIL "exit $rc, see $log" $(($(date +%s) - t0))
    fi
    return "$rc"
}

# ---------------------------------------------------------------- 1. build
mkdir -p "$LOG" bench/results
if ! check "build (USE_CUDA=yes)" "$LOG/build.log" \
        make USE_CUDA=yes BUILD="$BUILD" -j"$(machine_cpus)" tests-build; then
    tail -20 "$LOG/build.log"
    exit 1
fi
"$DURE" --version > "$LOG/version.txt" 2>&1
gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
gpu_name=${gpu_name:-a GPU}

# ---------------------------------------------------------------- 2. kernels
for t in test_device_cuda test_model_cuda test_device test_tree_cuda; do
    check "kernels: $t" "$LOG/$t.log" env DURE_REQUIRE_GPU=1 "$BUILD/tests/unit/$t"
    if grep -q 'SKIPPED' "$LOG/$t.log"; then
        row "kernels: $t none skipped" FAIL "a test skipped on a GPU machine" 0
    fi
done

# ---------------------------------------------------------------- 3. NCCL
# Odd element counts: 1025 and 1048577 floats, 2049 and 1048579 bf16.
for coll in allreduce reducescatter allgather broadcast; do
    for dt in float bfloat16; do
        es=4; [ "$dt" = bfloat16 ] && es=2
        for n in 1025 1048577; do
            if [ "$dt" = bfloat16 ]; then n=$((n + 1024)); fi
            bytes=$((n * es))
            # reduce-scatter and all-gather: n elements per rank
            case $coll in reducescatter|allgather) bytes=$((bytes * np)) ;; esac
            check "nccl $coll $dt $n" "$LOG/nccl-$coll-$dt-$n.log" \
                mpirun -np "$np" "$DURE" bench "$coll" --backend nccl -d "$dt" -c 1 \
                -b "$bytes" -e "$bytes" -n 5 -w 2 -R 3 \
                --json "bench/results/gpu-nccl-$coll-$dt-$n.json"
        done
    done
done

# ---------------------------------------------------------------- 4. dure run on cuda
"$DURE" data gen -o "$WORK/data.h5" --episodes 64 --length 8192 --channels 8 --seed 5 \
    > "$LOG/datagen.log" 2>&1 || row "dataset" FAIL "dure data gen failed, see $LOG/datagen.log" 0
job() { # NAME ZERO DEVICE STEPS
    mpirun -np 1 "$DURE" run jobs/gpu-1.ini --set data.path="$WORK/data.h5" \
        --set run.dir="$WORK/runs/$1" --set run.device="$3" \
        --set parallel.backend="$([ "$3" = cuda ] && echo nccl || echo mpi)" \
        --set parallel.zero_stage="$2" --set run.steps="$4" --set run.deterministic=true \
        --set run.log_every=5 --set run.val_every=0 --set checkpoint.every=0 \
        --set model.d_model=256 --set model.n_layers=4 --set model.n_heads=4 \
        --set optim.global_batch=32 --set optim.micro_batch=16 --set optim.warmup_steps=5
}
for z in 0 2 3; do
    for r in a b; do
        check "run cuda zero $z ($r)" "$LOG/run-z$z-$r.log" job "z$z-$r" "$z" cuda 20
    done
    check "verify zero $z bitwise" "$LOG/verify-z$z.log" \
        "$DURE" verify "$WORK/runs/z$z-a" "$WORK/runs/z$z-b"
done

# ZeRO 3 across the GPUs: the model sharded over np ranks, the losses of
# ZeRO 0 on them (deterministic, one micro-batch per rank): bitwise on 1 or
# 2 GPUs (a sum of two is the same in any order), within 1e-5 beyond (NCCL's
# ring orders an all-reduce's sums and a unit's reduce-scatter's alike only
# up to rounding).
jobnp() { # NAME ZERO
    mpirun -np "$np" "$DURE" run jobs/gpu-1.ini --set data.path="$WORK/data.h5" \
        --set run.dir="$WORK/runs/$1" --set run.device=cuda --set parallel.backend=nccl \
        --set parallel.zero_stage="$2" --set run.steps=10 --set run.deterministic=true \
        --set run.log_every=1 --set run.val_every=0 --set checkpoint.every=0 \
        --set model.d_model=256 --set model.n_layers=4 --set model.n_heads=4 \
        --set optim.global_batch=$((8 * np)) --set optim.micro_batch=8 --set optim.grad_clip=0
}
losses() { sed -n 's/^{"step":\([0-9]*\),"loss":\([^,]*\).*/\1 \2/p' "$WORK/runs/$1/metrics.jsonl"; }
if check "run cuda x$np zero 0" "$LOG/run-np-z0.log" jobnp np-z0 0 &&
   check "run cuda x$np zero 3" "$LOG/run-np-z3.log" jobnp np-z3 3; then
    tol=0; [ "$np" -gt 2 ] && tol=1e-5
    bad=$(join <(losses np-z0) <(losses np-z3) | awk -v t="$tol" '
        { d = $2 - $3; if (d < 0) d = -d; m = $2 < 0 ? -$2 : $2
          if (t == 0 ? $2 != $3 : d > t * m) b++ } END { print b + 0 }')
    if [ "$bad" -eq 0 ] && [ "$(losses np-z3 | wc -l)" -eq 10 ]; then
        row "zero 3 = zero 0 on $np GPU(s)" PASS "10 losses within $tol" 0
    else
        row "zero 3 = zero 0 on $np GPU(s)" FAIL "$bad losses differ (tolerance $tol)" 0
    fi
fi

# ---------------------------------------------------------------- 4b. exact mode
check "exact mode (tests/gpu/exact.sh)" "$LOG/exact.log" \
    env DURE_BUILD="$ROOT/$BUILD" bash tests/gpu/exact.sh

# ---------------------------------------------------------------- 5. CPU vs CUDA
loss_of() { sed -n 's/^train_loss //p' "$WORK/runs/$1/FINISHED" 2>/dev/null; }
if check "run cpu (agreement)" "$LOG/run-cpu.log" job cpu 0 cpu 20; then
    lc=$(loss_of cpu) lg=$(loss_of z0-a)
    rel=$(awk -v a="$lc" -v b="$lg" 'BEGIN { d = a - b; if (d < 0) d = -d; printf "%.4f", d / a }')
    if awk -v r="$rel" 'BEGIN { exit !(r <= 0.05) }'; then
        row "cpu vs cuda loss" PASS "cpu $lc cuda $lg (rel $rel <= 0.05)" 0
    else
        row "cpu vs cuda loss" FAIL "cpu $lc cuda $lg (rel $rel > 0.05)" 0
    fi
fi

# ---------------------------------------------------------------- 6. MFU, 350M model
mfu_job() {
    mpirun -np 1 "$DURE" run jobs/gpu-node8.ini --set data.path="$WORK/data.h5" \
        --set run.dir="$WORK/runs/mfu" --set run.steps=30 --set run.log_every=10 \
        --set run.val_every=0 --set checkpoint.every=0 --set checkpoint.dir="$WORK/ckpt-mfu" \
        --set optim.global_batch=16 --set optim.micro_batch=16 --set parallel.zero_stage=0
}
if check "run 350M (MFU)" "$LOG/run-mfu.log" mfu_job; then
    mfu=$(tail -1 "$WORK/runs/mfu/metrics.jsonl" | sed -n 's/.*"mfu":\([0-9.e+-]*\).*/\1/p')
    pct=$(awk -v m="${mfu:-0}" 'BEGIN { printf "%.1f", 100 * m }')
    ratio=$(awk -v m="${mfu:-0}" 'BEGIN { printf "%.2f", m / 0.40 }')
    line="bench: gpu_mfu_350m: $pct % (target: 40 %, ratio $ratio)"
    echo "$line"
    printf '[{"name":"gpu_mfu_350m","value":%s,"unit":"%%","peer":"target","peer_value":40,"ratio":%s,"gpu":"%s"}]\n' \
        "$pct" "$ratio" "$gpu_name" > bench/results/gpu-mfu.json
    row "MFU 350M model" "$(awk -v m="${mfu:-0}" 'BEGIN { print (m > 0 ? "PASS" : "FAIL") }')" \
        "$pct % of the bf16 peak ($gpu_name; target 40 %)" 0
fi

# ---------------------------------------------------------------- 7. dure tune on NCCL
# NCCL runs one rank per GPU, so a sweep of its algorithms needs two GPUs.
# The model, the verdicts and the tuner file go to bench/results/gpu-tune*.
if [ "$np" -ge 2 ]; then
    if check "tune nccl x$np" "$LOG/tune.log" mpirun -np "$np" "$DURE" tune --backend nccl \
            -o "$WORK/tune" -b 4K -e 64M -f 4 -n 5 -w 2 -R 3 --no-plot &&
       check "tune nccl --verify" "$LOG/tune-verify.log" \
            mpirun -np "$np" "$DURE" tune --verify "$WORK/tune"; then
        cp "$WORK/tune/tune.json" bench/results/gpu-tune.json
        cp "$WORK/tune/verify.json" bench/results/gpu-tune-verify.json
        grep '^verify:' "$LOG/tune-verify.log"
        if [ -e "$WORK/tune/nccl_tuner.conf" ]; then
            cp "$WORK/tune/nccl_tuner.conf" bench/results/gpu-nccl_tuner.conf
        fi
    fi
else
    row "tune nccl" SKIP "one GPU: NCCL's algorithms need 2 ranks, a GPU each" 0
fi

# ---------------------------------------------------------------- summary
total=$(($(date +%s) - t_start))
echo
echo "gpu-check summary: $gpu_name x $np, $(grep -E 'CUDA (runtime|driver)|NCCL' "$LOG/version.txt" | tr -s ' ' | tr '\n' ' ')"
printf '| %-30s | %-6s | %-64s | %5s |\n' check result detail s
printf '| %-30s | %-6s | %-64s | %5s |\n' ------------------------------ ------ \
    ---------------------------------------------------------------- -----
json="{\"gpu\":\"$gpu_name\",\"gpus\":$np,\"seconds\":$total,\"checks\":["
sep=
for r in "${rows[@]}"; do
    IFS='|' read -r name result detail secs <<< "$r"
    printf '| %-30s | %-6s | %-64s | %5s |\n' "$name" "$result" "${detail:0:64}" "$secs"
    detail=${detail//\\/\\\\}
    json+="$sep{\"check\":\"$name\",\"result\":\"$result\",\"detail\":\"${detail//\"/\\\"}\",\"seconds\":$secs}"
    sep=,
done
echo "$json]}" > bench/results/gpu-check.json
echo "gpu-check: $total s in all; logs in $LOG; bench/results/gpu-check.json written"
if [ "$failed" -ne 0 ]; then
    echo "gpu-check: FAILED"
    exit 1
fi
echo "gpu-check: every check passed"
