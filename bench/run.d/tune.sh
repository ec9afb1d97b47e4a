#!/usr/bin/env bash
# bench/run.d/tune.sh BUILD - dure tune on 2 ranks: the sweep's worst fit
# error against the 15% tolerance, and --verify: the emitted Open MPI rules
# and dure table against the defaults, interleaved in one run (targets: Open
# MPI >= 1.0x at every size where the emitted setting differs from the
# default, >= 1.2x where the rules changed the choice; sizes where it is the
# default's own are A/A measurements: their lowest and highest speed-up are
# the run's noise floor). Prints `bench:` lines; JSON to bench/results/; the
# tuning files go to a temporary directory, removed at the end.
# Sizes: 128 B to 16 MiB by the cube root of 2 (52 sizes, the powers of
# two among them: dure tune rounds min * f^k to the nearest byte): a piece
# of the model needs three sizes (tune/README.md), so every regime needs
# three: Open MPI's shared-memory fast path below 512 B, its eager sizes
# below 4 KiB and those from 4 to 8 KiB, and the cache knees at 1-8 MiB,
# where sizes x2 apart miss any line, and sqrt(2) apart one regime in two.
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
dir=$(mktemp -d /tmp/dure-bench-tune.XXXXXX)
trap 'rm -rf "$dir"' EXIT
load_before
start=$(date +%s)
mpirun -np 2 "$DURE" tune -o "$dir/out" -b 128 -e 16M -f 1.25992105 -n 5 -w 2 -R 5 > "$dir/tune.log" || {
    cat "$dir/tune.log"; exit 1; }
grep -E '^(bench:|# worst fit|dure tune:)' "$dir/tune.log"
mpirun -np 2 "$DURE" tune --verify "$dir/out" -R 7 > "$dir/verify.log" || {
    cat "$dir/verify.log"; exit 1; }
grep -E '^verify:' "$dir/verify.log"
cp "$dir/out/tune.json" bench/results/tune_model.json
cp "$dir/out/verify.json" bench/results/tune_verify.json
/usr/bin/python3 bench/lib/tune_lines.py bench/results/tune.json tune "$dir/out/tune.json" \
    "$dir/out/verify.json" || exit 1
echo "# tune and verify took $(( $(date +%s) - start )) s"
load_after
