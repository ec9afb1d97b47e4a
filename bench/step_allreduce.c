/*
 * bench/step_allreduce.c - the training step's gradient all-reduce against
 * MPI_Allreduce, on the buffers the step really uses.
 *
 *   mpirun -np 2 build/bench/step_allreduce [RESULTS.json]
 *
 * The step (train/train.c) creates its communicator with the job's
 * defaults (backend mpi on the CPU, algorithm auto), hands the model the
 * communicator's allocator, so the gradient vector is the comm's memory
 * (comm_allocator: on one node an MPI-3 shared window), and exchanges it
 * with the bucketer: buckets of parallel.bucket_mb (default 4 MiB) over the
 * model's tensors, all-reduced in place and waited for by
 * comm_bucketer_finish. This program does exactly that for vectors of
 * 4 KiB .. 256 MiB (tensors of 1 MiB, the default bucket size), and
 * measures MPI_Allreduce in place on a heap buffer of the same size beside
 * it. Both buffers are allocated once, at the largest size, and touched
 * before timing. Three runs over all sizes, dure and MPI interleaved rep
 * by rep; a run's figure is the median of its reps (each the slowest
 * rank's mean over a few calls), the reported figure the median of the
 * three runs. Bus bandwidth as nccl-tests: 2 (R - 1) / R x bytes / time.
 * Rank 0 prints one `bench:` line per size and writes RESULTS.json.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/bucket.h"
#include "collectives/comm.h"
#include "common/json.h"
#include "common/timing.h"

enum { RUNS = 3, REPS = 5, MIN_LOG2 = 12, MAX_LOG2 = 28, NSIZES = MAX_LOG2 - MIN_LOG2 + 1 };
#define TENSOR_FLOATS ((size_t)1 << 18) /* 1 MiB */

/* Calls per rep: enough to last a few milliseconds at small sizes. */
static int iters_for(size_t bytes)
{
    size_t it = ((size_t)8 << 20) / bytes;
    return it < 2 ? 2 : it > 200 ? 200 : (int)it;
}

