#!/usr/bin/env bash
# bench/run.d/ckpt.sh BUILD - checkpoints, everything measured in one run:
#   ckpt_save, ckpt_load   save and load rates on 2 ranks against dd to the
#                          same directory (conv=fsync for writes, cold reads):
#                          bench/bench_ckpt (target: save >= 0.8x dd)
#   ckpt_stall_*           what a checkpoint costs the training loop of the
#                          demo model (dure run, 2 ranks): the time a step
#                          boundary is held, with checkpoint.async = true
#                          against false, interleaved; and that stall as a
#                          share of the step time at checkpoint.every = 100
#                          (target: <= 1%)
# Writes bench/results/ckpt_*.json. DURE_BENCH_CKPT_MIB (per vector; the
# checkpoint holds 3) and DURE_BENCH_CKPT_REPS size the first part,
# DURE_BENCH_CKPT_DIR picks its file system; DURE_BENCH_STALL_STEPS and
# DURE_BENCH_STALL_REPS the second.
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
DURE=$ROOT/$BUILD/dure
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
mpirun -np 2 "$BUILD/bench/bench_ckpt" \
    --dir "${DURE_BENCH_CKPT_DIR:-$BUILD/bench-ckpt}" \
    --mib "${DURE_BENCH_CKPT_MIB:-128}" --reps "${DURE_BENCH_CKPT_REPS:-5}"

STEPS=${DURE_BENCH_STALL_STEPS:-300}
REPS=${DURE_BENCH_STALL_REPS:-2}
EVERY=25
TMP=$(mktemp -d /tmp/dure-bench-ckpt.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
# shellcheck source=bench/lib/load.sh
. "$ROOT/bench/lib/load.sh"
load_before
"$DURE" data gen -o "$TMP/data.h5" --episodes 64 --length 2048 --channels 8 --seed 3 \
    > "$TMP/gen.log" 2>&1 || { cat "$TMP/gen.log"; exit 1; }
# The demo model (jobs/demo-cpu.ini), a checkpoint every 25 steps so that
# one run gives a dozen stalls; the stall does not depend on the interval
# as long as a save is over before the next starts.
cat > "$TMP/job.ini" <<INI
[run]
name = stall
steps = $STEPS
log_every = 1000
val_every = 0
threads = 1

[model]
d_model = 128
n_layers = 4
n_heads = 4
patch_len = 16
context_patches = 16

[data]
path = $TMP/data.h5

[optim]
lr = 1e-3
global_batch = 32
micro_batch = 8

[checkpoint]
every = $EVERY
keep = 2
INI
for rep in $(seq 1 "$REPS"); do
    for mode in true false; do
        mpirun -np 2 "$DURE" run "$TMP/job.ini" --set run.dir="$TMP/$mode.$rep" \
            --set checkpoint.async="$mode" > "$TMP/$mode.$rep.log" 2>&1 ||
            { tail -30 "$TMP/$mode.$rep.log"; exit 1; }
    done
done
/usr/bin/python3 - "$TMP" "$ROOT/bench/results" "$REPS" "$STEPS" <<'PY'
import json, os, statistics, sys
tmp, results, reps, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
WARM, AFTER = 10, 10

def runs(mode):
    """Per repetition: training lines, and the periodic checkpoints' lines."""
    out = []
    for rep in range(1, reps + 1):
        rows = [json.loads(l) for l in open(f"{tmp}/{mode}.{rep}/metrics.jsonl")]
        train = {r["step"]: r["step_s"] for r in rows if "loss" in r}
        ckpt = [r for r in rows if "ckpt" in r and r["step"] < steps]
        out.append((train, ckpt))
    return out

def figures(mode):
    """Median step time; median stall; median cost (stall plus the extra
    time of the next AFTER steps, which a background save may slow)."""
    step_s, stall, cost = [], [], []
    for train, ckpt in runs(mode):
        base = statistics.median(v for s, v in train.items() if s > WARM)
        step_s.append(base)
        for c in ckpt:
            extra = sum(train[s] - base for s in range(c["step"] + 1, c["step"] + 1 + AFTER)
                        if s in train)
            stall.append(c["ckpt_stall_s"])
            cost.append(c["ckpt_stall_s"] + max(extra, 0.0))
    return statistics.median(step_s), statistics.median(stall), statistics.median(cost)

def report(name, value, unit, peer_name, peer, ratio, target):
    print(f"bench: {name}: {value:.4g} {unit} ({peer_name}: {peer:.4g} {unit}, "
          f"ratio {ratio:.3f})")
    with open(f"{results}/{name}.json", "w") as f:
        json.dump({"name": name, "value": value, "unit": unit, "peer": peer_name,
                   "peer_value": peer, "ratio": ratio, "target": target,
                   "loadavg_1m": os.getloadavg()[0], "ncpu": os.cpu_count()}, f)
        f.write("\n")

sa, stall_a, cost_a = figures("true")
ss, stall_s, cost_s = figures("false")
print(f"checkpoint stall: demo model, 2 ranks, {steps} steps, {reps} runs each; step "
      f"{1e3 * sa:.1f} ms (async runs) / {1e3 * ss:.1f} ms (sync runs); load average "
      f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
report("ckpt_stall_async", 1e3 * stall_a, "ms", "synchronous save", 1e3 * stall_s,
       stall_a / stall_s, "lower than synchronous")
report("ckpt_stall_share_every100", 100 * stall_a / (100 * sa), "% of step time",
       "synchronous save", 100 * stall_s / (100 * ss), (stall_a / sa) / (stall_s / ss),
       "<= 1 %")
report("ckpt_cost_share_every100", 100 * cost_a / (100 * sa), "% of step time",
       "synchronous save", 100 * cost_s / (100 * ss), (cost_a / sa) / (cost_s / ss),
       "reference: stall plus the slowdown of the next 10 steps")
PY
load_after
