#!/usr/bin/env bash
# tests/mpi/test_coll_bench.sh - `dure bench`: nccl-tests' options and
# columns, data checking (#wrong finds a corrupted element), every
# collective x algorithm, --compare, --json, --plot, --min-busbw, usage
# errors, and backend nccl without a GPU.
. "$(dirname "$0")/../lib.sh"
quick=(-n 2 -R 1 -w 1)

t_run "allreduce 4K..64K" 0 mpirun -np 2 "$DURE" bench allreduce -b 4K -e 64K -f 4 "${quick[@]}"
t_grep "nccl-tests column header" '#  +size +count +type +redop +root +time +algbw +busbw +#wrong +time +algbw +busbw +#wrong'
t_grep "a row per size: 4K, 16K, 64K" '^ +16384 +4096 +float +sum +-1 +[0-9.]+ +[0-9.]+ +[0-9.]+ +0 +[0-9.]+ +[0-9.]+ +[0-9.]+ +0$'
t_grep "footer" '^# Avg bus bandwidth    : [0-9.]+'
t_grep "no wrong values" '^# Out of bounds values : 0 OK'
rows=$(printf '%s\n' "$T_OUT" | grep -cE '^ +[0-9]+ +[0-9]+ +float')
t_eq "-b 4K -e 64K -f 4 gives 3 sizes" "$rows" 3

for coll in allreduce reducescatter allgather broadcast; do
    for algo in native ring shm auto; do
        t_run "$coll --algo $algo checks out" 0 mpirun -np 2 "$DURE" bench "$coll" --algo "$algo" \
            -b 1K -e 1M -f 32 "${quick[@]}" -o avg -r 1
    done
done
t_run "reducescatter on 3 ranks, sizes with odd per-rank counts" 0 mpirun --oversubscribe -np 3 \
    "$DURE" bench reducescatter -b 1000 -e 1000000 -f 10 "${quick[@]}"
t_grep "count column is per rank (nccl-tests): 960 bytes = 3 x 80 floats" '^ +960 +80 +float'
t_run "allgather -i additive steps" 0 mpirun -np 2 "$DURE" bench allgather -b 8K -e 24K -i 8K "${quick[@]}"
rows=$(printf '%s\n' "$T_OUT" | grep -cE '^ +[0-9]+ +[0-9]+ +float')
t_eq "-i 8K from 8K to 24K gives 3 sizes" "$rows" 3

# bus bandwidth factors: all-reduce 2(n-1)/n, the gathers (n-1)/n, broadcast 1
check_factor() { # coll want_ratio
    local json=$T_TMP/factor.json
    t_run "$1 bus factor" 0 mpirun --oversubscribe -np 3 "$DURE" bench "$1" -b 64K -e 64K "${quick[@]}" --json "$json"
    if /usr/bin/python3 - "$json" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
want = float(sys.argv[2])
for r in d["results"]:
    for side in ("out_of_place", "in_place"):
        ratio = r[side]["busbw_gbs"] / r[side]["algbw_gbs"]
        assert abs(ratio - want) < 1e-3, (side, ratio, want)
PY
    then t_ok "$1: busbw/algbw = $2 at 3 ranks"; else t_fail "$1: busbw/algbw is not $2"; fi
}
check_factor allreduce 1.3333
check_factor reducescatter 0.6667
check_factor allgather 0.6667
check_factor broadcast 1.0

# #wrong: one corrupted element on one rank is counted and fails the run
t_run "a corrupted element fails the run" 1 env DURE_BENCH_CORRUPT=1 mpirun -np 2 -x DURE_BENCH_CORRUPT \
    "$DURE" bench allreduce -b 4K -e 16K -f 4 "${quick[@]}"
t_grep "#wrong counts it, out-of-place and in-place" '^ +4096 +1024 +float +sum +-1 +[0-9.]+ +[0-9.]+ +[0-9.]+ +1 +[0-9.]+ +[0-9.]+ +[0-9.]+ +1$'
t_grep "footer says FAILED" '^# Out of bounds values : 4 FAILED'
t_grep "and a message says why" 'wrong element\(s\)'
t_run "corruption on rank 0 of a reduce-scatter is counted too" 1 env DURE_BENCH_CORRUPT=0 \
    mpirun -np 2 -x DURE_BENCH_CORRUPT "$DURE" bench reducescatter -b 4K -e 4K "${quick[@]}"
t_run "a malformed DURE_BENCH_CORRUPT is refused, not read as rank 0" 3 env DURE_BENCH_CORRUPT=one \
    "$DURE" bench allreduce -b 4K -e 4K "${quick[@]}"
t_grep "named" "DURE_BENCH_CORRUPT='one': not a rank number"
t_run "DURE_BENCH_STALL without seconds is refused" 3 env DURE_BENCH_STALL=1 \
    "$DURE" bench allreduce -b 4K -e 4K "${quick[@]}"
t_grep "named" "DURE_BENCH_STALL='1': not RANK:SECONDS"
t_run "without checking (-c 0) nothing is counted" 0 env DURE_BENCH_CORRUPT=1 mpirun -np 2 \
    -x DURE_BENCH_CORRUPT "$DURE" bench allreduce -b 4K -e 4K -c 0 "${quick[@]}"

