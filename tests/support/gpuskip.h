/*
 * tests/support/gpuskip.h - GPU tests that skip, saying why, on a machine
 * (or a build) without a GPU.
 */
#ifndef DURE_TESTS_GPUSKIP_H
#define DURE_TESTS_GPUSKIP_H

/*
 * 1 when this dure was built without CUDA or no CUDA device is visible,
 * after printing which (and that `what` goes unchecked); the test then
 * calls cmocka's skip(). 0 when a GPU is there.
 */
int gpuskip_needed(const char *what);

#endif
