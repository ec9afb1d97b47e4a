/* tests/unit/test_json.c - the JSON writer (escaping, numbers, layout,
 * misuse) and reader (strict grammar, escapes, errors with positions). */
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

/* Run `fill` against a memory stream; return the text (caller frees). */
static char *write_to_string(void (*fill)(struct json_writer *), int pretty,
                             dure_status_t *st)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    struct json_writer w;
    json_writer_init(&w, f, pretty);
    fill(&w);
    *st = json_writer_finish(&w, "memory");
    fclose(f);
    return buf;
}

static void fill_nested(struct json_writer *w)
{
    json_begin_object(w);
    json_key(w, "step");
    json_uint(w, 18446744073709551615ull);
    json_key(w, "delta");
    json_int(w, -42);
    json_key(w, "list");
    json_begin_array(w);
    json_bool(w, 1);
    json_null(w);
    json_begin_object(w);
    json_end_object(w);
    json_begin_array(w);
    json_end_array(w);
    json_end_array(w);
    json_key(w, "s");
    json_string(w, NULL);
    json_end_object(w);
}

static void test_layout_compact_and_pretty(void **state)
{
    (void)state;
    dure_status_t st;
    char *s = write_to_string(fill_nested, 0, &st);
    assert_int_equal(st, DURE_OK);
    assert_string_equal(s, "{\"step\":18446744073709551615,\"delta\":-42,"
                           "\"list\":[true,null,{},[]],\"s\":null}");
    free(s);
    s = write_to_string(fill_nested, 1, &st);
    assert_int_equal(st, DURE_OK);
    assert_string_equal(s, "{\n"
                           "  \"step\": 18446744073709551615,\n"
                           "  \"delta\": -42,\n"
                           "  \"list\": [\n"
                           "    true,\n"
                           "    null,\n"
                           "    {},\n"
                           "    []\n"
                           "  ],\n"
                           "  \"s\": null\n"
                           "}");
    free(s);
}

