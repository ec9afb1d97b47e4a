#!/usr/bin/env bash
# tests/cli/test_data.sh - `dure data gen|inspect|stats|import` end to end.
. "$(dirname "$0")/../lib.sh"
D=$T_TMP

t_run "dure data without a subcommand is a usage error" 2 "$DURE" data
t_run "unknown data subcommand exits 2" 2 "$DURE" data frobnicate
t_grep "the subcommand is named" "unknown subcommand 'frobnicate'"
t_run "dure help data" 0 "$DURE" help data
t_grep "help lists gen, import, inspect, stats" '^       dure data stats'
t_run "gen: unknown option exits 2" 2 "$DURE" data gen -o "$D/x.h5" --frobnicate
t_run "gen: a non-integer exits 2" 2 "$DURE" data gen -o "$D/x.h5" --episodes lots
t_grep "the bad value is named" "--episodes 'lots' is not an integer"
t_run "gen: without -o exits 2" 2 "$DURE" data gen

gen() { "$DURE" data gen --episodes 5 --length 300 --channels 10 --sample-rate 250 "$@"; }
t_run "gen writes a dataset" 0 gen -o "$D/a.h5" --seed 3
t_grep "gen says what it wrote" "wrote $D/a.h5: 5 episodes, 10 channels at 250 Hz \(seed 3\)"
gen -o "$D/b.h5" --seed 3 >/dev/null
gen -o "$D/c.h5" --seed 4 >/dev/null
t_eq "the same seed gives the same signals" \
    "$(h5dump -d /signals "$D/a.h5" | tail -n +3 | md5sum)" \
    "$(h5dump -d /signals "$D/b.h5" | tail -n +3 | md5sum)"
if [ "$(h5dump -d /signals "$D/a.h5" | tail -n +3 | md5sum)" != \
     "$(h5dump -d /signals "$D/c.h5" | tail -n +3 | md5sum)" ]; then
    t_ok "another seed gives other signals"
else
    t_fail "seeds 3 and 4 gave the same signals"
fi
t_run "gen --profile mill writes another plant" 0 "$DURE" data gen -o "$D/mill.h5" \
    --profile mill --episodes 3 --length 200
t_grep "with its channels and rate" "wrote $D/mill.h5: 3 episodes, 12 channels at 200 Hz"
t_run "its channels are the spindle's" 0 h5dump -d /channels/names "$D/mill.h5"
t_grep "the first" '"cell0.spindle.vib"'
t_grep "the last" '"cell2.ambient.temp"'
if printf '%s\n' "$T_OUT" | grep -q 'j0'; then t_fail "a mill has no robot joints"
else t_ok "and no robot joint"; fi
t_run "gen --profile arm, with its rate overridden" 0 "$DURE" data gen -o "$D/arm.h5" \
    --profile arm --episodes 3 --length 200 --sample-rate 200
t_grep "8 channels at the rate given" "wrote $D/arm.h5: 3 episodes, 8 channels at 200 Hz"
t_run "an unknown profile is a usage error" 2 "$DURE" data gen -o "$D/x.h5" --profile lathe
t_grep "naming the profiles" "--profile must be cell, arm or mill"
rm -f "$D/mill.h5" "$D/arm.h5"
t_run "gen into a missing directory fails" 1 gen -o "$D/no/such/dir.h5"
t_grep "the directory is named" "no/such"
t_run "gen with a bad validation fraction fails" 3 gen -o "$D/a.h5" --val-fraction 1.5
t_grep "the value is named" "--val-fraction 1.5 must be in \[0, 1\)"
t_eq "the failed gen left a.h5 and no temporary file" "$(find "$D" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | tr '\n' ' ')" "a.h5 b.h5 c.h5 "

t_run "inspect a good file" 0 "$DURE" data inspect "$D/a.h5"
t_grep "inspect shows the chunking" '^/signals: float32, rank 2, shape \[1500, 10\], chunks \[2048, 10\] = 81920 bytes'
t_grep "inspect shows channels with units" 'cell0\.j0\.torque +N\*m'
t_grep "inspect shows episode lengths" 'episode length: min 300, median 300'
t_grep "inspect shows provenance" '^source: dure data gen: synthetic'
t_grep "inspect finds no problem" '^0 problems found'
t_run "inspect with a window longer than the episodes" 4 "$DURE" data inspect --window 512 "$D/a.h5"
t_grep "short episodes are a problem" '5 episodes are shorter than the window of 512 timesteps'
printf 'not,hdf5\n1,2\n' > "$D/text.h5"
t_run "inspect a text file exits 4" 4 "$DURE" data inspect "$D/text.h5"
t_grep "it is named as not HDF5" "text.h5' is not an HDF5 file"
t_run "inspect a missing file exits 4" 4 "$DURE" data inspect "$D/missing.h5"
t_grep "the missing file is named" "missing.h5': No such file or directory"
cp "$D/a.h5" "$D/trunc.h5"
truncate -s 20000 "$D/trunc.h5"
t_run "inspect a truncated file exits 4" 4 "$DURE" data inspect "$D/trunc.h5"
t_grep "truncation is named" "trunc.h5' is truncated"

