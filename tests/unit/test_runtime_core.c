/* Runtime core: allocation table and range checks, NDArrays, device
 * attributes, the registry, and the file functions' confinement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rt_fixture.h"
#include "runtime/rt_internal.h"

static int setup(void **state) { return rt_fixture_setup(state, "core", 2); }
static int teardown(void **state) { return rt_fixture_teardown(state); }

/* Calls global `name` with args; returns the rc, result in c (caller closes). */
static int call_global(ferry_rt *rt, const char *name, const ferry_value *args, int n,
                       ferry_call *c, ferry_err *err) {
  ferry_func *fn;
  ferry_err_clear(err);
  int rc = ferry_rt_get_global(rt, name, &fn);
  assert_int_equal(rc, 0);
  ferry_call_init(c, rt, args, n, err, 1 << 24);
  rc = ferry_func_call(fn, c);
  ferry_obj_release(&fn->base);
  return rc;
}

static ferry_value str(const char *s) {
  ferry_value v = {.kind = FERRY_KIND_STR};
  v.v.str.data = s;
  v.v.str.len = strlen(s);
  return v;
}

static void alloc_and_ranges(void **state) {
  struct fixture *f = *state;
  ferry_err err;
  ferry_err_clear(&err);
  DLDevice cpu = {kDLCPU, 0};
  DLDataType f32 = {kDLFloat, 32, 1};
  void *a = NULL, *b = NULL;
  assert_int_equal(ferry_rt_alloc(f->rt, cpu, 100, 0, f32, &a, &err), 0);
  assert_int_equal((uintptr_t)a % 64, 0);
  assert_int_equal(ferry_rt_alloc(f->rt, cpu, 4096, 128, f32, &b, &err), 0);
  assert_int_equal((uintptr_t)b % 128, 0);
  assert_int_equal(ferry_rt_check_range(f->rt, a, 100, &err), 0);
  assert_int_equal(ferry_rt_check_range(f->rt, (char *)a + 40, 60, &err), 0);
  assert_int_equal(ferry_rt_check_range(f->rt, (char *)a + 40, 61, &err), FERRY_EBADHANDLE);
  ferry_err_clear(&err);
  assert_int_equal(ferry_rt_check_range(f->rt, (char *)b - 1, 1, &err) == 0 &&
                       (char *)b - 1 >= (char *)a + 100,
                   0);
  ferry_err_clear(&err);
  int stack_var;
  assert_int_equal(ferry_rt_check_range(f->rt, &stack_var, 4, &err), FERRY_EBADHANDLE);
  assert_non_null(strstr(err.msg, "not inside a live allocation"));
  ferry_err_clear(&err);
  /* A huge length must not wrap around. */
  assert_int_equal(ferry_rt_check_range(f->rt, a, UINT64_MAX, &err), FERRY_EBADHANDLE);
  ferry_err_clear(&err);
  /* Bad alignment, device and sizes. */
  void *c = NULL;
  assert_int_equal(ferry_rt_alloc(f->rt, cpu, 8, 100, f32, &c, &err), FERRY_EINVAL);
  ferry_err_clear(&err);
  DLDevice gpu = {kDLCUDA, 0};
  assert_int_equal(ferry_rt_alloc(f->rt, gpu, 8, 64, f32, &c, &err), FERRY_EUNSUPPORTED);
  assert_non_null(strstr(err.msg, "device type 2"));
  ferry_err_clear(&err);
  assert_int_equal(ferry_rt_alloc(f->rt, cpu, 1ull << 62, 64, f32, &c, &err), FERRY_ETOOBIG);
  ferry_err_clear(&err);
  /* Free, then the range is gone and a second free is refused. */
  assert_int_equal(ferry_rt_free(f->rt, cpu, a, &err), 0);
  assert_int_equal(ferry_rt_check_range(f->rt, a, 1, &err), FERRY_EBADHANDLE);
  ferry_err_clear(&err);
  assert_int_equal(ferry_rt_free(f->rt, cpu, a, &err), FERRY_EBADHANDLE);
  ferry_err_clear(&err);
  assert_int_equal(ferry_rt_free(f->rt, cpu, (char *)b + 64, &err), FERRY_EBADHANDLE);
  /* b stays allocated: ferry_rt_close must free it (LeakSanitizer). */
}

