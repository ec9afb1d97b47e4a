/*
 * jobs/jobspec.c - loading a job spec: libinih parse, --set overrides,
 * derived defaults, validation, copies and sweep tasks.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jobs/jobspec_priv.h"

#define SPEC_MAX_BYTES (1 << 20) /* a job spec is a few KiB; refuse the absurd */
#define SWEEP_MAX_TASKS 100000
/*
 * [env] reaches the job through execve: Linux refuses one NAME=VALUE
 * string longer than MAX_ARG_STRLEN (32 pages: 131072 bytes with its NUL)
 * and an environment beyond ARG_MAX (a quarter of the stack limit, usually
 * 2 MiB) with E2BIG, and the job dies with exit 126 far from the cause.
 * Half of that is left for what Slurm and the user's shell add.
 */
#define ENV_VAR_MAX_BYTES 131072
#define ENV_TOTAL_MAX_BYTES (1 << 20)

/* Handed to libinih in place of a value too long for its 200-byte lines. */
#define LONG_VALUE_MARK "\x01long"

/* ------------------------------------------------------------ allocation */

static dure_status_t spec_new(const char *origin, struct dure_jobspec **out)
{
    dure_status_t st = DURE_OK;
    size_t nkeys;
    struct dure_jobspec *spec = NULL;

    jobspec_keys(&nkeys);
    spec = calloc(1, sizeof *spec);
    DURE_ALLOC_TRY(spec, sizeof *spec);
    spec->state = calloc(1, sizeof *spec->state + nkeys * sizeof spec->state->key[0]);
    DURE_ALLOC_TRY(spec->state, sizeof *spec->state + nkeys * sizeof spec->state->key[0]);
    spec->state->nkeys = nkeys;
    spec->origin = strdup(origin);
    DURE_ALLOC_TRY(spec->origin, strlen(origin) + 1);
    *out = spec;
    spec = NULL;
out:
    jobspec_free(spec);
    return st;
}

void jobspec_env_free(struct jobspec_env *env)
{
    for (size_t i = 0; i < env->count; i++) {
        free(env->vars[i].name);
        free(env->vars[i].value);
    }
    free(env->vars);
    env->vars = NULL;
    env->count = 0;
}

static void sweep_release(struct jobspec_sweep *sw)
{
    for (size_t i = 0; i < sw->count; i++) {
        jobspec_list_release(&sw->axes[i].values);
        free(sw->axes[i].dataset);
    }
    free(sw->axes);
    sw->axes = NULL;
    sw->count = 0;
    sw->ntasks = 0;
}

void jobspec_free(struct dure_jobspec *spec)
{
    size_t nkeys;
    const struct jobspec_key *keys = jobspec_keys(&nkeys);
    if (!spec) {
        return;
    }
    for (size_t i = 0; i < nkeys; i++) {
        jobspec_value_release(&keys[i], jobspec_field(spec, &keys[i]));
    }
    jobspec_mixture_free(&spec->mix);
    jobspec_env_free(&spec->env);
    sweep_release(&spec->sweep);
    free(spec->origin);
    free(spec->state);
    free(spec);
}

/* ------------------------------------------------------------ setting values */

static dure_status_t key_assign(struct dure_jobspec *spec, const struct jobspec_key *key,
                                const char *text, const char *where, enum jobspec_src src,
                                int line)
{
    dure_status_t st = DURE_OK;
    DURE_TRY(jobspec_value_parse(key, text, where, jobspec_field(spec, key)));
    spec->state->key[jobspec_key_index(key)].src = src;
    spec->state->key[jobspec_key_index(key)].line = line;
out:
    return st;
}

static dure_status_t set_defaults(struct dure_jobspec *spec)
{
    dure_status_t st = DURE_OK;
    size_t nkeys;
    const struct jobspec_key *keys = jobspec_keys(&nkeys);
    for (size_t i = 0; i < nkeys; i++) {
        const struct jobspec_key *k = &keys[i];
        if (k->flags & JOBSPEC_F_REQUIRED) {
            spec->state->key[i].src = JOBSPEC_SRC_UNSET;
            if (k->type == JOBSPEC_STRING) {
                /* Strings are never NULL, even before a required one is given. */
                char *empty = strdup("");
                DURE_ALLOC_TRY(empty, 1);
                *(char **)jobspec_field(spec, k) = empty;
            }
            continue;
        }
        if (k->type == JOBSPEC_STRING && k->def[0] == '\0') {
            /* Empty defaults skip the key's check (empty means "unset"). */
            char *empty = strdup("");
            DURE_ALLOC_TRY(empty, 1);
            *(char **)jobspec_field(spec, k) = empty;
            spec->state->key[i].src = JOBSPEC_SRC_DEFAULT;
            continue;
        }
        DURE_TRY(key_assign(spec, k, k->def, "built-in default", JOBSPEC_SRC_DEFAULT, 0));
    }
out:
    return st;
}

