/* collectives/heartbeat.c - see heartbeat.h. */
#include "collectives/heartbeat.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/mpi_check.h"

#define HB_MAGIC 0x64624842u /* "BHbd" */
#define HB_HOST_MAX 64
#define HB_PERIOD_MIN 0.1
#define HB_PERIOD_MAX 1.0
#define HB_PER_RANK_S 0.001

/* One datagram; little-endian on the wire. */
struct hb_wire {
    uint32_t magic;
    uint32_t rank;
    uint64_t cookie;
    uint64_t joined;
    uint64_t reserved;
};

/* What every rank publishes at create. */
struct hb_card {
    uint32_t addr; /* IPv4, network order */
    uint16_t port; /* network order */
    uint16_t pad;
    char host[HB_HOST_MAX];
};

struct hb_peer {
    struct sockaddr_in to;
    char host[HB_HOST_MAX];
    _Atomic uint64_t joined;
    _Atomic int64_t heard_ns; /* monotonic time of its last datagram; 0 = never */
};

struct comm_heartbeat {
    int rank, size;
    int fd;
    int wake[2];              /* a pipe: destroy wakes the thread at once */
    double period;
    uint64_t cookie;
    int64_t start_ns;
    struct hb_peer *peers;    /* [size] */
    _Atomic uint64_t joined;  /* this rank's */
    pthread_t thread;
    int started;
};

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/*
 * The address peers on other nodes reach this rank at: the interface named
 * by DURE_HEARTBEAT_IFNAME, else the first that is up, IPv4 and not
 * loopback; 127.0.0.1 when there is none (a machine alone).
 */
static dure_status_t local_addr(uint32_t *addr)
{
    dure_status_t st = DURE_OK;
    struct ifaddrs *list = NULL;
    const char *want = getenv("DURE_HEARTBEAT_IFNAME");
    *addr = htonl(INADDR_LOOPBACK);
    DURE_SYS_TRY(getifaddrs(&list) == 0, "heartbeat: list the network interfaces");
    for (struct ifaddrs *i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP)) {
            continue;
        }
        if (want && *want ? strcmp(i->ifa_name, want) != 0 : (i->ifa_flags & IFF_LOOPBACK)) {
            continue;
        }
        *addr = ((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr.s_addr;
        goto out;
    }
    DURE_CHECK(!want || !*want, DURE_ERR_ARG,
               "DURE_HEARTBEAT_IFNAME = '%s': no such interface with an IPv4 address that is "
               "up",
               want);
out:
    if (list) {
        freeifaddrs(list);
    }
    return st;
}

static void beat(struct comm_heartbeat *h)
{
    struct hb_wire w = {
        .magic = htole32(HB_MAGIC),
        .rank = htole32((uint32_t)h->rank),
        .cookie = htole64(h->cookie),
        .joined = htole64(atomic_load_explicit(&h->joined, memory_order_relaxed)),
        .reserved = 0,
    };
    for (int r = 0; r < h->size; r++) {
        if (r != h->rank) {
            /* Best effort: a peer that is gone is what we are here to notice. */
            (void)sendto(h->fd, &w, sizeof w, MSG_DONTWAIT, (const struct sockaddr *)&h->peers[r].to,
                         sizeof h->peers[r].to);
        }
    }
}

static void receive(struct comm_heartbeat *h)
{
    struct hb_wire w;
    for (;;) {
        ssize_t n = recv(h->fd, &w, sizeof w, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return;
        }
        uint32_t rank = le32toh(w.rank);
        if ((size_t)n != sizeof w || le32toh(w.magic) != HB_MAGIC ||
            le64toh(w.cookie) != h->cookie || rank >= (uint32_t)h->size) {
            continue;
        }
        struct hb_peer *p = &h->peers[rank];
        uint64_t joined = le64toh(w.joined);
        /* Datagrams may arrive out of order: the newest sequence wins. */
        uint64_t old = atomic_load_explicit(&p->joined, memory_order_relaxed);
        while (joined > old && !atomic_compare_exchange_weak(&p->joined, &old, joined)) {
        }
        atomic_store_explicit(&p->heard_ns, now_ns(), memory_order_release);
    }
}

static void *heartbeat_main(void *arg)
{
    struct comm_heartbeat *h = arg;
    int64_t period = (int64_t)(h->period * 1e9), next = now_ns();
    for (;;) {
        int64_t now = now_ns();
        if (now >= next) {
            beat(h);
            next = next + period > now ? next + period : now + period;
        }
        struct pollfd fds[2] = {{.fd = h->fd, .events = POLLIN}, {.fd = h->wake[0], .events = POLLIN}};
        int wait_ms = (int)((next - now + 999999) / 1000000);
        int n = poll(fds, 2, wait_ms > 0 ? wait_ms : 0);
        if (n > 0 && fds[1].revents) {
            break;
        }
        if (n > 0 && (fds[0].revents & POLLIN)) {
            receive(h);
        }
    }
    return NULL;
}