/* The storage of an NDArray (a graph executor's pool, a parameter, an
 * array the client holds) cannot be freed by pointer (kDevFreeData): the
 * array goes on using it, so that was a use after free.  Releasing the
 * NDArray frees it. */
static void ndarray_storage_is_not_freed_by_pointer(void **state) {
  struct fixture *f = *state;
  ferry_err err;
  ferry_err_clear(&err);
  DLDevice cpu = {kDLCPU, 0};
  int64_t shape[1] = {16};
  ferry_ndarray *nd;
  assert_int_equal(ferry_ndarray_new(f->rt, 1, shape, (DLDataType){kDLFloat, 32, 1}, cpu, &nd,
                                     &err),
                   0);
  void *data = nd->tensor.data;
  assert_int_equal(ferry_rt_free(f->rt, cpu, data, &err), FERRY_EPERM);
  assert_non_null(strstr(err.msg, "storage of an NDArray"));
  ferry_err_clear(&err);
  assert_int_equal(ferry_rt_check_range(f->rt, data, 64, &err), 0);
  ((float *)data)[15] = 1.0f; /* still the array's */
  ferry_obj_release(&nd->base);
  assert_int_equal(ferry_rt_check_range(f->rt, data, 1, &err), FERRY_EBADHANDLE);
  ferry_err_clear(&err);
  /* A raw allocation is still freed by pointer. */
  void *raw;
  assert_int_equal(ferry_rt_alloc(f->rt, cpu, 64, 64, (DLDataType){kDLFloat, 32, 1}, &raw, &err),
                   0);
  assert_int_equal(ferry_rt_free(f->rt, cpu, raw, &err), 0);
}

static void tensor_alloc_and_copy(void **state) {
  struct fixture *f = *state;
  ferry_err err;
  ferry_err_clear(&err);
  int64_t shape[2] = {3, 4};
  DLTensor t = {.device = {kDLCPU, 0}, .ndim = 2, .dtype = {kDLFloat, 32, 1}, .shape = shape};
  void *p;
  assert_int_equal(ferry_rt_alloc_tensor(f->rt, &t, NULL, &p, &err), 0);
  assert_int_equal(ferry_rt_check_range(f->rt, p, 48, &err), 0);
  assert_int_equal(ferry_rt_check_range(f->rt, p, 49, &err), FERRY_EBADHANDLE);
  ferry_err_clear(&err);
  assert_int_equal(ferry_rt_alloc_tensor(f->rt, &t, "texture", &p, &err), FERRY_EUNSUPPORTED);
  ferry_err_clear(&err);
  int64_t neg[1] = {-1};
  DLTensor bad = {.device = {kDLCPU, 0}, .ndim = 1, .dtype = {kDLFloat, 32, 1}, .shape = neg};
  assert_int_equal(ferry_rt_alloc_tensor(f->rt, &bad, "", &p, &err), FERRY_ERANGE);
  ferry_err_clear(&err);
  int64_t huge[2] = {INT64_MAX, 4};
  bad.shape = huge;
  bad.ndim = 2;
  assert_int_equal(ferry_rt_alloc_tensor(f->rt, &bad, "global", &p, &err), FERRY_ERANGE);
  ferry_err_clear(&err);

  /* Element sizes that are not powers of two or larger than a page. */
  int64_t one[1] = {3};
  DLTensor odd = {.device = {kDLCPU, 0}, .ndim = 1, .dtype = {kDLFloat, 32, 100}, .shape = one};
  assert_int_equal(ferry_rt_alloc_tensor(f->rt, &odd, NULL, &p, &err), 0);
  assert_int_equal((uintptr_t)p % 512, 0);
  assert_int_equal(ferry_rt_check_range(f->rt, p, 1200, &err), 0);
  odd.dtype = (DLDataType){kDLFloat, 64, 1024};
  assert_int_equal(ferry_rt_alloc_tensor(f->rt, &odd, NULL, &p, &err), 0);
  assert_int_equal((uintptr_t)p % 4096, 0);

  ferry_ndarray *x, *y;
  DLDevice cpu = {kDLCPU, 0};
  assert_int_equal(ferry_ndarray_new(f->rt, 2, shape, t.dtype, cpu, &x, &err), 0);
  assert_int_equal(ferry_ndarray_new(f->rt, 2, shape, t.dtype, cpu, &y, &err), 0);
  for (int i = 0; i < 12; i++)
    ((float *)x->tensor.data)[i] = (float)i;
  assert_int_equal(ferry_rt_copy_tensor(f->rt, &x->tensor, &y->tensor, &err), 0);
  assert_memory_equal(x->tensor.data, y->tensor.data, 48);
  int64_t other[1] = {5};
  ferry_ndarray *z;
  assert_int_equal(ferry_ndarray_new(f->rt, 1, other, t.dtype, cpu, &z, &err), 0);
  assert_int_equal(ferry_rt_copy_tensor(f->rt, &x->tensor, &z->tensor, &err), FERRY_EINVAL);
  void *xd = x->tensor.data;
  ferry_obj_release(&x->base);
  ferry_err_clear(&err);
  assert_int_equal(ferry_rt_check_range(f->rt, xd, 1, &err), FERRY_EBADHANDLE);
  ferry_obj_release(&y->base);
  ferry_obj_release(&z->base);
}

