#!/usr/bin/env bash
# bench/run.d/multinode.sh BUILD - dure across nodes, on a 2-node namespaced
# Slurm cluster this script brings up and tears down itself
# (tests/slurm/cluster.sh, 1 CPU per node), with the fabric limited to
# 1 Gbit/s and unlimited; every figure beside its peer measured in the same
# run:
#   mn_p2p_FABRIC                the link: a 2-rank MPI_Bcast of 16 MiB (one
#                                send), the peer of the busbw figures below
#   mn_p2p_exchange_FABRIC       the link used as a ring step uses it: both
#                                ranks send and receive 16 MiB at once (a
#                                2-rank all-gather of 32 MiB), each way's
#                                rate, the better of dure's ring and
#                                MPI_Allgather interleaved; against one way
#   mn_allreduce_2x1_SIZE_FABRIC dure's all-reduce (table: hier) against
#                                MPI_Allreduce, interleaved (`dure bench
#                                --compare`), 4 KiB..16 MiB (target >= 0.95x),
#                                the ring in the fabric's segment (below)
#   mn_allreduce_seg256_2x1_SIZE_FABRIC  the same at 1-16 MiB with the default
#                                256 KiB segment, on a fabric that sets another
#   mn_allreduce_aa_2x1_SIZE_FABRIC  the noise floor of that comparison at
#                                256 KiB and 1 MiB: MPI_Allreduce (dure's algo
#                                native) against itself, same settings
#   mn_allreduce_vs_link_2x1_SIZE_FABRIC  its busbw against the link, >= 1 MiB
#                                (target >= 0.8)
#   mn_allreduce_vs_exchange_2x1_SIZE_FABRIC  the same against the exchange:
#                                a 2-rank all-reduce moves its bytes both
#                                ways at once too (target >= 0.8)
#   mn_hier_vs_ring_2x2_SIZE_FABRIC  2 nodes x 2 ranks: algo hier against the
#                                flat ring, 4-16 MiB (target >= 1.3x)
#   mn_weak_scaling_FABRIC       `dure run` 2 nodes x 1 rank against twice
#                                1 node x 1 rank, overlap on (target >= 0.8)
#   mn_weak_scaling_concurrent_FABRIC  the same against two 1-node jobs run
#                                at once, one on each node: the baseline of
#                                both nodes, busy together as in the 2-node
#                                job (the 1-node job alone runs on the first
#                                node beside an idle core). Measured alike:
#                                in nine runs the two baselines differed by
#                                -7% to +9%, while the two nodes' cores ran
#                                the same job up to 17% apart
#   mn_comm_exposed_FABRIC       its exposed communication against the step
#   mn_comm_thread_cpu_FABRIC    the CPU time its communication thread took
#                                a step (metrics' comm_thread_cpu_s), beside
#                                how much longer the step's compute took than
#                                on one node (step less exposed communication,
#                                optimizer and loader wait): the 1-CPU nodes
#                                run both on one core
# The ring's segment per fabric (DURE_RING_SEGMENT_KIB for every run on
# it, as a site sets it for its fabric: collectives/README.md): 256 KiB at
# 1 Gbit/s, where 1 MiB halved the rate; 2 MiB unlimited, where the nodes'
# CPUs carry both directions and 256 KiB fell to 0.7-0.9x MPI_Allreduce
# (1 MiB until 2026-12-07: 2 MiB sends each half of a 4 MiB all-reduce in
# one message, about 6% faster there, and measured alike elsewhere).
# Lines "bench: NAME: VALUE UNIT (PEER: VALUE UNIT, ratio R)"; JSON in
# bench/results/multinode.json. The cluster and Open MPI's settings (the
# site profile tcp): bench/lib/cluster.sh.
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=bench/lib/load.sh
. "$ROOT/bench/lib/load.sh"
DURE=${DURE:-$ROOT/$BUILD/dure}
# shellcheck source=bench/lib/cluster.sh
. "$ROOT/bench/lib/cluster.sh"
FABRICS=${DURE_BENCH_FABRICS:-1gbit none}
SEGMENTS=${DURE_BENCH_MN_SEGMENTS:-1gbit:256 none:2048}
STEPS=${DURE_BENCH_MN_STEPS:-30}
WARM=10
[ "$(id -u)" -eq 0 ] || { echo "multinode.sh: the namespaced cluster needs root: skipped"; exit 0; }
mkdir -p bench/results
TMP=$(mktemp -d /tmp/dure-bench-mn.XXXXXX)
# The cluster goes down whatever happens, then its directory.
trap 'bash "$CLUSTER" down "$TMP/cluster" > /dev/null 2>&1; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM HUP

load_before
mn_up "$TMP/cluster" || exit 1
read -r -a nodes <<< "$DURE_SLURM_NODES"
"$DURE" data gen -o "$TMP/data.h5" --episodes 64 --length 2048 --channels 8 --seed 3 \
    > "$TMP/gen.log" 2>&1 || { cat "$TMP/gen.log"; exit 1; }
