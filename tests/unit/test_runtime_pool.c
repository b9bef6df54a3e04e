/* Thread pool and backend API called directly: task ids, capping of
 * num_task, barriers, error collection, nested launches, TVM_NUM_THREADS,
 * workspaces across threads, last error per thread, TVMBackendRunOnce. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/rt_internal.h"

static ferry_rt *open_rt(int threads) {
  ferry_rt_options opt = {.num_threads = threads};
  ferry_err err;
  ferry_err_clear(&err);
  ferry_rt *rt;
  assert_int_equal(ferry_rt_open(&rt, &opt, &err), 0);
  return rt;
}

struct seen {
  atomic_int hits[64];
  atomic_int total;
  atomic_int num_task;
};

static int count_lambda(int task, TVMParallelGroupEnv *penv, void *cdata) {
  struct seen *s = cdata;
  atomic_store(&s->num_task, penv->num_task);
  atomic_fetch_add(&s->hits[task], 1);
  atomic_fetch_add(&s->total, 1);
  return 0;
}

static void every_task_once(void **state) {
  (void)state;
  ferry_rt *rt = open_rt(4);
  for (int req = 0; req <= 9; req++) {
    struct seen s;
    memset(&s, 0, sizeof s);
    assert_int_equal(TVMBackendParallelLaunch(count_lambda, &s, req), 0);
    int expect = req == 0 || req > 4 ? 4 : req; /* 0 = all; capped at 4 */
    assert_int_equal(atomic_load(&s.num_task), expect);
    assert_int_equal(atomic_load(&s.total), expect);
    for (int t = 0; t < expect; t++)
      assert_int_equal(atomic_load(&s.hits[t]), 1);
  }
  ferry_rt_close(rt);
}

struct bar_ctx {
  atomic_int phase_count[100];
  atomic_int bad;
};

static int barrier_lambda(int task, TVMParallelGroupEnv *penv, void *cdata) {
  struct bar_ctx *c = cdata;
  for (int phase = 0; phase < 100; phase++) {
    atomic_fetch_add(&c->phase_count[phase], 1);
    TVMBackendParallelBarrier(task, penv);
    /* After the barrier every task has finished this phase. */
    if (atomic_load(&c->phase_count[phase]) != penv->num_task)
      atomic_fetch_add(&c->bad, 1);
  }
  return 0;
}

static void barrier_rounds(void **state) {
  (void)state;
  ferry_rt *rt = open_rt(3);
  for (int rep = 0; rep < 20; rep++) {
    struct bar_ctx c;
    memset(&c, 0, sizeof c);
    assert_int_equal(TVMBackendParallelLaunch(barrier_lambda, &c, 0), 0);
    assert_int_equal(atomic_load(&c.bad), 0);
    assert_int_equal(atomic_load(&c.phase_count[99]), 3);
  }
  ferry_rt_close(rt);
}

static int fail_odd(int task, TVMParallelGroupEnv *penv, void *cdata) {
  (void)penv, (void)cdata;
  if (task % 2 == 1) {
    char msg[32];
    snprintf(msg, sizeof msg, "odd task %d", task);
    TVMAPISetLastError(msg);
    return -1;
  }
  return 0;
}

static int nested(int task, TVMParallelGroupEnv *penv, void *cdata) {
  (void)penv;
  int *rc = cdata;
  if (task == 0)
    *rc = TVMBackendParallelLaunch(count_lambda, NULL, 1);
  return 0;
}

static void errors_and_nesting(void **state) {
  (void)state;
  ferry_rt *rt = open_rt(4);
  assert_int_equal(TVMBackendParallelLaunch(fail_odd, NULL, 4), -1);
  const char *e = TVMGetLastError();
  assert_non_null(strstr(e, "Task 1 error: odd task 1\n"));
  assert_non_null(strstr(e, "Task 3 error: odd task 3\n"));
  assert_null(strstr(e, "Task 0"));
  int inner = 0;
  assert_int_equal(TVMBackendParallelLaunch(nested, &inner, 2), 0);
  assert_int_equal(inner, -1);
  assert_int_equal(TVMBackendParallelLaunch(NULL, NULL, 2), -1);
  /* The pool still works afterwards. */
  struct seen s;
  memset(&s, 0, sizeof s);
  assert_int_equal(TVMBackendParallelLaunch(count_lambda, &s, 0), 0);
  assert_int_equal(atomic_load(&s.total), 4);
  ferry_rt_close(rt);
}

