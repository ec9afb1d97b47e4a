/* launcher/cmd_data.c - `dure data gen|import|inspect|stats`. */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataio/csv_import.h"
#include "dataio/gen.h"
#include "dataio/inspect.h"
#include "dataio/reader.h"
#include "dataio/stats.h"
#include "launcher/cliopt.h"
#include "launcher/commands.h"
#include "launcher/exitcodes.h"

void cmd_data_usage(FILE *out)
{
    fprintf(out,
        "usage: dure data gen -o FILE [--episodes N] [--length T] [--min-length T]\n"
        "                     [--channels C] [--sample-rate HZ] [--seed S]\n"
        "                     [--profile cell|arm|mill]\n"
        "                     [--val-fraction F] [--chunk-rows R]\n"
        "       dure data import -o FILE [--episode-col COL] [--time-col COL]\n"
        "                     [--sample-rate HZ] [--hash COL]... [--drop COL]...\n"
        "                     [--meta COL]... [--key-file PATH] [--units COL=UNIT,...]\n"
        "                     [--val-fraction F] [--seed S] [--source TEXT] CSV...\n"
        "       dure data inspect [--layout L] [--keys K] [--window W] [--quick] PATH\n"
        "       dure data stats [--layout L] [--keys K] [--no-store] PATH\n"
        "\n"
        "Datasets in the dure format (dataio/FORMAT.md): HDF5 with /signals [T, C]\n"
        "float32 and /episodes row offsets. dure also reads robomimic/LIBERO files\n"
        "and one-file-per-episode sets (a glob; ALOHA is one case) in place. The\n"
        "layout is found from the file; --layout dure|robomimic|episode-files\n"
        "(aloha is an alias) overrides.\n"
        "\n"
        "gen      write seeded synthetic factory data: robot-arm joints and torques,\n"
        "         CNC spindle vibration with tool-wear drift, motor current, thermal\n"
        "         drift; 8 channels per cell. The same options give the same file.\n"
        "           defaults: 64 episodes of 4096 timesteps, 16 channels, 100 Hz,\n"
        "           seed 1234, validation fraction 0.1\n"
        "         --profile writes another plant: arm (joints and torques, 8\n"
        "         channels, 50 Hz) or mill (spindle vibration, current and\n"
        "         temperatures, 12 channels, 200 Hz); --channels and --sample-rate\n"
        "         still override. Plants of different profiles make a mixture.\n"
        "import   CSV (one file per episode, or one file with --episode-col) into\n"
        "         the dure format. Every column that is not the episode, time,\n"
        "         hashed, dropped or meta column is a numeric channel; empty fields\n"
        "         are NaN. --hash COL replaces an identifying column (plant, line,\n"
        "         machine serial, operator) by HMAC-SHA256 under a secret key read\n"
        "         from --key-file or the DURE_ANON_KEY environment variable (at\n"
        "         least 16 bytes; never stored); --drop COL removes it; --meta COL\n"
        "         keeps it. Hashed and meta columns are stored per episode and must\n"
        "         be constant within one. Malformed CSV is reported by line and\n"
        "         column. --sample-rate is required unless --time-col gives it.\n"
        "inspect  layout, shapes, dtypes, chunking, channels, episode lengths, and\n"
        "         every problem found (--window W: episodes shorter than W; --quick:\n"
        "         no pass over the data). Exit 4 when problems are found.\n"
        "stats    per-channel mean and standard deviation of the training split\n"
        "         (streamed, numerically stable) and the rows holding NaN/Inf;\n"
        "         stored in a dure file as /stats for the loader's normalization.\n"
        "\n"
        "Outputs are written to a temporary file and renamed: a failure never\n"
        "leaves a partial file. Exit codes: 0 ok, 2 usage, 3 bad value, 4 bad or\n"
        "invalid data, 1 other errors.\n");
}

