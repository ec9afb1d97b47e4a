#!/usr/bin/env bash
# tests/mpi/test_run_mixture.sh - dure run on a mixture ([data.NAME]
# sections): it trains and validates, gives the same losses on 1 and 2
# ranks (the order depends on (seed, epoch) alone), resumes exactly from a
# checkpoint; datasets with different channel sets train on the union of
# the channels with a mask (loss falls, 1 and 2 ranks, exact mode, ZeRO 3,
# resume); another sample rate is refused naming the dataset.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/run_helpers.sh"

gen() { "$DURE" data gen --length 400 --channels 4 "$@" > /dev/null || t_fail "dure data gen $*"; }
gen -o "$T_TMP/cnc.h5" --episodes 12 --seed 7
gen -o "$T_TMP/arm.h5" --episodes 30 --seed 8
gen -o "$T_TMP/wide.h5" --episodes 12 --seed 9 --channels 6
gen -o "$T_TMP/slow.h5" --episodes 12 --seed 9 --sample-rate 50
run_job mix
sed -i '/^path = /d' "$T_TMP/mix.ini"
cat >> "$T_TMP/mix.ini" <<INI

[data.cnc]
path = $T_TMP/cnc.h5
weight = 1

[data.arm]
path = $T_TMP/arm.h5
weight = 3
INI
R=$T_TMP/runs
run_mpi 2 mix --set run.dir="$R/np2" --set checkpoint.every=4
t_eq "a mixture of two datasets trains (exit $T_RC)" "$T_RC" 0
[ "$T_RC" -eq 0 ] || printf '%s\n' "$T_OUT" | tail -20
t_grep "each dataset against its naive baseline, in the progress line" \
    'validation loss [0-9.]+ \(naive baseline [0-9.]+\); cnc [0-9.]+/[0-9.]+, arm [0-9.]+/[0-9.]+'
t_grep "each dataset's training loss against its baseline, in the progress line" \
    'loss [0-9.]+; cnc ([0-9.]+/[0-9.]+|-), arm ([0-9.]+/[0-9.]+|-) \|'
t_run "and validates" 0 grep -c '"val_loss"' "$R/np2/metrics.jsonl"
last_val=$(grep '"datasets"' "$R/np2/metrics.jsonl" | tail -1)
t_eq "and in metrics.jsonl, the mixture's loss between its datasets'" "$(printf '%s\n' "$last_val" | /usr/bin/python3 -c '
import json, sys
v = json.loads(sys.stdin.read())
d = v["datasets"]
lo, hi = sorted(d[k]["val_loss"] for k in ("cnc", "arm"))
b = sorted(d[k]["baseline_loss"] for k in ("cnc", "arm"))
print(lo < v["val_loss"] < hi and b[0] < v["baseline_loss"] < b[1])')" True
t_eq "and in metrics.jsonl: every step's loss between its datasets' (both drawn: weight 1:3)" \
    "$(grep '"loss":' "$R/np2/metrics.jsonl" | /usr/bin/python3 -c '
import json, sys
ok = n = 0
for line in sys.stdin:
    v = json.loads(line)
    d = [v["datasets"][k] for k in ("cnc", "arm")]
    if any(x["loss"] is None for x in d):
        continue
    n += 1
    lo, hi = sorted(x["loss"] for x in d)
    ok += lo - 1e-6 <= v["loss"] <= hi + 1e-6 and all(x["baseline_loss"] > 0 for x in d)
print(n > 0 and ok == n)')" True
run_mpi 1 mix --set run.dir="$R/np1"
run_cmp_losses "1 and 2 ranks: the same windows, the same losses" "$R/np1" "$R/np2" 2e-5
run_mpi 2 mix --set run.dir="$R/w1" --set data.arm.weight=1
if [ "$(run_losses "$R/w1" | head -1)" != "$(run_losses "$R/np2" | head -1)" ]; then
    t_ok "the weights change the batches"
else t_fail "weights 1:1 and 1:3 gave the same first loss"; fi

