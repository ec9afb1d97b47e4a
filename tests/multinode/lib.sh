# tests/multinode/lib.sh - helpers for tests against the namespaced cluster
# that tests/run.sh starts (tests/slurm/cluster.sh with
# DURE_CLUSTER_NODES=3); source it instead of tests/lib.sh.
# shellcheck shell=bash
# shellcheck source=tests/slurm/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../slurm/lib.sh"

# By hand: DURE_CLUSTER_NODES=3 bash tests/slurm/cluster.sh up DIR &&
# . DIR/env.sh && bash TEST.
[ -n "${DURE_SLURM_NODES:-}" ] ||
    t_skip "no multi-node test cluster: run through tests/run.sh or source the env.sh of one"
read -r -a MN_NODES <<< "$DURE_SLURM_NODES"
[ ${#MN_NODES[@]} -ge 2 ] || t_skip "the test cluster has ${#MN_NODES[@]} node(s); these tests need 2 or more"
# shellcheck disable=SC2034  # for the tests that source this
MN_CLUSTER="$T_ROOT/tests/slurm/cluster.sh"

# mn_job_id TEXT: the job id that `sbatch --parsable` printed in TEXT.
mn_job_id() { printf '%s\n' "$1" | sed -n 's/^\([0-9][0-9]*\)\(;.*\)\{0,1\}$/\1/p' | tail -n 1; }
