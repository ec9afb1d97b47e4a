#!/usr/bin/env bash
# tests/slurm/cluster.sh - a private Slurm cluster for tests: one node on
# this host, or N namespaced nodes (tests/slurm/nodes.sh).
#
# up DIR      start munged, slurmctld and slurmd as root with every file they
#             use (config, munge key and socket, state, spool, logs, pid files,
#             job completion records) under DIR, wait until the nodes are idle,
#             and write DIR/env.sh for clients to source. Idempotent: on a DIR
#             whose cluster runs (with the same settings) it only checks it; on
#             a DIR left half up it stops what is left and starts afresh.
# down DIR    stop every daemon recorded in DIR by its PID (never by name),
#             then any process a job left behind, then (multi-node) the
#             namespaces and links it made. Idempotent.
# status DIR  print each daemon's state; exit 0 only if all run.
# fabric DIR RATE|none [NODE...]
#             multi-node: limit the named nodes' links (default: all) to RATE
#             (tc tbf, e.g. 1gbit) in both directions, or lift the limit.
# exec DIR NODE CMD...
#             multi-node: run CMD in NODE's namespaces (network, host name,
#             mounts), as its jobs see them: to plant a fault on one node.
# kill DIR NODE
#             multi-node: SIGKILL everything in NODE (slurmd, steps, tasks):
#             the node loses power.
# reboot DIR NODE
#             multi-node: kill NODE, wipe its spool, TmpFS and shared-memory
#             files, start its slurmd again and return it to service.
# link DIR NODE up|down
#             multi-node: plug or unplug NODE's network cable (its veth).
#
# Multi-node (DURE_CLUSTER_NODES=N set, 1 to 64): every node is a network
# namespace with its own host name TAG-nI, address, CPUs and slurmd; see
# tests/slurm/nodes.sh. DURE_CLUSTER_TAG (default dn; 1-8 of [a-z0-9])
# names every namespace, link and node; DURE_CLUSTER_NET (A.B.C.0/24;
# default one the tag picks in 10.200-249.x) gives every address;
# DURE_CLUSTER_CPUS (default: this machine's CPUs / N, at least 1) is what
# each node declares and is pinned to; DURE_CLUSTER_RATE (default none) is
# the fabric's rate at start; DURE_CLUSTER_TCP_CC (default cubic, or reno
# where namespaces may not take cubic; never the machine's BBR: see
# net_settings) is every namespace's TCP congestion control;
# DURE_CLUSTER_CONF_EXTRA is appended to
# slurm.conf (e.g. "SlurmdTimeout=10"). Two clusters need different tags
# and subnets; `up` refuses a tag or subnet in use.
#
# Layout of DIR:
#   env.sh                  exports SLURM_CONF; clears inherited SLURM_*,
#                           SBATCH_*, SALLOC_*, SRUN_*, SQUEUE_*, SINFO_*;
#                           multi-node: DURE_SLURM_NODES (the node names)
#   cluster.env             multi-node: the tag, subnet, nodes, CPUs and TCP
#                           congestion control `up` chose
#   etc/slurm.conf          generated; single node: free TCP ports chosen at
#                           each fresh start
#   etc/munge/munge.key     0600, new random key per cluster
#   munge/munge.socket      munged's socket (its directory is world-executable)
#   pids/NAME               the PID this script recorded for each daemon
#                           (multi-node: slurmd.NODE per node)
#   run/ state/ spool/ tmp/ daemons' pid files, slurmctld state, slurmd spool,
#                           TmpFS (PMIx puts per-step directories there);
#                           multi-node: spool/NODE, tmp/NODE
#   log/NAME.out            each daemon's stderr: all of munged's and
#                           slurmctld's log (they run in the foreground)
#   log/slurmd.log          the log of slurmd and of every slurmstepd
#                           (multi-node: slurmd.NODE.log)
#   fabric/NODE             multi-node: the rate NODE's link is limited to
#   netns                   multi-node: the namespaces and bridge `up` made,
#                           with their inode and ifindex (down removes those only)
#   jobcomp.log             one line per finished job (JobState=, ExitCode=)
#
# Knobs: DURE_SLURM_UP_TIMEOUT (s, default 30) bounds `up`;
# DURE_SLURM_STOP_TIMEOUT (s, default 10) is how long `down` waits after
# SIGTERM before SIGKILL for a daemon (job tasks get 3 s);
# DURE_SLURM_PORTS="CTLD SLURMD" are the ports a single-node `up` tries
# first (if either is taken it goes on with free ones, as when another
# cluster takes a port between our check and the bind).
set -u

