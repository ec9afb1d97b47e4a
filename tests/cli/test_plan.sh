#!/usr/bin/env bash
# tests/cli/test_plan.sh - dure plan: the text and JSON plans of the example
# specs, the channel count read from the data, the exit 7 refusal naming
# the stage that fits, and bad options and inputs.

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$T_TMP" || exit 1
PY=/usr/bin/python3
node8="$T_ROOT/jobs/gpu-node8.ini"

t_run "plan of the 1-node H100 job" 0 "$DURE" plan --set model.channels=14 "$node8"
t_grep "names the hardware and ranks" '^dure plan: .*gpu-node8.ini on 8 x h100 \(1 node\(s\) of 8\)$'
t_grep "counts the parameters" '^model: 303361472 parameters'
t_grep "a memory table over the four stages" '^memory per rank \(GiB\) +ZeRO 0 +ZeRO 1 +ZeRO 2 +ZeRO 3$'
t_grep "with the optimizer sharded from stage 1 (2.260 / 8)" '^  optimizer \(AdamW m, v\) +2\.260 +0\.283 +0\.283 +0\.283$'
t_grep "a step-time table" '^  exposed after overlap '
t_grep "a recommendation for the stage" '^  stage: +ZeRO [0-3], the fastest stage that fits'
t_grep "and the bucket, with the reason" '^  bucket: +[0-9]+ MiB: '
t_grep "scaling up to 262144 GPUs" '^ +262144 +32768 '
t_grep "naming the largest communication term at that scale" '^ +262144 .*inter-node (latency|bandwidth) \([0-9]+%\)$'

t_run "--gpus past an int is refused" 2 "$DURE" plan --gpus 99999999999999999999 "$node8"
t_grep "naming the value and the range" "--gpus '99999999999999999999' is not an integer in \\[1, 2147483647\\]"
t_run "--nodes 0 is refused" 2 "$DURE" plan --nodes 0 "$node8"
t_run "4096 GPUs need a larger global batch" 3 "$DURE" plan --gpus 4096 --nodes 512 \
    --set model.channels=14 "$node8"
t_grep "which is said" 'optim\.global_batch = 512 is not a multiple of optim\.micro_batch \(16\) x ranks \(4096\)'
t_run "JSON plan at 4096 GPUs over TCP" 0 "$DURE" plan --json --gpus 4096 --nodes 512 \
    --set optim.global_batch=65536 --set model.channels=14 --set slurm.profile=tcp "$node8"
printf '%s\n' "$T_OUT" > plan.json
t_run "the JSON parses, with 4 stages and the scaling rows" 0 "$PY" -c '
import json, sys
p = json.load(open("plan.json"))
assert p["ranks"] == 4096 and p["nodes"] == 512, p
assert [s["stage"] for s in p["stages"]] == [0, 1, 2, 3]
s0 = p["stages"][0]
m = s0["memory_bytes"]
parts = sum(v for k, v in m.items() if k != "total")
assert parts == m["total"], (parts, m["total"])
assert abs(s0["step_s"] - (s0["compute_s"] + s0["optimizer_s"] + s0["exposed_s"])) < 1e-12
assert p["scaling"][-1]["gpus"] == 262144
assert "tcp" in p["fabric"]
'

# A fabric file (dure tune's fitted model) changes the prediction.
cat > fab.json <<'J'
{"format": 1, "levels": {"intra": {"alpha_s": 1e-6, "beta_s_per_byte": 2.5e-12},
 "inter": {"alpha_s": 1e-3, "beta_s_per_byte": 1e-9}}}
J
t_run "plan with a fabric file" 0 "$DURE" plan --gpus 16 --fabric fab.json --set model.channels=14 "$node8"
t_grep "names the fabric file" '^fabric: fab\.json$'
# Per-collective links (what dure tune fits for shm within a node): an
# all-gather that costs nothing shortens stages 1-3, not stage 0.
cat > fabc.json <<'J'
{"format": 1, "levels": {"intra": {"alpha_s": 1e-6, "beta_s_per_byte": 2.5e-12,
  "collectives": {"allgather": {"alpha_s": 0, "beta_s_per_byte": 1e-30}}},
 "inter": {"alpha_s": 1e-3, "beta_s_per_byte": 1e-9}}}
