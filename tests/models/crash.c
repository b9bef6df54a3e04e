/* A kernel that crashes on request, for the server's crash tests:
 *   crash(kind)  kind 0: returns 0; 1: writes through NULL (SIGSEGV);
 *                2: abort() (SIGABRT); 3: loops forever (timeout tests) */
#include <stdlib.h>

#include "ferry/tvm_c_abi.h"

void (*__TVMAPISetLastError)(const char *) = 0;
void *__tvm_module_ctx = 0;

__attribute__((visibility("default"))) int crash(TVMValue *args, int *codes, int n,
                                                 TVMValue *ret, int *rcode, void *res) {
  (void)ret, (void)rcode, (void)res;
  if (n != 1 || codes[0] != kTVMArgInt) {
    if (__TVMAPISetLastError)
      __TVMAPISetLastError("crash expects an int");
    return -1;
  }
  switch (args[0].v_int64) {
  case 1: {
    volatile int *p = NULL;
    *p = 1;
    return 0;
  }
  case 2:
    abort();
  case 3:
    for (volatile int spin = 1; spin;)
      ;
    return 0;
  default:
    return 0;
  }
}