# Bad data is exit 4 wherever it is found (it was 1 from stats and run).
cp "$D/a.h5" "$D/flip.h5"
python3 - "$D/flip.h5" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
# /signals' datatype message: float (version 1, class 1), little-endian, 4 bytes.
i = b.find(bytes([0x11, 0x20, 0x1f, 0x00, 0x04, 0x00, 0x00, 0x00]))
assert i > 0, "no float32 datatype message"
b[i + 4] ^= 0x04  # one bit: a 0-byte float
open(sys.argv[1], "wb").write(b)
PY
t_run "stats of a file with a flipped bit exits 4" 4 "$DURE" data stats "$D/flip.h5"
t_grep "naming the file, the dataset and what is wrong" "flip.h5': object '/signals': its datatype is a number whose bits .* lie outside its size: damaged"
t_run "inspect of it exits 4" 4 "$DURE" data inspect "$D/flip.h5"
printf '[run]\ndir = %s/flip-run\nsteps = 1\n[data]\npath = %s/flip.h5\n' "$D" "$D" > "$D/flip.ini"
t_run "dure run on it exits 4" 4 "$DURE" run "$D/flip.ini"
t_eq "with the error alone, no resolved table around it" \
    "$(printf '%s\n' "$T_OUT" | grep -c -e '^run\.name ' -e '^slurm\.profile ')" 0
t_eq "and no empty run directory left behind" "$(ls -d "$D/flip-run" 2>/dev/null)" ""
ln -s "$D/loop1.h5" "$D/loop2.h5"
ln -s "$D/loop2.h5" "$D/loop1.h5"
t_run "a symlink loop is bad data for inspect" 4 "$DURE" data inspect "$D/loop1.h5"
t_grep "named as a loop" "loop1.h5': Too many levels of symbolic links"
t_run "and for stats" 4 "$DURE" data stats "$D/loop1.h5"
rm -f "$D/loop1.h5" "$D/loop2.h5" "$D/flip.h5" "$D/flip.ini"
# A root attribute 'format' of two strings: H5Aread would write both into
# room for one.
cp "$D/a.h5" "$D/two.h5"
/usr/bin/python3 -c 'import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r+"); del f.attrs["format"]
f.attrs["format"] = np.array([b"dure-dataset", b"dure-dataset"], dtype="S12")' "$D/two.h5"
t_run "a 'format' of two strings is bad data" 4 "$DURE" data inspect "$D/two.h5"
t_grep "named as unreadable" "problem: root attribute 'format' is unreadable \\(not one string\\)"
rm -f "$D/two.h5"

t_run "stats prints and stores" 0 "$DURE" data stats "$D/a.h5"
t_grep "stats are per channel" '^ +0 cell0\.j0\.pos +rad +mean +-?[0-9.e-]+ +std +[0-9.e-]+ +\(1200 values\)'
t_grep "stats are stored" "stored in $D/a.h5 /stats"
t_run "inspect still finds no problem after stats" 0 "$DURE" data inspect "$D/a.h5"

# CSV import with anonymization.
cat > "$D/log.csv" <<'CSV'
time,plant,serial,operator,spindle_rpm,temp
0.00,Plant-North,SN-4471,alice,3000,21.5
0.01,Plant-North,SN-4471,alice,3010,21.6
0.02,Plant-North,SN-4471,alice,2995,21.6
CSV
export DURE_ANON_KEY="consortium-secret-key-0123456789"
t_run "import hashes and drops identifying columns" 0 "$DURE" data import -o "$D/imp.h5" \
    --time-col time --hash plant,serial --drop operator "$D/log.csv"
