# tests/lib.sh - helpers for shell tests; source it, then call t_* and t_done.
# Output: "ok - DESC" or "not ok - DESC" per check (counted by tests/run.sh).
# shellcheck shell=bash
T_FAILS=0
T_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=tests/cpus.sh
. "$T_ROOT/tests/cpus.sh"
: "${DURE:=$T_ROOT/build/dure}"
T_TMP=$(mktemp -d /tmp/dure-test.XXXXXX)
trap 'rm -rf "$T_TMP"' EXIT
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

t_ok()   { echo "ok - $*"; }
t_fail() { echo "not ok - $*"; T_FAILS=$((T_FAILS + 1)); }

# t_run DESC EXPECTED_RC CMD... : run CMD, keep stdout+stderr in $T_OUT.
t_run() {
    local desc=$1 want=$2; shift 2
    T_OUT=$("$@" 2>&1); T_RC=$?
    if [ "$T_RC" -eq "$want" ]; then t_ok "$desc (exit $T_RC)"
    else t_fail "$desc: exit $T_RC, wanted $want; output:"; printf '%s\n' "$T_OUT" | sed 's/^/    /' | head -40
    fi
}

# t_grep DESC REGEX : the last t_run's output matches REGEX (grep -E).
t_grep() {
    if printf '%s\n' "$T_OUT" | grep -Eq -- "$2"; then t_ok "$1"
    else t_fail "$1: output does not match /$2/; output:"; printf '%s\n' "$T_OUT" | sed 's/^/    /' | head -40
    fi
}

# t_eq DESC GOT WANT
t_eq() {
    if [ "$2" = "$3" ]; then t_ok "$1"; else t_fail "$1: got '$2', wanted '$3'"; fi
}

# t_skip REASON : skip the whole test (exit 77, counted as skipped).
t_skip() { echo "skip: $*"; exit 77; }

t_done() { [ "$T_FAILS" -eq 0 ]; exit $?; }
