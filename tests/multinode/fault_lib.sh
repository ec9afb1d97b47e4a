# tests/multinode/fault_lib.sh - a dure job on the namespaced cluster, a
# fault planted in it, and what came of it: shared by
# tests/multinode/test_node_failure.sh and the fault matrix
# (tests/faults/matrix.sh, `make faults`). Source after
# tests/multinode/lib.sh and tests/slurm/submit_lib.sh.
# shellcheck shell=bash

FL_DATA="$T_TMP/data.h5"

# fl_make_data: the small dataset every fault job reads.
fl_make_data() {
    "$DURE" data gen -o "$FL_DATA" --episodes 24 --length 400 --channels 4 \
        --seed 7 > "$T_TMP/datagen.log" 2>&1 ||
        { cat "$T_TMP/datagen.log"; t_fail "dure data gen made no dataset"; t_done; }
}

# fl_job NAME NODES STEPS [LINE...]: write $T_TMP/NAME.ini, a tiny
# deterministic model (about a millisecond a step) on NODES nodes of one
# rank each, a checkpoint every 100 steps, progress every 50, a 3 s
# watchdog; each LINE ("[section]" or "key = value") is appended.
fl_job() {
    local name=$1 nodes=$2 steps=$3
    shift 3
    {
        cat <<INI
[run]
name = $name
dir = $T_TMP/runs/$name
steps = $steps
seed = 11
deterministic = true
log_every = 50
val_every = 0
threads = 1
device = cpu

[model]
d_model = 16
n_layers = 1
n_heads = 2
patch_len = 4
context_patches = 4

[data]
path = $FL_DATA

[optim]
lr = 3e-3
min_lr = 3e-4
warmup_steps = 2
global_batch = 8
micro_batch = 2

[parallel]
backend = mpi
watchdog_s = 3

[checkpoint]
every = 100

[slurm]
nodes = $nodes
ntasks_per_node = 1
time = 00:05:00
INI
        printf '%s\n' "$@"
    } > "$T_TMP/$name.ini"
}

# fl_steps RUN_DIR: the step numbers of RUN_DIR/metrics.jsonl's training lines.
fl_steps() { sed -n 's/^{"step":\([0-9]*\),"loss".*/\1/p' "$1/metrics.jsonl" 2>/dev/null; }
# fl_last_loss RUN_DIR: the loss of the last training line, as written.
fl_last_loss() { grep '"loss"' "$1/metrics.jsonl" | tail -n 1 | sed -n 's/.*"loss":\([^,}]*\).*/\1/p'; }
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
# fl_iso_s ISO: seconds since the epoch of an ISO 8601 UTC time.
fl_iso_s() { date -d "$1" +%s; }
# fl_diff A B: B - A in seconds, one decimal.
fl_diff() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
