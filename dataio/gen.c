/* dataio/gen.c - see gen.h. */
#include "dataio/gen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataio/format.h"
#include "dataio/order.h"

#define CELL 8
#define BLOCK 4096

void dataio_gen_config_init(struct dataio_gen_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->episodes = 64;
    cfg->length = 4096;
    cfg->channels = 16;
    cfg->sample_rate_hz = 100.0;
    cfg->seed = 1234;
    cfg->val_fraction = 0.1;
    cfg->sensors = DATAIO_GEN_ALL_SENSORS;
}

static const struct dataio_gen_profile profiles[] = {
    {"cell", DATAIO_GEN_ALL_SENSORS, 16, 100.0,
     "robot arms and CNC spindles, every sensor (the default)"},
    {"arm", 0x0f, 8, 50.0, "robot arms only: joint positions and torques"},
    {"mill", 0xf0, 12, 200.0, "CNC spindles only: vibration, current, temperatures"},
};

const struct dataio_gen_profile *dataio_gen_profile(const char *name)
{
    for (size_t i = 0; i < sizeof profiles / sizeof *profiles; i++) {
        if (strcmp(profiles[i].name, name) == 0) {
            return &profiles[i];
        }
    }
    return NULL;
}

/* Sensors kept per cell. */
static int kept(unsigned sensors)
{
    return __builtin_popcount(sensors & DATAIO_GEN_ALL_SENSORS);
}

