/*
 * tests/mpi/test_tune_recheck.c - the recheck of dure's algorithm table
 * (tune_recheck), on 2 ranks of one node: a sweep whose timings make ring
 * 100x faster than shm (the built-in table's choice here) at every size
 * chooses ring; the recheck times the gradient exchange (all-reduce,
 * reduce-scatter, all-gather) of ring against shm for real, and vetoes ring
 * at every size when asked for a gain no algorithm has (1000x), or keeps it
 * when asked for none (0.001x). Which way it goes is set by the gain, not
 * by the machine's speed, so the test does not depend on timings.
 */
#include "tests/support/mpitest.h"

#include <stdio.h>
#include <string.h>

#include "collectives/comm.h"
#include "tune/choose.h"
#include "tune/sweep.h"
#include "tune/verify.h"

enum { NSIZES = 3 };
static const size_t sizes[NSIZES] = {4096, 16384, 65536};

/* dure's native, ring and shm for the three collectives of the exchange:
 * shm and native 100 us + 1 ns/B, ring 1 us + 0.01 ns/B. */
static void swept(struct tune_result *r)
{
    tune_result_init(r);
    r->ranks = 2;
    r->nodes = 1;
    r->opts = (struct tune_sweep_opts){4096, 65536, 4, 2, 1, 1, 0.15, 1.25, 1,
                                       TUNE_REP_MIN_S};
    const enum comm_algo algos[3] = {COMM_ALGO_NATIVE, COMM_ALGO_RING, COMM_ALGO_SHM};
    for (int c = 0; c < 3; c++) {
        for (int a = 0; a < 3; a++) {
            struct tune_series *s = NULL;
            const int fast = algos[a] == COMM_ALGO_RING;
            assert_int_equal(tune_result_add_series(r, tune_exchange[c], TUNE_LEVEL_NODE, 2, 1,
                                                    TUNE_FAMILY_DURE, (int)algos[a],
                                                    comm_algo_name(algos[a]), 0, &s),
                             DURE_OK);
            s->n = NSIZES;
            for (int k = 0; k < NSIZES; k++) {
                s->pt[k].bytes = sizes[k];
                s->pt[k].sec = fast ? 1e-6 + 1e-11 * (double)sizes[k]
                                    : 100e-6 + 1e-9 * (double)sizes[k];
                s->pt[k].busbw = 1;
            }
        }
    }
}

static void config(struct tune_sweep_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->opts = (struct tune_sweep_opts){4096, 65536, 4, 2, 1, 1, 0.15, 1.25, 1,
                                       TUNE_REP_MIN_S};
    cfg->family[TUNE_FAMILY_DURE] = 1;
    for (int c = 0; c <= COMM_BROADCAST; c++) {
        cfg->coll[c] = 1;
    }
    comm_config_default(&cfg->comm);
    cfg->comm.backend = COMM_BACKEND_MPI;
}

/* The table chosen from r, as text ("0:ring"). */
static void table_of(const struct tune_result *r, char *text, size_t len)
{
    struct comm_algo_table t;
    assert_int_equal(tune_choose_dure_table(r, &t), DURE_OK);
    comm_algo_table_format(&t, text, len);
}

static void test_veto_and_keep(void **state)
{
    (void)state;
    struct tune_sweep_cfg cfg;
    struct tune_result r;
    char text[256];
    config(&cfg);
    /* the built-in table on 2 ranks of one node runs shm at these sizes */
    for (int k = 0; k < NSIZES; k++) {
        assert_int_equal(comm_algo_table_pick(comm_algo_table_builtin(1, 2), sizes[k]),
                         COMM_ALGO_SHM);
    }

    swept(&r);
    table_of(&r, text, sizeof text);
    assert_string_equal(text, "0:ring");
    assert_int_equal(tune_recheck(&cfg, &r, 1000, NULL), DURE_OK);
    for (int c = 0; c < 3; c++) {
        const struct tune_series *ring =
            tune_result_find(&r, tune_exchange[c], TUNE_LEVEL_NODE, TUNE_FAMILY_DURE,
                             COMM_ALGO_RING);
        const struct tune_series *shm = tune_result_find(&r, tune_exchange[c], TUNE_LEVEL_NODE,
                                                         TUNE_FAMILY_DURE, COMM_ALGO_SHM);
        for (int k = 0; k < NSIZES; k++) {
            /* each collective timed for real, its own times recorded */
            assert_int_equal(ring->pt[k].rechecked, 1);
            assert_int_equal(ring->pt[k].vetoed, 1);
            assert_true(ring->pt[k].recheck_sec > 0 && ring->pt[k].recheck_default_sec > 0);
            assert_true(ring->pt[k].recheck_sec != ring->pt[k].sec);
            assert_int_equal(shm->pt[k].rechecked, 0);   /* the default is not a change */
        }
    }
    table_of(&r, text, sizeof text);
    assert_string_equal(text, "0:shm");   /* every change vetoed: the built-in choice */
    tune_result_free(&r);

    swept(&r);
    assert_int_equal(tune_recheck(&cfg, &r, 0.001, NULL), DURE_OK);
    const struct tune_series *ring = tune_result_find(&r, COMM_ALLGATHER, TUNE_LEVEL_NODE,
                                                      TUNE_FAMILY_DURE, COMM_ALGO_RING);
    for (int k = 0; k < NSIZES; k++) {
        assert_int_equal(ring->pt[k].rechecked, 1);
        assert_int_equal(ring->pt[k].vetoed, 0);
    }
    table_of(&r, text, sizeof text);
    assert_string_equal(text, "0:ring");
    tune_result_free(&r);
}

/* No dure family, no recheck of its table: nothing is timed. */
static void test_family_off(void **state)
{
    (void)state;
    struct tune_sweep_cfg cfg;
    struct tune_result r;
    config(&cfg);
    cfg.family[TUNE_FAMILY_DURE] = 0;
    swept(&r);
    assert_int_equal(tune_recheck(&cfg, &r, 1000, NULL), DURE_OK);
    for (int i = 0; i < r.nseries; i++) {
        for (int k = 0; k < NSIZES; k++) {
            assert_int_equal(r.s[i].pt[k].rechecked, 0);
        }
    }
    tune_result_free(&r);
}

int main(int argc, char **argv)
{
    mpitest_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_veto_and_keep),
        cmocka_unit_test(test_family_off),
    };
    return mpitest_run("tune_recheck", tests, sizeof tests / sizeof tests[0]);
}
