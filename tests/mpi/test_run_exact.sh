#!/usr/bin/env bash
# tests/mpi/test_run_exact.sh - exact mode (run.exact): a job spec with 12
# micro-batches per step trains to the same bits on 1, 2, 3 and 4 ranks, at
# ZeRO stages 0, 1, 2 and 3 (prefetch 0 and 1, resharding after forward or
# not), with any bucket size and overlap on or off, and when a 4-rank
# checkpoint (stage 2, and stage 3) is resumed on 2 ranks and on 1; every
# run is compared with `dure verify` against one rank at stage 0, which
# must say IDENTICAL. A world size that does not divide the micro-batches
# is refused naming the ones that do.
# The same job without exact mode differs between 1 and 2 ranks: the test
# data can tell a tree over micro-batches from sums grouped by rank.
# (tests/cli/test_ckpt_verify.sh checks dure verify's exact-mode messages.)
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/run_helpers.sh"

run_make_data
run_job exact
R=$T_TMP/runs
# 12 micro-batches of 2 windows per step; checkpoints after steps 3 and 6.
EX=(--set run.exact=true --set optim.global_batch=24 --set optim.micro_batch=2
    --set run.steps=6 --set checkpoint.every=3)

# exact_run NAME NP [--set ...]: one run of the matrix; it must train.
exact_run() {
    local name=$1 np=$2; shift 2
    T_OUT=$(mpirun --oversubscribe -np "$np" "$DURE" run "$T_TMP/exact.ini" "${EX[@]}" \
        --set run.dir="$R/$name" "$@" 2>&1); T_RC=$?
    t_eq "$name: $np rank(s) $* trains (exit $T_RC)" "$T_RC" 0
    [ "$T_RC" -eq 0 ] || printf '%s\n' "$T_OUT" | tail -20
}

# exact_same NAME: dure verify against the 1-rank reference says IDENTICAL.
exact_same() {
    t_run "$1: dure verify against 1 rank exits 0" 0 "$DURE" verify "$R/ref" "$R/$1"
    t_grep "$1: metrics bitwise identical" '^metrics: bitwise identical'
    t_grep "$1: step-6 checkpoint bitwise identical" \
        '^checkpoints: step 6: params, adam_m, adam_v .* bitwise identical'
    t_grep "$1: verdict IDENTICAL" '^verdict: IDENTICAL'
}

exact_run ref 1
t_grep "the setup report names exact mode" 'exact mode: 12 micro-batches per step'
# NAME RANKS OVERRIDES: every world size, ZeRO stage, buckets of 2 KiB (the
# model's 15 KiB of gradients in several buckets) or the default (one),
# overlap on and off, 2 threads per rank against 1; at stage 3 prefetch 0
# and 1 (the default) and every unit kept gathered from forward to backward.
for spec in "np2 2 parallel.zero_stage=1 parallel.bucket_mb=0.002" \
            "np3 3 parallel.zero_stage=2 parallel.bucket_mb=0.002 parallel.overlap=false" \
            "np4 4 parallel.zero_stage=0 parallel.bucket_mb=0.002" \
            "np4_z2 4 parallel.zero_stage=2 parallel.overlap=false" \
            "np1_z1 1 parallel.zero_stage=1 parallel.overlap=false run.threads=2" \
            "np1_z3 1 parallel.zero_stage=3 parallel.prefetch=0" \
            "np2_z3 2 parallel.zero_stage=3 parallel.bucket_mb=0.002" \
            "np3_z3 3 parallel.zero_stage=3 parallel.reshard_after_forward=false parallel.overlap=false" \
            "np4_z3 4 parallel.zero_stage=3 parallel.prefetch=0 parallel.bucket_mb=0.002"; do
    read -r name np kvs <<< "$spec"
    sets=()
    for kv in $kvs; do sets+=(--set "$kv"); done
    exact_run "$name" "$np" "${sets[@]}"
    if [ "$name" = np3_z3 ]; then
        t_grep "$name: the memory check counts exact mode's carries (2 on 3 ranks)" \
            'run: plan: memory per rank .* at zero_stage 3 \(.*exact mode \(2 carries, receive area\)'
    fi
    exact_same "$name"
done
T_OUT=$("$DURE" verify "$R/ref" "$R/np4" 2>&1)
t_grep "dure verify explains: the same exact contract, the layout ignored" \
    'exact mode: both runs, contract dure-exact-1 with 12 micro-batches per step'
T_OUT=$("$DURE" verify "$R/ref" "$R/np1_z3" 2>&1)
t_grep "dure verify: stage 3's prefetch is layout under the exact contract" \
    "ZeRO stage \(stage 3's prefetch and resharding too\).* may differ \(ignored\)"
t_grep "... and listed among the fields ignored by design" \
    'ignored, differ by design: .*jobspec\.parallel\.prefetch, .*jobspec\.parallel\.zero_stage'
if grep -q '"world_sizes": "1, 2, 3, 4, 6 or 12"' "$R/np4/manifest.json"; then
    t_ok "the manifest names the world sizes that reproduce the run"
else t_fail "manifest.json: $(grep -A7 '"exact"' "$R/np4/manifest.json")"; fi

# Resume a 4-rank checkpoint (ZeRO 2 or 3, step 3) on 2 ranks and on 1.
for spec in "resume2 np4_z2 2 parallel.zero_stage=0" "resume1 np4_z2 1 parallel.zero_stage=1" \
            "resume2_z3 np4_z3 2 parallel.zero_stage=0"; do
    read -r name from np kv <<< "$spec"
    cp -a "$R/$from" "$R/$name"
    rm -f "$R/$name/FINISHED" "$R/$name"/checkpoints/ckpt-00000006.h5*
    exact_run "$name" "$np" --set "$kv"
    t_grep "$name: resumed the 4-rank checkpoint of step 3" \
        "resume: .*ckpt-00000003\\.h5: step 3, written by 4 rank\\(s\\) at zero_stage ${from#np4_z}"
    exact_same "$name"
done

# More buckets than the comm's 256 request slots (one per tensor of 22
# layers) while stage 3's parameter gathers are pending beside them.
exact_run manybuckets 2 --set parallel.zero_stage=3 --set model.n_layers=22 \
    --set parallel.bucket_mb=0.000001 --set run.steps=1
t_grep "manybuckets: more buckets than request slots" 'zero_stage 3, 27[0-9] bucket\(s\)'

# A world size that does not divide the 12 micro-batches.
T_OUT=$(mpirun --oversubscribe -np 5 "$DURE" run "$T_TMP/exact.ini" "${EX[@]}" \
    --set run.dir="$R/np5" 2>&1); T_RC=$?
t_eq "5 ranks are refused as a job-spec error (exit $T_RC)" "$T_RC" 3
t_grep "the refusal names the world sizes that work" \
    '5 ranks cannot share the 12 micro-batches of a step .*: world sizes that can for this job spec: 1, 2, 3, 4, 6 or 12'

# Without exact mode the sums are grouped by rank: 2 ranks differ from 1.
exact_run plain2 2 --set run.exact=false --set run.deterministic=true
t_run "without exact mode, 2 ranks differ from 1: dure verify exits 8" 8 \
    "$DURE" verify "$R/ref" "$R/plain2"
t_grep "dure verify says why: only one run is in exact mode" 'exact mode: run A only'
t_done
