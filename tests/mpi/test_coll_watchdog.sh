#!/usr/bin/env bash
# tests/mpi/test_coll_watchdog.sh - the hang watchdog under real mpirun:
# a rank that stalls before a collective, a rank stopped with SIGSTOP and a
# rank killed with SIGKILL must end the job within the timeout (2 s here),
# with a report naming the operation, its sequence number, its bytes, the
# rank that never joined, its host and why (alive but behind, stopped,
# gone). Prints the measured time to abort.
. "$(dirname "$0")/../lib.sh"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# under_limit SECONDS LIMIT
under_limit() { awk -v t="$1" -v l="$2" 'BEGIN { exit !(t < l) }'; }

bench=("$DURE" bench allreduce -b 4K -e 4K -n 2 -R 1 -w 1 --watchdog 2)

# 1. Rank 1 sleeps 60 s before its first collective; rank 0 waits in it.
for algo in shm ring native; do
    t0=$(now)
    t_run "stalled rank 1, algo $algo: the job aborts with the watchdog's exit code" 124 \
        env DURE_BENCH_STALL=1:60 timeout 50 mpirun -np 2 -x DURE_BENCH_STALL "${bench[@]}" --algo "$algo"
    t=$(elapsed "$t0" "$(now)")
    t_grep "stalled ($algo): report names op, seq, bytes and algorithm" \
        "collective hang: rank 0 of 2 on $(hostname): all-reduce seq 1 \(4096 bytes, algo $algo\) did not complete in 2\.[0-9] s"
    t_grep "stalled ($algo): report names the rank that had not joined, its host and state" \
        "not joined: rank 1 on $(hostname) \(alive, still at an earlier collective; last joined seq 0\)"
    if under_limit "$t" 20; then t_ok "stalled ($algo): aborted ${t} s after start (timeout 2 s; the stall was 60 s)"
    else t_fail "stalled ($algo): took ${t} s"; fi
done

# 2. Rank 0 stalls in the middle of the run: a later sequence number.
t_run "stalled rank 0 in broadcast: exit 124" 124 env DURE_BENCH_STALL=0:60 timeout 50 \
    mpirun -np 2 -x DURE_BENCH_STALL "$DURE" bench broadcast -b 64K -e 64K -n 2 -R 1 -w 1 --watchdog 2
t_grep "rank 1 reports that rank 0 never joined the broadcast" \
    'collective hang: rank 1 of 2 on [^:]+: broadcast seq 1 \(65536 bytes, algo [a-z]+\).*not joined: rank 0 on '

# 3. A killed rank. mpirun's default already tears the job down when a
# process dies; with recovery enabled (as under srun --kill-on-bad-exit=0)
# only the watchdog stands between the survivor and a hang forever.
t0=$(now)
t_run "killed rank 1, default mpirun: the job ends" 137 \
    env DURE_BENCH_KILL=1 timeout 50 mpirun -np 2 -x DURE_BENCH_KILL "${bench[@]}"
t=$(elapsed "$t0" "$(now)")
t_ok "killed rank, default mpirun: ended after ${t} s"
t0=$(now)
t_run "killed rank 1, mpirun keeps going: the survivor's watchdog ends the job" 0 \
    env DURE_BENCH_KILL=1 timeout 50 mpirun --mca orte_enable_recovery 1 -np 2 -x DURE_BENCH_KILL "${bench[@]}"
t=$(elapsed "$t0" "$(now)")
t_grep "killed: the report says rank 1's process is gone" \
    "not joined: rank 1 on $(hostname) \(process gone; last joined seq 0\)"
t_grep "killed: the survivor aborts the job" 'dure: watchdog: rank 0 aborting the job \(exit code 124\)'
if under_limit "$t" 20; then t_ok "killed rank: survivor aborted ${t} s after start (timeout 2 s)"
else t_fail "killed rank: took ${t} s"; fi

# 4. A stopped rank (SIGSTOP: a hang, not a death): the survivor names it.
# 4 x 1,000,000 iterations: seconds of work even at 0.7-1.5 us each (a quiet
# machine), so that the stop 0.5 s after the header finds it running.
mpirun -np 2 "${bench[@]:0:3}" -b 4K -e 4K -n 1000000 -R 4 -w 1 --watchdog 2 \
    > "$T_TMP/stop.log" 2>&1 &
job=$!
victim=
# Once the table's header is out, the ranks are past setup and measuring.
for _ in $(seq 1 300); do
    grep -q 'size' "$T_TMP/stop.log" && break
    sleep 0.1
done
for p in $(ps -o pid= --ppid "$job"); do
    tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && victim=$p
done
sleep 0.5
t0=$(now)
kill -STOP "$victim"
wait "$job"; rc=$?
t=$(elapsed "$t0" "$(now)")
T_OUT=$(cat "$T_TMP/stop.log")
t_eq "stopped rank 1: exit 124" "$rc" 124
t_grep "stopped: the report says rank 1's process is stopped" \
    "not joined: rank 1 on $(hostname) \(process stopped; last joined seq [0-9]+\)"
if under_limit "$t" 7; then t_ok "stopped rank: the job ended ${t} s after SIGSTOP (timeout 2 s + 5 s)"
else t_fail "stopped rank: took ${t} s"; fi

# 5. No watchdog for healthy runs: a short timeout does not fire on normal work.
t_run "a healthy run with --watchdog 2 completes" 0 mpirun -np 2 "${bench[@]}"
t_done
