#!/usr/bin/env bash
# tests/cli/test_ckpt.sh - `dure ckpt inspect|verify` on checkpoints written
# by 2 ranks with parallel HDF5; h5dump, h5py and sha256sum read them too;
# damaged, truncated, foreign and missing files are refused clearly.
. "$(dirname "$0")/../lib.sh"
PY=/usr/bin/python3
FIXTURE="${DURE_BUILD:-$T_ROOT/build}/tests/mpi/test_ckpt_manifest"
[ -x "$FIXTURE" ] || t_skip "$FIXTURE not built (make tests-build)"

RUN="$T_TMP/run"
echo "data" > "$T_TMP/data.h5"
t_run "2 ranks write a run directory with 3 checkpoints" 0 \
    env DURE_CKPT_FIXTURE_DIR="$RUN" DURE_CKPT_FIXTURE_DATA="$T_TMP/data.h5" \
    mpirun -np 2 -x DURE_CKPT_FIXTURE_DIR -x DURE_CKPT_FIXTURE_DATA "$FIXTURE"
CK="$RUN/checkpoints/ckpt-00000006.h5"
t_eq "latest names the newest" "$(cat "$RUN/checkpoints/latest")" "ckpt-00000006.h5"

t_run "inspect" 0 "$DURE" ckpt inspect "$CK"
t_grep "inspect shows the step" '^step: +6 completed'
t_grep "inspect shows the loader cursor" '^loader: +epoch 0, position 192 windows'
t_grep "inspect shows the world size" '^world size: +2 \(zero_stage 1\)'
t_grep "inspect shows the model shape" '^model: +d_model=8 n_layers=1 .* n=5000'
t_grep "inspect shows the datasets and their checksums" '^  /adam_v +float32 \[5000\], contiguous, CRC-32C per 1048576 elements'
t_grep "inspect says a content hash is present" 'SHA-256 sidecar present'

t_run "verify all three" 0 "$DURE" ckpt verify "$RUN"/checkpoints/ckpt-0000000[246].h5
t_grep "verify names each file" "ok: .*ckpt-00000002.h5: .*SHA-256 [0-9a-f]{64} matches"
t_run "the sidecars work with sha256sum -c" 0 \
    bash -c "cd '$RUN/checkpoints' && sha256sum -c ckpt-00000006.h5.sha256"

if command -v h5dump >/dev/null; then
    t_run "h5dump reads the layout" 0 h5dump -p -H "$CK"
    t_grep "h5dump sees /checksums" 'DATASET "checksums"'
    t_run "h5dump reads values" 0 h5dump -d /params -s 0 -c 2 "$CK"
fi
# h5py, an independent reader: attributes, values bitwise equal to the
# writer's formula (tests/support/ckpt_fixture.c fx_value, seed 42), and
# the block checksums are the CRC-32C of the stored bytes.
t_run "h5py reads metadata and exact values" 0 $PY - "$CK" <<'PYEOF'
import struct, sys, h5py, numpy as np
def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF
M = (1 << 64) - 1
def splitmix(x):
    x = (x + 0x9E3779B97F4A7C15) & M
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M
    return x ^ (x >> 31)
def fx(seed, which, i):
    b = splitmix((seed * 0x1000193 + which * 0x51ED27 + i) & M) & 0xFFFFFFFF
    return struct.unpack('<f', struct.pack('<I', (b & 0x807FFFFF) | 0x3F800000))[0]
f = h5py.File(sys.argv[1], 'r')
assert f.attrs['format'] == 'dure-checkpoint', f.attrs['format']
assert int(f.attrs['step']) == 6 and int(f.attrs['n_params']) == 5000
assert int(f.attrs['format_version']) == 2
assert f.attrs['model'].startswith('d_model=8'), f.attrs['model']
for w, name in enumerate(['params', 'adam_m', 'adam_v']):
    d = f[name]
    assert d.dtype == np.float32 and d.shape == (5000,) and d.chunks is None
    got = d[:]
    assert f['checksums'][w, 0] == crc32c(got.astype('<f4').tobytes()), name
    want = np.array([fx(42, w, i) for i in range(5000)], dtype=np.float32)
    bad = np.nonzero(got.view(np.uint32) != want.view(np.uint32))[0]
    assert bad.size == 0, (name, bad[:5])
print("h5py: ok")
PYEOF

# A flipped byte inside /params' data: the content hash and the block's
# CRC-32C both see it.
mkdir -p "$T_TMP/bad"
cp "$CK" "$CK.sha256" "$T_TMP/bad/"
BAD="$T_TMP/bad/ckpt-00000006.h5"
$PY - "$BAD" <<'PYEOF'
import sys, h5py
with h5py.File(sys.argv[1], 'r') as f:
    off = f['params'].id.get_offset() + 1000
with open(sys.argv[1], 'r+b') as g:
    g.seek(off); b = g.read(1); g.seek(off); g.write(bytes([b[0] ^ 0x10]))
PYEOF
t_run "verify refuses a flipped data byte (exit 4)" 4 "$DURE" ckpt verify "$BAD"
t_grep "the message names the file, the dataset and the block" \
    "ckpt-00000006.h5.*/params block 0 \(elements \[0, 5000\)\) fails its CRC-32C"
