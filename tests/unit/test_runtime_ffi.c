/* Library modules in the tvm-ffi ABI (TVM >= 0.21): loading next to
 * classic libraries, every function of tests/models/testlib_ffi.c, errors
 * raised by compiled code (whole and in parts), Str objects in both
 * directions (and their release), calls back into ferry through the
 * once-handle lookup, workspaces and parallel launches through the context
 * slots, and libraries ferry must refuse with a clear message (a context
 * slot it does not fill, an undefined runtime symbol, an embedded module). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ferry/tvm_ffi_abi.h"
#include "rt_fixture.h"
#include "runtime/rt_internal.h"

static int setup(void **state) { return rt_fixture_setup(state, "ffi", 3); }
static int teardown(void **state) { return rt_fixture_teardown(state); }

static ferry_value str(const char *s) {
  ferry_value v = {.kind = FERRY_KIND_STR};
  v.v.str.data = s;
  v.v.str.len = strlen(s);
  return v;
}
static ferry_value i64(int64_t x) { return (ferry_value){.kind = FERRY_KIND_INT, .v.i = x}; }
static ferry_value f64(double x) { return (ferry_value){.kind = FERRY_KIND_FLOAT, .v.f = x}; }

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

/* Uploads a model as `as`, after patch(buf, n) if given. */
static void put_model_as(struct fixture *fx, const char *model, const char *as,
                         void (*patch)(char *buf, size_t n)) {
  char src[512];
  snprintf(src, sizeof src, "%s/%s", FERRY_MODELS_DIR, model);
  FILE *in = fopen(src, "rb");
  assert_non_null(in);
  static char buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf, in);
  fclose(in);
  if (patch)
    patch(buf, n);
  ferry_value a[2] = {str(as), {.kind = FERRY_KIND_BYTES}};
  a[1].v.str.data = buf;
  a[1].v.str.len = n;
  ferry_call c;
  assert_int_equal(call_global(fx, "tvm.rpc.server.upload", a, 2, &c), 0);
  ferry_call_close(&c);
}

/* load_module of a model; returns rc, the module (one reference) in *out. */
static void put_model(struct fixture *fx, const char *model) {
  put_model_as(fx, model, model, NULL);
}

static int load_uploaded(struct fixture *fx, const char *model, ferry_module **out) {
  ferry_value a = str(model);
  ferry_call c;
  int rc = call_global(fx, "tvm.rpc.server.load_module", &a, 1, &c);
  *out = NULL;
  if (rc == 0) {
    assert_int_equal(c.ret.kind, FERRY_KIND_MODULE);
    *out = (ferry_module *)c.ret.v.obj;
    c.ret.kind = FERRY_KIND_NONE;
  }
  ferry_call_close(&c);
  return rc;
}

static int try_load(struct fixture *fx, const char *model, ferry_module **out) {
  put_model(fx, model);
  return load_uploaded(fx, model, out);
}

static ferry_module *load(struct fixture *fx, const char *model) {
  ferry_module *m;
  int rc = try_load(fx, model, &m);
  if (rc)
    fprintf(stderr, "load failed: %s\n", fx->err.msg);
  assert_int_equal(rc, 0);
  return m;
}

static ferry_func *get_fn(struct fixture *fx, ferry_module *m, const char *name) {
  ferry_func *f = NULL;
  ferry_err_clear(&fx->err);
  int rc = ferry_module_get_function(m, name, 1, &f, &fx->err);
  assert_true(rc == FERRY_OK || rc == FERRY_ENOTFOUND);
  return f;
}

/* Calls m[name](args) and checks the int result. */
static void expect_int(struct fixture *fx, ferry_module *m, const char *name,
                       const ferry_value *args, int n, int64_t want) {
  ferry_func *f = get_fn(fx, m, name);
  assert_non_null(f);
  ferry_call c;
  int rc = call(fx, f, args, n, &c);
  if (rc)
    fprintf(stderr, "%s failed: %s\n", name, fx->err.msg);
  assert_int_equal(rc, 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_INT);
  assert_int_equal(c.ret.v.i, want);
  ferry_call_close(&c);
  ferry_obj_release(&f->base);
}

