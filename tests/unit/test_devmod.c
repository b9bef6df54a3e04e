/* Device-module payload decoder (wire/devmod.c): both generations, every
 * truncation, the ceilings, and TVM's kernel-source split.  Also the real
 * payload of the golden vadd.so (TVM v0.20). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devmod_writer.h"
#include "wire/devmod.h"

static const char *const tags2[] = {"blockIdx.x", "threadIdx.x"};
static const char *const i32[] = {"i32"};
static const char src2[] = "// Function: a_kernel\n__kernel void a_kernel() {}\n\n"
                           "// Function: b_kernel\n__kernel void b_kernel(int k) {}\n";

static struct dw payload(int v026) {
  struct dw w = {0};
  dw_str(&w, "cl");
  dw_u64(&w, 2);
  dw_func(&w, "a_kernel", 3, NULL, 0, tags2, 2, v026);
  dw_func(&w, "b_kernel", 2, i32, 1, tags2, 2, v026);
  dw_str(&w, src2);
  return w;
}

static void decodes_both_generations(void **state) {
  (void)state;
  for (int gen = 0; gen < 2; gen++) {
    struct dw w = payload(gen);
    dw_raw(&w, "tail", 4); /* what follows in the blob is not read */
    ferry_devmod m;
    char why[128];
    assert_int_equal(ferry_devmod_decode(w.p, w.len, (enum ferry_devmod_gen)gen, &m, why,
                                         sizeof why),
                     0);
    assert_string_equal(m.fmt, "cl");
    assert_int_equal(m.nfuncs, 2);
    assert_string_equal(m.funcs[1].name, "b_kernel");
    assert_int_equal(m.funcs[1].nargs, 3);
    assert_int_equal(m.funcs[1].arg_types[2].code, 0);
    assert_int_equal(m.funcs[1].arg_types[2].bits, 32);
    assert_int_equal(m.funcs[0].arg_types[0].code, 3);
    assert_int_equal(m.funcs[0].ntags, 2);
    assert_string_equal(m.funcs[0].tags[1], "threadIdx.x");
    assert_int_equal(m.data_len, strlen(src2));
    assert_int_equal(m.consumed, w.len - 4);
    ferry_devmod_free(&m);
    free(w.p);
  }
}

static void the_generations_are_not_interchangeable(void **state) {
  (void)state;
  struct dw w = payload(1);
  ferry_devmod m;
  char why[128];
  /* A v0.26 payload read as v0.20 is malformed (or ends elsewhere). */
  int rc = ferry_devmod_decode(w.p, w.len, FERRY_DEVMOD_V020, &m, why, sizeof why);
  if (rc == 0) {
    assert_true(m.consumed != w.len);
    ferry_devmod_free(&m);
  }
  free(w.p);
}

static void every_truncation_is_refused(void **state) {
  (void)state;
  for (int gen = 0; gen < 2; gen++) {
    struct dw w = payload(gen);
    for (size_t n = 0; n < w.len; n++) {
      /* An exact-size copy so that ASan sees a read past the end. */
      uint8_t *cut = malloc(n ? n : 1);
      memcpy(cut, w.p, n);
      ferry_devmod m;
      char why[128] = "";
      int rc = ferry_devmod_decode(cut, n, (enum ferry_devmod_gen)gen, &m, why, sizeof why);
      assert_int_not_equal(rc, 0);
      assert_true(why[0] != 0);
      assert_null(m.funcs);
      free(cut);
    }
    free(w.p);
  }
}

