#!/usr/bin/env bash
# tests/cli/test_ckpt_verify.sh - `dure verify RUN_A RUN_B` on run
# directories written by 2 ranks (manifest + checkpoints) with metrics.jsonl
# in the shared format: identical runs, a one-ulp loss difference, a resumed
# run's re-logged steps, manifest differences, different parameters, and
# malformed or missing input.
. "$(dirname "$0")/../lib.sh"
PY=/usr/bin/python3
FIXTURE="${DURE_BUILD:-$T_ROOT/build}/tests/mpi/test_ckpt_manifest"
[ -x "$FIXTURE" ] || t_skip "$FIXTURE not built (make tests-build)"
echo "data" > "$T_TMP/data.h5"

make_run() { # DIR SEED
    env DURE_CKPT_FIXTURE_DIR="$1" DURE_CKPT_FIXTURE_DATA="$T_TMP/data.h5" \
        DURE_CKPT_FIXTURE_SEED="$2" \
        mpirun -np 2 -x DURE_CKPT_FIXTURE_DIR -x DURE_CKPT_FIXTURE_DATA \
        -x DURE_CKPT_FIXTURE_SEED "$FIXTURE" || { t_fail "fixture for $1"; t_done; }
}
# metrics.jsonl with 10 steps; losses 1/(step+3) printed with 17 digits.
write_metrics() { # DIR [SED-EXPR]
    $PY - "$1/metrics.jsonl" <<'PYEOF'
import sys
with open(sys.argv[1], 'w') as f:
    for s in range(1, 11):
        f.write('{"step":%d,"loss":%.17g,"grad_norm":%.17g,"lr":0.00029999999999999997,'
                '"step_s":%.3f,"timesteps_per_s":%d,"mfu":0.12,"data_wait_s":0.001}\n'
                % (s, 1.0 / (s + 3), 0.5 + s / 7.0, 0.1 * s, 1000 + s))
        if s % 5 == 0:
            f.write('{"step":%d,"val_loss":%.17g}\n' % (s, 2.0 / (s + 3)))
PYEOF
}

make_run "$T_TMP/a" 42
make_run "$T_TMP/b" 42
write_metrics "$T_TMP/a"
write_metrics "$T_TMP/b"
# Timings differ between any two runs: they are not compared.
sed -i 's/"step_s":0.100/"step_s":0.250/' "$T_TMP/b/metrics.jsonl"

t_run "identical runs (exit 0)" 0 "$DURE" verify "$T_TMP/a" "$T_TMP/b"
t_grep "metrics bitwise identical" '^metrics: bitwise identical \(32 values, steps 1\.\.10; timings ignored\)'
t_grep "checkpoints compared" '^checkpoints: step 6: params, adam_m, adam_v \(5000 each\) and metadata bitwise identical'
t_grep "fields that differ by design are listed" '^manifest: ignored, differ by design: (created_at, )?run_dir$'
t_grep "verdict" '^verdict: IDENTICAL'

# A resumed B: it crashed after logging step 8, resumed from step 6 and
# logged 7..10 again; its last (incomplete) line was cut by the crash.
cp "$T_TMP/b/metrics.jsonl" "$T_TMP/b.metrics"
grep -E '"step":(7|8),' "$T_TMP/b.metrics" > "$T_TMP/again"
{ head -n 9 "$T_TMP/b.metrics"; cat "$T_TMP/again"; tail -n +10 "$T_TMP/b.metrics"; printf '{"step":11,"lo'; } > "$T_TMP/b/metrics.jsonl"
t_run "a resumed run that re-logged steps is still identical (exit 0)" 0 "$DURE" verify "$T_TMP/a" "$T_TMP/b"
t_grep "the cut last line is noted" 'ignored an incomplete last line in run B'

# One ulp of difference in the loss at step 7, in the last logging of it.
cp "$T_TMP/b.metrics" "$T_TMP/b/metrics.jsonl"
$PY - "$T_TMP/b/metrics.jsonl" <<'PYEOF'
import json, struct, sys
p = sys.argv[1]
lines = open(p).read().splitlines()
for i, l in enumerate(lines):
    o = json.loads(l)
    if o['step'] == 7 and 'loss' in o:
        bits = struct.unpack('<Q', struct.pack('<d', o['loss']))[0] + 1
        o['loss'] = struct.unpack('<d', struct.pack('<Q', bits))[0]
        lines[i] = json.dumps(o, separators=(',', ':'))
