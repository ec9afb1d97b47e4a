/*
 * tests/fuzz/fuzz_json.c - the JSON reader (manifests and metrics lines of
 * `dure verify`) and the metrics-line number scanner (`dure status`,
 * `dure plot`).
 *
 * Input: one JSON text (a manifest, or one metrics.jsonl line).
 *
 * Properties:
 *   - json_parse reads only text[0, len) (the input is not NUL-terminated)
 *     and fails with a message, or gives a tree whose counts match its
 *     children, with keys exactly on object members;
 *   - the tree written back with the JSON writer parses to the same tree
 *     (types, keys, strings, numbers bitwise; a number too large for a
 *     double is written as null);
 *   - json_line_number agrees with the parser on every valid object line:
 *     for each top-level key (and the keys dure scans for), it finds the
 *     first member of that name, and reports its value exactly when that
 *     member holds a finite number.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "tests/fuzz/support.h"

static void check_tree(const struct json_value *v, int in_object)
{
    FUZZ_ASSERT(in_object == (v->key != NULL), "a %s has %s key",
                in_object ? "member" : "value", in_object ? "no" : "a");
    size_t n = 0;
    for (const struct json_value *c = v->child; c; c = c->next) {
        check_tree(c, v->type == JSON_OBJECT);
        n++;
    }
    FUZZ_ASSERT(n == v->count, "count %zu but %zu children", v->count, n);
    FUZZ_ASSERT(v->type == JSON_ARRAY || v->type == JSON_OBJECT || n == 0,
                "a scalar has children");
    FUZZ_ASSERT(v->type != JSON_STRING || v->str != NULL, "a string without text");
    FUZZ_ASSERT(v->type != JSON_NUMBER || (v->num != NULL && v->num[0] != '\0'),
                "a number without its literal");
}

static void write_tree(struct json_writer *w, const struct json_value *v)
{
    if (v->key) {
        json_key(w, v->key);
    }
    switch (v->type) {
    case JSON_NULL: json_null(w); break;
    case JSON_BOOL: json_bool(w, v->boolean); break;
    case JSON_NUMBER: json_double(w, v->number); break;
    case JSON_STRING: json_string(w, v->str); break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        if (v->type == JSON_ARRAY) {
            json_begin_array(w);
        } else {
            json_begin_object(w);
        }
        for (const struct json_value *c = v->child; c; c = c->next) {
            write_tree(w, c);
        }
        if (v->type == JSON_ARRAY) {
            json_end_array(w);
        } else {
            json_end_object(w);
        }
        break;
    }
}

/* b is a written back: the same tree, numbers by value. */
static void check_same(const struct json_value *a, const struct json_value *b)
{
    FUZZ_ASSERT((a->key == NULL) == (b->key == NULL) && (!a->key || !strcmp(a->key, b->key)),
                "key '%s' written back as '%s'", a->key ? a->key : "", b->key ? b->key : "");
    if (a->type == JSON_NUMBER && !isfinite(a->number)) {
        FUZZ_ASSERT(b->type == JSON_NULL, "number %s not written as null", a->num);
        return;
    }
    FUZZ_ASSERT(a->type == b->type && a->count == b->count, "type or count changed");
    switch (a->type) {
    case JSON_BOOL:
        FUZZ_ASSERT(!a->boolean == !b->boolean, "a boolean changed");
        break;
    case JSON_NUMBER:
        FUZZ_ASSERT(memcmp(&a->number, &b->number, sizeof a->number) == 0 ||
                        (a->number == 0 && b->number == 0),
                    "number %s written back as %s", a->num, b->num);
        break;
    case JSON_STRING:
        FUZZ_ASSERT(strcmp(a->str, b->str) == 0, "a string changed");
        break;
    default:
        break;
    }
    for (a = a->child, b = b->child; a && b; a = a->next, b = b->next) {
        check_same(a, b);
    }
}

static void check_write_back(const struct json_value *root)
{
    char *buf = NULL;
    size_t len = 0;
    json_doc_t *doc = NULL;
    FILE *f = open_memstream(&buf, &len);
    FUZZ_ASSERT(f != NULL, "open_memstream failed");
    struct json_writer w;
    json_writer_init(&w, f, 1);
    write_tree(&w, root);
    FUZZ_ASSERT(json_writer_finish(&w, "memory") == DURE_OK, "the writer refused a tree");
    FUZZ_ASSERT(fclose(f) == 0, "memstream close failed");
    fuzz_error_reset();
    FUZZ_ASSERT(json_parse(buf, len, "written back", &doc) == DURE_OK,
                "written back does not parse: %s\n%s", dure_last_error(), buf);
    check_same(root, json_root(doc));
    json_free(doc);
    free(buf);
}

static int plain_key(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > 48) {
        return 0;
    }
    for (; *k; k++) {
        if (!(*k == '_' || (*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
              (*k >= '0' && *k <= '9'))) {
            return 0;
        }
    }
    return 1;
}

/* json_line_number(line, key) against the parsed object root. */
static void check_scanner(const char *line, const struct json_value *root, const char *key)
{
    double got = 0;
    int found = json_line_number(line, key, &got);
    const struct json_value *m = json_get(root, key);
    int want = m && m->type == JSON_NUMBER && isfinite(m->number);
    FUZZ_ASSERT(found == want, "json_line_number(\"%s\") = %d, the parser says %d", key,
                found, want);
    FUZZ_ASSERT(!want || memcmp(&got, &m->number, sizeof got) == 0,
                "json_line_number(\"%s\") = %.17g, the parser says %s", key, got, m->num);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const scanned[] = {"step", "loss", "val_loss", "baseline_loss",
                                          "step_s", "timesteps_per_s", "mfu"};
    json_doc_t *doc = NULL;
    char *line = fuzz_strndup(data, size);
    double v;

    fuzz_error_reset();
    dure_status_t st = fuzz_expect_error(json_parse((const char *)data, size, "input", &doc),
                                         "json_parse");
    FUZZ_ASSERT((st == DURE_OK) == (doc != NULL), "json_parse: status and document disagree");
    const struct json_value *root = json_root(doc);
    if (st == DURE_OK) {
        check_tree(root, 0);
        check_write_back(root);
    }
    int whole_line = strlen(line) == size;
    for (size_t i = 0; i < sizeof scanned / sizeof scanned[0]; i++) {
        if (st == DURE_OK && root->type == JSON_OBJECT && whole_line) {
            check_scanner(line, root, scanned[i]);
        } else if (json_line_number(line, scanned[i], &v)) {
            FUZZ_ASSERT(isfinite(v), "json_line_number gave %g", v);
        }
    }
    if (st == DURE_OK && root->type == JSON_OBJECT && whole_line) {
        for (const struct json_value *c = root->child; c; c = c->next) {
            if (plain_key(c->key)) {
                check_scanner(line, root, c->key);
            }
        }
    }
    json_free(doc);
    free(line);
    return 0;
}
