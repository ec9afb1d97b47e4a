#!/usr/bin/env bash
# tests/mpi/test_run_demo.sh - `make demo`'s script end to end, shortened to
# 100 steps: three plants' data, 2-rank training on their masked mixture
# with progress per plant, the plot, and a validation loss at most half the
# naive baseline.
. "$(dirname "$0")/../lib.sh"

BUILD_REL=${DURE_BUILD#"$T_ROOT"/}
T_OUT=$(DURE_DEMO_DIR="$T_TMP/demo" bash "$T_ROOT/launcher/demo.sh" "${BUILD_REL:-build}" \
    --set run.steps=100 --set run.val_every=50 --set run.log_every=20 2>&1); T_RC=$?
t_eq "the demo script succeeds (exit $T_RC)" "$T_RC" 0
[ "$T_RC" -eq 0 ] || printf '%s\n' "$T_OUT" | tail -30 | sed 's/^/    /'
t_grep "it generates the factory" 'wrote .*/factory\.h5: 64 episodes, 8 channels at 100 Hz'
t_grep "and two other plants at its rate" 'wrote .*/mill\.h5: 48 episodes, 8 channels at 100 Hz'
t_grep "it trains on their union of channels, masked" \
    "16 channels in all, each window masked to its dataset's \(factory 8, arm 8, mill 8\)"
t_grep "it shows progress per plant with an ETA" \
    'step +20/100 \| loss [0-9.]+; factory [0-9.]+/[0-9.]+, arm ([0-9.]+/[0-9.]+|-), mill ([0-9.]+/[0-9.]+|-) \| .* \| eta [0-9]'
t_grep "it validates against the naive baseline" 'step 100: validation loss [0-9.]+ \(naive baseline [0-9.]+\)'
t_grep "the validation loss ends well below the baseline" 'the model learned'
for png in loss throughput; do
    if [ "$(head -c 8 "$T_TMP/demo/run/$png.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
        t_ok "dure plot wrote $png.png"
    else
        t_fail "no PNG at $T_TMP/demo/run/$png.png"
    fi
done
t_done
