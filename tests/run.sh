#!/usr/bin/env bash
# tests/run.sh BUILD_DIR - run every dure test and end with "N passed, N failed".
#
# Kinds of test, each found by path:
#   BUILD/tests/unit/test_*   cmocka programs, run directly
#   BUILD/tests/mpi/test_*    cmocka programs, run under `mpirun -np 2`
#   tests/cli/test_*.sh       shell tests of the dure command
#   tests/mpi/test_*.sh       shell tests that launch mpirun themselves
#   tests/fuzz/test_*.sh      the libFuzzer harnesses, briefly (make fuzz-smoke)
#   tests/slurm/test_*.sh     shell tests against a real single-node Slurm
#                             cluster that this runner starts once and always stops
#   tests/multinode/test_*.sh the same against a cluster of 3 namespaced nodes
#                             (tests/slurm/nodes.sh)
# cmocka programs are counted by their own summaries; shell tests print
# "ok - ..." / "not ok - ..." lines (tests/lib.sh) and are counted by those.
# A shell test exiting 77 is skipped; any other non-zero exit with no
# "not ok" line counts as one failure. Set DURE_TEST_FILTER=REGEX to run a
# subset (matched against each test's path) and DURE_TEST_SKIP=REGEX to leave
# out the tests whose path matches it.
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
export DURE_BUILD="$ROOT/$BUILD"
export DURE="$DURE_BUILD/dure"
if [ "$(id -u)" -eq 0 ]; then
    # Tests run as root here; users on clusters do not (see README).
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# Two ranks on two cores, and room for a third rank in tests that need it.
export OMPI_MCA_rmaps_base_oversubscribe=1
export NCCL_SOCKET_IFNAME=lo
if [ "${DURE_SAN:-0}" = 1 ] || [[ "$BUILD" == *asan* ]]; then
    # fast_unwind_on_malloc=0: Open MPI's plugins are built without frame
    # pointers, so the fast unwinder stops inside them and their leaks at
    # MPI_Finalize show as "<unknown module>", beyond lsan.supp's reach.
    export ASAN_OPTIONS="protect_shadow_gap=0:detect_leaks=1:abort_on_error=0:fast_unwind_on_malloc=0"
    export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi
if [[ "$BUILD" == *tsan* ]]; then
    # ThreadSanitizer (make tsan) sees dure's own threads. OpenMP's pool
    # synchronizes inside libgomp, which it cannot see: OMP_THREAD_LIMIT=1
    # runs every parallel region on its caller (whatever omp_set_num_threads
    # asks), else every report would be libgomp's. A report fails the test:
    # the process exits 66.
    export TSAN_OPTIONS="suppressions=$ROOT/tests/tsan.supp:second_deadlock_stack=1:history_size=7:halt_on_error=0${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
    export OMP_THREAD_LIMIT=1
fi
LOGDIR="$DURE_BUILD/test-logs"
rm -rf "$LOGDIR"; mkdir -p "$LOGDIR"
FILTER=${DURE_TEST_FILTER:-.}
SKIP=${DURE_TEST_SKIP:-}

# wanted PATH: the test at PATH is selected by the filter and not skipped.
wanted() {
    [[ "$1" =~ $FILTER ]] && { [ -z "$SKIP" ] || ! [[ "$1" =~ $SKIP ]]; }
}
TIMEOUT=${DURE_TEST_TIMEOUT:-300}

passed=0 failed=0 skipped=0
failures=()
cmocka_summaries=()
script_files=0 script_checks=0

count_cmocka() { # name logfile exitcode
    local name=$1 log=$2 rc=$3 p f
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    p=${p:-0}; f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "[  FAILED  ] $name exited with code $rc"
        f=1
    fi
    passed=$((passed + p)); failed=$((failed + f))
    [ "$f" -eq 0 ] || failures+=("$name")
    cmocka_summaries+=("$(printf '%-36s [  PASSED  ] %d test(s)%s' "$name" "$p" \
        "$([ "$f" -eq 0 ] || printf '  [  FAILED  ] %d test(s)' "$f")")")
}

count_script() { # name logfile exitcode
    local name=$1 log=$2 rc=$3 p f
    p=$(grep -c '^ok - ' "$log"); f=$(grep -c '^not ok - ' "$log")
    script_files=$((script_files + 1)); script_checks=$((script_checks + p + f))
    if [ "$rc" -eq 77 ]; then
        skipped=$((skipped + 1)); echo "[  SKIPPED ] $name: $(tail -1 "$log")"; return
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "not ok - $name exited with code $rc"
        f=1
    fi
    passed=$((passed + p)); failed=$((failed + f))
    [ "$f" -eq 0 ] || failures+=("$name")
}

# A test writes only under its own temporary directory. Files that appear
# in the source tree while it runs (untracked, not ignored: build output is
# ignored) fail it by name; they are left in place for the author to see.
untracked() {
    git -C "$ROOT" ls-files --others --exclude-standard -z 2>/dev/null | tr '\0' '\n' | sort
}
STRAY_BEFORE=$(untracked)