# --compare, --json, --plot, --min-busbw
json=$T_TMP/out.json png=$T_TMP/busbw.png
t_run "--compare with --json and --plot" 0 mpirun -np 2 "$DURE" bench allreduce --compare \
    -b 64K -e 1M -f 4 "${quick[@]}" --json "$json" --plot "$png"
t_grep "compare header names both sides" 'dure \(in-place\) +MPI native \(in-place\) +memcpy'
t_grep "compare rows show the algorithm and a ratio" '^ +65536 +16384 +float +sum +-1 +[a-z]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +0 +[0-9.]+ +[0-9.]+ +[0-9.]+ +0 +[0-9.]+ +[0-9.]+ +[0-9.]+$'
if /usr/bin/python3 - "$json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["collective"] == "allreduce" and d["nranks"] == 2 and d["compare"] is True
assert [r["size"] for r in d["results"]] == [65536, 262144, 1048576]
for r in d["results"]:
    assert r["dure"]["wrong"] == 0 and r["mpi_native"]["wrong"] == 0
    assert r["dure"]["busbw_gbs"] > 0 and r["memcpy_gbs"] > 0
PY
then t_ok "--json holds every size with both sides"; else t_fail "--json content"; fi
if [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then t_ok "--plot wrote a PNG"
else t_fail "--plot did not write a PNG"; fi
odd="$T_TMP/it's a \"plot\"; set output 'x'.png"
t_run "--plot into a path holding quotes and gnuplot syntax" 0 mpirun -np 2 "$DURE" bench allgather \
    -b 64K -e 256K -f 4 "${quick[@]}" --plot "$odd"
if [ "$(head -c 8 "$odd" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then t_ok "the PNG is at that very path"
else t_fail "no PNG at the quoted path"; fi
t_run "--plot into a missing directory fails" 1 mpirun -np 2 "$DURE" bench allgather \
    -b 64K -e 64K "${quick[@]}" --plot "$T_TMP/missing/busbw.png"
t_grep "naming the picture" "gnuplot (failed .* drawing|could not write) $T_TMP/missing/busbw.png"
if printf '%s' "$T_OUT" | grep -qa 'PNG'; then t_fail "PNG bytes went to the terminal"; else t_ok "no PNG bytes on the terminal"; fi
t_run "--min-busbw above the measured average fails" 1 mpirun -np 2 "$DURE" bench allreduce \
    -b 4K -e 4K "${quick[@]}" --min-busbw 100000
t_grep "the reason is given" 'below --min-busbw'

# usage errors exit 2 before MPI starts
t_run "unknown collective" 2 "$DURE" bench alltoall
t_grep "named" "unknown collective 'alltoall'"
t_run "bad size" 2 "$DURE" bench allreduce -b 4Q
t_grep "named" "-b '4Q' is not a size"
t_run "unknown option" 2 "$DURE" bench allreduce --frobnicate
t_run "bad algorithm" 2 "$DURE" bench allreduce --algo tree
t_grep "named" "algo 'tree' is not one of"
t_run "bad table" 2 "$DURE" bench allreduce --algo-table 1M:shm
t_grep "named" "must start at size 0"
t_run "-e below -b" 2 "$DURE" bench allreduce -b 1M -e 4K
t_run "a ring segment of 0 KiB" 2 "$DURE" bench allreduce --ring-segment 0
t_grep "named, with the range" "--ring-segment '0' is not an integer in \[1, 65536\]"
t_run "--ring-segment" 0 mpirun -np 2 "$DURE" bench allreduce --algo ring -b 1M -e 1M \
    --ring-segment 64 "${quick[@]}"
t_grep "the header names the segment" 'algo ring \(table 0:ring, ring segment 64K\)'
t_run "dure help bench" 0 "$DURE" help bench
t_grep "usage lists nccl-tests options" '-b, --minbytes SIZE'
t_run "broadcast root outside the communicator" 3 mpirun -np 2 "$DURE" bench broadcast -b 4K -e 4K -r 5 "${quick[@]}"
t_grep "named" '-r 5: the root must be a rank below 2'

# no GPU: backend nccl fails with one clear message and the no-device exit code
if ! "$DURE" --version | grep -qE 'CUDA driver: +[0-9]'; then
    t_run "backend nccl without a GPU" 6 mpirun -np 2 "$DURE" bench allreduce --backend nccl -b 4K -e 4K "${quick[@]}"
    t_grep "one clear message" '(no CUDA device visible|nccl: this dure was built without it) .*: use run.device = cpu and parallel.backend = mpi'
    n=$(printf '%s\n' "$T_OUT" | grep -c 'parallel.backend = mpi')
    t_eq "one message per rank, nothing else failing" "$n" 2
    if printf '%s\n' "$T_OUT" | grep -qiE 'segmentation|core dumped|signal'; then t_fail "nccl without GPU crashed"
    else t_ok "no crash"; fi
fi
t_done
