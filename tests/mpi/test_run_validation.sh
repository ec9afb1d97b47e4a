#!/usr/bin/env bash
# tests/mpi/test_run_validation.sh - validation data are normalized with the
# training data's statistics, never with the validation file's own: a
# validation file ten times the training data must score far worse than an
# unscaled one (with its own statistics both would normalize alike).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/run_helpers.sh"

PY=/usr/bin/python3
"$PY" -c 'import h5py' 2>/dev/null || t_skip "no h5py for $PY (Debian package python3-h5py)"
run_make_data
run_job base
cp "$RUN_DATA" "$T_TMP/val1.h5"
cp "$RUN_DATA" "$T_TMP/val10.h5"
# Scale the signals and their stored statistics alike, so the file is
# self-consistent: its own mean and std are ten times the training file's.
"$PY" - "$T_TMP/val10.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f["/signals"][...] = f["/signals"][...] * 10
    for k in ("mean", "std"):
        f["/stats/" + k][...] = f["/stats/" + k][...] * 10
PY

run_mpi 2 base --set run.dir="$T_TMP/r1" --set data.val_path="$T_TMP/val1.h5"
t_eq "validation on an unscaled copy (exit $T_RC)" "$T_RC" 0
v1=$(run_val "$T_TMP/r1")
run_mpi 2 base --set run.dir="$T_TMP/r10" --set data.val_path="$T_TMP/val10.h5"
t_eq "validation on a copy ten times larger (exit $T_RC)" "$T_RC" 0
v10=$(run_val "$T_TMP/r10")
if awk -v a="$v1" -v b="$v10" 'BEGIN { exit !(a > 0 && b > 10 * a) }'; then
    t_ok "the scaled file is normalized with the training statistics (val loss $v10 vs $v1)"
else
    t_fail "val loss on the scaled file $v10 is not far above the unscaled $v1: normalized with its own statistics?"
fi
t_done
