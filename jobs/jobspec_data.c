/*
 * jobs/jobspec_data.c - the [data.NAME] sections of a job spec: several
 * datasets trained together (a mixture), each with the dataset keys of the
 * key table (path, layout, keys, weight, val_path).
 *
 * A dataset exists from the first key given for it (in the file, by --set
 * data.NAME.key=value); its other keys take their defaults. Values are
 * converted and checked by the same code as every other key, and each
 * remembers where it came from.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/jobspec_priv.h"

#define NAME_MAX_LEN 32

int jobspec_dataset_section(const char *section, const char **name)
{
    if (strncmp(section, "data.", 5) != 0) {
        return 0;
    }
    const char *n = section + 5;
    size_t len = strlen(n);
    if (len == 0 || len > NAME_MAX_LEN) {
        return 0;
    }
    for (const char *p = n; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') {
            return 0;
        }
    }
    if (name) {
        *name = n;
    }
    return 1;
}

void *jobspec_dataset_field(struct jobspec_dataset *d, const struct jobspec_key *key)
{
    return (char *)d + key->offset;
}

const void *jobspec_dataset_field_const(const struct jobspec_dataset *d,
                                        const struct jobspec_key *key)
{
    return (const char *)d + key->offset;
}

dure_status_t jobspec_dataset_key_lookup(const char *dname, const char *kname,
                                         const char *where, const struct jobspec_key **out)
{
    dure_status_t st = DURE_OK;
    size_t n;
    const struct jobspec_key *keys = jobspec_dataset_keys(&n);
    const char *names[16];
    char all[256] = "";
    for (size_t i = 0; i < n; i++) {
        if (strcmp(keys[i].name, kname) == 0) {
            *out = &keys[i];
            goto out;
        }
        names[i] = keys[i].name;
        size_t used = strlen(all);
        snprintf(all + used, sizeof all - used, "%s%s", i ? ", " : "", keys[i].name);
    }
    names[n] = NULL;
    const char *near = jobspec_suggest(kname, names);
    DURE_FAIL(DURE_ERR_ARG, "%s: unknown key '%s' in [data.%s]%s%s%s; keys of a dataset: %s",
              where, kname, dname, near ? " (did you mean '" : "", near ? near : "",
              near ? "'?)" : "", all);
out:
    return st;
}

static struct jobspec_dataset *find(struct jobspec_mixture *m, const char *name)
{
    for (size_t i = 0; i < m->count; i++) {
        if (strcmp(m->sets[i].name, name) == 0) {
            return &m->sets[i];
        }
    }
    return NULL;
}

static void dataset_release(struct jobspec_dataset *d)
{
    size_t n;
    const struct jobspec_key *keys = jobspec_dataset_keys(&n);
    for (size_t i = 0; i < n; i++) {
        jobspec_value_release(&keys[i], jobspec_dataset_field(d, &keys[i]));
    }
    free(d->name);
    free(d->origin);
    memset(d, 0, sizeof *d);
}

/* A new dataset at the end of m with every key at its default. */
static dure_status_t add(struct jobspec_mixture *m, const char *name, const char *where,
                         struct jobspec_dataset **out)
{
    dure_status_t st = DURE_OK;
    size_t n;
    const struct jobspec_key *keys = jobspec_dataset_keys(&n);
    DURE_CHECK(m->count < JOBSPEC_MAX_DATASETS, DURE_ERR_ARG,
               "%s: [data.%s]: more than %d datasets in one mixture", where, name,
               JOBSPEC_MAX_DATASETS);
    struct jobspec_dataset *sets = realloc(m->sets, (m->count + 1) * sizeof *sets);
    DURE_ALLOC_TRY(sets, (m->count + 1) * sizeof *sets);
    m->sets = sets;
    struct jobspec_dataset *d = &sets[m->count];
    memset(d, 0, sizeof *d);
    m->count++;
    d->name = strdup(name);
    d->origin = calloc(n, sizeof *d->origin);
    DURE_ALLOC_TRY(d->name && d->origin ? d->name : NULL, strlen(name) + n * 8);
    for (size_t i = 0; i < n; i++) {
        const struct jobspec_key *k = &keys[i];
        if (k->flags & JOBSPEC_F_REQUIRED) {
            d->origin[i].src = JOBSPEC_SRC_UNSET;
            if (k->type == JOBSPEC_STRING) {
                *(char **)jobspec_dataset_field(d, k) = strdup("");
                DURE_ALLOC_TRY(*(char **)jobspec_dataset_field(d, k), 1);
            }
            continue;
        }
        if (k->type == JOBSPEC_STRING && k->def[0] == '\0') {
            *(char **)jobspec_dataset_field(d, k) = strdup("");
            DURE_ALLOC_TRY(*(char **)jobspec_dataset_field(d, k), 1);
        } else {
            DURE_TRY(jobspec_value_parse(k, k->def, "built-in default",
                                         jobspec_dataset_field(d, k)));
        }
        d->origin[i].src = JOBSPEC_SRC_DEFAULT;
    }
    *out = d;
out:
    return st;
}