static int env_name_valid(const char *name)
{
    if (!(isalpha((unsigned char)name[0]) || name[0] == '_')) {
        return 0;
    }
    for (const char *p = name; *p; p++) {
        if (!(isalnum((unsigned char)*p) || *p == '_')) {
            return 0;
        }
    }
    return 1;
}

/* Add or (replace = 1) replace an [env] variable. */
static dure_status_t env_put(struct dure_jobspec *spec, const char *name,
                             const char *value, const char *where, int replace)
{
    dure_status_t st = DURE_OK;
    char what[160];
    char *n = NULL, *v = NULL;

    DURE_CHECK(env_name_valid(name), DURE_ERR_ARG,
               "%s: [env] name '%s' is not a valid environment variable name "
               "([A-Za-z_][A-Za-z0-9_]*)",
               where, name);
    snprintf(what, sizeof what, "env.%s", name);
    DURE_TRY(jobspec_text_check(what, value, where));
    DURE_CHECK(strlen(name) + strlen(value) + 2 <= ENV_VAR_MAX_BYTES, DURE_ERR_ARG,
               "%s: env.%s: %zu bytes: the kernel refuses to start a program with an "
               "environment string (NAME=VALUE) over %d bytes; pass large values in a "
               "file", where, name, strlen(name) + strlen(value) + 1, ENV_VAR_MAX_BYTES - 1);
    v = strdup(value);
    DURE_ALLOC_TRY(v, strlen(value) + 1);
    for (size_t i = 0; i < spec->env.count; i++) {
        if (strcmp(spec->env.vars[i].name, name) == 0) {
            DURE_CHECK(replace, DURE_ERR_ARG, "%s: env.%s set twice", where, name);
            free(spec->env.vars[i].value);
            spec->env.vars[i].value = v;
            v = NULL;
            goto out;
        }
    }
    n = strdup(name);
    DURE_ALLOC_TRY(n, strlen(name) + 1);
    struct jobspec_env_var *vars =
        realloc(spec->env.vars, (spec->env.count + 1) * sizeof *vars);
    DURE_ALLOC_TRY(vars, (spec->env.count + 1) * sizeof *vars);
    spec->env.vars = vars;
    vars[spec->env.count].name = n;
    vars[spec->env.count].value = v;
    spec->env.count++;
    n = v = NULL;
out:
    free(n);
    free(v);
    return st;
}

/* Split "section.key" at the first dot into the two buffers. */
static int split_dotted(const char *dotted, char *sec, size_t ssize, char *name,
                        size_t nsize)
{
    const char *dot = strchr(dotted, '.');
    if (!dot || dot == dotted || !dot[1] || (size_t)(dot - dotted) >= ssize ||
        strlen(dot + 1) >= nsize) {
        return 0;
    }
    memcpy(sec, dotted, (size_t)(dot - dotted));
    sec[dot - dotted] = '\0';
    strcpy(name, dot + 1);
    return 1;
}

static void join_names(char *buf, size_t size, const char *const *names, const char *sep)
{
    size_t n = 0;
    buf[0] = '\0';
    for (const char *const *p = names; *p && n < size; p++) {
        n += (size_t)snprintf(buf + n, size - n, "%s%s", p == names ? "" : sep, *p);
    }
}

/* Key names of one section, for "did you mean" and the list of keys. */
static size_t section_key_names(const char *section, const char **names, size_t cap)
{
    size_t nkeys, n = 0;
    const struct jobspec_key *keys = jobspec_keys(&nkeys);
    for (size_t i = 0; i < nkeys && n + 1 < cap; i++) {
        if (strcmp(keys[i].section, section) == 0) {
            names[n++] = keys[i].name;
        }
    }
    names[n] = NULL;
    return n;
}

static int section_known(const char *section)
{
    if (jobspec_dataset_section(section, NULL)) {
        return 1;
    }
    for (const char *const *s = jobspec_sections(); *s; s++) {
        if (strcmp(*s, section) == 0) {
            return 1;
        }
    }
    return 0;
}

static dure_status_t unknown_section(const char *section, const char *where)
{
    dure_status_t st = DURE_OK;
    char all[256];
    const char *near = jobspec_suggest(section, jobspec_sections());
    join_names(all, sizeof all, jobspec_sections(), ", ");
    DURE_FAIL(DURE_ERR_ARG, "%s: unknown section [%s]%s%s%s; sections: %s", where, section,
              near ? " (did you mean [" : "", near ? near : "", near ? "]?)" : "", all);
out:
    return st;
}

/* The typed key section.name, or an error naming the keys of the section. */
static dure_status_t key_lookup(const char *section, const char *name, const char *where,
                                const struct jobspec_key **out)
{
    dure_status_t st = DURE_OK;
    const char *names[64];
    char all[1024];

    *out = jobspec_key_find(section, name);
    if (*out) {
        goto out;
    }
    if (!section_known(section)) {
        DURE_TRY(unknown_section(section, where));
    }
    section_key_names(section, names, 64);
    const char *near = jobspec_suggest(name, names);
    join_names(all, sizeof all, names, ", ");
    DURE_FAIL(DURE_ERR_ARG, "%s: unknown key '%s' in [%s]%s%s%s; keys of [%s]: %s", where,
              name, section, near ? " (did you mean '" : "", near ? near : "",
              near ? "'?)" : "", section, all);
out:
    return st;
}

