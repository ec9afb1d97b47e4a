#!/usr/bin/env bash
# tests/cli/test_data_layouts.sh - robomimic and ALOHA files as h5py writes
# them, read in place by dure data inspect/stats.
. "$(dirname "$0")/../lib.sh"
PY=/usr/bin/python3
"$PY" -c 'import h5py' 2>/dev/null || t_skip "no h5py for $PY (Debian package python3-h5py)"
D=$T_TMP
"$PY" - "$D" <<'PY'
import sys, json, h5py, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(0)
with h5py.File(f"{d}/robomimic.hdf5", "w") as f:
    data = f.create_group("data")
    data.attrs["env_args"] = json.dumps({"env_name": "Lift", "env_kwargs": {"control_freq": 20}})
    total = 0
    for i, T in enumerate([40, 55, 61]):
        g = data.create_group(f"demo_{i}")
        g.attrs["num_samples"] = T
        g.create_dataset("obs/robot0_joint_pos", data=rng.normal(size=(T, 7)))
        g.create_dataset("obs/robot0_eef_pos", data=rng.normal(size=(T, 3)).astype("f4"),
                         compression="gzip")
        g.create_dataset("obs/agentview_image", data=np.zeros((T, 8, 8, 3), "u1"))
        g.create_dataset("actions", data=rng.uniform(-1, 1, size=(T, 7)))
        g.create_dataset("dones", data=np.zeros(T, bool))
        total += T
    data.attrs["total"] = total
    f.create_dataset("mask/valid", data=np.array([b"demo_2"]))
    f.create_dataset("mask/train", data=np.array([b"demo_0", b"demo_1"]))
for i, T in enumerate([30, 45]):
    with h5py.File(f"{d}/episode_{i}.hdf5", "w") as f:
        f.attrs["sim"] = True
        f.create_dataset("observations/qpos", data=rng.normal(size=(T, 14)))
        f.create_dataset("observations/qvel", data=rng.normal(size=(T, 14)))
        f.create_dataset("observations/images/top", data=np.zeros((T, 4, 4, 3), "u1"),
                         chunks=(1, 4, 4, 3))
        f.create_dataset("action", data=rng.normal(size=(T, 14)).astype("f4"))
PY

KEYS=robot0_joint_pos,robot0_eef_pos,actions
t_run "inspect a robomimic file" 0 "$DURE" data inspect --layout robomimic --keys "$KEYS" \
    --window 32 "$D/robomimic.hdf5"
t_grep "robomimic: 17 channels in key order" '^channels: 17$'
t_grep "robomimic: keys named with columns" '^ +7 robot0_eef_pos\[0\] +$'
t_grep "robomimic: validation demo from mask/valid" 'episodes: 3 \(1 validation, split stored\), 156 timesteps'
t_grep "robomimic: float64 kept as stored" 'stored: /data/demo_0/obs/robot0_joint_pos: float64 \[40, 7\], contiguous'
t_grep "robomimic: gzip chunks are read" 'stored: /data/demo_0/obs/robot0_eef_pos: float32 \[40, 3\], chunked .*deflate'
t_grep "robomimic: no problem" '^0 problems found'
t_run "a robomimic image key is refused" 4 "$DURE" data inspect --layout robomimic \
    --keys agentview_image "$D/robomimic.hdf5"
t_grep "the rank is named" "agentview_image' has rank 4 \(shape 40 x 8 x 8 x 3\)"
t_run "a missing robomimic key lists the available ones" 4 "$DURE" data inspect \
    --layout robomimic --keys joint_vel "$D/robomimic.hdf5"
t_grep "available keys are listed" "no key 'joint_vel' \(available: obs/robot0_eef_pos, obs/robot0_joint_pos, actions, dones\)"
t_run "stats of a robomimic file" 0 "$DURE" data stats --layout robomimic --keys actions \
    "$D/robomimic.hdf5"
t_grep "robomimic files are not modified" 'not stored: robomimic files are not modified'

t_run "inspect an ALOHA glob" 0 "$DURE" data inspect --layout aloha "$D/episode_*.hdf5"
t_grep "aloha: files counted" '^files: 2 match'
t_grep "aloha: images are not channels" '^channels: 42$'
t_grep "aloha: episode lengths" 'episode length: min 30, median 45, mean 37.5, max 45'
t_run "an ALOHA glob that matches nothing exits 4" 4 "$DURE" data inspect --layout aloha \
    "$D/nothing_*.hdf5"
t_grep "the glob is named" "no episode file matches '$D/nothing_\*.hdf5'"
t_done