open(p, 'w').write('\n'.join(lines) + '\n')
PYEOF
t_run "a one-ulp loss difference (exit 8)" 8 "$DURE" verify "$T_TMP/a" "$T_TMP/b"
t_grep "the first differing step and key" '^  first difference at step 7: loss = 0.10000000000000001 \(A\) vs 0.10000000000000002 \(B\)'
t_grep "by how much" '1 ulp as double'
t_grep "a summary" '^metrics: DIFFER: 1 of 32 values, steps 7\.\.7'
t_grep "verdict" '^verdict: DIFFERENT'

# B stops early: the steps it lacks are differences.
head -n 8 "$T_TMP/b.metrics" > "$T_TMP/b/metrics.jsonl"
t_run "a shorter run (exit 8)" 8 "$DURE" verify "$T_TMP/a" "$T_TMP/b"
t_grep "where it stops" 'first difference at step 8: .* logged by run A only'

# A mixture logs each dataset's loss in a nested object: compared too,
# keyed by its path.
cp "$T_TMP/a/metrics.jsonl" "$T_TMP/a.metrics"
add_datasets() { # FILE ULPS-ADDED-TO-MILL-AT-STEP-4
    $PY - "$1" "$2" <<'PYEOF'
import json, struct, sys
p, ulps = sys.argv[1], int(sys.argv[2])
out = []
for l in open(p).read().splitlines():
    o = json.loads(l)
    if 'loss' in o:
        mill = 1.0 / (o['step'] + 5)
        if o['step'] == 4:
            bits = struct.unpack('<Q', struct.pack('<d', mill))[0] + ulps
            mill = struct.unpack('<d', struct.pack('<Q', bits))[0]
        o['datasets'] = {'arm': {'loss': 0.25, 'baseline_loss': 0.5},
                         'mill': {'loss': mill, 'baseline_loss': 0.5}}
    out.append(json.dumps(o, separators=(',', ':')))
open(p, 'w').write('\n'.join(out) + '\n')
PYEOF
}
add_datasets "$T_TMP/a/metrics.jsonl" 0
cp "$T_TMP/b.metrics" "$T_TMP/b/metrics.jsonl"
add_datasets "$T_TMP/b/metrics.jsonl" 0
t_run "a mixture's runs, identical (exit 0)" 0 "$DURE" verify "$T_TMP/a" "$T_TMP/b"
t_grep "its dataset losses are counted" '^metrics: bitwise identical \(72 values, steps 1\.\.10; timings ignored\)'
cp "$T_TMP/b.metrics" "$T_TMP/b/metrics.jsonl"
add_datasets "$T_TMP/b/metrics.jsonl" 1
t_run "one dataset's loss one ulp apart (exit 8)" 8 "$DURE" verify "$T_TMP/a" "$T_TMP/b"
t_grep "named by its path" '^  first difference at step 4: datasets\.mill\.loss = '
cp "$T_TMP/a.metrics" "$T_TMP/a/metrics.jsonl"

# Same numbers, different manifest (another learning rate written down).
cp "$T_TMP/b.metrics" "$T_TMP/b/metrics.jsonl"
$PY - "$T_TMP/b/manifest.json" <<'PYEOF'
import json, sys
p = sys.argv[1]
m = json.load(open(p))
m['jobspec']['optim.lr'] = '0.001'
m['world']['hosts'][0]['name'] = 'elsewhere'
m['jobspec']['slurm.job_name'] = 'another-label'
json.dump(m, open(p, 'w'), indent=2)
PYEOF
t_run "a manifest difference alone (exit 9)" 9 "$DURE" verify "$T_TMP/a" "$T_TMP/b"
t_grep "the field and both values" '^  jobspec.optim.lr: "0.0003" vs "0.001"'
t_grep "host names are ignored" 'ignored, differ by design: .*world.hosts\[0\].name'
t_grep "and Slurm job names (a label, like run.name)" 'ignored, differ by design: .*jobspec.slurm.job_name'
t_grep "verdict" '^verdict: bitwise identical numbers, but 1 manifest field differs$'

