/* Runtime benchmark: the cost the runtime adds around compiled code, each
 * against a baseline measured in the same run:
 *
 *   1. a call of testlib's add_i64 through ferry_func_call (value mapping,
 *      error reset, result mapping) vs calling the same function pointer
 *      directly with prepared TVMValues;
 *   2. TVMBackendParallelLaunch of an empty lambda on the pool vs a plain
 *      mutex + condition-variable round trip to one helper thread (what a
 *      naive pool pays per launch);
 *   3. a TVMBackendAllocWorkspace/FreeWorkspace pair (cached) vs a 64-byte
 *      aligned posix_memalign/free pair of the same size;
 *   4. ferry_rt_check_range with 10000 live buffers vs with one.
 *
 *   bench_runtime [--models DIR] [--n N]
 *
 * --models defaults to <this program's folder>/../tests/models. */
#include <dlfcn.h>
#include <pthread.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/bench_procs.h"
#include "common/bench_rt.h"
#include "runtime/rt_internal.h"

static volatile int64_t sink;

static int empty_lambda(int task, TVMParallelGroupEnv *penv, void *cdata) {
  (void)penv;
  (void)cdata;
  sink += task;
  return 0;
}

/* Baseline of 2: one helper thread answering pings over a condvar. */
static struct {
  pthread_mutex_t lock;
  pthread_cond_t cv;
  long ping, pong;
  int stop;
} pp = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

static void *pong_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&pp.lock);
  for (;;) {
    while (pp.ping == pp.pong && !pp.stop)
      pthread_cond_wait(&pp.cv, &pp.lock);
    if (pp.stop)
      break;
    pp.pong = pp.ping;
    pthread_cond_broadcast(&pp.cv);
  }
  pthread_mutex_unlock(&pp.lock);
  return NULL;
}

static void report(const char *what, double base_ns, double ours_ns) {
  printf("%-44s baseline %9.1f ns  ferry %9.1f ns  ratio %6.2f\n", what, base_ns, ours_ns,
         ours_ns / (base_ns > 0 ? base_ns : 1e-9));
}

int main(int argc, char **argv) {
  bench_set_name("bench_runtime");
  char models[PATH_MAX];
  long n = 1000000;
  bench_self_path(models, sizeof models, "../tests/models");
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--models") == 0)
      snprintf(models, sizeof models, "%s", argv[i + 1]);
    else if (strcmp(argv[i], "--n") == 0)
      n = strtol(argv[i + 1], NULL, 10);
  }
  ferry_rt *rt = bench_rt_open("rt", 0);
  ferry_err err;
  ferry_err_clear(&err);
  char lib[PATH_MAX + 32];
  snprintf(lib, sizeof lib, "%s/testlib.so", models);
  ferry_module *m;
  if (ferry_library_load(rt, lib, &m, &err) != 0) {
    fprintf(stderr, "bench_runtime: %s\n", err.msg);
    return 1;
  }
  ferry_func *f;
  if (ferry_module_get_function(m, "add_i64", 0, &f, &err) != 0)
    return 1;
  void *h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
  TVMBackendPackedCFunc direct;
  void *sym = dlsym(h, "add_i64");
  memcpy(&direct, &sym, sizeof direct);

  /* 1. calls */
  TVMValue vals[2] = {{.v_int64 = 2}, {.v_int64 = 40}};
  int32_t codes[2] = {0, 0};
  double t0 = bench_now_s();
  for (long i = 0; i < n; i++) {
    TVMValue rv;
    int32_t rc = kTVMNullptr;
    direct(vals, codes, 2, &rv, &rc, NULL);
    sink += rv.v_int64;
  }
  double base = (bench_now_s() - t0) / (double)n * 1e9;
  ferry_value args[2] = {{.kind = FERRY_KIND_INT, .v.i = 2}, {.kind = FERRY_KIND_INT, .v.i = 40}};
  t0 = bench_now_s();
  for (long i = 0; i < n; i++) {
    ferry_call c;
    ferry_call_init(&c, rt, args, 2, &err, 1 << 20);
    ferry_func_call(f, &c);
    sink += c.ret.v.i;
    ferry_call_close(&c);
  }
  report("compiled call (add_i64)", base, (bench_now_s() - t0) / (double)n * 1e9);

  /* 2. parallel launch */
  long launches = n / 20;
  pthread_t helper;
  pthread_create(&helper, NULL, pong_main, NULL);
  t0 = bench_now_s();
  for (long i = 0; i < launches; i++) {
    pthread_mutex_lock(&pp.lock);
    pp.ping++;
    pthread_cond_broadcast(&pp.cv);
    while (pp.pong != pp.ping)
      pthread_cond_wait(&pp.cv, &pp.lock);
    pthread_mutex_unlock(&pp.lock);
  }
  base = (bench_now_s() - t0) / (double)launches * 1e9;
  pthread_mutex_lock(&pp.lock);
  pp.stop = 1;
  pthread_cond_broadcast(&pp.cv);
  pthread_mutex_unlock(&pp.lock);
  pthread_join(helper, NULL);
  TVMBackendParallelLaunch(empty_lambda, NULL, 0); /* start the pool */
  t0 = bench_now_s();
  for (long i = 0; i < launches; i++)
    TVMBackendParallelLaunch(empty_lambda, NULL, 0);
  report("parallel launch of an empty lambda", base, (bench_now_s() - t0) / (double)launches * 1e9);

  /* 3. workspace */
  t0 = bench_now_s();
  for (long i = 0; i < n; i++) {
    void *p;
    if (posix_memalign(&p, 64, 4096) == 0) {
      ((volatile char *)p)[0] = 1;
      free(p);
    }
  }
  base = (bench_now_s() - t0) / (double)n * 1e9;
  t0 = bench_now_s();
  for (long i = 0; i < n; i++) {
    void *p = TVMBackendAllocWorkspace(kDLCPU, 0, 4096, kDLFloat, 32);
    ((volatile char *)p)[0] = 1;
    TVMBackendFreeWorkspace(kDLCPU, 0, p);
  }
  report("workspace alloc+free (4 KiB)", base, (bench_now_s() - t0) / (double)n * 1e9);

  /* 4. range checks */
  DLDevice cpu = {kDLCPU, 0};
  DLDataType f32 = {kDLFloat, 32, 1};
  void *first;
  if (ferry_rt_alloc(rt, cpu, 256, 64, f32, &first, &err) != 0)
    return 1;
  t0 = bench_now_s();
  for (long i = 0; i < n; i++)
    sink += ferry_rt_check_range(rt, first, 256, &err);
  base = (bench_now_s() - t0) / (double)n * 1e9;
  for (int i = 0; i < 10000; i++) {
    void *p;
    if (ferry_rt_alloc(rt, cpu, 256, 64, f32, &p, &err) != 0)
      return 1;
  }
  t0 = bench_now_s();
  for (long i = 0; i < n; i++)
    sink += ferry_rt_check_range(rt, first, 256, &err);
  report("range check, 10000 live buffers vs 1", base, (bench_now_s() - t0) / (double)n * 1e9);

  ferry_obj_release(&f->base);
  ferry_obj_release(&m->base);
  dlclose(h);
  bench_rt_close(rt);
  return 0;
}
