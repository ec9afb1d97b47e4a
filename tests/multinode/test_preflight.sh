#!/usr/bin/env bash
# tests/multinode/test_preflight.sh - `dure preflight` on 3 namespaced
# nodes, with a fault planted on chosen nodes for every check (mounts inside
# one node's mount namespace through `cluster.sh exec`, a fabric limit on
# one node's link, a clock skew injected on one host):
#   pass        every check on 3 nodes
#   n2          no data file, another run directory, another dure binary;
#   n3          its clock 5 s ahead
#   n2          a 100 Mbit/s link against a 40 MB/s minimum;
#   n3          SIGUSR2 blocked by a wrapper, checkpoint.dir read-only
#   2 x 2       2 ranks on 1 CPU, a model too large for memory, no GPU
#   budget      every link at 1 Mbit/s: exit 124 naming the budget
# and the batch script: a 2-node job whose first node lacks the data is
# requeued without it, passes on the other two and trains.
# shellcheck source=tests/multinode/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/slurm/submit_lib.sh
. "$T_ROOT/tests/slurm/submit_lib.sh"
[ ${#MN_NODES[@]} -ge 3 ] || t_skip "these tests need 3 nodes"
cd "$T_TMP" || exit 1
n1=${MN_NODES[0]} n2=${MN_NODES[1]} n3=${MN_NODES[2]}

# Every mount planted in a node goes when the test ends, whatever happens:
# the cluster is shared with the other tests.
mounts=()
unplant() {
    local m
    for m in "${mounts[@]}"; do
        # shellcheck disable=SC2086  # "NODE PATH"
        set -- $m
        # A process of the last job may still run the planted binary or sit
        # in the planted directory (busy): detach it then, or the next test
        # on this cluster runs the plant ("real-dure: not found").
        bash "$MN_CLUSTER" exec "$DURE_SLURM_DIR" "$1" umount "$2" 2>/dev/null ||
            bash "$MN_CLUSTER" exec "$DURE_SLURM_DIR" "$1" umount -l "$2" ||
            echo "# unplant: $2 stays mounted on $1"
    done
    mounts=()
    bash "$MN_CLUSTER" fabric "$DURE_SLURM_DIR" none > /dev/null 2>&1
}
trap 'unplant; rm -rf "$T_TMP"' EXIT
plant() { # NODE PATH MOUNT-ARGS...: mount over PATH inside NODE only
    local node=$1 path=$2; shift 2
    bash "$MN_CLUSTER" exec "$DURE_SLURM_DIR" "$node" mount "$@" "$path" && mounts+=("$node $path")
}

mkdir -p data pf
t_run "generate a small dataset" 0 "$DURE" data gen -o "$T_TMP/data/factory.h5" \
    --episodes 16 --length 2048 --channels 4 --seed 5
sets=(--set "data.path=$T_TMP/data/factory.h5" --set "run.dir=$T_TMP/pf/run" --set run.val_every=0)
# shellcheck disable=SC2317  # called through t_run
pf() { # NODES RANKS [dure preflight options]
    local n=$1 np=$2; shift 2
    timeout 120 srun --mpi=pmix --overcommit -N "$n" -n "$np" "$DURE" preflight \
        "$T_ROOT/jobs/demo-cpu.ini" "${sets[@]}" "$@"
}
# row NODE: NODE's line of the table in $T_OUT.
row() { printf '%s\n' "$T_OUT" | grep "^$1 "; }

t_run "preflight passes on 3 healthy nodes" 0 pf 3 3
t_grep "the table has a column per check" '^node +ranks +versions +cpus +gpus +memory +run dir +data +clock +usr2 +network'
for n in "$n1" "$n2" "$n3"; do
    t_eq "$n: every check passed (gpus not asked)" \
        "$(row "$n" | grep -o '[✓✗-] ' | tr -d ' \n')" "✓✓-✓✓✓✓✓✓"
done
t_grep "SIGUSR2 reached every rank" "^$n3 .* ✓ received "
t_grep "the verdict" '^verdict: PASS: 3 node\(s\), 3 rank\(s\): every check passed$'

# n2: no data, another directory at run.dir, another dure binary; n3: clock.
cp "$DURE" other-dure && printf 'x' >> other-dure
plant "$n2" "$T_TMP/data" -t tmpfs none
plant "$n2" "$T_TMP/pf" -t tmpfs none
plant "$n2" "$DURE" --bind "$T_TMP/other-dure"
export DURE_PREFLIGHT_CLOCK_SKEW="$n3:5"
t_run "preflight fails: data, run dir and binary on $n2, clock on $n3" 10 \
    pf 3 3 --bad-nodes "$T_TMP/excluded"
unset DURE_PREFLIGHT_CLOCK_SKEW
unplant
t_grep "the verdict names both nodes and their checks" \
    "^verdict: FAIL: 2 of 3 node\(s\) bad: $n2 \(versions, run dir, data\) $n3 \(clock\)$"
t_grep "$n2's data file is missing" "^$n2: data: .*$T_TMP/data/factory.h5.*No such file"
t_grep "$n2 sees another run directory" "^$n2: run dir: run.dir '$T_TMP/pf/run' is not the directory rank 0 sees"
t_grep "$n2 runs another binary" "^$n2: versions: rank 1 runs another dure binary: sha256 "
t_grep "$n3's clock is 5 s ahead" "^$n3: clock: the clock is \+(4\.9|5\.0)[0-9]* s off rank 0's \($n1\)"
t_grep "$n1 passed every check" "^$n1 .*✓ same .*✓ received"
t_grep "each bad node is an error line on stderr" "preflight: node $n2 failed data: "
t_eq "the exclusion list names the bad nodes" "$(cat excluded)" "$(printf '%s\n' "$n2" "$n3")"

# n2: a slow link; n3: SIGUSR2 blocked by a wrapper, checkpoint.dir read-only.
cp "$DURE" real-dure
cat > blocking-dure <<PY
#!/usr/bin/python3
# A launcher wrapper that blocks SIGUSR2 before it starts dure.
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
os.execv("$T_TMP/real-dure", ["$T_TMP/real-dure"] + sys.argv[1:])
PY
chmod +x blocking-dure
mkdir -p pf/run/checkpoints
bash "$MN_CLUSTER" fabric "$DURE_SLURM_DIR" 100mbit "$n2" > /dev/null
plant "$n3" "$DURE" --bind "$T_TMP/blocking-dure"
plant "$n3" "$T_TMP/pf/run/checkpoints" -t tmpfs -o ro none
t_run "preflight fails: a slow link on $n2, SIGUSR2 and checkpoints on $n3" 10 \
    pf 3 3 --min-inter 0.04 --bad-nodes "$T_TMP/excluded"
unplant
t_grep "the verdict" "^verdict: FAIL: 2 of 3 node\(s\) bad: $n2 \(network\) $n3 \(run dir, usr2\)$"
t_grep "$n2: all of its links are slow" "^$n2: network: every link of this node is slow: .* below the site's minimum 0\.040"
t_grep "$n3: SIGUSR2 blocked" "^$n3: usr2: SIGUSR2 sent by scancel did not reach rank 2 within 5 s: it is blocked in this process"
t_grep "$n3: checkpoint.dir read-only" "^$n3: run dir: checkpoint.dir '$T_TMP/pf/run/checkpoints' is not writable: Read-only file system"
t_grep "$n1 passes: its link to $n3 is fast" "^$n1 .*✓ -/[0-9.]+-[0-9.]+ *$"
t_eq "the exclusion list gained $n2 and $n3 once each" "$(cat excluded)" "$(printf '%s\n' "$n2" "$n3")"

# n2: a site profile of its own: its environment asks another ring segment.
# Every communicator would refuse, naming the rank; preflight names the node
# and leaves the network unmeasured. The wrapper execs dure: same binary.
cat > segment-dure <<SH
#!/bin/sh
DURE_RING_SEGMENT_KIB=1024 exec "$T_TMP/real-dure" "\$@"
SH
chmod +x segment-dure
plant "$n2" "$DURE" --bind "$T_TMP/segment-dure"
t_run "preflight fails: another ring segment in $n2's environment" 10 \
    pf 3 3 --bad-nodes "$T_TMP/excluded-env"
unplant
t_grep "the verdict names the node" "^verdict: FAIL: 1 of 3 node\(s\) bad: $n2 \(versions\)$"
t_grep "and the rank and both environments" "^$n2: versions: rank 1's environment for dure's collectives is 'DURE_ALGO_TABLE=\(unset\) DURE_RING_SEGMENT_KIB=1024', the other ranks' 'DURE_ALGO_TABLE=\(unset\) DURE_RING_SEGMENT_KIB=\(unset\)'"
t_grep "the network is not measured" "^$n1 .* - - +$"
t_eq "the exclusion list names $n2" "$(cat excluded-env)" "$n2"

t_run "2 ranks per 1-CPU node, a model too large, a GPU asked for" 10 pf 2 4 \
    --set model.d_model=4096 --set model.n_layers=32 --set model.n_heads=32 --set run.device=cuda \
    --bad-nodes "$T_TMP/all-bad"
t_grep "every node failed: none is excluded" "^preflight: every node failed: the job, not a node, is at fault; none added to "
t_eq "the exclusion list was not written" "$(cat all-bad 2>/dev/null)" ""
for n in "$n1" "$n2"; do
    t_grep "$n: oversubscribed" "^$n: cpus: 2 ranks share the same 1 CPU\(s\)"
    t_grep "$n: memory" "^$n: memory: the job needs [0-9.]+ GiB here \([0-9.]+ GiB per rank x 2\), but [0-9.]+ GiB are available"
    t_grep "$n: no GPU" "^$n: gpus: rank [0-9]: no CUDA device visible"
done

# The links at 1 Mbit/s: the 4 MiB exchange between nodes needs 30 s, far
# past a budget of 2 s however fast the machine.
t_run "slow every link" 0 bash "$MN_CLUSTER" fabric "$DURE_SLURM_DIR" 1mbit "$n1" "$n2" "$n3"
t_run "a budget too short" 124 pf 2 2 --budget 2
t_grep "names the budget" "dure preflight: the time budget of 2 s ran out"
t_run "the links are unlimited again" 0 bash "$MN_CLUSTER" fabric "$DURE_SLURM_DIR" none
t_run "a bad option" 2 "$DURE" preflight --budget soon "$T_ROOT/jobs/demo-cpu.ini"
t_grep "names it" "--budget 'soon' is not a number >= 0"

# The batch script: preflight first; a bad node is excluded and the job
# requeued; on the two good nodes it passes and trains. n2's dure ends its
# preflight a second after rank 0 has returned the verdict (a slow exit, as
# under a sanitizer's exit-time checks): an srun that killed it then
# reported 143 instead of 10, and the job failed instead of requeueing. The
# trap is a handler, not an ignore, so dure still gets SIGUSR2 by default.
cat > late-dure <<SH
#!/bin/sh
[ "\$1" = preflight ] || exec "$T_TMP/real-dure" "\$@"
trap : USR2
"$T_TMP/real-dure" "\$@"
rc=\$?
sleep 1
exit \$rc
SH
chmod +x late-dure
plant "$n2" "$DURE" --bind "$T_TMP/late-dure"
plant "$n1" "$T_TMP/data" -t tmpfs none
t_run "dure submit a 2-node job" 0 "$DURE" submit "$T_ROOT/jobs/demo-cpu.ini" "${sets[@]}" \
    --set run.dir="$T_TMP/sub" --set run.steps=4 --set checkpoint.every=0 \
    --set slurm.nodes=2 --set slurm.ntasks_per_node=1 --set slurm.profile=tcp
job=$(first_job_id)
if wait_for 150 test -e sub/FINISHED; then t_ok "the job finished the run"
else t_fail "sub has no FINISHED"; tail -30 sub/*.out; fi
unplant
T_OUT=$(cat sub/*_"$job".out 2>&1)
t_grep "the batch script requeued the job without $n1" \
    "^dure-batch: preflight found bad node\(s\): requeueing job $job without $n1 \(restart 1 of 3\)"
t_grep "the first preflight named $n1's missing data" "preflight: node $n1 failed data"
t_grep "the requeued job started again" "^dure-batch: job $job on .*: restart 1 "
t_eq "RUN_DIR/excluded_nodes" "$(cat sub/excluded_nodes)" "$n1"
t_run "the run's hosts" 0 /usr/bin/python3 -c "import json; print(' '.join(h['name'] for h in json.load(open('sub/manifest.json'))['world']['hosts']))"
t_eq "it trained on the two good nodes" "$T_OUT" "$n2 $n3"
t_done
