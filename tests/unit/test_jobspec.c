/* tests/unit/test_jobspec.c - parsing, defaults, overrides and every error path of the job spec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobs/jobspec.h"

#define MIN_SPEC "[data]\npath = d.h5\n"

static struct dure_jobspec *load_ok(const char *text, const char *const *sets)
{
    struct dure_jobspec *spec = NULL;
    dure_status_t st = jobspec_load_string(text, "job.ini", sets, &spec);
    if (st != DURE_OK) {
        fail_msg("load failed: %s", dure_last_error());
    }
    return spec;
}

/* Load must fail with DURE_ERR_ARG and a message containing `want`. */
static void load_fails(const char *text, const char *const *sets, const char *want)
{
    struct dure_jobspec *spec = (struct dure_jobspec *)1;
    dure_log_set_quiet(1);
    dure_status_t st = jobspec_load_string(text, "job.ini", sets, &spec);
    dure_log_set_quiet(0);
    assert_int_equal(st, DURE_ERR_ARG);
    assert_null(spec);
    if (!strstr(dure_last_error(), want)) {
        fail_msg("error '%s' does not contain '%s'", dure_last_error(), want);
    }
}

static void test_defaults(void **state)
{
    (void)state;
    struct dure_jobspec *s = load_ok(MIN_SPEC, NULL);
    assert_string_equal(s->run.name, "dure");
    assert_string_equal(s->run.dir, "runs/dure");
    assert_int_equal(s->run.steps, 300);
    assert_true(s->run.seed == 1234);
    assert_false(s->run.deterministic);
    assert_int_equal(s->run.log_every, 10);
    assert_int_equal(s->run.val_every, 50);
    assert_int_equal(s->run.val_batches, 4);
    assert_int_equal(s->run.on_nan, JOBSPEC_RUN_NAN_STOP);
    assert_int_equal(s->run.device, JOBSPEC_DEVICE_AUTO);
    assert_int_equal(s->run.threads, 0);
    assert_int_equal(s->model.d_model, 128);
    assert_int_equal(s->model.n_layers, 4);
    assert_int_equal(s->model.n_heads, 4);
    assert_int_equal(s->model.patch_len, 16);
    assert_int_equal(s->model.context_patches, 16);
    assert_int_equal(s->model.channels, 0);
    assert_int_equal(s->model.loss, JOBSPEC_LOSS_MSE);
    assert_true(s->model.huber_delta == 1.0);
    assert_true(s->model.init_std == 0.02);
    assert_string_equal(s->data.path, "d.h5");
    assert_int_equal(s->data.layout, JOBSPEC_LAYOUT_AUTO);
    assert_int_equal(s->data.keys.count, 0);
    assert_string_equal(s->data.val_path, "");
    assert_int_equal(s->data.prefetch, 4);
    assert_true(s->data.normalize);
    assert_int_equal(s->data.on_nan, JOBSPEC_DATA_NAN_REFUSE);
    assert_int_equal(s->data.io, JOBSPEC_IO_AUTO);
    assert_true(s->data.shuffle);
    assert_true(s->optim.lr == 3e-4);
    assert_true(s->optim.min_lr == 3e-5);
    assert_int_equal(s->optim.warmup_steps, 20);
    assert_true(s->optim.weight_decay == 0.1);
    assert_true(s->optim.beta1 == 0.9);
    assert_true(s->optim.beta2 == 0.95);
    assert_true(s->optim.eps == 1e-8);
    assert_true(s->optim.grad_clip == 1.0);
    assert_int_equal(s->optim.global_batch, 32);
    assert_int_equal(s->optim.micro_batch, 8);
    assert_int_equal(s->parallel.backend, JOBSPEC_BACKEND_AUTO);
    assert_int_equal(s->parallel.zero_stage, 0);
    assert_int_equal(s->parallel.prefetch, 1);
    assert_true(s->parallel.reshard_after_forward);
    assert_true(s->parallel.bucket_mb == 0);
    assert_int_equal(s->parallel.algo, JOBSPEC_ALGO_AUTO);
    assert_string_equal(s->parallel.algo_table, "");
    assert_true(s->parallel.overlap);
    assert_int_equal(s->parallel.comm_thread, JOBSPEC_COMM_THREAD_AUTO);
    assert_true(s->parallel.watchdog_s == 600);
    assert_int_equal(s->checkpoint.every, 100);
    assert_int_equal(s->checkpoint.keep, 3);
    assert_string_equal(s->checkpoint.dir, "runs/dure/checkpoints");
    assert_string_equal(s->slurm.job_name, "dure");
    assert_int_equal(s->slurm.nodes, 1);
    assert_int_equal(s->slurm.gpus_per_node, 0);
    assert_int_equal(s->slurm.ntasks_per_node, 1);
    assert_int_equal(s->slurm.cpus_per_task, 1);
    assert_string_equal(s->slurm.time, "00:30:00");
    assert_string_equal(s->slurm.partition, "");
    assert_int_equal(s->slurm.signal_lead_s, 120);
    assert_true(s->slurm.requeue);
    assert_int_equal(s->slurm.max_restarts, 3);
    assert_string_equal(s->slurm.profile, "");
    assert_int_equal(s->env.count, 0);
    assert_int_equal(s->sweep.ntasks, 0);
    jobspec_free(s);
}

