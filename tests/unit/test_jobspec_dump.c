/* tests/unit/test_jobspec_dump.c - the resolved dump, table, hashes, sweeps and help. */
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
    if (jobspec_load_string(text, "job.ini", sets, &spec) != DURE_OK) {
        fail_msg("load failed: %s", dure_last_error());
    }
    return spec;
}

static uint64_t hash_of(const struct dure_jobspec *s, enum jobspec_hash_scope scope)
{
    uint64_t h = 0;
    assert_int_equal(jobspec_hash(s, scope, &h), DURE_OK);
    return h;
}

/* The spec's table as jobspec_print_table writes it (malloc'ed). */
static char *capture_table(const struct dure_jobspec *s)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(jobspec_print_table(s, f), DURE_OK);
    long len = ftell(f);
    assert_true(len > 0);
    rewind(f);
    char *text = calloc(1, (size_t)len + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    return text;
}

static const char *const FULL =
    "[run]\nname = full\nseed = 77\ndeterministic = true\n"
    "[model]\nd_model = 96\nn_heads = 3\nloss = huber\nhuber_delta = 0.3\n"
    "[data]\npath = /d/x.h5\nlayout = aloha\nkeys = /observations/qpos, /action\n"
    "[optim]\nlr = 1e-3\nmin_lr = 1e-5\n"
    "[parallel]\nalgo_table = 0:native,1M:shm,32M:ring\nwatchdog_s = 2.5\n"
    "[slurm]\ngpus_per_node = 2\ntime = 1-12:00:00\npartition = gpu\n"
    "[env]\nNCCL_ALGO = Ring\nA = x y\n";

static void test_round_trip(void **state)
{
    (void)state;
    struct dure_jobspec *a = load_ok(FULL, NULL), *b = NULL;
    char *ta = NULL, *tb = NULL;
    size_t la = 0;
    assert_int_equal(jobspec_format_ini(a, &ta, &la), DURE_OK);
    assert_int_equal(strlen(ta), la);
    assert_non_null(strstr(ta, "[run]\nname = full\ndir = runs/full\n"));
    assert_non_null(strstr(ta, "\nlr = 0.001\n"));
    assert_non_null(strstr(ta, "\nmin_lr = 1e-05\n"));
    assert_non_null(strstr(ta, "\nwatchdog_s = 2.5\n"));
    assert_non_null(strstr(ta, "\nkeys = /observations/qpos, /action\n"));
    /* An alias is stored as the value it names: one spelling, one hash. */
    assert_non_null(strstr(ta, "\nlayout = episode-files\n"));
    assert_non_null(strstr(ta, "\nntasks_per_node = 2\n"));
    assert_non_null(strstr(ta, "\n[env]\nNCCL_ALGO = Ring\nA = x y\n"));
    b = load_ok(ta, NULL);
    assert_int_equal(jobspec_format_ini(b, &tb, NULL), DURE_OK);
    assert_string_equal(ta, tb);
    assert_true(hash_of(a, JOBSPEC_HASH_ALL) == hash_of(b, JOBSPEC_HASH_ALL));
    assert_true(hash_of(a, JOBSPEC_HASH_RESULT) == hash_of(b, JOBSPEC_HASH_RESULT));
    free(ta);
    free(tb);
    jobspec_free(a);
    jobspec_free(b);
}

static void test_save(void **state)
{
    (void)state;
    char dir[] = "/tmp/dure-jobspec-XXXXXX", path[64];
    struct dure_jobspec *a = load_ok(FULL, NULL), *b = NULL;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/job.ini", dir);
    assert_int_equal(jobspec_save(a, path), DURE_OK);
    assert_int_equal(jobspec_load(path, NULL, &b), DURE_OK);
    assert_true(hash_of(a, JOBSPEC_HASH_ALL) == hash_of(b, JOBSPEC_HASH_ALL));
    jobspec_free(b);
    unlink(path);
    rmdir(dir);
    /* Nothing half-written where the directory does not exist. */
    dure_log_set_quiet(1);
    assert_int_equal(jobspec_save(a, "/nonexistent-dir/job.ini"), DURE_ERR_IO);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "cannot create '/nonexistent-dir/job.ini.tmp."));
    jobspec_free(a);
}

