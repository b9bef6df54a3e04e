/* Library modules in the classic ABI: loading (context slots, entry
 * function, embedded blobs, bad files), calls with every value kind, errors
 * from compiled code, the backend API (workspace, parallel launch, barrier,
 * TVMBackendGetFuncFromEnv + TVMFuncCall), module functions and the time
 * evaluator.  The libraries are the C files in tests/models. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/bytes.h"
#include "rt_fixture.h"
#include "runtime/rt_internal.h"

static int setup(void **state) { return rt_fixture_setup(state, "mod", 2); }
static int teardown(void **state) { return rt_fixture_teardown(state); }

static ferry_value str(const char *s) {
  ferry_value v = {.kind = FERRY_KIND_STR};
  v.v.str.data = s;
  v.v.str.len = strlen(s);
  return v;
}
static ferry_value i64(int64_t x) { return (ferry_value){.kind = FERRY_KIND_INT, .v.i = x}; }
static ferry_value f64(double x) { return (ferry_value){.kind = FERRY_KIND_FLOAT, .v.f = x}; }
static ferry_value obj(enum ferry_kind k, void *o) {
  return (ferry_value){.kind = k, .v.obj = o};
}
static ferry_value tensor(DLTensor *t) {
  return (ferry_value){.kind = FERRY_KIND_TENSOR, .v.tensor = t};
}

/* Calls f; the result stays in *c (caller closes). */
static int call(struct fixture *fx, ferry_func *f, const ferry_value *args, int n, ferry_call *c) {
  ferry_err_clear(&fx->err);
  ferry_call_init(c, fx->rt, args, n, &fx->err, 1 << 24);
  return ferry_func_call(f, c);
}

static int call_global(struct fixture *fx, const char *name, const ferry_value *args, int n,
                       ferry_call *c) {
  ferry_func *fn;
  assert_int_equal(ferry_rt_get_global(fx->rt, name, &fn), 0);
  int rc = call(fx, fn, args, n, c);
  ferry_obj_release(&fn->base);
  return rc;
}

/* Copies a model library into the work folder (as the client's upload). */
static void put_model(struct fixture *fx, const char *model, const char *as) {
  char src[512];
  snprintf(src, sizeof src, "%s/%s", FERRY_MODELS_DIR, model);
  FILE *in = fopen(src, "rb");
  assert_non_null(in);
  static char buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf, in);
  fclose(in);
  ferry_value a[2] = {str(as), {.kind = FERRY_KIND_BYTES}};
  a[1].v.str.data = buf;
  a[1].v.str.len = n;
  ferry_call c;
  assert_int_equal(call_global(fx, "tvm.rpc.server.upload", a, 2, &c), 0);
  ferry_call_close(&c);
}

static ferry_module *load(struct fixture *fx, const char *model) {
  put_model(fx, model, model);
  ferry_value a = str(model);
  ferry_call c;
  int rc = call_global(fx, "tvm.rpc.server.load_module", &a, 1, &c);
  if (rc)
    fprintf(stderr, "load failed: %s\n", fx->err.msg);
  assert_int_equal(rc, 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_MODULE);
  ferry_module *m = (ferry_module *)c.ret.v.obj;
  c.ret.kind = FERRY_KIND_NONE; /* take the reference */
  ferry_call_close(&c);
  return m;
}

/* ModuleGetFunction through the global, as the client does; NULL if none. */
static ferry_func *get_fn(struct fixture *fx, ferry_module *m, const char *name) {
  ferry_value a[3] = {obj(FERRY_KIND_MODULE, m), str(name),
                      {.kind = FERRY_KIND_BOOL, .v.i = 1}};
  ferry_call c;
  assert_int_equal(call_global(fx, "tvm.rpc.server.ModuleGetFunction", a, 3, &c), 0);
  ferry_func *f = NULL;
  if (c.ret.kind == FERRY_KIND_FUNC) {
    f = (ferry_func *)c.ret.v.obj;
    c.ret.kind = FERRY_KIND_NONE;
  } else {
    assert_int_equal(c.ret.kind, FERRY_KIND_NONE);
  }
  ferry_call_close(&c);
  return f;
}

static ferry_ndarray *nd(struct fixture *fx, int ndim, const int64_t *shape, uint8_t code,
                         uint8_t bits) {
  ferry_ndarray *a;
  DLDevice cpu = {kDLCPU, 0};
  assert_int_equal(ferry_ndarray_new(fx->rt, ndim, shape, (DLDataType){code, bits, 1}, cpu, &a,
                                     &fx->err),
                   0);
  return a;
}

