/*
 * bench/coll_bucket.c - choose bucket_mb by measurement, and measure how
 * much of the gradient exchange the bucketer hides behind backward.
 *
 *   mpirun -np 2 build/bench/coll_bucket [RESULTS.json]
 *
 * The gradients are those of a 4-layer transformer block stack with
 * d_model 512 (qkv, proj, fc1, fc2, two norms per layer; about 50 MiB),
 * allocated with comm_mem_alloc on the mpi backend (the backward pass here
 * is host compute; on a GPU machine auto would pick nccl and device memory). Backward is simulated per tensor, last to
 * first, by a fixed amount of floating-point work per gradient element
 * (work, not time: a time-based spin would look perfectly overlapped even
 * when the communication thread took its core), calibrated so that the
 * whole backward costs as much as one unbucketed all-reduce of the
 * gradients: the case where overlap matters most. For each bucket_mb:
 *   exchange  finish() right after marking every tensor: the cost of
 *             bucketing the exchange, without compute
 *   step      backward with ready() per tensor, then finish(), overlap on
 *   serial    the same with overlap off (everything starts at finish)
 * Each figure is the median of several steps; rank 0 prints the bench lines.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/bucket.h"
#include "collectives/comm.h"
#include "common/json.h"
#include "common/timing.h"

enum { LAYERS = 4, D = 512, STEPS = 9 };

static volatile float sink;

/* `units` of dependent multiply-adds on registers: compute, not memory. */
static void work(long units)
{
    float x = 1.0f, y = 0.5f;
    for (long i = 0; i < units; i++) {
        x = x * 0.999999f + y;
        y = y * 0.999998f + 0.1f;
    }
    sink = x + y;
}

/* Max over ranks of this rank's seconds. */
static double slowest(double t)
{
    double m = 0;
    MPI_Allreduce(&t, &m, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return m;
}

struct model {
    int nt;
    size_t off[LAYERS * 6 + 1];
};

static void build_model(struct model *m)
{
    const size_t d = D;
    const size_t lens[6] = {3 * d * d, d * d, 4 * d * d, 4 * d * d, 2 * d, 2 * d};
    m->nt = 0;
    m->off[0] = 0;
    for (int l = 0; l < LAYERS; l++) {
        for (int k = 0; k < 6; k++) {
            m->off[m->nt + 1] = m->off[m->nt] + lens[k];
            m->nt++;
        }
    }
}

/* One step: backward (work per tensor, then ready) and finish. */
static int step(comm_bucketer_t *b, const struct model *m, double units_per_elem, double *sec)
{
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int t = m->nt - 1; t >= 0; t--) {
        work((long)(units_per_elem * (double)(m->off[t + 1] - m->off[t])));
        if (b && comm_bucketer_ready(b, t) != DURE_OK) {
            return -1;
        }
    }
    if (b && comm_bucketer_finish(b) != DURE_OK) {
        return -1;
    }
    *sec = slowest(MPI_Wtime() - t0);
    return 0;
}

/* The figures as JSON (milliseconds). */
static dure_status_t write_json(const char *path, size_t n, int tensors, double t_ar,
                                double t_compute, const double *mbs, int nmb, int best,
                                const double *t_ex, const double *t_step, const double *t_serial)
{
    dure_status_t st = DURE_OK;
    struct json_writer w;
    FILE *f = NULL;
    DURE_SYS_TRY((f = fopen(path, "w")) != NULL, "cannot write %s", path);
    json_writer_init(&w, f, 0);
    json_begin_object(&w);
    json_key(&w, "gradient_mib");
    json_number(&w, (double)n * 4 / 1048576.0, 6);
    json_key(&w, "tensors");
    json_int(&w, tensors);
    json_key(&w, "allreduce_ms");
    json_number(&w, t_ar * 1e3, 6);
    json_key(&w, "compute_ms");
    json_number(&w, t_compute * 1e3, 6);
    json_key(&w, "best_bucket_mb");
    json_number(&w, mbs[best], 6);
    json_key(&w, "buckets");
    json_begin_array(&w);
    for (int k = 0; k < nmb; k++) {
        json_begin_object(&w);
        json_key(&w, "bucket_mb");
        json_number(&w, mbs[k], 6);
        json_key(&w, "exchange_ms");
        json_number(&w, t_ex[k] * 1e3, 6);
        json_key(&w, "step_ms");
        json_number(&w, t_step[k] * 1e3, 6);
        json_key(&w, "serial_ms");
        json_number(&w, t_serial[k] * 1e3, 6);
        json_end_object(&w);
    }
    json_end_array(&w);
    json_end_object(&w);
    fputc('\n', f);
    DURE_TRY(json_writer_finish(&w, path));
    DURE_SYS_TRY(fclose(f) == 0, "cannot write %s", path);
    f = NULL;
out:
    if (f) {
        fclose(f);
    }
    return st;
}

