/*
 * launcher/cmd_preflight.c - `dure preflight JOB.ini`: check every node of
 * this job (launcher/preflight.h) and say which is unfit and why, before
 * `dure run` spends training time on it. The first step of every rendered
 * batch script (slurm/batch.sh.in); also standalone under srun or mpirun.
 */
#include <getopt.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collectives/comm.h"
#include "common/mpi_check.h"
#include "common/topo.h"
#include "jobs/jobspec.h"
#include "launcher/cliopt.h"
#include "launcher/commands.h"
#include "launcher/exitcodes.h"
#include "launcher/preflight.h"
#include "launcher/ranks.h"

enum { DEFAULT_BUDGET_S = 30 };

void cmd_preflight_usage(FILE *out)
{
    fprintf(out,
            "usage: srun dure preflight JOB.ini [--set section.key=value ...] [options]\n"
            "       mpirun -np N dure preflight JOB.ini\n"
            "\n"
            "Check every node of this job before training: the dure binary and library\n"
            "versions agree, CPU and GPU binding, memory for the job spec's estimate, the\n"
            "run directory and the dataset identical on every node, clocks, SIGUSR2\n"
            "delivery (under Slurm), and all-reduce bandwidth within and between nodes.\n"
            "Prints one table (node x check) and a verdict; each bad node is named with\n"
            "the reason.\n"
            "\n"
            "  -s, --set KEY=VALUE     override a job-spec key (repeatable)\n"
            "      --budget S          give up after S seconds (default %d)\n"
            "      --max-clock-skew S  clocks may differ this much (default 1)\n"
            "      --min-intra GB/s    minimum all-reduce busbw within a node (default\n"
            "                          $DURE_PREFLIGHT_MIN_INTRA_GBS; unset: report only)\n"
            "      --min-inter GB/s    minimum between nodes, all-reduce and each link\n"
            "                          (default $DURE_PREFLIGHT_MIN_INTER_GBS)\n"
            "      --no-signal         skip the SIGUSR2 check\n"
            "      --bad-nodes FILE    append each bad node's name to FILE (one per line;\n"
            "                          the batch script excludes them when it requeues);\n"
            "                          none when every node failed (the job is at fault)\n"
            "\n"
            "exit codes: 0 every node passed, 10 a node failed a check, 2 usage, 3 bad job\n"
            "spec, 1 runtime error, 124 the budget ran out (a node or check hangs).\n",
            DEFAULT_BUDGET_S);
}

static char budget_msg[256];

/* The budget ran out: say where, and end the job (only the launcher exits). */
static void on_alarm(int sig)
{
    (void)sig;
    ssize_t w = write(STDERR_FILENO, budget_msg, strlen(budget_msg));
    (void)w;
    _exit(DURE_EXIT_WATCHDOG);
}

static double env_gbs(const char *name)
{
    const char *s = getenv(name);
    char *end = NULL;
    double v = s && *s ? strtod(s, &end) : 0;
    return s && *s && !*end && v > 0 ? v : 0;
}

