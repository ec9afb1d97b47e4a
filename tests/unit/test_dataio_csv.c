/* tests/unit/test_dataio_csv.c - CSV import: values, keyed-hash
 * anonymization, provenance, and malformed input reported by line and
 * column with no output file left behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sha256.h"
#include "dataio/csv_import.h"
#include "dataio/h5util.h"
#include "dataio/reader.h"
#include "tests/support/tmpdir.h"

static char dir[64], out[128], keyfile[128];
static const char *key = "k3y-0f-the-plant-consortium-2026";

static int setup(void **state)
{
    (void)state;
    if (tmpdir_make(dir, sizeof dir, "csv") != 0) {
        return -1;
    }
    snprintf(out, sizeof out, "%s/out.h5", dir);
    snprintf(keyfile, sizeof keyfile, "%s/key", dir);
    FILE *f = fopen(keyfile, "w");
    fprintf(f, "%s\n", key);
    fclose(f);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tmpdir_remove(dir);
}

static const char *write_csv(const char *name, const char *text)
{
    static char p[8][160];
    static int next;
    char *path = p[next++ % 8];
    snprintf(path, 160, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

/* Does the output file contain these bytes anywhere? */
static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    int found = memmem(buf, (size_t)n, needle, strlen(needle)) != NULL;
    free(buf);
    return found;
}

static void expected_hash(const char *value, char hex[33])
{
    uint8_t mac[DURE_SHA256_BYTES];
    assert_int_equal(dure_hmac_sha256(key, strlen(key), value, strlen(value), mac), DURE_OK);
    for (int i = 0; i < 16; i++) {
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    }
}

