/* relax.VMExecutable parser and disassembler (spec relax-vm.md section 1)
 * on the real executables TVM v0.20 and v0.26 compiled (tests/golden/
 * relax): every field, the text TVM printed for them, every truncation,
 * every ceiling, lying counts and constant tags of the wrong generation. */
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
#include "test_slurp.h"

#define GOLDEN FERRY_GOLDEN_DIR "/relax/"

static int parse(ferry_relax_exec *x, const uint8_t *b, size_t n, enum ferry_relax_tags t,
                 char *err) {
  return ferry_relax_exec_parse(x, b, n, t, err, FERRY_RELAX_ERR_MAX);
}

/* stats + "\n" + as_text, which is what each .txt holds. */
static void check_text(const ferry_relax_exec *x, const char *txt_path) {
  size_t tlen;
  char *want = (char *)slurp(txt_path, &tlen);
  ferry_buf out;
  ferry_buf_init(&out, 1 << 20);
  assert_int_equal(ferry_relax_exec_stats(x, &out), 0);
  assert_int_equal(ferry_buf_append(&out, "\n", 1), 0);
  assert_int_equal(ferry_relax_exec_text(x, &out), 0);
  assert_int_equal(out.len, tlen);
  assert_memory_equal(out.data, want, tlen);
  ferry_buf_close(&out);
  free(want);
}

static int str_is(const ferry_relax_str *s, const char *z) {
  return s->len == strlen(z) && memcmp(s->p, z, s->len) == 0;
}

static const char *const mlp_funcs[] = {
    "main", "vm.builtin.check_tensor_info", "vm.builtin.match_shape",
    "vm.builtin.alloc_storage", "vm.builtin.alloc_tensor", "matmul", "add",
    "vm.builtin.null_value", "relu", "matmul1", "softmax"};

static void check_mlp_funcs(const ferry_relax_exec *x) {
  assert_int_equal(x->nfuncs, 11);
  for (size_t i = 0; i < 11; i++) {
    const ferry_relax_func *f = &x->funcs[i];
    assert_true(str_is(&f->name, mlp_funcs[i]));
    if (i == 0) {
      assert_int_equal(f->kind, FERRY_RELAX_FUNC_VM);
      assert_int_equal(f->start_instr, 0);
      assert_int_equal(f->end_instr, 23);
      assert_int_equal(f->num_args, 1);
      assert_int_equal(f->register_file_size, 9); /* %0 .. %8 in the text */
      assert_int_equal(f->nparams, 1);
      assert_true(str_is(&f->params[0], "x"));
    } else {
      assert_int_equal(f->kind, FERRY_RELAX_FUNC_PACKED);
      assert_int_equal(f->num_args, -2);
      assert_int_equal(f->start_instr, 0);
      assert_int_equal(f->end_instr, 0);
      assert_int_equal(f->register_file_size, 0);
      assert_int_equal(f->nparams, 0);
    }
  }
  assert_int_equal(x->ninstrs, 23);
  assert_int_equal(x->nwords, 150); /* last offset 148 + Ret */
  /* First instruction: call check_tensor_info in: %0, i2, c[0], c[1] dst: %void */
  const int64_t *w = &x->instr_data[x->instr_offset[0]];
  assert_int_equal(w[0], FERRY_RELAX_OP_CALL);
  assert_int_equal(w[1], FERRY_RELAX_REG_VOID);
  assert_int_equal(w[2], 1);
  assert_int_equal(w[3], 4);
  assert_int_equal(ferry_relax_arg_kind(w[4]), FERRY_RELAX_ARG_REG);
  assert_int_equal(ferry_relax_arg_value(w[4]), 0);
  assert_int_equal(ferry_relax_arg_kind(w[5]), FERRY_RELAX_ARG_IMM);
  assert_int_equal(ferry_relax_arg_value(w[5]), 2);
  assert_int_equal(ferry_relax_arg_kind(w[6]), FERRY_RELAX_ARG_CONST);
  assert_int_equal(ferry_relax_arg_value(w[7]), 1);
  /* Last: ret %8 */
  w = &x->instr_data[x->instr_offset[22]];
  assert_int_equal(w[0], FERRY_RELAX_OP_RET);
  assert_int_equal(w[1], 8);
}

