/*
 * launcher/cmd_bench.c - `dure bench allreduce|reducescatter|allgather|broadcast`:
 * the options of nccl-tests, then collectives/bench.h measures, checks and
 * reports. Without --compare the two variants are out-of-place and in-place
 * on dure's choice; with it, dure in place beside MPI's native collective
 * in place (and a single-core memcpy), interleaved in the same repetitions.
 */
#include <getopt.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/bench.h"
#include "common/mpi_check.h"
#include "common/topo.h"
#include "launcher/cliopt.h"
#include "launcher/commands.h"
#include "launcher/exitcodes.h"
#include "launcher/ranks.h"
#include "launcher/watchdog_hook.h"

/* ---------------------------------------------------------------- options */

struct bench_opts {
    struct bench_spec spec;         /* coll, dtype, op, root, iters, warmup, reps, check */
    size_t min_bytes, max_bytes, step_bytes;
    double step_factor;             /* 0: additive steps of step_bytes */
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
            "      --algo auto|native|ring|shm|hier (default auto: the per-size table)\n"
            "      --algo-table TABLE  e.g. \"0:native,1M:shm\" (else $DURE_ALGO_TABLE, else built-in)\n"
            "      --ring-segment KIB  the ring's segment (else $DURE_RING_SEGMENT_KIB, else 256)\n"
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

/* 0 on success, else the exit code (usage printed). */
static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
    enum { O_BACKEND = 256, O_ALGO, O_TABLE, O_SEG, O_DET, O_WD, O_CMP, O_JSON, O_PLOT, O_MIN,
           O_MALLOC };
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
        {"ring-segment", required_argument, NULL, O_SEG},
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
    bench_spec_default(&o->spec, NULL);
    o->min_bytes = o->max_bytes = 32u << 20;
    o->step_bytes = 1u << 20;
    comm_config_default(&o->cfg);
    o->cfg.on_hang = dure_watchdog_abort;

