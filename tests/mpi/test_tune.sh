#!/usr/bin/env bash
# tests/mpi/test_tune.sh - `dure tune` end to end on 2 ranks: a small sweep
# writes every file (model, dure table, Open MPI rules, profile, PNG), each
# accepted by what reads it (Open MPI applies the rules, dure the table and
# the profile); --verify measures them against the defaults; a corrupted
# result writes nothing and names the algorithm and size; the health
# verdict against a baseline and between node pairs; bad input.
. "$(dirname "$0")/../lib.sh"
: "${DURE_BUILD:=$T_ROOT/build}"
out=$T_TMP/out
quick=(-b 4K -e 256K -f 4 -n 2 -w 1 -R 3 --link-bytes 64K)

t_run "a small sweep" 0 mpirun -np 2 "$DURE" tune -o "$out" "${quick[@]}"
t_grep "Open MPI's allreduce algorithms were measured" '^# allreduce +node +ompi default, basic_linear'
t_grep "dure's algorithms were measured" '^# broadcast +node +dure native, ring, shm: 4 sizes'
t_grep "a model line per series" '^  allgather +node +ompi +ring +[0-9.]+ +[0-9.]+ +[0-9.-]+ +[0-9.]+% [0-9]'
t_grep "the fit's error at every size" '^    error per size \(%\): [-+][0-9.]+ [-+][0-9.]+ [-+][0-9.]+ [-+][0-9.]+$'
t_grep "the worst fit error as a bench line" '^bench: tune_fit_worst_error: [0-9.]+ % \(tolerance: 15.00 %, ratio [0-9.]+\)$'
t_grep "the table chosen" '^dure tune: algorithm table 0:[a-z]+'
# --comm-thread auto resolves as dure run does: 2 ranks computing on every
# core of one node leave no core to a communication thread
if [ $(( $(machine_cpus) % 2 )) -eq 0 ]; then
    t_grep "auto: the ranks' waits run dure's collectives" \
        "^# dure tune: backend mpi, 4 size\(s\) .*; dure's collectives run by the ranks' waits$"
    if grep -q '"collectives_run_by": "caller"' "$out/tune.json"; then t_ok "tune.json records it"
    else t_fail "tune.json does not record who ran the collectives"; fi
fi
t_run "--comm-thread on" 0 mpirun -np 2 "$DURE" tune -o "$T_TMP/thr" -b 4K -e 4K -n 1 -w 1 -R 1 \
    --collectives allreduce,reducescatter,allgather --families dure --comm-thread on --no-plot \
    --min-rep-us 2500
t_grep "a communication thread" "; dure's collectives run by a communication thread$"
if grep -q '"collectives_run_by": "thread"' "$T_TMP/thr/tune.json"; then t_ok "recorded as thread"
else t_fail "--comm-thread on not recorded"; fi
if grep -q '"min_rep_s": 0.0025[0-9]*,' "$T_TMP/thr/tune.json"; then t_ok "--min-rep-us recorded"
else t_fail "--min-rep-us 2500 not recorded as 0.0025 s"; fi
t_run "--verify of it" 0 mpirun -np 2 "$DURE" tune --verify "$T_TMP/thr"
t_grep "times as it was swept" "^# dure tune --verify .*/thr: 1 iters x 1 reps \(median\), warmup 1, repetitions of 2500 us at least; dure's collectives run by a communication thread$"
t_run "--verify --min-rep-us 300" 0 mpirun -np 2 "$DURE" tune --verify "$T_TMP/thr" --min-rep-us 300
t_grep "or as told" "^# dure tune --verify .*: 1 iters x 1 reps \(median\), warmup 1, repetitions of 300 us at least;"
t_run "a negative --min-rep-us" 2 "$DURE" tune -o "$T_TMP/x" --min-rep-us -5
t_grep "named, with the range" "--min-rep-us '-5' is not a number in \[0, 1e\+06\]"

# The second look: a group of algorithms of which a series misses the
# tolerance is timed again with twice the passes, its series replaced (not
# appended), and the first fit's error kept; none within the tolerance.
t_run "a tolerance no fit meets" 0 mpirun -np 2 "$DURE" tune -o "$T_TMP/again" -b 4K -e 64K -f 2 \
    -n 1 -w 1 -R 1 --collectives allreduce --families dure --tolerance 0.1 --no-plot
