/* common/json.c - see json.h. */
#include "common/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"

/* ---------------------------------------------------------------- writer */

void json_writer_init(struct json_writer *w, FILE *out, int pretty)
{
    memset(w, 0, sizeof *w);
    w->out = out;
    w->pretty = pretty;
}

static void misuse(struct json_writer *w, const char *what)
{
    if (!w->misuse) {
        w->misuse = what;
    }
}

static void newline_indent(struct json_writer *w)
{
    if (w->pretty) {
        fputc('\n', w->out);
        for (int i = 0; i < w->depth; i++) {
            fputs("  ", w->out);
        }
    }
}

/* Separator and checks before any value. */
static int before_value(struct json_writer *w)
{
    if (w->depth > 0 && w->is_object[w->depth - 1] && !w->want_value) {
        misuse(w, "a value inside an object without a key");
        return 0;
    }
    if (w->depth == 0 && w->has_items[0]) {
        misuse(w, "a second top-level value");
        return 0;
    }
    if (w->want_value) {
        w->want_value = 0;
        return 1;
    }
    if (w->depth > 0) {
        if (w->has_items[w->depth - 1]) {
            fputc(',', w->out);
        }
        newline_indent(w);
        w->has_items[w->depth - 1] = 1;
    } else {
        w->has_items[0] = 1;
    }
    return 1;
}

static void begin(struct json_writer *w, int object)
{
    if (!before_value(w)) {
        return;
    }
    if (w->depth >= JSON_MAX_DEPTH - 1) {
        misuse(w, "containers nested too deeply");
        return;
    }
    fputc(object ? '{' : '[', w->out);
    w->depth++;
    w->is_object[w->depth - 1] = (unsigned char)object;
    w->has_items[w->depth - 1] = 0;
}

static void end(struct json_writer *w, int object)
{
    if (w->depth == 0 || w->is_object[w->depth - 1] != object || w->want_value) {
        misuse(w, object ? "unbalanced end of object" : "unbalanced end of array");
        return;
    }
    int had = w->has_items[w->depth - 1];
    w->depth--;
    if (had) {
        newline_indent(w);
    }
    fputc(object ? '}' : ']', w->out);
    if (w->depth == 0) {
        w->has_items[0] = 1;
    }
}

void json_begin_object(struct json_writer *w) { begin(w, 1); }
void json_end_object(struct json_writer *w) { end(w, 1); }
void json_begin_array(struct json_writer *w) { begin(w, 0); }
void json_end_array(struct json_writer *w) { end(w, 0); }

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80) {
        return 1;
    }
    size_t n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0) {
        return 0;
    }
    uint32_t cp = c & (0x3Fu >> (n - 1));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    /* Overlong forms, surrogates and code points past U+10FFFF are invalid. */
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
        return 0;
    }
    return n;
}

static void write_escaped(FILE *out, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', out);
    while (*s) {
        unsigned c = *s;
        size_t n;
        switch (c) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        case '\b':
            fputs("\\b", out);
            break;
        case '\f':
            fputs("\\f", out);
            break;
        default:
            if (c < 0x20) {
                fprintf(out, "\\u%04x", c);
            } else if ((n = utf8_len(s)) > 0) {
                fwrite(s, 1, n, out);
                s += n;
                continue;
            } else {
                fputs("\\ufffd", out);
            }
        }
        s++;
    }
    fputc('"', out);
}

void json_key(struct json_writer *w, const char *key)
{
    if (w->depth == 0 || !w->is_object[w->depth - 1] || w->want_value || !key) {
        misuse(w, "a key outside an object, or two keys in a row");
        return;
    }
    if (w->has_items[w->depth - 1]) {
        fputc(',', w->out);
    }
    newline_indent(w);
    w->has_items[w->depth - 1] = 1;
    write_escaped(w->out, key);
    fputs(w->pretty ? ": " : ":", w->out);
    w->want_value = 1;
}

