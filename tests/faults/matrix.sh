#!/usr/bin/env bash
# tests/faults/matrix.sh BUILD - the fault matrix (`make faults`): a real
# dure job under Slurm on a namespaced cluster of 3 nodes (one rank per
# node, 2 nodes per job, deterministic, watchdog 3 s, a checkpoint every
# 100 steps), one fault planted per row once the job passes step 300, and
# what came of it: how the fault was detected, the time from the fault to
# the survivors' exit and to the first training step after recovery (Slurm
# requeue included: this cluster declares a node down after SlurmdTimeout
# = 5 s), the steps lost, whether the restart began at the newest good
# checkpoint, and whether the final loss equals the uninterrupted run's
# bit for bit. Prints the table (markdown) and writes it to
# BUILD/faults.md (each row's job output in BUILD/faults-logs/). About 13
# minutes on 2 cores; not part of `make test` (its fast part is
# tests/multinode/test_node_failure.sh).
#
# Environment: DURE_CLUSTER_TAG (default fl) and DURE_CLUSTER_NET (default
# 10.212.2.0/24) name the cluster; FAULTS=REGEX picks rows by name;
# FAULTS_LONG_S=600 adds the effective training time of a 10-minute run
# with one node failure, as a `bench:` line (see long_run).
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export DURE="$ROOT/$BUILD/dure"
[ -x "$DURE" ] || { echo "faults: no $DURE: make tests-build first" >&2; exit 2; }
FILTER=${FAULTS:-.}

# The cluster: its own tag and subnet, Slurm declaring a dead node down
# after 5 s.
CL=$(mktemp -d /tmp/dure-faults.XXXXXX)
export DURE_CLUSTER_NODES=3 DURE_CLUSTER_CPUS=1 DURE_CLUSTER_TAG=${DURE_CLUSTER_TAG:-fl}
export DURE_CLUSTER_NET=${DURE_CLUSTER_NET:-10.212.2.0/24}
export DURE_CLUSTER_CONF_EXTRA="SlurmdTimeout=5"
trap 'bash "$ROOT/tests/slurm/cluster.sh" down "$CL" >/dev/null 2>&1; rm -rf "$CL"' EXIT
trap 'exit 130' INT TERM HUP
bash "$ROOT/tests/slurm/cluster.sh" up "$CL" > "$CL.up.log" 2>&1 ||
    { cat "$CL.up.log"; rm -f "$CL.up.log"; echo "faults: the cluster did not start" >&2; exit 1; }
rm -f "$CL.up.log"
# shellcheck disable=SC1091
. "$CL/env.sh"
export DURE_SLURM_DIR=$CL
# shellcheck source=tests/multinode/lib.sh
. "$ROOT/tests/multinode/lib.sh"
# shellcheck source=tests/slurm/submit_lib.sh
. "$ROOT/tests/slurm/submit_lib.sh"
# shellcheck source=tests/multinode/fault_lib.sh
. "$ROOT/tests/multinode/fault_lib.sh"
trap 'disk_unmount "$T_TMP/runs/disk-full"
    bash "$ROOT/tests/slurm/cluster.sh" down "$CL" >/dev/null 2>&1; rm -rf "$CL" "$T_TMP"' EXIT
cd "$T_TMP" || exit 1

STEPS=1500
run_make_data
run_job plain
echo "=== the uninterrupted run (mpirun -np 2)"
mpirun -np 2 "$DURE" run "$T_TMP/plain.ini" "${FL_SETS[@]}" --set "run.steps=$STEPS" > plain.log 2>&1 ||
    { tail -20 plain.log; echo "faults: the uninterrupted run failed" >&2; exit 1; }
REF_LOSS=$(fl_last_loss runs/plain)

# ref_exact: the uninterrupted run in exact mode (runs/exact-plain), made
# on first use, for the rows with REF=exact: their final state must match it
# bit for bit by `dure verify` (metrics and checkpointed state), whatever
# world sizes the faulty run went through.
ref_exact() { # [--set KEY=VALUE...]: the row's own, so that the two job specs match
    [ -e "$T_TMP/runs/exact-plain/FINISHED" ] && return 0
    echo "=== the uninterrupted run in exact mode (mpirun -np 2)"
    run_job exact-plain
    mpirun -np 2 "$DURE" run "$T_TMP/exact-plain.ini" "${FL_SETS[@]}" --set "run.steps=$STEPS" "$@" \
        > exact-plain.log 2>&1
}

