/*
 * launcher/version.h - dure's version and git revision, and the versions of
 * the libraries actually linked, as data: `dure --version` prints them and
 * the run manifest records them.
 */
#ifndef DURE_LAUNCHER_VERSION_H
#define DURE_LAUNCHER_VERSION_H

struct dure_versions {
    char dure[32];         /* DURE_VERSION, e.g. "0.1.0" */
    char git[48];          /* short revision, "-dirty" when built from a modified tree */
    char mpi[256];         /* MPI_Get_library_version, first line */
    char hdf5[48];         /* "1.10.8 (parallel)" */
    char openblas[128];    /* openblas_get_config() */
    int gpu_built;         /* 1 when compiled with CUDA and NCCL */
    char nccl[16];         /* "2.28.9", or "none" */
    char cuda_runtime[16]; /* "13.0", or "none" */
    char cuda_driver[16];  /* "13.0", or "none" (no driver: no GPU here) */
    char gpu_code[128];    /* NVCC_GENCODE the build used ("" without CUDA) */
};

/* Fill v; never fails (what cannot be asked reads "unknown" or "none").
 * Safe before MPI_Init. */
void dure_versions_get(struct dure_versions *v);

#endif
