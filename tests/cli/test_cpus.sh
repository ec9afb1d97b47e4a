#!/usr/bin/env bash
# tests/cli/test_cpus.sh - tests/cpus.sh's machine_cpus and the Makefile's
# default JOBS count the CPUs this process may run on (its affinity mask,
# read here through Python's os.sched_getaffinity), even when
# OMP_NUM_THREADS and OMP_THREAD_LIMIT are 1, which GNU nproc obeys.
. "$(dirname "$0")/../lib.sh"

want=$(python3 -c 'import os; print(len(os.sched_getaffinity(0)))')
[ "$want" -ge 2 ] || t_skip "one CPU: nproc and the affinity mask agree whatever OMP_NUM_THREADS says"
t_eq "machine_cpus is the affinity mask's count" "$(machine_cpus)" "$want"
# shellcheck disable=SC2016 # $1 expands in the child shell
t_eq "with OMP_NUM_THREADS=1 OMP_THREAD_LIMIT=1 too" \
    "$(OMP_NUM_THREADS=1 OMP_THREAD_LIMIT=1 bash -c '. "$1" && machine_cpus' _ "$T_ROOT/tests/cpus.sh")" "$want"
# shellcheck disable=SC2016 # $1 expands in the child shell
t_eq "under a narrower affinity mask, that mask" \
    "$(OMP_NUM_THREADS=1 taskset -c 0 sh -c '. "$1" && machine_cpus' _ "$T_ROOT/tests/cpus.sh")" 1
# shellcheck disable=SC2016 # $(JOBS) is make's
jobs_of() { env "$@" make -s -C "$T_ROOT" --eval 'print-jobs: ; @echo JOBS=$(JOBS)' print-jobs 2>&1 |
    sed -n 's/^JOBS=//p'; }
t_eq "make's default JOBS with OMP_NUM_THREADS=1 OMP_THREAD_LIMIT=1" \
    "$(jobs_of OMP_NUM_THREADS=1 OMP_THREAD_LIMIT=1)" "$want"
t_eq "JOBS from the environment wins" "$(jobs_of JOBS=3)" 3
t_done
