/*
 * collectives/comm_forms.c - the public collective forms (comm.h): blocking,
 * start, and the range forms of buckets and ZeRO. Each only describes its
 * operation as one struct comm_op over global element indices
 * (backend.h) and hands it to comm_issue; the forms differ in nothing else.
 */
#include "collectives/comm_priv.h"

/* ---------------------------------------------------------------- operations */

static struct comm_op op_allreduce(const void *send, void *recv, size_t count,
                                   enum comm_dtype dt, enum comm_redop redop)
{
    return (struct comm_op){.coll = COMM_ALLREDUCE, .dtype = dt, .redop = redop,
                            .send = send, .recv = recv, .total = count, .count = count};
}

static struct comm_op op_reduce_scatter(const comm_t *c, const void *send, void *recv,
                                        size_t count, enum comm_dtype dt, enum comm_redop redop)
{
    struct comm_shard sh = comm_shard_of(count, c->size, c->rank);
    return (struct comm_op){.coll = COMM_REDUCE_SCATTER, .dtype = dt, .redop = redop,
                            .send = send, .recv = recv, .recv_first = sh.offset,
                            .total = count, .count = count};
}

static struct comm_op op_allgather(const comm_t *c, const void *send, void *recv, size_t count,
                                   enum comm_dtype dt)
{
    struct comm_shard sh = comm_shard_of(count, c->size, c->rank);
    return (struct comm_op){.coll = COMM_ALLGATHER, .dtype = dt, .send = send,
                            .send_first = sh.offset, .recv = recv, .total = count,
                            .count = count};
}

static struct comm_op op_broadcast(const void *send, void *recv, size_t count,
                                   enum comm_dtype dt, int root)
{
    return (struct comm_op){.coll = COMM_BROADCAST, .dtype = dt, .root = root, .send = send,
                            .recv = recv, .total = count, .count = count};
}

static struct comm_op op_range(enum comm_coll coll, void *buf, size_t total, size_t offset,
                               size_t count, enum comm_dtype dt, enum comm_redop redop)
{
    return (struct comm_op){.coll = coll, .dtype = dt, .redop = redop, .send = buf,
                            .recv = buf, .total = total, .offset = offset, .count = count};
}

/* A rank whose shard is empty may pass NULL for it. */
static void fix_empty_shard(struct comm_op *op, int own_send)
{
    if (own_send && !op->send) {
        op->send = op->recv;
    }
    if (!own_send && !op->recv) {
        op->recv = (void *)op->send;
    }
}

/* ---------------------------------------------------------------- blocking */

dure_status_t comm_allreduce(comm_t *c, const void *send, void *recv, size_t count,
                             enum comm_dtype dt, enum comm_redop op)
{
    struct comm_op o = op_allreduce(send, recv, count, dt, op);
    return comm_issue(c, &o, NULL);
}

dure_status_t comm_reduce_scatter(comm_t *c, const void *send, void *recv, size_t count,
                                  enum comm_dtype dt, enum comm_redop op)
{
    struct comm_op o = op_reduce_scatter(c, send, recv, count, dt, op);
    fix_empty_shard(&o, 0);
    return comm_issue(c, &o, NULL);
}

dure_status_t comm_allgather(comm_t *c, const void *send, void *recv, size_t count,
                             enum comm_dtype dt)
{
    struct comm_op o = op_allgather(c, send, recv, count, dt);
    fix_empty_shard(&o, 1);
    return comm_issue(c, &o, NULL);
}

dure_status_t comm_broadcast(comm_t *c, const void *send, void *recv, size_t count,
                             enum comm_dtype dt, int root)
{
    struct comm_op o = op_broadcast(c->rank == root ? send : recv, recv, count, dt, root);
    return comm_issue(c, &o, NULL);
}

dure_status_t comm_barrier(comm_t *c)
{
    struct comm_op o = {.coll = COMM_BARRIER};
    return comm_issue(c, &o, NULL);
}

dure_status_t comm_reduce_scatter_range(comm_t *c, void *buf, size_t total, size_t offset,
                                        size_t count, enum comm_dtype dt, enum comm_redop op)
{
    struct comm_op o = op_range(COMM_REDUCE_SCATTER, buf, total, offset, count, dt, op);
    return comm_issue(c, &o, NULL);
}

dure_status_t comm_allgather_range(comm_t *c, void *buf, size_t total, size_t offset,
                                   size_t count, enum comm_dtype dt)
{
    struct comm_op o = op_range(COMM_ALLGATHER, buf, total, offset, count, dt, COMM_SUM);
    return comm_issue(c, &o, NULL);
}

/* ---------------------------------------------------------------- start */

