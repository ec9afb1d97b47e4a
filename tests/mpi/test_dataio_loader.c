/* tests/mpi/test_dataio_loader.c - the loader under mpirun: each rank's
 * part of a global batch, with io serial and mpiio, equals the matching
 * slice of a one-rank loader; statistics shared by the ranks equal the
 * serial ones; a failure on one rank fails every rank instead of hanging.
 * Run with OMPI_MPI_THREAD_LEVEL=3 (tests/mpi/test_dataio_threads.sh) it
 * covers the mpiio prefetch thread; otherwise mpiio reads on the caller. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataio/gen.h"
#include "dataio/loader.h"
#include "tests/support/mpitest.h"

#define W 32
#define B 8
#define STEPS 12

static char path[128], nostats[128], other[128];

/* Rank 0 writes the files; everyone learns their names. */
static void make_files(void)
{
    char dir[64] = "";
    if (mpitest_rank() == 0) {
        snprintf(dir, sizeof dir, "/tmp/dure-mpi-XXXXXX");
        assert_non_null(mkdtemp(dir));
    }
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    snprintf(path, sizeof path, "%s/d.h5", dir);
    snprintf(nostats, sizeof nostats, "%s/nostats.h5", dir);
    snprintf(other, sizeof other, "%s/other.h5", dir);
    if (mpitest_rank() == 0) {
        struct dataio_gen_config g;
        dataio_gen_config_init(&g);
        g.path = path;
        g.episodes = 10;
        g.length = 400;
        g.min_length = 150;
        g.channels = 6;
        g.chunk_rows = 64;
        assert_int_equal(dataio_gen_write(&g), DURE_OK);
        g.path = nostats;
        g.val_fraction = 0;
        assert_int_equal(dataio_gen_write(&g), DURE_OK);
        g.path = other;
        g.episodes = 9;
        assert_int_equal(dataio_gen_write(&g), DURE_OK);
        hid_t f = H5Fopen(nostats, H5F_ACC_RDWR, H5P_DEFAULT);
        assert_true(f >= 0 && H5Ldelete(f, "/stats", H5P_DEFAULT) >= 0);
        H5Fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* Rank 0 removes the files at exit, after every rank has finished. */
static void remove_files(void)
{
    char dir[128];
    unlink(path);
    unlink(nostats);
    unlink(other);
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    rmdir(dir);
}

static void cfg_for(struct dataio_loader_config *c, const char *p, MPI_Comm comm,
                    dataio_io_t io)
{
    dataio_loader_config_init(c);
    c->path = p;
    c->window = W;
    c->global_batch = B;
    c->comm = comm;
    c->io = io;
    c->seed = 77;
    c->prefetch = 3;
}

static void check_parts(dataio_io_t io)
{
    struct dataio_loader_config c;
    dataio_loader_t *all = NULL, *mine = NULL;
    int r = mpitest_rank(), R = mpitest_size(), lb = B / R;
    cfg_for(&c, path, MPI_COMM_NULL, DATAIO_IO_SERIAL);
    assert_int_equal(dataio_loader_open(&c, &all), DURE_OK);
    cfg_for(&c, path, MPI_COMM_WORLD, io);
    assert_int_equal(dataio_loader_open(&c, &mine), DURE_OK);
    assert_int_equal(dataio_loader_local_batch(mine), lb);
    assert_int_equal(dataio_loader_info(mine)->io, io);
    for (int s = 0; s < STEPS; s++) {
        struct dataio_batch a, m;
        assert_int_equal(dataio_loader_next(all, &a), DURE_OK);
        assert_int_equal(dataio_loader_next(mine, &m), DURE_OK);
        assert_int_equal(a.epoch, m.epoch);
        assert_int_equal(a.position, m.position);
        assert_memory_equal(m.episode, a.episode + r * lb, (size_t)lb * sizeof *m.episode);
        assert_memory_equal(m.start, a.start + r * lb, (size_t)lb * sizeof *m.start);
        assert_memory_equal(m.data, a.data + (size_t)r * lb * W * 6, (size_t)lb * W * 6 * 4);
    }
    struct dataio_cursor cur;
    dataio_loader_cursor(mine, &cur);
    assert_int_equal(cur.position + cur.epoch * dataio_loader_batches_per_epoch(mine) * B,
                     STEPS * B);
    dataio_loader_close(all);
    dataio_loader_close(mine);
}

static void test_rank_parts_serial(void **state)
{
    (void)state;
    check_parts(DATAIO_IO_SERIAL);
}

static void test_rank_parts_mpiio(void **state)
{
    (void)state;
    check_parts(DATAIO_IO_MPIIO);
}

static void test_shared_stats_equal_serial(void **state)
{
    (void)state;
    struct dataio_loader_config c;
    dataio_loader_t *one = NULL, *shared = NULL;
    cfg_for(&c, nostats, MPI_COMM_NULL, DATAIO_IO_SERIAL);
    assert_int_equal(dataio_loader_open(&c, &one), DURE_OK);
    cfg_for(&c, nostats, MPI_COMM_WORLD, DATAIO_IO_SERIAL);
    assert_int_equal(dataio_loader_open(&c, &shared), DURE_OK);
    const float *m1, *s1, *m2, *s2;
    dataio_loader_norm(one, &m1, &s1);
    dataio_loader_norm(shared, &m2, &s2);
    for (int j = 0; j < 6; j++) {
        assert_true(fabsf(m1[j] - m2[j]) <= 1e-5f * (fabsf(m1[j]) + s1[j]));
        assert_true(fabsf(s1[j] - s2[j]) <= 1e-5f * s1[j]);
    }
    dataio_loader_close(one);
    dataio_loader_close(shared);
}

static void test_failure_on_one_rank_fails_all(void **state)
{
    (void)state;
    struct dataio_loader_config c;
    dataio_loader_t *ld = NULL;
    cfg_for(&c, mpitest_rank() == 1 ? "/nonexistent/d.h5" : path, MPI_COMM_WORLD,
            DATAIO_IO_SERIAL);
    dure_log_set_quiet(1);
    dure_status_t st = dataio_loader_open(&c, &ld);
    dure_log_set_quiet(0);
    /* Bad data on every rank (exit 4), not a runtime error on rank 0. */
    assert_int_equal(st, DURE_ERR_FORMAT);
    assert_null(ld);
    if (mpitest_rank() == 1) {
        assert_non_null(strstr(dure_last_error(), "/nonexistent/d.h5"));
    } else {
        assert_non_null(strstr(dure_last_error(), "opening the dataset failed on rank 1"));
    }
    /* Different files on different nodes: caught before training starts. */
    cfg_for(&c, mpitest_rank() == 1 ? other : nostats, MPI_COMM_WORLD, DATAIO_IO_SERIAL);
    dure_log_set_quiet(1);
    st = dataio_loader_open(&c, &ld);
    dure_log_set_quiet(0);
    assert_int_equal(st, DURE_ERR_FORMAT);
    assert_null(ld);
    assert_non_null(strstr(dure_last_error(), "ranks see different datasets"));
}

/* Under AddressSanitizer: full stacks for leak reports, so that the
 * suppressions of Open MPI's own leaks (tests/lsan.supp) match through
 * MPI libraries built without frame pointers. Unused otherwise. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "fast_unwind_on_malloc=0"; }

int main(int argc, char **argv)
{
    mpitest_init(&argc, &argv);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int provided = 0;
    MPI_Query_thread(&provided);
    if (mpitest_rank() == 0) {
        printf("MPI thread level %d: mpiio reads %s\n", provided,
               provided == MPI_THREAD_MULTIPLE ? "on the prefetch thread" : "on the caller");
    }
    make_files();
    if (mpitest_rank() == 0) {
        atexit(remove_files);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rank_parts_serial),
        cmocka_unit_test(test_rank_parts_mpiio),
        cmocka_unit_test(test_shared_stats_equal_serial),
        cmocka_unit_test(test_failure_on_one_rank_fails_all),
    };
    return MPITEST_RUN("dataio_loader", tests);
}
