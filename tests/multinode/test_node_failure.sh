#!/usr/bin/env bash
# tests/multinode/test_node_failure.sh - a node dies under a real dure job
# (`dure submit`, 2 nodes of the 3-node test cluster, one rank each,
# deterministic, checkpoint every 100 steps, parallel.watchdog_s = 3).
# Every process of the job's second node is killed at once
# (cluster.sh kill: a power cut) after step 300. The survivor must record
# the failure naming rank 1 and that node, the batch script must append
# the node to RUN_DIR/excluded_nodes and requeue the job without it, the
# job must resume from the last checkpoint on two other nodes and finish
# with the loss of an uninterrupted run, bit for bit; dure status shows
# the failure, the exclusion and both launches. The test marks the dead
# node DOWN once the job has requeued itself, as slurmctld would after
# SlurmdTimeout (300 s here; `make faults` runs with 5 s and measures the
# whole chain), and reboots it before the restart, so that only the
# exclusion keeps the job off it. About 45 s.
# shellcheck source=tests/multinode/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/slurm/submit_lib.sh
. "$T_ROOT/tests/slurm/submit_lib.sh"
# shellcheck source=tests/multinode/fault_lib.sh
. "$(dirname "$0")/fault_lib.sh"
[ ${#MN_NODES[@]} -ge 3 ] || t_skip "the node failure test needs 3 nodes (the cluster has ${#MN_NODES[@]})"
cd "$T_TMP" || exit 1

sets=("${FL_SETS[@]}" --set run.steps=1200 --set slurm.max_restarts=2)
run_make_data
run_job plain
run_job dead
R=$T_TMP/runs/dead

# The uninterrupted run: the same job under mpirun on this host.
t_run "the uninterrupted run (mpirun -np 2)" 0 mpirun -np 2 "$DURE" run "$T_TMP/plain.ini" "${sets[@]}"

t_run "dure submit the job on 2 nodes" 0 "$DURE" submit "$T_TMP/dead.ini" "${sets[@]}"
job=$(first_job_id)
if ! wait_for 90 fl_reached "$R" 300; then
    t_fail "the job never reached step 300"; fl_out "$R" "$job" | tail -n 20; t_done
fi
mapfile -t first < <(fl_job_nodes "$job")
victim=${first[1]:-}
t_eq "it runs on 2 nodes" "${#first[@]}" 2
t_kill=$(fl_now)
t_run "node $victim loses power" 0 bash "$MN_CLUSTER" kill "$DURE_SLURM_DIR" "$victim"

if wait_for 60 fl_out_has "$R" "$job" "requeueing job $job without"; then
    t_down=$(fl_now)
    t_ok "the batch script requeued the job"
else
    t_fail "the job did not requeue itself"; fl_out "$R" "$job" | tail -n 30
fi
# What slurmctld does after SlurmdTimeout: the dead node leaves the job.
# Then it is repaired and back in service before the restart starts, so
# that only the exclusion keeps the job off it (Slurm would pick it first).
scontrol update NodeName="$victim" State=DOWN Reason="test_node_failure: power cut"
t_run "node $victim rebooted and back in service" 0 bash "$MN_CLUSTER" reboot "$DURE_SLURM_DIR" "$victim"

rec=$(ls "$R"/failures/launch-0/rank-*.json 2>/dev/null)
t_eq "rank 0 alone wrote a failure record for the first launch" "$rec" "$R/failures/launch-0/rank-0.json"
t_rec=$(stat -c %.3Y "$rec" 2>/dev/null)
t_eq "it names rank 1 on $victim, silent" \
    "$(jq -c '[.missing[] | [.rank, .host, .state]]' "$rec" 2>&1)" "[[1,\"$victim\",\"silent\"]]"
t_eq "the survivor's rank, host, job and exit code" \
    "$(jq -c '[.rank, .host, .job, .exit_code]' "$rec" 2>&1)" "[0,\"${first[0]}\",\"$job\",124]"
t_eq "RUN_DIR/excluded_nodes holds the dead node" "$(cat "$R/excluded_nodes" 2>/dev/null)" "$victim"
T_OUT=$(fl_out "$R" "$job")
t_grep "the batch script names the failed node and the restart" \
    "^dure-batch: a collective hung; node\\(s\\) $victim failed .*: requeueing job $job without $victim \\(restart 1 of 2\\)"

if wait_for 90 fl_out_has "$R" "$job" "restart 1 "; then t_ok "the requeued job started"
else t_fail "the requeued job did not start"; fi
# The first training step after the restart: metrics.jsonl written after
# the second launch's manifest.
wait_for 60 test -e "$R/manifest.launch-1.json" && wait_for 60 test "$R/metrics.jsonl" -nt "$R/manifest.launch-1.json"
t_resumed=$(fl_now)
mapfile -t second < <(fl_job_nodes "$job")
t_eq "the restart runs on 2 nodes" "${#second[@]}" 2
case " ${second[*]} " in
*" $victim "*) t_fail "the restart landed on the excluded node $victim (${second[*]})" ;;
*) t_ok "the restart avoids $victim (${second[*]})" ;;
esac
if wait_for 120 test -e "$R/FINISHED"; then t_ok "the run finished"
else t_fail "$R has no FINISHED"; fl_out "$R" "$job" | tail -n 30; fi
T_OUT=$(fl_out "$R" "$job")
t_grep "it resumed from a checkpoint" "^resume: .*/ckpt-0000[0-9]*00\\.h5: step [1-9][0-9]*00, written by 2 rank"
t_eq "the final loss equals the uninterrupted run's, bit for bit" \
    "$(fl_last_loss "$R")" "$(fl_last_loss "$T_TMP/runs/plain")"
t_eq "FINISHED reports the same losses" \
    "$(grep -v '^finished ' "$R/FINISHED")" "$(grep -v '^finished ' "$T_TMP/runs/plain/FINISHED")"

t_run "dure status" 0 "$DURE" status "$R"
t_grep "shows the failure" "^failure +launch 0, job $job at step [0-9]+ .*: [a-z-]+ seq [0-9]+ hung"
t_grep "the failed node, excluded" "^failed +$victim: rank 1 silent for .*; excluded"
t_grep "the survivor" "^survivor +${first[0]}: rank 0 recorded it and exited 124"
t_grep "the exclusion list" "^excluded +$victim$"
t_grep "both launches" "^launches +0: 2 ranks on 2 nodes; 1: 2 ranks on 2 nodes from step [1-9][0-9]*00$"

echo "# node killed -> failure recorded: $(fl_diff "$t_kill" "${t_rec:-$t_kill}") s (target: watchdog 3 s + 5 s)"
echo "# node killed -> job requeued: $(fl_diff "$t_kill" "${t_down:-$t_kill}") s; -> training again: $(fl_diff "$t_kill" "$t_resumed") s (Slurm's node-down stood in for by the test)"
t_done