# node_rank_pid NODE: the PID of the dure rank running in NODE.
node_rank_pid() {
    local p
    for p in $(ip netns pids "$1" 2>/dev/null); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = dure ] && { echo "$p"; return 0; }
    done
    return 1
}
# no_ranks NODE...: no dure rank runs in any of the NODEs.
# shellcheck disable=SC2317  # called through wait_for
no_ranks() {
    local n
    for n in "$@"; do node_rank_pid "$n" > /dev/null && return 1; done
    return 0
}
# newest_ckpt RUN_DIR: the step of the newest published checkpoint.
newest_ckpt() {
    find "$1/checkpoints" -name 'ckpt-*.h5' 2>/dev/null | sed -n 's/.*ckpt-0*\([0-9][0-9]*\)\.h5$/\1/p' |
        sort -n | tail -n 1
}

# Each row's job output, metrics and failure records are kept here.
LOGS=$ROOT/$BUILD/faults-logs
rm -rf "$LOGS"
ROWS=()
# row NAME DETECTED EXIT_S RESUME_S LOST RESUMED_AT FINAL
row() { ROWS+=("| $1 | $2 | $3 | $4 | $5 | $6 | $7 |"); echo "=== $1: | $2 | $3 | $4 | $5 | $6 | $7 |"; }

