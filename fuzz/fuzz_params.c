/* libFuzzer target: parameter-dict and NDArray decoding, plus re-encoding
 * whatever decodes (the encoder must accept what the decoder produced). */
#include <stddef.h>
#include <stdint.h>

#include "wire/params.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ferry_params_reader r;
  if (ferry_params_open(&r, data, size) == FERRY_OK) {
    while (r.index < r.count) {
      const char *name;
      size_t nlen;
      ferry_params_tensor t;
      if (ferry_params_next(&r, &name, &nlen, &t) != FERRY_OK)
        break;
      DLTensor d = {.data = (void *)t.data, .device = t.device, .ndim = t.ndim,
                    .dtype = t.dtype, .shape = t.shape};
      ferry_buf out;
      ferry_buf_init(&out, 1 << 24);
      if (ferry_ndarray_encode(&out, &d) != FERRY_OK && t.nbytes < (1 << 23))
        __builtin_trap();
      ferry_buf_close(&out);
    }
  }
  ferry_stream s;
  ferry_stream_init(&s, data, size);
  ferry_params_tensor t;
  while (ferry_ndarray_decode(&s, &t) == FERRY_OK) {
  }
  return 0;
}
