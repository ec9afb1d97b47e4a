/*
 * launcher/cmd_bench.c - `dure bench allreduce|reducescatter|allgather|broadcast`:
 * measure and check dure's collectives, compatible with nccl-tests.
 *
 * One harness owns options, warm-up, timing, checking and the report; each
 * collective plugs in as one struct bench_coll (nccl-tests' layout). Buffers
 * are sized once for the largest message and reused. Every size is timed as
 * `reps` repetitions of `iters` back-to-back operations; a repetition's time
 * is the mean over ranks (nccl-tests' default), the reported time the median
 * of the repetitions. With --compare, dure's choice and MPI's native
 * collective (and, on rank 0 alone, a single-core memcpy of the same size)
 * are measured interleaved in the same repetitions, so machine noise falls
 * on both alike.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "collectives/comm.h"
#include "common/mpi_check.h"
#include "common/timing.h"
#include "launcher/commands.h"
#include "launcher/exitcodes.h"
#include "launcher/watchdog_hook.h"

/* ---------------------------------------------------------------- the collectives */

struct bench_coll {
    const char *name;
    enum comm_coll coll;
    int reduces;                    /* takes -o */
    double (*bus_factor)(int n);    /* busbw = algbw * factor (nccl-tests) */
    int per_rank_count;             /* the count column is per rank (nccl-tests) */
};

static double factor_allreduce(int n) { return 2.0 * (n - 1) / n; }
static double factor_gather(int n) { return (double)(n - 1) / n; }
static double factor_one(int n) { (void)n; return 1.0; }

static const struct bench_coll colls[] = {
    {"allreduce", COMM_ALLREDUCE, 1, factor_allreduce, 0},
    {"reducescatter", COMM_REDUCE_SCATTER, 1, factor_gather, 1},
    {"allgather", COMM_ALLGATHER, 0, factor_gather, 1},
    {"broadcast", COMM_BROADCAST, 0, factor_one, 0},
};

/* ---------------------------------------------------------------- options */

struct bench_opts {
    const struct bench_coll *coll;
    size_t min_bytes, max_bytes, step_bytes;
    double step_factor;             /* 0: additive steps of step_bytes */
    int iters, warmup, reps, check, root;
    enum comm_redop op;
    enum comm_dtype dtype;
    struct comm_config cfg;
    int compare;
    int use_malloc;                 /* dure's buffers from the heap, not comm_mem_alloc */
    const char *json, *plot;
    double min_busbw;
};

void cmd_bench_usage(FILE *out)
{
    fprintf(out,
            "usage: mpirun -np N dure bench allreduce|reducescatter|allgather|broadcast [options]\n"
            "\n"
            "Measure and check dure's collectives with nccl-tests' options, columns and\n"
            "bus-bandwidth factors (all-reduce 2(n-1)/n, reduce-scatter and all-gather\n"
            "(n-1)/n, broadcast 1; GB = 1e9). Sizes are total bytes; K, M, G are binary.\n"
            "\n"
            "  -b, --minbytes SIZE     smallest size (default 32M)\n"
            "  -e, --maxbytes SIZE     largest size (default 32M)\n"
            "  -f, --stepfactor F      multiply the size by F each step\n"
            "  -i, --stepbytes SIZE    else add SIZE each step (default 1M)\n"
            "  -n, --iters N           operations per timed repetition (default 20)\n"
            "  -w, --warmup_iters N    untimed operations first, per size (default 5)\n"
            "  -c, --check 0|1         check every result against expected values (default 1)\n"
            "  -o, --op sum|avg        reduction (default sum)\n"
            "  -d, --datatype float|bfloat16   (bfloat16: backend nccl only; default float)\n"
            "  -r, --root N            broadcast root (default 0)\n"
            "  -R, --reps N            timed repetitions per size; the median is reported\n"
            "                          (default 5)\n"
            "      --backend auto|mpi|nccl     (default auto)\n"
            "      --algo auto|native|ring|shm (default auto: the per-size table)\n"
            "      --algo-table TABLE  e.g. \"0:native,1M:shm\" (else $DURE_ALGO_TABLE, else built-in)\n"
            "      --deterministic     fixed reduction order (see collectives/comm.h)\n"
            "      --watchdog SECONDS  abort with exit code %d when a collective hangs\n"
            "                          this long (default 600)\n"
            "      --compare           in-place only: dure's choice beside MPI's native\n"
            "                          collective and a single-core memcpy, interleaved\n"
            "      --json FILE         also write the results as JSON\n"
            "      --plot FILE.png     draw busbw against size with gnuplot\n"
            "      --min-busbw GB/s    exit 1 when the average bus bandwidth is lower\n"
            "      --malloc            dure's buffers from the heap instead of comm_mem_alloc\n"
            "                          (mpi: collectives then stage through the shared window)\n"
            "\n"
            "Exit status: 0; 1 when any element is wrong (#wrong, summed over ranks) or the\n"
            "average is below --min-busbw; 2 for bad options; %d when the watchdog fired.\n"
            "\n"
            "Fault injection, for testing the checks and the watchdog:\n"
            "  DURE_BENCH_CORRUPT=R    rank R corrupts one element of every checked result\n"
            "  DURE_BENCH_STALL=R:S    rank R sleeps S seconds before its first collective\n"
            "  DURE_BENCH_KILL=R       rank R kills itself (SIGKILL) before its first collective\n",
            DURE_EXIT_WATCHDOG, DURE_EXIT_WATCHDOG);
}