static void device_attrs(void **state) {
  struct fixture *f = *state;
  ferry_err err;
  ferry_err_clear(&err);
  ferry_value v;
  DLDevice cpu = {kDLCPU, 0}, gpu = {kDLCUDA, 0};
  assert_int_equal(ferry_rt_dev_attr(f->rt, cpu, 0, &v, NULL, &err), 0);
  assert_int_equal(v.kind, FERRY_KIND_INT);
  assert_int_equal(v.v.i, 1);
  assert_int_equal(ferry_rt_dev_attr(f->rt, gpu, 0, &v, NULL, &err), 0);
  assert_int_equal(v.v.i, 0);
  assert_int_equal(ferry_rt_dev_attr(f->rt, cpu, 14, &v, NULL, &err), 0);
  assert_int_equal(v.kind, FERRY_KIND_INT);
  assert_true(v.v.i > 0);
  assert_int_equal(ferry_rt_dev_attr(f->rt, cpu, 5, &v, NULL, &err), 0);
  assert_int_equal(v.kind, FERRY_KIND_NONE);
  assert_int_equal(ferry_rt_dev_attr(f->rt, gpu, 1, &v, NULL, &err), FERRY_EUNSUPPORTED);
}

static void registry(void **state) {
  struct fixture *f = *state;
  ferry_func *fn;
  const char *names[] = {"tvm.rpc.server.upload", "tvm.rpc.server.download",
                         "tvm.rpc.server.remove", "tvm.rpc.server.listdir",
                         "tvm.rpc.server.workpath", "tvm.rpc.server.load_module",
                         "tvm.rpc.server.download_linked_module",
                         "tvm.rpc.server.ModuleGetFunction", "tvm.rpc.server.ImportModule",
                         "runtime.SystemLib", "runtime.RPCTimeEvaluator",
                         "runtime.ModuleGetFunction", "cache_flush_cpu_non_first_arg",
                         "tvm.contrib.random.random_fill", "runtime.SaveParams",
                         "runtime.LoadParams"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    assert_int_equal(ferry_rt_get_global(f->rt, names[i], &fn), 0);
    ferry_obj_release(&fn->base);
  }
  assert_int_equal(ferry_rt_get_global(f->rt, "no.such.global", &fn), FERRY_ENOTFOUND);
  /* Not registered unless the options ask for it (TVM's servers lack it). */
  assert_int_equal(ferry_rt_get_global(f->rt, "tvm.rpc.server.GetCRTMaxPacketSize", &fn),
                   FERRY_ENOTFOUND);
}