/* The slowest rank's mean seconds per call. */
static double slowest(double mine)
{
    double worst = 0;
    MPI_Allreduce(&mine, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

/* The step's exchange of grads[n]: one bucketer over 1 MiB tensors. */
static int time_step(comm_t *c, float *grads, size_t n, int iters, double *sec)
{
    size_t nt = (n + TENSOR_FLOATS - 1) / TENSOR_FLOATS;
    size_t *off = malloc((nt + 1) * sizeof *off);
    comm_bucketer_t *b = NULL;
    struct comm_bucket_config bc = {0, COMM_BUCKET_ALLREDUCE, COMM_SUM, 1, NULL, NULL, 0, 0};
    int rc = -1;
    if (!off) {
        return -1;
    }
    for (size_t t = 0; t <= nt; t++) {
        off[t] = t * TENSOR_FLOATS < n ? t * TENSOR_FLOATS : n;
    }
    if (comm_bucketer_create(c, grads, off, (int)nt, &bc, &b) != DURE_OK) {
        goto out;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = dure_now_s();
    for (int i = 0; i < iters; i++) {
        if (comm_bucketer_finish(b) != DURE_OK) {
            goto out;
        }
    }
    *sec = slowest((dure_now_s() - t0) / iters);
    rc = 0;
out:
    comm_bucketer_free(b);
    free(off);
    return rc;
}

static int time_mpi(float *buf, size_t n, int iters, double *sec)
{
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = dure_now_s();
    for (int i = 0; i < iters; i++) {
        if (MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) !=
            MPI_SUCCESS) {
            return -1;
        }
    }
    *sec = slowest((dure_now_s() - t0) / iters);
    return 0;
}

static void size_name(char *buf, size_t cap, size_t bytes)
{
    if (bytes >= (1u << 20)) {
        snprintf(buf, cap, "%zuM", bytes >> 20);
    } else {
        snprintf(buf, cap, "%zuK", bytes >> 10);
    }
}

struct row {
    char name[64];
    double value, peer;    /* busbw GB/s: dure's step, MPI_Allreduce */
};

/* The median of the runs of size k, as bus bandwidth. */
static void summarise(int k, const double *dure_runs, const double *mpi_runs, int size,
                      struct row *r)
{
    size_t bytes = (size_t)1 << (MIN_LOG2 + k);
    double bus = 2.0 * (size - 1) / size * (double)bytes / 1e9;
    double d[RUNS], m[RUNS];
    char sz[16];
    memcpy(d, dure_runs, sizeof d);
    memcpy(m, mpi_runs, sizeof m);
    r->value = bus / dure_median(d, RUNS);
    r->peer = bus / dure_median(m, RUNS);
    size_name(sz, sizeof sz, bytes);
    snprintf(r->name, sizeof r->name, "step_allreduce_busbw_%s", sz);
}

static int write_json(const char *path, const struct row *rows, int n)
{
    FILE *f = fopen(path, "w");
    struct json_writer w;
    if (!f) {
        perror(path);
        return -1;
    }
    json_writer_init(&w, f, 1);
    json_begin_array(&w);
    for (int k = 0; k < n; k++) {
        json_begin_object(&w);
        json_key(&w, "name");
        json_string(&w, rows[k].name);
        json_key(&w, "value");
        json_double(&w, rows[k].value);
        json_key(&w, "unit");
        json_string(&w, "GB/s");
        json_key(&w, "peer");
        json_string(&w, "MPI_Allreduce");
        json_key(&w, "peer_value");
        json_double(&w, rows[k].peer);
        json_key(&w, "ratio");
        json_double(&w, rows[k].value / rows[k].peer);
        json_end_object(&w);
    }
    json_end_array(&w);
    int rc = json_writer_finish(&w, path) == DURE_OK ? 0 : -1;
    return fclose(f) == 0 && rc == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    int rank = 0, size = 1, rc = 1;
    comm_t *c = NULL;
    float *grads = NULL, *heap = NULL;
    struct dure_allocator a = {NULL, NULL, NULL};
    static double dure[NSIZES][RUNS], mpi[NSIZES][RUNS];
    const size_t max_n = ((size_t)1 << MAX_LOG2) / sizeof(float);

    if (comm_mpi_init(&argc, &argv) != DURE_OK) {
        return 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    struct comm_config cfg;
    comm_config_default(&cfg);
    cfg.backend = COMM_BACKEND_MPI;
    if (comm_create(MPI_COMM_WORLD, &cfg, &c) != DURE_OK) {
        goto out;
    }
    a = comm_allocator(c);
    if (a.alloc(a.ctx, max_n * sizeof(float), (void **)&grads) != DURE_OK) {
        goto out;
    }
    heap = malloc(max_n * sizeof(float));
    if (!heap) {
        fprintf(stderr, "step_allreduce: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < max_n; i++) {
        grads[i] = heap[i] = 0.0f;
    }
    for (int run = 0; run < RUNS; run++) {
        for (int k = 0; k < NSIZES; k++) {
            size_t n = ((size_t)1 << (MIN_LOG2 + k)) / sizeof(float);
            int iters = iters_for(n * sizeof(float));
            double ds[REPS], ms[REPS], warm = 0;
            if (time_step(c, grads, n, 1, &warm) != 0 || time_mpi(heap, n, 1, &warm) != 0) {
                goto out;
            }
            for (int r = 0; r < REPS; r++) {
                if (time_step(c, grads, n, iters, &ds[r]) != 0 ||
                    time_mpi(heap, n, iters, &ms[r]) != 0) {
                    goto out;
                }
            }
            dure[k][run] = dure_median(ds, REPS);
            mpi[k][run] = dure_median(ms, REPS);
        }
    }
    rc = 0;
    if (rank == 0) {
        struct row rows[NSIZES];
        for (int k = 0; k < NSIZES; k++) {
            summarise(k, dure[k], mpi[k], size, &rows[k]);
            printf("bench: %s: %.2f GB/s (MPI_Allreduce: %.2f GB/s, ratio %.2f)\n",
                   rows[k].name, rows[k].value, rows[k].peer, rows[k].value / rows[k].peer);
        }
        if (argc > 1 && write_json(argv[1], rows, NSIZES) != 0) {
            rc = 1;
        }
    }
out:
    free(heap);
    if (c && grads) {
        a.free(a.ctx, grads);
    }
    comm_destroy(c);
    comm_mpi_finalize();
    return rc;
}