# Exact mode: with the same contract in both manifests, how the work was
# spread (world size, ZeRO stage, buckets) is ignored; otherwise verify says
# why the runs cannot be expected to agree bitwise.
set_manifest() { # DIR PYTHON-STATEMENTS (on m)
    $PY - "$1/manifest.json" "$2" <<'PYEOF'
import json, sys
p = sys.argv[1]
m = json.load(open(p))
exec(sys.argv[2])
json.dump(m, open(p, 'w'), indent=2)
PYEOF
}
cp "$T_TMP/b.metrics" "$T_TMP/b/metrics.jsonl"
CONTRACT='m["exact"] = {"contract": "dure-exact-1", "micro_batches_per_step": 12, "micro_batch": 2, "norm_elements": 5000, "norm_tile": 1024, "world_sizes": "1, 2, 3, 4, 6 or 12"}'
set_manifest "$T_TMP/a" "$CONTRACT"
set_manifest "$T_TMP/b" "$CONTRACT; m['jobspec']['optim.lr'] = '0.0003'; m['world']['size'] = 4; m['jobspec']['parallel.zero_stage'] = '2'; m['jobspec']['parallel.bucket_mb'] = '0.5'"
t_run "exact mode, same contract, other world size and ZeRO stage (exit 0)" 0 \
    "$DURE" verify "$T_TMP/a" "$T_TMP/b"
t_grep "it says the contract allows it" '^exact mode: both runs, contract dure-exact-1 with 12 micro-batches per step'
t_grep "the layout fields are ignored" 'ignored, differ by design: .*jobspec.parallel.bucket_mb, jobspec.parallel.zero_stage.*world.size'
set_manifest "$T_TMP/b" "m['exact']['micro_batches_per_step'] = 8"
t_run "exact mode, contracts differ (exit 9)" 9 "$DURE" verify "$T_TMP/a" "$T_TMP/b"
t_grep "the differing contract field is named" '^exact mode: the contracts differ \(exact.micro_batches_per_step: 12 vs 8\)'
t_grep "and the layout counts again" '^  world.size: 2 vs 4'
set_manifest "$T_TMP/b" "m['exact'] = None"
t_run "exact mode in A only (exit 9)" 9 "$DURE" verify "$T_TMP/a" "$T_TMP/b"
t_grep "it says which run" '^exact mode: run A only'
set_manifest "$T_TMP/a" "m['exact'] = None"
t_run "no exact mode, other world sizes (exit 9)" 9 "$DURE" verify "$T_TMP/a" "$T_TMP/b"
t_grep "it says that bitwise agreement is not expected" '^exact mode: off in both runs, on 2 vs 4 ranks'

# Same metrics, different parameters in the common checkpoint.
make_run "$T_TMP/c" 43
cp "$T_TMP/a/metrics.jsonl" "$T_TMP/c/"
t_run "different checkpointed parameters (exit 8)" 8 "$DURE" verify "$T_TMP/a" "$T_TMP/c"
t_grep "the first differing element" '^checkpoints: step 6: /params DIFFERS first at element 0'
t_grep "and the metadata (the seed)" 'metadata DIFFERS'

# The manifests name checkpoint.dir as the specs did, relative to where
# each run started (runs/demo/checkpoints under run.dir runs/demo): from a
# directory that holds a runs/demo/checkpoints of its own, each run's own
# checkpoints are still the ones compared.
set_manifest "$T_TMP/a" "m['jobspec']['run.dir'] = 'runs/demo'"
set_manifest "$T_TMP/c" "m['jobspec']['run.dir'] = 'runs/demo'"
mkdir -p "$T_TMP/elsewhere/runs/demo"
cp -r "$T_TMP/a/checkpoints" "$T_TMP/elsewhere/runs/demo/"
here=$PWD
cd "$T_TMP/elsewhere" || exit 1
t_run "different parameters, verified from another run's directory (exit 8)" 8 \
    "$DURE" verify "$T_TMP/a" "$T_TMP/c"
t_grep "the runs' own checkpoints are compared" '^checkpoints: step 6: /params DIFFERS first at element 0'
cd "$here" || exit 1

# Bad input.
printf '{"step":1,"loss":0.25}\n{"step":2,"loss":}\n{"step":3,"loss":0.2}\n' > "$T_TMP/c/metrics.jsonl"
t_run "a malformed metrics line (exit 4)" 4 "$DURE" verify "$T_TMP/a" "$T_TMP/c"
t_grep "the file and line are named" 'c/metrics.jsonl line 2:1:18: invalid JSON: expected a value'
rm "$T_TMP/c/manifest.json"
t_run "a missing manifest (exit 1)" 1 "$DURE" verify "$T_TMP/a" "$T_TMP/c"
t_grep "it is named" "c/manifest.json.*No such file"
t_run "one run directory is a usage error" 2 "$DURE" verify "$T_TMP/a"
t_run "help" 0 "$DURE" help verify
t_grep "help documents the exit codes" '^  8  the metrics or the checkpointed state differ'
t_done
