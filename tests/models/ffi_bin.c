/* A tvm-ffi library embedding a serialised module (as a Relax build does)
 * in __tvm_ffi__library_bin: u64 size, import tree (indptr [0,1,1],
 * children [1]), then "relax.VMExecutable" + bytes, "_lib".  ferry cannot
 * run it and must say which kind it is. */
#include <stdint.h>

#include "ferry/tvm_ffi_abi.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT void *__tvm_ffi__library_ctx = 0;

#define U64(x) (x), 0, 0, 0, 0, 0, 0, 0
EXPORT const unsigned char __tvm_ffi__library_bin[] = {
    U64(83),
    U64(3), U64(0), U64(1), U64(1), /* indptr */
    U64(1), U64(1),                 /* children */
    U64(18), 'r', 'e', 'l', 'a', 'x', '.', 'V', 'M', 'E', 'x', 'e', 'c', 'u', 't', 'a', 'b', 'l',
    'e', U64(1), 'x',
    U64(4), '_', 'l', 'i', 'b',
};

EXPORT int __tvm_ffi_main(void *self, const TVMFFIAny *args, int32_t n, TVMFFIAny *ret) {
  (void)self, (void)args, (void)n, (void)ret;
  return 0;
}
