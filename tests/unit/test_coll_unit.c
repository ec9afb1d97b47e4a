/*
 * tests/unit/test_coll_unit.c - the parts of collectives/ that need no MPI
 * peers: the shard layout, piece decomposition, algorithm tables and size
 * parsing, and the reduction kernels against a scalar reference.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/backend.h"
#include "collectives/comm.h"
#include "collectives/reduce.h"

static void test_shard_layout(void **state)
{
    (void)state;
    /* n = 5 over 4 ranks: chunk 2 -> 2, 2, 1, 0 */
    const size_t off5[] = {0, 2, 4, 5}, cnt5[] = {2, 2, 1, 0};
    for (int r = 0; r < 4; r++) {
        struct comm_shard s = comm_shard_of(5, 4, r);
        assert_int_equal(s.offset, off5[r]);
        assert_int_equal(s.count, cnt5[r]);
    }
    /* n = 9 over 4: chunk 3 -> 3, 3, 3, 0 (trailing ranks may own nothing) */
    assert_int_equal(comm_shard_of(9, 4, 3).count, 0);
    assert_int_equal(comm_shard_of(9, 4, 3).offset, 9);
    assert_int_equal(comm_shard_of(9, 4, 2).count, 3);
    /* every n and size: shards tile [0, n) in rank order */
    for (size_t n = 0; n < 40; n++) {
        for (int size = 1; size <= 9; size++) {
            size_t next = 0, chunk = (n + (size_t)size - 1) / (size_t)size;
            for (int r = 0; r < size; r++) {
                struct comm_shard s = comm_shard_of(n, size, r);
                assert_int_equal(s.offset, next < n ? (size_t)r * chunk : n);
                assert_true(s.count <= chunk);
                next = s.offset + s.count;
            }
            assert_int_equal(next, n);
        }
    }
    /* bad rank or size: empty */
    assert_int_equal(comm_shard_of(10, 0, 0).count, 0);
    assert_int_equal(comm_shard_of(10, 2, 2).count, 0);
}

static void test_op_pieces(void **state)
{
    (void)state;
    /* reduce-scatter of elements [4, 11) of a vector of 12 over 3 ranks
     * (shards [0,4) [4,8) [8,12)): pieces [4,4)... [4,8) [8,11) */
    struct comm_op op = {.coll = COMM_REDUCE_SCATTER, .total = 12, .offset = 4, .count = 7};
    struct comm_shard p0 = comm_op_piece(&op, 3, 0), p1 = comm_op_piece(&op, 3, 1),
                      p2 = comm_op_piece(&op, 3, 2);
    assert_int_equal(p0.count, 0);
    assert_int_equal(p0.offset, 4);
    assert_int_equal(p1.offset, 4);
    assert_int_equal(p1.count, 4);
    assert_int_equal(p2.offset, 8);
    assert_int_equal(p2.count, 3);
    /* a range inside one shard */
    op.offset = 9;
    op.count = 2;
    assert_int_equal(comm_op_piece(&op, 3, 0).count, 0);
    assert_int_equal(comm_op_piece(&op, 3, 0).offset, 9);
    assert_int_equal(comm_op_piece(&op, 3, 2).count, 2);
    /* all-reduce: the range itself split evenly */
    struct comm_op ar = {.coll = COMM_ALLREDUCE, .total = 7, .offset = 0, .count = 7};
    assert_int_equal(comm_op_piece(&ar, 2, 1).offset, 4);
    assert_int_equal(comm_op_piece(&ar, 2, 1).count, 3);
}

static void test_addresses(void **state)
{
    (void)state;
    float v[10];
    /* in-place reduce-scatter: recv points at the rank's shard inside send */
    struct comm_op op = {.dtype = COMM_F32, .send = v, .send_first = 0, .recv = v + 6,
                         .recv_first = 6};
    assert_ptr_equal(comm_op_recv_at(&op, 8), &v[8]);
    assert_ptr_equal(comm_op_recv_at(&op, 0), &v[0]);
    assert_true(comm_op_in_place(&op, 3));
    float w[4];
    op.recv = w;
    op.recv_first = 6;
    assert_ptr_equal(comm_op_recv_at(&op, 7), &w[1]);
    assert_false(comm_op_in_place(&op, 7));
    assert_int_equal(comm_dtype_size(COMM_BF16), 2);
    assert_int_equal(comm_dtype_size(COMM_F32), 4);
}

