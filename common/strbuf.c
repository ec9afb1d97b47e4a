/* common/strbuf.c - growable strings with a sticky allocation error. */
#include "common/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int strbuf_reserve(struct strbuf *sb, size_t extra)
{
    if (sb->failed) {
        return 0;
    }
    if (extra > (size_t)-1 / 2 - sb->len) {
        sb->failed = 1;
        return 0;
    }
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap) {
        return 1;
    }
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < need) {
        cap *= 2;
    }
    char *p = realloc(sb->buf, cap);
    if (!p) {
        sb->failed = 1;
        return 0;
    }
    sb->buf = p;
    sb->cap = cap;
    return 1;
}

void strbuf_append(struct strbuf *sb, const char *s, size_t n)
{
    if (!strbuf_reserve(sb, n)) {
        return;
    }
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

void strbuf_puts(struct strbuf *sb, const char *s) { strbuf_append(sb, s, strlen(s)); }

void strbuf_putc(struct strbuf *sb, char c) { strbuf_append(sb, &c, 1); }

void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        sb->failed = 1;
        return;
    }
    if (!strbuf_reserve(sb, (size_t)n)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void strbuf_prefix_lines(struct strbuf *sb, const char *prefix, const char *text)
{
    for (const char *p = text; p && *p;) {
        size_t n = strcspn(p, "\n");
        strbuf_puts(sb, prefix);
        strbuf_append(sb, p, n);
        strbuf_putc(sb, '\n');
        p += n + (p[n] == '\n');
    }
}

dure_status_t strbuf_status(const struct strbuf *sb)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(!sb->failed, DURE_ERR_NOMEM,
               "out of memory building a text of %zu bytes", sb->len);
out:
    return st;
}

const char *strbuf_str(const struct strbuf *sb) { return sb->buf ? sb->buf : ""; }

dure_status_t strbuf_detach(struct strbuf *sb, char **text, size_t *len)
{
    dure_status_t st = DURE_OK;
    *text = NULL;
    if (!sb->buf && !sb->failed) {
        strbuf_reserve(sb, 0);
        if (sb->buf) {
            sb->buf[0] = '\0';
        }
    }
    DURE_TRY(strbuf_status(sb));
    *text = sb->buf;
    if (len) {
        *len = sb->len;
    }
    sb->buf = NULL;
    sb->len = sb->cap = 0;
out:
    if (st != DURE_OK) {
        strbuf_free(sb);
    }
    return st;
}

void strbuf_reset(struct strbuf *sb)
{
    sb->len = 0;
    if (sb->buf) {
        sb->buf[0] = '\0';
    }
}

void strbuf_free(struct strbuf *sb)
{
    free(sb->buf);
    sb->buf = NULL;
    sb->len = sb->cap = 0;
    sb->failed = 0;
}
