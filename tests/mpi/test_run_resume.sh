#!/usr/bin/env bash
# tests/mpi/test_run_resume.sh - dure run's checkpoint wiring: automatic
# resume from the newest valid checkpoint, bitwise-exact resume at the same
# world size, resume on another world size, SIGUSR2 -> checkpoint + exit 75,
# and a finished run that does nothing.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/run_helpers.sh"

run_make_data
run_job base
R=$T_TMP/runs
CK=checkpoints

# The uninterrupted reference: 8 steps on 2 ranks at stage 1, checkpoints
# after steps 4 and 8.
run_mpi 2 base --set run.dir="$R/full" --set parallel.zero_stage=1 --set checkpoint.every=4
t_eq "uninterrupted run (exit $T_RC)" "$T_RC" 0
[ "$T_RC" -eq 0 ] || printf '%s\n' "$T_OUT" | tail -20
if [ -f "$R/full/FINISHED" ]; then t_ok "FINISHED marker written"; else t_fail "no FINISHED marker"; fi
# checkpoint.async (the default): step 4's checkpoint is written by the
# helper thread, the last one at once; both are reported with the stall.
t_grep "step 4 is saved in the background" \
    'checkpoint: step 4 saved to .*ckpt-00000004\.h5 in the background: .*training held [0-9.]+ ms'
t_grep "the last step is saved at once" 'checkpoint: step 8 saved to .*ckpt-00000008\.h5: '
t_eq "metrics.jsonl records both saves and their stalls" \
    "$(grep -o '"step":[48],"ckpt_save_s":[0-9.e+-]*,"ckpt_stall_s":[0-9.e+-]*,"ckpt":"[a-z]*"' \
        "$R/full/metrics.jsonl" | sed 's/"ckpt_[a-z]*_s":[^,]*,//g' | tr '\n' ' ')" \
    '"step":4,"ckpt":"background" "step":8,"ckpt":"inline" '

# A run that died after its step-4 checkpoint: the same directory without
# the step-8 checkpoint and marker (metrics of steps 5..8 left behind too).
cut_run() { # NAME
    cp -a "$R/full" "$R/$1"
    rm -f "$R/$1/FINISHED" "$R/$1/$CK/ckpt-00000008.h5" "$R/$1/$CK/ckpt-00000008.h5.sha256"
}
cut_run same
run_mpi 2 base --set run.dir="$R/same" --set parallel.zero_stage=1 --set checkpoint.every=4
t_eq "resume at the same world size (exit $T_RC)" "$T_RC" 0
t_grep "it resumes from the step-4 checkpoint" 'resume: .*ckpt-00000004\.h5: step 4'
t_grep "it starts at step 4" 'resuming run .* at step 4'
run_cmp_losses "exact resume: bitwise identical losses" "$R/full" "$R/same" 0
t_eq "exact resume: one metrics line per step" "$(run_losses "$R/same" | cut -d' ' -f1 | tr '\n' ' ')" \
    "1 2 3 4 5 6 7 8 "
run_cmp_params "exact resume: bitwise identical final parameters and moments" \
    "$R/full/$CK/ckpt-00000008.h5" "$R/same/$CK/ckpt-00000008.h5"
if [ -f "$R/same/manifest.json" ] && [ -f "$R/same/manifest.launch-1.json" ]; then
    t_ok "the restart wrote its own manifest beside the first launch's"
else t_fail "manifests after a restart: $(ls "$R/same")"; fi
if grep -q '"resumed_from": {' "$R/same/manifest.launch-1.json" &&
   grep -q '"command": "dure run [^"]*base.ini --set run.dir=' "$R/same/manifest.launch-1.json"; then
    t_ok "manifest.launch-1.json: resumed_from and the command line as typed"
else t_fail "manifest.launch-1.json lacks resumed_from or the command as typed"; fi
t_run "dure verify: the resumed run and the uninterrupted one are bitwise identical" 0 \
    "$DURE" verify "$R/full" "$R/same"
t_grep "dure verify says so" 'verdict: IDENTICAL'

t_run "dure ckpt inspect on a run's checkpoint" 0 "$DURE" ckpt inspect "$R/full/$CK/ckpt-00000008.h5"
loss8=$(run_losses "$R/full" | awk '$1 == 8 { print $2 }')
t_grep "the checkpoint records step 8's training loss" "^loss: +${loss8:0:8}"

# The same job run again from scratch in another run directory: identical
# numbers, and the manifests differ only where they must (run.dir).
run_mpi 2 base --set run.dir="$R/again" --set parallel.zero_stage=1 --set checkpoint.every=4
t_eq "a second uninterrupted run elsewhere (exit $T_RC)" "$T_RC" 0
t_run "dure verify: two runs of one job in different directories are identical" 0 \
    "$DURE" verify "$R/full" "$R/again"
t_grep "dure verify ignores the run directory" 'ignored, differ by design: .*jobspec\.run\.dir'

