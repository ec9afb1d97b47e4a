/*
 * bench/dataio_bench.c - dataio benchmarks, each against a peer measured in
 * the same run (see bench/run.d/dataio.sh, which makes the files):
 *
 *   dataio_bench stream FILE B P       one sequential epoch through the loader
 *                                      vs `cat FILE > /dev/null`
 *   dataio_bench windows FILE PEER.py [NAME]
 *                                      random 512 x 16 windows in batches of 64
 *                                      vs h5py slicing the same windows
 *   dataio_bench rss SMALL BIG         peak RSS of the loader streaming each
 *                                      file, for two prefetch depths
 *   mpirun -np 2 dataio_bench io FILE  io serial vs mpiio, 2 ranks
 *   dataio_bench mix ONE A B C         shuffled, normalized windows/s of a
 *                                      mixture of A, B, C vs ONE dataset
 *   dataio_bench probe FILE B SHUF NORM PREFETCH   one setting, no peer
 *
 * Each prints `bench: NAME: VALUE UNIT (PEER: VALUE UNIT, ratio R)` (medians
 * of several repetitions) and writes bench/results/NAME.json. The exit code
 * is 1 when a data check fails (the loader's bytes differ from the file's).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <mpi.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/benchline.h"
#include "common/h5guard.h"
#include "common/fsutil.h"
#include "common/timing.h"
#include "dataio/loader.h"

extern char **environ;

#define REPS 5
#define WIN 512
#define RESULTS "bench/results"

/* One extra field of a result's JSON: a number, or a boolean (is_bool). */
struct field {
    const char *key;
    double v;
    int is_bool;
};
#define NFIELDS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* The bench line and its JSON twin. */
static void report(const char *name, double value, const char *unit, const char *peer,
                   double peer_value, const char *peer_unit, const struct field *extra,
                   int nextra)
{
    const struct dure_bench_figure fig = {name, value, unit, peer, peer_value, peer_unit};
    dure_bench_print(stdout, &fig);
    char path[256];
    mkdir(RESULTS, 0777);
    snprintf(path, sizeof path, "%s/%s.json", RESULTS, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "dataio_bench: cannot write %s: %s\n", path, strerror(errno));
        return;
    }
    struct json_writer w;
    json_writer_init(&w, f, 0);
    dure_bench_json_begin(&w, &fig);
    json_key(&w, "repetitions");
    json_int(&w, REPS);
    for (int i = 0; i < nextra; i++) {
        json_key(&w, extra[i].key);
        if (extra[i].is_bool) {
            json_bool(&w, extra[i].v != 0);
        } else {
            json_number(&w, extra[i].v, 10);
        }
    }
    json_end_object(&w);
    fputc('\n', f);
    if (json_writer_finish(&w, path) != DURE_OK || fclose(f) != 0) {
        fprintf(stderr, "dataio_bench: cannot write %s\n", path);
    }
}

static dataio_loader_t *open_loader(const char *path, int batch, int shuffle, int normalize,
                                    int prefetch, MPI_Comm comm, dataio_io_t io)
{
    struct dataio_loader_config c;
    dataio_loader_t *ld = NULL;
    dataio_loader_config_init(&c);
    c.path = path;
    c.window = WIN;
    c.global_batch = batch;
    c.shuffle = shuffle;
    c.normalize = normalize;
    c.prefetch = prefetch;
    c.split = DATAIO_SPLIT_ALL;
    c.comm = comm;
    c.io = io;
    c.seed = 2026;
    if (dataio_loader_open(&c, &ld) != DURE_OK) {
        fprintf(stderr, "dataio_bench: cannot open the loader on %s\n", path);
        exit(1);
    }
    return ld;
}

