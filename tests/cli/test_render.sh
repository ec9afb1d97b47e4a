#!/usr/bin/env bash
# tests/cli/test_render.sh - dure jobspec, dure help jobspec and dure render
# without a cluster: every example spec loads and renders to a script that
# passes bash -n and shellcheck; hostile values render harmlessly; errors
# name the file, line and key.
# Hostile values below are single-quoted on purpose:
# shellcheck disable=SC2016

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$T_TMP" || exit 1

for spec in "$T_ROOT"/jobs/*.ini; do
    name=jobs/${spec##*/}
    t_run "$name loads" 0 "$DURE" jobspec "$spec"
    t_run "$name renders" 0 "$DURE" render "$spec"
    printf '%s\n' "$T_OUT" > script.sh
    t_run "$name: bash -n" 0 bash -n script.sh
    t_run "$name: shellcheck" 0 shellcheck script.sh
done
t_run "the demo spec resolves" 0 "$DURE" jobspec --ini "$T_ROOT/jobs/demo-cpu.ini"
t_grep "demo: 2 ranks on one node" '^ntasks_per_node = 2$'
t_grep "demo: the local site profile" '^profile = local$'
t_run "the sweep example renders a 6-task array" 0 "$DURE" render "$T_ROOT/jobs/sweep-lr.ini"
t_grep "--array=0-5" '^#SBATCH --array=0-5$'

t_run "dure help jobspec" 0 "$DURE" help jobspec
t_grep "lists [checkpoint]" '^\[checkpoint\]$'
t_grep "documents data.path as required" '^  path +path +\(required\) '
t_grep "documents run.device's values and default" '^  device +auto\|cpu\|cuda +auto '
t_grep "documents [sweep]" '^\[sweep\]$'

# Hostile values: shell and sbatch syntax in names, paths and variables.
cat > evil.ini <<'INI'
[run]
name = x$(touch PWNED1)`touch PWNED2`;touch PWNED3 'q' "dq"
dir = runs/a b;$(touch PWNED4)`touch PWNED5`'"#%x
[data]
path = $(touch PWNED6).h5
[env]
EVIL = $(touch PWNED7); `touch PWNED8` 'it''s' "dq" \ # not a comment
INI
t_run "a spec full of shell syntax renders" 0 "$DURE" render --set 'env.MORE=a"b'"'"'c$d' evil.ini
t_eq "nothing was executed while rendering" "$(ls PWNED* 2>/dev/null)" ""
printf '%s\n' "$T_OUT" > evil.sh
t_run "the hostile script passes bash -n" 0 bash -n evil.sh
t_run "the hostile script passes shellcheck" 0 shellcheck evil.sh
t_run "its job name is reduced to safe characters" 0 grep -q '^#SBATCH --job-name=x__touch_PWNED1__touch_PWNED2__touch_PWNED3__q___dq_$' evil.sh
got=$(env -i bash -c "$(grep '^export EVIL=' evil.sh); printf %s \"\$EVIL\"")
t_eq "[env] EVIL reaches bash verbatim" "$got" '$(touch PWNED7); `touch PWNED8` '"'it''s'"' "dq" \ # not a comment'
got=$(env -i bash -c "$(grep '^export MORE=' evil.sh); printf %s \"\$MORE\"")
t_eq "--set env.MORE reaches bash verbatim" "$got" 'a"b'"'"'c$d'
got=$(env -i bash -c "$(sed -n '/^run_dirs=(/p' evil.sh); printf %s \"\${run_dirs[0]}\"")
t_eq "the run directory reaches bash verbatim" "$got" "$T_TMP/runs/a b;\$(touch PWNED4)\`touch PWNED5\`'\"#%x"
t_eq "still nothing executed" "$(ls PWNED* 2>/dev/null)" ""

# A value ending in a backslash: bash reads it back, and shellcheck has no
# complaint (a single-quoted '...\' reads to it as an escaped quote, SC1003).
t_run "an [env] value ending in a backslash renders" 0 "$DURE" render \
    --set "env.WIN_DIR=C:\\data\\" --set "env.TWO=a\\\\" evil.ini
