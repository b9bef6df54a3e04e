/* The Relax executable parser at and past every ceiling, with counts that
 * lie and constant tags of the wrong generation (hand-built executables,
 * test_relax_fx.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/bytes.h"
#include "wire/params.h"
#include "wire/relax_exec.h"

#include "test_relax_fx.h"

static void header_limits(void **state) {
  (void)state;
  fx f;
  static char long_text[FERRY_RELAX_MAX_STRING + 2];
  memset(long_text, 'a', sizeof long_text);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.x.version = (ferry_relax_str){long_text, FERRY_RELAX_MAX_VERSION + 1};
  expect_parse(&f, FERRY_RELAX_TAGS_CLASSIC, FERRY_ETOOBIG, "at byte 8: version: length 65 over");
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.x.version = S("0.13");
  expect_parse(&f, FERRY_RELAX_TAGS_CLASSIC, FERRY_EMAGIC, "version \"0.13\" is not \"0.14\"");
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.x.magic = 0x1234;
  expect_parse(&f, FERRY_RELAX_TAGS_CLASSIC, FERRY_EMAGIC, "at byte 0: magic");
  /* Only TVM >= 0.21 writes V2, so a classic library cannot hold one. */
  fx_basic(&f, FERRY_RELAX_TAGS_FFI);
  expect_parse(&f, FERRY_RELAX_TAGS_CLASSIC, FERRY_EMAGIC, "V2 magic in a classic-ABI");
  /* Names at and past their ceiling. */
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.funcs[3].name = (ferry_relax_str){long_text, FERRY_RELAX_MAX_NAME};
  expect_validate(&f, 0, NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.funcs[3].name = (ferry_relax_str){long_text, FERRY_RELAX_MAX_NAME + 1};
  expect_parse(&f, FERRY_RELAX_TAGS_CLASSIC, FERRY_ETOOBIG,
               "function name: length 4097 over the limit 4096");
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.params[1] = (ferry_relax_str){long_text, FERRY_RELAX_MAX_NAME + 1};
  expect_parse(&f, FERRY_RELAX_TAGS_CLASSIC, FERRY_ETOOBIG, "parameter name: length 4097");
  /* The whole input. */
  ferry_relax_exec x;
  char err[FERRY_RELAX_ERR_MAX];
  assert_int_equal(ferry_relax_exec_parse(&x, (const uint8_t *)long_text,
                                          (size_t)FERRY_RELAX_MAX_BYTES + 1,
                                          FERRY_RELAX_TAGS_CLASSIC, err, sizeof err),
                   FERRY_ETOOBIG); /* refused before any byte is read */
  assert_non_null(strstr(err, "over the limit"));
  assert_int_equal(ferry_relax_exec_parse(&x, (const uint8_t *)long_text, 8, 7, err, sizeof err),
                   FERRY_EINVAL);
}