void json_string(struct json_writer *w, const char *s)
{
    if (before_value(w)) {
        if (s) {
            write_escaped(w->out, s);
        } else {
            fputs("null", w->out);
        }
    }
}

void json_int(struct json_writer *w, int64_t v)
{
    if (before_value(w)) {
        fprintf(w->out, "%" PRId64, v);
    }
}

void json_uint(struct json_writer *w, uint64_t v)
{
    if (before_value(w)) {
        fprintf(w->out, "%" PRIu64, v);
    }
}

void json_number(struct json_writer *w, double v, int digits)
{
    digits = digits < 1 ? 1 : digits > 17 ? 17 : digits;
    if (before_value(w)) {
        if (isfinite(v)) {
            fprintf(w->out, "%.*g", digits, v);
        } else {
            fputs("null", w->out);
        }
    }
}

void json_double(struct json_writer *w, double v)
{
    json_number(w, v, 17);
}

void json_float(struct json_writer *w, float v)
{
    json_number(w, (double)v, 9);
}

void json_bool(struct json_writer *w, int v)
{
    if (before_value(w)) {
        fputs(v ? "true" : "false", w->out);
    }
}

void json_null(struct json_writer *w)
{
    if (before_value(w)) {
        fputs("null", w->out);
    }
}

dure_status_t json_writer_finish(struct json_writer *w, const char *what)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(!w->misuse, DURE_ERR_INTERNAL, "JSON for '%s': %s", what, w->misuse);
    DURE_CHECK(w->depth == 0 && !w->want_value, DURE_ERR_INTERNAL,
               "JSON for '%s': %d containers left open", what, w->depth);
    DURE_CHECK(!ferror(w->out), DURE_ERR_IO, "write JSON to '%s' failed", what);
out:
    return st;
}

dure_status_t json_write_file(const char *path, int pretty,
                              void (*fill)(struct json_writer *w, const void *arg),
                              const void *arg)
{
    dure_status_t st = DURE_OK;
    char *buf = NULL;
    size_t len = 0;
    struct json_writer w;
    FILE *f = open_memstream(&buf, &len);
    DURE_SYS_TRY(f != NULL, "cannot build %s in memory", path);
    json_writer_init(&w, f, pretty);
    fill(&w, arg);
    fputc('\n', f);
    st = json_writer_finish(&w, path);
    int closed = fclose(f);
    DURE_TRY(st);
    DURE_SYS_TRY(closed == 0, "cannot build %s in memory", path);
    DURE_TRY(dure_file_write_atomic(path, buf, len, 0644));
out:
    free(buf);
    return st;
}

/* ---------------------------------------------------------------- reader */

/* Arena blocks: nodes and decoded strings live here until json_free. */
struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    max_align_t data[];
};

struct json_doc {
    struct arena_block *blocks;
    struct json_value *root;
};

struct parser {
    const char *p, *end, *start;
    const char *name;
    json_doc_t *doc;
    int depth;
    int line;               /* of ps->p: newlines occur only in whitespace */
};

static void *arena_alloc(json_doc_t *doc, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct arena_block *b = doc->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = malloc(sizeof *b + cap);
        if (!b) {
            return NULL;
        }
        b->cap = cap;
        b->used = 0;
        b->next = doc->blocks;
        doc->blocks = b;
    }
    void *r = (char *)b->data + b->used;
    b->used += n;
    return r;
}

/* Log "name:line:col: message" for the parser's position. */
static dure_status_t parse_error(struct parser *ps, const char *msg)
{
    dure_status_t st = DURE_OK;
    int line = 1, col = 1;
    for (const char *q = ps->start; q < ps->p && q < ps->end; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    DURE_FAIL(DURE_ERR_FORMAT, "%s:%d:%d: invalid JSON: %s", ps->name, line, col, msg);
out:
    return st;
}

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) {
        ps->line += *ps->p == '\n';
        ps->p++;
    }
}

static int hex4(const char *s, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) {
            return 0;
        }
        *v = (*v << 4) | (uint32_t)d;
    }
    return 1;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parse a string at ps->p (on the opening quote) into arena memory. */
