#!/usr/bin/env bash
# tests/multinode/test_coll.sh - dure's collectives across namespaced
# nodes: tests/mpi/test_coll_hier (every collective of algo hier against
# exact values, ZeRO's ranges, the deterministic order, the built-in table)
# under srun at 2 x 1 (the direct exchange and the ring between nodes),
# 2 x 2 (shm within, a rail between), 3 x 1 and 3 x 2 (a rail of 3, not a
# power of 2) and 2 + 1 ranks (nodes of unequal size: hier refused, auto
# falls back).
# shellcheck source=tests/multinode/lib.sh
. "$(dirname "$0")/lib.sh"
: "${DURE_BUILD:=$T_ROOT/build}"
bin=$DURE_BUILD/tests/mpi/test_coll_hier
[ -x "$bin" ] || t_skip "$bin not built (make tests-build)"
[ ${#MN_NODES[@]} -ge 3 ] || t_skip "these tests need 3 nodes"

for p in "2 2 equal nodes in blocks" "2 4 equal nodes in blocks" "3 3 equal nodes in blocks" \
    "3 6 equal nodes in blocks" "2 3 nodes of unequal size"; do
    read -r n np what <<< "$p"
    t_run "test_coll_hier on $n nodes, $np ranks" 0 \
        timeout 120 srun --mpi=pmix --overcommit -N "$n" -n "$np" "$bin"
    t_grep "it ran on $np rank(s) on $n node(s), $what" "^placement: $np rank\(s\) on $n node\(s\), $what$"
    if [ "$what" = "nodes of unequal size" ]; then
        t_grep "hier's tests skip, the placement tests pass" '\[  PASSED  \] 2 test\(s\)'
    else
        t_grep "every test passed" '\[  PASSED  \] 6 test\(s\)'
    fi
done
t_done
