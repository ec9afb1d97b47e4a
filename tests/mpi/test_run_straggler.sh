#!/usr/bin/env bash
# tests/mpi/test_run_straggler.sh - straggler checks of dure run
# (train/straggler.h) under a real mpirun: rank 1's device is made slower
# (DURE_FAULT_SLOW=1:0.05, 50 ms more per step; the fault matrix of
# `make faults` slows a rank with SIGSTOP/SIGCONT instead). It must be the
# rank named, with its host and scores, on the progress lines, in
# metrics.jsonl and by dure status, and rank 0 must show as the one that
# waits; a run without the fault names nobody. About 10 s.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/run_helpers.sh"

run_make_data
run_job slow
R=$T_TMP/runs/slow
host=$(hostname)
t_run "a run with rank 1 slowed completes" 0 env DURE_FAULT_SLOW=1:0.05 \
    mpirun -np 2 -x DURE_FAULT_SLOW "$DURE" run "$T_TMP/slow.ini" --set run.steps=80 \
    --set run.val_every=0 --set run.log_every=10 --set parallel.straggler_every=10
t_grep "the progress note names rank 1, its host and by how much" \
    "straggler: rank 1 on $host: compute [0-9.]+ ms/step, [0-9]+% above the median [0-9.]+ ms \\(2 checks in a row"
t_grep "with NVRx's two scores" 'scores 0\.[0-9]+ against the fastest, [01]\.[0-9]+ against its own best'
t_grep "and rank 0 as the one that waits" "most waiting: rank 0 on $host, [0-9.]+ ms/step"
t_grep "the progress lines carry it from then on" \
    "^step +80/80 \\|.*\\| straggler rank 1 \\($host\\) \\+[0-9]+%$"
# Checks at steps 10, 20, ...: named from the second in a row, at every one after.
t_eq "metrics.jsonl: a straggler line per check from step 20, each naming rank 1" \
    "$(grep -o '{"step":[0-9]*,"straggler":"rank [0-9]* on [^ ]*' "$R/metrics.jsonl" | tr '\n' ' ')" \
    "$(for s in 20 30 40 50 60 70 80; do printf '{"step":%d,"straggler":"rank 1 on %s ' "$s" "$host"; done)"
if grep '"straggler":"' "$R/metrics.jsonl" |
    grep -qv '"straggler_compute_s":0\.0[5-9][0-9]*,"median_compute_s":0\.0[2-9]'; then
    t_fail "a straggler line without rank 1's 50+ ms of compute and the median's 25+ ms"
else t_ok "each has rank 1's compute (50+ ms) and the median's (25+ ms: half of it)"; fi
t_run "dure status" 0 "$DURE" status "$R"
t_grep "dure status names the straggler" \
    "^straggler rank 1 on $host \\(\\+[0-9]+%, 8 checks; scores 0\\.[0-9]+ fastest, [01]\\.[0-9]+ own\\) at step 80$"
# Rank 0 waits out rank 1's 50 ms a step in the exchange: its exposed
# communication. One node whose cores all compute: the ranks' waits run the
# collectives, no thread's CPU to show.
t_grep "dure status says where rank 0's step goes" \
    '^time +[0-9.]+ ms a step: exposed communication (2[5-9]|[3-9][0-9]|[0-9]{3,})\.[0-9] ms, loader wait [0-9.]+ ms \(means of the last 20 step\(s\)\)$'

run_job fine
t_run "the same run without the fault" 0 mpirun -np 2 "$DURE" run "$T_TMP/fine.ini" \
    --set run.steps=80 --set run.val_every=0 --set parallel.straggler_every=10 \
    --set parallel.straggler_slowdown=3
if grep -q '"straggler"' "$T_TMP/runs/fine/metrics.jsonl"; then t_fail "a straggler was named"
else t_ok "names no straggler (slowdown 3: above this machine's noise)"; fi
t_run "dure verify: the slowed and the plain run differ in their manifests only" 9 \
    "$DURE" verify "$R" "$T_TMP/runs/fine"
t_grep "straggler lines are no difference in numbers" '^metrics: bitwise identical \(240 values, steps 1\.\.80'
t_grep "neither is the slowed rank's sleeping" '^checkpoints: step 80: .* bitwise identical$'
t_run "a malformed DURE_FAULT_SLOW is refused (exit 3)" 3 env DURE_FAULT_SLOW=5:0.1 \
    mpirun -np 2 -x DURE_FAULT_SLOW "$DURE" run "$T_TMP/fine.ini" --set run.dir="$T_TMP/runs/bad"
t_grep "naming it" "DURE_FAULT_SLOW='5:0.1': expected RANK:SECONDS with RANK < 2"
t_done