static void test_tables(void **state)
{
    (void)state;
    struct comm_algo_table t;
    char buf[128];
    assert_int_equal(comm_algo_table_parse("0:native,1M:shm,32M:ring", &t), DURE_OK);
    assert_int_equal(t.n, 3);
    assert_int_equal(comm_algo_table_pick(&t, 0), COMM_ALGO_NATIVE);
    assert_int_equal(comm_algo_table_pick(&t, 1048575), COMM_ALGO_NATIVE);
    assert_int_equal(comm_algo_table_pick(&t, 1048576), COMM_ALGO_SHM);
    assert_int_equal(comm_algo_table_pick(&t, 32u << 20), COMM_ALGO_RING);
    assert_int_equal(comm_algo_table_pick(&t, SIZE_MAX), COMM_ALGO_RING);
    comm_algo_table_format(&t, buf, sizeof buf);
    assert_string_equal(buf, "0:native,1M:shm,32M:ring");
    assert_int_equal(comm_algo_table_parse("0:ring,4097:shm,2G:native", &t), DURE_OK);
    comm_algo_table_format(&t, buf, sizeof buf);
    assert_string_equal(buf, "0:ring,4097:shm,2G:native");
    /* One node; 2 nodes of 2 and 3 nodes of 1 rank; nodes of unequal size. */
    comm_algo_table_format(comm_algo_table_builtin(1, 2), buf, sizeof buf);
    assert_string_equal(buf, "0:shm");
    comm_algo_table_format(comm_algo_table_builtin(2, 2), buf, sizeof buf);
    assert_string_equal(buf, "0:hier");
    comm_algo_table_format(comm_algo_table_builtin(3, 1), buf, sizeof buf);
    assert_string_equal(buf, "0:hier");
    comm_algo_table_format(comm_algo_table_builtin(2, 0), buf, sizeof buf);
    assert_string_equal(buf, "0:native,1M:ring");
    assert_int_equal(comm_algo_table_parse("0:native,64K:hier", &t), DURE_OK);
    assert_int_equal(comm_algo_table_pick(&t, 65536), COMM_ALGO_HIER);

    dure_log_set_quiet(1);
    const struct {
        const char *text, *msg;
    } bad[] = {
        {"", "algo_table is empty"},
        {"1K:shm", "must start at size 0"},
        {"0:shm,1M:ring,1M:native", "not larger than the one before"},
        {"0:shm,2M:ring,1M:native", "not larger than the one before"},
        {"0:auto", "'auto' is not one of native, ring, shm, hier"},
        {"0:fast", "'fast' is not one of"},
        {"0shm", "is not SIZE:ALGO"},
        {"x:shm", "'x' is not a size"},
        {"0:shm,", "ends with a comma"},
        {"0:shm,1Q:ring", "'1Q' is not a size"},
        {"0:", "names no algorithm"},
        {"0:shm,99999999999999999999:ring", "is not a size"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(comm_algo_table_parse(bad[i].text, &t), DURE_ERR_ARG);
        if (!strstr(dure_last_error(), bad[i].msg)) {
            print_error("table '%s': message '%s' lacks '%s'\n", bad[i].text, dure_last_error(),
                        bad[i].msg);
            fail();
        }
    }
    dure_log_set_quiet(0);
}

static void test_names_and_sizes(void **state)
{
    (void)state;
    enum comm_backend b;
    enum comm_algo a;
    size_t n = 0;
    assert_int_equal(comm_backend_parse("nccl", &b), DURE_OK);
    assert_int_equal(b, COMM_BACKEND_NCCL);
    assert_int_equal(comm_algo_parse("shm", &a), DURE_OK);
    assert_int_equal(a, COMM_ALGO_SHM);
    dure_log_set_quiet(1);
    assert_int_equal(comm_backend_parse("gloo", &b), DURE_ERR_ARG);
    assert_non_null(strstr(dure_last_error(), "'gloo'"));
    assert_int_equal(comm_algo_parse("tree", &a), DURE_ERR_ARG);
    dure_log_set_quiet(0);
    assert_string_equal(comm_coll_name(COMM_REDUCE_SCATTER), "reduce-scatter");
    assert_string_equal(comm_algo_name(COMM_ALGO_RING), "ring");
    assert_string_equal(comm_backend_name(COMM_BACKEND_MPI), "mpi");
    assert_int_equal(comm_parse_bytes("4K", &n), 0);
    assert_int_equal(n, 4096);
    assert_int_equal(comm_parse_bytes("256M", &n), 0);
    assert_int_equal(n, 256u << 20);
    assert_int_equal(comm_parse_bytes("1g", &n), 0);
    assert_int_equal(n, 1u << 30);
    assert_int_equal(comm_parse_bytes("12", &n), 0);
    assert_int_equal(n, 12);
    assert_int_equal(comm_parse_bytes("-1", &n), -1);
    assert_int_equal(comm_parse_bytes("4KB", &n), -1);
    assert_int_equal(comm_parse_bytes("", &n), -1);
    assert_int_equal(comm_parse_bytes(NULL, &n), -1);
}

/* The registry: this build's list (nccl first when built with CUDA), each
 * entry named as the job spec names it, capable of float32 and auto, and
 * the last one, auto's fallback, on host memory. */
static void test_registry(void **state)
{
    (void)state;
    const char *want[] = {
#if DURE_HAVE_CUDA
        "nccl",
#endif
        "mpi",
    };
    const size_t nwant = sizeof want / sizeof want[0];
    size_t n = 0;
    for (const struct comm_backend_entry *const *e = comm_backends; *e; e++, n++) {
        assert_true(n < nwant);
        assert_string_equal((*e)->name, want[n]);
        assert_string_equal(comm_backend_name((*e)->id), (*e)->name);
        assert_true((*e)->reduce_dtypes & (*e)->copy_dtypes & COMM_BIT(COMM_F32));
        assert_true((*e)->usable && (*e)->create);
        assert_true((*e)->algo_table || (*e)->algo_hint);
        if (!comm_backends[n + 1]) {
            assert_int_equal((*e)->memory, COMM_MEM_HOST);
            assert_int_equal((*e)->usable(), 1);
        }
    }
    assert_int_equal(n, nwant);
}

/* The scalar reference: left to right, then one division. */
static void reference(float *dst, const float *const *src, int nsrc, size_t n, int divisor)
{
    for (size_t i = 0; i < n; i++) {
        float s = src[0][i];
        for (int k = 1; k < nsrc; k++) {
            s = s + src[k][i];
        }
        dst[i] = divisor > 1 ? s / (float)divisor : s;
    }
}

static void test_reduce_kernels(void **state)
{
    (void)state;
    enum { N = 5003, K = 5 };
    float *src[K], *got = malloc(N * sizeof *got), *got2 = malloc(N * sizeof *got2),
                   *want = malloc(N * sizeof *want);
    srand(7);
    for (int k = 0; k < K; k++) {
        src[k] = malloc(N * sizeof *src[k]);
        for (size_t i = 0; i < N; i++) {
            /* magnitudes 1e-3 .. 1e3: the summation order shows in the bits */
            src[k][i] = (float)((rand() / (double)RAND_MAX - 0.5) * pow(10.0, (double)(k % 3) * 3 - 3));
        }
    }
    const size_t lens[] = {0, 1, 7, 2048, 2049, N};
    for (int nsrc = 1; nsrc <= K; nsrc++) {
        for (int div = 1; div <= 3; div += 2) {
            for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
                size_t n = lens[l];
                reference(want, (const float *const *)src, nsrc, n, div);
                memset(got2, 0, N * sizeof *got2);
                comm_reduce_f32(got, got2, (const float *const *)src, nsrc, n, div);
                assert_memory_equal(got, want, n * sizeof *got);
                assert_memory_equal(got2, want, n * sizeof *got);
                comm_reduce_f32(got, NULL, (const float *const *)src, nsrc, n, div);
                assert_memory_equal(got, want, n * sizeof *got);
            }
        }
    }
    /* in place: dst is one of the sources */
    float *copy = malloc(N * sizeof *copy);
    memcpy(copy, src[2], N * sizeof *copy);
    reference(want, (const float *const *)src, 4, N, 1);
    comm_reduce_f32(src[2], NULL, (const float *const *)src, 4, N, 1);
    assert_memory_equal(src[2], want, N * sizeof *want);
    memcpy(src[2], copy, N * sizeof *copy);
    /* the two-source kernel */
    reference(want, (const float *const *)src, 2, N, 4);
    comm_reduce2_f32(got, src[0], src[1], N, 4);
    assert_memory_equal(got, want, N * sizeof *want);
    comm_reduce2_f32(src[1], src[0], src[1], N, 4);
    assert_memory_equal(src[1], want, N * sizeof *want);
    for (int k = 0; k < K; k++) {
        free(src[k]);
    }
    free(copy);
    free(got);
    free(got2);
    free(want);
}

