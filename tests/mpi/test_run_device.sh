#!/usr/bin/env bash
# tests/mpi/test_run_device.sh - dure run's GPU requests on a machine or build
# without a usable GPU: one clear message and the documented exit code.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/run_helpers.sh"

if "$DURE" --version | grep -q 'CUDA driver: *[0-9]'; then
    t_skip "a CUDA driver is present: these are the no-GPU paths"
fi
run_make_data
run_job base

run_mpi 1 base --set run.dir="$T_TMP/r1" --set run.device=auto --set parallel.backend=nccl
t_eq "backend = nccl with no GPU visible exits 6 (DURE_EXIT_NODEV)" "$T_RC" 6
t_grep "it says no device is visible and what to use" \
    'parallel.backend = nccl, but no device it reaches is visible \(run.device = auto chose cpu\): use parallel.backend = mpi'

run_mpi 1 base --set run.dir="$T_TMP/r2" --set parallel.backend=nccl --set run.device=cpu
t_eq "backend = nccl with run.device = cpu is a job-spec error (exit 3)" "$T_RC" 3
t_grep "it names both keys" 'parallel.backend = nccl with run.device = cpu'

run_mpi 1 base --set run.dir="$T_TMP/r3" --set run.device=cuda --set parallel.backend=auto
t_eq "run.device = cuda with no GPU exits 6" "$T_RC" 6
t_grep "it says why and names the fix" 'no CUDA device visible \(.*\): use run.device = cpu|run.device = cuda: this dure has no such device \(it was built with: cpu; rebuild with USE_CUDA=yes, or use run.device = cpu\)'
if [ -e "$T_TMP/r3/metrics.jsonl" ]; then t_fail "a failed start wrote metrics"; else t_ok "no metrics written"; fi

t_done
