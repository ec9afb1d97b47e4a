/* slurm/shquote.c - bash and #SBATCH quoting. */
#include "slurm/shquote.h"

#include <ctype.h>
#include <string.h>

void shquote_append(struct strbuf *sb, const char *s)
{
    int open = 0;
    if (!*s) {
        strbuf_puts(sb, "''");
        return;
    }
    for (const char *p = s; *p; p++) {
        /* ' cannot be inside '...'; \ can, but one ending a '...' reads
         * to shellcheck as an attempt to escape the quote (SC1003). Both
         * go between the quoted runs, backslash-escaped. */
        int escaped = *p == '\'' || *p == '\\';
        if (escaped == open) {
            strbuf_putc(sb, '\'');
            open = !open;
        }
        if (escaped) {
            strbuf_putc(sb, '\\');
        }
        strbuf_putc(sb, *p);
    }
    if (open) {
        strbuf_putc(sb, '\'');
    }
}

dure_status_t sbatch_quote_append(struct strbuf *sb, const char *what, const char *s)
{
    dure_status_t st = DURE_OK;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        DURE_CHECK(*p >= 0x20 && *p != 0x7f, DURE_ERR_ARG,
                   "%s: control character 0x%02x cannot go into an #SBATCH line", what,
                   *p);
    }
    int plain = 1;
    for (const char *p = s; *p; p++) {
        plain &= isalnum((unsigned char)*p) || strchr("._/,:=+@%-", *p) != NULL;
    }
    if (plain && *s) {
        strbuf_puts(sb, s);
        goto out;
    }
    /*
     * Quoted: sbatch ends an unquoted argument at a blank even after a
     * backslash, but inside quotes a backslash escapes any character.
     */
    strbuf_putc(sb, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            strbuf_putc(sb, '\\');
        }
        strbuf_putc(sb, *p);
    }
    strbuf_putc(sb, '"');
out:
    return st;
}

dure_status_t slurm_pattern_escape(struct strbuf *sb, const char *what, const char *s)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(strchr(s, '\\') == NULL, DURE_ERR_ARG,
               "%s = '%s': a backslash in a Slurm output path turns off its %%j/%%x "
               "patterns: not allowed",
               what, s);
    for (const char *p = s; *p; p++) {
        strbuf_puts(sb, *p == '%' ? "%%" : (char[]){*p, '\0'});
    }
out:
    return st;
}
