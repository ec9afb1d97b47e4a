/* tune/ompi_mpit.c - see ompi_mpit.h. */
#include "tune/ompi_mpit.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int mpit_up;

void tune_ompi_prepare(int *had_rules)
{
    *had_rules = getenv("OMPI_MCA_coll_tuned_dynamic_rules_filename") != NULL;
    unsetenv("OMPI_MCA_coll_tuned_dynamic_rules_filename");
    setenv("OMPI_MCA_coll_tuned_use_dynamic_rules", "1", 0);
}

/* The index of a control variable; -1 when this MPI has none of that name. */
static int cvar_index(const char *name)
{
    int idx = -1;
    if (MPI_T_cvar_get_index(name, &idx) != MPI_SUCCESS) {
        return -1;
    }
    return idx;
}

static dure_status_t cvar_rw(const char *name, int *value, int write)
{
    dure_status_t st = DURE_OK;
    MPI_T_cvar_handle h = MPI_T_CVAR_HANDLE_NULL;
    int idx = cvar_index(name), count = 0, rc;
    DURE_CHECK(idx >= 0, DURE_ERR_UNSUPPORTED, "this MPI has no control variable %s", name);
    rc = MPI_T_cvar_handle_alloc(idx, NULL, &h, &count);
    DURE_CHECK(rc == MPI_SUCCESS && count == 1, DURE_ERR_MPI,
               "MPI_T_cvar_handle_alloc(%s) failed (%d)", name, rc);
    rc = write ? MPI_T_cvar_write(h, value) : MPI_T_cvar_read(h, value);
    DURE_CHECK(rc == MPI_SUCCESS, DURE_ERR_MPI, "MPI_T_cvar_%s(%s) failed (%d)",
               write ? "write" : "read", name, rc);
out:
    if (h != MPI_T_CVAR_HANDLE_NULL) {
        MPI_T_cvar_handle_free(&h);
    }
    return st;
}

dure_status_t tune_ompi_open(int *usable, char *why, size_t why_len)
{
    dure_status_t st = DURE_OK;
    int provided = 0, dynamic = 0;
    *usable = 0;
    DURE_CHECK(MPI_T_init_thread(MPI_THREAD_MULTIPLE, &provided) == MPI_SUCCESS, DURE_ERR_MPI,
               "MPI_T_init_thread failed");
    mpit_up = 1;
    if (cvar_index("coll_tuned_use_dynamic_rules") < 0 ||
        cvar_index(tune_ompi_coll_of(COMM_ALLREDUCE)->cvar) < 0) {
        snprintf(why, why_len, "this MPI has no Open MPI coll_tuned parameters");
        goto out;
    }
    DURE_TRY(cvar_rw("coll_tuned_use_dynamic_rules", &dynamic, 0));
    if (!dynamic) {
        snprintf(why, why_len, "OMPI_MCA_coll_tuned_use_dynamic_rules=0 in the environment "
                               "switches Open MPI's forced algorithms off");
        goto out;
    }
    *usable = 1;
out:
    return st;
}

void tune_ompi_close(void)
{
    if (mpit_up) {
        MPI_T_finalize();
        mpit_up = 0;
    }
}

dure_status_t tune_ompi_algos(const struct tune_ompi_coll *c, int *count, char names[][48],
                              int max)
{
    dure_status_t st = DURE_OK;
    char name[256], desc[1024], ename[256];
    int idx = cvar_index(c->cvar), verbosity = 0, bind = 0, scope = 0, n = 0;
    int name_len = sizeof name, desc_len = sizeof desc, ename_len = sizeof ename;
    MPI_Datatype dt;
    MPI_T_enum en = MPI_T_ENUM_NULL;
    DURE_CHECK(idx >= 0, DURE_ERR_UNSUPPORTED, "this MPI has no control variable %s", c->cvar);
    DURE_CHECK(MPI_T_cvar_get_info(idx, name, &name_len, &verbosity, &dt, &en, desc, &desc_len,
                                   &bind, &scope) == MPI_SUCCESS, DURE_ERR_MPI,
               "MPI_T_cvar_get_info(%s) failed", c->cvar);
    DURE_CHECK(en != MPI_T_ENUM_NULL, DURE_ERR_UNSUPPORTED,
               "%s has no list of algorithms in this Open MPI", c->cvar);
    DURE_CHECK(MPI_T_enum_get_info(en, &n, ename, &ename_len) == MPI_SUCCESS, DURE_ERR_MPI,
               "MPI_T_enum_get_info(%s) failed", c->cvar);
    *count = 0;
    for (int i = 0; i < n; i++) {
        int value = -1;
        char item[256];
        int item_len = sizeof item;
        DURE_CHECK(MPI_T_enum_get_item(en, i, &value, item, &item_len) == MPI_SUCCESS,
                   DURE_ERR_MPI, "MPI_T_enum_get_item(%s, %d) failed", c->cvar, i);
        /* values are 0, 1, 2, ... in every Open MPI release so far */
        DURE_CHECK(value == i, DURE_ERR_UNSUPPORTED,
                   "%s: algorithm %d is numbered %d; dure expects 0, 1, 2, ...", c->cvar, i,
                   value);
        if (i < max) {
            snprintf(names[i], 48, "%.47s", item);
        }
        (*count)++;
    }
out:
    return st;
}

dure_status_t tune_ompi_force(const struct tune_ompi_coll *c, int alg)
{
    return cvar_rw(c->cvar, &alg, 1);
}
