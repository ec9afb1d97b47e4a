/*
 * jobs/jobspec_dump.c - a resolved job spec as INI text, as a table, and as
 * a stable hash.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "jobs/jobspec_priv.h"

static void append_ini(struct strbuf *sb, const struct dure_jobspec *spec)
{
    size_t nkeys;
    const struct jobspec_key *keys = jobspec_keys(&nkeys);
    const char *cur = "";

    for (size_t i = 0; i < nkeys; i++) {
        const struct jobspec_key *k = &keys[i];
        if (strcmp(cur, k->section) != 0) {
            if (strcmp(cur, "data") == 0) {
                jobspec_mixture_append_ini(sb, spec);
            }
            strbuf_printf(sb, "%s[%s]\n", i ? "\n" : "", k->section);
            cur = k->section;
        }
        if (spec->state->key[i].src == JOBSPEC_SRC_UNSET) {
            continue; /* data.path of a mixture: "" would not load back */
        }
        strbuf_printf(sb, "%s = ", k->name);
        jobspec_value_append(sb, k, jobspec_field_const(spec, k));
        strbuf_putc(sb, '\n');
    }
    if (spec->env.count) {
        strbuf_puts(sb, "\n[env]\n");
        for (size_t i = 0; i < spec->env.count; i++) {
            strbuf_printf(sb, "%s = %s\n", spec->env.vars[i].name, spec->env.vars[i].value);
        }
    }
    if (spec->sweep.count) {
        strbuf_puts(sb, "\n[sweep]\n");
        for (size_t i = 0; i < spec->sweep.count; i++) {
            const struct jobspec_sweep_axis *ax = &spec->sweep.axes[i];
            if (ax->dataset) {
                strbuf_printf(sb, "data.%s.%s = ", ax->dataset, ax->key->name);
            } else {
                strbuf_printf(sb, "%s.%s = ", ax->key->section, ax->key->name);
            }
            for (size_t v = 0; v < ax->values.count; v++) {
                strbuf_printf(sb, "%s%s", v ? ", " : "", ax->values.items[v]);
            }
            strbuf_putc(sb, '\n');
        }
    }
}

dure_status_t jobspec_format_ini(const struct dure_jobspec *spec, char **text, size_t *len)
{
    struct strbuf sb = STRBUF_INIT;
    append_ini(&sb, spec);
    return strbuf_detach(&sb, text, len);
}

dure_status_t jobspec_write_ini(const struct dure_jobspec *spec, FILE *out)
{
    dure_status_t st = DURE_OK;
    char *text = NULL;
    size_t len = 0;

    DURE_TRY(jobspec_format_ini(spec, &text, &len));
    DURE_SYS_TRY(fwrite(text, 1, len, out) == len, "cannot write the job spec");
out:
    free(text);
    return st;
}

dure_status_t jobspec_save(const struct dure_jobspec *spec, const char *path)
{
    dure_status_t st = DURE_OK;
    char *text = NULL;
    size_t len = 0;

    DURE_TRY(jobspec_format_ini(spec, &text, &len));
    DURE_TRY(dure_file_write_atomic(path, text, len, 0644));
out:
    free(text);
    return st;
}

dure_status_t jobspec_value_format(const struct dure_jobspec *spec,
                                   const struct jobspec_key *key, char *buf, size_t size)
{
    dure_status_t st = DURE_OK;
    struct strbuf sb = STRBUF_INIT;

    jobspec_value_append(&sb, key, jobspec_field_const(spec, key));
    DURE_TRY(strbuf_status(&sb));
    DURE_CHECK(sb.len < size, DURE_ERR_ARG,
               "%s.%s: value of %zu characters does not fit in %zu bytes", key->section,
               key->name, sb.len, size);
    memcpy(buf, strbuf_str(&sb), sb.len + 1);
out:
    strbuf_free(&sb);
    return st;
}

void jobspec_origin_append(struct strbuf *sb, const struct dure_jobspec *spec,
                           const struct jobspec_origin *o)
{
    switch (o->src) {
    case JOBSPEC_SRC_FILE:
        strbuf_printf(sb, "%s:%d", spec->origin, o->line);
        break;
    case JOBSPEC_SRC_SET:
        strbuf_puts(sb, "--set");
        break;
    case JOBSPEC_SRC_SWEEP:
        strbuf_puts(sb, "sweep");
        break;
    case JOBSPEC_SRC_DERIVED:
        strbuf_puts(sb, "derived");
        break;
    default:
        strbuf_puts(sb, "default");
        break;
    }
}

