# tests/slurm/nodes.sh - the multi-node part of tests/slurm/cluster.sh
# (sourced by it): N compute nodes on this one machine, each a network
# namespace with its own host name, address, CPUs and slurmd, joined by a
# private bridge, and a controller in a namespace of its own.
#
# Every name derives from the cluster's tag T (DURE_CLUSTER_TAG) and every
# address from its subnet A.B.C.0/24 (DURE_CLUSTER_NET), so clusters with
# different tags and subnets never collide:
#   bridge          T-br, address A.B.C.1 (the root namespace: clients,
#                   munged, srun's reply ports)
#   controller      namespace T-ctl, host name T-ctl, A.B.C.2, slurmctld
#   node i (1..N)   namespace T-ni, host name T-ni, A.B.C.(10+i), slurmd
#                   -N T-ni, pinned to its CPUs with taskset
#   links           veth T-hi (root side, on the bridge) <-> eth0 (node side);
#                   T-hc <-> eth0 for the controller
# Daemons in a node also get a mount namespace of their own (propagation
# slave: mounts of the machine reach them, theirs stay inside), so a test
# can change one node's view of the file system (`cluster.sh exec`).
# shellcheck shell=bash

# net_settings: validate the request and set TAG, NET (A.B.C), NODES, CPUS
# (per node), TCP_CC, NODE_NAMES, CTL_NAME from the environment.
net_settings() {
    local h real allowed
    NODES=${DURE_CLUSTER_NODES:-}
    TAG=${DURE_CLUSTER_TAG:-dn}
    { [[ "$NODES" =~ ^[1-9][0-9]?$ ]] && [ "$NODES" -le 64 ]; } ||
        die "DURE_CLUSTER_NODES must be a number of nodes from 1 to 64, not '$NODES'"
    # Interface names (T-br, T-h64) must stay within 15 characters.
    [[ "$TAG" =~ ^[a-z][a-z0-9]{0,7}$ ]] ||
        die "DURE_CLUSTER_TAG='$TAG' must be 1-8 lower-case letters and digits, starting with a letter"
    if [ -n "${DURE_CLUSTER_NET:-}" ]; then
        { [[ "$DURE_CLUSTER_NET" =~ ^(10|172|192)\.([0-9]{1,3})\.([0-9]{1,3})\.0/24$ ]] &&
            [ "${BASH_REMATCH[2]}" -le 255 ] && [ "${BASH_REMATCH[3]}" -le 255 ]; } ||
            die "DURE_CLUSTER_NET='$DURE_CLUSTER_NET' must be a private A.B.C.0/24 subnet (e.g. 10.212.1.0/24)"
        NET=${DURE_CLUSTER_NET%.0/24}
    else
        # A subnet of 10.200-249.x.0 that the tag picks: two tags rarely share one.
        h=$(printf '%s' "$TAG" | cksum | cut -d' ' -f1)
        NET="10.$((200 + h % 50)).$((h / 50 % 256))"
    fi
    real=$(machine_cpus)
    CPUS=${DURE_CLUSTER_CPUS:-$((real / NODES > 0 ? real / NODES : 1))}
    { [[ "$CPUS" =~ ^[1-9][0-9]*$ ]] && [ "$CPUS" -le "$real" ]; } ||
        die "DURE_CLUSTER_CPUS='$CPUS' must be 1 to $real (the CPUs this machine has)"
    # TCP congestion control in every namespace. A namespace takes the
    # machine's default, and where that is BBR (a WAN algorithm that paces
    # each burst at its estimate of the path's rate) Open MPI's TCP messages
    # of some sizes took 2-6x their neighbours between the nodes: a 131000-byte
    # ping-pong 182-229 us against 44-50 us at 130000 and 131040 bytes, the
    # linear all-gather at 128 KiB 214-595 us in half the runs; with reno
    # every size rose smoothly. Cluster nodes run cubic, Linux's default;
    # a namespace may only take one in tcp_allowed_congestion_control.
    allowed=$(cat /proc/sys/net/ipv4/tcp_allowed_congestion_control 2>/dev/null)
    TCP_CC=${DURE_CLUSTER_TCP_CC:-cubic}
    if [ -z "${DURE_CLUSTER_TCP_CC:-}" ] && ! [[ " $allowed " == *" cubic "* ]]; then
        TCP_CC=reno
    fi
    [[ " $allowed " == *" $TCP_CC "* ]] ||
        die "DURE_CLUSTER_TCP_CC='$TCP_CC' is not one a namespace may use here (net.ipv4.tcp_allowed_congestion_control: $allowed)"
    CTL_NAME=$TAG-ctl
    NODE_NAMES=()
    for ((i = 1; i <= NODES; i++)); do NODE_NAMES+=("$TAG-n$i"); done
}