    dure_log_set_quiet(1);
    while (!bad && (opt = getopt_long(argc, argv, "b:e:f:i:n:w:c:o:d:r:R:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'b': bad = cli_size("bench", "-b", optarg, &o->min_bytes); break;
        case 'e': bad = cli_size("bench", "-e", optarg, &o->max_bytes); break;
        case 'f': bad = cli_f64("bench", "-f", optarg, 1.0, INFINITY, &o->step_factor); break;
        case 'i': bad = cli_size("bench", "-i", optarg, &o->step_bytes); break;
        case 'n': bad = cli_int("bench", "-n", optarg, 1, 1000000, &o->spec.iters); break;
        case 'w': bad = cli_int("bench", "-w", optarg, 0, 1000000, &o->spec.warmup); break;
        case 'c': bad = cli_int("bench", "-c", optarg, 0, 1, &o->spec.check); break;
        case 'R': bad = cli_int("bench", "-R", optarg, 1, 1000, &o->spec.reps); break;
        case 'r': bad = cli_int("bench", "-r", optarg, 0, 1 << 30, &o->spec.root); break;
        case 'o':
            if (strcmp(optarg, "sum") == 0) {
                o->spec.op = COMM_SUM;
            } else if (strcmp(optarg, "avg") == 0) {
                o->spec.op = COMM_AVG;
            } else {
                fprintf(stderr, "dure bench: -o '%s' is not sum or avg\n", optarg);
                bad = 1;
            }
            break;
        case 'd':
            if (strcmp(optarg, "float") == 0) {
                o->spec.dtype = COMM_F32;
            } else if (strcmp(optarg, "bfloat16") == 0) {
                o->spec.dtype = COMM_BF16;
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
        case O_SEG: {
            int kib = 0;
            bad = cli_int("bench", "--ring-segment", optarg, 1,
                          (int)(COMM_RING_SEG_MAX >> 10), &kib);
            o->cfg.ring_seg_bytes = (size_t)kib << 10;
            break;
        }
        case O_DET: o->cfg.deterministic = 1; break;
        case O_WD:
            bad = cli_f64("bench", "--watchdog", optarg, 0.0, INFINITY, &o->cfg.watchdog_s);
            break;
        case O_CMP: o->compare = 1; break;
        case O_JSON: o->json = optarg; break;
        case O_PLOT: o->plot = optarg; break;
        case O_MIN:
            bad = cli_f64("bench", "--min-busbw", optarg, 0.0, INFINITY, &o->min_busbw);
            break;
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
            o->spec.coll = bench_coll_find(argv[optind]);
            if (!o->spec.coll) {
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

/* ---------------------------------------------------------------- main */

static size_t next_size(const struct bench_opts *o, size_t bytes)
{
    if (o->step_factor > 1.0) {
        size_t next = (size_t)((double)bytes * o->step_factor);
        return next > bytes ? next : bytes + 1;
    }
    return bytes + (o->step_bytes ? o->step_bytes : 1);
}

/* Rank 0 prints each size's row as soon as it is measured. */
static void print_progress(const struct bench_point *p, void *arg)
{
    const struct bench_report *r = arg;
    bench_print_row(stdout, r, p);
}

int cmd_bench(int argc, char **argv)
{
    static const char *const plain_names[] = {"out_of_place", "in_place"};
    static const char *const plain_titles[] = {"out-of-place", "in-place"};
    static const char *const compare_names[] = {"dure", "mpi_native"};
    static const char *const compare_titles[] = {"dure (in-place)", "MPI native (in-place)"};
    dure_status_t st = DURE_OK;
    struct bench_opts o;
    struct bench_point *points = NULL;
    size_t *sizes = NULL;
    comm_t *dure = NULL, *native = NULL;
    struct dure_topo topo;
    char topology[512];
    int rank = 0, nsizes = 0, exit_code = DURE_EXIT_OK, mpi_up = 0;

    memset(&topo, 0, sizeof topo);

    int rc = parse_opts(argc, argv, &o);
    if (rc) {
        return rc;
    }
    DURE_TRY(bench_faults_from_env(&o.spec.faults));
    o.spec.memcpy_peer = o.compare;
    DURE_TRY(dure_mpi_up(&argc, &argv));
    mpi_up = 1;
    DURE_MPI_TRY(MPI_Comm_rank(MPI_COMM_WORLD, &rank));

    DURE_TRY(comm_create(MPI_COMM_WORLD, &o.cfg, &dure));
    DURE_TRY(dure_topo_gather(MPI_COMM_WORLD, comm_local_rank(dure), &topo));
    dure_topo_format(&topo, topology, sizeof topology);
    struct bench_variant v[2] = {
        {.comm = dure, .in_place = 0, .heap = o.use_malloc},
        {.comm = dure, .in_place = 1, .heap = o.use_malloc},
    };
    if (o.compare) {
        DURE_CHECK(comm_memory(dure) == COMM_MEM_HOST, DURE_ERR_ARG,
                   "--compare measures against MPI's native collective on host memory: use "
                   "--backend mpi");
        struct comm_config nc = o.cfg;
        nc.backend = COMM_BACKEND_MPI;
        nc.algo = COMM_ALGO_NATIVE;
        nc.deterministic = 0;
        DURE_TRY(comm_create(MPI_COMM_WORLD, &nc, &native));
        /* MPI gets ordinary (page-aligned) heap buffers, as an MPI program has. */
        v[0] = (struct bench_variant){.comm = dure, .in_place = 1, .heap = o.use_malloc};
        v[1] = (struct bench_variant){.comm = native, .in_place = 1, .heap = 1};
    }
    DURE_CHECK(!o.use_malloc || comm_memory(dure) == COMM_MEM_HOST, DURE_ERR_ARG,
               "--malloc gives host memory: backend %s needs device memory",
               comm_backend_name(comm_backend(dure)));

    for (size_t s = o.min_bytes; s <= o.max_bytes; s = next_size(&o, s)) {
        nsizes++;
    }
    sizes = calloc((size_t)nsizes, sizeof *sizes);
    DURE_ALLOC_TRY(sizes, (size_t)nsizes * sizeof *sizes);
    points = calloc((size_t)nsizes, sizeof *points);
    DURE_ALLOC_TRY(points, (size_t)nsizes * sizeof *points);
    nsizes = 0;
    for (size_t s = o.min_bytes; s <= o.max_bytes; s = next_size(&o, s)) {
        sizes[nsizes++] = s;
    }

    struct bench_report report = {
        .spec = &o.spec,
        .comm = dure,
        .algo = o.cfg.algo,
        .deterministic = o.cfg.deterministic,
        .compare = o.compare,
        .heap = o.use_malloc,
        .nv = 2,
        .variant_names = o.compare ? compare_names : plain_names,
        .variant_titles = o.compare ? compare_titles : plain_titles,
        .topology = topology,
    };
    if (rank == 0) {
        bench_print_header(stdout, &report);
        o.spec.progress = print_progress;
        o.spec.progress_arg = &report;
    }
    DURE_TRY(bench_measure(MPI_COMM_WORLD, &o.spec, v, 2, sizes, nsizes, points));

    struct bench_summary sum;
    bench_summarize(&report, points, nsizes, &sum);
    if (rank == 0) {
        bench_print_footer(stdout, &report, &sum);
        /* A report file that cannot be written fails the run, not the measurement. */
        if (o.json && bench_write_json(o.json, &report, points, nsizes, &sum) != DURE_OK) {
            exit_code = DURE_EXIT_FAILURE;
        }
        if (o.plot && bench_write_plot(o.plot, &report, points, nsizes) != DURE_OK) {
            exit_code = DURE_EXIT_FAILURE;
        }
        if (sum.wrong) {
            fprintf(stderr, "dure bench: %ld wrong element(s): the collective returned "
                            "wrong data\n", sum.wrong);
        }
        if (o.min_busbw > 0 && sum.avg_busbw < o.min_busbw) {
            fprintf(stderr, "dure bench: average bus bandwidth %.3f GB/s is below --min-busbw "
                            "%.3f\n", sum.avg_busbw, o.min_busbw);
        }
    }
    if (sum.wrong || (o.min_busbw > 0 && sum.avg_busbw < o.min_busbw)) {
        exit_code = DURE_EXIT_FAILURE;
    }
    /* rank 0's report files decide for everyone */
    DURE_MPI_TRY(MPI_Bcast(&exit_code, 1, MPI_INT, 0, MPI_COMM_WORLD));
out:
    free(points);
    free(sizes);
    dure_topo_free(&topo);
    comm_destroy(native);
    comm_destroy(dure);
    if (mpi_up) {
        comm_mpi_finalize();
    }
    return st != DURE_OK ? dure_exit_code(st) : exit_code;
}