static void max_packet_size_option(void **state) {
  (void)state;
  ferry_rt_options opt = {.max_packet_size = 65536};
  ferry_rt *rt;
  ferry_err err;
  ferry_err_clear(&err);
  assert_int_equal(ferry_rt_open(&rt, &opt, &err), 0);
  ferry_call c;
  assert_int_equal(call_global(rt, "tvm.rpc.server.GetCRTMaxPacketSize", NULL, 0, &c, &err), 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_INT);
  assert_int_equal(c.ret.v.i, 65536);
  ferry_call_close(&c);
  ferry_rt_close(rt);
}

static void files_roundtrip(void **state) {
  struct fixture *f = *state;
  ferry_err err;
  ferry_call c;
  ferry_value up[2] = {str("hello.txt"), {.kind = FERRY_KIND_BYTES}};
  up[1].v.str.data = "hello ferry\n";
  up[1].v.str.len = 12;
  assert_int_equal(call_global(f->rt, "tvm.rpc.server.upload", up, 2, &c, &err), 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_NONE);
  ferry_call_close(&c);

  ferry_value name = str("hello.txt");
  assert_int_equal(call_global(f->rt, "tvm.rpc.server.download", &name, 1, &c, &err), 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_BYTES);
  assert_int_equal(c.ret.v.str.len, 12);
  assert_memory_equal(c.ret.v.str.data, "hello ferry\n", 12);
  ferry_call_close(&c);

  assert_int_equal(call_global(f->rt, "tvm.rpc.server.workpath", &name, 1, &c, &err), 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_STR);
  char expect[256];
  char *real = realpath(f->dir, NULL);
  snprintf(expect, sizeof expect, "%s/hello.txt", real);
  assert_string_equal(c.ret.v.str.data, expect);
  ferry_call_close(&c);

  ferry_value dot = str("");
  assert_int_equal(call_global(f->rt, "tvm.rpc.server.listdir", &dot, 1, &c, &err), 0);
  snprintf(expect, sizeof expect, "%s/hello.txt,", real);
  assert_string_equal(c.ret.v.str.data, expect);
  ferry_call_close(&c);
  free(real);

  assert_int_equal(call_global(f->rt, "tvm.rpc.server.remove", &name, 1, &c, &err), 0);
  ferry_call_close(&c);
  assert_int_equal(call_global(f->rt, "tvm.rpc.server.download", &name, 1, &c, &err), FERRY_EIO);
  assert_non_null(strstr(err.msg, "Cannot open"));
  assert_non_null(strstr(err.msg, "hello.txt"));
  ferry_call_close(&c);
  /* A folder goes with its contents; a link inside is removed, not followed. */
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "mkdir -p %s/d/e && touch %s/d/e/f %s/d/g && mkdir -p %s.keep && touch %s.keep/x && "
           "ln -s %s.keep %s/d/link",
           f->dir, f->dir, f->dir, f->dir, f->dir, f->dir, f->dir);
  assert_int_equal(system(cmd), 0);
  ferry_value d = str("d");
  assert_int_equal(call_global(f->rt, "tvm.rpc.server.remove", &d, 1, &c, &err), 0);
  ferry_call_close(&c);
  snprintf(cmd, sizeof cmd, "test ! -e %s/d && test -e %s.keep/x && rm -rf %s.keep", f->dir,
           f->dir, f->dir);
  assert_int_equal(system(cmd), 0);
  /* remove of a missing file and of "" are not errors (as in TVM). */
  assert_int_equal(call_global(f->rt, "tvm.rpc.server.remove", &name, 1, &c, &err), 0);
  ferry_call_close(&c);
  assert_int_equal(call_global(f->rt, "tvm.rpc.server.remove", &dot, 1, &c, &err), 0);
  ferry_call_close(&c);
}

