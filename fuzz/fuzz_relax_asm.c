/* libFuzzer target: the Relax program description assembler.  The first
 * byte picks the generation; whatever assembles must parse and validate
 * again with the matching tag table (the assembler validates before it
 * writes, so anything else is a bug), and a failure always says why. */
#include <stddef.h>
#include <stdint.h>

#include "wire/relax_exec_asm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  enum ferry_relax_gen gen = (data[0] & 1) ? FERRY_RELAX_GEN_V026 : FERRY_RELAX_GEN_V020;
  static const int64_t shape[2] = {2, 2};
  static const float values[4] = {1, 2, 3, 4};
  const DLTensor w = {.data = (void *)values, .device = {kDLCPU, 0}, .ndim = 2,
                      .dtype = {kDLFloat, 32, 1}, .shape = (int64_t *)shape};
  const ferry_relax_asm_tensor tensors[1] = {{"w", &w}};
  ferry_buf out;
  ferry_buf_init(&out, 1u << 26);
  char err[FERRY_RELAX_ERR_MAX];
  int rc = ferry_relax_asm((const char *)data + 1, size - 1, gen, tensors, 1, &out, err,
                           sizeof err);
  if (rc != FERRY_OK) {
    if (err[0] == '\0' || out.len != 0)
      __builtin_trap();
    return 0;
  }
  ferry_relax_exec x;
  enum ferry_relax_tags tags =
      gen == FERRY_RELAX_GEN_V026 ? FERRY_RELAX_TAGS_FFI : FERRY_RELAX_TAGS_CLASSIC;
  if (ferry_relax_exec_parse(&x, out.data, out.len, tags, err, sizeof err) != FERRY_OK)
    __builtin_trap();
  if (ferry_relax_exec_validate(&x, err, sizeof err) != FERRY_OK)
    __builtin_trap();
  ferry_relax_exec_close(&x);
  ferry_buf_close(&out);
  return 0;
}
