#!/usr/bin/env bash
# tests/slurm/test_cluster.sh - tests/slurm/cluster.sh itself: a second
# cluster beside the one tests/run.sh started, on a port the first one holds;
# up twice; a job left running; down twice; up on a half-up cluster.
# shellcheck source=tests/slurm/lib.sh
. "$(dirname "$0")/lib.sh"

CLUSTER="$T_ROOT/tests/slurm/cluster.sh"
D="$T_TMP/cluster"
# Whatever happens to this test, its cluster goes down before $T_TMP goes.
trap 'bash "$CLUSTER" down "$D" > /dev/null 2>&1; rm -rf "$T_TMP"' EXIT
trap 'exit 1' INT TERM HUP

# runs PID NAME: PID is a live (not zombie) process named NAME.
runs() {
    local stat
    read -r stat 2>/dev/null < "/proc/$1/stat" || return 1
    [[ "$stat" == "$1 ($2) "* ]] && [[ "$stat" != "$1 ($2) Z "* ]]
}

# left_in_dir: live processes that name $D in their command line or hold a
# file under it open.
left_in_dir() {
    local p stat args
    for p in /proc/[0-9]*; do
        read -r stat 2>/dev/null < "$p/stat" || continue
        [[ "$stat" == *") Z "* ]] && continue
        mapfile -d '' args 2>/dev/null < "$p/cmdline"
        if [[ "${args[*]}" == *"$D/"* ]] || readlink "$p"/fd/* 2>/dev/null | grep -qF "$D/"; then
            echo "${p#/proc/}: ${args[*]}"
        fi
    done
}

daemon_pids() { cat "$D/pids/munged" "$D/pids/slurmctld" "$D/pids/slurmd" 2>/dev/null | tr '\n' ' '; }

if command -v shellcheck >/dev/null; then
    t_run "the harness scripts pass shellcheck" 0 shellcheck -x \
        "$T_ROOT/tests/slurm/cluster.sh" "$T_ROOT/tests/slurm/lib.sh" "$T_ROOT"/tests/slurm/test_*.sh
fi

t_run "usage error without a DIR" 2 bash "$CLUSTER" up
t_run "down on a DIR that does not exist is fine" 0 bash "$CLUSTER" down "$T_TMP/none"

# An up that fails half way (munged and slurmctld run, slurmd dies) says
# why, shows the daemon logs and leaves nothing running.
mkdir -p "$T_TMP/bin"
cat > "$T_TMP/bin/slurmd" <<EOF
#!/bin/sh
[ "\$1" = -C ] && exec $(command -v slurmd) -C
echo "slurmd: broken on purpose" >&2
exit 1
EOF
chmod +x "$T_TMP/bin/slurmd"
t_run "up fails when slurmd cannot start" 1 env PATH="$T_TMP/bin:$PATH" bash "$CLUSTER" up "$D"
t_grep "it says which daemon died" 'slurmd exited while waiting for node .* idle'
t_grep "it prints the daemon logs" 'slurmd: broken on purpose'
t_eq "nothing of it runs" "$(left_in_dir)" ""
t_run "down after a failed up is fine" 0 bash "$CLUSTER" down "$D"

# The first cluster's ports are taken: up must notice and pick others.
taken="$(sed -n 's/^SlurmctldPort=//p' "$SLURM_CONF") $(sed -n 's/^SlurmdPort=//p' "$SLURM_CONF")"
t_run "up starts a second cluster beside the first" 0 env DURE_SLURM_PORTS="$taken" bash "$CLUSTER" up "$D"
t_grep "up moved off the ports the first cluster holds" 'was taken meanwhile: trying others'
read -r munged ctld slurmd <<< "$(daemon_pids)"
if runs "$munged" munged && runs "$ctld" slurmctld && runs "$slurmd" slurmd; then
    t_ok "munged, slurmctld and slurmd run under their recorded PIDs"
else
    t_fail "recorded PIDs '$(daemon_pids)' are not munged, slurmctld, slurmd"
fi
t_run "status reports the cluster up" 0 bash "$CLUSTER" status "$D"
t_grep "status shows the node idle" ' idle '
t_run "up on a running cluster is a no-op" 0 bash "$CLUSTER" up "$D"
t_grep "up says so" 'already up'
t_eq "the daemons are the same" "$(daemon_pids)" "$munged $ctld $slurmd "

t_run "env.sh clears settings inherited from an outer job" 0 env SLURM_JOB_ID=7 SBATCH_PARTITION=gpu \
    SQUEUE_FORMAT=%i SLURM_CONF=/etc/slurm/slurm.conf bash -c ". '$D/env.sh' && env | grep -E '^(SLURM|SBATCH|SQUEUE)_' | sort"
t_eq "env.sh leaves only its SLURM_CONF" "$T_OUT" "SLURM_CONF=$D/etc/slurm.conf"

# A job still running when the cluster goes down.
t_run "a job is submitted to the second cluster" 0 bash -c ". '$D/env.sh' && sbatch --parsable \
    --output='$T_TMP/left.out' --wrap 'echo \$\$ > $T_TMP/left.pids; sleep 300 & echo \$! >> $T_TMP/left.pids; wait'"
for _ in $(seq 100); do
    [ "$(wc -l 2>/dev/null < "$T_TMP/left.pids")" = 2 ] && break
    sleep 0.1
done
read -r -d '' job_shell job_sleep 2>/dev/null < "$T_TMP/left.pids"
if runs "${job_shell:-0}" slurm_script && runs "${job_sleep:-0}" sleep; then t_ok "the job runs"
else t_fail "the job did not start within 10 s"
fi

t_run "down stops the cluster" 0 bash "$CLUSTER" down "$D"
t_grep "down stopped what the job left" 'stopping what jobs left'
for p in "munged $munged" "slurmctld $ctld" "slurmd $slurmd" "slurm_script ${job_shell:-0}" "sleep ${job_sleep:-0}"; do
    read -r name pid <<< "$p"
    if runs "$pid" "$name"; then t_fail "$name (pid $pid) still runs after down"
    else t_ok "$name (pid $pid) is gone after down"
    fi
done
t_eq "no process holds or names anything under DIR" "$(left_in_dir)" ""
t_run "the first cluster still runs" 0 bash "$CLUSTER" status "$DURE_SLURM_DIR"
t_run "down again is fine" 0 bash "$CLUSTER" down "$D"
t_run "status reports the cluster down" 1 bash "$CLUSTER" status "$D"

# A cluster left half up (slurmd died) is restarted whole by up.
t_run "up again after down" 0 bash "$CLUSTER" up "$D"
read -r munged ctld slurmd <<< "$(daemon_pids)"
kill -KILL "$slurmd"
t_run "up on a half-up cluster" 0 bash "$CLUSTER" up "$D"
t_grep "up says it was half up" 'half up'
read -r munged2 ctld2 slurmd2 <<< "$(daemon_pids)"
if runs "$munged2" munged && runs "$ctld2" slurmctld && runs "$slurmd2" slurmd &&
    ! runs "$munged" munged && ! runs "$ctld" slurmctld; then
    t_ok "the half-up cluster was replaced by three new daemons"
else
    t_fail "after up on a half-up cluster: old '$munged $ctld $slurmd', new '$(daemon_pids)'"
fi
t_run "down" 0 bash "$CLUSTER" down "$D"
t_eq "no process holds or names anything under DIR" "$(left_in_dir)" ""

t_done
