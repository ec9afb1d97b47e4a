/* common/strmap.c - see strmap.h. */
#include "common/strmap.h"

#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    }
    return h;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t slot_of(char *const *keys, size_t cap, const char *key)
{
    size_t j = (size_t)fnv1a(key) & (cap - 1);
    while (keys[j] && strcmp(keys[j], key) != 0) {
        j = (j + 1) & (cap - 1);
    }
    return j;
}

static dure_status_t grow(struct strmap *m)
{
    dure_status_t st = DURE_OK;
    size_t cap = m->cap ? 2 * m->cap : 64;
    char **key = calloc(cap, sizeof *key);
    int64_t *val = malloc(cap * sizeof *val);
    if (!key || !val) {
        free(key);
        free(val);
        DURE_FAIL(DURE_ERR_NOMEM, "out of memory growing a name table to %zu entries", cap);
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->key[i]) {
            size_t j = slot_of(key, cap, m->key[i]);
            key[j] = m->key[i];
            val[j] = m->val[i];
        }
    }
    free(m->key);
    free(m->val);
    m->key = key;
    m->val = val;
    m->cap = cap;
out:
    return st;
}

dure_status_t strmap_put(struct strmap *m, const char *key, int64_t val, int64_t *old)
{
    dure_status_t st = DURE_OK;
    if (2 * (m->n + 1) > m->cap) {
        DURE_TRY(grow(m));
    }
    size_t j = slot_of(m->key, m->cap, key);
    if (m->key[j]) {
        *old = m->val[j];
        goto out;
    }
    m->key[j] = strdup(key);
    DURE_ALLOC_TRY(m->key[j], strlen(key) + 1);
    m->val[j] = val;
    m->n++;
    *old = -1;
out:
    return st;
}

int64_t strmap_get(const struct strmap *m, const char *key)
{
    if (m->n == 0) {
        return -1;
    }
    size_t j = slot_of(m->key, m->cap, key);
    return m->key[j] ? m->val[j] : -1;
}

void strmap_free(struct strmap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->key[i]);
    }
    free(m->key);
    free(m->val);
    *m = (struct strmap)STRMAP_INIT;
}