# shellcheck source=tests/cpus.sh
. "$(dirname "${BASH_SOURCE[0]}")/../cpus.sh"

# node_cpus I: the CPU list node I (1..N) is pinned to: CPUS consecutive
# CPUs, wrapping around the machine's when nodes outnumber them.
node_cpus() {
    local real first c list=""
    real=$(machine_cpus)
    first=$(( (($1 - 1) * CPUS) % real ))
    for ((c = 0; c < CPUS; c++)); do list+="${list:+,}$(( (first + c) % real ))"; done
    echo "$list"
}

node_addr() { echo "$NET.$((10 + $1))"; }

# The settings `up` chose, for down, status, fabric and exec (which must act
# on what was made, whatever the environment says now): settings_text is
# DIR/cluster.env's text, which `up` also compares with what it finds.
settings_text() {
    printf 'TAG=%q\nNET=%q\nNODES=%q\nCPUS=%q\nTCP_CC=%q' "$TAG" "$NET" "$NODES" "$CPUS" "$TCP_CC"
}
write_settings() { settings_text > "$DIR/cluster.env" && echo >> "$DIR/cluster.env"; }

read_settings() {
    [ -r "$DIR/cluster.env" ] || return 1
    # shellcheck disable=SC1091
    . "$DIR/cluster.env"
    CTL_NAME=$TAG-ctl
    NODE_NAMES=()
    for ((i = 1; i <= NODES; i++)); do NODE_NAMES+=("$TAG-n$i"); done
}

# net_in_use: the subnet is already routed here by something other than
# this tag's bridge (another cluster, a real network).
net_in_use() {
    ip -4 -o route show 2>/dev/null | awk -v net="$NET.0/24" -v br="$TAG-br" \
        '$1 == net && $0 !~ (" dev " br " ") { found = 1 } END { exit !found }'
}

# tag_namespaces: this tag's namespaces that exist now.
tag_namespaces() {
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$TAG-(ctl|n[0-9]+)$"
}

# net_clean_stale: remove namespaces and links of this tag left by a cluster
# whose DIR is gone (a crash, a deleted temp dir). Refuses when a process
# still runs in one of them: that is a live cluster of the same tag.
net_clean_stale() {
    local ns pids link
    for ns in $(tag_namespaces); do
        pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
        [ -z "$pids" ] || die "tag '$TAG' is in use: processes $pids run in namespace $ns (another cluster?): choose another DURE_CLUSTER_TAG"
    done
    for ns in $(tag_namespaces); do
        log "removing namespace $ns left by an earlier cluster of tag $TAG"
        ip netns delete "$ns" || die "cannot delete namespace $ns"
    done
    for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' |
        grep -E "^$TAG-(br|h[0-9]+|hc)$"); do
        log "removing link $link left by an earlier cluster of tag $TAG"
        ip link delete "$link" 2>/dev/null
    done
    wait_links_gone 5
}

# wait_links_gone SECONDS [REGEX]: namespace deletion removes the veths in
# the background; wait until no link of this tag (or none matching REGEX,
# e.g. "h1|h2") is left.
wait_links_gone() {
    local deadline=$((SECONDS + $1)) which=${2:-br|h[0-9]+|hc}
    while ip -o link show 2>/dev/null | grep -qE ": $TAG-($which)[@:]"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.05
    done
}

# What this DIR made, by identity, so that down never removes a namespace
# or bridge of the same name made by someone else: "ns NAME INODE" (the
# namespace file's inode) and "link NAME IFINDEX" lines in DIR/netns.
record_ns() { echo "ns $1 $(stat -L -c %i "/run/netns/$1")" >> "$DIR/netns"; }
record_link() { echo "link $1 $(cat "/sys/class/net/$1/ifindex")" >> "$DIR/netns"; }

# net_add NS HOSTLINK ADDR: a namespace with a veth pair to the bridge:
# HOSTLINK in the root namespace, eth0 with ADDR/24 inside.
net_add() {
    local ns=$1 hostlink=$2 addr=$3
    ip netns add "$ns" && record_ns "$ns" &&
        ip link add "$hostlink" type veth peer name eth0 netns "$ns" &&
        ip link set "$hostlink" master "$TAG-br" up &&
        nsenter --net="/run/netns/$ns" sh -c \
            "ip link set lo up && ip addr add $addr/24 dev eth0 && ip link set eth0 up &&
             sysctl -qw net.ipv4.tcp_congestion_control=$TCP_CC"
}