static void testlib_calls(void **state) {
  struct fixture *fx = *state;
  ferry_module *m = load(fx, "testlib.so");
  assert_string_equal(m->type_key, "library");
  ferry_call c;

  ferry_func *add = get_fn(fx, m, "add_i64");
  assert_non_null(add);
  ferry_value a2[2] = {i64(2), i64(40)};
  assert_int_equal(call(fx, add, a2, 2, &c), 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_INT);
  assert_int_equal(c.ret.v.i, 42);
  ferry_call_close(&c);
  ferry_value wrong[2] = {f64(1), i64(2)};
  assert_int_equal(call(fx, add, wrong, 2, &c), FERRY_EREMOTE);
  assert_string_equal(fx->err.msg, "TVMError: add_i64 expects two ints");
  ferry_call_close(&c);
  ferry_obj_release(&add->base);

  ferry_func *mul = get_fn(fx, m, "mul_f64");
  ferry_value af[2] = {f64(1.5), f64(4.0)};
  assert_int_equal(call(fx, mul, af, 2, &c), 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_FLOAT);
  assert_true(c.ret.v.f == 6.0);
  ferry_call_close(&c);
  ferry_obj_release(&mul->base);

  ferry_func *fail = get_fn(fx, m, "fail");
  assert_int_equal(call(fx, fail, NULL, 0, &c), FERRY_EREMOTE);
  assert_string_equal(fx->err.msg, "fail: deliberate error from testlib");
  ferry_call_close(&c);
  ferry_obj_release(&fail->base);

  ferry_func *echo = get_fn(fx, m, "echo");
  ferry_value s = str("hello");
  assert_int_equal(call(fx, echo, &s, 1, &c), 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_STR);
  assert_string_equal(c.ret.v.str.data, "hello");
  ferry_call_close(&c);
  ferry_value b = {.kind = FERRY_KIND_BOOL, .v.i = 1};
  assert_int_equal(call(fx, echo, &b, 1, &c), 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_BOOL);
  assert_int_equal(c.ret.v.i, 1);
  ferry_call_close(&c);
  ferry_obj_release(&echo->base);

  /* Many arguments (past the small on-stack arrays). */
  ferry_func *count = get_fn(fx, m, "count_args");
  ferry_value many[100];
  for (int i = 0; i < 100; i++)
    many[i] = i64(i);
  assert_int_equal(call(fx, count, many, 100, &c), 0);
  assert_int_equal(c.ret.v.i, 100);
  ferry_call_close(&c);
  ferry_obj_release(&count->base);

  /* Absent names, data symbols and symbols of dependencies are "none". */
  assert_null(get_fn(fx, m, "no_such_function"));
  assert_null(get_fn(fx, m, "not_a_function"));
  assert_null(get_fn(fx, m, "__tvm_module_ctx"));
  assert_null(get_fn(fx, m, "printf"));
  assert_null(get_fn(fx, m, "TVMFuncCall"));
  ferry_obj_release(&m->base);
}

static void testlib_tensors_and_main(void **state) {
  struct fixture *fx = *state;
  ferry_module *m = load(fx, "testlib.so");
  int64_t shape[2] = {3, 4};
  ferry_ndarray *a = nd(fx, 2, shape, kDLFloat, 32), *b = nd(fx, 2, shape, kDLFloat, 32);
  for (int i = 0; i < 12; i++)
    ((float *)a->tensor.data)[i] = (float)i;
  /* __tvm_main__ is the string "addone". */
  ferry_func *main_fn = get_fn(fx, m, "__tvm_main__");
  assert_non_null(main_fn);
  ferry_value args[2] = {tensor(&a->tensor), obj(FERRY_KIND_NDARRAY, b)};
  ferry_call c;
  assert_int_equal(call(fx, main_fn, args, 2, &c), 0);
  ferry_call_close(&c);
  for (int i = 0; i < 12; i++)
    assert_true(((float *)b->tensor.data)[i] == (float)i + 1);
  ferry_obj_release(&main_fn->base);
  /* The function keeps the library alive after the module is released. */
  ferry_func *scale = get_fn(fx, m, "scale");
  ferry_obj_release(&m->base);
  assert_int_equal(call(fx, scale, args, 2, &c), 0);
  ferry_call_close(&c);
  assert_true(((float *)b->tensor.data)[5] == 10.0f);
  ferry_obj_release(&scale->base);
  ferry_obj_release(&a->base);
  ferry_obj_release(&b->base);
}