static void check_tensor(const ferry_relax_const *c, int64_t d0, int64_t d1, uint64_t nbytes) {
  assert_int_equal(c->kind, FERRY_RELAX_CONST_TENSOR);
  ferry_stream s;
  ferry_params_tensor t;
  ferry_stream_init(&s, c->u.raw.p, c->u.raw.n);
  assert_int_equal(ferry_ndarray_decode(&s, &t), 0);
  assert_int_equal(s.pos, c->u.raw.n);
  assert_int_equal(t.ndim, d1 ? 2 : 1);
  assert_int_equal(t.shape[0], d0);
  if (d1)
    assert_int_equal(t.shape[1], d1);
  assert_int_equal(t.dtype.code, kDLFloat);
  assert_int_equal(t.dtype.bits, 32);
  assert_int_equal(t.nbytes, nbytes);
}

static void golden_v020_mlp(void **state) {
  (void)state;
  size_t n;
  uint8_t *b = slurp(GOLDEN "v0.20/mlp.exec", &n);
  ferry_relax_exec x;
  char err[FERRY_RELAX_ERR_MAX];
  assert_int_equal(parse(&x, b, n, FERRY_RELAX_TAGS_CLASSIC, err), 0);
  assert_int_equal(ferry_relax_exec_validate(&x, err, sizeof err), 0);
  assert_true(x.magic == FERRY_RELAX_MAGIC_V1);
  assert_true(str_is(&x.version, "0.14"));
  check_mlp_funcs(&x);
  assert_int_equal(x.nscopes, 0);
  /* float32, "ErrorContext...", shapetuple[128], uint8, "global", ... */
  assert_int_equal(x.nconsts, 18);
  static const int kinds[18] = {1, 3, 2, 1, 3, 2, 1, 0, 1, 1, 0, 1, 2, 1, 0, 2, 1, 1};
  for (size_t i = 0; i < 18; i++) {
    assert_int_equal(x.consts[i].kind, kinds[i]);
    assert_int_equal(x.consts[i].tag, kinds[i]); /* v0.20 tags are the kinds */
  }
  assert_int_equal(x.consts[0].u.dtype.code, kDLFloat);
  assert_int_equal(x.consts[0].u.dtype.bits, 32);
  assert_int_equal(x.consts[0].u.dtype.lanes, 1);
  assert_int_equal(x.consts[3].u.dtype.code, kDLUInt);
  assert_int_equal(x.consts[3].u.dtype.bits, 8);
  assert_true(str_is(&x.consts[4].u.str, "global"));
  assert_int_equal(x.consts[2].u.raw.n, 1);
  assert_int_equal(ferry_relax_shape_dim(&x.consts[2], 0), 128);
  assert_int_equal(x.consts[5].u.raw.n, 2);
  assert_int_equal(ferry_relax_shape_dim(&x.consts[5], 0), 1);
  assert_int_equal(ferry_relax_shape_dim(&x.consts[5], 1), 32);
  check_tensor(&x.consts[7], 64, 32, 8192);
  check_tensor(&x.consts[10], 32, 0, 128);
  check_tensor(&x.consts[14], 32, 10, 1280);
  check_text(&x, GOLDEN "v0.20/mlp.txt");
  ferry_relax_exec_close(&x);
  free(b);
}

static void golden_v026_mlp(void **state) {
  (void)state;
  size_t n;
  uint8_t *b = slurp(GOLDEN "v0.26/mlp.exec", &n);
  ferry_relax_exec x;
  char err[FERRY_RELAX_ERR_MAX];
  assert_int_equal(parse(&x, b, n, FERRY_RELAX_TAGS_FFI, err), 0);
  assert_int_equal(ferry_relax_exec_validate(&x, err, sizeof err), 0);
  assert_true(x.magic == FERRY_RELAX_MAGIC_V2);
  assert_int_equal(x.ffi_v021, 0);
  check_mlp_funcs(&x);
  assert_int_equal(x.nscopes, 0);
  assert_int_equal(x.nconsts, 11);
  static const int kinds[11] = {1, 3, 2, 1, 3, 2, 0, 0, 2, 0, 2};
  static const int tags[11] = {5, 65, 69, 5, 65, 69, 70, 70, 69, 70, 69};
  for (size_t i = 0; i < 11; i++) {
    assert_int_equal(x.consts[i].kind, kinds[i]);
    assert_int_equal(x.consts[i].tag, tags[i]);
  }
  check_tensor(&x.consts[6], 64, 32, 8192);
  check_tensor(&x.consts[7], 32, 0, 128);
  check_tensor(&x.consts[9], 32, 10, 1280);
  assert_int_equal(ferry_relax_shape_dim(&x.consts[10], 0), 40);
  check_text(&x, GOLDEN "v0.26/mlp.txt");
  ferry_relax_exec_close(&x);
  free(b);
}

