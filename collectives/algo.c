/* collectives/algo.c - names, parsers, the per-size algorithm table, and the
 * shard layout and op addressing every backend uses. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/backend.h"
#include "collectives/comm.h"

static const char *const backend_names[] = {
    [COMM_BACKEND_AUTO] = "auto",
    [COMM_BACKEND_NCCL] = "nccl",
    [COMM_BACKEND_MPI] = "mpi",
};

static const char *const algo_names[COMM_ALGO_COUNT] = {
    [COMM_ALGO_AUTO] = "auto",
    [COMM_ALGO_NATIVE] = "native",
    [COMM_ALGO_RING] = "ring",
    [COMM_ALGO_SHM] = "shm",
    [COMM_ALGO_HIER] = "hier",
};

static const char *const coll_names[COMM_COLL_COUNT] = {
    [COMM_ALLREDUCE] = "all-reduce",
    [COMM_REDUCE_SCATTER] = "reduce-scatter",
    [COMM_ALLGATHER] = "all-gather",
    [COMM_BROADCAST] = "broadcast",
    [COMM_BARRIER] = "barrier",
    [COMM_TREE_REDUCE_SCATTER] = "exact reduce-scatter",
};

const char *comm_backend_name(enum comm_backend b)
{
    return (unsigned)b <= COMM_BACKEND_MPI ? backend_names[b] : "?";
}

const char *comm_algo_name(enum comm_algo a)
{
    return (unsigned)a < COMM_ALGO_COUNT ? algo_names[a] : "?";
}

const char *comm_coll_name(enum comm_coll c)
{
    return (unsigned)c < COMM_COLL_COUNT ? coll_names[c] : "?";
}

size_t comm_dtype_size(enum comm_dtype dt)
{
    return dt == COMM_BF16 ? 2 : dt == COMM_F64 ? 8 : 4;
}

MPI_Datatype comm_dtype_mpi(enum comm_dtype dt)
{
    return dt == COMM_F64 ? MPI_DOUBLE : MPI_FLOAT;
}

const char *comm_dtype_name(enum comm_dtype dt)
{
    return dt == COMM_BF16 ? "bf16" : dt == COMM_F64 ? "float64" : "float32";
}

dure_status_t comm_backend_parse(const char *s, enum comm_backend *out)
{
    dure_status_t st = DURE_OK;
    for (int b = COMM_BACKEND_AUTO; b <= COMM_BACKEND_MPI; b++) {
        if (s && strcmp(s, backend_names[b]) == 0) {
            *out = (enum comm_backend)b;
            goto out;
        }
    }
    DURE_FAIL(DURE_ERR_ARG, "backend '%s' is not one of auto, nccl, mpi", s ? s : "(null)");
out:
    return st;
}

dure_status_t comm_algo_parse(const char *s, enum comm_algo *out)
{
    dure_status_t st = DURE_OK;
    for (int a = 0; a < COMM_ALGO_COUNT; a++) {
        if (s && strcmp(s, algo_names[a]) == 0) {
            *out = (enum comm_algo)a;
            goto out;
        }
    }
    DURE_FAIL(DURE_ERR_ARG, "algo '%s' is not one of auto, native, ring, shm, hier",
              s ? s : "(null)");
out:
    return st;
}

/* "4096", "64K", "1M", "2G" (binary multiples) into *bytes; 0 on success. */
static int parse_size(const char *s, size_t len, size_t *bytes)
{
    char buf[32];
    char *end = NULL;
    if (len == 0 || len >= sizeof buf) {
        return -1;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (!isdigit((unsigned char)buf[0])) {
        return -1;
    }
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno != 0) {
        return -1;
    }
    unsigned shift = 0;
    switch (*end) {
    case '\0':
        break;
    case 'k': case 'K':
        shift = 10; end++;
        break;
    case 'm': case 'M':
        shift = 20; end++;
        break;
    case 'g': case 'G':
        shift = 30; end++;
        break;
    default:
        return -1;
    }
    if (*end != '\0' || (shift && v > (~0ULL >> shift))) {
        return -1;
    }
    *bytes = (size_t)(v << shift);
    return 0;
}

int comm_parse_bytes(const char *s, size_t *bytes)
{
    return s ? parse_size(s, strlen(s), bytes) : -1;
}

dure_status_t comm_algo_table_parse(const char *s, struct comm_algo_table *t)
{
    dure_status_t st = DURE_OK;
    struct comm_algo_table tmp = {0};
    const char *p = s;

    DURE_CHECK(s && *s, DURE_ERR_ARG, "algo_table is empty");
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *colon = memchr(p, ':', n);
        char algo[16];
        size_t bytes = 0;
        enum comm_algo a = COMM_ALGO_AUTO;

        DURE_CHECK(colon, DURE_ERR_ARG,
                   "algo_table entry '%.*s' is not SIZE:ALGO (e.g. \"0:native,1M:shm\")",
                   (int)n, p);
        DURE_CHECK(parse_size(p, (size_t)(colon - p), &bytes) == 0, DURE_ERR_ARG,
                   "algo_table entry '%.*s': '%.*s' is not a size (bytes, or K/M/G)", (int)n,
                   p, (int)(colon - p), p);
        size_t alen = n - (size_t)(colon + 1 - p);
        DURE_CHECK(alen > 0 && alen < sizeof algo, DURE_ERR_ARG,
                   "algo_table entry '%.*s' names no algorithm", (int)n, p);
        memcpy(algo, colon + 1, alen);
        algo[alen] = '\0';
        for (int k = 0; k < COMM_ALGO_COUNT; k++) {
            if (strcmp(algo, algo_names[k]) == 0) {
                a = (enum comm_algo)k;
            }
        }
        DURE_CHECK(a != COMM_ALGO_AUTO, DURE_ERR_ARG,
                   "algo_table entry '%.*s': algorithm '%s' is not one of native, ring, shm, "
                   "hier",
                   (int)n, p, algo);
        DURE_CHECK(tmp.n < COMM_ALGO_TABLE_MAX, DURE_ERR_ARG,
                   "algo_table has more than %d entries", COMM_ALGO_TABLE_MAX);
        DURE_CHECK(tmp.n > 0 || bytes == 0, DURE_ERR_ARG,
                   "algo_table must start at size 0, not '%.*s'", (int)n, p);
        DURE_CHECK(tmp.n == 0 || bytes > tmp.entry[tmp.n - 1].min_bytes, DURE_ERR_ARG,
                   "algo_table entry '%.*s' is not larger than the one before it", (int)n, p);
        tmp.entry[tmp.n].min_bytes = bytes;
        tmp.entry[tmp.n].algo = a;
        tmp.n++;
        p += n;
        if (*p == ',') {
            p++;
            DURE_CHECK(*p, DURE_ERR_ARG, "algo_table '%s' ends with a comma", s);
        }
    }
    *t = tmp;