/* A [sweep] line: "section.key = v1, v2, ..." */
static dure_status_t sweep_add(struct dure_jobspec *spec, const char *dotted,
                               const char *text, const char *where)
{
    dure_status_t st = DURE_OK;
    char sec[64], name[64], what[160];
    const struct jobspec_key *key = NULL;
    struct jobspec_list values = {NULL, 0};
    union jobspec_scratch scratch;

    char *dataset = NULL;
    DURE_CHECK(split_dotted(dotted, sec, sizeof sec, name, sizeof name), DURE_ERR_ARG,
               "%s: [sweep] key '%s' must name a key as section.key (e.g. optim.lr)",
               where, dotted);
    char *dot = strchr(name, '.');
    if (strcmp(sec, "data") == 0 && dot) {
        /* data.NAME.key: a key of one dataset, which a later section may define. */
        *dot = '\0';
        DURE_TRY(jobspec_dataset_key_lookup(name, dot + 1, where, &key));
        dataset = strdup(name);
        DURE_ALLOC_TRY(dataset, strlen(name) + 1);
        *dot = '.';
    } else {
        DURE_TRY(key_lookup(sec, name, where, &key));
    }
    DURE_CHECK(strcmp(key->section, "slurm") != 0, DURE_ERR_ARG,
               "%s: [sweep] %s: [slurm] keys cannot be swept (the tasks of one job "
               "array share its resources)",
               where, dotted);
    DURE_CHECK(!(strcmp(sec, "run") == 0 && strcmp(name, "dir") == 0), DURE_ERR_ARG,
               "%s: [sweep] run.dir cannot be swept: each task gets run.dir/task-NNN",
               where);
    DURE_CHECK(key->type != JOBSPEC_LIST, DURE_ERR_ARG,
               "%s: [sweep] %s is a list key and cannot be swept", where, dotted);
    for (size_t i = 0; i < spec->sweep.count; i++) {
        const struct jobspec_sweep_axis *ax = &spec->sweep.axes[i];
        DURE_CHECK(ax->key != key || (ax->dataset && dataset && strcmp(ax->dataset, dataset)),
                   DURE_ERR_ARG, "%s: [sweep] %s set twice", where, dotted);
    }
    snprintf(what, sizeof what, "[sweep] %s", dotted);
    DURE_TRY(jobspec_list_parse(text, where, what, &values));
    DURE_CHECK(values.count > 0, DURE_ERR_ARG,
               "%s: [sweep] %s: give one or more values, separated by commas", where,
               dotted);
    struct jobspec_key named = *key;
    char section[80];
    if (dataset) {
        snprintf(section, sizeof section, "data.%s", dataset);
        named.section = section;
    }
    for (size_t i = 0; i < values.count; i++) {
        memset(&scratch, 0, sizeof scratch);
        st = jobspec_value_parse(&named, values.items[i], where, &scratch);
        jobspec_value_release(key, &scratch);
        DURE_TRY(st);
    }
    size_t ntasks = spec->sweep.ntasks ? spec->sweep.ntasks : 1;
    DURE_CHECK(ntasks * values.count <= SWEEP_MAX_TASKS, DURE_ERR_ARG,
               "%s: [sweep] %zu tasks in all: more than %d", where, ntasks * values.count,
               SWEEP_MAX_TASKS);
    struct jobspec_sweep_axis *axes =
        realloc(spec->sweep.axes, (spec->sweep.count + 1) * sizeof *axes);
    DURE_ALLOC_TRY(axes, (spec->sweep.count + 1) * sizeof *axes);
    spec->sweep.axes = axes;
    axes[spec->sweep.count].key = key;
    axes[spec->sweep.count].dataset = dataset;
    axes[spec->sweep.count].values = values;
    dataset = NULL;
    values.items = NULL;
    values.count = 0;
    spec->sweep.count++;
    spec->sweep.ntasks = ntasks * axes[spec->sweep.count - 1].values.count;
out:
    free(dataset);
    jobspec_list_release(&values);
    return st;
}

/* ------------------------------------------------------------ the INI file */

struct parse_ctx {
    struct dure_jobspec *spec;
    const char *text; /* the whole file */
    size_t len, pos;
    int line;                /* the line last handed to libinih (1-based) */
    int long_line;           /* that line was handed over as LONG_VALUE_MARK */
    const char *long_start;  /* LONG_VALUE_MARK's real value: start ... */
    size_t long_len;         /* ... and length */
    int failed;
    dure_status_t status;
};

static void fail_ctx(struct parse_ctx *c, dure_status_t st)
{
    c->failed = 1;
    c->status = st;
}

/*
 * The libinih reader: one line per call, with leading blanks removed (so an
 * indented "key = value" is a key, not libinih's continuation of the previous
 * value). A line too long for libinih's buffer is handed over as
 * "key = LONG_VALUE_MARK" and the handler takes the value from the context
 * (a comment that long, as an empty comment).
 * Section headers are checked here since libinih reports only keys.
 */