static void env_function_and_funccall(void **state) {
  struct fixture *fx = *state;
  ferry_module *m = load(fx, "testlib.so");
  /* call_global resolves a name through TVMBackendGetFuncFromEnv (the
   * library's imports, then the registry) and calls it with TVMFuncCall. */
  ferry_func *cg = get_fn(fx, m, "call_global");
  ferry_value a[3] = {str("no.such.function"), i64(1), i64(2)};
  ferry_call c;
  assert_int_equal(call(fx, cg, a, 3, &c), FERRY_EREMOTE);
  assert_non_null(strstr(fx->err.msg, "Cannot find function no.such.function"));
  ferry_call_close(&c);
  /* A module import makes add_i64 of a second library visible to the
   * first library's TVMBackendGetFuncFromEnv. */
  ferry_module *m2 = load(fx, "blobok.so");
  ferry_value imp[2] = {obj(FERRY_KIND_MODULE, m), obj(FERRY_KIND_MODULE, m2)};
  assert_int_equal(call_global(fx, "tvm.rpc.server.ImportModule", imp, 2, &c), 0);
  ferry_call_close(&c);
  ferry_value a2[3] = {str("seven"), i64(1), i64(2)};
  assert_int_equal(call(fx, cg, a2, 3, &c), 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_INT);
  assert_int_equal(c.ret.v.i, 7);
  ferry_call_close(&c);
  /* A cycle is refused. */
  ferry_value back[2] = {obj(FERRY_KIND_MODULE, m2), obj(FERRY_KIND_MODULE, m)};
  assert_int_equal(call_global(fx, "tvm.rpc.server.ImportModule", back, 2, &c), FERRY_EINVAL);
  ferry_call_close(&c);
  /* Lookup through imports finds seven from the testlib module. */
  ferry_func *seven = get_fn(fx, m, "seven");
  assert_non_null(seven);
  ferry_obj_release(&seven->base);
  ferry_obj_release(&cg->base);
  ferry_obj_release(&m2->base);
  ferry_obj_release(&m->base);
}

static void load_errors(void **state) {
  struct fixture *fx = *state;
  ferry_call c;
  /* Not ELF. */
  ferry_value up[2] = {str("junk.so"), {.kind = FERRY_KIND_BYTES}};
  up[1].v.str.data = "this is not a library";
  up[1].v.str.len = 21;
  assert_int_equal(call_global(fx, "tvm.rpc.server.upload", up, 2, &c), 0);
  ferry_call_close(&c);
  ferry_value name = str("junk.so");
  assert_int_equal(call_global(fx, "tvm.rpc.server.load_module", &name, 1, &c), FERRY_EDLOPEN);
  assert_non_null(strstr(fx->err.msg, "no ELF header"));
  ferry_call_close(&c);
  /* ELF header, truncated body. */
  up[1].v.str.data = "\x7f" "ELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00xx";
  up[1].v.str.len = 18;
  assert_int_equal(call_global(fx, "tvm.rpc.server.upload", up, 2, &c), 0);
  ferry_call_close(&c);
  assert_int_equal(call_global(fx, "tvm.rpc.server.load_module", &name, 1, &c), FERRY_EDLOPEN);
  assert_non_null(strstr(fx->err.msg, "cannot load junk.so"));
  ferry_call_close(&c);
  /* Missing file. */
  ferry_value missing = str("missing.so");
  assert_int_equal(call_global(fx, "tvm.rpc.server.load_module", &missing, 1, &c), FERRY_EIO);
  assert_non_null(strstr(fx->err.msg, "missing.so"));
  ferry_call_close(&c);
  /* A blob with a module type we cannot load: named in the error. */
  put_model(fx, "devblob.so", "devblob.so");
  ferry_value dev = str("devblob.so");
  assert_int_equal(call_global(fx, "tvm.rpc.server.load_module", &dev, 1, &c), FERRY_EUNSUPPORTED);
  assert_non_null(strstr(fx->err.msg, "'cuda'"));
  ferry_call_close(&c);
  /* .o that is not there. */
  ferry_value obj_name = str("lib.o");
  assert_int_equal(call_global(fx, "tvm.rpc.server.load_module", &obj_name, 1, &c), FERRY_EIO);
  ferry_call_close(&c);
  /* A blob whose header claims more than its symbol holds. */
  put_model(fx, "badblob.so", "badblob.so");
  ferry_value badblob = str("badblob.so");
  assert_int_equal(call_global(fx, "tvm.rpc.server.load_module", &badblob, 1, &c), FERRY_EPROTO);
  assert_non_null(strstr(fx->err.msg, "truncated"));
  ferry_call_close(&c);
  /* A library needing a symbol nobody provides: named in the error. */
  put_model(fx, "undefined.so", "undefined.so");
  ferry_value undef = str("undefined.so");
  assert_int_equal(call_global(fx, "tvm.rpc.server.load_module", &undef, 1, &c), FERRY_EDLOPEN);
  assert_non_null(strstr(fx->err.msg, "ferry_test_symbol_that_does_not_exist"));
  ferry_call_close(&c);
  /* A library without __tvm_main__. */
  ferry_module *m = load(fx, "blobok.so");
  ferry_func *f = NULL;
  ferry_err_clear(&fx->err);
  assert_int_equal(ferry_module_get_function(m, "__tvm_main__", 1, &f, &fx->err), FERRY_ENOTFOUND);
  assert_non_null(strstr(fx->err.msg, "no entry function"));
  ferry_obj_release(&m->base);
}

