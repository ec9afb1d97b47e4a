#!/usr/bin/env bash
# tests/mpi/test_coll_np3.sh - the collectives test at 3 ranks: counts not
# divisible by the world size, rings longer than one step, and the
# deterministic ring order that differs from rank order.
. "$(dirname "$0")/../lib.sh"
: "${DURE_BUILD:=$T_ROOT/build}"
bin=$DURE_BUILD/tests/mpi/test_coll
[ -x "$bin" ] || t_skip "$bin not built (make tests-build)"
t_run "test_coll passes on 3 ranks" 0 mpirun --oversubscribe -np 3 "$bin"
t_grep "every test ran" '\[  PASSED  \] 25 test\(s\)'
t_done
