/*
 * launcher/preflight_report.c - `dure preflight`'s judge and report: every
 * node against every check from what the probes saw (preflight.c), the
 * node x check table, the reasons, the verdict, the exclusion list.
 */
#include "launcher/preflight_priv.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"

static const char *const check_names[PF_NCHECK] = {
    [PF_VERSIONS] = "versions", [PF_CPUS] = "cpus",       [PF_GPUS] = "gpus",
    [PF_MEMORY] = "memory",     [PF_RUNDIR] = "run dir",  [PF_DATA] = "data",
    [PF_CLOCK] = "clock",       [PF_SIGNAL] = "usr2",     [PF_NETWORK] = "network",
};

const char *preflight_check_name(enum pf_check c)
{
    return (unsigned)c < PF_NCHECK ? check_names[c] : "?";
}

static void cell(struct pf_node *nd, enum pf_check c, enum pf_state s, const char *value,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void cell(struct pf_node *nd, enum pf_check c, enum pf_state s, const char *value,
                 const char *fmt, ...)
{
    struct pf_cell *x = &nd->cell[c];
    va_list ap;
    x->state = s;
    snprintf(x->value, sizeof x->value, "%s", value);
    x->why[0] = '\0';
    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(x->why, sizeof x->why, fmt, ap);
        va_end(ap);
    }
    if (s == PF_BAD) {
        nd->bad = 1;
    }
}

static double gib(double b) { return b / (double)(1ull << 30); }

/* Append sep and text to a cell value (buf[cap], *used so far), cut at cap. */
static void value_add(char *buf, size_t cap, size_t *used, const char *sep, const char *text)
{
    if (*used < cap) {
        int w = snprintf(buf + *used, cap - *used, "%s%s", *used ? sep : "", text);
        *used += w > 0 ? (size_t)w : 0;
    }
}

/* The value most ranks hold (ties: the lowest rank's); `at` gives rank r's. */
static const char *majority(const struct pf_probe *all, int size,
                            const char *(*at)(const struct pf_probe *))
{
    const char *best = NULL;
    int best_n = 0;
    for (int r = 0; r < size; r++) {
        int n = 0;
        for (int q = 0; q < size; q++) {
            n += strcmp(at(&all[q]), at(&all[r])) == 0;
        }
        if (n > best_n) {
            best_n = n;
            best = at(&all[r]);
        }
    }
    return best ? best : "";
}

static const char *sha_of(const struct pf_probe *p) { return p->exe_sha; }
static const char *versions_of(const struct pf_probe *p) { return p->versions; }
static const char *coll_env_of(const struct pf_probe *p) { return p->coll_env; }

static void judge_versions(const struct dure_topo *t, const struct pf_probe *all,
                           struct pf_node *nd, int n)
{
    const char *sha = majority(all, t->size, sha_of);
    const char *ver = majority(all, t->size, versions_of);
    const char *env = majority(all, t->size, coll_env_of);
    char value[40];
    for (int r = 0; r < t->size; r++) {
        if (t->node_of[r] != n) {
            continue;
        }
        if (strcmp(all[r].exe_sha, sha) != 0) {
            snprintf(value, sizeof value, "binary %.8s", all[r].exe_sha);
            cell(nd, PF_VERSIONS, PF_BAD, value,
                 "rank %d runs another dure binary: sha256 %.16s..., the other nodes' "
                 "%.16s...", r, all[r].exe_sha, sha);
            return;
        }
        if (strcmp(all[r].versions, ver) != 0) {
            cell(nd, PF_VERSIONS, PF_BAD, "libraries",
                 "rank %d links other libraries: '%s', the other nodes '%s'", r,
                 all[r].versions, ver);
            return;
        }
        if (strcmp(all[r].coll_env, env) != 0) {
            cell(nd, PF_VERSIONS, PF_BAD, "environment",
                 "rank %d's environment for dure's collectives is '%s', the other ranks' "
                 "'%s': every rank must resolve the same algorithm table and ring segment",
                 r, all[r].coll_env, env);
            return;
        }
    }
    snprintf(value, sizeof value, "dure %s", all[t->leader[n]].dure);
    cell(nd, PF_VERSIONS, PF_OK, value, NULL);
}

