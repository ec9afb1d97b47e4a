/*
 * tests/mpi/test_ckpt_manifest.c - the run manifest written collectively on
 * 2 ranks (topology, versions, fingerprint, launches), read back with the
 * JSON reader.
 *
 * Fixture mode, for the shell tests of `dure ckpt` and `dure verify`: with
 * DURE_CKPT_FIXTURE_DIR=RUN set, it only writes a run directory as a run
 * would (RUN/manifest.json naming DURE_CKPT_FIXTURE_DATA as its dataset, and
 * RUN/checkpoints/ckpt-0000000{2,4,6}.h5 of DURE_CKPT_FIXTURE_N parameters,
 * 5000 by default, seeded by DURE_CKPT_FIXTURE_SEED, 42 by default).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/json.h"
#include "common/sha256.h"
#include "ckpt/ckpt.h"
#include "train/manifest.h"
#include "tests/support/ckpt_fixture.h"
#include "tests/support/mpitest.h"

/*
 * ASan builds: unwind allocation stacks fully. Allocations that Open MPI's
 * MPI-IO components (io/ompio, fcoll, fbtl) keep until exit are reported as
 * leaks; by then MPI_Finalize has unloaded those components, and the fast
 * unwinder stops at their frames, so the libmpi/libopen-pal frames that
 * tests/lsan.supp suppresses never show. Environment options still override.
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "fast_unwind_on_malloc=0"; }

static const struct manifest_kv jobspec[] = {
    {"run.name", "demo \"quoted\"\n"},
    {"run.seed", "1234"},
    {"optim.lr", "0.0003"},
    {"checkpoint.dir", "runs/demo/checkpoints"},
};
static const struct manifest_kv algos[] = {{"allreduce", "ring"},
                                           {"algo_table", "0:native,1M:shm"}};

static void info_for(struct manifest_info *in, const char *dir, const char *const *data,
                     size_t ndata)
{
    memset(in, 0, sizeof *in);
    in->run_dir = dir;
    in->command = "dure run job.ini --set optim.lr=3e-4";
    in->jobspec = jobspec;
    in->n_jobspec = sizeof jobspec / sizeof jobspec[0];
    in->jobspec_hash = "00c0ffee12345678";
    in->data_paths = data;
    in->n_data_paths = ndata;
    in->fp_mode = MANIFEST_FP_AUTO;
    in->backend = "mpi";
    in->algorithms = algos;
    in->n_algorithms = 2;
    in->seed = 1234;
    in->deterministic = 1;
}

static const struct json_value *at(const struct json_value *v, size_t i)
{
    for (v = v ? v->child : NULL; v && i > 0; i--) {
        v = v->next;
    }
    return v;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void check_manifest(const char *dir, const char *data, const char *path);

static void test_manifest_contents(void **state)
{
    (void)state;
    char dir[64], data[128], path[4096];
    struct manifest_info in;
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);
    snprintf(data, sizeof data, "%s/data.h5", dir);
    if (mpitest_rank() == 0) {
        write_file(data, "sensor data\n");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    const char *paths[1] = {data};
    info_for(&in, dir, paths, 1);
    assert_int_equal(manifest_write(MPI_COMM_WORLD, &in, path, sizeof path), DURE_OK);
    if (mpitest_rank() == 0) {
        check_manifest(dir, data, path);
    }
    fx_rmtree(MPI_COMM_WORLD, dir);
}

static void check_manifest(const char *dir, const char *data, const char *path)
{
    char want[4200];
    snprintf(want, sizeof want, "%s/manifest.json", dir);
    assert_string_equal(path, want);
    json_doc_t *doc = NULL;
    assert_int_equal(json_parse_file(path, &doc), DURE_OK);
    const struct json_value *r = json_root(doc);
    assert_string_equal(json_get(r, "format")->str, MANIFEST_FORMAT);
    assert_int_equal(json_get(r, "launch")->number, 0);
    assert_int_equal(json_get(r, "resumed_from")->type, JSON_NULL);
    assert_string_equal(json_get(json_get(r, "dure"), "version")->str, DURE_VERSION);
    assert_true(strncmp(json_get(json_get(r, "libraries"), "hdf5")->str, "1.10.", 5) == 0);
    assert_non_null(strstr(json_get(json_get(r, "libraries"), "mpi")->str, "Open MPI"));
    const struct json_value *w = json_get(r, "world");
    assert_int_equal(json_get(w, "size")->number, 2);
    assert_int_equal(json_get(w, "nodes")->number, 1);
    assert_int_equal(at(json_get(w, "ranks_per_node"), 0)->number, 2);
    const struct json_value *h0 = at(json_get(w, "hosts"), 0);
    char host[256];
    gethostname(host, sizeof host);
    assert_string_equal(json_get(h0, "name")->str, host);
    assert_int_equal(json_get(h0, "ranks")->count, 2);
    assert_int_equal(at(json_get(h0, "ranks"), 1)->number, 1);
    assert_string_equal(json_get(r, "backend")->str, "mpi");
    assert_string_equal(json_get(json_get(r, "algorithms"), "allreduce")->str, "ring");
    assert_string_equal(json_get(r, "seed")->num, "1234");
    assert_int_equal(json_get(r, "deterministic")->boolean, 1);
    assert_int_equal(json_get(r, "exact")->type, JSON_NULL);
    assert_string_equal(json_get(json_get(r, "jobspec"), "run.name")->str,
                        "demo \"quoted\"\n");

    /* The fingerprint, recomputed here from its definition. */
    uint8_t d[DURE_SHA256_BYTES];
    char hex[DURE_SHA256_HEX], line[512];
    assert_int_equal(dure_sha256_file(data, d, NULL), DURE_OK);
    dure_sha256_hex(d, hex);
    const struct json_value *ds = json_get(r, "dataset");
    assert_string_equal(json_get(at(json_get(ds, "files"), 0), "sha256")->str, hex);
    snprintf(line, sizeof line, "%s  %s\n", hex, data);
    assert_int_equal(dure_sha256_buf(line, strlen(line), d), DURE_OK);
    dure_sha256_hex(d, hex);
    assert_string_equal(json_get(json_get(ds, "fingerprint"), "value")->str, hex);
    assert_string_equal(json_get(json_get(ds, "fingerprint"), "mode")->str, "full");
    assert_int_equal(json_get(ds, "bytes")->number, 12);
    json_free(doc);
}

