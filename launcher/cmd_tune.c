/*
 * launcher/cmd_tune.c - `dure tune`: sweep every collective algorithm,
 * fit an alpha-beta model per algorithm and level, write the tuning files
 * (dure's algorithm table, Open MPI's coll_tuned rules, NCCL's tuner file,
 * the model JSON and a PNG), prove they help (--verify DIR), and judge the
 * fabric against a baseline (--baseline FILE).
 *
 * Runs under mpirun or srun like dure bench. Rank 0 writes every file, only
 * after the whole sweep checked out: a wrong element anywhere writes none.
 */
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/mpi_check.h"
#include "launcher/cliopt.h"
#include "launcher/commands.h"
#include "launcher/exitcodes.h"
#include "launcher/ranks.h"
#include "launcher/version.h"
#include "launcher/watchdog_hook.h"
#include "plan/plan.h"
#include "tune/choose.h"
#include "tune/health.h"
#include "tune/ompi_mpit.h"
#include "tune/plot.h"
#include "tune/report.h"
#include "tune/sweep.h"
#include "tune/verify.h"

struct tune_opts {
    const char *out, *verify, *baseline, *profile;
    struct tune_sweep_cfg cfg;
    int families_given, plot;
    double threshold;
    int sizes_given, timing_given;   /* -b/-e/-f, -n/-w/-R on the command line */
    int min_rep_given;               /* --min-rep-us */
    int recheck;                     /* time each change again (tune_recheck) */
    enum jobspec_comm_thread comm_thread;  /* --comm-thread */
    int comm_thread_given;
    double recheck_gain;             /* TUNE_RECHECK_GAIN unless given */
    size_t ring_segs[TUNE_RING_SEGS_MAX]; /* --ring-segments, bytes; nring_segs = 0: none */
    int nring_segs;
};

void cmd_tune_usage(FILE *out)
{
    fprintf(out,
            "usage: mpirun -np N dure tune -o DIR [options]       sweep, fit, write tuning files\n"
            "       mpirun -np N dure tune --verify DIR [options] emitted files vs defaults\n"
            "       mpirun -np N dure tune --baseline FILE        health verdict only\n"
            "\n"
            "Measure every algorithm of the backend (mpi: dure's native, ring, shm, hier and\n"
            "Open MPI's coll_tuned algorithms; nccl: NCCL's algorithm/protocol pairs) for\n"
            "all-reduce, reduce-scatter, all-gather and broadcast, within a node and across\n"
            "nodes, with nccl-tests' rules (warm-up, repetitions, median; every result\n"
            "checked). Fit time(n) = alpha + beta n per algorithm (in pieces where one line\n"
            "misses a size by more than the tolerance) and write into DIR:\n"
            "  tune.json        the fitted model (format 1) and every measurement\n"
            "  algo_table.ini   [parallel] algo_table for job specs (mpi)\n"
            "  ompi_rules.conf  Open MPI coll_tuned dynamic rules (mpi, Open MPI)\n"
            "  nccl_tuner.conf  NCCL example tuner plugin rules (nccl)\n"
            "  profile.ini      a site profile section that installs all of them\n"
            "  tune.png         measured points and model curves\n"
            "\n"
            "  -o, --out DIR            output directory (created)\n"
            "  -b, --minbytes SIZE      smallest size (default 4K)\n"
            "  -e, --maxbytes SIZE      largest size (default 64M)\n"
            "  -f, --stepfactor F       size factor between sizes (default 4)\n"
            "  -n, --iters N            operations per timed repetition (default 10)\n"
            "  -w, --warmup_iters N     untimed operations first (default 2)\n"
            "  -R, --reps N             repetitions per size; the median counts (default 5)\n"
            "      --min-rep-us US      more operations where a repetition would last less\n"
            "                           (default 100; 0: -n alone; raise it on a fabric whose\n"
            "                           rate limit lets bursts through, --verify: as DIR's)\n"
            "      --collectives LIST   of allreduce,reducescatter,allgather,broadcast (all)\n"
            "      --families LIST      of dure,ompi,nccl (mpi: dure,ompi; nccl: nccl)\n"
            "      --backend auto|mpi|nccl   (default auto)\n"
            "      --comm-thread auto|on|off  who runs dure's collectives (parallel.comm_thread):\n"
            "                           auto resolves as dure run does for a job computing on\n"
            "                           every core of these nodes (--verify: as DIR was swept)\n"
            "      --tolerance PCT      worst fit error before pieces (default 15)\n"
            "      --min-gain X         leave a default only where X times faster (1.25), at\n"
            "                           two neighbouring sizes at least\n"
            "      --recheck-gain X     keep an Open MPI rule or dure table change only where it\n"
            "                           is X times faster again when timed against the default,\n"
            "                           interleaved (default 1.4: --verify's target 1.2 over its\n"
            "                           noise)\n"
            "      --no-recheck         write the rules and the table from the sweep's timings\n"
            "                           alone\n"
            "      --ring-segments LIST KiB, 2 to %d (e.g. 256,1024): time dure's ring\n"
            "                           (hier's rail across nodes) all-reduce, reduce-scatter\n"
            "                           and all-gather in each first, interleaved, and sweep\n"
            "                           in the fastest (another than the first only %.1fx\n"
            "                           faster); the files pin it\n"
            "      --profile-name NAME  section name in profile.ini (default tuned)\n"
            "      --link-bytes SIZE    node-pair ping-pong message (default 4M)\n"
            "      --no-plot            do not draw tune.png\n"
            "      --watchdog SECONDS   abort with exit code %d when a collective hangs\n"
            "      --verify DIR         rerun DIR's sizes (-n -w -R may change), emitted settings vs\n"
            "                           the defaults interleaved; speed-up per size (verify.json)\n"
            "      --baseline FILE      an earlier tune.json (its sizes and timing unless given):\n"
            "                           flag every busbw that fell\n"
            "      --threshold PCT      by more than PCT (default 20); and node pairs whose\n"
            "                           bandwidth is PCT below the fastest pair\n"
            "\n"
            "Exit status: 0; 1 when a result was wrong (no file written) or on an error;\n"
            "2 for bad options; 3 for a bad baseline shape; 4 for a malformed input file;\n"
            "%d when unhealthy (--baseline, slow links); %d when the watchdog fired.\n",
            TUNE_RING_SEGS_MAX, TUNE_RING_SEGMENT_GAIN, DURE_EXIT_WATCHDOG, DURE_EXIT_UNHEALTHY,
            DURE_EXIT_WATCHDOG);
}

