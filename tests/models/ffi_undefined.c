/* A tvm-ffi library built against libtvm_ffi.so: it needs a function ferry
 * does not export, so loading must fail with the symbol's name. */
#include "ferry/tvm_ffi_abi.h"

#define EXPORT __attribute__((visibility("default")))

int TVMFFIObjectIncRef(void *obj);

EXPORT void *__tvm_ffi__library_ctx = 0;

EXPORT int __tvm_ffi_keep(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self, (void)ret;
  return n > 0 ? TVMFFIObjectIncRef(args[0].v_obj) : 0;
}
