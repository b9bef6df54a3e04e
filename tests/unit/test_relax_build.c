/* The executable builder (fixture writer's back end): the two real models,
 * described instruction by instruction as TVM's .txt shows them, must come
 * out byte for byte as TVM v0.20 and v0.26 wrote them; and the builder's
 * own refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire/params.h"
#include "wire/relax_exec_build.h"
#include "test_slurp.h"

#define GOLDEN FERRY_GOLDEN_DIR "/relax/"

/* Argument lists are built one statement at a time: C leaves the order of
 * an initialiser list's evaluation open, and the order of constants in the
 * pool is the order of first use. */
typedef struct args {
  int64_t w[16];
  size_t n;
} args;
#define A(v) (a.w[a.n++] = (v))
#define CALL(name, dst) assert_int_equal(ferry_relax_build_call(b, (name), (dst), a.n, a.w), 0)
#define R(r) ferry_relax_build_reg(b, (r))
#define I(v) ferry_relax_build_int(b, (v))
#define VOID FERRY_RELAX_REG_VOID

static const DLDataType f32 = {kDLFloat, 32, 1}, u8 = {kDLUInt, 8, 1};

/* vm.builtin.null_value() into reg (TVM's kill_object). */
static void kill(ferry_relax_builder *b, int64_t reg) {
  assert_int_equal(ferry_relax_build_call(b, "vm.builtin.null_value", reg, 0, NULL), 0);
}

/* check_tensor_info + match_shape of parameter %0 with a 2-d static shape. */
static void check_param(ferry_relax_builder *b, const char *err_ctx, int64_t d0, int64_t d1) {
  args a = {.n = 0};
  A(R(0)), A(I(2)), A(ferry_relax_build_dtype(b, f32)), A(ferry_relax_build_str(b, err_ctx));
  CALL("vm.builtin.check_tensor_info", VOID);
  a.n = 0;
  A(R(0)), A(R(VOID)), A(I(2)), A(I(0)), A(I(d0)), A(I(0)), A(I(d1));
  A(ferry_relax_build_str(b, err_ctx));
  CALL("vm.builtin.match_shape", VOID);
}

/* %dst = alloc_storage(%vm, shape[nbytes], 0, uint8, "global") */
static void storage(ferry_relax_builder *b, int64_t dst, int64_t nbytes) {
  args a = {.n = 0};
  A(R(FERRY_RELAX_REG_VM)), A(ferry_relax_build_shape(b, 1, &nbytes)), A(I(0));
  A(ferry_relax_build_dtype(b, u8)), A(ferry_relax_build_str(b, "global"));
  CALL("vm.builtin.alloc_storage", dst);
}

/* %dst = alloc_tensor(%st, 0, shape, float32) */
static void tensor(ferry_relax_builder *b, int64_t dst, int64_t st, int64_t d0, int64_t d1) {
  args a = {.n = 0};
  int64_t dims[2] = {d0, d1};
  A(R(st)), A(I(0)), A(ferry_relax_build_shape(b, 2, dims)), A(ferry_relax_build_dtype(b, f32));
  CALL("vm.builtin.alloc_tensor", dst);
}

static void build_two_outputs(ferry_relax_builder *b) {
  const char *params[1] = {"x"};
  int64_t main_fn = ferry_relax_build_decl(b, "main", 1, params);
  assert_int_equal(main_fn, 0);
  assert_int_equal(ferry_relax_build_begin(b, main_fn), 0);
  check_param(b,
              "ErrorContext(fn=main, loc=param[0], param=x, annotation=R.Tensor((3, 4), "
              "dtype=\"float32\")) ",
              3, 4);
  storage(b, 1, 48);
  tensor(b, 2, 1, 3, 4);
  kill(b, 1);
  args a = {.n = 0};
  A(R(0)), A(R(2));
  CALL("add", VOID);
  storage(b, 3, 48);
  tensor(b, 4, 3, 3, 4);
  kill(b, 3);
  a.n = 0;
  A(R(0)), A(R(4));
  CALL("multiply", VOID);
  a.n = 0;
  A(R(2)), A(R(4));
  CALL("vm.builtin.make_tuple", 5);
  kill(b, 2);
  kill(b, 4);
  assert_int_equal(ferry_relax_build_ret(b, 5), 0);
  assert_int_equal(ferry_relax_build_end(b), 0);
}

