/*
 * common/strbuf.h - a growable NUL-terminated string for building text
 * (INI dumps, batch scripts, messages).
 *
 * Appends never fail loudly: the first allocation failure is remembered
 * (sticky, like a FILE's error flag) and later appends do nothing, so a
 * builder can append freely and check once with strbuf_status() at the end.
 *
 *     struct strbuf sb = STRBUF_INIT;
 *     strbuf_printf(&sb, "%s = %d\n", name, v);
 *     DURE_TRY(strbuf_status(&sb));
 *     ... sb.buf ...
 *     strbuf_free(&sb);
 */
#ifndef DURE_COMMON_STRBUF_H
#define DURE_COMMON_STRBUF_H

#include <stddef.h>

#include "common/status.h"

struct strbuf {
    char *buf;  /* (cap) bytes; NUL-terminated text of len bytes, or NULL */
    size_t len;
    size_t cap;
    int failed; /* an allocation failed; contents are incomplete */
};

#define STRBUF_INIT {NULL, 0, 0, 0}

void strbuf_append(struct strbuf *sb, const char *s, size_t n);
void strbuf_puts(struct strbuf *sb, const char *s);
void strbuf_putc(struct strbuf *sb, char c);
void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Each line of text (NULL: none) as prefix + line + "\n" ("# " makes comments). */
void strbuf_prefix_lines(struct strbuf *sb, const char *prefix, const char *text);

/* DURE_OK, or DURE_ERR_NOMEM (logged) if any append failed. */
dure_status_t strbuf_status(const struct strbuf *sb);

/* The text ("" when nothing was appended); valid until the next append. */
const char *strbuf_str(const struct strbuf *sb);

/* Hand the text to the caller (malloc'ed, never NULL on DURE_OK). */
dure_status_t strbuf_detach(struct strbuf *sb, char **text, size_t *len);

/*
 * Empty the text for reuse, keeping its memory (and a remembered allocation
 * failure). Setting len = 0 alone would leave the old text in buf, where
 * strbuf_str still finds it when nothing is appended next.
 */
void strbuf_reset(struct strbuf *sb);

/* Free the text and reset to empty; safe on an empty or failed buffer. */
void strbuf_free(struct strbuf *sb);

#endif
