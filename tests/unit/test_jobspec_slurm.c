/*
 * tests/unit/test_jobspec_slurm.c - from job spec to Slurm: quoting for bash
 * and #SBATCH lines, rendering, site profiles, job records, run progress,
 * and running the Slurm client commands.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobs/jobspec.h"
#include "common/strbuf.h"
#include "slurm/proc.h"
#include "slurm/profile.h"
#include "slurm/query.h"
#include "slurm/render.h"
#include "slurm/shquote.h"
#include "slurm/status.h"
#include "tests/support/tmpdir.h"

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    return tmpdir_make(tmpdir, sizeof tmpdir, "slurm-unit");
}

static int teardown(void **state)
{
    (void)state;
    return tmpdir_remove(tmpdir);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* What bash makes of `printf %s WORD`, for a quoted WORD. */
static char *bash_echo(const char *word)
{
    const char *argv[] = {"bash", "-c", NULL, NULL};
    struct strbuf cmd = STRBUF_INIT;
    struct proc_result r;
    strbuf_puts(&cmd, "printf %s ");
    strbuf_puts(&cmd, word);
    argv[2] = strbuf_str(&cmd);
    assert_int_equal(proc_run(argv, &r), DURE_OK);
    assert_int_equal(r.exit_code, 0);
    char *out = strdup(r.out);
    proc_result_free(&r);
    strbuf_free(&cmd);
    return out;
}

static void test_shquote(void **state)
{
    (void)state;
    struct strbuf sb = STRBUF_INIT;
    shquote_append(&sb, "");
    assert_string_equal(strbuf_str(&sb), "''");
    strbuf_reset(&sb);
    shquote_append(&sb, "it's");
    assert_string_equal(strbuf_str(&sb), "'it'\\''s'");
    strbuf_free(&sb);

    const char *hostile[] = {
        "$(touch /tmp/dure-pwned)", "`touch /tmp/dure-pwned`", "a; rm -rf /", "two\nlines",
        "'single' \"double\" \\back", "$HOME ${PATH} $((1+1)) !! *", "tab\there\r\n",
        "--", "",
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        shquote_append(&sb, hostile[i]);
        char *got = bash_echo(strbuf_str(&sb));
        assert_string_equal(got, hostile[i]);
        free(got);
        strbuf_free(&sb);
    }
    assert_int_equal(access("/tmp/dure-pwned", F_OK), -1);
}