dure_status_t jobspec_print_table(const struct dure_jobspec *spec, FILE *out)
{
    dure_status_t st = DURE_OK;
    size_t nkeys;
    const struct jobspec_key *keys = jobspec_keys(&nkeys);
    struct strbuf sb = STRBUF_INIT, val = STRBUF_INIT;
    size_t wval = 5;

    for (size_t i = 0; i < nkeys; i++) {
        strbuf_reset(&val);
        jobspec_value_append(&val, &keys[i], jobspec_field_const(spec, &keys[i]));
        if (val.len > wval) {
            wval = val.len;
        }
    }
    wval = wval > 48 ? 48 : wval;
    strbuf_printf(&sb, "%-28s %-*s %s\n", "key", (int)wval, "value", "source");
    for (size_t i = 0; i < nkeys; i++) {
        char name[96];
        jobspec_key_fullname(&keys[i], name, sizeof name);
        strbuf_reset(&val);
        jobspec_value_append(&val, &keys[i], jobspec_field_const(spec, &keys[i]));
        strbuf_printf(&sb, "%-28s %-*s ", name, (int)wval, strbuf_str(&val));
        jobspec_origin_append(&sb, spec, &spec->state->key[i]);
        strbuf_putc(&sb, '\n');
        if (i + 1 == nkeys || strcmp(keys[i].section, keys[i + 1].section) != 0) {
            if (strcmp(keys[i].section, "data") == 0) {
                jobspec_mixture_append_table(&sb, spec, (int)wval);
            }
        }
    }
    for (size_t i = 0; i < spec->env.count; i++) {
        char name[300];
        snprintf(name, sizeof name, "env.%s", spec->env.vars[i].name);
        strbuf_printf(&sb, "%-28s %-*s %s\n", name, (int)wval, spec->env.vars[i].value,
                      "[env]");
    }
    for (size_t i = 0; i < spec->sweep.count; i++) {
        const struct jobspec_sweep_axis *ax = &spec->sweep.axes[i];
        strbuf_printf(&sb, "sweep %s%s%s.%s: %zu values\n", ax->dataset ? "data." : "",
                      ax->dataset ? ax->dataset : "", ax->dataset ? "" : ax->key->section,
                      ax->key->name, ax->values.count);
    }
    DURE_TRY(strbuf_status(&sb));
    DURE_TRY(strbuf_status(&val));
    DURE_SYS_TRY(fwrite(sb.buf, 1, sb.len, out) == sb.len, "cannot print the job spec");
out:
    strbuf_free(&sb);
    strbuf_free(&val);
    return st;
}

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static int env_cmp(const void *a, const void *b)
{
    const struct jobspec_env_var *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

dure_status_t jobspec_hash(const struct dure_jobspec *spec, enum jobspec_hash_scope scope,
                           uint64_t *hash)
{
    dure_status_t st = DURE_OK;
    size_t nkeys;
    const struct jobspec_key *keys = jobspec_keys(&nkeys);
    struct strbuf sb = STRBUF_INIT;
    const struct jobspec_env_var **env = NULL;

    /* One "section.key=value" line per covered key, as the INI dump lists
     * them: table order, the [data.NAME] keys after [data]'s, unset keys
     * (data.path of a mixture) left out; in exact mode the result scope
     * leaves out the layout keys too. */
    for (size_t i = 0; i < nkeys; i++) {
        int covered = scope == JOBSPEC_HASH_ALL || (keys[i].flags & JOBSPEC_F_RESULT);
        /* Exact mode's results do not depend on the parallel layout. */
        if (scope == JOBSPEC_HASH_RESULT && spec->run.exact &&
            (keys[i].flags & JOBSPEC_F_LAYOUT)) {
            covered = 0;
        }
        if (covered && spec->state->key[i].src != JOBSPEC_SRC_UNSET) {
            strbuf_printf(&sb, "%s.%s=", keys[i].section, keys[i].name);
            jobspec_value_append(&sb, &keys[i], jobspec_field_const(spec, &keys[i]));
            strbuf_putc(&sb, '\n');
        }
        if (strcmp(keys[i].section, "data") == 0 &&
            (i + 1 == nkeys || strcmp(keys[i + 1].section, "data") != 0)) {
            jobspec_mixture_append_hash(&sb, spec, scope == JOBSPEC_HASH_RESULT);
        }
    }
    if (scope == JOBSPEC_HASH_ALL) {
        /* Variables are independent of their order in the file. */
        if (spec->env.count) {
            env = malloc(spec->env.count * sizeof *env);
            DURE_ALLOC_TRY(env, spec->env.count * sizeof *env);
            for (size_t i = 0; i < spec->env.count; i++) {
                env[i] = &spec->env.vars[i];
            }
            qsort(env, spec->env.count, sizeof *env, env_cmp);
        }
        for (size_t i = 0; i < spec->env.count; i++) {
            strbuf_printf(&sb, "env.%s=%s\n", env[i]->name, env[i]->value);
        }
        /* The order of sweep axes numbers the tasks: it is kept. */
        for (size_t i = 0; i < spec->sweep.count; i++) {
            const struct jobspec_sweep_axis *ax = &spec->sweep.axes[i];
            if (ax->dataset) {
                strbuf_printf(&sb, "sweep.data.%s.%s=", ax->dataset, ax->key->name);
            } else {
                strbuf_printf(&sb, "sweep.%s.%s=", ax->key->section, ax->key->name);
            }
            for (size_t v = 0; v < ax->values.count; v++) {
                struct jobspec_key one = *ax->key;
                union jobspec_scratch scratch;
                memset(&scratch, 0, sizeof scratch);
                /* Canonical spelling of each value ("1e-3" and "0.001" alike). */
                DURE_TRY(jobspec_value_parse(&one, ax->values.items[v], spec->origin,
                                             &scratch));
                strbuf_puts(&sb, v ? "," : "");
                jobspec_value_append(&sb, &one, &scratch);
                jobspec_value_release(&one, &scratch);
            }
            strbuf_putc(&sb, '\n');
        }
    }
    DURE_TRY(strbuf_status(&sb));
    *hash = fnv1a(0xcbf29ce484222325ULL, strbuf_str(&sb), sb.len);
out:
    free(env);
    strbuf_free(&sb);
    return st;
}

void jobspec_hash_hex(uint64_t hash, char out[17])
{
    snprintf(out, 17, "%016" PRIx64, hash);
}
