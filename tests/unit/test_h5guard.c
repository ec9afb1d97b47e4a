/* tests/unit/test_h5guard.c - common/h5guard.c: variable-length strings of
 * real HDF5 files (object header versions 1 and 2, continuation chunks, a
 * user block, datasets) pass the check and read back; the same files with
 * a damaged global heap object, an absurd string length, dense attribute
 * storage or a chunked string dataset are refused with a message naming
 * the file, the attribute or dataset and the fault, before libhdf5 reads
 * them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/h5guard.h"
#include "dataio/h5util.h"
#include "tests/support/tmpdir.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    if (tmpdir_make(dir, sizeof dir, "h5guard") != 0) {
        return -1;
    }
    snprintf(path, sizeof path, "%s/f.h5", dir);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tmpdir_remove(dir);
}

/* How to make the file. */
struct make {
    int latest;        /* libver latest: version 2 object headers */
    hsize_t userblock; /* bytes before the superblock */
    int extra_attrs;   /* attributes added to the root before "note" */
    int chunked;       /* the string dataset chunked */
    int members;       /* groups /g/m000 ... inside /g (300: a 2-level B-tree) */
};

static const char *const names[3] = {"pressure", "temperature_of_the_press", "torque"};

/* Root attribute "note" = "hello heap", dataset "names" = names[], group
 * /g/sub with attribute "count" = 7 and a hard link "up" back to /g (a
 * loop: /g's header counts 2 links), and m->members groups in /g. */
static void make(const struct make *m)
{
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fapl = H5Pcreate(H5P_FILE_ACCESS);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (m->userblock) {
        assert_true(H5Pset_userblock(fcpl, m->userblock) >= 0);
    }
    if (m->latest) {
        assert_true(H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) >= 0);
    }
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    assert_true(f >= 0);
    for (int i = 0; i < m->extra_attrs; i++) {
        char k[32], v[80];
        snprintf(k, sizeof k, "extra_%02d", i);
        snprintf(v, sizeof v, "an attribute long enough to fill the header, number %d", i);
        assert_int_equal(dataio_h5_set_attr_str(f, k, v), DURE_OK);
    }
    assert_int_equal(dataio_h5_set_attr_str(f, "note", "hello heap"), DURE_OK);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hsize_t n = 3, chunk = 2;
    if (m->chunked) {
        H5Pset_chunk(dcpl, 1, &chunk);
    }
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(f, "names", t, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    assert_true(d >= 0);
    assert_true(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, names) >= 0);
    H5Dclose(d);
    /* A record of every class with names and nested types: compound, array,
     * enumeration, variable-length string, opaque. */
    hid_t en = H5Tenum_create(H5T_NATIVE_UCHAR), op = H5Tcreate(H5T_OPAQUE, 4);
    unsigned char off = 0, on = 1;
    hsize_t three = 3;
    hid_t arr = H5Tarray_create2(H5T_NATIVE_DOUBLE, 1, &three);
    H5Tenum_insert(en, "OFF", &off);
    H5Tenum_insert(en, "ON_AND_RUNNING", &on);
    H5Tset_tag(op, "sensor frame");
    hid_t rec = H5Tcreate(H5T_COMPOUND, 64);
    H5Tinsert(rec, "a", 0, H5T_NATIVE_INT32);
    H5Tinsert(rec, "b_three_values", 8, arr);
    H5Tinsert(rec, "c", 32, en);
    H5Tinsert(rec, "d", 40, t);
    H5Tinsert(rec, "e", 56, op);
    hsize_t one = 1;
    hid_t rsp = H5Screate_simple(1, &one, NULL);
    d = H5Dcreate2(f, "rec", rec, rsp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(d >= 0);
    H5Dclose(d);
    H5Sclose(rsp);
    H5Tclose(rec);
    H5Tclose(arr);
    H5Tclose(op);
    H5Tclose(en);
    hid_t g = H5Gcreate2(f, "g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sub = H5Gcreate2(g, "sub", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(g >= 0 && sub >= 0);
    assert_int_equal(dataio_h5_set_attr_i64(sub, "count", 7), DURE_OK);
    assert_true(H5Lcreate_hard(g, ".", sub, "up", H5P_DEFAULT, H5P_DEFAULT) >= 0);
    for (int i = 0; i < m->members; i++) {
        char k[16];
        snprintf(k, sizeof k, "m%03d", i);
        hid_t mg = H5Gcreate2(g, k, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(mg >= 0);
        H5Gclose(mg);
    }
    H5Gclose(sub);
    H5Gclose(g);
    H5Sclose(sp);
    H5Tclose(t);
    H5Fclose(f);
    H5Pclose(dcpl);
    H5Pclose(fapl);
    H5Pclose(fcpl);
}

static uint8_t *slurp(size_t *n)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    *n = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc(*n);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, *n, fp), *n);
    fclose(fp);
    return b;
}