out:
    return st;
}

void comm_format_bytes(size_t b, char *buf, size_t len)
{
    if (b >= (1u << 30) && b % (1u << 30) == 0) {
        snprintf(buf, len, "%zuG", b >> 30);
    } else if (b >= (1u << 20) && b % (1u << 20) == 0) {
        snprintf(buf, len, "%zuM", b >> 20);
    } else if (b >= (1u << 10) && b % (1u << 10) == 0) {
        snprintf(buf, len, "%zuK", b >> 10);
    } else {
        snprintf(buf, len, "%zu", b);
    }
}

void comm_algo_table_format(const struct comm_algo_table *t, char *buf, size_t len)
{
    size_t used = 0;
    if (len == 0) {
        return;
    }
    buf[0] = '\0';
    for (int i = 0; i < t->n && used < len; i++) {
        char sz[32];
        comm_format_bytes(t->entry[i].min_bytes, sz, sizeof sz);
        int w = snprintf(buf + used, len - used, "%s%s:%s", i ? "," : "", sz,
                         comm_algo_name(t->entry[i].algo));
        if (w < 0) {
            break;
        }
        used += (size_t)w;
    }
}

enum comm_algo comm_algo_table_pick(const struct comm_algo_table *t, size_t bytes)
{
    enum comm_algo a = t->n > 0 ? t->entry[0].algo : COMM_ALGO_NATIVE;
    for (int i = 1; i < t->n; i++) {
        if (bytes >= t->entry[i].min_bytes) {
            a = t->entry[i].algo;
        }
    }
    return a;
}

const struct comm_algo_table *comm_algo_table_builtin(int nodes, int ranks_per_node)
{
    static const struct comm_algo_table node = {
        .n = 1,
        .entry = {{0, COMM_ALGO_SHM}},
    };
    static const struct comm_algo_table hier = {
        .n = 1,
        .entry = {{0, COMM_ALGO_HIER}},
    };
    static const struct comm_algo_table irregular = {
        .n = 2,
        .entry = {{0, COMM_ALGO_NATIVE}, {1u << 20, COMM_ALGO_RING}},
    };
    if (nodes <= 1) {
        return &node;
    }
    return ranks_per_node > 0 ? &hier : &irregular;
}

/* ---------------------------------------------------------------- layout */

const void *comm_op_send_at(const struct comm_op *op, size_t i)
{
    ptrdiff_t d = ((ptrdiff_t)i - (ptrdiff_t)op->send_first) * (ptrdiff_t)comm_dtype_size(op->dtype);
    return (const char *)op->send + d;
}

void *comm_op_recv_at(const struct comm_op *op, size_t i)
{
    ptrdiff_t d = ((ptrdiff_t)i - (ptrdiff_t)op->recv_first) * (ptrdiff_t)comm_dtype_size(op->dtype);
    return (char *)op->recv + d;
}

int comm_op_in_place(const struct comm_op *op, size_t i)
{
    return comm_op_send_at(op, i) == (const void *)comm_op_recv_at(op, i);
}

struct comm_shard comm_shard_of(size_t n, int size, int rank)
{
    struct comm_shard s = {0, 0};
    if (size <= 0 || rank < 0 || rank >= size) {
        return s;
    }
    size_t chunk = n / (size_t)size + (n % (size_t)size != 0);
    size_t off = chunk * (size_t)rank;
    s.offset = off < n ? off : n;
    s.count = n - s.offset < chunk ? n - s.offset : chunk;
    return s;
}

struct comm_shard comm_range_part(size_t total, int size, int rank, size_t offset,
                                  size_t count)
{
    struct comm_shard p, sh = comm_shard_of(total, size, rank);
    size_t lo = sh.offset > offset ? sh.offset : offset;
    size_t end = offset + count;
    size_t hi = sh.offset + sh.count < end ? sh.offset + sh.count : end;
    p.offset = lo < end ? lo : end;
    p.count = hi > lo ? hi - lo : 0;
    return p;
}

struct comm_shard comm_op_piece(const struct comm_op *op, int size, int r)
{
    struct comm_shard p;
    if (op->pieces) {
        return op->pieces[r];
    }
    if (op->coll == COMM_REDUCE_SCATTER || op->coll == COMM_ALLGATHER ||
        op->coll == COMM_TREE_REDUCE_SCATTER) {
        return comm_range_part(op->total, size, r, op->offset, op->count);
    }
    p = comm_shard_of(op->count, size, r);
    p.offset += op->offset;
    return p;
}
