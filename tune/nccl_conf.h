/*
 * tune/nccl_conf.h - nccl_tuner.conf, the CSV file read by NCCL's example
 * tuner plugin (plugins/tuner/example in NCCL's sources; the plugin reads
 * the file named by NCCL_TUNER_CONFIG_FILE, else ./nccl_tuner.conf):
 *
 *   collective,min_bytes,max_bytes,algorithm,protocol,channels,nNodes,nRanks[,numPipeOps[,regBuff]]
 *
 * collective: broadcast, reduce, allgather, reducescatter, allreduce;
 * bytes: the operation's total bytes, both ends inclusive; algorithm: tree,
 * ring, collnet_direct, collnet_chain, nvls, nvls_tree, pat; protocol: ll,
 * ll128, simple; channels, nNodes, nRanks, numPipeOps, regBuff: -1 = any
 * (or NCCL's default channel count). A line whose first character is `#`
 * is a comment; lines are at most 255 characters (the plugin reads 256-byte
 * lines). The first matching line wins; nothing matching leaves NCCL's own
 * choice.
 *
 * The plugin skips what it cannot parse without a word; this parser names
 * the file, line and field instead.
 */
#ifndef DURE_TUNE_NCCL_CONF_H
#define DURE_TUNE_NCCL_CONF_H

#include <stddef.h>

#include "collectives/comm.h"
#include "common/status.h"

#define TUNE_NCCL_RULES_MAX 512
#define TUNE_NCCL_LINE_MAX 255

enum tune_nccl_coll { TUNE_NCCL_BROADCAST, TUNE_NCCL_REDUCE, TUNE_NCCL_ALLGATHER,
                      TUNE_NCCL_REDUCESCATTER, TUNE_NCCL_ALLREDUCE, TUNE_NCCL_COLL_COUNT };
enum tune_nccl_algo { TUNE_NCCL_TREE, TUNE_NCCL_RING, TUNE_NCCL_COLLNET_DIRECT,
                      TUNE_NCCL_COLLNET_CHAIN, TUNE_NCCL_NVLS, TUNE_NCCL_NVLS_TREE,
                      TUNE_NCCL_PAT, TUNE_NCCL_ALGO_COUNT };
enum tune_nccl_proto { TUNE_NCCL_LL, TUNE_NCCL_LL128, TUNE_NCCL_SIMPLE, TUNE_NCCL_PROTO_COUNT };

/* The NCCL collective of a dure collective (barrier: broadcast, unused). */
enum tune_nccl_coll tune_nccl_coll_of(enum comm_coll c);
/* Names in the file ("nvls_tree", "ll128"). */
const char *tune_nccl_algo_name(enum tune_nccl_algo a);
const char *tune_nccl_proto_name(enum tune_nccl_proto p);
/* The values of NCCL_ALGO and NCCL_PROTO that pin them ("NVLSTree", "LL128"). */
const char *tune_nccl_algo_env(enum tune_nccl_algo a);
const char *tune_nccl_proto_env(enum tune_nccl_proto p);

struct tune_nccl_rule {
    enum tune_nccl_coll coll;
    size_t min_bytes, max_bytes;   /* inclusive */
    enum tune_nccl_algo algo;
    enum tune_nccl_proto proto;
    int channels, nnodes, nranks;  /* -1 = any / NCCL's default */
    int pipeops, regbuff;          /* -1 = any (also when the line omits them) */
    int line;                      /* where the parser found it (0 when built) */
};

struct tune_nccl_conf {
    int n;
    struct tune_nccl_rule r[TUNE_NCCL_RULES_MAX];
};

/* Append a row matching exactly nnodes and nranks, default channels.
 * DURE_ERR_ARG when full or min > max. */
dure_status_t tune_nccl_conf_add(struct tune_nccl_conf *c, enum tune_nccl_coll coll,
                                 size_t min_bytes, size_t max_bytes, enum tune_nccl_algo algo,
                                 enum tune_nccl_proto proto, int nnodes, int nranks);

/* Write the file (atomically), `comment` lines as '#' comments at the top,
 * then the format line and one 8-field row per rule. */
dure_status_t tune_nccl_conf_write(const struct tune_nccl_conf *c, const char *comment,
                                   const char *path);

/* Parse; DURE_ERR_IO when unreadable, DURE_ERR_FORMAT naming FILE:LINE, the
 * field and the value for anything the plugin would skip or misread. */
dure_status_t tune_nccl_conf_parse(const char *path, struct tune_nccl_conf *c);

/* The first rule matching (coll, bytes, nnodes, nranks), or NULL (NCCL's choice). */
const struct tune_nccl_rule *tune_nccl_conf_pick(const struct tune_nccl_conf *c,
                                                 enum tune_nccl_coll coll, size_t bytes,
                                                 int nnodes, int nranks);

#endif
