#!/usr/bin/env bash
# tests/slurm/test_chain.sh - dure submit --chain 3: three jobs linked by
# --dependency=afterany. The first is stopped (USR2, exit 75, no requeue);
# the second resumes from its checkpoint and finishes; the third finds the
# run finished (FINISHED) and does nothing.
# shellcheck source=tests/slurm/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/slurm/submit_lib.sh
. "$(dirname "$0")/submit_lib.sh"
cd "$T_TMP" || exit 1

cat > chain.ini <<'INI'
[run]
name = chain
steps = 60
[data]
path = data/demo.h5
[optim]
global_batch = 16
micro_batch = 8
[slurm]
ntasks_per_node = 2
time = 00:05:00
max_restarts = 0
INI
export STAND_IN_STEP_S=0.05

t_run "dure submit --chain 3" 0 "$DURE" submit --chain 3 --dure "$STAND_IN" chain.ini
mapfile -t ids < <(printf '%s\n' "$T_OUT" | sed -n 's/^submitted job \([0-9]*\) .*/\1/p')
t_eq "three jobs submitted" "${#ids[@]}" 3
t_eq "all three recorded in run.dir/jobs" "$(tr '\n' ' ' < runs/chain/jobs)" "${ids[*]} "
t_grep "each after the one before" "^submitted job ${ids[2]} for .*, after job ${ids[1]}$"
dep=$(scontrol show job -o "${ids[1]}" | tr ' ' '\n' | sed -n 's/^Dependency=//p')
t_eq "job 2 depends on job 1 with afterany" "$dep" "afterany:${ids[0]}(unfulfilled)"
dep=$(scontrol show job -o "${ids[2]}" | tr ' ' '\n' | sed -n 's/^Dependency=//p')
t_eq "job 3 depends on job 2 with afterany" "$dep" "afterany:${ids[1]}(unfulfilled)"

wait_for 30 test -s runs/chain/metrics.jsonl || t_fail "job 1 never started"
scancel --signal=USR2 "${ids[0]}"
if wait_for 60 job_ended "${ids[2]}"; then t_ok "all three jobs ended"
else t_fail "job 3 did not end in 60 s"; cat runs/chain/*.out; fi
t_eq "job 1 stopped with exit 75" "$(jobcomp_last "${ids[0]}" ExitCode)" "75:0"
t_eq "job 2 completed" "$(jobcomp_last "${ids[1]}" ExitCode)" "0:0"
t_eq "job 3 completed" "$(jobcomp_last "${ids[2]}" ExitCode)" "0:0"
t_eq "the run finished" "$(test -e runs/chain/FINISHED && echo yes)" yes
t_eq "dure run started twice (jobs 1 and 2)" "$(wc -l < runs/chain/stand-in.log)" 2
t_eq "every step ran exactly once" \
    "$(sed -n 's/^{"step":\([0-9]*\),.*/\1/p' runs/chain/metrics.jsonl | tr '\n' ' ')" "$(seq -s ' ' 1 60) "
T_OUT=$(cat "runs/chain/chain_${ids[2]}.out")
t_grep "job 3 found the run finished" 'has finished \(FINISHED marker\): nothing to do'
t_run "dure status" 0 "$DURE" status runs/chain
t_grep "lists job 1 stopped" "^job +${ids[0]} +FAILED, exit 75"
t_grep "lists job 3 completed" "^job +${ids[2]} +COMPLETED, exit 0"
t_grep "says finished" '^state +finished$'

t_done