static void test_files_as_episodes_anonymized(void **state)
{
    (void)state;
    const char *a = write_csv("plantA_line3.csv",
                              "time,plant,operator,temp,current\n"
                              "0.0,Plant-A,alice,20.5,1.25\n"
                              "0.1,Plant-A,alice,20.75,1.5\n"
                              "0.2,Plant-A,alice,21,\n"
                              "\n");
    const char *b = write_csv("plantB.csv",
                              "time,plant,operator,temp,current\r\n"
                              "5.0,\"Plant-B, east\",bob,30,2\r\n"
                              "5.1,\"Plant-B, east\",bob,31,-2.5e-1\r\n");
    const char *inputs[] = {a, b};
    struct dataio_import_config cfg;
    dataio_import_config_init(&cfg);
    cfg.path = out;
    cfg.inputs = inputs;
    cfg.n_inputs = 2;
    cfg.time_col = "time";
    cfg.key_file = keyfile;
    cfg.units = "temp=degC,current=A";
    assert_int_equal(dataio_import_add_column(&cfg, DATAIO_COL_HASH, "plant"), DURE_OK);
    assert_int_equal(dataio_import_add_column(&cfg, DATAIO_COL_DROP, "operator"), DURE_OK);
    struct dataio_import_result res;
    assert_int_equal(dataio_import(&cfg, &res), DURE_OK);
    dataio_import_config_free(&cfg);
    assert_int_equal(res.episodes, 2);
    assert_int_equal(res.rows, 5);
    assert_int_equal(res.channels, 2);
    assert_true(fabs(res.sample_rate_hz - 10.0) < 1e-9);

    struct dataio_reader_config rc = {.path = out, .layout = DATAIO_LAYOUT_DURE,
                                      .io = DATAIO_IO_SERIAL, .comm = MPI_COMM_NULL};
    dataio_reader_t *r = NULL;
    assert_int_equal(dataio_reader_open(&rc, &r), DURE_OK);
    const struct dataio_dataset_info *in = dataio_reader_info(r);
    assert_string_equal(in->channel_names[0], "temp");
    assert_string_equal(in->channel_units[0], "degC");
    assert_string_equal(in->channel_names[1], "current");
    assert_int_equal(in->episode_start[1], 3);
    dataio_scratch_t *s = NULL;
    assert_int_equal(dataio_scratch_create(r, 3, &s), DURE_OK);
    float x[6];
    assert_int_equal(dataio_reader_read_logged(r, 0, 0, 3, x, s), DURE_OK);
    assert_true(x[0] == 20.5f && x[1] == 1.25f && x[2] == 20.75f && x[4] == 21.0f);
    assert_true(isnan(x[5])); /* empty field */
    assert_int_equal(dataio_reader_read_logged(r, 1, 0, 2, x, s), DURE_OK);
    assert_true(x[2] == 31.0f && x[3] == -0.25f);
    assert_int_equal(in->stats->n_nonfinite_rows, 1);
    assert_int_equal(in->stats->nonfinite_rows[0], 2);
    dataio_scratch_free(s);
    dataio_reader_close(r);

    /* Hashes per episode; raw values, the dropped column, the key and the
     * input file names appear nowhere in the file. */
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    char **v = NULL;
    int64_t n = 0;
    char ha[33], hb[33], anon[512];
    assert_int_equal(dataio_h5_read_strings(f, "/episode_meta/plant", out, &v, &n), DURE_OK);
    assert_int_equal(n, 2);
    expected_hash("Plant-A", ha);
    expected_hash("Plant-B, east", hb);
    assert_string_equal(v[0], ha);
    assert_string_equal(v[1], hb);
    free(v);
    int64_t flag = 0;
    assert_int_equal(dataio_h5_attr_i64(f, "anonymized", &flag), 1);
    assert_int_equal(flag, 1);
    assert_int_equal(dataio_h5_attr_str(f, "anonymization", anon, sizeof anon), 1);
    assert_non_null(strstr(anon, "HMAC-SHA256"));
    assert_non_null(strstr(anon, "plant"));
    assert_non_null(strstr(anon, "columns dropped: operator"));
    assert_false(dataio_h5_exists(f, "/episode_meta/operator"));
    assert_int_equal(dataio_h5_attr_str(f, "raw_columns", anon, sizeof anon), 1);
    assert_string_equal(anon, "");
    H5Fclose(f);
    assert_false(file_contains(out, key));
    assert_false(file_contains(out, "Plant-A"));
    assert_false(file_contains(out, "alice"));
    assert_false(file_contains(out, "plantA_line3"));
    assert_true(file_contains(out, ha));
}

static void test_episode_column_and_meta(void **state)
{
    (void)state;
    const char *a = write_csv("one.csv",
                              "run,line,v\n"
                              "r1,\"Line \"\"3\"\"\",1\n"
                              "r1,\"Line \"\"3\"\"\",2\n"
                              "r2,L4,3\n"
                              "r3,L4,4\n"
                              "r3,L4,5\n");
    const char *inputs[] = {a};
    struct dataio_import_config cfg;
    dataio_import_config_init(&cfg);
    cfg.path = out;
    cfg.inputs = inputs;
    cfg.n_inputs = 1;
    cfg.episode_col = "run";
    cfg.sample_rate_hz = 250;
    assert_int_equal(dataio_import_add_column(&cfg, DATAIO_COL_META, "line"), DURE_OK);
    struct dataio_import_result res;
    assert_int_equal(dataio_import(&cfg, &res), DURE_OK);
    dataio_import_config_free(&cfg);
    assert_int_equal(res.episodes, 3);
    assert_int_equal(res.anonymized, 0);
    assert_int_equal(res.raw_columns, 2);
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    char **v = NULL;
    int64_t n = 0;
    assert_int_equal(dataio_h5_read_strings(f, "/episode_meta/line", out, &v, &n), DURE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[0], "Line \"3\"");
    free(v);
    assert_int_equal(dataio_h5_read_strings(f, "/episode_meta/run", out, &v, &n), DURE_OK);
    assert_string_equal(v[2], "r3");
    free(v);
    double hz = 0;
    assert_int_equal(dataio_h5_attr_f64(f, "sample_rate_hz", &hz), 1);
    assert_true(hz == 250.0);
    char raw[256];
    assert_int_equal(dataio_h5_attr_str(f, "raw_columns", raw, sizeof raw), 1);
    assert_string_equal(raw, "run, line");
    H5Fclose(f);
}

