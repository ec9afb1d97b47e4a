/*
 * common/json.h - a small JSON writer (streaming, to a FILE) and reader (a
 * document tree in one arena), for the run manifest, metrics lines and
 * `dure verify`.
 *
 * Writer: containers nest up to JSON_MAX_DEPTH; commas, colons and (when
 * pretty) indentation are placed by the writer. Strings are escaped per
 * RFC 8259 and bytes that are not valid UTF-8 become U+FFFD, so the output is
 * always valid JSON. Numbers round-trip: doubles with 17 significant digits,
 * floats with 9 (measurements may ask for fewer); NaN and infinities, which JSON cannot express, are written
 * as null. Misuse (a value where a key is due, unbalanced ends) and write
 * errors are remembered and reported by json_writer_finish.
 *
 *     struct json_writer w;
 *     json_writer_init(&w, f, 1);
 *     json_begin_object(&w);
 *     json_key(&w, "step"); json_uint(&w, 10);
 *     json_end_object(&w);
 *     DURE_TRY(json_writer_finish(&w, path));
 *
 * Reader: json_parse builds a tree of struct json_value; numbers keep their
 * literal text (so two files can be compared digit for digit) beside their
 * value. Errors name the source, line and column.
 */
#ifndef DURE_COMMON_JSON_H
#define DURE_COMMON_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/status.h"

#define JSON_MAX_DEPTH 64

/* ---------------------------------------------------------------- writer */

struct json_writer {
    FILE *out;
    int pretty; /* newlines and 2-space indents */
    int depth;  /* open containers */
    unsigned char is_object[JSON_MAX_DEPTH];
    unsigned char has_items[JSON_MAX_DEPTH];
    int want_value;     /* a key was written, its value is due */
    const char *misuse; /* first misuse, or NULL */
};

void json_writer_init(struct json_writer *w, FILE *out, int pretty);
void json_begin_object(struct json_writer *w);
void json_end_object(struct json_writer *w);
void json_begin_array(struct json_writer *w);
void json_end_array(struct json_writer *w);
/* A member name inside an object; the next call writes its value. */
void json_key(struct json_writer *w, const char *key);
/* A string value; NULL writes null. */
void json_string(struct json_writer *w, const char *s);
void json_int(struct json_writer *w, int64_t v);
void json_uint(struct json_writer *w, uint64_t v);
void json_double(struct json_writer *w, double v);
/* A measurement (a time, a bandwidth) with `digits` significant digits
 * (1 to 17): shorter than json_double where the last bits mean nothing. */
void json_number(struct json_writer *w, double v, int digits);
void json_float(struct json_writer *w, float v);
void json_bool(struct json_writer *w, int v);
void json_null(struct json_writer *w);

/*
 * Check that every container was closed, nothing was misused and the stream
 * has no error; `what` names the destination in the message. Does not close
 * or flush the stream.
 */
dure_status_t json_writer_finish(struct json_writer *w, const char *what);

/*
 * Write one JSON document to `path` atomically (a temporary file renamed
 * over it, common/fsutil.h): fill(w, arg) writes exactly one value, which
 * is followed by a newline. DURE_ERR_IO naming path when it cannot be
 * written, DURE_ERR_INTERNAL for a fill that misused the writer; path is
 * untouched on any failure.
 */
dure_status_t json_write_file(const char *path, int pretty,
                              void (*fill)(struct json_writer *w, const void *arg),
                              const void *arg);

/* ---------------------------------------------------------------- reader */

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_value {
    enum json_type type;
    const char *key;          /* member name inside an object, else NULL */
    const char *str;          /* JSON_STRING: decoded UTF-8, NUL-terminated */
    const char *num;          /* JSON_NUMBER: the literal as written ("1.50e-3") */
    double number;            /* JSON_NUMBER: its value */
    int boolean;              /* JSON_BOOL */
    size_t count;             /* JSON_ARRAY, JSON_OBJECT: number of children */
    struct json_value *child; /* first element or member */
    struct json_value *next;  /* next sibling */
    int line;                 /* line of the source where the value starts (from 1) */
};

/* A parsed document: the tree and its strings, freed together. */
typedef struct json_doc json_doc_t;

/*
 * Parse text[len] (one JSON value, surrounded by whitespace only) into *out.
 * `name` (a file name, "metrics.jsonl line 12") prefixes error messages,
 * which say line and column. Rejects what RFC 8259 rejects (trailing commas,
 * single quotes, leading zeros, NaN, lone surrogates, control characters in
 * strings) and strings holding U+0000. Duplicate keys are kept in order.
 */
dure_status_t json_parse(const char *text, size_t len, const char *name, json_doc_t **out);

/* Read and parse a whole file; DURE_ERR_IO naming it when it cannot be read. */
dure_status_t json_parse_file(const char *path, json_doc_t **out);

const struct json_value *json_root(const json_doc_t *doc);
void json_free(json_doc_t *doc);

/* The first member of obj named key, or NULL (also when obj is not an object). */
const struct json_value *json_get(const struct json_value *obj, const char *key);

/*
 * Scan one JSON object line (a metrics.jsonl record) for the number of its
 * top-level member `key` (ASCII) without building a tree: 1 and *v set when
 * the first member of that name holds a finite number, 0 otherwise (absent,
 * null, another type, or the line is not an object). On every valid object
 * it agrees with json_parse + json_get; the text of nested values and of
 * strings is never taken for a member. Meant for following a run's progress,
 * where a full parse per line is not needed.
 */
int json_line_number(const char *line, const char *key, double *v);

#endif