static char *ini_read_line(char *str, int num, void *stream)
{
    struct parse_ctx *c = stream;
    char where[300];

    if (c->failed || c->pos >= c->len) {
        return NULL;
    }
    const char *p = c->text + c->pos;
    const char *nl = memchr(p, '\n', c->len - c->pos);
    size_t n = nl ? (size_t)(nl - p) + 1 : c->len - c->pos;
    c->pos += n;
    c->line++;
    c->long_line = 0;
    snprintf(where, sizeof where, "%s:%d", c->spec->origin, c->line);
    while (n > 0 && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    if (n > 0 && *p == '[') {
        const char *close = memchr(p, ']', n);
        if (close) {
            char sec[128];
            const char *b = p + 1, *e = close;
            while (b < e && *b == ' ') {
                b++;
            }
            while (e > b && e[-1] == ' ') {
                e--;
            }
            snprintf(sec, sizeof sec, "%.*s", (int)(e - b), b);
            if (!section_known(sec)) {
                fail_ctx(c, unknown_section(sec, where));
                return NULL;
            }
        }
    }
    if (n + 1 > (size_t)num && (*p == ';' || *p == '#')) {
        /* A comment: its length does not matter, its text is not read. */
        snprintf(str, (size_t)num, "#\n");
        return str;
    }
    if (n + 1 > (size_t)num) {
        const char *eq = memchr(p, '=', n);
        const char *colon = memchr(p, ':', n);
        if (colon && (!eq || colon < eq)) {
            eq = colon;
        }
        if (!eq || (size_t)(eq - p) + sizeof LONG_VALUE_MARK + 4 > (size_t)num) {
            dure_log_error(__FILE__, __LINE__,
                           "%s: line too long (%zu characters) and not 'key = value'",
                           where, n);
            fail_ctx(c, DURE_ERR_ARG);
            return NULL;
        }
        /* The value as libinih would read it: trimmed, cut at " ;". */
        const char *v = eq + 1, *e = p + n;
        while (v < e && (*v == ' ' || *v == '\t')) {
            v++;
        }
        for (const char *q = v; q < e; q++) {
            if (*q == ';' && q > v && (q[-1] == ' ' || q[-1] == '\t')) {
                e = q;
                break;
            }
        }
        while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) {
            e--;
        }
        c->long_line = 1;
        c->long_start = v;
        c->long_len = (size_t)(e - v);
        snprintf(str, (size_t)num, "%.*s= %s\n", (int)(eq - p), p, LONG_VALUE_MARK);
        return str;
    }
    memcpy(str, p, n);
    str[n] = '\0';
    return str;
}

static dure_status_t file_key(struct parse_ctx *c, const char *section, const char *name,
                              const char *value, const char *where)
{
    dure_status_t st = DURE_OK;
    struct dure_jobspec *spec = c->spec;
    const struct jobspec_key *key = NULL;

    DURE_CHECK(section[0] != '\0', DURE_ERR_ARG,
               "%s: key '%s' outside any section: put it under [run], [model], ...", where,
               name);
    if (strcmp(section, "env") == 0) {
        DURE_TRY(env_put(spec, name, value, where, 0));
        goto out;
    }
    if (strcmp(section, "sweep") == 0) {
        DURE_TRY(sweep_add(spec, name, value, where));
        goto out;
    }
    const char *dataset = NULL;
    if (jobspec_dataset_section(section, &dataset)) {
        DURE_TRY(jobspec_dataset_assign(spec, dataset, name, value, where, JOBSPEC_SRC_FILE,
                                        c->line, 1));
        goto out;
    }
    DURE_TRY(key_lookup(section, name, where, &key));
    struct jobspec_origin *o = &spec->state->key[jobspec_key_index(key)];
    DURE_CHECK(o->src != JOBSPEC_SRC_FILE, DURE_ERR_ARG,
               "%s: %s.%s set twice (first at line %d)", where, section, name, o->line);
    DURE_TRY(key_assign(spec, key, value, where, JOBSPEC_SRC_FILE, c->line));
out:
    return st;
}

static int ini_on_key(void *user, const char *section, const char *name, const char *value)
{
    struct parse_ctx *c = user;
    char where[300], sec[128], *v = NULL;
    dure_status_t st;

    if (c->failed) {
        return 0;
    }
    snprintf(where, sizeof where, "%s:%d", c->spec->origin, c->line);
    /* libinih keeps blanks inside the brackets: "[ run ]" is section " run ". */
    while (*section == ' ') {
        section++;
    }
    snprintf(sec, sizeof sec, "%s", section);
    for (size_t n = strlen(sec); n > 0 && sec[n - 1] == ' '; n--) {
        sec[n - 1] = '\0';
    }
    /* The flag, not the text: a value written as the mark's bytes is a value. */
    if (c->long_line) {
        v = strndup(c->long_start, c->long_len);
        if (!v) {
            fail_ctx(c, DURE_ERR_NOMEM);
            return 0;
        }
        value = v;
    }
    st = file_key(c, sec, name, value, where);
    free(v);
    if (st != DURE_OK) {
        fail_ctx(c, st);
        return 0;
    }
    return 1;
}

