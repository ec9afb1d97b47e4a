/* tests/unit/test_tune_files.c - the tuning files dure tune writes: Open
 * MPI's coll_tuned rules (classic format) and nccl_tuner.conf. Written text
 * against the formats, round trips, the lookups the readers do, and every
 * bad input naming the file, line and field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/tmpdir.h"
#include "tune/nccl_conf.h"
#include "tune/ompi_fixed.h"
#include "tune/ompi_rules.h"

struct fixture {
    char dir[128];
    char path[256];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(tmpdir_make(fx->dir, sizeof fx->dir, "tunefiles"), 0);
    snprintf(fx->path, sizeof fx->path, "%s/f", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(tmpdir_remove(fx->dir), 0);
    free(fx);
    return 0;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 16);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The file without comments, whitespace runs as one space: what Open MPI reads. */
static void numbers_only(const char *text, char *out, size_t cap)
{
    size_t o = 0;
    int in_comment = 0, space = 1;
    for (const char *p = text; *p && o + 2 < cap; p++) {
        if (*p == '#') {
            in_comment = 1;
        }
        if (*p == '\n') {
            in_comment = 0;
        }
        if (in_comment) {
            continue;
        }
        if (*p == ' ' || *p == '\n' || *p == '\t') {
            if (!space) {
                out[o++] = ' ';
            }
            space = 1;
        } else {
            out[o++] = *p;
            space = 0;
        }
    }
    out[o] = '\0';
}

static void build_rules(struct tune_ompi_rules *rs)
{
    rs->n = 0;
    assert_int_equal(tune_ompi_rules_add(rs, 2, 0, 0, 0), DURE_OK);
    assert_int_equal(tune_ompi_rules_add(rs, 2, 2, 0, 0), DURE_OK);
    assert_int_equal(tune_ompi_rules_add(rs, 2, 2, 65536, 4), DURE_OK);
    assert_int_equal(tune_ompi_rules_add(rs, 2, 2, 8 << 20, 6), DURE_OK);
    assert_int_equal(tune_ompi_rules_add(rs, 2, 3, 0, 0), DURE_OK);
    assert_int_equal(tune_ompi_rules_add(rs, 7, 2, 0, 6), DURE_OK);
}

static void test_ompi_rules_written_as_open_mpi_reads_them(void **state)
{
    struct fixture *fx = *state;
    struct tune_ompi_rules *rs = calloc(1, sizeof *rs), *back = calloc(1, sizeof *back);
    assert_non_null(rs);
    assert_non_null(back);
    build_rules(rs);
    assert_int_equal(tune_ompi_rules_write(rs, "tuned on vm\n2 ranks", fx->path), DURE_OK);
    char *text = slurp(fx->path), nums[1024];
    numbers_only(text, nums, sizeof nums);
    /* NCOLL, then per collective ID NCOMM, per comm size SIZE NMSG and rows */
    assert_string_equal(nums, "2 2 3 0 1 0 0 0 0 2 3 0 0 0 0 65536 4 0 0 8388608 6 0 0 3 1 "
                              "0 0 0 0 7 1 2 1 0 6 0 0 ");
    assert_non_null(strstr(text, "# tuned on vm\n# 2 ranks\n"));
    assert_non_null(strstr(text, "# from 64K bytes: ring\n"));
    assert_non_null(strstr(text, "# from 8M bytes: rabenseifner\n"));
    assert_non_null(strstr(text, "# from 0 bytes: Open MPI's own choice\n"));
    assert_non_null(strstr(text, "coll_tuned_dynamic_rules_filename"));

    assert_int_equal(tune_ompi_rules_parse(fx->path, back), DURE_OK);
    assert_int_equal(back->n, rs->n);
    for (int i = 0; i < rs->n; i++) {
        assert_int_equal(back->r[i].coll_id, rs->r[i].coll_id);
        assert_int_equal(back->r[i].comm_size, rs->r[i].comm_size);
        assert_int_equal(back->r[i].min_bytes, rs->r[i].min_bytes);
        assert_int_equal(back->r[i].alg, rs->r[i].alg);
        assert_true(back->r[i].line > 0);
    }
    free(text);
    free(rs);
    free(back);
}