static void test_sbatch_quote(void **state)
{
    (void)state;
    struct strbuf sb = STRBUF_INIT;
    assert_int_equal(sbatch_quote_append(&sb, "k", "gpu-a100_x.1"), DURE_OK);
    assert_string_equal(strbuf_str(&sb), "gpu-a100_x.1");
    strbuf_reset(&sb);
    assert_int_equal(sbatch_quote_append(&sb, "k", "/a b/#c\"d'e\\f$(g)%x"), DURE_OK);
    assert_string_equal(strbuf_str(&sb), "\"/a b/#c\\\"d'e\\\\f$(g)%x\"");
    strbuf_reset(&sb);
    dure_log_set_quiet(1);
    assert_int_equal(sbatch_quote_append(&sb, "run.dir", "a\nb"), DURE_ERR_ARG);
    assert_string_equal(dure_last_error(),
                        "run.dir: control character 0x0a cannot go into an #SBATCH line");
    strbuf_reset(&sb);
    assert_int_equal(slurm_pattern_escape(&sb, "run.dir", "/x\\y"), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    strbuf_reset(&sb);
    assert_int_equal(slurm_pattern_escape(&sb, "run.dir", "/r/100%/%j"), DURE_OK);
    assert_string_equal(strbuf_str(&sb), "/r/100%%/%%j");
    strbuf_free(&sb);
}

static struct dure_jobspec *load(const char *text)
{
    struct dure_jobspec *s = NULL;
    if (jobspec_load_string(text, "job.ini", NULL, &s) != DURE_OK) {
        fail_msg("%s", dure_last_error());
    }
    return s;
}

static void test_render(void **state)
{
    (void)state;
    struct dure_jobspec *s = load("[run]\nname = r\n[data]\npath = d.h5\n"
                                  "[slurm]\nnodes = 2\ngpus_per_node = 4\ntime = 1:00:00\n"
                                  "partition = gpu\nexclude = n[01-03]\nsignal_lead_s = 300\n"
                                  "requeue = false\n"
                                  "[optim]\nglobal_batch = 64\nmicro_batch = 8\n"
                                  "[env]\nX = it's $(x)\n");
    struct slurm_job job = {.spec = s, .dure = "/opt/dure bin/dure", .workdir = "/w d"};
    char *script = NULL;
    assert_int_equal(slurm_render(&job, &script), DURE_OK);
    const char *want[] = {
        /* one rank per GPU: each task bound to exactly one GPU */
        "#!/bin/bash\n#SBATCH --job-name=r\n#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=4\n"
        "#SBATCH --gpus-per-node=4\n#SBATCH --gpu-bind=single:1\n"
        "#SBATCH --cpus-per-task=1\n#SBATCH --time=1:00:00\n"
        "#SBATCH --partition=gpu\n#SBATCH --exclude=\"n[01-03]\"\n"
        "#SBATCH --signal=USR2@300\n#SBATCH --no-requeue\n#SBATCH --open-mode=append\n"
        "#SBATCH --output=\"/w d/runs/r/%x_%j.out\"\n#SBATCH --chdir=\"/w d\"\n"
        "# job spec hash: ",
        "\ndure='/opt/dure bin/dure'\n",
        "\nrun_dirs=('/w d/runs/r')\n",
        "\nmax_restarts=3\nrequeue=0\nexclude='n[01-03]'\n",
        "\nexport X='it'\\''s $(x)'\n",
        "\nexport SRUN_CPUS_PER_TASK=1\n",
        "\non_nodes=(--nodes=\"$nodes_now\" --ntasks=$((nodes_now * ntasks_per_node)))\n",
        /* preflight first, its bad nodes into the run's exclusion list */
        "\nsrun --mpi=pmix --kill-on-bad-exit=0 \"${on_nodes[@]}\" \"$dure\" preflight --bad-nodes "
        "\"$excluded\" \"$spec\" || rc=$?\n",
        "\nexcluded=$run_dir/excluded_nodes\n",
        "\nsrun --mpi=pmix --kill-on-bad-exit=1 \"${on_nodes[@]}\" \"$dure\" run \"$spec\" &\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (!strstr(script, want[i])) {
            fail_msg("script lacks:\n%s\n--- script:\n%s", want[i], script);
        }
    }
    regex_t re;
    assert_int_equal(regcomp(&re, "@[A-Z_]+@", REG_EXTENDED), 0);
    assert_int_equal(regexec(&re, script, 0, NULL, 0), REG_NOMATCH);
    regfree(&re);
    free(script);

    /* 2 nodes x 4 ranks x 8 windows does not divide 48. */
    assert_int_equal(jobspec_set(s, "optim.global_batch=48"), DURE_OK);
    dure_log_set_quiet(1);
    assert_int_equal(slurm_render(&job, &script), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    assert_null(script);
    assert_string_equal(dure_last_error(),
                        "job.ini: optim.global_batch = 48 is not a multiple of "
                        "optim.micro_batch * ranks = 8 * 8 (slurm.nodes 2 x "
                        "slurm.ntasks_per_node 4)");
    jobspec_free(s);
}

/* run.elastic: the batch script may requeue the job on min_nodes to nodes
 * nodes, and the global batch must divide on every count in between. */
static void test_render_elastic(void **state)
{
    (void)state;
    struct dure_jobspec *s = load("[run]\nname = e\nelastic = true\n[data]\npath = d.h5\n"
                                  "[slurm]\nnodes = 4\nmin_nodes = 2\n"
                                  "[optim]\nglobal_batch = 96\nmicro_batch = 8\n");
    struct slurm_job job = {.spec = s, .dure = "/bin/dure", .workdir = "/w"};
    char *script = NULL;
    assert_int_equal(slurm_render(&job, &script), DURE_OK);
    assert_non_null(strstr(script, "\n#SBATCH --nodes=4\n"));
    assert_non_null(strstr(script, "\nmin_nodes=2\nntasks_per_node=1\n"));
    free(script);
    /* 64 windows do not split over 3 nodes x 8. */
    assert_int_equal(jobspec_set(s, "optim.global_batch=64"), DURE_OK);
    dure_log_set_quiet(1);
    assert_int_equal(slurm_render(&job, &script), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    assert_string_equal(dure_last_error(),
                        "job.ini: optim.global_batch = 64 is not a multiple of "
                        "optim.micro_batch * ranks = 8 * 3 (nodes that run.elastic may run "
                        "on: 3 x slurm.ntasks_per_node 1)");
    /* Not elastic: one node count. */
    assert_int_equal(jobspec_set(s, "slurm.min_nodes=0"), DURE_OK);
    assert_int_equal(jobspec_set(s, "run.elastic=false"), DURE_OK);
    assert_int_equal(slurm_render(&job, &script), DURE_OK);
    assert_non_null(strstr(script, "\nmin_nodes=4\n"));
    free(script);
    jobspec_free(s);
    /* min_nodes alone is refused, and above nodes too. */
    struct dure_jobspec *bad = NULL;
    dure_log_set_quiet(1);
    assert_int_equal(jobspec_load_string("[data]\npath = d.h5\n[slurm]\nnodes = 2\n"
                                         "min_nodes = 1\n",
                                         "job.ini", NULL, &bad),
                     DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "slurm.min_nodes = 1 needs run.elastic = true"));
    assert_int_equal(jobspec_load_string("[run]\nelastic = true\n[data]\npath = d.h5\n"
                                         "[slurm]\nnodes = 2\nmin_nodes = 3\n",
                                         "job.ini", NULL, &bad),
                     DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "slurm.min_nodes = 3 is above slurm.nodes = 2"));
    dure_log_set_quiet(0);
}

