#!/usr/bin/env bash
# tests/slurm/stand-in-dure.sh run RUN_DIR/job.ini
# tests/slurm/stand-in-dure.sh preflight [OPTIONS] RUN_DIR/job.ini   (exits 0)
#
# Stands in for `dure run` in tests of dure submit/render/status, through
# their documented --dure PATH option: it keeps the contract the batch
# script relies on (launcher/exitcodes.h, the run-directory files) without
# training, so those tests can check the Slurm side exactly and quickly.
# The tests of the real `dure run` under Slurm are tests/slurm/test_run_*.sh.
#
#   - run.dir and run.steps come from the resolved job spec (job.ini)
#   - resumes from RUN_DIR/stand-in.step (the last step reached)
#   - each step sleeps STAND_IN_STEP_S (default 0.05) and rank 0 appends
#     {"step":N,"loss":L,"step_s":S,"t":EPOCH} to RUN_DIR/metrics.jsonl
#   - USR2 or TERM: record the step and exit 75 (checkpoint saved)
#   - after the last step rank 0 writes RUN_DIR/FINISHED and exits 0
#   - STAND_IN_FAIL=N: print an error and exit N before the first step
#   - every start appends "start RESTART_COUNT" to RUN_DIR/stand-in.log, and
#     rank 0 writes the environment variables named in STAND_IN_ENV (one
#     NAME=VALUE per line, values verbatim) to RUN_DIR/stand-in.env
set -u
# The batch script's first step: every node passes (the real preflight is
# tested in tests/multinode/test_preflight.sh).
if [ "${1:-}" = preflight ]; then
    exit 0
fi
if [ "${1:-}" != run ] || [ $# -ne 2 ]; then
    echo "usage: $0 run JOB.ini | preflight ... JOB.ini" >&2
    exit 2
fi
spec=$2

# "key = value" of one [section] of the INI file.
ini_get() {
    awk -v sec="[$2]" -v key="$3" '
        /^\[/ { insec = ($0 == sec); next }
        insec { k = $0; sub(/ *=.*/, "", k); if (k == key) { sub(/^[^=]*= */, ""); print; exit } }
    ' "$1"
}
run_dir=$(ini_get "$spec" run dir)
steps=$(ini_get "$spec" run steps)
case $run_dir in /*) ;; *) run_dir=$PWD/$run_dir ;; esac
rank=${SLURM_PROCID:-0}
step_s=${STAND_IN_STEP_S:-0.05}

if [ "$rank" = 0 ]; then
    echo "start ${SLURM_RESTART_COUNT:-0}" >> "$run_dir/stand-in.log"
    for name in ${STAND_IN_ENV:-}; do
        printf '%s=%s\n' "$name" "${!name-<unset>}"
    done > "$run_dir/stand-in.env"
fi
if [ -n "${STAND_IN_FAIL:-}" ]; then
    echo "stand-in-dure: failing on purpose with exit code $STAND_IN_FAIL" >&2
    exit "$STAND_IN_FAIL"
fi

step=0
[ -r "$run_dir/stand-in.step" ] && step=$(cat "$run_dir/stand-in.step")
stop=0
trap 'stop=1' USR2 TERM
while [ "$step" -lt "$steps" ]; do
    if [ "$stop" = 1 ]; then
        [ "$rank" = 0 ] && echo "$step" > "$run_dir/stand-in.step"
        echo "stand-in-dure: rank $rank stopped by a signal at step $step: checkpoint saved"
        exit 75
    fi
    # sleep in the background so that a signal ends the wait at once
    sleep "$step_s" & wait $!
    step=$((step + 1))
    # No command substitution here: bash mis-parses one that a trapped
    # signal interrupts. loss = 1/step, written with integer arithmetic.
    if [ "$rank" = 0 ]; then
        printf '{"step":%d,"loss":%d.%06d,"step_s":%s,"t":%s}\n' "$step" \
            $((1 / step)) $((1000000 / step % 1000000)) "$step_s" "$EPOCHREALTIME" \
            >> "$run_dir/metrics.jsonl"
    fi
done
if [ "$rank" = 0 ]; then
    echo "$step" > "$run_dir/stand-in.step"
    touch "$run_dir/FINISHED"
fi
echo "stand-in-dure: rank $rank finished $steps steps"