t_grep "the group is timed again, twice the passes" \
    '^# allreduce node dure [a-z]+: fit [0-9.]+% off, beyond the tolerance: timing its group again, 2 passes$'
t_grep "said under the series" '^    timed again with twice the passes: its group.s first timings fitted within [0-9.]+%$'
printf '%s\n' "$T_OUT" > "$T_TMP/again.log"
if /usr/bin/python3 - "$T_TMP/again.log" "$T_TMP/again/tune.json" <<'PY'
import json, sys
log = open(sys.argv[1]).read()
assert log.count("timing its group again") == 1, log
assert log.count("native, ring, shm: 5 sizes again in") == 1, log
d = json.load(open(sys.argv[2]))
assert sorted(s["algorithm"] for s in d["series"]) == ["native", "ring", "shm"], d["series"]
for s in d["series"]:
    assert s["fit"]["first_timings_worst_error"] > 0.001, s["fit"]
    assert len(s["points"]) == 5 and all(p["wrong"] == 0 for p in s["points"])
PY
then t_ok "timed once more, each series once, its first fit's error kept"
else t_fail "the second look"; fi
t_run "a tolerance every fit meets" 0 mpirun -np 2 "$DURE" tune -o "$T_TMP/once" -b 4K -e 64K \
    -f 2 -n 1 -w 1 -R 1 --collectives allreduce --families dure --tolerance 1000 --no-plot
if printf '%s\n' "$T_OUT" | grep -q "again" || grep -q first_timings "$T_TMP/once/tune.json"; then
    t_fail "timed again though every fit was within the tolerance"
else t_ok "no second look when every fit is within the tolerance"; fi

# Sizes that round to the same elements (reduce-scatter: 4 per rank) are
# measured once, so every series ascends; a range of too many sizes is
# refused before anything is measured.
t_run "sizes closer than the rounding" 0 mpirun -np 2 "$DURE" tune -o "$T_TMP/round" -b 128 \
    -e 256 -f 1.1 -n 1 -w 1 -R 1 --families dure --no-plot
if /usr/bin/python3 - "$T_TMP/round/tune.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for s in d["series"]:
    b = [p["bytes"] for p in s["points"]]
    # 128 x 1.1^k up to 249: 128, 140, 154, 169, 186, 205, 225, 247; kept
    # where reduce-scatter's 32-byte rounding gives a new size, each
    # collective at its own rounding (all-reduce: 4 bytes)
    want = [128, 160, 192, 224] if s["collective"] in ("reducescatter", "allgather") \
        else [128, 168, 204, 224]
    assert b == want, (s["collective"], b)
assert d["choices"]["algo_table"].startswith("0:"), d["choices"]
PY
then t_ok "128 to 249 bytes: each size once, as many for every collective"; else t_fail "rounded sizes"; fi
t_run "sizes too small for 4 elements a rank" 3 mpirun -np 2 "$DURE" tune -o "$T_TMP/tiny" -b 4 \
    -e 16 -n 1 -w 1 -R 1 --no-plot
t_grep "names the ranks and the largest size" \
    'sweep: 2 ranks: every size up to 16 bytes rounds to fewer than 4 elements a rank \(raise -e\)'
if [ -e "$T_TMP/tiny" ]; then t_fail "an output directory after sizes too small"
else t_ok "nothing written for sizes too small"; fi
# Sizes are min * f^k to the nearest byte, and a last one a hair past -e is
# -e: by a factor a hair above the cube root of 2 a running product came
# to 1048576.003 after 30 steps and the sweep ended at 832255 bytes.
t_run "a factor a hair above a root" 0 "$DURE" tune -o "$T_TMP/root" -b 1K -e 1M -f 1.25992105 \
    --families dure --no-plot
t_grep "keeps the end of the range" '^# dure tune: backend mpi, 31 size\(s\) from 1024 to 1048576 bytes,'
t_run "a factor that misses the end" 0 "$DURE" tune -o "$T_TMP/past" -b 1K -e 1M -f 1.26 \
    --families dure --no-plot
