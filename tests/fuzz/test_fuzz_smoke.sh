#!/usr/bin/env bash
# tests/fuzz/test_fuzz_smoke.sh - every libFuzzer harness of tests/fuzz/:
# its regression inputs and seeds replayed, then a few seconds of fuzzing
# (tests/fuzz/run.sh smoke). `make check` builds the harnesses into
# build-fuzz/ when clang and libFuzzer are installed (`make deps`);
# without them this test is skipped.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
cd "$T_ROOT" || exit 1
command -v clang > /dev/null || t_skip "clang is not installed (make deps installs it)"
[ -f "$(clang -print-resource-dir)/lib/linux/libclang_rt.fuzzer-$(uname -m).a" ] ||
    t_skip "libFuzzer is not installed (make deps installs libclang-rt-14-dev)"
T_OUT=$(bash tests/fuzz/run.sh smoke "$FUZZ_BUILD" 2>&1)
T_RC=$?
printf '%s\n' "$T_OUT" | grep -E '^(ok|not ok) - |^    '
[ "$T_RC" -eq 0 ] || T_FAILS=$((T_FAILS + 1))
t_done
