#!/usr/bin/env bash
# tests/mpi/test_run_split.sh - data without a validation split: held out by
# episode at run time (data.val_fraction) instead of stopping the run, the
# same episodes dure data gen would pick; a val_path that repeats the
# training data is reported.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/run_helpers.sh"

"$DURE" data gen -o "$RUN_DATA" --episodes 20 --length 400 --channels 4 --seed 7 \
    --val-fraction 0 > /dev/null || t_fail "dure data gen"
run_job nosplit
run_mpi 2 nosplit
t_eq "a dataset without a split trains and validates (exit $T_RC)" "$T_RC" 0
t_grep "saying what was held out" "defines no validation split: 2 of its 20 episodes are held out for validation \(data.val_fraction = 0.1\)"
t_run "validation lines were written" 0 grep -c '"val_loss"' "$T_TMP/runs/nosplit/metrics.jsonl"
run_mpi 2 nosplit --set run.dir="$T_TMP/r0" --set data.val_fraction=0
t_eq "with data.val_fraction = 0 the run stops (exit $T_RC)" "$T_RC" 3
t_grep "naming the ways out" "defines no validation split: set data.val_path, or run.val_every = 0, or data.val_fraction above 0"
run_mpi 2 nosplit --set run.dir="$T_TMP/rv" --set data.val_path="$RUN_DATA"
t_eq "validation on the training file runs (exit $T_RC)" "$T_RC" 0
t_grep "but is reported" "data.val_path = '$RUN_DATA' overlaps the training data .*: 1 file\(s\) in both"
t_done
