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
    assert_string_equal(hex, "7e65c756342e33f5");
    jobspec_hash_hex(hash_of(a, JOBSPEC_HASH_RESULT), hex);
    assert_string_equal(hex, "6eca7665377f6c21");
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
                             "run.seed=1", "run.deterministic=true", NULL};
    for (int i = 0; changes[i]; i++) {
        struct dure_jobspec *c = load_ok(MIN_SPEC, NULL);
        uint64_t before = hash_of(c, JOBSPEC_HASH_RESULT);
        assert_int_equal(jobspec_set(c, changes[i]), DURE_OK);
        assert_true(hash_of(c, JOBSPEC_HASH_RESULT) != before);
        jobspec_free(c);
    }
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
        cmocka_unit_test(test_sweep_errors),
        cmocka_unit_test(test_help_lists_every_key),
        cmocka_unit_test(test_every_default_is_valid),
    };
    return cmocka_run_group_tests_name("jobspec_dump", tests, NULL, NULL);
}