/* Calls m[name](args), expects an error with exactly msg. */
static void expect_error(struct fixture *fx, ferry_module *m, const char *name,
                         const ferry_value *args, int n, int code, const char *msg) {
  ferry_func *f = get_fn(fx, m, name);
  assert_non_null(f);
  ferry_call c;
  assert_int_equal(call(fx, f, args, n, &c), code);
  assert_int_equal(c.ret.kind, FERRY_KIND_NONE);
  assert_string_equal(fx->err.msg, msg);
  ferry_call_close(&c);
  ferry_obj_release(&f->base);
}

static ferry_ndarray *vec4(struct fixture *fx, const float *init) {
  ferry_ndarray *a;
  int64_t shape[1] = {4};
  assert_int_equal(ferry_ndarray_new(fx->rt, 1, shape, (DLDataType){kDLFloat, 32, 1},
                                     (DLDevice){kDLCPU, 0}, &a, &fx->err),
                   0);
  if (init)
    memcpy(a->tensor.data, init, 4 * sizeof(float));
  return a;
}

static void kernels_and_scalars(void **state) {
  struct fixture *fx = *state;
  ferry_module *m = load(fx, "testlib_ffi.so");
  assert_string_equal(m->type_key, "library");

  ferry_value a2[2] = {i64(2), i64(40)};
  expect_int(fx, m, "add_i64", a2, 2, 42);
  ferry_value wrong[2] = {f64(1), i64(2)};
  expect_error(fx, m, "add_i64", wrong, 2, FERRY_EREMOTE, "add_i64 expects two ints");

  ferry_func *mul = get_fn(fx, m, "mul_f64");
  ferry_value af[2] = {f64(1.5), f64(4.0)};
  ferry_call c;
  assert_int_equal(call(fx, mul, af, 2, &c), 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_FLOAT);
  assert_true(c.ret.v.f == 6.0);
  ferry_call_close(&c);
  ferry_obj_release(&mul->base);

  /* Tensors: addone and scale, an NDArray and a borrowed DLTensor, and the
   * entry function asked for under both names. */
  float in[4] = {1, 2, 3, 4};
  ferry_ndarray *x = vec4(fx, in), *y = vec4(fx, NULL);
  const char *names[] = {"addone", "main", "__tvm_main__"};
  for (int k = 0; k < 3; k++) {
    ferry_func *f = get_fn(fx, m, names[k]);
    assert_non_null(f);
    memset(y->tensor.data, 0, 16);
    ferry_value t[2] = {{.kind = FERRY_KIND_NDARRAY, .v.obj = &x->base},
                        {.kind = FERRY_KIND_TENSOR, .v.tensor = &y->tensor}};
    assert_int_equal(call(fx, f, t, 2, &c), 0);
    assert_int_equal(c.ret.kind, FERRY_KIND_NONE);
    ferry_call_close(&c);
    const float *out = y->tensor.data;
    for (int i = 0; i < 4; i++)
      assert_true(out[i] == in[i] + 1);
    ferry_obj_release(&f->base);
  }
  ferry_func *scale = get_fn(fx, m, "scale");
  ferry_value t[2] = {{.kind = FERRY_KIND_TENSOR, .v.tensor = &x->tensor},
                      {.kind = FERRY_KIND_TENSOR, .v.tensor = &y->tensor}};
  assert_int_equal(call(fx, scale, t, 2, &c), 0);
  ferry_call_close(&c);
  assert_true(((float *)y->tensor.data)[3] == 8.0f);
  ferry_value bad[2] = {i64(1), i64(2)};
  assert_int_equal(call(fx, scale, bad, 2, &c), FERRY_EREMOTE);
  assert_string_equal(fx->err.msg, "expects two tensors");
  ferry_call_close(&c);
  ferry_obj_release(&scale->base);
  ferry_obj_release(&x->base);
  ferry_obj_release(&y->base);

  /* Every scalar kind goes in and comes back unchanged. */
  ferry_func *echo = get_fn(fx, m, "echo");
  ferry_value vals[] = {
      {.kind = FERRY_KIND_NONE},
      i64(-7),
      {.kind = FERRY_KIND_BOOL, .v.i = 1},
      f64(2.5),
      {.kind = FERRY_KIND_DTYPE, .v.dtype = {kDLFloat, 16, 4}},
      {.kind = FERRY_KIND_DEVICE, .v.device = {kDLCPU, 3}},
      {.kind = FERRY_KIND_OPAQUE, .v.handle = 0x1234},
  };
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    assert_int_equal(call(fx, echo, &vals[i], 1, &c), 0);
    assert_int_equal(c.ret.kind, vals[i].kind);
    if (vals[i].kind == FERRY_KIND_DTYPE)
      assert_memory_equal(&c.ret.v.dtype, &vals[i].v.dtype, sizeof(DLDataType));
    else if (vals[i].kind == FERRY_KIND_DEVICE)
      assert_memory_equal(&c.ret.v.device, &vals[i].v.device, sizeof(DLDevice));
    else if (vals[i].kind != FERRY_KIND_NONE)
      assert_memory_equal(&c.ret.v, &vals[i].v, sizeof vals[i].v.i);
    ferry_call_close(&c);
  }
  ferry_obj_release(&echo->base);

  ferry_value many[20];
  for (int i = 0; i < 20; i++)
    many[i] = i64(i);
  expect_int(fx, m, "count_args", many, 20, 20);
  expect_int(fx, m, "count_args", NULL, 0, 0);
  ferry_value s = str("hello");
  expect_int(fx, m, "str_len", &s, 1, 5);
  ferry_value b = {.kind = FERRY_KIND_BYTES, .v.str = {"a\0b", 3}};
  expect_int(fx, m, "str_len", &b, 1, 3);

  /* A module cannot be handed to tvm-ffi code (it has no object header). */
  ferry_value mod = {.kind = FERRY_KIND_MODULE, .v.obj = &m->base};
  expect_error(fx, m, "count_args", &mod, 1, FERRY_ETYPE,
               "argument 0 of kind Module cannot be passed to tvm-ffi compiled code");

  assert_null(get_fn(fx, m, "no_such_function"));
  assert_null(get_fn(fx, m, "__tvm_ffi__library_ctx")); /* data, not a function */
  ferry_obj_release(&m->base);
}