stray_check() { # name
    local now new
    now=$(untracked)
    new=$(comm -13 <(printf '%s\n' "$STRAY_BEFORE") <(printf '%s\n' "$now") | sed '/^$/d')
    STRAY_BEFORE=$now
    [ -z "$new" ] && return
    echo "not ok - $1 wrote into the source tree (outside its temporary directory):"
    printf '%s\n' "$new" | while IFS= read -r f; do printf '    %q\n' "$f"; done
    failed=$((failed + 1)); failures+=("$1 (stray files)")
}

run_logged() { # log cmd...
    local log=$1; shift
    timeout --kill-after=10 "$TIMEOUT" "$@" > >(tee "$log") 2>&1
    local rc=$?
    wait
    return $rc
}

shopt -s nullglob
for t in "$DURE_BUILD"/tests/unit/test_*; do
    wanted "$t" || continue
    name=unit/$(basename "$t")
    echo "=== $name"
    run_logged "$LOGDIR/${name//\//_}.log" "$t"; rc=$?
    count_cmocka "$name" "$LOGDIR/${name//\//_}.log" $rc
    stray_check "$name"
done
for t in "$DURE_BUILD"/tests/mpi/test_*; do
    wanted "$t" || continue
    name=mpi/$(basename "$t")
    echo "=== $name (mpirun -np 2)"
    run_logged "$LOGDIR/${name//\//_}.log" mpirun -np 2 "$t"; rc=$?
    count_cmocka "$name" "$LOGDIR/${name//\//_}.log" $rc
    stray_check "$name"
done
for t in tests/cli/test_*.sh tests/mpi/test_*.sh tests/fuzz/test_*.sh; do
    wanted "$t" || continue
    name=${t#tests/}
    echo "=== $name"
    run_logged "$LOGDIR/${name//\//_}.log" bash "$t"; rc=$?
    count_script "$name" "$LOGDIR/${name//\//_}.log" $rc
    stray_check "$name"
done

# run_cluster_tests KIND TEST...: start a cluster (KIND single or
# multi-node), run TESTs against it with its env.sh sourced, always stop it.
run_cluster_tests() {
    local kind=$1 dir t name rc up=1; shift
    [ $# -gt 0 ] || return 0
    dir=$(mktemp -d "/tmp/dure-$kind.XXXXXX")
    export DURE_SLURM_DIR="$dir"
    trap 'bash tests/slurm/cluster.sh down "$dir" >/dev/null 2>&1' EXIT
    trap 'exit 130' INT TERM HUP
    if [ "$kind" = slurm ]; then
        echo "=== slurm: starting a single-node cluster in $dir"
        bash tests/slurm/cluster.sh up "$dir" > "$LOGDIR/${kind}_up.log" 2>&1 || up=0
    else
        # Three namespaced nodes of one CPU each. A tag of its own unless
        # DURE_CLUSTER_TAG says (and with it DURE_CLUSTER_NET): another
        # engineer's or CI's cluster may run beside this one; a random tag
        # whose subnet is taken gets another try.
        for _ in 1 2 3; do
            up=1
            echo "=== multinode: starting a 3-node cluster in $dir"
            env DURE_CLUSTER_NODES=3 DURE_CLUSTER_CPUS=1 \
                DURE_CLUSTER_TAG="${DURE_CLUSTER_TAG:-t$(od -An -N2 -tx2 /dev/urandom | tr -d ' ')}" \
                bash tests/slurm/cluster.sh up "$dir" > "$LOGDIR/${kind}_up.log" 2>&1 || up=0
            [ $up -eq 1 ] || [ -n "${DURE_CLUSTER_TAG:-}" ] || continue
            break
        done
    fi
    if [ $up -eq 1 ]; then
        # shellcheck disable=SC1091
        . "$dir/env.sh"
        for t in "$@"; do
            name=${t#tests/}
            echo "=== $name"
            run_logged "$LOGDIR/${name//\//_}.log" bash "$t"; rc=$?
            count_script "$name" "$LOGDIR/${name//\//_}.log" $rc
            stray_check "$name"
        done
    else
        cat "$LOGDIR/${kind}_up.log"
        echo "not ok - $kind cluster did not start (log above)"
        failed=$((failed + $#)); failures+=("$kind cluster start")
    fi
    echo "=== $kind: stopping the cluster"
    if bash tests/slurm/cluster.sh down "$dir"; then
        cp -r "$dir/log" "$LOGDIR/$kind-daemons" && rm -rf "$dir"
    else
        failed=$((failed + 1)); failures+=("$kind cluster stop")
    fi
    trap - EXIT INT TERM HUP
    unset DURE_SLURM_DIR
}

slurm_tests=() multinode_tests=()
for t in tests/slurm/test_*.sh; do
    wanted "$t" && slurm_tests+=("$t")
done
for t in tests/multinode/test_*.sh; do
    wanted "$t" && multinode_tests+=("$t")
done
run_cluster_tests slurm "${slurm_tests[@]}"
run_cluster_tests multinode "${multinode_tests[@]}"

echo
echo "=== cmocka summaries"
printf '%s\n' "${cmocka_summaries[@]}"
echo "=== shell tests: $script_checks checks in $script_files scripts"
if [ ${#failures[@]} -gt 0 ]; then
    echo "failed: ${failures[*]} (logs in $LOGDIR)"
fi
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