dure_status_t jobspec_dataset_assign(struct dure_jobspec *spec, const char *dname,
                                     const char *kname, const char *text, const char *where,
                                     enum jobspec_src src, int line, int create)
{
    dure_status_t st = DURE_OK;
    size_t n;
    const struct jobspec_key *keys = jobspec_dataset_keys(&n), *key = NULL;
    char section[64];
    snprintf(section, sizeof section, "data.%s", dname);
    DURE_CHECK(jobspec_dataset_section(section, NULL), DURE_ERR_ARG,
               "%s: dataset name '%s' in [data.%s]: use letters, digits, '_' and '-' (at "
               "most %d)", where, dname, dname, NAME_MAX_LEN);
    DURE_TRY(jobspec_dataset_key_lookup(dname, kname, where, &key));
    struct jobspec_dataset *d = find(&spec->mix, dname);
    if (!d) {
        DURE_CHECK(create, DURE_ERR_ARG, "%s: no dataset [data.%s] to set %s in", where,
                   dname, kname);
        DURE_TRY(add(&spec->mix, dname, where, &d));
    }
    struct jobspec_origin *o = &d->origin[key - keys];
    DURE_CHECK(!(src == JOBSPEC_SRC_FILE && o->src == JOBSPEC_SRC_FILE), DURE_ERR_ARG,
               "%s: data.%s.%s set twice (first at line %d)", where, dname, kname, o->line);
    /* Messages name the dataset: data.cnc.weight, not data.NAME.weight. */
    struct jobspec_key named = *key;
    named.section = section;
    DURE_TRY(jobspec_value_parse(&named, text, where, jobspec_dataset_field(d, key)));
    o->src = src;
    o->line = line;
out:
    return st;
}

void jobspec_mixture_free(struct jobspec_mixture *m)
{
    for (size_t i = 0; i < m->count; i++) {
        dataset_release(&m->sets[i]);
    }
    free(m->sets);
    m->sets = NULL;
    m->count = 0;
}

dure_status_t jobspec_mixture_copy(struct jobspec_mixture *dst,
                                   const struct jobspec_mixture *src)
{
    dure_status_t st = DURE_OK;
    size_t n;
    const struct jobspec_key *keys = jobspec_dataset_keys(&n);
    for (size_t i = 0; i < src->count; i++) {
        const struct jobspec_dataset *s = &src->sets[i];
        struct jobspec_dataset *d = NULL;
        DURE_TRY(add(dst, s->name, "copy", &d));
        for (size_t k = 0; k < n; k++) {
            jobspec_value_release(&keys[k], jobspec_dataset_field(d, &keys[k]));
            DURE_TRY(jobspec_value_copy(&keys[k], jobspec_dataset_field_const(s, &keys[k]),
                                        jobspec_dataset_field(d, &keys[k])));
            d->origin[k] = s->origin[k];
        }
    }
out:
    return st;
}

dure_status_t jobspec_mixture_validate(const struct dure_jobspec *spec, const char *label)
{
    dure_status_t st = DURE_OK;
    size_t n;
    const struct jobspec_key *keys = jobspec_dataset_keys(&n);
    const struct jobspec_mixture *m = &spec->mix;
    struct strbuf v = STRBUF_INIT;
    /* [data]'s keys of the one dataset (path, layout, keys, val_path): a
     * mixture reads them from its sections only, so one set is refused, not
     * left unused. */
    for (size_t k = 0; m->count && k < n; k++) {
        const struct jobspec_key *one = jobspec_key_find("data", keys[k].name);
        if (!one) {
            continue;
        }
        strbuf_reset(&v);
        jobspec_value_append(&v, one, jobspec_field_const(spec, one));
        DURE_TRY(strbuf_status(&v));
        DURE_CHECK(strcmp(strbuf_str(&v), one->def ? one->def : "") == 0, DURE_ERR_ARG,
                   "%s: data.%s = '%s' and [data.%s] both describe datasets: a mixture "
                   "gives each dataset its %s in its own [data.NAME] section",
                   label, one->name, strbuf_str(&v), m->sets[0].name, one->name);
    }
    for (size_t i = 0; i < m->count; i++) {
        for (size_t k = 0; k < n; k++) {
            DURE_CHECK(!(keys[k].flags & JOBSPEC_F_REQUIRED) ||
                           m->sets[i].origin[k].src != JOBSPEC_SRC_UNSET,
                       DURE_ERR_ARG, "%s: data.%s.%s is required: %s", label,
                       m->sets[i].name, keys[k].name, keys[k].help);
        }
    }
out:
    strbuf_free(&v);
    return st;
}

