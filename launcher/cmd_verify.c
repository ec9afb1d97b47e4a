/* launcher/cmd_verify.c - `dure verify RUN_A RUN_B`: are two runs bitwise identical? */
#include <getopt.h>
#include <stdio.h>

#include "launcher/commands.h"
#include "launcher/exitcodes.h"
#include "launcher/verify.h"

void cmd_verify_usage(FILE *out)
{
    fprintf(out,
            "usage: dure verify RUN_A RUN_B\n"
            "\n"
            "Compare two run directories: their manifests (manifest.json) field by\n"
            "field, their metrics (metrics.jsonl) value by value and bit for bit, and\n"
            "the parameters and optimizer state of the newest checkpoint both have.\n"
            "Fields that differ between any two runs by design (start time, run\n"
            "directory, command line, host names, run name) are listed as ignored.\n"
            "Timing metrics (keys ending in _s, mfu) are not compared. For a resumed\n"
            "run, the last value logged for a step counts.\n"
            "\n"
            "Exit status:\n"
            "  0  bitwise identical: metrics, common checkpoint, and manifests\n"
            "  8  the metrics or the checkpointed state differ (the first step\n"
            "     where they do is printed, with by how much)\n"
            "  9  metrics and state bitwise identical, but manifest fields differ\n"
            "  1  a manifest or metrics file is missing or unreadable\n"
            "  4  a manifest or metrics file is malformed\n"
            "  2  usage error\n");
}

int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    struct verify_result r;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (opt == 'h') {
            cmd_verify_usage(stdout);
            return DURE_EXIT_OK;
        }
        cmd_verify_usage(stderr);
        return DURE_EXIT_USAGE;
    }
    if (argc - optind != 2) {
        fprintf(stderr, "dure verify: needs exactly two run directories\n\n");
        cmd_verify_usage(stderr);
        return DURE_EXIT_USAGE;
    }
    dure_status_t st = verify_runs(argv[optind], argv[optind + 1], stdout, &r);
    if (st != DURE_OK) {
        return dure_exit_code(st) == DURE_EXIT_DATA ? DURE_EXIT_DATA : DURE_EXIT_FAILURE;
    }
    int numbers_same = r.metrics_identical && (!r.ckpt_compared || r.ckpt_identical);
    if (!numbers_same) {
        printf("verdict: DIFFERENT\n");
        return DURE_EXIT_DIFFER;
    }
    if (r.manifest_diffs > 0) {
        printf("verdict: bitwise identical numbers, but %d manifest field%s\n",
               r.manifest_diffs, r.manifest_diffs == 1 ? " differs" : "s differ");
        return DURE_EXIT_MANIFEST_DIFFER;
    }
    printf("verdict: IDENTICAL\n");
    return DURE_EXIT_OK;
}