static int bad_usage(const char *sub, const char *msg)
{
    fprintf(stderr, "dure data %s: %s\n", sub, msg);
    return DURE_EXIT_USAGE;
}

static int data_gen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"episodes", required_argument, NULL, 'e'},
        {"length", required_argument, NULL, 'l'},
        {"min-length", required_argument, NULL, 'm'},
        {"channels", required_argument, NULL, 'c'},
        {"sample-rate", required_argument, NULL, 'r'},
        {"seed", required_argument, NULL, 's'},
        {"val-fraction", required_argument, NULL, 'v'},
        {"chunk-rows", required_argument, NULL, 'k'},
        {"profile", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    struct dataio_gen_config cfg;
    const struct dataio_gen_profile *profile = NULL;
    int64_t v = 0;
    int opt, set_channels = 0, set_rate = 0;
    dataio_gen_config_init(&cfg);
    while ((opt = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        int rc = 0;
        switch (opt) {
        case 'o': cfg.path = optarg; break;
        case 'e':
            rc = cli_i64("data gen", "--episodes", optarg, INT64_MIN, INT64_MAX, &cfg.episodes);
            break;
        case 'l':
            rc = cli_i64("data gen", "--length", optarg, INT64_MIN, INT64_MAX, &cfg.length);
            break;
        case 'm':
            rc = cli_i64("data gen", "--min-length", optarg, INT64_MIN, INT64_MAX, &cfg.min_length);
            break;
        case 'c':
            rc = cli_i64("data gen", "--channels", optarg, INT64_MIN, INT64_MAX, &v);
            cfg.channels = v > 0 && v <= 65536 ? (int)v : -1;
            set_channels = 1;
            break;
        case 'r':
            rc = cli_f64("data gen", "--sample-rate", optarg,
                         -INFINITY, INFINITY, &cfg.sample_rate_hz);
            set_rate = 1;
            break;
        case 'p':
            profile = dataio_gen_profile(optarg);
            if (!profile) {
                return bad_usage("gen", "--profile must be cell, arm or mill");
            }
            break;
        case 's':
            rc = cli_i64("data gen", "--seed", optarg, INT64_MIN, INT64_MAX, &v);
            cfg.seed = (uint64_t)v;
            break;
        case 'v':
            rc = cli_f64("data gen", "--val-fraction", optarg,
                         -INFINITY, INFINITY, &cfg.val_fraction);
            break;
        case 'k':
            rc = cli_i64("data gen", "--chunk-rows", optarg, INT64_MIN, INT64_MAX, &cfg.chunk_rows);
            break;
        default: cmd_data_usage(stderr); return DURE_EXIT_USAGE;
        }
        if (rc) {
            return DURE_EXIT_USAGE;
        }
    }
    if (!cfg.path) {
        return bad_usage("gen", "needs -o FILE");
    }
    if (optind < argc) {
        fprintf(stderr, "dure data gen: unexpected argument '%s'\n", argv[optind]);
        return DURE_EXIT_USAGE;
    }
    if (profile) {
        cfg.sensors = profile->sensors;
        cfg.channels = set_channels ? cfg.channels : profile->channels;
        cfg.sample_rate_hz = set_rate ? cfg.sample_rate_hz : profile->sample_rate_hz;
    }
    dure_status_t st = dataio_gen_write(&cfg);
    if (st == DURE_OK) {
        printf("wrote %s: %lld episodes, %d channels at %g Hz (seed %llu)\n", cfg.path,
               (long long)cfg.episodes, cfg.channels, cfg.sample_rate_hz,
               (unsigned long long)cfg.seed);
    }
    return dure_exit_code(st);
}

/* --layout and --keys, shared by inspect and stats. */
struct layout_opts {
    dataio_layout_t layout;
    const char *keys;
};

static int layout_opt(const char *sub, int opt, struct layout_opts *lo)
{
    if (opt == 'L') {
        if (dataio_layout_parse(optarg, &lo->layout) != DURE_OK) {
            fprintf(stderr, "dure data %s: --layout '%s' is not auto, dure, robomimic or "
                    "episode-files (aloha)\n", sub, optarg);
            return -1;
        }
        return 0;
    }
    lo->keys = optarg;
    return 0;
}

static int data_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        {"layout", required_argument, NULL, 'L'},
        {"keys", required_argument, NULL, 'K'},
        {"window", required_argument, NULL, 'w'},
        {"quick", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    struct layout_opts lo = {DATAIO_LAYOUT_AUTO, NULL};
    struct dataio_inspect_config cfg = {0};
    int opt, problems = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'L':
        case 'K':
            if (layout_opt("inspect", opt, &lo)) {
                return DURE_EXIT_USAGE;
            }
            break;
        case 'w':
            if (cli_i64("data inspect", "--window", optarg, 0, INT64_MAX, &cfg.window)) {
                return DURE_EXIT_USAGE;
            }
            break;
        case 'q': cfg.quick = 1; break;
        default: cmd_data_usage(stderr); return DURE_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        return bad_usage("inspect", "needs exactly one PATH");
    }
    cfg.path = argv[optind];
    cfg.layout = lo.layout;
    cfg.keys = lo.keys;
    dure_status_t st = dataio_inspect(&cfg, stdout, &problems);
    if (st != DURE_OK) {
        return dure_exit_code(st);
    }
    return problems ? DURE_EXIT_DATA : DURE_EXIT_OK;
}