dure_status_t comm_allreduce_start(comm_t *c, const void *send, void *recv, size_t count,
                                   enum comm_dtype dt, enum comm_redop op, comm_req_t **req)
{
    struct comm_op o = op_allreduce(send, recv, count, dt, op);
    return comm_issue(c, &o, req);
}

dure_status_t comm_reduce_scatter_start(comm_t *c, const void *send, void *recv,
                                        size_t count, enum comm_dtype dt,
                                        enum comm_redop op, comm_req_t **req)
{
    struct comm_op o = op_reduce_scatter(c, send, recv, count, dt, op);
    fix_empty_shard(&o, 0);
    return comm_issue(c, &o, req);
}

dure_status_t comm_allgather_start(comm_t *c, const void *send, void *recv, size_t count,
                                   enum comm_dtype dt, comm_req_t **req)
{
    struct comm_op o = op_allgather(c, send, recv, count, dt);
    fix_empty_shard(&o, 1);
    return comm_issue(c, &o, req);
}

dure_status_t comm_broadcast_start(comm_t *c, const void *send, void *recv, size_t count,
                                   enum comm_dtype dt, int root, comm_req_t **req)
{
    struct comm_op o = op_broadcast(c->rank == root ? send : recv, recv, count, dt, root);
    return comm_issue(c, &o, req);
}

dure_status_t comm_reduce_scatter_range_start(comm_t *c, void *buf, size_t total,
                                              size_t offset, size_t count, enum comm_dtype dt,
                                              enum comm_redop op, comm_req_t **req)
{
    struct comm_op o = op_range(COMM_REDUCE_SCATTER, buf, total, offset, count, dt, op);
    return comm_issue(c, &o, req);
}

dure_status_t comm_allgather_range_start(comm_t *c, void *buf, size_t total, size_t offset,
                                         size_t count, enum comm_dtype dt, comm_req_t **req)
{
    struct comm_op o = op_range(COMM_ALLGATHER, buf, total, offset, count, dt, COMM_SUM);
    return comm_issue(c, &o, req);
}

static struct comm_op op_tree(const struct comm_tree *t, size_t total, size_t offset,
                              size_t count)
{
    return (struct comm_op){.coll = COMM_TREE_REDUCE_SCATTER, .dtype = COMM_F32,
                            .redop = COMM_SUM, .tree = t, .total = total, .offset = offset,
                            .count = count};
}

dure_status_t comm_tree_reduce_scatter_range(comm_t *c, const struct comm_tree *t,
                                             size_t total, size_t offset, size_t count)
{
    struct comm_op o = op_tree(t, total, offset, count);
    return comm_issue(c, &o, NULL);
}

dure_status_t comm_tree_reduce_scatter_range_start(comm_t *c, const struct comm_tree *t,
                                                   size_t total, size_t offset, size_t count,
                                                   comm_req_t **req)
{
    struct comm_op o = op_tree(t, total, offset, count);
    return comm_issue(c, &o, req);
}

/* The part forms: the range's buffer starts at element `offset`, this
 * rank's part buffer at the part's first element. */
static struct comm_op op_part(const comm_t *c, enum comm_coll coll, const void *range,
                              void *mine, size_t total, size_t offset, size_t count,
                              enum comm_dtype dt, enum comm_redop redop)
{
    struct comm_shard part = comm_range_part(total, c->size, c->rank, offset, count);
    struct comm_op o = {.coll = coll, .dtype = dt, .redop = redop, .total = total,
                        .offset = offset, .count = count};
    /* An empty part's pointer is never dereferenced: the range's serves. */
    void *own = part.count ? mine : (void *)range;
    size_t own_first = part.count ? part.offset : offset;
    if (coll == COMM_REDUCE_SCATTER) {
        o.send = range;
        o.send_first = offset;
        o.recv = own;
        o.recv_first = own_first;
    } else {
        o.send = own;
        o.send_first = own_first;
        o.recv = (void *)range;
        o.recv_first = offset;
    }
    return o;
}

dure_status_t comm_reduce_scatter_part_start(comm_t *c, const void *range, void *mine,
                                             size_t total, size_t offset, size_t count,
                                             enum comm_dtype dt, enum comm_redop op,
                                             comm_req_t **req)
{
    struct comm_op o =
        op_part(c, COMM_REDUCE_SCATTER, range, mine, total, offset, count, dt, op);
    return comm_issue(c, &o, req);
}

dure_status_t comm_allgather_part_start(comm_t *c, const void *mine, void *range, size_t total,
                                        size_t offset, size_t count, enum comm_dtype dt,
                                        comm_req_t **req)
{
    struct comm_op o =
        op_part(c, COMM_ALLGATHER, range, (void *)mine, total, offset, count, dt, COMM_SUM);
    return comm_issue(c, &o, req);
}