static void judge_cpus(const struct dure_topo *t, const struct pf_probe *all, struct pf_node *nd,
                       int n)
{
    char value[40] = "";
    size_t used = 0;
    for (int r = 0; r < t->size; r++) {
        if (t->node_of[r] != n) {
            continue;
        }
        char num[16];
        snprintf(num, sizeof num, "%d", all[r].ncpus);
        value_add(value, sizeof value, &used, "+", num);
        if (all[r].cpu_state == PF_BAD) {
            cell(nd, PF_CPUS, PF_BAD, value, "rank %d: %s", r, all[r].cpu_why);
            return;
        }
    }
    for (int r = 0; r < t->size; r++) {
        int sharing = 0;
        if (t->node_of[r] != n) {
            continue;
        }
        for (int q = 0; q < t->size; q++) {
            cpu_set_t both;
            if (t->node_of[q] != n) {
                continue;
            }
            if (CPU_EQUAL(&all[q].cpus, &all[r].cpus)) {
                sharing++;
                continue;
            }
            CPU_AND(&both, &all[q].cpus, &all[r].cpus);
            if (CPU_COUNT(&both) > 0) {
                cell(nd, PF_CPUS, PF_BAD, value,
                     "ranks %d and %d are bound to overlapping CPU sets (%d and %d CPUs, %d "
                     "shared)", r, q, all[r].ncpus, all[q].ncpus, CPU_COUNT(&both));
                return;
            }
        }
        if (sharing > all[r].ncpus) {
            cell(nd, PF_CPUS, PF_BAD, value,
                 "%d ranks share the same %d CPU(s) (rank %d and others): oversubscribed; "
                 "ask for more CPUs per node or fewer ranks",
                 sharing, all[r].ncpus, r);
            return;
        }
    }
    cell(nd, PF_CPUS, PF_OK, value, NULL);
}

static void judge_gpus(const struct dure_topo *t, const struct pf_probe *all, struct pf_node *nd,
                       int n)
{
    char value[40] = "";
    size_t used = 0;
    int any = 0;
    for (int r = 0; r < t->size; r++) {
        if (t->node_of[r] != n) {
            continue;
        }
        if (all[r].gpu_state == PF_NA) {
            continue;
        }
        any = 1;
        value_add(value, sizeof value, &used, ",", all[r].gpu);
        if (all[r].gpu_state == PF_BAD) {
            cell(nd, PF_GPUS, PF_BAD, value, "rank %d: %s", r, all[r].gpu_why);
            return;
        }
        for (int q = r + 1; q < t->size; q++) {
            if (t->node_of[q] == n && strcmp(all[q].gpu, all[r].gpu) == 0) {
                cell(nd, PF_GPUS, PF_BAD, value,
                     "ranks %d and %d would both drive GPU %s: bind one GPU per rank "
                     "(slurm.gpus_per_node renders --gpu-bind)", r, q, all[r].gpu);
                return;
            }
        }
    }
    cell(nd, PF_GPUS, any ? PF_OK : PF_NA, any ? value : "cpu job", NULL);
}

static void judge_memory(const struct dure_topo *t, const struct pf_probe *p, struct pf_node *nd,
                         int n)
{
    char value[40];
    if (p->mem_state != PF_OK || p->mem_avail < 0) {
        cell(nd, PF_MEMORY, PF_NA, "?", "no estimate: %s",
             p->mem_state != PF_OK ? p->mem_why : "MemAvailable unreadable");
        return;
    }
    double need = (double)p->mem_need * t->count[n];
    snprintf(value, sizeof value, "%.2f/%.1fG", gib(need), gib((double)p->mem_avail));
    if (need > (double)p->mem_avail) {
        cell(nd, PF_MEMORY, PF_BAD, value,
             "the job needs %.2f GiB here (%.2f GiB per rank x %d), but %.2f GiB are available",
             gib(need), gib((double)p->mem_need), t->count[n], gib((double)p->mem_avail));
        return;
    }
    cell(nd, PF_MEMORY, PF_OK, value, NULL);
}

