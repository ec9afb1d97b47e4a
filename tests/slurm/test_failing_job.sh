#!/usr/bin/env bash
# tests/slurm/test_failing_job.sh - a failing job's failure is what
# dure status reports: the state, the exit code and what it means, and the
# end of the job's log. Once with the real dure (a job spec whose dataset
# does not exist: the batch script's preflight fails on the only node, so
# the job, not a node, is at fault) and once with a stand-in failing with a
# data error (4).
# shellcheck source=tests/slurm/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/slurm/submit_lib.sh
. "$(dirname "$0")/submit_lib.sh"
cd "$T_TMP" || exit 1

cat > bad.ini <<'INI'
[run]
name = bad
steps = 5
[data]
path = no/such/dataset.h5
[slurm]
time = 00:05:00
INI

# The real dure: `dure run` fails (the dataset is missing; or, in a dure
# built without `dure run`, the command is unknown). Either way: a failure.
t_run "submit a job that cannot run" 0 "$DURE" submit bad.ini
job=$(first_job_id)
if wait_for 60 job_ended "$job"; then t_ok "the job ended"; else t_fail "job $job did not end"; fi
code=$(jobcomp_last "$job" ExitCode)
code=${code%%:*}
if [ "${code:-0}" -gt 0 ]; then t_ok "it failed with exit code $code"; else t_fail "exit code '$code'"; fi
t_run "dure status" 0 "$DURE" status runs/bad
t_grep "lists the job as failed" "^job +$job +FAILED, exit $code "
t_grep "says failed with the exit code" "^state +failed: job $job FAILED with exit code $code \("
t_grep "shows the log" "^log +$T_TMP/runs/bad/bad_$job.out, last lines:"
t_grep "whose end has the batch script's verdict" \
    "^  \| dure-batch: dure preflight failed on every node: the job, not a node, is at fault: not requeued$"
t_grep "and the preflight's error, naming the dataset" \
    "^error +dure: error \[.*\] .*preflight: node .* failed data: .*'no/such/dataset.h5'"
t_eq "no node was excluded" "$(cat runs/bad/excluded_nodes 2>/dev/null)" ""
t_eq "the run did not finish" "$(test -e runs/bad/FINISHED && echo yes)" ""

t_run "submit a job failing with a data error" 0 \
    env STAND_IN_FAIL=4 "$DURE" submit --dure "$STAND_IN" --set run.name=data bad.ini
job=$(first_job_id)
wait_for 60 job_ended "$job" || t_fail "job $job did not end"
t_run "dure status" 0 "$DURE" status runs/data
t_grep "names exit code 4 and its meaning" \
    "^state +failed: job $job FAILED with exit code 4 \(dataset missing or invalid\)$"
t_grep "shows the job's own error" '^  \| stand-in-dure: failing on purpose with exit code 4$'
t_grep "the job was found through its completion record or scontrol" "^job +$job +FAILED, exit 4  \[(jobcomp|scontrol)\]$"

t_done