static void test_values_of_every_type(void **state)
{
    (void)state;
    struct dure_jobspec *s = load_ok("; comment\n"
                                     "# comment\n"
                                     "[run]\n"
                                     "name = x\n"
                                     "seed = 0xFFFFFFFFFFFFFFFF\n"
                                     "  deterministic = YES\n" /* indented: still a key */
                                     "device = CUDA\n"
                                     "[ model ]\n"
                                     "huber_delta = 2.5e-1 ; an inline comment\n"
                                     "loss: huber\n"
                                     "[data]\n"
                                     "path = a b.h5\n"
                                     "layout = robomimic\n"
                                     "keys =  obs/joint_pos , obs/torque,actions \n"
                                     "normalize = off\n",
                                     NULL);
    assert_true(s->run.seed == UINT64_MAX);
    assert_true(s->run.deterministic);
    assert_int_equal(s->run.device, JOBSPEC_DEVICE_CUDA);
    assert_true(s->model.huber_delta == 0.25);
    assert_int_equal(s->model.loss, JOBSPEC_LOSS_HUBER);
    assert_string_equal(s->data.path, "a b.h5");
    assert_int_equal(s->data.layout, JOBSPEC_LAYOUT_ROBOMIMIC);
    assert_int_equal(s->data.keys.count, 3);
    assert_string_equal(s->data.keys.items[0], "obs/joint_pos");
    assert_string_equal(s->data.keys.items[1], "obs/torque");
    assert_string_equal(s->data.keys.items[2], "actions");
    assert_false(s->data.normalize);
    jobspec_free(s);
}

static void test_long_lines(void **state)
{
    (void)state;
    /* libinih reads 200-byte lines; longer values must still arrive whole. */
    char path[1200], text[1400];
    memset(path, 'p', sizeof path - 1);
    path[sizeof path - 1] = '\0';
    memcpy(path, "/lustre/", 8);
    snprintf(text, sizeof text, "[data]\npath = %s ; comment\n[run]\nsteps = 7\n", path);
    struct dure_jobspec *s = load_ok(text, NULL);
    assert_string_equal(s->data.path, path);
    assert_int_equal(s->run.steps, 7);
    jobspec_free(s);
    /* A comment line of any length is a comment, '=' or none. */
    const char *long_text = path + 900; /* 299 characters */
    snprintf(text, sizeof text, "# %s\n[run]\n; %s = 3\nsteps = 8\n" MIN_SPEC, long_text,
             long_text);
    s = load_ok(text, NULL);
    assert_int_equal(s->run.steps, 8);
    jobspec_free(s);
    /* A short value whose bytes are the parser's long-line marker is that
     * value, after a long line or without one, and refused as such (found by
     * fuzz_jobspec: it was taken for the marker, with a stale or NULL value). */
    snprintf(text, sizeof text, "[data]\npath = %s\n[env]\nMARK = \001long\n", path);
    load_fails(text, NULL, "env.MARK: control character 0x01");
    load_fails("[env]\nMARK = \001long\n" MIN_SPEC, NULL, "env.MARK: control character 0x01");
}

static void test_derived_values(void **state)
{
    (void)state;
    struct dure_jobspec *s =
        load_ok(MIN_SPEC "[run]\nname = my run$(x)/a\n[slurm]\ngpus_per_node = 4\n", NULL);
    assert_string_equal(s->run.dir, "runs/my run$(x)/a");
    assert_string_equal(s->checkpoint.dir, "runs/my run$(x)/a/checkpoints");
    assert_string_equal(s->slurm.job_name, "my_run__x__a");
    assert_int_equal(s->slurm.ntasks_per_node, 4);
    jobspec_free(s);

    s = load_ok(MIN_SPEC "[run]\ndir = /scratch/r\n[checkpoint]\ndir = /ckpt\n", NULL);
    assert_string_equal(s->run.dir, "/scratch/r");
    assert_string_equal(s->checkpoint.dir, "/ckpt");
    jobspec_free(s);
}

