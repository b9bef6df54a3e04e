/* ferry's test module in TVM's classic packed-function ABI, with the
 * function set of the library used in the golden recordings
 * (tests/golden/testlib.c) plus a few more for the runtime's own tests.
 * Written the way LLVM-generated code is: every call back into the runtime
 * goes through a __TVM* context slot the loader fills.
 *
 *   addone(a, b)      b[i] = a[i] + 1   (float32 tensors of equal size)
 *   scale(a, b)       b[i] = a[i] * 2
 *   add_i64(x, y)     -> x + y
 *   mul_f64(x, y)     -> x * y
 *   fail()            error "fail: deliberate error from testlib"
 *   echo(x)           -> x for an int, float, bool or string argument
 *   count_args(...)   -> the number of arguments
 *   call_global(name, x, y) -> the int result of global function name(x, y)
 *                              via TVMBackendGetFuncFromEnv + TVMFuncCall
 * __tvm_main__ names addone. */
#include <stdint.h>
#include <string.h>

#include "ferry/tvm_c_abi.h"

void (*__TVMAPISetLastError)(const char *) = 0;
int (*__TVMBackendGetFuncFromEnv)(void *, const char *, TVMFunctionHandle *) = 0;
int (*__TVMFuncCall)(TVMFunctionHandle, TVMValue *, int *, int, TVMValue *, int *) = 0;
void *__tvm_module_ctx = 0;
const char __tvm_main__[] = "addone";

#define EXPORT __attribute__((visibility("default")))

static int set_error(const char *msg) {
  if (__TVMAPISetLastError)
    __TVMAPISetLastError(msg);
  return -1;
}

static int64_t numel(const DLTensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; ++i)
    n *= t->shape[i];
  return n;
}

static int is_tensor(int code) { return code == kTVMDLTensorHandle || code == kTVMNDArrayHandle; }

static int unary(TVMValue *args, int *codes, int n, float mul, float add) {
  if (n != 2 || !is_tensor(codes[0]) || !is_tensor(codes[1]))
    return set_error("expects two tensors");
  DLTensor *a = (DLTensor *)args[0].v_handle, *b = (DLTensor *)args[1].v_handle;
  if (numel(a) != numel(b) || a->dtype.code != kDLFloat || a->dtype.bits != 32 ||
      b->dtype.code != kDLFloat || b->dtype.bits != 32)
    return set_error("shape or dtype mismatch");
  const float *pa = (const float *)((const char *)a->data + a->byte_offset);
  float *pb = (float *)((char *)b->data + b->byte_offset);
  for (int64_t i = 0, m = numel(a); i < m; ++i)
    pb[i] = pa[i] * mul + add;
  return 0;
}

EXPORT int addone(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *res) {
  (void)ret, (void)rcode, (void)res;
  return unary(args, codes, n, 1.0f, 1.0f);
}

EXPORT int scale(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *res) {
  (void)ret, (void)rcode, (void)res;
  return unary(args, codes, n, 2.0f, 0.0f);
}

EXPORT int add_i64(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *res) {
  (void)res;
  if (n != 2 || codes[0] != kTVMArgInt || codes[1] != kTVMArgInt)
    return set_error("add_i64 expects two ints");
  ret->v_int64 = args[0].v_int64 + args[1].v_int64;
  *rcode = kTVMArgInt;
  return 0;
}

EXPORT int mul_f64(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *res) {
  (void)res;
  if (n != 2 || codes[0] != kTVMArgFloat || codes[1] != kTVMArgFloat)
    return set_error("mul_f64 expects two floats");
  ret->v_float64 = args[0].v_float64 * args[1].v_float64;
  *rcode = kTVMArgFloat;
  return 0;
}

EXPORT int fail(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *res) {
  (void)args, (void)codes, (void)n, (void)ret, (void)rcode, (void)res;
  return set_error("fail: deliberate error from testlib");
}

EXPORT int echo(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *res) {
  (void)res;
  if (n != 1)
    return set_error("echo expects one argument");
  if (codes[0] != kTVMArgInt && codes[0] != kTVMArgFloat && codes[0] != kTVMArgBool &&
      codes[0] != kTVMStr)
    return set_error("echo: unsupported argument type");
  *ret = args[0];
  *rcode = codes[0];
  return 0;
}

EXPORT int count_args(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *res) {
  (void)args, (void)codes, (void)res;
  ret->v_int64 = n;
  *rcode = kTVMArgInt;
  return 0;
}

EXPORT int call_global(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *res) {
  (void)res;
  if (n != 3 || codes[0] != kTVMStr)
    return set_error("call_global expects (name, x, y)");
  TVMFunctionHandle h = 0;
  if (__TVMBackendGetFuncFromEnv(__tvm_module_ctx, args[0].v_str, &h) != 0)
    return -1;
  TVMValue rv;
  int rc = kTVMNullptr;
  if (__TVMFuncCall(h, args + 1, codes + 1, 2, &rv, &rc) != 0)
    return -1;
  *ret = rv;
  *rcode = rc;
  return 0;
}

/* A data symbol: found by dlsym, but not a function a client may call. */
EXPORT const int not_a_function = 42;
