/* A check of a shared library's bytes before dlopen sees them.
 *
 * dlopen maps every PT_LOAD segment of the file by (p_offset, p_filesz)
 * and reads the dynamic section through that mapping; a segment that ends
 * past the end of the file is mapped all the same, and the first touch of
 * a page past the end kills the process with SIGBUS.  An upload cut short
 * (or a hostile one) must instead get an error that says what is wrong, so
 * the loader runs this over the file first: the ELF header, that its
 * class, byte order and machine are the running binary's, that it is a
 * shared object, that the program header table and every segment's file
 * bytes lie inside the file, and that the section header table (if any)
 * does too.
 *
 * Pure: takes (bytes, length), bounds every read, allocates nothing.  A
 * file truncated by someone else after the check (the mapping then goes
 * stale) is not covered; nothing short of copying the file would be. */
#ifndef FERRY_WIRE_ELF_CHECK_H
#define FERRY_WIRE_ELF_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/error.h"

/* What the file must match. */
typedef struct ferry_elf_target {
  uint8_t elf_class;  /* ELFCLASS32 / ELFCLASS64 */
  uint8_t byte_order; /* ELFDATA2LSB / ELFDATA2MSB */
  uint16_t machine;   /* EM_*; 0: any machine */
} ferry_elf_target;

/* The running binary's class, byte order and machine (from the compiler's
 * target macros; machine 0 on an architecture not listed). */
void ferry_elf_host_target(ferry_elf_target *out);

/* Checks the len bytes at p (the whole file) against want.  Returns
 * FERRY_OK, or:
 *   FERRY_EMAGIC   no ELF header ("not an ELF file"),
 *   FERRY_EMISMATCH class, byte order or machine differ from want,
 *   FERRY_EUNSUPPORTED not a shared object (ET_DYN), or no loadable segment,
 *   FERRY_EPROTO   truncated or inconsistent: a table or segment past the
 *                  end of the file, entry sizes that are not the ELF ones.
 * On error a sentence without the file's name is written to msg (cap
 * bytes, always NUL-terminated when cap > 0), e.g. "truncated ELF:
 * segment 2 (LOAD) ends at byte 16384, file has 9000 bytes". */
int ferry_elf_check(const uint8_t *p, size_t len, const ferry_elf_target *want, char *msg,
                    size_t cap) FERRY_MUST_CHECK;

#endif