/* The weights of the real MLP (tensor constants of its executable). */
typedef struct weights {
  uint8_t *file;
  ferry_relax_exec x;
  ferry_params_tensor t[3];
  DLTensor d[3];
} weights;

static void load_weights(weights *w) {
  size_t n;
  w->file = slurp(GOLDEN "v0.20/mlp.exec", &n);
  char err[FERRY_RELAX_ERR_MAX];
  assert_int_equal(ferry_relax_exec_parse(&w->x, w->file, n, FERRY_RELAX_TAGS_CLASSIC, err,
                                          sizeof err),
                   0);
  static const size_t idx[3] = {7, 10, 14};
  for (int i = 0; i < 3; i++) {
    ferry_stream s;
    ferry_stream_init(&s, w->x.consts[idx[i]].u.raw.p, w->x.consts[idx[i]].u.raw.n);
    assert_int_equal(ferry_ndarray_decode(&s, &w->t[i]), 0);
    w->d[i] = (DLTensor){.data = (void *)w->t[i].data, .device = {kDLCPU, 0},
                         .ndim = w->t[i].ndim, .dtype = w->t[i].dtype, .shape = w->t[i].shape};
  }
}

static void build_mlp(ferry_relax_builder *b, const weights *w) {
  const char *params[1] = {"x"};
  int64_t main_fn = ferry_relax_build_decl(b, "main", 1, params);
  assert_int_equal(ferry_relax_build_begin(b, main_fn), 0);
  check_param(b,
              "ErrorContext(fn=main, loc=param[0], param=x, annotation=R.Tensor((1, 64), "
              "dtype=\"float32\")) ",
              1, 64);
  storage(b, 1, 128);
  tensor(b, 2, 1, 1, 32);
  args a = {.n = 0};
  A(R(0)), A(ferry_relax_build_tensor(b, &w->d[0])), A(R(2));
  CALL("matmul", VOID);
  storage(b, 3, 128);
  tensor(b, 4, 3, 1, 32);
  a.n = 0;
  A(R(2)), A(ferry_relax_build_tensor(b, &w->d[1])), A(R(4));
  CALL("add", VOID);
  kill(b, 2);
  tensor(b, 5, 1, 1, 32);
  kill(b, 1);
  a.n = 0;
  A(R(4)), A(R(5));
  CALL("relu", VOID);
  kill(b, 4);
  tensor(b, 6, 3, 1, 10);
  kill(b, 3);
  a.n = 0;
  A(R(5)), A(ferry_relax_build_tensor(b, &w->d[2])), A(R(6));
  CALL("matmul1", VOID);
  kill(b, 5);
  storage(b, 7, 40);
  tensor(b, 8, 7, 1, 10);
  kill(b, 7);
  a.n = 0;
  A(R(6)), A(R(8));
  CALL("softmax", VOID);
  kill(b, 6);
  assert_int_equal(ferry_relax_build_ret(b, 8), 0);
  assert_int_equal(ferry_relax_build_end(b), 0);
}

static void expect_golden(ferry_relax_builder *b, const char *path) {
  ferry_buf out;
  ferry_buf_init(&out, 1 << 24);
  char err[FERRY_RELAX_ERR_MAX];
  int rc = ferry_relax_build_finish(b, &out, err, sizeof err);
  if (rc)
    fail_msg("finish: %s", err);
  size_t n;
  uint8_t *want = slurp(path, &n);
  assert_int_equal(out.len, n);
  assert_memory_equal(out.data, want, n);
  free(want);
  ferry_buf_close(&out);
}