static void files_confined(void **state) {
  struct fixture *f = *state;
  ferry_err err;
  ferry_call c;
  const char *bad[] = {"/etc/passwd", "../x", "a/../../x", "..", "sub/.."};
  const char *fns[] = {"tvm.rpc.server.upload", "tvm.rpc.server.download",
                       "tvm.rpc.server.remove", "tvm.rpc.server.listdir",
                       "tvm.rpc.server.load_module", "tvm.rpc.server.workpath"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    for (size_t j = 0; j < sizeof fns / sizeof fns[0]; j++) {
      ferry_value a[2] = {str(bad[i]), {.kind = FERRY_KIND_BYTES}};
      a[1].v.str.data = "x";
      a[1].v.str.len = 1;
      int n = strcmp(fns[j], "tvm.rpc.server.upload") == 0 ? 2 : 1;
      assert_int_equal(call_global(f->rt, fns[j], a, n, &c, &err), FERRY_EPERM);
      assert_true(strstr(err.msg, "absolute path") || strstr(err.msg, "'..'"));
      ferry_call_close(&c);
    }
  /* An embedded NUL. */
  ferry_value nul = {.kind = FERRY_KIND_STR};
  nul.v.str.data = "a\0b";
  nul.v.str.len = 3;
  assert_int_equal(call_global(f->rt, "tvm.rpc.server.download", &nul, 1, &c, &err), FERRY_EINVAL);
  ferry_call_close(&c);
  /* A symbolic link inside the folder that points outside is not followed. */
  char link[128];
  snprintf(link, sizeof link, "%s/escape", f->dir);
  assert_int_equal(symlink("/etc", link), 0);
  ferry_value through = str("escape/passwd");
  assert_int_equal(call_global(f->rt, "tvm.rpc.server.download", &through, 1, &c, &err),
                   FERRY_EIO);
  ferry_call_close(&c);
  snprintf(link, sizeof link, "%s/hosts", f->dir);
  assert_int_equal(symlink("/etc/hosts", link), 0);
  ferry_value direct = str("hosts");
  assert_int_equal(call_global(f->rt, "tvm.rpc.server.download", &direct, 1, &c, &err),
                   FERRY_EIO);
  ferry_call_close(&c);
  /* Wrong argument types are errors, not crashes. */
  ferry_value i = {.kind = FERRY_KIND_INT};
  assert_int_equal(call_global(f->rt, "tvm.rpc.server.download", &i, 1, &c, &err), FERRY_ETYPE);
  ferry_call_close(&c);
  assert_int_equal(call_global(f->rt, "tvm.rpc.server.upload", &direct, 1, &c, &err),
                   FERRY_EINVAL);
  ferry_call_close(&c);
}

static void random_fill_checks_range(void **state) {
  struct fixture *f = *state;
  ferry_err err;
  ferry_call c;
  int64_t shape[1] = {1000};
  ferry_ndarray *nd;
  DLDevice cpu = {kDLCPU, 0};
  ferry_err_clear(&err);
  assert_int_equal(ferry_ndarray_new(f->rt, 1, shape, (DLDataType){kDLFloat, 32, 1}, cpu, &nd, &err),
                   0);
  ferry_value a = {.kind = FERRY_KIND_TENSOR, .v.tensor = &nd->tensor};
  assert_int_equal(call_global(f->rt, "tvm.contrib.random.random_fill", &a, 1, &c, &err), 0);
  ferry_call_close(&c);
  float *p = nd->tensor.data;
  for (int i = 0; i < 1000; i++)
    assert_true(p[i] >= 1.0f && p[i] < 10.0f);
  /* A tensor whose data is not ours is refused before it is touched. */
  float local[4];
  DLTensor fake = nd->tensor;
  fake.data = local;
  a.v.tensor = &fake;
  assert_int_equal(call_global(f->rt, "tvm.contrib.random.random_fill", &a, 1, &c, &err),
                   FERRY_EBADHANDLE);
  ferry_call_close(&c);
  ferry_obj_release(&nd->base);
}

/* Elements wider than 64 bits (int128, uint96, int128x2, float128) are
 * filled without reading past the 8-byte random value: integers get 1..10
 * in their low 8 bytes and zeros above, other types random bytes. */
static void random_fill_wide_elements(void **state) {
  struct fixture *f = *state;
  ferry_err err;
  ferry_call c;
  DLDevice cpu = {kDLCPU, 0};
  static const DLDataType types[] = {
      {kDLInt, 128, 1}, {kDLUInt, 96, 1}, {kDLInt, 128, 2}, {kDLFloat, 128, 1},
      {kDLInt, 64, 4},  {kDLFloat, 32, 3}, {kDLInt, 255, 1}, {kDLBfloat, 16, 5}};
  for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
    int64_t shape[1] = {7};
    ferry_ndarray *nd;
    ferry_err_clear(&err);
    assert_int_equal(ferry_ndarray_new(f->rt, 1, shape, types[t], cpu, &nd, &err), 0);
    uint64_t n;
    assert_int_equal(ferry_tensor_nbytes(&nd->tensor, &n), 0);
    memset(nd->tensor.data, 0xAB, n);
    ferry_value a = {.kind = FERRY_KIND_TENSOR, .v.tensor = &nd->tensor};
    assert_int_equal(call_global(f->rt, "tvm.contrib.random.random_fill", &a, 1, &c, &err), 0);
    ferry_call_close(&c);
    const uint8_t *p = nd->tensor.data;
    unsigned bits = types[t].bits;
    if (types[t].code != kDLFloat && types[t].code != kDLBfloat && bits % 8 == 0) {
      size_t w = bits / 8;
      for (uint64_t off = 0; off < n; off += w) {
        uint64_t lo = 0;
        memcpy(&lo, p + off, w < 8 ? w : 8);
        assert_true(lo >= 1 && lo <= 10);
        for (size_t k = 8; k < w; k++)
          assert_int_equal(p[off + k], 0);
      }
    } else if (types[t].code == kDLFloat && bits == 32) {
      for (uint64_t off = 0; off < n; off += 4) {
        float v;
        memcpy(&v, p + off, 4);
        assert_true(v >= 1.0f && v < 10.0f);
      }
    }
    ferry_obj_release(&nd->base);
  }
}

