#!/usr/bin/env bash
# tests/cli/test_plot.sh - dure plot RUN_DIR: PNGs from metrics.jsonl, and
# clear errors for what it cannot draw.
. "$(dirname "$0")/../lib.sh"

t_run "dure plot without a run directory is a usage error" 2 "$DURE" plot
t_run "dure plot with two run directories is a usage error" 2 "$DURE" plot a b
t_run "dure plot of a missing run directory fails" 1 "$DURE" plot "$T_TMP/nothing"
t_grep "naming the metrics file" "cannot read $T_TMP/nothing/metrics.jsonl"

mkdir -p "$T_TMP/bad"
echo '{"val_loss":1}' > "$T_TMP/bad/metrics.jsonl"
t_run "a metrics line without a step is bad data (exit 4)" 4 "$DURE" plot "$T_TMP/bad"
t_grep "naming file and line" 'metrics.jsonl:1: not a metrics line'

mkdir -p "$T_TMP/run" "$T_TMP/out"
for s in 1 2 3 4; do
    printf '{"step":%d,"loss":%s,"grad_norm":1,"lr":0.001,"step_s":0.1,"timesteps_per_s":%d,"mfu":0.2,"data_wait_s":0,"comm_exposed_s":0}\n' \
        "$s" "0.$((9 - s))" "$((1000 * s))"
done > "$T_TMP/run/metrics.jsonl"
echo '{"step":4,"val_loss":0.5,"baseline_loss":0.9}' >> "$T_TMP/run/metrics.jsonl"
echo '{"step":5,"loss":null,"grad_norm":null,"lr":0.001,"step_s":0.1,"timesteps_per_s":1,"mfu":0,"data_wait_s":0,"comm_exposed_s":0,"skipped":true}' \
    >> "$T_TMP/run/metrics.jsonl"
t_run "dure plot into a directory under a missing one fails" 1 \
    "$DURE" plot -o "$T_TMP/missing/out" "$T_TMP/run"
t_grep "naming the directory" "cannot create output directory '$T_TMP/missing/out'"
if printf '%s' "$T_OUT" | grep -qa 'PNG'; then t_fail "PNG bytes went to the terminal"; else t_ok "no PNG bytes on the terminal"; fi
t_run "dure plot creates a missing output directory" 0 "$DURE" plot -o "$T_TMP/newout" "$T_TMP/run"
t_run "dure plot draws a run" 0 "$DURE" plot -o "$T_TMP/out" "$T_TMP/run"
t_grep "it counts the steps (a skipped step has no loss to draw) and validation points" \
    '\(4 steps, 1 validation points\)'
for png in loss throughput; do
    if [ "$(head -c 8 "$T_TMP/out/$png.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
        t_ok "$png.png is a PNG"
    else
        t_fail "$png.png missing or not a PNG"
    fi
done
# A mixture's run: one training curve, validation points and baseline per
# dataset (a dataset absent from a step's batch: null).
mkdir -p "$T_TMP/mix"
head -4 "$T_TMP/run/metrics.jsonl" | sed 's/}$/,"datasets":{"cnc":{"loss":0.3,"baseline_loss":0.8},"arm":{"loss":null,"baseline_loss":null}}}/' \
    > "$T_TMP/mix/metrics.jsonl"
for s in 2 4; do
    printf '{"step":%d,"val_loss":0.5,"baseline_loss":0.9,"datasets":{"cnc":{"val_loss":0.%d,"baseline_loss":0.8},"arm":{"val_loss":null,"baseline_loss":1}}}\n' "$s" "$s"
done >> "$T_TMP/mix/metrics.jsonl"
t_run "dure plot draws a mixture's run" 0 "$DURE" plot -o "$T_TMP/mixout" "$T_TMP/mix"
t_grep "with a curve per dataset, training and validation" \
    '\(4 steps, 2 validation points; per dataset: cnc, arm; 4 steps with per-dataset training losses\)'
echo '{"step":6,"val_loss":0.5,"datasets":{"lathe":{"val_loss":1,"baseline_loss":1}}}' >> "$T_TMP/mix/metrics.jsonl"
t_run "a dataset that appears later is bad data (exit 4)" 4 "$DURE" plot -o "$T_TMP/mixout" "$T_TMP/mix"
t_grep "naming line and dataset" "metrics.jsonl:7: dataset 'lathe' was not in the earlier lines"
t_done