/* The loader's first batch must hold the file's rows (normalize off). */
static int check_batch(dataio_loader_t *ld, const struct dataio_batch *b)
{
    struct dataio_reader_config rc = {.path = dataio_loader_info(ld)->path,
                                      .layout = DATAIO_LAYOUT_DURE, .io = DATAIO_IO_SERIAL,
                                      .comm = MPI_COMM_NULL};
    dataio_reader_t *r = NULL;
    dataio_scratch_t *s = NULL;
    int c = b->channels, ok = 1;
    float *x = malloc((size_t)WIN * (size_t)c * sizeof *x);
    if (!x || dataio_reader_open(&rc, &r) != DURE_OK ||
        dataio_scratch_create(r, WIN, &s) != DURE_OK) {
        ok = 0;
    }
    for (int i = 0; ok && i < b->local_batch; i++) {
        ok = dataio_reader_read_logged(r, b->episode[i], b->start[i], WIN, x, s) == DURE_OK &&
             memcmp(x, b->data + (size_t)i * WIN * (size_t)c, (size_t)WIN * (size_t)c * 4) == 0;
    }
    if (!ok) {
        fprintf(stderr, "dataio_bench: the loader's batch differs from the file\n");
    }
    free(x);
    dataio_scratch_free(s);
    dataio_reader_close(r);
    return ok;
}

static double time_cat(const char *path)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int status = 0;
    char *argv[] = {"cat", (char *)path, NULL};
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    double t0 = dure_now_s();
    if (posix_spawnp(&pid, "cat", &fa, NULL, argv, environ) != 0 ||
        waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "dataio_bench: cat %s failed\n", path);
        exit(1);
    }
    double dt = dure_now_s() - t0;
    posix_spawn_file_actions_destroy(&fa);
    return dt;
}

