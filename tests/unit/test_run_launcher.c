/*
 * tests/unit/test_run_launcher.c - the parts of dure run that need no MPI:
 * metrics JSON lines and their truncation on resume, durations, the local
 * rank from the launchers' environment, the GPU peak table, the signal flag.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/status.h"
#include "common/timing.h"
#include "train/metrics.h"
#include "device/device.h"
#include "launcher/ranks.h"
#include "launcher/signals.h"
#include "tests/support/tmpdir.h"

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    return tmpdir_make(dir, sizeof dir, "unit-run");
}

static int remove_dir(void **state)
{
    (void)state;
    return tmpdir_remove(dir);
}

static char *slurp(const char *name)
{
    char path[256];
    static char buf[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static struct dure_step_metrics step_of(long step, double loss)
{
    struct dure_step_metrics s = {0};
    s.step = step;
    s.loss = loss;
    s.grad_norm = 0.5;
    s.lr = 1e-3;
    s.step_s = 0.25;
    s.timesteps_per_s = 1000;
    s.mfu = 0.125;
    return s;
}

static void test_metrics_lines_exact_and_null(void **state)
{
    dure_metrics_t *m = NULL;
    (void)state;
    assert_int_equal(dure_metrics_open(&m, dir, 0, 10, 5, NULL), DURE_OK);
    struct dure_step_metrics s = step_of(1, 0.1);
    assert_int_equal(dure_metrics_step(m, &s), DURE_OK);
    s = step_of(2, NAN);
    s.skipped = 1;
    assert_int_equal(dure_metrics_step(m, &s), DURE_OK);
    assert_int_equal(dure_metrics_val(m, 2, 1.0 / 3.0, 0.75), DURE_OK);
    assert_int_equal(dure_metrics_close(m), DURE_OK);
    const char *text = slurp("metrics.jsonl");
    /* 17 significant digits: the double read back is the double written. */
    assert_non_null(strstr(text, "{\"step\":1,\"loss\":0.10000000000000001,"));
    assert_non_null(strstr(text, "{\"step\":2,\"loss\":null,"));
    assert_non_null(strstr(text, "\"skipped\":true}"));
    assert_non_null(
        strstr(text, "{\"step\":2,\"val_loss\":0.33333333333333331,\"baseline_loss\":0.75}"));
    double back = strtod(strstr(text, "val_loss\":") + 10, NULL);
    assert_true(back == 1.0 / 3.0);
}

static void test_metrics_resume_drops_later_steps(void **state)
{
    dure_metrics_t *m = NULL;
    (void)state;
    assert_int_equal(dure_metrics_open(&m, dir, 0, 10, 5, NULL), DURE_OK);
    for (long i = 1; i <= 6; i++) {
        struct dure_step_metrics s = step_of(i, (double)i);
        assert_int_equal(dure_metrics_step(m, &s), DURE_OK);
        if (i % 2 == 0) {
            assert_int_equal(dure_metrics_val(m, i, 0.5, NAN), DURE_OK);
        }
    }
    assert_int_equal(dure_metrics_close(m), DURE_OK);
    /* Resume from a checkpoint after step 4: steps 5 and 6 go. */
    assert_int_equal(dure_metrics_open(&m, dir, 4, 10, 5, NULL), DURE_OK);
    struct dure_step_metrics s = step_of(5, 55.0);
    assert_int_equal(dure_metrics_step(m, &s), DURE_OK);
    assert_int_equal(dure_metrics_close(m), DURE_OK);
    const char *text = slurp("metrics.jsonl");
    assert_non_null(strstr(text, "{\"step\":4,\"val_loss\":0.5}"));
    assert_null(strstr(text, "{\"step\":6"));
    assert_null(strstr(text, "\"loss\":5,"));
    assert_non_null(strstr(text, "{\"step\":5,\"loss\":55,"));
    int lines = 0;
    for (const char *p = text; *p; p++) {
        lines += *p == '\n';
    }
    assert_int_equal(lines, 4 + 2 + 1);
    /* A fresh start (no checkpoint) in the same directory starts afresh. */
    assert_int_equal(dure_metrics_open(&m, dir, 0, 10, 5, NULL), DURE_OK);
    assert_int_equal(dure_metrics_close(m), DURE_OK);
    assert_string_equal(slurp("metrics.jsonl"), "");
}

