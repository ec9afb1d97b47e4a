/*
 * slurm/shquote.h - quoting values for the two languages of a batch script:
 * bash, and the argument syntax of sbatch's own "#SBATCH" line parser.
 *
 * Every value that comes from a job spec passes through one of these before
 * it reaches a batch script, so no value can inject shell or sbatch options.
 */
#ifndef DURE_SLURM_SHQUOTE_H
#define DURE_SLURM_SHQUOTE_H

#include "common/status.h"
#include "common/strbuf.h"

/*
 * Append `s` as exactly one bash word with no expansion of any kind:
 * 'text' with each ' and \ written outside the quotes as \' and \\
 * ("it's" is 'it'\''s', "a\" is 'a'\\, which shellcheck reads without
 * SC1003); '' for the empty string. Any byte (newlines included) is safe.
 */
void shquote_append(struct strbuf *sb, const char *s);

/*
 * Append `s` as one argument of an "#SBATCH --opt=VALUE" line. sbatch reads
 * those lines with its own parser: a blank ends an argument and an unquoted
 * '#' the line, quotes group, and inside quotes a backslash escapes the next
 * character. So a value of [A-Za-z0-9._/,:=+@%-] only is written as it is,
 * any other in double quotes with '"' and '\' escaped. A line cannot hold
 * a newline or other control characters: DURE_ERR_ARG naming `what` (a key
 * name) then.
 */
dure_status_t sbatch_quote_append(struct strbuf *sb, const char *what, const char *s);

/*
 * Append `s` escaped for a Slurm filename pattern (--output): '%' becomes
 * "%%". A backslash would switch patterns off for the whole name (so %x_%j
 * would stay literal): DURE_ERR_ARG naming `what`.
 */
dure_status_t slurm_pattern_escape(struct strbuf *sb, const char *what, const char *s);

#endif
