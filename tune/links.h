/*
 * tune/links.h - point-to-point bandwidth between every pair of nodes: the
 * first rank of each node (its leader) ping-pongs with every other leader,
 * one pair per leader at a time (round-robin rounds), so each link is
 * measured alone. The slow link of a fabric shows here by host name
 * (tune/health.h judges it).
 *
 * Testing without several nodes: DURE_TUNE_RANK_AS_NODE=1 treats every rank
 * as a node of its own (named HOST:RANK); DURE_TUNE_SLOW_LINK=A:B makes
 * rank A wait 2 ms in every exchange with rank B (fault injection).
 */
#ifndef DURE_TUNE_LINKS_H
#define DURE_TUNE_LINKS_H

#include <mpi.h>

#include "tune/tune.h"

/*
 * Collective over `world`. Measures every leader pair with `bytes` messages
 * (reps exchanges each, the median kept) and appends them to r on rank 0
 * (other ranks add nothing). With one node, nothing is measured.
 */
dure_status_t tune_links_measure(MPI_Comm world, size_t bytes, int reps, struct tune_result *r);

#endif