int main(int argc, char **argv)
{
    struct comm_config cfg;
    comm_t *c = NULL;
    float *grads = NULL;
    struct model m;
    const double mbs[] = {0.25, 1, 4, 16, 64};
    const int nmb = sizeof mbs / sizeof mbs[0];
    double t_ex[5], t_step[5], t_serial[5], v[STEPS];
    float *ones = NULL;
    int rank = 0, rc = 1;

    if (comm_mpi_init(&argc, &argv) != DURE_OK) {
        return 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    build_model(&m);
    const size_t n = m.off[m.nt];
    comm_config_default(&cfg);
    cfg.backend = COMM_BACKEND_MPI;
    ones = malloc(n * sizeof *ones);
    if (!ones || comm_create(MPI_COMM_WORLD, &cfg, &c) != DURE_OK ||
        comm_mem_alloc(c, n * sizeof *grads, (void **)&grads) != DURE_OK) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        ones[i] = 1.0f;
    }
    /* The comm's memory is filled through the comm, whatever its kind. */
    if (comm_mem_upload(c, grads, ones, n * sizeof *ones) != DURE_OK) {
        goto out;
    }

    /* Calibrate: backward work equal to one unbucketed all-reduce. */
    double t_ar = 0;
    for (int s = 0; s < STEPS; s++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        if (comm_allreduce(c, grads, grads, n, COMM_F32, COMM_AVG) != DURE_OK) {
            goto out;
        }
        v[s] = slowest(MPI_Wtime() - t0);
    }
    t_ar = dure_median(v, STEPS);
    long probe = 20 * 1000 * 1000;
    double t0 = MPI_Wtime();
    work(probe);
    double per_unit = slowest(MPI_Wtime() - t0) / (double)probe;
    const double units_per_elem = t_ar / per_unit / (double)n;
    double t_compute = 0;
    for (int s = 0; s < STEPS; s++) {
        step(NULL, &m, units_per_elem, &v[s]);
    }
    t_compute = dure_median(v, STEPS);

    for (int k = 0; k < nmb; k++) {
        for (int overlap = 0; overlap <= 1; overlap++) {
            struct comm_bucket_config bc = {mbs[k], COMM_BUCKET_ALLREDUCE, COMM_AVG, overlap,
                                            NULL, NULL, 0, 0};
            comm_bucketer_t *b = NULL;
            if (comm_bucketer_create(c, grads, m.off, m.nt, &bc, &b) != DURE_OK) {
                goto out;
            }
            if (overlap) {
                for (int s = 0; s < STEPS; s++) {
                    if (step(b, &m, 0.0, &v[s]) != 0) {
                        goto out;
                    }
                }
                t_ex[k] = dure_median(v, STEPS);
            }
            for (int s = 0; s < STEPS; s++) {
                if (step(b, &m, units_per_elem, &v[s]) != 0) {
                    goto out;
                }
            }
            (overlap ? t_step : t_serial)[k] = dure_median(v, STEPS);
            comm_bucketer_free(b);
        }
    }

    if (rank == 0) {
        int best = 0;
        for (int k = 1; k < nmb; k++) {
            if (t_step[k] < t_step[best]) {
                best = k;
            }
        }
        printf("# gradients %.1f MiB in %d tensors; one all-reduce %.2f ms; backward compute "
               "%.2f ms\n",
               (double)n * 4 / 1048576.0, m.nt, t_ar * 1e3, t_compute * 1e3);
        printf("# %8s %10s %10s %10s %8s\n", "bucket", "exchange", "step", "serial",
               "hidden");
        for (int k = 0; k < nmb; k++) {
            /* the share of the exchange that the overlap hid */
            double hidden = (t_serial[k] - t_step[k]) / t_ex[k];
            printf("  %6.2fM %8.2fms %8.2fms %8.2fms %7.0f%%\n", mbs[k], t_ex[k] * 1e3,
                   t_step[k] * 1e3, t_serial[k] * 1e3, 100 * hidden);
        }
        printf("bench: bucket_step_%gMiB: %.2f ms (overlap off: %.2f ms, ratio %.2f)\n",
               mbs[best], t_step[best] * 1e3, t_serial[best] * 1e3,
               t_step[best] / t_serial[best]);
        printf("bench: bucket_exchange_%gMiB: %.2f ms (one all-reduce: %.2f ms, ratio %.2f)\n",
               mbs[best], t_ex[best] * 1e3, t_ar * 1e3, t_ex[best] / t_ar);
        if (argc > 1 && write_json(argv[1], n, m.nt, t_ar, t_compute, mbs, nmb, best, t_ex,
                                   t_step, t_serial) != DURE_OK) {
            goto out;
        }
    }
    rc = 0;
out:
    if (c) {
        comm_mem_free(c, grads);
    }
    free(ones);
    comm_destroy(c);
    comm_mpi_finalize();
    return rc;
}
