# tests/slurm/lib.sh - helpers for tests against the cluster that tests/run.sh
# starts (tests/slurm/cluster.sh); source it instead of tests/lib.sh.
# shellcheck shell=bash
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# tests/run.sh starts the cluster and sources its env.sh; by hand:
# bash tests/slurm/cluster.sh up DIR && . DIR/env.sh && bash TEST.
if [ -z "${DURE_SLURM_DIR:-}" ] || [ -z "${SLURM_CONF:-}" ]; then
    t_skip "no test cluster: run through tests/run.sh or source DIR/env.sh"
fi

# slurm_jobcomp JOBID: print the job completion record of JOBID, one line of
# Key=Value fields (JobState=COMPLETED|FAILED|..., ExitCode=CODE:SIGNAL).
# slurmctld writes it as the job ends; wait up to 5 s for it.
slurm_jobcomp() {
    local tries=50
    while [ $tries -gt 0 ]; do
        grep -m 1 "^JobId=$1 " "$DURE_SLURM_DIR/jobcomp.log" 2>/dev/null && return 0
        tries=$((tries - 1))
        sleep 0.1
    done
    return 1
}

# slurm_field RECORD KEY: the value of KEY in a job completion RECORD.
slurm_field() {
    printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