static void test_overrides(void **state)
{
    (void)state;
    const char *sets[] = {"model.d_model=256", " run.name = over ", "env.FOO=a=b c",
                          "env.BAR=1", "env.BAR=2", NULL};
    struct dure_jobspec *s =
        load_ok(MIN_SPEC "[model]\nd_model = 64\n[env]\nBAR = 0\nZED = z\n", sets);
    assert_int_equal(s->model.d_model, 256);
    assert_string_equal(s->run.name, "over");
    assert_string_equal(s->run.dir, "runs/over");
    assert_int_equal(s->env.count, 3);
    assert_string_equal(s->env.vars[0].name, "BAR");
    assert_string_equal(s->env.vars[0].value, "2");
    assert_string_equal(s->env.vars[1].name, "ZED");
    assert_string_equal(s->env.vars[2].name, "FOO");
    assert_string_equal(s->env.vars[2].value, "a=b c");
    jobspec_free(s);
}

static void test_file_errors(void **state)
{
    (void)state;
    load_fails("[run]\nsteps = 5\n", NULL,
               "job.ini: data.path is required: the dataset: an HDF5 file");
    load_fails(MIN_SPEC "[model]\nd_modle = 3\n", NULL,
               "job.ini:4: unknown key 'd_modle' in [model] (did you mean 'd_model'?); "
               "keys of [model]: d_model, n_layers,");
    load_fails(MIN_SPEC "\n[modle]\n", NULL,
               "job.ini:4: unknown section [modle] (did you mean [model]?); sections: run, "
               "model, data, optim, parallel, checkpoint, slurm, data.NAME, env, sweep");
    load_fails(MIN_SPEC "[run]\ndevice = gpu\n", NULL,
               "job.ini:4: run.device = 'gpu': allowed values: auto, cpu, cuda");
    load_fails(MIN_SPEC "[model]\nn_layers = 0\n", NULL,
               "job.ini:4: model.n_layers = '0': out of bounds [1, 1024]");
    load_fails(MIN_SPEC "[model]\nn_layers = 4x\n", NULL,
               "job.ini:4: model.n_layers = '4x': expected an integer in [1, 1024]");
    load_fails(MIN_SPEC "[model]\nn_layers = 99999999999999999999\n", NULL,
               "out of bounds [1, 1024]");
    load_fails(MIN_SPEC "[optim]\nlr = fast\n", NULL,
               "job.ini:4: optim.lr = 'fast': expected a number in [0, 10]");
    load_fails(MIN_SPEC "[optim]\nbeta2 = 1\n", NULL,
               "job.ini:4: optim.beta2 = '1': out of bounds [0, 1)");
    load_fails(MIN_SPEC "[optim]\neps = 0\n", NULL, "optim.eps = '0': out of bounds (0, 1]");
    load_fails(MIN_SPEC "[optim]\nlr = nan\n", NULL, "optim.lr = 'nan': expected a number");
    load_fails(MIN_SPEC "[run]\nseed = -1\n", NULL,
               "run.seed = '-1': expected an unsigned 64-bit integer");
    load_fails(MIN_SPEC "[run]\nseed = 18446744073709551616\n", NULL,
               "expected an unsigned 64-bit integer");
    load_fails(MIN_SPEC "[run]\ndeterministic = maybe\n", NULL,
               "run.deterministic = 'maybe': allowed values: true, false");
    load_fails(MIN_SPEC "[parallel]\ncomm_thread = yes\n", NULL,
               "job.ini:4: parallel.comm_thread = 'yes': allowed values: auto, on, off");
    load_fails(MIN_SPEC "[run]\nsteps = 5\nsteps = 6\n", NULL,
               "job.ini:5: run.steps set twice (first at line 4)");
    load_fails(MIN_SPEC "[run]\nthis is not a key\n", NULL,
               "job.ini:4: syntax error: expected '[section]', 'key = value' or a comment");
    load_fails("steps = 5\n" MIN_SPEC, NULL, "job.ini:1: key 'steps' outside any section");
    load_fails(MIN_SPEC "[data]\nkeys = a,,b\n", NULL,
               "job.ini:4: data.keys = 'a,,b': item 2 of the list is empty");
    load_fails(MIN_SPEC "[run]\nname =\n", NULL, "job.ini:4: run.name must not be empty");
    load_fails(MIN_SPEC "[env]\n1X = 2\n", NULL,
               "job.ini:4: [env] name '1X' is not a valid environment variable name");
    load_fails(MIN_SPEC "[env]\nA = 1\nA = 2\n", NULL, "job.ini:5: env.A set twice");
    load_fails(MIN_SPEC "[slurm]\ntime = 1h\n", NULL,
               "slurm.time = '1h': expected a Slurm time limit");
    load_fails(MIN_SPEC "[slurm]\npartition = gpu;rm\n", NULL,
               "slurm.partition = 'gpu;rm': character ';' not allowed in a Slurm name");
    load_fails(MIN_SPEC "[slurm]\njob_name = a$b\n", NULL,
               "slurm.job_name = 'a$b': character '$' not allowed in a job name");
    load_fails(MIN_SPEC "[parallel]\nalgo_table = 0:native,1M:tree\n", NULL,
               "job.ini:4: parallel.algo_table = '0:native,1M:tree': algo_table entry "
               "'1M:tree': algorithm 'tree' is not one of native, ring, shm, hier");
    load_fails(MIN_SPEC "[parallel]\nring_segment_kib = 65537\n", NULL,
               "job.ini:4: parallel.ring_segment_kib = '65537': out of bounds [0, 65536]");
    load_fails(MIN_SPEC "[parallel]\nring_segment_kib = 1M\n", NULL,
               "job.ini:4: parallel.ring_segment_kib = '1M': expected an integer in [0, 65536]");
    load_fails(MIN_SPEC "[parallel]\nalgo_table = 1K:ring\n", NULL,
               "algo_table must start at size 0, not '1K:ring'");
    load_fails(MIN_SPEC "[parallel]\nalgo_table = 0:ring,2M:shm,1M:native\n", NULL,
               "algo_table entry '1M:native' is not larger than the one before it");
    /* Tables `dure run` refuses when it sets up its communicator, after the
     * job has waited in the queue: refused when the spec is loaded. */
    load_fails(MIN_SPEC "[parallel]\nalgo_table = 0:native,1.5M:ring\n", NULL,
               "job.ini:4: parallel.algo_table = '0:native,1.5M:ring': algo_table entry "
               "'1.5M:ring': '1.5M' is not a size");
    load_fails(MIN_SPEC "[parallel]\nalgo_table = 0:native,1e6:ring\n", NULL,
               "'1e6' is not a size");
    load_fails(MIN_SPEC "[parallel]\nalgo_table = 0:native,\n", NULL,
               "algo_table '0:native,' ends with a comma");
    struct dure_jobspec *s = load_ok(MIN_SPEC "[parallel]\nalgo_table = 0:ring,64k:shm\n", NULL);
    assert_string_equal(s->parallel.algo_table, "0:ring,64k:shm");
    jobspec_free(s);
    load_fails(MIN_SPEC "[parallel]\nzero_stage = 4\n", NULL,
               "job.ini:4: parallel.zero_stage = '4': out of bounds [0, 3]");
    load_fails(MIN_SPEC "[parallel]\nprefetch = -1\n", NULL,
               "job.ini:4: parallel.prefetch = '-1': out of bounds [0, 64]");
}

