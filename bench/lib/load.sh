# shellcheck shell=bash
# bench/lib/load.sh - sourced by the benchmarks of bench/run.d: the
# machine's load average before and after a benchmark, in its log, since
# this machine is shared and its figures are read against it. Needs ROOT.
# shellcheck source=tests/cpus.sh
. "$ROOT/tests/cpus.sh"
load_before() { echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(machine_cpus) cores"; }
load_after() { echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"; }
