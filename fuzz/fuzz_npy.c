/* libFuzzer target for the .npy header codec: any bytes must parse or fail
 * cleanly, and a parsed header must describe a size within the limit and a
 * data offset inside the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "wire/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ferry_npy_info info;
  char err[256];
  int rc = ferry_npy_parse_header(data, size, 1u << 20, &info, err, sizeof err);
  if (rc == 0) {
    if (info.data_offset > size || info.nbytes > (1u << 20) ||
        info.ndim < 0 || info.ndim > FERRY_NPY_MAX_NDIM)
      abort();
    /* What we parse we can write again, and read back identically. */
    ferry_buf out;
    ferry_buf_init(&out, 1u << 16);
    if (ferry_npy_write_header(&out, info.dtype, info.ndim, info.shape) != 0)
      abort();
    ferry_npy_info again;
    if (ferry_npy_parse_header(out.data, out.len, 1u << 20, &again, err, sizeof err) != 0 ||
        again.ndim != info.ndim || again.nbytes != info.nbytes)
      abort();
    ferry_buf_close(&out);
  }
  return 0;
}