static dure_status_t parse_string(struct parser *ps, const char **out)
{
    dure_status_t st = DURE_OK;
    const char *q = ps->p + 1;
    /* Decoded text is never longer than the literal. */
    const char *close = q;
    while (close < ps->end && *close != '"') {
        close += (*close == '\\' && close + 1 < ps->end) ? 2 : 1;
    }
    if (close >= ps->end) {
        return parse_error(ps, "unterminated string");
    }
    char *buf = arena_alloc(ps->doc, (size_t)(close - q) + 1);
    DURE_ALLOC_TRY(buf, (size_t)(close - q) + 1);
    char *o = buf;
    while (q < close) {
        unsigned char c = (unsigned char)*q;
        if (c < 0x20) {
            ps->p = q;
            return parse_error(ps, "control character in string (escape it)");
        }
        if (c != '\\') {
            size_t n = utf8_len((const unsigned char *)q);
            if (n == 0 || q + n > close) {
                ps->p = q;
                return parse_error(ps, "invalid UTF-8 in string");
            }
            memcpy(o, q, n);
            o += n;
            q += n;
            continue;
        }
        q++;
        switch (*q) {
        case '"':
        case '\\':
        case '/':
            *o++ = *q++;
            break;
        case 'b':
            *o++ = '\b';
            q++;
            break;
        case 'f':
            *o++ = '\f';
            q++;
            break;
        case 'n':
            *o++ = '\n';
            q++;
            break;
        case 'r':
            *o++ = '\r';
            q++;
            break;
        case 't':
            *o++ = '\t';
            q++;
            break;
        case 'u': {
            uint32_t cp, lo;
            if (close - q < 5 || !hex4(q + 1, &cp)) {
                ps->p = q;
                return parse_error(ps, "bad \\u escape");
            }
            q += 5;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (close - q < 6 || q[0] != '\\' || q[1] != 'u' || !hex4(q + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF) {
                    ps->p = q;
                    return parse_error(ps, "lone high surrogate in \\u escape");
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                q += 6;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                ps->p = q;
                return parse_error(ps, "lone low surrogate in \\u escape");
            } else if (cp == 0) {
                ps->p = q;
                return parse_error(ps, "\\u0000 in string is not supported");
            }
            o += put_utf8(o, cp);
            break;
        }
        default:
            ps->p = q;
            return parse_error(ps, "unknown escape in string");
        }
    }
    *o = '\0';
    *out = buf;
    ps->p = close + 1;
out:
    return st;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/*
 * The end of the JSON number (RFC 8259 grammar) starting at s, or NULL when
 * there is none; then *bad is where it broke and *why says how.
 */
static const char *number_end(const char *s, const char *end, const char **bad,
                              const char **why)
{
    const char *q = s;
    if (q < end && *q == '-') {
        q++;
    }
    if (q < end && *q == '0') {
        q++;
    } else if (q < end && is_digit(*q)) {
        while (q < end && is_digit(*q)) {
            q++;
        }
    } else {
        *bad = s;
        *why = "expected a value";
        return NULL;
    }
    if (q < end && *q == '.') {
        q++;
        if (q >= end || !is_digit(*q)) {
            *bad = q;
            *why = "digits expected after '.'";
            return NULL;
        }
        while (q < end && is_digit(*q)) {
            q++;
        }
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-')) {
            q++;
        }
        if (q >= end || !is_digit(*q)) {
            *bad = q;
            *why = "digits expected in exponent";
            return NULL;
        }
        while (q < end && is_digit(*q)) {
            q++;
        }
    }
    return q;
}

static dure_status_t parse_number(struct parser *ps, struct json_value *v)
{
    dure_status_t st = DURE_OK;
    const char *s = ps->p, *bad = NULL, *why = NULL;
    const char *q = number_end(s, ps->end, &bad, &why);
    if (!q) {
        ps->p = bad;
        return parse_error(ps, why);
    }
    size_t n = (size_t)(q - s);
    char *lit = arena_alloc(ps->doc, n + 1);
    DURE_ALLOC_TRY(lit, n + 1);
    memcpy(lit, s, n);
    lit[n] = '\0';
    v->type = JSON_NUMBER;
    v->num = lit;
    errno = 0;
    v->number = strtod(lit, NULL);
    ps->p = q;
out:
    return st;
}

static int literal(struct parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, word, n) == 0) {
        ps->p += n;
        return 1;
    }
    return 0;
}

