/* tune/ompi_rules.c - see ompi_rules.h. */
#include "tune/ompi_rules.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "common/strbuf.h"

/* Algorithm names of Open MPI 4.1.4 (coll_tuned_*_decision.c). */
static const char *const allreduce_algos[] = {"ignore", "basic_linear", "nonoverlapping",
                                              "recursive_doubling", "ring", "segmented_ring",
                                              "rabenseifner"};
static const char *const reduce_scatter_algos[] = {"ignore", "non-overlapping",
                                                   "recursive_halving", "ring", "butterfly"};
static const char *const allgather_algos[] = {"ignore", "linear", "bruck", "recursive_doubling",
                                              "ring", "neighbor", "two_proc"};
static const char *const bcast_algos[] = {"ignore", "basic_linear", "chain", "pipeline",
                                          "split_binary_tree", "binary_tree", "binomial",
                                          "knomial", "scatter_allgather",
                                          "scatter_allgather_ring"};

#define ALGOS(a) (int)(sizeof a / sizeof a[0]), a
static const struct tune_ompi_coll ompi_colls[] = {
    {COMM_ALLREDUCE, 2, "allreduce", "coll_tuned_allreduce_algorithm", ALGOS(allreduce_algos)},
    {COMM_REDUCE_SCATTER, 12, "reduce_scatter", "coll_tuned_reduce_scatter_algorithm",
     ALGOS(reduce_scatter_algos)},
    {COMM_ALLGATHER, 0, "allgather", "coll_tuned_allgather_algorithm",
     ALGOS(allgather_algos)},
    {COMM_BROADCAST, 7, "bcast", "coll_tuned_bcast_algorithm", ALGOS(bcast_algos)},
};
#define NCOLLS (int)(sizeof ompi_colls / sizeof ompi_colls[0])

const struct tune_ompi_coll *tune_ompi_coll_of(enum comm_coll coll)
{
    for (int i = 0; i < NCOLLS; i++) {
        if (ompi_colls[i].coll == coll) {
            return &ompi_colls[i];
        }
    }
    return NULL;
}

const struct tune_ompi_coll *tune_ompi_coll_by_id(int id)
{
    for (int i = 0; i < NCOLLS; i++) {
        if (ompi_colls[i].id == id) {
            return &ompi_colls[i];
        }
    }
    return NULL;
}

const char *tune_ompi_algo_name(const struct tune_ompi_coll *c, int alg)
{
    return c && alg >= 0 && alg < c->nalgos ? c->algos[alg] : NULL;
}

dure_status_t tune_ompi_rules_add(struct tune_ompi_rules *rs, int coll_id, int comm_size,
                                  size_t min_bytes, int alg)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(rs->n < TUNE_OMPI_RULES_MAX, DURE_ERR_ARG,
               "Open MPI rules: more than %d message rules", TUNE_OMPI_RULES_MAX);
    rs->r[rs->n++] = (struct tune_ompi_rule){coll_id, comm_size, min_bytes, alg, 0, 0, 0};
out:
    return st;
}

/* "FILE:LINE" for parsed rows, "FILE" for built ones. */
static const char *where(char *buf, size_t len, const char *what, const struct tune_ompi_rule *r)
{
    if (r->line > 0) {
        snprintf(buf, len, "%s:%d", what, r->line);
    } else {
        snprintf(buf, len, "%s", what);
    }
    return buf;
}

static const char *coll_label(int id)
{
    const struct tune_ompi_coll *c = tune_ompi_coll_by_id(id);
    return c ? c->name : "collective";
}