void jobspec_mixture_append_ini(struct strbuf *sb, const struct dure_jobspec *spec)
{
    size_t n;
    const struct jobspec_key *keys = jobspec_dataset_keys(&n);
    for (size_t i = 0; i < spec->mix.count; i++) {
        const struct jobspec_dataset *d = &spec->mix.sets[i];
        strbuf_printf(sb, "\n[data.%s]\n", d->name);
        for (size_t k = 0; k < n; k++) {
            strbuf_printf(sb, "%s = ", keys[k].name);
            jobspec_value_append(sb, &keys[k], jobspec_dataset_field_const(d, &keys[k]));
            strbuf_putc(sb, '\n');
        }
    }
}

void jobspec_mixture_append_hash(struct strbuf *sb, const struct dure_jobspec *spec,
                                 int result_only)
{
    size_t n;
    const struct jobspec_key *keys = jobspec_dataset_keys(&n);
    for (size_t i = 0; i < spec->mix.count; i++) {
        const struct jobspec_dataset *d = &spec->mix.sets[i];
        for (size_t k = 0; k < n; k++) {
            if (result_only && !(keys[k].flags & JOBSPEC_F_RESULT)) {
                continue;
            }
            strbuf_printf(sb, "data.%s.%s=", d->name, keys[k].name);
            jobspec_value_append(sb, &keys[k], jobspec_dataset_field_const(d, &keys[k]));
            strbuf_putc(sb, '\n');
        }
    }
}

void jobspec_mixture_append_table(struct strbuf *sb, const struct dure_jobspec *spec,
                                  int wval)
{
    size_t n;
    const struct jobspec_key *keys = jobspec_dataset_keys(&n);
    struct strbuf val = STRBUF_INIT;
    for (size_t i = 0; i < spec->mix.count; i++) {
        const struct jobspec_dataset *d = &spec->mix.sets[i];
        for (size_t k = 0; k < n; k++) {
            char name[96];
            snprintf(name, sizeof name, "data.%s.%s", d->name, keys[k].name);
            strbuf_reset(&val);
            jobspec_value_append(&val, &keys[k], jobspec_dataset_field_const(d, &keys[k]));
            strbuf_printf(sb, "%-28s %-*s ", name, wval, strbuf_str(&val));
            jobspec_origin_append(sb, spec, &d->origin[k]);
            strbuf_putc(sb, '\n');
        }
    }
    if (val.failed) {
        sb->failed = 1;
    }
    strbuf_free(&val);
}

size_t jobspec_datasets(const struct dure_jobspec *spec, struct jobspec_dataset_ref *out)
{
    if (spec->mix.count == 0) {
        out[0] = (struct jobspec_dataset_ref){
            .name = "data", .path = spec->data.path, .val_path = spec->data.val_path,
            .layout = spec->data.layout, .keys = &spec->data.keys, .weight = 1.0,
        };
        return 1;
    }
    for (size_t i = 0; i < spec->mix.count; i++) {
        const struct jobspec_dataset *d = &spec->mix.sets[i];
        out[i] = (struct jobspec_dataset_ref){
            .name = d->name, .path = d->path, .val_path = d->val_path,
            .layout = d->layout, .keys = &d->keys, .weight = d->weight,
        };
    }
    return spec->mix.count;
}

dure_status_t jobspec_data_files(const struct dure_jobspec *spec, glob_t *g)
{
    dure_status_t st = DURE_OK;
    struct jobspec_dataset_ref sets[JOBSPEC_MAX_DATASETS];
    size_t n = jobspec_datasets(spec, sets), globs = 0;
    for (size_t i = 0; i < 2 * n; i++) {
        const char *p = i % 2 ? sets[i / 2].val_path : sets[i / 2].path;
        if (p[0]) {
            DURE_CHECK(glob(p, GLOB_NOCHECK | (globs++ ? GLOB_APPEND : 0), NULL, g) == 0,
                       DURE_ERR_IO, "cannot expand data path '%s'", p);
        }
    }
out:
    return st;
}