static void golden_two_outputs(void **state) {
  (void)state;
  static const char *const dirs[2] = {"v0.20", "v0.26"};
  for (int v = 0; v < 2; v++) {
    char path[512];
    size_t n;
    snprintf(path, sizeof path, GOLDEN "%s/two_outputs.exec", dirs[v]);
    uint8_t *b = slurp(path, &n);
    ferry_relax_exec x;
    char err[FERRY_RELAX_ERR_MAX];
    assert_int_equal(parse(&x, b, n, v ? FERRY_RELAX_TAGS_FFI : FERRY_RELAX_TAGS_CLASSIC, err),
                     0);
    assert_int_equal(ferry_relax_exec_validate(&x, err, sizeof err), 0);
    assert_int_equal(x.nfuncs, 9);
    assert_true(str_is(&x.funcs[8].name, "vm.builtin.make_tuple"));
    assert_int_equal(x.funcs[0].register_file_size, 6);
    assert_int_equal(x.ninstrs, 14);
    assert_int_equal(x.nconsts, v ? 6 : 9);
    snprintf(path, sizeof path, GOLDEN "%s/two_outputs.txt", dirs[v]);
    check_text(&x, path);
    ferry_relax_exec_close(&x);
    free(b);
  }
}

/* The committed .exec files are the bytes inside the committed libraries
 * (what tests/models/relax/extract_exec.py copied out), preceded by their
 * u64 length as export_library writes them. */
static void exec_is_inside_library(void **state) {
  (void)state;
  static const char *const names[4] = {"v0.20/mlp", "v0.20/two_outputs", "v0.26/mlp",
                                       "v0.26/two_outputs"};
  for (int i = 0; i < 4; i++) {
    char path[512];
    size_t n, sn;
    snprintf(path, sizeof path, GOLDEN "%s.exec", names[i]);
    uint8_t *e = slurp(path, &n);
    snprintf(path, sizeof path, GOLDEN "%s.so", names[i]);
    uint8_t *so = slurp(path, &sn);
    int found = 0;
    for (size_t at = 8; at + n <= sn && !found; at++)
      found = memcmp(so + at, e, n) == 0 && get_le64(so + at - 8) == n;
    assert_true(found);
    free(so);
    free(e);
  }
}

/* parse then write gives the input back, byte for byte. */
static void write_round_trip(void **state) {
  (void)state;
  static const char *const names[4] = {"v0.20/mlp", "v0.20/two_outputs", "v0.26/mlp",
                                       "v0.26/two_outputs"};
  for (int i = 0; i < 4; i++) {
    char path[512];
    size_t n;
    snprintf(path, sizeof path, GOLDEN "%s.exec", names[i]);
    uint8_t *b = slurp(path, &n);
    ferry_relax_exec x;
    char err[FERRY_RELAX_ERR_MAX];
    assert_int_equal(parse(&x, b, n, i >= 2 ? FERRY_RELAX_TAGS_FFI : FERRY_RELAX_TAGS_CLASSIC,
                           err),
                     0);
    ferry_buf out;
    ferry_buf_init(&out, 1 << 20);
    assert_int_equal(ferry_relax_exec_write(&x, &out), 0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, b, n);
    ferry_buf_close(&out);
    ferry_relax_exec_close(&x);
    free(b);
  }
}

/* Every proper prefix is refused with a message naming a byte offset; each
 * prefix sits in a buffer of exactly its size, so ASan sees any read past
 * it. */