/* A restart writes manifest.launch-1.json and leaves manifest.json alone. */
static void test_relaunch_keeps_first_manifest(void **state)
{
    (void)state;
    char dir[64], path[4096], first[4096];
    struct manifest_info in;
    struct stat sb;
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);
    info_for(&in, dir, NULL, 0);
    assert_int_equal(manifest_write(MPI_COMM_WORLD, &in, first, sizeof first), DURE_OK);
    MPI_Barrier(MPI_COMM_WORLD);
    assert_int_equal(stat(first, &sb), 0);
    off_t size0 = sb.st_size;
    in.resumed_from = "runs/x/checkpoints/ckpt-00000100.h5";
    in.resumed_step = 100;
    in.seed = 99;
    const struct manifest_exact exact = {12, 2, 3920, 1024};
    in.exact = &exact;
    assert_int_equal(manifest_write(MPI_COMM_WORLD, &in, path, sizeof path), DURE_OK);
    if (mpitest_rank() == 0) {
        assert_non_null(strstr(path, "/manifest.launch-1.json"));
        assert_int_equal(stat(first, &sb), 0);
        assert_int_equal(sb.st_size, size0);
        json_doc_t *doc = NULL;
        assert_int_equal(json_parse_file(path, &doc), DURE_OK);
        const struct json_value *r = json_root(doc);
        assert_int_equal(json_get(r, "launch")->number, 1);
        assert_int_equal(json_get(json_get(r, "resumed_from"), "step")->number, 100);
        assert_int_equal(json_get(r, "dataset")->type, JSON_NULL);
        /* Exact mode's contract: what dure verify compares. */
        const struct json_value *x = json_get(r, "exact");
        assert_string_equal(json_get(x, "contract")->str, MANIFEST_EXACT_CONTRACT);
        assert_int_equal(json_get(x, "micro_batches_per_step")->number, 12);
        assert_int_equal(json_get(x, "micro_batch")->number, 2);
        assert_int_equal(json_get(x, "norm_elements")->number, 3920);
        assert_int_equal(json_get(x, "norm_tile")->number, 1024);
        assert_string_equal(json_get(x, "world_sizes")->str, "1, 2, 3, 4, 6 or 12");
        json_free(doc);
        assert_int_equal(fx_count_suffix(dir, ".tmp"), 0);
    }
    fx_rmtree(MPI_COMM_WORLD, dir);
}

