#!/usr/bin/env bash
# tests/mpi/test_run_zero3.sh - dure run at parallel.zero_stage = 3: the
# model sharded, gathered unit by unit. Bitwise equal to stage 0 (one
# micro-batch per rank, clipping off) at 2 ranks and at 3 (shards uneven,
# their bounds inside units), whatever the prefetch depth or resharding;
# bitwise equal to stage 2 with accumulation and clipping (stage 2 lent
# unit gradient buffers, no whole gradient vector); the parameters per
# rank a shard; checkpoints resumed exactly and on another world size
# and stage.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/run_helpers.sh"

run_make_data
run_job base
R=$T_TMP/runs
CK=checkpoints
ONE=(--set optim.micro_batch=4 --set optim.grad_clip=0 --set checkpoint.every=4)

for z in 0 3; do
    run_mpi 2 base --set run.dir="$R/z$z" --set parallel.zero_stage=$z "${ONE[@]}"
    t_eq "zero_stage $z on 2 ranks trains (exit $T_RC)" "$T_RC" 0
    [ "$T_RC" -eq 0 ] || printf '%s\n' "$T_OUT" | tail -20
done
t_grep "stage 3 reports its units and prefetch" \
    'zero_stage 3: 3 unit\(s\), prefetch 1, reshard_after_forward true'
t_grep "the plan's estimate is printed at start" \
    '^run: plan: memory per rank [0-9.]+ MiB at zero_stage 3 \(params .*\) of [0-9.]+ GiB available$'
t_grep "the measured peak beside it at the end" \
    '^memory: peak per rank [0-9.]+ MiB above a [0-9.]+ MiB process baseline .*; plan [0-9.]+ MiB above it \(measured/plan [0-9.]+\); without the peers. shares of the node.s shared memory [0-9.]+ MiB \([0-9.]+ MiB; measured/plan [0-9.]+\); whole process [0-9.]+ MiB, plan [0-9.]+ MiB \(measured/plan [0-9.]+\)$'
t_grep "the start line names the process and runtime terms" \
    '^run: plan: memory per rank .* comm [0-9.]+, process [0-9.]+, runtime [0-9.]+, host '
# The plan's process term is the baseline this run measured: the whole
# plan less the plan above the baseline is that baseline (within 2 MiB:
# each line is the largest over the ranks, whose baselines differ a little;
# without the term the difference would be the whole baseline).
base=$(printf '%s\n' "$T_OUT" | sed -n 's/^memory: .* above a \([0-9.]*\) MiB process baseline .*; plan \([0-9.]*\) MiB above it .* plan \([0-9.]*\) MiB (measured.*/\1 \2 \3/p' | tail -n 1)
read -r m_base m_above m_whole <<<"$base"
t_eq "the whole plan counts the measured baseline as its process term" \
    "$(awk -v b="$m_base" -v a="$m_above" -v w="$m_whole" 'BEGIN { d = w - a - b; print (b > 0 && d < 2 && d > -2) ? "yes" : b " " a " " w }')" yes
mem=$(printf '%s\n' "$T_OUT" | sed -n 's/^memory: peak per rank \([0-9.]*\) MiB .*shared memory \([0-9.]*\) MiB (\([0-9.]*\) MiB;.*/\1 \2 \3/p' | tail -n 1)
read -r m_all m_own m_peers <<<"$mem"
# Two ranks of one node map each other's shared windows: RSS counts the
# peer's pages this rank touched, its proportional share (PSS) does not.
t_eq "the peers' pages of the shared windows are counted apart" \
    "$(awk -v a="$m_all" -v o="$m_own" -v p="$m_peers" 'BEGIN { print (p > 0 && o < a) ? "yes" : a " " o " " p }')" yes
p3=$(printf '%s\n' "$T_OUT" | sed -n 's/.*memory per rank: params \([0-9]*\) B, grads \([0-9]*\) B.*/\1 \2/p')
t_eq "stage 3 holds half the parameters per rank and no full gradient vector" "$p3" "7840 0"
run_cmp_losses "zero_stage 0 and 3: bitwise identical losses" "$R/z0" "$R/z3" 0
run_cmp_params "zero_stage 0 and 3: bitwise identical final parameters and moments" \
    "$R/z0/$CK/ckpt-00000008.h5" "$R/z3/$CK/ckpt-00000008.h5"
t_eq "zero_stage 0 and 3: the same validation loss" "$(run_val "$R/z0")" "$(run_val "$R/z3")"