static void test_ompi_lookup_as_open_mpi_does(void **state)
{
    (void)state;
    struct tune_ompi_rules *rs = calloc(1, sizeof *rs);
    assert_non_null(rs);
    build_rules(rs);
    assert_int_equal(tune_ompi_rules_pick(rs, 2, 2, 4096), 0);
    assert_int_equal(tune_ompi_rules_pick(rs, 2, 2, 65535), 0);
    assert_int_equal(tune_ompi_rules_pick(rs, 2, 2, 65536), 4);
    assert_int_equal(tune_ompi_rules_pick(rs, 2, 2, 1 << 30), 6);
    assert_int_equal(tune_ompi_rules_pick(rs, 2, 3, 1 << 20), 0);   /* its own rule */
    assert_int_equal(tune_ompi_rules_pick(rs, 2, 64, 1 << 20), 0);  /* nearest below: 3 */
    assert_int_equal(tune_ompi_rules_pick(rs, 12, 2, 1 << 20), 0);  /* no rules: default */
    /* below every rule's size Open MPI takes the first rule */
    assert_int_equal(tune_ompi_rules_pick(rs, 7, 1, 1 << 20), 6);
    assert_int_equal(tune_ompi_rules_pick(rs, 7, 2, 10), 6);
    assert_int_equal(tune_ompi_coll_of(COMM_ALLGATHER)->id, 0);
    assert_int_equal(tune_ompi_coll_of(COMM_REDUCE_SCATTER)->id, 12);
    assert_string_equal(tune_ompi_algo_name(tune_ompi_coll_of(COMM_BROADCAST), 7), "knomial");
    free(rs);
}

/* Open MPI 4.1's fixed decision (coll_tuned_decision_fixed.c, commutative
 * operations) at its switch points, on 2 ranks and on larger communicators. */
static void test_ompi_fixed_decision(void **state)
{
    (void)state;
    /* allreduce (2): 2 ranks switch at 4K, 8K, 16K, 64K, 256K */
    assert_int_equal(tune_ompi_fixed_pick(2, 2, 4095), 3);
    assert_int_equal(tune_ompi_fixed_pick(2, 2, 4096), 4);
    assert_int_equal(tune_ompi_fixed_pick(2, 2, 8192), 3);
    assert_int_equal(tune_ompi_fixed_pick(2, 2, 16384), 4);
    assert_int_equal(tune_ompi_fixed_pick(2, 2, 65536), 5);
    assert_int_equal(tune_ompi_fixed_pick(2, 3, 262144), 6);
    assert_int_equal(tune_ompi_fixed_pick(2, 15, 8191), 3);
    assert_int_equal(tune_ompi_fixed_pick(2, 63, 100), 5);
    assert_int_equal(tune_ompi_fixed_pick(2, 5000, 20000), 3);
    /* reduce_scatter (12): ring on 2 ranks but butterfly at 64K-128K */
    assert_int_equal(tune_ompi_fixed_pick(12, 2, 65535), 3);
    assert_int_equal(tune_ompi_fixed_pick(12, 2, 65536), 4);
    assert_int_equal(tune_ompi_fixed_pick(12, 2, 131072), 3);
    assert_int_equal(tune_ompi_fixed_pick(12, 5000, 4096), 2);
    /* allgather (0): two_proc on 2 ranks at every size; elsewhere by the
     * send count's bytes (one rank's piece) */
    assert_int_equal(tune_ompi_fixed_pick(0, 2, 4096), 6);
    assert_int_equal(tune_ompi_fixed_pick(0, 2, 4 << 20), 6);
    assert_int_equal(tune_ompi_fixed_pick(0, 4, 4 << 20), 3);
    assert_int_equal(tune_ompi_fixed_pick(0, 40, 40 * 2048), 5);
    assert_int_equal(tune_ompi_fixed_pick(0, 40, 40 * 512), 3);
    assert_int_equal(tune_ompi_fixed_pick(0, 40, 40 * 65536), 4);
    /* bcast (7): 2 ranks basic_linear at 4K, binomial to 1M, binary_tree from it */
    assert_int_equal(tune_ompi_fixed_pick(7, 2, 31), 3);
    assert_int_equal(tune_ompi_fixed_pick(7, 2, 4096), 1);
    assert_int_equal(tune_ompi_fixed_pick(7, 2, (1 << 20) - 1), 6);
    assert_int_equal(tune_ompi_fixed_pick(7, 2, 4 << 20), 5);
    assert_int_equal(tune_ompi_fixed_pick(7, 100, 1 << 30), 7);
    assert_int_equal(tune_ompi_fixed_pick(7, 5000, 10000), 5);
    assert_int_equal(tune_ompi_fixed_pick(7, 5000, SIZE_MAX), 8);
    /* a collective dure does not call */
    assert_int_equal(tune_ompi_fixed_pick(99, 2, 4096), 0);
}

