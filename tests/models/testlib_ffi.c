/* ferry's test module in the tvm-ffi ABI of TVM >= 0.21, with the function
 * set of the library used in the FFI golden recordings
 * (tests/golden/testlib_ffi.c) plus a few more for the runtime's own tests.
 * Like LLVM-generated code, it reaches the runtime through __TVM* context
 * slots the loader fills; fail_parts calls TVMFFIErrorSetRaisedFromCStrParts
 * directly, as TVM v0.26 code does (resolved from the loading executable).
 *
 *   addone(a, b)        b[i] = a[i] + 1   (float32 tensors of equal size)
 *   scale(a, b)         b[i] = a[i] * 2
 *   add_i64(x, y)       -> x + y
 *   mul_f64(x, y)       -> x * y
 *   fail()              error "fail: deliberate error from testlib"
 *   fail_parts()        error "fail_parts: " "in " "three parts"
 *   echo(x)             -> x for None, int, bool, float, dtype, device, opaque
 *   count_args(...)     -> the number of arguments
 *   str_len(s)          -> length of a string or bytes argument
 *   greet(s)            -> a Str object "hello, <s>" (owned by the caller)
 *   freed()             -> how many objects greet made were freed
 *   call_global(name, x, y) -> global name(x, y) via the once-handle lookup
 *   call_global_str(name, s) -> global name(s), a string result passed on
 *   workspace_sum(n)    -> 0 + 1 + ... + (n-1), through a workspace buffer
 *   parallel_tasks()    -> how many tasks a parallel launch ran
 *   main                = addone (entry function) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/tvm_c_abi.h"
#include "ferry/tvm_ffi_abi.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT void (*__TVMFFIErrorSetRaisedFromCStr)(const char *, const char *) = 0;
EXPORT int (*__TVMFFIFunctionCall)(void *, TVMFFIAny *, int32_t, TVMFFIAny *) = 0;
EXPORT int (*__TVMFFIEnvModLookupFromImports)(void *, const char *, void **) = 0;
EXPORT int (*__TVMFFIHandleInitOnce)(void **, int (*)(void **)) = 0;
EXPORT void *(*__TVMBackendAllocWorkspace)(int, int, uint64_t, int, int) = 0;
EXPORT int (*__TVMBackendFreeWorkspace)(int, int, void *) = 0;
EXPORT int (*__TVMBackendParallelLaunch)(FTVMParallelLambda, void *, int) = 0;
EXPORT int (*__TVMBackendParallelBarrier)(int, TVMParallelGroupEnv *) = 0;
EXPORT void *__tvm_ffi__library_ctx = 0;

static int set_error(const char *kind, const char *msg) {
  if (__TVMFFIErrorSetRaisedFromCStr)
    __TVMFFIErrorSetRaisedFromCStr(kind, msg);
  return -1;
}

static DLTensor *as_tensor(const TVMFFIAny *a) {
  if (a->type_index == kTVMFFIDLTensorPtr)
    return (DLTensor *)a->v_ptr;
  if (a->type_index == kTVMFFITensor)
    return (DLTensor *)(void *)((char *)a->v_obj + sizeof(TVMFFIObject));
  return NULL;
}

static int64_t numel(const DLTensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; ++i)
    n *= t->shape[i];
  return n;
}

static int unary(const TVMFFIAny *args, int32_t n, float mul, float add) {
  DLTensor *a, *b;
  if (n != 2 || !(a = as_tensor(&args[0])) || !(b = as_tensor(&args[1])))
    return set_error("TypeError", "expects two tensors");
  if (numel(a) != numel(b) || a->dtype.code != kDLFloat || a->dtype.bits != 32 ||
      b->dtype.code != kDLFloat || b->dtype.bits != 32)
    return set_error("ValueError", "shape or dtype mismatch");
  const float *pa = (const float *)((const char *)a->data + a->byte_offset);
  float *pb = (float *)((char *)b->data + b->byte_offset);
  for (int64_t i = 0, m = numel(a); i < m; ++i)
    pb[i] = pa[i] * mul + add;
  return 0;
}

static void ret_int(TVMFFIAny *ret, int64_t v) {
  ret->type_index = kTVMFFIInt;
  ret->zero_padding = 0;
  ret->v_int64 = v;
}

EXPORT int __tvm_ffi_addone(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self, (void)ret;
  return unary(args, n, 1.0f, 1.0f);
}

EXPORT int __tvm_ffi_main(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  return __tvm_ffi_addone(self, args, n, ret);
}

EXPORT int __tvm_ffi_scale(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self, (void)ret;
  return unary(args, n, 2.0f, 0.0f);
}

EXPORT int __tvm_ffi_add_i64(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self;
  if (n != 2 || args[0].type_index != kTVMFFIInt || args[1].type_index != kTVMFFIInt)
    return set_error("TypeError", "add_i64 expects two ints");
  ret_int(ret, args[0].v_int64 + args[1].v_int64);
  return 0;
}

EXPORT int __tvm_ffi_mul_f64(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self;
  if (n != 2 || args[0].type_index != kTVMFFIFloat || args[1].type_index != kTVMFFIFloat)
    return set_error("TypeError", "mul_f64 expects two floats");
  ret->type_index = kTVMFFIFloat;
  ret->zero_padding = 0;
  ret->v_float64 = args[0].v_float64 * args[1].v_float64;
  return 0;
}

EXPORT int __tvm_ffi_fail(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self, (void)args, (void)n, (void)ret;
  return set_error("RuntimeError", "fail: deliberate error from testlib");
}

/* Weak, so that a host exporting no runtime symbols (a benchmark program)
 * can still load the library; ferry and the tests export it. */
