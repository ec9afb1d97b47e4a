#!/usr/bin/env bash
# tests/fuzz/run.sh smoke|campaign [FUZZ_BUILD] - run the libFuzzer harnesses
# of tests/fuzz/ (built by `make fuzz-build` into FUZZ_BUILD/tests/fuzz/).
#
#   smoke     every target: its regression inputs (regress/TARGET/) and seed
#             corpus (corpus/TARGET/) once each, then FUZZ_SMOKE_SECONDS
#             (default 4) of fuzzing from the seeds in a temporary directory;
#             the targets matching FUZZ_SMOKE_FIXED (default: those that
#             hand crafted bytes to libhdf5, whose crashes the campaigns still
#             look for; tests/fuzz/README.md) run FUZZ_SMOKE_RUNS inputs
#             (default 300) from a fixed seed instead, so that the test gives
#             the same answer every time.
#             Prints "ok - ..." / "not ok - ..." per target (tests/lib.sh).
#   campaign  every target one after another, one child process at a time
#             (-fork=1): FUZZ_RUNS executions (default 1000000), stopping
#             early after FUZZ_SECONDS when that is set; the corpus grows in
#             FUZZ_BUILD/corpus/TARGET/ and carries over to the next campaign.
#             Prints one `bench:` line per target (executions, edges,
#             features) and updates the targets' entries (with the commit
#             fuzzed) in
#             bench/results/fuzz.json. A crash, leak, timeout, OOM or
#             sanitizer report is saved as FUZZ_BUILD/artifacts/TARGET-* and
#             fails it.
# FUZZ_TARGETS=REGEX picks targets (json, jobspec, h5_dure, ...).
set -u
MODE=${1:?usage: tests/fuzz/run.sh smoke|campaign [FUZZ_BUILD]}
BUILD=${2:-build-fuzz}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=tests/cpus.sh
. "$ROOT/tests/cpus.sh"
BIN="$ROOT/$BUILD/tests/fuzz"
FILTER=${FUZZ_TARGETS:-.}
# Leaks are checked after every input; a slow input is a hang past 10 s;
# more than 2 GiB resident is a failure. An absurd allocation (a size read
# from a crafted file) returns NULL as malloc does outside ASan, and the
# code must cope: libFuzzer's own malloc limit is set out of its way.
COMMON=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1048576 -detect_leaks=1
        -print_final_stats=1)
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# libhdf5 leaks on some failed opens of crafted files (H5Fopen of a damaged
# root group); those are suppressed as in `make asan`. Handles dure leaves
# open are caught by the harnesses themselves (fuzz_expect_h5_closed).
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"
# The CSV harness hashes columns: the key comes from here, as for the CLI.
export DURE_ANON_KEY="fuzzing-key-0123456789abcdef"

