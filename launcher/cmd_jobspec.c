/*
 * launcher/cmd_jobspec.c - `dure jobspec JOB.ini`: check a job spec and show
 * it resolved; `dure help jobspec` is the reference of every key.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/jobspec.h"
#include "launcher/commands.h"
#include "launcher/exitcodes.h"

void cmd_jobspec_usage(FILE *out)
{
    fprintf(out,
            "usage: dure jobspec [--ini | --hash] JOB.ini [--set section.key=value ...]\n"
            "\n"
            "Load and validate a job spec, then print it resolved (defaults and\n"
            "derived values filled in) as a table with where each value came from.\n"
            "  --ini        print the resolved spec as INI text instead\n"
            "  --hash       print the spec's hashes: all values, and result values\n"
            "  --set S.K=V  override a key (repeatable), as for dure run and submit\n"
            "Exit 0 when valid, 3 when not (the message names file:line and key).\n"
            "\n");
    jobspec_help(out);
}

int cmd_jobspec(int argc, char **argv)
{
    static const struct option opts[] = {
        {"ini", no_argument, NULL, 'i'},
        {"hash", no_argument, NULL, 'H'},
        {"set", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    struct dure_jobspec *spec = NULL;
    size_t nsets = 0;
    int mode = 't', opt, rc = DURE_EXIT_OK;
    dure_status_t st;

    if (!sets) {
        fprintf(stderr, "dure jobspec: out of memory\n");
        return DURE_EXIT_NOMEM;
    }
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'i':
        case 'H':
            mode = opt;
            break;
        case 's':
            sets[nsets++] = optarg;
            break;
        default:
            cmd_jobspec_usage(stderr);
            rc = DURE_EXIT_USAGE;
            goto out;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "dure jobspec: expected one job spec file\n\n");
        cmd_jobspec_usage(stderr);
        rc = DURE_EXIT_USAGE;
        goto out;
    }
    st = jobspec_load(argv[optind], sets, &spec);
    if (st == DURE_OK && mode == 'i') {
        st = jobspec_write_ini(spec, stdout);
    } else if (st == DURE_OK && mode == 'H') {
        uint64_t all = 0, result = 0;
        char hex[17];
        st = jobspec_hash(spec, JOBSPEC_HASH_ALL, &all);
        if (st == DURE_OK) {
            st = jobspec_hash(spec, JOBSPEC_HASH_RESULT, &result);
        }
        if (st == DURE_OK) {
            jobspec_hash_hex(all, hex);
            printf("all %s\n", hex);
            jobspec_hash_hex(result, hex);
            printf("result %s\n", hex);
        }
    } else if (st == DURE_OK) {
        st = jobspec_print_table(spec, stdout);
    }
    rc = dure_exit_code(st);
out:
    jobspec_free(spec);
    free(sets);
    return rc;
}
