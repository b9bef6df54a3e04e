/* libFuzzer target for the reader of a tvm-ffi library's embedded module
 * table (__tvm_ffi__library_bin, read by ferry_ffi_library_bin_kind to name
 * the module kind ferry refuses): whatever the bytes, it reads only inside
 * the given length and always writes a printable, NUL-terminated kind. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* An exact-size copy so that ASan sees any read past the end. */
  uint8_t *copy = malloc(size ? size : 1);
  if (copy == NULL)
    return 0;
  if (size)
    memcpy(copy, data, size);
  char kind[80];
  ferry_ffi_library_bin_kind(copy, size, kind, sizeof kind);
  size_t n = strnlen(kind, sizeof kind);
  if (n == sizeof kind)
    abort();
  for (size_t i = 0; i < n; i++)
    if (kind[i] < 0x20 || kind[i] > 0x7e)
      abort();
  free(copy);
  return 0;
}
