/*
 * bench/bench_ckpt.c - checkpoint save and load rates against dd, in one run.
 *
 *   mpirun -np 2 build/bench/bench_ckpt [--dir DIR] [--mib M] [--reps R]
 *
 * State: M MiB per vector (params, adam_m, adam_v: 3 M MiB in all), split
 * over the ranks with the ZeRO layout. Each repetition, interleaved so that
 * both see the same machine load:
 *   save   ckpt_save into DIR (write, fsync, SHA-256, rename, latest)
 *   dd     rank 0: dd if=/dev/zero of=DIR/dd.bin bs=4M count=<same bytes>
 *          conv=fsync (the same durability as the save)
 *   load   the checkpoint's pages dropped from the page cache first
 *          (posix_fadvise DONTNEED on that file only), then ckpt_load
 *   dd-r   dd if=<checkpoint> of=/dev/null bs=4M, pages dropped first
 * Rates are bytes of the checkpoint file per second; medians over R. The
 * process keeps large freed buffers for reuse, as dure run does
 * (common/malloc_tune.h).
 * Prints "bench: NAME: VALUE UNIT (PEER: VALUE UNIT, ratio R)" lines and
 * writes bench/results/ckpt_save.json and ckpt_load.json.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/benchline.h"
#include "common/malloc_tune.h"
#include "common/status.h"
#include "common/timing.h"
#include "ckpt/ckpt.h"

#define MAX_REPS 16

/* Drop a file's pages from the page cache so the next read comes from disk. */
static void drop_cache(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        (void)fdatasync(fd);
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
}

/* Run a shell command; its wall time in seconds, or -1 when it failed. */
static double timed_system(const char *cmd)
{
    double t = dure_now_s();
    int rc = system(cmd);
    t = dure_now_s() - t;
    return rc == 0 ? t : -1.0;
}

/* The bench line and its JSON record in bench/results/NAME.json. */
static void report(const char *name, double value, const char *peer, double peer_value,
                   double mib, int reps, int ranks, const char *dir)
{
    const struct dure_bench_figure fig = {name, value, "GB/s", peer, peer_value, "GB/s"};
    char path[256];
    dure_bench_print(stdout, &fig);
    if (mkdir("bench/results", 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench_ckpt: cannot create bench/results: %s\n", strerror(errno));
        return;
    }
    snprintf(path, sizeof path, "bench/results/%s.json", name);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench_ckpt: cannot write %s: %s\n", path, strerror(errno));
        return;
    }
    struct json_writer w;
    json_writer_init(&w, f, 0);
    dure_bench_json_begin(&w, &fig);
    json_key(&w, "state_mib");
    json_number(&w, mib, 10);
    json_key(&w, "reps");
    json_int(&w, reps);
    json_key(&w, "ranks");
    json_int(&w, ranks);
    json_key(&w, "dir");
    json_string(&w, dir);
    json_key(&w, "statistic");
    json_string(&w, "median");
    json_key(&w, "loadavg_1m");
    json_number(&w, dure_bench_load_average(), 3);
    json_key(&w, "ncpu");
    json_int(&w, sysconf(_SC_NPROCESSORS_ONLN));
    json_end_object(&w);
    fputc('\n', f);
    if (json_writer_finish(&w, path) != DURE_OK || fclose(f) != 0) {
        fprintf(stderr, "bench_ckpt: cannot write %s\n", path);
    }
}

