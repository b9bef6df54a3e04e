/* The ELF check run before dlopen (wire/elf_check.h): the real test kernel
 * library passes; every prefix of it fails with a message (never a read
 * past the prefix: run under ASan with the prefix in its own allocation);
 * synthetic headers for each refusal (class, byte order, machine, type,
 * entry sizes, tables and segments past the end, both classes and both
 * byte orders). */
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire/elf_check.h"

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  assert_true(n > 0);
  uint8_t *p = malloc((size_t)n);
  assert_non_null(p);
  assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return p;
}

/* Checks a copy of p[0..len) in an allocation of exactly len bytes, so
 * that ASan sees any read past the end. */
static int check_copy(const uint8_t *p, size_t len, const ferry_elf_target *t, char *msg,
                      size_t cap) {
  uint8_t *q = malloc(len ? len : 1);
  assert_non_null(q);
  memcpy(q, p, len);
  int rc = ferry_elf_check(q, len, t, msg, cap);
  free(q);
  return rc;
}

static void real_library_and_every_prefix(void **state) {
  (void)state;
  size_t len;
  uint8_t *lib = read_file(FERRY_MODELS_DIR "/testlib.so", &len);
  ferry_elf_target host;
  ferry_elf_host_target(&host);
  char msg[256];
  assert_int_equal(ferry_elf_check(lib, len, &host, msg, sizeof msg), FERRY_OK);
  /* Every prefix up to 8 KiB, then every 61st: each refused with text. */
  for (size_t n = 0; n < len; n += n < 8192 ? 1 : 61) {
    msg[0] = 0;
    int rc = check_copy(lib, n, &host, msg, sizeof msg);
    assert_int_not_equal(rc, FERRY_OK);
    assert_true(msg[0] != 0);
  }
  /* The message the loader passes on names the segment and both sizes. */
  size_t half = len / 2;
  assert_int_equal(check_copy(lib, half, &host, msg, sizeof msg), FERRY_EPROTO);
  assert_non_null(strstr(msg, "truncated ELF: "));
  char want[64];
  snprintf(want, sizeof want, "file has %zu bytes", half);
  assert_non_null(strstr(msg, want));
  /* A different machine, class or byte order is named. */
  ferry_elf_target other = host;
  other.machine = host.machine == EM_AARCH64 ? EM_X86_64 : EM_AARCH64;
  assert_int_equal(ferry_elf_check(lib, len, &other, msg, sizeof msg), FERRY_EMISMATCH);
  assert_non_null(strstr(msg, "ELF machine is"));
  other = host;
  other.elf_class = host.elf_class == ELFCLASS64 ? ELFCLASS32 : ELFCLASS64;
  assert_int_equal(ferry_elf_check(lib, len, &other, msg, sizeof msg), FERRY_EMISMATCH);
  assert_non_null(strstr(msg, "ELF class"));
  other = host;
  other.byte_order = host.byte_order == ELFDATA2LSB ? ELFDATA2MSB : ELFDATA2LSB;
  assert_int_equal(ferry_elf_check(lib, len, &other, msg, sizeof msg), FERRY_EMISMATCH);
  assert_non_null(strstr(msg, "byte order"));
  /* A zero-capacity message buffer is never written. */
  assert_int_equal(ferry_elf_check(lib, half, &host, NULL, 0), FERRY_EPROTO);
  free(lib);
}

/* ---- synthetic files ------------------------------------------------------ */

struct img {
  uint8_t b[4096];
  int big, is64;
};

static void put(struct img *m, size_t off, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; i++)
    m->b[off + (m->big ? n - 1 - i : i)] = (uint8_t)(v >> (8 * i));
}

/* A minimal shared object: header, 2 program headers at 64 (LOAD of the
 * first 1024 bytes, DYNAMIC at 512), 3 section headers at 2048. */