static dure_status_t parse_text(struct dure_jobspec *spec, const char *text)
{
    dure_status_t st = DURE_OK;
    struct parse_ctx c = {.spec = spec, .text = text, .len = strlen(text)};

    int rc = ini_parse_stream(ini_read_line, &c, ini_on_key, &c);
    if (c.failed) {
        st = c.status;
        /* A libinih syntax error on an earlier line comes first. */
        if (rc > 0 && rc < c.line) {
            DURE_FAIL(DURE_ERR_ARG,
                      "%s:%d: syntax error: expected '[section]', 'key = value' or a "
                      "comment",
                      spec->origin, rc);
        }
        goto out;
    }
    DURE_CHECK(rc != -2, DURE_ERR_NOMEM, "%s: out of memory while parsing", spec->origin);
    DURE_CHECK(rc == 0, DURE_ERR_ARG,
               "%s:%d: syntax error: expected '[section]', 'key = value' or a comment",
               spec->origin, rc);
out:
    return st;
}

/* ------------------------------------------------------------ overrides */

static dure_status_t apply_override(struct dure_jobspec *spec, const char *assignment,
                                    enum jobspec_src src)
{
    dure_status_t st = DURE_OK;
    char where[512], sec[64], name[128];
    char *dotted = NULL, *value = NULL;
    const struct jobspec_key *key = NULL;

    snprintf(where, sizeof where, "--set %s", assignment);
    const char *eq = strchr(assignment, '=');
    DURE_CHECK(eq != NULL, DURE_ERR_ARG,
               "%s: expected section.key=value (e.g. --set optim.lr=1e-3)", where);
    const char *k = assignment;
    while (*k == ' ') {
        k++;
    }
    dotted = strndup(k, (size_t)(eq - k));
    DURE_ALLOC_TRY(dotted, (size_t)(eq - k) + 1);
    /* Same trimming as the INI parser, so a value means the same either way. */
    const char *b = eq + 1;
    while (*b == ' ') {
        b++;
    }
    size_t vn = strlen(b);
    while (vn > 0 && b[vn - 1] == ' ') {
        vn--;
    }
    value = strndup(b, vn);
    DURE_ALLOC_TRY(value, vn + 1);
    for (size_t n = strlen(dotted); n > 0 && dotted[n - 1] == ' '; n--) {
        dotted[n - 1] = '\0';
    }
    DURE_CHECK(split_dotted(dotted, sec, sizeof sec, name, sizeof name), DURE_ERR_ARG,
               "%s: expected section.key=value (e.g. --set optim.lr=1e-3)", where);
    if (strcmp(sec, "env") == 0) {
        DURE_TRY(env_put(spec, name, value, where, 1));
        goto out;
    }
    DURE_CHECK(strcmp(sec, "sweep") != 0, DURE_ERR_ARG,
               "%s: a sweep is defined in the [sweep] section of the file, not by --set",
               where);
    char *dot = strchr(name, '.');
    if (strcmp(sec, "data") == 0 && dot) {
        *dot = '\0';
        DURE_TRY(jobspec_dataset_assign(spec, name, dot + 1, value, where, src, 0, 1));
        goto out;
    }
    DURE_TRY(key_lookup(sec, name, where, &key));
    DURE_TRY(key_assign(spec, key, value, where, src, 0));
out:
    free(dotted);
    free(value);
    return st;
}

/* ------------------------------------------------------------ resolution */

static enum jobspec_src src_of(const struct dure_jobspec *spec, const char *sec,
                               const char *name)
{
    return spec->state->key[jobspec_key_index(jobspec_key_find(sec, name))].src;
}

static void mark_derived(struct dure_jobspec *spec, const char *sec, const char *name)
{
    spec->state->key[jobspec_key_index(jobspec_key_find(sec, name))].src =
        JOBSPEC_SRC_DERIVED;
}

static int derive_me(const struct dure_jobspec *spec, const char *sec, const char *name,
                     const char *value)
{
    enum jobspec_src s = src_of(spec, sec, name);
    return s == JOBSPEC_SRC_DEFAULT || s == JOBSPEC_SRC_DERIVED || value[0] == '\0';
}

/* *field = a b c (concatenated), freeing the old value. */
static dure_status_t replace_string(char **field, const char *a, const char *b,
                                    const char *c)
{
    dure_status_t st = DURE_OK;
    char *s = NULL;
    DURE_CHECK(asprintf(&s, "%s%s%s", a, b, c) >= 0, DURE_ERR_NOMEM,
               "out of memory deriving a job-spec value");
    free(*field);
    *field = s;
out:
    return st;
}

