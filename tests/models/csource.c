/* A library shaped like TVM's C-source target (codegen_c_host): backend
 * functions are called directly as undefined symbols that the loading
 * executable must export, and __tvm_main__ is a packed function rather than
 * a string.
 *   ws_sum(a) -> sum of a float32 1-D tensor, copied through a workspace
 *   c_fail()  -> TVMAPISetLastError("c_fail: from C source") */
#include <string.h>

#include "ferry/tvm_c_abi.h"

void *__tvm_module_ctx = NULL;

#define EXPORT __attribute__((visibility("default")))

EXPORT int ws_sum(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *res) {
  (void)res;
  if (n != 1 || codes[0] != kTVMDLTensorHandle) {
    TVMAPISetLastError("ws_sum expects one tensor");
    return -1;
  }
  DLTensor *a = args[0].v_handle;
  int64_t len = a->shape[0];
  float *tmp = TVMBackendAllocWorkspace(kDLCPU, 0, (uint64_t)len * 4, kDLFloat, 32);
  if (tmp == NULL)
    return -1;
  memcpy(tmp, a->data, (size_t)len * 4);
  double s = 0;
  for (int64_t i = 0; i < len; i++)
    s += tmp[i];
  if (TVMBackendFreeWorkspace(kDLCPU, 0, tmp) != 0)
    return -1;
  ret->v_float64 = s;
  *rcode = kTVMArgFloat;
  return 0;
}

EXPORT int c_fail(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode, void *res) {
  (void)args, (void)codes, (void)n, (void)ret, (void)rcode, (void)res;
  TVMAPISetLastError("c_fail: from C source");
  return -1;
}

EXPORT int __tvm_main__(TVMValue *args, int *codes, int n, TVMValue *ret, int *rcode,
                        void *res) {
  return ws_sum(args, codes, n, ret, rcode, res);
}
