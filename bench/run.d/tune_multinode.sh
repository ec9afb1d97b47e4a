#!/usr/bin/env bash
# bench/run.d/tune_multinode.sh BUILD - dure tune and tune --verify across
# 2 namespaced nodes x 1 rank (bench/lib/cluster.sh: 1 CPU a node, Open
# MPI's settings of the site profile tcp), with the fabric limited to
# 1 Gbit/s and unlimited: the sweep's worst fit error against the 15%
# tolerance, and the emitted Open MPI rules against Open MPI's defaults,
# interleaved in one --verify run (targets: >= 1.0x at every size where the
# emitted setting differs, >= 1.2x where the rules changed the choice; the
# sizes where the emitted setting is the default's own give the run's noise
# floor). Names mn_tune_FABRIC_... (bench/lib/tune_lines.py), JSON in
# bench/results/tune_multinode.json, each fabric's model (tune.json) in
# bench/results/tune_multinode_model_FABRIC.json. Sizes 1 KiB to 1 MiB by
# the cube root of 2 (31 sizes): a piece of the model needs three sizes, and
# by 2 the regimes here held one or two: Open MPI's fixed decision for a
# 2-rank all-reduce switches algorithm at 4, 8 and 16 KiB (measured 50, 33
# and 110 us at 1 Gbit/s), and at 1 Gbit/s the 4-8 KiB operations fit in
# tbf's burst (4 and 8 KiB took alike, 16 KiB 2.5x as long). From 4 KiB,
# the broadcasts' step from 4 to 5 KiB (13-17 us, then 24-28 us) left the
# first size a regime of its own. At 1 Gbit/s a 1 MiB operation takes some
# 9 ms, and every Open MPI algorithm of the four collectives is timed:
# 4 MiB would triple the time.
# Then, per fabric, `--ring-segments 256,1024,2048` on dure's algorithms from
# 1 to 16 MiB by the square root of 2 (9 sizes), where the ring's segment
# matters (collectives/README.md); by 4 (3 sizes, one piece) the line
# missed by 15-21% on both fabrics, by the square root of 2 it fitted
# within 13% (each once, 2026-12-07), in twice the time:
# which segment the probe picks (mn_tune_seg_FABRIC_ring_segment_SEG) and
# --verify of the emitted table and segment against the defaults (the
# three collectives of the gradient exchange: dure's table is chosen from
# their sum). 2048 differs from 1024 only where a piece's half is 1 MiB or
# more, which the ring sends uncut (COMM_RING_SEG_UNCUT): multinode.sh runs
# the unlimited fabric in it.
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=bench/lib/load.sh
. "$ROOT/bench/lib/load.sh"
DURE=${DURE:-$ROOT/$BUILD/dure}
FABRICS=${DURE_BENCH_FABRICS:-1gbit none}
# shellcheck source=bench/lib/cluster.sh
. "$ROOT/bench/lib/cluster.sh"
[ "$(id -u)" -eq 0 ] || { echo "tune_multinode.sh: the namespaced cluster needs root: skipped"; exit 0; }
mkdir -p bench/results
TMP=$(mktemp -d /tmp/dure-bench-mn-tune.XXXXXX)
# The cluster goes down whatever happens, then its directory.
trap 'bash "$CLUSTER" down "$TMP/cluster" > /dev/null 2>&1; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM HUP

load_before
mn_up "$TMP/cluster" || exit 1
args=()
for fabric in $FABRICS; do
    tag=$fabric min_rep=100
    [ "$fabric" = none ] && tag=unlimited
    # Under a rate limit, repetitions of 2 ms after a warm-up as long: tbf
    # lets a 128 KB burst through at the veth's speed, which 100 us of 4-8 KiB
    # operations never use up (recursive doubling at 6500 B, 1.4x in the
    # recheck, then measured 1.02-1.10x in --verify of two runs in three).
    [ "$fabric" = none ] || min_rep=2000
    bash "$CLUSTER" fabric "$TMP/cluster" "$fabric" > /dev/null || exit 1
    start=$(date +%s)
    timeout 900 srun --mpi=pmix -N2 -n2 --chdir="$TMP" "$DURE" tune -o "$TMP/$tag" -b 1K -e 1M \
        -f 1.25992105 -n 2 -w 1 -R 5 --min-rep-us "$min_rep" --no-plot > "$TMP/$tag.log" 2>&1 || { cat "$TMP/$tag.log"; exit 1; }
    grep -E '^(# worst fit|dure tune:)' "$TMP/$tag.log"
    timeout 900 srun --mpi=pmix -N2 -n2 --chdir="$TMP" "$DURE" tune --verify "$TMP/$tag" -R 7 \
        > "$TMP/$tag.verify.log" 2>&1 || { cat "$TMP/$tag.verify.log"; exit 1; }
    grep -E '^verify:' "$TMP/$tag.verify.log"
    echo "# $tag: tune and verify took $(( $(date +%s) - start )) s"
    cp "$TMP/$tag/tune.json" "bench/results/tune_multinode_model_$tag.json"
    args+=("mn_tune_$tag" "$TMP/$tag/tune.json" "$TMP/$tag/verify.json")
    seg=$TMP/seg_$tag
    timeout 900 srun --mpi=pmix -N2 -n2 --chdir="$TMP" "$DURE" tune -o "$seg" -b 1M -e 16M \
        -f 1.41421356 -n 2 -w 1 -R 5 --min-rep-us "$min_rep" --families dure \
        --collectives allreduce,reducescatter,allgather \
        --ring-segments 256,1024,2048 --no-plot > "$seg.log" 2>&1 || { cat "$seg.log"; exit 1; }
    grep -E '^(# ring segments|dure tune: algorithm)' "$seg.log"
    timeout 900 srun --mpi=pmix -N2 -n2 --chdir="$TMP" "$DURE" tune --verify "$seg" -R 7 \
        > "$seg.verify.log" 2>&1 || { cat "$seg.verify.log"; exit 1; }
    grep -E '^verify:' "$seg.verify.log"
    args+=("mn_tune_seg_$tag" "$seg/tune.json" "$seg/verify.json")
done
/usr/bin/python3 bench/lib/tune_lines.py bench/results/tune_multinode.json "${args[@]}" || exit 1
load_after