J
"$DURE" plan --json --gpus 8 --fabric fab.json --set model.channels=14 "$node8" > same.json 2>&1
"$DURE" plan --json --gpus 8 --fabric fabc.json --set model.channels=14 "$node8" > per.json 2>&1
t_run "a free all-gather shortens ZeRO 1's communication, not ZeRO 0's" 0 python3 -c '
import json
a, b = (json.load(open(f))["stages"] for f in ("same.json", "per.json"))
assert a[0]["comm_s"] == b[0]["comm_s"], (a[0]["comm_s"], b[0]["comm_s"])
# the all-gather was about half (the reduce-scatter buckets pay latency too)
assert b[1]["comm_s"] < 0.7 * a[1]["comm_s"], (a[1]["comm_s"], b[1]["comm_s"])
assert all(b[s]["comm_s"] < a[s]["comm_s"] for s in (2, 3))
'
sed 's/"allgather"/"broadcast"/' fabc.json > badc.json
t_run "a fabric file naming an unknown collective is refused" 4 "$DURE" plan --fabric badc.json --set model.channels=14 "$node8"
t_grep "naming the file and the key" 'badc\.json: levels\.intra\.collectives\.broadcast: not a collective dure plan times'
sed 's/"alpha_s": 0,/"alpha_s": -1,/' fabc.json > negc.json
t_run "a per-collective link with a negative alpha is refused" 4 "$DURE" plan --fabric negc.json --set model.channels=14 "$node8"
t_grep "naming the collective's key" 'negc\.json: levels\.intra\.collectives\.allgather needs numbers alpha_s >= 0'
printf '{"format": 2}\n' > bad.json
t_run "a fabric file of another format is refused" 4 "$DURE" plan --fabric bad.json --set model.channels=14 "$node8"
t_grep "naming the file and the field" 'bad\.json: "format" must be 1'
printf '{"format": 1, "levels": {"intra": {"alpha_s": 1e-6}}}\n' > half.json
t_run "a fabric file without beta is refused" 4 "$DURE" plan --fabric half.json --set model.channels=14 "$node8"
t_grep "naming the level and the keys" 'half\.json: levels\.intra needs numbers alpha_s >= 0 and beta_s_per_byte > 0'
printf '{"format": 1, "levels": {"intra": {"alpha_s": 1e-6, "beta_s_per_byte": 2.5e-12}}}\n' > intra.json
t_run "a tune of one node (no inter level)" 0 "$DURE" plan --gpus 16 --fabric intra.json --set model.channels=14 "$node8"
t_grep "keeps the built-in inter-node level and says so" '^fabric: intra\.json; inter level built in$'
printf '{"format": 1, "levels": {}}\n' > none.json
t_run "a fabric file with no level is refused" 4 "$DURE" plan --fabric none.json --set model.channels=14 "$node8"
t_grep "naming the file" 'none\.json: "levels" holds neither intra nor inter'

t_run "a 9.7B model at ZeRO 0 does not fit an H100" 7 "$DURE" plan --set model.channels=14 \
    --set model.d_model=4096 --set model.n_layers=48 --set model.n_heads=32 \
    --set parallel.zero_stage=0 "$node8"
t_grep "exit 7 names the stage's need and the stage that fits" \
    'not enough memory: parallel\.zero_stage = 0 needs [0-9.]+ GiB per rank \(params .*\), more than 92% of 80\.00 GiB on h100: ZeRO [1-3] fits'

"$DURE" data gen -o demo.h5 --episodes 2 --length 512 --channels 6 >/dev/null 2>&1
t_run "model.channels = 0 is read from the data" 0 "$DURE" plan --gpu h200 \
    --set data.path=demo.h5 "$T_ROOT/jobs/demo-cpu.ini"
t_grep "the demo model on 6 channels" '^model: [0-9]+ parameters'
t_grep "on h200" ' on 2 x h200 '
t_run "without data or channels" 4 "$DURE" plan --gpu h100 --set data.path=missing.h5 "$T_ROOT/jobs/demo-cpu.ini"
t_grep "says to set model.channels" "data.path = 'missing.h5'.*--set model.channels=N"

t_run "the CPU is measured" 0 "$DURE" plan --set model.channels=8 "$T_ROOT/jobs/demo-cpu.ini"
t_grep "with sgemm and memcpy" '^hardware: .*\(measured: sgemm 768\^3 on [0-9]+ thread\(s\), memcpy 64 MiB\)$'
t_run "an unknown GPU is a usage error" 2 "$DURE" plan --gpu v100 "$node8"
t_grep "listing the known ones" 'known hardware is h100, h200, a100, b200 and cpu'
t_run "--gpus 0 is a usage error" 2 "$DURE" plan --gpus 0 "$node8"
t_run "ranks that do not fill nodes" 3 "$DURE" plan --gpus 12 --nodes 5 --set model.channels=14 "$node8"
t_grep "are named" '--gpus 12 over --nodes 5: the ranks must fill whole nodes'
t_run "no job spec is a usage error" 2 "$DURE" plan

# dure submit prints the plan's estimate and refuses what cannot fit the
# GPUs slurm.gpu_type names, before writing anything.
big=(--set model.channels=14 --set model.d_model=4096 --set model.n_layers=48
     --set model.n_heads=32 --set slurm.gpu_type=h100 --set run.dir="$T_TMP/sub")
t_run "dure submit refuses a 9.7B model at ZeRO 0 on H100s: exit 7" 7 "$DURE" submit --dry-run \
    "${big[@]}" --set parallel.zero_stage=0 "$node8"
t_grep "printing the plan's estimate first" '^submit: plan: memory per rank [0-9.]+ GiB at zero_stage 0 \(params'
t_grep "and naming the stage that fits" 'not enough memory: parallel\.zero_stage = 0 needs .*: ZeRO [1-3] fits \([0-9.]+ GiB\): parallel\.zero_stage = [1-3]'
if [ ! -e "$T_TMP/sub" ]; then t_ok "nothing was written"; else t_fail "the refused job left $T_TMP/sub"; fi
t_run "the same job at ZeRO 3 passes the check" 0 "$DURE" submit --dry-run "${big[@]}" \
    --set parallel.zero_stage=3 "$node8"
t_grep "with its estimate" '^submit: plan: memory per rank [0-9.]+ GiB at zero_stage 3 .* of 80\.00 GiB on h100$'
t_run "an unknown slurm.gpu_type is refused" 3 "$DURE" submit --dry-run "${big[@]}" \
    --set slurm.gpu_type=x100 "$node8"
t_grep "naming the key" "slurm\.gpu_type = 'x100' is not a GPU dure knows"
t_run "without slurm.gpu_type the check is skipped, with a note" 0 "$DURE" submit --dry-run \
    --set model.channels=14 --set run.dir="$T_TMP/sub" "$node8"
t_grep "saying so" '^submit: plan: memory not checked: slurm\.gpu_type is not set'
t_done