t_grep "the summary shows both checks failing" 'datasets BAD, content hash MISMATCH'
# The same damage with a sidecar recomputed after it: the CRC-32C alone catches it.
(cd "$T_TMP/bad" && sha256sum ckpt-00000006.h5 > ckpt-00000006.h5.sha256)
t_run "the CRC-32C alone catches it (exit 4)" 4 "$DURE" ckpt verify "$BAD"
t_grep "datasets bad, hash fine" 'datasets BAD, content hash ok'

# Format version 1 (chunked, Fletcher32, no /checksums), as dure wrote it
# before: still inspected and verified, and a damaged chunk still caught.
mkdir -p "$T_TMP/v1"
V1="$T_TMP/v1/ckpt-00000006.h5"
$PY - "$CK" "$V1" <<'PYEOF'
import sys, h5py
with h5py.File(sys.argv[1], 'r') as f, h5py.File(sys.argv[2], 'w') as g:
    for k, v in f.attrs.items():
        g.attrs[k] = v
    g.attrs['format_version'] = f.attrs['format_version'].dtype.type(1)
    for name in ('params', 'adam_m', 'adam_v'):
        g.create_dataset(name, data=f[name][:], chunks=(5000,), fletcher32=True)
PYEOF
(cd "$T_TMP/v1" && sha256sum ckpt-00000006.h5 > ckpt-00000006.h5.sha256)
t_run "a version 1 checkpoint verifies" 0 "$DURE" ckpt verify "$V1"
t_run "and inspects" 0 "$DURE" ckpt inspect "$V1"
t_grep "inspect shows its chunks and Fletcher32" '^  /params +float32 \[5000\], chunks of 5000, Fletcher32 on'
$PY - "$V1" <<'PYEOF'
import sys, h5py
with h5py.File(sys.argv[1], 'r') as f:
    off = f['adam_m'].id.get_chunk_info(0).byte_offset + 100
with open(sys.argv[1], 'r+b') as g:
    g.seek(off); b = g.read(1); g.seek(off); g.write(bytes([b[0] ^ 0x01]))
PYEOF
(cd "$T_TMP/v1" && sha256sum ckpt-00000006.h5 > ckpt-00000006.h5.sha256)
t_run "a damaged version 1 chunk is refused (exit 4)" 4 "$DURE" ckpt verify "$V1"
t_grep "by Fletcher32, naming the dataset" "/adam_m.*Fletcher32 checksum mismatch"

# Truncated (a copy cut in half, sidecar of the original).
mkdir -p "$T_TMP/trunc"
cp "$CK" "$CK.sha256" "$T_TMP/trunc/"
TR="$T_TMP/trunc/ckpt-00000006.h5"
truncate -s 30000 "$TR"
t_run "verify refuses a truncated file (exit 4)" 4 "$DURE" ckpt verify "$TR"
t_grep "truncation is named" "ckpt-00000006.h5.*(truncated|content hash mismatch)"
t_run "inspect refuses it too (exit 4)" 4 "$DURE" ckpt inspect "$TR"
t_grep "inspect names the file" "trunc/ckpt-00000006.h5"

# A sidecar that is missing.
rm "$T_TMP/trunc/ckpt-00000006.h5.sha256"
cp "$CK" "$T_TMP/trunc/"
t_run "verify refuses a checkpoint without its content hash (exit 4)" 4 "$DURE" ckpt verify "$TR"
t_grep "the missing sidecar is named" "ckpt-00000006.h5.sha256.*No such file"

# An HDF5 file that is not a dure checkpoint.
$PY -c "import h5py; h5py.File('$T_TMP/other.h5','w').create_dataset('x', data=[1,2,3])"
t_run "inspect refuses a foreign HDF5 file (exit 4)" 4 "$DURE" ckpt inspect "$T_TMP/other.h5"
t_grep "it says why" "other.h5.*attribute 'format' is missing"
t_run "a missing file (exit 1)" 1 "$DURE" ckpt verify "$T_TMP/nope.h5"
t_grep "the missing file is named" "nope.h5.*No such file"

t_run "dure ckpt without action is a usage error" 2 "$DURE" ckpt
t_run "unknown action" 2 "$DURE" ckpt frobnicate x
t_grep "the action is named" "unknown action 'frobnicate'"
# A string attribute of two strings: H5Aread would write both into room for one.
cp "$CK" "$T_TMP/two.h5"
$PY -c 'import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r+"); v = f.attrs["format"]; del f.attrs["format"]
f.attrs["format"] = np.array([v, v], dtype=h5py.string_dtype())' "$T_TMP/two.h5"
t_run "a checkpoint whose 'format' holds two strings is refused" 4 "$DURE" ckpt inspect "$T_TMP/two.h5"
t_grep "naming the file and the attribute" "checkpoint '.*two\.h5': attribute 'format' holds 2 strings, not one"
t_run "inspect takes one file" 2 "$DURE" ckpt inspect "$CK" "$CK"
t_run "unknown option" 2 "$DURE" ckpt --bogus inspect "$CK"
t_run "help" 0 "$DURE" help ckpt
t_grep "help shows usage" '^usage: dure ckpt inspect FILE'
t_done