static void blob_ok_and_reload(void **state) {
  struct fixture *fx = *state;
  ferry_module *m = load(fx, "blobok.so");
  assert_string_equal(m->type_key, "library");
  ferry_func *f = get_fn(fx, m, "seven");
  assert_non_null(f);
  ferry_obj_release(&f->base);
  /* Loading the same file again shares the library. */
  ferry_value name = str("blobok.so");
  ferry_call c;
  assert_int_equal(call_global(fx, "tvm.rpc.server.load_module", &name, 1, &c), 0);
  assert_ptr_equal(c.ret.v.obj, &m->base);
  ferry_call_close(&c);
  ferry_obj_release(&m->base);
}

static void odd_slots_untouched(void **state) {
  struct fixture *fx = *state;
  ferry_module *m = load(fx, "oddslots.so");
  ferry_func *f = get_fn(fx, m, "slot_value");
  ferry_call c;
  assert_int_equal(call(fx, f, NULL, 0, &c), 0);
  assert_int_equal(c.ret.v.i, 10);
  ferry_call_close(&c);
  ferry_obj_release(&f->base);
  ferry_obj_release(&m->base);
}

static void csource_library(void **state) {
  struct fixture *fx = *state;
  ferry_module *m = load(fx, "csource.so");
  int64_t shape[1] = {5};
  ferry_ndarray *a = nd(fx, 1, shape, kDLFloat, 32);
  for (int i = 0; i < 5; i++)
    ((float *)a->tensor.data)[i] = (float)(i + 1);
  ferry_value arg = tensor(&a->tensor);
  ferry_call c;
  /* __tvm_main__ is a function here, not a string. */
  ferry_func *main_fn = get_fn(fx, m, "__tvm_main__");
  assert_non_null(main_fn);
  assert_int_equal(call(fx, main_fn, &arg, 1, &c), 0);
  assert_true(c.ret.kind == FERRY_KIND_FLOAT && c.ret.v.f == 15.0);
  ferry_call_close(&c);
  ferry_obj_release(&main_fn->base);
  ferry_func *cf = get_fn(fx, m, "c_fail");
  assert_int_equal(call(fx, cf, NULL, 0, &c), FERRY_EREMOTE);
  assert_string_equal(fx->err.msg, "c_fail: from C source");
  ferry_call_close(&c);
  ferry_obj_release(&cf->base);
  ferry_obj_release(&a->base);
  ferry_obj_release(&m->base);
}

static void matmul(void **state) {
  struct fixture *fx = *state;
  ferry_module *m = load(fx, "matmul.so");
  int64_t sa[2] = {2, 3}, sb[2] = {3, 2}, sc[2] = {2, 2};
  ferry_ndarray *a = nd(fx, 2, sa, kDLFloat, 32), *b = nd(fx, 2, sb, kDLFloat, 32),
                *cc = nd(fx, 2, sc, kDLFloat, 32);
  float av[6] = {1, 2, 3, 4, 5, 6}, bv[6] = {7, 8, 9, 10, 11, 12};
  memcpy(a->tensor.data, av, sizeof av);
  memcpy(b->tensor.data, bv, sizeof bv);
  ferry_func *f = get_fn(fx, m, "matmul");
  ferry_value args[3] = {tensor(&a->tensor), tensor(&b->tensor), tensor(&cc->tensor)};
  ferry_call c;
  assert_int_equal(call(fx, f, args, 3, &c), 0);
  ferry_call_close(&c);
  float expect[4] = {58, 64, 139, 154};
  assert_memory_equal(cc->tensor.data, expect, sizeof expect);
  ferry_value bad[3] = {tensor(&a->tensor), tensor(&a->tensor), tensor(&cc->tensor)};
  assert_int_equal(call(fx, f, bad, 3, &c), FERRY_EREMOTE);
  assert_string_equal(fx->err.msg, "matmul: shape mismatch");
  ferry_call_close(&c);
  ferry_obj_release(&f->base);
  ferry_obj_release(&a->base);
  ferry_obj_release(&b->base);
  ferry_obj_release(&cc->base);
  ferry_obj_release(&m->base);
}