static int bench_stream(const char *path, int batch, int prefetch)
{
    dataio_loader_t *ld = open_loader(path, batch, 0, 0, prefetch, MPI_COMM_NULL,
                                      DATAIO_IO_SERIAL);
    int64_t per = dataio_loader_batches_per_epoch(ld);
    double bytes = (double)per * batch * WIN * dataio_loader_channels(ld) * 4;
    double t_ld[REPS], t_cat[REPS];
    struct dataio_cursor zero = {0, 0};
    struct dataio_batch b;
    int ok = 1;
    /* Warm up: the page cache, and one untimed epoch through the loader. */
    time_cat(path);
    for (int64_t i = 0; i < per; i++) {
        if (dataio_loader_next(ld, &b) != DURE_OK) {
            return 1;
        }
    }
    for (int r = 0; r < REPS; r++) {
        t_cat[r] = time_cat(path);
        dataio_loader_set_cursor(ld, &zero);
        double t0 = dure_now_s();
        for (int64_t i = 0; i < per; i++) {
            if (dataio_loader_next(ld, &b) != DURE_OK) {
                return 1;
            }
        }
        t_ld[r] = dure_now_s() - t0;
    }
    dataio_loader_set_cursor(ld, &zero);
    ok = dataio_loader_next(ld, &b) == DURE_OK && check_batch(ld, &b);
    double gb = bytes / dure_median(t_ld, REPS) / 1e9, cat = bytes / dure_median(t_cat, REPS) / 1e9;
    const struct field extra[] = {
        {"bytes", bytes, 0}, {"batch_windows", batch, 0}, {"window", WIN, 0},
        {"prefetch", prefetch, 0}};
    report("dataio_stream", gb, "GB/s", "cat", cat, "GB/s", extra, NFIELDS(extra));
    dataio_loader_close(ld);
    return ok ? 0 : 1;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One pass of the h5py peer over the listed windows: wall and CPU seconds
 * with the default chunk cache (d) and with it off (n). */
static int h5py_pass(const char *peer, const char *path, const char *list, double d[2],
                     double n[2])
{
    char cmd[1024], line[256];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %s %d", peer, path, list, WIN);
    FILE *p = popen(cmd, "r");
    int got = p && fgets(line, sizeof line, p) &&
              sscanf(line, "%lf %lf %lf %lf", &d[0], &d[1], &n[0], &n[1]) == 4;
    if (p) {
        got &= pclose(p) == 0;
    }
    if (!got) {
        fprintf(stderr, "dataio_bench: the h5py peer failed (%s)\n", cmd);
    }
    return got;
}

static int bench_windows(const char *path, const char *peer, const char *name)
{
    enum { BATCH = 64, BATCHES = 100, N = BATCH * BATCHES };
    dataio_loader_t *ld = open_loader(path, BATCH, 1, 1, 4, MPI_COMM_NULL, DATAIO_IO_SERIAL);
    const struct dataio_dataset_info *in = dataio_loader_info(ld);
    struct dataio_cursor start = {3, 0};
    struct dataio_batch b;
    double wall[REPS], cpu[REPS], hd[REPS], hdc[REPS], hn[REPS], hnc[REPS];
    char list[] = "/tmp/dure-bench-windows-XXXXXX";
    int fd = mkstemp(list);
    FILE *lf = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!lf) {
        fprintf(stderr, "dataio_bench: cannot write the window list\n");
        return 1;
    }
    /* The windows of the timed passes, for the peer. */
    dataio_loader_set_cursor(ld, &start);
    for (int i = 0; i < BATCHES; i++) {
        if (dataio_loader_next(ld, &b) != DURE_OK) {
            return 1;
        }
        for (int k = 0; k < BATCH; k++) {
            fprintf(lf, "%lld\n", (long long)(in->episode_start[b.episode[k]] + b.start[k]));
        }
    }
    fclose(lf);
    /* Alternate the loader's passes with the peer's: both see the same load. */
    for (int r = 0; r < REPS; r++) {
        dataio_loader_set_cursor(ld, &start);
        double t0 = dure_now_s(), c0 = cpu_now();
        for (int i = 0; i < BATCHES; i++) {
            if (dataio_loader_next(ld, &b) != DURE_OK) {
                return 1;
            }
        }
        wall[r] = dure_now_s() - t0;
        cpu[r] = cpu_now() - c0;
        double d[2], n[2];
        if (!h5py_pass(peer, path, list, d, n)) {
            unlink(list);
            return 1;
        }
        hd[r] = d[0], hdc[r] = d[1], hn[r] = n[0], hnc[r] = n[1];
    }
    unlink(list);
    double ours = N / dure_median(wall, REPS), ours_cpu = N / dure_median(cpu, REPS);
    double h_def = N / dure_median(hd, REPS), h_nc = N / dure_median(hn, REPS);
    double h_def_cpu = N / dure_median(hdc, REPS), h_nc_cpu = N / dure_median(hnc, REPS);
    const struct field extra[] = {
        {"windows", N, 0},           {"window", WIN, 0},
        {"channels", b.channels, 0}, {"normalize", 1, 1},
        {"loader_per_cpu_s", ours_cpu, 0}, {"h5py_default_per_cpu_s", h_def_cpu, 0},
        {"h5py_no_cache_per_cpu_s", h_nc_cpu, 0}};
    char n2[96], n3[96];
    snprintf(n2, sizeof n2, "%s_vs_h5py_nocache", name);
    snprintf(n3, sizeof n3, "%s_cpu", name);
    report(name, ours, "windows/s", "h5py slicing", h_def, "windows/s", extra, NFIELDS(extra));
    report(n2, ours, "windows/s", "h5py slicing, chunk cache off", h_nc, "windows/s", extra,
           NFIELDS(extra));
    report(n3, ours_cpu, "windows/CPU-s", "h5py slicing, chunk cache off", h_nc_cpu,
           "windows/CPU-s", extra, NFIELDS(extra));
    dataio_loader_close(ld);
    return 0;
}

/* In a child: peak RSS growth (KiB) over one epoch of streaming `path`. */
static long rss_child(const char *path, int prefetch)
{
    /* Load the libraries and HDF5's own state first: they are not the loader's. */
    dataio_loader_t *warm = open_loader(path, 64, 1, 1, 1, MPI_COMM_NULL, DATAIO_IO_SERIAL);
    dataio_loader_close(warm);
    long base = dure_proc_status_kb("VmRSS:");
    dataio_loader_t *ld = open_loader(path, 64, 1, 1, prefetch, MPI_COMM_NULL, DATAIO_IO_SERIAL);
    int64_t per = dataio_loader_batches_per_epoch(ld);
    struct dataio_batch b;
    volatile float sink = 0;
    for (int64_t i = 0; i < per; i++) {
        if (dataio_loader_next(ld, &b) != DURE_OK) {
            exit(1);
        }
        sink += b.data[0];
    }
    long peak = dure_proc_status_kb("VmHWM:");
    dataio_loader_close(ld);
    return peak - base;
}

