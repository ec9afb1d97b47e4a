/* tune/nccl_conf.c - see nccl_conf.h. */
#include "tune/nccl_conf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "common/strbuf.h"

static const char *const coll_names[TUNE_NCCL_COLL_COUNT] = {
    "broadcast", "reduce", "allgather", "reducescatter", "allreduce"};
static const char *const algo_names[TUNE_NCCL_ALGO_COUNT] = {
    "tree", "ring", "collnet_direct", "collnet_chain", "nvls", "nvls_tree", "pat"};
static const char *const algo_envs[TUNE_NCCL_ALGO_COUNT] = {
    "Tree", "Ring", "CollnetDirect", "CollnetChain", "NVLS", "NVLSTree", "PAT"};
static const char *const proto_names[TUNE_NCCL_PROTO_COUNT] = {"ll", "ll128", "simple"};
static const char *const proto_envs[TUNE_NCCL_PROTO_COUNT] = {"LL", "LL128", "Simple"};

enum tune_nccl_coll tune_nccl_coll_of(enum comm_coll c)
{
    switch (c) {
    case COMM_ALLREDUCE:
        return TUNE_NCCL_ALLREDUCE;
    case COMM_REDUCE_SCATTER:
        return TUNE_NCCL_REDUCESCATTER;
    case COMM_ALLGATHER:
        return TUNE_NCCL_ALLGATHER;
    default:
        return TUNE_NCCL_BROADCAST;
    }
}

const char *tune_nccl_algo_name(enum tune_nccl_algo a)
{
    return (unsigned)a < TUNE_NCCL_ALGO_COUNT ? algo_names[a] : "?";
}

const char *tune_nccl_proto_name(enum tune_nccl_proto p)
{
    return (unsigned)p < TUNE_NCCL_PROTO_COUNT ? proto_names[p] : "?";
}

const char *tune_nccl_algo_env(enum tune_nccl_algo a)
{
    return (unsigned)a < TUNE_NCCL_ALGO_COUNT ? algo_envs[a] : "?";
}

const char *tune_nccl_proto_env(enum tune_nccl_proto p)
{
    return (unsigned)p < TUNE_NCCL_PROTO_COUNT ? proto_envs[p] : "?";
}

dure_status_t tune_nccl_conf_add(struct tune_nccl_conf *c, enum tune_nccl_coll coll,
                                 size_t min_bytes, size_t max_bytes, enum tune_nccl_algo algo,
                                 enum tune_nccl_proto proto, int nnodes, int nranks)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(c->n < TUNE_NCCL_RULES_MAX, DURE_ERR_ARG, "nccl_tuner.conf: more than %d rules",
               TUNE_NCCL_RULES_MAX);
    DURE_CHECK(min_bytes <= max_bytes, DURE_ERR_ARG,
               "nccl_tuner.conf: %s rule from %zu to %zu bytes is empty", coll_names[coll],
               min_bytes, max_bytes);
    c->r[c->n++] = (struct tune_nccl_rule){coll, min_bytes, max_bytes, algo, proto, -1, nnodes,
                                           nranks, -1, -1, 0};
out:
    return st;
}

dure_status_t tune_nccl_conf_write(const struct tune_nccl_conf *c, const char *comment,
                                   const char *path)
{
    dure_status_t st = DURE_OK;
    struct strbuf sb = STRBUF_INIT;

    strbuf_puts(&sb, "# nccl_tuner.conf for NCCL's example tuner plugin "
                     "(NCCL_TUNER_CONFIG_FILE=THIS_FILE)\n");
    strbuf_prefix_lines(&sb, "# ", comment);
    strbuf_puts(&sb, "# collective,min_bytes,max_bytes,algorithm,protocol,channels,nNodes,"
                     "nRanks\n");
    for (int i = 0; i < c->n; i++) {
        const struct tune_nccl_rule *r = &c->r[i];
        size_t before = sb.len;
        strbuf_printf(&sb, "%s,%zu,%zu,%s,%s,%d,%d,%d\n", coll_names[r->coll], r->min_bytes,
                      r->max_bytes, algo_names[r->algo], proto_names[r->proto], r->channels,
                      r->nnodes, r->nranks);
        DURE_CHECK(sb.failed || sb.len - before <= TUNE_NCCL_LINE_MAX + 1, DURE_ERR_INTERNAL,
                   "nccl_tuner.conf: rule %d is longer than the plugin reads", i + 1);
    }
    DURE_TRY(strbuf_status(&sb));
    DURE_TRY(dure_file_write_atomic(path, sb.buf, sb.len, 0644));
out:
    strbuf_free(&sb);
    return st;
}

/* ---------------------------------------------------------------- parser */

static int lookup(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static void trim(char **s)
{
    while (**s == ' ' || **s == '\t') {
        (*s)++;
    }
    char *e = *s + strlen(*s);
    while (e > *s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) {
        *--e = '\0';
    }
}

/* A decimal integer in [lo, hi] (-1 allowed when any_ok). */
static int parse_long(const char *s, long long lo, long long hi, long long *v)
{
    char *end = NULL;
    if (!*s || !(isdigit((unsigned char)*s) || *s == '-')) {
        return -1;
    }
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || *end || x < lo || x > hi) {
        return -1;
    }
    *v = x;
    return 0;
}

static const char *const field_names[10] = {
    "collective", "min_bytes", "max_bytes", "algorithm", "protocol",
    "channels",   "nNodes",    "nRanks",    "numPipeOps", "regBuff"};