# net_check_free: nothing of this tag exists and nothing routes its subnet.
net_check_free() {
    [ -z "$(tag_namespaces)" ] || die "namespaces of tag '$TAG' exist: $(tag_namespaces | tr '\n' ' ')"
    ! net_in_use || die "subnet $NET.0/24 is already in use on this machine: set DURE_CLUSTER_NET to a free A.B.C.0/24"
}

net_up() {
    local i
    { ip link add "$TAG-br" type bridge && record_link "$TAG-br" &&
        ip addr add "$NET.1/24" dev "$TAG-br" &&
        ip link set "$TAG-br" up; } || die "cannot create the bridge $TAG-br"
    net_add "$TAG-ctl" "$TAG-hc" "$NET.2" || die "cannot create the controller's namespace $TAG-ctl"
    for ((i = 1; i <= NODES; i++)); do
        net_add "$TAG-n$i" "$TAG-h$i" "$(node_addr "$i")" ||
            die "cannot create the namespace of node $TAG-n$i"
    done
}

# net_down: delete the namespaces and the bridge that DIR/netns records, if
# they are still the ones made (same inode, same ifindex), and wait for
# their links to go. Run after every process in them has stopped.
net_down() {
    local kind name id now pids gone="" rc=0
    [ -r "$DIR/netns" ] || return 0
    while read -r kind name id; do
        if [ "$kind" = ns ]; then
            now=$(stat -L -c %i "/run/netns/$name" 2>/dev/null) || continue
            if [ "$now" != "$id" ]; then
                warn "namespace $name is not the one this cluster made: left alone"; continue
            fi
            # Whatever still runs in a namespace of ours came from our
            # daemons or jobs (a task that outlived its slurmstepd): it
            # would keep the namespace and its link alive.
            pids=$(ip netns pids "$name" 2>/dev/null | tr '\n' ' ')
            if [ -n "$pids" ]; then
                log "stopping what still runs in namespace $name: $pids"
                # shellcheck disable=SC2086  # a list of PIDs
                stop_pids "$TASK_GRACE" $pids || rc=1
            fi
            ip netns delete "$name" || { warn "cannot delete namespace $name"; rc=1; continue; }
            case $name in
                "$TAG-ctl") gone+="${gone:+|}hc" ;;
                *) gone+="${gone:+|}h${name#"$TAG"-n}" ;;
            esac
        else
            now=$(cat "/sys/class/net/$name/ifindex" 2>/dev/null) || continue
            if [ "$now" != "$id" ]; then
                warn "link $name is not the one this cluster made: left alone"; continue
            fi
            ip link delete "$name" || { warn "cannot delete link $name"; rc=1; continue; }
            gone+="${gone:+|}${name#"$TAG"-}"
        fi
    done < "$DIR/netns"
    if [ -n "$gone" ] && ! wait_links_gone 10 "$gone"; then
        warn "links of tag $TAG still present after 10 s"; rc=1
    fi
    [ $rc -ne 0 ] || rm -f "$DIR/netns"
    return $rc
}

write_config_nodes() {
    local mem i
    # The machine's memory, shared out among the nodes (MiB).
    mem=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
    mem=$((mem / NODES))
    {
        cat <<EOF
# Generated by tests/slurm/cluster.sh: a private test cluster of $NODES
# namespaced nodes (tag $TAG, subnet $NET.0/24).
ClusterName=dure$TAG
SlurmctldHost=$CTL_NAME($NET.2)
SlurmctldPort=6817
SlurmdPort=6818
EOF
        conf_common "$DIR/spool/%n" "$DIR/run/slurmd.%n.pid" "$DIR/log/slurmd.%n.log" "$DIR/tmp/%n"
        for ((i = 1; i <= NODES; i++)); do
            echo "NodeName=$TAG-n$i NodeAddr=$(node_addr "$i") CPUs=$CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=$mem State=UNKNOWN"
        done
        echo "PartitionName=debug Nodes=ALL Default=YES State=UP MaxTime=INFINITE"
        if [ -n "${DURE_CLUSTER_CONF_EXTRA:-}" ]; then
            printf '# DURE_CLUSTER_CONF_EXTRA\n%s\n' "$DURE_CLUSTER_CONF_EXTRA"
        fi
    } > "$DIR/etc/slurm.conf"
}

