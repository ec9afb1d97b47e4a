#!/usr/bin/env bash
# tests/mpi/test_run_parallel.sh - dure run's data parallelism: the global
# batch means the same at 1 and 2 ranks, ZeRO stages 0/1/2 agree, stage 1
# halves the optimizer memory per rank, deterministic runs repeat bitwise.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/run_helpers.sh"

run_make_data
run_job base
R=$T_TMP/runs

# 1 rank (4 micro-batches per step) against 2 ranks (2 each), at stage 1.
# Not bitwise: the gradient sums group the micro-batches differently.
run_mpi 1 base --set run.dir="$R/np1" --set parallel.zero_stage=1
t_eq "1 rank trains (exit $T_RC)" "$T_RC" 0
[ "$T_RC" -eq 0 ] || printf '%s\n' "$T_OUT" | tail -20
opt1=$(printf '%s\n' "$T_OUT" | sed -n 's/.*optimizer \([0-9]*\) B.*/\1/p')
t_grep "rank 0 prints the resolved configuration" 'optim\.global_batch'
run_mpi 2 base --set run.dir="$R/np2" --set parallel.zero_stage=1
t_eq "2 ranks train (exit $T_RC)" "$T_RC" 0
opt2=$(printf '%s\n' "$T_OUT" | sed -n 's/.*optimizer \([0-9]*\) B.*/\1/p')
t_eq "rank 0 printed the configuration table once" \
    "$(printf '%s\n' "$T_OUT" | grep -c 'optim.global_batch')" 1
run_cmp_losses "1 and 2 ranks: same losses within float32 tolerance" "$R/np1" "$R/np2" 2e-5
v1=$(run_val "$R/np1"); v2=$(run_val "$R/np2")
t_eq "1 and 2 ranks: same validation loss (6 digits)" "$(printf '%.6g' "$v1")" "$(printf '%.6g' "$v2")"
if [ -n "$opt1" ] && [ -n "$opt2" ] && [ $((2 * opt2 - opt1)) -ge 0 ] &&
   [ $((2 * opt2 - opt1)) -le 8 ]; then
    t_ok "stage 1: optimizer memory per rank halves from 1 to 2 ranks ($opt1 -> $opt2 bytes)"
else
    t_fail "stage 1: optimizer memory per rank: 1 rank '$opt1' B, 2 ranks '$opt2' B"
fi

# Deterministic mode repeats bitwise at the same world size.
run_mpi 2 base --set run.dir="$R/np2b" --set parallel.zero_stage=1
run_cmp_losses "2 ranks twice: bitwise identical losses" "$R/np2" "$R/np2b" 0
run_cmp_params "2 ranks twice: bitwise identical final parameters and moments" \
    "$R/np2/checkpoints/ckpt-00000008.h5" "$R/np2b/checkpoints/ckpt-00000008.h5"

# ZeRO stages 0, 1, 2: with one micro-batch per rank and clipping off, the
# same sums in the same order, so bitwise equal.
for z in 0 1 2; do
    run_mpi 2 base --set run.dir="$R/z$z" --set parallel.zero_stage=$z \
        --set optim.micro_batch=4 --set optim.grad_clip=0
    t_eq "zero_stage $z trains (exit $T_RC)" "$T_RC" 0
    [ "$T_RC" -eq 0 ] || printf '%s\n' "$T_OUT" | tail -20
done
run_cmp_losses "zero_stage 0 and 1: bitwise identical losses" "$R/z0" "$R/z1" 0
run_cmp_losses "zero_stage 1 and 2: bitwise identical losses" "$R/z1" "$R/z2" 0
run_cmp_params "zero_stage 0 and 2: bitwise identical final parameters" \
    "$R/z0/checkpoints/ckpt-00000008.h5" "$R/z2/checkpoints/ckpt-00000008.h5"

# With accumulation (2 micro-batches per rank) and clipping on, stage 2
# reduces every micro-batch: the same within float32 tolerance.
run_mpi 2 base --set run.dir="$R/acc2" --set parallel.zero_stage=2
t_eq "zero_stage 2 with accumulation trains (exit $T_RC)" "$T_RC" 0
run_cmp_losses "zero_stage 2 and 1 with accumulation: same losses" "$R/np2" "$R/acc2" 2e-5

# The ring's segment changes the time, never a result: the ring in 4 KiB
# segments (several per piece of the largest bucket) against its default.
run_mpi 2 base --set run.dir="$R/ring" --set parallel.algo=ring --set optim.micro_batch=4
t_eq "the ring with its default segment trains (exit $T_RC)" "$T_RC" 0
t_grep "dure run prints the default segment" 'algorithms 0:ring, ring segment 256K\)'
run_mpi 2 base --set run.dir="$R/ring4k" --set parallel.algo=ring --set optim.micro_batch=4 \
    --set parallel.ring_segment_kib=4
t_eq "the ring in 4 KiB segments trains (exit $T_RC)" "$T_RC" 0
t_grep "dure run prints the segment asked for" 'algorithms 0:ring, ring segment 4K\)'
if grep -q '"ring_segment": "4K"' "$R/ring4k/manifest.json"; then
    t_ok "the manifest records the ring's segment"
else t_fail "manifest.json: $(grep -A6 '"algorithms"' "$R/ring4k/manifest.json")"; fi
run_cmp_losses "4 KiB and 256 KiB ring segments: bitwise identical losses" "$R/ring" \
    "$R/ring4k" 0
run_cmp_params "4 KiB and 256 KiB ring segments: bitwise identical final parameters" \
    "$R/ring/checkpoints/ckpt-00000008.h5" "$R/ring4k/checkpoints/ckpt-00000008.h5"

# Each rank reads its own environment: one that asks for another segment
# stops every rank before the first step, naming it.
T_OUT=$(mpirun -np 1 "$DURE" run "$T_TMP/base.ini" --set run.dir="$R/mixed" : \
    -np 1 -x DURE_RING_SEGMENT_KIB=1024 "$DURE" run "$T_TMP/base.ini" \
    --set run.dir="$R/mixed" 2>&1); T_RC=$?
t_eq "ranks that disagree on the ring's segment stop (exit $T_RC)" "$((T_RC != 0))" 1
t_grep "the error names the rank and both segments" \
    'rank 1 runs the ring in segments of 1024 KiB, rank 0 in 256 KiB: DURE_RING_SEGMENT_KIB'
if [ ! -f "$R/mixed/metrics.jsonl" ] || ! grep -q '"loss"' "$R/mixed/metrics.jsonl"; then
    t_ok "no step ran"
else t_fail "a step ran with mismatched segments"; fi

t_done
