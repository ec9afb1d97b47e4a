/*
 * launcher/cmd_render.c - `dure render JOB.ini`: print the batch script that
 * `dure submit` would submit for a job spec.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/jobspec.h"
#include "launcher/commands.h"
#include "launcher/exitcodes.h"
#include "slurm/render.h"

void cmd_render_usage(FILE *out)
{
    fprintf(out,
            "usage: dure render [--dure PATH] [--set section.key=value ...] JOB.ini\n"
            "\n"
            "Print the Slurm batch script for a job spec (slurm/batch.sh.in filled\n"
            "in): the #SBATCH options of [slurm], the site profile's and [env]'s\n"
            "variables, and `srun --mpi=pmix dure run RUN_DIR/job.ini`, with the\n"
            "preemption logic (USR2 -> checkpoint -> exit 75 -> scontrol requeue\n"
            "while SLURM_RESTART_COUNT < slurm.max_restarts). Every value is\n"
            "shell-quoted. A [sweep] renders one job array. `dure submit` writes\n"
            "this script and each run directory's job.ini, then calls sbatch.\n"
            "\n"
            "  --dure PATH   the dure executable the job runs (default: this one);\n"
            "                compute nodes must see it at the same path\n"
            "  --set S.K=V   override a job-spec key (repeatable)\n"
            "Relative paths in the spec are relative to the current directory,\n"
            "which becomes the job's working directory (sbatch --chdir).\n"
            "Site profiles: $DURE_PROFILES, else slurm/profiles.ini of this build.\n");
}

int cmd_render(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dure", required_argument, NULL, 'd'},
        {"set", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    const char *dure_arg = NULL;
    struct slurm_job_loaded l;
    char *script = NULL;
    size_t nsets = 0;
    int opt, rc = DURE_EXIT_OK;
    dure_status_t st = DURE_OK;

    memset(&l, 0, sizeof l);
    if (!sets) {
        fprintf(stderr, "dure render: out of memory\n");
        return DURE_EXIT_NOMEM;
    }
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            dure_arg = optarg;
            break;
        case 's':
            sets[nsets++] = optarg;
            break;
        default:
            cmd_render_usage(stderr);
            rc = DURE_EXIT_USAGE;
            goto out;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "dure render: expected one job spec file\n\n");
        cmd_render_usage(stderr);
        rc = DURE_EXIT_USAGE;
        goto out;
    }
    st = slurm_job_load(argv[optind], sets, dure_arg, &l);
    if (st == DURE_OK) {
        st = slurm_render(&l.job, &script);
    }
    if (st == DURE_OK && fputs(script, stdout) == EOF) {
        perror("dure render: stdout");
        st = DURE_ERR_IO;
    }
    rc = dure_exit_code(st);
out:
    free(script);
    slurm_job_loaded_free(&l);
    free(sets);
    return rc;
}
