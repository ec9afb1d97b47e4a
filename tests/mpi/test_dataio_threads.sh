#!/usr/bin/env bash
# tests/mpi/test_dataio_threads.sh - the loader's mpiio path with its prefetch
# thread: the same MPI test as tests/mpi/test_dataio_loader.c, with Open MPI
# asked for MPI_THREAD_MULTIPLE (without it, mpiio reads on the caller).
. "$(dirname "$0")/../lib.sh"
bin="$DURE_BUILD/tests/mpi/test_dataio_loader"
[ -x "$bin" ] || t_skip "$bin not built"
t_run "mpiio loader with MPI_THREAD_MULTIPLE on 2 ranks" 0 \
    mpirun -np 2 -x OMPI_MPI_THREAD_LEVEL=3 "$bin"
t_grep "MPI provided MPI_THREAD_MULTIPLE" 'MPI thread level 3: mpiio reads on the prefetch thread'
t_grep "every test passed" 'PASSED  \] 4 test'
t_done
