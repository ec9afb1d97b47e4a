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

# A missing dataset is bad data (exit 4) naming the path: alone, on every
# rank, and on one rank only (a node without the file: the rank that could
# read it must not turn the job's exit code into a runtime error's 1).
T_OUT=$("$DURE" run "$T_TMP/base.ini" --set run.dir="$R/nodata1" \
    --set data.path="$T_TMP/no-such-data.h5" 2>&1); T_RC=$?
t_eq "dure run on a missing dataset: exit 4 (exit $T_RC)" "$T_RC" 4
t_grep "the missing path is named" "no-such-data.h5': No such file or directory"
run_mpi 2 base --set run.dir="$R/nodata2" --set data.path="$T_TMP/no-such-data.h5"
t_eq "the same under mpirun -np 2: exit 4 (exit $T_RC)" "$T_RC" 4
T_OUT=$(mpirun -np 1 "$DURE" run "$T_TMP/base.ini" --set run.dir="$R/nodata3" : \
    -np 1 "$DURE" run "$T_TMP/base.ini" --set run.dir="$R/nodata3" \
    --set data.path="$T_TMP/rank1-data.h5" 2>&1); T_RC=$?
t_eq "the dataset missing on rank 1 only: exit 4 (exit $T_RC)" "$T_RC" 4
t_grep "rank 1 names its missing path" "rank 1\].*rank1-data.h5': No such file"

# global_batch 6 over 2 ranks x micro_batch 2 does not divide.
run_mpi 2 base --set optim.global_batch=6
t_eq "a global batch that does not divide: exit 3 (exit $T_RC)" "$T_RC" 3
t_grep "the message names the values and the world sizes that work" \
    '2 ranks cannot share the 3 micro-batches of a step \(optim.global_batch = 6 / optim.micro_batch = 2\): world sizes that can for this job spec: 1 or 3'

# A model far larger than this machine: refused at setup with the estimate.
run_mpi 2 base --set model.d_model=16384 --set model.n_layers=512 --set model.n_heads=16
t_eq "a model that cannot fit: exit 7 (exit $T_RC)" "$T_RC" 7
t_grep "the message gives the estimated need" 'dure run: not enough memory: parallel\.zero_stage = 0 needs [0-9.]+ GiB per rank \(params .*\), more than 92% of [0-9.]+ GiB on cpu: no ZeRO stage fits'

# A NaN in rank 1's input at step 3 (DURE_FAULT_NAN): the loss and, through
# the all-reduce, every rank's gradients turn non-finite.
T_OUT=$(DURE_FAULT_NAN=3:1 mpirun -x DURE_FAULT_NAN -np 2 "$DURE" run "$T_TMP/base.ini" \
    --set run.dir="$R/nan" 2>&1); T_RC=$?
t_eq "non-finite loss with on_nan = stop: exit 5 (exit $T_RC)" "$T_RC" 5
t_grep "the message names the step and the rank" 'non-finite loss \(nan\) at step 3 on rank 1'
t_eq "no step after the NaN is taken" "$(run_losses "$R/nan" | tail -1 | cut -d' ' -f1)" 2
if [ ! -f "$R/nan/FINISHED" ]; then t_ok "the stopped run is not marked finished"
else t_fail "FINISHED written after a NaN stop"; fi
T_OUT=$(DURE_FAULT_NAN=3:1 mpirun -x DURE_FAULT_NAN -np 2 "$DURE" run "$T_TMP/base.ini" \
    --set run.dir="$R/skip" --set run.on_nan=skip 2>&1); T_RC=$?
t_eq "non-finite loss with on_nan = skip: the run completes (exit $T_RC)" "$T_RC" 0
t_grep "the skipped step is reported" 'non-finite loss at step 3 on rank 1: update skipped'
t_eq "metrics mark step 3, and only it, as skipped" \
    "$(grep -c '"skipped":true' "$R/skip/metrics.jsonl") $(grep -c '^{"step":3,"loss":null' "$R/skip/metrics.jsonl")" "1 1"
last=$(run_losses "$R/skip" | tail -1)
if [ "${last%% *}" = 8 ] && [[ "${last#* }" =~ ^[0-9] ]]; then
    t_ok "training goes on with finite losses after the skip (step 8: ${last#* })"
else t_fail "after the skip: last line '$last'"; fi

# signal_rank1 NAME SIGNAL WATCHDOG_S: start a long 2-rank run NAME, send
# SIGNAL to rank 1 after 3 steps; sets T_RC (mpirun's exit), T_OUT (its
# output) and T_MS (milliseconds from the signal to the job's end). Returns
# 1 (after a t_fail) when rank 1 cannot be found.
signal_rank1() {
    local name=$1 sig=$2 watchdog=$3 mpid victim start
    run_job "$name"
    mpirun -np 2 "$DURE" run "$T_TMP/$name.ini" --set run.steps=1000000 \
        --set run.val_every=0 --set parallel.watchdog_s="$watchdog" \
        --set run.log_every=1000 > "$T_TMP/$name.log" 2>&1 &
    mpid=$!
    wait_steps "$R/$name" 3
    victim=$(rank_pid "$mpid" 1)
    if [ -z "$victim" ]; then
        t_fail "could not find rank 1 of mpirun $mpid"
        kill "$mpid"
        return 1
    fi
    start=$(date +%s%N)
    kill "-$sig" "$victim"
    wait "$mpid"; T_RC=$?
    T_MS=$(( ($(date +%s%N) - start) / 1000000 ))
    T_OUT=$(cat "$T_TMP/$name.log")
}

# Stop rank 1 (SIGSTOP: alive but hung): rank 0's next collective hangs and
# the watchdog aborts the job with exit 124 after parallel.watchdog_s (3 s).
if signal_rank1 hang STOP 3; then
    t_eq "a hung rank: the watchdog ends the job with exit 124" "$T_RC" 124
    if [ "$T_MS" -ge 2500 ] && [ "$T_MS" -lt 15000 ]; then t_ok "after the 3 s timeout (${T_MS} ms)"
    else t_fail "the job ended ${T_MS} ms after rank 1 stopped (watchdog_s = 3)"; fi
    t_grep "the report names the operation and its sequence number" 'watchdog: rank 0 aborting the job .* seq [0-9]+ hung'
fi

# Kill rank 1 with SIGKILL mid-run: the job must end, non-zero, within the
# watchdog timeout (5 s here), naming the rank.
if signal_rank1 kill KILL 5; then
    if [ "$T_RC" -ne 0 ]; then t_ok "killing rank 1 ends the job non-zero (exit $T_RC)"
    else t_fail "killing rank 1: mpirun exited 0"; fi
    if [ "$T_MS" -lt 15000 ]; then t_ok "within the watchdog timeout (${T_MS} ms)"
    else t_fail "the job took ${T_MS} ms to end after rank 1 died"; fi
    t_grep "the dead rank is named" 'rank 1'
fi

t_done
