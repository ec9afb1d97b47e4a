/*
 * bench/model_step.c - CPU training step of the model against OpenBLAS sgemm,
 * measured in the same process with the same thread count.
 *
 * usage: model_step [--d-model N] [--layers N] [--heads N] [--patch-len N]
 *                   [--channels N] [--context N] [--micro-batch N] [--steps N]
 *                   [--name NAME] [--json PATH]
 *
 * Prints the model (parameters, FLOPs per step, memory), then
 *   bench: NAME: X GFLOP/s (sgemm_2048: Y GFLOP/s, ratio R)
 * where X = model FLOPs of one step (6N + attention, fwd + bwd) / median time
 * of a full training step (zero grad, forward, backward, grad norm, AdamW)
 * and Y = median GFLOP/s of a 2048^3 cblas_sgemm with OpenBLAS's own
 * threads (as many as OpenMP's), one repetition after each step so that
 * both see the same machine load. Exit code 0 when both ran; the ratio is
 * reported, not judged.
 */
#include <cblas.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/benchline.h"
#include "common/timing.h"
#include "device/device.h"
#include "model/flops.h"
#include "model/model.h"
#include "model/optim.h"

#define SGEMM_N 2048

/* A square sgemm, timed one repetition at a time with OpenBLAS's own
 * threads (the peak every figure is compared to). */
struct sgemm_peak {
    float *a, *b, *c;
    int n;
};

static int sgemm_setup(struct sgemm_peak *g, int n)
{
    size_t bytes = (size_t)n * n * sizeof(float);
    g->n = n;
    g->a = malloc(bytes);
    g->b = malloc(bytes);
    g->c = malloc(bytes);
    if (!g->a || !g->b || !g->c) {
        return -1;
    }
    for (size_t i = 0; i < (size_t)n * n; i++) {
        g->a[i] = (float)((i % 17) * 0.01);
        g->b[i] = (float)((i % 13) * 0.01);
        g->c[i] = 0.0f;
    }
    return 0;
}

static double sgemm_once(const struct sgemm_peak *g, int threads)
{
    int n = g->n;
    openblas_set_num_threads(threads);
    double t0 = dure_now_s();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, g->a, n, g->b, n,
                0.0f, g->c, n);
    return 2.0 * (double)n * n * n / (dure_now_s() - t0) / 1e9;
}

static void sgemm_free(struct sgemm_peak *g)
{
    free(g->a), free(g->b), free(g->c);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: model_step [--d-model N] [--layers N] [--heads N] [--patch-len N]\n"
               "                  [--channels N] [--context N] [--micro-batch N] [--steps N]\n"
               "                  [--name NAME] [--json PATH]\n");
}

