/*
 * tests/fuzz/fuzz_profile.c - the site-profile parser (slurm/profiles.ini,
 * $DURE_PROFILES; slurm.profile in a job spec).
 *
 * Input: the profile file.
 *
 * Properties:
 *   - slurm_profile_names and slurm_profile_load fail with a message, or:
 *   - the names are ", "-separated, each once, each a section of the file;
 *   - every listed profile loads, or is refused with DURE_ERR_ARG (a
 *     variable name that is not an environment variable name); a loaded
 *     profile has at least one variable, every name [A-Za-z_][A-Za-z0-9_]*;
 *   - a name that is not listed is refused with DURE_ERR_ARG naming it.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/jobspec.h"
#include "slurm/profile.h"
#include "tests/fuzz/support.h"

#define MAX_LOADS 4

static int env_name(const char *n)
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

static void check_load(const char *name, const char *path, int listed)
{
    struct jobspec_env env = {NULL, 0};
    fuzz_error_reset();
    dure_status_t st = fuzz_expect_error(slurm_profile_load(name, path, &env),
                                         "slurm_profile_load");
    if (st != DURE_OK) {
        FUZZ_ASSERT(st == DURE_ERR_ARG, "profile '%s': %s", name, dure_status_name(st));
        FUZZ_ASSERT(env.vars == NULL && env.count == 0, "a refused profile gave variables");
        FUZZ_ASSERT(listed || strstr(dure_last_error(), "no profile"),
                    "unknown profile '%s': message '%s'", name, dure_last_error());
        return;
    }
    FUZZ_ASSERT(listed, "profile '%s' loads but is not listed", name);
    FUZZ_ASSERT(env.count >= 1, "profile '%s' loads empty", name);
    for (size_t i = 0; i < env.count; i++) {
        FUZZ_ASSERT(env_name(env.vars[i].name) && env.vars[i].value != NULL,
                    "profile '%s' gives variable '%s'", name, env.vars[i].name);
    }
    jobspec_env_free(&env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], names[512];
    const char *loads[MAX_LOADS];
    int n = 0;

    fuzz_write_file("profiles.ini", data, size, path, sizeof path);
    fuzz_error_reset();
    dure_status_t st = fuzz_expect_error(slurm_profile_names(path, names, sizeof names),
                                         "slurm_profile_names");
    if (st != DURE_OK) {
        struct jobspec_env env = {NULL, 0};
        fuzz_error_reset();
        FUZZ_ASSERT(fuzz_expect_error(slurm_profile_load("local", path, &env),
                                      "slurm_profile_load") != DURE_OK,
                    "a file whose names do not read loads a profile");
        return 0;
    }
    FUZZ_ASSERT(strlen(names) < sizeof names, "names overflow");
    /* "a, b, c" -> a NUL-separated list in place. */
    for (char *p = names, *next; *p && n < MAX_LOADS; p = next) {
        char *sep = strstr(p, ", ");
        next = sep ? sep + 2 : p + strlen(p);
        if (sep) {
            *sep = '\0';
        }
        for (int i = 0; i < n; i++) {
            FUZZ_ASSERT(strcmp(loads[i], p) != 0, "profile '%s' listed twice", p);
        }
        loads[n++] = p;
    }
    for (int i = 0; i < n; i++) {
        check_load(loads[i], path, 1);
    }
    check_load("no]such", path, 0); /* "]" ends a section name: never one */
    return 0;
}
