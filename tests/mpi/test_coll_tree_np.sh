#!/usr/bin/env bash
# tests/mpi/test_coll_tree_np.sh - the exact reduce-scatter test at 1, 3 and
# 4 ranks (tests/run.sh runs it at 2): the same bits as the tree over all
# micro-batches on one rank, whatever the world size; 12 micro-batches on 4
# ranks (3 each) exercise the carries.
. "$(dirname "$0")/../lib.sh"
: "${DURE_BUILD:=$T_ROOT/build}"
bin=$DURE_BUILD/tests/mpi/test_coll_tree
[ -x "$bin" ] || t_skip "$bin not built (make tests-build)"
for np in 1 3 4; do
    t_run "exact reduce-scatter on $np rank(s)" 0 mpirun --oversubscribe -np "$np" "$bin"
    t_grep "$np rank(s): every test ran" '\[  PASSED  \] [45] test\(s\)'
done
t_done