/* Fill in values derived from other keys (unless set explicitly). */
static dure_status_t resolve(struct dure_jobspec *spec)
{
    dure_status_t st = DURE_OK;

    if (derive_me(spec, "run", "dir", spec->run.dir)) {
        DURE_TRY(replace_string(&spec->run.dir, "runs/", spec->run.name, ""));
        mark_derived(spec, "run", "dir");
    }
    if (derive_me(spec, "checkpoint", "dir", spec->checkpoint.dir)) {
        DURE_TRY(replace_string(&spec->checkpoint.dir, spec->run.dir, "/checkpoints", ""));
        mark_derived(spec, "checkpoint", "dir");
    }
    if (derive_me(spec, "slurm", "job_name", spec->slurm.job_name)) {
        DURE_TRY(replace_string(&spec->slurm.job_name, spec->run.name, "", ""));
        for (char *p = spec->slurm.job_name; *p; p++) {
            if (!isalnum((unsigned char)*p) && !strchr("._-", *p)) {
                *p = '_';
            }
        }
        mark_derived(spec, "slurm", "job_name");
    }
    enum jobspec_src ts = src_of(spec, "slurm", "ntasks_per_node");
    if (spec->slurm.ntasks_per_node == 0 || ts == JOBSPEC_SRC_DERIVED) {
        spec->slurm.ntasks_per_node =
            spec->slurm.gpus_per_node > 0 ? spec->slurm.gpus_per_node : 1;
        mark_derived(spec, "slurm", "ntasks_per_node");
    }
out:
    return st;
}

/*
 * Where a key's value came from, for messages: "job.ini:12", "job.ini
 * (--set)", or `label` itself (defaults, and every key of a sweep task,
 * whose label names the task).
 */
static void key_where(const struct dure_jobspec *spec, const char *label, const char *sec,
                      const char *name, char *buf, size_t size)
{
    const struct jobspec_origin *o =
        &spec->state->key[jobspec_key_index(jobspec_key_find(sec, name))];
    if (strcmp(label, spec->origin) != 0) {
        snprintf(buf, size, "%s", label);
    } else if (o->src == JOBSPEC_SRC_FILE) {
        snprintf(buf, size, "%s:%d", spec->origin, o->line);
    } else if (o->src == JOBSPEC_SRC_SET) {
        snprintf(buf, size, "%s (--set)", spec->origin);
    } else {
        snprintf(buf, size, "%s", label);
    }
}

/* Rules that involve more than one key. `label` names the spec in messages. */
static dure_status_t validate(const struct dure_jobspec *spec, const char *label)
{
    dure_status_t st = DURE_OK;
    size_t nkeys;
    const struct jobspec_key *keys = jobspec_keys(&nkeys);
    char w[400];

    DURE_TRY(jobspec_mixture_validate(spec, label));
    for (size_t i = 0; i < nkeys; i++) {
        /* data.path: unless [data.NAME] sections name the datasets. */
        int mixed = spec->mix.count && strcmp(keys[i].section, "data") == 0;
        DURE_CHECK(!(keys[i].flags & JOBSPEC_F_REQUIRED) || mixed ||
                       spec->state->key[i].src != JOBSPEC_SRC_UNSET,
                   DURE_ERR_ARG, "%s: %s.%s is required: %s (or [data.NAME] sections for a "
                   "mixture)", label, keys[i].section, keys[i].name, keys[i].help);
    }
    size_t env_bytes = 0;
    for (size_t i = 0; i < spec->env.count; i++) {
        env_bytes += strlen(spec->env.vars[i].name) + strlen(spec->env.vars[i].value) + 2;
    }
    DURE_CHECK(env_bytes <= ENV_TOTAL_MAX_BYTES, DURE_ERR_ARG,
               "%s: [env] holds %zu bytes of variables, more than %d: with what Slurm and "
               "the shell add, the job's environment would pass the kernel's limit "
               "(ARG_MAX) and no program would start; pass large values in files",
               label, env_bytes, ENV_TOTAL_MAX_BYTES);
    key_where(spec, label, "model", "n_heads", w, sizeof w);
    DURE_CHECK(spec->model.d_model % spec->model.n_heads == 0, DURE_ERR_ARG,
               "%s: model.n_heads = %d does not divide model.d_model = %d", w,
               spec->model.n_heads, spec->model.d_model);
    key_where(spec, label, "optim", "min_lr", w, sizeof w);
    DURE_CHECK(spec->optim.min_lr <= spec->optim.lr, DURE_ERR_ARG,
               "%s: optim.min_lr = %g is above optim.lr = %g", w, spec->optim.min_lr,
               spec->optim.lr);
    key_where(spec, label, "optim", "micro_batch", w, sizeof w);
    DURE_CHECK(spec->optim.global_batch % spec->optim.micro_batch == 0, DURE_ERR_ARG,
               "%s: optim.micro_batch = %d does not divide optim.global_batch = %d", w,
               spec->optim.micro_batch, spec->optim.global_batch);
    key_where(spec, label, "slurm", "ntasks_per_node", w, sizeof w);
    DURE_CHECK(spec->slurm.gpus_per_node == 0 ||
                   spec->slurm.ntasks_per_node == spec->slurm.gpus_per_node,
               DURE_ERR_ARG,
               "%s: slurm.ntasks_per_node = %d but slurm.gpus_per_node = %d: dure runs "
               "one rank per GPU (leave ntasks_per_node at 0)",
               w, spec->slurm.ntasks_per_node, spec->slurm.gpus_per_node);
    key_where(spec, label, "slurm", "min_nodes", w, sizeof w);
    DURE_CHECK(spec->slurm.min_nodes <= spec->slurm.nodes, DURE_ERR_ARG,
               "%s: slurm.min_nodes = %d is above slurm.nodes = %d", w,
               spec->slurm.min_nodes, spec->slurm.nodes);
    DURE_CHECK(spec->slurm.min_nodes == 0 || spec->run.elastic, DURE_ERR_ARG,
               "%s: slurm.min_nodes = %d needs run.elastic = true (a run that may shrink)",
               w, spec->slurm.min_nodes);
    long limit = 0;
    if (jobspec_slurm_time_parse(spec->slurm.time, &limit) == DURE_OK && limit > 0) {
        key_where(spec, label, "slurm", "signal_lead_s", w, sizeof w);
        DURE_CHECK(spec->slurm.signal_lead_s < limit, DURE_ERR_ARG,
                   "%s: slurm.signal_lead_s = %d is not below slurm.time = %s (%ld s)", w,
                   spec->slurm.signal_lead_s, spec->slurm.time, limit);
    }
out:
    return st;
}

