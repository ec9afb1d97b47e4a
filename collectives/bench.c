/*
 * collectives/bench.c - the collectives of `dure bench`, one struct each,
 * and the harness that measures them (see bench.h). The report (table,
 * JSON, plot) is in bench_report.c.
 */
#include "collectives/bench.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mpi_check.h"
#include "common/timing.h"

/* ---------------------------------------------------------------- the data */

/* Small integers in [-8, 8]: sums over ranks are exact in float and
 * bfloat16 (up to 32 ranks), so an exact comparison finds any misplaced
 * element. */
static float pattern(int rank, size_t i)
{
    return (float)((long)((i * 7 + (size_t)rank * 13) % 17) - 8);
}

static void init_pattern(const struct bench_args *a, const struct bench_counts *c, float *in)
{
    for (size_t k = 0; k < c->in_count; k++) {
        in[k] = pattern(a->rank, c->in_first + k);
    }
}

static float expected_reduced(const struct bench_args *a, size_t total, size_t i)
{
    (void)total;
    float s = 0;
    for (int r = 0; r < a->nranks; r++) {
        s += pattern(r, i);
    }
    return a->op == COMM_AVG ? s / (float)a->nranks : s;
}

/* ---------------------------------------------------------------- the collectives */

static double factor_allreduce(int n) { return 2.0 * (n - 1) / n; }
static double factor_gather(int n) { return (double)(n - 1) / n; }
static double factor_one(int n) { (void)n; return 1.0; }

/* The whole vector in, the whole vector out (all-reduce, broadcast). */
static void counts_whole(const struct bench_args *a, size_t total, struct bench_counts *c)
{
    (void)a;
    *c = (struct bench_counts){.in_count = total, .out_count = total};
}

static dure_status_t run_allreduce(comm_t *c, const struct bench_args *a, const void *send,
                                   void *recv, size_t total)
{
    return comm_allreduce(c, send, recv, total, a->dtype, a->op);
}

/* Reduce-scatter: the whole vector in, this rank's shard out. */
static void counts_reduce_scatter(const struct bench_args *a, size_t total,
                                  struct bench_counts *c)
{
    struct comm_shard sh = comm_shard_of(total, a->nranks, a->rank);
    *c = (struct bench_counts){.in_count = total, .out_count = sh.count,
                               .out_first = sh.offset, .in_place_out = sh.offset};
}

static dure_status_t run_reduce_scatter(comm_t *c, const struct bench_args *a, const void *send,
                                        void *recv, size_t total)
{
    return comm_reduce_scatter(c, send, recv, total, a->dtype, a->op);
}

/* All-gather: this rank's shard in, the whole vector out. */
static void counts_allgather(const struct bench_args *a, size_t total, struct bench_counts *c)
{
    struct comm_shard sh = comm_shard_of(total, a->nranks, a->rank);
    *c = (struct bench_counts){.in_count = sh.count, .out_count = total,
                               .in_first = sh.offset, .in_place_in = sh.offset};
}

static float expected_allgather(const struct bench_args *a, size_t total, size_t i)
{
    size_t chunk = comm_shard_of(total, a->nranks, 0).count;
    return pattern((int)(i / chunk), i);
}

static dure_status_t run_allgather(comm_t *c, const struct bench_args *a, const void *send,
                                   void *recv, size_t total)
{
    return comm_allgather(c, send, recv, total, a->dtype);
}

static float expected_broadcast(const struct bench_args *a, size_t total, size_t i)
{
    (void)total;
    return pattern(a->root, i);
}

static dure_status_t run_broadcast(comm_t *c, const struct bench_args *a, const void *send,
                                   void *recv, size_t total)
{
    return comm_broadcast(c, send, recv, total, a->dtype, a->root);
}

const struct bench_coll bench_colls[] = {
    {.name = "allreduce", .coll = COMM_ALLREDUCE, .reduces = 1,
     .bus_factor = factor_allreduce, .counts = counts_whole, .init = init_pattern,
     .expected = expected_reduced, .run = run_allreduce},
    {.name = "reducescatter", .coll = COMM_REDUCE_SCATTER, .reduces = 1, .per_rank_count = 1,
     .bus_factor = factor_gather, .counts = counts_reduce_scatter, .init = init_pattern,
     .expected = expected_reduced, .run = run_reduce_scatter},
    {.name = "allgather", .coll = COMM_ALLGATHER, .per_rank_count = 1,
     .bus_factor = factor_gather, .counts = counts_allgather, .init = init_pattern,
     .expected = expected_allgather, .run = run_allgather},
    {.name = "broadcast", .coll = COMM_BROADCAST, .bus_factor = factor_one,
     .counts = counts_whole, .init = init_pattern, .expected = expected_broadcast,
     .run = run_broadcast},
    {.name = NULL},
};