static void ceilings_are_checked_before_allocating(void **state) {
  (void)state;
  char why[128];
  ferry_devmod m;
  struct dw w = {0};
  dw_str(&w, "cl");
  dw_u64(&w, UINT64_MAX); /* function count */
  assert_int_equal(ferry_devmod_decode(w.p, w.len, FERRY_DEVMOD_V020, &m, why, sizeof why),
                   FERRY_ETOOBIG);
  w.len = 0;
  dw_str(&w, "cl");
  dw_u64(&w, 1);
  dw_str(&w, "k");
  dw_str(&w, "");
  dw_u64(&w, 1u << 30); /* arg count */
  assert_int_equal(ferry_devmod_decode(w.p, w.len, FERRY_DEVMOD_V020, &m, why, sizeof why),
                   FERRY_ETOOBIG);
  w.len = 0;
  dw_u64(&w, 1000); /* fmt of 1000 bytes */
  assert_int_equal(ferry_devmod_decode(w.p, w.len, FERRY_DEVMOD_V020, &m, why, sizeof why),
                   FERRY_ETOOBIG);
  /* A duplicate key and an empty key are malformed. */
  w.len = 0;
  dw_str(&w, "cl");
  dw_u64(&w, 2);
  dw_func(&w, "k", 1, NULL, 0, NULL, 0, 0);
  dw_func(&w, "k", 1, NULL, 0, NULL, 0, 0);
  dw_str(&w, "");
  assert_int_equal(ferry_devmod_decode(w.p, w.len, FERRY_DEVMOD_V020, &m, why, sizeof why),
                   FERRY_EPROTO);
  assert_non_null(strstr(why, "twice"));
  free(w.p);
}

static void kernel_source_split_as_tvm(void **state) {
  (void)state;
  const char *p;
  size_t n;
  assert_int_equal(ferry_devmod_kernel_source(src2, strlen(src2), "b_kernel", &p, &n), 0);
  assert_int_equal(n, strlen("__kernel void b_kernel(int k) {}\n"));
  assert_memory_equal(p, "__kernel void b_kernel", 22);
  assert_int_equal(ferry_devmod_kernel_source(src2, strlen(src2), "a_kernel", &p, &n), 0);
  assert_int_equal(n, strlen("__kernel void a_kernel() {}\n\n"));
  assert_int_equal(ferry_devmod_kernel_source(src2, strlen(src2), "a_kern", &p, &n),
                   FERRY_ENOTFOUND);
  assert_int_equal(ferry_devmod_kernel_source("no delimiter", 12, "a", &p, &n), FERRY_ENOTFOUND);
  /* A delimiter at the very end (no name line) is no kernel. */
  assert_int_equal(ferry_devmod_kernel_source("// Function: ", 13, "", &p, &n), 0);
  assert_int_equal(n, 0);
}

/* The "opencl" payload inside the golden vadd.so's __tvm_dev_mblob. */
static void golden_vadd_payload(void **state) {
  (void)state;
  FILE *f = fopen(FERRY_GOLDEN_DIR "/opencl/kernels/vadd.so", "rb");
  assert_non_null(f);
  static uint8_t buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  const uint8_t *at = NULL;
  for (size_t i = 0; i + 14 < n; i++)
    if (memcmp(buf + i, "\x06\0\0\0\0\0\0\0opencl", 14) == 0) {
      at = buf + i + 14;
      break;
    }
  assert_non_null(at);
  ferry_devmod m;
  char why[128];
  assert_int_equal(
      ferry_devmod_decode(at, (size_t)(buf + n - at), FERRY_DEVMOD_V020, &m, why, sizeof why), 0);
  assert_string_equal(m.fmt, "cl");
  assert_int_equal(m.nfuncs, 1);
  assert_string_equal(m.funcs[0].name, "vadd_kernel");
  assert_int_equal(m.funcs[0].nargs, 3);
  assert_int_equal(m.data_len, 488);
  const char *p;
  size_t len;
  assert_int_equal(ferry_devmod_kernel_source(m.data, m.data_len, "vadd_kernel", &p, &len), 0);
  ferry_devmod_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(decodes_both_generations),
      cmocka_unit_test(the_generations_are_not_interchangeable),
      cmocka_unit_test(every_truncation_is_refused),
      cmocka_unit_test(ceilings_are_checked_before_allocating),
      cmocka_unit_test(kernel_source_split_as_tvm),
      cmocka_unit_test(golden_vadd_payload),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