t_grep "stops before it" '^# dure tune: backend mpi, 30 size\(s\) from 1024 to 833769 bytes,'
t_run "too many sizes" 2 "$DURE" tune -o "$T_TMP/many" -b 16 -e 1G -f 1.01
t_grep "says how to fix it" 'sizes 16 to 1073741824 bytes by a factor 1.01 are more than 96: raise the factor \(-f\) or narrow the range \(-b, -e\)'
if [ -e "$T_TMP/many" ]; then t_fail "an output directory after a refused range"
else t_ok "nothing written"; fi
t_run "a sweep with the ring in 64 KiB segments" 0 mpirun -np 2 -x DURE_RING_SEGMENT_KIB=64 \
    "$DURE" tune -o "$T_TMP/seg" -b 4K -e 8K -n 1 -w 1 -R 1 --families dure --no-plot
t_grep "says which segment the table was measured with" \
    '^dure tune: algorithm table 0:[a-z]+ \(measured with the ring in 64K segments\)$'
if grep -qx 'ring_segment_kib = 64' "$T_TMP/seg/algo_table.ini"; then
    t_ok "algo_table.ini pins the segment beside the table"
else t_fail "algo_table.ini: $(cat "$T_TMP/seg/algo_table.ini")"; fi
# --ring-segments: the ring timed in each segment first (the gradient
# exchange: all-reduce, reduce-scatter and all-gather), the sweep in the
# fastest. 4 KiB segments send 128 messages a 512 KiB piece where 1 MiB
# ones (cut to 256 KiB for pieces below 2 MiB, comm_ring_segment_for) send
# two: the 64 KiB-1 MiB all-reduces ran 7.6x faster in 1 MiB segments here.
t_run "--ring-segments" 0 mpirun -np 2 "$DURE" tune -o "$T_TMP/segs" --ring-segments 4,1024 \
    -b 64K -e 4M -f 4 -n 2 -w 1 -R 3 --families dure --no-plot
t_grep "the probe, each segment's time and the choice" \
    '^# ring segments: ring all-reduce \+ reduce-scatter \+ all-gather at 4 size\(s\) from 65536 to 4194304 bytes: 4K [0-9.]+ ms, 1M [0-9.]+ ms; the sweep runs the ring in 1M \([0-9.]+x 4K; another needs 1.10x\)$'
t_grep "the table names the segment" '\(measured with the ring in 1M segments\)$'
if grep -qx 'ring_segment_kib = 1024' "$T_TMP/segs/algo_table.ini" &&
   grep -qx 'DURE_RING_SEGMENT_KIB = 1024' "$T_TMP/segs/profile.ini"; then
    t_ok "algo_table.ini and profile.ini pin the chosen segment"
else t_fail "$(cat "$T_TMP/segs/algo_table.ini" "$T_TMP/segs/profile.ini")"; fi
if /usr/bin/python3 - "$T_TMP/segs/tune.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p = d["ring_segment_probe"]
assert d["ring_segment_bytes"] == 1048576
assert p["algorithm"] == "ring" and p["sizes"] == 4, p
assert (p["min_bytes"], p["max_bytes"]) == (65536, 4194304), p
assert [s["bytes"] for s in p["segments"]] == [4096, 1048576], p
assert p["segments"][0]["time_s"] > 1.1 * p["segments"][1]["time_s"] > 0, p
for s in p["segments"]:
    parts = [s[c + "_time_s"] for c in ("allreduce", "reducescatter", "allgather")]
    assert min(parts) > 0 and abs(sum(parts) - s["time_s"]) <= 1e-9 * s["time_s"], s
PY
then t_ok "tune.json records the probe"; else t_fail "tune.json's ring_segment_probe"; fi
# --verify runs the emitted table in the model's segment, the default in 256 KiB.
sed -i 's/^algo_table = .*/algo_table = 0:ring/' "$T_TMP/segs/algo_table.ini"
t_run "--verify of a ring table in 1 MiB segments" 0 mpirun -np 2 "$DURE" tune \
    --verify "$T_TMP/segs" -n 2 -w 1 -R 1
t_grep "names the segment where it cuts the pieces otherwise than 256 KiB" \
    '^  allreduce +dure +4M +ring/1M +shm +[0-9.]+ +[0-9.]+ +[0-9.]+  \(changed\)$'
