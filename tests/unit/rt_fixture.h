/* The cmocka fixture of the runtime tests (test_runtime_core.c,
 * test_runtime_module.c, test_runtime_ffi.c, test_opencl.c): a runtime
 * over a fresh work folder, removed with everything in it at teardown.
 * Included by each; uses cmocka's assertions. */
#ifndef FERRY_TESTS_RT_FIXTURE_H
#define FERRY_TESTS_RT_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_internal.h"

struct fixture {
  char dir[64];
  ferry_rt *rt;
  ferry_err err;
};

/* *state = a fixture whose runtime has num_threads workers and works in a
 * fresh /tmp/ferry_rt_<tag>_XXXXXX. */
static int rt_fixture_setup(void **state, const char *tag, int num_threads) {
  struct fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  snprintf(f->dir, sizeof f->dir, "/tmp/ferry_rt_%s_XXXXXX", tag);
  assert_non_null(mkdtemp(f->dir));
  ferry_rt_options opt = {.work_dir = f->dir, .num_threads = num_threads};
  ferry_err_clear(&f->err);
  assert_int_equal(ferry_rt_open(&f->rt, &opt, &f->err), 0);
  *state = f;
  return 0;
}

static int rt_fixture_teardown(void **state) {
  struct fixture *f = *state;
  ferry_rt_close(f->rt);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

#endif