dure_status_t tune_nccl_conf_parse(const char *path, struct tune_nccl_conf *c)
{
    dure_status_t st = DURE_OK;
    FILE *f = NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0;

    c->n = 0;
    f = fopen(path, "r");
    DURE_SYS_TRY(f != NULL, "cannot read NCCL tuner file '%s'", path);
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        DURE_CHECK(len <= TUNE_NCCL_LINE_MAX + 1, DURE_ERR_FORMAT,
                   "%s:%d: the line has %zd characters; the tuner plugin reads at most %d",
                   path, lineno, len - (len > 0 && line[len - 1] == '\n'), TUNE_NCCL_LINE_MAX);
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#') {
            continue;
        }
        char *s = line;
        trim(&s);
        if (!*s) {
            continue;
        }
        DURE_CHECK(*s != '#', DURE_ERR_FORMAT,
                   "%s:%d: a comment must start in the first column: the plugin reads this "
                   "line as a rule", path, lineno);
        char *tok[11];
        int nt = 0;
        for (char *p = s; nt < 11;) {
            tok[nt++] = p;
            char *comma = strchr(p, ',');
            if (!comma) {
                break;
            }
            *comma = '\0';
            p = comma + 1;
        }
        DURE_CHECK(nt >= 8 && nt <= 10, DURE_ERR_FORMAT,
                   "%s:%d: %d fields; a rule has 8 to 10 (collective,min_bytes,max_bytes,"
                   "algorithm,protocol,channels,nNodes,nRanks[,numPipeOps[,regBuff]])",
                   path, lineno, nt);
        for (int i = 0; i < nt; i++) {
            trim(&tok[i]);
        }
        struct tune_nccl_rule r = {.pipeops = -1, .regbuff = -1, .line = lineno};
        int k;
        DURE_CHECK((k = lookup(tok[0], coll_names, TUNE_NCCL_COLL_COUNT)) >= 0, DURE_ERR_FORMAT,
                   "%s:%d: field 1 (collective): '%s' is not one of broadcast, reduce, "
                   "allgather, reducescatter, allreduce", path, lineno, tok[0]);
        r.coll = (enum tune_nccl_coll)k;
        long long v[10] = {0};
        for (int i = 1; i <= 2; i++) {
            DURE_CHECK(parse_long(tok[i], 0, LLONG_MAX, &v[i]) == 0, DURE_ERR_FORMAT,
                       "%s:%d: field %d (%s): '%s' is not a byte count", path, lineno, i + 1,
                       field_names[i], tok[i]);
        }
        r.min_bytes = (size_t)v[1];
        r.max_bytes = (size_t)v[2];
        DURE_CHECK(r.min_bytes <= r.max_bytes, DURE_ERR_FORMAT,
                   "%s:%d: field 2 (min_bytes): %zu is above max_bytes %zu: the rule matches "
                   "nothing", path, lineno, r.min_bytes, r.max_bytes);
        DURE_CHECK((k = lookup(tok[3], algo_names, TUNE_NCCL_ALGO_COUNT)) >= 0, DURE_ERR_FORMAT,
                   "%s:%d: field 4 (algorithm): '%s' is not one of tree, ring, collnet_direct, "
                   "collnet_chain, nvls, nvls_tree, pat", path, lineno, tok[3]);
        r.algo = (enum tune_nccl_algo)k;
        DURE_CHECK((k = lookup(tok[4], proto_names, TUNE_NCCL_PROTO_COUNT)) >= 0,
                   DURE_ERR_FORMAT, "%s:%d: field 5 (protocol): '%s' is not one of ll, ll128, "
                   "simple", path, lineno, tok[4]);
        r.proto = (enum tune_nccl_proto)k;
        for (int i = 5; i < nt; i++) {
            long long hi = i == 9 ? 1 : INT_MAX;
            DURE_CHECK(parse_long(tok[i], -1, hi, &v[i]) == 0 && (v[i] != 0 || i == 9),
                       DURE_ERR_FORMAT, "%s:%d: field %d (%s): '%s' is not %s", path, lineno,
                       i + 1, field_names[i], tok[i],
                       i == 9 ? "-1, 0 or 1" : "-1 (any) or a positive integer");
        }
        r.channels = (int)v[5];
        r.nnodes = (int)v[6];
        r.nranks = (int)v[7];
        r.pipeops = nt > 8 ? (int)v[8] : -1;
        r.regbuff = nt > 9 ? (int)v[9] : -1;
        DURE_CHECK(c->n < TUNE_NCCL_RULES_MAX, DURE_ERR_FORMAT, "%s:%d: more than %d rules",
                   path, lineno, TUNE_NCCL_RULES_MAX);
        c->r[c->n++] = r;
    }
    DURE_SYS_TRY(!ferror(f), "read '%s'", path);
out:
    free(line);
    if (f) {
        fclose(f);
    }
    return st;
}

const struct tune_nccl_rule *tune_nccl_conf_pick(const struct tune_nccl_conf *c,
                                                 enum tune_nccl_coll coll, size_t bytes,
                                                 int nnodes, int nranks)
{
    for (int i = 0; i < c->n; i++) {
        const struct tune_nccl_rule *r = &c->r[i];
        if (r->coll == coll && bytes >= r->min_bytes && bytes <= r->max_bytes &&
            (r->nnodes == -1 || r->nnodes == nnodes) && (r->nranks == -1 || r->nranks == nranks)) {
            return r;
        }
    }
    return NULL;
}