/* At most half a piece, in 4 KiB, never below min(segment, 256 KiB); a
 * half piece of 1 MiB or more is not cut. */
static void test_ring_segment_for(void **state)
{
    (void)state;
    const size_t K = 1024, M = K * K;
    assert_int_equal(comm_ring_segment_for(256 * K, 0), 256 * K);
    assert_int_equal(comm_ring_segment_for(256 * K, 64 * M), 256 * K);
    assert_int_equal(comm_ring_segment_for(4 * K, 512 * K), 4 * K);
    assert_int_equal(comm_ring_segment_for(M, 512 * K), 256 * K);  /* two rounds, not one */
    assert_int_equal(comm_ring_segment_for(M, M), 512 * K);
    assert_int_equal(comm_ring_segment_for(M, 700000), 348160);   /* 85 x 4 KiB */
    assert_int_equal(comm_ring_segment_for(M, 2 * M), M);
    assert_int_equal(comm_ring_segment_for(M, 16 * M), M);
    assert_int_equal(comm_ring_segment_for(2 * M, 2 * M), 2 * M);  /* half 1 MiB: uncut */
    assert_int_equal(comm_ring_segment_for(4 * M, 2 * M), 4 * M);  /* one round */
    assert_int_equal(comm_ring_segment_for(2 * M, 2 * M - 8 * K), M - 4 * K);  /* cut */
    assert_int_equal(comm_ring_segment_for(4 * M, 16 * M), 4 * M);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shard_layout),
        cmocka_unit_test(test_op_pieces),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_names_and_sizes),
        cmocka_unit_test(test_ring_segment_for),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_reduce_kernels),
    };
    return cmocka_run_group_tests_name("coll_unit", tests, NULL, NULL);
}