targets=()
for src in tests/fuzz/fuzz_*.c; do
    t=$(basename "$src" .c); t=${t#fuzz_}
    [[ "$t" =~ $FILTER ]] && targets+=("$t")
done
[ ${#targets[@]} -gt 0 ] || { echo "no fuzz target matches '$FILTER'"; exit 1; }
for t in "${targets[@]}"; do
    [ -x "$BIN/fuzz_$t" ] || { echo "not ok - fuzz $t: $BIN/fuzz_$t is not built (make fuzz-build)"; exit 1; }
done

# stat NAME LOG: libFuzzer's final statistic NAME.
stat() { sed -n "s/^stat::$1: *\([0-9]*\).*/\1/p" "$2" | tail -1; }
# cov LOG: "EDGES FEATURES" from the last status line.
cov() { grep -o 'cov: [0-9]* ft: [0-9]*' "$1" | tail -1 | awk '{print $2, $4}'; }

inputs() { # TARGET: the committed inputs, one per line
    find "tests/fuzz/regress/$1" "tests/fuzz/corpus/$1" -type f 2>/dev/null | sort
}

dict_of() { # TARGET: -dict=FILE when the target has a dictionary
    [ -f "tests/fuzz/dict/$1.dict" ] && echo "-dict=tests/fuzz/dict/$1.dict"
}

smoke() {
    local failed=0 t log n
    tmp=$(mktemp -d /tmp/dure-fuzz-smoke.XXXXXX)
    trap 'rm -rf "$tmp"' EXIT
    for t in "${targets[@]}"; do
        log="$tmp/$t.log"
        mapfile -t files < <(inputs "$t")
        if [ ${#files[@]} -gt 0 ] &&
           ! "$BIN/fuzz_$t" "${COMMON[@]}" -artifact_prefix="$tmp/$t-" "${files[@]}" \
               > "$log" 2>&1; then
            echo "not ok - fuzz $t: a committed input fails:"; tail -30 "$log" | sed 's/^/    /'
            failed=$((failed + 1)); continue
        fi
        echo "ok - fuzz $t: ${#files[@]} regression and seed inputs replay"
        local how=(-max_total_time="${FUZZ_SMOKE_SECONDS:-4}")
        [[ "$t" =~ ${FUZZ_SMOKE_FIXED:-^(ckpt|h5_.*)$} ]] &&
            how=(-seed=1 -runs="${FUZZ_SMOKE_RUNS:-300}")
        mkdir -p "$tmp/corpus-$t"
        # shellcheck disable=SC2046
        if ! "$BIN/fuzz_$t" "${COMMON[@]}" $(dict_of "$t") "${how[@]}" \
               -artifact_prefix="$tmp/$t-" "$tmp/corpus-$t" "tests/fuzz/corpus/$t" \
               > "$log" 2>&1; then
            echo "not ok - fuzz $t: fuzzing found a failure:"; grep -A30 -m1 -E 'ERROR|property broken|runtime error' "$log" | sed 's/^/    /'
            failed=$((failed + 1)); continue
        fi
        n=$(stat number_of_executed_units "$log")
        echo "ok - fuzz $t: ${n:-?} executions, no failure (edges, features: $(cov "$log"))"
    done
    [ "$failed" -eq 0 ]
}

campaign() {
    local runs=${FUZZ_RUNS:-1000000} secs=${FUZZ_SECONDS:-} status=0 t log
    local limit corpus n edges ft wall per rows=() start rc
    mkdir -p "$BUILD/fuzz-logs" "$BUILD/artifacts" bench/results
    limit=(-runs="$runs")
    [ -z "$secs" ] || limit+=(-max_total_time="$secs")
    for t in "${targets[@]}"; do
        corpus="$BUILD/corpus/$t"; log="$BUILD/fuzz-logs/$t.log"
        mkdir -p "$corpus"
        echo "=== fuzz $t (${limit[*]}, load $(cut -d' ' -f1 /proc/loadavg))"
        start=$SECONDS
        # One child process at a time (-fork=1: one core), restarted now and
        # then, so that what libhdf5 leaks on failed opens of crafted files
        # (suppressed, tests/lsan.supp) does not add up to the RSS limit over
        # a million inputs. A crash, leak, timeout or OOM stops the campaign.
        # shellcheck disable=SC2046
        "$BIN/fuzz_$t" "${COMMON[@]}" -fork=1 $(dict_of "$t") "${limit[@]}" \
            -artifact_prefix="$BUILD/artifacts/$t-" "$corpus" "tests/fuzz/corpus/$t" \
            > "$log" 2>&1
        rc=$?
        wall=$((SECONDS - start))
        # Fork mode's status lines: "#EXECS: cov: EDGES ft: FEATURES ...".
        read -r n edges ft <<< "$(sed -n 's/^#\([0-9]*\): cov: \([0-9]*\) ft: \([0-9]*\).*/\1 \2 \3/p' "$log" | tail -1)"
        n=${n:-0}
        per=$((n / (wall > 0 ? wall : 1)))
        # Fork mode goes on past a child's timeout or OOM, counting them in
        # "oom/timeout/crash: O/T/C": any of the three fails the target.
        if [ "$rc" -ne 0 ] || grep -qE 'oom/timeout/crash: ([0-9]+/)*0*[1-9]' "$log"; then
            rc=1
            echo "fuzz $t: FAILED after $n executions (log $log):"
            grep -A30 -m1 -E 'ERROR|property broken|runtime error' "$log" | sed 's/^/    /'
            status=1
        fi
        echo "bench: fuzz_$t: $n executions (target: $runs executions, ratio $(awk -v a="$n" -v b="$runs" 'BEGIN{printf "%.2f", a/b}')); edges $edges, features $ft, ${wall} s, ${per} exec/s, $( [ "$rc" -eq 0 ] && echo 'no failure' || echo FAILED)"
        rows+=("$t $n ${edges:-0} ${ft:-0} $wall $per $(find "$corpus" -type f | wc -l) $rc $(cut -d' ' -f1 /proc/loadavg)")
    done
    # bench/results/fuzz.json: this campaign's targets replace their entries;
    # the others keep theirs (targets run one at a time, in several sessions).
    local rowfile
    rowfile=$(mktemp)
    printf '%s\n' "${rows[@]}" > "$rowfile"
    python3 - bench/results/fuzz.json "$runs" "${secs:-null}" \
        "$(clang --version | head -1)" "$(pkg-config --modversion hdf5-openmpi 2>/dev/null)" \
        "$(machine_cpus)" "$rowfile" "$(git rev-parse --short HEAD 2>/dev/null)" <<'PY'
import json, os, sys, time
path, runs, secs, clang, hdf5, ncpu, rowfile, rev = sys.argv[1:9]
try:
    with open(path) as f:
        old = {t["target"]: t for t in json.load(f).get("targets", [])}
except (OSError, ValueError):
    old = {}
for line in open(rowfile).read().split("\n"):
    if not line.strip():
        continue
    t, n, e, ft, wall, per, files, rc, load = line.split()
    old[t] = {"target": t, "executions": int(n), "edges": int(e), "features": int(ft),
              "seconds": int(wall), "exec_per_s": int(per), "corpus_files": int(files),
              "failed": rc != "0", "target_executions": int(runs),
              "seconds_limit": None if secs == "null" else int(secs),
              "loadavg_1m_end": float(load), "mode": "fork=1", "rev": rev or None,
              "date": time.strftime("%Y-%m-%d", time.gmtime())}
doc = {"name": "fuzz", "unit": "executions", "ncpu": int(ncpu), "clang": clang,
       "hdf5": hdf5, "targets": [old[k] for k in sorted(old)]}
with open(path + ".tmp", "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
os.replace(path + ".tmp", path)
PY
    rm -f "$rowfile"
    echo "fuzz: wrote bench/results/fuzz.json"
    return $status
}

case $MODE in
smoke) smoke ;;
campaign) campaign ;;
*) echo "usage: tests/fuzz/run.sh smoke|campaign [FUZZ_BUILD]" >&2; exit 2 ;;
esac
