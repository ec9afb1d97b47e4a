/*
 * tests/unit/test_failure.c - failure records (train/failure.h): what each
 * survivor writes, and the merged view that `dure status` shows and the
 * batch script excludes nodes by: a dead node (only the others report), a
 * partition of two nodes (each sees the other silent: rank 0's side is
 * kept), one node cut from three (the majority decides), a rank that only
 * lags (not a failure), a killed rank on the reporter's own node, records of
 * another job or an older launch, and a record that does not parse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "train/failure.h"
#include "tests/support/tmpdir.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    unsetenv("SLURM_JOB_ID");
    unsetenv("SLURM_RESTART_COUNT");
    return tmpdir_make(dir, sizeof dir, "failure");
}

static int teardown(void **state)
{
    (void)state;
    return tmpdir_remove(dir);
}

/* Rank `rank` of `size` on `host` saw the ranks of missing[n] fail. */
static void record(int launch, int rank, int size, const char *host,
                   const struct comm_hang_missing *missing, int n)
{
    struct comm_hang_report r = {
        .rank = rank,
        .size = size,
        .host = host,
        .op = "all-reduce",
        .algo = "ring",
        .seq = 121,
        .bytes = 4096,
        .waited_s = 5.25,
        .missing_known = 1,
        .missing = missing,
        .n_missing = n,
        .text = "",
    };
    assert_int_equal(failure_record_write(dir, launch, 60 + rank, &r, 124), DURE_OK);
}

static const struct failure_node *failed_node(const struct failure_summary *s,
                                              const char *host, int *excluded)
{
    for (int i = 0; i < s->n_failed; i++) {
        if (strcmp(s->failed[i].host, host) == 0) {
            *excluded = s->exclude[i];
            return &s->failed[i];
        }
    }
    return NULL;
}

static void test_record_fields(void **state)
{
    (void)state;
    struct comm_hang_missing m[1] = {{2, "n2", 120, COMM_PEER_SILENT, 6.5}};
    char path[128];
    json_doc_t *doc = NULL;
    setenv("SLURM_JOB_ID", "777", 1);
    setenv("SLURM_RESTART_COUNT", "2", 1);
    record(3, 0, 4, "n1", m, 1);
    unsetenv("SLURM_JOB_ID");
    unsetenv("SLURM_RESTART_COUNT");
    snprintf(path, sizeof path, "%s/failures/launch-3/rank-0.json", dir);
    assert_int_equal(json_parse_file(path, &doc), DURE_OK);
    const struct json_value *root = json_root(doc);
    assert_string_equal(json_get(root, "format")->str, "dure-failure");
    assert_string_equal(json_get(root, "job")->str, "777");
    assert_true(json_get(root, "restart")->number == 2);
    assert_true(json_get(root, "step")->number == 60);
    assert_string_equal(json_get(root, "host")->str, "n1");
    const struct json_value *c = json_get(root, "collective");
    assert_string_equal(json_get(c, "op")->str, "all-reduce");
    assert_true(json_get(c, "seq")->number == 121);
    const struct json_value *x = json_get(root, "missing")->child;
    assert_true(json_get(x, "rank")->number == 2);
    assert_string_equal(json_get(x, "host")->str, "n2");
    assert_string_equal(json_get(x, "state")->str, "silent");
    assert_true(json_get(x, "silent_s")->number == 6.5);
    assert_true(json_get(x, "joined")->number == 120);
    assert_true(json_get(root, "exit_code")->number == 124);
    json_free(doc);
}

static void test_dead_node(void **state)
{
    (void)state;
    struct failure_summary s;
    int ex = -1;
    /* n2 (ranks 2, 3) died: ranks 0 and 1 on n1 report, n2 says nothing. */
    struct comm_hang_missing m[2] = {{2, "n2", 120, COMM_PEER_SILENT, 5.5},
                                     {3, "n2", 119, COMM_PEER_SILENT, 6.0}};
    record(0, 0, 4, "n1", m, 2);
    record(0, 1, 4, "n1", m, 2);
    assert_int_equal(failure_summary_read(dir, NULL, 0, &s), DURE_OK);
    assert_int_equal(s.launch, 0);
    assert_int_equal(s.n_records, 2);
    assert_int_equal(s.step, 60);
    assert_int_equal(s.seq, 121);
    assert_string_equal(s.op, "all-reduce");
    assert_int_equal(s.exit_code, 124);
    assert_int_equal(s.n_reporters, 1);
    assert_string_equal(s.reporters[0].host, "n1");
    assert_string_equal(s.reporters[0].ranks, "0, 1");
    assert_int_equal(s.n_failed, 1);
    const struct failure_node *n2 = failed_node(&s, "n2", &ex);
    assert_non_null(n2);
    assert_string_equal(n2->ranks, "2, 3");
    assert_string_equal(n2->state, "silent");
    assert_true(n2->silent_s == 6.0);
    assert_int_equal(n2->accusers, 1);
    assert_int_equal(ex, 1);
}

