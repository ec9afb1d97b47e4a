/*
 * tune/ompi_fixed.h - Open MPI 4.1's fixed decision: the algorithm coll_tuned
 * runs when nothing is forced and no rule applies (algorithm 0, "ignore",
 * in a rules file or an MPI_T forcing parameter).
 *
 * dure tune measures algorithm 0 as the default and every numbered
 * algorithm beside it; where the fixed decision itself picks algorithm K, K
 * and the default are the same configuration (a rules file's K with fan-out
 * and segment size 0 is exactly the call the fixed decision makes), so
 * choosing K there changes nothing and its timing against the default is
 * an A/A measurement: on 2 ranks Open MPI 4.1 runs two_proc for every
 * all-gather, and binary_tree for broadcasts from 1 MiB.
 *
 * The switch points are those of ompi/mca/coll/tuned/
 * coll_tuned_decision_fixed.c in the v4.1.x series (the "new default fixed
 * decision functions" of Open MPI 4.1.0), for commutative operations, the
 * only ones dure's native path asks for (sum; average is a sum divided
 * afterwards).
 */
#ifndef DURE_TUNE_OMPI_FIXED_H
#define DURE_TUNE_OMPI_FIXED_H

#include <stddef.h>

/*
 * The algorithm number Open MPI 4.1's fixed decision runs for collective
 * coll_id (tune_ompi_coll: allreduce 2, reduce_scatter 12, allgather 0,
 * bcast 7) on comm_size ranks, for dure's native call of a message of
 * msg_bytes (the whole vector, nccl-tests' size). All-gather decides on the
 * call's send count (one rank's piece), which dure passes in place too. 0
 * for a collective it does not know, and for every call when the Open MPI
 * this process runs is not of the 4.1 series (then no numbered algorithm is
 * taken for the default).
 */
int tune_ompi_fixed_pick(int coll_id, int comm_size, size_t msg_bytes);

/*
 * 1 when Open MPI algorithm alg of collective coll_id is what Open MPI runs
 * anyway for dure's call of msg_bytes on comm_size ranks: algorithm 0
 * ("ignore"), or the one the fixed decision picks for that call (dure's
 * native calls are in place). Choosing it changes nothing.
 */
int tune_ompi_is_default(int coll_id, int comm_size, size_t msg_bytes, int alg);

#endif