static uint64_t mix(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

struct rng {
    uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
    r->s += 0x9e3779b97f4a7c15ull;
    return mix(r->s);
}

static double unif(struct rng *r, double lo, double hi)
{
    return lo + (hi - lo) * (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Approximately standard normal: Irwin-Hall sum of four 16-bit uniforms
 * from one draw (variance 1/3, scaled to 1). Cheap and deterministic. */
static double normal(struct rng *r)
{
    uint64_t x = rng_next(r);
    double s = (double)(x & 0xffff) + (double)((x >> 16) & 0xffff) +
               (double)((x >> 32) & 0xffff) + (double)(x >> 48);
    return (s / 65536.0 - 2.0) * 1.7320508075688772;
}

struct joint {
    double q0, q1;            /* current move: from q0 to q1 (rad) */
    int64_t seg_t0, seg_len;  /* its first timestep and length */
    double inertia;           /* kg m^2 */
    double damping;           /* N m s / rad */
    double mgl;               /* gravity torque scale, N m */
};

struct cell {
    struct joint j[2];
    double amp[3];            /* harmonic amplitudes (g) */
    double re[3], im[3];      /* harmonic phasors */
    double rre[3], rim[3];    /* their rotation per timestep */
    double wear0, wear_drift; /* tool wear at start, and gained by the end */
    double load, load_target;
    int64_t pass_end;
    int cutting;
    double i0, k_load;        /* current at idle (A), per unit load (A) */
    double load_alpha;        /* load's first-order lag per timestep */
    double temp, tau_alpha;   /* spindle temperature, lag per timestep */
    double amb_re, amb_im, amb_rre, amb_rim, amb_walk;
};

struct gen_ep {
    struct rng rng;
    int c, ncells, per_cell;
    unsigned sensors;
    double dt, rate;
    int64_t t, len;
    struct cell *cells;
};

static void new_move(struct joint *j, struct rng *r, int64_t t, double rate)
{
    j->q0 = j->q1;
    j->q1 = unif(r, -1.4, 1.4);
    j->seg_t0 = t;
    j->seg_len = (int64_t)(unif(r, 0.6, 2.5) * rate) + 2;
}

static void new_pass(struct cell *k, struct rng *r, int64_t t, double rate)
{
    k->cutting = !k->cutting;
    k->load_target = k->cutting ? unif(r, 0.5, 1.0) : 0.05;
    k->pass_end = t + (int64_t)((k->cutting ? unif(r, 2.0, 6.0) : unif(r, 0.5, 2.0)) * rate) + 1;
}

static void phasor(double cycles_per_step, double phase, double *re, double *im,
                   double *rre, double *rim)
{
    *re = cos(phase);
    *im = sin(phase);
    *rre = cos(2 * M_PI * cycles_per_step);
    *rim = sin(2 * M_PI * cycles_per_step);
}

static void cell_init(struct cell *k, struct rng *r, double rate)
{
    memset(k, 0, sizeof *k);
    for (int i = 0; i < 2; i++) {
        struct joint *j = &k->j[i];
        j->inertia = unif(r, 0.05, 0.4);
        j->damping = unif(r, 0.2, 1.5);
        j->mgl = i == 0 ? unif(r, 8.0, 20.0) : unif(r, 2.0, 8.0);
        j->q1 = unif(r, -1.0, 1.0);
        new_move(j, r, 0, rate);
    }
    /* Spindle fundamental as a fraction of the sample rate, so its third
     * harmonic stays below a quarter of it whatever the rate. */
    double f = unif(r, 0.03, 0.075);
    for (int h = 0; h < 3; h++) {
        k->amp[h] = unif(r, 0.2, 1.0) / (h + 1);
        phasor(f * (h + 1), unif(r, 0, 2 * M_PI), &k->re[h], &k->im[h], &k->rre[h],
               &k->rim[h]);
    }
    k->wear0 = unif(r, 0.0, 0.4);
    k->wear_drift = unif(r, 0.1, 0.6);
    k->cutting = 1; /* new_pass toggles: start idle */
    new_pass(k, r, 0, rate);
    k->i0 = unif(r, 1.5, 3.0);
    k->k_load = unif(r, 4.0, 9.0);
    double ambient = unif(r, 18.0, 24.0);
    k->temp = ambient + unif(r, 0.0, 3.0);
    k->tau_alpha = 1.0 - exp(-1.0 / (unif(r, 2.0, 20.0) * rate));
    k->load_alpha = 1.0 - exp(-1.0 / (0.3 * rate));
    /* Ambient: a slow oscillation (periods of minutes) plus a random walk. */
    phasor(1.0 / (unif(r, 120.0, 600.0) * rate), unif(r, 0, 2 * M_PI), &k->amb_re,
           &k->amb_im, &k->amb_rre, &k->amb_rim);
    k->amb_walk = ambient;
}

/* Position, velocity, acceleration of a minimum-jerk move at timestep t. */
static void joint_state(const struct joint *j, int64_t t, double dt, double *q, double *qd,
                        double *qdd)
{
    double s = (double)(t - j->seg_t0) / (double)j->seg_len;
    double T = (double)j->seg_len * dt, d = j->q1 - j->q0;
    double s2 = s * s, s3 = s2 * s;
    *q = j->q0 + d * (10 * s3 - 15 * s3 * s + 6 * s3 * s2);
    *qd = d / T * (30 * s2 - 60 * s3 + 30 * s3 * s);
    *qdd = d / (T * T) * (60 * s - 180 * s2 + 120 * s3);
}

/* One timestep of a cell into out[0..8). */
static void cell_step(struct cell *k, struct rng *r, int64_t t, const struct gen_ep *g,
                      float *out)
{
    double q[2], qd[2], qdd[2];
    for (int i = 0; i < 2; i++) {
        if (t - k->j[i].seg_t0 >= k->j[i].seg_len) {
            new_move(&k->j[i], r, t, g->rate);
        }
        joint_state(&k->j[i], t, g->dt, &q[i], &qd[i], &qdd[i]);
    }
    /* Two-link arm in a vertical plane: link 2's weight loads both joints. */
    double g2 = k->j[1].mgl * cos(q[0] + q[1]);
    double tau0 = k->j[0].inertia * qdd[0] + k->j[0].damping * qd[0] +
                  k->j[0].mgl * cos(q[0]) + g2 + 0.05 * normal(r);
    double tau1 = k->j[1].inertia * qdd[1] + k->j[1].damping * qd[1] + g2 + 0.05 * normal(r);
    out[0] = (float)(q[0] + 0.002 * normal(r));
    out[1] = (float)tau0;
    out[2] = (float)(q[1] + 0.002 * normal(r));
    out[3] = (float)tau1;

    if (t >= k->pass_end) {
        new_pass(k, r, t, g->rate);
    }
    k->load += (k->load_target - k->load) * k->load_alpha;
    double wear = k->wear0 + k->wear_drift * (double)t / (double)g->len;
    double vib = 0.0;
    for (int h = 0; h < 3; h++) {
        vib += k->amp[h] * k->im[h];
        double re = k->re[h] * k->rre[h] - k->im[h] * k->rim[h];
        k->im[h] = k->re[h] * k->rim[h] + k->im[h] * k->rre[h];
        k->re[h] = re;
    }
    out[4] = (float)(vib * (1.0 + 2.0 * wear) * (0.3 + k->load) + 0.05 * normal(r));
    out[5] = (float)(k->i0 + k->k_load * k->load * (1.0 + 0.5 * wear) + 0.02 * normal(r));

    double amb = k->amb_walk + 1.5 * k->amb_im;
    double re = k->amb_re * k->amb_rre - k->amb_im * k->amb_rim;
    k->amb_im = k->amb_re * k->amb_rim + k->amb_im * k->amb_rre;
    k->amb_re = re;
    k->amb_walk += 0.0005 * normal(r);
    k->temp += (amb + 15.0 * k->load + 5.0 * wear - k->temp) * k->tau_alpha;
    out[6] = (float)(k->temp + 0.05 * normal(r));
    out[7] = (float)(amb + 0.02 * normal(r));

    if ((t & 4095) == 4095) {
        /* Keep the phasors on the unit circle (rounding drifts them). */
        for (int h = 0; h < 3; h++) {
            double m = sqrt(k->re[h] * k->re[h] + k->im[h] * k->im[h]);
            k->re[h] /= m;
            k->im[h] /= m;
        }
        double m = sqrt(k->amb_re * k->amb_re + k->amb_im * k->amb_im);
        k->amb_re /= m;
        k->amb_im /= m;
    }
}

int64_t dataio_gen_episode_length(const struct dataio_gen_config *cfg, int64_t e)
{
    if (cfg->min_length <= 0 || cfg->min_length >= cfg->length) {
        return cfg->length;
    }
    uint64_t span = (uint64_t)(cfg->length - cfg->min_length + 1);
    return cfg->min_length + (int64_t)(mix(cfg->seed ^ mix((uint64_t)e + 77)) % span);
}

static dure_status_t ep_init(struct gen_ep *g, const struct dataio_gen_config *cfg, int64_t e)
{
    dure_status_t st = DURE_OK;
    memset(g, 0, sizeof *g);
    g->rng.s = mix(cfg->seed) ^ mix((uint64_t)e * 0x9e3779b97f4a7c15ull + 1);
    g->c = cfg->channels;
    g->sensors = cfg->sensors;
    g->per_cell = kept(cfg->sensors);
    g->ncells = (cfg->channels + g->per_cell - 1) / g->per_cell;
    g->rate = cfg->sample_rate_hz;
    g->dt = 1.0 / cfg->sample_rate_hz;
    g->len = dataio_gen_episode_length(cfg, e);
    g->cells = calloc((size_t)g->ncells, sizeof *g->cells);
    DURE_ALLOC_TRY(g->cells, (size_t)g->ncells * sizeof *g->cells);
    for (int k = 0; k < g->ncells; k++) {
        cell_init(&g->cells[k], &g->rng, g->rate);
    }
out:
    return st;
}

/* The next n rows into x (n, C). */
static void ep_rows(struct gen_ep *g, float *x, int64_t n)
{
    float tmp[CELL];
    for (int64_t i = 0; i < n; i++, g->t++) {
        float *row = x + i * g->c;
        int j = 0;
        for (int k = 0; k < g->ncells; k++) {
            /* Every sensor is simulated (they are coupled, and the random
             * stream stays that of the full cell); the plant's are kept. */
            cell_step(&g->cells[k], &g->rng, g->t, g, tmp);
            for (int q = 0; q < CELL && j < g->c; q++) {
                if (g->sensors >> q & 1) {
                    row[j++] = tmp[q];
                }
            }
        }
    }
}

static dure_status_t check(const struct dataio_gen_config *cfg)
{
    dure_status_t st = DURE_OK;
    DURE_CHECK(cfg->episodes >= 1, DURE_ERR_ARG, "--episodes %lld must be >= 1",
               (long long)cfg->episodes);
    DURE_CHECK(cfg->length >= 1, DURE_ERR_ARG, "--length %lld must be >= 1",
               (long long)cfg->length);
    DURE_CHECK(cfg->min_length >= 0 && cfg->min_length <= cfg->length, DURE_ERR_ARG,
               "--min-length %lld must be in 0..%lld", (long long)cfg->min_length,
               (long long)cfg->length);
    DURE_CHECK(cfg->channels >= 1 && cfg->channels <= DATAIO_FORMAT_MAX_CHANNELS,
               DURE_ERR_ARG, "--channels %d must be in 1..%d", cfg->channels,
               DATAIO_FORMAT_MAX_CHANNELS);
    DURE_CHECK(kept(cfg->sensors) > 0 && (cfg->sensors & ~DATAIO_GEN_ALL_SENSORS) == 0,
               DURE_ERR_ARG, "sensor set 0x%x names none of a cell's %d sensors",
               cfg->sensors, CELL);
    DURE_CHECK(cfg->sample_rate_hz > 0 && isfinite(cfg->sample_rate_hz), DURE_ERR_ARG,
               "--sample-rate %g must be positive", cfg->sample_rate_hz);
    DURE_CHECK(cfg->val_fraction >= 0 && cfg->val_fraction < 1, DURE_ERR_ARG,
               "--val-fraction %g must be in [0, 1)", cfg->val_fraction);
out:
    return st;
}

dure_status_t dataio_gen_rows(const struct dataio_gen_config *cfg, int64_t e, int64_t t0,
                              int64_t n, float *x)
{
    dure_status_t st = DURE_OK;
    struct gen_ep g = {0};
    float *skip = NULL;
    DURE_TRY(check(cfg));
    DURE_TRY(ep_init(&g, cfg, e));
    DURE_CHECK(t0 >= 0 && n >= 0 && t0 + n <= g.len, DURE_ERR_ARG,
               "rows [%lld, %lld) are outside episode %lld of %lld timesteps",
               (long long)t0, (long long)(t0 + n), (long long)e, (long long)g.len);
    skip = malloc((size_t)BLOCK * (size_t)cfg->channels * sizeof *skip);
    DURE_ALLOC_TRY(skip, (size_t)BLOCK * (size_t)cfg->channels * sizeof *skip);
    while (g.t < t0) {
        int64_t m = t0 - g.t < BLOCK ? t0 - g.t : BLOCK;
        ep_rows(&g, skip, m);
    }
    ep_rows(&g, x, n);
out:
    free(skip);
    free(g.cells);
    return st;
}

void dataio_gen_channel(unsigned sensors, int k, char *name, int name_len, const char **unit)
{
    static const char *const names[CELL] = {"j0.pos", "j0.torque", "j1.pos", "j1.torque",
                                            "spindle.vib", "spindle.current",
                                            "spindle.temp", "ambient.temp"};
    static const char *const units[CELL] = {"rad", "N*m", "rad", "N*m", "g", "A", "degC",
                                            "degC"};
    int per = kept(sensors), q = 0;
    for (int seen = 0; !((sensors >> q & 1) && seen++ == k % per);) {
        q++;
    }
    snprintf(name, (size_t)name_len, "cell%d.%s", k / per, names[q]);
    *unit = units[q];
}

dure_status_t dataio_gen_write(const struct dataio_gen_config *cfg)
{
    dure_status_t st = DURE_OK;
    dataio_writer_t *w = NULL;
    char **names = NULL;
    const char **units = NULL;
    float *buf = NULL;
    int64_t *val = NULL;
    struct gen_ep g = {0};
    char source[512];
    int c = cfg->channels;

    DURE_TRY(check(cfg));
    names = calloc((size_t)c, sizeof *names);
    units = calloc((size_t)c, sizeof *units);
    DURE_ALLOC_TRY(names && units ? names : NULL, (size_t)c * 16);
    for (int k = 0; k < c; k++) {
        names[k] = malloc(48);
        DURE_ALLOC_TRY(names[k], 48);
        dataio_gen_channel(cfg->sensors, k, names[k], 48, &units[k]);
    }
    snprintf(source, sizeof source,
             "dure data gen: synthetic factory cells (two-link robot arm with "
             "minimum-jerk moves and rigid-body torques; CNC spindle vibration with 3 "
             "harmonics, tool-wear drift and cutting passes; motor current; thermal "
             "lag and ambient drift); seed=%llu episodes=%lld length=%lld "
             "min_length=%lld channels=%d", (unsigned long long)cfg->seed,
             (long long)cfg->episodes, (long long)cfg->length, (long long)cfg->min_length,
             c);
    if (cfg->sensors != DATAIO_GEN_ALL_SENSORS) {
        size_t len = strlen(source);
        snprintf(source + len, sizeof source - len, " sensors=0x%02x", cfg->sensors);
    }
    int64_t total = 0;
    for (int64_t e = 0; e < cfg->episodes; e++) {
        total += dataio_gen_episode_length(cfg, e);
    }
    struct dataio_writer_config wc = {
        .path = cfg->path, .n_channels = c, .channel_names = (const char *const *)names,
        .channel_units = units, .sample_rate_hz = cfg->sample_rate_hz, .source = source,
        .chunk_rows = cfg->chunk_rows ? cfg->chunk_rows : dataio_format_chunk_rows(c, total),
    };
    DURE_TRY(dataio_writer_open(&wc, &w));
    buf = malloc((size_t)BLOCK * (size_t)c * sizeof *buf);
    DURE_ALLOC_TRY(buf, (size_t)BLOCK * (size_t)c * sizeof *buf);
    for (int64_t e = 0; e < cfg->episodes; e++) {
        DURE_TRY(ep_init(&g, cfg, e));
        while (g.t < g.len) {
            int64_t m = g.len - g.t < BLOCK ? g.len - g.t : BLOCK;
            ep_rows(&g, buf, m);
            DURE_TRY(dataio_writer_append(w, buf, m));
        }
        free(g.cells);
        g.cells = NULL;
        DURE_TRY(dataio_writer_end_episode(w));
    }
    int64_t n_val = 0;
    DURE_TRY(dataio_val_episodes(cfg->episodes, cfg->val_fraction, cfg->seed, &val, &n_val));
    if (n_val > 0) {
        DURE_TRY(dataio_writer_set_val(w, val, n_val));
    }
    st = dataio_writer_finish(w);
    w = NULL;
out:
    dataio_writer_abort(w);
    free(g.cells);
    free(buf);
    free(val);
    if (names) {
        for (int k = 0; k < c; k++) {
            free(names[k]);
        }
    }
    free(names);
    free(units);
    return st;
}
