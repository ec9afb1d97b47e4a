/*
 * launcher/commands.h - the `dure` subcommands.
 *
 * Each command is `int cmd_NAME(int argc, char **argv)` with argv[0] the
 * command's name; it parses its own options with getopt_long and returns an
 * exit code from launcher/exitcodes.h. Only main() calls exit.
 */
#ifndef DURE_LAUNCHER_COMMANDS_H
#define DURE_LAUNCHER_COMMANDS_H

#include <stdio.h>

struct dure_command {
    const char *name;
    const char *summary;                  /* one line for `dure --help` */
    int (*main)(int argc, char **argv);
    void (*usage)(FILE *out);             /* full help for `dure help NAME` */
};

/* The table, terminated by an entry whose name is NULL. */
extern const struct dure_command dure_commands[];

/* `dure run JOB.ini`: train, data parallel over MPI ranks (launcher/cmd_run.c). */
int cmd_run(int argc, char **argv);
void cmd_run_usage(FILE *out);

/* `dure plot RUN_DIR`: loss.png and throughput.png (launcher/cmd_plot.c). */
int cmd_plot(int argc, char **argv);
void cmd_plot_usage(FILE *out);
int cmd_jobspec(int argc, char **argv);
void cmd_jobspec_usage(FILE *out);
int cmd_render(int argc, char **argv);
void cmd_render_usage(FILE *out);
/* `dure plan JOB.ini`: memory per ZeRO stage, step time, scaling (launcher/cmd_plan.c). */
int cmd_plan(int argc, char **argv);
void cmd_plan_usage(FILE *out);
/* dure submit's memory check (launcher/cmd_plan.c): print the plan's
 * estimate for spec at its zero_stage on slurm.gpu_type and refuse with
 * exit 7's status a job that does not fit (plan_check_fit); a CPU job or
 * an unset gpu_type is printed as not checked. `file` names the spec. */
struct dure_jobspec;
int cmd_plan_check_submit(const struct dure_jobspec *spec, const char *file, FILE *out);
int cmd_submit(int argc, char **argv);
void cmd_submit_usage(FILE *out);
int cmd_status(int argc, char **argv);
void cmd_status_usage(FILE *out);
/* `dure preflight JOB.ini`: is every node of this job fit (launcher/cmd_preflight.c)? */
int cmd_preflight(int argc, char **argv);
void cmd_preflight_usage(FILE *out);
/* `dure bench`: measure and check collectives (launcher/cmd_bench.c). */
int cmd_bench(int argc, char **argv);
void cmd_bench_usage(FILE *out);
/* `dure tune`: sweep, fit and emit tuning files (launcher/cmd_tune.c). */
int cmd_tune(int argc, char **argv);
void cmd_tune_usage(FILE *out);
/* `dure data gen|import|inspect|stats` (launcher/cmd_data.c). */
int cmd_data(int argc, char **argv);
void cmd_data_usage(FILE *out);

/* `dure ckpt inspect|verify`: checkpoint contents and integrity. */
int cmd_ckpt(int argc, char **argv);
void cmd_ckpt_usage(FILE *out);

/* `dure verify RUN_A RUN_B`: are two runs bitwise identical? */
int cmd_verify(int argc, char **argv);
void cmd_verify_usage(FILE *out);

/* Print the library versions that `dure --version` shows. */
void dure_print_versions(FILE *out);

/*
 * Shared option helper: reset getopt state before a command parses its
 * options, since main() may already have run getopt.
 */
void dure_getopt_reset(void);

#endif