dure_status_t tune_ompi_rules_check(const struct tune_ompi_rules *rs, const char *what)
{
    dure_status_t st = DURE_OK;
    char at[4200];
    int seen[TUNE_OMPI_COLLCOUNT] = {0};

    for (int i = 0; i < rs->n; i++) {
        const struct tune_ompi_rule *r = &rs->r[i];
        const struct tune_ompi_rule *prev = i ? &rs->r[i - 1] : NULL;
        where(at, sizeof at, what, r);
        DURE_CHECK(r->coll_id >= 0 && r->coll_id < TUNE_OMPI_COLLCOUNT, DURE_ERR_FORMAT,
                   "%s: collective id %d is not below %d (Open MPI 4.1's collectives)", at,
                   r->coll_id, TUNE_OMPI_COLLCOUNT);
        int new_coll = !prev || prev->coll_id != r->coll_id;
        DURE_CHECK(!new_coll || !seen[r->coll_id], DURE_ERR_FORMAT,
                   "%s: collective id %d (%s) appears twice: Open MPI keeps only the last", at,
                   r->coll_id, coll_label(r->coll_id));
        seen[r->coll_id] = 1;
        int new_comm = new_coll || prev->comm_size != r->comm_size;
        DURE_CHECK(new_coll || r->comm_size >= prev->comm_size, DURE_ERR_FORMAT,
                   "%s: %s: communicator size %d after %d: sizes must ascend", at,
                   coll_label(r->coll_id), r->comm_size, prev->comm_size);
        DURE_CHECK(!new_comm || r->min_bytes == 0, DURE_ERR_FORMAT,
                   "%s: %s, communicators of %d ranks: the first message size is %zu; Open MPI "
                   "requires 0", at, coll_label(r->coll_id), r->comm_size, r->min_bytes);
        DURE_CHECK(new_comm || r->min_bytes > prev->min_bytes, DURE_ERR_FORMAT,
                   "%s: %s, communicators of %d ranks: message size %zu after %zu: sizes must "
                   "ascend", at, coll_label(r->coll_id), r->comm_size, r->min_bytes,
                   prev->min_bytes);
        const struct tune_ompi_coll *c = tune_ompi_coll_by_id(r->coll_id);
        DURE_CHECK(r->alg >= 0 && (!c || r->alg < c->nalgos), DURE_ERR_FORMAT,
                   "%s: %s: algorithm %d is not one of Open MPI 4.1's (0 to %d; `ompi_info "
                   "--param coll tuned --level 9` lists them)", at, coll_label(r->coll_id),
                   r->alg, c ? c->nalgos - 1 : 0);
        DURE_CHECK(r->comm_size >= 0 && r->faninout >= 0 && r->segsize >= 0, DURE_ERR_FORMAT,
                   "%s: negative communicator size, fan in/out or segment size", at);
    }
out:
    return st;
}

dure_status_t tune_ompi_rules_write(const struct tune_ompi_rules *rs, const char *comment,
                                    const char *path)
{
    dure_status_t st = DURE_OK;
    struct strbuf sb = STRBUF_INIT;
    int ncoll = 0;

    DURE_TRY(tune_ompi_rules_check(rs, path));
    for (int i = 0; i < rs->n; i++) {
        ncoll += i == 0 || rs->r[i].coll_id != rs->r[i - 1].coll_id;
    }
    strbuf_puts(&sb, "# Open MPI coll_tuned dynamic rules (classic format, read by Open MPI "
                     "4.1)\n");
    strbuf_prefix_lines(&sb, "# ", comment);
    strbuf_puts(&sb, "# use: mpirun --mca coll_tuned_use_dynamic_rules 1 "
                     "--mca coll_tuned_dynamic_rules_filename THIS_FILE ...\n");
    strbuf_printf(&sb, "%-20d # collectives\n", ncoll);
    for (int i = 0; i < rs->n;) {
        int id = rs->r[i].coll_id, ncomm = 0;
        int end = i;
        while (end < rs->n && rs->r[end].coll_id == id) {
            ncomm += end == i || rs->r[end].comm_size != rs->r[end - 1].comm_size;
            end++;
        }
        strbuf_printf(&sb, "%-20d # collective id: %s\n", id, coll_label(id));
        strbuf_printf(&sb, "%-20d # communicator sizes\n", ncomm);
        for (int k = i; k < end;) {
            int size = rs->r[k].comm_size, kend = k;
            while (kend < end && rs->r[kend].comm_size == size) {
                kend++;
            }
            char line[64];
            snprintf(line, sizeof line, "%d %d", size, kend - k);
            strbuf_printf(&sb, "%-20s # communicators of %d or more ranks: %d message sizes\n",
                          line, size, kend - k);
            for (int m = k; m < kend; m++) {
                const struct tune_ompi_rule *r = &rs->r[m];
                const char *name = tune_ompi_algo_name(tune_ompi_coll_by_id(id), r->alg);
                snprintf(line, sizeof line, "%zu %d %d %d", r->min_bytes, r->alg, r->faninout,
                         r->segsize);
                char size[32];
                comm_format_bytes(r->min_bytes, size, sizeof size);
                strbuf_printf(&sb, "%-20s # from %s", line, size);
                if (r->alg == 0) {
                    strbuf_puts(&sb, " bytes: Open MPI's own choice\n");
                } else if (name) {
                    strbuf_printf(&sb, " bytes: %s\n", name);
                } else {
                    strbuf_printf(&sb, " bytes: algorithm %d\n", r->alg);
                }
            }
            k = kend;
        }
        i = end;
    }
    DURE_TRY(strbuf_status(&sb));
    DURE_TRY(dure_file_write_atomic(path, sb.buf, sb.len, 0644));
out:
    strbuf_free(&sb);
    return st;
}