int cmd_preflight(int argc, char **argv)
{
    static const struct option opts[] = {
        {"set", required_argument, NULL, 's'},
        {"budget", required_argument, NULL, 'b'},
        {"max-clock-skew", required_argument, NULL, 'k'},
        {"min-intra", required_argument, NULL, 'i'},
        {"min-inter", required_argument, NULL, 'e'},
        {"no-signal", no_argument, NULL, 'n'},
        {"bad-nodes", required_argument, NULL, 'x'},
        {NULL, 0, NULL, 0},
    };
    dure_status_t st = DURE_OK;
    struct dure_jobspec *spec = NULL;
    struct dure_ranks ranks;
    struct dure_topo topo;
    struct pf_report rep;
    struct pf_options o = {.max_skew_s = 1, .signal_test = 1};
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    const char *bad_file = NULL;
    double budget = DEFAULT_BUDGET_S;
    int n_sets = 0, opt, mpi_up = 0, verdict = DURE_EXIT_OK;

    memset(&ranks, 0, sizeof ranks);
    memset(&topo, 0, sizeof topo);
    memset(&rep, 0, sizeof rep);
    if (!sets) {
        fprintf(stderr, "dure preflight: out of memory\n");
        return DURE_EXIT_NOMEM;
    }
    o.min_intra_gbs = env_gbs("DURE_PREFLIGHT_MIN_INTRA_GBS");
    o.min_inter_gbs = env_gbs("DURE_PREFLIGHT_MIN_INTER_GBS");
    dure_getopt_reset();
    while ((opt = getopt_long(argc, argv, "s:", opts, NULL)) != -1) {
        int bad = 0;
        switch (opt) {
        case 's': sets[n_sets++] = optarg; break;
        case 'b': bad = cli_f64("preflight", "--budget", optarg, 0, INFINITY, &budget); break;
        case 'k':
            bad = cli_f64("preflight", "--max-clock-skew", optarg, 0, INFINITY, &o.max_skew_s);
            break;
        case 'i':
            bad = cli_f64("preflight", "--min-intra", optarg, 0, INFINITY, &o.min_intra_gbs);
            break;
        case 'e':
            bad = cli_f64("preflight", "--min-inter", optarg, 0, INFINITY, &o.min_inter_gbs);
            break;
        case 'n': o.signal_test = 0; break;
        case 'x': bad_file = optarg; break;
        default: bad = -1; cmd_preflight_usage(stderr); break;
        }
        if (bad) {
            free(sets);
            return DURE_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "dure preflight: expected one job spec (JOB.ini)\n");
        cmd_preflight_usage(stderr);
        free(sets);
        return DURE_EXIT_USAGE;
    }

    DURE_TRY(dure_mpi_up(&argc, &argv));
    mpi_up = 1;
    DURE_TRY(dure_ranks_init(&ranks, MPI_COMM_WORLD));
    dure_log_set_rank(ranks.world_rank);
    DURE_TRY(dure_topo_gather(MPI_COMM_WORLD, ranks.local_rank, &topo));
    {
        char host[DURE_TOPO_HOST_MAX];
        snprintf(host, sizeof host, "%s", topo.host[topo.node_of[ranks.world_rank]]);
        snprintf(budget_msg, sizeof budget_msg,
                 "dure: error [%s rank %d] dure preflight: the time budget of %.0f s ran out: a "
                 "check hangs on this node, or waits for a node that does (--budget)\n",
                 host, ranks.world_rank, budget);
    }
    if (budget > 0) {
        signal(SIGALRM, on_alarm);
        alarm((unsigned)(budget + 0.999));
    }

    /* Every rank parses; only rank 0 reports what is wrong. */
    if (ranks.world_rank != 0) {
        dure_log_set_quiet(1);
    }
    st = jobspec_load(argv[optind], sets, &spec);
    dure_log_set_quiet(0);
    {
        int v = (int)st, worst = 0;
        DURE_MPI_TRY(MPI_Allreduce(&v, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
        st = (dure_status_t)worst;
        DURE_TRY(st);
    }
    o.spec = spec;
    if (ranks.world_rank == 0) {
        char line[1024];
        dure_topo_format(&topo, line, sizeof line);
        printf("preflight: %s on %s\n", argv[optind], line);
    }
    DURE_TRY(preflight_run(MPI_COMM_WORLD, &topo, &ranks, &o, &rep));
    if (ranks.world_rank == 0) {
        preflight_print(&rep, stdout);
        fflush(stdout);
        if (rep.bad_nodes > 0) {
            verdict = DURE_EXIT_PREFLIGHT;
            for (int n = 0; n < rep.nodes; n++) {
                for (int c = 0; c < PF_NCHECK; c++) {
                    if (rep.node[n].cell[c].state == PF_BAD) {
                        dure_log_error(__FILE__, __LINE__, "preflight: node %s failed %s: %s",
                                       rep.node[n].host, preflight_check_name(c),
                                       rep.node[n].cell[c].why);
                    }
                }
            }
            if (bad_file) {
                int written = 0;
                st = preflight_write_bad_nodes(&rep, bad_file, &written);
                if (st == DURE_OK && rep.bad_nodes == rep.nodes) {
                    printf("preflight: every node failed: the job, not a node, is at fault; "
                           "none added to %s\n", bad_file);
                } else if (st == DURE_OK) {
                    printf("preflight: %d node(s) added to %s\n", written, bad_file);
                }
            }
        }
    }
    {
        int v[2] = {(int)st, verdict};
        DURE_MPI_TRY(MPI_Bcast(v, 2, MPI_INT, 0, MPI_COMM_WORLD));
        st = (dure_status_t)v[0];
        verdict = v[1];
    }
out:
    alarm(0);
    preflight_report_free(&rep);
    jobspec_free(spec);
    dure_topo_free(&topo);
    /* The verdict is rank 0's exit code alone, the others exit 0: srun
     * reports the highest code, and under --kill-on-bad-exit=1 it ends the
     * other tasks as soon as one exits non-zero, so a rank exiting 10
     * beside rank 0 could turn the verdict into rank 0's 143. (The batch
     * script runs preflight with --kill-on-bad-exit=0: a rank still exiting
     * when rank 0 is done would be killed the same way.) */
    int reporter = ranks.world_rank == 0;
    dure_ranks_free(&ranks);
    if (mpi_up) {
        comm_mpi_finalize();
    }
    free(sets);
    fflush(stdout);
    return st != DURE_OK ? dure_exit_code(st) : reporter ? verdict : DURE_EXIT_OK;
}