# in_node NS HOST: set IN_NODE to the command prefix that runs a command in
# namespace NS with its own host name HOST and mount namespace. `ip netns
# exec` would remount /sys, which slurmd 22.05 refuses; nsenter, unshare and
# sh exec without forking, so the PID that start_daemon records is the
# daemon's.
in_node() {
    # shellcheck disable=SC2016  # expanded by the inner sh
    IN_NODE=(nsenter --net="/run/netns/$1" unshare --uts --mount --propagation slave
        sh -c 'hostname "$0" && exec "$@"' "$2")
}

node_idle_all() {
    local states
    states=$(SLURM_CONF="$DIR/etc/slurm.conf" timeout 2 sinfo -h -N -o '%N %T' | sort -u)
    [ "$(printf '%s\n' "$states" | grep -c ' idle$')" -eq "$NODES" ]
}

# start_nodes_cluster DEADLINE: munged is up; start slurmctld and the
# slurmds, and wait (until SECONDS reaches DEADLINE) for every node idle.
start_nodes_cluster() {
    local i deadline=$1
    write_config_nodes
    in_node "$TAG-ctl" "$CTL_NAME"
    start_daemon slurmctld "${IN_NODE[@]}" "$(command -v slurmctld)" -D -f "$DIR/etc/slurm.conf"
    STARTED="munged slurmctld"
    wait_until $((deadline - SECONDS)) slurmctld ctld_ok || return 1
    for ((i = 1; i <= NODES; i++)); do
        mkdir -p "$DIR/spool/$TAG-n$i" "$DIR/tmp/$TAG-n$i" || return 1
        in_node "$TAG-n$i" "$TAG-n$i"
        start_daemon "slurmd.$TAG-n$i" "${IN_NODE[@]}" taskset -c "$(node_cpus "$i")" "$(command -v slurmd)" -D -N "$TAG-n$i" \
            -f "$DIR/etc/slurm.conf"
        STARTED+=" slurmd.$TAG-n$i"
    done
    wait_until $((deadline - SECONDS)) "$NODES nodes idle" node_idle_all
}

# ---------------------------------------------------------------- fabric

