/* tvm-ffi module ABI benchmark: what ferry adds around a compiled call in
 * each ABI, against baselines measured in the same run, best of three
 * alternating rounds:
 *
 *   1. testlib_ffi's add_i64 through ferry_func_call (ferry_value ->
 *      TVMFFIAny, error reset, result mapping) vs calling __tvm_ffi_add_i64
 *      directly with prepared TVMFFIAny slots;
 *   2. the same call in the classic ABI (testlib.so) through ferry_func_call,
 *      as the reference the tvm-ffi path should match;
 *   3. compiled code calling back into ferry (call_global -> lookup once ->
 *      TVMFFIFunctionCall -> a classic add_i64) vs the plain call of 1.
 *
 *   bench_ffi_abi [--models DIR] [--n N]
 *
 * --models defaults to <this program's folder>/../tests/models. */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/bench_procs.h"
#include "common/bench_rt.h"
#include "ferry/tvm_ffi_abi.h"
#include "runtime/rt_internal.h"

static volatile int64_t sink;

static void report(const char *what, double base_ns, double ours_ns) {
  printf("%-48s baseline %8.1f ns  ferry %8.1f ns  ratio %6.2f\n", what, base_ns, ours_ns,
         ours_ns / (base_ns > 0 ? base_ns : 1e-9));
}

/* ns per ferry_func_call of f(args). */
static double time_calls(ferry_rt *rt, ferry_func *f, const ferry_value *args, int nargs,
                         long n) {
  ferry_err err;
  ferry_err_clear(&err);
  double t0 = bench_now_s();
  for (long i = 0; i < n; i++) {
    ferry_call c;
    ferry_call_init(&c, rt, args, nargs, &err, 1 << 20);
    if (ferry_func_call(f, &c) != FERRY_OK) {
      fprintf(stderr, "bench_ffi_abi: %s\n", err.msg);
      exit(1);
    }
    sink += c.ret.v.i;
    ferry_call_close(&c);
  }
  return (bench_now_s() - t0) / (double)n * 1e9;
}

static ferry_module *load(ferry_rt *rt, const char *models, const char *name) {
  char lib[PATH_MAX + 32];
  snprintf(lib, sizeof lib, "%s/%s", models, name);
  ferry_err err;
  ferry_err_clear(&err);
  ferry_module *m;
  if (ferry_library_load(rt, lib, &m, &err) != 0) {
    fprintf(stderr, "bench_ffi_abi: %s\n", err.msg);
    exit(1);
  }
  return m;
}

static ferry_func *get(ferry_module *m, const char *name) {
  ferry_err err;
  ferry_err_clear(&err);
  ferry_func *f;
  if (ferry_module_get_function(m, name, 1, &f, &err) != 0) {
    fprintf(stderr, "bench_ffi_abi: no function %s\n", name);
    exit(1);
  }
  return f;
}

int main(int argc, char **argv) {
  bench_set_name("bench_ffi_abi");
  char models[PATH_MAX];
  long n = 1000000;
  bench_self_path(models, sizeof models, "../tests/models");
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--models") == 0)
      snprintf(models, sizeof models, "%s", argv[i + 1]);
    else if (strcmp(argv[i], "--n") == 0)
      n = strtol(argv[i + 1], NULL, 10);
  }
  if (n < 1)
    n = 1;
  ferry_rt *rt = bench_rt_open("ffi", 1);
  ferry_err err;
  ferry_err_clear(&err);
  ferry_module *mf = load(rt, models, "testlib_ffi.so");
  ferry_module *mc = load(rt, models, "testlib.so");
  ferry_err_clear(&err);
  if (ferry_module_import(mf, mc, &err) != FERRY_OK)
    return 1;
  ferry_func *ff = get(mf, "add_i64"), *fc = get(mc, "add_i64"), *fg = get(mf, "call_global");

  char lib[PATH_MAX + 32];
  snprintf(lib, sizeof lib, "%s/testlib_ffi.so", models);
  void *h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
  void *sym = h ? dlsym(h, "__tvm_ffi_add_i64") : NULL;
  if (sym == NULL)
    return 1;
  TVMFFISafeCallType direct;
  memcpy(&direct, &sym, sizeof direct);

  ferry_value args[2] = {{.kind = FERRY_KIND_INT, .v.i = 2}, {.kind = FERRY_KIND_INT, .v.i = 40}};
  ferry_value gargs[3] = {{.kind = FERRY_KIND_STR, .v.str = {"add_i64", 7}}, args[0], args[1]};
  double best[4] = {1e30, 1e30, 1e30, 1e30};
  for (int round = 0; round < 3; round++) {
    TVMFFIAny a[2] = {{.type_index = kTVMFFIInt, .v_int64 = 2},
                      {.type_index = kTVMFFIInt, .v_int64 = 40}};
    double t0 = bench_now_s();
    for (long i = 0; i < n; i++) {
      TVMFFIAny r;
      r.type_index = kTVMFFINone;
      direct(NULL, a, 2, &r);
      sink += r.v_int64;
    }
    double t[4];
    t[0] = (bench_now_s() - t0) / (double)n * 1e9;
    t[1] = time_calls(rt, ff, args, 2, n);
    t[2] = time_calls(rt, fc, args, 2, n);
    t[3] = time_calls(rt, fg, gargs, 3, n / 4 ? n / 4 : 1);
    for (int k = 0; k < 4; k++)
      if (t[k] < best[k])
        best[k] = t[k];
  }
  report("tvm-ffi call (add_i64) vs direct safe call", best[0], best[1]);
  report("tvm-ffi call vs classic call (add_i64)", best[2], best[1]);
  report("call back into ferry (call_global) vs plain", best[1], best[3]);

  ferry_obj_release(&ff->base);
  ferry_obj_release(&fc->base);
  ferry_obj_release(&fg->base);
  ferry_obj_release(&mf->base);
  ferry_obj_release(&mc->base);
  bench_rt_close(rt);
  return 0;
}
