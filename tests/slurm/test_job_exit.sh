#!/usr/bin/env bash
# tests/slurm/test_job_exit.sh - a failing batch job's exit code comes back
# through `sbatch --wait` and its completion record.
# shellcheck source=tests/slurm/lib.sh
. "$(dirname "$0")/lib.sh"

printf '#!/bin/sh\necho about to fail\nexit 3\n' > "$T_TMP/fail.sh"
t_run "sbatch --wait returns the failing job's exit code" 3 \
    timeout 120 sbatch --wait --parsable --time=1 --output="$T_TMP/fail.out" "$T_TMP/fail.sh"
job=$(printf '%s\n' "$T_OUT" | sed -n 's/^\([0-9][0-9]*\).*/\1/p' | tail -n 1)
t_eq "the job ran" "$(cat "$T_TMP/fail.out" 2>&1)" "about to fail"

rec=$(slurm_jobcomp "$job")
t_eq "the job's completion record says FAILED" "$(slurm_field "$rec" JobState)" FAILED
t_eq "the job's completion record has exit code 3" "$(slurm_field "$rec" ExitCode)" 3:0

t_done