static long rss_of(const char *path, int prefetch)
{
    int fds[2];
    long kb = -1;
    if (pipe(fds) != 0) {
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        long v = rss_child(path, prefetch);
        ssize_t w = write(fds[1], &v, sizeof v);
        _exit(w == (ssize_t)sizeof v ? 0 : 1);
    }
    close(fds[1]);
    if (pid < 0 || read(fds[0], &kb, sizeof kb) != (ssize_t)sizeof kb) {
        kb = -1;
    }
    close(fds[0]);
    waitpid(pid, NULL, 0);
    return kb;
}

static int bench_rss(const char *small, const char *big)
{
    struct stat ss, sb;
    if (stat(small, &ss) || stat(big, &sb)) {
        return 1;
    }
    int depths[2] = {2, 8};
    for (int i = 0; i < 2; i++) {
        long a = rss_of(small, depths[i]), b = rss_of(big, depths[i]);
        if (a < 0 || b < 0) {
            return 1;
        }
        /* The ring: (prefetch + 1) batches of 64 x 512 x 16 float32. */
        double ring = (depths[i] + 1) * 64.0 * WIN * 16 * 4 / 1048576.0;
        char name[64], peer[96];
        snprintf(name, sizeof name, "dataio_rss_1gib_prefetch%d", depths[i]);
        snprintf(peer, sizeof peer, "peak RSS growth on a %.0f MiB file", ss.st_size / 1048576.0);
        const struct field extra[] = {{"big_file_bytes", (double)sb.st_size, 0},
                                      {"small_file_bytes", (double)ss.st_size, 0},
                                      {"ring_mib", ring, 0}};
        report(name, b / 1024.0, "MiB", peer, a / 1024.0, "MiB", extra, NFIELDS(extra));
    }
    return 0;
}