t_grep "import reports what it wrote" "wrote $D/imp.h5: 1 episodes, 2 channels, 3 rows at 100 Hz \(anonymized\)"
if grep -qa -e "$DURE_ANON_KEY" -e Plant-North -e SN-4471 -e alice "$D/imp.h5"; then
    t_fail "the key or an identifying value is in the output file"
else
    t_ok "neither the key nor identifying values are in the output file"
fi
t_run "the provenance says what was done" 0 h5dump -a anonymization "$D/imp.h5"
t_grep "hashed and dropped columns are listed" 'HMAC-SHA256.*plant, serial; columns dropped: operator'
printf 'time,temp\n0,1\n0.1,2,3\n' > "$D/bad.csv"
t_run "malformed CSV exits 4" 4 "$DURE" data import -o "$D/bad.h5" --time-col time "$D/bad.csv"
t_grep "the line is named" "bad.csv:3: 3 fields; the header has 2"
printf 'time,temp\n0,1\n0.1,hot\n' > "$D/bad.csv"
t_run "a non-number exits 4" 4 "$DURE" data import -o "$D/bad.h5" --time-col time "$D/bad.csv"
t_grep "line and column are named" "bad.csv:3: column 2 'temp': 'hot' is not a number"
t_eq "no output file after failed imports" "$(ls "$D"/bad.h5 "$D"/.bad.h5* 2>/dev/null)" ""
t_run "an import that keeps the episode id raw" 0 "$DURE" data import -o "$D/raw.h5" \
    --episode-col plant --time-col time --drop serial,operator "$D/log.csv"
t_grep "says the file is not anonymized" "1 column kept raw in /episode_meta .*: the file is not anonymized"
t_run "inspect of it" 0 "$DURE" data inspect "$D/raw.h5"
t_grep "says it is not anonymized" '^anonymized: no$'
t_grep "names the raw column" '^raw columns: plant \(identifying values stored as they are in /episode_meta\)$'
t_run "an HDF5 file given to import" 4 "$DURE" data import -o "$D/x.h5" --time-col time "$D/a.h5"
t_grep "is named as HDF5, read in place" "a.h5' is an HDF5 file, not CSV: dure reads HDF5 files in place"
cp "$D/log.csv" "$D/self.csv"
t_run "an output that is the input" 3 "$DURE" data import -o "$D/self.csv" --time-col time \
    --drop plant,serial,operator "$D/self.csv"
t_grep "is refused" "the output '$D/self.csv' is the input '$D/self.csv' \(the same file\)"
t_eq "the input is untouched" "$(cat "$D/self.csv")" "$(cat "$D/log.csv")"
# 100,000 columns: the header was checked in quadratic time (20 s, then
# refused). A CPU-time cap far above the linear cost catches a relapse
# without timing anything.
python3 -c 'print(",".join(f"c{i}" for i in range(100000))); print(",".join("1" for i in range(100000)))' > "$D/wide.csv"
t_run "a 100,000-column CSV is refused at once" 4 bash -c "ulimit -t 5; exec \"\$0\" data import -o '$D/wide.h5' --sample-rate 1 '$D/wide.csv'" "$DURE"
t_grep "naming the limit" "wide.csv:1: 100000 columns are channels; the dure format holds at most 65536"
rm -f "$D/wide.csv" "$D/self.csv"

unset DURE_ANON_KEY
t_run "hashing without a key exits 3" 3 "$DURE" data import -o "$D/k.h5" --time-col time \
    --hash plant "$D/log.csv"
t_grep "the key sources are named" "give --key-file PATH or set DURE_ANON_KEY"

# A full disk (a 256 KiB tmpfs, as root): gen names the error and exits 1,
# leaves nothing, and HDF5's exit handler does not loop on the file whose
# close failed ("infinite loop closing library").
mkdir "$D/full"
if mount -t tmpfs -o size=256k tmpfs "$D/full" 2>/dev/null; then
    t_run "gen on a full disk exits 1" 1 gen -o "$D/full/x.h5" --episodes 64 --length 4096
    t_grep "the write and the file are named" "'$D/full/\.x\.h5\.tmp-.*': cannot write .* \(disk full\?\)"
    if printf '%s\n' "$T_OUT" | grep -q "HDF5"; then t_fail "HDF5 printed at exit: $T_OUT"
    else t_ok "nothing from HDF5 after dure's error"; fi
    t_eq "nothing is left on the full disk" "$(ls -A "$D/full")" ""
    umount "$D/full"
else
    echo "# full disk: skipped (mounting a tmpfs needs root)"
fi
t_done