/* Parse `text` and expect DURE_ERR_FORMAT with every needle in the message. */
static void expect_bad_rules(const struct fixture *fx, const char *text, const char *needle1,
                             const char *needle2)
{
    struct tune_ompi_rules *rs = calloc(1, sizeof *rs);
    assert_non_null(rs);
    put(fx->path, text);
    dure_log_set_quiet(1);
    dure_status_t st = tune_ompi_rules_parse(fx->path, rs);
    dure_log_set_quiet(0);
    if (st != DURE_ERR_FORMAT || !strstr(dure_last_error(), needle1) ||
        !strstr(dure_last_error(), needle2) || !strstr(dure_last_error(), fx->path)) {
        fail_msg("input:\n%s\nstatus %d, message: %s\nwanted: %s ... %s", text, (int)st,
                 dure_last_error(), needle1, needle2);
    }
    free(rs);
}

static void test_ompi_bad_rules_name_file_line_field(void **state)
{
    struct fixture *fx = *state;
    expect_bad_rules(fx, "1\n2\n1\n2 1\n0 ring 0 0\n", ":5: algorithm (allreduce, "
                     "communicators of 2, message rule 1)", "found 'ring'");
    expect_bad_rules(fx, "1\n2\n1\n2 1\n0 010 0 0\n", ":5: algorithm", "leading zero");
    expect_bad_rules(fx, "1 # one\n2\n1\n2 2\n0 4 0 0\n-5 1 0 0\n", ":6: message size", "'-5'");
    expect_bad_rules(fx, "1\n2\n1\n2 1\n4096 4 0 0\n", ":5:", "the first message size is 4096");
    expect_bad_rules(fx, "1\n2\n1\n2 2\n0 4 0 0\n0 3 0 0\n", ":6:", "must ascend");
    expect_bad_rules(fx, "1\n2\n2\n4 1\n0 4 0 0\n2 1\n0 3 0 0\n", ":7:",
                     "communicator size 2 after 4");
    expect_bad_rules(fx, "1\n2\n1\n2 1\n0 9 0 0\n", ":5: allreduce: algorithm 9", "0 to 6");
    expect_bad_rules(fx, "1\n30\n", ":2: collective id (collective 1 of 1)", "larger than 21");
    expect_bad_rules(fx, "2\n2\n1\n2 1\n0 4 0 0\n", "ends where the collective id "
                     "(collective 2 of 2)", ":5:");
    expect_bad_rules(fx, "1\n2\n1\n2 1\n0 4 0 0\n7\n", ":6: '7' after the last of the 1",
                     "collectives");
    expect_bad_rules(fx, "2\n2\n1\n2 1\n0 4 0 0\n2\n1\n2 1\n0 3 0 0\n", ":6: collective id 2",
                     "appears twice");
    expect_bad_rules(fx, "", "ends where the number of collectives", ":0:");

    struct tune_ompi_rules *rs = calloc(1, sizeof *rs);
    assert_non_null(rs);
    dure_log_set_quiet(1);
    assert_int_equal(tune_ompi_rules_parse("/nonexistent/rules.conf", rs), DURE_ERR_IO);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "'/nonexistent/rules.conf'"));
    /* comments anywhere, numbers split across lines as Open MPI allows */
    put(fx->path, "# header\n1 2 # allreduce\n1 2 1\n0 4 0 0 # all sizes\n");
    assert_int_equal(tune_ompi_rules_parse(fx->path, rs), DURE_OK);
    assert_int_equal(rs->n, 1);
    assert_int_equal(rs->r[0].line, 4);
    /* the writer refuses what the parser refuses, and writes nothing */
    rs->n = 0;
    assert_int_equal(tune_ompi_rules_add(rs, 2, 2, 4096, 4), DURE_OK);
    char other[300];
    snprintf(other, sizeof other, "%s/never", fx->dir);
    dure_log_set_quiet(1);
    assert_int_equal(tune_ompi_rules_write(rs, NULL, other), DURE_ERR_FORMAT);
    dure_log_set_quiet(0);
    assert_int_equal(tmpdir_count(fx->dir), 1);
    free(rs);
}