static void test_hash_is_stable(void **state)
{
    (void)state;
    struct dure_jobspec *a = load_ok(MIN_SPEC, NULL);
    char hex[17];
    /*
     * Golden values (checked against an independent FNV-1a of the
     * "section.key=value\n" lines of `dure jobspec --ini`): a change here
     * changes every checkpoint's and manifest's configuration hash. Change
     * them only with the key table or the canonical formatting, knowingly.
     */
    jobspec_hash_hex(hash_of(a, JOBSPEC_HASH_ALL), hex);
    assert_string_equal(hex, "0656c3031bc81708");
    jobspec_hash_hex(hash_of(a, JOBSPEC_HASH_RESULT), hex);
    assert_string_equal(hex, "5be01c4d8a49f383");
    jobspec_free(a);
}

static void test_hash_follows_values_not_spelling(void **state)
{
    (void)state;
    struct dure_jobspec *a = load_ok("[optim]\nlr = 0.001\nwarmup_steps = 5\n"
                                     "[run]\ndeterministic = true\n" MIN_SPEC
                                     "[env]\nA = 1\nB = 2\n",
                                     NULL);
    struct dure_jobspec *b = load_ok(MIN_SPEC "[run]\ndeterministic = YES\n"
                                              "[optim]\nwarmup_steps = 5\nlr = 1e-3\n"
                                              "[env]\nB = 2\nA = 1\n",
                                     NULL);
    assert_true(hash_of(a, JOBSPEC_HASH_ALL) == hash_of(b, JOBSPEC_HASH_ALL));
    uint64_t all = hash_of(a, JOBSPEC_HASH_ALL), result = hash_of(a, JOBSPEC_HASH_RESULT);

    /* Slurm resources, paths and logging: not the result. */
    assert_int_equal(jobspec_set(a, "slurm.time=02:00:00"), DURE_OK);
    assert_int_equal(jobspec_set(a, "run.log_every=1"), DURE_OK);
    assert_int_equal(jobspec_set(a, "checkpoint.every=7"), DURE_OK);
    assert_int_equal(jobspec_set(a, "env.NCCL_DEBUG=INFO"), DURE_OK);
    assert_true(hash_of(a, JOBSPEC_HASH_ALL) != all);
    assert_true(hash_of(a, JOBSPEC_HASH_RESULT) == result);

    /* The model, optimizer, data and seed: the result. */
    const char *changes[] = {"model.d_model=64", "optim.beta2=0.99", "data.path=e.h5",
                             "run.seed=1", "run.deterministic=true", "run.exact=true",
                             "parallel.zero_stage=2", "parallel.bucket_mb=1", NULL};
    for (int i = 0; changes[i]; i++) {
        struct dure_jobspec *c = load_ok(MIN_SPEC, NULL);
        uint64_t before = hash_of(c, JOBSPEC_HASH_RESULT);
        assert_int_equal(jobspec_set(c, changes[i]), DURE_OK);
        assert_true(hash_of(c, JOBSPEC_HASH_RESULT) != before);
        jobspec_free(c);
    }

    /* Exact mode keeps how the work is spread out of the result. */
    const char *layout[] = {"parallel.zero_stage=2", "parallel.bucket_mb=1", "parallel.algo=ring",
                            "parallel.algo_table=0:ring", "run.deterministic=true", NULL};
    struct dure_jobspec *x = load_ok("[run]\nexact = true\n" MIN_SPEC, NULL);
    uint64_t exact = hash_of(x, JOBSPEC_HASH_RESULT);
    for (int i = 0; layout[i]; i++) {
        assert_int_equal(jobspec_set(x, layout[i]), DURE_OK);
        assert_true(hash_of(x, JOBSPEC_HASH_RESULT) == exact);
    }
    assert_int_equal(jobspec_set(x, "optim.micro_batch=4"), DURE_OK);
    assert_true(hash_of(x, JOBSPEC_HASH_RESULT) != exact);
    jobspec_free(x);
    jobspec_free(a);
    jobspec_free(b);
}