static void env_thread_count(void **state) {
  (void)state;
  setenv("TVM_NUM_THREADS", "3", 1);
  ferry_rt *rt = open_rt(0);
  struct seen s;
  memset(&s, 0, sizeof s);
  assert_int_equal(TVMBackendParallelLaunch(count_lambda, &s, 0), 0);
  assert_int_equal(atomic_load(&s.num_task), 3);
  ferry_rt_close(rt);
  setenv("TVM_NUM_THREADS", "1", 1);
  rt = open_rt(0);
  memset(&s, 0, sizeof s);
  assert_int_equal(TVMBackendParallelLaunch(count_lambda, &s, 8), 0);
  assert_int_equal(atomic_load(&s.num_task), 1);
  ferry_rt_close(rt);
  unsetenv("TVM_NUM_THREADS");
}

static int ws_lambda(int task, TVMParallelGroupEnv *penv, void *cdata) {
  (void)penv, (void)cdata;
  for (int i = 0; i < 100; i++) {
    uint64_t n = 64 + (uint64_t)(i % 7) * 1000;
    char *p = TVMBackendAllocWorkspace(kDLCPU, 0, n, kDLFloat, 32);
    if (p == NULL || (uintptr_t)p % 64 != 0)
      return -1;
    memset(p, task, n);
    if (TVMBackendFreeWorkspace(kDLCPU, 0, p) != 0)
      return -1;
  }
  return 0;
}

static void workspaces(void **state) {
  (void)state;
  ferry_rt *rt = open_rt(2);
  assert_int_equal(TVMBackendParallelLaunch(ws_lambda, NULL, 0), 0);
  /* Freeing a pointer that is not a workspace is refused. */
  int x;
  assert_int_equal(TVMBackendFreeWorkspace(kDLCPU, 0, &x), -1);
  assert_non_null(strstr(TVMGetLastError(), "not allocated"));
  assert_null(TVMBackendAllocWorkspace(kDLCUDA, 0, 16, 2, 32));
  assert_null(TVMBackendAllocWorkspace(kDLCPU, 0, UINT64_MAX, 2, 32));
  /* A workspace a kernel forgot is freed at close (LeakSanitizer). */
  assert_non_null(TVMBackendAllocWorkspace(kDLCPU, 0, 128, 2, 32));
  ferry_rt_close(rt);
}

static int once_count;
static int once_fn(void *cdata) {
  (void)cdata;
  return ++once_count;
}

static void run_once_and_last_error(void **state) {
  (void)state;
  void *h = NULL;
  assert_int_equal(TVMBackendRunOnce(&h, once_fn, NULL, 0), 1);
  assert_int_equal(TVMBackendRunOnce(&h, once_fn, NULL, 0), 0);
  assert_int_equal(once_count, 1);
  TVMAPISetLastError("first");
  assert_string_equal(TVMGetLastError(), "first");
  char big[FERRY_ERR_MSG_MAX * 2];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = 0;
  TVMAPISetLastError(big);
  assert_int_equal(strlen(TVMGetLastError()), FERRY_ERR_MSG_MAX - 1);
  assert_int_equal(TVMBackendRegisterEnvCAPI("PyErr_CheckSignals", NULL), 0);
  /* TVMFuncCall without an open runtime fails cleanly. */
  assert_int_equal(TVMFuncCall((void *)1, NULL, NULL, 0, NULL, NULL), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_task_once),  cmocka_unit_test(barrier_rounds),
      cmocka_unit_test(errors_and_nesting), cmocka_unit_test(env_thread_count),
      cmocka_unit_test(workspaces),       cmocka_unit_test(run_once_and_last_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
