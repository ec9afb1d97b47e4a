#!/usr/bin/env bash
# bench/run.d/run.sh BUILD - dure run's data-parallel step on this machine's
# CPU, one thread per rank, everything measured in this one run:
#   run_weak_scaling   throughput of 2 ranks against twice that of 1 rank with
#                      the same work per rank (target: ratio >= 0.85); the
#                      same with overlap off is printed beside it
#   run_comm_exposed   communication not hidden behind backward, per step,
#                      overlap on, against the step time (target <= 0.15); the
#                      same with overlap off is printed beside it
#   run_loader_wait    time blocked on the loader against the step time
#                      (target <= 0.02)
#   run_exact_step     exact mode's step time (run.exact) against the
#                      default mode's, 2 ranks (target <= 1.15)
#   run_exact_comm     the bytes a rank sends per step for the gradients in
#                      exact mode against the default mode's (from the
#                      setup report: train/exact.h counts them)
# Medians over the steps after warm-up. Lines "bench: NAME: VALUE UNIT (PEER:
# VALUE UNIT, ratio R)"; the same figures in bench/results/NAME.json.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DURE=$ROOT/$BUILD/dure
RESULTS=$ROOT/bench/results
STEPS=${DURE_BENCH_RUN_STEPS:-40}
REPS=${DURE_BENCH_RUN_REPS:-3}
WARM=10
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
TMP=$(mktemp -d /tmp/dure-bench-run.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
# shellcheck source=bench/lib/load.sh
. "$ROOT/bench/lib/load.sh"
load_before
mkdir -p "$RESULTS"

"$DURE" data gen -o "$TMP/data.h5" --episodes 64 --length 2048 --channels 8 --seed 3 \
    > "$TMP/gen.log" 2>&1 || { cat "$TMP/gen.log"; exit 1; }

# bench/job-demo.ini with fixed per-rank work (micro_batch 8, 2
# micro-batches per step); the global batch grows with the ranks: weak
# scaling. The model's 3.3 MB of gradients go in 1 MiB buckets (7 buckets),
# so that backward has something to overlap: with the 4 MiB default all but
# block 0's attention and the embeddings (2.9 MB) would be one bucket, which
# can only start when block 0's MLP backward is over.
bench_run() { # NAME NP GLOBAL_BATCH [--set ...]
    local name=$1 np=$2 gb=$3; shift 3
    mpirun -np "$np" --bind-to core "$DURE" run "$ROOT/bench/job-demo.ini" \
        --set data.path="$TMP/data.h5" --set run.steps="$STEPS" --set optim.micro_batch=8 \
        --set parallel.bucket_mb=1 --set run.dir="$TMP/$name" \
        --set optim.global_batch="$gb" "$@" > "$TMP/$name.log" 2>&1 ||
        { tail -30 "$TMP/$name.log"; exit 1; }
}
# Interleaved repetitions, so that a change in the machine's load (it is
# shared) hits the 1-rank and 2-rank runs alike.
for rep in $(seq 1 "$REPS"); do
    bench_run "np1.$rep" 1 16
    bench_run "np2.$rep" 2 32
    bench_run "np2_nooverlap.$rep" 2 32 --set parallel.overlap=false
    bench_run "np2_exact.$rep" 2 32 --set run.exact=true
done

/usr/bin/python3 - "$TMP" "$RESULTS" "$WARM" "$REPS" <<'PY'
import json, re, statistics, sys
tmp, results, warm, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def steps(name):
    """Per repetition, the training lines after warm-up."""
    out = []
    for rep in range(1, reps + 1):
        rows = [json.loads(l) for l in open(f"{tmp}/{name}.{rep}/metrics.jsonl")]
        out.append([r for r in rows if "loss" in r and r["step"] > warm])
    return out

def med(runs, key):
    """Median over repetitions of each repetition's median."""
    return statistics.median(statistics.median(r[key] for r in rows) for rows in runs)

def report(name, value, unit, peer_name, peer, peer_unit, ratio, target):
    print(f"bench: {name}: {value:.4g} {unit} ({peer_name}: {peer:.4g} {peer_unit}, "
          f"ratio {ratio:.3f})")
    with open(f"{results}/{name}.json", "w") as f:
        json.dump({"name": name, "value": value, "unit": unit, "peer": peer_name,
                   "peer_value": peer, "peer_unit": peer_unit, "ratio": ratio,
                   "target": target, "machine_loaded": True}, f, indent=1)
        f.write("\n")

one, two, nov = steps("np1"), steps("np2"), steps("np2_nooverlap")
t1, t2 = med(one, "timesteps_per_s"), med(two, "timesteps_per_s")
report("run_weak_scaling", t2, "timesteps/s", "2 x 1 rank", 2 * t1, "timesteps/s",
       t2 / (2 * t1), ">= 0.85")
tn = med(nov, "timesteps_per_s")
report("run_weak_scaling_no_overlap", tn, "timesteps/s", "2 x 1 rank", 2 * t1, "timesteps/s",
       tn / (2 * t1), "reference")
s2 = med(two, "step_s")
ce = med(two, "comm_exposed_s")
report("run_comm_exposed", 1e3 * ce, "ms/step", "step time", 1e3 * s2, "ms/step", ce / s2,
       "<= 0.15")
sn, cn = med(nov, "step_s"), med(nov, "comm_exposed_s")
report("run_comm_exposed_no_overlap", 1e3 * cn, "ms/step", "step time", 1e3 * sn, "ms/step",
       cn / sn, "reference")
dw = med(two, "data_wait_s")
report("run_loader_wait", 1e3 * dw, "ms/step", "step time", 1e3 * s2, "ms/step", dw / s2,
       "<= 0.02")
se = med(steps("np2_exact"), "step_s")
report("run_exact_step", 1e3 * se, "ms/step", "default mode", 1e3 * s2, "ms/step", se / s2,
       "<= 1.15")
m = re.search(r"gradient exchange (\d+) B per step from this rank \(default mode (\d+) B\)",
              open(f"{tmp}/np2_exact.1.log").read())
if not m:
    sys.exit("bench run: the exact run's setup report names no gradient exchange volume")
ex, df = int(m.group(1)), int(m.group(2))
report("run_exact_comm", ex / 1e6, "MB/step", "default mode", df / 1e6, "MB/step", ex / df,
       "reported")
PY
load_after