# bench/job-demo.ini with fixed work per rank: one micro-batch of 64
# windows per step, so that the whole backward pass can hide the exchange
# (accumulation would leave only the last micro-batch's backward to hide it
# behind), in 0.5 MiB buckets (the last one is exposed).

bench() { # NAME SRUN_ARGS -- DURE_BENCH_ARGS
    local name=$1; shift
    local srun_args=()
    while [ "$1" != -- ]; do srun_args+=("$1"); shift; done
    shift
    timeout 600 srun --mpi=pmix "${srun_args[@]}" "$DURE" bench "$@" --json "$TMP/$name.json" \
        > "$TMP/$name.log" 2>&1 || { cat "$TMP/$name.log"; exit 1; }
    grep -v '^#  ' "$TMP/$name.log" | grep '^#' | head -3
}
run_job() { # NAME NODES GLOBAL_BATCH [NODE]
    timeout 600 srun --mpi=pmix -N "$2" -n "$2" ${4:+-w "$4"} "$DURE" run "$ROOT/bench/job-demo.ini" \
        --set data.path="$TMP/data.h5" --set run.steps="$STEPS" --set optim.micro_batch=64 \
        --set parallel.bucket_mb=0.5 --set run.dir="$TMP/$1" \
        --set optim.global_batch="$3" > "$TMP/$1.log" 2>&1 ||
        { tail -30 "$TMP/$1.log"; exit 1; }
}

