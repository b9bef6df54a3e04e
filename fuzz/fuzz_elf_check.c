/* libFuzzer target: the ELF check run before dlopen (wire/elf_check.h).
 * The first byte picks what the file must match (the host, or any class
 * and byte order with any machine, so that 32-bit and big-endian files
 * reach the table checks too); the rest is the file.  The input is copied
 * into an allocation of its exact size so that ASan sees any read past
 * the end, and an accepted file must have its program header table
 * inside it. */
#include <elf.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/elf_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  ferry_elf_target t;
  ferry_elf_host_target(&t);
  if (data[0] & 1) {
    t.elf_class = data[0] & 2 ? ELFCLASS64 : ELFCLASS32;
    t.byte_order = data[0] & 4 ? ELFDATA2MSB : ELFDATA2LSB;
    t.machine = 0;
  }
  size_t n = size - 1;
  uint8_t *p = malloc(n ? n : 1);
  if (p == NULL)
    return 0;
  memcpy(p, data + 1, n);
  char msg[128];
  int rc = ferry_elf_check(p, n, &t, msg, data[0] & 8 ? 0 : sizeof msg);
  if (rc == FERRY_OK && (n < EI_NIDENT || memcmp(p, ELFMAG, SELFMAG) != 0))
    __builtin_trap();
  if (rc != FERRY_OK && !(data[0] & 8) && msg[0] == 0)
    __builtin_trap(); /* every refusal says why */
  free(p);
  return 0;
}
