#!/usr/bin/env bash
# tests/cli/test_ci_run.sh - .ci/run runs the README's test command and the
# CPU-only build's suite and ends with one line summing both. The two suites
# are stood in for by a fake `make` on PATH (the real ones take minutes), and
# DURE_TEST_SKIP is cleared (the CPU-only suite that runs this test sets it).
. "$(dirname "$0")/../lib.sh"

fake=$T_TMP/bin
mkdir -p "$fake"
# fake_make TEST_OUTPUT TEST_RC CHECK_OUTPUT CHECK_RC
fake_make() {
    cat > "$fake/make" <<SH
#!/usr/bin/env bash
echo "make \$*\${DURE_TEST_SKIP:+ (skip \$DURE_TEST_SKIP)}" >> "$T_TMP/calls"
[ "\${1#-j}" = "\$1" ] || shift   # parallel compiles: -jN first
case "\$1" in
test) printf '%b' '$1'; exit $2 ;;
check) printf '%b' '$3'; exit $4 ;;
esac
exit 2
SH
    chmod +x "$fake/make"
    rm -f "$T_TMP/calls"
}

fake_make 'unit\n790 passed, 0 failed\n' 0 'more\n780 passed, 0 failed, 2 skipped\n' 0
t_run "both suites pass: exit 0" 0 env -u DURE_TEST_SKIP PATH="$fake:$PATH" bash "$T_ROOT/.ci/run"
t_eq "the last line sums both suites" "$(printf '%s\n' "$T_OUT" | tail -1)" \
    "1570 passed, 0 failed, 2 skipped"
t_eq "it ran make test, then the CPU-only check in build-cpu without the build-independent scripts" \
    "$(cat "$T_TMP/calls")" \
    "$(printf 'make test\nmake -j%s check USE_CUDA=no BUILD=build-cpu (skip %s)' "$(machine_cpus)" \
        'tests/(multinode|fuzz|slurm)/|tests/mpi/.*\.sh$|tests/cli/test_(ckpt|ckpt_verify|cpus|data|data_layouts|plot|shellcheck|ci_run)\.sh$')"

fake_make '790 passed, 0 failed\n' 0 '779 passed, 1 failed\n' 1
t_run "a failure in the CPU-only suite fails the run" 1 env -u DURE_TEST_SKIP PATH="$fake:$PATH" bash "$T_ROOT/.ci/run"
t_eq "and is counted" "$(printf '%s\n' "$T_OUT" | tail -1)" "1569 passed, 1 failed"

fake_make 'cc: error\n' 2 '780 passed, 0 failed\n' 0
t_run "a suite that never ran (build error) fails the run" 1 env -u DURE_TEST_SKIP PATH="$fake:$PATH" bash "$T_ROOT/.ci/run"
t_eq "and counts as one failure" "$(printf '%s\n' "$T_OUT" | tail -1)" "780 passed, 1 failed"
t_grep "saying which" 'make test printed no summary line'
t_done
