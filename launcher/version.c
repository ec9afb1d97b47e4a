/* launcher/version.c - `dure --version`: dure and the libraries linked. */
#include <cblas.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "common/gpu.h"
#include "launcher/commands.h"

#ifndef DURE_GIT_REV
#define DURE_GIT_REV "unknown"
#endif
#ifndef DURE_NVCC_GENCODE
#define DURE_NVCC_GENCODE ""
#endif

static void print_decimal_version(FILE *out, const char *label, int v,
                                  int major_div, int minor_div)
{
    if (v <= 0) {
        fprintf(out, "  %-13s none\n", label);
        return;
    }
    fprintf(out, "  %-13s %d.%d", label, v / major_div, (v % major_div) / minor_div);
    if (minor_div > 1) {
        fprintf(out, ".%d", v % minor_div);
    }
    fputc('\n', out);
}

void dure_print_versions(FILE *out)
{
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0;
    unsigned h5maj = 0, h5min = 0, h5rel = 0;
    struct dure_gpu_versions gv;

    fprintf(out, "dure %s (git %s)\n", DURE_VERSION, DURE_GIT_REV);
    /* MPI_Get_library_version may be called before MPI_Init. */
    if (MPI_Get_library_version(mpi, &len) == MPI_SUCCESS) {
        mpi[strcspn(mpi, ",\n")] = '\0';
        fprintf(out, "  %-13s %s\n", "MPI:", mpi);
    }
    if (H5get_libversion(&h5maj, &h5min, &h5rel) >= 0) {
        fprintf(out, "  %-13s %u.%u.%u%s\n", "HDF5:", h5maj, h5min, h5rel,
                H5_HAVE_PARALLEL ? " (parallel)" : "");
    }
    fprintf(out, "  %-13s %s\n", "OpenBLAS:", openblas_get_config());
    dure_gpu_versions(&gv);
    if (!gv.built) {
        fprintf(out, "  %-13s not built (USE_CUDA=no)\n", "CUDA/NCCL:");
        return;
    }
    /* NCCL >= 2.9 encodes versions as major*10000 + minor*100 + patch. */
    print_decimal_version(out, "NCCL:", gv.nccl, 10000, 100);
    print_decimal_version(out, "CUDA runtime:", gv.cuda_runtime, 1000, 10);
    print_decimal_version(out, "CUDA driver:", gv.cuda_driver, 1000, 10);
    fprintf(out, "  %-13s %s\n", "GPU code:", DURE_NVCC_GENCODE);
}
