#!/usr/bin/env bash
# tests/slurm/test_array.sh - a [sweep] becomes one job array: one task per
# value, each in its own run directory with its own resolved job spec, log
# and job id ARRAYID_TASK; dure status lists the tasks.
# shellcheck source=tests/slurm/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/slurm/submit_lib.sh
. "$(dirname "$0")/submit_lib.sh"
cd "$T_TMP" || exit 1

cat > sweep.ini <<'INI'
[run]
name = sweep
steps = 10
[data]
path = data/demo.h5
[optim]
global_batch = 16
micro_batch = 8
[slurm]
time = 00:05:00
[sweep]
optim.lr = 1e-3, 3e-4, 1e-4
INI
export STAND_IN_STEP_S=0.05

t_run "dure submit of a sweep" 0 "$DURE" submit --dure "$STAND_IN" sweep.ini
t_grep "submits one job array of 3 tasks" "^submitted job array [0-9]+ \(3 tasks\) for $T_TMP/runs/sweep/task-\*$"
array=$(first_job_id)
t_eq "the array id is recorded in run.dir/jobs" "$(cat runs/sweep/jobs)" "$array"
T_OUT=$(cat runs/sweep/batch.sh)
t_grep "batch.sh: --array=0-2" '^#SBATCH --array=0-2$'
t_grep "batch.sh: logs in each task's run directory" "^#SBATCH --output=$T_TMP/runs/sweep/task-%3a/%x_%j.out$"
lrs=(0.001 0.0003 0.0001)
for i in 0 1 2; do
    d=runs/sweep/task-00$i
    t_eq "task $i: its job id" "$(cat $d/jobs 2>&1)" "${array}_$i"
    t_eq "task $i: its learning rate" "$(sed -n 's/^lr = //p' $d/job.ini)" "${lrs[$i]}"
    t_eq "task $i: its own name" "$(sed -n 's/^name = //p' $d/job.ini)" "sweep-$i"
done
for i in 0 1 2; do
    if wait_for 60 test -e "runs/sweep/task-00$i/FINISHED"; then t_ok "task $i finished"
    else t_fail "task $i did not finish in 60 s"; ls -R runs/sweep; fi
done
for i in 0 1 2; do
    wait_for 20 job_ended "${array}_$i" || t_fail "task $i has no completion record"
    log=$(ls runs/sweep/task-00$i/sweep_*.out 2>/dev/null)
    T_OUT=$(cat "$log" 2>&1)
    t_grep "task $i logged into its run directory" "^dure-batch: job [0-9]+ on .*run $T_TMP/runs/sweep/task-00$i\$"
done
t_run "dure status of the sweep" 0 "$DURE" status runs/sweep
t_grep "names the job array" "^array +$array \\(3 tasks: ${array}_0 \\.\\.\\. ${array}_2\\)$"
t_grep "lists task 2" '^task 002 +finished; step 10, loss 0\.1$'
t_grep "sums up" '^state +3 tasks: 3 finished, 0 pending or running, 0 failed, 0 other$'
t_run "dure status of one task" 0 "$DURE" status runs/sweep/task-001
t_grep "shows the task's job" "^job +${array}_1 +COMPLETED, exit 0"
t_grep "says finished" '^state +finished$'

t_done
