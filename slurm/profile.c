/* slurm/profile.c - site environment profiles from an INI file. */
#include "slurm/profile.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

dure_status_t slurm_profiles_path(char *buf, size_t size)
{
    dure_status_t st = DURE_OK;
    char exe[PATH_MAX];
    const char *env = getenv("DURE_PROFILES");

    if (env && env[0]) {
        DURE_CHECK(strlen(env) < size, DURE_ERR_ARG, "DURE_PROFILES is too long");
        snprintf(buf, size, "%s", env);
        goto out;
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    DURE_SYS_TRY(n > 0, "cannot find the dure executable (/proc/self/exe)");
    exe[n] = '\0';
    int w = snprintf(buf, size, "%s/../slurm/profiles.ini", dirname(exe));
    DURE_CHECK(w > 0 && (size_t)w < size, DURE_ERR_ARG, "profile path too long");
    DURE_CHECK(access(buf, R_OK) == 0, DURE_ERR_IO,
               "no site profile file: %s is not readable and DURE_PROFILES is not set",
               buf);
out:
    return st;
}

struct profile_ctx {
    const char *want;  /* NULL: collect names */
    struct jobspec_env *env;
    char *names;       /* collect: comma list */
    size_t names_size;
    int found;
};

static int env_name_ok(const char *n)
{
    if (!(isalpha((unsigned char)n[0]) || n[0] == '_')) {
        return 0;
    }
    for (; *n; n++) {
        if (!isalnum((unsigned char)*n) && *n != '_') {
            return 0;
        }
    }
    return 1;
}

/* A profile name: letters, digits, '_', '-', '.' (the list of names is
 * comma-separated, so a name must not hold a comma). */
static int profile_name_ok(const char *n)
{
    if (!n[0] || strlen(n) > 64) {
        return 0;
    }
    for (; *n; n++) {
        if (!isalnum((unsigned char)*n) && !strchr("_-.", *n)) {
            return 0;
        }
    }
    return 1;
}

static int on_profile_key(void *user, const char *section, const char *name,
                          const char *value)
{
    struct profile_ctx *c = user;
    if (!profile_name_ok(section)) {
        return 0;
    }
    if (!c->want) {
        size_t len = strlen(c->names);
        char needle[256];
        snprintf(needle, sizeof needle, ",%s,", section);
        /* names is "a,b,c," while collecting: add each section once. */
        int seen = strncmp(c->names, needle + 1, strlen(needle + 1)) == 0 ||
                   strstr(c->names, needle) != NULL;
        if (!seen && len + strlen(needle) < c->names_size) {
            strcat(c->names, needle + 1);
        }
        return 1;
    }
    if (strcmp(section, c->want) != 0) {
        return 1;
    }
    c->found = 1;
    if (!env_name_ok(name)) {
        return 0;
    }
    struct jobspec_env_var *v =
        realloc(c->env->vars, (c->env->count + 1) * sizeof *c->env->vars);
    if (!v) {
        return 0;
    }
    c->env->vars = v;
    v[c->env->count].name = strdup(name);
    v[c->env->count].value = strdup(value);
    c->env->count++;
    if (!v[c->env->count - 1].name || !v[c->env->count - 1].value) {
        return 0;
    }
    return 1;
}

static dure_status_t parse_profiles(const char *file, struct profile_ctx *c)
{
    dure_status_t st = DURE_OK;
    char path[PATH_MAX];

    if (!file) {
        DURE_TRY(slurm_profiles_path(path, sizeof path));
        file = path;
    }
    int rc = ini_parse(file, on_profile_key, c);
    DURE_CHECK(rc != -1, DURE_ERR_IO, "cannot open the profile file '%s'", file);
    DURE_CHECK(rc != -2, DURE_ERR_NOMEM, "out of memory reading '%s'", file);
    DURE_CHECK(rc == 0, DURE_ERR_ARG,
               "%s:%d: bad profile line: expected [profile] (letters, digits, '_', '-', "
               "'.'; at most 64) or NAME = VALUE with NAME an environment variable name",
               file, rc);
out:
    return st;
}

dure_status_t slurm_profile_names(const char *file, char *buf, size_t size)
{
    dure_status_t st = DURE_OK;
    struct profile_ctx c = {.names = buf, .names_size = size};
    buf[0] = '\0';
    DURE_TRY(parse_profiles(file, &c));
    /* "a,b,c," -> "a, b, c" */
    char tmp[1024];
    size_t j = 0;
    for (size_t i = 0; buf[i] && j + 3 < sizeof tmp; i++) {
        if (buf[i] == ',') {
            if (buf[i + 1]) {
                tmp[j++] = ',';
                tmp[j++] = ' ';
            }
        } else {
            tmp[j++] = buf[i];
        }
    }
    tmp[j] = '\0';
    snprintf(buf, size, "%s", tmp);
out:
    return st;
}

dure_status_t slurm_profile_load(const char *name, const char *file,
                                 struct jobspec_env *out)
{
    dure_status_t st = DURE_OK;
    struct jobspec_env env = {NULL, 0};
    struct profile_ctx c = {.want = name, .env = &env};
    char names[512] = "";
    char path[PATH_MAX];

    out->vars = NULL;
    out->count = 0;
    if (!file) {
        DURE_TRY(slurm_profiles_path(path, sizeof path));
        file = path;
    }
    DURE_TRY(parse_profiles(file, &c));
    if (!c.found) {
        DURE_TRY(slurm_profile_names(file, names, sizeof names));
        DURE_FAIL(DURE_ERR_ARG, "slurm.profile = '%s': no profile [%s] in %s; profiles: %s",
                  name, name, file, names[0] ? names : "(none)");
    }
    *out = env;
    env.vars = NULL;
    env.count = 0;
out:
    jobspec_env_free(&env);
    return st;
}
