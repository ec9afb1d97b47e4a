#!/usr/bin/env bash
# tests/cli/test_cli.sh - the dure command's global behaviour.
. "$(dirname "$0")/../lib.sh"

t_run "dure --version" 0 "$DURE" --version
t_grep "version names dure and its git revision" '^dure [0-9]+\.[0-9]+\.[0-9]+ \(git [0-9a-f]+'
t_grep "version names the linked MPI" 'MPI: +Open MPI v[0-9]'
t_grep "version names the linked HDF5" 'HDF5: +1\.[0-9]+\.[0-9]+ \(parallel\)'
t_grep "version names the linked OpenBLAS" 'OpenBLAS: +OpenBLAS 0\.[0-9]'
if ! "$DURE" --version | grep -q 'CUDA/NCCL: *not built'; then
    t_grep "version names the linked NCCL" 'NCCL: +2\.[0-9]+\.[0-9]+'
    t_grep "version names the CUDA runtime" 'CUDA runtime: +[0-9]+\.[0-9]'
fi

t_run "dure with no command is a usage error" 2 "$DURE"
t_grep "usage goes with it" '^usage: dure <command>'
t_run "unknown command exits 2" 2 "$DURE" frobnicate
t_grep "unknown command is named" "unknown command 'frobnicate'"
t_run "unknown global option exits 2" 2 "$DURE" --frobnicate
t_grep "unknown option is named" "unrecognized option '--frobnicate'"
t_run "dure --help lists commands" 0 "$DURE" --help
t_grep "help lists the version command" '^  version +'
t_run "dure help version" 0 "$DURE" help version
t_grep "command help is printed" '^usage: dure version'
t_run "dure help run" 0 "$DURE" help run
t_grep "it lists the exit codes from the one table" '^  124  a collective hung past the watchdog$'
t_grep "with the job spec's" '^    3  invalid job spec$'
t_run "dure help of an unknown command exits 2" 2 "$DURE" help frobnicate
t_run "dure version with an extra argument exits 2" 2 "$DURE" version extra

t_done
