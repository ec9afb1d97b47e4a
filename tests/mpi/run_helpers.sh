# tests/mpi/run_helpers.sh - shared by tests/mpi/test_run_*.sh (source after
# tests/lib.sh): a tiny synthetic dataset, a tiny job spec, and comparisons of
# metrics.jsonl files. Tiny on purpose: every run takes a second or two.
# shellcheck shell=bash

RUN_DATA="$T_TMP/data.h5"

# run_make_data: one small dataset per test script (train and validation split).
run_make_data() {
    "$DURE" data gen -o "$RUN_DATA" --episodes 24 --length 400 --channels 4 \
        --seed 7 > "$T_TMP/datagen.log" 2>&1 ||
        { cat "$T_TMP/datagen.log"; t_fail "dure data gen made no dataset"; t_done; }
}

# run_job NAME [KEY=VALUE ...]: write $T_TMP/NAME.ini, a tiny deterministic
# model (window 20 timesteps), 8 steps, validation every 4 steps, pinned to
# the CPU and MPI (so a GPU machine runs the same test); the KEY=VALUE pairs
# are appended as a [section] key override list later.
run_job() {
    local name=$1
    cat > "$T_TMP/$name.ini" <<INI
[run]
name = $name
dir = $T_TMP/runs/$name
steps = 8
seed = 11
deterministic = true
log_every = 1
val_every = 4
val_batches = 1
threads = 1
device = cpu

[model]
d_model = 16
n_layers = 1
n_heads = 2
patch_len = 4
context_patches = 4

[data]
path = $RUN_DATA

[optim]
lr = 3e-3
min_lr = 3e-4
warmup_steps = 2
global_batch = 8
micro_batch = 2

[parallel]
backend = mpi
watchdog_s = 20

[checkpoint]
every = 0
INI
}

# run_mpi NP NAME [--set ...]: mpirun -np NP dure run NAME.ini; sets T_OUT
# and T_RC as t_run does (tests/lib.sh).
# shellcheck disable=SC2034
run_mpi() {
    local np=$1 name=$2; shift 2
    T_OUT=$(mpirun -np "$np" "$DURE" run "$T_TMP/$name.ini" "$@" 2>&1); T_RC=$?
}

# run_losses DIR: "step loss" of every training line of DIR/metrics.jsonl.
run_losses() {
    sed -n 's/^{"step":\([0-9]*\),"loss":\([^,}]*\).*/\1 \2/p' "$1/metrics.jsonl"
}

# run_val DIR: the last validation loss of DIR/metrics.jsonl.
run_val() {
    sed -n 's/^{"step":[0-9]*,"val_loss":\([^,}]*\).*/\1/p' "$1/metrics.jsonl" | tail -1
}

# run_thread_cpu DIR: the step lines' comm_thread_cpu_s as "STEPS NULLS
# SUM" (SUM in microseconds).
run_thread_cpu() {
    sed -n 's/^{"step":[0-9]*,"loss".*"comm_thread_cpu_s":\([^,}]*\).*/\1/p' "$1/metrics.jsonl" |
        awk '{ n++; if ($1 == "null") z++; else s += $1 } END { printf "%d %d %d\n", n, z, s * 1e6 }'
}

# run_cmp_losses DESC DIR_A DIR_B REL: the same steps, every loss within
# relative tolerance REL (0 = bitwise: the same 17-digit text).
run_cmp_losses() {
    local desc=$1 a=$2 b=$3 rel=$4 res
    res=$(join <(run_losses "$a") <(run_losses "$b") | awk -v rel="$rel" '
        { n++; d = $2 - $3; if (d < 0) d = -d; m = ($2 < 0 ? -$2 : $2);
          if (rel == 0 ? ($2 != $3) : (d > rel * m)) { bad++; if (!first) first = $1 } }
        END { if (n == 0) print "no common steps";
              else if (bad) print bad " of " n " steps differ, first at step " first;
              else print "ok " n }')
    local na nb
    na=$(run_losses "$a" | wc -l); nb=$(run_losses "$b" | wc -l)
    if [[ "$res" == ok* ]] && [ "$na" -eq "$nb" ]; then t_ok "$desc ($res steps)"
    else t_fail "$desc: $res ($na vs $nb steps)"; paste <(run_losses "$a") <(run_losses "$b") | head -20 | sed 's/^/    /'
    fi
}

# run_cmp_params DESC CKPT_A CKPT_B: /params, /adam_m and /adam_v of two
# checkpoints bitwise equal (h5py, Debian's python3).
run_cmp_params() {
    local desc=$1 res
    res=$(/usr/bin/python3 - "$2" "$3" <<'PY' 2>&1
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
bad = [k for k in ("params", "adam_m", "adam_v")
       if a[k].shape != b[k].shape or a[k][()].tobytes() != b[k][()].tobytes()]
n = a["params"].shape[0]
print("differ: " + ",".join(bad) if bad else "equal %d" % n)
PY
)
    if [[ "$res" == equal* ]]; then t_ok "$desc (${res#equal } parameters)"
    else t_fail "$desc: $res"
    fi
}

# rank_pid MPIRUN_PID RANK: the pid of that rank of a running mpirun.
rank_pid() {
    local p
    for p in $(ps -o pid= --ppid "$1"); do
        if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
            echo "$p"
        fi
    done
}

# wait_steps DIR N: until DIR/metrics.jsonl holds N training steps (30 s at most).
wait_steps() {
    local _
    for _ in $(seq 1 300); do
        [ "$(run_losses "$1" 2>/dev/null | wc -l)" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
