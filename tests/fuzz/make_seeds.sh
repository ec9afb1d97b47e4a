#!/usr/bin/env bash
# tests/fuzz/make_seeds.sh [BUILD] - regenerate the binary seed files of
# tests/fuzz/corpus/ (small HDF5 datasets and a checkpoint) with the dure
# of BUILD (default build) and h5py. The text seeds are written by hand.
# Run from the repository root; it replaces only the files named below.
set -euo pipefail
BUILD=${1:-build}
DURE="$PWD/$BUILD/dure"
C=tests/fuzz/corpus
T=$(mktemp -d /tmp/dure-seeds.XXXXXX)
trap 'rm -rf "$T"' EXIT
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
mkdir -p "$C/h5_dure" "$C/h5_robomimic" "$C/h5_aloha" "$C/ckpt"

# dure layout: a generated file with a validation split and statistics.
"$DURE" data gen -o "$C/h5_dure/gen.h5" --episodes 3 --length 12 --channels 2 \
    --val-fraction 0.34 --seed 7 > /dev/null
"$DURE" data stats "$C/h5_dure/gen.h5" > /dev/null

# robomimic and ALOHA: the layouts' usual names, float32/float64/int16.
/usr/bin/python3 - "$T" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
with h5py.File(f"{d}/robomimic.hdf5", "w", libver="earliest") as f:
    for i, T in enumerate((5, 3)):
        g = f.create_group(f"data/demo_{i}")
        g.attrs["num_samples"] = T
        g["obs/robot0_eef_pos"] = np.arange(T * 3, dtype=np.float32).reshape(T, 3)
        g["obs/robot0_gripper_qpos"] = np.arange(T * 2, dtype=np.float64).reshape(T, 2)
        g["actions"] = np.ones((T, 2), dtype=np.float32)
    f["mask/valid"] = np.array([b"demo_1"])
for i, T in enumerate((4, 6)):
    with h5py.File(f"{d}/episode_{i}.hdf5", "w", libver="earliest") as f:
        f["observations/qpos"] = np.arange(T * 2, dtype=np.float32).reshape(T, 2)
        f["observations/qvel"] = np.arange(T, dtype=np.int16)
        f["action"] = np.zeros((T, 2), dtype=np.float64)
PY
# The first byte of these inputs picks data.keys (0: every dataset).
{ printf '\0'; cat "$T/robomimic.hdf5"; } > "$C/h5_robomimic/two-demos"
{ printf '\1'; cat "$T/robomimic.hdf5"; } > "$C/h5_robomimic/two-demos-keys"
{ printf '\1'; cat "$T/episode_0.hdf5"; printf 'DUREFILE'; cat "$T/episode_1.hdf5"; } \
    > "$C/h5_aloha/two-episodes"
{ printf '\0'; cat "$T/episode_1.hdf5"; } > "$C/h5_aloha/one-episode"

# A checkpoint of a tiny model (2 steps on 1 rank); first byte 1: the true sidecar.
"$DURE" data gen -o "$T/d.h5" --episodes 2 --length 64 --channels 2 --val-fraction 0.5 > /dev/null
mpirun -np 1 "$DURE" run jobs/demo-cpu.ini --set data.path="$T/d.h5" --set run.dir="$T/run" \
    --set run.steps=2 --set model.d_model=8 --set model.n_layers=1 --set model.n_heads=1 \
    --set model.patch_len=4 --set model.context_patches=2 --set optim.global_batch=2 \
    --set optim.micro_batch=2 --set run.val_every=0 --set optim.warmup_steps=1 > /dev/null
ck=$(find "$T/run/checkpoints" -name "ckpt-*.h5" | sort | tail -1)
{ printf '\1'; cat "$ck"; } > "$C/ckpt/tiny"
ls -l "$C"/h5_* "$C/ckpt"