static int bench_io(const char *path)
{
    enum { BATCH = 64, BATCHES = 100 };
    int provided = 0, rank = 0, size = 1;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    double rate[2] = {0, 0};
    dataio_io_t modes[2] = {DATAIO_IO_SERIAL, DATAIO_IO_MPIIO};
    for (int m = 0; m < 2; m++) {
        dataio_loader_t *ld = open_loader(path, BATCH, 1, 0, 4, MPI_COMM_WORLD, modes[m]);
        double t[REPS];
        struct dataio_cursor start = {1, 0};
        struct dataio_batch b;
        for (int r = 0; r < REPS; r++) {
            dataio_loader_set_cursor(ld, &start);
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = dure_now_s();
            for (int i = 0; i < BATCHES; i++) {
                if (dataio_loader_next(ld, &b) != DURE_OK) {
                    MPI_Abort(MPI_COMM_WORLD, 1);
                }
            }
            double dt = dure_now_s() - t0, slowest = 0;
            MPI_Allreduce(&dt, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            t[r] = slowest;
        }
        rate[m] = (double)BATCH * BATCHES * WIN * b.channels * 4 / dure_median(t, REPS) / 1e9;
        dataio_loader_close(ld);
    }
    if (rank == 0) {
        const struct field extra[] = {{"ranks", size, 0},
                                      {"mpi_thread_multiple", provided == MPI_THREAD_MULTIPLE, 1}};
        report("dataio_io_serial", rate[0], "GB/s (random windows, all ranks)", "mpiio",
               rate[1], "GB/s", extra, NFIELDS(extra));
    }
    MPI_Finalize();
    return 0;
}

/* Explore settings: one rank, BATCHES batches, median of REPS; no peer. */
static int bench_probe(const char *path, int batch, int shuffle, int normalize, int prefetch)
{
    enum { BATCHES = 100 };
    dataio_loader_t *ld = open_loader(path, batch, shuffle, normalize, prefetch, MPI_COMM_NULL,
                                      DATAIO_IO_SERIAL);
    struct dataio_cursor start = {1, 0};
    struct dataio_batch b;
    double t[REPS], c[REPS];
    for (int r = 0; r < REPS; r++) {
        dataio_loader_set_cursor(ld, &start);
        double t0 = dure_now_s(), c0 = cpu_now();
        for (int i = 0; i < BATCHES; i++) {
            if (dataio_loader_next(ld, &b) != DURE_OK) {
                return 1;
            }
        }
        t[r] = dure_now_s() - t0;
        c[r] = cpu_now() - c0;
    }
    double n = (double)batch * BATCHES;
    printf("probe: batch %d shuffle %d normalize %d prefetch %d: %.0f windows/s, "
           "%.2f us CPU per window, %.2f GB/s\n", batch, shuffle, normalize, prefetch,
           n / dure_median(t, REPS), dure_median(c, REPS) / n * 1e6,
           n * WIN * b.channels * 4 / dure_median(t, REPS) / 1e9);
    dataio_loader_close(ld);
    return 0;
}

/* Seconds for BATCHES shuffled batches of a loader from epoch 1. */
static double time_batches(dataio_loader_t *ld, int batches)
{
    struct dataio_cursor start = {1, 0};
    struct dataio_batch b;
    dataio_loader_set_cursor(ld, &start);
    double t0 = dure_now_s();
    for (int i = 0; i < batches; i++) {
        if (dataio_loader_next(ld, &b) != DURE_OK) {
            exit(1);
        }
    }
    return dure_now_s() - t0;
}

/* A mixture of three datasets (weights 1 : 2 : 3) against one dataset of
 * their combined size, both shuffled and normalized, in the same run. */
static int bench_mix(const char *single, const char *const *parts)
{
    enum { BATCH = 64 };
    struct dataio_source src[3];
    struct dataio_loader_config c;
    dataio_loader_t *one = open_loader(single, BATCH, 1, 1, 4, MPI_COMM_NULL,
                                       DATAIO_IO_SERIAL);
    dataio_loader_t *mix = NULL;
    static const char *const names[3] = {"a", "b", "c"};
    for (int d = 0; d < 3; d++) {
        src[d] = (struct dataio_source){.name = names[d], .path = parts[d], .weight = d + 1};
    }
    dataio_loader_config_init(&c);
    c.n_sources = 3;
    c.sources = src;
    c.window = WIN;
    c.global_batch = BATCH;
    c.prefetch = 4;
    c.split = DATAIO_SPLIT_ALL;
    c.seed = 2026;
    c.io = DATAIO_IO_SERIAL;
    if (dataio_loader_open(&c, &mix) != DURE_OK) {
        fprintf(stderr, "dataio_bench: cannot open the mixture\n");
        return 1;
    }
    /* Alternate the two, so that both see the same load; medians. */
    enum { BATCHES = 100, ROUNDS = 3 * REPS };
    double t1[ROUNDS], tm[ROUNDS];
    time_batches(one, BATCHES);
    time_batches(mix, BATCHES);
    for (int r = 0; r < ROUNDS; r++) {
        t1[r] = time_batches(one, BATCHES);
        tm[r] = time_batches(mix, BATCHES);
    }
    double w1 = (double)BATCH * BATCHES / dure_median(t1, ROUNDS);
    double wm = (double)BATCH * BATCHES / dure_median(tm, ROUNDS);
    const struct field extra[] = {
        {"batch_windows", BATCH, 0}, {"window", WIN, 0}, {"datasets", 3, 0}};
    report("dataio_mixture3", wm, "windows/s", "one dataset", w1, "windows/s", extra,
           NFIELDS(extra));
    dataio_loader_close(mix);
    dataio_loader_close(one);
    return 0;
}

/* A robomimic-shaped file: data/demo_N (N < demos) with obs/{joint_pos,
 * joint_vel, eef_pos, gripper} and actions, 50 x 7 float32 each, and the
 * env_args string attribute: 6 objects per demo. */
static int make_robomimic(const char *path, int demos)
{
    static const char *const keys[5] = {"obs/joint_pos", "obs/joint_vel", "obs/eef_pos",
                                        "obs/gripper", "actions"};
    float v[50 * 7];
    hsize_t dims[2] = {50, 7};
    for (int i = 0; i < 50 * 7; i++) {
        v[i] = (float)i;
    }
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t data = f >= 0 ? H5Gcreate2(f, "data", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    hid_t sp = H5Screate_simple(2, dims, NULL);
    int ok = data >= 0 && sp >= 0;
    for (int d = 0; ok && d < demos; d++) {
        char name[64];
        snprintf(name, sizeof name, "demo_%d", d);
        hid_t g = H5Gcreate2(data, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hid_t obs = g >= 0 ? H5Gcreate2(g, "obs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
        ok = obs >= 0;
        for (int k = 0; ok && k < 5; k++) {
            hid_t ds = H5Dcreate2(g, keys[k], H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                                  H5P_DEFAULT);
            ok = ds >= 0 && H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
            if (ds >= 0) H5Dclose(ds);
        }
        if (obs >= 0) H5Gclose(obs);
        if (g >= 0) H5Gclose(g);
    }
    if (sp >= 0) H5Sclose(sp);
    if (data >= 0) H5Gclose(data);
    if (f >= 0) H5Fclose(f);
    if (!ok) {
        fprintf(stderr, "dataio_bench: cannot write '%s'\n", path);
    }
    return ok ? 0 : 1;
}

/* n opens and closes of path, checked first by common/h5guard.h or not:
 * seconds. */
static double time_opens(const char *path, int check, int n)
{
    double t0 = dure_now_s();
    for (int i = 0; i < n; i++) {
        hid_t f = check && h5guard_path(path, path) != DURE_OK
                      ? H5I_INVALID_HID
                      : H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f < 0) {
            fprintf(stderr, "dataio_bench: cannot open '%s'\n", path);
            exit(1);
        }
        H5Fclose(f);
    }
    return dure_now_s() - t0;
}

/* Opening a file as the dataset readers and checkpoints do (H5Fopen, then
 * the structural check of common/h5guard.h) against H5Fopen alone,
 * interleaved; medians per open. A dure file has a dozen objects; the
 * robomimic-shaped one (written here, `demos` demos) has 6 per demo. */
static int bench_guard(const char *dure_file, const char *robo_file, int demos)
{
    enum { OPENS = 20, ROUNDS = 3 * REPS };
    const char *files[2] = {dure_file, robo_file};
    const char *names[2] = {"dataio_open_checked_dure", "dataio_open_checked_robomimic"};
    if (make_robomimic(robo_file, demos) != 0) {
        return 1;
    }
    for (int k = 0; k < 2; k++) {
        double tc[ROUNDS], t0[ROUNDS];
        time_opens(files[k], 1, 2);
        for (int r = 0; r < ROUNDS; r++) {
            t0[r] = time_opens(files[k], 0, OPENS);
            tc[r] = time_opens(files[k], 1, OPENS);
        }
        const struct field extra[] = {{"opens", OPENS, 0}, {"rounds", ROUNDS, 0},
                                      {"demos", k ? demos : 0, 0}};
        report(names[k], 1e3 * dure_median(tc, ROUNDS) / OPENS, "ms", "H5Fopen+H5Fclose",
               1e3 * dure_median(t0, ROUNDS) / OPENS, "ms", extra, NFIELDS(extra));
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 7 && strcmp(argv[1], "probe") == 0) {
        return bench_probe(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
    }
    if (argc == 5 && strcmp(argv[1], "stream") == 0) {
        return bench_stream(argv[2], atoi(argv[3]), atoi(argv[4]));
    }
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "windows") == 0) {
        return bench_windows(argv[2], argv[3], argc == 5 ? argv[4] : "dataio_windows");
    }
    if (argc == 4 && strcmp(argv[1], "rss") == 0) {
        return bench_rss(argv[2], argv[3]);
    }
    if (argc == 6 && strcmp(argv[1], "mix") == 0) {
        return bench_mix(argv[2], (const char *const *)argv + 3);
    }
    if (argc == 5 && strcmp(argv[1], "guard") == 0) {
        return bench_guard(argv[2], argv[3], atoi(argv[4]));
    }
    if (argc == 3 && strcmp(argv[1], "io") == 0) {
        return bench_io(argv[2]);
    }
    fprintf(stderr, "usage: dataio_bench stream FILE BATCH PREFETCH | windows FILE PEER.py "
                    "[NAME] | rss SMALL BIG | io FILE | mix ONE A B C | probe FILE BATCH SHUFFLE NORMALIZE "
                    "PREFETCH\n");
    return 2;
}
