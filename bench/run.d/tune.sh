#!/usr/bin/env bash
# bench/run.d/tune.sh BUILD - dure tune on 2 ranks: the sweep's worst fit
# error against the 15% tolerance, and --verify: the emitted Open MPI rules
# and dure table against the defaults, interleaved in one run (targets: Open
# MPI >= 1.0x at every size where the emitted setting differs from the
# default, >= 1.2x where the rules changed the choice; sizes where it is the
# default's own are A/A measurements: their lowest and highest speed-up are
# the run's noise floor). Prints `bench:` lines; JSON to bench/results/; the
# tuning files go to a temporary directory, removed at the end.
# Sizes: 128 B to 16 MiB by the cube root of 2 (52 sizes; the factor a
# hair above it and the end at 17M keep the powers of two exact): a piece
# of the model needs three sizes (tune/README.md), so every regime needs
# three: Open MPI's shared-memory fast path below 512 B, its eager sizes
# below 4 KiB and those from 4 to 8 KiB, and the cache knees at 1-8 MiB,
# where sizes x2 apart miss any line, and sqrt(2) apart one regime in two.
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
DURE=${DURE:-$ROOT/$BUILD/dure}
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
mkdir -p bench/results
dir=$(mktemp -d /tmp/dure-bench-tune.XXXXXX)
trap 'rm -rf "$dir"' EXIT
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
start=$(date +%s)
mpirun -np 2 "$DURE" tune -o "$dir/out" -b 128 -e 17M -f 1.25992105 -n 5 -w 2 -R 5 > "$dir/tune.log" || {
    cat "$dir/tune.log"; exit 1; }
grep -E '^(bench:|# worst fit|dure tune:)' "$dir/tune.log"
mpirun -np 2 "$DURE" tune --verify "$dir/out" -R 7 > "$dir/verify.log" || {
    cat "$dir/verify.log"; exit 1; }
grep -E '^verify:' "$dir/verify.log"
cp "$dir/out/tune.json" bench/results/tune_model.json
cp "$dir/out/verify.json" bench/results/tune_verify.json
/usr/bin/python3 - "$dir/out/tune.json" "$dir/out/verify.json" bench/results/tune.json <<'PY' || exit 1
import json, sys
model = json.load(open(sys.argv[1]))
verify = json.load(open(sys.argv[2]))
rows = verify["rows"]
lines = []
worst = max(s["fit"]["worst_error"] for s in model["series"])
tol = model["sweep"]["tolerance"]
lines.append(("tune_fit_worst_error", 100 * worst, "%", "tolerance", 100 * tol, "%"))
for v in verify["verdicts"]:
    fam = v["family"]
    if v["changed"]:
        lo = v["lowest_speedup"]
        lines.append(("tune_verify_%s_lowest_speedup" % fam, lo, "x", "defaults", 1.0, "x"))
        lines.append(("tune_verify_%s_changed_lowest_speedup" % fam, lo, "x", "target", 1.2, "x"))
        for x in rows:
            if x["family"] == fam and x["changed"]:
                lines.append(("tune_verify_%s_%s_%d" % (fam, x["collective"], x["bytes"]),
                              x["speedup"], "x", "default " + x["default"], 1.0, "x"))
    if v["identical"]:
        for end in ("lowest", "highest"):
            lines.append(("tune_verify_%s_noise_floor_%s" % (fam, end), v["noise_floor"][end],
                          "x", "identical", 1.0, "x"))
out = []
for name, v, unit, peer, pv, punit in lines:
    ratio = v / pv if pv else 0.0
    print("bench: %s: %.2f %s (%s: %.2f %s, ratio %.2f)" % (name, v, unit, peer, pv, punit, ratio))
    out.append({"name": name, "value": round(v, 4), "unit": unit, "peer": peer,
                "peer_value": pv, "ratio": round(ratio, 4)})
json.dump(out, open(sys.argv[3], "w"), indent=1)
PY
echo "# tune and verify took $(( $(date +%s) - start )) s"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
