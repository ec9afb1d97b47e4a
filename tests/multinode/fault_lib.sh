# tests/multinode/fault_lib.sh - a dure job on the namespaced cluster, a
# fault planted in it, and what came of it: shared by
# tests/multinode/test_node_failure.sh and the fault matrix
# (tests/faults/matrix.sh, `make faults`). Source after
# tests/multinode/lib.sh and tests/slurm/submit_lib.sh.
# shellcheck shell=bash
# shellcheck source=tests/mpi/run_helpers.sh
. "$T_ROOT/tests/mpi/run_helpers.sh"

# FL_SETS: the fault jobs' overrides of run_job's tiny deterministic spec
# (about a millisecond a step): 2 nodes of one rank each, a checkpoint
# every 100 steps, progress every 10, a 3 s watchdog. Give them to
# `dure submit` (and to the uninterrupted `dure run`) with --set KEY=VALUE
# of run.steps and anything else a fault needs.
# shellcheck disable=SC2034  # used by the scripts that source this file
FL_SETS=(--set run.log_every=10 --set run.val_every=0 --set parallel.watchdog_s=3
    --set checkpoint.every=100 --set slurm.nodes=2 --set slurm.ntasks_per_node=1
    --set slurm.time=00:05:00)

# fl_steps RUN_DIR: the step numbers of RUN_DIR/metrics.jsonl's training lines.
fl_steps() { run_losses "$1" 2>/dev/null | cut -d' ' -f1; }
# fl_last_loss RUN_DIR: the loss of the last training line, as written.
fl_last_loss() { run_losses "$1" 2>/dev/null | tail -n 1 | cut -d' ' -f2; }
# shellcheck disable=SC2317  # called through wait_for
fl_reached() { [ "$(fl_steps "$1" | tail -n 1)" -ge "$2" ] 2>/dev/null; }
# fl_out RUN_DIR JOB: the batch job's output (every attempt, appended).
fl_out() { cat "$1"/*_"$2".out 2>/dev/null; }
# shellcheck disable=SC2317  # called through wait_for
fl_out_has() { fl_out "$1" "$2" | grep -Eq "$3"; }
# fl_job_nodes JOB: the nodes of the job's running attempt, one a line.
fl_job_nodes() {
    scontrol show hostnames "$(squeue -h -j "$1" -o %N 2>/dev/null)" 2>/dev/null
}
# fl_now: seconds since the epoch, with nanoseconds.
fl_now() { date +%s.%N; }
# fl_diff A B: B - A in seconds, one decimal.
fl_diff() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