# The daemons of a single-node cluster; a multi-node one has slurmd.NODE
# for each node instead of slurmd (set_daemons).
DAEMONS=(munged slurmctld slurmd)
UP_TIMEOUT=${DURE_SLURM_UP_TIMEOUT:-30}
STOP_TIMEOUT=${DURE_SLURM_STOP_TIMEOUT:-10}
TASK_GRACE=3
# Ports are drawn below the kernel's ephemeral range so that outgoing
# connections cannot take them between the check and the bind.
PORT_LO=20000 PORT_HI=32000

log() { echo "cluster.sh: $*"; }
warn() { echo "cluster.sh: error: $*" >&2; }
die() { warn "$*"; exit 1; }

usage() {
    echo "usage: bash tests/slurm/cluster.sh up|down|status DIR" >&2
    echo "       bash tests/slurm/cluster.sh fabric DIR RATE|none [NODE...]" >&2
    echo "       bash tests/slurm/cluster.sh exec DIR NODE CMD..." >&2
    echo "       bash tests/slurm/cluster.sh kill|reboot DIR NODE" >&2
    echo "       bash tests/slurm/cluster.sh link DIR NODE up|down" >&2
    exit 2
}

# shellcheck source=tests/slurm/nodes.sh
. "$(dirname "${BASH_SOURCE[0]}")/nodes.sh"

# set_daemons: DAEMONS of the cluster recorded in DIR (multi-node when
# DIR/cluster.env exists).
set_daemons() {
    local n
    DAEMONS=(munged slurmctld slurmd)
    read_settings || return 0
    DAEMONS=(munged slurmctld)
    for n in "${NODE_NAMES[@]}"; do DAEMONS+=("slurmd.$n"); done
}

# proc_state PID: the one-letter state of PID ("" if it does not exist).
proc_state() {
    local stat
    read -r stat 2>/dev/null < "/proc/$1/stat" || return 0
    stat=${stat##*) }
    echo "${stat%% *}"
}

# daemon_pid NAME: the recorded PID of NAME if that process still runs the
# daemon of this DIR: program .../NAME (slurmd for slurmd.NODE) with DIR in
# its arguments (a zombie, a reused PID, another cluster's daemon, or setsid,
# nohup, nsenter and taskset before they exec the daemon do not count);
# prints nothing otherwise.
daemon_pid() {
    local name=$1 pid args state prog=${1%%.*}
    read -r pid 2>/dev/null < "$DIR/pids/$name" || return 0
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    state=$(proc_state "$pid")
    [ -n "$state" ] && [ "$state" != Z ] || return 0
    mapfile -d '' args 2>/dev/null < "/proc/$pid/cmdline" || return 0
    [[ "${args[0]:-}" == */"$prog" ]] && [[ "${args[*]}" == *"$DIR/"* ]] && echo "$pid"
}

# start_daemon NAME CMD...: run CMD in the foreground of its own session,
# detached from our stdio and from every other descriptor we hold, and
# record its PID. setsid does not fork here (a background child is never a
# process-group leader), so $! is the daemon itself (or a chain of programs
# that exec it: nsenter, unshare, sh, taskset).
start_daemon() {
    local name=$1; shift
    echo "=== cluster.sh: starting $name" >> "$DIR/log/$name.out"
    (
        for fd in /proc/"$BASHPID"/fd/*; do
            fd=${fd##*/}
            [ "$fd" -gt 2 ] && eval "exec $fd>&-"
        done
        exec setsid nohup "$@" < /dev/null >> "$DIR/log/$name.out" 2>&1
    ) &
    local pid=$! limit=$((SECONDS + UP_TIMEOUT))
    echo "$pid" > "$DIR/pids/$name"
    # Until setsid and nohup have exec'd the daemon, daemon_pid takes the
    # process for dead: wait until it runs the daemon or ends (reported later).
    while [ -z "$(daemon_pid "$name")" ] && [ $SECONDS -lt $limit ]; do
        case $(proc_state "$pid") in ""|Z) return ;; esac
        sleep 0.01
    done
}