static dure_status_t parse_value(struct parser *ps, struct json_value **out);

static dure_status_t parse_container(struct parser *ps, struct json_value *v, int object)
{
    dure_status_t st = DURE_OK;
    struct json_value **tail = &v->child;
    char close = object ? '}' : ']';
    if (++ps->depth > JSON_MAX_DEPTH) {
        return parse_error(ps, "nested too deeply");
    }
    v->type = object ? JSON_OBJECT : JSON_ARRAY;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return DURE_OK;
    }
    for (;;) {
        const char *key = NULL;
        struct json_value *item;
        skip_ws(ps);
        if (object) {
            if (ps->p >= ps->end || *ps->p != '"') {
                return parse_error(ps, "expected a member name in double quotes");
            }
            DURE_TRY(parse_string(ps, &key));
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                return parse_error(ps, "expected ':' after member name");
            }
            ps->p++;
        }
        DURE_TRY(parse_value(ps, &item));
        item->key = key;
        *tail = item;
        tail = &item->next;
        v->count++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            break;
        }
        return parse_error(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    ps->depth--;
out:
    return st;
}

static dure_status_t parse_value(struct parser *ps, struct json_value **out)
{
    dure_status_t st = DURE_OK;
    struct json_value *v = arena_alloc(ps->doc, sizeof *v);
    DURE_ALLOC_TRY(v, sizeof *v);
    memset(v, 0, sizeof *v);
    skip_ws(ps);
    v->line = ps->line;
    if (ps->p >= ps->end) {
        return parse_error(ps, "unexpected end of input");
    }
    switch (*ps->p) {
    case '{':
    case '[':
        DURE_TRY(parse_container(ps, v, *ps->p == '{'));
        break;
    case '"':
        v->type = JSON_STRING;
        DURE_TRY(parse_string(ps, &v->str));
        break;
    case 't':
    case 'f':
    case 'n':
        if (literal(ps, "true")) {
            v->type = JSON_BOOL;
            v->boolean = 1;
        } else if (literal(ps, "false")) {
            v->type = JSON_BOOL;
        } else if (literal(ps, "null")) {
            v->type = JSON_NULL;
        } else {
            return parse_error(ps, "expected a value");
        }
        break;
    default:
        DURE_TRY(parse_number(ps, v));
    }
    *out = v;
out:
    return st;
}

void json_free(json_doc_t *doc)
{
    if (!doc) {
        return;
    }
    for (struct arena_block *b = doc->blocks, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    free(doc);
}

dure_status_t json_parse(const char *text, size_t len, const char *name, json_doc_t **out)
{
    dure_status_t st = DURE_OK;
    struct parser ps = {.p = text, .end = text + len, .start = text, .name = name, .line = 1};
    json_doc_t *doc = calloc(1, sizeof *doc);
    *out = NULL;
    DURE_ALLOC_TRY(doc, sizeof *doc);
    ps.doc = doc;
    DURE_TRY(parse_value(&ps, &doc->root));
    skip_ws(&ps);
    if (ps.p != ps.end) {
        st = parse_error(&ps, "unexpected text after the value");
        goto out;
    }
    *out = doc;
    doc = NULL;
out:
    json_free(doc);
    return st;
}

dure_status_t json_parse_file(const char *path, json_doc_t **out)
{
    dure_status_t st = DURE_OK;
    char *text = NULL;
    size_t len = 0, cap = 0;
    FILE *f = fopen(path, "rb");
    *out = NULL;
    DURE_SYS_TRY(f != NULL, "open '%s'", path);
    for (;;) {
        if (cap - len < 65536) {
            cap = cap ? 2 * cap : 65536;
            char *nt = realloc(text, cap);
            DURE_ALLOC_TRY(nt, cap);
            text = nt;
        }
        size_t n = fread(text + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            break;
        }
    }
    DURE_SYS_TRY(!ferror(f), "read '%s'", path);
    DURE_TRY(json_parse(text, len, path, out));
out:
    free(text);
    if (f) {
        fclose(f);
    }
    return st;
}

const struct json_value *json_root(const json_doc_t *doc) { return doc ? doc->root : NULL; }

const struct json_value *json_get(const struct json_value *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT) {
        return NULL;
    }
    for (const struct json_value *c = obj->child; c; c = c->next) {
        if (strcmp(c->key, key) == 0) {
            return c;
        }
    }
    return NULL;
}

