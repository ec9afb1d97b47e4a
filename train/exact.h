/*
 * train/exact.h - exact mode (run.exact) in the training step: every sum
 * over the global batch follows the fixed tree of common/sumtree.h, so the
 * losses, gradient norms, parameters and moments have the same bits on any
 * world size that divides the micro-batches per step, at any ZeRO stage,
 * bucket size and overlap setting. Internal to train/.
 *
 * In the step (train/train.c):
 *   gradients  after each micro-batch j, train_exact_micro(j) runs this
 *              rank's tree plan: the gradient in the model's vector is
 *              saved or added into saved vectors (the last micro-batch's
 *              adds run range by range from the gradient-ready hook when
 *              overlap is on); the exact bucketer then sends the rank's
 *              frontier rows to the shard owners, who add them in the tree.
 *              ZeRO stages 2 and 3 exchange once per step like stages 0
 *              and 1: at stage 3 the model is still lent its parameters
 *              unit by unit (gathered for forward and backward, with
 *              prefetch, train/zshard.h), but keeps its whole gradient
 *              vector, so that every micro-batch's gradient goes through
 *              the same tree as at stages 0-2 and the bits are theirs.
 *   the norm   squares of this rank's shard of the reduced gradient, in
 *              tiles, folded into its frontier (train_exact_norm_part),
 *              shipped with the control exchange, combined on every rank
 *              (train_exact_norm).
 *   the loss   the M micro-batch losses of the control exchange, by the
 *              tree (train_exact_loss).
 *
 * Memory: the saved vectors are plan->slots gradient-sized vectors (about
 * log2 of the micro-batches per rank; none with one micro-batch per rank),
 * plus a receive area of (rows_max * (R - 1) / R) vectors, in the comm's
 * memory, allocated once (plan/plan.h counts them: tree_plan_worst). At
 * stages 2 and 3 the model's whole gradient vector (4N bytes) comes on top
 * of what those stages hold outside exact mode (a shard, 4N / R, and two
 * units' buffers): stage 3 in exact mode shards parameters and optimizer
 * state, not gradients. Time: the gradient exchange is the exact
 * reduce-scatter once per step (stages 2-3 outside exact mode reduce every
 * micro-batch unit by unit), behind the last backward; stage 3's parameter
 * gathers are the same as outside exact mode.
 */
#ifndef DURE_TRAIN_EXACT_H
#define DURE_TRAIN_EXACT_H

#include <stddef.h>

#include "common/status.h"
#include "train/train_priv.h"

/*
 * Before the bucketer exists: the saved vectors and receive area
 * (collective: comm_mem_alloc), the comm tree and the norm's tiles.
 * t->plan (tree_plan_create, which names the world sizes that work when
 * this one does not divide the micro-batches), t->comm, t->model and
 * t->shard must be set.
 */
dure_status_t train_exact_setup(train_t *t);
void train_exact_free(train_t *t);

/* Bytes of gradient-sized memory exact mode adds on this rank. */
uint64_t train_exact_bytes(const train_t *t);

/*
 * Bytes this rank sends per step for the gradients, counted as the
 * collectives' bus bandwidth counts them: exact mode (the rows to the
 * owners, the stage-0 all-gather, the norm frontier in the control
 * exchange) and the default mode at this stage (all-reduce, or a
 * reduce-scatter per exchange: every micro-batch at stages 2 and 3). The
 * parameter all-gathers of stages 1-3 are the same in both and left out.
 */
void train_exact_traffic(const train_t *t, uint64_t *exact, uint64_t *plain);

/* Micro-batch j's tree ops on elements [off, off + count). */
dure_status_t train_exact_micro(train_t *t, int j, size_t off, size_t count);

/* This rank's norm frontier values into out[t->norm_max] (unused trailing
 * entries zeroed), from the reduced gradient's shard. */
dure_status_t train_exact_norm_part(train_t *t, double *out);

/* The squared norm from every rank's frontier in the control exchange,
 * at offset `at` of each rank's slot. */
dure_status_t train_exact_norm(const train_t *t, size_t at, double *sq);

/* The sum of the step's M micro-batch losses (each rank's at the start of
 * its slot) by the tree. */
dure_status_t train_exact_loss(const train_t *t, double *sum);

#endif