static void test_metrics_progress_lines(void **state)
{
    dure_metrics_t *m = NULL;
    char *buf = NULL;
    size_t len = 0;
    (void)state;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    assert_int_equal(dure_metrics_open(&m, dir, 0, 20, 10, out), DURE_OK);
    for (long i = 1; i <= 20; i++) {
        struct dure_step_metrics s = step_of(i, 1.0);
        assert_int_equal(dure_metrics_step(m, &s), DURE_OK);
    }
    assert_int_equal(dure_metrics_close(m), DURE_OK);
    fclose(out);
    /* Not a terminal: the first step, every 10th, and the last. */
    int lines = 0;
    for (char *p = buf; *p; p++) {
        lines += *p == '\n';
    }
    assert_int_equal(lines, 3);
    assert_non_null(strstr(buf, "step  1/20"));
    assert_non_null(strstr(buf, "step 10/20 | loss 1.0000"));
    /* 10 steps left at 0.25 s each. */
    assert_non_null(strstr(buf, "eta 3s"));
    assert_null(strstr(buf, "\r"));
    free(buf);
}

static void test_format_duration(void **state)
{
    char b[32];
    (void)state;
    dure_format_duration(7.4, b, sizeof b);
    assert_string_equal(b, "7s");
    dure_format_duration(125, b, sizeof b);
    assert_string_equal(b, "2m05s");
    dure_format_duration(3723, b, sizeof b);
    assert_string_equal(b, "1h02m03s");
    dure_format_duration(NAN, b, sizeof b);
    assert_string_equal(b, "?");
}

static void test_local_rank_from_env(void **state)
{
    int r = -1, n = -1;
    const char *src = NULL;
    (void)state;
    unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
    unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    unsetenv("SLURM_LOCALID");
    unsetenv("SLURM_NTASKS_PER_NODE");
    assert_int_equal(dure_ranks_local_from_env(&r, &n, &src), 0);

    setenv("SLURM_LOCALID", "3", 1);
    setenv("SLURM_NTASKS_PER_NODE", "4(x2)", 1);
    assert_int_equal(dure_ranks_local_from_env(&r, &n, &src), 1);
    assert_int_equal(r, 3);
    assert_int_equal(n, -1);
    assert_string_equal(src, "SLURM_LOCALID");

    /* Open MPI's variables win: mpirun inside a Slurm allocation. */
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);
    setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1);
    assert_int_equal(dure_ranks_local_from_env(&r, &n, &src), 1);
    assert_int_equal(r, 1);
    assert_int_equal(n, 2);
    assert_string_equal(src, "OMPI_COMM_WORLD_LOCAL_RANK");

    dure_log_set_quiet(1);
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "one", 1);
    assert_int_equal(dure_ranks_local_from_env(&r, &n, &src), -1);
    dure_log_set_quiet(0);
    assert_non_null(strstr(dure_last_error(), "OMPI_COMM_WORLD_LOCAL_RANK='one'"));
    unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
    unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    unsetenv("SLURM_LOCALID");
    unsetenv("SLURM_NTASKS_PER_NODE");
}

static void test_gpu_peak_table(void **state)
{
    (void)state;
    assert_true(device_peak_gpu_table("NVIDIA H100 80GB HBM3") == 989.4e12);
    assert_true(device_peak_gpu_table("NVIDIA H100 PCIe") == 756.0e12);
    assert_true(device_peak_gpu_table("NVIDIA H200") == 989.4e12);
    assert_true(device_peak_gpu_table("NVIDIA A100-SXM4-80GB") == 312.0e12);
    assert_true(device_peak_gpu_table("NVIDIA L40S") == 362.1e12);
    assert_true(device_peak_gpu_table("NVIDIA L4") == 121.0e12);
    assert_true(device_peak_gpu_table("Some Future GPU") == 0);
}

static void test_cpu_peak_measured(void **state)
{
    double f = 0;
    (void)state;
    assert_int_equal(device_peak_cpu_measure(128, &f), DURE_OK);
    /* Any real CPU does more than 100 MFLOP/s and less than 100 TFLOP/s. */
    assert_true(f > 1e8 && f < 1e14);
}

static void test_signal_flag(void **state)
{
    (void)state;
    assert_int_equal(dure_signals_install(), DURE_OK);
    assert_int_equal(dure_signals_pending(), 0);
    raise(SIGUSR2);
    assert_int_equal(dure_signals_pending(), SIGUSR2);
    raise(SIGTERM); /* the first signal is the one reported */
    assert_int_equal(dure_signals_pending(), SIGUSR2);
    dure_signals_restore();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metrics_lines_exact_and_null, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(test_metrics_resume_drops_later_steps, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(test_metrics_progress_lines, make_dir, remove_dir),
        cmocka_unit_test(test_format_duration),
        cmocka_unit_test(test_local_rank_from_env),
        cmocka_unit_test(test_gpu_peak_table),
        cmocka_unit_test(test_cpu_peak_measured),
        cmocka_unit_test(test_signal_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
