#!/usr/bin/env bash
# tests/multinode/test_cluster.sh - the multi-node mode of
# tests/slurm/cluster.sh: a second cluster of 2 namespaced nodes beside the
# one tests/run.sh started; bad settings; the tag and subnet of a running
# cluster refused without harm to it; host names, addresses, CPUs; the
# fabric limit; exec in a node; up twice; a node's slurmd killed; down
# removes every namespace, link and process; a crashed cluster's leftovers
# cleaned by the next up of its tag.
# shellcheck source=tests/multinode/lib.sh
. "$(dirname "$0")/lib.sh"

D="$T_TMP/c2"
tag=m$(od -An -N2 -tx2 /dev/urandom | tr -d ' ')
# Whatever happens to this test, its cluster goes down before $T_TMP goes.
trap 'bash "$MN_CLUSTER" down "$D" > /dev/null 2>&1; rm -rf "$T_TMP"' EXIT
trap 'exit 1' INT TERM HUP
export DURE_CLUSTER_NODES=2 DURE_CLUSTER_TAG=$tag DURE_CLUSTER_CPUS=1
unset DURE_CLUSTER_NET DURE_CLUSTER_RATE DURE_CLUSTER_TCP_CC
first_tag=$(sed -n 's/^TAG=//p' "$DURE_SLURM_DIR/cluster.env")
first_net=$(sed -n 's/^NET=//p' "$DURE_SLURM_DIR/cluster.env")