extern void TVMFFIErrorSetRaisedFromCStrParts(const char *, const char **, int32_t)
    __attribute__((weak));

EXPORT int __tvm_ffi_fail_parts(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self, (void)args, (void)n, (void)ret;
  const char *parts[4] = {"fail_parts: ", "in ", NULL, "three parts"};
  if (TVMFFIErrorSetRaisedFromCStrParts == NULL)
    return set_error("RuntimeError", "fail_parts: TVMFFIErrorSetRaisedFromCStrParts is missing");
  TVMFFIErrorSetRaisedFromCStrParts("ValueError", parts, 4);
  return -1;
}

EXPORT int __tvm_ffi_echo(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self;
  if (n != 1)
    return set_error("TypeError", "echo expects one argument");
  if (args[0].type_index > kTVMFFIDevice)
    return set_error("TypeError", "echo: unsupported argument type");
  *ret = args[0];
  return 0;
}

EXPORT int __tvm_ffi_count_args(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self, (void)args;
  ret_int(ret, n);
  return 0;
}

EXPORT int __tvm_ffi_str_len(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self;
  if (n != 1)
    return set_error("TypeError", "str_len expects one argument");
  if (args[0].type_index == kTVMFFIRawStr)
    ret_int(ret, (int64_t)strlen(args[0].v_c_str));
  else if (args[0].type_index == kTVMFFIByteArrayPtr)
    ret_int(ret, (int64_t)((const TVMFFIByteArray *)args[0].v_ptr)->size);
  else
    return set_error("TypeError", "str_len expects a string or bytes");
  return 0;
}

/* ---- an owned Str object made here ---------------------------------------- */

struct str_obj {
  TVMFFIObject hdr;
  TVMFFIByteArray cell;
  char data[64];
};
static int freed_count;

static void str_deleter(void *self, int flags) {
  if (flags & 2) {
    __atomic_fetch_add(&freed_count, 1, __ATOMIC_RELAXED);
    free(self);
  }
}

EXPORT int __tvm_ffi_greet(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self;
  if (n != 1 || args[0].type_index != kTVMFFIRawStr || strlen(args[0].v_c_str) > 40)
    return set_error("TypeError", "greet expects a short string");
  struct str_obj *s = calloc(1, sizeof *s);
  if (s == NULL)
    return set_error("RuntimeError", "out of memory");
  s->hdr.combined_ref_count = 1 | (1ull << 32);
  s->hdr.type_index = kTVMFFIStr;
  s->hdr.deleter = str_deleter;
  strcpy(s->data, "hello, ");
  strcat(s->data, args[0].v_c_str);
  s->cell.data = s->data;
  s->cell.size = strlen(s->data);
  ret->type_index = kTVMFFIStr;
  ret->zero_padding = 0;
  ret->v_obj = &s->hdr;
  return 0;
}