# fabric_apply RATE NODE...: limit each node's link to RATE in both
# directions (tc tbf on both ends of its veth: the root side shapes what
# the node receives, eth0 inside what it sends), or lift the limit (none).
fabric_apply() {
    local rate=$1 node i rc=0; shift
    for node in "$@"; do
        i=${node#"$TAG"-n}
        { [[ "$i" =~ ^[0-9]+$ ]] && [ "$i" -ge 1 ] && [ "$i" -le "$NODES" ]; } ||
            die "no node '$node' in this cluster (nodes: ${NODE_NAMES[*]})"
        if [ "$rate" = none ]; then
            tc qdisc del dev "$TAG-h$i" root 2>/dev/null
            nsenter --net="/run/netns/$node" tc qdisc del dev eth0 root 2>/dev/null
            rm -f "$DIR/fabric/$node"
            continue
        fi
        # burst 128kb: enough for 1 Gbit/s at a 1 ms timer. latency bounds the
        # queue, as a switch port's buffer and fq_codel's 5 ms target do: at
        # 50 ms a loss-based TCP (net_settings) filled it up to
        # tcp_limit_output_bytes (4 MB, 33 ms at 1 Gbit/s), and every message
        # behind that waited as long: `dure run` across 2 nodes exposed 14-16
        # ms of communication a step in two runs of four (weak scaling 0.70,
        # 0.74), 7-8 ms with 5 ms (0.80-0.84 in five runs). At 2 ms, with BBR,
        # it had dropped TCP segments under all-reduce bursts (1512 drops in
        # one benchmark run), which then waited for retransmission.
        if ! { tc qdisc replace dev "$TAG-h$i" root tbf rate "$rate" burst 128kb latency 5ms &&
            nsenter --net="/run/netns/$node" tc qdisc replace dev eth0 root tbf rate "$rate" \
                burst 128kb latency 5ms; }; then
            warn "cannot limit node $node's link to $rate"; rc=1; continue
        fi
        mkdir -p "$DIR/fabric" && echo "$rate" > "$DIR/fabric/$node"
    done
    return $rc
}

cmd_fabric() {
    local rate=$1; shift
    read_settings || die "no multi-node cluster in $DIR"
    [ "$rate" = none ] || [[ "$rate" =~ ^[0-9]+(\.[0-9]+)?([kmg]?bit|[kmg]?bps)$ ]] ||
        die "fabric rate '$rate' must be like 1gbit, 100mbit, 500kbit, or none"
    [ $# -gt 0 ] || set -- "${NODE_NAMES[@]}"
    fabric_apply "$rate" "$@" || return 1
    log "fabric: $rate on $*"
}

# cmd_exec NODE CMD...: run CMD in NODE's namespaces (network, host name,
# mounts), as its slurmd and jobs see them.
cmd_exec() {
    local node=$1 pid; shift
    read_settings || die "no multi-node cluster in $DIR"
    pid=$(daemon_pid "slurmd.$node")
    [ -n "$pid" ] || die "node '$node' has no running slurmd in $DIR (nodes: ${NODE_NAMES[*]})"
    exec nsenter --target "$pid" --net --uts --mount "$@"
}

# ---------------------------------------------------------------- node faults

# node_index NODE: its number I (1..N), or die naming the nodes there are.
node_index() {
    local i=${1#"$TAG"-n}
    { [[ "$1" == "$TAG"-n* ]] && [[ "$i" =~ ^[0-9]+$ ]] && [ "$i" -ge 1 ] &&
        [ "$i" -le "$NODES" ]; } || die "no node '$1' in this cluster (nodes: ${NODE_NAMES[*]})"
    echo "$i"
}

# node_kill NODE: SIGKILL every process in the node's network namespace
# (its slurmd, slurmstepds and tasks) at once: the node loses power.
node_kill() {
    local pids
    pids=$(ip netns pids "$1" 2>/dev/null | tr '\n' ' ')
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086  # a list of PIDs
    kill -KILL $pids 2>/dev/null
    # shellcheck disable=SC2086
    wait_gone 5 $pids
}

# cmd_kill NODE: the node dies; Slurm notices after SlurmdTimeout.
cmd_kill() {
    read_settings || die "no multi-node cluster in $DIR"
    node_index "$1" > /dev/null
    node_kill "$1" || die "processes of node $1 survived SIGKILL"
    log "node $1 killed"
}

# cmd_reboot NODE: kill what runs there, wipe what a killed node leaves
# behind (its spool, TmpFS and shared-memory files, which would make the
# next job landing there fail), start its slurmd again and return it to
# service (a DOWN node would otherwise stay down for a minute).
cmd_reboot() {
    local node=$1 i deadline=$((SECONDS + UP_TIMEOUT))
    read_settings || die "no multi-node cluster in $DIR"
    i=$(node_index "$node")
    node_kill "$node" || die "processes of node $node survived SIGKILL"
    ip link set "$TAG-h$i" up 2>/dev/null
    rm -rf "${DIR:?}/spool/$node" "${DIR:?}/tmp/$node" /dev/shm/*."$node".*
    mkdir -p "$DIR/spool/$node" "$DIR/tmp/$node" || die "cannot wipe node $node"
    in_node "$node" "$node"
    start_daemon "slurmd.$node" "${IN_NODE[@]}" taskset -c "$(node_cpus "$i")" \
        "$(command -v slurmd)" -D -N "$node" -f "$DIR/etc/slurm.conf"
    [ -n "$(daemon_pid "slurmd.$node")" ] || { dump_logs; die "slurmd of $node did not start"; }
    SLURM_CONF="$DIR/etc/slurm.conf" scontrol update NodeName="$node" State=RESUME 2>/dev/null
    until [ "$(SLURM_CONF="$DIR/etc/slurm.conf" timeout 2 sinfo -h -n "$node" -o %T 2>/dev/null)" = idle ]; do
        [ $SECONDS -lt $deadline ] || die "node $node is not idle after its reboot"
        sleep 0.1
        SLURM_CONF="$DIR/etc/slurm.conf" scontrol update NodeName="$node" State=RESUME 2>/dev/null
    done
    log "node $node rebooted"
}

# cmd_link NODE up|down: the node's network cable (its veth on the bridge
# side); everything in the node keeps running.
cmd_link() {
    local i
    read_settings || die "no multi-node cluster in $DIR"
    i=$(node_index "$1")
    case $2 in up|down) ;; *) die "link state '$2' must be up or down" ;; esac
    ip link set "$TAG-h$i" "$2" || die "cannot set the link of node $1 $2"
    log "node $1: link $2"
}