static void judge_data(const struct dure_topo *t, const struct pf_probe *all, struct pf_node *nd,
                       int n)
{
    const struct pf_probe *p = &all[t->leader[n]];
    char value[40];
    const char *ref = NULL;
    int ref_n = 0;
    if (p->data_state != PF_OK) {
        cell(nd, PF_DATA, PF_BAD, "missing", "%s", p->data_why);
        return;
    }
    for (int a = 0; a < t->nodes; a++) {
        const struct pf_probe *pa = &all[t->leader[a]];
        int k = 0;
        if (pa->data_state != PF_OK) {
            continue;
        }
        for (int b = 0; b < t->nodes; b++) {
            k += all[t->leader[b]].data_state == PF_OK &&
                 strcmp(all[t->leader[b]].data_hex, pa->data_hex) == 0;
        }
        if (k > ref_n) {
            ref_n = k;
            ref = pa->data_hex;
        }
    }
    snprintf(value, sizeof value, "%.8s", p->data_hex);
    if (ref && strcmp(ref, p->data_hex) != 0) {
        cell(nd, PF_DATA, PF_BAD, value,
             "the dataset differs from the other nodes' (%.1f MB, sampled sha256 %.16s... "
             "against %.16s... on %d node(s))",
             (double)p->data_bytes / 1e6, p->data_hex, ref, ref_n);
        return;
    }
    cell(nd, PF_DATA, PF_OK, value, NULL);
}

static void judge_signal(const struct dure_topo *t, const struct pf_probe *all,
                         struct pf_node *nd, int n)
{
    enum pf_state s = PF_NA;
    const char *why = all[t->leader[n]].usr2_why;
    for (int r = 0; r < t->size; r++) {
        if (t->node_of[r] != n || all[r].usr2 == PF_NA) {
            continue;
        }
        if (all[r].usr2 == PF_BAD) {
            cell(nd, PF_SIGNAL, PF_BAD, "lost", "%s", all[r].usr2_why);
            return;
        }
        s = PF_OK;
    }
    cell(nd, PF_SIGNAL, s, s == PF_OK ? "received" : "-", s == PF_NA ? "%s" : NULL, why);
}

/* Pairs of neighbouring nodes: node n is in pairs n-1 and n (mod nodes). */
static void judge_network(const struct dure_topo *t, const struct pf_probe *all,
                          const struct pf_shared *sh, const struct pf_options *o,
                          struct pf_node *nd, int n)
{
    const struct pf_probe *p = &all[t->leader[n]];
    char value[40], intra[24] = "-";
    const int npairs = t->nodes == 2 ? 1 : t->nodes;
    double worst = -1, best = -1;
    if (sh->coll_env_differs) {
        cell(nd, PF_NETWORK, PF_NA, "-",
             "not measured: the ranks' environments for dure's collectives differ (versions)");
        return;
    }
    if (p->intra_gbs >= 0) {
        snprintf(intra, sizeof intra, "%.2f", p->intra_gbs);
    }
    if (t->nodes > 1) {
        const int ks[2] = {(n - 1 + t->nodes) % t->nodes % npairs, n % npairs};
        for (int i = 0; i < 2; i++) {
            double g = sh->pair_gbs[ks[i]];
            worst = worst < 0 || g < worst ? g : worst;
            best = g > best ? g : best;
        }
        if (worst < best) {
            snprintf(value, sizeof value, "%s/%.3f-%.3f", intra, worst, best);
        } else {
            snprintf(value, sizeof value, "%s/%.3f", intra, best);
        }
    } else {
        snprintf(value, sizeof value, "%s/-", intra);
    }
    if (o->min_intra_gbs > 0 && p->intra_gbs >= 0 && p->intra_gbs < o->min_intra_gbs) {
        cell(nd, PF_NETWORK, PF_BAD, value,
             "all-reduce within the node reaches %.3f GB/s busbw, below the site's minimum "
             "%.3f (DURE_PREFLIGHT_MIN_INTRA_GBS)", p->intra_gbs, o->min_intra_gbs);
        return;
    }
    if (o->min_inter_gbs > 0 && t->nodes > 1 && best < o->min_inter_gbs) {
        cell(nd, PF_NETWORK, PF_BAD, value,
             "every link of this node is slow: %.3f GB/s at best to its neighbours, below the "
             "site's minimum %.3f (DURE_PREFLIGHT_MIN_INTER_GBS)", best, o->min_inter_gbs);
        return;
    }
    cell(nd, PF_NETWORK, PF_OK, value, NULL);
}