static void test_nccl_conf_written_as_the_plugin_reads_it(void **state)
{
    struct fixture *fx = *state;
    struct tune_nccl_conf *c = calloc(1, sizeof *c), *back = calloc(1, sizeof *back);
    assert_non_null(c);
    assert_non_null(back);
    assert_int_equal(tune_nccl_conf_add(c, TUNE_NCCL_ALLREDUCE, 0, 65535, TUNE_NCCL_TREE,
                                        TUNE_NCCL_LL, 1, 8), DURE_OK);
    assert_int_equal(tune_nccl_conf_add(c, TUNE_NCCL_ALLREDUCE, 65536, 4294967295u,
                                        TUNE_NCCL_NVLS_TREE, TUNE_NCCL_SIMPLE, 1, 8), DURE_OK);
    assert_int_equal(tune_nccl_conf_add(c, TUNE_NCCL_REDUCESCATTER, 0, 1023, TUNE_NCCL_RING,
                                        TUNE_NCCL_LL128, 2, 16), DURE_OK);
    assert_int_equal(tune_nccl_conf_write(c, "tuned on node01", fx->path), DURE_OK);
    char *text = slurp(fx->path);
    const char *rows = strstr(text, "allreduce,");
    assert_non_null(rows);
    assert_string_equal(rows, "allreduce,0,65535,tree,ll,-1,1,8\n"
                              "allreduce,65536,4294967295,nvls_tree,simple,-1,1,8\n"
                              "reducescatter,0,1023,ring,ll128,-1,2,16\n");
    assert_non_null(strstr(text, "# tuned on node01\n"));
    for (const char *p = text; p < rows; p = strchr(p, '\n') + 1) {
        assert_int_equal(*p, '#');  /* everything before the rows is a comment */
    }
    assert_int_equal(tune_nccl_conf_parse(fx->path, back), DURE_OK);
    assert_int_equal(back->n, 3);
    assert_int_equal(back->r[1].algo, TUNE_NCCL_NVLS_TREE);
    assert_int_equal(back->r[2].proto, TUNE_NCCL_LL128);
    assert_int_equal(back->r[2].nnodes, 2);
    assert_int_equal(back->r[2].pipeops, -1);

    /* the first matching rule wins; other shapes keep NCCL's choice */
    assert_ptr_equal(tune_nccl_conf_pick(back, TUNE_NCCL_ALLREDUCE, 65536, 1, 8), &back->r[1]);
    assert_ptr_equal(tune_nccl_conf_pick(back, TUNE_NCCL_ALLREDUCE, 65535, 1, 8), &back->r[0]);
    assert_null(tune_nccl_conf_pick(back, TUNE_NCCL_ALLREDUCE, 100, 2, 8));
    assert_null(tune_nccl_conf_pick(back, TUNE_NCCL_ALLGATHER, 100, 1, 8));
    assert_string_equal(tune_nccl_algo_env(TUNE_NCCL_NVLS_TREE), "NVLSTree");
    assert_string_equal(tune_nccl_proto_env(TUNE_NCCL_LL128), "LL128");

    /* 9 and 10 fields, spaces around fields, blank lines */
    put(fx->path, "allgather , 0 , 100 , pat , simple , 4 , -1 , -1 , 1\n\n"
                  "broadcast,0,100,ring,ll,-1,-1,-1,-1,0\n");
    assert_int_equal(tune_nccl_conf_parse(fx->path, back), DURE_OK);
    assert_int_equal(back->n, 2);
    assert_int_equal(back->r[0].algo, TUNE_NCCL_PAT);
    assert_int_equal(back->r[0].channels, 4);
    assert_int_equal(back->r[0].pipeops, 1);
    assert_int_equal(back->r[1].regbuff, 0);
    assert_int_equal(back->r[1].line, 3);
    free(text);
    free(c);
    free(back);
}

