#!/usr/bin/env bash
# tests/cli/test_data_layouts.sh - robomimic, ALOHA and machining-run files
# as h5py writes them, read in place by dure data inspect/stats, their
# layout found from the files themselves.
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
# One HDF5 file per machining run: a dataset of shape (N, 3), nothing else.
for i, N in enumerate([200, 260]):
    with h5py.File(f"{d}/run_{i}.h5", "w") as f:
        f.create_dataset("vibration_data", data=rng.normal(size=(N, 3)))
# robomimic masks naming a demo that is not there.
with h5py.File(f"{d}/badmask.hdf5", "w") as f:
    for i in range(2):
        f.create_dataset(f"data/demo_{i}/actions", data=np.zeros((20, 2)))
    f.create_dataset("mask/train", data=np.array([b"demo_0", b"demo_7"]))
PY

KEYS=robot0_joint_pos,robot0_eef_pos,actions
t_run "inspect a robomimic file" 0 "$DURE" data inspect --layout robomimic --keys "$KEYS" \
    --window 32 "$D/robomimic.hdf5"
t_grep "robomimic: 17 channels in key order" '^channels: 17$'
t_grep "robomimic: keys named with columns" '^ +7 robot0_eef_pos\[0\] +$'
t_grep "robomimic: the split from mask/train and mask/valid" 'episodes: 3 \(1 validation, split from mask/train, mask/valid\), 156 timesteps'
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

t_run "inspect a robomimic file without flags" 0 "$DURE" data inspect "$D/robomimic.hdf5"
t_grep "its layout is found" '^layout: robomimic \(detected: data/demo_N groups; --layout overrides\)$'
t_grep "and it has no problem" '^0 problems found'
t_run "a robomimic file read as dure" 4 "$DURE" data inspect --layout dure "$D/robomimic.hdf5"
t_grep "says what it looks like" '^note: the file looks like layout robomimic \(data/demo_N groups\): try --layout robomimic$'
t_run "a mask naming a missing demo" 4 "$DURE" data inspect "$D/badmask.hdf5"
t_grep "is found by inspect" "problem: file '$D/badmask.hdf5': 'mask/train' names demo 'demo_7' \(entry 1\), which is not in data/"

t_run "inspect an ALOHA glob" 0 "$DURE" data inspect --layout aloha "$D/episode_*.hdf5"
t_grep "aloha: files counted" '^files: 2 match'
t_grep "aloha: images are not channels" '^channels: 42$'
t_grep "aloha: episode lengths" 'episode length: min 30, median 45, mean 37.5, max 45'
t_run "an ALOHA glob without flags" 0 "$DURE" data inspect "$D/episode_*.hdf5"
t_grep "is episode-files" '^layout: episode-files \(detected: a glob: one file per episode'
t_run "one machining run, no flags" 0 "$DURE" data inspect "$D/run_0.h5"
t_grep "is one episode of episode-files" '^layout: episode-files \(detected: numeric datasets: the file is one episode'
t_grep "its dataset gives the channels" '^ +2 vibration_data\[2\]'
t_run "a glob of machining runs" 0 "$DURE" data inspect --window 128 "$D/run_*.h5"
t_grep "two episodes" 'episode length: min 200, median 260, mean 230.0, max 260'
t_grep "windows counted" '^windows of 128 timesteps: 3$'
t_run "stats of the runs" 0 "$DURE" data stats "$D/run_*.h5"
t_grep "not stored in files read in place" 'not stored: episode-files files are not modified'

t_run "an ALOHA glob that matches nothing exits 4" 4 "$DURE" data inspect --layout aloha \
    "$D/nothing_*.hdf5"
t_grep "the glob is named" "no episode file matches '$D/nothing_\*.hdf5'"
t_done