# checkpoint.async = false: the same numbers, every save inline.
run_mpi 2 base --set run.dir="$R/inline" --set parallel.zero_stage=1 --set checkpoint.every=4 \
    --set checkpoint.async=false
t_eq "checkpoint.async = false (exit $T_RC)" "$T_RC" 0
t_grep "step 4 is saved inline" 'checkpoint: step 4 saved to .*ckpt-00000004\.h5: '
run_cmp_params "the inline and the background step-4 checkpoints hold the same state" \
    "$R/full/$CK/ckpt-00000004.h5" "$R/inline/$CK/ckpt-00000004.h5"

# On 1 rank: the shards are re-cut, the data order goes on unchanged.
cut_run one
run_mpi 1 base --set run.dir="$R/one" --set parallel.zero_stage=1 --set checkpoint.every=4
t_eq "resume on 1 rank from a 2-rank checkpoint (exit $T_RC)" "$T_RC" 0
[ "$T_RC" -eq 0 ] || printf '%s\n' "$T_OUT" | tail -20
t_grep "the checkpoint's world size is reported" 'written by 2 rank\(s\)'
run_cmp_losses "resume on 1 rank: same losses within float32 tolerance" "$R/full" "$R/one" 2e-5

# A finished run does nothing.
before=$(md5sum < "$R/full/metrics.jsonl")
run_mpi 2 base --set run.dir="$R/full" --set parallel.zero_stage=1 --set checkpoint.every=4
t_eq "a finished run exits 0 (exit $T_RC)" "$T_RC" 0
t_grep "and says it is complete" 'FINISHED exists.*nothing to do'
t_eq "and leaves its metrics alone" "$(md5sum < "$R/full/metrics.jsonl")" "$before"
run_mpi 2 base --set run.dir="$R/full" --set parallel.zero_stage=1 --set optim.lr=1e-2
t_eq "a finished run started with another spec exits 3 (exit $T_RC)" "$T_RC" 3
t_grep "saying so and how to start a new run" "finished with another job spec \(result hash [0-9a-f]{16}, this one [0-9a-f]{16}: .*\); nothing was run. To start a new run give it its own directory \(--set run.dir=$R/full-2"
t_eq "still without touching it" "$(md5sum < "$R/full/metrics.jsonl")" "$before"

# SIGUSR2 to mpirun (which forwards it to every rank): all ranks stop at
# one step boundary, checkpoint and exit 75; the run then resumes and ends.
run_job sig
mpirun -np 2 "$DURE" run "$T_TMP/sig.ini" --set run.steps=2000 --set run.val_every=0 \
    > "$T_TMP/sig.log" 2>&1 &
pid=$!
wait_steps "$R/sig" 3
kill -USR2 "$pid"
wait "$pid"; rc=$?
T_OUT=$(cat "$T_TMP/sig.log")
t_eq "SIGUSR2: exit 75 (DURE_EXIT_PREEMPTED)" "$rc" 75
t_grep "SIGUSR2: the stop is reported" 'signal 12 received: stopping at step [0-9]+'
last=$(run_losses "$R/sig" | tail -1 | cut -d' ' -f1)
ck=$(sed -n 's/^ckpt-0*\([0-9]*\)\.h5$/\1/p' "$R/sig/$CK/latest")
t_eq "SIGUSR2: the checkpoint is of the last step taken" "$ck" "$last"
if [ -f "$R/sig/FINISHED" ]; then t_fail "SIGUSR2: FINISHED written by a stopped run"
else t_ok "SIGUSR2: no FINISHED marker"; fi
run_mpi 2 sig --set run.steps=2000 --set run.val_every=0 --set run.log_every=500
t_eq "the stopped run resumes and completes (exit $T_RC)" "$T_RC" 0
t_grep "from the signal's checkpoint" "resuming run .* at step $last"
t_eq "every step once in its metrics" "$(run_losses "$R/sig" | cut -d' ' -f1 | uniq | wc -l)" 2000

# SIGTERM to one rank only (Slurm signals every task; any one suffices): all
# ranks agree on the stop through the step's control exchange.
run_job term
mpirun -np 2 "$DURE" run "$T_TMP/term.ini" --set run.steps=1000000 --set run.val_every=0 \
    --set run.log_every=100000 > "$T_TMP/term.log" 2>&1 &
pid=$!
wait_steps "$R/term" 3
victim=$(rank_pid "$pid" 1)
kill -TERM "$victim"
wait "$pid"; rc=$?
T_OUT=$(cat "$T_TMP/term.log")
t_eq "SIGTERM to rank 1: exit 75" "$rc" 75
t_grep "SIGTERM: rank 0 reports the stop it did not receive itself" 'signal 15 received: stopping at step [0-9]+'
t_grep "SIGTERM: the checkpoint is written" 'checkpoint: step [0-9]+ saved'

t_done