static void errors_and_objects(void **state) {
  struct fixture *fx = *state;
  ferry_module *m = load(fx, "testlib_ffi.so");
  expect_error(fx, m, "fail", NULL, 0, FERRY_EREMOTE, "fail: deliberate error from testlib");
  expect_error(fx, m, "fail_parts", NULL, 0, FERRY_EREMOTE, "fail_parts: in three parts");
  /* The previous error does not leak into a successful call. */
  ferry_value a2[2] = {i64(1), i64(1)};
  expect_int(fx, m, "add_i64", a2, 2, 2);

  /* A Str object returned by compiled code is copied, then released. */
  expect_int(fx, m, "freed", NULL, 0, 0);
  ferry_func *greet = get_fn(fx, m, "greet");
  ferry_value who = str("ferry");
  ferry_call c;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(call(fx, greet, &who, 1, &c), 0);
    assert_int_equal(c.ret.kind, FERRY_KIND_STR);
    assert_string_equal(c.ret.v.str.data, "hello, ferry");
    assert_int_equal(c.ret.v.str.len, 12);
    ferry_call_close(&c);
  }
  ferry_obj_release(&greet->base);
  expect_int(fx, m, "freed", NULL, 0, 3);
  ferry_obj_release(&m->base);
}

static void calls_back_into_ferry(void **state) {
  struct fixture *fx = *state;
  ferry_module *m = load(fx, "testlib_ffi.so");
  /* Through the module's imports and the global registry: a ferry
   * built-in (ffi.SystemLib takes no ints, so its error comes back) and
   * another tvm-ffi function of a module the library imports. */
  ferry_module *classic = load(fx, "testlib.so");
  ferry_value imp[2] = {{.kind = FERRY_KIND_MODULE, .v.obj = &m->base},
                        {.kind = FERRY_KIND_MODULE, .v.obj = &classic->base}};
  ferry_call c;
  assert_int_equal(call_global(fx, "tvm.rpc.server.ImportModule", imp, 2, &c), 0);
  ferry_call_close(&c);
  /* tvm-ffi code calling a classic compiled function through ferry. */
  ferry_value cg[3] = {str("add_i64"), i64(20), i64(22)};
  expect_int(fx, m, "call_global", cg, 3, 42);
  expect_int(fx, m, "call_global", cg, 3, 42); /* cached handle */
  ferry_value cgerr[3] = {str("add_i64"), f64(1), i64(2)};
  expect_error(fx, m, "call_global", cgerr, 3, FERRY_EREMOTE, "TVMError: add_i64 expects two ints");
  ferry_value missing[3] = {str("no.such.global"), i64(1), i64(2)};
  expect_error(fx, m, "call_global", missing, 3, FERRY_EREMOTE,
               "Cannot find function no.such.global in the imported modules or global registry");
  /* A string result travels back as a Str object the library owns and
   * hands on; ferry copies it out and frees it. */
  ferry_func *f = get_fn(fx, m, "call_global_str");
  ferry_value ws[2] = {str("tvm.rpc.server.workpath"), str("x.txt")};
  assert_int_equal(call(fx, f, ws, 2, &c), 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_STR);
  char want[128];
  snprintf(want, sizeof want, "%s/x.txt", fx->rt->work_dir);
  assert_string_equal(c.ret.v.str.data, want);
  ferry_call_close(&c);
  ferry_obj_release(&f->base);

  ferry_value n = i64(1000);
  expect_int(fx, m, "workspace_sum", &n, 1, 999 * 1000 / 2);
  expect_int(fx, m, "parallel_tasks", NULL, 0, 3);
  ferry_obj_release(&classic->base);
  ferry_obj_release(&m->base);
}