t_grep "and not where both cut 256 KiB" '^  allreduce +dure +1M +ring +shm '
t_run "no size with pieces above the smallest segment" 0 mpirun -np 2 "$DURE" tune \
    -o "$T_TMP/segsmall" --ring-segments 64,256 -b 4K -e 64K -f 4 -n 1 -w 1 -R 1 \
    --families dure --collectives allreduce --no-plot
t_grep "says the probe did not run, and why" \
    "^# ring segments: not probed: at no size up to 65536 bytes do these segments cut 2 ranks' pieces differently; the ring keeps the first$"
if [ ! -e "$T_TMP/segsmall/algo_table.ini" ] &&
   grep -qx 'DURE_RING_SEGMENT_KIB = 64' "$T_TMP/segsmall/profile.ini"; then
    t_ok "the first segment stays, pinned in profile.ini without a table (all-reduce alone)"
else t_fail "$(ls "$T_TMP/segsmall"; cat "$T_TMP/segsmall/profile.ini")"; fi
t_run "one segment" 2 "$DURE" tune -o "$T_TMP/x" --ring-segments 256
t_grep "is not a comparison" "--ring-segments '256': give 2 to 4 segments to compare"
t_run "a segment that is no number" 2 "$DURE" tune -o "$T_TMP/x" --ring-segments 256,1M
t_grep "is named" "--ring-segments '1M' is not an integer in \[1, 65536\]"
t_run "a segment twice" 2 "$DURE" tune -o "$T_TMP/x" --ring-segments 256,1024,256
t_grep "is named" "--ring-segments '256,1024,256': 256 KiB twice"
t_run "five segments" 2 "$DURE" tune -o "$T_TMP/x" --ring-segments 64,128,256,512,1024
t_grep "are too many" "more than 4 segments"
t_run "--ring-segments with --verify" 2 "$DURE" tune --verify "$T_TMP/segs" --ring-segments 64,256
t_grep "is refused" "--ring-segments goes with a sweep \(-o DIR\)"
t_run "--ring-segments without dure's family" 3 mpirun -np 2 "$DURE" tune -o "$T_TMP/x" \
    --ring-segments 64,256 --families ompi -b 4K -e 4K
t_grep "is refused, naming why" "--ring-segments: dure's ring runs on the mpi backend, with the dure family swept \(this run: backend mpi, --families without dure\)"
if [ -e "$T_TMP/x" ]; then t_fail "an output directory after a refused option"
else t_ok "nothing written for refused segments"; fi
for f in tune.json algo_table.ini ompi_rules.conf profile.ini tune.png; do
    if [ -s "$out/$f" ]; then t_ok "wrote $f"; else t_fail "no $f"; fi