/* A plant name hashed while the line and the episode id are kept raw: the
 * file must not claim to be anonymized, and must say what is raw. */
static void test_raw_columns_are_not_anonymized(void **state)
{
    (void)state;
    const char *a = write_csv("raw.csv", "run,plant,line,v\nr1,P1,L3,1\nr2,P2,L4,2\n");
    const char *inputs[] = {a};
    struct dataio_import_config cfg;
    dataio_import_config_init(&cfg);
    cfg.path = out;
    cfg.inputs = inputs;
    cfg.n_inputs = 1;
    cfg.episode_col = "run";
    cfg.sample_rate_hz = 10;
    cfg.key_file = keyfile;
    assert_int_equal(dataio_import_add_column(&cfg, DATAIO_COL_HASH, "plant"), DURE_OK);
    assert_int_equal(dataio_import_add_column(&cfg, DATAIO_COL_META, "line"), DURE_OK);
    struct dataio_import_result res;
    assert_int_equal(dataio_import(&cfg, &res), DURE_OK);
    dataio_import_config_free(&cfg);
    assert_int_equal(res.anonymized, 0);
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    int64_t flag = -1;
    char text[1024];
    assert_int_equal(dataio_h5_attr_i64(f, "anonymized", &flag), 1);
    assert_int_equal(flag, 0);
    assert_int_equal(dataio_h5_attr_str(f, "raw_columns", text, sizeof text), 1);
    assert_string_equal(text, "run, line");
    assert_int_equal(dataio_h5_attr_str(f, "anonymization", text, sizeof text), 1);
    assert_non_null(strstr(text, "HMAC-SHA256 under a secret key that is not stored "
                                 "(first 128 bits, hex): plant"));
    assert_non_null(strstr(text, "columns kept raw (not anonymized): run, line"));
    H5Fclose(f);
}

/* Import that must fail with `text` in the error and leave no file. */
static void bad(const char *csv, const char *episode_col, const char *hash, const char *kf,
                const char *text)
{
    const char *p = write_csv("bad.csv", csv);
    const char *inputs[] = {p};
    struct dataio_import_config cfg;
    dataio_import_config_init(&cfg);
    cfg.path = out;
    cfg.inputs = inputs;
    cfg.n_inputs = 1;
    cfg.episode_col = episode_col;
    cfg.sample_rate_hz = 10;
    cfg.key_file = kf;
    if (hash) {
        assert_int_equal(dataio_import_add_column(&cfg, DATAIO_COL_HASH, hash), DURE_OK);
    }
    unlink(out);
    int before = tmpdir_count(dir);
    struct dataio_import_result res;
    dure_log_set_quiet(1);
    dure_status_t st = dataio_import(&cfg, &res);
    dure_log_set_quiet(0);
    dataio_import_config_free(&cfg);
    assert_int_not_equal(st, DURE_OK);
    if (!strstr(dure_last_error(), text)) {
        fail_msg("error '%s' does not mention '%s'", dure_last_error(), text);
    }
    assert_int_equal(tmpdir_count(dir), before);
    assert_int_not_equal(access(out, F_OK), 0);
}