static void spill(const uint8_t *b, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, n, fp), n);
    fclose(fp);
}

static size_t find(const uint8_t *b, size_t n, const void *pat, size_t len)
{
    for (size_t i = 0; i + len <= n; i++) {
        if (memcmp(b + i, pat, len) == 0) {
            return i;
        }
    }
    fail_msg("pattern not in the file");
    return 0;
}

/* The offset of the global heap object holding `s` (its 16-byte header). */
static size_t heap_object(const uint8_t *b, size_t n, const char *s)
{
    return find(b, n, s, strlen(s)) - 16;
}

static void put(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* Open the file; check it, and check and read attribute "note" and dataset
 * "names". */
static dure_status_t check_file(char *note, size_t cap)
{
    dure_status_t st = h5guard_path(path, "test file");
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    if (st == DURE_OK) {
        st = h5guard_vlen_attr(f, "note", 64, "test file");
    }
    if (st == DURE_OK) {
        assert_int_equal(dataio_h5_attr_str(f, "note", note, cap), 1);
        hid_t d = H5Dopen2(f, "names", H5P_DEFAULT);
        assert_true(d >= 0);
        st = h5guard_vlen_dataset(d, "names", 3, 64, "test file");
        H5Dclose(d);
    }
    if (st == DURE_OK) {
        char **v = NULL;
        int64_t k = 0;
        assert_int_equal(dataio_h5_read_strings(f, "names", "test file", &v, &k), DURE_OK);
        assert_int_equal(k, 3);
        free(v);
    }
    H5Fclose(f);
    return st;
}

static void sound_files_pass(void **state)
{
    (void)state;
    const struct make ms[] = {
        {0, 0, 0, 0, 0},   /* version 1 header */
        {1, 0, 0, 0, 0},   /* version 2 header */
        {0, 512, 0, 0, 0}, /* a user block: addresses count from the superblock */
        {1, 1024, 0, 0, 0},
        {0, 0, 40, 0, 0}, /* 40 attributes: "note" in a continuation chunk */
        {1, 0, 6, 0, 0},  /* version 2, still compact */
        {0, 0, 0, 0, 300}, /* a group B-tree of two levels */
        {1, 0, 0, 0, 4},   /* new-style groups: compact links */
    };
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        char note[64] = "";
        make(&ms[i]);
        assert_int_equal(check_file(note, sizeof note), DURE_OK);
        assert_string_equal(note, "hello heap");
    }
}

static void damaged_heap_object_refused(void **state)
{
    (void)state;
    for (int latest = 0; latest < 2; latest++) {
        char note[64] = "";
        make(&(struct make){latest, 0, 0, 0, 0});
        size_t n = 0;
        uint8_t *b = slurp(&n);
        put(b + heap_object(b, n, "hello heap") + 8, 128u << 10, 8); /* its size */
        spill(b, n);
        free(b);
        assert_int_equal(check_file(note, sizeof note), DURE_ERR_FORMAT);
        assert_non_null(strstr(dure_last_error(), "test file: attribute 'note': object "));
        assert_non_null(strstr(dure_last_error(), "claims 131072 bytes"));
    }
}

static void absurd_length_refused(void **state)
{
    (void)state;
    char note[64] = "";
    make(&(struct make){0, 0, 0, 0, 0});
    size_t n = 0;
    uint8_t *b = slurp(&n);
    /* The attribute's stored value: length 10, then the collection's address. */
    size_t gcol = find(b, n, "GCOL", 4);
    uint8_t pat[12] = {10, 0, 0, 0};
    put(pat + 4, gcol, 8);
    size_t at = find(b, n, pat, sizeof pat);
    put(b + at, 0x7fffffff, 4);
    spill(b, n);
    free(b);
    assert_int_equal(check_file(note, sizeof note), DURE_ERR_FORMAT);
    assert_non_null(strstr(dure_last_error(),
                           "test file: attribute 'note': a string of 2147483647 bytes; "
                           "dure reads at most 64"));
    /* The length within the limit but unlike the heap object's. */
    make(&(struct make){0, 0, 0, 0, 0});
    b = slurp(&n);
    put(b + find(b, n, pat, sizeof pat), 11, 4);
    spill(b, n);
    free(b);
    assert_int_equal(check_file(note, sizeof note), DURE_ERR_FORMAT);
    assert_non_null(strstr(dure_last_error(), "claims 11 bytes, its global heap object holds 10"));
}