/* Parameter names at the ceiling pass, one more is refused. */
static void parameter_limit(void **state) {
  (void)state;
  ferry_relax_str *names = calloc(FERRY_RELAX_MAX_PARAMS + 1, sizeof *names);
  assert_non_null(names);
  char (*text)[8] = calloc(FERRY_RELAX_MAX_PARAMS + 1, sizeof *text);
  assert_non_null(text);
  for (int i = 0; i <= FERRY_RELAX_MAX_PARAMS; i++) {
    snprintf(text[i], sizeof text[i], "p%d", i);
    names[i] = (ferry_relax_str){text[i], strlen(text[i])};
  }
  fx f;
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.funcs[3].params = names;
  f.funcs[3].nparams = FERRY_RELAX_MAX_PARAMS;
  f.funcs[3].num_args = FERRY_RELAX_MAX_PARAMS;
  f.funcs[3].register_file_size = FERRY_RELAX_MAX_PARAMS;
  f.data[1] = 1; /* main calls nothing with helper's arity; fine */
  expect_validate(&f, 0, NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.funcs[3].params = names;
  f.funcs[3].nparams = FERRY_RELAX_MAX_PARAMS + 1;
  expect_parse(&f, FERRY_RELAX_TAGS_CLASSIC, FERRY_ETOOBIG,
               "parameter count of function 3 4097 over the limit 4096");
  free(text);
  free(names);
}

/* Overwrites the u64 at byte `at` of the written executable and parses. */
static void patched_count(fx *f, enum ferry_relax_tags tags, size_t at, uint64_t value, int want,
                          const char *frag) {
  f->bytes.len = 0;
  assert_int_equal(ferry_relax_exec_write(&f->x, &f->bytes), 0);
  assert_true(at + 8 <= f->bytes.len);
  put_le64(f->bytes.data + at, value);
  ferry_relax_exec x;
  char err[FERRY_RELAX_ERR_MAX];
  int rc = ferry_relax_exec_parse(&x, f->bytes.data, f->bytes.len, tags, err, sizeof err);
  if (rc != want)
    fail_msg("parse: rc %d, want %d: %s", rc, want, err);
  if (strstr(err, frag) == NULL)
    fail_msg("message \"%s\" lacks \"%s\"", err, frag);
  char at_text[32];
  snprintf(at_text, sizeof at_text, "at byte %zu:", at);
  if (strstr(err, at_text) == NULL)
    fail_msg("message \"%s\" lacks \"%s\"", err, at_text);
}

/* Each count past its ceiling, and each count that the bytes after it
 * cannot hold (a lie): refused before anything is allocated for it. */
static void lying_counts(void **state) {
  (void)state;
  fx f;
  fx_basic(&f, FERRY_RELAX_TAGS_FFI);
  ferry_relax_exec x;
  char err[FERRY_RELAX_ERR_MAX];
  assert_int_equal(fx_parse(&f, FERRY_RELAX_TAGS_FFI, &x, err), 0);
  size_t funcs = x.off_funcs, scopes = x.off_scopes, consts = x.off_consts, code = x.off_code;
  size_t words = code + 8 + 8 * x.ninstrs;
  size_t params0 = funcs + 8 + 4 + 8 + 4 + 32; /* after kind, "main", 4 x i64 */
  size_t shape_at = consts + 8 + 4;
  ferry_relax_exec_close(&x);
  struct {
    size_t at;
    uint64_t value;
    const char *frag;
  } cases[] = {
      {funcs, FERRY_RELAX_MAX_FUNCS + 1, "function count 65537 over the limit 65536"},
      {funcs, FERRY_RELAX_MAX_FUNCS, "function count 65536 cannot fit"},
      {funcs, UINT64_MAX, "over the limit"},
      {params0, FERRY_RELAX_MAX_PARAMS, "parameter count of function 0 4096 cannot fit"},
      {scopes, FERRY_RELAX_MAX_SCOPES + 1, "memory-scope count 65537 over the limit"},
      {scopes, 1000, "memory-scope count 1000 cannot fit"},
      {consts, FERRY_RELAX_MAX_CONSTS + 1, "constant count 1048577 over the limit"},
      {consts, 100000, "constant count 100000 cannot fit"},
      {code, FERRY_RELAX_MAX_INSTRS + 1, "instruction count 4194305 over the limit"},
      {code, 1u << 20, "instruction count 1048576 cannot fit"},
      {words, FERRY_RELAX_MAX_WORDS + 1, "instruction word count 16777217 over the limit"},
      {words, 1000, "instruction word count 1000 cannot fit"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    patched_count(&f, FERRY_RELAX_TAGS_FFI, cases[i].at, cases[i].value, FERRY_ETOOBIG,
                  cases[i].frag);
  ferry_buf_close(&f.bytes);
  /* A Shape constant's ndim. */
  uint8_t dims[16] = {0};
  fx_basic(&f, FERRY_RELAX_TAGS_FFI);
  f.consts[0] = (ferry_relax_const){.kind = FERRY_RELAX_CONST_SHAPE, .tag = 69,
                                    .u.raw = {dims, 2}};
  patched_count(&f, FERRY_RELAX_TAGS_FFI, shape_at, FERRY_RELAX_MAX_SHAPE_NDIM + 1,
                FERRY_ETOOBIG, "shape constant ndim 1025 over the limit 1024");
  patched_count(&f, FERRY_RELAX_TAGS_FFI, shape_at, 1000, FERRY_ETOOBIG,
                "shape constant ndim 1000 cannot fit");
  ferry_buf_close(&f.bytes);
}

static void constant_limits(void **state) {
  (void)state;
  fx f;
  static uint8_t big[8 * (FERRY_RELAX_MAX_SHAPE_NDIM + 1) + FERRY_RELAX_MAX_STRING + 1];
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.consts[1] = (ferry_relax_const){.kind = FERRY_RELAX_CONST_SHAPE, .tag = 2,
                                    .u.raw = {big, FERRY_RELAX_MAX_SHAPE_NDIM}};
  f.consts[2] = (ferry_relax_const){.kind = FERRY_RELAX_CONST_STRING, .tag = 3,
                                    .u.str = {(const char *)big, FERRY_RELAX_MAX_STRING}};
  f.x.nconsts = 3;
  expect_validate(&f, 0, NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.consts[1] = (ferry_relax_const){.kind = FERRY_RELAX_CONST_SHAPE, .tag = 2,
                                    .u.raw = {big, FERRY_RELAX_MAX_SHAPE_NDIM + 1}};
  f.x.nconsts = 2;
  expect_parse(&f, FERRY_RELAX_TAGS_CLASSIC, FERRY_ETOOBIG, "shape constant ndim 1025 over");
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.consts[1] = (ferry_relax_const){.kind = FERRY_RELAX_CONST_STRING, .tag = 3,
                                    .u.str = {(const char *)big, FERRY_RELAX_MAX_STRING + 1}};
  f.x.nconsts = 2;
  expect_parse(&f, FERRY_RELAX_TAGS_CLASSIC, FERRY_ETOOBIG, "string constant: length 1048577");
  /* Scope strings (V2). */
  fx_basic(&f, FERRY_RELAX_TAGS_FFI);
  f.scopes[0] = (ferry_relax_scope){0, {(const char *)big, FERRY_RELAX_MAX_SCOPE_LEN}};
  f.x.nscopes = 1;
  expect_validate(&f, 0, NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_FFI);
  f.scopes[0] = (ferry_relax_scope){0, {(const char *)big, FERRY_RELAX_MAX_SCOPE_LEN + 1}};
  f.x.nscopes = 1;
  expect_parse(&f, FERRY_RELAX_TAGS_FFI, FERRY_ETOOBIG, "memory scope: length 257 over");
  /* Tensors: wrong magic, ndim past the NDArray codec's 32, a size that
   * is not the shape's, data that is not there. */
  uint8_t t[48 + 33 * 8] = {0};
  put_le64(t, FERRY_NDARRAY_MAGIC);
  put_le32(t + 16, 1);           /* CPU */
  put_le32(t + 24, 1);           /* ndim */
  t[28] = 2, t[29] = 32, t[30] = 1;
  put_le64(t + 32, 2);           /* shape [2] */
  put_le64(t + 40, 8);           /* nbytes */
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.consts[1] = (ferry_relax_const){.kind = FERRY_RELAX_CONST_TENSOR, .tag = 0,
                                    .u.raw = {t, 48 + 8}};
  f.x.nconsts = 2;
  expect_validate(&f, 0, NULL);
  put_le64(t + 40, 12);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.consts[1] = (ferry_relax_const){.kind = FERRY_RELAX_CONST_TENSOR, .tag = 0,
                                    .u.raw = {t, 48 + 12}};
  f.x.nconsts = 2;
  expect_parse(&f, FERRY_RELAX_TAGS_CLASSIC, FERRY_EPROTO, "tensor constant 1: bad NDArray");
  put_le64(t + 40, 8);
  put_le32(t + 24, 33);
  expect_parse(&f, FERRY_RELAX_TAGS_CLASSIC, FERRY_EPROTO, "tensor constant 1: bad NDArray");
  put_le32(t + 24, 1);
  t[0] ^= 1;
  expect_parse(&f, FERRY_RELAX_TAGS_CLASSIC, FERRY_EPROTO, "not an NDArray (wrong magic)");
  t[0] ^= 1;
  put_le64(t + 40, 1u << 20); /* with shape [262144]: data runs past the end */
  put_le64(t + 32, 1u << 18);
  expect_parse(&f, FERRY_RELAX_TAGS_CLASSIC, FERRY_EAGAIN, "truncated: tensor constant 1");
}

/* Constant tags read through the table of the library's ABI. */
static void tag_tables(void **state) {
  (void)state;
  fx f;
  uint8_t dims[8] = {3};
  static const struct {
    enum ferry_relax_tags tags;
    int32_t tag;
    int want;
    const char *frag;
  } cases[] = {
      {FERRY_RELAX_TAGS_CLASSIC, 70, FERRY_EPROTO, "tag 70 is a tvm-ffi type index"},
      {FERRY_RELAX_TAGS_CLASSIC, 65, FERRY_EPROTO, "tag 65 is a tvm-ffi type index"},
      {FERRY_RELAX_TAGS_CLASSIC, 6, FERRY_EPROTO, "unknown v0.20 constant tag 6"},
      {FERRY_RELAX_TAGS_CLASSIC, -1, FERRY_EPROTO, "unknown v0.20 constant tag -1"},
      {FERRY_RELAX_TAGS_FFI, 0, FERRY_EPROTO, "tag 0 is a v0.20 constant tag"},
      {FERRY_RELAX_TAGS_FFI, 2, FERRY_EPROTO, "tag 2 is a v0.20 constant tag"},
      {FERRY_RELAX_TAGS_FFI, 66, FERRY_EPROTO, "unknown tvm-ffi constant tag 66"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    fx_basic(&f, cases[i].tags);
    f.consts[0].tag = cases[i].tag;
    expect_parse(&f, cases[i].tags, cases[i].want, cases[i].frag);
  }
  /* v0.21 numbers shape and tensor 71 / 72 (under the V1 magic): read with
   * the ffi table, but never mixed with v0.22's 69 / 70. */
  fx_basic(&f, FERRY_RELAX_TAGS_FFI);
  f.x.magic = FERRY_RELAX_MAGIC_V1;
  f.consts[1] = (ferry_relax_const){.kind = FERRY_RELAX_CONST_SHAPE, .tag = 71,
                                    .u.raw = {dims, 1}};
  f.x.nconsts = 2;
  ferry_relax_exec x;
  char err[FERRY_RELAX_ERR_MAX];
  assert_int_equal(fx_parse(&f, FERRY_RELAX_TAGS_FFI, &x, err), 0);
  assert_int_equal(x.ffi_v021, 1);
  assert_int_equal(x.consts[1].kind, FERRY_RELAX_CONST_SHAPE);
  assert_int_equal(ferry_relax_shape_dim(&x.consts[1], 0), 3);
  assert_int_equal(x.consts[0].kind, FERRY_RELAX_CONST_DTYPE);
  ferry_relax_exec_close(&x);
  ferry_buf_close(&f.bytes);
  f.consts[2] = f.consts[1];
  f.consts[2].tag = 69;
  f.x.nconsts = 3;
  expect_parse(&f, FERRY_RELAX_TAGS_FFI, FERRY_EPROTO,
               "constant 2: tag 69 mixes TVM v0.21's type indices with v0.22's");
  /* The same kinds read through each table. */
  static const int32_t classic[6] = {0, 1, 2, 3, 4, 5}, ffi[6] = {70, 5, 69, 65, 1, 3};
  for (int k = 1; k < 6; k++) {
    fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
    f.consts[0] = (ferry_relax_const){.kind = (enum ferry_relax_const_kind)k, .tag = classic[k]};
    if (k == FERRY_RELAX_CONST_SHAPE)
      f.consts[0].u.raw.p = dims, f.consts[0].u.raw.n = 1;
    if (k == FERRY_RELAX_CONST_STRING)
      f.consts[0].u.str = S("s");
    expect_validate(&f, 0, NULL);
    fx_basic(&f, FERRY_RELAX_TAGS_FFI);
    f.consts[0] = (ferry_relax_const){.kind = (enum ferry_relax_const_kind)k, .tag = ffi[k]};
    if (k == FERRY_RELAX_CONST_SHAPE)
      f.consts[0].u.raw.p = dims, f.consts[0].u.raw.n = 1;
    if (k == FERRY_RELAX_CONST_STRING)
      f.consts[0].u.str = S("s");
    expect_validate(&f, 0, NULL);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(header_limits),
      cmocka_unit_test(parameter_limit),
      cmocka_unit_test(lying_counts),
      cmocka_unit_test(constant_limits),
      cmocka_unit_test(tag_tables),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
