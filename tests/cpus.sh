# tests/cpus.sh - machine_cpus: how many CPUs this process may run on (its
# affinity mask), for the scripts that size work by the machine (make -j,
# the test cluster's nodes, the benchmarks' reports). Sourced by sh and
# bash alike. GNU nproc alone also obeys OMP_NUM_THREADS and
# OMP_THREAD_LIMIT, which a cluster's login shell (or `make tsan`'s test
# run) often sets to 1: builds then ran one compile at a time, and every
# test node was pinned to CPU 0.
# shellcheck shell=sh
machine_cpus() { env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc; }