/* ---------------------------------------------------------------- parser */

struct reader {
    FILE *f;
    const char *path;
    char *line;          /* the current line, comment cut off */
    size_t cap;
    int lineno;
    char *pos;           /* next unread character of line */
};

/* The next whitespace-separated token outside comments: *tok and *len, or
 * *tok = NULL at the end of the file. */
static dure_status_t next_token(struct reader *rd, char **tok, size_t *len)
{
    dure_status_t st = DURE_OK;
    *tok = NULL;
    for (;;) {
        while (rd->pos && *rd->pos && isspace((unsigned char)*rd->pos)) {
            rd->pos++;
        }
        if (rd->pos && *rd->pos) {
            break;
        }
        errno = 0;
        if (getline(&rd->line, &rd->cap, rd->f) < 0) {
            DURE_SYS_TRY(!ferror(rd->f), "read '%s'", rd->path);
            goto out;
        }
        rd->lineno++;
        rd->line[strcspn(rd->line, "#")] = '\0';
        rd->pos = rd->line;
    }
    *tok = rd->pos;
    *len = 0;
    while ((*tok)[*len] && !isspace((unsigned char)(*tok)[*len])) {
        (*len)++;
    }
    rd->pos = *tok + *len;
out:
    return st;
}

/*
 * The next token as a non-negative decimal integer into *v (at most `max`).
 * `field` names what is expected, for the error. *line gets its line.
 */
static dure_status_t next_number(struct reader *rd, const char *field, long max, long *v,
                                 int *line)
{
    dure_status_t st = DURE_OK;
    char *tok = NULL;
    size_t len = 0;
    DURE_TRY(next_token(rd, &tok, &len));
    DURE_CHECK(tok, DURE_ERR_FORMAT, "%s:%d: the file ends where the %s was expected", rd->path,
               rd->lineno, field);
    *line = rd->lineno;
    int shown = (int)(len > 40 ? 40 : len), digits = 1;
    for (size_t i = 0; i < len; i++) {
        digits &= isdigit((unsigned char)tok[i]) != 0;
    }
    DURE_CHECK(digits, DURE_ERR_FORMAT,
               "%s:%d: %s: expected a non-negative decimal integer, found '%.*s'", rd->path,
               rd->lineno, field, shown, tok);
    DURE_CHECK(len == 1 || tok[0] != '0', DURE_ERR_FORMAT,
               "%s:%d: %s: '%.*s' has a leading zero, which Open MPI reads as octal: write it "
               "without", rd->path, rd->lineno, field, shown, tok);
    errno = 0;
    unsigned long long u = strtoull(tok, NULL, 10);
    DURE_CHECK(errno == 0 && u <= (unsigned long long)max, DURE_ERR_FORMAT,
               "%s:%d: %s: %.*s is larger than %ld", rd->path, rd->lineno, field, shown, tok,
               max);
    *v = (long)u;
out:
    return st;
}

