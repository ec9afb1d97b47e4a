#!/usr/bin/env bash
# tests/mpi/test_run_faults.sh - dure run when things go wrong: a killed
# rank, a non-finite loss (stop and skip), not enough memory, a global batch
# that does not divide, bad command lines.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/run_helpers.sh"

run_make_data
run_job base
R=$T_TMP/runs

t_run "dure run without a job spec is a usage error" 2 "$DURE" run
t_run "dure run with an unknown option is a usage error" 2 "$DURE" run --frobnicate x.ini
t_grep "and prints the usage" 'usage: dure run JOB.ini'

# global_batch 6 over 2 ranks x micro_batch 2 does not divide.
run_mpi 2 base --set optim.global_batch=6
t_eq "a global batch that does not divide: exit 3 (exit $T_RC)" "$T_RC" 3
t_grep "the message names the values" 'optim.global_batch = 6 is not a multiple of optim.micro_batch \(2\) x ranks \(2\)'

# A model far larger than this machine: refused at setup with the estimate.
run_mpi 2 base --set model.d_model=16384 --set model.n_layers=512 --set model.n_heads=16
t_eq "a model that cannot fit: exit 7 (exit $T_RC)" "$T_RC" 7
t_grep "the message gives the estimated need" 'not enough memory: this run needs about [0-9.]+ GiB per rank'

# A learning rate of 10 without clipping blows the loss up within steps.
run_mpi 2 base --set optim.lr=10 --set optim.min_lr=10 --set optim.warmup_steps=0 \
    --set optim.grad_clip=0 --set run.steps=40 --set run.dir="$R/nan"
t_eq "non-finite loss with on_nan = stop: exit 5 (exit $T_RC)" "$T_RC" 5
t_grep "the message names the step and the rank" 'non-finite loss \([^)]*\) at step [0-9]+ on rank [01]'
if [ ! -f "$R/nan/FINISHED" ]; then t_ok "the stopped run is not marked finished"
else t_fail "FINISHED written after a NaN stop"; fi
run_mpi 2 base --set optim.lr=10 --set optim.min_lr=10 --set optim.warmup_steps=0 \
    --set optim.grad_clip=0 --set run.steps=40 --set run.dir="$R/skip" --set run.on_nan=skip
t_eq "non-finite loss with on_nan = skip: the run completes (exit $T_RC)" "$T_RC" 0
t_grep "the skipped step is reported" 'update skipped \(run.on_nan = skip\)'
if grep -q '"skipped":true' "$R/skip/metrics.jsonl"; then t_ok "metrics mark the skipped steps"
else t_fail "no skipped step in $R/skip/metrics.jsonl"; fi

# Kill rank 1 with SIGKILL mid-run: the job must end, non-zero, within the
# watchdog timeout (5 s here), naming the rank.
run_job kill
mpirun -np 2 "$DURE" run "$T_TMP/kill.ini" --set run.steps=1000000 --set run.val_every=0 \
    --set parallel.watchdog_s=5 --set run.log_every=1000 > "$T_TMP/kill.log" 2>&1 &
mpid=$!
for _ in $(seq 1 300); do
    [ "$(run_losses "$R/kill" 2>/dev/null | wc -l)" -ge 3 ] && break
    sleep 0.1
done
victim=
for p in $(ps -o pid= --ppid "$mpid"); do
    if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then
        victim=$p
    fi
done
if [ -z "$victim" ]; then
    t_fail "could not find rank 1 of mpirun $mpid"
    kill "$mpid"
else
    start=$(date +%s%N)
    kill -KILL "$victim"
    wait "$mpid"; rc=$?
    el=$(( ($(date +%s%N) - start) / 1000000 ))
    T_OUT=$(cat "$T_TMP/kill.log")
    if [ "$rc" -ne 0 ]; then t_ok "killing rank 1 ends the job non-zero (exit $rc)"
    else t_fail "killing rank 1: mpirun exited 0"; fi
    if [ "$el" -lt 15000 ]; then t_ok "within the watchdog timeout (${el} ms)"
    else t_fail "the job took ${el} ms to end after rank 1 died"; fi
    t_grep "the dead rank is named" 'rank 1'
fi

t_done