/* ------------------------------------------------------------ copies */

static dure_status_t spec_clone(const struct dure_jobspec *src, struct dure_jobspec **out)
{
    dure_status_t st = DURE_OK;
    size_t nkeys;
    const struct jobspec_key *keys = jobspec_keys(&nkeys);
    struct dure_jobspec *d = NULL;

    DURE_TRY(spec_new(src->origin, &d));
    for (size_t i = 0; i < nkeys; i++) {
        DURE_TRY(jobspec_value_copy(&keys[i], jobspec_field_const(src, &keys[i]),
                                    jobspec_field(d, &keys[i])));
        d->state->key[i] = src->state->key[i];
    }
    DURE_TRY(jobspec_mixture_copy(&d->mix, &src->mix));
    for (size_t i = 0; i < src->env.count; i++) {
        DURE_TRY(env_put(d, src->env.vars[i].name, src->env.vars[i].value, src->origin, 0));
    }
    if (src->sweep.count) {
        d->sweep.axes = calloc(src->sweep.count, sizeof *d->sweep.axes);
        DURE_ALLOC_TRY(d->sweep.axes, src->sweep.count * sizeof *d->sweep.axes);
        for (size_t i = 0; i < src->sweep.count; i++) {
            struct jobspec_key list_key = {.type = JOBSPEC_LIST};
            d->sweep.axes[i].key = src->sweep.axes[i].key;
            d->sweep.count = i + 1;
            if (src->sweep.axes[i].dataset) {
                d->sweep.axes[i].dataset = strdup(src->sweep.axes[i].dataset);
                DURE_ALLOC_TRY(d->sweep.axes[i].dataset, strlen(src->sweep.axes[i].dataset) + 1);
            }
            DURE_TRY(jobspec_value_copy(&list_key, &src->sweep.axes[i].values,
                                        &d->sweep.axes[i].values));
        }
        d->sweep.ntasks = src->sweep.ntasks;
    }
    *out = d;
    d = NULL;
out:
    jobspec_free(d);
    return st;
}

/* Exchange the contents of two specs (callers keep their pointers). */
static void spec_swap(struct dure_jobspec *a, struct dure_jobspec *b)
{
    struct dure_jobspec t = *a;
    *a = *b;
    *b = t;
}

/* ------------------------------------------------------------ sweeps */

static dure_status_t sweep_task_build(const struct dure_jobspec *spec, size_t index,
                                      struct dure_jobspec **out)
{
    dure_status_t st = DURE_OK;
    struct dure_jobspec *t = NULL;
    char label[512], digits[32];
    struct strbuf desc = STRBUF_INIT;