static void parallel_and_workspace(void **state) {
  struct fixture *fx = *state;
  ferry_module *m = load(fx, "parallel.so");
  int64_t n = 100000, one = 1;
  ferry_ndarray *a = nd(fx, 1, &n, kDLFloat, 64), *out = nd(fx, 1, &one, kDLFloat, 64);
  for (int64_t i = 0; i < n; i++)
    ((double *)a->tensor.data)[i] = (double)i;
  ferry_func *psum = get_fn(fx, m, "psum");
  ferry_value args[2] = {tensor(&a->tensor), tensor(&out->tensor)};
  ferry_call c;
  for (int rep = 0; rep < 50; rep++) { /* repeated launches reuse the pool */
    ((double *)out->tensor.data)[0] = -1;
    assert_int_equal(call(fx, psum, args, 2, &c), 0);
    ferry_call_close(&c);
    assert_true(((double *)out->tensor.data)[0] == (double)n * (n - 1) / 2);
  }
  ferry_obj_release(&psum->base);

  int64_t fn = 1001;
  ferry_ndarray *fa = nd(fx, 1, &fn, kDLFloat, 32);
  ferry_func *pfill = get_fn(fx, m, "pfill");
  ferry_value fa_arg = tensor(&fa->tensor);
  assert_int_equal(call(fx, pfill, &fa_arg, 1, &c), 0);
  assert_int_equal(c.ret.v.i, 2); /* num_threads = 2 */
  ferry_call_close(&c);
  for (int i = 0; i < 1001; i++)
    assert_true(((float *)fa->tensor.data)[i] == (float)i);
  ferry_obj_release(&pfill->base);

  ferry_func *pfail = get_fn(fx, m, "pfail");
  assert_int_equal(call(fx, pfail, NULL, 0, &c), FERRY_EREMOTE);
  assert_string_equal(fx->err.msg, "TVMError: Task 0 error: lambda failed on purpose\n");
  ferry_call_close(&c);
  ferry_obj_release(&pfail->base);

  ferry_func *ws = get_fn(fx, m, "big_workspace");
  ferry_value sz = i64(1 << 20);
  assert_int_equal(call(fx, ws, &sz, 1, &c), 0);
  ferry_call_close(&c);
  sz = i64(INT64_MAX);
  assert_int_equal(call(fx, ws, &sz, 1, &c), FERRY_EREMOTE);
  assert_non_null(strstr(fx->err.msg, "over the limit"));
  ferry_call_close(&c);
  ferry_obj_release(&ws->base);
  ferry_obj_release(&a->base);
  ferry_obj_release(&out->base);
  ferry_obj_release(&fa->base);
  ferry_obj_release(&m->base);
}

static ferry_func *make_timer(struct fixture *fx, ferry_module *m, const char *name, int number,
                              int repeat, int min_ms, int cooldown, const char *preproc, int *rc) {
  ferry_value a[12] = {m ? obj(FERRY_KIND_MODULE, m) : (ferry_value){.kind = FERRY_KIND_NONE},
                       str(name), i64(1), i64(0), i64(number), i64(repeat), i64(min_ms),
                       i64(100), i64(cooldown), i64(1), i64(0), str(preproc)};
  ferry_call c;
  *rc = call_global(fx, "runtime.RPCTimeEvaluator", a, 12, &c);
  ferry_func *f = NULL;
  if (*rc == 0) {
    assert_int_equal(c.ret.kind, FERRY_KIND_FUNC);
    f = (ferry_func *)c.ret.v.obj;
    c.ret.kind = FERRY_KIND_NONE;
  }
  ferry_call_close(&c);
  return f;
}

