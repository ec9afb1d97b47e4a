/*
 * tests/support/mpitest.h - run a cmocka group under mpirun.
 *
 * Every rank runs every test; rank 0 prints cmocka's report, the other ranks
 * write theirs to BUILD/test-logs/<prog>.rank<N>.log. The exit code is the
 * number of tests that failed on any rank, so a failure on rank 1 fails the
 * run even when rank 0 passed.
 */
#ifndef DURE_TESTS_MPITEST_H
#define DURE_TESTS_MPITEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Initialise MPI and redirect non-zero ranks' output; call first in main. */
void mpitest_init(int *argc, char ***argv);

/* Run the group on every rank, finalize MPI, return the exit code for main. */
int mpitest_run(const char *name, const struct CMUnitTest *tests, size_t n);

/* Same, with cmocka group fixtures that run before MPI is finalized (for
 * state such as communicators that must be freed while MPI is up). */
int mpitest_run_group(const char *name, const struct CMUnitTest *tests, size_t n,
                      CMFixtureFunction setup, CMFixtureFunction teardown);

int mpitest_rank(void);
int mpitest_size(void);

/*
 * A wait for a late peer must sleep, not spin (the waiting rank's core
 * belongs to its compute thread): every rank but 0 pauses 300 ms, then
 * every rank calls run(arg), a collective; rank 0, waiting inside it, must
 * spend under a quarter of that wait on its CPU. A spin or sched_yield loop
 * spends nearly all of it whenever the core has nothing else to run.
 * Fails the test on rank 0 naming `what`.
 */
void mpitest_check_wait_sleeps(void (*run)(void *arg), void *arg, const char *what);

#define MPITEST_RUN(name, tests)                                              \
    mpitest_run((name), (tests), sizeof(tests) / sizeof((tests)[0]))

#define MPITEST_RUN_GROUP(name, tests, setup, teardown)                       \
    mpitest_run_group((name), (tests), sizeof(tests) / sizeof((tests)[0]), (setup), (teardown))

#endif