static void damaged_dataset_string_refused(void **state)
{
    (void)state;
    char note[64] = "";
    make(&(struct make){0, 0, 0, 0, 0});
    size_t n = 0;
    uint8_t *b = slurp(&n);
    put(b + heap_object(b, n, "torque") + 8, 1u << 20, 8);
    spill(b, n);
    free(b);
    /* "note" lives in the same collection: the damage refuses it too. */
    assert_int_equal(check_file(note, sizeof note), DURE_ERR_FORMAT);
    assert_non_null(strstr(dure_last_error(), "test file: attribute 'note': object "));
    /* The reader of string datasets refuses it, naming its own file. */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    char **v = NULL;
    int64_t k = 0;
    assert_int_equal(dataio_h5_read_strings(f, "names", "file 'x.h5'", &v, &k),
                     DURE_ERR_FORMAT);
    assert_non_null(strstr(dure_last_error(), "file 'x.h5': dataset 'names': object "));
    H5Fclose(f);
}

static void unchecked_storage_refused(void **state)
{
    (void)state;
    char note[64] = "";
    /* More than 8 attributes with libver latest: a fractal heap. */
    make(&(struct make){1, 0, 12, 0, 0});
    assert_int_equal(check_file(note, sizeof note), DURE_ERR_FORMAT);
    assert_non_null(strstr(dure_last_error(), "attribute 'note' is not in its object header"));
    make(&(struct make){0, 0, 0, 1, 0});
    assert_int_equal(check_file(note, sizeof note), DURE_ERR_FORMAT);
    assert_non_null(strstr(dure_last_error(), "dataset 'names' holds variable-length strings "
                                              "and is not contiguous"));
}

/* Open the damaged file as the dataset readers do: refused, with `want`
 * in the message. */
static void refused(const char *want)
{
    hid_t f = H5I_INVALID_HID;
    assert_int_equal(dataio_h5_open_file(path, H5P_DEFAULT, &f), DURE_ERR_FORMAT);
    assert_int_equal(f, H5I_INVALID_HID);
    if (!strstr(dure_last_error(), want)) {
        fail_msg("'%s' lacks '%s'", dure_last_error(), want);
    }
}

/* Make the file of m and change the 16-bit field `at` bytes after the
 * first pat[plen] from `was` (checked) to `now`. */
static void retype(const struct make *m, const void *pat, size_t plen, size_t at,
                   unsigned was, unsigned now)
{
    size_t n = 0;
    make(m);
    uint8_t *b = slurp(&n);
    size_t p = find(b, n, pat, plen) + at;
    assert_int_equal(b[p] | b[p + 1] << 8, was);
    put(b + p, now, 2);
    spill(b, n);
    free(b);
}

