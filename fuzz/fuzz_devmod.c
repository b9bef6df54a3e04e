/* libFuzzer target: the device-module payload decoder (wire/devmod.c) in
 * both generations, and the kernel-source split over what it decoded:
 * reads stay inside the input, a success consumes at most the input and
 * frees cleanly. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/devmod.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *copy = malloc(size ? size : 1);
  if (copy == NULL)
    return 0;
  if (size)
    memcpy(copy, data, size);
  for (int gen = 0; gen < 2; gen++) {
    ferry_devmod m;
    char why[128];
    if (ferry_devmod_decode(copy, size, (enum ferry_devmod_gen)gen, &m, why, sizeof why) != 0)
      continue;
    if (m.consumed > size)
      abort();
    for (size_t i = 0; i < m.nfuncs; i++) {
      const char *p;
      size_t n;
      if (ferry_devmod_kernel_source(m.data, m.data_len, m.funcs[i].name, &p, &n) == 0 &&
          (p < m.data || p + n > m.data + m.data_len))
        abort();
    }
    ferry_devmod_free(&m);
  }
  free(copy);
  return 0;
}