static void test_malformed_csv_names_line_and_column(void **state)
{
    (void)state;
    bad("a,b\n1,2\n3\n", NULL, NULL, NULL, "bad.csv:3: 1 fields; the header has 2");
    bad("a,b\n1,2\n3,x7\n", NULL, NULL, NULL, "bad.csv:3: column 2 'b': 'x7' is not a number");
    bad("a,b\n1,\"2\n3,4\n", NULL, NULL, NULL, "bad.csv:2: column 2: quoted field is never "
                                               "closed");
    bad("a,b\n1,2\n3,4\"5\n", NULL, NULL, NULL, "bad.csv:3: column 2: stray quote");
    bad("a,a\n1,2\n", NULL, NULL, NULL, "columns 1 and 2 are both named 'a'");
    bad("", NULL, NULL, NULL, "empty file (no header line)");
    bad("a,b\n", NULL, NULL, NULL, "no data rows after the header");
    bad("id,v\n1,2\n2,3\n1,4\n", "id", NULL, NULL,
        "bad.csv:4: column 1 'id': episode '1' appears again");
    bad("id,who,v\n1,x,2\n1,y,3\n", "id", "who", keyfile,
        "bad.csv:3: column 2 'who' changes within an episode ('<hidden>' then '<hidden>')");
    bad("id,v\n1,2\n", "run", NULL, NULL, "column 'run' (--episode-col) is not in the header "
                                          "(columns: id, v)");
    unsetenv(DATAIO_ANON_KEY_ENV);
    bad("id,v\n1,2\n", NULL, "id", NULL, "need a secret key: give --key-file PATH or set "
                                         "DURE_ANON_KEY");
    setenv(DATAIO_ANON_KEY_ENV, "short", 1);
    bad("id,v\n1,2\n", NULL, "id", NULL, "key from DURE_ANON_KEY is 5 bytes; at least 16");
    unsetenv(DATAIO_ANON_KEY_ENV);
}

/* Bytes (NULs included) into dir/name; returns the path. */
static const char *write_bytes(const char *name, const char *bytes, size_t n)
{
    static char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
    return path;
}

/* Import of one CSV that must fail naming `text`; returns the status. */
static dure_status_t import_fails(const char *input, const char *output, const char *hash,
                                  const char *text)
{
    const char *inputs[] = {input};
    struct dataio_import_config cfg;
    dataio_import_config_init(&cfg);
    cfg.path = output;
    cfg.inputs = inputs;
    cfg.n_inputs = 1;
    cfg.sample_rate_hz = 10;
    cfg.key_file = keyfile;
    if (hash) {
        assert_int_equal(dataio_import_add_column(&cfg, DATAIO_COL_HASH, hash), DURE_OK);
    }
    struct dataio_import_result res;
    dure_log_set_quiet(1);
    dure_status_t st = dataio_import(&cfg, &res);
    dure_log_set_quiet(0);
    dataio_import_config_free(&cfg);
    assert_int_not_equal(st, DURE_OK);
    if (!strstr(dure_last_error(), text)) {
        fail_msg("error '%s' does not mention '%s'", dure_last_error(), text);
    }
    return st;
}

/* "2\0 1.7" used to be stored as 2, and "Plant-A\0x" and "Plant-A\0y"
 * hashed alike: a NUL byte is refused where it is. */
static void test_nul_bytes_are_refused(void **state)
{
    (void)state;
    unlink(out);
    static const char num[] = "a,b\n1,2\0 1.7\n";
    const char *p = write_bytes("nul.csv", num, sizeof num - 1);
    assert_int_equal(import_fails(p, out, NULL, "nul.csv:2:4: a NUL byte (in column 2)"),
                     DURE_ERR_FORMAT);
    static const char names[] = "plant,v\nPlant-A\0x,1\n";
    p = write_bytes("nul2.csv", names, sizeof names - 1);
    import_fails(p, out, "plant", "nul2.csv:2:8: a NUL byte (in column 1)");
    static const char header[] = "a\0b,v\n1,2\n";
    p = write_bytes("nul3.csv", header, sizeof header - 1);
    import_fails(p, out, NULL, "nul3.csv:1:2: a NUL byte");
    assert_int_not_equal(access(out, F_OK), 0);
}