static void fill_escapes(struct json_writer *w)
{
    json_begin_array(w);
    json_string(w, "quote\" back\\ slash/ nl\n tab\t cr\r bs\b ff\f ctl\x01\x1f");
    json_string(w, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    /* A stray byte, an overlong '/', a UTF-16 surrogate encoded in UTF-8. */
    json_string(w, "a\xff"
                   "b\xc0\xaf"
                   "c\xed\xa0\x80"
                   "d");
    json_end_array(w);
}

static void test_string_escaping(void **state)
{
    (void)state;
    dure_status_t st;
    char *s = write_to_string(fill_escapes, 0, &st);
    assert_int_equal(st, DURE_OK);
    assert_string_equal(s, "[\"quote\\\" back\\\\ slash/ nl\\n tab\\t cr\\r bs\\b ff\\f "
                           "ctl\\u0001\\u001f\","
                           "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\","
                           "\"a\\ufffdb\\ufffd\\ufffdc\\ufffd\\ufffd\\ufffdd\"]");
    /* And it reads back to the same text (the valid parts). */
    json_doc_t *doc = NULL;
    assert_int_equal(json_parse(s, strlen(s), "escapes", &doc), DURE_OK);
    const struct json_value *a = json_root(doc);
    assert_int_equal(a->type, JSON_ARRAY);
    assert_int_equal(a->count, 3);
    assert_string_equal(a->child->str,
                        "quote\" back\\ slash/ nl\n tab\t cr\r bs\b ff\f ctl\x01\x1f");
    assert_string_equal(a->child->next->str, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    json_free(doc);
    free(s);
}

static void fill_numbers(struct json_writer *w)
{
    json_begin_array(w);
    json_double(w, 0.1);
    json_float(w, 0.1f);
    json_double(w, NAN);
    json_float(w, INFINITY);
    json_double(w, -0.0);
    json_double(w, 1e300);
    json_number(w, 1.0 / 3.0, 6);
    json_number(w, NAN, 6);
    json_number(w, 12345678.0, 3);
    json_end_array(w);
}

static void test_numbers_round_trip(void **state)
{
    (void)state;
    dure_status_t st;
    char *s = write_to_string(fill_numbers, 0, &st);
    assert_int_equal(st, DURE_OK);
    assert_string_equal(
        s, "[0.10000000000000001,0.100000001,null,null,-0,1.0000000000000001e+300,"
           "0.333333,null,1.23e+07]");
    json_doc_t *doc = NULL;
    assert_int_equal(json_parse(s, strlen(s), "numbers", &doc), DURE_OK);
    const struct json_value *v = json_root(doc)->child;
    double d = 0.1;
    assert_memory_equal(&v->number, &d, sizeof d);
    float f = (float)v->next->number, g = 0.1f;
    assert_memory_equal(&f, &g, sizeof f);
    assert_int_equal(v->next->next->type, JSON_NULL);
    json_free(doc);
    free(s);
}

static void fill_value_without_key(struct json_writer *w)
{
    json_begin_object(w);
    json_uint(w, 1);
    json_end_object(w);
}

static void fill_unclosed(struct json_writer *w)
{
    json_begin_array(w);
    json_begin_object(w);
    json_end_object(w);
}

static void fill_wrong_end(struct json_writer *w)
{
    json_begin_array(w);
    json_end_object(w);
}

static void test_writer_reports_misuse(void **state)
{
    (void)state;
    dure_status_t st;
    dure_log_set_quiet(1);
    free(write_to_string(fill_value_without_key, 0, &st));
    assert_int_equal(st, DURE_ERR_INTERNAL);
    assert_non_null(strstr(dure_last_error(), "without a key"));
    free(write_to_string(fill_unclosed, 0, &st));
    assert_int_equal(st, DURE_ERR_INTERNAL);
    assert_non_null(strstr(dure_last_error(), "1 containers left open"));
    free(write_to_string(fill_wrong_end, 0, &st));
    assert_int_equal(st, DURE_ERR_INTERNAL);
    dure_log_set_quiet(0);
}

static void test_reader_values(void **state)
{
    (void)state;
    const char *text =
        " {\"a\": [1, -2.50e-3, 0, -0.0, 1E+2], \"b\": {\"c\": \"x\\u00e9\\ud83d\\ude00\"},"
        " \"t\": true, \"f\": false, \"n\": null, \"a\": 7}\n";
    json_doc_t *doc = NULL;
    assert_int_equal(json_parse(text, strlen(text), "t.json", &doc), DURE_OK);
    const struct json_value *r = json_root(doc);
    assert_int_equal(r->count, 6);
    const struct json_value *a = json_get(r, "a"); /* the first of duplicates */
    assert_int_equal(a->type, JSON_ARRAY);
    assert_int_equal(a->count, 5);
    assert_string_equal(a->child->next->num, "-2.50e-3");
    assert_true(a->child->next->number == -2.5e-3);
    assert_string_equal(a->child->next->next->next->next->num, "1E+2");
    assert_string_equal(json_get(json_get(r, "b"), "c")->str, "x\xc3\xa9\xf0\x9f\x98\x80");
    assert_int_equal(json_get(r, "t")->boolean, 1);
    assert_int_equal(json_get(r, "f")->type, JSON_BOOL);
    assert_int_equal(json_get(r, "f")->boolean, 0);
    assert_int_equal(json_get(r, "n")->type, JSON_NULL);
    assert_null(json_get(r, "missing"));
    assert_null(json_get(a, "a"));
    json_free(doc);
}

static void test_reader_value_lines(void **state)
{
    (void)state;
    /* lines of values, for readers that name the line of a bad field */
    const char *text = "{\n  \"a\": 1,\r\n  \"b\":\n\n    [\"x\\ny\",\n     {\"c\": null}]\n}";
    json_doc_t *doc = NULL;
    assert_int_equal(json_parse(text, strlen(text), "t.json", &doc), DURE_OK);
    const struct json_value *r = json_root(doc);
    assert_int_equal(r->line, 1);
    assert_int_equal(json_get(r, "a")->line, 2);
    const struct json_value *b = json_get(r, "b");
    assert_int_equal(b->line, 5);
    assert_int_equal(b->child->line, 5);    /* an escaped newline is not a line */
    assert_int_equal(json_get(b->child->next, "c")->line, 6);
    json_free(doc);
}

static void expect_error(const char *text, const char *where, const char *what)
{
    json_doc_t *doc = NULL;
    dure_log_set_quiet(1);
    dure_status_t st = json_parse(text, strlen(text), "bad.json", &doc);
    dure_log_set_quiet(0);
    assert_int_equal(st, DURE_ERR_FORMAT);
    assert_null(doc);
    if (!strstr(dure_last_error(), where) || !strstr(dure_last_error(), what)) {
        fail_msg("for %s: got '%s', wanted '%s' and '%s'", text, dure_last_error(), where,
                 what);
    }
}

static void test_reader_rejects(void **state)
{
    (void)state;
    expect_error("[1, 2,]", "bad.json:1:7:", "expected a value");
    expect_error("{\"a\": 1,\n \"b\" 2}", "bad.json:2:6:", "expected ':'");
    expect_error("[01]", "bad.json:1:3:", "expected ',' or ']'");
    expect_error("['x']", "bad.json:1:2:", "expected a value");
    expect_error("[1.]", "bad.json:1:4:", "digits expected after '.'");
    expect_error("[NaN]", "bad.json:1:2:", "expected a value");
    expect_error("\"\\ud800\"", "bad.json:1:", "lone high surrogate");
    expect_error("\"abc", "bad.json:1:1:", "unterminated string");
    expect_error("\"a\tb\"", "bad.json:1:3:", "control character");
    expect_error("{} {}", "bad.json:1:4:", "unexpected text after the value");
    expect_error("", "bad.json:1:1:", "unexpected end of input");
    expect_error("\"\\u0000\"", "bad.json:1:", "\\u0000");
    expect_error("{\"a\":tru}", "bad.json:1:6:", "expected a value");
    char deep[200];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = '\0';
    expect_error(deep, "bad.json:1:", "nested too deeply");
}

static void test_line_number_scan(void **state)
{
    (void)state;
    const char *line = "{\"step\":12,\"val_loss\":0.25,\"loss\" : -1.5e-3,"
                       "\"grad_norm\":null,\"mfu\":0.4}";
    double v = 99;
    assert_int_equal(json_line_number(line, "step", &v), 1);
    assert_true(v == 12.0);
    /* "loss" is its own member, not the tail of "val_loss"; spaces around
     * the colon are allowed. */
    assert_int_equal(json_line_number(line, "loss", &v), 1);
    assert_true(v == -1.5e-3);
    assert_int_equal(json_line_number(line, "val_loss", &v), 1);
    assert_true(v == 0.25);
    v = 99;
    assert_int_equal(json_line_number(line, "grad_norm", &v), 0); /* null */
    assert_int_equal(json_line_number(line, "lr", &v), 0);        /* absent */
    assert_int_equal(json_line_number("{\"x\":nan}", "x", &v), 0); /* not JSON */
    assert_int_equal(json_line_number("{\"x\" 1}", "x", &v), 0);   /* no colon */
    assert_true(v == 99);
}

/* Lines found by fuzz_json (tests/fuzz/regress/json): the scanner reads the
 * member the parser reads, and nothing else. */
static void test_line_number_members_only(void **state)
{
    (void)state;
    double v = 0;
    assert_int_equal(json_line_number("{\"metric\":\"loss\",\"loss\":2}", "loss", &v), 1);
    assert_true(v == 2.0); /* a string value spelled like the key is not the key */
    assert_int_equal(json_line_number("{\"a\":{\"loss\":1},\"loss\":2}", "loss", &v), 1);
    assert_true(v == 2.0); /* nested members are not top-level ones */
    assert_int_equal(json_line_number("{\"lr\"\t\n:\t0.5}", "lr", &v), 1);
    assert_true(v == 0.5); /* any JSON blank around the colon */
    assert_int_equal(json_line_number("{\"lo\\u0073s\":3,\"loss\":4}", "loss", &v), 1);
    assert_true(v == 3.0); /* keys compare decoded; the first member counts */
    v = 99;
    assert_int_equal(json_line_number("{\"loss\":\"x\",\"loss\":5}", "loss", &v), 0);
    assert_int_equal(json_line_number("{\"x\":0x10}", "x", &v), 0); /* strtod's, not JSON's */
    assert_int_equal(json_line_number("{\"x\":1e999}", "x", &v), 0); /* not finite */
    assert_true(v == 99);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_compact_and_pretty),
        cmocka_unit_test(test_string_escaping),
        cmocka_unit_test(test_numbers_round_trip),
        cmocka_unit_test(test_writer_reports_misuse),
        cmocka_unit_test(test_reader_values),
        cmocka_unit_test(test_reader_value_lines),
        cmocka_unit_test(test_reader_rejects),
        cmocka_unit_test(test_line_number_scan),
        cmocka_unit_test(test_line_number_members_only),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
