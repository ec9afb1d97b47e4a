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
