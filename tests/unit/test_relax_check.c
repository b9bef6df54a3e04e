/* Relax VM executables built by hand (through ferry_relax_exec_write, then
 * parsed back): the validator's every refusal, naming the function and the
 * instruction, and the disassembly of the instructions the real models do
 * not use (If, Goto, f[...]).  Parser ceilings: test_relax_limits.c. */
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

static void basic_is_valid(void **state) {
  (void)state;
  fx f;
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  expect_validate(&f, 0, NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_FFI);
  expect_validate(&f, 0, NULL);
}

#define MAIN0 "function 'main' (#0), instruction 0 (pc 0): "

static void unknown_opcode(void **state) {
  (void)state;
  fx f;
  for (int64_t op = -1; op <= 9; op += 10) {
    fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
    f.data[0] = op == -1 ? 0 : op; /* 0 and 9 are no opcodes */
    expect_validate(&f, FERRY_EPROTO, MAIN0, "unknown opcode", NULL);
  }
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[f.off[2]] = 5; /* helper's Ret */
  expect_validate(&f, FERRY_EPROTO, "function 'helper' (#3), instruction 0 (pc 2)",
                  "unknown opcode", NULL);
}

static void registers_out_of_range(void **state) {
  (void)state;
  fx f;
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[1] = 3; /* dst %3 with 3 registers */
  expect_validate(&f, FERRY_EPROTO, MAIN0, "destination %3 not below the frame size 3", NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[1] = FERRY_RELAX_REG_VM;
  expect_validate(&f, FERRY_EPROTO, MAIN0, "destination", NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[1] = -1;
  expect_validate(&f, FERRY_EPROTO, MAIN0, "destination %-1", NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[4] = REG(3);
  expect_validate(&f, FERRY_EPROTO, MAIN0, "argument 0 register %3 not below", NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[4] = REG(-2);
  expect_validate(&f, FERRY_EPROTO, MAIN0, "argument 0 register %-2", NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[4] = REG(FERRY_RELAX_REG_VOID + 2); /* past the two special registers */
  expect_validate(&f, FERRY_EPROTO, MAIN0, "argument 0 register", NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[6] = 3; /* ret %3 */
  expect_validate(&f, FERRY_EPROTO, "function 'main' (#0), instruction 1 (pc 1)",
                  "Ret result register %3", NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[6] = FERRY_RELAX_REG_VM; /* the VM context must not escape */
  expect_validate(&f, FERRY_EPROTO, "instruction 1 (pc 1)", "Ret result is %vm", NULL);
  /* The special registers as arguments are fine: %vm and %void. */
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[4] = REG(FERRY_RELAX_REG_VM);
  expect_validate(&f, 0, NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[4] = REG(FERRY_RELAX_REG_VOID);
  f.data[1] = FERRY_RELAX_REG_VOID;
  expect_validate(&f, 0, NULL);
}

static void constants_and_functions_out_of_range(void **state) {
  (void)state;
  fx f;
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[4] = CONST(1); /* one constant */
  expect_validate(&f, FERRY_EPROTO, MAIN0, "constant c[1] not below the pool size 1", NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[4] = CONST(-1);
  expect_validate(&f, FERRY_EPROTO, MAIN0, "c[-1]", NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[4] = FUNC(4);
  expect_validate(&f, FERRY_EPROTO, MAIN0, "function index 4 not below 4", NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[4] = ferry_relax_arg_make(4, 0);
  expect_validate(&f, FERRY_EPROTO, MAIN0, "unknown argument kind 4", NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[4] = ferry_relax_arg_make(0xFF, 0);
  expect_validate(&f, FERRY_EPROTO, MAIN0, "unknown argument kind 255", NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[2] = 4; /* callee */
  expect_validate(&f, FERRY_EPROTO, MAIN0, "Call of function index 4, not below 4", NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[2] = -1;
  expect_validate(&f, FERRY_EPROTO, MAIN0, "function index -1", NULL);
  /* In range, immediates of any value and constants / functions pass. */
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[4] = IMM(-((INT64_C(1) << 55) - 1));
  expect_validate(&f, 0, NULL);
}

static void call_arity(void **state) {
  (void)state;
  fx f;
  /* main calls helper (1 parameter) with 2 arguments. */
  fx_init(&f, FERRY_RELAX_TAGS_CLASSIC);
  EMIT(&f, FERRY_RELAX_OP_CALL, 1, 3, 2, REG(0), REG(0));
  EMIT(&f, FERRY_RELAX_OP_RET, 1);
  EMIT(&f, FERRY_RELAX_OP_RET, 0);
  f.funcs[0].end_instr = 2;
  f.funcs[3].start_instr = 2;
  f.funcs[3].end_instr = 3;
  expect_validate(&f, FERRY_EPROTO, MAIN0, "Call of 'helper' with 2 arguments; it takes 1", NULL);
  /* A negative or oversized argument count. */
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[3] = -1;
  expect_validate(&f, FERRY_EPROTO, MAIN0, "argument count out of range", NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[3] = FERRY_RELAX_MAX_CALL_ARGS + 1;
  expect_validate(&f, FERRY_EPROTO, MAIN0, "argument count out of range", NULL);
  /* A count that runs into the next instruction. */
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.data[3] = 2;
  expect_validate(&f, FERRY_EPROTO, MAIN0, "run into the next instruction", NULL);
}

/* main(x): %1 = read_if_cond(%0); If %1, 3; %2 = copy(c[0]); goto 2;
 * %2 = copy(i-5, f[helper]); ret %2.  helper(y): ret %0. */
static void fx_branches(fx *f) {
  fx_init(f, FERRY_RELAX_TAGS_CLASSIC);
  EMIT(f, FERRY_RELAX_OP_CALL, 1, 2, 1, REG(0));
  EMIT(f, FERRY_RELAX_OP_IF, 1, 3);
  EMIT(f, FERRY_RELAX_OP_CALL, 2, 1, 1, CONST(0));
  EMIT(f, FERRY_RELAX_OP_GOTO, 2);
  EMIT(f, FERRY_RELAX_OP_CALL, 2, 1, 2, IMM(-5), FUNC(3));
  EMIT(f, FERRY_RELAX_OP_RET, 2);
  EMIT(f, FERRY_RELAX_OP_RET, 0);
  f->funcs[0].end_instr = 6;
  f->funcs[3].start_instr = 6;
  f->funcs[3].end_instr = 7;
}

static void jumps(void **state) {
  (void)state;
  fx f;
  fx_branches(&f);
  expect_validate(&f, 0, NULL);
  static const int64_t bad_if[] = {1, 0, -1, 5, 6};
  for (size_t i = 0; i < sizeof bad_if / sizeof *bad_if; i++) {
    fx_branches(&f);
    f.data[f.off[1] + 2] = bad_if[i]; /* 5: pc 6, past main's end */
    expect_validate(&f, FERRY_EPROTO, "function 'main' (#0), instruction 1 (pc 1)",
                    "If false offset", NULL);
  }
  fx_branches(&f);
  f.data[f.off[1] + 1] = FERRY_RELAX_REG_VOID;
  expect_validate(&f, FERRY_EPROTO, "instruction 1 (pc 1)", "If condition is %void", NULL);
  fx_branches(&f);
  f.data[f.off[1] + 1] = FERRY_RELAX_REG_VM;
  expect_validate(&f, FERRY_EPROTO, "instruction 1 (pc 1)", "If condition is %vm", NULL);
  fx_branches(&f);
  f.data[f.off[1] + 1] = 7;
  expect_validate(&f, FERRY_EPROTO, "instruction 1 (pc 1)", "If condition register %7", NULL);
  static const int64_t bad_goto[] = {0, -1, -3, 3, 100};
  for (size_t i = 0; i < sizeof bad_goto / sizeof *bad_goto; i++) {
    fx_branches(&f);
    f.data[f.off[3] + 1] = bad_goto[i];
    expect_validate(&f, FERRY_EPROTO, "function 'main' (#0), instruction 3 (pc 3)",
                    "Goto offset", NULL);
  }
  /* The last instruction must be Ret: cut main before its ret. */
  fx_branches(&f);
  f.funcs[0].end_instr = 5;
  f.data[f.off[3] + 1] = 1;
  f.data[f.off[1] + 2] = 2;
  expect_validate(&f, FERRY_EPROTO, "instruction 4 (pc 4)", "must be Ret", NULL);
}

static void branches_text(void **state) {
  (void)state;
  fx f;
  fx_branches(&f);
  f.funcs[2].kind = FERRY_RELAX_FUNC_PACKED;
  ferry_relax_exec x;
  char err[FERRY_RELAX_ERR_MAX];
  assert_int_equal(fx_parse(&f, FERRY_RELAX_TAGS_CLASSIC, &x, err), 0);
  ferry_buf out;
  ferry_buf_init(&out, 1 << 16);
  assert_int_equal(ferry_relax_exec_text(&x, &out), 0);
  /* TVM's widths: setw(6) mnemonic, setw(16) callee, setw(12) arguments. */
  static const char want[] =
      "@main:\n"
      "  call  vm.builtin.read_if_cond in: %0           dst: %1\n"
      "  If    %1, 3\n"
      "  call  vm.builtin.copy  in: c[0]         dst: %2\n"
      "  goto  2\n"
      "  call  vm.builtin.copy  in: i-5, f[helper] dst: %2\n"
      "  ret   %2\n"
      "\n"
      "@vm.builtin.copy packed_func;\n"
      "\n"
      "@vm.builtin.read_if_cond packed_func;\n"
      "\n"
      "@helper:\n"
      "  ret   %0\n"
      "\n";
  assert_int_equal(out.len, sizeof want - 1);
  assert_memory_equal(out.data, want, sizeof want - 1);
  ferry_buf_close(&out);
  ferry_relax_exec_close(&x);
  ferry_buf_close(&f.bytes);
}

/* Constants of every kind and what `stats` prints for them. */
static void stats_of_every_kind(void **state) {
  (void)state;
  fx f;
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  uint8_t dims[16];
  put_le64(dims, 2);
  put_le64(dims + 8, (uint64_t)-1);
  static const uint8_t scalar[] = {0x3F, 0xA1, 0xB4, 0x96, 0xF0, 0x40, 0x5E, 0xDD, 0, 0, 0, 0,
                                   0,    0,    0,    0,    1,    0,    0,    0,    0, 0, 0, 0,
                                   0,    0,    0,    0,    2,    32,   1,    0,    4, 0, 0, 0,
                                   0,    0,    0,    0,    0,    0,    0x80, 0x3F};
  f.consts[1] = (ferry_relax_const){.kind = FERRY_RELAX_CONST_SHAPE, .tag = 2,
                                    .u.raw = {dims, 2}};
  f.consts[2] = (ferry_relax_const){.kind = FERRY_RELAX_CONST_SHAPE, .tag = 2, .u.raw = {dims, 0}};
  f.consts[3] = (ferry_relax_const){.kind = FERRY_RELAX_CONST_INT, .tag = 4, .u.i = -7};
  f.consts[4] = (ferry_relax_const){.kind = FERRY_RELAX_CONST_FLOAT, .tag = 5, .u.f = 0.5};
  f.consts[5] = (ferry_relax_const){.kind = FERRY_RELAX_CONST_TENSOR, .tag = 0,
                                    .u.raw = {scalar, sizeof scalar}};
  f.consts[6] = (ferry_relax_const){.kind = FERRY_RELAX_CONST_DTYPE, .tag = 1,
                                    .u.dtype = {kDLUInt, 1, 1}};
  f.consts[7] = (ferry_relax_const){.kind = FERRY_RELAX_CONST_DTYPE, .tag = 1,
                                    .u.dtype = {kDLOpaqueHandle, 0, 0}};
  f.x.nconsts = 8;
  f.consts[0].u.dtype = (DLDataType){kDLInt, 8, 4};
  ferry_relax_exec x;
  char err[FERRY_RELAX_ERR_MAX];
  assert_int_equal(fx_parse(&f, FERRY_RELAX_TAGS_CLASSIC, &x, err), 0);
  assert_int_equal(ferry_relax_exec_validate(&x, err, sizeof err), 0);
  ferry_buf out;
  ferry_buf_init(&out, 1 << 16);
  assert_int_equal(ferry_relax_exec_stats(&x, &out), 0);
  /* An empty Shape prints as TVM's seekp(-2) leaves it: "shapetupl]". */
  static const char want[] =
      "Relax VM executable statistics:\n"
      "  Constant pool (# 8): [int8x4, shapetuple[2, -1], shapetupl], -7, 0.5, scalar, bool, "
      "void]\n"
      "  Globals (#4): [main, vm.builtin.copy, vm.builtin.read_if_cond, helper]\n";
  assert_int_equal(out.len, sizeof want - 1);
  assert_memory_equal(out.data, want, sizeof want - 1);
  ferry_buf_close(&out);
  /* And the writer gives the same bytes back. */
  ferry_buf_init(&out, 1 << 16);
  assert_int_equal(ferry_relax_exec_write(&x, &out), 0);
  assert_int_equal(out.len, f.bytes.len);
  assert_memory_equal(out.data, f.bytes.data, out.len);
  ferry_buf_close(&out);
  ferry_relax_exec_close(&x);
  ferry_buf_close(&f.bytes);
}

static void layout(void **state) {
  (void)state;
  fx f;
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.off[1] = 0; /* not above the one before */
  expect_validate(&f, FERRY_EPROTO, "instruction 1: offset 0 is not above", NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.off[2] = (int64_t)f.x.nwords; /* outside */
  expect_validate(&f, FERRY_EPROTO, "instruction 2: offset", "outside the", NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.off[0] = -8;
  expect_validate(&f, FERRY_EPROTO, "instruction 0: offset -8", NULL);
  /* The last instruction's words must end inside the code. */
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.x.nwords--; /* cut helper's "ret %0" to one word */
  expect_validate(&f, FERRY_EPROTO, "function 'helper' (#3), instruction 0 (pc 2)",
                  "past the code", NULL);
}

static void function_entries(void **state) {
  (void)state;
  fx f;
  struct {
    int field;
    int64_t value;
    const char *frag;
  } cases[] = {
      {0, -1, "instructions [-1, 2)"}, {1, 4, "instructions [0, 4) not inside the 3"},
      {1, 0, "instructions [0, 0)"},   {2, FERRY_RELAX_MAX_REGS + 1, "register file size"},
      {2, -1, "register file size -1"}, {3, 2, "2 parameters but 1 parameter names"},
      {3, -2, "parameter count -2"},   {4, 7, "unknown kind 7"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
    ferry_relax_func *m = &f.funcs[0];
    switch (cases[i].field) {
    case 0: m->start_instr = cases[i].value; break;
    case 1: m->end_instr = cases[i].value; break;
    case 2: m->register_file_size = cases[i].value; break;
    case 3: m->num_args = cases[i].value; break;
    case 4: m->kind = (int32_t)cases[i].value; break;
    }
    expect_validate(&f, FERRY_EPROTO, "function 'main' (#0)", cases[i].frag, NULL);
  }
  /* The register file at its ceiling. */
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.funcs[0].register_file_size = FERRY_RELAX_MAX_REGS;
  f.data[1] = FERRY_RELAX_MAX_REGS - 1;
  f.data[6] = FERRY_RELAX_MAX_REGS - 1;
  expect_validate(&f, 0, NULL);
  /* More parameters than registers. */
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.funcs[3].register_file_size = 0;
  expect_validate(&f, FERRY_EPROTO, "function 'helper' (#3): 1 parameters do not fit 0", NULL);
  /* A packed function with parameter names; an empty name; a duplicate. */
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.funcs[1].nparams = 1;
  f.funcs[1].params = &f.params[0];
  expect_validate(&f, FERRY_EPROTO, "'vm.builtin.copy' (#1): a packed function with parameter",
                  NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.funcs[2].name = S("");
  expect_validate(&f, FERRY_EPROTO, "function #2 has an empty name", NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.funcs[2].name = S("main");
  expect_validate(&f, FERRY_EPROTO, "function name 'main' appears twice (#0 and #2)", NULL);
  /* Parameters at the ceiling pass; a compiled-mode entry is checked too. */
  fx_basic(&f, FERRY_RELAX_TAGS_CLASSIC);
  f.funcs[2].kind = FERRY_RELAX_FUNC_VMTIR;
  f.funcs[2].num_args = -1;
  expect_validate(&f, FERRY_EPROTO, "(#2): parameter count -1", NULL);
}

static void scope_section(void **state) {
  (void)state;
  fx f;
  fx_basic(&f, FERRY_RELAX_TAGS_FFI);
  f.scopes[0] = (ferry_relax_scope){0, S("global.texture")};
  f.x.nscopes = 1;
  expect_validate(&f, 0, NULL);
  fx_basic(&f, FERRY_RELAX_TAGS_FFI);
  f.scopes[0] = (ferry_relax_scope){1, S("global")};
  f.x.nscopes = 1;
  expect_validate(&f, FERRY_EPROTO, "memory scope 0 names constant 1, not below the pool size 1",
                  NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(basic_is_valid),
      cmocka_unit_test(unknown_opcode),
      cmocka_unit_test(registers_out_of_range),
      cmocka_unit_test(constants_and_functions_out_of_range),
      cmocka_unit_test(call_arity),
      cmocka_unit_test(jumps),
      cmocka_unit_test(branches_text),
      cmocka_unit_test(stats_of_every_kind),
      cmocka_unit_test(layout),
      cmocka_unit_test(function_entries),
      cmocka_unit_test(scope_section),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
