#!/usr/bin/env bash
# bench/run.d/tune.sh BUILD - dure tune on 2 ranks: the sweep's worst fit
# error against the 15% tolerance, and --verify: the emitted Open MPI rules
# and dure table against the defaults, interleaved in one run (targets: Open
# MPI >= 1.0x at every size, >= 1.2x where the rules changed the choice).
# Prints `bench:` lines; JSON to bench/results/; the tuning files go to a
# temporary directory, removed at the end.
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
mpirun -np 2 "$DURE" tune -o "$dir/out" -b 4K -e 16M -f 4 -n 5 -w 2 -R 5 > "$dir/tune.log" || {
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
rows = json.load(open(sys.argv[2]))["rows"]
lines = []
worst = max(s["fit"]["worst_error"] for s in model["series"])
tol = model["sweep"]["tolerance"]
lines.append(("tune_fit_worst_error", 100 * worst, "%", "tolerance", 100 * tol, "%"))
for fam in ("dure", "ompi"):
    r = [x for x in rows if x["family"] == fam]
    if not r:
        continue
    lo = min(x["speedup"] for x in r)
    lines.append(("tune_verify_%s_lowest_speedup" % fam, lo, "x", "defaults", 1.0, "x"))
    ch = [x for x in r if x["changed"]]
    if ch:
        lines.append(("tune_verify_%s_changed_lowest_speedup" % fam,
                      min(x["speedup"] for x in ch), "x", "target", 1.2, "x"))
        for x in ch:
            lines.append(("tune_verify_%s_%s_%d" % (fam, x["collective"], x["bytes"]),
                          x["speedup"], "x", "default " + x["default"], 1.0, "x"))
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