# now_us: the time in microseconds (EPOCHREALTIME without its decimal point,
# whatever the locale writes there).
now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }

# wait_gone SECONDS PID...: wait until none of PIDs runs (zombies count as
# gone: PID 1 here does not reap them); fails if one still runs.
wait_gone() {
    local deadline=$(($(now_us) + $1 * 1000000)) pid left; shift
    while :; do
        left=0
        for pid in "$@"; do
            case $(proc_state "$pid") in ""|Z) ;; *) left=1 ;; esac
        done
        [ $left -eq 0 ] && return 0
        [ "$(now_us)" -lt $deadline ] || return 1
        sleep 0.05
    done
}

# stop_pids SECONDS PID...: SIGTERM, wait SECONDS, then SIGKILL what is left.
stop_pids() {
    local bound=$1; shift
    [ $# -gt 0 ] || return 0
    kill -TERM "$@" 2>/dev/null
    wait_gone "$bound" "$@" && return 0
    log "still running after ${bound}s, sending SIGKILL: $*"
    kill -KILL "$@" 2>/dev/null
    wait_gone 5 "$@"
}

# job_leftovers: processes that jobs of this cluster started and that
# outlived slurmd. slurmd starts each slurmstepd in a session of its own, so
# neither ancestry nor session leads to them: a slurmstepd of this cluster
# holds DIR's slurmd log open, and a task was started with the environment
# of a job of this cluster (SLURM_JOB_ID and this SLURM_CONF; the shell that
# submitted it has only the latter). Prints "stepd PID" or "task PID" lines.
job_leftovers() {
    local p stat
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        { [ "$p" = $$ ] || [ "$p" = "$BASHPID" ]; } && continue
        read -r stat 2>/dev/null < "/proc/$p/stat" || continue
        if [[ "$stat" == *" (slurmstepd) "* ]]; then
            readlink "/proc/$p/fd/"* 2>/dev/null | grep -qF "$DIR/" && echo "stepd $p"
        elif job_environ "$p"; then
            echo "task $p"
        fi
    done
}

# job_environ PID: PID was started with the environment of a job of this
# cluster.
job_environ() {
    local e conf=0 job=0
    while IFS= read -r -d '' e; do
        case $e in
            "SLURM_CONF=$DIR/etc/slurm.conf") conf=1 ;;
            SLURM_JOB_ID=*) job=1 ;;
        esac
    done 2>/dev/null < "/proc/$1/environ"
    [ $conf -eq 1 ] && [ $job -eq 1 ]
}

