#!/usr/bin/env bash
# tests/slurm/test_injection.sh - a job spec full of shell and sbatch syntax
# ($(...), backticks, ;, quotes, #, %, spaces) runs as a real Slurm job
# without executing any of it: the run directory, log and [env] values
# arrive verbatim; a newline is refused before anything is submitted.
# shellcheck source=tests/slurm/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/slurm/submit_lib.sh
. "$(dirname "$0")/submit_lib.sh"
cd "$T_TMP" || exit 1

cat > evil.ini <<'INI'
[run]
name = x$(touch PWNED1)`touch PWNED2`;touch PWNED3 'q' "dq"
dir = runs/a b;$(touch PWNED4)`touch PWNED5`'"#%x %j
steps = 5
[data]
path = $(touch PWNED6).h5
[slurm]
time = 00:05:00
[env]
EVIL = $(touch PWNED7); `touch PWNED8` 'it''s' "dq" \ # not a comment
INI
dir="runs/a b;\$(touch PWNED4)\`touch PWNED5\`'\"#%x %j"
export STAND_IN_ENV=EVIL

t_run "a hostile spec with a newline is refused" 3 \
    "$DURE" submit --dure "$STAND_IN" --set $'env.X=a\ntouch PWNED9' evil.ini
t_grep "naming the value's key" 'env.X: control character 0x0a \(newline\)'
t_eq "and nothing was submitted" "$(ls runs 2>/dev/null)" ""

t_run "the hostile spec is submitted" 0 "$DURE" submit --dure "$STAND_IN" evil.ini
job=$(first_job_id)
if wait_for 60 test -e "$dir/FINISHED"; then t_ok "the job ran in the run directory of that exact name"
else t_fail "no FINISHED in '$dir'"; find runs; fi
wait_for 20 job_ended "$job" || t_fail "job $job has no completion record"
t_eq "the job completed" "$(jobcomp_last "$job" ExitCode)" "0:0"
t_eq "its job name was reduced to safe characters" "$(jobcomp_last "$job" Name)" \
    "x__touch_PWNED1__touch_PWNED2__touch_PWNED3__q___dq_"
log="$dir/x__touch_PWNED1__touch_PWNED2__touch_PWNED3__q___dq__$job.out"
if [ -f "$log" ]; then t_ok "the log is in the run directory, its % and #-characters intact"
else t_fail "no log '$log'"; find runs; fi
t_eq "the [env] value arrived verbatim" "$(cat "$dir/stand-in.env")" \
    "EVIL=\$(touch PWNED7); \`touch PWNED8\` 'it''s' \"dq\" \\ # not a comment"
t_eq "nothing in the spec was executed, anywhere" \
    "$(find "$T_TMP" / -maxdepth 1 -name 'PWNED*' 2>/dev/null; find "$T_TMP" -name 'PWNED*')" ""
t_run "dure status reads the hostile run directory" 0 "$DURE" status "$dir"
t_grep "and says finished" '^state +finished$'

t_done