static void test_render_sweep(void **state)
{
    (void)state;
    struct dure_jobspec *s = load("[run]\nname = sw\ndir = /r/sw%\n[data]\npath = d.h5\n"
                                  "[sweep]\nrun.seed = 1, 2\n");
    struct slurm_job job = {.spec = s, .dure = "/bin/dure", .workdir = "/w"};
    char *script = NULL;
    char **dirs = NULL;
    size_t n = 0;
    assert_int_equal(slurm_run_dirs(&job, &dirs, &n), DURE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(dirs[1], "/r/sw%/task-001");
    slurm_dirs_free(dirs, n);
    assert_int_equal(slurm_render(&job, &script), DURE_OK);
    assert_non_null(strstr(script, "\n#SBATCH --output=/r/sw%%/task-%3a/%x_%j.out\n"));
    assert_non_null(strstr(script, "\n#SBATCH --array=0-1\n"));
    assert_non_null(strstr(script, "\nrun_dirs=(\n    '/r/sw%/task-000'\n    '/r/sw%/task-001'\n)\n"));
    free(script);
    jobspec_free(s);
}

static void test_profiles(void **state)
{
    (void)state;
    char path[128];
    struct jobspec_env env;
    snprintf(path, sizeof path, "%s/profiles.ini", tmpdir);
    write_file(path, "# site\n[ib]\nNCCL_IB_HCA = mlx5\nUCX_TLS = rc,sm,self\n"
                     "[tcp]\nNCCL_IB_DISABLE = 1\n");
    assert_int_equal(slurm_profile_load("ib", path, &env), DURE_OK);
    assert_int_equal(env.count, 2);
    assert_string_equal(env.vars[1].name, "UCX_TLS");
    assert_string_equal(env.vars[1].value, "rc,sm,self");
    jobspec_env_free(&env);
    dure_log_set_quiet(1);
    assert_int_equal(slurm_profile_load("roce", path, &env), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    char want[256];
    snprintf(want, sizeof want, "slurm.profile = 'roce': no profile [roce] in %s; profiles: ib, tcp",
             path);
    assert_string_equal(dure_last_error(), want);

    /* The profile's variables come first in the script, then [env]. */
    struct dure_jobspec *s = load("[data]\npath = d.h5\n[slurm]\nprofile = ib\n"
                                  "[env]\nUCX_TLS = tcp\n");
    struct slurm_job job = {.spec = s, .dure = "/bin/dure", .workdir = "/w", .profiles = path};
    char *script = NULL;
    assert_int_equal(slurm_render(&job, &script), DURE_OK);
    assert_non_null(strstr(script, "export NCCL_IB_HCA='mlx5'\nexport UCX_TLS='rc,sm,self'\n"
                                   "export UCX_TLS='tcp'\n"));
    free(script);
    jobspec_free(s);

    /* The profiles shipped with dure load, each of them. */
    char names[256];
    assert_int_equal(slurm_profile_names("slurm/profiles.ini", names, sizeof names), DURE_OK);
    assert_string_equal(names, "local, ib, roce, tcp, debug");
}

static void test_job_records(void **state)
{
    (void)state;
    struct slurm_job_info j;
    const char *comp = "JobId=125 UserId=root(0) GroupId=root(0) Name=sweep JobState=FAILED "
                       "Partition=debug TimeLimit=5 WorkDir=/a b ReservationName= "
                       "SubmitTime=x EligibleTime=x ArrayJobId=123 ArrayTaskId=2 "
                       "DerivedExitCode=4:0 ExitCode=4:0 \n";
    assert_true(slurm_jobcomp_matches(comp, "123_2"));
    assert_false(slurm_jobcomp_matches(comp, "123_1"));
    assert_false(slurm_jobcomp_matches(comp, "125"));
    assert_false(slurm_jobcomp_matches(comp, "12"));
    memset(&j, 0, sizeof j);
    assert_true(slurm_job_parse_record(comp, &j));
    assert_string_equal(j.state, "FAILED");
    assert_string_equal(j.job_id, "125");
    assert_int_equal(j.exit_code, 4);
    assert_int_equal(j.signal, 0);
    assert_false(slurm_job_is_active(&j));

    const char *ctl = "JobId=7 JobName=demo UserId=root(0) Priority=1 JobState=PENDING "
                      "Reason=Dependency Dependency=afterany:6(unfulfilled) Requeue=1 "
                      "Restarts=2 BatchFlag=1 ExitCode=0:15 RunTime=00:00:00\n";
    assert_true(slurm_jobcomp_matches(ctl, "7"));
    assert_true(slurm_job_parse_record(ctl, &j));
    assert_string_equal(j.state, "PENDING");
    assert_string_equal(j.reason, "Dependency");
    assert_int_equal(j.restarts, 2);
    assert_int_equal(j.signal, 15);
    assert_true(slurm_job_is_active(&j));
    assert_false(slurm_job_parse_record("slurm_load_jobs error: Invalid job id", &j));
}

static void test_progress(void **state)
{
    (void)state;
    char dir[128], path[160];
    struct run_progress p;
    snprintf(dir, sizeof dir, "%s/run", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(run_progress_read(dir, &p), DURE_OK);
    assert_int_equal(p.step, -1);
    assert_true(p.step_s == 0 && isnan(p.exposed_s) && isnan(p.thread_cpu_s));
    assert_int_equal(p.steps_timed, 0);

    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    /* More than the 64 KiB read from the end: the early lines do not count,
     * nor a null (the last line's communication thread CPU). */
    for (int s = 1; s <= 3000; s++) {
        const int win = s > 2980;
        fprintf(f, "{\"step\":%d,\"loss\":%.17g,\"grad_norm\":1.5,\"lr\":0.001,\"step_s\":%g,"
                   "\"timesteps_per_s\":1000,\"data_wait_s\":%g,\"comm_exposed_s\":%g,"
                   "\"comm_thread_cpu_s\":%s}\n",
                s, 10.0 / s, win ? 0.5 : 99.0, win ? 0.0 : 9.0, win ? 0.125 : 9.0,
                s == 3000 ? "null" : win ? "0.25" : "9");
        if (s % 1000 == 0) {
            fprintf(f, "{\"step\":%d, \"val_loss\" : %.17g}\n", s, 1.0 / s);
        }
    }
    fprintf(f, "{\"step\":3001,\"loss\":"); /* being written */
    fclose(f);
    assert_int_equal(run_progress_read(dir, &p), DURE_OK);
    assert_int_equal(p.step, 3000);
    assert_true(p.loss == 10.0 / 3000);
    assert_int_equal(p.val_step, 3000);
    assert_true(p.val_loss == 1.0 / 3000);
    assert_true(p.step_s == 0.5); /* the mean of the last 20 */
    assert_int_equal(p.steps_timed, 20);
    assert_true(p.exposed_s == 0.125);
    assert_true(p.data_wait_s == 0.0);
    assert_true(p.thread_cpu_s == 0.25); /* 19 numbers and a null */

    snprintf(path, sizeof path, "%s/jobs", dir);
    write_file(path, "11\n\n12_3\n");
    char **ids = NULL;
    size_t n = 0;
    assert_int_equal(run_jobs_read(dir, &ids, &n), DURE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(ids[1], "12_3");
    run_jobs_free(ids, n);

    char log[256];
    snprintf(path, sizeof path, "%s/demo_12.out", dir);
    write_file(path, "a\nb\nc\nd\n");
    assert_int_equal(run_log_find(dir, "12", log, sizeof log), DURE_OK);
    assert_string_equal(log, path);
    dure_log_set_quiet(1);
    assert_int_equal(run_log_find(dir, "1", log, sizeof log), DURE_ERR_IO);
    dure_log_set_quiet(0);
    char *buf = NULL;
    size_t len = 0;
    f = open_memstream(&buf, &len);
    assert_int_equal(run_log_tail(path, 2, "| ", f), DURE_OK);
    fclose(f);
    assert_string_equal(buf, "| c\n| d\n");
    free(buf);
}

static void test_proc(void **state)
{
    (void)state;
    struct proc_result r;
    /* 200 KB on each stream: neither pipe may fill up and block the other. */
    const char *big[] = {"sh", "-c",
                         "head -c 200000 /dev/zero | tr '\\0' o; "
                         "head -c 200000 /dev/zero | tr '\\0' e >&2; exit 7",
                         NULL};
    assert_int_equal(proc_run(big, &r), DURE_OK);
    assert_int_equal(r.exit_code, 7);
    assert_int_equal(strlen(r.out), 200000);
    assert_int_equal(strlen(r.err), 200000);
    assert_int_equal(r.out[199999], 'o');
    proc_result_free(&r);
    const char *missing[] = {"dure-no-such-program", NULL};
    dure_log_set_quiet(1);
    assert_int_equal(proc_run(missing, &r), DURE_ERR_UNSUPPORTED);
    dure_log_set_quiet(0);
    assert_string_equal(dure_last_error(),
                        "dure-no-such-program: not found on PATH: is Slurm installed?");
    const char *killed[] = {"sh", "-c", "kill -9 $$", NULL};
    assert_int_equal(proc_run(killed, &r), DURE_OK);
    assert_int_equal(r.exit_code, 128 + 9);
    proc_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shquote),
        cmocka_unit_test(test_sbatch_quote),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_render_elastic),
        cmocka_unit_test(test_render_sweep),
        cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_job_records),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_proc),
    };
    return cmocka_run_group_tests_name("jobspec_slurm", tests, setup, teardown);
}
