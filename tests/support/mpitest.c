/* tests/support/mpitest.c - see mpitest.h. */
#include "tests/support/mpitest.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/status.h"
#include "common/timing.h"

static int rank_, size_;

void mpitest_init(int *argc, char ***argv)
{
    /* dure's communication thread needs MPI_THREAD_MULTIPLE (collectives/comm.h). */
    int provided = MPI_THREAD_SINGLE;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS ||
        provided != MPI_THREAD_MULTIPLE) {
        fprintf(stderr, "mpitest: MPI_Init_thread(MPI_THREAD_MULTIPLE) failed\n");
        exit(1);
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    dure_log_set_rank(rank_);
    if (rank_ != 0) {
        const char *dir = getenv("DURE_BUILD");
        const char *prog = strrchr((*argv)[0], '/');
        char path[1024];
        snprintf(path, sizeof path, "%s/test-logs/%s.rank%d.log",
                 dir ? dir : "/tmp", prog ? prog + 1 : (*argv)[0], rank_);
        if (!freopen(path, "w", stdout)) {
            fprintf(stderr, "mpitest: rank %d cannot write %s\n", rank_, path);
        }
    }
}

int mpitest_rank(void) { return rank_; }
int mpitest_size(void) { return size_; }

void mpitest_check_wait_sleeps(void (*run)(void *arg), void *arg, const char *what)
{
    assert_int_equal(MPI_Barrier(MPI_COMM_WORLD), MPI_SUCCESS);
    double wall = dure_now_s(), cpu = dure_clock_s(CLOCK_THREAD_CPUTIME_ID);
    if (rank_ != 0) {
        struct timespec ts = {0, 300 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    run(arg);
    wall = dure_now_s() - wall;
    cpu = dure_clock_s(CLOCK_THREAD_CPUTIME_ID) - cpu;
    if (rank_ == 0 && size_ > 1 && !(wall >= 0.25 && cpu < wall / 4)) {
        fail_msg("%s: waited %.3f s for the late rank using %.3f s of CPU", what, wall, cpu);
    }
}

int mpitest_run(const char *name, const struct CMUnitTest *tests, size_t n)
{
    return mpitest_run_group(name, tests, n, NULL, NULL);
}

int mpitest_run_group(const char *name, const struct CMUnitTest *tests, size_t n,
                      CMFixtureFunction setup, CMFixtureFunction teardown)
{
    int failed = _cmocka_run_group_tests(name, tests, n, setup, teardown);
    int worst = 0;
    MPI_Allreduce(&failed, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rank_ == 0 && worst > failed) {
        printf("[  FAILED  ] %d test(s) failed on another rank (see rank logs)\n",
               worst);
    }
    fflush(stdout);
    MPI_Finalize();
    return worst;
}