# tag_left: namespaces and links of $tag that exist now.
tag_left() {
    { ip netns list | awk '{print $1}'; ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//'; } |
        grep -E "^$tag-" | sort | tr '\n' ' '
}
# procs_in_dir: live processes that name $D in their command line.
procs_in_dir() {
    local p stat args
    for p in /proc/[0-9]*; do
        read -r stat 2>/dev/null < "$p/stat" || continue
        [[ "$stat" == *") Z "* ]] && continue
        mapfile -d '' args 2>/dev/null < "$p/cmdline"
        [[ "${args[*]}" == *"$D/"* ]] && echo "${p#/proc/}"
    done
}
# in2 CMD...: CMD with the second cluster as the Slurm clients' cluster.
in2() { SLURM_CONF="$D/etc/slurm.conf" "$@"; }

t_run "a tag with a capital letter is refused" 1 env DURE_CLUSTER_TAG=Bad bash "$MN_CLUSTER" up "$D"
t_grep "it says what a tag may be" "DURE_CLUSTER_TAG='Bad' must be 1-8 lower-case letters"
t_run "0 nodes are refused" 1 env DURE_CLUSTER_NODES=0 bash "$MN_CLUSTER" up "$D"
t_grep "it names the setting" "DURE_CLUSTER_NODES must be a number of nodes from 1 to 64, not '0'"
t_run "a public subnet is refused" 1 env DURE_CLUSTER_NET=8.8.8.0/24 bash "$MN_CLUSTER" up "$D"
t_grep "it names the setting" "DURE_CLUSTER_NET='8.8.8.0/24' must be a private A.B.C.0/24"
t_run "a TCP congestion control namespaces may not take is refused" 1 \
    env DURE_CLUSTER_TCP_CC=nosuch bash "$MN_CLUSTER" up "$D"
t_grep "it names the setting and what is allowed" \
    "DURE_CLUSTER_TCP_CC='nosuch' is not one a namespace may use here \(net.ipv4.tcp_allowed_congestion_control: .*reno"
t_run "the running cluster's tag is refused" 1 env DURE_CLUSTER_TAG="$first_tag" bash "$MN_CLUSTER" up "$D"
t_grep "it says the tag is in use" "tag '$first_tag' is in use: processes .* run in namespace $first_tag-"
t_run "the running cluster's subnet is refused" 1 env DURE_CLUSTER_NET="$first_net.0/24" bash "$MN_CLUSTER" up "$D"
t_grep "it says the subnet is in use" "subnet $first_net.0/24 is already in use"
t_run "the first cluster is untouched by the refusals" 0 bash "$MN_CLUSTER" status "$DURE_SLURM_DIR"
t_eq "nothing of the refused tries is left" "$(tag_left)" ""

# With OMP_NUM_THREADS=1 exported, as on many clusters: GNU nproc obeys it,
# and every node was pinned to CPU 0 (tests/slurm/nodes.sh, machine_cpus).
t_run "up starts 2 namespaced nodes" 0 env OMP_NUM_THREADS=1 OMP_THREAD_LIMIT=1 \
    bash "$MN_CLUSTER" up "$D"
t_grep "up names the nodes" "2 nodes $tag-n1 $tag-n2 on 10\.[0-9]+\.[0-9]+\.0/24, 1 CPU\(s\) each, controller $tag-ctl"
net=$(sed -n 's/^NET=//p' "$D/cluster.env")
t_eq "the subnet is not the first cluster's" "$([ "$net" != "$first_net" ] && echo differs)" differs
t_run "status shows both nodes idle" 0 bash "$MN_CLUSTER" status "$D"
# cubic where a namespace may take it, else reno: never the machine's own
# default when that is BBR (tests/slurm/nodes.sh, net_settings)
cc=reno
grep -qw cubic /proc/sys/net/ipv4/tcp_allowed_congestion_control && cc=cubic
t_grep "node 1: its address, CPU and TCP" "^$tag-n1: address $net\.11, CPUs 0, fabric unlimited, TCP $cc$"
t_grep "node 2: its address, CPU and TCP" "^$tag-n2: address $net\.12, CPUs 1, fabric unlimited, TCP $cc$"
t_eq "node 2's TCP runs it" "$(bash "$MN_CLUSTER" exec "$D" "$tag-n2" sysctl -n net.ipv4.tcp_congestion_control)" "$cc"
t_eq "sinfo: 2 idle nodes of 1 CPU" "$(in2 sinfo -h -N -o '%N %T %c' | sort)" \
    "$(printf '%s\n' "$tag-n1 idle 1" "$tag-n2 idle 1")"
# shellcheck disable=SC2016  # expanded by each task's shell
t_eq "each task sees its node's host name, address and CPU" \
    "$(in2 timeout 30 srun -N2 -n2 sh -c 'echo $(hostname) $(ip -4 -o addr show eth0 | awk "{print \$4}") $(taskset -pc $$ | sed "s/.*: //")' | sort)" \
    "$(printf '%s\n' "$tag-n1 $net.11/24 0" "$tag-n2 $net.12/24 1")"
t_run "exec runs a command in node 2's namespaces" 0 bash "$MN_CLUSTER" exec "$D" "$tag-n2" hostname
t_eq "it is node 2" "$T_OUT" "$tag-n2"
t_run "exec on a node that does not exist" 1 bash "$MN_CLUSTER" exec "$D" "$tag-n9" hostname
t_grep "it lists the nodes" "no running slurmd .* \(nodes: $tag-n1 $tag-n2\)"

t_run "fabric limits node 2's link to 100mbit" 0 bash "$MN_CLUSTER" fabric "$D" 100mbit "$tag-n2"
t_eq "both ends of node 2's link are shaped" \
    "$(tc qdisc show dev "$tag-h2" | grep -c 'tbf .*rate 100Mbit') $(bash "$MN_CLUSTER" exec "$D" "$tag-n2" tc qdisc show dev eth0 | grep -c 'tbf .*rate 100Mbit')" "1 1"
t_eq "node 1's link is not" "$(tc qdisc show dev "$tag-h1" | grep -c tbf)" 0
t_run "status reports it" 0 bash "$MN_CLUSTER" status "$D"
t_grep "node 2's fabric" "^$tag-n2: .* fabric 100mbit, TCP $cc$"
t_run "a rate tc cannot read is refused" 1 bash "$MN_CLUSTER" fabric "$D" fast
t_run "fabric none lifts the limit" 0 bash "$MN_CLUSTER" fabric "$D" none
t_eq "no shaping is left" "$(tc qdisc show dev "$tag-h2" | grep -c tbf)" 0

t_run "up on the running cluster is a no-op" 0 bash "$MN_CLUSTER" up "$D"
t_grep "up says so" 'already up'
slurmd2=$(cat "$D/pids/slurmd.$tag-n2")
kill -KILL "$slurmd2"
t_run "up after node 2's slurmd died starts the cluster afresh" 0 bash "$MN_CLUSTER" up "$D"
t_grep "up says it was half up" 'half up'
t_eq "both nodes are idle again" "$(in2 sinfo -h -N -o '%T' | sort -u)" idle

# A job left running when the cluster goes down.
t_run "a 2-node job is submitted" 0 in2 sbatch --parsable -N2 --output="$T_TMP/left.out" \
    --wrap "srun -N2 sleep 300"
for _ in $(seq 100); do
    [ "$(in2 squeue -h -o %T)" = RUNNING ] && break
    sleep 0.1
done
t_eq "the job runs" "$(in2 squeue -h -o %T)" RUNNING
t_run "down stops the cluster" 0 bash "$MN_CLUSTER" down "$D"
t_eq "no namespace or link of the tag is left" "$(tag_left)" ""
t_eq "no process names anything under DIR" "$(procs_in_dir)" ""
t_run "the first cluster still runs" 0 bash "$MN_CLUSTER" status "$DURE_SLURM_DIR"
t_run "down again is fine" 0 bash "$MN_CLUSTER" down "$D"

# A crash: every daemon killed and DIR lost, namespaces left behind.
t_run "up again" 0 bash "$MN_CLUSTER" up "$D"
for f in "$D"/pids/*; do kill -KILL "$(cat "$f")"; done
for _ in $(seq 50); do [ -z "$(procs_in_dir)" ] && break; sleep 0.1; done
rm -rf "$D"
t_eq "the crash left the namespaces" "$([ -n "$(tag_left)" ] && echo left)" left
t_run "up in a new DIR with the same tag cleans them and starts" 0 bash "$MN_CLUSTER" up "$D"
t_grep "up says what it removed" "removing namespace $tag-n1 left by an earlier cluster of tag $tag"
t_run "down" 0 bash "$MN_CLUSTER" down "$D"
t_eq "nothing of the tag is left" "$(tag_left)" ""

t_done