dure_status_t comm_heartbeat_create(MPI_Comm mpi, double period_s, struct comm_heartbeat **out)
{
    dure_status_t st = DURE_OK, local = DURE_OK;
    struct comm_heartbeat *h = NULL;
    struct hb_card mine, *cards = NULL;
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int worst = 0;

    *out = NULL;
    h = calloc(1, sizeof *h);
    DURE_ALLOC_TRY(h, sizeof *h);
    h->fd = -1;
    h->wake[0] = h->wake[1] = -1;
    DURE_MPI_TRY(MPI_Comm_rank(mpi, &h->rank));
    DURE_MPI_TRY(MPI_Comm_size(mpi, &h->size));
    h->period = period_s < HB_PERIOD_MIN ? HB_PERIOD_MIN
                : period_s > HB_PERIOD_MAX ? HB_PERIOD_MAX
                                           : period_s;
    if (h->period < HB_PER_RANK_S * h->size) {
        h->period = HB_PER_RANK_S * h->size;
    }
    h->peers = calloc((size_t)h->size, sizeof *h->peers);
    cards = calloc((size_t)h->size, sizeof *cards);
    memset(&mine, 0, sizeof mine);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (!h->peers || !cards) {
        local = DURE_ERR_NOMEM;
        dure_log_error(__FILE__, __LINE__, "heartbeat: out of memory for %d peers", h->size);
    } else if ((h->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
               bind(h->fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
               getsockname(h->fd, (struct sockaddr *)&sa, &len) != 0 ||
               pipe2(h->wake, O_CLOEXEC) != 0) {
        local = DURE_ERR_IO;
        dure_log_syserr(__FILE__, __LINE__, "heartbeat: open a UDP socket");
    } else {
        local = local_addr(&mine.addr);
    }
    mine.port = sa.sin_port;
    int name_len = 0;
    char name[MPI_MAX_PROCESSOR_NAME];
    DURE_MPI_TRY(MPI_Get_processor_name(name, &name_len));
    /* Host names longer than HB_HOST_MAX - 1 are cut: they only label reports. */
    size_t host_len = strnlen(name, sizeof mine.host - 1);
    memcpy(mine.host, name, host_len);
    mine.host[host_len] = '\0';
    DURE_MPI_TRY(MPI_Allreduce(&local, &worst, 1, MPI_INT, MPI_MAX, mpi));
    DURE_TRY((dure_status_t)worst);

    DURE_MPI_TRY(MPI_Allgather(&mine, (int)sizeof mine, MPI_BYTE, cards, (int)sizeof mine,
                               MPI_BYTE, mpi));
    if (h->rank == 0 && getrandom(&h->cookie, sizeof h->cookie, 0) != (ssize_t)sizeof h->cookie) {
        h->cookie = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
    }
    DURE_MPI_TRY(MPI_Bcast(&h->cookie, 1, MPI_UINT64_T, 0, mpi));
    h->start_ns = now_ns();
    for (int r = 0; r < h->size; r++) {
        struct hb_peer *p = &h->peers[r];
        p->to.sin_family = AF_INET;
        p->to.sin_port = cards[r].port;
        /* The same advertised address is the same node: use loopback there. */
        p->to.sin_addr.s_addr =
            cards[r].addr == mine.addr ? htonl(INADDR_LOOPBACK) : cards[r].addr;
        memcpy(p->host, cards[r].host, HB_HOST_MAX);
        p->host[HB_HOST_MAX - 1] = '\0';
        atomic_init(&p->joined, 0);
        atomic_init(&p->heard_ns, 0);
    }
    atomic_init(&h->joined, 0);
    local = pthread_create(&h->thread, NULL, heartbeat_main, h) == 0 ? DURE_OK
                                                                      : DURE_ERR_INTERNAL;
    if (local != DURE_OK) {
        dure_log_error(__FILE__, __LINE__, "heartbeat: cannot start its thread");
    }
    h->started = local == DURE_OK;
    DURE_MPI_TRY(MPI_Allreduce(&local, &worst, 1, MPI_INT, MPI_MAX, mpi));
    DURE_TRY((dure_status_t)worst);
    *out = h;
    h = NULL;
out:
    free(cards);
    comm_heartbeat_destroy(h);
    return st;
}

void comm_heartbeat_joined(struct comm_heartbeat *h, uint64_t seq)
{
    if (h) {
        atomic_store_explicit(&h->joined, seq, memory_order_relaxed);
    }
}

void comm_heartbeat_peer(struct comm_heartbeat *h, int rank, struct comm_peer *out)
{
    struct hb_peer *p = &h->peers[rank];
    int64_t heard = atomic_load_explicit(&p->heard_ns, memory_order_acquire);
    out->host = p->host;
    if (rank == h->rank) {
        out->joined = atomic_load_explicit(&h->joined, memory_order_relaxed);
        out->silent_s = 0;
        out->heard = 1;
        return;
    }
    out->joined = atomic_load_explicit(&p->joined, memory_order_relaxed);
    out->heard = heard != 0;
    out->silent_s = (double)(now_ns() - (heard ? heard : h->start_ns)) * 1e-9;
}

double comm_heartbeat_period(const struct comm_heartbeat *h)
{
    return h->period;
}

void comm_heartbeat_destroy(struct comm_heartbeat *h)
{
    if (!h) {
        return;
    }
    if (h->started) {
        ssize_t w = write(h->wake[1], "x", 1);
        (void)w;
        pthread_join(h->thread, NULL);
    }
    for (int i = 0; i < 2; i++) {
        if (h->wake[i] >= 0) {
            close(h->wake[i]);
        }
    }
    if (h->fd >= 0) {
        close(h->fd);
    }
    free(h->peers);
    free(h);
}