static void test_table_shows_sources(void **state)
{
    (void)state;
    const char *sets[] = {"optim.lr=0.01", NULL};
    struct dure_jobspec *s =
        load_ok("[run]\nsteps = 50\n" MIN_SPEC "[env]\nX = y\n[sweep]\nmodel.n_layers = 1, 2\n",
                sets);
    char *t = capture_table(s);
    assert_non_null(strstr(t, "key "));
    assert_non_null(strstr(t, "\nrun.steps "));
    /* Each key's line names where its value came from. */
    const char *want[][2] = {{"run.steps", "job.ini:2"},   {"data.path", "job.ini:4"},
                             {"optim.lr", "--set"},        {"run.dir", "derived"},
                             {"model.d_model", "default"}, {"env.X", "[env]"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char *line = strstr(t, want[i][0]);
        assert_non_null(line);
        char *eol = strchr(line, '\n');
        assert_non_null(eol);
        *eol = '\0';
        if (!strstr(line, want[i][1])) {
            fail_msg("line '%s' does not name '%s'", line, want[i][1]);
        }
        *eol = '\n';
    }
    assert_non_null(strstr(t, "sweep model.n_layers: 2 values\n"));
    free(t);
    jobspec_free(s);
}

/* An empty list prints as an empty value, not as the text of the key
 * printed before it (data.layout's "dure" once showed as data.keys). */
static void test_table_empty_list(void **state)
{
    (void)state;
    struct dure_jobspec *s = load_ok(MIN_SPEC, NULL);
    char *t = capture_table(s);
    char *line = strstr(t, "\ndata.keys ");
    assert_non_null(line);
    line++;
    char *eol = strchr(line, '\n');
    assert_non_null(eol);
    *eol = '\0';
    size_t name = strlen("data.keys");
    size_t blank = strspn(line + name, " ");
    if (strcmp(line + name + blank, "default") != 0) {
        fail_msg("the empty data.keys shows a value: '%s'", line);
    }
    free(t);
    jobspec_free(s);
}

static void test_sweep(void **state)
{
    (void)state;
    struct dure_jobspec *s = load_ok(MIN_SPEC "[run]\nname = sw\n"
                                              "[sweep]\noptim.lr = 1e-3, 3e-4, 1e-4\n"
                                              "model.loss = mse, huber\n",
                                     NULL);
    struct dure_jobspec *t = NULL;
    assert_int_equal(s->sweep.count, 2);
    assert_int_equal(s->sweep.ntasks, 6);
    /* The last axis varies fastest: task 3 = lr[1], loss[1]. */
    assert_int_equal(jobspec_sweep_task(s, 3, &t), DURE_OK);
    assert_true(t->optim.lr == 3e-4);
    assert_int_equal(t->model.loss, JOBSPEC_LOSS_HUBER);
    assert_string_equal(t->run.name, "sw-3");
    assert_string_equal(t->run.dir, "runs/sw/task-003");
    assert_string_equal(t->checkpoint.dir, "runs/sw/task-003/checkpoints");
    assert_int_equal(t->sweep.ntasks, 0);
    char *text = NULL;
    assert_int_equal(jobspec_format_ini(t, &text, NULL), DURE_OK);
    assert_null(strstr(text, "[sweep]"));
    free(text);
    jobspec_free(t);
    assert_int_equal(jobspec_sweep_task(s, 4, &t), DURE_OK);
    assert_true(t->optim.lr == 1e-4);
    assert_int_equal(t->model.loss, JOBSPEC_LOSS_MSE);
    jobspec_free(t);
    dure_log_set_quiet(1);
    assert_int_equal(jobspec_sweep_task(s, 6, &t), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    assert_null(t);
    assert_string_equal(dure_last_error(), "job.ini: sweep task 6 does not exist (6 tasks)");
    jobspec_free(s);
    /* An explicit checkpoint.dir: each task its own subdirectory, so that
     * no task resumes from or prunes another's checkpoints; one the sweep
     * sets stays as set. */
    s = load_ok(MIN_SPEC "[run]\nname = sw\n[checkpoint]\ndir = /scratch/ck\n"
                         "[sweep]\noptim.lr = 1e-3, 3e-4\n",
                NULL);
    assert_int_equal(jobspec_sweep_task(s, 1, &t), DURE_OK);
    assert_string_equal(t->run.dir, "runs/sw/task-001");
    assert_string_equal(t->checkpoint.dir, "/scratch/ck/task-001");
    jobspec_free(t);
    jobspec_free(s);
    s = load_ok(MIN_SPEC "[run]\nname = sw\n[sweep]\ncheckpoint.dir = /a, /b\n", NULL);
    assert_int_equal(jobspec_sweep_task(s, 1, &t), DURE_OK);
    assert_string_equal(t->checkpoint.dir, "/b");
    jobspec_free(t);
    jobspec_free(s);
}

static const char *const MIX =
    "[run]\nname = mix\n[data]\nbalance_alpha = 0.5\n"
    "[data.cnc]\npath = cnc.h5\nweight = 2\n"
    "[data.robot]\npath = robot/*.hdf5\nlayout = aloha\nkeys = observations/qpos, action\n";

static void load_fails(const char *text, const char *const *sets, const char *want)
{
    struct dure_jobspec *s = NULL;
    dure_log_set_quiet(1);
    assert_int_equal(jobspec_load_string(text, "job.ini", sets, &s), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    assert_null(s);
    if (!strstr(dure_last_error(), want)) {
        fail_msg("error '%s' does not contain '%s'", dure_last_error(), want);
    }
}

/* [data.NAME] sections: a mixture of datasets, through the same key table
 * as every other key (--set, the dumps, the hash, [sweep]). */
static void test_mixture(void **state)
{
    (void)state;
    struct dure_jobspec *a = load_ok(MIX, NULL), *b = NULL;
    struct jobspec_dataset_ref ds[JOBSPEC_MAX_DATASETS];
    assert_int_equal(jobspec_datasets(a, ds), 2);
    assert_string_equal(ds[0].name, "cnc");
    assert_string_equal(ds[0].path, "cnc.h5");
    assert_true(ds[0].weight == 2.0);
    assert_int_equal(ds[0].layout, JOBSPEC_LAYOUT_AUTO);
    assert_string_equal(ds[1].name, "robot");
    assert_int_equal(ds[1].layout, JOBSPEC_LAYOUT_EPISODE_FILES);
    assert_int_equal(ds[1].keys->count, 2);
    assert_true(ds[1].weight == 1.0);
    assert_true(a->data.balance_alpha == 0.5);
    char *ta = NULL, *tb = NULL;
    assert_int_equal(jobspec_format_ini(a, &ta, NULL), DURE_OK);
    assert_null(strstr(ta, "\npath = \n")); /* no empty data.path to trip a reload */
    assert_non_null(strstr(ta, "shuffle = true\n\n[data.cnc]\npath = cnc.h5\nlayout = auto\n"
                               "keys = \nweight = 2\nval_path = \n\n[data.robot]\n"));
    b = load_ok(ta, NULL);
    assert_int_equal(jobspec_format_ini(b, &tb, NULL), DURE_OK);
    assert_string_equal(ta, tb);
    assert_true(hash_of(a, JOBSPEC_HASH_ALL) == hash_of(b, JOBSPEC_HASH_ALL));
    /* Golden, checked against an independent FNV-1a of the dump's lines. */
    char hex[17];
    jobspec_hash_hex(hash_of(a, JOBSPEC_HASH_ALL), hex);
    assert_string_equal(hex, "62826f265c982661");
    jobspec_free(b);
    free(ta);
    free(tb);

    /* A dataset's weight is a result key; --set reaches it and adds datasets. */
    const char *sets[] = {"data.cnc.weight=3", "data.extra.path=x.h5", NULL};
    b = load_ok(MIX, sets);
    assert_int_equal(jobspec_datasets(b, ds), 3);
    assert_true(ds[0].weight == 3.0);
    assert_string_equal(ds[2].name, "extra");
    assert_true(hash_of(a, JOBSPEC_HASH_RESULT) != hash_of(b, JOBSPEC_HASH_RESULT));
    assert_int_equal(jobspec_set(b, "data.cnc.weight=2"), DURE_OK);
    assert_true(b->mix.sets[0].weight == 2.0);
    jobspec_free(b);

    /* Without sections: data.path is the one dataset. */
    b = load_ok(MIN_SPEC, NULL);
    assert_int_equal(jobspec_datasets(b, ds), 1);
    assert_string_equal(ds[0].name, "data");
    assert_string_equal(ds[0].path, "d.h5");
    jobspec_free(b);

    /* [sweep] over one dataset's weight. */
    char text[1024];
    snprintf(text, sizeof text, "%s[sweep]\ndata.robot.weight = 1, 4\n", MIX);
    b = load_ok(text, NULL);
    struct dure_jobspec *t = NULL;
    assert_int_equal(b->sweep.ntasks, 2);
    assert_int_equal(jobspec_sweep_task(b, 1, &t), DURE_OK);
    assert_true(t->mix.sets[1].weight == 4.0);
    assert_true(t->mix.sets[0].weight == 2.0);
    jobspec_free(t);
    assert_int_equal(jobspec_format_ini(b, &ta, NULL), DURE_OK);
    assert_non_null(strstr(ta, "\n[sweep]\ndata.robot.weight = 1, 4\n"));
    free(ta);
    jobspec_free(b);
    jobspec_free(a);

    load_fails("[data.cnc]\npath = a.h5\nwieght = 2\n", NULL,
               "job.ini:3: unknown key 'wieght' in [data.cnc] (did you mean 'weight'?); keys "
               "of a dataset: path, layout, keys, weight, val_path");
    load_fails("[data.cnc]\npath = a.h5\npath = b.h5\n", NULL,
               "job.ini:3: data.cnc.path set twice (first at line 2)");
    load_fails("[data.cnc]\nweight = 2\n", NULL, "job.ini: data.cnc.path is required");
    load_fails("[data.cnc]\npath = a.h5\nweight = 0\n", NULL,
               "data.cnc.weight = '0': out of bounds (0, 1e+06]");
    load_fails("[data]\npath = d.h5\n[data.cnc]\npath = a.h5\n", NULL,
               "data.path = 'd.h5' and [data.cnc] both describe datasets");
    /* [data]'s keys of the one dataset would go unused by a mixture. */
    load_fails("[data]\nlayout = robomimic\n[data.cnc]\npath = a.h5\n", NULL,
               "job.ini: data.layout = 'robomimic' and [data.cnc] both describe datasets: "
               "a mixture gives each dataset its layout in its own [data.NAME] section");
    load_fails("[data]\nkeys = obs/a, obs/b\n[data.cnc]\npath = a.h5\n", NULL,
               "data.keys = 'obs/a, obs/b' and [data.cnc] both describe datasets");
    const char *val_set[] = {"data.val_path=v.h5", NULL};
    load_fails("[data.cnc]\npath = a.h5\n", val_set,
               "data.val_path = 'v.h5' and [data.cnc] both describe datasets");
    load_fails("[run]\nname = x\n", NULL, "data.path is required");
    load_fails("[data.a:b]\npath = x\n", NULL, "unknown section [data.a:b]");
    const char *bad_set[] = {"data.a:b.path=x", NULL};
    load_fails(MIN_SPEC, bad_set, "dataset name 'a:b' in [data.a:b]: use letters, digits");
    snprintf(text, sizeof text, "%s[sweep]\ndata.arm.weight = 1, 2\n", MIX);
    load_fails(text, NULL, "no dataset [data.arm] to set weight in");
    snprintf(text, sizeof text, "%s[sweep]\ndata.robot.keys = a, b\n", MIX);
    load_fails(text, NULL, "[sweep] data.robot.keys is a list key and cannot be swept");
}

static void sweep_fails(const char *sweep, const char *want)
{
    char text[512];
    struct dure_jobspec *s = NULL;
    snprintf(text, sizeof text, MIN_SPEC "[sweep]\n%s\n", sweep);
    dure_log_set_quiet(1);
    assert_int_equal(jobspec_load_string(text, "job.ini", NULL, &s), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    if (!strstr(dure_last_error(), want)) {
        fail_msg("error '%s' does not contain '%s'", dure_last_error(), want);
    }
}

static void test_sweep_errors(void **state)
{
    (void)state;
    sweep_fails("slurm.nodes = 1, 2", "job.ini:4: [sweep] slurm.nodes: [slurm] keys cannot be swept");
    sweep_fails("run.dir = a, b", "[sweep] run.dir cannot be swept");
    sweep_fails("data.keys = a, b", "[sweep] data.keys is a list key");
    sweep_fails("optim.lr = 1e-3, fast", "job.ini:4: optim.lr = 'fast': expected a number");
    sweep_fails("lr = 1, 2", "[sweep] key 'lr' must name a key as section.key");
    sweep_fails("optim.rl = 1", "unknown key 'rl' in [optim] (did you mean 'lr'?)");
    sweep_fails("optim.lr = 1e-3\noptim.lr = 1e-4", "job.ini:5: [sweep] optim.lr set twice");
    sweep_fails("optim.lr = ", "give one or more values");
    /* Every task is checked at load: the cross-key rules hold for each. */
    sweep_fails("model.n_heads = 4, 5",
                "job.ini: [sweep] task 1 (model.n_heads=5): model.n_heads = 5 does not "
                "divide model.d_model = 128");
}

static void test_help_lists_every_key(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0, n = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    jobspec_help(f);
    fclose(f);
    const struct jobspec_key *keys = jobspec_keys(&n);
    assert_true(n >= 60);
    for (size_t i = 0; i < n; i++) {
        char want[64];
        snprintf(want, sizeof want, "\n  %s ", keys[i].name);
        assert_non_null(strstr(buf, want));
        assert_non_null(keys[i].help);
    }
    assert_non_null(strstr(buf, "\n[slurm]\n"));
    assert_non_null(strstr(buf, "auto|cpu|cuda"));
    assert_non_null(strstr(buf, "int [1, 1024]"));
    assert_non_null(strstr(buf, "(required)"));
    assert_non_null(strstr(buf, "\n[sweep]\n"));
    free(buf);
}

static void test_every_default_is_valid(void **state)
{
    (void)state;
    size_t n = 0;
    const struct jobspec_key *keys = jobspec_keys(&n);
    for (size_t i = 0; i < n; i++) {
        const struct jobspec_key *k = &keys[i];
        assert_ptr_equal(jobspec_key_find(k->section, k->name), k);
        assert_true((k->def == NULL) == ((k->flags & JOBSPEC_F_REQUIRED) != 0));
        if (k->type == JOBSPEC_ENUM) {
            assert_non_null(k->values);
        }
    }
    assert_null(jobspec_key_find("model", "nope"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_save),
        cmocka_unit_test(test_hash_is_stable),
        cmocka_unit_test(test_hash_follows_values_not_spelling),
        cmocka_unit_test(test_table_shows_sources),
        cmocka_unit_test(test_table_empty_list),
        cmocka_unit_test(test_sweep),
        cmocka_unit_test(test_mixture),
        cmocka_unit_test(test_sweep_errors),
        cmocka_unit_test(test_help_lists_every_key),
        cmocka_unit_test(test_every_default_is_valid),
    };
    return cmocka_run_group_tests_name("jobspec_dump", tests, NULL, NULL);
}