dump_logs() {
    local f
    for f in "$DIR"/log/*; do
        [ -s "$f" ] || continue
        echo "----- $f (last 30 lines)"
        tail -n 30 "$f"
    done >&2
}

# pick_ports N: N distinct random TCP ports that nothing on this machine
# uses now (listening or connected, IPv4 or IPv6).
pick_ports() {
    local n=$1 used=" " line port picked=" " tries=0
    while read -r _ line _; do
        [[ "$line" == *:* ]] || continue
        used+="$((16#${line##*:})) "
    done < <(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null)
    while [ "$n" -gt 0 ]; do
        tries=$((tries + 1))
        [ $tries -lt 1000 ] || die "no free TCP port in $PORT_LO-$PORT_HI"
        port=$((PORT_LO + (RANDOM * 32768 + RANDOM) % (PORT_HI - PORT_LO)))
        [[ "$used$picked" == *" $port "* ]] && continue
        picked+="$port "
        n=$((n - 1))
    done
    echo "$picked"
}

# conf_common SPOOL PIDFILE LOGFILE TMPFS: print the slurm.conf settings
# that the single-node and the namespaced cluster share, with slurmd's spool
# directory, pid file, log file and TmpFS as given (%n: the node's name).
conf_common() {
    cat <<EOF
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job restarts after about this many seconds.
AuthInfo=socket=$DIR/munge/munge.socket,cred_expire=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$1
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$2
SlurmdLogFile=$3
SlurmctldDebug=info
SlurmdDebug=info
TmpFS=$4
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=pmix
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.log
DependencyParameters=kill_invalid_depend
# Finished jobs leave squeue after 4 s, and sbatch --wait then polls every 2 s.
MinJobAge=4
# Start a batch job at submission, not up to 3 s later; and a requeued job
# as soon as it is eligible again (cred_expire), not at the next 60 s pass
# of the main scheduler.
SchedulerParameters=batch_sched_delay=0,sched_interval=1
# Job ids differ between clusters running at once: Open MPI names its
# session directory and shared memory in /tmp and /dev/shm after the job.
FirstJobId=$(( (RANDOM % 30000 + 1) * 1000 ))
KillWait=2
ReturnToService=2
MailProg=/bin/true
SlurmdParameters=config_overrides
EOF
}

write_config() { # ctld_port slurmd_port
    local hw
    # The node's real CPUs, topology and memory, as slurmd itself sees them.
    hw=$(slurmd -C | sed -n 's/^NodeName=[^ ]* \(.*CPUs=.*RealMemory=[0-9]*\).*/\1/p')
    [ -n "$hw" ] || die "cannot read the node's CPUs and RealMemory from 'slurmd -C'"
    {
        cat <<EOF
# Generated by tests/slurm/cluster.sh: a private single-node test cluster.
ClusterName=dure
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$1
SlurmdPort=$2
EOF
        conf_common "$DIR/spool" "$DIR/run/slurmd.pid" "$DIR/log/slurmd.log" "$DIR/tmp"
        cat <<EOF
NodeName=$NODE NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES State=UP MaxTime=INFINITE
EOF
    } > "$DIR/etc/slurm.conf"
}

write_env() {
    {
        cat <<'EOF'
# Generated by tests/slurm/cluster.sh: source it to use this test cluster.
# Slurm settings inherited from an outer job or shell would mislead clients.
for _dure_v in $(env | sed -n 's/^\(\(SLURM\|SBATCH\|SALLOC\|SRUN\|SQUEUE\|SINFO\)_[A-Za-z0-9_]*\)=.*/\1/p'); do
    unset "$_dure_v"
done
unset _dure_v DURE_SLURM_NODES
EOF
        printf 'export SLURM_CONF=%q\n' "$DIR/etc/slurm.conf"
        printf 'export DURE_SLURM_DIR=%q\n' "$DIR"
        if [ -r "$DIR/cluster.env" ]; then
            printf 'export DURE_SLURM_NODES=%q\n' "${NODE_NAMES[*]}"
        fi
    } > "$DIR/env.sh"
}

# wait_until SECONDS DESC CHECK...: poll CHECK until it succeeds (return 0).
# Return 2 as soon as a daemon in $STARTED fails to bind its port (slurmctld
# would retry for 10 s before giving up), 1 if one dies or time runs out.
wait_until() {
    local deadline=$((SECONDS + $1)) desc=$2 name pid; shift 2
    while ! "$@" >/dev/null 2>&1; do
        for name in $STARTED; do
            # Liveness first: the log of a daemon seen dead is complete.
            pid=$(daemon_pid "$name")
            port_clash "$name" && return 2
            [ -n "$pid" ] || { warn "$name exited while waiting for $desc"; return 1; }
        done
        [ $SECONDS -lt $deadline ] || { warn "timed out waiting for $desc"; return 1; }
        sleep 0.05
    done
}