dure_status_t tune_ompi_rules_parse(const char *path, struct tune_ompi_rules *rs)
{
    dure_status_t st = DURE_OK;
    struct reader rd = {.path = path};
    char field[160];
    long ncoll = 0;
    int line = 0, seen[TUNE_OMPI_COLLCOUNT] = {0};

    rs->n = 0;
    rd.f = fopen(path, "r");
    DURE_SYS_TRY(rd.f != NULL, "cannot read Open MPI rules file '%s'", path);
    DURE_TRY(next_number(&rd, "number of collectives", TUNE_OMPI_COLLCOUNT, &ncoll, &line));
    for (long c = 0; c < ncoll; c++) {
        long id = 0, ncomm = 0;
        snprintf(field, sizeof field, "collective id (collective %ld of %ld)", c + 1, ncoll);
        DURE_TRY(next_number(&rd, field, TUNE_OMPI_COLLCOUNT - 1, &id, &line));
        DURE_CHECK(!seen[id], DURE_ERR_FORMAT,
                   "%s:%d: collective id %ld (%s) appears twice: Open MPI keeps only the last",
                   path, line, id, coll_label((int)id));
        seen[id] = 1;
        snprintf(field, sizeof field, "number of communicator sizes (%s)",
                 coll_label((int)id));
        DURE_TRY(next_number(&rd, field, 1 << 20, &ncomm, &line));
        for (long k = 0; k < ncomm; k++) {
            long size = 0, nmsg = 0;
            snprintf(field, sizeof field, "communicator size (%s, rule %ld)",
                     coll_label((int)id), k + 1);
            DURE_TRY(next_number(&rd, field, 1L << 30, &size, &line));
            snprintf(field, sizeof field, "number of message sizes (%s, communicators of %ld)",
                     coll_label((int)id), size);
            DURE_TRY(next_number(&rd, field, TUNE_OMPI_RULES_MAX, &nmsg, &line));
            for (long m = 0; m < nmsg; m++) {
                static const char *const names[4] = {"message size", "algorithm",
                                                     "fan in/out", "segment size"};
                long val[4] = {0};
                int row_line = 0;
                for (int f = 0; f < 4; f++) {
                    snprintf(field, sizeof field, "%s (%s, communicators of %ld, message rule %ld)",
                             names[f], coll_label((int)id), size, m + 1);
                    DURE_TRY(next_number(&rd, field, f == 0 ? (1L << 62) : (1L << 30), &val[f],
                                         &line));
                    row_line = f == 0 ? line : row_line;
                }
                DURE_CHECK(rs->n < TUNE_OMPI_RULES_MAX, DURE_ERR_FORMAT,
                           "%s:%d: more than %d message rules", path, row_line,
                           TUNE_OMPI_RULES_MAX);
                rs->r[rs->n++] = (struct tune_ompi_rule){(int)id, (int)size, (size_t)val[0],
                                                         (int)val[1], (int)val[2], (int)val[3],
                                                         row_line};
            }
        }
    }
    /* Open MPI stops reading here; anything after is a mistake worth naming. */
    char *tok = NULL;
    size_t len = 0;
    DURE_TRY(next_token(&rd, &tok, &len));
    DURE_CHECK(!tok, DURE_ERR_FORMAT,
               "%s:%d: '%.*s' after the last of the %ld collectives the file declares", path,
               rd.lineno, (int)(len > 40 ? 40 : len), tok, ncoll);
    DURE_TRY(tune_ompi_rules_check(rs, path));
out:
    free(rd.line);
    if (rd.f) {
        fclose(rd.f);
    }
    return st;
}

int tune_ompi_rules_pick(const struct tune_ompi_rules *rs, int coll_id, int comm_size,
                         size_t msg_bytes)
{
    int first = -1, group = -1;
    for (int i = 0; i < rs->n; i++) {
        const struct tune_ompi_rule *r = &rs->r[i];
        if (r->coll_id != coll_id) {
            continue;
        }
        if (first < 0) {
            first = i;
        }
        int starts = i == first || rs->r[i - 1].comm_size != r->comm_size;
        if (starts && r->comm_size <= comm_size) {
            group = i;
        }
    }
    if (first < 0) {
        return 0;
    }
    if (group < 0) {
        group = first;   /* below every rule's size: Open MPI takes the first */
    }
    int alg = rs->r[group].alg;
    for (int i = group + 1; i < rs->n && rs->r[i].coll_id == coll_id &&
                            rs->r[i].comm_size == rs->r[group].comm_size; i++) {
        if (rs->r[i].min_bytes <= msg_bytes) {
            alg = rs->r[i].alg;
        }
    }
    return alg;
}
