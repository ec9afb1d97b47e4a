/* launcher/version.c - `dure --version` and the versions the manifest records. */
#include "launcher/version.h"

#include <cblas.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "device/device.h"
#include "launcher/commands.h"

#ifndef DURE_GIT_REV
#define DURE_GIT_REV "unknown"
#endif
#ifndef DURE_NVCC_GENCODE
#define DURE_NVCC_GENCODE ""
#endif

/* "13.0" from 13000 (major_div 1000, minor_div 10); "2.28.9" from 22809
 * (10000, 100): NCCL >= 2.9 encodes major*10000 + minor*100 + patch. */
static void format_decimal_version(char *buf, size_t cap, int v, int major_div,
                                   int minor_div)
{
    if (v <= 0) {
        snprintf(buf, cap, "none");
    } else if (minor_div > 1) {
        snprintf(buf, cap, "%d.%d.%d", v / major_div, (v % major_div) / minor_div,
                 v % minor_div);
    } else {
        snprintf(buf, cap, "%d.%d", v / major_div, v % major_div);
    }
}

void dure_versions_get(struct dure_versions *v)
{
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0;
    unsigned h5maj = 0, h5min = 0, h5rel = 0;
    struct device_versions gv;

    memset(v, 0, sizeof *v);
    snprintf(v->dure, sizeof v->dure, "%s", DURE_VERSION);
    snprintf(v->git, sizeof v->git, "%s", DURE_GIT_REV);
    /* MPI_Get_library_version may be called before MPI_Init. */
    if (MPI_Get_library_version(mpi, &len) == MPI_SUCCESS) {
        mpi[strcspn(mpi, ",\n")] = '\0';
        snprintf(v->mpi, sizeof v->mpi, "%s", mpi);
    } else {
        snprintf(v->mpi, sizeof v->mpi, "unknown");
    }
    if (H5get_libversion(&h5maj, &h5min, &h5rel) >= 0) {
        snprintf(v->hdf5, sizeof v->hdf5, "%u.%u.%u%s", h5maj, h5min, h5rel,
                 H5_HAVE_PARALLEL ? " (parallel)" : "");
    } else {
        snprintf(v->hdf5, sizeof v->hdf5, "unknown");
    }
    snprintf(v->openblas, sizeof v->openblas, "%s", openblas_get_config());
    device_kind_versions("cuda", &gv);
    v->gpu_built = gv.built;
    format_decimal_version(v->nccl, sizeof v->nccl, gv.collectives, 10000, 100);
    format_decimal_version(v->cuda_runtime, sizeof v->cuda_runtime, gv.runtime, 1000, 10);
    format_decimal_version(v->cuda_driver, sizeof v->cuda_driver, gv.driver, 1000, 10);
    snprintf(v->gpu_code, sizeof v->gpu_code, "%s", gv.built ? DURE_NVCC_GENCODE : "");
}

void dure_print_versions(FILE *out)
{
    struct dure_versions v;
    dure_versions_get(&v);
    fprintf(out, "dure %s (git %s)\n", v.dure, v.git);
    fprintf(out, "  %-13s %s\n", "MPI:", v.mpi);
    fprintf(out, "  %-13s %s\n", "HDF5:", v.hdf5);
    fprintf(out, "  %-13s %s\n", "OpenBLAS:", v.openblas);
    if (!v.gpu_built) {
        fprintf(out, "  %-13s not built (USE_CUDA=no)\n", "CUDA/NCCL:");
        return;
    }
    fprintf(out, "  %-13s %s\n", "NCCL:", v.nccl);
    fprintf(out, "  %-13s %s\n", "CUDA runtime:", v.cuda_runtime);
    fprintf(out, "  %-13s %s\n", "CUDA driver:", v.cuda_driver);
    fprintf(out, "  %-13s %s\n", "GPU code:", v.gpu_code);
}