static void time_evaluator(void **state) {
  struct fixture *fx = *state;
  ferry_module *m = load(fx, "testlib.so");
  int rc;
  ferry_func *t = make_timer(fx, m, "addone", 5, 3, 0, 0, "", &rc);
  assert_non_null(t);
  int64_t shape[1] = {16};
  ferry_ndarray *a = nd(fx, 1, shape, kDLFloat, 32), *b = nd(fx, 1, shape, kDLFloat, 32);
  ferry_value args[2] = {tensor(&a->tensor), tensor(&b->tensor)};
  ferry_call c;
  assert_int_equal(call(fx, t, args, 2, &c), 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_BYTES);
  assert_int_equal(c.ret.v.str.len, 3 * 8);
  for (int i = 0; i < 3; i++) {
    double v = get_f64((const uint8_t *)c.ret.v.str.data + 8 * i);
    assert_true(v >= 0 && v < 0.01);
  }
  ferry_call_close(&c);
  /* A failing function aborts the measurement with its error. */
  ferry_value none[1] = {i64(1)};
  assert_int_equal(call(fx, t, none, 1, &c), FERRY_EREMOTE);
  assert_string_equal(fx->err.msg, "TVMError: expects two tensors");
  ferry_call_close(&c);
  ferry_obj_release(&t->base);

  /* min_repeat_ms makes number grow until a repeat lasts 20 ms. */
  t = make_timer(fx, m, "addone", 1, 2, 20, 1, "cache_flush_cpu_non_first_arg", &rc);
  assert_non_null(t);
  assert_int_equal(call(fx, t, args, 2, &c), 0);
  assert_int_equal(c.ret.v.str.len, 16);
  ferry_call_close(&c);
  ferry_obj_release(&t->base);

  /* Resolution errors. */
  assert_null(make_timer(fx, m, "nope", 1, 1, 0, 0, "", &rc));
  assert_int_equal(rc, FERRY_ENOTFOUND);
  assert_non_null(strstr(fx->err.msg, "nope"));
  assert_null(make_timer(fx, NULL, "no.global", 1, 1, 0, 0, "", &rc));
  assert_int_equal(rc, FERRY_ENOTFOUND);
  assert_null(make_timer(fx, m, "addone", 1, 1, 0, 0, "no.preproc", &rc));
  assert_int_equal(rc, FERRY_ENOTFOUND);
  assert_non_null(strstr(fx->err.msg, "no.preproc"));
  assert_null(make_timer(fx, m, "addone", 0, 1, 0, 0, "", &rc));
  assert_int_equal(rc, FERRY_ERANGE);
  assert_null(make_timer(fx, m, "addone", 1, 0, 0, 0, "", &rc));
  assert_int_equal(rc, FERRY_ERANGE);
  /* A global function can be timed too. */
  t = make_timer(fx, NULL, "tvm.rpc.server.workpath", 2, 1, 0, 0, "", &rc);
  assert_non_null(t);
  ferry_value wp = str("x");
  assert_int_equal(call(fx, t, &wp, 1, &c), 0);
  assert_int_equal(c.ret.v.str.len, 8);
  ferry_call_close(&c);
  ferry_obj_release(&t->base);
  ferry_obj_release(&a->base);
  ferry_obj_release(&b->base);
  ferry_obj_release(&m->base);
}

static void system_lib(void **state) {
  struct fixture *fx = *state;
  ferry_call c;
  assert_int_equal(call_global(fx, "runtime.SystemLib", NULL, 0, &c), 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_MODULE);
  ferry_obj *first = c.ret.v.obj;
  ferry_call_close(&c);
  assert_int_equal(call_global(fx, "runtime.SystemLib", NULL, 0, &c), 0);
  assert_ptr_equal(c.ret.v.obj, first); /* one module per process */
  ferry_module *m = (ferry_module *)c.ret.v.obj;
  ferry_func *f = NULL;
  assert_int_equal(ferry_module_get_function(m, "anything", 1, &f, &fx->err), FERRY_ENOTFOUND);
  ferry_call_close(&c);
  /* A registered symbol becomes a function of the system library. */
  void *addone_like = (void *)(uintptr_t)&TVMFuncCall; /* any function address */
  assert_int_equal(TVMBackendRegisterSystemLibSymbol("pfx_fn", addone_like), 0);
  ferry_value p = str("pfx_");
  assert_int_equal(call_global(fx, "runtime.SystemLib", &p, 1, &c), 0);
  m = (ferry_module *)c.ret.v.obj;
  assert_int_equal(ferry_module_get_function(m, "fn", 1, &f, &fx->err), 0);
  ferry_obj_release(&f->base);
  ferry_call_close(&c);
}

