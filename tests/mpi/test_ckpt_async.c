/*
 * tests/mpi/test_ckpt_async.c - checkpoints written by the helper thread
 * (ckpt/async.h) on 2 ranks: the state is the one at start even when the
 * caller overwrites its buffers at once; the main thread's collectives run
 * while the helper saves; a failed background save is returned by the next
 * start on every rank, and that start does not save; destroy finishes the
 * save in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/async.h"
#include "ckpt/ckpt.h"
#include "tests/support/ckpt_fixture.h"
#include "tests/support/mpitest.h"

/* See tests/mpi/test_ckpt.c: Open MPI's MPI-IO components and ASan. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "fast_unwind_on_malloc=0"; }

/* Over one 4 MiB checksum block, so that a block straddles the shards. */
#define N ((size_t)(1u << 20) + 333)
#define SEED 7

struct state {
    size_t off, len;
    float *v; /* [3][len]: params, adam_m, adam_v */
};

static void state_init(struct state *s, uint64_t seed)
{
    fx_shard(N, mpitest_rank(), mpitest_size(), &s->off, &s->len);
    s->v = malloc(3 * s->len * sizeof *s->v);
    assert_non_null(s->v);
    for (int i = 0; i < 3; i++) {
        fx_fill(s->v + (size_t)i * s->len, seed, i, s->off, s->len);
    }
}

static dure_status_t start(ckpt_async_t *a, const char *dir, uint64_t step,
                           const struct state *s)
{
    struct ckpt_meta m;
    fx_meta(&m, N, step);
    return ckpt_async_start(a, dir, &m, s->v, s->v + s->len, s->v + 2 * s->len, s->off,
                            s->len, 0, NULL);
}

/* The checkpoint of `step` in dir holds the vectors of `seed`, and verifies. */
static void assert_saved(const char *dir, uint64_t step, uint64_t seed)
{
    char path[CKPT_PATH_MAX];
    struct state got;
    struct ckpt_meta m;
    fx_meta(&m, N, step);
    assert_int_equal(ckpt_path(dir, step, path, sizeof path), DURE_OK);
    state_init(&got, 0);
    memset(got.v, 0, 3 * got.len * sizeof *got.v);
    assert_int_equal(ckpt_load(MPI_COMM_WORLD, path, m.model, N, NULL, got.v,
                               got.v + got.len, got.v + 2 * got.len, got.off, got.len, NULL),
                     DURE_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fx_mismatch(got.v + (size_t)i * got.len, seed, i, got.off, got.len),
                         -1);
    }
    if (mpitest_rank() == 0) {
        struct ckpt_verify_report r;
        assert_int_equal(ckpt_verify(path, &r), DURE_OK);
    }
    free(got.v);
}

static void test_snapshot_taken_at_start(void **state)
{
    (void)state;
    char dir[64];
    ckpt_async_t *a = NULL;
    struct state s;
    struct ckpt_io_stats io;
    uint64_t step = 0;
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);
    state_init(&s, SEED);
    assert_int_equal(ckpt_async_create(MPI_COMM_WORLD, s.len, &a), DURE_OK);
    assert_int_equal(start(a, dir, 5, &s), DURE_OK);
    /* Training goes on: the buffers change at once, and the main thread
     * runs collectives of its own while the helper saves. */
    memset(s.v, 0xA5, 3 * s.len * sizeof *s.v);
    for (int i = 0; i < 50; i++) {
        double x = 1.0, sum = 0;
        assert_int_equal(MPI_Allreduce(&x, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
                         MPI_SUCCESS);
        assert_true(sum == (double)mpitest_size());
    }
    assert_int_equal(ckpt_async_wait(a, &step, &io), DURE_OK);
    assert_int_equal(step, 5);
    assert_true(io.bytes > 3 * N * sizeof(float) && io.total_s > 0);
    /* A result is returned once. */
    assert_int_equal(ckpt_async_wait(a, &step, NULL), DURE_OK);
    assert_int_equal(step, 0);
    assert_int_equal(ckpt_async_done(a), 0);
    assert_saved(dir, 5, SEED);
    ckpt_async_destroy(a);
    free(s.v);
    fx_rmtree(MPI_COMM_WORLD, dir);
}

static void test_failure_surfaces_at_next_start(void **state)
{
    (void)state;
    char dir[64], gone[96];
    ckpt_async_t *a = NULL;
    struct state s;
    uint64_t step = 0;
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);
    snprintf(gone, sizeof gone, "%s/not-there", dir);
    state_init(&s, SEED);
    assert_int_equal(ckpt_async_create(MPI_COMM_WORLD, s.len, &a), DURE_OK);
    dure_log_set_quiet(1);
    assert_int_equal(start(a, gone, 3, &s), DURE_OK); /* fails in the background */
    MPI_Barrier(MPI_COMM_WORLD);
    dure_status_t st = start(a, dir, 4, &s);
    dure_log_set_quiet(0);
    assert_int_equal(st, DURE_ERR_IO);
    assert_non_null(strstr(dure_last_error(), "the checkpoint of step 3, written in the "
                                              "background, failed"));
    /* Nothing in flight: step 4 was not started, and nothing was written. */
    assert_int_equal(ckpt_async_wait(a, &step, NULL), DURE_OK);
    assert_int_equal(step, 0);
    if (mpitest_rank() == 0) {
        assert_int_equal(fx_count_suffix(dir, ".h5"), 0);
    }
    /* The next one works. */
    assert_int_equal(start(a, dir, 6, &s), DURE_OK);
    assert_int_equal(ckpt_async_wait(a, &step, NULL), DURE_OK);
    assert_int_equal(step, 6);
    assert_saved(dir, 6, SEED);
    ckpt_async_destroy(a);
    free(s.v);
    fx_rmtree(MPI_COMM_WORLD, dir);
}

static void test_destroy_finishes_the_save(void **state)
{
    (void)state;
    char dir[64];
    ckpt_async_t *a = NULL;
    struct state s;
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);
    state_init(&s, SEED + 1);
    assert_int_equal(ckpt_async_create(MPI_COMM_WORLD, s.len, &a), DURE_OK);
    assert_int_equal(start(a, dir, 9, &s), DURE_OK);
    ckpt_async_destroy(a);
    assert_saved(dir, 9, SEED + 1);
    /* A shard larger than the snapshot is refused, nothing started. */
    assert_int_equal(ckpt_async_create(MPI_COMM_WORLD, s.len - 1, &a), DURE_OK);
    dure_log_set_quiet(1);
    assert_int_equal(start(a, dir, 10, &s), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    ckpt_async_destroy(a);
    free(s.v);
    fx_rmtree(MPI_COMM_WORLD, dir);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_taken_at_start),
        cmocka_unit_test(test_failure_surfaces_at_next_start),
        cmocka_unit_test(test_destroy_finishes_the_save),
    };
    mpitest_init(&argc, &argv);
    return MPITEST_RUN("test_ckpt_async", tests);
}