static void both_abis_side_by_side(void **state) {
  struct fixture *fx = *state;
  ferry_module *ffi = load(fx, "testlib_ffi.so");
  ferry_module *classic = load(fx, "testlib.so");
  ferry_value a2[2] = {i64(2), i64(40)};
  for (int round = 0; round < 2; round++) {
    expect_int(fx, ffi, "add_i64", a2, 2, 42);
    expect_int(fx, classic, "add_i64", a2, 2, 42);
  }
  /* Loading the same tvm-ffi file again shares its library module (no
   * second upload: rewriting a mapped library would crash its code). */
  ferry_module *again;
  assert_int_equal(load_uploaded(fx, "testlib_ffi.so", &again), 0);
  expect_int(fx, again, "add_i64", a2, 2, 42);
  ferry_obj_release(&again->base);
  ferry_obj_release(&classic->base);
  ferry_obj_release(&ffi->base);
}

static void refused_libraries(void **state) {
  struct fixture *fx = *state;
  ferry_module *m;
  assert_int_equal(try_load(fx, "ffi_badslot.so", &m), FERRY_EDLOPEN);
  assert_string_equal(fx->err.msg,
                      "cannot load ffi_badslot.so: it needs the runtime function "
                      "TVMFFIFutureRuntimeCall (context slot __TVMFFIFutureRuntimeCall), which "
                      "ferry does not provide");
  assert_int_equal(try_load(fx, "ffi_undefined.so", &m), FERRY_EDLOPEN);
  assert_non_null(strstr(fx->err.msg, "undefined symbol: TVMFFIObjectIncRef"));
  /* A Relax executable in __tvm_ffi__library_bin is loaded now (issue
   * 11); this one is a single byte, so the parser refuses it by offset. */
  assert_int_equal(try_load(fx, "ffi_bin.so", &m), FERRY_EPROTO);
  assert_string_equal(fx->err.msg,
                      "relax executable: at byte 0: truncated: magic needs 8 bytes, 1 left");
  /* The runtime still works after the refusals. */
  m = load(fx, "testlib_ffi.so");
  ferry_value a2[2] = {i64(2), i64(3)};
  expect_int(fx, m, "add_i64", a2, 2, 5);
  ferry_obj_release(&m->base);
}