static void wrong_argument_kinds(void **state) {
  struct fixture *fx = *state;
  ferry_call c;
  ferry_value a[3] = {i64(1), str("x"), i64(1)};
  assert_int_equal(call_global(fx, "tvm.rpc.server.ModuleGetFunction", a, 3, &c), FERRY_ETYPE);
  assert_non_null(strstr(fx->err.msg, "argument 0 must be a Module"));
  ferry_call_close(&c);
  assert_int_equal(call_global(fx, "runtime.RPCTimeEvaluator", a, 3, &c), FERRY_EINVAL);
  ferry_call_close(&c);
  assert_int_equal(call_global(fx, "tvm.rpc.server.ImportModule", a, 2, &c), FERRY_ETYPE);
  ferry_call_close(&c);
  ferry_value gpu = i64(2);
  ferry_module *m = load(fx, "testlib.so");
  ferry_value te[12] = {obj(FERRY_KIND_MODULE, m), str("addone"), gpu, i64(0), i64(1), i64(1),
                        i64(0), i64(100), i64(0), i64(1), i64(0), str("")};
  assert_int_equal(call_global(fx, "runtime.RPCTimeEvaluator", te, 12, &c), FERRY_EUNSUPPORTED);
  ferry_call_close(&c);
  ferry_obj_release(&m->base);
}

/* Runs a shell command inside the work folder. */
static void sh(struct fixture *fx, const char *cmd) {
  char full[1024];
  snprintf(full, sizeof full, "cd %s && %s", fx->dir, cmd);
  assert_int_equal(system(full), 0);
}

static void link_object_and_tar(void **state) {
  struct fixture *fx = *state;
  if (system("command -v cc >/dev/null 2>&1") != 0) {
    skip();
  }
  char cmd[512];
  snprintf(cmd, sizeof cmd, "cc -c -fPIC -O1 %s/testlib.c -o golden.o", FERRY_GOLDEN_DIR);
  sh(fx, cmd);
  sh(fx, "mkdir t && cp golden.o t/a.o && tar -cf golden.tar -C t a.o");
  /* TVM's export_library("x.tar") runs `tar -czf`: gzip-compressed. */
  sh(fx, "tar -czf gz.tar -C t a.o");
  const char *names[] = {"golden.o", "golden.tar", "gz.tar"};
  for (int k = 0; k < 3; k++) {
    ferry_value a = str(names[k]);
    ferry_call c;
    int rc = call_global(fx, "tvm.rpc.server.load_module", &a, 1, &c);
    if (rc)
      fprintf(stderr, "%s\n", fx->err.msg);
    assert_int_equal(rc, 0);
    ferry_module *m = (ferry_module *)c.ret.v.obj;
    ferry_func *add = get_fn(fx, m, "add_i64");
    ferry_call_close(&c);
    ferry_value args[2] = {i64(2), i64(40)};
    assert_int_equal(call(fx, add, args, 2, &c), 0);
    assert_int_equal(c.ret.v.i, 42);
    ferry_call_close(&c);
    ferry_obj_release(&add->base);
    /* download_linked_module gives the linked library's bytes. */
    assert_int_equal(call_global(fx, "tvm.rpc.server.download_linked_module", &a, 1, &c), 0);
    assert_int_equal(c.ret.kind, FERRY_KIND_BYTES);
    assert_true(c.ret.v.str.len > 1000);
    assert_memory_equal(c.ret.v.str.data, "\x7f" "ELF", 4);
    ferry_call_close(&c);
  }
  /* gzip's magic on data that is not gzip: an error, not a crash. */
  sh(fx, "printf '\\037\\213junk' > badgz.tar");
  ferry_value bg = str("badgz.tar");
  ferry_call cg;
  assert_int_equal(call_global(fx, "tvm.rpc.server.load_module", &bg, 1, &cg), FERRY_EPROTO);
  assert_non_null(strstr(fx->err.msg, "corrupt gzip"));
  ferry_call_close(&cg);
  /* An object that does not link: the compiler's message comes back. */
  sh(fx, "echo junk > bad.o");
  ferry_value bad = str("bad.o");
  ferry_call c;
  assert_int_equal(call_global(fx, "tvm.rpc.server.load_module", &bad, 1, &c), FERRY_EIO);
  assert_non_null(strstr(fx->err.msg, "linking failed"));
  ferry_call_close(&c);
}

/* A ustar header for name with type and size (checksum left blank: ferry
 * does not rely on it). */