const struct bench_coll *bench_coll_find(const char *name)
{
    for (const struct bench_coll *c = bench_colls; c->name; c++) {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

void bench_spec_default(struct bench_spec *s, const struct bench_coll *coll)
{
    *s = (struct bench_spec){.coll = coll, .dtype = COMM_F32, .op = COMM_SUM, .iters = 20,
                             .warmup = 5, .reps = 5, .passes = 1, .check = 1,
                             .faults = {.corrupt_rank = -1, .stall_rank = -1, .kill_rank = -1}};
}

size_t bench_total_for(const struct bench_spec *s, int nranks, size_t bytes)
{
    size_t total = bytes / comm_dtype_size(s->dtype);
    if (s->coll->per_rank_count) {
        total = total / (4 * (size_t)nranks) * 4 * (size_t)nranks;
    }
    return total;
}

/* ---------------------------------------------------------------- buffers */

/* send and recv of the largest message, in the memory a variant uses. */
struct bufset {
    comm_t *comm;
    int heap;
    void *send, *recv;
};

struct harness {
    MPI_Comm mpi;
    const struct bench_spec *s;
    struct bench_args args;
    size_t es;
    size_t max_total;
    struct bufset sets[BENCH_MAX_VARIANTS];
    int nsets;
    int set_of[BENCH_MAX_VARIANTS];   /* variant -> index into sets */
    float *host;                      /* [max_total] staging for init and checks */
    uint16_t *host16;                 /* [max_total] bf16 staging */
    void *copy_src, *copy_dst;        /* [max_bytes] host: the memcpy peer's */
    int copy_owned;                   /* copy_src/dst are the harness's own */
};

static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7fff + ((u >> 16) & 1); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

static float from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Page-aligned heap memory, as an ordinary MPI program has. */
static dure_status_t heap_alloc(size_t bytes, void **p)
{
    dure_status_t st = DURE_OK;
    size_t rounded = (bytes + 4095) & ~(size_t)4095;
    *p = aligned_alloc(4096, rounded ? rounded : 4096);
    DURE_ALLOC_TRY(*p, rounded);
out:
    return st;
}

/* host[0..n) into dst (the comm's memory), converted to the data type. */
static dure_status_t upload(struct harness *h, comm_t *c, void *dst, size_t n)
{
    if (h->s->dtype == COMM_BF16) {
        for (size_t i = 0; i < n; i++) {
            h->host16[i] = to_bf16(h->host[i]);
        }
        return comm_mem_upload(c, dst, h->host16, n * 2);
    }
    return comm_mem_upload(c, dst, h->host, n * 4);
}

static dure_status_t download(struct harness *h, comm_t *c, const void *src, size_t n)
{
    dure_status_t st = DURE_OK;
    if (h->s->dtype == COMM_BF16) {
        DURE_TRY(comm_mem_download(c, h->host16, src, n * 2));
        for (size_t i = 0; i < n; i++) {
            h->host[i] = from_bf16(h->host16[i]);
        }
        goto out;
    }
    DURE_TRY(comm_mem_download(c, h->host, src, n * 4));
out:
    return st;
}

static dure_status_t bufset_alloc(struct harness *h, struct bufset *b)
{
    dure_status_t st = DURE_OK;
    const size_t bytes = h->max_total * h->es;
    if (b->heap) {
        DURE_TRY(heap_alloc(bytes, &b->send));
        DURE_TRY(heap_alloc(bytes, &b->recv));
    } else {
        DURE_TRY(comm_mem_alloc(b->comm, bytes, &b->send));
        DURE_TRY(comm_mem_alloc(b->comm, bytes, &b->recv));
    }
    /* Touch every page once, outside the timings. */
    memset(h->host, 0, h->max_total * sizeof *h->host);
    DURE_TRY(upload(h, b->comm, b->send, h->max_total));
    DURE_TRY(upload(h, b->comm, b->recv, h->max_total));
out:
    return st;
}

static void bufset_free(struct bufset *b)
{
    if (b->heap) {
        free(b->send);
        free(b->recv);
    } else if (b->comm) {
        comm_mem_free(b->comm, b->send);
        comm_mem_free(b->comm, b->recv);
    }
    b->send = b->recv = NULL;
}

static void harness_free(struct harness *h)
{
    for (int k = 0; k < h->nsets; k++) {
        bufset_free(&h->sets[k]);
    }
    if (h->copy_owned) {
        free(h->copy_src);
        free(h->copy_dst);
    }
    free(h->host);
    free(h->host16);
}

/* Staging, the buffer sets (one for every heap variant, one per comm for
 * the others: bench_variant) and the memcpy peer's host buffers (a host
 * set's, or its own). Collective (comm_mem_alloc). */
static dure_status_t harness_alloc(struct harness *h, const struct bench_variant *v, int nv)
{
    dure_status_t st = DURE_OK;
    h->host = malloc(h->max_total * sizeof *h->host);
    DURE_ALLOC_TRY(h->host, h->max_total * sizeof *h->host);
    h->host16 = malloc(h->max_total * sizeof *h->host16);
    DURE_ALLOC_TRY(h->host16, h->max_total * sizeof *h->host16);
    for (int k = 0; k < nv; k++) {
        int j = 0;
        DURE_CHECK(!v[k].heap || comm_memory(v[k].comm) == COMM_MEM_HOST, DURE_ERR_ARG,
                   "heap buffers are host memory: backend %s needs device memory",
                   comm_backend_name(comm_backend(v[k].comm)));
        while (j < h->nsets && !(h->sets[j].heap == v[k].heap &&
                                 (v[k].heap || h->sets[j].comm == v[k].comm))) {
            j++;
        }
        if (j == h->nsets) {
            h->sets[j] = (struct bufset){.comm = v[k].comm, .heap = v[k].heap};
            h->nsets++;
            DURE_TRY(bufset_alloc(h, &h->sets[j]));
        }
        h->set_of[k] = j;
    }
    if (!h->s->memcpy_peer) {
        goto out;
    }
    for (int j = h->nsets - 1; j >= 0 && !h->copy_src; j--) {
        if (comm_memory(h->sets[j].comm) == COMM_MEM_HOST) {
            h->copy_src = h->sets[j].send;
            h->copy_dst = h->sets[j].recv;
        }
    }
    if (!h->copy_src) {
        h->copy_owned = 1;
        DURE_TRY(heap_alloc(h->max_total * h->es, &h->copy_src));
        DURE_TRY(heap_alloc(h->max_total * h->es, &h->copy_dst));
        memset(h->copy_src, 0, h->max_total * h->es);
        memset(h->copy_dst, 0, h->max_total * h->es);
    }
out:
    return st;
}

/* ---------------------------------------------------------------- one variant */

/* Where variant k reads and writes for a message of `total` elements. */
struct placed {
    comm_t *comm;
    const void *send;
    void *recv;
    void *out;                 /* this rank's output */
    void *in;                  /* this rank's input */
    struct bench_counts c;
};

static struct placed place(const struct harness *h, const struct bench_variant *v, int k,
                           size_t total)
{
    const struct bufset *b = &h->sets[h->set_of[k]];
    struct placed p = {.comm = v->comm};
    h->s->coll->counts(&h->args, total, &p.c);
    if (v->in_place) {
        p.in = (char *)b->recv + p.c.in_place_in * h->es;
        p.out = (char *)b->recv + p.c.in_place_out * h->es;
    } else {
        p.in = b->send;
        p.out = b->recv;
    }
    p.send = p.in;
    p.recv = p.out;
    return p;
}

static dure_status_t init_input(struct harness *h, const struct placed *p)
{
    h->s->coll->init(&h->args, &p->c, h->host);
    return upload(h, p->comm, p->in, p->c.in_count);
}

static dure_status_t run_once(struct harness *h, const struct placed *p, size_t total)
{
    return h->s->coll->run(p->comm, &h->args, p->send, p->recv, total);
}

/* Run once on fresh input; count this rank's wrong output elements. */
static dure_status_t check_once(struct harness *h, const struct placed *p, size_t total,
                                long *wrong)
{
    dure_status_t st = DURE_OK;
    const size_t n = p->c.out_count;
    *wrong = 0;
    DURE_TRY(init_input(h, p));
    DURE_TRY(run_once(h, p, total));
    if (h->s->faults.corrupt_rank == h->args.rank && n > 0) {
        /* Fault injection: one element of the result, in the comm's memory. */
        DURE_TRY(download(h, p->comm, p->out, n));
        h->host[n / 2] += 1000.0f;
        DURE_TRY(upload(h, p->comm, p->out, n));
    }
    DURE_TRY(download(h, p->comm, p->out, n));
    for (size_t k = 0; k < n; k++) {
        float want = h->s->coll->expected(&h->args, total, p->c.out_first + k);
        float tol = 0.0f;
        if (h->s->dtype == COMM_BF16) {
            tol = fabsf(want) / 128.0f;
        } else if (h->s->op == COMM_AVG && h->s->coll->reduces) {
            tol = fabsf(want) * 1e-6f;
        }
        if (!(fabsf(h->host[k] - want) <= tol)) {
            (*wrong)++;
        }
    }
out:
    return st;
}

/* One repetition: the mean over ranks of the time per operation. */
static dure_status_t time_rep(struct harness *h, const struct placed *p, size_t total,
                              int iters, double *sec)
{
    dure_status_t st = DURE_OK;
    double t = 0, sum = 0;
    DURE_MPI_TRY(MPI_Barrier(h->mpi));
    double t0 = MPI_Wtime();
    for (int it = 0; it < iters; it++) {
        DURE_TRY(run_once(h, p, total));
    }
    t = (MPI_Wtime() - t0) / iters;
    DURE_MPI_TRY(MPI_Allreduce(&t, &sum, 1, MPI_DOUBLE, MPI_SUM, h->mpi));
    *sec = sum / h->args.nranks;
out:
    return st;
}

/* The memcpy peer: one core copies `bytes` on the first rank while the
 * others wait. */
static dure_status_t time_memcpy(struct harness *h, size_t bytes, int iters, double *sec)
{
    dure_status_t st = DURE_OK;
    double t = 0;
    DURE_MPI_TRY(MPI_Barrier(h->mpi));
    if (h->args.rank == 0) {
        double t0 = MPI_Wtime();
        for (int it = 0; it < iters; it++) {
            memcpy(h->copy_dst, h->copy_src, bytes);
            /* keep the copies from being merged or elided */
            __asm__ __volatile__("" ::"r"(h->copy_dst) : "memory");
        }
        t = (MPI_Wtime() - t0) / iters;
    }
    DURE_MPI_TRY(MPI_Bcast(&t, 1, MPI_DOUBLE, 0, h->mpi));
    *sec = t;
out:
    return st;
}

/* ---------------------------------------------------------------- faults */

/* The rank number at the start of s (variable `name`'s value); *end after it. */
static dure_status_t env_rank(const char *name, const char *s, const char **end, int *rank)
{
    dure_status_t st = DURE_OK;
    char *e = NULL;
    errno = 0;
    long v = strtol(s, &e, 10);
    DURE_CHECK(errno == 0 && e != s && v >= 0 && v <= INT32_MAX, DURE_ERR_ARG,
               "%s='%s': not a rank number", name, s);
    *rank = (int)v;
    *end = e;
out:
    return st;
}

dure_status_t bench_faults_from_env(struct bench_faults *f)
{
    dure_status_t st = DURE_OK;
    const char *s, *end = NULL;
    *f = (struct bench_faults){.corrupt_rank = -1, .stall_rank = -1, .kill_rank = -1};

    if ((s = getenv("DURE_BENCH_CORRUPT")) && *s) {
        DURE_TRY(env_rank("DURE_BENCH_CORRUPT", s, &end, &f->corrupt_rank));
        DURE_CHECK(*end == '\0', DURE_ERR_ARG, "DURE_BENCH_CORRUPT='%s': not a rank number", s);
    }
    if ((s = getenv("DURE_BENCH_KILL")) && *s) {
        DURE_TRY(env_rank("DURE_BENCH_KILL", s, &end, &f->kill_rank));
        DURE_CHECK(*end == '\0', DURE_ERR_ARG, "DURE_BENCH_KILL='%s': not a rank number", s);
    }
    if ((s = getenv("DURE_BENCH_STALL")) && *s) {
        char *e = NULL;
        DURE_TRY(env_rank("DURE_BENCH_STALL", s, &end, &f->stall_rank));
        DURE_CHECK(*end == ':', DURE_ERR_ARG, "DURE_BENCH_STALL='%s': not RANK:SECONDS", s);
        errno = 0;
        f->stall_s = strtod(end + 1, &e);
        DURE_CHECK(errno == 0 && e != end + 1 && *e == '\0' && f->stall_s > 0 &&
                       isfinite(f->stall_s),
                   DURE_ERR_ARG, "DURE_BENCH_STALL='%s': not RANK:SECONDS (seconds > 0)", s);
    }
out:
    return st;
}

/* Before the first collective: the stall rank sleeps, the kill rank SIGKILLs itself. */
static void faults_start(const struct bench_faults *f, int rank)
{
    if (f->kill_rank == rank) {
        raise(SIGKILL);
    }
    if (f->stall_rank == rank) {
        fprintf(stderr, "dure bench: rank %d stalls %.1f s (DURE_BENCH_STALL)\n", rank,
                f->stall_s);
        struct timespec ts = {(time_t)f->stall_s,
                              (long)((f->stall_s - floor(f->stall_s)) * 1e9)};
        int rc;
        do {
            rc = nanosleep(&ts, &ts);
        } while (rc != 0 && errno == EINTR);
    }
}

/* ---------------------------------------------------------------- one size */

/* One pass over a size: warm-up, then repetitions first .. first + reps - 1
 * of every variant into t[k * all + rep] (variant k; k = nv: the memcpy
 * peer), `all` the repetitions of every pass. */
static dure_status_t time_size(struct harness *h, const struct bench_variant *v, int nv,
                               size_t total, int first, int all, double *t)
{
    dure_status_t st = DURE_OK;
    struct placed p[BENCH_MAX_VARIANTS];
    double op_s = 0, slowest = 0;    /* a warm operation's time, the slowest variant's */

    for (int k = 0; k < nv; k++) {
        p[k] = place(h, &v[k], k, total);
        DURE_TRY(init_input(h, &p[k]));
        double t0 = 0;
        for (int w = 0; w < h->s->warmup; w++) {
            if (w == (h->s->warmup > 1)) {   /* the first of several is cold: not counted */
                t0 = MPI_Wtime();
            }
            DURE_TRY(run_once(h, &p[k], total));
        }
        if (h->s->warmup > 0) {
            op_s = fmax(op_s, (MPI_Wtime() - t0) / (h->s->warmup - (h->s->warmup > 1)));
        }
    }
    int iters = h->s->iters;
    if (h->s->min_rep_s > 0 && h->s->warmup > 0) {
        /* every rank runs as many: the slowest rank's estimate decides */
        DURE_MPI_TRY(MPI_Allreduce(&op_s, &slowest, 1, MPI_DOUBLE, MPI_MAX, h->mpi));
        double want = ceil(h->s->min_rep_s / fmax(slowest, 1e-9));
        iters = want > iters ? (want < BENCH_ITERS_MAX ? (int)want : BENCH_ITERS_MAX) : iters;
        /* and then warms up as long: the traffic of the size before can
         * leave the caches cold for more than a few of this size's
         * operations (see bench_measure's order of the passes) */
        for (int k = 0; k < nv && iters > h->s->iters; k++) {
            for (int w = 0; w < iters; w++) {
                DURE_TRY(run_once(h, &p[k], total));
            }
        }
    }
    /* Each repetition starts with the next variant: in A/A runs of one Open
     * MPI algorithm on 2 ranks at 4-16 MiB, the variant always timed first
     * measured 0.53-1.41x the other, in turns 0.88-1.10x. */
    for (int rep = first; rep < first + h->s->reps; rep++) {
        for (int i = 0; i < nv; i++) {
            const int k = (rep + i) % nv;
            DURE_TRY(time_rep(h, &p[k], total, iters, &t[k * all + rep]));
        }
        if (h->s->memcpy_peer) {
            DURE_TRY(time_memcpy(h, total * h->es, iters, &t[nv * all + rep]));
        }
    }
out:
    return st;
}

/* A size's results from its `all` repetitions (time_size's t), and its check. */
static dure_status_t finish_size(struct harness *h, const struct bench_variant *v, int nv,
                                 size_t total, int all, double *t, struct bench_point *pt)
{
    dure_status_t st = DURE_OK;
    struct placed p[BENCH_MAX_VARIANTS];

    memset(pt, 0, sizeof *pt);
    pt->total = total;
    pt->bytes = total * h->es;
    pt->count = h->s->coll->per_rank_count ? total / (size_t)h->args.nranks : total;
    for (int k = 0; k < nv; k++) {
        p[k] = place(h, &v[k], k, total);
        struct bench_sample *s = &pt->v[k];
        s->algo = comm_algo_for(v[k].comm, h->s->coll->coll, pt->bytes);
        s->sec = dure_median(&t[k * all], all);
        s->algbw_gbs = (double)pt->bytes / 1e9 / s->sec;
        s->busbw_gbs = s->algbw_gbs * h->s->coll->bus_factor(h->args.nranks);
        if (h->s->check) {
            long mine = 0;
            DURE_TRY(check_once(h, &p[k], total, &mine));
            DURE_MPI_TRY(MPI_Allreduce(&mine, &s->wrong, 1, MPI_LONG, MPI_SUM, h->mpi));
        }
    }
    if (h->s->memcpy_peer) {
        pt->memcpy_gbs = (double)pt->bytes / 1e9 / dure_median(&t[nv * all], all);
    }
out:
    return st;
}

dure_status_t bench_measure(MPI_Comm mpi, const struct bench_spec *spec,
                            const struct bench_variant *v, int nv, const size_t *bytes, int n,
                            struct bench_point *out)
{
    dure_status_t st = DURE_OK;
    struct harness h = {.mpi = mpi, .s = spec};
    double *t = NULL;

    DURE_CHECK(nv >= 1 && nv <= BENCH_MAX_VARIANTS, DURE_ERR_ARG,
               "bench: %d variants (1 to %d)", nv, BENCH_MAX_VARIANTS);
    DURE_CHECK(spec->iters >= 1 && spec->reps >= 1 && spec->warmup >= 0 && spec->passes >= 1,
               DURE_ERR_ARG, "bench: iters %d, reps %d, warmup %d, passes %d (need >= 1, >= 1, "
               ">= 0, >= 1)", spec->iters, spec->reps, spec->warmup, spec->passes);
    DURE_MPI_TRY(MPI_Comm_rank(mpi, &h.args.rank));
    DURE_MPI_TRY(MPI_Comm_size(mpi, &h.args.nranks));
    for (int k = 0; k < nv; k++) {
        DURE_CHECK(comm_size(v[k].comm) == h.args.nranks, DURE_ERR_ARG,
                   "bench: variant %d's communicator has %d ranks, the MPI one %d", k,
                   comm_size(v[k].comm), h.args.nranks);
    }
    DURE_CHECK(spec->coll->coll != COMM_BROADCAST ||
                   (spec->root >= 0 && spec->root < h.args.nranks),
               DURE_ERR_ARG, "-r %d: the root must be a rank below %d", spec->root,
               h.args.nranks);
    h.args.dtype = spec->dtype;
    h.args.op = spec->op;
    h.args.root = spec->root;
    h.es = comm_dtype_size(spec->dtype);
    for (int i = 0; i < n; i++) {
        size_t total = bench_total_for(spec, h.args.nranks, bytes[i]);
        h.max_total = total > h.max_total ? total : h.max_total;
    }
    DURE_CHECK(h.max_total > 0, DURE_ERR_ARG, "bench: every size is smaller than %s",
               spec->coll->per_rank_count ? "4 elements per rank" : "one element");
    /* t[(i * (nv + 1) + k) * all + rep]: size i, variant k (nv: memcpy) */
    const int all = spec->reps * spec->passes;
    const size_t per_size = (size_t)(nv + 1) * (size_t)all;
    t = calloc(per_size * (size_t)n, sizeof *t);
    DURE_ALLOC_TRY(t, per_size * (size_t)n * sizeof *t);
    DURE_TRY(harness_alloc(&h, v, nv));
    faults_start(&spec->faults, h.args.rank);
    /* The passes alternate in direction, the last ascending: each pass
     * starts at the size the one before ended with, so no size is timed
     * right after the sweep's largest has left the caches cold for it
     * (when every pass ascended, their first size, 128 B after 16 MiB,
     * still measured 1.2-1.8x the next in a series or two of a sweep,
     * time_size's long warm-up notwithstanding). */
    for (int pass = 0; pass < spec->passes; pass++) {
        const int up = (spec->passes - 1 - pass) % 2 == 0;
        for (int j = 0; j < n; j++) {
            const int i = up ? j : n - 1 - j;
            size_t total = bench_total_for(spec, h.args.nranks, bytes[i]);
            double *ti = &t[(size_t)i * per_size];
            DURE_TRY(time_size(&h, v, nv, total, pass * spec->reps, all, ti));
            if (pass == spec->passes - 1) {
                DURE_TRY(finish_size(&h, v, nv, total, all, ti, &out[i]));
                if (spec->progress) {
                    spec->progress(&out[i], spec->progress_arg);
                }
            }
        }
    }
out:
    harness_free(&h);
    free(t);
    return st;
}
