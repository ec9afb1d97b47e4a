/* launcher/cmd_ckpt.c - `dure ckpt inspect FILE` and `dure ckpt verify FILE...`. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt/ckpt.h"
#include "launcher/commands.h"
#include "launcher/exitcodes.h"

void cmd_ckpt_usage(FILE *out)
{
    fprintf(out,
            "usage: dure ckpt inspect FILE\n"
            "       dure ckpt verify FILE...\n"
            "\n"
            "inspect  print a checkpoint's metadata (step, learning rate, loader cursor,\n"
            "         RNG state, seed, configuration hash, world size, model shape) and\n"
            "         how its datasets are stored; reads no tensor data.\n"
            "verify   check each file completely: metadata, every block of /params,\n"
            "         /adam_m and /adam_v against its CRC-32C in /checksums (files of\n"
            "         format version 1: every chunk against its Fletcher32), and the\n"
            "         file's SHA-256 against its sidecar FILE.sha256.\n"
            "\n"
            "Exit status: 0 all good; 1 a file is missing or unreadable; 4 a file is\n"
            "damaged or not a dure checkpoint; 2 usage error.\n");
}

/* "12.3 MiB", "58.6 KiB", "300 B". */
static const char *human(uint64_t bytes, char *buf, size_t cap)
{
    if (bytes >= (1u << 20)) {
        snprintf(buf, cap, "%.1f MiB", (double)bytes / 1048576.0);
    } else if (bytes >= 1024) {
        snprintf(buf, cap, "%.1f KiB", (double)bytes / 1024.0);
    } else {
        snprintf(buf, cap, "%llu B", (unsigned long long)bytes);
    }
    return buf;
}

static int inspect(const char *path)
{
    struct ckpt_meta m;
    struct ckpt_dataset_info info[CKPT_N_DATASETS];
    struct stat sb;
    char side[CKPT_PATH_MAX + 16], hb[32];
    dure_status_t st = ckpt_describe(path, &m, info);
    if (st != DURE_OK) {
        return dure_exit_code(st);
    }
    printf("checkpoint:   %s (%s)\n", path,
           human(stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0, hb, sizeof hb));
    printf("step:         %" PRIu64 " completed (optimizer step %" PRIu64 ")\n", m.step,
           m.opt_step);
    printf("lr:           %.9g\n", m.lr);
    printf("loss:         %.9g\n", m.loss);
    printf("loader:       epoch %" PRIu64 ", position %" PRIu64 " windows\n", m.epoch,
           m.position);
    if (m.n_rng == 0) {
        printf("rng:          none stored (the data order is keyed by seed and epoch)\n");
    } else {
        printf("rng:          %u words:", m.n_rng);
        for (uint32_t i = 0; i < m.n_rng; i++) {
            printf(" %016" PRIx64, m.rng[i]);
        }
        printf("\n");
    }
    printf("seed:         %" PRIu64 "\n", m.seed);
    printf("config hash:  %016" PRIx64 "\n", m.config_hash);
    printf("world size:   %u (zero_stage %u)\n", m.world_size, m.zero_stage);
    printf("model:        %s\n", m.model);
    printf("parameters:   %" PRIu64 "\n", m.n_params);
    printf("datasets:\n");
    for (int i = 0; i < CKPT_N_DATASETS; i++) {
        if (info[i].sum_block) {
            printf("  /%-7s float32 [%" PRIu64 "], contiguous, CRC-32C per %" PRIu64
                   " elements, %s stored\n",
                   ckpt_dataset_names[i], info[i].n, info[i].sum_block,
                   human(info[i].storage_bytes, hb, sizeof hb));
        } else {
            printf("  /%-7s float32 [%" PRIu64 "], chunks of %" PRIu64 ", Fletcher32 %s, "
                   "%s stored\n",
                   ckpt_dataset_names[i], info[i].n, info[i].chunk,
                   info[i].fletcher32 ? "on" : "OFF",
                   human(info[i].storage_bytes, hb, sizeof hb));
        }
    }
    snprintf(side, sizeof side, "%s.sha256", path);
    printf("content hash: %s\n",
           stat(side, &sb) == 0 ? "SHA-256 sidecar present (check it: dure ckpt verify)"
                                : "NO SHA-256 sidecar");
    return DURE_EXIT_OK;
}

static int verify(const char *path)
{
    struct ckpt_verify_report r;
    dure_log_set_quiet(1);
    dure_status_t st = ckpt_verify(path, &r);
    dure_log_set_quiet(0);
    if (st == DURE_OK) {
        printf("ok: %s: metadata, the checksum of every block of /params /adam_m "
               "/adam_v, SHA-256 %s matches its sidecar\n",
               path, r.sha256);
        return DURE_EXIT_OK;
    }
    for (const char *line = r.problems; *line;) {
        size_t n = strcspn(line, "\n");
        fprintf(stderr, "dure ckpt verify: %s: %.*s\n", path, (int)n, line);
        line += n + (line[n] == '\n');
    }
    fprintf(stderr, "  metadata %s, datasets %s, content hash %s\n",
            r.meta_ok ? "ok" : "BAD",
            !r.meta_ok      ? "not checked"
            : r.datasets_ok ? "ok"
                            : "BAD",
            !r.hash_present ? "MISSING"
            : r.hash_ok     ? "ok"
                            : "MISMATCH");
    return dure_exit_code(st);
}

int cmd_ckpt(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (opt == 'h') {
            cmd_ckpt_usage(stdout);
            return DURE_EXIT_OK;
        }
        cmd_ckpt_usage(stderr);
        return DURE_EXIT_USAGE;
    }
    if (optind >= argc) {
        fprintf(stderr, "dure ckpt: missing action (inspect or verify)\n\n");
        cmd_ckpt_usage(stderr);
        return DURE_EXIT_USAGE;
    }
    const char *action = argv[optind++];
    int nfiles = argc - optind;
    if (strcmp(action, "inspect") == 0 && nfiles == 1) {
        return inspect(argv[optind]);
    }
    if (strcmp(action, "verify") == 0 && nfiles >= 1) {
        int worst = DURE_EXIT_OK;
        for (int i = optind; i < argc; i++) {
            int rc = verify(argv[i]);
            worst = rc > worst ? rc : worst;
        }
        return worst;
    }
    if (strcmp(action, "inspect") == 0 || strcmp(action, "verify") == 0) {
        fprintf(stderr, "dure ckpt %s: %s\n\n", action,
                nfiles == 0 ? "missing FILE" : "takes exactly one FILE");
    } else {
        fprintf(stderr, "dure ckpt: unknown action '%s' (inspect or verify)\n\n", action);
    }
    cmd_ckpt_usage(stderr);
    return DURE_EXIT_USAGE;
}
