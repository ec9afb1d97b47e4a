#!/usr/bin/env bash
# bench/run.sh BUILD_DIR - run every benchmark in bench/run.d/ and collect
# their result lines.
#
# Each bench/run.d/*.sh gets the build dir as $1, prints lines of the form
#   bench: NAME: VALUE UNIT (PEER: VALUE UNIT, ratio R)
# with the peer measured in the same run, and writes the same figures as JSON
# to bench/results/. This runner prints every such line again at the end, so
# the summary is one block. Set DURE_BENCH_FILTER=REGEX to run a subset.
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=tests/cpus.sh
. "$ROOT/tests/cpus.sh"
export DURE_BUILD="$ROOT/$BUILD" DURE="$ROOT/$BUILD/dure"
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
mkdir -p bench/results
FILTER=${DURE_BENCH_FILTER:-.}
lines=$(mktemp); trap 'rm -f "$lines"' EXIT
status=0
shopt -s nullglob
for b in bench/run.d/*.sh; do
    [[ "$b" =~ $FILTER ]] || continue
    echo "=== $b"
    bash "$b" "$BUILD" 2>&1 | tee -a "$lines"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ]; then
        echo "bench runner: $b exited with code $rc"
        status=1
    fi
done
echo
echo "=== summary ($(machine_cpus) cores, $(date -u +%Y-%m-%dT%H:%M:%SZ))"
grep '^bench: ' "$lines" || echo "no benchmark printed a result"
exit $status
