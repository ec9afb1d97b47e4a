/*
 * tests/mpi/test_tune_ompi.c - Open MPI's algorithms as dure tune drives
 * them: the algorithm lists of the installed Open MPI match the numbers the
 * rules writer uses; forcing an algorithm through MPI_T changes what a new
 * communicator runs; and a rules file written by dure is applied by Open MPI.
 *
 * Which algorithm ran is read from the result's bits: the reduction is a
 * user operation declared commutative that is not ((a, b) -> 3a + b), so
 * every algorithm, combining operands in its own order, leaves its own
 * fingerprint, even on 2 ranks. Open MPI's release builds print nothing
 * about rules files; the bits show what they did.
 *
 * Modes (tests/mpi/test_tune.sh runs them):
 *   plain (tests/run.sh)            lists, forcing
 *   DURE_TUNE_TEST_FPS=F            also write F: the fingerprint of every
 *                                   allreduce algorithm at 4 sizes, and F.rules,
 *                                   a rules file (ring below 64 KiB, basic
 *                                   linear from 64 KiB) written by dure
 *   DURE_TUNE_TEST_FPS=F DURE_TUNE_TEST_RULES=R
 *                                   Open MPI loads R at MPI_Init; MPI_COMM_WORLD's
 *                                   fingerprints must be those of the
 *                                   algorithms R picks (from F)
 */
#include "tests/support/mpitest.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tune/ompi_mpit.h"

enum { NSIZES = 4, MAXALG = 16 };
static const int counts[NSIZES] = {16, 1024, 65536, 1 << 20};   /* floats */
static const char *fps_path, *rules_path;

static void not_commutative(void *in, void *inout, int *len, MPI_Datatype *dt)
{
    float *a = in, *b = inout;
    (void)dt;
    for (int i = 0; i < *len; i++) {
        b[i] = 3.0f * a[i] + b[i];
    }
}

/* FNV-1a of the all-reduced vector of n floats on communicator c. */
static unsigned fingerprint(MPI_Comm c, int n)
{
    MPI_Op op;
    int rank;
    MPI_Comm_rank(c, &rank);
    float *x = malloc((size_t)n * sizeof *x);
    assert_non_null(x);
    for (int i = 0; i < n; i++) {
        x[i] = (float)((i * 7 + rank * 13) % 17 + rank);
    }
    assert_int_equal(MPI_Op_create(not_commutative, 1, &op), MPI_SUCCESS);
    assert_int_equal(MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_FLOAT, op, c), MPI_SUCCESS);
    MPI_Op_free(&op);
    unsigned h = 2166136261u;
    const unsigned char *p = (const unsigned char *)x;
    for (size_t i = 0; i < (size_t)n * sizeof *x; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    free(x);
    return h;
}

/* The fingerprint of allreduce algorithm alg (0 = Open MPI's choice). */
static unsigned forced(int alg, int n)
{
    MPI_Comm c;
    assert_int_equal(tune_ompi_force(tune_ompi_coll_of(COMM_ALLREDUCE), alg), DURE_OK);
    assert_int_equal(MPI_Comm_dup(MPI_COMM_WORLD, &c), MPI_SUCCESS);
    unsigned h = fingerprint(c, n);
    MPI_Comm_free(&c);
    assert_int_equal(tune_ompi_force(tune_ompi_coll_of(COMM_ALLREDUCE), 0), DURE_OK);
    return h;
}

static void test_algorithm_lists_match_open_mpi(void **state)
{
    (void)state;
    char names[MAXALG][48];
    for (int coll = 0; coll <= COMM_BROADCAST; coll++) {
        const struct tune_ompi_coll *c = tune_ompi_coll_of((enum comm_coll)coll);
        int n = 0;
        assert_int_equal(tune_ompi_algos(c, &n, names, MAXALG), DURE_OK);
        assert_int_equal(n, c->nalgos);
        for (int k = 0; k < n; k++) {
            if (strcmp(names[k], c->algos[k]) != 0) {
                fail_msg("%s algorithm %d: Open MPI calls it %s, dure %s", c->name, k, names[k],
                         c->algos[k]);
            }
        }
    }
}

static void test_forcing_changes_the_algorithm(void **state)
{
    (void)state;
    const int n = counts[3];
    unsigned world = fingerprint(MPI_COMM_WORLD, n);
    /* algorithm 0 is Open MPI's own choice, as with no dynamic rules at all */
    assert_int_equal(forced(0, n), world);
    unsigned linear = forced(1, n), ring = forced(4, n);
    assert_int_not_equal(linear, ring);
    assert_int_equal(forced(4, n), ring);  /* reproducible */
    /* the forcing lasts for the communicator, not beyond */
    assert_int_equal(fingerprint(MPI_COMM_WORLD, n), world);
}