    DURE_CHECK(index < spec->sweep.ntasks, DURE_ERR_ARG,
               "%s: sweep task %zu does not exist (%zu tasks)", spec->origin, index,
               spec->sweep.ntasks);
    DURE_TRY(spec_clone(spec, &t));
    size_t stride = spec->sweep.ntasks;
    for (size_t a = 0; a < spec->sweep.count; a++) {
        const struct jobspec_sweep_axis *ax = &spec->sweep.axes[a];
        stride /= ax->values.count;
        const char *v = ax->values.items[(index / stride) % ax->values.count];
        if (ax->dataset) {
            strbuf_printf(&desc, "%sdata.%s.%s=%s", a ? ", " : "", ax->dataset, ax->key->name,
                          v);
            DURE_TRY(jobspec_dataset_assign(t, ax->dataset, ax->key->name, v, spec->origin,
                                            JOBSPEC_SRC_SWEEP, 0, 0));
            continue;
        }
        strbuf_printf(&desc, "%s%s.%s=%s", a ? ", " : "", ax->key->section, ax->key->name,
                      v);
        DURE_TRY(key_assign(t, ax->key, v, spec->origin, JOBSPEC_SRC_SWEEP, 0));
    }
    DURE_TRY(strbuf_status(&desc));
    snprintf(digits, sizeof digits, "%zu", index);
    if (src_of(t, "run", "name") != JOBSPEC_SRC_SWEEP) {
        DURE_TRY(replace_string(&t->run.name, spec->run.name, "-", digits));
    }
    snprintf(digits, sizeof digits, "task-%03zu", index);
    DURE_TRY(replace_string(&t->run.dir, spec->run.dir, "/", digits));
    t->state->key[jobspec_key_index(jobspec_key_find("run", "dir"))].src =
        JOBSPEC_SRC_SWEEP;
    if (!derive_me(t, "checkpoint", "dir", t->checkpoint.dir) &&
        src_of(t, "checkpoint", "dir") != JOBSPEC_SRC_SWEEP) {
        /* An explicit checkpoint.dir gets the task's subdirectory too:
         * tasks sharing one would resume from, and prune, each other's
         * checkpoints (the same shapes pass the resume check). */
        DURE_TRY(replace_string(&t->checkpoint.dir, spec->checkpoint.dir, "/", digits));
    }
    sweep_release(&t->sweep);
    DURE_TRY(resolve(t));
    snprintf(label, sizeof label, "%s: [sweep] task %zu (%s)", spec->origin, index,
             strbuf_str(&desc));
    DURE_TRY(validate(t, label));
    *out = t;
    t = NULL;
out:
    strbuf_free(&desc);
    jobspec_free(t);
    return st;
}

dure_status_t jobspec_sweep_task(const struct dure_jobspec *spec, size_t index,
                                 struct dure_jobspec **out)
{
    *out = NULL;
    return sweep_task_build(spec, index, out);
}

/* ------------------------------------------------------------ public */

static dure_status_t finish(struct dure_jobspec *spec)
{
    dure_status_t st = DURE_OK;
    struct dure_jobspec *task = NULL;

    DURE_TRY(resolve(spec));
    DURE_TRY(validate(spec, spec->origin));
    /* Every sweep task must be valid too: better now than at array start. */
    for (size_t i = 0; i < spec->sweep.ntasks; i++) {
        DURE_TRY(sweep_task_build(spec, i, &task));
        jobspec_free(task);
        task = NULL;
    }
out:
    jobspec_free(task);
    return st;
}

dure_status_t jobspec_load_string(const char *text, const char *origin,
                                  const char *const *overrides,
                                  struct dure_jobspec **out)
{
    dure_status_t st = DURE_OK;
    struct dure_jobspec *spec = NULL;

    *out = NULL;
    DURE_TRY(spec_new(origin, &spec));
    DURE_TRY(set_defaults(spec));
    DURE_TRY(parse_text(spec, text));
    for (size_t i = 0; overrides && overrides[i]; i++) {
        DURE_TRY(apply_override(spec, overrides[i], JOBSPEC_SRC_SET));
    }
    DURE_TRY(finish(spec));
    *out = spec;
    spec = NULL;
out:
    jobspec_free(spec);
    return st;
}

dure_status_t jobspec_load(const char *path, const char *const *overrides,
                           struct dure_jobspec **out)
{
    dure_status_t st = DURE_OK;
    FILE *f = NULL;
    char *text = NULL;
    struct stat sb;

    *out = NULL;
    f = fopen(path, "rb");
    DURE_SYS_TRY(f != NULL, "cannot open job spec '%s'", path);
    DURE_SYS_TRY(fstat(fileno(f), &sb) == 0, "cannot stat job spec '%s'", path);
    DURE_CHECK(S_ISREG(sb.st_mode), DURE_ERR_ARG, "job spec '%s' is not a regular file",
               path);
    DURE_CHECK(sb.st_size <= SPEC_MAX_BYTES, DURE_ERR_ARG,
               "job spec '%s' is %lld bytes: more than %d", path, (long long)sb.st_size,
               SPEC_MAX_BYTES);
    text = malloc((size_t)sb.st_size + 1);
    DURE_ALLOC_TRY(text, (size_t)sb.st_size + 1);
    size_t n = fread(text, 1, (size_t)sb.st_size, f);
    DURE_SYS_TRY(!ferror(f), "cannot read job spec '%s'", path);
    text[n] = '\0';
    DURE_CHECK(strlen(text) == n, DURE_ERR_ARG,
               "job spec '%s' contains a NUL byte: not a text file", path);
    DURE_TRY(jobspec_load_string(text, path, overrides, out));
out:
    if (f) {
        fclose(f);
    }
    free(text);
    return st;
}

dure_status_t jobspec_set(struct dure_jobspec *spec, const char *assignment)
{
    dure_status_t st = DURE_OK;
    struct dure_jobspec *t = NULL;

    DURE_TRY(spec_clone(spec, &t));
    DURE_TRY(apply_override(t, assignment, JOBSPEC_SRC_SET));
    DURE_TRY(finish(t));
    spec_swap(spec, t);
out:
    jobspec_free(t);
    return st;
}
