#!/usr/bin/env bash
# tests/multinode/test_run.sh - `dure run` of the demo model across
# namespaced nodes, against the same training on one node:
#   2 nodes x 1 rank (srun)   the topology line and the manifest's world;
#                             deterministic mode is bitwise equal to
#                             2 ranks on one node (hier between the nodes,
#                             shm within one: the same sum of 2 addends)
#   2 nodes x 2 ranks (srun)  local ranks and leaders in the manifest;
#                             losses within float32 tolerance of 1 rank
#   2 nodes x 1 rank (dure submit, sbatch -N2, profile tcp): completes,
#                             bitwise equal to the srun run
# shellcheck source=tests/multinode/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/slurm/submit_lib.sh
. "$T_ROOT/tests/slurm/submit_lib.sh"
cd "$T_TMP" || exit 1
n1=${MN_NODES[0]} n2=${MN_NODES[1]}
STEPS=8

t_run "generate a small factory dataset" 0 "$DURE" data gen -o "$T_TMP/factory.h5" \
    --episodes 16 --length 2048 --channels 4 --seed 5
sets=(--set "data.path=$T_TMP/factory.h5" --set "run.steps=$STEPS" --set run.deterministic=true
      --set run.log_every=1 --set run.val_every=0 --set checkpoint.every=0)
# shellcheck disable=SC2317  # called through t_run
run_on() { # DIR LAUNCHER...: dure run of the demo spec into DIR
    local dir=$1; shift
    timeout 180 "$@" "$DURE" run "$T_ROOT/jobs/demo-cpu.ini" "${sets[@]}" --set "run.dir=$T_TMP/$dir"
}
losses() { sed -n 's/.*"loss":\([^,}]*\).*/\1/p' "$1/metrics.jsonl" 2>/dev/null | tr '\n' ' '; }

t_run "1 rank on one node" 0 run_on one1 mpirun -np 1
t_run "2 ranks on one node" 0 run_on one2 mpirun -np 2

t_run "2 nodes x 1 rank under srun" 0 run_on two1 srun --mpi=pmix -N2 -n2
t_grep "the topology is printed" \
    "^topology: 2 node\(s\) x 1 rank\(s\): $n1 rank 0 \(leader 0\), $n2 rank 1 \(leader 1\); local ranks from SLURM_LOCALID$"
t_eq "it is printed once" "$(printf '%s\n' "$T_OUT" | grep -c '^topology:')" 1
t_grep "the table picks hier across nodes" "backend mpi \(algorithms 0:hier, ring segment 256K\)"
t_run "the manifest's world" 0 /usr/bin/python3 -c "import json; print(json.dumps(json.load(open('two1/manifest.json'))['world'], sort_keys=True))"
t_eq "two hosts, one rank each, each its node's leader" "$T_OUT" \
    "{\"hosts\": [{\"leader\": 0, \"local_ranks\": [0], \"name\": \"$n1\", \"ranks\": [0]}, {\"leader\": 1, \"local_ranks\": [0], \"name\": \"$n2\", \"ranks\": [1]}], \"nodes\": 2, \"ranks_per_node\": [1, 1], \"size\": 2}"
t_run "dure verify: 2 nodes x 1 rank against 2 ranks on one node" 9 "$DURE" verify one2 two1
t_grep "the losses and the checkpoint are bitwise identical" "^metrics: bitwise identical"
t_grep "only the placement differs in the manifests" "world\.nodes"

t_run "2 nodes x 2 ranks under srun" 0 run_on two2 srun --mpi=pmix --overcommit -N2 -n4
t_grep "the topology is printed" \
    "^topology: 2 node\(s\) x 2 rank\(s\): $n1 ranks 0-1 \(leader 0\), $n2 ranks 2-3 \(leader 2\)"
t_run "the manifest's hosts" 0 /usr/bin/python3 -c "import json; print([(h['name'], h['leader'], h['ranks'], h['local_ranks']) for h in json.load(open('two2/manifest.json'))['world']['hosts']])"
t_eq "ranks 0-1 and 2-3, local ranks 0 and 1, leaders 0 and 2" "$T_OUT" \
    "[('$n1', 0, [0, 1], [0, 1]), ('$n2', 2, [2, 3], [0, 1])]"
t_run "its losses are those of 1 rank within float32 tolerance" 0 /usr/bin/python3 -c "
import sys
a = [float(x) for x in '$(losses one1)'.split()]
b = [float(x) for x in '$(losses two2)'.split()]
assert len(a) == len(b) == $STEPS, (len(a), len(b))
worst = max(abs(x - y) / abs(x) for x, y in zip(a, b))
print('worst relative difference %.3g' % worst)
sys.exit(worst > 2e-5)"

t_run "dure submit on 2 nodes x 1 rank" 0 "$DURE" submit "$T_ROOT/jobs/demo-cpu.ini" "${sets[@]}" \
    --set run.dir="$T_TMP/sub" --set slurm.nodes=2 --set slurm.ntasks_per_node=1 --set slurm.profile=tcp
job=$(first_job_id)
if wait_for 180 test -e sub/FINISHED; then t_ok "the batch job finished the run"
else t_fail "sub has no FINISHED"; tail -20 sub/*.out; fi
wait_for 20 job_ended "$job" || t_fail "job $job has no completion record"
t_eq "it completed with exit 0" "$(jobcomp_last "$job" ExitCode)" "0:0"
t_eq "on 2 nodes" "$(jobcomp_last "$job" NodeCnt)" 2
t_run "dure verify: the batch job against the srun run" 9 "$DURE" verify two1 sub
t_grep "bitwise identical losses" "^metrics: bitwise identical"
t_done