static void tar_header(uint8_t *h, const char *name, char type, size_t size, const char *link) {
  memset(h, 0, 512);
  strncpy((char *)h, name, 100);
  snprintf((char *)h + 124, 12, "%011o", (unsigned)size);
  h[156] = (uint8_t)type;
  if (link)
    strncpy((char *)h + 157, link, 100);
  memcpy(h + 257, "ustar", 6);
}

static void hostile_tar(void **state) {
  struct fixture *fx = *state;
  struct {
    const char *name;
    char type;
    const char *link;
    const char *expect;
  } cases[] = {
      {"../evil.o", '0', NULL, "'..'"},
      {"/tmp/evil.o", '0', NULL, "absolute"},
      {"ln.o", '2', "/etc/passwd", "link"},
      {"hard.o", '1', "/etc/passwd", "link"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    static uint8_t tar[512 * 4];
    memset(tar, 0, sizeof tar);
    tar_header(tar, cases[i].name, cases[i].type, cases[i].type == '0' ? 4 : 0, cases[i].link);
    memcpy(tar + 512, "data", 4);
    ferry_value up[2] = {str("h.tar"), {.kind = FERRY_KIND_BYTES}};
    up[1].v.str.data = (const char *)tar;
    up[1].v.str.len = sizeof tar;
    ferry_call c;
    assert_int_equal(call_global(fx, "tvm.rpc.server.upload", up, 2, &c), 0);
    ferry_call_close(&c);
    ferry_value n = str("h.tar");
    assert_int_equal(call_global(fx, "tvm.rpc.server.load_module", &n, 1, &c), FERRY_EPERM);
    assert_non_null(strstr(fx->err.msg, cases[i].expect));
    ferry_call_close(&c);
  }
  assert_int_equal(access("/tmp/evil.o", F_OK), -1);
  /* A size that runs past the archive. */
  static uint8_t tar[1024];
  tar_header(tar, "big.o", '0', 1 << 20, NULL);
  ferry_value up[2] = {str("t.tar"), {.kind = FERRY_KIND_BYTES}};
  up[1].v.str.data = (const char *)tar;
  up[1].v.str.len = sizeof tar;
  ferry_call c;
  assert_int_equal(call_global(fx, "tvm.rpc.server.upload", up, 2, &c), 0);
  ferry_call_close(&c);
  ferry_value n = str("t.tar");
  assert_int_equal(call_global(fx, "tvm.rpc.server.load_module", &n, 1, &c), FERRY_EPROTO);
  ferry_call_close(&c);
}

/* A small gzip archive that inflates past the work quota is refused
 * before the session holds its inflated bytes. */
static void gzip_tar_bounded_by_quota(void **state) {
  struct fixture *fx = *state;
  ferry_rt_close(fx->rt);
  ferry_rt_options opt = {.work_dir = fx->dir, .num_threads = 1, .work_quota = 64 << 10};
  assert_int_equal(ferry_rt_open(&fx->rt, &opt, &fx->err), 0);
  sh(fx, "head -c 4194304 /dev/zero > z.o && tar -czf bomb.tar z.o && rm z.o");
  ferry_value n = str("bomb.tar");
  ferry_call c;
  assert_int_equal(call_global(fx, "tvm.rpc.server.load_module", &n, 1, &c), FERRY_ETOOBIG);
  assert_non_null(strstr(fx->err.msg, "inflates to more than 65536 bytes (the work quota)"));
  ferry_call_close(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(testlib_calls, setup, teardown),
      cmocka_unit_test_setup_teardown(testlib_tensors_and_main, setup, teardown),
      cmocka_unit_test_setup_teardown(env_function_and_funccall, setup, teardown),
      cmocka_unit_test_setup_teardown(load_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(blob_ok_and_reload, setup, teardown),
      cmocka_unit_test_setup_teardown(csource_library, setup, teardown),
      cmocka_unit_test_setup_teardown(odd_slots_untouched, setup, teardown),
      cmocka_unit_test_setup_teardown(matmul, setup, teardown),
      cmocka_unit_test_setup_teardown(parallel_and_workspace, setup, teardown),
      cmocka_unit_test_setup_teardown(time_evaluator, setup, teardown),
      cmocka_unit_test_setup_teardown(system_lib, setup, teardown),
      cmocka_unit_test_setup_teardown(wrong_argument_kinds, setup, teardown),
      cmocka_unit_test_setup_teardown(link_object_and_tar, setup, teardown),
      cmocka_unit_test_setup_teardown(hostile_tar, setup, teardown),
      cmocka_unit_test_setup_teardown(gzip_tar_bounded_by_quota, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
