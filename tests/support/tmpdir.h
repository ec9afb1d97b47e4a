/*
 * tests/support/tmpdir.h - a test's own directory under /tmp: made fresh,
 * counted (to check nothing is left half-written), removed with everything
 * in it. Tests write only there, never into the working directory.
 */
#ifndef DURE_TESTS_TMPDIR_H
#define DURE_TESTS_TMPDIR_H

#include <stddef.h>

/* Create /tmp/dure-<tag>-XXXXXX into dir (cap >= 64); 0 on success. */
int tmpdir_make(char *dir, size_t cap, const char *tag);

/* Entries in dir, "." and ".." not counted; -1 when it cannot be read. */
int tmpdir_count(const char *dir);

/* Remove dir and everything below it; 0 on success. */
int tmpdir_remove(const char *dir);

#endif
