#!/usr/bin/env bash
# bench/run.d/dataio.sh BUILD - the dataio benchmarks (bench/dataio_bench.c):
# streaming vs cat, random windows vs h5py, loader RSS vs file size, io serial
# vs mpiio, a mixture of 3 datasets vs one, the check at open vs H5Fopen. Generates its datasets under /tmp and removes them; about 30 s.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
DURE="$BUILD/dure"
BENCH="$BUILD/bench/dataio_bench"
[ -x "$BENCH" ] || { echo "dataio: $BENCH is not built (make tests-build)" >&2; exit 1; }
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
TMP=$(mktemp -d /tmp/dure-bench-dataio.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
# shellcheck source=bench/lib/load.sh
. "$ROOT/bench/lib/load.sh"
load_before

# 1 GiB: 256 episodes x 65536 timesteps x 16 float32 channels, dure chunking.
"$DURE" data gen -o "$TMP/big.h5" --episodes 256 --length 65536 --channels 16 \
    --val-fraction 0 --seed 1 >/dev/null
# 64 MiB, same shape per episode: the RSS comparison.
"$DURE" data gen -o "$TMP/small.h5" --episodes 16 --length 65536 --channels 16 \
    --val-fraction 0 --seed 2 >/dev/null
# 256 MiB chunked at 1 MiB (16384 rows): what h5py does with chunks that fit
# its default chunk cache (why dure's chunks are larger; FORMAT.md).
"$DURE" data gen -o "$TMP/chunk1m.h5" --episodes 64 --length 65536 --channels 16 \
    --val-fraction 0 --seed 3 --chunk-rows 16384 >/dev/null

"$BENCH" stream "$TMP/big.h5" 64 4
if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
    "$BENCH" windows "$TMP/big.h5" bench/dataio_h5py_windows.py
    "$BENCH" windows "$TMP/chunk1m.h5" bench/dataio_h5py_windows.py dataio_windows_chunk1m
else
    echo "dataio: skipping the h5py comparisons: no h5py for /usr/bin/python3 (python3-h5py)"
fi
"$BENCH" rss "$TMP/small.h5" "$TMP/big.h5"
# A mixture of three 64 MiB datasets against one of 192 MiB.
for seed in 4 5; do
    "$DURE" data gen -o "$TMP/part$seed.h5" --episodes 16 --length 65536 --channels 16 \
        --val-fraction 0 --seed "$seed" >/dev/null
done
"$DURE" data gen -o "$TMP/one.h5" --episodes 48 --length 65536 --channels 16 \
    --val-fraction 0 --seed 6 >/dev/null
"$BENCH" mix "$TMP/one.h5" "$TMP/small.h5" "$TMP/part4.h5" "$TMP/part5.h5"
rm -f "$TMP/part4.h5" "$TMP/part5.h5" "$TMP/one.h5"
mpirun -np 2 "$BENCH" io "$TMP/big.h5"
# The structural check at open (common/h5guard.h) against H5Fopen alone:
# the 1 GiB dure file, and a robomimic-shaped file of 200 demos.
"$BENCH" guard "$TMP/big.h5" "$TMP/robomimic.h5" 200
load_after