dure_status_t preflight_judge(const struct dure_topo *t, const struct pf_probe *all,
                              const struct pf_shared *sh, const struct pf_options *o,
                              struct pf_report *rep)
{
    dure_status_t st = DURE_OK;
    char value[40];
    rep->nodes = t->nodes;
    rep->ranks = t->size;
    rep->node = calloc((size_t)t->nodes, sizeof *rep->node);
    DURE_ALLOC_TRY(rep->node, (size_t)t->nodes * sizeof *rep->node);
    for (int n = 0; n < t->nodes; n++) {
        struct pf_node *nd = &rep->node[n];
        const struct pf_probe *p = &all[t->leader[n]];
        snprintf(nd->host, sizeof nd->host, "%s", t->host[n]);
        dure_topo_node_ranks(t, n, nd->ranks, sizeof nd->ranks);
        judge_versions(t, all, nd, n);
        judge_cpus(t, all, nd, n);
        judge_gpus(t, all, nd, n);
        judge_memory(t, p, nd, n);
        cell(nd, PF_RUNDIR, p->rundir_state, p->rundir_state == PF_OK ? "same" : "no",
             p->rundir_state == PF_OK ? NULL : "%s", p->rundir_why);
        judge_data(t, all, nd, n);
        double off = sh->clock_offset[n];
        snprintf(value, sizeof value, "%+.3fs", off);
        if (fabs(off) > o->max_skew_s) {
            cell(nd, PF_CLOCK, PF_BAD, value,
                 "the clock is %+.3f s off rank 0's (%s), more than %.3f s (--max-clock-skew)",
                 off, t->host[0], o->max_skew_s);
        } else {
            cell(nd, PF_CLOCK, PF_OK, value, NULL);
        }
        judge_signal(t, all, nd, n);
        judge_network(t, all, sh, o, nd, n);
        rep->bad_nodes += nd->bad;
    }
    /* Slow between nodes as a whole, with no one node to blame: all of them. */
    if (o->min_inter_gbs > 0 && sh->inter_gbs >= 0 && sh->inter_gbs < o->min_inter_gbs &&
        rep->bad_nodes == 0) {
        for (int n = 0; n < t->nodes; n++) {
            struct pf_node *nd = &rep->node[n];
            cell(nd, PF_NETWORK, PF_BAD, nd->cell[PF_NETWORK].value,
                 "all-reduce between the nodes reaches %.3f GB/s busbw, below the site's "
                 "minimum %.3f (DURE_PREFLIGHT_MIN_INTER_GBS)", sh->inter_gbs,
                 o->min_inter_gbs);
        }
        rep->bad_nodes = t->nodes;
    }
out:
    return st;
}

void preflight_report_free(struct pf_report *rep)
{
    if (rep) {
        free(rep->node);
        memset(rep, 0, sizeof *rep);
    }
}

/* ---------------------------------------------------------------- output */

static const char *mark(enum pf_state s)
{
    return s == PF_OK ? "\u2713" : s == PF_BAD ? "\u2717" : "-";
}