static void save_and_load_params(void **state) {
  struct fixture *f = *state;
  ferry_err err;
  ferry_call c;
  /* The spec's 97-byte example: {"w": float32 [1.0, 2.0]}. */
  static const uint8_t example[] = {
      0xB7, 0x9C, 0x04, 0x05, 0x4F, 0x8D, 0xE5, 0xF7, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0,
      0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'w', 1, 0, 0, 0, 0, 0, 0, 0, 0x3F, 0xA1, 0xB4, 0x96, 0xF0,
      0x40, 0x5E, 0xDD, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 32, 1,
      0, 2, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x3F, 0, 0, 0, 0x40};
  ferry_value blob = {.kind = FERRY_KIND_BYTES};
  blob.v.str.data = (const char *)example;
  blob.v.str.len = sizeof example;
  assert_int_equal(call_global(f->rt, "runtime.LoadParams", &blob, 1, &c, &err), 0);
  assert_int_equal(c.ret.kind, FERRY_KIND_OBJECT);
  ferry_param_map *pm = ferry_param_map_cast(c.ret.v.obj);
  assert_non_null(pm);
  assert_int_equal(pm->n, 1);
  assert_string_equal(pm->names[0], "w");
  assert_true(((float *)pm->arrays[0]->tensor.data)[1] == 2.0f);
  /* The arrays are session buffers (range-checked like any other). */
  assert_int_equal(ferry_rt_check_range(f->rt, pm->arrays[0]->tensor.data, 8, &err), 0);
  ferry_value map = {.kind = FERRY_KIND_OBJECT, .v.obj = c.ret.v.obj};
  ferry_call c2;
  assert_int_equal(call_global(f->rt, "runtime.SaveParams", &map, 1, &c2, &err), 0);
  assert_int_equal(c2.ret.kind, FERRY_KIND_BYTES);
  assert_int_equal(c2.ret.v.str.len, sizeof example);
  assert_memory_equal(c2.ret.v.str.data, example, sizeof example);
  ferry_call_close(&c2);
  /* name, tensor pairs give the same bytes. */
  ferry_value pairs[2] = {str("w"), {.kind = FERRY_KIND_NDARRAY, .v.obj = &pm->arrays[0]->base}};
  assert_int_equal(call_global(f->rt, "runtime.SaveParams", pairs, 2, &c2, &err), 0);
  assert_memory_equal(c2.ret.v.str.data, example, sizeof example);
  ferry_call_close(&c2);
  ferry_call_close(&c);
  /* A tensor whose data is not a session buffer is refused. */
  float local[2] = {1, 2};
  int64_t shape[1] = {2};
  DLTensor fake = {.data = local, .device = {kDLCPU, 0}, .ndim = 1, .dtype = {kDLFloat, 32, 1},
                   .shape = shape};
  ferry_value bad_pairs[2] = {str("w"), {.kind = FERRY_KIND_TENSOR, .v.tensor = &fake}};
  assert_int_equal(call_global(f->rt, "runtime.SaveParams", bad_pairs, 2, &c2, &err),
                   FERRY_EBADHANDLE);
  ferry_call_close(&c2);
  /* Hostile blobs: wrong magic, truncated, lying length. */
  uint8_t b[sizeof example];
  memcpy(b, example, sizeof b);
  b[0] = 0;
  blob.v.str.data = (const char *)b;
  assert_int_equal(call_global(f->rt, "runtime.LoadParams", &blob, 1, &c, &err), FERRY_EMAGIC);
  assert_non_null(strstr(err.msg, "magic"));
  ferry_call_close(&c);
  memcpy(b, example, sizeof b);
  blob.v.str.len = sizeof b - 1;
  assert_int_equal(call_global(f->rt, "runtime.LoadParams", &blob, 1, &c, &err), FERRY_EPROTO);
  assert_non_null(strstr(err.msg, "truncated"));
  ferry_call_close(&c);
  blob.v.str.len = sizeof b;
  b[81] = 0xff; /* data_byte_size */
  assert_int_equal(call_global(f->rt, "runtime.LoadParams", &blob, 1, &c, &err), FERRY_EPROTO);
  ferry_call_close(&c);
  /* Wrong argument shapes. */
  ferry_value odd[1] = {str("w")};
  assert_int_equal(call_global(f->rt, "runtime.SaveParams", odd, 1, &c, &err), FERRY_EINVAL);
  ferry_call_close(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(alloc_and_ranges, setup, teardown),
      cmocka_unit_test_setup_teardown(tensor_alloc_and_copy, setup, teardown),
      cmocka_unit_test_setup_teardown(device_attrs, setup, teardown),
      cmocka_unit_test_setup_teardown(registry, setup, teardown),
      cmocka_unit_test_setup_teardown(max_packet_size_option, setup, teardown),
      cmocka_unit_test_setup_teardown(files_roundtrip, setup, teardown),
      cmocka_unit_test_setup_teardown(files_confined, setup, teardown),
      cmocka_unit_test_setup_teardown(random_fill_checks_range, setup, teardown),
      cmocka_unit_test_setup_teardown(random_fill_wide_elements, setup, teardown),
      cmocka_unit_test_setup_teardown(ndarray_storage_is_not_freed_by_pointer, setup, teardown),
      cmocka_unit_test_setup_teardown(save_and_load_params, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