# [AT=setup] [PRE=F] [RECOVER=F] [REF=exact] scenario NAME INJECT [--set KEY=VALUE...]:
# submit a job, run INJECT (a function given the job id, the run directory
# and the job's two nodes) once it passes step 300 (AT=setup: once dure run
# has printed its job spec, before the first step), and measure. INJECT
# sets DETECTED, NODE_FAULT (the node to reboot afterwards, if any) and
# EXITS (0: the job is not expected to stop). PRE RUN_DIR runs before the
# submission, RECOVER RUN_DIR once the ranks have exited (what an operator
# would do: free space and submit again). REF=exact: compare the final state
# with the exact-mode reference (ref_exact) instead of the final loss with
# the deterministic one.
scenario() {
    local name=$1 inject=$2 job R t0 t_exit='' t_resume='' fault_step ckpt_at resume_at lost final rec
    local -a nodes
    shift 2
    [[ "$name" =~ $FILTER ]] || return 0
    echo "=== $name"
    run_job "$name"
    SETS=("${FL_SETS[@]}" --set "run.steps=$STEPS" "$@")
    R=$T_TMP/runs/$name
    [ -z "${PRE:-}" ] || "$PRE" "$R"
    "$DURE" submit "$T_TMP/$name.ini" "${SETS[@]}" > "$name.submit" 2>&1 || { cat "$name.submit"; row "$name" "submit failed" - - - - -; return; }
    T_OUT=$(cat "$name.submit")
    job=$(first_job_id)
    if [ "${AT:-}" = setup ]; then
        wait_for 120 ranks_started "$job"
    elif ! wait_for 120 fl_reached "$R" 300; then
        row "$name" "never reached step 300" - - - - -; scancel "$job"; return
    fi
    mapfile -t nodes < <(fl_job_nodes "$job")
    if [ "${#nodes[@]}" -lt 2 ]; then
        row "$name" "the job ended before the fault" - - - - -; return
    fi
    DETECTED=- NODE_FAULT='' EXITS=1
    t0=$(fl_now)
    "$inject" "$job" "$R" "${nodes[@]}"
    # The survivors' exit: no rank left on either node (the faulty one's
    # processes may be stopped or cut off: only the first node counts then).
    if [ "$EXITS" = 1 ] && wait_for 60 no_ranks "${nodes[0]}"; then
        t_exit=$(fl_diff "$t0" "$(fl_now)")
    fi
    ckpt_at=$(newest_ckpt "$R")
    [ -z "${RECOVER:-}" ] || "$RECOVER" "$R"
    # Training again: metrics.jsonl written after a later launch's manifest.
    if wait_for 150 test -e "$R/manifest.launch-1.json" &&
        wait_for 60 test "$R/metrics.jsonl" -nt "$R/manifest.launch-1.json"; then
        t_resume=$(fl_diff "$t0" "$(fl_now)")
    fi
    [ -z "$NODE_FAULT" ] || bash "$MN_CLUSTER" reboot "$CL" "$NODE_FAULT" > /dev/null 2>&1
    wait_for 180 test -e "$R/FINISHED" || scancel "$job" 2>/dev/null
    wait_for 30 job_ended "$job"
    resume_at=$(cat "$R"/*.out | sed -n 's/^resume: .*: step \([0-9]*\), written.*/\1/p' | head -n 1)
    # The step at the fault: the failure record's, else the last progress
    # line before the restart (every log_every = 10 steps).
    rec=$(find "$R/failures" -name 'rank-*.json' 2>/dev/null | head -n 1)
    if [ -n "$rec" ]; then fault_step=$(jq -r .step "$rec")
    else
        fault_step=$(cat "$R"/*.out | awk '/^resuming run/ { print last; exit }
            /^step +[0-9]+\/[0-9]+ \|/ { sub(/^step +/, ""); split($0, a, "/"); last = a[1] }')
    fi
    fault_step=${fault_step:-0}
    if [ -n "$resume_at" ]; then
        lost=$((fault_step > resume_at ? fault_step - resume_at : 0))
        if [ "$resume_at" = "$ckpt_at" ]; then resume_at="$resume_at (newest)"
        else resume_at="$resume_at (newest $ckpt_at)"; fi
    elif [ "$EXITS" = 0 ]; then
        lost=0 resume_at="not stopped"
    elif grep -q "^starting run" "$R"/*.out && [ "$(grep -c "^starting run" "$R"/*.out)" -gt 1 ]; then
        lost=$fault_step resume_at="none yet: from the start"
    else
        lost=- resume_at="did not resume"
    fi
    if [ ! -e "$R/FINISHED" ]; then final="not finished ($(jobcomp_last "$job" JobState))"
    elif [ "${REF:-}" = exact ]; then
        if ! ref_exact "$@"; then final="no exact-mode reference (see exact-plain.log)"
        elif "$DURE" verify "$T_TMP/runs/exact-plain" "$R" > "$name.verify" 2>&1; then
            final="same, bit for bit (dure verify: IDENTICAL)"
        else final="differs (dure verify exit $?: $(tail -n 1 "$name.verify"))"; fi
    elif [ "$(fl_last_loss "$R")" = "$REF_LOSS" ]; then final="same, bit for bit"
    else final="differs by $(awk -v a="$(fl_last_loss "$R")" -v b="$REF_LOSS" \
        'BEGIN { d = (a - b) / b; printf "%.1e", d < 0 ? -d : d }') (relative)"; fi
    if [ "$EXITS" = 0 ]; then t_exit="did not stop"
    elif [ -n "$t_exit" ]; then t_exit+=" s"
    else t_exit="not within 60 s"; fi
    if [ -n "$t_resume" ]; then t_resume+=" s"; else t_resume=-; fi
    row "$name" "$DETECTED" "$t_exit" "$t_resume" "$lost" "$resume_at" "$final"
    mkdir -p "$LOGS/$name" && cp "$R"/*.out "$R/metrics.jsonl" "$LOGS/$name/" 2>/dev/null
    cp -r "$R/failures" "$LOGS/$name/" 2>/dev/null
    cp "$name.verify" "$LOGS/$name/" 2>/dev/null
}

# The faults: each gets (JOB RUN_DIR NODE1 NODE2); the job's rank 1 runs on NODE2.
node_kill() {
    bash "$MN_CLUSTER" kill "$CL" "$4" > /dev/null
    NODE_FAULT=$4 DETECTED="heartbeat: rank 1 on $4 silent"
}
link_cut() {
    bash "$MN_CLUSTER" link "$CL" "$4" down > /dev/null
    NODE_FAULT=$4 DETECTED="heartbeat: rank 1 on $4 silent"
}
rank_kill9() {
    kill -KILL "$(node_rank_pid "$4")"
    DETECTED="srun (--kill-on-bad-exit); requeued on signal 9"
}
rank_stop() {
    kill -STOP "$(node_rank_pid "$4")"
    NODE_FAULT=$4 DETECTED="heartbeat: rank 1 on $4 silent (stopped)"
}
# A slow node: rank 1 stopped 30 ms of every 60 ms for 5 s.
slow_node() {
    local p i
    p=$(node_rank_pid "$4")
    for ((i = 0; i < 83; i++)); do
        kill -STOP "$p" 2>/dev/null; sleep 0.03; kill -CONT "$p" 2>/dev/null; sleep 0.03
    done
    EXITS=0
    if grep -q "\"straggler\":\"rank 1 on $4" "$2/metrics.jsonl"; then
        DETECTED="straggler check: rank 1 on $4 named"
    else
        DETECTED="not named as a straggler"
    fi
}
usr2() {
    scancel --signal=USR2 "$1"
    DETECTED="SIGUSR2: checkpoint, exit 75, requeue"
}
# The node dies, then (no save in flight any more) the newest checkpoint
# is damaged: the restart must skip it for the one before.
corrupt_newest() {
    local f
    bash "$MN_CLUSTER" kill "$CL" "$4" > /dev/null
    wait_for 60 no_ranks "$3"
    f=$(find "$2/checkpoints" -name 'ckpt-*.h5' | sort | tail -n 1)
    printf 'damaged' | dd of="$f" bs=1 seek=8192 conv=notrunc 2> /dev/null
    NODE_FAULT=$4 DETECTED="heartbeat; then the newest checkpoint's CRC-32C at load"
}

# A full disk: the checkpoints on an 8 MiB ext4 file system (a loop
# device) that fills up, mounted in every node (one file system: the same
# device) and here.
DISK_LOOP=''
disk_mount() {
    local n
    truncate -s 8M "$T_TMP/disk.img" && mkfs.ext4 -q -F "$T_TMP/disk.img" &&
        DISK_LOOP=$(losetup -f --show "$T_TMP/disk.img") || return 1
    mkdir -p "$1/checkpoints" && mount "$DISK_LOOP" "$1/checkpoints" || return 1
    for n in "${MN_NODES[@]}"; do
        bash "$MN_CLUSTER" exec "$CL" "$n" mount "$DISK_LOOP" "$1/checkpoints" || return 1
    done
}
disk_unmount() {
    local n
    [ -n "$DISK_LOOP" ] || return 0
    for n in "${MN_NODES[@]}"; do
        bash "$MN_CLUSTER" exec "$CL" "$n" umount "$1/checkpoints" 2> /dev/null
    done
    umount "$1/checkpoints" 2> /dev/null
    losetup -d "$DISK_LOOP"
    DISK_LOOP=''
}
disk_fill() {
    dd if=/dev/zero of="$2/checkpoints/filler" bs=64k 2> /dev/null
    DETECTED="the checkpoint save: no space left"
}
disk_free() {
    local out
    rm -f "$1/checkpoints/filler"
    wait_for 60 job_ended "$(tail -n 1 "$1/jobs" | cut -d' ' -f1)"
    out=$("$DURE" submit "$T_TMP/disk-full.ini" "${SETS[@]}" 2>&1) || printf '%s\n' "$out"
}
# ranks_started JOB: both ranks of JOB's attempt exist (dure run is setting up).
# shellcheck disable=SC2317  # called through wait_for
ranks_started() {
    local -a n
    mapfile -t n < <(fl_job_nodes "$1")
    [ ${#n[@]} -eq 2 ] && node_rank_pid "${n[0]}" > /dev/null && node_rank_pid "${n[1]}" > /dev/null
}
# SIGUSR2 straight to both ranks as soon as they exist (scancel takes
# longer than dure run's setup of this tiny model).
usr2_setup() {
    kill -USR2 "$(node_rank_pid "$3")" "$(node_rank_pid "$4")"
    DETECTED="SIGUSR2 to both ranks during setup"
}

scenario node-killed node_kill
scenario link-cut link_cut
scenario rank-kill-9 rank_kill9
scenario rank-sigstop rank_stop
scenario slow-node slow_node --set parallel.straggler_every=25
scenario sigusr2 usr2
scenario newest-ckpt-corrupted corrupt_newest
PRE=disk_mount RECOVER=disk_free scenario disk-full disk_fill
disk_unmount "$T_TMP/runs/disk-full"
AT=setup scenario sigusr2-setup usr2_setup
scenario fewer-nodes node_kill --set run.elastic=true --set slurm.min_nodes=1
# Exact mode steps faster (0.3 ms here): more steps, or the job ends before the fault.
EXACT_STEPS=6000
REF=exact scenario fewer-nodes-exact node_kill --set run.elastic=true --set slurm.min_nodes=1 \
    --set run.exact=true --set run.steps=$EXACT_STEPS

# FAULTS_LONG_S=S (opt-in): a run of about S seconds (600 for the issue's
# target) with the second node killed half way. Effective training time =
# the time of the steps kept (metrics.jsonl's step_s of every step; a step
# redone after the restart counts once, as its last run) over the wall
# time from dure submit to FINISHED.
long_run() {
    local secs=$1 per steps job R t0 wall kept victim
    [[ "long-run" =~ $FILTER ]] || return 0
    echo "=== long-run ($secs s)"
    # The time a step takes across 2 nodes: 2000 steps from the manifest to FINISHED.
    run_job calib
    if ! "$DURE" submit "$T_TMP/calib.ini" "${FL_SETS[@]}" --set run.steps=2000 > calib.submit 2>&1 ||
        ! wait_for 300 test -e runs/calib/FINISHED; then
        cat calib.submit; echo "long-run: no calibration"; return
    fi
    per=$(awk -v a="$(stat -c %.3Y runs/calib/manifest.json)" -v b="$(stat -c %.3Y runs/calib/FINISHED)" \
        'BEGIN { print (b - a) / 2000 }')
    steps=$(awk -v s="$secs" -v p="$per" 'BEGIN { printf "%d", s / p / 100 * 100 }')
    run_job long
    R=$T_TMP/runs/long
    t0=$(fl_now)
    # slurm.time: FL_SETS' 5 minutes would stop a 10-minute run at its time
    # limit (SIGUSR2, checkpoint, requeue) and spend its restarts there.
    "$DURE" submit "$T_TMP/long.ini" "${FL_SETS[@]}" --set run.steps="$steps" --set run.log_every=1000 \
        --set checkpoint.every=1000 --set slurm.time="$(printf '00:%02d:00' $((secs * 3 / 60 > 59 ? 59 : secs * 3 / 60)))" \
        > long.submit 2>&1 || { cat long.submit; return; }
    T_OUT=$(cat long.submit)
    job=$(first_job_id)
    wait_for $((secs * 2)) fl_reached "$R" $((steps / 2)) || { echo "long-run: no progress"; scancel "$job"; return; }
    mapfile -t nodes < <(fl_job_nodes "$job")
    [ "${#nodes[@]}" -ge 2 ] || { echo "long-run: the job ended before the fault"; return; }
    victim=${nodes[1]}
    bash "$MN_CLUSTER" kill "$CL" "$victim" > /dev/null
    wait_for 150 test -e "$R/manifest.launch-1.json"
    bash "$MN_CLUSTER" reboot "$CL" "$victim" > /dev/null 2>&1
    if ! wait_for $((secs * 2)) test -e "$R/FINISHED"; then
        echo "long-run: not finished $((secs * 2)) s after the restart (job $job: $(jobcomp_last "$job" JobState)); its output in $LOGS/long-run"
        scancel "$job"
        mkdir -p "$LOGS/long-run" && cp "$R"/*.out "$R/metrics.jsonl" "$LOGS/long-run/" 2>/dev/null
        cp -r "$R/failures" "$LOGS/long-run/" 2>/dev/null
        return
    fi
    wall=$(fl_diff "$t0" "$(stat -c %.3Y "$R/FINISHED")")
    kept=$(sed -n 's/^{"step":\([0-9]*\),"loss".*"step_s":\([0-9.e-]*\).*/\1 \2/p' "$R/metrics.jsonl" |
        awk '{ t[$1] = $2 } END { for (k in t) s += t[k]; printf "%.1f", s }')
    # The ratio is the effective training time.
    echo "bench: kept_step_time_one_node_failure: $kept s (wall time submit to finished: $wall s, ratio $(awk -v k="$kept" -v w="$wall" 'BEGIN { printf "%.3f", k / w }'))"
}
[ -z "${FAULTS_LONG_S:-}" ] || long_run "$FAULTS_LONG_S"

{
    echo "| fault | detected by | fault to survivors exited | fault to training again | steps lost | restarted from checkpoint | final loss vs uninterrupted |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    printf '%s\n' "${ROWS[@]}"
} > "$ROOT/$BUILD/faults.md"
echo
cat "$ROOT/$BUILD/faults.md"
echo "(load average $(cut -d' ' -f1-3 /proc/loadavg); each row's job output in $LOGS)"