/* ELF header edits (64-bit little-endian layout: e_shoff at 40, e_shnum
 * at 60). */
static void drop_section_table(char *buf, size_t n) {
  assert_true(n > 64);
  memset(buf + 40, 0, 8);
  memset(buf + 60, 0, 2);
}
static void bad_section_offset(char *buf, size_t n) {
  assert_true(n > 64);
  memset(buf + 40, 0x7f, 8);
}

static void section_table_edge_cases(void **state) {
  struct fixture *fx = *state;
  /* Without a section table (sstrip) the library still loads and runs:
   * the dynamic loader needs none, and there is nothing to check. */
  put_model_as(fx, "testlib_ffi.so", "noshdr.so", drop_section_table);
  ferry_module *m;
  int rc = load_uploaded(fx, "noshdr.so", &m);
  if (rc)
    fprintf(stderr, "noshdr: %s\n", fx->err.msg);
  assert_int_equal(rc, 0);
  ferry_value a2[2] = {i64(2), i64(40)};
  expect_int(fx, m, "add_i64", a2, 2, 42);
  ferry_obj_release(&m->base);
  /* A section table pointing past the file is refused with a message (by
   * the ELF check before dlopen, wire/elf_check.c). */
  put_model_as(fx, "ffi_badslot.so", "badshoff.so", bad_section_offset);
  assert_int_equal(load_uploaded(fx, "badshoff.so", &m), FERRY_EDLOPEN);
  assert_non_null(strstr(fx->err.msg, "cannot load badshoff.so: truncated ELF: section header "
                                      "table ends at byte"));
}

static void library_bin_kind_is_bounded(void **state) {
  (void)state;
  uint8_t bin[64] = {0};
  char kind[32];
  /* Every truncation of a valid prefix gives "unknown", never a read past. */
#define U64(x) (x), 0, 0, 0, 0, 0, 0, 0
  /* indptr [0, 1], children [] (count 0), then the key "cud" */
  uint8_t good[] = {U64(40), U64(2), U64(0), U64(1), U64(0), U64(3), 'c', 'u', 'd'};
#undef U64
  for (size_t n = 0; n < sizeof good; n++) {
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, good, n);
    ferry_ffi_library_bin_kind(copy, n, kind, sizeof kind);
    assert_string_equal(kind, "unknown");
    free(copy);
  }
  ferry_ffi_library_bin_kind(good, sizeof good, kind, sizeof kind);
  assert_string_equal(kind, "cud");
  /* Huge counts are refused before any arithmetic could wrap. */
  memset(bin, 0xff, sizeof bin);
  ferry_ffi_library_bin_kind(bin, sizeof bin, kind, sizeof kind);
  assert_string_equal(kind, "unknown");
}

static void ffi_system_lib_global(void **state) {
  struct fixture *fx = *state;
  ferry_call c;
  assert_int_equal(call_global(fx, "ffi.SystemLib", NULL, 0, &c), 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_MODULE);
  ferry_module *m = (ferry_module *)c.ret.v.obj;
  assert_string_equal(m->type_key, "system_lib");
  ferry_call_close(&c);
  ferry_value bad = i64(1);
  assert_int_equal(call_global(fx, "ffi.SystemLib", &bad, 1, &c), FERRY_ETYPE);
  ferry_call_close(&c);
}