static void test_partition_of_two(void **state)
{
    (void)state;
    struct failure_summary s;
    int ex = -1;
    struct comm_hang_missing of_n2[1] = {{1, "n2", 50, COMM_PEER_SILENT, 5.1}};
    struct comm_hang_missing of_n1[1] = {{0, "n1", 50, COMM_PEER_SILENT, 5.2}};
    record(1, 0, 2, "n1", of_n2, 1);
    record(1, 1, 2, "n2", of_n1, 1);
    assert_int_equal(failure_summary_read(dir, NULL, 0, &s), DURE_OK);
    assert_int_equal(s.launch, 1);
    assert_int_equal(s.n_reporters, 2);
    assert_int_equal(s.n_failed, 2);
    /* Each saw the other silent: rank 0's node (the batch script's) is kept. */
    assert_non_null(failed_node(&s, "n2", &ex));
    assert_int_equal(ex, 1);
    assert_non_null(failed_node(&s, "n1", &ex));
    assert_int_equal(ex, 0);
}

static void test_one_cut_from_three(void **state)
{
    (void)state;
    struct failure_summary s;
    int ex = -1;
    struct comm_hang_missing of_n3[1] = {{2, "n3", 50, COMM_PEER_SILENT, 5.0}};
    struct comm_hang_missing of_rest[2] = {{0, "n1", 50, COMM_PEER_SILENT, 5.0},
                                           {1, "n2", 50, COMM_PEER_SILENT, 5.0}};
    record(0, 1, 3, "n2", of_n3, 1);
    record(0, 0, 3, "n1", of_n3, 1);
    record(0, 2, 3, "n3", of_rest, 2);
    assert_int_equal(failure_summary_read(dir, NULL, 0, &s), DURE_OK);
    assert_int_equal(s.n_reporters, 3);
    assert_non_null(failed_node(&s, "n3", &ex));
    assert_int_equal(ex, 1);
    assert_int_equal(failed_node(&s, "n3", &ex)->accusers, 2);
    assert_non_null(failed_node(&s, "n1", &ex));
    assert_int_equal(ex, 0);
    assert_non_null(failed_node(&s, "n2", &ex));
    assert_int_equal(ex, 0);
}

static void test_lagging_and_local_kill(void **state)
{
    (void)state;
    struct failure_summary s;
    int ex = -1;
    /* Rank 1 (n1) was killed, rank 2 (n2) only lags behind it. */
    struct comm_hang_missing m[2] = {{1, "n1", 40, COMM_PEER_GONE, 0},
                                     {2, "n2", 40, COMM_PEER_BEHIND, 0.1}};
    record(0, 0, 4, "n1", m, 2);
    assert_int_equal(failure_summary_read(dir, NULL, 0, &s), DURE_OK);
    assert_int_equal(s.n_failed, 1);
    const struct failure_node *n1 = failed_node(&s, "n1", &ex);
    assert_non_null(n1);
    assert_string_equal(n1->ranks, "1");
    assert_string_equal(n1->state, "gone");
    /* Excluding it would exclude every reporter: the lowest rank's node stays. */
    assert_int_equal(ex, 0);
    assert_null(failed_node(&s, "n2", &ex));
}

static void test_job_filter_and_newest_launch(void **state)
{
    (void)state;
    struct failure_summary s;
    int ex = -1;
    struct comm_hang_missing m2[1] = {{1, "n2", 10, COMM_PEER_SILENT, 5}};
    struct comm_hang_missing m3[1] = {{1, "n3", 10, COMM_PEER_SILENT, 5}};
    setenv("SLURM_JOB_ID", "41", 1);
    record(0, 0, 2, "n1", m2, 1); /* job 41, restart 0 */
    setenv("SLURM_RESTART_COUNT", "1", 1);
    record(2, 0, 2, "n1", m3, 1); /* job 41, restart 1, a later launch */
    unsetenv("SLURM_RESTART_COUNT");
    unsetenv("SLURM_JOB_ID");
    assert_int_equal(failure_summary_read(dir, NULL, 0, &s), DURE_OK);
    assert_int_equal(s.launch, 2);
    assert_non_null(failed_node(&s, "n3", &ex));
    /* The first attempt's own records. */
    assert_int_equal(failure_summary_read(dir, "41", 0, &s), DURE_OK);
    assert_int_equal(s.launch, 0);
    assert_string_equal(s.job, "41");
    assert_non_null(failed_node(&s, "n2", &ex));
    assert_int_equal(ex, 1);
    /* Another job has none. */
    assert_int_equal(failure_summary_read(dir, "42", 0, &s), DURE_OK);
    assert_int_equal(s.launch, -1);
    assert_int_equal(s.n_failed, 0);
}

static void test_bad_record(void **state)
{
    (void)state;
    struct failure_summary s;
    char path[160];
    struct comm_hang_missing m[1] = {{1, "n2", 10, COMM_PEER_SILENT, 5}};
    record(0, 0, 2, "n1", m, 1);
    snprintf(path, sizeof path, "%s/failures/launch-0/rank-1.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"format\": \"something else\", \"rank\": 1}\n", f);
    fclose(f);
    /* Not a record's name: ignored. */
    snprintf(path, sizeof path, "%s/failures/launch-0/rank-1.json.tmp.99", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("garbage", f);
    fclose(f);
    dure_log_set_quiet(1);
    assert_int_equal(failure_summary_read(dir, NULL, 0, &s), DURE_ERR_FORMAT);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "launch-0/rank-1.json' is not a dure failure record"));
    /* No failures directory: nothing to say. */
    char empty[64];
    assert_int_equal(tmpdir_make(empty, sizeof empty, "failure-none"), 0);
    assert_int_equal(failure_summary_read(empty, NULL, 0, &s), DURE_OK);
    assert_int_equal(s.launch, -1);
    assert_int_equal(tmpdir_remove(empty), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_record_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partition_of_two, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_cut_from_three, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lagging_and_local_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_filter_and_newest_launch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_record, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