static void two_outputs_both_generations(void **state) {
  (void)state;
  ferry_relax_builder b;
  ferry_relax_builder_init(&b, FERRY_RELAX_GEN_V020);
  build_two_outputs(&b);
  expect_golden(&b, GOLDEN "v0.20/two_outputs.exec");
  ferry_relax_builder_close(&b);
  ferry_relax_builder_init(&b, FERRY_RELAX_GEN_V026);
  build_two_outputs(&b);
  expect_golden(&b, GOLDEN "v0.26/two_outputs.exec");
  ferry_relax_builder_close(&b);
}

static void mlp_both_generations(void **state) {
  (void)state;
  weights w;
  load_weights(&w);
  ferry_relax_builder b;
  ferry_relax_builder_init(&b, FERRY_RELAX_GEN_V020);
  build_mlp(&b, &w);
  expect_golden(&b, GOLDEN "v0.20/mlp.exec");
  ferry_relax_builder_close(&b);
  ferry_relax_builder_init(&b, FERRY_RELAX_GEN_V026);
  build_mlp(&b, &w);
  expect_golden(&b, GOLDEN "v0.26/mlp.exec");
  ferry_relax_builder_close(&b);
  ferry_relax_exec_close(&w.x);
  free(w.file);
}

/* An If with both branches, a VM-to-VM call and a large int (a pooled
 * constant): what TVM's codegen emits for `if`, built with placeholders
 * that are patched once the targets are known. */
static void branches_and_vm_calls(void **state) {
  (void)state;
  ferry_relax_builder b_;
  ferry_relax_builder *b = &b_;
  ferry_relax_builder_init(b, FERRY_RELAX_GEN_V026);
  const char *p1[1] = {"c"}, *p2[1] = {"y"};
  int64_t main_fn = ferry_relax_build_decl(b, "main", 1, p1);
  int64_t twice = ferry_relax_build_decl(b, "twice", 1, p2);
  assert_int_equal(twice, 1);
  assert_int_equal(ferry_relax_build_begin(b, main_fn), 0);
  args a = {.n = 0};
  A(R(0));
  CALL("vm.builtin.read_if_cond", 1);
  int64_t at_if = ferry_relax_build_pc(b);
  assert_int_equal(ferry_relax_build_if(b, 1, 0), 0);
  a.n = 0;
  A(R(0));
  CALL("twice", 2);
  int64_t at_goto = ferry_relax_build_pc(b);
  assert_int_equal(ferry_relax_build_goto(b, 0), 0);
  int64_t at_else = ferry_relax_build_pc(b);
  a.n = 0;
  A(I(INT64_C(1) << 60));
  A(ferry_relax_build_func(b, "twice"));
  CALL("vm.builtin.copy", 2);
  int64_t at_join = ferry_relax_build_pc(b);
  assert_int_equal(ferry_relax_build_ret(b, 2), 0);
  assert_int_equal(ferry_relax_build_patch(b, at_if, at_else - at_if), 0);
  assert_int_equal(ferry_relax_build_patch(b, at_goto, at_join - at_goto), 0);
  assert_int_equal(ferry_relax_build_end(b), 0);
  assert_int_equal(ferry_relax_build_begin(b, twice), 0);
  a.n = 0;
  A(R(0)), A(R(0));
  CALL("add", 1);
  assert_int_equal(ferry_relax_build_ret(b, 1), 0);
  assert_int_equal(ferry_relax_build_end(b), 0);
  ferry_buf out;
  ferry_buf_init(&out, 1 << 20);
  char err[FERRY_RELAX_ERR_MAX];
  assert_int_equal(ferry_relax_build_finish(b, &out, err, sizeof err), 0);
  ferry_relax_exec x;
  assert_int_equal(ferry_relax_exec_parse(&x, out.data, out.len, FERRY_RELAX_TAGS_FFI, err,
                                          sizeof err),
                   0);
  assert_int_equal(ferry_relax_exec_validate(&x, err, sizeof err), 0);
  ferry_buf text;
  ferry_buf_init(&text, 1 << 16);
  assert_int_equal(ferry_relax_exec_stats(&x, &text), 0);
  assert_int_equal(ferry_relax_exec_text(&x, &text), 0);
  static const char want[] =
      "Relax VM executable statistics:\n"
      "  Constant pool (# 1): [1152921504606846976]\n"
      "  Globals (#5): [main, twice, vm.builtin.read_if_cond, vm.builtin.copy, add]\n"
      "@main:\n"
      "  call  vm.builtin.read_if_cond in: %0           dst: %1\n"
      "  If    %1, 3\n"
      "  call  twice            in: %0           dst: %2\n"
      "  goto  2\n"
      "  call  vm.builtin.copy  in: c[0], f[twice] dst: %2\n"
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
  assert_int_equal(text.len, sizeof want - 1);
  assert_memory_equal(text.data, want, sizeof want - 1);
  assert_int_equal(x.funcs[0].register_file_size, 3);
  assert_int_equal(x.funcs[1].register_file_size, 2);
  ferry_buf_close(&text);
  ferry_relax_exec_close(&x);
  ferry_buf_close(&out);
  ferry_relax_builder_close(b);
}

