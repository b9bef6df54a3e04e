/* A tvm-ffi system library, as TVM >= 0.21 builds one with
 * --system-lib --system-lib-prefix=zoo_: loaded with `ferry server
 * --load-library`, its constructor registers its functions and context
 * symbol (TVMFFIEnvModRegisterSystemLibSymbol, resolved from the ferry
 * binary), and ffi.SystemLib("zoo_") serves them.
 *   sys_add(x, y) -> x + y
 *   sys_self()    -> 1 when the loader stored the module in the context */
#include "ferry/tvm_ffi_abi.h"

static void *library_ctx;

static int sys_add(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self;
  if (n != 2 || args[0].type_index != kTVMFFIInt || args[1].type_index != kTVMFFIInt) {
    TVMFFIErrorSetRaisedFromCStr("TypeError", "sys_add expects two ints");
    return -1;
  }
  ret->type_index = kTVMFFIInt;
  ret->zero_padding = 0;
  ret->v_int64 = args[0].v_int64 + args[1].v_int64;
  return 0;
}

static int sys_self(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self, (void)args, (void)n;
  ret->type_index = kTVMFFIInt;
  ret->zero_padding = 0;
  ret->v_int64 = library_ctx != 0;
  return 0;
}

__attribute__((constructor)) static void register_symbols(void) {
  TVMFFIEnvModRegisterSystemLibSymbol("__tvm_ffi_zoo_sys_add", (void *)sys_add);
  TVMFFIEnvModRegisterSystemLibSymbol("__tvm_ffi_zoo_sys_self", (void *)sys_self);
  TVMFFIEnvModRegisterSystemLibSymbol("zoo___tvm_ffi__library_ctx", &library_ctx);
}