void preflight_print(const struct pf_report *rep, FILE *out)
{
    int w[PF_NCHECK], wn = 4, wr = 5;
    for (int c = 0; c < PF_NCHECK; c++) {
        w[c] = (int)strlen(check_names[c]);
    }
    for (int n = 0; n < rep->nodes; n++) {
        const struct pf_node *nd = &rep->node[n];
        wn = (int)strlen(nd->host) > wn ? (int)strlen(nd->host) : wn;
        wr = (int)strlen(nd->ranks) > wr ? (int)strlen(nd->ranks) : wr;
        for (int c = 0; c < PF_NCHECK; c++) {
            int len = (int)strlen(nd->cell[c].value) + 2; /* mark, space, value */
            w[c] = len > w[c] ? len : w[c];
        }
    }
    fprintf(out, "%-*s  %-*s", wn, "node", wr, "ranks");
    for (int c = 0; c < PF_NCHECK; c++) {
        fprintf(out, "  %-*s", w[c], check_names[c]);
    }
    fputc('\n', out);
    for (int n = 0; n < rep->nodes; n++) {
        const struct pf_node *nd = &rep->node[n];
        fprintf(out, "%-*s  %-*s", wn, nd->host, wr, nd->ranks);
        for (int c = 0; c < PF_NCHECK; c++) {
            const struct pf_cell *x = &nd->cell[c];
            /* the mark is one column wide however many bytes it takes */
            fprintf(out, "  %s %-*s", mark(x->state), w[c] - 2, x->value);
        }
        fputc('\n', out);
    }
    fprintf(out, "(network: all-reduce busbw within the node / exchange rate with its "
                 "neighbour nodes, slowest-fastest link, GB/s; memory: estimate for the node's "
                 "ranks / available)\n");
    for (int n = 0; n < rep->nodes; n++) {
        for (int c = 0; c < PF_NCHECK; c++) {
            const struct pf_cell *x = &rep->node[n].cell[c];
            if (x->state == PF_BAD) {
                fprintf(out, "%s: %s: %s\n", rep->node[n].host, check_names[c], x->why);
            }
        }
    }
    if (rep->bad_nodes == 0) {
        fprintf(out, "verdict: PASS: %d node(s), %d rank(s): every check passed\n", rep->nodes,
                rep->ranks);
        return;
    }
    fprintf(out, "verdict: FAIL: %d of %d node(s) bad:", rep->bad_nodes, rep->nodes);
    for (int n = 0; n < rep->nodes; n++) {
        const struct pf_node *nd = &rep->node[n];
        if (!nd->bad) {
            continue;
        }
        fprintf(out, " %s (", nd->host);
        const char *sep = "";
        for (int c = 0; c < PF_NCHECK; c++) {
            if (nd->cell[c].state == PF_BAD) {
                fprintf(out, "%s%s", sep, check_names[c]);
                sep = ", ";
            }
        }
        fputc(')', out);
    }
    fputc('\n', out);
}

/* `host` is one of the lines of text. */
static int listed(const char *text, const char *host)
{
    size_t l = strlen(host);
    for (const char *p = text; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
        if (strncmp(p, host, l) == 0 && (p[l] == '\n' || p[l] == '\0')) {
            return 1;
        }
    }
    return 0;
}

dure_status_t preflight_write_bad_nodes(const struct pf_report *rep, const char *path,
                                        int *written)
{
    dure_status_t st = DURE_OK;
    char *text = NULL, buf[4096];
    size_t len = 0, got;
    FILE *f = NULL;
    *written = 0;
    if (rep->bad_nodes == rep->nodes) {
        goto out;
    }
    f = fopen(path, "r");
    DURE_SYS_TRY(f || errno == ENOENT, "cannot read the exclusion list '%s'", path);
    text = calloc(1, 1);
    DURE_ALLOC_TRY(text, 1);
    while (f && (got = fread(buf, 1, sizeof buf, f)) > 0) {
        char *bigger = realloc(text, len + got + 1);
        DURE_ALLOC_TRY(bigger, len + got + 1);
        text = bigger;
        memcpy(text + len, buf, got);
        len += got;
        text[len] = '\0';
    }
    DURE_SYS_TRY(!f || !ferror(f), "cannot read the exclusion list '%s'", path);
    {
        size_t room = len + 1 + (size_t)rep->nodes * (DURE_TOPO_HOST_MAX + 2);
        char *bigger = realloc(text, room);
        DURE_ALLOC_TRY(bigger, room);
        text = bigger;
    }
    if (len > 0 && text[len - 1] != '\n') {
        text[len++] = '\n';
        text[len] = '\0';
    }
    for (int n = 0; n < rep->nodes; n++) {
        if (rep->node[n].bad && !listed(text, rep->node[n].host)) {
            len += (size_t)sprintf(text + len, "%s\n", rep->node[n].host);
            (*written)++;
        }
    }
    DURE_TRY(dure_file_write_atomic(path, text, len, 0644));
out:
    if (f) {
        fclose(f);
    }
    free(text);
    return st;
}