static int data_stats(int argc, char **argv)
{
    static const struct option opts[] = {
        {"layout", required_argument, NULL, 'L'},
        {"keys", required_argument, NULL, 'K'},
        {"no-store", no_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    struct layout_opts lo = {DATAIO_LAYOUT_AUTO, NULL};
    int opt, store = 1;
    dure_status_t st = DURE_OK;
    dataio_reader_t *r = NULL;
    struct dataio_stats *s = NULL;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'L':
        case 'K':
            if (layout_opt("stats", opt, &lo)) {
                return DURE_EXIT_USAGE;
            }
            break;
        case 'n': store = 0; break;
        default: cmd_data_usage(stderr); return DURE_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        return bad_usage("stats", "needs exactly one PATH");
    }
    const char *path = argv[optind];
    struct dataio_reader_config rc = {.path = path, .layout = lo.layout, .keys = lo.keys,
                                      .io = DATAIO_IO_SERIAL, .comm = MPI_COMM_NULL};
    DURE_TRY(dataio_reader_open(&rc, &r));
    const struct dataio_dataset_info *in = dataio_reader_info(r);
    dataio_layout_t layout = in->layout;
    if (store && layout == DATAIO_LAYOUT_DURE) {
        dataio_reader_close(r);
        r = NULL;
        DURE_TRY(dataio_stats_update_file(path, &s));
        DURE_TRY(dataio_reader_open(&rc, &r));
        in = dataio_reader_info(r);
    } else {
        DURE_TRY(dataio_stats_compute(r, DATAIO_SPLIT_TRAIN, MPI_COMM_NULL, &s));
    }
    printf("%s: %d channels, %s split, %lld rows with NaN/Inf\n", path, in->n_channels,
           dataio_split_name(s->split), (long long)s->n_nonfinite_rows);
    for (int j = 0; j < in->n_channels; j++) {
        printf("  %4d %-28s %-6s mean %14.7g  std %14.7g  (%lld values)\n", j,
               in->channel_names[j], in->channel_units[j], s->mean[j], s->std[j],
               (long long)s->count[j]);
    }
    if (store && layout == DATAIO_LAYOUT_DURE) {
        printf("stored in %s /stats\n", path);
    } else if (store) {
        printf("not stored: %s files are not modified; the loader computes these at open\n",
               dataio_layout_name(layout));
    }
out:
    dataio_stats_free(s);
    dataio_reader_close(r);
    return dure_exit_code(st);
}

static int data_import(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"episode-col", required_argument, NULL, 'E'},
        {"time-col", required_argument, NULL, 'T'},
        {"sample-rate", required_argument, NULL, 'r'},
        {"hash", required_argument, NULL, 'H'},
        {"drop", required_argument, NULL, 'D'},
        {"meta", required_argument, NULL, 'M'},
        {"key-file", required_argument, NULL, 'k'},
        {"units", required_argument, NULL, 'u'},
        {"val-fraction", required_argument, NULL, 'v'},
        {"seed", required_argument, NULL, 's'},
        {"source", required_argument, NULL, 'S'},
        {NULL, 0, NULL, 0},
    };
    struct dataio_import_config cfg;
    int opt;
    int64_t v = 0;
    dure_status_t st = DURE_OK;
    dataio_import_config_init(&cfg);
    while ((opt = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        int rc = 0;
        switch (opt) {
        case 'o': cfg.path = optarg; break;
        case 'E': cfg.episode_col = optarg; break;
        case 'T': cfg.time_col = optarg; break;
        case 'r':
            rc = cli_f64("data import", "--sample-rate", optarg,
                         -INFINITY, INFINITY, &cfg.sample_rate_hz);
            break;
        case 'H': rc = dataio_import_add_column(&cfg, DATAIO_COL_HASH, optarg) ? -1 : 0; break;
        case 'D': rc = dataio_import_add_column(&cfg, DATAIO_COL_DROP, optarg) ? -1 : 0; break;
        case 'M': rc = dataio_import_add_column(&cfg, DATAIO_COL_META, optarg) ? -1 : 0; break;
        case 'k': cfg.key_file = optarg; break;
        case 'u': cfg.units = optarg; break;
        case 'v':
            rc = cli_f64("data import", "--val-fraction", optarg,
                         -INFINITY, INFINITY, &cfg.val_fraction);
            break;
        case 's':
            rc = cli_i64("data import", "--seed", optarg, INT64_MIN, INT64_MAX, &v);
            cfg.seed = (uint64_t)v;
            break;
        case 'S': cfg.source = optarg; break;
        default:
            dataio_import_config_free(&cfg);
            cmd_data_usage(stderr);
            return DURE_EXIT_USAGE;
        }
        if (rc) {
            dataio_import_config_free(&cfg);
            return DURE_EXIT_USAGE;
        }
    }
    if (!cfg.path || optind >= argc) {
        dataio_import_config_free(&cfg);
        return bad_usage("import", "needs -o FILE and at least one CSV file");
    }
    cfg.inputs = (const char *const *)argv + optind;
    cfg.n_inputs = argc - optind;
    struct dataio_import_result res = {0};
    st = dataio_import(&cfg, &res);
    if (st == DURE_OK) {
        printf("wrote %s: %lld episodes, %d channels, %lld rows at %g Hz%s\n", cfg.path,
               (long long)res.episodes, res.channels, (long long)res.rows, res.sample_rate_hz,
               res.anonymized ? " (anonymized)" : "");
        if (res.raw_columns) {
            printf("note: %d column%s kept raw in /episode_meta (--meta, or an episode "
                   "column not hashed): the file is not anonymized (dure data inspect "
                   "names them)\n", res.raw_columns, res.raw_columns == 1 ? "" : "s");
        }
    }
    dataio_import_config_free(&cfg);
    return dure_exit_code(st);
}

int cmd_data(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } subs[] = {
        {"gen", data_gen},
        {"import", data_import},
        {"inspect", data_inspect},
        {"stats", data_stats},
    };
    if (argc < 2) {
        cmd_data_usage(stderr);
        return DURE_EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) {
        if (strcmp(argv[1], subs[i].name) == 0) {
            dure_getopt_reset();
            return subs[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "dure data: unknown subcommand '%s'\n\n", argv[1]);
    cmd_data_usage(stderr);
    return DURE_EXIT_USAGE;
}