static void make(struct img *m, int is64, int big, uint16_t machine) {
  memset(m, 0, sizeof *m);
  m->is64 = is64;
  m->big = big;
  memcpy(m->b, ELFMAG, SELFMAG);
  m->b[EI_CLASS] = is64 ? ELFCLASS64 : ELFCLASS32;
  m->b[EI_DATA] = big ? ELFDATA2MSB : ELFDATA2LSB;
  m->b[EI_VERSION] = EV_CURRENT;
  size_t w = is64 ? 8 : 4;
  put(m, 16, ET_DYN, 2);
  put(m, 18, machine, 2);
  put(m, is64 ? 32 : 28, 64, w);   /* e_phoff */
  put(m, is64 ? 40 : 32, 2048, w); /* e_shoff */
  put(m, is64 ? 54 : 42, is64 ? 56 : 32, 2);
  put(m, is64 ? 56 : 44, 2, 2);
  put(m, is64 ? 58 : 46, is64 ? 64 : 40, 2);
  put(m, is64 ? 60 : 48, 3, 2);
  size_t phs = is64 ? 56 : 32, off = is64 ? 8 : 4, fsz = is64 ? 32 : 16;
  put(m, 64, PT_LOAD, 4);
  put(m, 64 + off, 0, w);
  put(m, 64 + fsz, 1024, w);
  put(m, 64 + phs, PT_DYNAMIC, 4);
  put(m, 64 + phs + off, 512, w);
  put(m, 64 + phs + fsz, 128, w);
}

static void set_segment(struct img *m, int i, uint64_t off, uint64_t filesz) {
  size_t phs = m->is64 ? 56 : 32, w = m->is64 ? 8 : 4;
  put(m, 64 + (size_t)i * phs + (m->is64 ? 8 : 4), off, w);
  put(m, 64 + (size_t)i * phs + (m->is64 ? 32 : 16), filesz, w);
}