printf '%s\n' "$T_OUT" > backslash.sh
t_run "the script passes shellcheck" 0 shellcheck backslash.sh
got=$(env -i bash -c "$(grep -e '^export WIN_DIR=' -e '^export TWO=' backslash.sh); printf '%s|%s' \"\$WIN_DIR\" \"\$TWO\"")
t_eq "the backslashes reach bash verbatim" "$got" "C:\\data\\|a\\\\"
big=$(head -c 131070 /dev/zero | tr '\0' x)
printf '[data]\npath = d.h5\n[env]\nHUGE = %s\n' "$big" > huge.ini
t_run "an [env] value the kernel would refuse at exec is refused" 3 "$DURE" render huge.ini
t_grep "naming the variable, its size and the limit" "huge.ini:4: env.HUGE: 131075 bytes: the kernel refuses to start a program with an environment string \(NAME=VALUE\) over 131071 bytes"
sets=()
for i in 1 2 3 4 5 6 7 8 9; do sets+=(--set "env.V$i=${big:0:120000}"); done
t_run "[env] variables that together pass ARG_MAX are refused" 3 "$DURE" render "${sets[@]}" evil.ini
t_grep "naming the total" "\[env\] holds 1080[0-9]* bytes of variables, more than 1048576"

t_run "a newline in a value is refused" 3 "$DURE" render --set $'run.name=a\nb' evil.ini
t_grep "naming the key and the character" "run.name: control character 0x0a \(newline\)"
t_run "a backslash in run.dir, with %j in the log name, is refused" 3 \
    "$DURE" render --set 'run.dir=runs/a\b' evil.ini
t_grep "naming why" "a backslash in a Slurm output path turns off its %j/%x patterns"
t_run "a partition with shell syntax is refused" 3 "$DURE" render --set 'slurm.partition=gpu;reboot' evil.ini
t_grep "naming the character" "character ';' not allowed in a Slurm name"
t_run "an unknown profile is refused" 3 "$DURE" render --set slurm.profile=nope evil.ini
t_grep "listing the profiles there are" "no profile \[nope\] in .*slurm/profiles.ini; profiles: local, ib, roce, tcp, debug"
printf '[site]\nNCCL_IB_HCA = mlx5_1\n' > site.ini
t_run "DURE_PROFILES points at a site's own profiles" 0 \
    env DURE_PROFILES="$T_TMP/site.ini" "$DURE" render --set slurm.profile=site evil.ini
t_grep "whose variables are exported" "^export NCCL_IB_HCA='mlx5_1'$"

printf '[run]\nname = demo\n[modle]\n' > typo.ini
t_run "an unknown section" 3 "$DURE" render typo.ini
t_grep "is named with file:line and a suggestion" "typo.ini:3: unknown section \[modle\] \(did you mean \[model\]\?\)"
printf '[data]\npath = d.h5\n[slurm]\nnodes = 2\n[optim]\nglobal_batch = 8\nmicro_batch = 8\n' > layout.ini
t_run "a global batch that does not divide over the ranks" 3 "$DURE" render layout.ini
t_grep "is refused with the numbers" "optim.global_batch = 8 is not a multiple of optim.micro_batch \* ranks = 8 \* 2"
t_run "a missing spec file" 1 "$DURE" render missing.ini
t_grep "is named" "cannot open job spec 'missing.ini': No such file or directory"
t_run "--dure that is not executable" 3 "$DURE" render --dure "$T_TMP/typo.ini" evil.ini
t_grep "is refused" "is not an executable file"
t_run "render with no spec" 2 "$DURE" render
t_run "render with an unknown option" 2 "$DURE" render --frobnicate x.ini
t_run "submit with a bad --chain" 2 "$DURE" submit --chain 0 evil.ini
t_run "submit with a --chain past INT_MAX (not read as 1)" 2 "$DURE" submit --dry-run --chain 4294967297 evil.ini
t_grep "names the option, the value and the range" "^dure submit: --chain '4294967297' is not an integer in \[1, 1000\]$"
t_run "status with no run directory" 2 "$DURE" status

# dure status where no Slurm client can be found: the run's own files still tell.
mkdir -p runs/copied
printf '123\n' > runs/copied/jobs
printf '{"step":1,"loss":2.5,"step_s":0.5}\n{"step":2,"loss":1.25,"step_s":0.5}\n' > runs/copied/metrics.jsonl
t_run "dure status without Slurm" 0 env PATH=/nonexistent "$DURE" status runs/copied
t_grep "says why the job state is unknown" "scontrol: not found on PATH: is Slurm installed\?"
t_grep "shows the job as unknown" '^job +123 +UNKNOWN  \[none\]$'
t_grep "shows the progress" '^progress +step 2, loss 1\.25$'
t_grep "and no verdict it cannot give" '^state +unknown: Slurm has no record of job 123$'

t_run "dure jobspec --hash" 0 "$DURE" jobspec --hash evil.ini
hash1=$T_OUT
"$DURE" jobspec --ini evil.ini > resolved.ini
t_run "the resolved dump has the same hashes" 0 "$DURE" jobspec --hash resolved.ini
t_eq "hashes equal" "$T_OUT" "$hash1"

t_done