static void damaged_structure_refused(void **state)
{
    (void)state;
    size_t n = 0;
    uint8_t *b = NULL;
    char want[256];

    /* Attribute /g/sub@count whose type claims 64 KiB: its value overruns
     * its message, deep in the tree: reached through a symbol table, a
     * symbol table of 300 members (a B-tree of two levels), and new-style
     * compact links (version 2 headers, names not padded). */
    const struct make deep[] = {{0, 0, 0, 0, 0}, {0, 0, 0, 0, 300}, {1, 0, 0, 0, 4}};
    for (int i = 0; i < 3; i++) {
        make(&deep[i]);
        b = slurp(&n);
        size_t ty = find(b, n, "count", 6) + (deep[i].latest ? 6 : 8) + 4;
        assert_int_equal(b[ty], 8); /* the type's size, after the name */
        put(b + ty, 1u << 16, 4);
        spill(b, n);
        free(b);
        snprintf(want, sizeof want, "dataset file '%s': object '/g/sub': attribute 'count': "
                 "its value (1 elements of 65536 bytes) overruns its header message", path);
        refused(want);
    }

    /* An integer whose precision (bits) runs past its 8 bytes: libhdf5's
     * conversion reads them (H5T__bit_find). /g/sub@count's type (after
     * its name padded to 8): class, size, then bit offset and precision. */
    retype(&deep[0], "count", 6, 8 + 10, 64, 200);
    refused("object '/g/sub': attribute 'count': its datatype is a number whose bits (offset, "
            "precision, or a float's sign, exponent or mantissa) lie outside its size: damaged");
    /* The same inside a compound: member "a" (int32) of /rec, its name
     * padded to 8, its offset, then its type: 40 bits of precision in 32. */
    retype(&deep[0], "a\0\0\0\0\0\0\0\0\0\0\0\x10", 13, 12 + 10, 32, 40);
    refused("object '/rec': its datatype is a number whose bits");

    /* The root's string attribute "note" declares 15 bytes, its stored
     * form takes 16 (length, heap address, index): libhdf5 holds 15 and
     * copies 16 out of them (H5A__read). */
    retype(&deep[0], "note", 5, 8 + 4, 16, 15);
    refused("object '/': attribute 'note': its datatype is variable-length with a size other "
            "than its stored form's (4 + address + 4 bytes): damaged");

    /* /g's header counts one link, /g/sub/up is a second: libhdf5 1.10's
     * H5Ovisit remembers only objects counting more than one, and walks
     * the loop /g/sub/up/sub/up/... without end. */
    make(&deep[0]);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    H5O_info_t oi;
    assert_true(f >= 0 && H5Oget_info_by_name2(f, "g", &oi, H5O_INFO_BASIC, H5P_DEFAULT) >= 0);
    assert_int_equal(oi.rc, 2);
    H5Fclose(f);
    b = slurp(&n);
    assert_int_equal(b[oi.addr], 1); /* a version 1 header: its link count at 4 */
    assert_int_equal(b[oi.addr + 4], 2);
    put(b + oi.addr + 4, 1, 4);
    spill(b, n);
    free(b);
    refused("object '/g/sub/up' is reached through 2 hard links, its object header counts 1: "
            "damaged");

    /* A chunked layout with a chunk dimension of 0 (libhdf5 divides by it):
     * version 3, chunked, 2 dimensions (rank + 1), the index address, then
     * the chunk: 2 strings of 16 bytes. */
    make(&(struct make){0, 0, 0, 1, 0});
    b = slurp(&n);
    size_t lay = 0;
    for (lay = 0; lay + 19 <= n; lay++) {
        if (b[lay] == 3 && b[lay + 1] == 2 && b[lay + 2] == 2 && b[lay + 11] == 2 &&
            b[lay + 15] == 16) {
            break;
        }
    }
    assert_true(lay + 19 <= n);
    put(b + lay + 11, 0, 4);
    spill(b, n);
    put(b + lay + 11, 2, 4);
    refused("object '/names': chunk dimension 0 of 2 is 0: damaged");
    /* Fewer chunk dimensions than the dataspace's rank + 1: libhdf5 divides
     * by the ones it did not read. */
    b[lay + 2] = 1;
    spill(b, n);
    free(b);
    refused("object '/names': its chunked layout stores 1 dimensions, its dataspace of rank "
            "1 needs 2: damaged");

    /* The root group's local heap claims more bytes than the file has. */
    make(&(struct make){0, 0, 0, 0, 0});
    b = slurp(&n);
    put(b + find(b, n, "HEAP", 4) + 8, (uint64_t)1 << 40, 8);
    spill(b, n);
    free(b);
    refused("object '/': its group's local heap claims 1099511627776 bytes");

    /* A member of /g names a string beyond its group's local heap. */
    make(&(struct make){0, 0, 0, 0, 20});
    b = slurp(&n);
    put(b + find(b, n, "SNOD", 4) + 8, 1u << 20, 8);
    spill(b, n);
    free(b);
    refused("member 0 of a symbol table node names offset 1048576 of its group's local heap");

    /* Too many members in a symbol table node for the file's K. */
    make(&(struct make){0, 0, 0, 0, 20});
    b = slurp(&n);
    put(b + find(b, n, "SNOD", 4) + 6, 9, 2);
    spill(b, n);
    free(b);
    refused("holds 9 members; the file allows 8: damaged");
}

/* A dataset that claims far more elements than its storage holds is
 * refused before dure allocates for them. */
static void claimed_size_refused(void **state)
{
    (void)state;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t big = (hsize_t)1 << 30, small = 4;
    hid_t sp = H5Screate_simple(1, &big, NULL), sp4 = H5Screate_simple(1, &small, NULL);
    hid_t d = H5Dcreate2(f, "episodes", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT);
    H5Dclose(d);
    int64_t four[4] = {0, 1, 2, 3};
    d = H5Dcreate2(f, "four", H5T_STD_I64LE, sp4, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, four);
    H5Dclose(d);
    H5Sclose(sp4);
    H5Sclose(sp);
    H5Fclose(f);
    assert_int_equal(dataio_h5_open_file(path, H5P_DEFAULT, &f), DURE_OK);
    int64_t *v = NULL, n = 0;
    assert_int_equal(dataio_h5_read_i64(f, "episodes", "file 'e.h5'", &v, &n), DURE_ERR_FORMAT);
    assert_null(v);
    assert_non_null(strstr(dure_last_error(), "file 'e.h5': dataset 'episodes' claims "
                                              "1073741824 elements (8589934592 bytes), its "
                                              "storage holds 0 bytes: damaged"));
    assert_int_equal(dataio_h5_read_i64(f, "four", "file 'e.h5'", &v, &n), DURE_OK);
    assert_int_equal(n, 4);
    assert_int_equal(v[3], 3);
    free(v);
    H5Fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sound_files_pass),
        cmocka_unit_test(damaged_heap_object_refused),
        cmocka_unit_test(absurd_length_refused),
        cmocka_unit_test(damaged_dataset_string_refused),
        cmocka_unit_test(unchecked_storage_refused),
        cmocka_unit_test(damaged_structure_refused),
        cmocka_unit_test(claimed_size_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