static void truncated_everywhere(void **state) {
  (void)state;
  static const char *const names[4] = {"v0.20/two_outputs", "v0.20/mlp", "v0.26/mlp",
                                       "v0.26/two_outputs"};
  for (int i = 0; i < 4; i++) {
    char path[512];
    size_t n;
    snprintf(path, sizeof path, GOLDEN "%s.exec", names[i]);
    uint8_t *b = slurp(path, &n);
    for (size_t len = 0; len < n; len++) {
      uint8_t *p = malloc(len ? len : 1);
      assert_non_null(p);
      memcpy(p, b, len);
      ferry_relax_exec x;
      char err[FERRY_RELAX_ERR_MAX];
      int rc = parse(&x, p, len, i >= 2 ? FERRY_RELAX_TAGS_FFI : FERRY_RELAX_TAGS_CLASSIC, err);
      /* ETOOBIG: a count that the rest of the prefix cannot hold. */
      if (rc != FERRY_EAGAIN && rc != FERRY_ETOOBIG)
        fail_msg("prefix %zu of %s: rc %d (%s)", len, names[i], rc, err);
      assert_non_null(strstr(err, "at byte "));
      assert_null(x.funcs);
      ferry_relax_exec_close(&x); /* harmless on failure */
      free(p);
    }
    free(b);
  }
}

/* Bytes after the code section are refused. */
static void trailing_bytes(void **state) {
  (void)state;
  size_t n;
  uint8_t *b = slurp(GOLDEN "v0.20/two_outputs.exec", &n);
  uint8_t *p = malloc(n + 3);
  memcpy(p, b, n);
  memset(p + n, 0, 3);
  ferry_relax_exec x;
  char err[FERRY_RELAX_ERR_MAX];
  assert_int_equal(parse(&x, p, n + 3, FERRY_RELAX_TAGS_CLASSIC, err), FERRY_EPROTO);
  assert_non_null(strstr(err, "3 bytes after the code section"));
  free(p);
  free(b);
}

/* Each generation's executable read through the other table is refused,
 * with a message; the v0.26 bytes under the V1 magic and without the scope
 * section (what v0.22 writes) still read through the ffi table. */
static void wrong_generation(void **state) {
  (void)state;
  size_t n20, n26;
  uint8_t *b20 = slurp(GOLDEN "v0.20/mlp.exec", &n20);
  uint8_t *b26 = slurp(GOLDEN "v0.26/mlp.exec", &n26);
  ferry_relax_exec x;
  char err[FERRY_RELAX_ERR_MAX];
  int rc = parse(&x, b20, n20, FERRY_RELAX_TAGS_FFI, err);
  assert_true(rc != 0);
  assert_non_null(strstr(err, "at byte "));
  assert_int_equal(parse(&x, b26, n26, FERRY_RELAX_TAGS_CLASSIC, err), FERRY_EMAGIC);
  assert_non_null(strstr(err, "V2 magic in a classic-ABI"));
  /* v0.22 layout: V1 magic, no scope section, ffi tags. */
  assert_int_equal(parse(&x, b26, n26, FERRY_RELAX_TAGS_FFI, err), 0);
  size_t cut = x.off_scopes;
  ferry_relax_exec_close(&x);
  uint8_t *v22 = malloc(n26 - 8);
  memcpy(v22, b26, cut);
  memcpy(v22 + cut, b26 + cut + 8, n26 - cut - 8);
  put_le64(v22, FERRY_RELAX_MAGIC_V1);
  assert_int_equal(parse(&x, v22, n26 - 8, FERRY_RELAX_TAGS_FFI, err), 0);
  assert_int_equal(x.nconsts, 11);
  assert_int_equal(ferry_relax_exec_validate(&x, err, sizeof err), 0);
  ferry_relax_exec_close(&x);
  rc = parse(&x, v22, n26 - 8, FERRY_RELAX_TAGS_CLASSIC, err);
  assert_true(rc != 0);
  assert_non_null(strstr(err, "at byte "));
  free(v22);
  free(b26);
  free(b20);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(golden_v020_mlp),        cmocka_unit_test(golden_v026_mlp),
      cmocka_unit_test(golden_two_outputs),     cmocka_unit_test(exec_is_inside_library),
      cmocka_unit_test(write_round_trip),       cmocka_unit_test(truncated_everywhere),
      cmocka_unit_test(trailing_bytes),         cmocka_unit_test(wrong_generation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
