/*
 * dataio/gen.h - `dure data gen`: seeded synthetic manufacturing data.
 *
 * Channels come in cells of 8 (the last cell may be cut short):
 *   cellK.j0.pos, cellK.j0.torque, cellK.j1.pos, cellK.j1.torque
 *       two robot-arm joints (rad, N*m) moving by minimum-jerk point-to-point
 *       moves; torque = I*qdd + b*qd + m*g*l*cos(q) + coupling + noise
 *   cellK.spindle.vib      CNC spindle vibration (g): three harmonics of the
 *                          spindle frequency, amplitude growing with tool wear
 *                          that drifts slowly over the episode, cutting passes
 *   cellK.spindle.current  spindle motor current (A): load and wear
 *   cellK.spindle.temp     spindle temperature (degC): first-order lag of load
 *   cellK.ambient.temp     ambient temperature (degC): slow drift
 * Every episode draws its own parameters (masses, frequencies, wear rate,
 * move targets) from (seed, episode), so the output is a pure function of
 * the configuration: the same seed gives the same bytes of /signals.
 */
#ifndef DURE_DATAIO_GEN_H
#define DURE_DATAIO_GEN_H

#include <stdint.h>

#include "common/status.h"

struct dataio_gen_config {
    const char *path;        /* output file (written atomically) */
    int64_t episodes;        /* E >= 1 */
    int64_t length;          /* timesteps per episode (the longest) */
    int64_t min_length;      /* shortest episode; lengths uniform in
                                [min_length, length]; 0 = all `length` */
    int channels;            /* C >= 1 */
    double sample_rate_hz;   /* > 0 */
    uint64_t seed;
    double val_fraction;     /* share of episodes in the validation split */
    int64_t chunk_rows;      /* 0 = the format's default */
    unsigned sensors;        /* bit q keeps sensor q of every cell (the list
                                above, j0.pos = bit 0); a cell is then
                                popcount(sensors) channels */
};

#define DATAIO_GEN_ALL_SENSORS 0xffu

/* A plant (--profile): its sensors, channels and sample rate. Plants of
 * different profiles have different channel sets and rates: a mixture. */
struct dataio_gen_profile {
    const char *name;
    unsigned sensors;
    int channels;
    double sample_rate_hz;
    const char *what;
};

/* The profile called name; NULL if there is none. */
const struct dataio_gen_profile *dataio_gen_profile(const char *name);

/* Defaults: 64 episodes of 4096 timesteps, 16 channels at 100 Hz, every
 * sensor, seed 1234, validation fraction 0.1. path must still be set. */
void dataio_gen_config_init(struct dataio_gen_config *cfg);

/* Length of episode e under cfg. */
int64_t dataio_gen_episode_length(const struct dataio_gen_config *cfg, int64_t e);

/* Rows [t0, t0 + n) of episode e into x (n, C): exactly what
 * dataio_gen_write stores (O(t0 + n) work; for tests and checks). */
dure_status_t dataio_gen_rows(const struct dataio_gen_config *cfg, int64_t e, int64_t t0,
                              int64_t n, float *x);

/* Channel k's name and unit for a sensor set. */
void dataio_gen_channel(unsigned sensors, int k, char *name, int name_len, const char **unit);

/* Write the dataset (dure format, stats included). */
dure_status_t dataio_gen_write(const struct dataio_gen_config *cfg);

#endif