static void test_missing_dataset_fails_everywhere(void **state)
{
    (void)state;
    char dir[64], data[128], path[4096] = "";
    struct manifest_info in;
    fx_tempdir(MPI_COMM_WORLD, dir, sizeof dir);
    snprintf(data, sizeof data, "%s/no-such-data.h5", dir);
    const char *paths[1] = {data};
    info_for(&in, dir, paths, 1);
    dure_log_set_quiet(1);
    dure_status_t st = manifest_write(MPI_COMM_WORLD, &in, path, sizeof path);
    dure_log_set_quiet(0);
    assert_int_equal(st, DURE_ERR_IO);
    if (mpitest_rank() == 0) {
        assert_non_null(strstr(dure_last_error(), "no-such-data.h5"));
        assert_int_equal(fx_count_suffix(dir, ".json"), 0);
        assert_int_equal(fx_count_suffix(dir, ".tmp"), 0);
    }
    fx_rmtree(MPI_COMM_WORLD, dir);
}

/* Fixture mode: a run directory for the shell tests (see the top). */
static int write_fixture(const char *run)
{
    const char *data = getenv("DURE_CKPT_FIXTURE_DATA");
    const char *seed_s = getenv("DURE_CKPT_FIXTURE_SEED");
    const char *n_s = getenv("DURE_CKPT_FIXTURE_N");
    uint64_t seed = seed_s ? strtoull(seed_s, NULL, 10) : 42;
    size_t n = n_s ? strtoull(n_s, NULL, 10) : 5000;
    char dir[4096];
    struct manifest_info in;
    struct ckpt_meta m;
    size_t off, len;
    snprintf(dir, sizeof dir, "%s/checkpoints", run);
    if (mpitest_rank() == 0 && (mkdir(run, 0755) != 0 && errno != EEXIST)) {
        return 1;
    }
    if (mpitest_rank() == 0 && (mkdir(dir, 0755) != 0 && errno != EEXIST)) {
        return 1;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    const char *paths[1] = {data};
    info_for(&in, run, paths, data ? 1 : 0);
    if (manifest_write(MPI_COMM_WORLD, &in, NULL, 0) != DURE_OK) {
        return 1;
    }
    fx_shard(n, mpitest_rank(), mpitest_size(), &off, &len);
    float *v = malloc(3 * (len + 1) * sizeof *v);
    if (!v) {
        return 1;
    }
    for (int i = 0; i < 3; i++) {
        fx_fill(v + (size_t)i * len, seed, i, off, len);
    }
    int rc = 0;
    for (uint64_t step = 2; step <= 6 && rc == 0; step += 2) {
        fx_meta(&m, n, step);
        m.seed = seed;
        rc = ckpt_save(MPI_COMM_WORLD, dir, &m, v, v + len, v + 2 * len, off, len, 0,
                       NULL) != DURE_OK;
    }
    free(v);
    return rc;
}

int main(int argc, char **argv)
{
    mpitest_init(&argc, &argv);
    const char *fixture = getenv("DURE_CKPT_FIXTURE_DIR");
    if (fixture) {
        int rc = write_fixture(fixture);
        MPI_Finalize();
        return rc;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_contents),
        cmocka_unit_test(test_relaunch_keeps_first_manifest),
        cmocka_unit_test(test_missing_dataset_fails_everywhere),
    };
    return MPITEST_RUN("ckpt manifest (mpi)", tests);
}