for fabric in $FABRICS; do
    bash "$CLUSTER" fabric "$TMP/cluster" "$fabric" > /dev/null || exit 1
    seg=256
    for s in $SEGMENTS; do [ "${s%%:*}" = "$fabric" ] && seg=${s#*:}; done
    export DURE_RING_SEGMENT_KIB=$seg
    echo "# fabric $fabric: the ring in $seg KiB segments"
    bench "p2p_$fabric" -N2 -n2 -- broadcast --algo native -b 16M -e 16M -n 3 -w 1 -R 5
    bench "exch_$fabric" -N2 -n2 -- allgather --compare --algo ring -b 32M -e 32M -n 6 -w 1 -R 5
    # 20 operations per repetition below 1 MiB: tbf lets a 128 KB burst
    # through at the veth's speed, so 4 operations of 16-64 KiB timed only
    # how full the bucket was when each variant's turn came (0.61-1.06x MPI
    # at 16 KiB for the same code in one session).
    bench "ar2x1_small_$fabric" -N2 -n2 -- allreduce --compare -b 4K -e 256K -f 4 -n 20 -w 5 -R 5
    bench "ar2x1_$fabric" -N2 -n2 -- allreduce --compare -b 1M -e 16M -f 4 -n 4 -w 2 -R 5
    if [ "$seg" != 256 ]; then
        DURE_RING_SEGMENT_KIB=256 bench "seg256_$fabric" -N2 -n2 -- allreduce --compare \
            -b 1M -e 16M -f 4 -n 4 -w 2 -R 5
    fi
    # The same two measurements of MPI_Allreduce against itself: how far
    # apart two identical variants land in one run.
    bench "aa_small_$fabric" -N2 -n2 -- allreduce --compare --algo native -b 256K -e 256K \
        -n 20 -w 5 -R 5
    bench "aa_$fabric" -N2 -n2 -- allreduce --compare --algo native -b 1M -e 1M -n 4 -w 2 -R 5
    # Interleaved repetitions of the two algorithms, so load changes hit both.
    for rep in 1 2 3; do
        for algo in hier ring; do
            bench "ar2x2_${algo}_${fabric}_$rep" -N2 -n4 --overcommit -- allreduce --algo "$algo" \
                -b 4M -e 16M -f 2 -n 3 -w 1 -R 3
        done
    done
    for rep in 1 2 3; do
        run_job "one_${fabric}_$rep" 1 64
        run_job "conc1_${fabric}_$rep" 1 64 "${nodes[0]}" & p1=$!
        run_job "conc2_${fabric}_$rep" 1 64 "${nodes[1]}" & p2=$!
        wait "$p1"; r1=$?
        wait "$p2"; r2=$?
        [ "$r1" -eq 0 ] && [ "$r2" -eq 0 ] || exit 1
        run_job "two_${fabric}_$rep" 2 128
    done
done

/usr/bin/python3 - "$TMP" bench/results/multinode.json "$WARM" "$FABRICS" <<'PY' || exit 1
import json, os, statistics, sys
tmp, out, warm, fabrics = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split()
res = []

def size_name(b):
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if b >= 1 << shift and b % (1 << shift) == 0:
            return "%d%s" % (b >> shift, unit)
    return str(b)

def report(name, v, unit, peer, pv, target):
    ratio = v / pv if pv > 0 else 0.0
    print("bench: %s: %.4g %s (%s: %.4g %s, ratio %.3f)" % (name, v, unit, peer, pv, unit, ratio))
    res.append({"name": name, "value": round(v, 6), "unit": unit, "peer": peer,
                "peer_value": round(pv, 6), "ratio": round(ratio, 4), "target": target})

def load(name):
    return json.load(open("%s/%s.json" % (tmp, name)))

def steps(name):
    rows = [json.loads(l) for l in open("%s/%s/metrics.jsonl" % (tmp, name))]
    return [r for r in rows if "loss" in r and r["step"] > warm]

def med(names, key):
    return statistics.median(statistics.median(r[key] for r in steps(n)) for n in names)

for f in fabrics:
    tag = "1gbit" if f == "1gbit" else "unlimited" if f == "none" else f
    link = load("p2p_" + f)["results"][0]["in_place"]["algbw_gbs"]
    report("mn_p2p_" + tag, link, "GB/s", "nominal 1 Gbit/s" if f == "1gbit" else "itself",
           0.125 if f == "1gbit" else link, "measured")
    x = load("exch_" + f)["results"][0]
    exch = max(x["dure"]["busbw_gbs"], x["mpi_native"]["busbw_gbs"])
    report("mn_p2p_exchange_" + tag, exch, "GB/s", "link one way", link, "measured")
    for r in load("ar2x1_small_" + f)["results"] + load("ar2x1_" + f)["results"]:
        s = size_name(r["size"])
        d, m = r["dure"]["busbw_gbs"], r["mpi_native"]["busbw_gbs"]
        report("mn_allreduce_2x1_%s_%s" % (s, tag), d, "GB/s", "MPI_Allreduce", m, ">= 0.95")
        if r["size"] >= 1 << 20:
            report("mn_allreduce_vs_link_2x1_%s_%s" % (s, tag), d, "GB/s",
                   "link p2p", link, ">= 0.8")
            report("mn_allreduce_vs_exchange_2x1_%s_%s" % (s, tag), d, "GB/s",
                   "link exchange", exch, ">= 0.8")
    if os.path.exists("%s/seg256_%s.json" % (tmp, f)):
        for r in load("seg256_" + f)["results"]:
            report("mn_allreduce_seg256_2x1_%s_%s" % (size_name(r["size"]), tag),
                   r["dure"]["busbw_gbs"], "GB/s", "MPI_Allreduce",
                   r["mpi_native"]["busbw_gbs"], "reported")
    for r in load("aa_small_" + f)["results"] + load("aa_" + f)["results"]:
        report("mn_allreduce_aa_2x1_%s_%s" % (size_name(r["size"]), tag),
               r["dure"]["busbw_gbs"], "GB/s", "MPI_Allreduce", r["mpi_native"]["busbw_gbs"],
               "noise floor")
    by = {}
    for algo in ("hier", "ring"):
        for rep in (1, 2, 3):
            for r in load("ar2x2_%s_%s_%d" % (algo, f, rep))["results"]:
                by.setdefault((algo, r["size"]), []).append(
                    0.5 * (r["out_of_place"]["busbw_gbs"] + r["in_place"]["busbw_gbs"]))
    for size in sorted({k[1] for k in by}):
        h, g = statistics.median(by[("hier", size)]), statistics.median(by[("ring", size)])
        report("mn_hier_vs_ring_2x2_%s_%s" % (size_name(size), tag), h, "GB/s",
               "flat ring", g, ">= 1.3")
    one = ["one_%s_%d" % (f, k) for k in (1, 2, 3)]
    two = ["two_%s_%d" % (f, k) for k in (1, 2, 3)]
    t1, t2 = med(one, "timesteps_per_s"), med(two, "timesteps_per_s")
    report("mn_weak_scaling_" + tag, t2, "timesteps/s", "2 x 1 node", 2 * t1, ">= 0.8")
    conc = statistics.median(
        sum(statistics.median(r["timesteps_per_s"] for r in steps("conc%d_%s_%d" % (j, f, k)))
            for j in (1, 2)) for k in (1, 2, 3))
    report("mn_weak_scaling_concurrent_" + tag, t2, "timesteps/s", "1 node x 2 at once", conc,
           ">= 0.8")
    ce, st = med(two, "comm_exposed_s"), med(two, "step_s")
    report("mn_comm_exposed_" + tag, 1e3 * ce, "ms/step", "step time", 1e3 * st, "reported")
    def compute(names):
        return med(names, "step_s") - med(names, "comm_exposed_s") - med(names, "optimizer_s") \
            - med(names, "data_wait_s")
    report("mn_comm_thread_cpu_" + tag, 1e3 * med(two, "comm_thread_cpu_s"), "ms/step",
           "compute slower than on one node", 1e3 * (compute(two) - compute(one)), "reported")
json.dump(res, open(out, "w"), indent=1)
PY
load_after
