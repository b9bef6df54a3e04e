/* ELF sanity check before dlopen (see elf_check.h).  Both classes and both
 * byte orders are read, so that a mismatch is reported as one and the
 * fuzzer reaches every branch; every field is read through rd(), which
 * checks the offset against the length first. */
#include "wire/elf_check.h"

#include <elf.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Offsets of the fields used here, per class (ELF gABI, "ELF Header",
 * "Program Header", "Section Header"). */
struct layout {
  size_t ehsize, phentsize, shentsize;
  size_t e_type, e_machine, e_phoff, e_shoff, e_phentsize, e_phnum, e_shentsize, e_shnum;
  size_t p_type, p_offset, p_filesz, off_size; /* off_size: width of an offset field */
};

static const struct layout layout32 = {52, 32, 40, 16, 18, 28, 32, 42, 44, 46, 48, 0, 4, 16, 4};
static const struct layout layout64 = {64, 56, 64, 16, 18, 32, 40, 54, 56, 58, 60, 0, 8, 32, 8};

typedef struct elf_in {
  const uint8_t *p;
  size_t len;
  int big; /* ELFDATA2MSB */
} elf_in;

/* Reads an n-byte unsigned field at off (the caller checked off + n <= len). */
static uint64_t rd(const elf_in *in, size_t off, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned b = in->p[off + (in->big ? i : n - 1 - i)];
    v = (v << 8) | b;
  }
  return v;
}

static int fail(char *msg, size_t cap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *msg, size_t cap, int code, const char *fmt, ...) {
  if (cap > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
  }
  return code;
}

void ferry_elf_host_target(ferry_elf_target *out) {
  out->elf_class = sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  out->byte_order = ELFDATA2MSB;
#else
  out->byte_order = ELFDATA2LSB;
#endif
#if defined(__x86_64__)
  out->machine = EM_X86_64;
#elif defined(__i386__)
  out->machine = EM_386;
#elif defined(__aarch64__)
  out->machine = EM_AARCH64;
#elif defined(__arm__)
  out->machine = EM_ARM;
#elif defined(__riscv)
  out->machine = EM_RISCV;
#elif defined(__powerpc64__)
  out->machine = EM_PPC64;
#elif defined(__s390x__)
  out->machine = EM_S390;
#else
  out->machine = 0;
#endif
}

static const char *machine_name(uint64_t m) {
  switch (m) {
  case EM_X86_64:
    return "x86-64";
  case EM_386:
    return "x86";
  case EM_AARCH64:
    return "aarch64";
  case EM_ARM:
    return "arm";
  case EM_RISCV:
    return "riscv";
  case EM_PPC64:
    return "ppc64";
  case EM_S390:
    return "s390";
  default:
    return "other";
  }
}

static const char *segment_name(uint64_t type) {
  switch (type) {
  case PT_LOAD:
    return "LOAD";
  case PT_DYNAMIC:
    return "DYNAMIC";
  case PT_INTERP:
    return "INTERP";
  case PT_NOTE:
    return "NOTE";
  case PT_TLS:
    return "TLS";
  case PT_GNU_EH_FRAME:
    return "GNU_EH_FRAME";
  case PT_GNU_RELRO:
    return "GNU_RELRO";
  case PT_GNU_PROPERTY:
    return "GNU_PROPERTY";
  default:
    return "other";
  }
}

/* Does the table of n entries of size es at off lie inside the file?  The
 * product cannot overflow (n < 2^16, es < 2^16), the sum is checked. */
static int table_inside(uint64_t off, uint64_t n, uint64_t es, size_t len, uint64_t *end) {
  uint64_t size = n * es;
  if (off > UINT64_MAX - size) {
    *end = UINT64_MAX;
    return 0;
  }
  *end = off + size;
  return *end <= len;
}