done
if [ "$(head -c 8 "$out/tune.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
    t_ok "tune.png is a PNG"
else
    t_fail "tune.png is not a PNG"
fi
if [ -e "$out/nccl_tuner.conf" ]; then t_fail "nccl_tuner.conf without the nccl backend"
else t_ok "no nccl_tuner.conf on the mpi backend"; fi

# The model: what dure plan reads (tune/README.md documents it).
if /usr/bin/python3 - "$out/tune.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == 1 and d["kind"] == "dure-tune"
assert d["world"] == {"ranks": 2, "nodes": 1, "host0": d["world"]["host0"]}
assert d["ring_segment_bytes"] == 262144
fams = {(s["collective"], s["family"]) for s in d["series"]}
for c in ("allreduce", "reducescatter", "allgather", "broadcast"):
    assert (c, "dure") in fams and (c, "ompi") in fams, c
for s in d["series"]:
    assert [p["bytes"] for p in s["points"]] == [4096, 16384, 65536, 262144], s["algorithm"]
    for p in s["points"]:
        assert p["wrong"] == 0 and p["time_s"] > 0 and p["busbw_gbs"] > 0
        assert abs(p["predicted_s"] / p["time_s"] - 1 - p["error"]) < 1e-9
    pieces = s["fit"]["pieces"]
    assert 1 <= len(pieces) <= 2 and pieces[0]["alpha_s"] >= 0
    # above the first piece alpha may be negative, the line positive from its first size
    assert all(q["beta_s_per_byte"] >= 0 and q["alpha_s"] + q["beta_s_per_byte"] * q["min_bytes"] > 0
               for q in pieces)
    worst = max(abs(p["error"]) for p in s["points"])
    assert abs(worst - s["fit"]["worst_error"]) < 1e-9
    assert s["fit"]["within_tolerance"] == (worst <= 0.15)
assert d["choices"]["algo_table"].startswith("0:")
assert d["files"]["ompi_rules"] == "ompi_rules.conf" and d["files"]["nccl_tuner"] is None
PY
then t_ok "tune.json holds every series, point, piece and error"; else t_fail "tune.json content"; fi

# The files are accepted by what reads them.
table=$(sed -n 's/^algo_table = //p' "$out/algo_table.ini")
t_run "dure accepts the emitted table" 0 mpirun -np 2 "$DURE" bench allreduce -b 4K -e 4K \
    -n 1 -w 0 -R 1 --algo-table "$table"
cat > "$T_TMP/job.ini" <<INI
[data]
path = none.h5
[slurm]
profile = tuned
INI
t_run "the profile section renders into a batch script" 0 env DURE_PROFILES="$out/profile.ini" \
    "$DURE" render "$T_TMP/job.ini"
t_grep "it exports the table" "^export DURE_ALGO_TABLE='?$table'?$"
t_grep "and the ring's segment the table was measured with" "^export DURE_RING_SEGMENT_KIB='?256'?$"
t_grep "and Open MPI's rules file" "^export OMPI_MCA_coll_tuned_dynamic_rules_filename='?/.*/ompi_rules.conf'?$"
bin=$DURE_BUILD/tests/mpi/test_tune_ompi
fps=$T_TMP/fps
t_run "fingerprints of Open MPI's allreduce algorithms" 0 env DURE_TUNE_TEST_FPS="$fps" \
    mpirun -np 2 -x DURE_TUNE_TEST_FPS "$bin"
t_run "Open MPI applies a rules file dure wrote (a choice told apart from its default)" 0 \
    env DURE_TUNE_TEST_FPS="$fps" DURE_TUNE_TEST_RULES="$fps.rules" DURE_TUNE_TEST_DISTINCT=1 \
    mpirun -np 2 -x DURE_TUNE_TEST_FPS -x DURE_TUNE_TEST_RULES -x DURE_TUNE_TEST_DISTINCT "$bin"
t_run "Open MPI applies the emitted rules as dure's parser reads them" 0 \
    env DURE_TUNE_TEST_FPS="$fps" DURE_TUNE_TEST_RULES="$out/ompi_rules.conf" \
    mpirun -np 2 -x DURE_TUNE_TEST_FPS -x DURE_TUNE_TEST_RULES "$bin"

# --verify: the emitted settings against the defaults, interleaved.
t_run "--verify" 0 mpirun -np 2 "$DURE" tune --verify "$out" -R 3
t_grep "a speed-up per size" '^  allreduce +ompi +64K +[a-z_]+ +default +[0-9.]+ +[0-9.]+ +[0-9.]+  \((changed|identical)\)$'
t_grep "the Open MPI verdict, A/A rows apart" \
    '^verify: ompi: 16 size\(s\), [0-9]+ changed(: lowest speed-up [0-9.]+ \(targets >= 1.0, >= 1.2\))?(; [0-9]+ identical to the default: noise floor [0-9.]+ to [0-9.]+ \(A/A, not judged\))?: target(s met| missed)$'
t_grep "the dure table verdict" '^verify: dure: 16 size\(s\), [0-9]+ changed'
if /usr/bin/python3 - "$out/verify.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
rows = d["rows"]
assert len(rows) == 32 and all(r["wrong"] == 0 and r["speedup"] > 0 for r in rows)
assert {r["family"] for r in rows} == {"dure", "ompi"}
for v in d["verdicts"]:
    mine = [r for r in rows if r["family"] == v["family"]]
    same = [r["speedup"] for r in mine if not r["changed"]]
    assert v["sizes"] == len(mine) and v["identical"] == len(same)
    assert not same or v["noise_floor"]["lowest"] == min(same)
PY
then t_ok "verify.json has a row per family, collective and size, and the verdicts"; else t_fail "verify.json content"; fi

# The recheck: with no gain asked of the sweep, its fastest algorithm leaves
# the default at most sizes; asked for 1000x when timed again against the
# default, every such change is vetoed and the rules are the defaults. A
# change must win at two neighbouring sizes: on the 4 sizes of the quick
# sweep none did in 1 run of 8 here, on these 9 every run of 24 had 3 to 15.
rc=$T_TMP/recheck
t_run "a sweep whose changes are all timed again" 0 mpirun -np 2 "$DURE" tune -o "$rc" \
    -b 4K -e 1M -f 2 -n 2 -w 1 -R 3 --link-bytes 64K --families ompi \
    --collectives allreduce,broadcast --min-gain 1.0 --recheck-gain 1000 --no-plot
t_grep "each change is timed again against the default" \
    '^# recheck: (allreduce|broadcast) ompi [0-9]+K: [a-z_]+ [0-9.]+ us, default [0-9.]+ us: [0-9.]+x, below the gain asked: not chosen here$'
t_grep "none is kept: the rules are Open MPI's own choice" \
    "^dure tune: Open MPI rules: [0-9]+ message rule\(s\), 0 not Open MPI's own choice$"
if /usr/bin/python3 - "$rc/tune.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
checked = [p["recheck"] for s in d["series"] for p in s["points"] if "recheck" in p]
assert checked and all(c["vetoed"] and c["time_s"] > 0 and c["default_time_s"] > 0 for c in checked)
assert all(s["algorithm"] != "default" or all("recheck" not in p for p in s["points"])
           for s in d["series"])
PY
then t_ok "tune.json records each recheck and its veto"; else t_fail "tune.json recheck records"; fi
t_run "--no-recheck: the sweep alone decides" 0 mpirun -np 2 "$DURE" tune -o "$rc.no" \
    "${quick[@]}" --families ompi --collectives allreduce --min-gain 1.0 --no-recheck --no-plot
if grep -q '^# recheck:' <<<"$T_OUT"; then t_fail "--no-recheck timed changes again"
else t_ok "nothing timed again"; fi

# A wrong result: no tuning file, and the algorithm and size are named.
bad=$T_TMP/bad
t_run "a corrupted result fails the sweep" 1 env DURE_BENCH_CORRUPT=1 mpirun -np 2 \
    -x DURE_BENCH_CORRUPT "$DURE" tune -o "$bad" -b 4K -e 4K -n 1 -w 0 -R 1 --collectives allreduce
t_grep "the algorithm and size are named" 'dure tune: allreduce node level, dure native, 4K: [0-9]+ wrong element'
t_grep "and nothing is written" 'no tuning file written'
if [ -e "$bad" ]; then t_fail "the output directory exists after a wrong result"
else t_ok "no output directory after a wrong result"; fi

# Health against a baseline: one 1000x faster (beyond any noise here) makes
# this run unhealthy.
/usr/bin/python3 - "$out/tune.json" "$T_TMP/fast.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for s in d["series"]:
    for p in s["points"]:
        p["busbw_gbs"] *= 1000
json.dump(d, open(sys.argv[2], "w"), indent=2)
PY
t_run "a baseline 1000x faster: unhealthy" 11 mpirun -np 2 "$DURE" tune --baseline "$T_TMP/fast.json" \
    "${quick[@]}" --collectives allreduce --families dure
t_grep "a finding names collective, level, algorithm and size" \
    '^health: allreduce node level, dure shm, 64K: busbw [0-9.e+-]+ GB/s, baseline [0-9.e+-]+ GB/s \([0-9]+% lower\)$'
t_grep "the verdict" '^health: UNHEALTHY: 12 finding\(s\) at a threshold of 20%$'
/usr/bin/python3 - "$out/tune.json" "$T_TMP/shape.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["world"]["ranks"] = 4
json.dump(d, open(sys.argv[2], "w"), indent=2)
PY
t_run "a baseline of another shape" 3 mpirun -np 2 "$DURE" tune --baseline "$T_TMP/shape.json" \
    -b 4K -e 4K -n 1 -w 0 -R 1 --collectives allreduce --families dure
t_grep "is named" "baseline .*/shape.json was measured on 4 rank\(s\) on 1 node\(s\); this run has 2 on 1"
/usr/bin/python3 - "$out/tune.json" "$T_TMP/broken.json" <<'PY'
import sys
text = open(sys.argv[1]).read().replace('"busbw_gbs": ', '"busbw_gbs": "x", "y": ', 1)
open(sys.argv[2], "w").write(text)
PY
line=$(grep -n '"busbw_gbs": "x"' "$T_TMP/broken.json" | cut -d: -f1)
t_run "a malformed baseline" 4 mpirun -np 2 "$DURE" tune --baseline "$T_TMP/broken.json" \
    -b 4K -e 4K -n 1 -w 0 -R 1
t_grep "names file, line and field" "broken.json:$line: series\[0\].points\[0\]: field 'busbw_gbs' must be a number"
n=$(printf '%s\n' "$T_OUT" | grep -c "must be a number")
t_eq "one message, not one per rank" "$n" 1

# Node pairs: every rank a node of its own, the link between ranks 0 and 2
# slowed by 20 ms per exchange (64 KiB otherwise take about 0.1 ms, a few
# ms when 3 ranks on 2 cores, under ASan, wait for a core: the median of 5
# exchanges and the threshold leave room for that noise).
t_run "a slow link is found" 11 env DURE_TUNE_RANK_AS_NODE=1 DURE_TUNE_SLOW_LINK=0:2 \
    mpirun --oversubscribe -np 3 -x DURE_TUNE_RANK_AS_NODE -x DURE_TUNE_SLOW_LINK \
    "$DURE" tune -o "$T_TMP/links" -b 4K -e 4K -n 1 -w 0 -R 5 --collectives allreduce \
    --families dure --link-bytes 64K --threshold 90
t_grep "by host names" '^health: slow link [^ ]+:0 <-> [^ ]+:2: [0-9.e+-]+ GB/s, the fastest of 3 links'
n=$(printf '%s\n' "$T_OUT" | grep -c '^health: slow link')
t_eq "only that link" "$n" 1
if grep -q '"links": \[$' "$T_TMP/links/tune.json" && [ "$(grep -c '"gbs"' "$T_TMP/links/tune.json")" = 3 ]; then
    t_ok "tune.json records the 3 links"
else
    t_fail "tune.json lacks the links"
fi

# A malformed rules file in a --verify directory names file, line and field.
cp -r "$out" "$T_TMP/v2"
sed -i '0,/^0 0 0 0 /s//0 x 0 0 /' "$T_TMP/v2/ompi_rules.conf"
rline=$(grep -n '^0 x 0 0' "$T_TMP/v2/ompi_rules.conf" | head -1 | cut -d: -f1)
t_run "--verify with a malformed rules file" 4 mpirun -np 2 "$DURE" tune --verify "$T_TMP/v2"
t_grep "names it" "v2/ompi_rules.conf:$rline: algorithm \(allreduce, communicators of 0, message rule 1\): expected a non-negative decimal integer, found 'x'"

# Usage errors exit 2 before MPI starts.
t_run "no output, verify or baseline" 2 "$DURE" tune
t_grep "says what is needed" 'give -o DIR, --verify DIR or --baseline FILE'
t_run "an unknown family" 2 "$DURE" tune -o "$T_TMP/x" --families dure,mkl
t_grep "named" "--families: 'mkl' is not one of"
t_run "a bad --comm-thread" 2 "$DURE" tune -o "$T_TMP/x" --comm-thread maybe
t_grep "named, with the values allowed" "--comm-thread 'maybe' is not one of auto, on, off"
t_run "dure help tune" 0 "$DURE" help tune
t_grep "lists the files" 'ompi_rules.conf +Open MPI coll_tuned dynamic rules'

# No GPU: the nccl backend fails with one clear message.
if ! "$DURE" --version | grep -qE 'CUDA driver: +[0-9]'; then
    t_run "backend nccl without a GPU" 6 mpirun -np 2 "$DURE" tune -o "$T_TMP/nccl" --backend nccl \
        -b 4K -e 4K
    t_grep "one clear message" 'parallel.backend = mpi'
fi
t_done