static void test_cross_key_rules(void **state)
{
    (void)state;
    load_fails(MIN_SPEC "[model]\nd_model = 64\nn_heads = 3\n", NULL,
               "job.ini:5: model.n_heads = 3 does not divide model.d_model = 64");
    load_fails(MIN_SPEC "[optim]\nmin_lr = 1e-3\n", NULL,
               "job.ini:4: optim.min_lr = 0.001 is above optim.lr = 0.0003");
    load_fails(MIN_SPEC "[optim]\nglobal_batch = 30\n", NULL,
               "optim.micro_batch = 8 does not divide optim.global_batch = 30");
    load_fails(MIN_SPEC "[slurm]\ngpus_per_node = 4\nntasks_per_node = 2\n", NULL,
               "job.ini:5: slurm.ntasks_per_node = 2 but slurm.gpus_per_node = 4");
    load_fails(MIN_SPEC "[slurm]\ntime = 2\nsignal_lead_s = 120\n", NULL,
               "slurm.signal_lead_s = 120 is not below slurm.time = 2 (120 s)");
    struct dure_jobspec *s =
        load_ok(MIN_SPEC "[slurm]\ntime = 1-00:00\nsignal_lead_s = 600\n", NULL);
    jobspec_free(s);
    s = load_ok(MIN_SPEC "[slurm]\ntime = UNLIMITED\nsignal_lead_s = 65535\n", NULL);
    jobspec_free(s);
}