EXPORT int __tvm_ffi_freed(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self, (void)args, (void)n;
  ret_int(ret, __atomic_load_n(&freed_count, __ATOMIC_RELAXED));
  return 0;
}

/* ---- calls back into the runtime ------------------------------------------- */

/* Generated code keeps one handle per callee name, initialised once; this
 * module looks names up at run time, so it keeps the last one. */
static const char *lookup_name;
static int lookup_init(void **result) {
  return __TVMFFIEnvModLookupFromImports(__tvm_ffi__library_ctx, lookup_name, result);
}

static int lookup(const char *name, void **h) {
  static void *handles[4];
  static char names[4][64];
  if (strlen(name) >= sizeof names[0])
    return set_error("RuntimeError", "lookup: name too long");
  for (int i = 0; i < 4; i++) {
    if (names[i][0] && strcmp(names[i], name) == 0) {
      *h = handles[i];
      return 0;
    }
    if (names[i][0] == 0) {
      lookup_name = name;
      if (__TVMFFIHandleInitOnce(&handles[i], lookup_init) != 0)
        return -1;
      strcpy(names[i], name);
      *h = handles[i];
      return 0;
    }
  }
  return set_error("RuntimeError", "lookup: too many names");
}

EXPORT int __tvm_ffi_call_global(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self;
  if (n != 3 || args[0].type_index != kTVMFFIRawStr)
    return set_error("TypeError", "call_global expects (name, x, y)");
  void *h;
  if (lookup(args[0].v_c_str, &h) != 0)
    return -1;
  TVMFFIAny a[2] = {args[1], args[2]};
  TVMFFIAny r = {.type_index = kTVMFFINone};
  if (__TVMFFIFunctionCall(h, a, 2, &r) != 0)
    return -1;
  *ret = r;
  return 0;
}

EXPORT int __tvm_ffi_call_global_str(void *self, const TVMFFIAny *args, int32_t n,
                                     TVMFFIAny *ret) {
  (void)self;
  if (n != 2 || args[0].type_index != kTVMFFIRawStr)
    return set_error("TypeError", "call_global_str expects (name, s)");
  void *h;
  if (lookup(args[0].v_c_str, &h) != 0)
    return -1;
  TVMFFIAny a = args[1];
  TVMFFIAny r = {.type_index = kTVMFFINone};
  if (__TVMFFIFunctionCall(h, &a, 1, &r) != 0)
    return -1;
  *ret = r; /* ownership of a Str object moves on to our caller */
  return 0;
}

EXPORT int __tvm_ffi_workspace_sum(void *self, const TVMFFIAny *args, int32_t n,
                                   TVMFFIAny *ret) {
  (void)self;
  if (n != 1 || args[0].type_index != kTVMFFIInt || args[0].v_int64 < 0)
    return set_error("TypeError", "workspace_sum expects a count");
  int64_t count = args[0].v_int64;
  int64_t *buf = __TVMBackendAllocWorkspace(kDLCPU, 0, (uint64_t)count * 8, kDLInt, 64);
  if (buf == NULL)
    return -1;
  int64_t s = 0;
  for (int64_t i = 0; i < count; i++)
    buf[i] = i;
  for (int64_t i = 0; i < count; i++)
    s += buf[i];
  if (__TVMBackendFreeWorkspace(kDLCPU, 0, buf) != 0)
    return -1;
  ret_int(ret, s);
  return 0;
}

static int task_body(int task_id, TVMParallelGroupEnv *penv, void *cdata) {
  (void)task_id;
  __atomic_fetch_add((int *)cdata, 1, __ATOMIC_RELAXED);
  return __TVMBackendParallelBarrier(task_id, penv);
}

EXPORT int __tvm_ffi_parallel_tasks(void *self, const TVMFFIAny *args, int32_t n,
                                    TVMFFIAny *ret) {
  (void)self, (void)args, (void)n;
  int ran = 0;
  if (__TVMBackendParallelLaunch(task_body, &ran, 0) != 0)
    return -1;
  ret_int(ret, ran);
  return 0;
}
