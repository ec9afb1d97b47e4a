/*
 * launcher/verify.h - compare two runs for `dure verify RUN_A RUN_B`: their
 * manifests field by field, their metrics bit for bit, and the parameters
 * and optimizer state of their newest common checkpoint.
 *
 * Manifest: both RUN/manifest.json (the record of each run's first launch)
 * are flattened to "path = value" leaves ("world.size", "jobspec.optim.lr",
 * "world.hosts[0].name") and compared. Fields that differ between any two
 * runs by design are listed but not counted: created_at, run_dir, command,
 * launch, resumed_from, world.hosts[*].name, jobspec.run.name,
 * jobspec.run.dir, jobspec.checkpoint.dir.
 *
 * Metrics: every line of RUN/metrics.jsonl with a "step"; when a step's key
 * appears more than once (a resumed run re-logs the steps after its
 * checkpoint), the last one counts. Every numeric field, nested ones too
 * (a mixture's "datasets.NAME.loss"), is compared as a double, bitwise,
 * except timings: keys ending in "_s" (seconds, rates per
 * second), "mfu" and "time". A last line cut short by a crash is ignored with
 * a note; a malformed line elsewhere is an error.
 *
 * Checkpoints: the newest step present in both RUN/checkpoints directories
 * (or the directories the manifests' jobspec.checkpoint.dir name; one under
 * jobspec.run.dir is looked for under RUN, wherever verify runs) is read
 * back and /params, /adam_m, /adam_v compared bitwise, with the metadata
 * (except world_size, which resharding changes).
 *
 * Exact mode: when both manifests carry the same "exact" contract
 * (train/manifest.h), the fields that say how the work was spread (world,
 * ZeRO stage, buckets, overlap, algorithms, deterministic, threads and the
 * Slurm shape) are ignored as well, and so is the checkpoint writer's ZeRO
 * stage. A line says why two runs can or cannot be compared bitwise: one
 * run without exact mode, contracts that differ, or two non-exact runs on
 * different world sizes.
 */
#ifndef DURE_LAUNCHER_VERIFY_H
#define DURE_LAUNCHER_VERIFY_H

#include <stdint.h>
#include <stdio.h>

#include "common/status.h"

struct verify_result {
    int manifest_diffs;       /* fields that differ, ignored ones excluded */
    int manifest_ignored;     /* ignored fields that differ */
    int metrics_identical;    /* same steps and keys, every value bitwise equal */
    uint64_t values_compared; /* metric values compared */
    int has_first_diff;       /* a step whose values differ was found ... */
    uint64_t first_diff_step; /* ... this one */
    int ckpt_compared;        /* a common checkpoint step was compared ... */
    uint64_t ckpt_step;       /* ... this one */
    int ckpt_identical;       /* its state and metadata are bitwise equal */
};

/*
 * Compare run directories a and b and print the findings to out. Returns
 * DURE_OK when the comparison could be made (whatever its verdict, which is
 * in *r); DURE_ERR_IO when a manifest or metrics file is missing or
 * unreadable, DURE_ERR_FORMAT when one is malformed (named with its line).
 */
dure_status_t verify_runs(const char *a, const char *b, FILE *out, struct verify_result *r);

#endif