static void test_override_errors(void **state)
{
    (void)state;
    const char *no_eq[] = {"model.d_model", NULL};
    load_fails(MIN_SPEC, no_eq, "--set model.d_model: expected section.key=value");
    const char *no_dot[] = {"steps=5", NULL};
    load_fails(MIN_SPEC, no_dot, "--set steps=5: expected section.key=value");
    const char *unknown[] = {"optim.learning_rate=1", NULL};
    load_fails(MIN_SPEC, unknown, "--set optim.learning_rate=1: unknown key 'learning_rate'");
    const char *bad[] = {"run.steps=-3", NULL};
    load_fails(MIN_SPEC, bad, "--set run.steps=-3: run.steps = '-3': out of bounds");
    const char *newline[] = {"run.name=a\nb", NULL};
    load_fails(MIN_SPEC, newline, "run.name: control character 0x0a (newline)");
    const char *comment[] = {"data.path=a ;b", NULL};
    load_fails(MIN_SPEC, comment, "data.path: ' ;' would start a comment");
    /* "path =;x" loads as ";x", which the dump would write as "path = ;x". */
    const char *first[] = {"data.path=;x", NULL};
    load_fails(MIN_SPEC, first, "data.path: ';' first would start a comment");
    const char *sweep[] = {"sweep.optim.lr=1,2", NULL};
    load_fails(MIN_SPEC, sweep, "a sweep is defined in the [sweep] section");
    const char *env[] = {"env.A-B=1", NULL};
    load_fails(MIN_SPEC, env, "[env] name 'A-B' is not a valid");
    const char *cross[] = {"model.n_heads=5", NULL};
    load_fails(MIN_SPEC, cross, "job.ini (--set): model.n_heads = 5 does not divide");
}

static void test_set_keeps_spec_on_failure(void **state)
{
    (void)state;
    struct dure_jobspec *s = load_ok(MIN_SPEC "[run]\nname = a\n", NULL);
    assert_int_equal(jobspec_set(s, "run.name=b"), DURE_OK);
    assert_string_equal(s->run.name, "b");
    assert_string_equal(s->run.dir, "runs/b");
    assert_int_equal(jobspec_set(s, "slurm.gpus_per_node=2"), DURE_OK);
    assert_int_equal(s->slurm.ntasks_per_node, 2);
    dure_log_set_quiet(1);
    assert_int_equal(jobspec_set(s, "model.n_heads=7"), DURE_ERR_ARG);
    assert_int_equal(jobspec_set(s, "run.steps=zero"), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    assert_int_equal(s->model.n_heads, 4);
    assert_int_equal(s->run.steps, 300);
    assert_string_equal(s->run.name, "b");
    jobspec_free(s);
}

static void test_files(void **state)
{
    (void)state;
    struct dure_jobspec *s = (struct dure_jobspec *)1;
    char dir[] = "/tmp/dure-jobspec-XXXXXX";
    char path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/job.ini", dir);

    dure_log_set_quiet(1);
    assert_int_equal(jobspec_load(path, NULL, &s), DURE_ERR_IO);
    assert_null(s);
    char want[128];
    snprintf(want, sizeof want, "cannot open job spec '%s': No such file or directory", path);
    assert_string_equal(dure_last_error(), want);
    assert_int_equal(jobspec_load(dir, NULL, &s), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "is not a regular file"));
    dure_log_set_quiet(0);

    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("[run]\nsteps = 9\n[data]\npath = x.h5\n", f);
    fclose(f);
    assert_int_equal(jobspec_load(path, NULL, &s), DURE_OK);
    assert_int_equal(s->run.steps, 9);
    assert_string_equal(s->origin, path);
    jobspec_free(s);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("[run]\nsteps = 9\nfoo = 1\n", f);
    fclose(f);
    dure_log_set_quiet(1);
    assert_int_equal(jobspec_load(path, NULL, &s), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    snprintf(want, sizeof want, "%s:3: unknown key 'foo' in [run]", path);
    assert_non_null(strstr(dure_last_error(), want));
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values_of_every_type),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_derived_values),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_cross_key_rules),
        cmocka_unit_test(test_override_errors),
        cmocka_unit_test(test_set_keeps_spec_on_failure),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests_name("jobspec", tests, NULL, NULL);
}