cp -a "$R/np2" "$R/cut"
rm -f "$R/cut/FINISHED" "$R/cut/checkpoints/ckpt-00000008.h5"*
run_mpi 2 mix --set run.dir="$R/cut" --set checkpoint.every=4
t_eq "resume of a mixture (exit $T_RC)" "$T_RC" 0
t_grep "from the step-4 checkpoint" 'resuming run .* at step 4'
run_cmp_losses "exact resume of a mixture: bitwise identical losses" "$R/np2" "$R/cut" 0

# Two plants with different sensor sets (robot joints; spindle sensors):
# 7 channels in all, each window masked to its plant's.
gen -o "$T_TMP/robot.h5" --episodes 16 --seed 5 --profile arm --sample-rate 100
gen -o "$T_TMP/mill.h5" --episodes 16 --seed 6 --profile mill --sample-rate 100 --channels 3
cp "$T_TMP/mix.ini" "$T_TMP/plants.ini"
sed -i '/^\[data\.cnc\]/,$d' "$T_TMP/plants.ini"
cat >> "$T_TMP/plants.ini" <<INI
[data.robot]
path = $T_TMP/robot.h5

[data.mill]
path = $T_TMP/mill.h5
INI
P=(--set run.steps=12 --set checkpoint.every=4)
run_mpi 2 plants --set run.dir="$R/p2" "${P[@]}"
t_eq "plants with different channel sets train (exit $T_RC)" "$T_RC" 0
[ "$T_RC" -eq 0 ] || printf '%s\n' "$T_OUT" | tail -20
t_grep "on the union of their channels, masked" \
    "channel sets differ: 7 channels in all, each window masked to its dataset's \(robot 4, mill 3\)"
t_eq "the loss falls (first 3 steps vs last 3)" "$(run_losses "$R/p2" | awk '
    NR <= 3 { a += $2 } { l[NR] = $2 } END { b = l[NR] + l[NR - 1] + l[NR - 2]; print (b < 0.8 * a) }')" 1
t_grep "each plant against its naive baseline" 'robot [0-9.]+/[0-9.]+, mill [0-9.]+/[0-9.]+'
run_mpi 1 plants --set run.dir="$R/p1" "${P[@]}"
run_cmp_losses "masked: the same losses on 1 and 2 ranks" "$R/p1" "$R/p2" 2e-5
run_mpi 2 plants --set run.dir="$R/p2z3" "${P[@]}" --set parallel.zero_stage=3
run_cmp_losses "masked: ZeRO 3 gives the losses of stage 0" "$R/p2" "$R/p2z3" 2e-5
run_mpi 1 plants --set run.dir="$R/x1" "${P[@]}" --set run.exact=true --set parallel.zero_stage=2
run_mpi 2 plants --set run.dir="$R/x2" "${P[@]}" --set run.exact=true --set parallel.zero_stage=2
t_run "masked, exact mode: dure verify of 1 against 2 ranks exits 0" 0 "$DURE" verify "$R/x1" "$R/x2"
t_grep "masked, exact mode: losses and checkpoints bitwise identical" '^verdict: IDENTICAL'
cp -a "$R/p2" "$R/pcut"
rm -f "$R/pcut/FINISHED" "$R/pcut/checkpoints/ckpt-00000012.h5"* "$R/pcut/checkpoints/ckpt-00000008.h5"*
run_mpi 2 plants --set run.dir="$R/pcut" "${P[@]}"
t_grep "masked: resumed from the step-4 checkpoint" 'resuming run .* at step 4'
run_cmp_losses "masked: exact resume, bitwise identical losses" "$R/p2" "$R/pcut" 0
run_mpi 2 mix --set run.dir="$R/slow" --set data.arm.path="$T_TMP/slow.h5"
t_eq "a dataset at another sample rate is refused (exit $T_RC)" "$T_RC" 4
t_grep "naming both rates and where the run's comes from" "slow.h5' \(dataset 'arm'\) is sampled at 50 Hz but the run's rate is 100 Hz \(that of dataset 'cnc'\): dure does not resample"
t_done