static void expect_bad_conf(const struct fixture *fx, const char *text, const char *needle)
{
    struct tune_nccl_conf *c = calloc(1, sizeof *c);
    assert_non_null(c);
    put(fx->path, text);
    dure_log_set_quiet(1);
    dure_status_t st = tune_nccl_conf_parse(fx->path, c);
    dure_log_set_quiet(0);
    if (st != DURE_ERR_FORMAT || !strstr(dure_last_error(), needle) ||
        !strstr(dure_last_error(), fx->path)) {
        fail_msg("input:\n%s\nstatus %d, message: %s\nwanted: %s", text, (int)st,
                 dure_last_error(), needle);
    }
    free(c);
}

static void test_nccl_bad_conf_names_file_line_field(void **state)
{
    struct fixture *fx = *state;
    expect_bad_conf(fx, "# ok\nallreduce,0,100,treee,ll,-1,1,8\n",
                    ":2: field 4 (algorithm): 'treee' is not one of");
    expect_bad_conf(fx, "allreduce,0,100,tree,ll,-1,1\n", ":1: 7 fields; a rule has 8 to 10");
    expect_bad_conf(fx, "alltoall,0,100,tree,ll,-1,1,8\n", ":1: field 1 (collective): 'alltoall'");
    expect_bad_conf(fx, "allreduce,200,100,tree,ll,-1,1,8\n", ":1: field 2 (min_bytes): 200 is "
                    "above max_bytes 100");
    expect_bad_conf(fx, "allreduce,0,1K,tree,ll,-1,1,8\n", ":1: field 3 (max_bytes): '1K'");
    expect_bad_conf(fx, "allreduce,0,100,tree,LL,-1,1,8\n", ":1: field 5 (protocol): 'LL'");
    expect_bad_conf(fx, "allreduce,0,100,tree,ll,0,1,8\n", ":1: field 6 (channels): '0'");
    expect_bad_conf(fx, "allreduce,0,100,tree,ll,-1,1,8,-1,2\n", ":1: field 10 (regBuff): '2' "
                    "is not -1, 0 or 1");
    expect_bad_conf(fx, "\n  # indented\n", ":2: a comment must start in the first column");
    char longline[400];
    memset(longline, ' ', sizeof longline);
    memcpy(longline, "allreduce,0,100,tree,ll,-1,1,8", 30);
    longline[300] = '\n';
    longline[301] = '\0';
    expect_bad_conf(fx, longline, ":1: the line has 300 characters");
    struct tune_nccl_conf *c = calloc(1, sizeof *c);
    assert_non_null(c);
    dure_log_set_quiet(1);
    assert_int_equal(tune_nccl_conf_parse("/nonexistent/tuner.conf", c), DURE_ERR_IO);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "'/nonexistent/tuner.conf'"));
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ompi_rules_written_as_open_mpi_reads_them, setup,
                                        teardown),
        cmocka_unit_test(test_ompi_lookup_as_open_mpi_does),
        cmocka_unit_test(test_ompi_fixed_decision),
        cmocka_unit_test_setup_teardown(test_ompi_bad_rules_name_file_line_field, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_nccl_conf_written_as_the_plugin_reads_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_nccl_bad_conf_names_file_line_field, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
