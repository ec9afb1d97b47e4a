# tests/slurm/submit_lib.sh - helpers for the tests of dure submit, render
# and status on the test cluster; source it after tests/slurm/lib.sh.
# shellcheck shell=bash

# tests/slurm/stand-in-dure.sh: `dure run` as far as the batch script cares.
# shellcheck disable=SC2034  # used by the tests that source this file
STAND_IN="$T_ROOT/tests/slurm/stand-in-dure.sh"

# wait_for SECONDS CMD...: retry CMD every 0.1 s until it succeeds; 1 on timeout.
wait_for() {
    local end=$(($(date +%s) + $1))
    shift
    until "$@"; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.1
    done
}

# job_ended ID: the job (or array task ARRAYID_TASK) has a completion record.
job_ended() {
    case $1 in
    *_*) grep -q "ArrayJobId=${1%_*} ArrayTaskId=${1#*_} " "$DURE_SLURM_DIR/jobcomp.log" ;;
    *) grep -q "^JobId=$1 .* JobState=[A-Z_]* .*ExitCode=" "$DURE_SLURM_DIR/jobcomp.log" \
        && ! scontrol show job "$1" 2>/dev/null | grep -q 'JobState=\(PENDING\|RUNNING\|COMPLETING\|REQUEUED\)' ;;
    esac
}

# jobcomp_last ID KEY: KEY of the last completion record of job ID.
jobcomp_last() {
    grep "^JobId=$1 " "$DURE_SLURM_DIR/jobcomp.log" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# first_job_id: the first job id that `dure submit` printed in $T_OUT.
first_job_id() {
    printf '%s\n' "$T_OUT" | sed -n 's/^submitted job \(array \)\{0,1\}\([0-9][0-9]*\).*/\2/p' | head -n 1
}