int ferry_elf_check(const uint8_t *p, size_t len, const ferry_elf_target *want, char *msg,
                    size_t cap) {
  if (cap > 0)
    msg[0] = 0;
  if (len < EI_NIDENT || memcmp(p, ELFMAG, SELFMAG) != 0)
    return fail(msg, cap, FERRY_EMAGIC, "not a shared library (no ELF header)");
  uint8_t cls = p[EI_CLASS], data = p[EI_DATA];
  if (cls != ELFCLASS32 && cls != ELFCLASS64)
    return fail(msg, cap, FERRY_EPROTO, "bad ELF header: unknown class %u", cls);
  if (data != ELFDATA2LSB && data != ELFDATA2MSB)
    return fail(msg, cap, FERRY_EPROTO, "bad ELF header: unknown byte order %u", data);
  if (p[EI_VERSION] != EV_CURRENT)
    return fail(msg, cap, FERRY_EPROTO, "bad ELF header: version %u", p[EI_VERSION]);
  if (cls != want->elf_class)
    return fail(msg, cap, FERRY_EMISMATCH, "ELF class is %d-bit, this server is %d-bit",
                cls == ELFCLASS64 ? 64 : 32, want->elf_class == ELFCLASS64 ? 64 : 32);
  if (data != want->byte_order)
    return fail(msg, cap, FERRY_EMISMATCH, "ELF byte order is %s-endian, this server is %s-endian",
                data == ELFDATA2MSB ? "big" : "little",
                want->byte_order == ELFDATA2MSB ? "big" : "little");
  const struct layout *L = cls == ELFCLASS64 ? &layout64 : &layout32;
  if (len < L->ehsize)
    return fail(msg, cap, FERRY_EPROTO,
                "truncated ELF: the header needs %zu bytes, file has %zu bytes", L->ehsize, len);
  elf_in in = {p, len, data == ELFDATA2MSB};
  uint64_t type = rd(&in, L->e_type, 2), machine = rd(&in, L->e_machine, 2);
  if (want->machine != 0 && machine != want->machine)
    return fail(msg, cap, FERRY_EMISMATCH,
                "ELF machine is %llu (%s), this server is %u (%s): built for another target?",
                (unsigned long long)machine, machine_name(machine), want->machine,
                machine_name(want->machine));
  if (type != ET_DYN)
    return fail(msg, cap, FERRY_EUNSUPPORTED,
                "not a shared library (ELF type %llu%s)", (unsigned long long)type,
                type == ET_REL ? ", an object file: upload it as .o to have it linked"
                : type == ET_EXEC ? ", an executable" : "");

  /* Program headers: dlopen reads them all and maps the segments. */
  uint64_t phoff = rd(&in, L->e_phoff, L->off_size), phentsize = rd(&in, L->e_phentsize, 2);
  uint64_t phnum = rd(&in, L->e_phnum, 2), end;
  if (phnum == 0)
    return fail(msg, cap, FERRY_EUNSUPPORTED, "ELF file has no program headers");
  if (phnum == PN_XNUM)
    return fail(msg, cap, FERRY_EUNSUPPORTED, "ELF file has %u or more program headers",
                PN_XNUM);
  if (phentsize != L->phentsize)
    return fail(msg, cap, FERRY_EPROTO, "bad ELF header: program header size %llu (not %zu)",
                (unsigned long long)phentsize, L->phentsize);
  if (!table_inside(phoff, phnum, phentsize, len, &end))
    return fail(msg, cap, FERRY_EPROTO,
                "truncated ELF: program header table ends at byte %llu, file has %zu bytes",
                (unsigned long long)end, len);
  int loads = 0;
  for (uint64_t i = 0; i < phnum; i++) {
    size_t ph = (size_t)(phoff + i * phentsize);
    uint64_t ptype = rd(&in, ph + L->p_type, 4);
    uint64_t off = rd(&in, ph + L->p_offset, L->off_size);
    uint64_t filesz = rd(&in, ph + L->p_filesz, L->off_size);
    loads += ptype == PT_LOAD;
    /* Every segment's file bytes, not only LOAD and DYNAMIC: no linker
     * writes a segment that ends past the file, and the loader may read
     * NOTE, TLS or GNU_PROPERTY contents through the file too. */
    if (filesz == 0)
      continue;
    if (off > UINT64_MAX - filesz || off + filesz > len)
      return fail(msg, cap, FERRY_EPROTO,
                  "truncated ELF: segment %llu (%s) ends at byte %llu, file has %zu bytes",
                  (unsigned long long)i, segment_name(ptype),
                  off > UINT64_MAX - filesz ? (unsigned long long)UINT64_MAX
                                            : (unsigned long long)(off + filesz),
                  len);
  }
  if (loads == 0)
    return fail(msg, cap, FERRY_EUNSUPPORTED, "ELF file has no loadable segment");

  /* Section headers are optional (sstrip removes them), but one that is
   * declared must be there: later checks of the loader read it. */
  uint64_t shoff = rd(&in, L->e_shoff, L->off_size), shentsize = rd(&in, L->e_shentsize, 2);
  uint64_t shnum = rd(&in, L->e_shnum, 2);
  if (shoff == 0)
    return FERRY_OK;
  if (shentsize != L->shentsize)
    return fail(msg, cap, FERRY_EPROTO, "bad ELF header: section header size %llu (not %zu)",
                (unsigned long long)shentsize, L->shentsize);
  /* shnum 0 with an offset: the real count is in section 0 (more than
   * 65279 sections); at least that first header must be inside. */
  if (!table_inside(shoff, shnum ? shnum : 1, shentsize, len, &end))
    return fail(msg, cap, FERRY_EPROTO,
                "truncated ELF: section header table ends at byte %llu, file has %zu bytes",
                (unsigned long long)end, len);
  return FERRY_OK;
}
