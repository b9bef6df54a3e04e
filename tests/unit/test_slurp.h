/* A whole file read into memory for a unit test (golden executables,
 * libraries, texts): fails the test when it cannot be read.  The bytes
 * are followed by a NUL that *len does not count, so a text can be used
 * as a string.  Include after cmocka.h. */
#ifndef FERRY_TEST_SLURP_H
#define FERRY_TEST_SLURP_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static inline uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  long n = ftell(f);
  assert_true(n >= 0);
  rewind(f);
  uint8_t *p = malloc((size_t)n + 1);
  assert_non_null(p);
  assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  p[n] = 0;
  *len = (size_t)n;
  return p;
}

#endif
