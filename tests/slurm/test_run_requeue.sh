#!/usr/bin/env bash
# tests/slurm/test_run_requeue.sh - the real `dure run` under Slurm:
#   1. dure submit the demo spec (2 ranks, deterministic) and wait for it
#      to finish; print the time from `dure submit` to the first training
#      step in metrics.jsonl;
#   2. the same run again, signalled with scancel --signal=USR2 half way:
#      it checkpoints, exits 75, the batch script requeues it, it resumes
#      from the checkpoint and finishes with the same final loss, bit for
#      bit, as the uninterrupted run.
# Skips (77) while this dure has no `dure run` or `dure data gen`.
# shellcheck source=tests/slurm/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/slurm/submit_lib.sh
. "$(dirname "$0")/submit_lib.sh"
"$DURE" help run >/dev/null 2>&1 || t_skip "dure run is not in this build yet: the requeue test needs it (launcher/cmd_run.c)"
"$DURE" help data >/dev/null 2>&1 || t_skip "dure data gen is not in this build yet: the requeue test needs a dataset"
cd "$T_TMP" || exit 1

STEPS=40
t_run "generate a small factory dataset" 0 "$DURE" data gen -o "$T_TMP/factory.h5" \
    --episodes 32 --length 1024 --channels 4 --val-fraction 0.2 --seed 7
sets=(--set "data.path=$T_TMP/factory.h5" --set "run.steps=$STEPS" --set run.deterministic=true
      --set run.log_every=1 --set run.val_every=0 --set checkpoint.every=5)

# metrics_steps DIR: the step numbers of DIR/metrics.jsonl's training lines.
metrics_steps() { sed -n 's/^{"step":\([0-9]*\),"loss".*/\1/p' "$1/metrics.jsonl" 2>/dev/null; }
# last_loss DIR: the loss of the last training line, as written.
last_loss() { grep '"loss"' "$1/metrics.jsonl" | tail -n 1 | sed -n 's/.*"loss":\([^,}]*\).*/\1/p'; }
# shellcheck disable=SC2317  # called through wait_for
has_steps() { [ "$(metrics_steps "$1" | wc -l)" -ge "$2" ]; }

# 1. Uninterrupted, and the time to the first step.
t0=$(date +%s.%N)
t_run "dure submit the demo spec" 0 "$DURE" submit "${sets[@]}" --set run.name=plain "$T_ROOT/jobs/demo-cpu.ini"
job=$(first_job_id)
wait_for 60 has_steps runs/plain 1 && t1=$(date +%s.%N)
if wait_for 240 test -e runs/plain/FINISHED; then t_ok "the run finished"
else t_fail "runs/plain has no FINISHED"; tail -20 runs/plain/*.out; fi
echo "# submit to first training step (real dure run, 2 ranks, this loaded 2-core machine): $(awk -v a="$t0" -v b="${t1:-$t0}" 'BEGIN { printf "%.2f", b - a }') s (issue target: 5 s)"
wait_for 20 job_ended "$job" || t_fail "job $job has no completion record"
t_eq "it completed with exit 0" "$(jobcomp_last "$job" ExitCode)" "0:0"
t_eq "it logged every step" "$(metrics_steps runs/plain | tail -n 1)" $STEPS
t_run "dure status" 0 "$DURE" status runs/plain
t_grep "says finished at step $STEPS" "^progress +step $STEPS of $STEPS"

# 2. Preempted half way, requeued, resumed.
t_run "dure submit the same run again" 0 "$DURE" submit "${sets[@]}" --set run.name=pre "$T_ROOT/jobs/demo-cpu.ini"
job=$(first_job_id)
wait_for 120 has_steps runs/pre $((STEPS / 2)) || t_fail "runs/pre never reached step $((STEPS / 2))"
t_run "scancel --signal=USR2" 0 scancel --signal=USR2 "$job"
if wait_for 240 test -e runs/pre/FINISHED; then t_ok "the preempted run finished"
else t_fail "runs/pre has no FINISHED"; tail -30 runs/pre/*.out; fi
T_OUT=$(cat runs/pre/*_"$job".out)
t_grep "dure run stopped with a checkpoint and the job requeued itself" \
    "^dure-batch: checkpoint saved; requeueing job $job \(restart 1 of 3\)"
t_grep "the requeued job started again" "^dure-batch: job $job on .*: restart 1 "
t_eq "the final loss equals the uninterrupted run's, bit for bit" \
    "$(last_loss runs/pre)" "$(last_loss runs/plain)"
t_eq "FINISHED reports the same losses" \
    "$(grep -v '^finished ' runs/pre/FINISHED)" "$(grep -v '^finished ' runs/plain/FINISHED)"
t_run "dure status" 0 "$DURE" status runs/pre
t_grep "says finished" '^state +finished$'

t_done
