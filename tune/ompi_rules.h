/*
 * tune/ompi_rules.h - Open MPI's coll_tuned dynamic rules file (the classic
 * format that the Open MPI 4.1 series reads): its collective IDs and
 * algorithm numbers, a writer, a strict parser and the lookup Open MPI does.
 *
 * The file is a stream of decimal integers; `#` starts a comment to the end
 * of the line. Open MPI 4.1 (ompi/mca/coll/tuned/coll_tuned_dynamic_file.c)
 * reads, in order:
 *
 *   NCOLL                              collectives that follow
 *   per collective:  ID NCOMM          ID from coll_base_functions.h (ALLREDUCE = 2)
 *     per comm size: SIZE NMSG         rules for communicators of >= SIZE ranks
 *       per message: BYTES ALG FANINOUT SEGSIZE
 *                                      from BYTES up (the first must be 0) use
 *                                      algorithm ALG (0 = Open MPI's own choice)
 *
 * Lookup (ompi_coll_tuned_get_com_rule_ptr, _get_target_method_params): the
 * last communicator rule whose SIZE <= the communicator's size (the first
 * rule when none is), then the last message rule whose BYTES <= the message
 * size. Algorithm 0 falls back to Open MPI's fixed decision. Open MPI gives
 * no message for a bad file unless built with debugging: it silently uses
 * its defaults. This parser names the file, line and field instead.
 *
 * The message size is the call's total bytes for allreduce, reduce_scatter,
 * allgather and bcast (nccl-tests' size column).
 *
 * dure's native all-gather calls MPI_Allgather when every rank's piece is
 * the same size (the sweep's sizes are), MPI_Allgatherv otherwise. Open MPI
 * 4.1 lets its allgather algorithm be forced per communicator but not
 * allgatherv's (its parameter has constant scope), so dure tunes allgather.
 */
#ifndef DURE_TUNE_OMPI_RULES_H
#define DURE_TUNE_OMPI_RULES_H

#include <stddef.h>

#include "collectives/comm.h"
#include "common/status.h"

/* Open MPI 4.1's COLLCOUNT: collective IDs are below it. */
#define TUNE_OMPI_COLLCOUNT 22
/* Rows (message rules) a rules set holds at most. */
#define TUNE_OMPI_RULES_MAX 1024

/* An Open MPI collective that dure's native algorithm calls. */
struct tune_ompi_coll {
    enum comm_coll coll;        /* the dure collective whose native path calls it */
    int id;                     /* Open MPI 4.1 COLLTYPE */
    const char *name;           /* Open MPI's name: "allreduce", "allgather", ... */
    const char *cvar;           /* its forcing parameter: "coll_tuned_allreduce_algorithm" */
    int nalgos;                 /* algorithm numbers 0 .. nalgos-1 */
    const char *const *algos;   /* their names in Open MPI 4.1 ([0] = "ignore") */
};

/* The Open MPI collective behind dure's native `coll` (all-reduce:
 * MPI_Allreduce, reduce-scatter: MPI_Reduce_scatter, all-gather with equal
 * pieces: MPI_Allgather, broadcast: MPI_Bcast); NULL for others. */
const struct tune_ompi_coll *tune_ompi_coll_of(enum comm_coll coll);
/* By Open MPI collective ID; NULL when dure does not use it. */
const struct tune_ompi_coll *tune_ompi_coll_by_id(int id);
/* "ring" for (allreduce, 4); NULL for numbers Open MPI 4.1 does not have. */
const char *tune_ompi_algo_name(const struct tune_ompi_coll *c, int alg);

/* One message rule: collective id, communicator size, from min_bytes up. */
struct tune_ompi_rule {
    int coll_id;
    int comm_size;
    size_t min_bytes;
    int alg, faninout, segsize;
    int line;                   /* where the parser found it (0 when built) */
};

/*
 * A rules set: rows grouped by collective (in file order), then by
 * communicator size (ascending), then by min_bytes (ascending, from 0).
 */
struct tune_ompi_rules {
    int n;
    struct tune_ompi_rule r[TUNE_OMPI_RULES_MAX];
};

/* Append a row; DURE_ERR_ARG when the set is full. Order as above is the
 * caller's (tune_ompi_rules_check verifies it). */
dure_status_t tune_ompi_rules_add(struct tune_ompi_rules *rs, int coll_id, int comm_size,
                                  size_t min_bytes, int alg);

/* The grouping and ordering rules above, and Open MPI's own limits;
 * DURE_ERR_FORMAT naming `what` (a file name), the row's line and the fault. */
dure_status_t tune_ompi_rules_check(const struct tune_ompi_rules *rs, const char *what);

/*
 * Write rs to path in the classic format (atomically: a temporary file
 * renamed over path), with `comment` (lines without '#', may be NULL) as a
 * header and each row annotated with its algorithm's name.
 */
dure_status_t tune_ompi_rules_write(const struct tune_ompi_rules *rs, const char *comment,
                                    const char *path);

/*
 * Parse a rules file. DURE_ERR_IO when it cannot be read; DURE_ERR_FORMAT
 * naming "FILE:LINE", the field (collective id, message size, algorithm,
 * ...) and what was found, for anything Open MPI 4.1 would reject or
 * misread (a word, a negative or non-decimal number such as 010, which it
 * reads as octal 8; a first message size other than 0; unsorted sizes; an
 * algorithm Open MPI does not have for a collective dure knows).
 */
dure_status_t tune_ompi_rules_parse(const char *path, struct tune_ompi_rules *rs);

/* The algorithm Open MPI 4.1 takes from rs for this call (0 = its own
 * choice, also when rs has no rule for the collective). */
int tune_ompi_rules_pick(const struct tune_ompi_rules *rs, int coll_id, int comm_size,
                         size_t msg_bytes);

#endif