static int parse_list(const char *opt, const char *s, int (*parse)(const char *), int *flags,
                      int n)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (int i = 0; i < n; i++) {
        flags[i] = 0;
    }
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int k = parse(tok);
        if (k < 0 || k >= n) {
            fprintf(stderr, "dure tune: %s: '%s' is not one of the names allowed\n", opt, tok);
            return -1;
        }
        flags[k] = 1;
    }
    return 0;
}

/* "256,1024": KiB, 2 to TUNE_RING_SEGS_MAX of them, each a valid segment
 * and none twice; -1 with a message naming the bad one. */
static int parse_segments(const char *s, struct tune_opts *o)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    o->nring_segs = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int kib = 0;
        if (o->nring_segs == TUNE_RING_SEGS_MAX) {
            fprintf(stderr, "dure tune: --ring-segments '%s': more than %d segments\n", s,
                    TUNE_RING_SEGS_MAX);
            return -1;
        }
        if (cli_int("tune", "--ring-segments", tok, 1, (int)(COMM_RING_SEG_MAX >> 10), &kib)) {
            return -1;
        }
        for (int i = 0; i < o->nring_segs; i++) {
            if (o->ring_segs[i] == (size_t)kib << 10) {
                fprintf(stderr, "dure tune: --ring-segments '%s': %d KiB twice\n", s, kib);
                return -1;
            }
        }
        o->ring_segs[o->nring_segs++] = (size_t)kib << 10;
    }
    if (o->nring_segs < 2) {
        fprintf(stderr, "dure tune: --ring-segments '%s': give 2 to %d segments to compare\n",
                s, TUNE_RING_SEGS_MAX);
        return -1;
    }
    return 0;
}

