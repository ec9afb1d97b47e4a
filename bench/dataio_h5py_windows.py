#!/usr/bin/python3
"""bench/dataio_h5py_windows.py - the h5py peer of bench/dataio_bench.c windows.

Reads the windows [row, row + W) x all channels of /signals listed in LIST
(one start row per line) by slicing, once, with h5py's default chunk cache
and once with the cache off (HDF5 then reads only the selected bytes of a
chunk). Prints four numbers: wall seconds and CPU seconds of the pass with
the default cache, then the same with the cache off.
"""
import sys
import time

import h5py


def one_pass(path, rows, w, **kw):
    with h5py.File(path, "r", **kw) as f:
        ds = f["/signals"]
        ds[rows[0]:rows[0] + w, :]  # open and index the dataset before timing
        t0, c0 = time.perf_counter(), time.process_time()
        for s in rows:
            ds[s:s + w, :]
        return time.perf_counter() - t0, time.process_time() - c0


def main():
    path, listing, w = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rows = [int(x) for x in open(listing)]
    d = one_pass(path, rows, w)
    n = one_pass(path, rows, w, rdcc_nbytes=0)
    print(d[0], d[1], n[0], n[1])


if __name__ == "__main__":
    main()
