#!/usr/bin/env bash
# tests/slurm/test_requeue.sh - preemption as the batch script handles it:
# USR2 reaches the ranks (directly, or through the batch shell), they exit 75 (checkpoint saved), the script
# requeues the job (scontrol requeue) while SLURM_RESTART_COUNT is below
# slurm.max_restarts, and the restarted job resumes and finishes. With
# max_restarts = 0 the job ends with exit 75 and dure status says so; a new
# submission resumes it. (`dure run` is stood in for by
# tests/slurm/stand-in-dure.sh; tests/slurm/test_run_requeue.sh does this
# with the real one.)
# shellcheck source=tests/slurm/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/slurm/submit_lib.sh
. "$(dirname "$0")/submit_lib.sh"
cd "$T_TMP" || exit 1

cat > pre.ini <<'INI'
[run]
name = pre
steps = 80
[data]
path = data/demo.h5
[optim]
global_batch = 16
micro_batch = 8
[slurm]
ntasks_per_node = 2
time = 00:05:00
max_restarts = 1
INI
export STAND_IN_STEP_S=0.05

t_run "submit" 0 "$DURE" submit --dure "$STAND_IN" pre.ini
job=$(first_job_id)
wait_for 30 test -s runs/pre/metrics.jsonl || t_fail "the job never started"
t_run "scancel --signal=USR2 the running job" 0 scancel --signal=USR2 "$job"
if wait_for 60 test -e runs/pre/FINISHED; then t_ok "the job finished after a requeue"
else t_fail "no FINISHED after 60 s"; cat runs/pre/*.out; fi
t_eq "it started twice: SLURM_RESTART_COUNT 0, then 1" "$(tr '\n' ' ' < runs/pre/stand-in.log)" "start 0 start 1 "
t_eq "every step ran exactly once across the restart" \
    "$(sed -n 's/^{"step":\([0-9]*\),.*/\1/p' runs/pre/metrics.jsonl | tr '\n' ' ')" "$(seq -s ' ' 1 80) "
T_OUT=$(cat runs/pre/pre_"$job".out)
t_grep "the log says why it requeued" "^dure-batch: checkpoint saved; requeueing job $job \(restart 1 of 1\)"
t_grep "the log of both runs is kept (--open-mode=append)" "restart 1 \(at most 1\)"
t_run "dure status" 0 "$DURE" status runs/pre
t_grep "says finished" '^state +finished$'
t_grep "shows 80 of 80 steps" '^progress +step 80 of 80'

# max_restarts = 0: stopped, not requeued; dure status says so; submit resumes.
# This time USR2 goes to the batch shell only (scancel --batch, as with
# --signal=B:USR2@N), which must pass it on to the ranks.
t_run "submit with max_restarts = 0" 0 "$DURE" submit --dure "$STAND_IN" \
    --set run.name=once --set slurm.max_restarts=0 pre.ini
job=$(first_job_id)
wait_for 30 test -s runs/once/metrics.jsonl || t_fail "the job never started"
t_run "scancel --batch --signal=USR2" 0 scancel --batch --signal=USR2 "$job"
wait_for 30 job_ended "$job" || t_fail "job $job did not end"
T_OUT=$(cat runs/once/*_"$job".out)
t_grep "the batch shell passed USR2 on to the ranks" '^dure-batch: passing SIGUSR2 on to the ranks$'
t_grep "which stopped with a checkpoint" '^stand-in-dure: rank 1 stopped by a signal at step [0-9]+: checkpoint saved$'
t_eq "the job ended with exit 75" "$(jobcomp_last "$job" ExitCode)" "75:0"
t_eq "and was not requeued" "$(tr '\n' ' ' < runs/once/stand-in.log)" "start 0 "
t_run "dure status" 0 "$DURE" status runs/once
t_grep "says stopped with a checkpoint, submit again" \
    "^state +stopped: job $job exit 75 \(stopped by a signal, checkpoint saved\) and not requeued; submit again to resume"
t_run "submit again" 0 "$DURE" submit --dure "$STAND_IN" --set run.name=once --set slurm.max_restarts=0 pre.ini
if wait_for 60 test -e runs/once/FINISHED; then t_ok "the second job resumed and finished"
else t_fail "no FINISHED after 60 s"; cat runs/once/*.out; fi
t_eq "no step ran twice" "$(sed -n 's/^{"step":\([0-9]*\),.*/\1/p' runs/once/metrics.jsonl | sort -n | uniq -d)" ""
t_eq "two job ids are recorded" "$(wc -l < runs/once/jobs)" 2

t_done