static int parse_int_opt(const char *name, const char *s, long lo, long hi, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !*s || *end || v < lo || v > hi) {
        fprintf(stderr, "dure bench: %s '%s' is not an integer in [%ld, %ld]\n", name, s, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_double_opt(const char *name, const char *s, double lo, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !*s || *end || !(v >= lo) || !isfinite(v)) {
        fprintf(stderr, "dure bench: %s '%s' is not a number >= %g\n", name, s, lo);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_size_opt(const char *name, const char *s, size_t *out)
{
    if (comm_parse_bytes(s, out) != 0) {
        fprintf(stderr, "dure bench: %s '%s' is not a size (bytes, or with K, M, G)\n", name, s);
        return -1;
    }
    return 0;
}

/* 0 on success, else the exit code (usage printed). */
static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
    enum { O_BACKEND = 256, O_ALGO, O_TABLE, O_DET, O_WD, O_CMP, O_JSON, O_PLOT, O_MIN, O_MALLOC };
    static const struct option longopts[] = {
        {"minbytes", required_argument, NULL, 'b'},
        {"maxbytes", required_argument, NULL, 'e'},
        {"stepfactor", required_argument, NULL, 'f'},
        {"stepbytes", required_argument, NULL, 'i'},
        {"iters", required_argument, NULL, 'n'},
        {"warmup_iters", required_argument, NULL, 'w'},
        {"check", required_argument, NULL, 'c'},
        {"op", required_argument, NULL, 'o'},
        {"datatype", required_argument, NULL, 'd'},
        {"root", required_argument, NULL, 'r'},
        {"reps", required_argument, NULL, 'R'},
        {"backend", required_argument, NULL, O_BACKEND},
        {"algo", required_argument, NULL, O_ALGO},
        {"algo-table", required_argument, NULL, O_TABLE},
        {"deterministic", no_argument, NULL, O_DET},
        {"watchdog", required_argument, NULL, O_WD},
        {"compare", no_argument, NULL, O_CMP},
        {"json", required_argument, NULL, O_JSON},
        {"plot", required_argument, NULL, O_PLOT},
        {"min-busbw", required_argument, NULL, O_MIN},
        {"malloc", no_argument, NULL, O_MALLOC},
        {NULL, 0, NULL, 0},
    };
    int opt, bad = 0;

    memset(o, 0, sizeof *o);
    o->min_bytes = o->max_bytes = 32u << 20;
    o->step_bytes = 1u << 20;
    o->iters = 20;
    o->warmup = 5;
    o->reps = 5;
    o->check = 1;
    o->op = COMM_SUM;
    o->dtype = COMM_F32;
    comm_config_default(&o->cfg);
    o->cfg.on_hang = dure_watchdog_abort;

    dure_log_set_quiet(1);
    while (!bad && (opt = getopt_long(argc, argv, "b:e:f:i:n:w:c:o:d:r:R:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'b': bad = parse_size_opt("-b", optarg, &o->min_bytes); break;
        case 'e': bad = parse_size_opt("-e", optarg, &o->max_bytes); break;
        case 'f': bad = parse_double_opt("-f", optarg, 1.0, &o->step_factor); break;
        case 'i': bad = parse_size_opt("-i", optarg, &o->step_bytes); break;
        case 'n': bad = parse_int_opt("-n", optarg, 1, 1000000, &o->iters); break;
        case 'w': bad = parse_int_opt("-w", optarg, 0, 1000000, &o->warmup); break;
        case 'c': bad = parse_int_opt("-c", optarg, 0, 1, &o->check); break;
        case 'R': bad = parse_int_opt("-R", optarg, 1, 1000, &o->reps); break;
        case 'r': bad = parse_int_opt("-r", optarg, 0, 1 << 30, &o->root); break;
        case 'o':
            if (strcmp(optarg, "sum") == 0) {
                o->op = COMM_SUM;
            } else if (strcmp(optarg, "avg") == 0) {
                o->op = COMM_AVG;
            } else {
                fprintf(stderr, "dure bench: -o '%s' is not sum or avg\n", optarg);
                bad = 1;
            }
            break;
        case 'd':
            if (strcmp(optarg, "float") == 0) {
                o->dtype = COMM_F32;
            } else if (strcmp(optarg, "bfloat16") == 0) {
                o->dtype = COMM_BF16;
            } else {
                fprintf(stderr, "dure bench: -d '%s' is not float or bfloat16\n", optarg);
                bad = 1;
            }
            break;
        case O_BACKEND:
            if (comm_backend_parse(optarg, &o->cfg.backend) != DURE_OK) {
                fprintf(stderr, "dure bench: --backend: %s\n", dure_last_error());
                bad = 1;
            }
            break;
        case O_ALGO:
            if (comm_algo_parse(optarg, &o->cfg.algo) != DURE_OK) {
                fprintf(stderr, "dure bench: --algo: %s\n", dure_last_error());
                bad = 1;
            }
            break;
        case O_TABLE: {
            struct comm_algo_table t;
            if (comm_algo_table_parse(optarg, &t) != DURE_OK) {
                fprintf(stderr, "dure bench: --algo-table: %s\n", dure_last_error());
                bad = 1;
            }
            o->cfg.algo_table = optarg;
            break;
        }
        case O_DET: o->cfg.deterministic = 1; break;
        case O_WD: bad = parse_double_opt("--watchdog", optarg, 0.0, &o->cfg.watchdog_s); break;
        case O_CMP: o->compare = 1; break;
        case O_JSON: o->json = optarg; break;
        case O_PLOT: o->plot = optarg; break;
        case O_MIN: bad = parse_double_opt("--min-busbw", optarg, 0.0, &o->min_busbw); break;
        case O_MALLOC: o->use_malloc = 1; break;
        default: bad = 1; break;
        }
    }
    dure_log_set_quiet(0);
    if (!bad) {
        if (optind + 1 != argc) {
            fprintf(stderr, "dure bench: name exactly one collective\n");
            bad = 1;
        } else {
            for (size_t k = 0; k < sizeof colls / sizeof colls[0]; k++) {
                if (strcmp(argv[optind], colls[k].name) == 0) {
                    o->coll = &colls[k];
                }
            }
            if (!o->coll) {
                fprintf(stderr, "dure bench: unknown collective '%s'\n", argv[optind]);
                bad = 1;
            }
        }
    }
    if (!bad && (o->min_bytes == 0 || o->max_bytes < o->min_bytes)) {
        fprintf(stderr, "dure bench: need 0 < -b <= -e\n");
        bad = 1;
    }
    if (!bad && o->step_factor == 1.0) {
        fprintf(stderr, "dure bench: -f must be greater than 1\n");
        bad = 1;
    }
    if (bad) {
        fputc('\n', stderr);
        cmd_bench_usage(stderr);
        return DURE_EXIT_USAGE;
    }
    return 0;
}

/* ---------------------------------------------------------------- data */

/* Small integers: sums over ranks are exact in float and bfloat16 (up to
 * 32 ranks), so an exact comparison finds any misplaced element. */
static float pattern(int rank, size_t i)
{
    return (float)((long)((i * 7 + (size_t)rank * 13) % 17) - 8);
}

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

struct bench {
    struct bench_opts o;
    int rank, size;
    comm_t *dure, *native;
    size_t es;
    size_t max_total;            /* elements of the largest message */
    void *send, *recv;           /* [max_total] in the backend's memory */
    void *ref_send, *ref_recv;   /* [max_total] host: the comparison's buffers */
    float *host;                 /* [max_total] host staging for init and checks */
    uint16_t *host16;            /* [max_total] bf16 staging */
    int corrupt_rank;
};

/* Where the operation of one variant reads and writes. */
struct variant {
    comm_t *c;
    void *send, *recv;           /* buffers this variant uses */
    int in_place;
};

static size_t out_count(const struct bench *b, size_t total)
{
    struct comm_shard sh = comm_shard_of(total, b->size, b->rank);
    return b->o.coll->coll == COMM_REDUCE_SCATTER ? sh.count : total;
}

static dure_status_t run_once(struct bench *b, const struct variant *v, size_t total)
{
    const size_t es = b->es;
    struct comm_shard sh = comm_shard_of(total, b->size, b->rank);
    char *send = v->send, *recv = v->recv;
    switch (b->o.coll->coll) {
    case COMM_ALLREDUCE:
        return comm_allreduce(v->c, v->in_place ? recv : send, recv, total, b->o.dtype, b->o.op);
    case COMM_REDUCE_SCATTER:
        return v->in_place ? comm_reduce_scatter(v->c, recv, recv + sh.offset * es, total,
                                                 b->o.dtype, b->o.op)
                           : comm_reduce_scatter(v->c, send, recv, total, b->o.dtype, b->o.op);
    case COMM_ALLGATHER:
        return comm_allgather(v->c, v->in_place ? recv + sh.offset * es : send, recv, total,
                              b->o.dtype);
    default:
        return comm_broadcast(v->c, v->in_place ? recv : send, recv, total, b->o.dtype,
                              b->o.root);
    }
}

static dure_status_t upload(struct bench *b, comm_t *c, void *dst, size_t n)
{
    if (b->o.dtype == COMM_BF16) {
        for (size_t i = 0; i < n; i++) {
            b->host16[i] = to_bf16(b->host[i]);
        }
        return comm_mem_upload(c, dst, b->host16, n * 2);
    }
    return comm_mem_upload(c, dst, b->host, n * 4);
}

static dure_status_t download(struct bench *b, comm_t *c, const void *src, size_t n)
{
    dure_status_t st = DURE_OK;
    if (b->o.dtype == COMM_BF16) {
        DURE_TRY(comm_mem_download(c, b->host16, src, n * 2));
        for (size_t i = 0; i < n; i++) {
            b->host[i] = from_bf16(b->host16[i]);
        }
        goto out;
    }
    DURE_TRY(comm_mem_download(c, b->host, src, n * 4));
out:
    return st;
}

/* Fill the variant's input with the pattern for `total` elements. */
static dure_status_t init_input(struct bench *b, const struct variant *v, size_t total)
{
    struct comm_shard sh = comm_shard_of(total, b->size, b->rank);
    char *in = v->in_place ? v->recv : v->send;
    if (b->o.coll->coll == COMM_ALLGATHER) {
        for (size_t k = 0; k < sh.count; k++) {
            b->host[k] = pattern(b->rank, sh.offset + k);
        }
        return upload(b, v->c, v->in_place ? in + sh.offset * b->es : in, sh.count);
    }
    for (size_t i = 0; i < total; i++) {
        b->host[i] = pattern(b->rank, i);
    }
    return upload(b, v->c, in, total);
}

static float expected(const struct bench *b, size_t total, size_t i)
{
    switch (b->o.coll->coll) {
    case COMM_ALLREDUCE:
    case COMM_REDUCE_SCATTER: {
        float s = 0;
        for (int r = 0; r < b->size; r++) {
            s += pattern(r, i);
        }
        return b->o.op == COMM_AVG ? s / (float)b->size : s;
    }
    case COMM_ALLGATHER: {
        size_t chunk = total / (size_t)b->size + (total % (size_t)b->size != 0);
        return pattern((int)(i / chunk), i);
    }
    default:
        return pattern(b->o.root, i);
    }
}

/* Run once on fresh input and count the wrong elements of this rank's output. */
static dure_status_t check_variant(struct bench *b, const struct variant *v, size_t total,
                                   long *wrong)
{
    dure_status_t st = DURE_OK;
    struct comm_shard sh = comm_shard_of(total, b->size, b->rank);
    const int rs = b->o.coll->coll == COMM_REDUCE_SCATTER;
    const size_t n = out_count(b, total);
    const size_t first = rs ? sh.offset : 0;  /* global index of output element 0 */
    char *out = (char *)v->recv + (rs && v->in_place ? sh.offset * b->es : 0);

    *wrong = 0;
    DURE_TRY(init_input(b, v, total));
    DURE_TRY(run_once(b, v, total));
    if (b->corrupt_rank == b->rank && n > 0) {
        /* Fault injection: one element of the result, in the backend's memory. */
        DURE_TRY(download(b, v->c, out, n));
        b->host[n / 2] += 1000.0f;
        DURE_TRY(upload(b, v->c, out, n));
    }
    DURE_TRY(download(b, v->c, out, n));
    for (size_t k = 0; k < n; k++) {
        float want = expected(b, total, first + k);
        float tol = 0.0f;
        if (b->o.dtype == COMM_BF16) {
            tol = fabsf(want) / 128.0f;
        } else if (b->o.op == COMM_AVG && b->o.coll->reduces) {
            tol = fabsf(want) * 1e-6f;
        }
        if (!(fabsf(b->host[k] - want) <= tol)) {
            (*wrong)++;
        }
    }
out:
    return st;
}

/* Mean over ranks of one repetition's time per operation, in seconds. */
static dure_status_t time_variant(struct bench *b, const struct variant *v, size_t total,
                                  double *sec)
{
    dure_status_t st = DURE_OK;
    double t = 0, sum = 0;
    DURE_MPI_TRY(MPI_Barrier(MPI_COMM_WORLD));
    double t0 = MPI_Wtime();
    for (int it = 0; it < b->o.iters; it++) {
        DURE_TRY(run_once(b, v, total));
    }
    t = (MPI_Wtime() - t0) / b->o.iters;
    DURE_MPI_TRY(MPI_Allreduce(&t, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    *sec = sum / b->size;
out:
    return st;
}

/* Single-core memcpy of `bytes` on rank 0 while the other ranks wait. */
static dure_status_t time_memcpy(struct bench *b, size_t bytes, double *sec)
{
    dure_status_t st = DURE_OK;
    double t = 0;
    DURE_MPI_TRY(MPI_Barrier(MPI_COMM_WORLD));
    if (b->rank == 0) {
        double t0 = MPI_Wtime();
        for (int it = 0; it < b->o.iters; it++) {
            memcpy(b->ref_recv, b->ref_send, bytes);
            /* keep the copies from being merged or elided */
            __asm__ __volatile__("" ::"r"(b->ref_recv) : "memory");
        }
        t = (MPI_Wtime() - t0) / b->o.iters;
    }
    DURE_MPI_TRY(MPI_Bcast(&t, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD));
    DURE_MPI_TRY(MPI_Barrier(MPI_COMM_WORLD));
    *sec = t;
out:
    return st;
}

/* ---------------------------------------------------------------- one size */

enum { V_MAX = 2 };
struct size_result {
    size_t bytes, count;
    enum comm_algo algo;
    double sec[V_MAX], algbw[V_MAX], busbw[V_MAX];
    long wrong[V_MAX];
    double memcpy_sec, memcpy_gbs;
};

static dure_status_t bench_size(struct bench *b, const struct variant *vars, int nv, size_t total,
                                struct size_result *r)
{
    dure_status_t st = DURE_OK;
    double *t = calloc((size_t)(V_MAX + 1) * (size_t)b->o.reps, sizeof *t);
    DURE_ALLOC_TRY(t, (size_t)(V_MAX + 1) * (size_t)b->o.reps * sizeof *t);

    r->bytes = total * b->es;
    r->count = b->o.coll->per_rank_count ? total / (size_t)b->size : total;
    r->algo = comm_algo_for(b->dure, b->o.coll->coll, r->bytes);
    for (int v = 0; v < nv; v++) {
        DURE_TRY(init_input(b, &vars[v], total));
        for (int w = 0; w < b->o.warmup; w++) {
            DURE_TRY(run_once(b, &vars[v], total));
        }
    }
    for (int rep = 0; rep < b->o.reps; rep++) {
        for (int v = 0; v < nv; v++) {
            DURE_TRY(time_variant(b, &vars[v], total, &t[v * b->o.reps + rep]));
        }
        if (b->o.compare) {
            DURE_TRY(time_memcpy(b, r->bytes, &t[V_MAX * b->o.reps + rep]));
        }
    }
    for (int v = 0; v < nv; v++) {
        r->sec[v] = dure_median(&t[v * b->o.reps], b->o.reps);
        r->algbw[v] = (double)r->bytes / 1e9 / r->sec[v];
        r->busbw[v] = r->algbw[v] * b->o.coll->bus_factor(b->size);
        r->wrong[v] = 0;
        if (b->o.check) {
            long mine = 0;
            DURE_TRY(check_variant(b, &vars[v], total, &mine));
            DURE_MPI_TRY(MPI_Allreduce(&mine, &r->wrong[v], 1, MPI_LONG, MPI_SUM,
                                       MPI_COMM_WORLD));
        }
    }
    if (b->o.compare) {
        r->memcpy_sec = dure_median(&t[V_MAX * b->o.reps], b->o.reps);
        r->memcpy_gbs = (double)r->bytes / 1e9 / r->memcpy_sec;
    }
out:
    free(t);
    return st;
}

/* ---------------------------------------------------------------- report */

static const char *type_name(enum comm_dtype dt)
{
    return dt == COMM_BF16 ? "bfloat16" : "float";
}

static const char *op_name(const struct bench *b)
{
    if (!b->o.coll->reduces) {
        return "none";
    }
    return b->o.op == COMM_AVG ? "avg" : "sum";
}

static void print_header(const struct bench *b)
{
    char table[256];
    comm_algo_table_text(b->dure, table, sizeof table);
    printf("# dure bench %s: %d ranks on %d node(s), backend %s, algo %s (table %s)%s\n",
           b->o.coll->name, b->size, comm_node_count(b->dure),
           comm_backend_name(comm_backend(b->dure)), comm_algo_name(b->o.cfg.algo), table,
           b->o.cfg.deterministic ? ", deterministic" : "");
    printf("# dure's buffers: %s%s\n",
           b->o.use_malloc ? "heap (malloc)" : "comm_mem_alloc",
           b->o.compare ? "; MPI native's: heap (malloc)" : "");
    printf("# type %s, op %s, root %d; %d iters x %d reps (median of rep means), warmup %d, "
           "check %d\n#\n",
           type_name(b->o.dtype), op_name(b), b->o.coll->coll == COMM_BROADCAST ? b->o.root : -1,
           b->o.iters, b->o.reps, b->o.warmup, b->o.check);
    if (b->o.compare) {
        printf("# %10s  %12s  %8s  %6s  %6s  %6s          dure (in-place)          "
               "     MPI native (in-place)       %6s  %7s  %6s\n",
               "", "", "", "", "", "", "", "memcpy", "");
        printf("# %10s  %12s  %8s  %6s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s  "
               "%6s  %7s  %6s\n",
               "size", "count", "type", "redop", "root", "algo", "time", "algbw", "busbw",
               "#wrong", "time", "algbw", "busbw", "#wrong", "ratio", "bw", "busbw/");
        printf("# %10s  %12s  %8s  %6s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s  "
               "%6s  %7s  %6s\n",
               "(B)", "(elements)", "", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)",
               "(GB/s)", "(GB/s)", "", "", "(GB/s)", "memcpy");
        return;
    }
    printf("# %10s  %12s  %8s  %6s  %6s           out-of-place                       "
           "in-place          \n",
           "", "", "", "", "");
    printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s\n", "size",
           "count", "type", "redop", "root", "time", "algbw", "busbw", "#wrong", "time", "algbw",
           "busbw", "#wrong");
    printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s\n", "(B)",
           "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)",
           "");
}

static void print_row(const struct bench *b, const struct size_result *r)
{
    int root = b->o.coll->coll == COMM_BROADCAST ? b->o.root : -1;
    printf("  %10zu  %12zu  %8s  %6s  %6d", r->bytes, r->count, type_name(b->o.dtype), op_name(b),
           root);
    if (b->o.compare) {
        printf("  %6s", comm_algo_name(r->algo));
    }
    for (int v = 0; v < V_MAX; v++) {
        printf("  %7.2f  %6.2f  %6.2f  %6ld", r->sec[v] * 1e6, r->algbw[v], r->busbw[v],
               r->wrong[v]);
    }
    if (b->o.compare) {
        printf("  %6.2f  %7.2f  %6.2f", r->busbw[0] / r->busbw[1], r->memcpy_gbs,
               r->busbw[0] / r->memcpy_gbs);
    }
    printf("\n");
    fflush(stdout);
}

static int write_json(const struct bench *b, const struct size_result *res, int n,
                      double avg_bus, double avg_native, long wrong)
{
    FILE *f = fopen(b->o.json, "w");
    char table[256];
    if (!f) {
        fprintf(stderr, "dure bench: cannot write --json '%s': %s\n", b->o.json, strerror(errno));
        return -1;
    }
    comm_algo_table_text(b->dure, table, sizeof table);
    fprintf(f,
            "{\"collective\":\"%s\",\"nranks\":%d,\"nodes\":%d,\"backend\":\"%s\","
            "\"algo\":\"%s\",\"table\":\"%s\",\"deterministic\":%s,\"type\":\"%s\","
            "\"op\":\"%s\",\"iters\":%d,\"reps\":%d,\"warmup\":%d,\"compare\":%s,"
            "\"bus_factor\":%.6f,\"results\":[",
            b->o.coll->name, b->size, comm_node_count(b->dure),
            comm_backend_name(comm_backend(b->dure)), comm_algo_name(b->o.cfg.algo), table,
            b->o.cfg.deterministic ? "true" : "false", type_name(b->o.dtype), op_name(b),
            b->o.iters, b->o.reps, b->o.warmup, b->o.compare ? "true" : "false",
            b->o.coll->bus_factor(b->size));
    static const char *const names[2][V_MAX] = {{"out_of_place", "in_place"},
                                                {"dure", "mpi_native"}};
    for (int i = 0; i < n; i++) {
        const struct size_result *r = &res[i];
        fprintf(f, "%s{\"size\":%zu,\"count\":%zu,\"algo\":\"%s\"", i ? "," : "", r->bytes,
                r->count, comm_algo_name(r->algo));
        for (int v = 0; v < V_MAX; v++) {
            fprintf(f,
                    ",\"%s\":{\"time_us\":%.6g,\"algbw_gbs\":%.6g,\"busbw_gbs\":%.6g,"
                    "\"wrong\":%ld}",
                    names[b->o.compare][v], r->sec[v] * 1e6, r->algbw[v], r->busbw[v],
                    r->wrong[v]);
        }
        if (b->o.compare) {
            fprintf(f, ",\"memcpy_gbs\":%.6g", r->memcpy_gbs);
        }
        fputc('}', f);
    }
    fprintf(f, "],\"avg_busbw_gbs\":%.6g", avg_bus);
    if (b->o.compare) {
        fprintf(f, ",\"avg_busbw_mpi_native_gbs\":%.6g", avg_native);
    }
    fprintf(f, ",\"wrong\":%ld}\n", wrong);
    if (fclose(f) != 0) {
        fprintf(stderr, "dure bench: writing --json '%s': %s\n", b->o.json, strerror(errno));
        return -1;
    }
    return 0;
}

/* Draw busbw against size with gnuplot (run as a program, no shell). */
static int write_plot(const struct bench *b, const struct size_result *res, int n)
{
    char dir[] = "/tmp/dure-plot.XXXXXX";
    char data[64], script[64];
    int rc = -1;
    if (!mkdtemp(dir)) {
        fprintf(stderr, "dure bench: --plot: cannot make a temporary directory: %s\n",
                strerror(errno));
        return -1;
    }
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(script, sizeof script, "%s/plot.gp", dir);
    FILE *d = fopen(data, "w");
    FILE *s = fopen(script, "w");
    if (d && s) {
        for (int i = 0; i < n; i++) {
            fprintf(d, "%zu %.4f %.4f %.4f\n", res[i].bytes, res[i].busbw[0], res[i].busbw[1],
                    res[i].memcpy_gbs);
        }
        const char *t0 = b->o.compare ? "dure (in-place)" : "out-of-place";
        const char *t1 = b->o.compare ? "MPI native (in-place)" : "in-place";
        fprintf(s,
                "set terminal pngcairo size 900,560\n"
                "set output '%s'\n"
                "set title 'dure bench %s, %d ranks, backend %s'\n"
                "set logscale x 2\n"
                "set format x '%%.0b%%B'\n"
                "set xlabel 'size (bytes)'\n"
                "set ylabel 'bus bandwidth (GB/s)'\n"
                "set key top left\n"
                "set grid\n"
                "plot '%s' using 1:2 with linespoints title '%s', "
                "'%s' using 1:3 with linespoints title '%s'%s%s%s\n",
                b->o.plot, b->o.coll->name, b->size, comm_backend_name(comm_backend(b->dure)),
                data, t0, data, t1, b->o.compare ? ", '" : "", b->o.compare ? data : "",
                b->o.compare ? "' using 1:4 with lines dashtype 2 title 'memcpy, 1 core'" : "");
    }
    int ok = d && s;
    if (d && fclose(d) != 0) {
        ok = 0;
    }
    if (s && fclose(s) != 0) {
        ok = 0;
    }
    if (!ok) {
        fprintf(stderr, "dure bench: --plot: cannot write gnuplot input in %s\n", dir);
        goto out;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("gnuplot", "gnuplot", script, (char *)NULL);
        fprintf(stderr, "dure bench: --plot: cannot run gnuplot: %s\n", strerror(errno));
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "dure bench: --plot: gnuplot failed to draw '%s'\n", b->o.plot);
        goto out;
    }
    rc = 0;
out:
    unlink(data);
    unlink(script);
    rmdir(dir);
    return rc;
}

/* ---------------------------------------------------------------- main */

static void inject_start_faults(const struct bench *b)
{
    const char *kill_env = getenv("DURE_BENCH_KILL");
    const char *stall = getenv("DURE_BENCH_STALL");
    if (kill_env && atoi(kill_env) == b->rank) {
        raise(SIGKILL);
    }
    if (stall) {
        int r = -1;
        double s = 0;
        if (sscanf(stall, "%d:%lf", &r, &s) == 2 && r == b->rank && s > 0) {
            fprintf(stderr, "dure bench: rank %d stalls %.1f s (DURE_BENCH_STALL)\n", r, s);
            usleep((useconds_t)(s * 1e6));
        }
    }
}

static size_t next_size(const struct bench_opts *o, size_t bytes)
{
    if (o->step_factor > 1.0) {
        size_t next = (size_t)((double)bytes * o->step_factor);
        return next > bytes ? next : bytes + 1;
    }
    return bytes + (o->step_bytes ? o->step_bytes : 1);
}

int cmd_bench(int argc, char **argv)
{
    dure_status_t st = DURE_OK;
    struct bench b;
    struct size_result *res = NULL;
    int nres = 0, exit_code = DURE_EXIT_OK, mpi_up = 0;

    memset(&b, 0, sizeof b);
    int rc = parse_opts(argc, argv, &b.o);
    if (rc) {
        return rc;
    }
    DURE_TRY(comm_mpi_init(&argc, &argv));
    mpi_up = 1;
    DURE_MPI_TRY(MPI_Comm_rank(MPI_COMM_WORLD, &b.rank));
    DURE_MPI_TRY(MPI_Comm_size(MPI_COMM_WORLD, &b.size));
    const char *corrupt = getenv("DURE_BENCH_CORRUPT");
    b.corrupt_rank = corrupt ? atoi(corrupt) : -1;
    b.es = b.o.dtype == COMM_BF16 ? 2 : 4;
    DURE_CHECK(b.o.coll->coll != COMM_BROADCAST || b.o.root < b.size, DURE_ERR_ARG,
               "-r %d: the root must be a rank below %d", b.o.root, b.size);

    DURE_TRY(comm_create(MPI_COMM_WORLD, &b.o.cfg, &b.dure));
    if (b.o.compare) {
        DURE_CHECK(comm_memory(b.dure) == COMM_MEM_HOST, DURE_ERR_ARG,
                   "--compare measures against MPI's native collective on host memory: use "
                   "--backend mpi");
        struct comm_config nc = b.o.cfg;
        nc.backend = COMM_BACKEND_MPI;
        nc.algo = COMM_ALGO_NATIVE;
        nc.deterministic = 0;
        DURE_TRY(comm_create(MPI_COMM_WORLD, &nc, &b.native));
    }

    b.max_total = b.o.max_bytes / b.es;
    DURE_CHECK(b.max_total > 0, DURE_ERR_ARG, "-e %zu is smaller than one element",
               b.o.max_bytes);
    if (b.o.use_malloc) {
        DURE_CHECK(comm_memory(b.dure) == COMM_MEM_HOST, DURE_ERR_ARG,
                   "--malloc gives host memory: backend %s needs device memory",
                   comm_backend_name(comm_backend(b.dure)));
        size_t bytes = (b.max_total * b.es + 4095) & ~(size_t)4095;
        b.send = aligned_alloc(4096, bytes);
        DURE_ALLOC_TRY(b.send, bytes);
        b.recv = aligned_alloc(4096, bytes);
        DURE_ALLOC_TRY(b.recv, bytes);
    } else {
        DURE_TRY(comm_mem_alloc(b.dure, b.max_total * b.es, &b.send));
        DURE_TRY(comm_mem_alloc(b.dure, b.max_total * b.es, &b.recv));
    }
    b.host = malloc(b.max_total * sizeof *b.host);
    DURE_ALLOC_TRY(b.host, b.max_total * sizeof *b.host);
    b.host16 = malloc(b.max_total * sizeof *b.host16);
    DURE_ALLOC_TRY(b.host16, b.max_total * sizeof *b.host16);
    if (b.o.compare) {
        /* MPI gets ordinary (page-aligned) heap buffers, as an MPI program has. */
        size_t bytes = (b.max_total * b.es + 4095) & ~(size_t)4095;
        b.ref_send = aligned_alloc(4096, bytes);
        DURE_ALLOC_TRY(b.ref_send, bytes);
        b.ref_recv = aligned_alloc(4096, bytes);
        DURE_ALLOC_TRY(b.ref_recv, bytes);
        memset(b.ref_send, 0, bytes);
        memset(b.ref_recv, 0, bytes);
    }
    /* Touch every page once, outside the timings. */
    for (size_t i = 0; i < b.max_total; i++) {
        b.host[i] = 0;
    }
    DURE_TRY(upload(&b, b.dure, b.send, b.max_total));
    DURE_TRY(upload(&b, b.dure, b.recv, b.max_total));

    struct variant vars[V_MAX] = {
        {b.dure, b.send, b.recv, 0},
        {b.dure, b.send, b.recv, 1},
    };
    if (b.o.compare) {
        vars[0] = (struct variant){b.dure, b.send, b.recv, 1};
        vars[1] = (struct variant){b.native, b.ref_send, b.ref_recv, 1};
    }
    int nsizes = 0;
    for (size_t s = b.o.min_bytes; s <= b.o.max_bytes; s = next_size(&b.o, s)) {
        nsizes++;
    }
    res = calloc((size_t)nsizes, sizeof *res);
    DURE_ALLOC_TRY(res, (size_t)nsizes * sizeof *res);

    if (b.rank == 0) {
        print_header(&b);
    }
    inject_start_faults(&b);
    for (size_t s = b.o.min_bytes; s <= b.o.max_bytes; s = next_size(&b.o, s)) {
        size_t total = s / b.es;
        if (b.o.coll->per_rank_count) {
            /* nccl-tests: equal per-rank counts, a multiple of 4 elements */
            total = total / (4 * (size_t)b.size) * 4 * (size_t)b.size;
        }
        DURE_TRY(bench_size(&b, vars, V_MAX, total, &res[nres]));
        if (b.rank == 0) {
            print_row(&b, &res[nres]);
        }
        nres++;
    }

    double sum_bus = 0, sum_native = 0;
    long wrong = 0;
    for (int i = 0; i < nres; i++) {
        wrong += res[i].wrong[0] + res[i].wrong[1];
        if (b.o.compare) {
            sum_bus += res[i].busbw[0];
            sum_native += res[i].busbw[1];
        } else {
            sum_bus += 0.5 * (res[i].busbw[0] + res[i].busbw[1]);
        }
    }
    double avg_bus = nres ? sum_bus / nres : 0, avg_native = nres ? sum_native / nres : 0;
    if (b.rank == 0) {
        printf("# Out of bounds values : %ld %s\n", wrong, wrong ? "FAILED" : "OK");
        printf("# Avg bus bandwidth    : %g \n", avg_bus);
        if (b.o.compare) {
            printf("# Avg bus bandwidth of MPI native : %g (dure / native %.2f)\n", avg_native,
                   avg_native > 0 ? avg_bus / avg_native : 0.0);
        }
        printf("#\n");
        fflush(stdout);
        if (b.o.json && write_json(&b, res, nres, avg_bus, avg_native, wrong) != 0) {
            exit_code = DURE_EXIT_FAILURE;
        }
        if (b.o.plot && write_plot(&b, res, nres) != 0) {
            exit_code = DURE_EXIT_FAILURE;
        }
    }
    if (wrong) {
        if (b.rank == 0) {
            fprintf(stderr, "dure bench: %ld wrong element(s): the collective returned "
                            "wrong data\n", wrong);
        }
        exit_code = DURE_EXIT_FAILURE;
    }
    if (b.o.min_busbw > 0 && avg_bus < b.o.min_busbw) {
        if (b.rank == 0) {
            fprintf(stderr, "dure bench: average bus bandwidth %.3f GB/s is below --min-busbw "
                            "%.3f\n", avg_bus, b.o.min_busbw);
        }
        exit_code = DURE_EXIT_FAILURE;
    }
    /* rank 0's report files decide for everyone */
    DURE_MPI_TRY(MPI_Bcast(&exit_code, 1, MPI_INT, 0, MPI_COMM_WORLD));
out:
    free(res);
    free(b.host);
    free(b.host16);
    free(b.ref_send);
    free(b.ref_recv);
    if (b.o.use_malloc) {
        free(b.send);
        free(b.recv);
    } else if (b.dure) {
        comm_mem_free(b.dure, b.send);
        comm_mem_free(b.dure, b.recv);
    }
    comm_destroy(b.native);
    comm_destroy(b.dure);
    if (mpi_up) {
        comm_mpi_finalize();
    }
    return st != DURE_OK ? dure_exit_code(st) : exit_code;
}
