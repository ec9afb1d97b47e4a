#!/usr/bin/env bash
# launcher/demo.sh BUILD [dure run options ...] - the demo that `make demo` runs.
#
#   1. generate three synthetic plants with `dure data gen`, each with its
#      own sensor set: a factory cell (robot-arm joints and torques, CNC
#      spindle vibration, motor current, temperatures), a robot line (the
#      arms of two cells, no spindle) and a machine shop (the spindles of
#      two cells, no arm), all at 100 Hz (dure does not resample);
#   2. train the tiny model of jobs/demo-cpu.ini on their mixture (16
#      channels in all, each window masked to its plant's 8) for a few
#      hundred steps on 2 ranks with mpirun on this machine, showing
#      progress with each plant's loss;
#   3. draw the loss and throughput with `dure plot`, and check that the
#      validation loss ends well below (at most half) the naive baseline that
#      repeats the last patch. Exit 0 when it does.
#
# Everything goes to demo-run/ (DURE_DEMO_DIR overrides); each demo starts a
# fresh run. Extra arguments go to `dure run` (e.g. --set run.steps=100).
set -euo pipefail
BUILD=${1:-build}
shift || true
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURE=$ROOT/$BUILD/dure
JOB=$ROOT/jobs/demo-cpu.ini
OUT=${DURE_DEMO_DIR:-$ROOT/demo-run}
if [ "$(id -u)" -eq 0 ]; then
    # Open MPI refuses root without these; on a cluster you are not root.
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
say() { printf '\n== %s\n' "$*"; }

[ -x "$DURE" ] || { echo "demo: $DURE is not built (run make)" >&2; exit 1; }
[ -f "$JOB" ] || { echo "demo: $JOB is missing" >&2; exit 1; }
mkdir -p "$OUT"
start=$(date +%s)

say "1/3 generating three synthetic plants: $OUT/factory.h5, arm.h5, mill.h5"
"$DURE" data gen -o "$OUT/factory.h5" --episodes 64 --length 4096 --channels 8 \
    --val-fraction 0.2 --seed 1234
"$DURE" data gen -o "$OUT/arm.h5" --profile arm --episodes 48 --length 4096 --channels 8 \
    --sample-rate 100 --val-fraction 0.2 --seed 1235
"$DURE" data gen -o "$OUT/mill.h5" --profile mill --episodes 48 --length 4096 --channels 8 \
    --sample-rate 100 --val-fraction 0.2 --seed 1236

# The demo spec with the three plants as a mixture ([data.NAME] sections
# instead of data.path).
MIX=$OUT/demo-mix.ini
sed '/^path = /d' "$JOB" > "$MIX"
cat >> "$MIX" <<INI

[data.factory]
path = $OUT/factory.h5

[data.arm]
path = $OUT/arm.h5

[data.mill]
path = $OUT/mill.h5
INI

say "2/3 training $JOB on the mixture $MIX, 2 ranks: mpirun -np 2 dure run"
rm -rf "$OUT/run"
mpirun -np 2 "$DURE" run "$MIX" --set run.dir="$OUT/run" "$@"

say "3/3 plotting: $OUT/run/loss.png, $OUT/run/throughput.png"
"$DURE" plot "$OUT/run"

val=$(sed -n 's/^val_loss //p' "$OUT/run/FINISHED")
base=$(sed -n 's/^baseline_loss //p' "$OUT/run/FINISHED")
train=$(sed -n 's/^train_loss //p' "$OUT/run/FINISHED")
verdict=$(awk -v v="$val" -v b="$base" 'BEGIN { if (v == v + 0 && b > 0 && v <= 0.5 * b)
    printf "ok %.3f", v / b; else printf "bad %s", (b > 0 ? v / b : "n/a") }')
printf '\ndemo: final losses: train %.6f | validation %.6f | naive baseline %.6f (%s s)\n' \
    "$train" "$val" "$base" "$(( $(date +%s) - start ))"
if [[ "$verdict" == ok* ]]; then
    echo "demo: the validation loss is ${verdict#ok } x the naive baseline: the model learned"
else
    echo "demo: FAILED: the validation loss is ${verdict#bad } x the naive baseline (want <= 0.5)" >&2
    exit 1
fi
