#!/usr/bin/env bash
# tests/slurm/test_submit.sh - dure submit and dure status on a real Slurm
# cluster: a 2-rank job runs to the end; what it ran with (profile, [env],
# SRUN_CPUS_PER_TASK); the time from `dure submit` to its first step; a
# finished run is not submitted again; --dry-run touches nothing; a run
# directory refuses another spec and a second concurrent job; status shows
# a running job's ETA.
# shellcheck source=tests/slurm/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/slurm/submit_lib.sh
. "$(dirname "$0")/submit_lib.sh"
cd "$T_TMP" || exit 1

cat > demo.ini <<'INI'
[run]
name = demo
steps = 20
[data]
path = data/demo.h5
[optim]
global_batch = 16
micro_batch = 8
[slurm]
ntasks_per_node = 2
time = 00:05:00
profile = local
[env]
DURE_TEST_VALUE = hello   world
INI
export STAND_IN_ENV="DURE_TEST_VALUE NCCL_SOCKET_IFNAME SRUN_CPUS_PER_TASK SLURM_NTASKS"

t0=$(date +%s.%N)
t_run "dure submit runs sbatch" 0 "$DURE" submit --dure "$STAND_IN" demo.ini
t_grep "it prints the job id and run directory" "^submitted job [0-9]+ for $T_TMP/runs/demo\$"
job=$(first_job_id)
t_eq "the job id is recorded in run.dir/jobs" "$(cat runs/demo/jobs)" "$job"
if wait_for 60 test -e runs/demo/FINISHED; then t_ok "the job ran to the end (FINISHED)"
else t_fail "no FINISHED in runs/demo after 60 s"; cat runs/demo/*.out; fi
first=$(head -n 1 runs/demo/metrics.jsonl | sed -n 's/.*"t":\([0-9.]*\).*/\1/p')
elapsed=$(awk -v a="$t0" -v b="$first" 'BEGIN { printf "%.2f", b - a }')
echo "# submit to first step: $elapsed s (dure submit -> sbatch -> slurmd -> srun --mpi=pmix, 2 ranks; issue target 5 s)"
t_eq "all 20 steps were logged" "$(wc -l < runs/demo/metrics.jsonl)" 20
wait_for 20 job_ended "$job" || t_fail "job $job has no completion record"
t_eq "the job completed with exit 0" "$(jobcomp_last "$job" ExitCode)" "0:0"

t_eq "the [env] value reached the job verbatim" \
    "$(sed -n 's/^DURE_TEST_VALUE=//p' runs/demo/stand-in.env)" "hello   world"
t_eq "the 'local' site profile reached the job" \
    "$(sed -n 's/^NCCL_SOCKET_IFNAME=//p' runs/demo/stand-in.env)" "lo"
t_eq "SRUN_CPUS_PER_TASK is exported" "$(sed -n 's/^SRUN_CPUS_PER_TASK=//p' runs/demo/stand-in.env)" 1
t_eq "srun started 2 ranks" "$(sed -n 's/^SLURM_NTASKS=//p' runs/demo/stand-in.env)" 2
log=runs/demo/demo_$job.out
if [ -f "$log" ]; then t_ok "the log is run.dir/%x_%j.out"; else t_fail "no $log"; ls runs/demo; fi
T_OUT=$(cat "$log" 2>&1)
t_grep "the log has both ranks' output" 'rank 1 finished 20 steps'
t_grep "the log has the batch script's account" "^dure-batch: job $job on "

t_run "dure status of the finished run" 0 "$DURE" status runs/demo
t_grep "status lists the job as completed" "^job +$job +COMPLETED, exit 0"
t_grep "status shows the last step and loss" '^progress +step 20 of 20 \(100%\), loss 0\.05'
t_grep "status says finished" '^state +finished$'

T_OUT=$(cat runs/demo/batch.sh)
t_grep "batch.sh: ranks per node" '^#SBATCH --ntasks-per-node=2$'
t_grep "batch.sh: USR2 before the time limit" '^#SBATCH --signal=USR2@120$'
t_grep "batch.sh: requeue" '^#SBATCH --requeue$'
t_grep "batch.sh: append to the log across restarts" '^#SBATCH --open-mode=append$'
# shellcheck disable=SC2016  # the script's own variables, literally
t_grep "batch.sh: srun with PMIx on every node of the attempt" '^srun --mpi=pmix --kill-on-bad-exit=1 "\$\{on_nodes\[@\]\}" "\$dure" run'
t_run "dure render prints the script that was submitted" 0 \
    "$DURE" render --dure "$STAND_IN" demo.ini
t_eq "render output equals batch.sh" "$T_OUT" "$(cat runs/demo/batch.sh)"

t_run "submitting a finished run" 0 "$DURE" submit --dure "$STAND_IN" demo.ini
t_grep "is reported and not submitted" 'has finished \(FINISHED marker\): nothing submitted'
t_eq "no second job id" "$(wc -l < runs/demo/jobs)" 1

t_run "a different model in the same run directory" 3 \
    "$DURE" submit --dure "$STAND_IN" --set model.d_model=64 demo.ini
t_grep "is refused, naming the run directory" "run directory $T_TMP/runs/demo holds a job spec that computes something else"

t_run "--dry-run" 0 "$DURE" submit --dry-run --dure "$STAND_IN" --set run.name=dry demo.ini
t_grep "prints the sbatch command" "^# would run: sbatch --parsable '$T_TMP/runs/dry/batch.sh'"
t_grep "prints the script" '^#SBATCH --job-name=dry$'
if [ -e runs/dry ]; then t_fail "--dry-run created runs/dry"; else t_ok "--dry-run created nothing"; fi

# A long run: status while it runs, and a second submission while it is active.
export STAND_IN_STEP_S=0.1
t_run "submit a longer run" 0 "$DURE" submit --dure "$STAND_IN" --set run.name=long --set run.steps=3000 demo.ini
long=$(first_job_id)
wait_for 30 test -s runs/long/metrics.jsonl || t_fail "runs/long never started"
t_run "dure status of a running job" 0 "$DURE" status runs/long
t_grep "says running" "^state +running \(job $long\)"
t_grep "shows an ETA" '^eta +[0-9hms]+ \(0\.1 s/step\)'
t_grep "and the step time (the stand-in writes no more of it)" \
    '^time +100\.0 ms a step \(means of the last [0-9]+ step\(s\)\)$'
t_run "a second submission while the job runs" 3 \
    "$DURE" submit --dure "$STAND_IN" --set run.name=long --set run.steps=3000 demo.ini
t_grep "is refused, naming the active job" "job $long is still RUNNING"
scancel "$long"
wait_for 20 job_ended "$long" || t_fail "job $long did not end after scancel"
t_run "dure status of a cancelled run" 0 "$DURE" status runs/long
t_grep "says failed: cancelled" "^state +failed: job $long CANCELLED" || { ls -la runs/long; cat runs/long/*.out runs/long/stand-in.log; }

t_done