/* 0 on success, else the exit code (usage printed). */
static int parse_opts(int argc, char **argv, struct tune_opts *o)
{
    enum { O_COLLS = 256, O_FAMS, O_BACKEND, O_TOL, O_GAIN, O_PROFILE, O_LINK, O_NOPLOT, O_WD,
           O_VERIFY, O_BASE, O_THR, O_RECHECK_GAIN, O_NO_RECHECK, O_COMM_THREAD, O_MIN_REP,
           O_SEGS };
    static const struct option longopts[] = {
        {"out", required_argument, NULL, 'o'},
        {"minbytes", required_argument, NULL, 'b'},
        {"maxbytes", required_argument, NULL, 'e'},
        {"stepfactor", required_argument, NULL, 'f'},
        {"iters", required_argument, NULL, 'n'},
        {"warmup_iters", required_argument, NULL, 'w'},
        {"reps", required_argument, NULL, 'R'},
        {"collectives", required_argument, NULL, O_COLLS},
        {"families", required_argument, NULL, O_FAMS},
        {"backend", required_argument, NULL, O_BACKEND},
        {"tolerance", required_argument, NULL, O_TOL},
        {"min-gain", required_argument, NULL, O_GAIN},
        {"profile-name", required_argument, NULL, O_PROFILE},
        {"link-bytes", required_argument, NULL, O_LINK},
        {"no-plot", no_argument, NULL, O_NOPLOT},
        {"watchdog", required_argument, NULL, O_WD},
        {"verify", required_argument, NULL, O_VERIFY},
        {"baseline", required_argument, NULL, O_BASE},
        {"threshold", required_argument, NULL, O_THR},
        {"recheck-gain", required_argument, NULL, O_RECHECK_GAIN},
        {"no-recheck", no_argument, NULL, O_NO_RECHECK},
        {"comm-thread", required_argument, NULL, O_COMM_THREAD},
        {"min-rep-us", required_argument, NULL, O_MIN_REP},
        {"ring-segments", required_argument, NULL, O_SEGS},
        {NULL, 0, NULL, 0},
    };
    struct tune_sweep_cfg *c = &o->cfg;
    int opt, bad = 0;
    double pct = 0, us = 0;

    memset(o, 0, sizeof *o);
    c->opts = (struct tune_sweep_opts){4096, 64u << 20, 4, 10, 2, 5, 0.15, 1.25, -1,
                                       TUNE_REP_MIN_S};
    for (int i = 0; i <= COMM_BROADCAST; i++) {
        c->coll[i] = 1;
    }
    comm_config_default(&c->comm);
    c->comm.on_hang = dure_watchdog_abort;
    c->link_bytes = 4u << 20;
    o->profile = "tuned";
    o->plot = 1;
    o->threshold = 0.2;
    o->recheck = 1;
    o->recheck_gain = TUNE_RECHECK_GAIN;

    dure_log_set_quiet(1);
    while (!bad && (opt = getopt_long(argc, argv, "o:b:e:f:n:w:R:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'o': o->out = optarg; break;
        case 'b':
            bad = cli_size("tune", "-b", optarg, &c->opts.min_bytes);
            o->sizes_given = 1;
            break;
        case 'e':
            bad = cli_size("tune", "-e", optarg, &c->opts.max_bytes);
            o->sizes_given = 1;
            break;
        case 'f':
            bad = cli_f64("tune", "-f", optarg, 1.01, 1024, &c->opts.factor);
            o->sizes_given = 1;
            break;
        case 'n':
            bad = cli_int("tune", "-n", optarg, 1, 1000000, &c->opts.iters);
            o->timing_given = 1;
            break;
        case 'w':
            bad = cli_int("tune", "-w", optarg, 0, 1000000, &c->opts.warmup);
            o->timing_given = 1;
            break;
        case 'R':
            bad = cli_int("tune", "-R", optarg, 1, 1000, &c->opts.reps);
            o->timing_given = 1;
            break;
        case O_SEGS:
            bad = parse_segments(optarg, o);
            break;
        case O_MIN_REP:
            bad = cli_f64("tune", "--min-rep-us", optarg, 0, 1e6, &us);
            c->opts.min_rep_s = us * 1e-6;
            o->min_rep_given = 1;
            break;
        case O_COLLS:
            bad = parse_list("--collectives", optarg, tune_coll_parse, c->coll, COMM_BROADCAST + 1);
            break;
        case O_FAMS:
            bad = parse_list("--families", optarg, tune_family_parse, c->family,
                             TUNE_FAMILY_COUNT);
            o->families_given = 1;
            break;
        case O_BACKEND:
            if (comm_backend_parse(optarg, &c->comm.backend) != DURE_OK) {
                fprintf(stderr, "dure tune: --backend: %s\n", dure_last_error());
                bad = 1;
            }
            break;
        case O_TOL:
            bad = cli_f64("tune", "--tolerance", optarg, 0.1, 1000, &pct);
            c->opts.tolerance = pct / 100;
            break;
        case O_GAIN:
            bad = cli_f64("tune", "--min-gain", optarg, 1.0, 1000, &c->opts.min_gain);
            break;
        case O_PROFILE:
            o->profile = optarg;
            if (!*optarg || strpbrk(optarg, "[]= \t\n")) {
                fprintf(stderr, "dure tune: --profile-name '%s' is not a section name\n", optarg);
                bad = 1;
            }
            break;
        case O_LINK:
            bad = cli_size("tune", "--link-bytes", optarg, &c->link_bytes);
            if (!bad && c->link_bytes > (1u << 30)) {
                fprintf(stderr, "dure tune: --link-bytes '%s' is above 1G\n", optarg);
                bad = 1;
            }
            break;
        case O_NOPLOT: o->plot = 0; break;
        case O_RECHECK_GAIN:
            bad = cli_f64("tune", "--recheck-gain", optarg, 1.0, 1000, &o->recheck_gain);
            break;
        case O_NO_RECHECK: o->recheck = 0; break;
        case O_COMM_THREAD:
            bad = 1;
            for (int i = 0; jobspec_comm_thread_names[i]; i++) {
                if (strcmp(optarg, jobspec_comm_thread_names[i]) == 0) {
                    o->comm_thread = (enum jobspec_comm_thread)i;
                    bad = 0;
                }
            }
            if (bad) {
                fprintf(stderr, "dure tune: --comm-thread '%s' is not one of auto, on, off\n",
                        optarg);
            }
            o->comm_thread_given = 1;
            break;
        case O_WD: bad = cli_f64("tune", "--watchdog", optarg, 0, 1e9, &c->comm.watchdog_s); break;
        case O_VERIFY: o->verify = optarg; break;
        case O_BASE: o->baseline = optarg; break;
        case O_THR:
            bad = cli_f64("tune", "--threshold", optarg, 0.1, 99, &pct);
            o->threshold = pct / 100;
            break;
        default: bad = 1; break;
        }
    }
    dure_log_set_quiet(0);
    if (!bad && optind != argc) {
        fprintf(stderr, "dure tune: unexpected argument '%s'\n", argv[optind]);
        bad = 1;
    }
    if (!bad && !o->out && !o->verify && !o->baseline) {
        fprintf(stderr, "dure tune: give -o DIR, --verify DIR or --baseline FILE\n");
        bad = 1;
    }
    if (!bad && o->verify && (o->out || o->baseline)) {
        fprintf(stderr, "dure tune: --verify DIR takes neither -o nor --baseline\n");
        bad = 1;
    }
    if (!bad && o->nring_segs && !o->out) {
        fprintf(stderr, "dure tune: --ring-segments goes with a sweep (-o DIR)\n");
        bad = 1;
    }
    if (!bad && c->opts.max_bytes < c->opts.min_bytes) {
        fprintf(stderr, "dure tune: need -b <= -e\n");
        bad = 1;
    }
    size_t sizes[TUNE_SIZES_MAX];
    int nsizes = 0;
    dure_log_set_quiet(1);
    if (!bad && tune_sweep_sizes(&c->opts, sizes, &nsizes) != DURE_OK) {
        fprintf(stderr, "dure tune: %s\n", dure_last_error());
        bad = 1;
    }
    dure_log_set_quiet(0);
    if (bad) {
        fputc('\n', stderr);
        cmd_tune_usage(stderr);
        return DURE_EXIT_USAGE;
    }
    return 0;
}

/*
 * The backend auto resolves to here (a probe communicator; collective), and
 * who runs the collectives: `want`
 * (--comm-thread, parallel.comm_thread's values) resolved as dure run
 * resolves it for a job of these ranks on these nodes computing on every
 * core (run.threads = 0, plan_rank_cpus), so that the sweep times the
 * collectives as a job's step runs them (collectives/comm.h: caller_runs,
 * spin_ns). *caller_runs receives the choice, *nodes the nodes the job spans.
 */
static dure_status_t resolve_backend(struct comm_config *cfg, enum jobspec_comm_thread want,
                                     int *caller_runs, int *nodes)
{
    dure_status_t st = DURE_OK;
    comm_t *probe = NULL;
    int threads = 1, cores = 1;
    DURE_TRY(comm_create(MPI_COMM_WORLD, cfg, &probe));
    cfg->backend = comm_backend(probe);
    *nodes = comm_node_count(probe);
    int per_node = comm_local_size(probe);
    plan_rank_cpus(0, per_node, &threads, &cores);
    cfg->caller_runs = cfg->backend == COMM_BACKEND_MPI &&
                       plan_caller_runs(want, *nodes, per_node, threads, cores);
    cfg->spin_ns = comm_spin_ns(cfg->caller_runs, per_node, threads, cores);
    *caller_runs = cfg->caller_runs;
out:
    comm_destroy(probe);
    return st;
}

static void fill_identity(struct tune_result *r)
{
    struct dure_versions v;
    time_t now = time(NULL);
    struct tm tm;
    char host[MPI_MAX_PROCESSOR_NAME] = "";
    int len = 0;
    dure_versions_get(&v);
    snprintf(r->dure_version, sizeof r->dure_version, "%s (%s)", v.dure, v.git);
    snprintf(r->mpi_library, sizeof r->mpi_library, "%s", v.mpi);
    gmtime_r(&now, &tm);
    strftime(r->created, sizeof r->created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    MPI_Get_processor_name(host, &len);
    snprintf(r->host0, sizeof r->host0, "%.47s", host);
}

/* "DIR/name" into buf ("" when it does not fit: opening it then fails, named). */
static const char *in_dir(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= len) {
        buf[0] = '\0';
    }
    return buf;
}

/* Every wrong result, named; 1 when there was one. */
static int report_wrong(const struct tune_result *r)
{
    int any = 0;
    for (int i = 0; i < r->nseries; i++) {
        const struct tune_series *s = &r->s[i];
        for (int k = 0; k < s->n; k++) {
            if (s->pt[k].wrong) {
                char sz[32];
                comm_format_bytes(s->pt[k].bytes, sz, sizeof sz);
                fprintf(stderr, "dure tune: %s %s level, %s %s, %s: %ld wrong element(s)\n",
                        tune_coll_name(s->coll), tune_level_name(s->level),
                        tune_family_name(s->family), s->name, sz, s->pt[k].wrong);
                any = 1;
            }
        }
    }
    if (any) {
        fprintf(stderr, "dure tune: collectives returned wrong data: no tuning file written\n");
    }
    return any;
}

/* Rank 0: choose, then write every file; the model last (it lists them). */
static dure_status_t write_outputs(const struct tune_opts *o, const struct tune_result *r)
{
    dure_status_t st = DURE_OK;
    char path[4200], ompi_abs[PATH_MAX], nccl_abs[PATH_MAX], dir_abs[PATH_MAX];
    struct tune_outputs out = {.ompi_rules = -1, .nccl_rules = -1};
    struct tune_ompi_rules *rs = NULL;
    struct tune_nccl_conf *nc = NULL;
    char comment[512];

    snprintf(comment, sizeof comment,
             "measured by dure tune on %d rank(s), %d node(s) (rank 0 on %s), %s\nsizes %zu to "
             "%zu bytes, min gain %.2f", r->ranks, r->nodes, r->host0, r->created,
             r->opts.min_bytes, r->opts.max_bytes, r->opts.min_gain);
    DURE_TRY(dure_mkdirs(o->out));
    DURE_SYS_TRY(realpath(o->out, dir_abs) != NULL, "cannot resolve the output directory '%s'",
                 o->out);
    DURE_TRY(tune_choose_dure_table(r, &out.table));
    if (out.table.n > 0) {
        out.have_table = 1;
        out.table_file = "algo_table.ini";
        DURE_TRY(tune_write_algo_table(r, &out.table, in_dir(path, sizeof path, o->out,
                                                             out.table_file)));
    }
    for (int i = 0; i < r->nseries; i++) {
        if (r->s[i].family == TUNE_FAMILY_OMPI && !rs) {
            rs = calloc(1, sizeof *rs);
            DURE_ALLOC_TRY(rs, sizeof *rs);
            DURE_TRY(tune_choose_ompi_rules(r, rs, &out.ompi_changed));
            out.ompi_rules = rs->n;
            out.ompi_file = "ompi_rules.conf";
            DURE_TRY(tune_ompi_rules_write(rs, comment, in_dir(path, sizeof path, o->out,
                                                               out.ompi_file)));
        }
        if (r->s[i].family == TUNE_FAMILY_NCCL && !nc) {
            nc = calloc(1, sizeof *nc);
            DURE_ALLOC_TRY(nc, sizeof *nc);
            DURE_TRY(tune_choose_nccl_conf(r, nc));
            out.nccl_rules = nc->n;
            out.nccl_file = "nccl_tuner.conf";
            DURE_TRY(tune_nccl_conf_write(nc, comment, in_dir(path, sizeof path, o->out,
                                                              out.nccl_file)));
        }
    }
    out.profile_file = "profile.ini";
    DURE_TRY(tune_write_profile(r, o->profile, out.have_table ? &out.table : NULL,
                                out.ompi_file ? in_dir(ompi_abs, sizeof ompi_abs, dir_abs,
                                                       out.ompi_file)
                                              : NULL,
                                out.nccl_file ? in_dir(nccl_abs, sizeof nccl_abs, dir_abs,
                                                       out.nccl_file)
                                              : NULL,
                                in_dir(path, sizeof path, o->out, out.profile_file)));
    if (o->plot) {
        out.plot_file = "tune.png";
        DURE_TRY(tune_plot(r, tune_job_level(r), in_dir(path, sizeof path, o->out,
                                                        out.plot_file)));
    }
    DURE_TRY(tune_report_write(r, &out, in_dir(path, sizeof path, o->out, "tune.json")));
    if (out.have_table) {
        char table[256], seg[16];
        comm_algo_table_format(&out.table, table, sizeof table);
        comm_format_bytes(r->ring_seg_bytes, seg, sizeof seg);
        printf("dure tune: algorithm table %s (measured with the ring in %s segments)\n", table,
               seg);
    }
    if (out.ompi_file) {
        printf("dure tune: Open MPI rules: %d message rule(s), %d not Open MPI's own choice\n",
               out.ompi_rules, out.ompi_changed);
    }
    if (out.nccl_file) {
        printf("dure tune: NCCL tuner rules: %d\n", out.nccl_rules);
    }
    printf("dure tune: wrote %s/{tune.json,%s%s%s%sprofile.ini}\n", o->out,
           out.table_file ? "algo_table.ini," : "", out.ompi_file ? "ompi_rules.conf," : "",
           out.nccl_file ? "nccl_tuner.conf," : "", out.plot_file ? "tune.png," : "");
out:
    free(rs);
    free(nc);
    return st;
}

/* The worst fit over every series: the `bench:` line. */
static void print_fit_bench(const struct tune_result *r)
{
    const struct tune_series *worst = NULL;
    int pieces = 0;
    for (int i = 0; i < r->nseries; i++) {
        if (!worst || r->s[i].fit.worst_err > worst->fit.worst_err) {
            worst = &r->s[i];
        }
        pieces += r->s[i].fit.npieces > 1;
    }
    if (!worst) {
        return;
    }
    printf("# worst fit: %s %s level, %s %s (%d piece(s)); %d of %d series needed pieces\n",
           tune_coll_name(worst->coll), tune_level_name(worst->level),
           tune_family_name(worst->family), worst->name, worst->fit.npieces, pieces,
           r->nseries);
    printf("bench: tune_fit_worst_error: %.2f %% (tolerance: %.2f %%, ratio %.2f)\n",
           100 * worst->fit.worst_err, 100 * r->opts.tolerance,
           worst->fit.worst_err / r->opts.tolerance);
}

/* Rank 0 after the sweep: check, fit, report, write, judge. */
static dure_status_t finish_sweep(const struct tune_opts *o, struct tune_result *r,
                                  const struct tune_result *base, int *exit_code)
{
    dure_status_t st = DURE_OK;
    int findings = 0;
    fill_identity(r);
    if (report_wrong(r)) {
        *exit_code = DURE_EXIT_FAILURE;
        goto out;
    }
    DURE_TRY(tune_result_fit(r));
    tune_report_print(stdout, r);
    print_fit_bench(r);
    if (o->out) {
        DURE_TRY(write_outputs(o, r));
    }
    if (o->baseline || r->nlinks > 0) {
        DURE_TRY(tune_health(r, o->baseline ? base : NULL, o->baseline, o->threshold, stdout,
                             &findings));
        *exit_code = findings ? DURE_EXIT_UNHEALTHY : DURE_EXIT_OK;
    }
out:
    fflush(stdout);
    return st;
}

/* How dure tune times, for the first line of a sweep or a --verify. */
static void print_timing(const struct tune_sweep_opts *o)
{
    printf("%d iters x %d reps (median), warmup %d, repetitions of %g us at least; dure's "
           "collectives run by %s\n", o->iters, o->reps, o->warmup, 1e6 * o->min_rep_s,
           o->caller_runs ? "the ranks' waits" : "a communication thread");
    fflush(stdout);
}

/* Rank 0 after --verify: the table, the verdicts, verify.json. */
static dure_status_t finish_verify(const char *dir, const struct tune_verify *v, int *exit_code)
{
    dure_status_t st = DURE_OK;
    char path[4200];
    long wrong = 0;
    for (int i = 0; i < v->n; i++) {
        wrong += v->row[i].wrong;
    }
    tune_verify_print(stdout, v);
    DURE_TRY(tune_verify_write(v, in_dir(path, sizeof path, dir, "verify.json")));
    if (wrong) {
        fprintf(stderr, "dure tune: --verify: %ld wrong element(s)\n", wrong);
        *exit_code = DURE_EXIT_FAILURE;
    }
out:
    fflush(stdout);
    return st;
}

int cmd_tune(int argc, char **argv)
{
    dure_status_t st = DURE_OK;
    struct tune_opts o;
    struct tune_result r, base, model;
    struct tune_verify *ver = NULL;
    int exit_code = DURE_EXIT_OK, mpi_up = 0, rank = 0, had_rules = 0;
    int verdict[2] = {DURE_EXIT_OK, DURE_OK};   /* rank 0's exit code and status */
    char why[512] = "", path[4200];

    tune_result_init(&r);
    tune_result_init(&base);
    tune_result_init(&model);
    int rc = parse_opts(argc, argv, &o);
    if (rc) {
        return rc;
    }
    struct tune_sweep_cfg *cfg = &o.cfg;
    tune_ompi_prepare(&had_rules);
    DURE_TRY(dure_mpi_up(&argc, &argv));
    mpi_up = 1;
    DURE_MPI_TRY(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    DURE_TRY(tune_ompi_open(&cfg->ompi_usable, why, sizeof why));

    if (o.verify || o.baseline) {
        /* every rank reads (verify needs the sizes); rank 0 alone says what is wrong */
        dure_log_set_quiet(rank != 0);
        if (o.verify) {
            st = tune_report_read(in_dir(path, sizeof path, o.verify, "tune.json"), &model);
        }
        if (st == DURE_OK && o.baseline) {
            st = tune_report_read(o.baseline, &base);
        }
        dure_log_set_quiet(0);
        DURE_TRY(st);
    }
    if (o.verify || o.baseline) {
        /* the sizes and timing of the run compared with, unless given */
        const struct tune_sweep_opts *was = o.verify ? &model.opts : &base.opts;
        if (!o.sizes_given || o.verify) {
            cfg->opts.min_bytes = was->min_bytes;
            cfg->opts.max_bytes = was->max_bytes;
            cfg->opts.factor = was->factor;
        }
        if (!o.timing_given) {
            cfg->opts.iters = was->iters;
            cfg->opts.warmup = was->warmup;
            cfg->opts.reps = was->reps;
        }
        if (!o.min_rep_given) {
            cfg->opts.min_rep_s = was->min_rep_s;
        }
    }
    if (o.verify && !o.comm_thread_given && model.opts.caller_runs >= 0) {
        o.comm_thread = model.opts.caller_runs ? JOBSPEC_COMM_THREAD_OFF : JOBSPEC_COMM_THREAD_ON;
    }
    DURE_TRY(resolve_backend(&cfg->comm, o.comm_thread, &cfg->opts.caller_runs, &cfg->nodes));
    if (!o.families_given) {
        int nccl = cfg->comm.backend == COMM_BACKEND_NCCL;
        cfg->family[TUNE_FAMILY_DURE] = !nccl;
        cfg->family[TUNE_FAMILY_OMPI] = !nccl;
        cfg->family[TUNE_FAMILY_NCCL] = nccl;
    }
    DURE_CHECK(!cfg->family[TUNE_FAMILY_NCCL] || cfg->comm.backend == COMM_BACKEND_NCCL,
               DURE_ERR_ARG, "--families nccl needs the nccl backend (a GPU per rank); this run "
               "has backend %s", comm_backend_name(cfg->comm.backend));
    if (rank == 0) {
        if (cfg->family[TUNE_FAMILY_OMPI] && !cfg->ompi_usable) {
            printf("# Open MPI's algorithms are not swept: %s\n", why);
        }
        if (had_rules) {
            printf("# OMPI_MCA_coll_tuned_dynamic_rules_filename is ignored while dure tune "
                   "sweeps\n");
        }
    }
    cfg->family[TUNE_FAMILY_OMPI] = cfg->family[TUNE_FAMILY_OMPI] && cfg->ompi_usable;

    if (o.verify) {
        if (rank == 0) {
            printf("# dure tune --verify %s: ", o.verify);
            print_timing(&cfg->opts);
        }
        ver = calloc(1, sizeof *ver);
        DURE_ALLOC_TRY(ver, sizeof *ver);
        DURE_TRY(tune_verify_run(cfg, o.verify, &model, ver, rank == 0 ? stdout : NULL));
        if (rank == 0) {
            verdict[1] = finish_verify(o.verify, ver, &verdict[0]);
        }
    } else {
        DURE_CHECK(!o.nring_segs || (cfg->family[TUNE_FAMILY_DURE] &&
                                     cfg->comm.backend == COMM_BACKEND_MPI),
                   DURE_ERR_ARG, "--ring-segments: dure's ring runs on the mpi backend, with the "
                   "dure family swept (this run: backend %s%s)",
                   comm_backend_name(cfg->comm.backend),
                   cfg->family[TUNE_FAMILY_DURE] ? "" : ", --families without dure");
        snprintf(r.backend, sizeof r.backend, "%s", comm_backend_name(cfg->comm.backend));
        size_t sizes[TUNE_SIZES_MAX];
        int n = 0;
        DURE_TRY(tune_sweep_sizes(&cfg->opts, sizes, &n));
        if (rank == 0) {
            printf("# dure tune: backend %s, %d size(s) from %zu to %zu bytes, ", r.backend, n,
                   sizes[0], sizes[n - 1]);
            print_timing(&cfg->opts);
        }
        if (o.nring_segs) {
            DURE_TRY(tune_sweep_ring_segment(cfg, o.ring_segs, o.nring_segs, &r,
                                             rank == 0 ? stdout : NULL));
        }
        DURE_TRY(tune_sweep_run(cfg, &r, rank == 0 ? stdout : NULL));
        if (o.recheck && !tune_result_first_wrong(&r, &(int){0})) {
            DURE_TRY(tune_recheck(cfg, &r, o.recheck_gain, rank == 0 ? stdout : NULL));
        }
        if (rank == 0) {
            verdict[1] = finish_sweep(&o, &r, &base, &verdict[0]);
        }
    }
    /* rank 0's verdict (and its files) decide for everyone */
    DURE_MPI_TRY(MPI_Bcast(verdict, 2, MPI_INT, 0, MPI_COMM_WORLD));
    st = (dure_status_t)verdict[1];
    exit_code = verdict[0];
out:
    free(ver);
    tune_result_free(&r);
    tune_result_free(&base);
    tune_result_free(&model);
    if (mpi_up) {
        tune_ompi_close();
        comm_mpi_finalize();
    }
    return st != DURE_OK ? dure_exit_code(st) : exit_code;
}
