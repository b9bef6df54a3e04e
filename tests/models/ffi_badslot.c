/* A tvm-ffi library that declares a context slot ferry does not fill
 * (a runtime function of some future tvm-ffi): the loader must refuse it by
 * name instead of leaving the slot NULL for the code to jump to. */
#include "ferry/tvm_ffi_abi.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT void *__tvm_ffi__library_ctx = 0;
EXPORT int (*__TVMFFIFutureRuntimeCall)(void *) = 0;

EXPORT int __tvm_ffi_use_future(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self, (void)args, (void)n, (void)ret;
  return __TVMFFIFutureRuntimeCall(0);
}
