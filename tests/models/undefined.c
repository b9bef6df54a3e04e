/* A library that needs a symbol nobody defines: loading it must fail with
 * the symbol's name (ferry loads with RTLD_NOW), not crash at the call. */
#include "ferry/tvm_c_abi.h"

void *__tvm_module_ctx = 0;
extern int ferry_test_symbol_that_does_not_exist(int);

__attribute__((visibility("default"))) int uses_missing(TVMValue *args, int *codes, int n,
                                                        TVMValue *ret, int *rcode, void *res) {
  (void)args, (void)codes, (void)n, (void)res;
  ret->v_int64 = ferry_test_symbol_that_does_not_exist(1);
  *rcode = kTVMArgInt;
  return 0;
}
