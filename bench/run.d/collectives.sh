#!/usr/bin/env bash
# bench/run.d/collectives.sh BUILD - dure's all-reduce against MPI_Allreduce
# and a single-core memcpy, measured interleaved in one run on 2 ranks
# (`dure bench allreduce --compare`, 4K..256M), and the bucket_mb sweep
# (build/bench/coll_bucket). Prints `bench:` lines; JSON to bench/results/.
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=bench/lib/load.sh
. "$ROOT/bench/lib/load.sh"
DURE=${DURE:-$ROOT/$BUILD/dure}
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
mkdir -p bench/results
raw=bench/results/collectives_allreduce.json
load_before
mpirun -np 2 "$DURE" bench allreduce --compare -b 4K -e 256M -f 2 -n 5 -R 15 -w 3 \
    --json "$raw" || exit 1
/usr/bin/python3 - "$raw" bench/results/collectives.json <<'PY' || exit 1
import json, sys
d = json.load(open(sys.argv[1]))
def size_name(b):
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if b >= 1 << shift and b % (1 << shift) == 0:
            return "%d%s" % (b >> shift, unit)
    return str(b)
lines = []
for r in d["results"]:
    s = size_name(r["size"])
    dure, mpi = r["dure"]["busbw_gbs"], r["mpi_native"]["busbw_gbs"]
    lines.append(("allreduce_busbw_%s" % s, dure, "MPI_Allreduce", mpi))
    if r["size"] >= 1 << 20:
        lines.append(("allreduce_busbw_vs_memcpy_%s" % s, dure, "memcpy 1 core", r["memcpy_gbs"]))
out = []
for name, v, peer, pv in lines:
    ratio = v / pv if pv > 0 else 0.0
    print("bench: %s: %.2f GB/s (%s: %.2f GB/s, ratio %.2f)" % (name, v, peer, pv, ratio))
    out.append({"name": name, "value": round(v, 4), "unit": "GB/s", "peer": peer,
                "peer_value": round(pv, 4), "ratio": round(ratio, 4)})
json.dump(out, open(sys.argv[2], "w"), indent=1)
PY
mpirun -np 2 "$ROOT/$BUILD/bench/coll_bucket" bench/results/collectives_bucket.json || exit 1
load_after
