/*
 * collectives/mpi_algos.h - the mpi backend's algorithms (internal).
 *
 * Each algorithm owns buffers sized once at creation and reused by every
 * call, whatever the message size: messages are processed in rounds of
 * fixed-size sub-pieces (round k covers elements [k*P, (k+1)*P) of every
 * rank's piece, comm_op_piece). Every rank runs the same rounds in the same
 * order, which is also what fixes the reduction order.
 */
#ifndef DURE_COLLECTIVES_MPI_ALGOS_H
#define DURE_COLLECTIVES_MPI_ALGOS_H

#include "collectives/backend.h"

/*
 * Wait for reqs[n], polling the watchdog's cancel flag (DURE_ERR_TIMEOUT
 * naming `who` when it is raised): MPI_Testall in a loop for spin_ns
 * (comm_config.spin_ns: COMM_SPIN_NS, or COMM_SPIN_OWN_CORE_NS when the
 * waiting thread has a core of its own), then between tests sleeps growing
 * to 100 us, so a wait for a peer that is still computing leaves the core to
 * this rank's compute thread (see collectives/shm.c). The ring's, hier's and
 * the exact reduce-scatter's point-to-point waits.
 */
dure_status_t comm_mpi_wait(MPI_Request *reqs, int n, long spin_ns, const atomic_int *cancel,
                            const char *who);

/* Exact reduce-scatter (collectives/tree.h) over MPI point-to-point
 * (collectives/tree_mpi.c). */
dure_status_t comm_tree_mpi_run(MPI_Comm mpi, int rank, int size, long spin_ns,
                                const atomic_int *cancel, const struct comm_op *op);

/* MPI's own collectives (MPI_Allreduce, MPI_Reduce_scatter, ...). */
struct comm_native;
dure_status_t comm_native_create(const struct comm_backend_args *a, struct comm_native **out);
void comm_native_destroy(struct comm_native *n);
dure_status_t comm_native_run(struct comm_native *n, const struct comm_op *op);

/* Segmented, pipelined ring over MPI point-to-point (collectives/ring.c). */
struct comm_ring;
dure_status_t comm_ring_create(const struct comm_backend_args *a, struct comm_ring **out);
void comm_ring_destroy(struct comm_ring *r);
dure_status_t comm_ring_run(struct comm_ring *r, const struct comm_op *op);

/* MPI-3 shared-window path for ranks on one node (collectives/shm.c). */
struct comm_shm;
dure_status_t comm_shm_create(const struct comm_backend_args *a, struct comm_shm **out);
void comm_shm_destroy(struct comm_shm *s);
dure_status_t comm_shm_run(struct comm_shm *s, const struct comm_op *op);
/* Registered memory (collective over the comm): a shared window of its own
 * whose buffers the direct path reads in place. free returns 0 when p is
 * not a registered region's base. */
dure_status_t comm_shm_mem_alloc(struct comm_shm *s, size_t bytes, void **p);
int comm_shm_mem_free(struct comm_shm *s, void *p);

/*
 * Hierarchical collectives for communicators over several nodes
 * (collectives/hier.c): shm within each node, a rail of equal local ranks
 * between nodes. Needs every node to hold local_size ranks in blocks
 * (comm_hier_placement). Handles all-reduce, and reduce-scatter and
 * all-gather in place (comm_hier_handles); the rest is the flat ring's.
 */
struct comm_hier;
/* Its node's shm (registered memory for comm_mem_alloc), or NULL (one rank per node). */
struct comm_shm *comm_hier_shm(struct comm_hier *h);
/* *uniform = 1 when every node of `mpi` holds local_size ranks and node b
 * holds ranks b*local_size .. (b+1)*local_size-1 (collective). */
dure_status_t comm_hier_placement(MPI_Comm mpi, int rank, int local_rank, int local_size,
                                  int *uniform);
dure_status_t comm_hier_create(const struct comm_backend_args *a, struct comm_hier **out);
void comm_hier_destroy(struct comm_hier *h);
int comm_hier_handles(const struct comm_hier *h, const struct comm_op *op);
dure_status_t comm_hier_run(struct comm_hier *h, const struct comm_op *op);

#endif