/* -o a.csv a.csv replaced the input with the HDF5 output. */
static void test_output_that_is_an_input_is_refused(void **state)
{
    (void)state;
    static const char text[] = "a,b\n1,2\n";
    const char *p = write_csv("self.csv", text);
    char link[200];
    snprintf(link, sizeof link, "%s/self-link.h5", dir);
    assert_int_equal(symlink(p, link), 0);
    assert_int_equal(import_fails(p, p, NULL, "is the input"), DURE_ERR_ARG);
    import_fails(p, link, NULL, "the output '" );
    assert_true(file_contains(p, "a,b\n1,2\n"));
    unlink(link);
}

/* An HDF5 file given as CSV: say what it is, not "'\x89HDF' is not a number". */
static void test_hdf5_input_is_named(void **state)
{
    (void)state;
    char h5[160];
    snprintf(h5, sizeof h5, "%s/data.h5", dir);
    hid_t f = H5Fcreate(h5, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
    assert_int_equal(import_fails(h5, out, NULL, "data.h5' is an HDF5 file, not CSV: dure "
                                                 "reads HDF5 files in place"),
                     DURE_ERR_FORMAT);
    unlink(h5);
}

static void test_weak_keys_are_refused(void **state)
{
    (void)state;
    const char *p = write_csv("k.csv", "plant,v\nP,1\n");
    static const struct {
        const char *key, *why;
    } weak[] = {
        {"                    \n", "is only whitespace"},
        {" \t \t \t \t \t \t \t \t\n", "is only whitespace"},
        {"aaaaaaaaaaaaaaaaaaaa\n", "has 1 different byte in 20 (one byte repeated)"},
        {"abababababababababab\n", "has 2 different bytes in 20"},
    };
    for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++) {
        FILE *f = fopen(keyfile, "w");
        fputs(weak[i].key, f);
        fclose(f);
        assert_int_equal(import_fails(p, out, "plant", weak[i].why), DURE_ERR_ARG);
    }
    FILE *f = fopen(keyfile, "w");
    fprintf(f, "%s\n", key);
    fclose(f);
}

static void test_time_column_checks(void **state)
{
    (void)state;
    const char *p = write_csv("t.csv", "t,v\n0,1\n0.5,2\n0.5,3\n");
    const char *inputs[] = {p};
    struct dataio_import_config cfg;
    dataio_import_config_init(&cfg);
    cfg.path = out;
    cfg.inputs = inputs;
    cfg.n_inputs = 1;
    cfg.time_col = "t";
    struct dataio_import_result res;
    dure_log_set_quiet(1);
    assert_int_not_equal(dataio_import(&cfg, &res), DURE_OK);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "t.csv:4: column 1 't': time 0.5 does not increase"));
    const char *a = write_csv("a.csv", "t,v\n0,1\n0.1,2\n0.2,3\n");
    const char *b = write_csv("b.csv", "t,v\n0,1\n0.5,2\n");
    const char *two[] = {a, b};
    cfg.inputs = two;
    cfg.n_inputs = 2;
    dure_log_set_quiet(1);
    assert_int_not_equal(dataio_import(&cfg, &res), DURE_OK);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "b.csv:2: the episode starting here is sampled "
                                              "at 2 Hz (column 't') but the first one at 10 Hz"));
    const char *c = write_csv("c.csv", "t,w\n0,1\n");
    const char *hdr[] = {a, c};
    cfg.inputs = hdr;
    dure_log_set_quiet(1);
    assert_int_not_equal(dataio_import(&cfg, &res), DURE_OK);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "c.csv:1: column 2 is 'w'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_as_episodes_anonymized),
        cmocka_unit_test(test_episode_column_and_meta),
        cmocka_unit_test(test_malformed_csv_names_line_and_column),
        cmocka_unit_test(test_time_column_checks),
        cmocka_unit_test(test_raw_columns_are_not_anonymized),
        cmocka_unit_test(test_nul_bytes_are_refused),
        cmocka_unit_test(test_output_that_is_an_input_is_refused),
        cmocka_unit_test(test_hdf5_input_is_named),
        cmocka_unit_test(test_weak_keys_are_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