int main(int argc, char **argv)
{
    struct model_config cfg;
    model_config_defaults(&cfg);
    cfg.d_model = 512;
    cfg.n_layers = 8;
    cfg.n_heads = 8;
    cfg.patch_len = 16;
    cfg.channels = 8;
    cfg.context_patches = 64;
    cfg.micro_batch = 16;
    int steps = 5;
    const char *name = "model_cpu_step", *json = NULL;
    static const struct option opts[] = {
        {"d-model", required_argument, 0, 'd'}, {"layers", required_argument, 0, 'l'},
        {"heads", required_argument, 0, 'H'},   {"patch-len", required_argument, 0, 'p'},
        {"channels", required_argument, 0, 'c'}, {"context", required_argument, 0, 'n'},
        {"micro-batch", required_argument, 0, 'b'}, {"steps", required_argument, 0, 's'},
        {"name", required_argument, 0, 'N'},    {"json", required_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        long v = optarg ? strtol(optarg, &end, 10) : 0;
        int num = optarg && *end == '\0' && v > 0 && v < (1L << 30);
        switch (o) {
        case 'd': cfg.d_model = (int)v; break;
        case 'l': cfg.n_layers = (int)v; break;
        case 'H': cfg.n_heads = (int)v; break;
        case 'p': cfg.patch_len = (int)v; break;
        case 'c': cfg.channels = (int)v; break;
        case 'n': cfg.context_patches = (int)v; break;
        case 'b': cfg.micro_batch = (int)v; break;
        case 's': steps = (int)v; break;
        case 'N': name = optarg; num = 1; break;
        case 'j': json = optarg; num = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (!num) {
            fprintf(stderr, "model_step: bad value '%s'\n", optarg);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || steps < 1) {
        usage(stderr);
        return 2;
    }

    int threads = omp_get_max_threads();
    openblas_set_num_threads(threads);
    const char *core = getenv("OPENBLAS_CORETYPE");
    printf("model_step: %d threads (OpenMP and OpenBLAS), OpenBLAS core %s (%s)\n", threads,
           openblas_get_corename(), core ? core : "autodetected");
    model_print_summary(&cfg, "cpu", stdout);

    struct sgemm_peak sg;
    if (sgemm_setup(&sg, SGEMM_N) != 0) {
        fprintf(stderr, "model_step: out of memory for the sgemm peak\n");
        return 1;
    }

    device_t *dev = NULL;
    model_t *m = NULL;
    optim_t *opt = NULL;
    if (device_open("cpu", 0, 1, &dev) != DURE_OK || model_create(&cfg, dev, NULL, &m) != DURE_OK) {
        return 1;
    }
    size_t nt, n = model_param_count(m);
    const struct model_tensor *t = model_tensors(m, &nt);
    struct optim_config oc = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
    if (optim_create(&oc, dev, t, nt, 0, n, &opt) != DURE_OK) {
        model_destroy(m);
        return 1;
    }
    size_t T = (size_t)(cfg.context_patches + 1) * cfg.patch_len;
    size_t nb = (size_t)cfg.micro_batch * T * cfg.channels;
    float *batch = malloc(nb * sizeof *batch);
    double *step_s = malloc((size_t)steps * sizeof(double));
    double *fb_s = malloc((size_t)steps * sizeof(double));
    double *peak_s = malloc((size_t)steps * sizeof(double));
    if (!batch || !step_s || !fb_s || !peak_s) {
        fprintf(stderr, "model_step: out of memory for the batch\n");
        return 1;
    }
    for (size_t i = 0; i < nb; i++) {
        batch[i] = (float)sin(0.01 * (double)i);
    }
    float loss = 0.0f;
    int rc = 0;
    /* Steps and sgemm repetitions alternate, so that both see the same
     * machine (on a shared machine the load changes by the second). */
    sgemm_once(&sg, threads); /* warm-up */
    for (int s = -1; s < steps && rc == 0; s++) { /* s = -1: warm-up */
        double t0 = dure_now_s(), sq;
        rc |= model_zero_grad(m) != DURE_OK;
        double t1 = dure_now_s();
        rc |= model_forward_backward(m, batch, NULL, &loss) != DURE_OK;
        double t2 = dure_now_s();
        rc |= optim_grad_sq_norm(opt, model_grads(m), &sq) != DURE_OK;
        rc |= optim_adamw_update(opt, s + 2, 1e-4f, optim_clip_scale(sqrt(sq), 1.0f),
                                 model_params(m), model_grads(m)) != DURE_OK;
        rc |= model_params_changed(m) != DURE_OK;
        double t3 = dure_now_s();
        double peak_one = sgemm_once(&sg, threads);
        /* OpenBLAS's workers spin for a while after a call: let them sleep
         * before the next step, which runs on OpenMP's threads. */
        nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 200000000}, NULL);
        if (s >= 0) {
            step_s[s] = t3 - t0;
            fb_s[s] = t2 - t1;
            peak_s[s] = peak_one;
        }
    }
    if (rc == 0) {
        struct model_flops f;
        model_flops_compute(&cfg, &f);
        double ts = dure_median(step_s, steps), tf = dure_median(fb_s, steps);
        double peak = dure_median(peak_s, steps);
        double gf = f.per_micro_batch / ts / 1e9, gf_fb = f.per_micro_batch / tf / 1e9;
        printf("model_step: %llu parameters, %.2f GFLOP per step, step %.3f s median of %d "
               "(forward+backward %.3f s, %.1f GFLOP/s), loss %.4f\n",
               (unsigned long long)f.params, f.per_micro_batch / 1e9, ts, steps, tf, gf_fb,
               (double)loss);
        double load = dure_bench_load_average();
        printf("model_step: load average %.2f on %ld cores during the measurement\n", load,
               sysconf(_SC_NPROCESSORS_ONLN));
        const struct dure_bench_figure fig = {name, gf, "GFLOP/s", "sgemm_2048", peak,
                                              "GFLOP/s"};
        dure_bench_print(stdout, &fig);
        if (json) {
            FILE *jf = fopen(json, "w");
            if (!jf) {
                perror(json);
                rc = 1;
            } else {
                struct json_writer w;
                json_writer_init(&w, jf, 0);
                dure_bench_json_begin(&w, &fig);
                json_key(&w, "params");
                json_uint(&w, f.params);
                json_key(&w, "flops_per_step");
                json_number(&w, f.per_micro_batch, 6);
                json_key(&w, "step_s");
                json_number(&w, ts, 6);
                json_key(&w, "fwd_bwd_s");
                json_number(&w, tf, 6);
                const struct {
                    const char *key;
                    long v;
                } ints[] = {{"steps", steps},
                            {"threads", threads},
                            {"d_model", cfg.d_model},
                            {"n_layers", cfg.n_layers},
                            {"n_heads", cfg.n_heads},
                            {"patch_len", cfg.patch_len},
                            {"channels", cfg.channels},
                            {"context_patches", cfg.context_patches},
                            {"micro_batch", cfg.micro_batch}};
                for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
                    json_key(&w, ints[i].key);
                    json_int(&w, ints[i].v);
                }
                json_key(&w, "openblas_core");
                json_string(&w, openblas_get_corename());
                json_key(&w, "load_avg_1m");
                json_number(&w, load, 3);
                json_end_object(&w);
                fputc('\n', jf);
                rc |= json_writer_finish(&w, json) != DURE_OK;
                rc |= fclose(jf) != 0;
            }
        }
    }
    free(batch), free(step_s), free(fb_s), free(peak_s);
    sgemm_free(&sg);
    optim_destroy(opt);
    model_destroy(m);
    device_close(dev);
    return rc;
}