static void synthetic_headers(void **state) {
  (void)state;
  char msg[256];
  struct img m;
  for (int is64 = 0; is64 < 2; is64++)
    for (int big = 0; big < 2; big++) {
      ferry_elf_target t = {is64 ? ELFCLASS64 : ELFCLASS32, big ? ELFDATA2MSB : ELFDATA2LSB,
                            EM_AARCH64};
      size_t shend = 2048 + 3 * (is64 ? 64 : 40);
      make(&m, is64, big, EM_AARCH64);
      assert_int_equal(ferry_elf_check(m.b, shend, &t, msg, sizeof msg), FERRY_OK);
      /* Section header table cut. */
      assert_int_equal(ferry_elf_check(m.b, shend - 1, &t, msg, sizeof msg), FERRY_EPROTO);
      assert_non_null(strstr(msg, "section header table ends at byte"));
      /* The DYNAMIC segment past the end. */
      set_segment(&m, 1, 4000, 200);
      assert_int_equal(ferry_elf_check(m.b, shend, &t, msg, sizeof msg), FERRY_EPROTO);
      assert_non_null(strstr(msg, "segment 1 (DYNAMIC) ends at byte 4200"));
      /* An offset that overflows. */
      set_segment(&m, 1, is64 ? UINT64_MAX - 10 : UINT32_MAX - 10, 100);
      assert_int_equal(ferry_elf_check(m.b, sizeof m.b, &t, msg, sizeof msg), FERRY_EPROTO);
      /* No LOAD segment. */
      make(&m, is64, big, EM_AARCH64);
      put(&m, 64, PT_NOTE, 4);
      assert_int_equal(ferry_elf_check(m.b, shend, &t, msg, sizeof msg), FERRY_EUNSUPPORTED);
      assert_non_null(strstr(msg, "no loadable segment"));
      /* Program header table past the end. */
      make(&m, is64, big, EM_AARCH64);
      put(&m, is64 ? 56 : 44, 1000, 2);
      assert_int_equal(ferry_elf_check(m.b, shend, &t, msg, sizeof msg), FERRY_EPROTO);
      assert_non_null(strstr(msg, "program header table ends"));
      /* Entry sizes that are not the ELF ones. */
      make(&m, is64, big, EM_AARCH64);
      put(&m, is64 ? 54 : 42, 12, 2);
      assert_int_equal(ferry_elf_check(m.b, shend, &t, msg, sizeof msg), FERRY_EPROTO);
      make(&m, is64, big, EM_AARCH64);
      put(&m, is64 ? 58 : 46, 12, 2);
      assert_int_equal(ferry_elf_check(m.b, shend, &t, msg, sizeof msg), FERRY_EPROTO);
      /* No section table at all is fine (sstrip). */
      make(&m, is64, big, EM_AARCH64);
      put(&m, is64 ? 40 : 32, 0, is64 ? 8 : 4);
      if (ferry_elf_check(m.b, 1024, &t, msg, sizeof msg) != FERRY_OK)
        fail_msg("%d %d: %s", is64, big, msg);
      /* Zero program headers, PN_XNUM. */
      put(&m, is64 ? 56 : 44, 0, 2);
      assert_int_equal(ferry_elf_check(m.b, 1024, &t, msg, sizeof msg), FERRY_EUNSUPPORTED);
      put(&m, is64 ? 56 : 44, PN_XNUM, 2);
      assert_int_equal(ferry_elf_check(m.b, sizeof m.b, &t, msg, sizeof msg),
                       FERRY_EUNSUPPORTED);
      /* Object file, executable. */
      make(&m, is64, big, EM_AARCH64);
      put(&m, 16, ET_REL, 2);
      assert_int_equal(ferry_elf_check(m.b, shend, &t, msg, sizeof msg), FERRY_EUNSUPPORTED);
      assert_non_null(strstr(msg, "object file"));
      put(&m, 16, ET_EXEC, 2);
      assert_int_equal(ferry_elf_check(m.b, shend, &t, msg, sizeof msg), FERRY_EUNSUPPORTED);
      /* Another machine; "any machine" accepts it. */
      make(&m, is64, big, EM_RISCV);
      assert_int_equal(ferry_elf_check(m.b, shend, &t, msg, sizeof msg), FERRY_EMISMATCH);
      assert_non_null(strstr(msg, "riscv"));
      t.machine = 0;
      assert_int_equal(ferry_elf_check(m.b, shend, &t, msg, sizeof msg), FERRY_OK);
    }
  /* Not ELF, bad class / byte order / version bytes, a header cut short. */
  ferry_elf_target host;
  ferry_elf_host_target(&host);
  assert_int_equal(ferry_elf_check((const uint8_t *)"#!/bin/sh\n echo hello", 21, &host, msg,
                                   sizeof msg),
                   FERRY_EMAGIC);
  assert_non_null(strstr(msg, "no ELF header"));
  make(&m, 1, 0, host.machine);
  m.b[EI_CLASS] = 7;
  assert_int_equal(ferry_elf_check(m.b, 64, &host, msg, sizeof msg), FERRY_EPROTO);
  make(&m, 1, 0, host.machine);
  m.b[EI_DATA] = 0;
  assert_int_equal(ferry_elf_check(m.b, 64, &host, msg, sizeof msg), FERRY_EPROTO);
  make(&m, 1, 0, host.machine);
  m.b[EI_VERSION] = 0;
  assert_int_equal(ferry_elf_check(m.b, 64, &host, msg, sizeof msg), FERRY_EPROTO);
  if (host.elf_class == ELFCLASS64 && host.byte_order == ELFDATA2LSB) {
    make(&m, 1, 0, host.machine);
    assert_int_equal(check_copy(m.b, 40, &host, msg, sizeof msg), FERRY_EPROTO);
    assert_non_null(strstr(msg, "the header needs 64 bytes, file has 40 bytes"));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(real_library_and_every_prefix),
      cmocka_unit_test(synthetic_headers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
