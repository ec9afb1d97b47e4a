/*
 * launcher/cmd_submit.c - `dure submit JOB.ini`: submit a job spec to Slurm
 * (a job, a chain of jobs, or a job array for a [sweep]).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/jobspec.h"
#include "launcher/cliopt.h"
#include "launcher/commands.h"
#include "launcher/exitcodes.h"
#include "slurm/submit.h"

void cmd_submit_usage(FILE *out)
{
    fprintf(out,
            "usage: dure submit [--chain N] [--dry-run] [--dure PATH]\n"
            "                   [--set section.key=value ...] JOB.ini\n"
            "\n"
            "Submit a job spec with sbatch: create the run directory (run.dir),\n"
            "write its job.ini (the resolved spec) and batch.sh (dure render's\n"
            "script), call `sbatch --parsable` and append the job id to\n"
            "RUN_DIR/jobs. A [sweep] becomes one job array: task i runs in\n"
            "run.dir/task-iii with its own job.ini. Follow it with dure status.\n"
            "\n"
            "  --chain N     submit N jobs, each after the one before ends\n"
            "                (--dependency=afterany); each resumes from the newest\n"
            "                checkpoint and does nothing once the run has finished\n"
            "  --dry-run     print the run directories, specs, script and sbatch\n"
            "                commands; write and submit nothing\n"
            "  --dure PATH   the dure executable the job runs (default: this one)\n"
            "  --set S.K=V   override a job-spec key (repeatable)\n"
            "\n"
            "Prints the plan's memory per rank (dure plan) at the job's zero_stage and,\n"
            "when slurm.gpu_type names the GPUs (h100, h200, a100, b200), refuses with\n"
            "exit 7 a job that does not fit their memory, naming the stage that would.\n"
            "Refused: a run directory whose job.ini computes something else (other\n"
            "model, data, optimizer, ...) or that still has a pending or running job.\n"
            "A finished run (RUN_DIR/FINISHED) is not submitted again.\n");
}

int cmd_submit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"chain", required_argument, NULL, 'c'},
        {"dry-run", no_argument, NULL, 'n'},
        {"dure", required_argument, NULL, 'd'},
        {"set", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    const char *dure_arg = NULL;
    struct slurm_job_loaded l;
    struct slurm_submit_opts so = {.chain = 1, .out = stdout};
    size_t nsets = 0;
    int opt, rc = DURE_EXIT_OK;
    dure_status_t st = DURE_OK;

    memset(&l, 0, sizeof l);
    if (!sets) {
        fprintf(stderr, "dure submit: out of memory\n");
        return DURE_EXIT_NOMEM;
    }
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            if (cli_int("submit", "--chain", optarg, 1, 1000, &so.chain) != 0) {
                rc = DURE_EXIT_USAGE;
                goto out;
            }
            break;
        case 'n':
            so.dry_run = 1;
            break;
        case 'd':
            dure_arg = optarg;
            break;
        case 's':
            sets[nsets++] = optarg;
            break;
        default:
            cmd_submit_usage(stderr);
            rc = DURE_EXIT_USAGE;
            goto out;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "dure submit: expected one job spec file\n\n");
        cmd_submit_usage(stderr);
        rc = DURE_EXIT_USAGE;
        goto out;
    }
    st = slurm_job_load(argv[optind], sets, dure_arg, &l);
    if (st != DURE_OK) {
        rc = dure_exit_code(st);
        goto out;
    }
    /* Before anything is written or submitted. */
    rc = cmd_plan_check_submit(l.spec, argv[optind], stdout);
    if (rc == DURE_EXIT_OK) {
        rc = dure_exit_code(slurm_submit(&l.job, &so));
    }
out:
    slurm_job_loaded_free(&l);
    free(sets);
    return rc;
}
