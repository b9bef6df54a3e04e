/* The Relax program description (fixture generator's front end): the two
 * real models written as text in tests/models/relax/ (.rvm files) assemble to the
 * bytes TVM v0.20 and v0.26 wrote; labels, jumps and every argument form;
 * and an error naming the line for each kind of bad description. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire/params.h"
#include "wire/relax_exec_asm.h"
#include "test_slurp.h"

#define GOLDEN FERRY_GOLDEN_DIR "/relax/"
#define MODELS FERRY_GOLDEN_DIR "/../models/relax/"

static void expect_bytes(const char *rvm, enum ferry_relax_gen gen,
                         const ferry_relax_asm_tensor *t, size_t nt, const char *golden) {
  size_t tn, gn;
  char *text = (char *)slurp(rvm, &tn);
  uint8_t *want = slurp(golden, &gn);
  ferry_buf out;
  ferry_buf_init(&out, 1 << 24);
  char err[FERRY_RELAX_ERR_MAX];
  int rc = ferry_relax_asm(text, tn, gen, t, nt, &out, err, sizeof err);
  if (rc)
    fail_msg("%s: %s", rvm, err);
  assert_int_equal(out.len, gn);
  assert_memory_equal(out.data, want, gn);
  ferry_buf_close(&out);
  free(want);
  free(text);
}

static void two_outputs_from_text(void **state) {
  (void)state;
  expect_bytes(MODELS "two_outputs.rvm", FERRY_RELAX_GEN_V020, NULL, 0,
               GOLDEN "v0.20/two_outputs.exec");
  expect_bytes(MODELS "two_outputs.rvm", FERRY_RELAX_GEN_V026, NULL, 0,
               GOLDEN "v0.26/two_outputs.exec");
}

static void mlp_from_text(void **state) {
  (void)state;
  /* The weights, taken from the real executable's constants. */
  size_t n;
  uint8_t *file = slurp(GOLDEN "v0.20/mlp.exec", &n);
  ferry_relax_exec x;
  char err[FERRY_RELAX_ERR_MAX];
  assert_int_equal(ferry_relax_exec_parse(&x, file, n, FERRY_RELAX_TAGS_CLASSIC, err, sizeof err),
                   0);
  static const size_t idx[3] = {7, 10, 14};
  ferry_params_tensor pt[3];
  DLTensor d[3];
  for (int i = 0; i < 3; i++) {
    ferry_stream s;
    ferry_stream_init(&s, x.consts[idx[i]].u.raw.p, x.consts[idx[i]].u.raw.n);
    assert_int_equal(ferry_ndarray_decode(&s, &pt[i]), 0);
    d[i] = (DLTensor){.data = (void *)pt[i].data, .device = {kDLCPU, 0}, .ndim = pt[i].ndim,
                      .dtype = pt[i].dtype, .shape = pt[i].shape};
  }
  const ferry_relax_asm_tensor t[3] = {{"w1", &d[0]}, {"b1", &d[1]}, {"w2", &d[2]}};
  expect_bytes(MODELS "mlp.rvm", FERRY_RELAX_GEN_V020, t, 3, GOLDEN "v0.20/mlp.exec");
  expect_bytes(MODELS "mlp.rvm", FERRY_RELAX_GEN_V026, t, 3, GOLDEN "v0.26/mlp.exec");
  ferry_relax_exec_close(&x);
  free(file);
}

static const char branches[] =
    "# If / else with a VM-to-VM call\n"
    "func main(c)\n"
    "  call vm.builtin.read_if_cond %0 -> %1   # a comment\n"
    "  if %1, else\n"
    "  call twice %0 -> %2\n"
    "  goto done\n"
    "else:\n"
    "  call vm.builtin.copy 1152921504606846976, -3, float(0.25), int64, bool, float16x4, "
    "\"a \\\"q\\\" \\\\\", shape(), @twice -> %2\n"
    "done:\n"
    "  ret %2\n"
    "\n"
    "func twice(y)\n"
    "\tcall add %0, %0 -> %1\n"
    "  ret %1";

static void labels_and_arguments(void **state) {
  (void)state;
  ferry_buf out;
  ferry_buf_init(&out, 1 << 20);
  char err[FERRY_RELAX_ERR_MAX];
  int rc = ferry_relax_asm(branches, strlen(branches), FERRY_RELAX_GEN_V026, NULL, 0, &out, err,
                           sizeof err);
  if (rc)
    fail_msg("%s", err);
  ferry_relax_exec x;
  assert_int_equal(ferry_relax_exec_parse(&x, out.data, out.len, FERRY_RELAX_TAGS_FFI, err,
                                          sizeof err),
                   0);
  ferry_buf text;
  ferry_buf_init(&text, 1 << 16);
  assert_int_equal(ferry_relax_exec_stats(&x, &text), 0);
  assert_int_equal(ferry_relax_exec_text(&x, &text), 0);
  static const char want[] =
      "Relax VM executable statistics:\n"
      "  Constant pool (# 7): [1152921504606846976, 0.25, int64, bool, float16x4, "
      "\"a \"q\" \\\", shapetupl]]\n" /* TVM's seekp(-2), twice */
      "  Globals (#5): [main, twice, vm.builtin.read_if_cond, vm.builtin.copy, add]\n"
      "@main:\n"
      "  call  vm.builtin.read_if_cond in: %0           dst: %1\n"
      "  If    %1, 3\n"
      "  call  twice            in: %0           dst: %2\n"
      "  goto  2\n"
      "  call  vm.builtin.copy  in: c[0], i-3, c[1], c[2], c[3], c[4], c[5], c[6], f[twice] "
      "dst: %2\n"
      "  ret   %2\n"
      "\n"
      "@twice:\n"
      "  call  add              in: %0, %0       dst: %1\n"
      "  ret   %1\n"
      "\n"
      "@vm.builtin.read_if_cond packed_func;\n"
      "\n"
      "@vm.builtin.copy packed_func;\n"
      "\n"
      "@add packed_func;\n"
      "\n";
  if (text.len != sizeof want - 1 || memcmp(text.data, want, text.len) != 0)
    fail_msg("got:\n%.*s", (int)text.len, (const char *)text.data);
  ferry_buf_close(&text);
  ferry_relax_exec_close(&x);
  ferry_buf_close(&out);
}

