/* tests/unit/test_tune_report.c - from measurements to choices (Open MPI
 * rules, dure's table, NCCL rows), the model file tune.json written and
 * read back, its bad input named by line and field, and the health verdict
 * against a baseline and between links. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "tests/support/tmpdir.h"
#include "tune/health.h"
#include "tune/report.h"
#include "tune/verify.h"

#define NSIZES 9   /* 4K .. 1M by 2 */

/* A series timed alpha + beta * n at 4K, 8K, ... 1M. */
static struct tune_series *add(struct tune_result *r, enum comm_coll coll,
                               enum tune_family family, int id, const char *name, double alpha,
                               double beta)
{
    struct tune_series *s = NULL;
    assert_int_equal(tune_result_add_series(r, coll, TUNE_LEVEL_NODE, 2, 1, family, id, name, 0,
                                            &s), DURE_OK);
    s->n = NSIZES;
    for (int k = 0; k < NSIZES; k++) {
        s->pt[k].bytes = (size_t)4096 << k;
        s->pt[k].sec = alpha + beta * (double)s->pt[k].bytes;
        s->pt[k].busbw = (double)s->pt[k].bytes / s->pt[k].sec / 1e9;
    }
    return s;
}

static void base_result(struct tune_result *r)
{
    tune_result_init(r);
    r->ranks = 2;
    r->nodes = 1;
    snprintf(r->backend, sizeof r->backend, "mpi");
    snprintf(r->created, sizeof r->created, "2026-12-01T00:00:00Z");
    snprintf(r->dure_version, sizeof r->dure_version, "0.1.0 (test)");
    snprintf(r->mpi_library, sizeof r->mpi_library, "Open MPI v4.1.4");
    snprintf(r->host0, sizeof r->host0, "vm");
    r->opts = (struct tune_sweep_opts){4096, 1 << 20, 2, 5, 2, 3, 0.15, 1.25, 1, 250e-6};
}

/*
 * Open MPI allreduce: the default 10 us + 1 ns/B; algorithm 3 is 4 us +
 * 1 ns/B (faster at small sizes: 2.5x at 4K, 1.2x at 32K, below the gain
 * from 32K); algorithm 4 is 40 us + 0.25 ns/B (faster at large sizes:
 * crossing the default at 40K, 2.6x at 1M); algorithm 5 is 9 us + 1 ns/B
 * (never 1.25x better: never chosen).
 */
static void ompi_series(struct tune_result *r)
{
    add(r, COMM_ALLREDUCE, TUNE_FAMILY_OMPI, 0, "default", 10e-6, 1e-9);
    add(r, COMM_ALLREDUCE, TUNE_FAMILY_OMPI, 3, "recursive_doubling", 4e-6, 1e-9);
    add(r, COMM_ALLREDUCE, TUNE_FAMILY_OMPI, 4, "ring", 40e-6, 0.25e-9);
    add(r, COMM_ALLREDUCE, TUNE_FAMILY_OMPI, 5, "segmented_ring", 9e-6, 1e-9);
}