static void ffi_system_library(void **state) {
  (void)state;
  /* A tvm-ffi system library preloaded as --load-library does: its
   * constructor registers __tvm_ffi_<prefix><name> symbols. */
  char dir[] = "/tmp/ferry_rt_ffisys_XXXXXX";
  assert_non_null(mkdtemp(dir));
  const char *preload[] = {FERRY_MODELS_DIR "/ffi_syslib.so", NULL};
  ferry_rt_options opt = {.work_dir = dir, .num_threads = 1, .preload = preload};
  struct fixture fx;
  ferry_err_clear(&fx.err);
  assert_int_equal(ferry_rt_open(&fx.rt, &opt, &fx.err), 0);
  ferry_value prefix = str("zoo_");
  ferry_call c;
  assert_int_equal(call_global(&fx, "ffi.SystemLib", &prefix, 1, &c), 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_MODULE);
  ferry_module *m = (ferry_module *)c.ret.v.obj;
  c.ret.kind = FERRY_KIND_NONE;
  ferry_call_close(&c);
  ferry_value a2[2] = {i64(40), i64(2)};
  expect_int(&fx, m, "sys_add", a2, 2, 42);
  expect_int(&fx, m, "sys_self", NULL, 0, 1);
  ferry_value bad[2] = {f64(1), i64(2)};
  expect_error(&fx, m, "sys_add", bad, 2, FERRY_EREMOTE, "sys_add expects two ints");
  assert_null(get_fn(&fx, m, "sys_missing"));
  ferry_obj_release(&m->base);
  /* Without the prefix the names are not found (they carry it). */
  assert_int_equal(call_global(&fx, "ffi.SystemLib", NULL, 0, &c), 0);
  m = (ferry_module *)c.ret.v.obj;
  c.ret.kind = FERRY_KIND_NONE;
  ferry_call_close(&c);
  assert_null(get_fn(&fx, m, "sys_add"));
  ferry_obj_release(&m->base);
  ferry_rt_close(fx.rt);
  assert_int_equal(rmdir(dir), 0);
}

static int init_runs;
static int init_ok(void **result) {
  init_runs++;
  *result = &init_runs;
  return 0;
}
static int init_fail(void **result) {
  (void)result;
  init_runs++;
  TVMFFIErrorSetRaisedFromCStr("RuntimeError", "init failed");
  return -1;
}

static void direct_callbacks(void **state) {
  (void)state;
  /* The once-handle runs its initialiser once; a failing one leaves the
   * handle empty and its error in place. */
  void *h = NULL;
  init_runs = 0;
  assert_int_equal(TVMFFIHandleInitOnce(&h, init_ok), 0);
  assert_int_equal(TVMFFIHandleInitOnce(&h, init_ok), 0);
  assert_int_equal(init_runs, 1);
  assert_ptr_equal(h, &init_runs);
  void *h2 = NULL;
  assert_int_equal(TVMFFIHandleInitOnce(&h2, init_fail), -1);
  assert_null(h2);
  assert_string_equal(ferry_backend_last_error(), "init failed");
  assert_int_equal(TVMFFIHandleInitOnce(NULL, init_ok), -1);
  /* Parts: NULL parts skipped; an over-long message is cut, not overrun. */
  static char big[FERRY_ERR_MSG_MAX * 2];
  memset(big, 'x', sizeof big - 1);
  const char *parts[3] = {"a", NULL, big};
  TVMFFIErrorSetRaisedFromCStrParts("ValueError", parts, 3);
  assert_int_equal(strlen(ferry_backend_last_error()), FERRY_ERR_MSG_MAX - 1);
  assert_int_equal(ferry_backend_last_error()[0], 'a');
  /* Calls without a session runtime or with bad arguments fail cleanly. */
  TVMFFIAny r = {.type_index = kTVMFFINone};
  assert_int_equal(TVMFFIFunctionCall(NULL, NULL, 0, &r), -1);
  assert_string_equal(ferry_backend_last_error(), "TVMFFIFunctionCall: invalid arguments");
  void *out = NULL;
  assert_int_equal(TVMFFIEnvModLookupFromImports(NULL, "x", &out), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(kernels_and_scalars, setup, teardown),
      cmocka_unit_test_setup_teardown(errors_and_objects, setup, teardown),
      cmocka_unit_test_setup_teardown(calls_back_into_ferry, setup, teardown),
      cmocka_unit_test_setup_teardown(both_abis_side_by_side, setup, teardown),
      cmocka_unit_test_setup_teardown(refused_libraries, setup, teardown),
      cmocka_unit_test_setup_teardown(ffi_system_lib_global, setup, teardown),
      cmocka_unit_test_setup_teardown(section_table_edge_cases, setup, teardown),
      cmocka_unit_test(ffi_system_library),
      cmocka_unit_test(library_bin_kind_is_bounded),
      cmocka_unit_test(direct_callbacks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