/* Past the string whose opening quote is at p, or NULL when it never closes. */
static const char *line_string_end(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

/* 1 when the raw member name k[0, n) (escapes undecoded) spells the ASCII key. */
static int line_key_is(const char *k, size_t n, const char *key)
{
    const char *end = k + n;
    uint32_t cp;
    while (k < end) {
        char c = *k++;
        if (c == '\\') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *e = k < end ? strchr(from, *k) : NULL;
            if (e && *e) {
                c = to[e - from];
                k++;
            } else if (k < end && *k == 'u' && end - k >= 5 && hex4(k + 1, &cp) && cp < 0x80) {
                c = (char)cp;
                k += 5;
            } else {
                return 0; /* beyond ASCII: not one of the keys dure scans for */
            }
        }
        if (*key == '\0' || c != *key++) {
            return 0;
        }
    }
    return *key == '\0';
}

/* Past the value starting at p: up to the ',' or '}' that ends it, counting
 * brackets outside strings. NULL when the line ends first. */
static const char *line_value_end(const char *p, const char *end)
{
    int depth = 0;
    while (p && p < end) {
        if (*p == '"') {
            p = line_string_end(p, end);
            continue;
        }
        if (*p == '{' || *p == '[') {
            depth++;
        } else if ((*p == '}' || *p == ']') && depth-- == 0) {
            return p;
        } else if (*p == ',' && depth == 0) {
            return p;
        }
        p++;
    }
    return NULL;
}

int json_line_number(const char *line, const char *key, double *v)
{
    /* The top-level members in order, without building a tree: keys are
     * compared as decoded, values skipped by their brackets, the first
     * member named key decides (as json_get does). */
    struct parser ps = {.p = line, .end = line + strlen(line)};
    const char *bad, *why;
    skip_ws(&ps);
    if (ps.p == ps.end || *ps.p != '{') {
        return 0;
    }
    ps.p++;
    skip_ws(&ps);
    while (ps.p < ps.end && *ps.p == '"') {
        const char *k = ps.p + 1;
        ps.p = line_string_end(ps.p, ps.end);
        if (!ps.p) {
            return 0;
        }
        int match = line_key_is(k, (size_t)(ps.p - 1 - k), key);
        skip_ws(&ps);
        if (ps.p == ps.end || *ps.p != ':') {
            return 0;
        }
        ps.p++;
        skip_ws(&ps);
        if (match) {
            /* The literal must end the value, so strtod reads exactly it
             * ("0x10" is JSON's 0 and then garbage, strtod's 16). */
            const char *q = number_end(ps.p, ps.end, &bad, &why);
            if (!q || (q < ps.end && !strchr(" \t\n\r,}", *q))) {
                return 0;
            }
            double x = strtod(ps.p, NULL);
            if (!isfinite(x)) {
                return 0;
            }
            *v = x;
            return 1;
        }
        ps.p = line_value_end(ps.p, ps.end);
        if (!ps.p || *ps.p != ',') {
            return 0;
        }
        ps.p++;
        skip_ws(&ps);
    }
    return 0;
}