static void usage(FILE *out)
{
    fprintf(out, "usage: mpirun -np N bench_ckpt [--dir DIR] [--mib M] [--reps R]\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"mib", required_argument, NULL, 'm'},
        {"reps", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = "build/bench-ckpt";
    long mib = 128;
    int reps = 3, rank = 0, size = 1, opt, fail = 0;
    char *end;

    /* What dure run does at start (launcher/cmd_run.c). */
    dure_malloc_reuse_large(DURE_MALLOC_KEEP_BYTES);
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    dure_log_set_rank(rank);
    while ((opt = getopt_long(argc, argv, "d:m:r:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            dir = optarg;
            break;
        case 'm':
            mib = strtol(optarg, &end, 10);
            fail |= *end != '\0' || mib < 1 || mib > 65536;
            break;
        case 'r':
            reps = (int)strtol(optarg, &end, 10);
            fail |= *end != '\0' || reps < 1 || reps > MAX_REPS;
            break;
        case 'h':
            usage(stdout);
            MPI_Finalize();
            return 0;
        default:
            fail = 1;
        }
    }
    if (fail || optind != argc) {
        if (rank == 0) {
            usage(stderr);
        }
        MPI_Finalize();
        return 2;
    }
    if (rank == 0 && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench_ckpt: cannot create %s: %s\n", dir, strerror(errno));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    size_t n = (size_t)mib << 18; /* floats per vector */
    size_t chunk = (n + (size_t)size - 1) / (size_t)size;
    size_t off = (size_t)rank * chunk < n ? (size_t)rank * chunk : n;
    size_t len = n - off < chunk ? n - off : chunk;
    float *state = malloc(3 * (len ? len : 1) * sizeof(float));
    if (!state) {
        fprintf(stderr, "bench_ckpt: out of memory for %zu floats\n", 3 * len);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (size_t i = 0; i < 3 * len; i++) {
        state[i] = (float)((off + i) % 1000003) * 1e-3f;
    }
    struct ckpt_meta m;
    memset(&m, 0, sizeof m);
    m.n_params = n;
    snprintf(m.model, sizeof m.model, "bench n=%zu", n);

    double save_r[MAX_REPS], dd_r[MAX_REPS], load_r[MAX_REPS], ddr_r[MAX_REPS];
    double sv_write = 0, sv_sync = 0, sv_hash = 0;
    uint64_t bytes = 0;
    char path[CKPT_PATH_MAX], cmd[2 * CKPT_PATH_MAX];
    for (int r = 0; r < reps; r++) {
        struct ckpt_io_stats io;
        m.step = (uint64_t)r + 1;
        MPI_Barrier(MPI_COMM_WORLD);
        if (ckpt_save(MPI_COMM_WORLD, dir, &m, state, state + len, state + 2 * len, off,
                      len, 1, &io) != DURE_OK) {
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        bytes = io.bytes;
        save_r[r] = (double)io.bytes / io.total_s / 1e9;
        sv_write += io.write_s / reps;
        sv_sync += io.sync_s / reps;
        sv_hash += io.hash_s / reps;

        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0) {
            snprintf(cmd, sizeof cmd,
                     "dd if=/dev/zero of='%s/dd.bin' bs=4M count=%llu conv=fsync "
                     "status=none && rm -f '%s/dd.bin'",
                     dir, (unsigned long long)((bytes + (4u << 20) - 1) >> 22), dir);
            double t = timed_system(cmd);
            dd_r[r] =
                t > 0 ? (double)(((bytes + (4u << 20) - 1) >> 22) << 22) / t / 1e9 : 0;
        }

        ckpt_path(dir, m.step, path, sizeof path);
        if (rank == 0) {
            drop_cache(path);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        if (ckpt_load(MPI_COMM_WORLD, path, m.model, n, NULL, state, state + len,
                      state + 2 * len, off, len, &io) != DURE_OK) {
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        load_r[r] = (double)io.bytes / io.total_s / 1e9;

        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0) {
            drop_cache(path);
            snprintf(cmd, sizeof cmd, "dd if='%s' of=/dev/null bs=4M status=none", path);
            double t = timed_system(cmd);
            ddr_r[r] = t > 0 ? (double)bytes / t / 1e9 : 0;
        }
    }
    if (rank == 0) {
        double s = dure_median(save_r, reps), d = dure_median(dd_r, reps);
        double l = dure_median(load_r, reps), dr = dure_median(ddr_r, reps);
        printf("checkpoint: %.1f MiB file, %d ranks, %d reps; save phases (mean): write "
               "%.3f s, fsync+rename %.3f s, sha256 %.3f s (overlapped with fsync); "
               "load average %.1f on %ld CPUs\n",
               (double)bytes / 1048576.0, size, reps, sv_write, sv_sync, sv_hash,
               dure_bench_load_average(), sysconf(_SC_NPROCESSORS_ONLN));
        report("ckpt_save", s, "dd_write_fsync", d, 3.0 * (double)mib, reps, size, dir);
        report("ckpt_load", l, "dd_read_cold", dr, 3.0 * (double)mib, reps, size, dir);
        unlink(path);
        char side[CKPT_PATH_MAX + 16], latest[CKPT_PATH_MAX];
        snprintf(side, sizeof side, "%s.sha256", path);
        snprintf(latest, sizeof latest, "%s/latest", dir);
        unlink(side);
        unlink(latest);
        rmdir(dir);
    }
    free(state);
    MPI_Finalize();
    return 0;
}