static void builder_refusals(void **state) {
  (void)state;
  ferry_relax_builder b;
  ferry_buf out;
  char err[FERRY_RELAX_ERR_MAX];
  const char *p[1] = {"x"};
  ferry_buf_init(&out, 1 << 16);
  /* A duplicate declaration; the error sticks. */
  ferry_relax_builder_init(&b, FERRY_RELAX_GEN_V020);
  assert_int_equal(ferry_relax_build_decl(&b, "main", 1, p), 0);
  assert_int_equal(ferry_relax_build_decl(&b, "main", 1, p), FERRY_EINVAL);
  assert_int_equal(ferry_relax_build_begin(&b, 0), FERRY_EINVAL);
  assert_int_equal(ferry_relax_build_finish(&b, &out, err, sizeof err), FERRY_EINVAL);
  assert_non_null(strstr(err, "relax builder: "));
  ferry_relax_builder_close(&b);
  /* An instruction outside a body; a body never ended. */
  ferry_relax_builder_init(&b, FERRY_RELAX_GEN_V020);
  assert_int_equal(ferry_relax_build_ret(&b, 0), FERRY_EINVAL);
  ferry_relax_builder_close(&b);
  ferry_relax_builder_init(&b, FERRY_RELAX_GEN_V020);
  assert_int_equal(ferry_relax_build_decl(&b, "main", 1, p), 0);
  assert_int_equal(ferry_relax_build_begin(&b, 0), 0);
  assert_int_equal(ferry_relax_build_ret(&b, 0), 0);
  assert_int_equal(ferry_relax_build_finish(&b, &out, err, sizeof err), FERRY_EINVAL);
  ferry_relax_builder_close(&b);
  /* What the validator refuses is refused at finish, with its message. */
  ferry_relax_builder_init(&b, FERRY_RELAX_GEN_V020);
  assert_int_equal(ferry_relax_build_decl(&b, "main", 1, p), 0);
  assert_int_equal(ferry_relax_build_begin(&b, 0), 0);
  assert_int_equal(ferry_relax_build_if(&b, 0, 1), 0);
  assert_int_equal(ferry_relax_build_ret(&b, 0), 0);
  assert_int_equal(ferry_relax_build_end(&b), 0);
  assert_int_equal(ferry_relax_build_finish(&b, &out, err, sizeof err), FERRY_EPROTO);
  assert_non_null(strstr(err, "function 'main' (#0), instruction 0 (pc 0): If false offset 1"));
  assert_int_equal(out.len, 0);
  /* Patching something that is not a jump. */
  assert_int_equal(ferry_relax_build_patch(&b, 1, 2), FERRY_EINVAL);
  ferry_relax_builder_close(&b);
  ferry_buf_close(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(two_outputs_both_generations),
      cmocka_unit_test(mlp_both_generations),
      cmocka_unit_test(branches_and_vm_calls),
      cmocka_unit_test(builder_refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