static void test_choose_ompi_rules(void **state)
{
    (void)state;
    struct tune_result r;
    base_result(&r);
    ompi_series(&r);
    assert_int_equal(tune_result_fit(&r), DURE_OK);
    struct tune_ompi_rules *rs = calloc(1, sizeof *rs);
    assert_non_null(rs);
    int changed = -1;
    assert_int_equal(tune_choose_ompi_rules(&r, rs, &changed), DURE_OK);
    /* comm 0: defaults; comm 2: 3 from 0 (2.5x at 4K), the default at 8K
     * (where Open MPI 4.1's fixed decision on 2 ranks runs 3 itself), 3 at
     * 16K (1.29x), the default at 32K (3 is 1.16x there), ring from its
     * crossover with the default at 40000 B; comm 3: defaults */
    assert_int_equal(rs->n, 7);
    assert_int_equal(changed, 3);
    assert_int_equal(rs->r[0].comm_size, 0);
    assert_int_equal(rs->r[0].alg, 0);
    assert_int_equal(rs->r[1].comm_size, 2);
    assert_int_equal(rs->r[1].min_bytes, 0);
    assert_int_equal(rs->r[1].alg, 3);
    /* 3 and the default do not cross: the boundaries are the measured sizes */
    assert_int_equal(rs->r[2].min_bytes, 8192);
    assert_int_equal(rs->r[2].alg, 0);
    assert_int_equal(rs->r[3].min_bytes, 16384);
    assert_int_equal(rs->r[3].alg, 3);
    assert_int_equal(rs->r[4].min_bytes, 32768);
    assert_int_equal(rs->r[4].alg, 0);
    assert_int_equal(rs->r[5].alg, 4);
    /* 10 us + 1 ns/B = 40 us + 0.25 ns/B at 40000 B, rounded up to 4 KiB */
    assert_int_equal(rs->r[5].min_bytes, 40960);
    assert_int_equal(rs->r[6].comm_size, 3);
    assert_int_equal(rs->r[6].alg, 0);
    assert_int_equal(tune_ompi_rules_pick(rs, 2, 2, 1 << 20), 4);

    /* a higher bar keeps only the large gain: ring is 1.94x at 128K, 2.58x
     * at 256K, and the crossover at 40000 B is outside that interval */
    r.opts.min_gain = 2.0;
    assert_int_equal(tune_choose_ompi_rules(&r, rs, &changed), DURE_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(tune_ompi_rules_pick(rs, 2, 2, 4096), 0);
    assert_int_equal(tune_ompi_rules_pick(rs, 2, 2, 262143), 0);
    assert_int_equal(tune_ompi_rules_pick(rs, 2, 2, 262144), 4);
    free(rs);
    tune_result_free(&r);
}

/* A change must win at two neighbouring sizes: alone at one it is left at
 * the default (in --verify such a change was as often a bias of the size's
 * memory as a better algorithm). */
static void test_choose_needs_two_sizes(void **state)
{
    (void)state;
    for (int wins = 1; wins <= 2; wins++) {
        struct tune_result r;
        base_result(&r);
        add(&r, COMM_REDUCE_SCATTER, TUNE_FAMILY_OMPI, 0, "default", 10e-6, 1e-9);
        struct tune_series *c = add(&r, COMM_REDUCE_SCATTER, TUNE_FAMILY_OMPI, 2,
                                    "recursive_halving", 10e-6, 1e-9);
        c->pt[5].sec *= 0.5;                   /* 128K: 2x faster */
        if (wins == 2) {
            c->pt[6].sec *= 0.5;               /* and 256K */
        }
        assert_int_equal(tune_result_fit(&r), DURE_OK);
        struct tune_ompi_rules *rs = calloc(1, sizeof *rs);
        assert_non_null(rs);
        int changed = -1;
        assert_int_equal(tune_choose_ompi_rules(&r, rs, &changed), DURE_OK);
        const struct tune_ompi_coll *oc = tune_ompi_coll_of(COMM_REDUCE_SCATTER);
        assert_int_equal(changed, wins == 2);
        assert_int_equal(tune_ompi_rules_pick(rs, oc->id, 2, 128 << 10), wins == 2 ? 2 : 0);
        assert_int_equal(tune_ompi_rules_pick(rs, oc->id, 2, 256 << 10), wins == 2 ? 2 : 0);
        assert_int_equal(tune_ompi_rules_pick(rs, oc->id, 2, 1 << 20), 0);
        free(rs);
        tune_result_free(&r);
    }
}

/* A candidate the recheck vetoed at a size (tune_recheck) is not chosen
 * there: the next fastest is, or the default when none gains enough. */
static void test_choose_vetoed(void **state)
{
    (void)state;
    struct tune_result r;
    base_result(&r);
    ompi_series(&r);
    assert_int_equal(tune_result_fit(&r), DURE_OK);
    struct tune_ompi_rules *rs = calloc(1, sizeof *rs);
    assert_non_null(rs);
    int changed = -1;
    /* algorithm 3 vetoed at 4K (segmented_ring, 1.08x, stays below the
     * gain: the default), ring at 1M (algorithm 3 there is 1.006x: the
     * default) */
    r.s[1].pt[0].vetoed = 1;
    r.s[2].pt[NSIZES - 1].vetoed = 1;
    assert_int_equal(tune_choose_ompi_rules(&r, rs, &changed), DURE_OK);
    assert_int_equal(tune_ompi_rules_pick(rs, 2, 2, 4096), 0);
    assert_int_equal(tune_ompi_rules_pick(rs, 2, 2, 16384), 3);
    assert_int_equal(tune_ompi_rules_pick(rs, 2, 2, 512 << 10), 4);
    assert_int_equal(tune_ompi_rules_pick(rs, 2, 2, 1 << 20), 0);
    /* the default itself is never vetoed out of the choice */
    r.s[0].pt[0].vetoed = 1;
    assert_int_equal(tune_choose_ompi_rules(&r, rs, &changed), DURE_OK);
    assert_int_equal(tune_ompi_rules_pick(rs, 2, 2, 4096), 0);
    free(rs);
    tune_result_free(&r);
}

/*
 * Where Open MPI's fixed decision runs an algorithm itself, that algorithm
 * is the default: the sweep of 2026-12-06 on 2 ranks timed two_proc (what
 * Open MPI 4.1 runs for every all-gather of 2 ranks) 1.5x faster than the
 * default at 4 MiB, and ring 1.6x, both noise. Neither changes the rules:
 * two_proc is the default's own algorithm, and ring (here 1.05x faster
 * than two_proc) is not 1.25x faster than the better of the default's two
 * timings.
 */
static void test_choose_fixed_decision_is_the_default(void **state)
{
    (void)state;
    struct tune_result r;
    base_result(&r);
    add(&r, COMM_ALLGATHER, TUNE_FAMILY_OMPI, 0, "default", 15e-6, 37.5e-12);
    add(&r, COMM_ALLGATHER, TUNE_FAMILY_OMPI, 4, "ring", 9.5e-6, 23.75e-12);
    add(&r, COMM_ALLGATHER, TUNE_FAMILY_OMPI, 6, "two_proc", 10e-6, 25e-12);
    assert_int_equal(tune_result_fit(&r), DURE_OK);
    struct tune_ompi_rules *rs = calloc(1, sizeof *rs);
    assert_non_null(rs);
    int changed = -1;
    assert_int_equal(tune_choose_ompi_rules(&r, rs, &changed), DURE_OK);
    assert_int_equal(changed, 0);
    assert_int_equal(tune_ompi_rules_pick(rs, 0, 2, 4096), 0);
    assert_int_equal(tune_ompi_rules_pick(rs, 0, 2, 1 << 20), 0);
    /* asked for no gain, with ring vetoed everywhere, two_proc is still no
     * change */
    r.opts.min_gain = 1.0;
    for (int k = 0; k < NSIZES; k++) {
        r.s[1].pt[k].vetoed = 1;
    }
    assert_int_equal(tune_choose_ompi_rules(&r, rs, &changed), DURE_OK);
    assert_int_equal(changed, 0);
    /* on 3 ranks (recursive doubling by default) two_proc differs from the
     * default: the fastest not vetoed is chosen */
    for (int i = 0; i < r.nseries; i++) {
        r.s[i].ranks = 3;
    }
    assert_int_equal(tune_choose_ompi_rules(&r, rs, &changed), DURE_OK);
    assert_int_equal(tune_ompi_rules_pick(rs, 0, 3, 1 << 20), 6);
    free(rs);
    tune_result_free(&r);
}

static void test_choose_dure_table(void **state)
{
    (void)state;
    struct tune_result r;
    base_result(&r);
    static const enum comm_coll colls[3] = {COMM_ALLREDUCE, COMM_REDUCE_SCATTER,
                                            COMM_ALLGATHER};
    for (int i = 0; i < 3; i++) {
        add(&r, colls[i], TUNE_FAMILY_DURE, COMM_ALGO_SHM, "shm", 2e-6, 0.5e-9);
        add(&r, colls[i], TUNE_FAMILY_DURE, COMM_ALGO_RING, "ring", 60e-6, 0.2e-9);
        add(&r, colls[i], TUNE_FAMILY_DURE, COMM_ALGO_NATIVE, "native", 8e-6, 1e-9);
    }
    /* broadcast is not part of the gradient exchange: its series is ignored */
    add(&r, COMM_BROADCAST, TUNE_FAMILY_DURE, COMM_ALGO_NATIVE, "native", 1e-9, 1e-15);
    assert_int_equal(tune_result_fit(&r), DURE_OK);
    struct comm_algo_table t;
    assert_int_equal(tune_choose_dure_table(&r, &t), DURE_OK);
    char text[128];
    comm_algo_table_format(&t, text, sizeof text);
    /* shm and ring cross at 58 us / 0.3 ns = 193333 B: 196608 after rounding;
     * ring is 1.25x faster than shm (the built-in table) only from 512K */
    assert_string_equal(text, "0:shm,512K:ring");
    r.opts.min_gain = 1.0;
    assert_int_equal(tune_choose_dure_table(&r, &t), DURE_OK);
    comm_algo_table_format(&t, text, sizeof text);
    assert_string_equal(text, "0:shm,192K:ring");
    /* without all three exchange collectives there is no table to choose */
    r.s[2 * 3 + 1].coll = COMM_BROADCAST;   /* the all-gather ring series */
    assert_int_equal(tune_choose_dure_table(&r, &t), DURE_OK);
    comm_algo_table_format(&t, text, sizeof text);
    assert_string_equal(text, "0:shm");
    r.s[2 * 3 + 0].coll = r.s[2 * 3 + 2].coll = COMM_BROADCAST;
    assert_int_equal(tune_choose_dure_table(&r, &t), DURE_OK);
    assert_int_equal(t.n, 0);
    tune_result_free(&r);
}

static void test_choose_nccl_rows(void **state)
{
    (void)state;
    struct tune_result r;
    base_result(&r);
    add(&r, COMM_ALLREDUCE, TUNE_FAMILY_NCCL, -1, "default", 10e-6, 1e-9);
    add(&r, COMM_ALLREDUCE, TUNE_FAMILY_NCCL, TUNE_NCCL_RING * TUNE_NCCL_PROTO_COUNT +
        TUNE_NCCL_LL128, "ring/ll128", 40e-6, 0.25e-9);
    assert_int_equal(tune_result_fit(&r), DURE_OK);
    struct tune_nccl_conf *c = calloc(1, sizeof *c);
    assert_non_null(c);
    assert_int_equal(tune_choose_nccl_conf(&r, c), DURE_OK);
    assert_int_equal(c->n, 1);
    assert_int_equal(c->r[0].coll, TUNE_NCCL_ALLREDUCE);
    assert_int_equal(c->r[0].min_bytes, 40960);
    assert_true(c->r[0].max_bytes == SIZE_MAX);
    assert_int_equal(c->r[0].algo, TUNE_NCCL_RING);
    assert_int_equal(c->r[0].proto, TUNE_NCCL_LL128);
    assert_int_equal(c->r[0].nnodes, 1);
    assert_int_equal(c->r[0].nranks, 2);
    free(c);
    tune_result_free(&r);
}

struct fixture {
    char dir[128], path[256];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(tmpdir_make(fx->dir, sizeof fx->dir, "tunereport"), 0);
    snprintf(fx->path, sizeof fx->path, "%s/tune.json", fx->dir);
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

static void verify_row(struct tune_verify *v, enum tune_family f, int changed, double speedup)
{
    struct tune_verify_row *r = &v->row[v->n++];
    memset(r, 0, sizeof *r);
    r->coll = COMM_ALLGATHER;
    r->family = f;
    r->bytes = (size_t)4096 << v->n;
    snprintf(r->emitted, sizeof r->emitted, changed ? "ring" : "default");
    snprintf(r->deflt, sizeof r->deflt, "default");
    r->changed = changed;
    r->sec_emitted = 100e-6;
    r->sec_default = speedup * 100e-6;
}

/* tune_verify_print into text[len]; returns its result. */
static int print_verify(const struct tune_verify *v, char *text, size_t len)
{
    FILE *out = fmemopen(text, len, "w");
    assert_non_null(out);
    int met = tune_verify_print(out, v);
    fclose(out);
    return met;
}

/* The ring's segment, one setting for every size, is judged as the probe
 * chose it: summed over the sizes it alone changed, against
 * TUNE_RING_SEGMENT_GAIN, not each size against 1.2. */
static void test_verify_segment(void **state)
{
    struct fixture *fx = *state;
    struct tune_verify *v = calloc(1, sizeof *v);
    assert_non_null(v);
    const double gains[] = {1.01, 1.3, 1.25};
    for (int i = 0; i < 3; i++) {
        verify_row(v, TUNE_FAMILY_DURE, 1, gains[i]);
        v->row[v->n - 1].segment_only = 1;
    }
    verify_row(v, TUNE_FAMILY_DURE, 0, 0.95);
    struct tune_verify_verdict d;
    assert_int_equal(tune_verify_judge(v, TUNE_FAMILY_DURE, &d), 1);
    assert_int_equal(d.changed, 0);
    assert_int_equal(d.segment_changed, 3);
    assert_true(fabs(d.segment_gain - 3.56 / 3.0) < 1e-12);
    assert_true(fabs(d.segment_lowest - 1.01) < 1e-12);
    assert_int_equal(d.identical, 1);
    assert_int_equal(d.met, 1);
    char text[4096];
    assert_int_equal(print_verify(v, text, sizeof text), 1);
    assert_non_null(strstr(text, "verify: dure: 4 size(s), 0 changed; 3 by the ring's segment "
                                 "alone: 1.19x summed (target >= 1.10, as the probe chose it), "
                                 "lowest 1.01; 1 identical to the default: noise floor 0.95 to "
                                 "0.95 (A/A, not judged): targets met\n"));
    snprintf(fx->path, sizeof fx->path, "%s/verify.json", fx->dir);
    assert_int_equal(tune_verify_write(v, fx->path), DURE_OK);
    json_doc_t *doc = NULL;
    assert_int_equal(json_parse_file(fx->path, &doc), DURE_OK);
    const struct json_value *du = json_get(json_root(doc), "verdicts")->child;
    assert_int_equal((int)json_get(du, "segment_changed")->number, 3);
    assert_true(fabs(json_get(du, "segment_gain")->number - 3.56 / 3.0) < 1e-9);
    assert_int_equal(json_get(du, "lowest_speedup")->type, JSON_NULL);
    assert_true(json_get(json_get(json_root(doc), "rows")->child, "segment_only")->boolean);
    json_free(doc);
    /* a slower size pulls the sum below the probe's gain: missed */
    verify_row(v, TUNE_FAMILY_DURE, 1, 0.5);
    v->row[v->n - 1].segment_only = 1;
    assert_int_equal(tune_verify_judge(v, TUNE_FAMILY_DURE, &d), 1);
    assert_true(fabs(d.segment_gain - 4.06 / 4.0) < 1e-12);
    assert_int_equal(d.met, 0);
    /* and an algorithm changed at 1.1x misses whatever the segment gains */
    v->n = 3;
    verify_row(v, TUNE_FAMILY_DURE, 1, 1.1);
    assert_int_equal(tune_verify_judge(v, TUNE_FAMILY_DURE, &d), 1);
    assert_int_equal(d.changed, 1);
    assert_int_equal(d.segment_changed, 3);
    assert_int_equal(d.met, 0);
    free(v);
}

/* --verify's verdict: the targets are judged where the emitted setting
 * differs; identical rows (A/A) give the noise floor, however low. */
static void test_verify_verdict(void **state)
{
    struct fixture *fx = *state;
    struct tune_verify *v = calloc(1, sizeof *v);
    assert_non_null(v);
    verify_row(v, TUNE_FAMILY_OMPI, 1, 1.3);
    verify_row(v, TUNE_FAMILY_OMPI, 0, 0.92);
    verify_row(v, TUNE_FAMILY_OMPI, 1, 1.25);
    verify_row(v, TUNE_FAMILY_OMPI, 0, 1.05);
    verify_row(v, TUNE_FAMILY_OMPI, 0, 0.98);
    verify_row(v, TUNE_FAMILY_DURE, 0, 0.9);
    struct tune_verify_verdict d;
    assert_int_equal(tune_verify_judge(v, TUNE_FAMILY_NCCL, &d), 0);
    assert_int_equal(tune_verify_judge(v, TUNE_FAMILY_OMPI, &d), 1);
    assert_int_equal(d.sizes, 5);
    assert_int_equal(d.changed, 2);
    assert_true(fabs(d.lowest - 1.25) < 1e-12);
    assert_int_equal(d.identical, 3);
    assert_true(fabs(d.noise_lo - 0.92) < 1e-12 && fabs(d.noise_hi - 1.05) < 1e-12);
    assert_int_equal(d.met, 1);
    assert_int_equal(tune_verify_judge(v, TUNE_FAMILY_DURE, &d), 1);
    assert_int_equal(d.changed, 0);
    assert_int_equal(d.met, 1);

    char text[4096];
    assert_int_equal(print_verify(v, text, sizeof text), 1);
    assert_non_null(strstr(text, "verify: ompi: 5 size(s), 2 changed: lowest speed-up 1.25 "
                                 "(targets >= 1.0, >= 1.2); 3 identical to the default: noise "
                                 "floor 0.92 to 1.05 (A/A, not judged): targets met\n"));
    assert_non_null(strstr(text, "verify: dure: 1 size(s), 0 changed; 1 identical"));
    assert_non_null(strstr(text, "0.92  (identical)\n"));

    snprintf(fx->path, sizeof fx->path, "%s/verify.json", fx->dir);
    assert_int_equal(tune_verify_write(v, fx->path), DURE_OK);
    json_doc_t *doc = NULL;
    assert_int_equal(json_parse_file(fx->path, &doc), DURE_OK);
    const struct json_value *ver = json_get(json_root(doc), "verdicts");
    assert_non_null(ver);
    assert_int_equal(ver->count, 2);
    const struct json_value *du = ver->child, *om = du->next;
    assert_string_equal(json_get(om, "family")->str, "ompi");
    assert_true(fabs(json_get(json_get(om, "noise_floor"), "lowest")->number - 0.92) < 1e-9);
    assert_true(fabs(json_get(om, "lowest_speedup")->number - 1.25) < 1e-9);
    assert_int_equal(json_get(du, "lowest_speedup")->type, JSON_NULL);
    json_free(doc);

    /* a changed size below 1.2 misses, whatever the identical ones say */
    verify_row(v, TUNE_FAMILY_OMPI, 1, 1.1);
    assert_int_equal(tune_verify_judge(v, TUNE_FAMILY_OMPI, &d), 1);
    assert_int_equal(d.met, 0);
    assert_int_equal(print_verify(v, text, sizeof text), 0);
    assert_non_null(strstr(text, "lowest speed-up 1.10 (targets >= 1.0, >= 1.2); 3 identical"));
    assert_non_null(strstr(text, "target missed\n"));
    free(v);
}

static void test_model_file_round_trip(void **state)
{
    struct fixture *fx = *state;
    struct tune_result r, back;
    base_result(&r);
    ompi_series(&r);
    r.s[2].hops = 2;
    assert_int_equal(tune_result_add_link(&r, "n1", "n2", 1.5), DURE_OK);
    assert_int_equal(tune_result_fit(&r), DURE_OK);
    struct tune_outputs o = {.ompi_rules = 5, .ompi_changed = 2, .nccl_rules = -1,
                             .ompi_file = "ompi_rules.conf"};
    assert_int_equal(tune_report_write(&r, &o, fx->path), DURE_OK);

    tune_result_init(&back);
    assert_int_equal(tune_report_read(fx->path, &back), DURE_OK);
    assert_int_equal(back.ranks, 2);
    assert_int_equal(back.nodes, 1);
    assert_string_equal(back.host0, "vm");
    assert_int_equal(back.opts.reps, 3);
    assert_true(back.opts.min_gain == 1.25);
    assert_int_equal(back.opts.caller_runs, 1);
    assert_true(back.opts.min_rep_s == 250e-6);
    assert_int_equal(back.nseries, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(back.s[i].coll, r.s[i].coll);
        assert_int_equal(back.s[i].family, r.s[i].family);
        assert_int_equal(back.s[i].id, r.s[i].id);
        assert_string_equal(back.s[i].name, r.s[i].name);
        assert_int_equal(back.s[i].n, NSIZES);
        for (int k = 0; k < NSIZES; k++) {
            assert_int_equal(back.s[i].pt[k].bytes, r.s[i].pt[k].bytes);
            assert_true(back.s[i].pt[k].sec == r.s[i].pt[k].sec);   /* 17 digits */
        }
    }
    assert_int_equal(back.nlinks, 1);
    assert_true(back.links[0].gbs == 1.5);

    /* what dure plan reads: pieces with alpha, beta and the per-hop term,
     * the error at every point, and the crossovers */
    json_doc_t *doc = NULL;
    assert_int_equal(json_parse_file(fx->path, &doc), DURE_OK);
    const struct json_value *root = json_root(doc);
    assert_int_equal(json_get(root, "format")->number, 1);
    const struct json_value *ring = json_get(root, "series")->child->next->next;
    assert_string_equal(json_get(ring, "algorithm")->str, "ring");
    const struct json_value *fit = json_get(ring, "fit");
    const struct json_value *piece = json_get(fit, "pieces")->child;
    assert_true(fabs(json_get(piece, "alpha_s")->number / 40e-6 - 1) < 1e-9);
    assert_true(fabs(json_get(piece, "alpha_per_hop_s")->number / 20e-6 - 1) < 1e-9);
    assert_true(fabs(json_get(piece, "beta_s_per_byte")->number / 0.25e-9 - 1) < 1e-9);
    assert_int_equal(json_get(fit, "within_tolerance")->boolean, 1);
    const struct json_value *pt = json_get(ring, "points")->child;
    assert_true(fabs(json_get(pt, "error")->number) < 1e-9);
    const struct json_value *cx = json_get(root, "crossovers")->child;
    assert_non_null(cx);
    assert_string_equal(json_get(cx, "faster_below")->str, "recursive_doubling");
    assert_string_equal(json_get(cx, "faster_above")->str, "ring");
    assert_int_equal(json_get(cx, "bytes")->number, 48000);   /* 4 + n = 40 + 0.25 n (us, KB) */
    assert_null(cx->next);
    /* dure plan's point-to-point model, from Open MPI's ring (no dure ring
     * here): 40 us over 2 steps, 0.25 ns/B x 2 ranks / 2 steps */
    const struct json_value *intra = json_get(json_get(root, "levels"), "intra");
    assert_true(fabs(json_get(intra, "alpha_s")->number / 20e-6 - 1) < 1e-9);
    assert_true(fabs(json_get(intra, "beta_s_per_byte")->number / 0.25e-9 - 1) < 1e-9);
    assert_string_equal(json_get(intra, "from")->str, "ompi ring allreduce, 2 ranks on 1 node(s)");
    assert_null(json_get(json_get(root, "levels"), "inter"));
    assert_string_equal(json_get(json_get(root, "files"), "ompi_rules")->str, "ompi_rules.conf");
    assert_int_equal(json_get(json_get(root, "files"), "nccl_tuner")->type, JSON_NULL);
    json_free(doc);
    tune_result_free(&back);
    tune_result_free(&r);
}

/*
 * dure plan's links per collective: within a node from shm where it was
 * measured (what the built-in table runs there), else from dure's ring;
 * a reduce-scatter or all-gather as a ring of p-1 steps, an all-reduce of
 * 2(p-1), each of n/p bytes.
 */
static void test_link_model_per_collective(void **state)
{
    struct fixture *fx = *state;
    struct tune_result r;
    base_result(&r);
    add(&r, COMM_ALLREDUCE, TUNE_FAMILY_DURE, COMM_ALGO_RING, "ring", 20e-6, 1e-9);
    add(&r, COMM_ALLREDUCE, TUNE_FAMILY_DURE, COMM_ALGO_SHM, "shm", 4e-6, 0.2e-9);
    add(&r, COMM_REDUCE_SCATTER, TUNE_FAMILY_DURE, COMM_ALGO_SHM, "shm", 3e-6, 0.1e-9);
    add(&r, COMM_ALLGATHER, TUNE_FAMILY_DURE, COMM_ALGO_RING, "ring", 10e-6, 0.5e-9);
    assert_int_equal(tune_result_fit(&r), DURE_OK);
    double a = 0, b = 0;
    const struct tune_series *s = NULL;
    assert_int_equal(tune_link_model(&r, TUNE_LEVEL_NODE, COMM_ALLREDUCE, &a, &b, &s), 1);
    assert_true(fabs(a / 2e-6 - 1) < 1e-6 && fabs(b / 0.2e-9 - 1) < 1e-6);
    assert_int_equal(s->id, COMM_ALGO_SHM);
    assert_int_equal(tune_link_model(&r, TUNE_LEVEL_NODE, COMM_REDUCE_SCATTER, &a, &b, &s), 1);
    assert_true(fabs(a / 3e-6 - 1) < 1e-6 && fabs(b / 0.2e-9 - 1) < 1e-6);
    assert_int_equal(tune_link_model(&r, TUNE_LEVEL_NODE, COMM_ALLGATHER, &a, &b, &s), 1);
    assert_true(fabs(a / 10e-6 - 1) < 1e-6 && fabs(b / 1e-9 - 1) < 1e-6);
    assert_int_equal(s->id, COMM_ALGO_RING);
    assert_int_equal(tune_link_model(&r, TUNE_LEVEL_NODE, COMM_BROADCAST, &a, &b, &s), 0);
    assert_int_equal(tune_link_model(&r, TUNE_LEVEL_WORLD, COMM_ALLREDUCE, &a, &b, &s), 0);

    /* tune.json: the all-reduce's link for the level, each collective's
     * under "collectives" */
    struct tune_outputs o = {.ompi_rules = -1, .nccl_rules = -1};
    assert_int_equal(tune_report_write(&r, &o, fx->path), DURE_OK);
    json_doc_t *doc = NULL;
    assert_int_equal(json_parse_file(fx->path, &doc), DURE_OK);
    const struct json_value *intra = json_get(json_get(json_root(doc), "levels"), "intra");
    assert_true(fabs(json_get(intra, "beta_s_per_byte")->number / 0.2e-9 - 1) < 1e-6);
    const struct json_value *per = json_get(intra, "collectives");
    const struct json_value *rs = json_get(per, "reducescatter");
    assert_true(fabs(json_get(rs, "alpha_s")->number / 3e-6 - 1) < 1e-6);
    assert_string_equal(json_get(rs, "from")->str, "dure shm reducescatter, 2 ranks on 1 node(s)");
    assert_true(fabs(json_get(json_get(per, "allgather"), "beta_s_per_byte")->number / 1e-9 - 1) <
                1e-6);
    assert_int_equal(per->count, 3);
    json_free(doc);
    tune_result_free(&r);
}

/* Replace the first `from` in the file by `to`, parse, and expect the message. */
static void expect_bad_model(const struct fixture *fx, const char *good, const char *from,
                             const char *to, const char *needle)
{
    const char *at = strstr(good, from);
    assert_non_null(at);
    FILE *f = fopen(fx->path, "w");
    assert_non_null(f);
    fprintf(f, "%.*s%s%s", (int)(at - good), good, to, at + strlen(from));
    fclose(f);
    struct tune_result r;
    tune_result_init(&r);
    dure_log_set_quiet(1);
    dure_status_t st = tune_report_read(fx->path, &r);
    dure_log_set_quiet(0);
    if (st != DURE_ERR_FORMAT || !strstr(dure_last_error(), needle) ||
        !strstr(dure_last_error(), fx->path)) {
        fail_msg("'%s' -> '%s': status %d, message: %s\nwanted: %s", from, to, (int)st,
                 dure_last_error(), needle);
    }
    tune_result_free(&r);
}

/* The line number (from 1) of the first occurrence of `what` in text. */
static int line_of(const char *text, const char *what)
{
    const char *at = strstr(text, what);
    int line = 1;
    for (const char *p = text; p < at; p++) {
        line += *p == '\n';
    }
    return line;
}

static void test_model_file_bad_input(void **state)
{
    struct fixture *fx = *state;
    struct tune_result r;
    base_result(&r);
    ompi_series(&r);
    assert_int_equal(tune_result_fit(&r), DURE_OK);
    struct tune_outputs o = {.ompi_rules = -1, .nccl_rules = -1};
    assert_int_equal(tune_report_write(&r, &o, fx->path), DURE_OK);
    FILE *f = fopen(fx->path, "r");
    static char good[1 << 16];
    size_t n = fread(good, 1, sizeof good - 1, f);
    good[n] = '\0';
    fclose(f);
    char want[128];

    snprintf(want, sizeof want, ":%d: series[0].points[0]: field 'busbw_gbs' must be a number",
             line_of(good, "\"busbw_gbs\""));
    expect_bad_model(fx, good, "\"busbw_gbs\": ", "\"busbw_gbs\": \"x\", \"y\": ", want);
    snprintf(want, sizeof want, ":%d: series[0]: field 'collective' = 'alltoall' is not one of",
             line_of(good, "\"collective\""));
    expect_bad_model(fx, good, "\"collective\": \"allreduce\"", "\"collective\": \"alltoall\"",
                     want);
    snprintf(want, sizeof want, ":%d: series[0]: field 'level' is missing",
             line_of(good, "\"collective\"") - 1);
    expect_bad_model(fx, good, "\"level\": \"node\",", "", want);
    expect_bad_model(fx, good, "\"format\": 1", "\"format\": 2", "field 'format' = 2: this dure "
                     "reads format 1");
    expect_bad_model(fx, good, "\"bytes\": 8192", "\"bytes\": 2048",
                     "series[0].points[1]: bytes 2048 after 4096: sizes must ascend");
    expect_bad_model(fx, good, "\"time_s\"", "\"time_s\": 0, \"x\"", "field 'time_s' = 0 is "
                     "outside");
    expect_bad_model(fx, good, "\"kind\": \"dure-tune\"", "\"kind\": \"other\"",
                     "not a model written by dure tune");
    expect_bad_model(fx, good, "\"series\": [", "\"series\": [,", "invalid JSON");
    snprintf(want, sizeof want, ":%d: sweep: field 'collectives_run_by' = 'both' is not one of "
             "caller, thread", line_of(good, "\"collectives_run_by\""));
    expect_bad_model(fx, good, "\"collectives_run_by\": \"caller\"",
                     "\"collectives_run_by\": \"both\"", want);
    /* the key and its value as written ("min_rep_s": 0.00025000000000000001,) */
    char entry[64];
    const char *key = strstr(good, "\"min_rep_s\": ");
    assert_non_null(key);
    const size_t entry_len = (size_t)(strchr(key, ',') + 1 - key);
    assert_true(entry_len < sizeof entry);
    snprintf(entry, sizeof entry, "%.*s", (int)entry_len, key);
    snprintf(want, sizeof want, ":%d: sweep: field 'min_rep_s' = -1 is outside [0, 1]",
             line_of(good, "\"min_rep_s\""));
    expect_bad_model(fx, good, entry, "\"min_rep_s\": -1,", want);

    /* written before the sweep recorded it: the minimum it then had */
    f = fopen(fx->path, "w");
    assert_non_null(f);
    fprintf(f, "%.*s%s", (int)(key - good), good, key + entry_len);
    fclose(f);
    struct tune_result old;
    tune_result_init(&old);
    assert_int_equal(tune_report_read(fx->path, &old), DURE_OK);
    assert_true(old.opts.min_rep_s == TUNE_REP_MIN_S);
    tune_result_free(&old);
    tune_result_free(&r);
}

/* A series beyond the tolerance says why: a time that falls with size
 * (named, with both sizes), else a regime too narrow for a piece or noise. */
static void test_report_says_why_it_misses(void **state)
{
    (void)state;
    struct tune_result r;
    base_result(&r);
    struct tune_series *fall = add(&r, COMM_ALLREDUCE, TUNE_FAMILY_OMPI, 0, "default", 2e-6, 0);
    fall->pt[3].sec = 5e-6;                   /* 32K: 5 us, 64K: 2 us */
    struct tune_series *spike = add(&r, COMM_BROADCAST, TUNE_FAMILY_OMPI, 0, "default", 2e-6,
                                    1e-9);
    spike->pt[8].sec *= 3;                    /* the largest size alone: no piece of three */
    add(&r, COMM_ALLGATHER, TUNE_FAMILY_OMPI, 0, "default", 2e-6, 1e-9);
    /* the same spike after the sweep's second look: measured twice */
    struct tune_series *twice = add(&r, COMM_REDUCE_SCATTER, TUNE_FAMILY_OMPI, 0, "default",
                                    2e-6, 1e-9);
    twice->pt[8].sec *= 3;
    twice->retimed = 1;
    assert_int_equal(tune_result_fit(&r), DURE_OK);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    tune_report_print(f, &r);
    fclose(f);
    const char *a = strstr(text, "allreduce"), *b = strstr(text, "broadcast"),
               *c = strstr(text, "allgather");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    const char *why = strstr(a, "    misses by ");
    assert_true(why && why < b);
    assert_non_null(strstr(why, ": the time falls 60% from 32K (5.00 us) to 64K (2.00 us), which "
                                "no line rising with size follows\n"));
    why = strstr(b, "    misses by ");
    assert_true(why && why < c);
    assert_non_null(strstr(why, ": a regime of fewer sizes than a piece's 3, or noise"));
    const char *d = strstr(text, "reducescatter");
    assert_non_null(d);
    assert_true(c < d);
    why = strstr(c, "    misses by ");
    assert_true(why > d);   /* all-gather, within the tolerance, says nothing */
    assert_non_null(strstr(why, ": a regime of fewer sizes than a piece's 3 (timed twice, the "
                                "second time with twice the passes: not a burst of noise"));
    free(text);
    tune_result_free(&r);
}

static void test_health_verdict(void **state)
{
    (void)state;
    struct tune_result now, base;
    base_result(&now);
    base_result(&base);
    add(&base, COMM_ALLREDUCE, TUNE_FAMILY_DURE, COMM_ALGO_SHM, "shm", 2e-6, 0.5e-9);
    add(&now, COMM_ALLREDUCE, TUNE_FAMILY_DURE, COMM_ALGO_SHM, "shm", 2e-6, 0.5e-9);
    /* 1M now 30% slower in busbw, 64K 10% slower (within 20%) */
    now.s[0].pt[8].busbw *= 0.7;
    now.s[0].pt[4].busbw *= 0.9;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    int findings = -1;
    assert_int_equal(tune_health(&now, &base, "base.json", 0.2, out, &findings), DURE_OK);
    fclose(out);
    assert_int_equal(findings, 1);
    assert_non_null(strstr(text, "health: allreduce node level, dure shm, 1M: busbw"));
    assert_non_null(strstr(text, "(30% lower)"));
    assert_non_null(strstr(text, "health: UNHEALTHY: 1 finding(s) at a threshold of 20%"));
    free(text);

    /* the same run is healthy */
    out = open_memstream(&text, &len);
    assert_int_equal(tune_health(&base, &base, "base.json", 0.2, out, &findings), DURE_OK);
    fclose(out);
    assert_int_equal(findings, 0);
    assert_non_null(strstr(text, "health: OK (9 point(s) against the baseline"));
    free(text);

    /* another shape is not comparable */
    base.ranks = 4;
    out = open_memstream(&text, &len);
    dure_log_set_quiet(1);
    assert_int_equal(tune_health(&now, &base, "base.json", 0.2, out, &findings), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    fclose(out);
    free(text);
    assert_non_null(strstr(dure_last_error(), "baseline base.json was measured on 4 rank(s)"));
    tune_result_free(&now);
    tune_result_free(&base);
}

static void test_slow_links_by_host(void **state)
{
    (void)state;
    struct tune_result r;
    base_result(&r);
    r.nodes = 4;
    /* node d is bad: its three links are slow */
    const char *h[4] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        for (int j = i + 1; j < 4; j++) {
            assert_int_equal(tune_result_add_link(&r, h[i], h[j], j == 3 ? 0.3 : 1.0 + 0.05 * i),
                             DURE_OK);
        }
    }
    int slow[6];
    assert_int_equal(tune_link_outliers(r.links, 6, 0.2, slow), 3);
    assert_true(slow[2] && slow[4] && slow[5] && !slow[0] && !slow[1] && !slow[3]);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    int findings = 0;
    assert_int_equal(tune_health(&r, NULL, NULL, 0.2, out, &findings), DURE_OK);
    fclose(out);
    assert_int_equal(findings, 3);
    assert_non_null(strstr(text, "health: slow link a <-> d: 0.3 GB/s, the fastest of 6 links "
                                 "1.05 GB/s"));
    assert_non_null(strstr(text, "health: node d is in every slow link"));
    free(text);
    /* two links (three nodes) are enough; one link is judged against a baseline only */
    assert_int_equal(tune_link_outliers(r.links, 2, 0.2, slow), 0);
    r.links[1].gbs = 0.5;
    assert_int_equal(tune_link_outliers(r.links, 2, 0.2, slow), 1);
    assert_int_equal(tune_link_outliers(r.links, 1, 0.2, slow), 0);
    tune_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choose_ompi_rules),
        cmocka_unit_test(test_choose_vetoed),
        cmocka_unit_test(test_choose_needs_two_sizes),
        cmocka_unit_test(test_choose_fixed_decision_is_the_default),
        cmocka_unit_test(test_choose_dure_table),
        cmocka_unit_test(test_choose_nccl_rows),
        cmocka_unit_test_setup_teardown(test_verify_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_verdict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_file_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_model_per_collective, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_file_bad_input, setup, teardown),
        cmocka_unit_test(test_report_says_why_it_misses),
        cmocka_unit_test(test_health_verdict),
        cmocka_unit_test(test_slow_links_by_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
