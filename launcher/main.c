/*
 * launcher/main.c - `dure <command> [options]`: dispatch to a subcommand.
 *
 * The only place (with the commands in launcher/) that decides the process
 * exit code. Unknown commands and options print usage on stderr and exit 2.
 */
#include <getopt.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launcher/commands.h"
#include "launcher/exitcodes.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dure <command> [options]\n"
            "       dure --version | --help | help <command>\n"
            "\n"
            "dure trains physical-AI foundation models on GPU clusters: one\n"
            "process per GPU under mpirun or srun.\n"
            "\n"
            "commands:\n");
    for (const struct dure_command *c = dure_commands; c->name; c++) {
        fprintf(out, "  %-10s %s\n", c->name, c->summary);
    }
    fprintf(out, "\nRun 'dure help <command>' for a command's options.\n");
}

static const struct dure_command *find_command(const char *name)
{
    for (const struct dure_command *c = dure_commands; c->name; c++) {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return DURE_EXIT_OK;
    }
    const struct dure_command *c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "dure help: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return DURE_EXIT_USAGE;
    }
    c->usage(stdout);
    return DURE_EXIT_OK;
}

static void help_usage(FILE *out)
{
    fprintf(out, "usage: dure help [<command>]\n\n"
                 "Show the list of commands, or one command's options.\n");
}

static int cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "dure version: takes no arguments\n");
        return DURE_EXIT_USAGE;
    }
    dure_print_versions(stdout);
    return DURE_EXIT_OK;
}

static void version_usage(FILE *out)
{
    fprintf(out, "usage: dure version   (same as dure --version)\n\n"
                 "Print dure's version and git revision, and the versions of the\n"
                 "MPI, HDF5, OpenBLAS, NCCL and CUDA libraries actually linked.\n");
}

const struct dure_command dure_commands[] = {
    {"help", "show help for dure or for one command", cmd_help, help_usage},
    {"version", "print dure's and the linked libraries' versions", cmd_version,
     version_usage},
    {"run", "train a job spec, data parallel over mpirun/srun ranks", cmd_run,
     cmd_run_usage},
    {"plot", "draw a run's loss and throughput as PNG (gnuplot)", cmd_plot,
     cmd_plot_usage},
    {"jobspec", "check a job spec and print it resolved", cmd_jobspec, cmd_jobspec_usage},
    {"render", "print the Slurm batch script of a job spec", cmd_render, cmd_render_usage},
    {"plan", "memory, step time and scaling of a job spec before submitting it",
     cmd_plan, cmd_plan_usage},
    {"preflight", "check every node of a job before training (one table, a verdict)",
     cmd_preflight, cmd_preflight_usage},
    {"submit", "submit a job spec to Slurm (job, chain or sweep array)", cmd_submit,
     cmd_submit_usage},
    {"status", "jobs, progress and ETA of a run directory", cmd_status, cmd_status_usage},
    {"bench", "measure and check collectives (nccl-tests compatible)", cmd_bench,
     cmd_bench_usage},
    {"tune", "fit the fabric, write NCCL/Open MPI/dure tuning files, verify", cmd_tune,
     cmd_tune_usage},
    {"data", "generate, import, inspect and summarize datasets", cmd_data, cmd_data_usage},
    {"ckpt", "inspect or verify a checkpoint file", cmd_ckpt, cmd_ckpt_usage},
    {"verify", "compare two runs: bitwise identical or where they differ", cmd_verify,
     cmd_verify_usage},
    {NULL, NULL, NULL, NULL},
};

void dure_getopt_reset(void)
{
    optind = 0; /* glibc: 0 also resets getopt's internal state */
    opterr = 1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    /* dure closes every HDF5 file it opens. What HDF5's own exit handler
     * would close is a file whose close failed (a full disk): it loops on
     * it ("infinite loop closing library") or crashes, after dure has
     * named the error. */
    H5dont_atexit();
    /* "+" stops at the first non-option: the command's options are its own. */
    while ((opt = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
        switch (opt) {
        case 'h':
            usage(stdout);
            return DURE_EXIT_OK;
        case 'V':
            dure_print_versions(stdout);
            return DURE_EXIT_OK;
        default:
            usage(stderr);
            return DURE_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return DURE_EXIT_USAGE;
    }
    const struct dure_command *c = find_command(argv[optind]);
    if (!c) {
        fprintf(stderr, "dure: unknown command '%s'\n\n", argv[optind]);
        usage(stderr);
        return DURE_EXIT_USAGE;
    }
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    for (int i = 1; i < sub_argc; i++) {
        if (strcmp(sub_argv[i], "--") == 0) {
            break;
        }
        if (strcmp(sub_argv[i], "--help") == 0 || strcmp(sub_argv[i], "-h") == 0) {
            c->usage(stdout);
            return DURE_EXIT_OK;
        }
    }
    dure_getopt_reset();
    return c->main(sub_argc, sub_argv);
}
