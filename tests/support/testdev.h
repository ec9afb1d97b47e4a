/*
 * tests/support/testdev.h - the devices of tests: the cpu device, and the
 * cuda device of a test that needs a GPU:
 * the device or a skip with the reason printed. Under `make gpu-check`
 * (DURE_REQUIRE_GPU=1) a missing GPU fails the test instead: there a skip
 * would pass without checking anything.
 */
#ifndef DURE_TESTS_TESTDEV_H
#define DURE_TESTS_TESTDEV_H

#include "device/device.h"

/* The cuda device (ordinal 0), opened once and kept; NULL after printing why
 * (the caller then skip()s), or a test failure when DURE_REQUIRE_GPU=1. */
device_t *testdev_cuda(void);

/* The cpu device, opened once and kept. */
device_t *testdev_cpu(void);

#endif
