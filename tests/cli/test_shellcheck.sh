#!/usr/bin/env bash
# tests/cli/test_shellcheck.sh - every shell script in the repo passes shellcheck.
. "$(dirname "$0")/../lib.sh"
cd "$T_ROOT" || exit 1
command -v shellcheck >/dev/null || t_skip "shellcheck not installed (make deps installs it)"
while IFS= read -r f; do
    if out=$(shellcheck -x --source-path=SCRIPTDIR "$f" 2>&1); then
        t_ok "shellcheck $f"
    else
        t_fail "shellcheck $f"; printf '%s\n' "$out" | sed 's/^/    /' | head -30
    fi
done < <(git ls-files '*.sh' .ci/run)
t_done