static void test_write_fingerprints_and_rules(void **state)
{
    (void)state;
    int nalg = tune_ompi_coll_of(COMM_ALLREDUCE)->nalgos;
    FILE *f = mpitest_rank() == 0 ? fopen(fps_path, "w") : NULL;
    if (mpitest_rank() == 0) {
        assert_non_null(f);
    }
    for (int s = 0; s < NSIZES; s++) {
        for (int alg = 0; alg < nalg; alg++) {
            unsigned h = forced(alg, counts[s]);
            if (f) {
                fprintf(f, "%d %d %u\n", counts[s], alg, h);
            }
        }
    }
    if (f) {
        assert_int_equal(fclose(f), 0);
        struct tune_ompi_rules *rs = calloc(1, sizeof *rs);
        char path[1024];
        assert_non_null(rs);
        assert_int_equal(tune_ompi_rules_add(rs, 2, 0, 0, 0), DURE_OK);
        assert_int_equal(tune_ompi_rules_add(rs, 2, 2, 0, 4), DURE_OK);
        assert_int_equal(tune_ompi_rules_add(rs, 2, 2, 65536, 1), DURE_OK);
        assert_int_equal(tune_ompi_rules_add(rs, 2, 3, 0, 0), DURE_OK);
        snprintf(path, sizeof path, "%s.rules", fps_path);
        assert_int_equal(tune_ompi_rules_write(rs, "test_tune_ompi", path), DURE_OK);
        free(rs);
    }
}

static void test_rules_file_applies(void **state)
{
    (void)state;
    unsigned fp[NSIZES][MAXALG];
    FILE *f = fopen(fps_path, "r");
    assert_non_null(f);
    int n, alg, lines = 0;
    unsigned h;
    while (fscanf(f, "%d %d %u", &n, &alg, &h) == 3) {
        for (int s = 0; s < NSIZES; s++) {
            if (counts[s] == n && alg < MAXALG) {
                fp[s][alg] = h;
                lines++;
            }
        }
    }
    fclose(f);
    assert_int_equal(lines, NSIZES * tune_ompi_coll_of(COMM_ALLREDUCE)->nalgos);
    struct tune_ompi_rules *rs = calloc(1, sizeof *rs);
    assert_non_null(rs);
    assert_int_equal(tune_ompi_rules_parse(rules_path, rs), DURE_OK);
    int size = mpitest_size(), distinct = 0;
    for (int s = 0; s < NSIZES; s++) {
        size_t bytes = (size_t)counts[s] * sizeof(float);
        int pick = tune_ompi_rules_pick(rs, 2, size, bytes);
        unsigned got = fingerprint(MPI_COMM_WORLD, counts[s]);
        if (got != fp[s][pick]) {
            fail_msg("%zu bytes: the rules pick algorithm %d, but Open MPI ran another "
                     "(fingerprint %u, algorithm %d's is %u)", bytes, pick, got, pick,
                     fp[s][pick]);
        }
        distinct += fp[s][pick] != fp[s][0];
    }
    if (getenv("DURE_TUNE_TEST_DISTINCT")) {
        /* dure's own test file: at least one size where the file's choice
         * is told apart from Open MPI's default, so the check is not empty */
        assert_true(distinct > 0);
    }
    if (mpitest_rank() == 0) {
        printf("rules: %d of %d sizes run an algorithm whose bits differ from the default's\n",
               distinct, NSIZES);
    }
    free(rs);
}

/* MPI_T must be finalized while MPI is up (Open MPI 4.1 crashes otherwise). */
static int close_mpit(void **state)
{
    (void)state;
    tune_ompi_close();
    return 0;
}

int main(int argc, char **argv)
{
    int had_rules = 0;
    fps_path = getenv("DURE_TUNE_TEST_FPS");
    rules_path = getenv("DURE_TUNE_TEST_RULES");
    if (rules_path) {
        setenv("OMPI_MCA_coll_tuned_use_dynamic_rules", "1", 1);
        setenv("OMPI_MCA_coll_tuned_dynamic_rules_filename", rules_path, 1);
    } else {
        tune_ompi_prepare(&had_rules);
    }
    mpitest_init(&argc, &argv);
    int usable = 0;
    char why[256] = "";
    if (tune_ompi_open(&usable, why, sizeof why) != DURE_OK || !usable) {
        fprintf(stderr, "test_tune_ompi: %s\n", why);
        return 1;
    }
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(test_algorithm_lists_match_open_mpi),
        cmocka_unit_test(test_forcing_changes_the_algorithm),
    };
    const struct CMUnitTest save[] = {
        cmocka_unit_test(test_algorithm_lists_match_open_mpi),
        cmocka_unit_test(test_forcing_changes_the_algorithm),
        cmocka_unit_test(test_write_fingerprints_and_rules),
    };
    const struct CMUnitTest check[] = {
        cmocka_unit_test(test_rules_file_applies),
    };
    if (rules_path && fps_path) {
        return MPITEST_RUN_GROUP("test_tune_ompi (rules file)", check, NULL, close_mpit);
    }
    if (fps_path) {
        return MPITEST_RUN_GROUP("test_tune_ompi (fingerprints)", save, NULL, close_mpit);
    }
    return MPITEST_RUN_GROUP("test_tune_ompi", plain, NULL, close_mpit);
}