# The schedule of the gathers changes nothing, nor who runs them (the
# communication thread, or the rank's own waits).
for v in "prefetch=0" "prefetch=3" "reshard_after_forward=false" "comm_thread=on" \
    "comm_thread=off"; do
    run_mpi 2 base --set run.dir="$R/$v" --set parallel.zero_stage=3 --set "parallel.$v" \
        "${ONE[@]}"
    t_eq "zero_stage 3 with $v trains (exit $T_RC)" "$T_RC" 0
    run_cmp_losses "zero_stage 3 with $v: bitwise the losses of stage 0" "$R/z0" "$R/$v" 0
    case $v in
    comm_thread=on) t_grep "with comm_thread = on a thread runs the collectives" \
        '^run: .*, collectives run by their own thread or stream$'
        read -r n z us <<<"$(run_thread_cpu "$R/$v")"
        t_eq "with comm_thread = on every step reports the thread's CPU time (steps, nulls)" \
            "$n $z" "8 0"
        t_eq "and the thread ran the gathers ($us us in all)" "$([ "$us" -gt 0 ] && echo yes)" yes ;;
    comm_thread=off) t_grep "with comm_thread = off the rank's waits run them" \
        '^run: .*, collectives run by the rank.s waits \(parallel.comm_thread = off\)$'
        t_eq "with comm_thread = off no thread's CPU time is reported (steps, nulls)" \
            "$(run_thread_cpu "$R/$v" | cut -d' ' -f1-2)" "8 8" ;;
    esac
done

# 3 ranks: 3920 parameters in uneven shards of 1307, 1307 and 1306, the
# bounds inside the block's unit.
for z in 0 3; do
    run_mpi 3 base --set run.dir="$R/np3z$z" --set parallel.zero_stage=$z \
        --set optim.global_batch=6 --set optim.micro_batch=2 --set optim.grad_clip=0
    t_eq "zero_stage $z on 3 ranks trains (exit $T_RC)" "$T_RC" 0
    [ "$T_RC" -eq 0 ] || printf '%s\n' "$T_OUT" | tail -20
done
run_cmp_losses "3 ranks, uneven shards: zero_stage 0 and 3 bitwise identical" \
    "$R/np3z0" "$R/np3z3" 0

# Two micro-batches per rank and clipping on: stage 3 accumulates the
# reduced gradients as stage 2 does. Two layers: four units, the shard
# bound inside the first block.
for z in 2 3; do
    run_mpi 2 base --set run.dir="$R/acc$z" --set parallel.zero_stage=$z --set model.n_layers=2
    t_eq "zero_stage $z with accumulation trains (exit $T_RC)" "$T_RC" 0
    t_grep "zero_stage $z allocates no whole gradient vector" \
        'memory per rank: params [0-9]+ B, grads 0 B, grad shard [1-9][0-9]* B'
done
run_cmp_losses "with accumulation and clipping: zero_stage 2 and 3 bitwise identical" \
    "$R/acc2" "$R/acc3" 0

# Checkpoints come from the shards: a run cut after step 4 resumes exactly
# at stage 3 and 2 ranks, and on 1 rank at stage 1 (shards re-cut).
cut_run() { # NAME
    cp -a "$R/z3" "$R/$1"
    rm -f "$R/$1/FINISHED" "$R/$1/$CK/ckpt-00000008.h5" "$R/$1/$CK/ckpt-00000008.h5.sha256"
}
cut_run same
run_mpi 2 base --set run.dir="$R/same" --set parallel.zero_stage=3 "${ONE[@]}"
t_eq "stage 3 resumes at the same world size (exit $T_RC)" "$T_RC" 0
t_grep "it resumes from the step-4 checkpoint" 'resume: .*ckpt-00000004\.h5: step 4, written by 2 rank\(s\) at zero_stage 3'
run_cmp_params "exact stage-3 resume: bitwise identical final parameters and moments" \
    "$R/z3/$CK/ckpt-00000008.h5" "$R/same/$CK/ckpt-00000008.h5"
cut_run one
run_mpi 1 base --set run.dir="$R/one" --set parallel.zero_stage=1 --set optim.micro_batch=4 \
    --set optim.grad_clip=0 --set checkpoint.every=4
t_eq "a stage-3 checkpoint resumes on 1 rank at stage 1 (exit $T_RC)" "$T_RC" 0
run_cmp_losses "resumed on 1 rank: the losses within float32 tolerance" "$R/z3" "$R/one" 2e-5
cut_run three
run_mpi 3 base --set run.dir="$R/three" --set parallel.zero_stage=3 \
    --set optim.global_batch=6 --set optim.micro_batch=2 --set optim.grad_clip=0 \
    --set checkpoint.every=4
t_eq "a 2-rank stage-3 checkpoint resumes on 3 ranks at stage 3 (exit $T_RC)" "$T_RC" 0
t_grep "with the shards re-cut" 'written by 2 rank\(s\) at zero_stage 3'

t_done
