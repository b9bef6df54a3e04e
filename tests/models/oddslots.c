/* A library whose context-slot names are not pointer variables: a
 * function called __TVMFuncCall and a 1-byte __TVMAPISetLastError.  The
 * loader must leave them alone (writing a pointer there would fault or
 * corrupt memory) and still load the library. */
#include "ferry/tvm_c_abi.h"

void *__tvm_module_ctx = 0;
__attribute__((visibility("default"))) char __TVMAPISetLastError = 7;

__attribute__((visibility("default"))) int __TVMFuncCall(void) { return 3; }

__attribute__((visibility("default"))) int slot_value(TVMValue *args, int *codes, int n,
                                                      TVMValue *ret, int *rcode, void *res) {
  (void)args, (void)codes, (void)n, (void)res;
  ret->v_int64 = __TVMAPISetLastError + __TVMFuncCall();
  *rcode = kTVMArgInt;
  return 0;
}