# Readiness checks. A client waits up to MessageTimeout (10 s) for an answer
# from whatever holds the port: each check gets 2 s and is polled again.
munge_ok() { [ -S "$DIR/munge/munge.socket" ]; }
ctld_ok() { SLURM_CONF="$DIR/etc/slurm.conf" timeout 2 scontrol ping | grep -q 'is UP'; }
node_idle() {
    [ "$(SLURM_CONF="$DIR/etc/slurm.conf" timeout 2 sinfo -h -N -n "$NODE" -o %T)" = idle ]
}

# port_clash NAME: NAME's last start failed to bind its port.
port_clash() {
    awk '/^=== cluster.sh: starting/ { c = 0 } /Address already in use/ { c = 1 } END { exit !c }' \
        "$DIR/log/$1.out" 2>/dev/null
}

stop_daemon() { # name
    local pid
    pid=$(daemon_pid "$1")
    if [ -n "$pid" ]; then stop_pids "$STOP_TIMEOUT" "$pid" || return 1; fi
    rm -f "$DIR/pids/$1"
}

cmd_up() {
    local name running=0 attempt ports deadline rc multi=0 recorded="" wanted=""
    [ "$(id -u)" -eq 0 ] || die "the test cluster runs its daemons as root"
    [[ "${DURE_SLURM_PORTS:-1 1}" =~ ^[0-9]+\ [0-9]+$ ]] ||
        die "DURE_SLURM_PORTS must be two port numbers, not '$DURE_SLURM_PORTS'"
    for name in munged slurmctld slurmd scontrol sinfo; do
        command -v "$name" >/dev/null || die "$name not found: run 'make deps'"
    done
    [ -n "${DURE_CLUSTER_NODES:-}" ] && multi=1
    if [ $multi -eq 1 ]; then
        for name in ip tc nsenter unshare taskset; do
            command -v "$name" >/dev/null || die "$name not found: run 'make deps'"
        done
    fi
    DIR=$(cd "$DIR" && pwd -P)
    # What DIR holds now, then what is asked for.
    set_daemons
    [ -r "$DIR/cluster.env" ] && recorded=$(cat "$DIR/cluster.env")
    for name in "${DAEMONS[@]}"; do
        [ -n "$(daemon_pid "$name")" ] && running=$((running + 1))
    done
    if [ $multi -eq 1 ]; then
        net_settings
        wanted=$(settings_text)
    else
        # The node is this host, under the short name slurmctld and slurmd -C use.
        NODE=$(hostname -s)
    fi
    if [ $running -eq ${#DAEMONS[@]} ] && [ "$recorded" = "$wanted" ]; then
        STARTED="${DAEMONS[*]}"
        if [ $multi -eq 1 ]; then
            wait_until "$UP_TIMEOUT" "$NODES nodes idle" node_idle_all || { dump_logs; return 1; }
        else
            wait_until "$UP_TIMEOUT" "node $NODE idle" node_idle || { dump_logs; return 1; }
        fi
        log "already up in $DIR"
        return 0
    fi
    # A fresh cluster: nothing of an earlier one (daemons left half up,
    # processes of its jobs, state, stale pid files, sockets, namespaces) is
    # carried over.
    if [ $running -eq ${#DAEMONS[@]} ]; then
        log "up in $DIR with other settings: stopping it first"
    elif [ $running -gt 0 ]; then
        log "half up in $DIR: stopping what is left first"
    fi
    if [ -d "$DIR/pids" ] || [ -n "$recorded" ]; then cmd_down > /dev/null || return 1; fi
    if [ $multi -eq 1 ]; then
        # cmd_down read the old settings: the new ones again. The tag and
        # subnet must be free before anything is recorded as this DIR's.
        net_settings
        (net_clean_stale && net_check_free) || return 1
    fi
    rm -rf "${DIR:?}/etc" "$DIR/munge" "$DIR/pids" "$DIR/run" "$DIR/state" \
        "$DIR/spool" "$DIR/tmp" "$DIR/log" "$DIR/jobcomp.log" "$DIR/env.sh" \
        "$DIR/cluster.env" "$DIR/fabric" "$DIR/netns"
    mkdir -p "$DIR/etc/munge" "$DIR/munge" "$DIR/pids" "$DIR/run" "$DIR/state" \
        "$DIR/spool" "$DIR/tmp" "$DIR/log" || die "cannot create directories in $DIR"
    # munged wants every directory above its socket world-executable; it
    # only warns under --force, which lets a DIR inside a private directory
    # work for root (the key is ours and 0600, the socket is fresh).
    chmod a+x "$DIR"
    chmod 0700 "$DIR/etc/munge"
    chmod 0755 "$DIR/munge"
    (umask 077 && head -c 1024 /dev/urandom > "$DIR/etc/munge/munge.key") ||
        die "cannot write the munge key"

    STARTED=""
    deadline=$((SECONDS + UP_TIMEOUT))
    start_daemon munged "$(command -v munged)" -F --force \
        --key-file="$DIR/etc/munge/munge.key" --socket="$DIR/munge/munge.socket" \
        --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
        --seed-file="$DIR/munge/munged.seed"
    STARTED=munged
    if ! wait_until $((deadline - SECONDS)) "munged's socket" munge_ok; then
        dump_logs; cmd_down >/dev/null; return 1
    fi
    if [ $multi -eq 1 ]; then
        # Recorded first, so that down removes whatever part gets made.
        write_settings
        set_daemons
        if (net_up) && start_nodes_cluster "$deadline" &&
            { [ -z "${DURE_CLUSTER_RATE:-}" ] || fabric_apply "$DURE_CLUSTER_RATE" "${NODE_NAMES[@]}"; }; then
            write_env
            log "up in $DIR ($NODES nodes ${NODE_NAMES[*]} on $NET.0/24, $CPUS CPU(s) each, controller $CTL_NAME)"
            return 0
        fi
        dump_logs
        cmd_down >/dev/null
        return 1
    fi
    # Another cluster may take a port between our check and the bind:
    # then try again with new ones.
    for attempt in 1 2 3; do
        if [ $attempt -eq 1 ] && [ -n "${DURE_SLURM_PORTS:-}" ]; then
            read -r -a ports <<< "$DURE_SLURM_PORTS"
        else
            read -r -a ports <<< "$(pick_ports 2)"
        fi
        write_config "${ports[0]}" "${ports[1]}"
        start_daemon slurmctld "$(command -v slurmctld)" -D -f "$DIR/etc/slurm.conf"
        STARTED="munged slurmctld"
        wait_until $((deadline - SECONDS)) slurmctld ctld_ok; rc=$?
        if [ $rc -eq 0 ]; then
            start_daemon slurmd "$(command -v slurmd)" -D -N "$NODE" -f "$DIR/etc/slurm.conf"
            STARTED="munged slurmctld slurmd"
            wait_until $((deadline - SECONDS)) "node $NODE idle" node_idle; rc=$?
        fi
        if [ $rc -eq 0 ]; then
            write_env
            log "up in $DIR (node $NODE, slurmctld port ${ports[0]}, slurmd port ${ports[1]})"
            return 0
        fi
        { [ $rc -eq 2 ] && [ $attempt -lt 3 ]; } || break
        log "port ${ports[0]} or ${ports[1]} was taken meanwhile: trying others"
        { stop_daemon slurmd && stop_daemon slurmctld; } || break
    done
    dump_logs
    cmd_down >/dev/null
    return 1
}

cmd_down() {
    local name pid kind pids=() stepds=() tasks=() rc=0
    [ -d "$DIR" ] || { log "nothing to stop: $DIR does not exist"; return 0; }
    DIR=$(cd "$DIR" && pwd -P)
    set_daemons
    # slurmd first so that it starts nothing more, then what jobs left,
    # then munged, which slurmstepd needs until its end.
    for name in "${DAEMONS[@]}"; do
        [ "$name" = munged ] && continue
        pid=$(daemon_pid "$name")
        [ -n "$pid" ] && pids+=("$pid")
    done
    stop_pids "$STOP_TIMEOUT" "${pids[@]}" || rc=1
    # slurmstepd ignores SIGTERM: it gets SIGKILL at once; tasks get
    # SIGTERM and a short grace period.
    while read -r kind pid; do
        if [ "$kind" = stepd ]; then stepds+=("$pid"); else tasks+=("$pid"); fi
    done < <(job_leftovers)
    if [ $((${#stepds[@]} + ${#tasks[@]})) -gt 0 ]; then
        log "stopping what jobs left: slurmstepd ${stepds[*]:-none}, tasks ${tasks[*]:-none}"
        [ ${#stepds[@]} -eq 0 ] || kill -KILL "${stepds[@]}" 2>/dev/null
        stop_pids "$TASK_GRACE" "${tasks[@]}" "${stepds[@]}" || rc=1
    fi
    stop_daemon munged || rc=1
    for name in "${DAEMONS[@]}"; do
        if [ -n "$(daemon_pid "$name")" ]; then
            warn "$name (pid $(cat "$DIR/pids/$name")) still runs"; rc=1
        else
            rm -f "$DIR/pids/$name"
        fi
    done
    # Namespaces, links and the bridge of a multi-node cluster, by name.
    if [ -r "$DIR/cluster.env" ]; then
        net_down || rc=1
        [ $rc -ne 0 ] || rm -f "$DIR/cluster.env"
    fi
    [ $rc -eq 0 ] && log "down in $DIR"
    return $rc
}

cmd_status() {
    local name pid rc=0
    [ -d "$DIR" ] && DIR=$(cd "$DIR" && pwd -P)
    set_daemons
    for name in "${DAEMONS[@]}"; do
        pid=$(daemon_pid "$name")
        if [ -n "$pid" ]; then echo "$name: running (pid $pid)"
        else echo "$name: stopped"; rc=1
        fi
    done
    if [ $rc -eq 0 ]; then
        SLURM_CONF="$DIR/etc/slurm.conf" sinfo -N -o '%N %P %T %c %m' || rc=1
    fi
    if [ -r "$DIR/cluster.env" ]; then
        echo "tag $TAG, subnet $NET.0/24, $NODES node(s) of $CPUS CPU(s)"
        for name in "${NODE_NAMES[@]}"; do
            echo "$name: address $(node_addr "${name#"$TAG"-n}"), CPUs $(node_cpus "${name#"$TAG"-n}"), fabric $(cat "$DIR/fabric/$name" 2>/dev/null || echo unlimited), TCP ${TCP_CC:-?}"
        done
    fi
    return $rc
}

{ [ $# -ge 2 ] && [ -n "$2" ]; } || usage
cmd=$1 DIR=$2
shift 2
case $cmd in
    up|down)
        [ $# -eq 0 ] || usage
        # One `up` or `down` at a time per DIR; the daemons never inherit
        # the lock (start_daemon closes it). A `down` on a DIR that never
        # held a cluster writes nothing there.
        if [ "$cmd" = up ] || [ -d "$DIR/pids" ] || [ -r "$DIR/cluster.env" ]; then
            { mkdir -p "$DIR" && exec 9>> "$DIR/lock"; } || die "cannot create $DIR/lock"
            flock -w "$UP_TIMEOUT" 9 || die "another cluster.sh holds $DIR/lock"
        fi
        "cmd_$cmd" ;;
    status) [ $# -eq 0 ] || usage; cmd_status ;;
    fabric) [ $# -ge 1 ] || usage; DIR=$(cd "$DIR" && pwd -P) || exit 1; cmd_fabric "$@" ;;
    exec) [ $# -ge 2 ] || usage; DIR=$(cd "$DIR" && pwd -P) || exit 1; cmd_exec "$@" ;;
    kill|reboot)
        [ $# -eq 1 ] || usage
        DIR=$(cd "$DIR" && pwd -P) || exit 1
        { exec 9>> "$DIR/lock" && flock -w "$UP_TIMEOUT" 9; } || die "another cluster.sh holds $DIR/lock"
        "cmd_$cmd" "$1" ;;
    link) [ $# -eq 2 ] || usage; DIR=$(cd "$DIR" && pwd -P) || exit 1; cmd_link "$@" ;;
    *) usage ;;
esac
