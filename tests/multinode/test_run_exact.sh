#!/usr/bin/env bash
# tests/multinode/test_run_exact.sh - exact mode (run.exact) across nodes:
# the job of tests/mpi/test_run_exact.sh (12 micro-batches per step) on 2
# nodes x 2 ranks (TCP between the nodes, shared memory within) gives the
# same bits as on 1 node x 4 ranks: dure verify says IDENTICAL.
# shellcheck source=tests/multinode/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/mpi/run_helpers.sh
. "$(dirname "$0")/../mpi/run_helpers.sh"

run_make_data
run_job exact
# exact_job NAME NODES: sbatch NODES x (4 / NODES) ranks of dure run; waits.
exact_job() {
    local name=$1 nodes=$2
    cat > "$T_TMP/$name.sh" <<SH
#!/bin/bash
#SBATCH --job-name=dure-mn-exact
#SBATCH --nodes=$nodes
#SBATCH --ntasks=4
#SBATCH --overcommit
#SBATCH --time=5
srun --mpi=pmix "$DURE" run "$T_TMP/exact.ini" --set run.exact=true \\
    --set optim.global_batch=24 --set optim.micro_batch=2 --set run.steps=4 \\
    --set checkpoint.every=2 --set run.dir="$T_TMP/runs/$name"
SH
    t_run "$name: sbatch -N$nodes -n4 dure run in exact mode" 0 \
        timeout 300 sbatch --wait --parsable --chdir="$T_TMP" --output="$T_TMP/$name.out" \
        "$T_TMP/$name.sh"
    [ "$T_RC" -eq 0 ] || tail -20 "$T_TMP/$name.out"
}
exact_job n1x4 1
exact_job n2x2 2
t_eq "the 2-node run had 2 nodes" \
    "$(sed -n 's/.*"nodes": \([0-9]*\).*/\1/p' "$T_TMP/runs/n2x2/manifest.json" | head -1)" 2
t_run "dure verify: 2 nodes x 2 ranks against 1 node x 4: exit 0" 0 \
    "$DURE" verify "$T_TMP/runs/n1x4" "$T_TMP/runs/n2x2"
t_grep "metrics bitwise identical" '^metrics: bitwise identical'
t_grep "step-4 checkpoint bitwise identical" '^checkpoints: step 4: params, adam_m, adam_v .* bitwise identical'
t_grep "verdict IDENTICAL" '^verdict: IDENTICAL'
t_done