/* The text sits in a buffer of exactly its length, with no NUL after it,
 * so ASan sees a read (or a message quoting) past its end. */
static void expect_error(const char *text, int want, const char *frag) {
  ferry_buf out;
  ferry_buf_init(&out, 1 << 20);
  char err[FERRY_RELAX_ERR_MAX];
  size_t n = strlen(text);
  char *exact = malloc(n ? n : 1);
  assert_non_null(exact);
  memcpy(exact, text, n);
  int rc = ferry_relax_asm(exact, n, FERRY_RELAX_GEN_V020, NULL, 0, &out, err, sizeof err);
  free(exact);
  if (rc != want)
    fail_msg("\"%s\": rc %d, want %d (%s)", text, rc, want, err);
  if (strstr(err, frag) == NULL)
    fail_msg("\"%s\": message \"%s\" lacks \"%s\"", text, err, frag);
  assert_int_equal(out.len, 0);
  ferry_buf_close(&out);
}

static void errors_name_the_line(void **state) {
  (void)state;
  expect_error("", FERRY_EPROTO, "no func");
  expect_error("ret %0\nfunc main(x)\n", FERRY_EPROTO, "line 1: a statement before the first func");
  expect_error("func main(x)\n  jump %0\n", FERRY_EPROTO, "line 2: not a statement: \"jump\"");
  expect_error("func main(x)\n  ret %x\n", FERRY_EPROTO, "line 2: expected an integer");
  expect_error("func main(x)\n  ret 3\n", FERRY_EPROTO, "line 2: expected a register");
  expect_error("func main(x)\n  ret %0 %1\n", FERRY_EPROTO, "line 2: unexpected \"%1\"");
  expect_error("func main(x)\n  ret %0 %1", FERRY_EPROTO, "line 2: unexpected \"%1\"");
  expect_error("func main(x)\n  call f 5,", FERRY_EPROTO, "line 2: expected a name at \"\"");
  expect_error("func main(x\n", FERRY_EPROTO, "line 1: expected ')' after the parameters");
  expect_error("func main(x)\nfunc main(y)\n", FERRY_EINVAL, "line 2: cannot declare \"main\"");
  expect_error("func main(x)\n  call f \"abc\n  ret %0\n", FERRY_EPROTO,
               "line 2: unterminated string");
  expect_error("func main(x)\n  call f \"a\\n\"\n", FERRY_EPROTO, "line 2: only");
  expect_error("func main(x)\n  call f tensor(w)\n", FERRY_ENOTFOUND,
               "line 2: no tensor named \"w\"");
  expect_error("func main(x)\n  call f float32x\n", FERRY_EPROTO,
               "line 2: \"float32x\" is no argument");
  expect_error("func main(x)\n  call f float(abc)\n", FERRY_EPROTO, "line 2: bad float");
  expect_error("func main(x)\n  call f shape(1, 2\n", FERRY_EPROTO, "line 2: expected ')' after");
  expect_error("func main(x)\n  call f 99999999999999999999\n", FERRY_EPROTO,
               "line 2: expected an integer");
  expect_error("func main(x)\n  call f %0 -> 5\n", FERRY_EPROTO, "line 2: expected a register");
  expect_error("func main(x)\n  goto nowhere\n  ret %0\n", FERRY_ENOTFOUND,
               "line 2: no label \"nowhere\" in this function");
  expect_error("func main(x)\na:\na:\n  ret %0\n", FERRY_EDUPLICATE, "line 3: label \"a\" twice");
  expect_error("func main(x)\n  ret %2000000\n", FERRY_EPROTO, "line 2: register %2000000 out");
  /* What only the validator sees comes through with its message. */
  expect_error("func main(x)\n  if %0, next\nnext:\n  ret %0\n", FERRY_EPROTO,
               "function 'main' (#0), instruction 0 (pc 0): If false offset 1");
  char nul[] = "func main(x)\n  ret %0 \0\n";
  ferry_buf out;
  ferry_buf_init(&out, 1 << 10);
  char err[FERRY_RELAX_ERR_MAX];
  assert_int_equal(ferry_relax_asm(nul, sizeof nul - 1, FERRY_RELAX_GEN_V020, NULL, 0, &out, err,
                                   sizeof err),
                   FERRY_EPROTO);
  assert_non_null(strstr(err, "line 2: a NUL byte"));
  size_t big = FERRY_RELAX_ASM_MAX_LINE + 20;
  char *line = malloc(big);
  memcpy(line, "func main(x)\n", 13);
  memset(line + 13, ' ', big - 13);
  assert_int_equal(ferry_relax_asm(line, big, FERRY_RELAX_GEN_V020, NULL, 0, &out, err,
                                   sizeof err),
                   FERRY_ETOOBIG);
  assert_non_null(strstr(err, "line 2: longer than"));
  free(line);
  ferry_buf_close(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(two_outputs_from_text),
      cmocka_unit_test(mlp_from_text),
      cmocka_unit_test(labels_and_arguments),
      cmocka_unit_test(errors_name_the_line),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
