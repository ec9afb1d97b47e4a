/*
 * collectives/heartbeat.h - the side channel of the hang watchdog (internal).
 *
 * Every rank of a communicator owns one UDP socket and one thread that,
 * every period, sends a 32-byte datagram to every other rank: its rank, the
 * sequence number of the collective it last began, and a cookie of the
 * communicator (so that stray datagrams of another job are dropped). The
 * same thread receives the peers' datagrams and records, per rank, the
 * newest sequence number and when it was last heard. None of it goes
 * through MPI: when a collective is stuck because a peer died, was stopped,
 * or lost its link, the side channel still tells the survivors who has not
 * joined and who has gone silent, and the watchdog names those ranks and
 * their hosts.
 *
 * Addresses. Ranks on one node (MPI_COMM_TYPE_SHARED) talk over 127.0.0.1;
 * across nodes each rank advertises the first IPv4 address of an interface
 * that is up and not loopback, or of the interface DURE_HEARTBEAT_IFNAME
 * names (as NCCL_SOCKET_IFNAME does for NCCL). The UDP ports are ephemeral:
 * a firewall between nodes must let them through, as for MPI's TCP.
 *
 * Cost. One datagram per peer per period: the period is the watchdog
 * timeout / 10, within [0.1 s, 1 s], and at least 1 ms per rank in the
 * communicator, so no rank sends more than about 1000 datagrams a second
 * however large the job (at 16,384 ranks a peer is heard every 16 s; keep
 * watchdog_s above 3 periods).
 */
#ifndef DURE_COLLECTIVES_HEARTBEAT_H
#define DURE_COLLECTIVES_HEARTBEAT_H

#include <mpi.h>
#include <stdint.h>

#include "common/status.h"

struct comm_heartbeat;

/* What this rank knows of a peer. */
struct comm_peer {
    const char *host;  /* its host name (MPI_Get_processor_name), owned by the heartbeat */
    uint64_t joined;   /* the newest collective it has begun, as last heard */
    double silent_s;   /* seconds since it was last heard (since start if never) */
    int heard;         /* 1 once a datagram of it arrived */
};

/*
 * Exchange addresses and host names (collective over mpi) and start the
 * thread, beating every period_s seconds (raised to 1 ms per rank). The
 * same status on every rank.
 */
dure_status_t comm_heartbeat_create(MPI_Comm mpi, double period_s,
                                    struct comm_heartbeat **out);

/* This rank has begun collective `seq`: sent with the next beats. Cheap. */
void comm_heartbeat_joined(struct comm_heartbeat *h, uint64_t seq);

/* What is known of `rank` now (this rank too: itself, never silent). */
void comm_heartbeat_peer(struct comm_heartbeat *h, int rank, struct comm_peer *out);

/* The period in use, in seconds: a peer silent for several is not running. */
double comm_heartbeat_period(const struct comm_heartbeat *h);

/* Stop the thread, close the socket, free. Local: peers may be gone. NULL
 * is a no-op. */
void comm_heartbeat_destroy(struct comm_heartbeat *h);

#endif
