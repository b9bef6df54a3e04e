/* Relax VM executables built by hand (through ferry_relax_exec_write, then
 * parsed back): the validator's every refusal, naming the function and the
 * instruction; the parser at and past every ceiling, with lying counts and
 * with constant tags of the wrong generation; the disassembly of the
 * instructions the real models do not use (If, Goto, f[...]). */
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

#define FERRY_NDARRAY_MAGIC_FOR_TEST FERRY_NDARRAY_MAGIC

#define S(z) ((ferry_relax_str){(z), sizeof(z) - 1})
#define REG(v) ferry_relax_arg_make(FERRY_RELAX_ARG_REG, (v))
#define IMM(v) ferry_relax_arg_make(FERRY_RELAX_ARG_IMM, (v))
#define CONST(v) ferry_relax_arg_make(FERRY_RELAX_ARG_CONST, (v))
#define FUNC(v) ferry_relax_arg_make(FERRY_RELAX_ARG_FUNC, (v))

/* A small executable: main(x) (VM, 3 registers), then packed functions
 * "vm.builtin.copy" and "vm.builtin.read_if_cond", then helper(y) (VM, 1
 * register); constant 0 is float32.  Code is appended with emit(). */
typedef struct fx {
  ferry_relax_exec x;
  ferry_relax_func funcs[8];
  ferry_relax_str params[8];
  ferry_relax_const consts[8];
  ferry_relax_scope scopes[4];
  int64_t off[64];
  int64_t data[1024];
  ferry_buf bytes;
} fx;

static void fx_init(fx *f, enum ferry_relax_tags tags) {
  memset(f, 0, sizeof *f);
  f->x.magic = tags == FERRY_RELAX_TAGS_FFI ? FERRY_RELAX_MAGIC_V2 : FERRY_RELAX_MAGIC_V1;
  f->x.version = S("0.14");
  f->params[0] = S("x");
  f->params[1] = S("y");
  f->funcs[0] = (ferry_relax_func){.kind = FERRY_RELAX_FUNC_VM, .name = S("main"),
                                   .num_args = 1, .register_file_size = 3, .nparams = 1,
                                   .params = &f->params[0]};
  f->funcs[1] = (ferry_relax_func){.kind = FERRY_RELAX_FUNC_PACKED, .name = S("vm.builtin.copy"),
                                   .num_args = -2};
  f->funcs[2] = (ferry_relax_func){.kind = FERRY_RELAX_FUNC_PACKED,
                                   .name = S("vm.builtin.read_if_cond"), .num_args = -2};
  f->funcs[3] = (ferry_relax_func){.kind = FERRY_RELAX_FUNC_VM, .name = S("helper"),
                                   .num_args = 1, .register_file_size = 1, .nparams = 1,
                                   .params = &f->params[1]};
  f->x.funcs = f->funcs;
  f->x.nfuncs = 4;
  f->consts[0] = (ferry_relax_const){.kind = FERRY_RELAX_CONST_DTYPE,
                                     .tag = tags == FERRY_RELAX_TAGS_FFI ? 5 : 1,
                                     .u.dtype = {kDLFloat, 32, 1}};
  f->x.consts = f->consts;
  f->x.nconsts = 1;
  f->x.scopes = f->scopes;
  f->x.instr_offset = f->off;
  f->x.instr_data = f->data;
  ferry_buf_init(&f->bytes, 64u << 20);
}

static void emit(fx *f, const int64_t *w, size_t n) {
  assert_true(f->x.ninstrs < 64 && f->x.nwords + n <= 1024);
  f->off[f->x.ninstrs++] = (int64_t)f->x.nwords;
  memcpy(f->data + f->x.nwords, w, n * sizeof *w);
  f->x.nwords += n;
}
#define EMIT(f, ...)                                                                     \
  do {                                                                                   \
    const int64_t w_[] = {__VA_ARGS__};                                                  \
    emit((f), w_, sizeof w_ / sizeof w_[0]);                                             \
  } while (0)

/* main: %1 = copy(%0); ret %1.  helper: ret %0. */
static void fx_basic(fx *f, enum ferry_relax_tags tags) {
  fx_init(f, tags);
  EMIT(f, FERRY_RELAX_OP_CALL, 1, 1, 1, REG(0));
  EMIT(f, FERRY_RELAX_OP_RET, 1);
  f->funcs[0].start_instr = 0;
  f->funcs[0].end_instr = 2;
  EMIT(f, FERRY_RELAX_OP_RET, 0);
  f->funcs[3].start_instr = 2;
  f->funcs[3].end_instr = 3;
}

/* Writes, parses with the table `tags`; returns the parse result (the
 * parsed exec in *out when 0). */
static int fx_parse(fx *f, enum ferry_relax_tags tags, ferry_relax_exec *out, char *err) {
  f->bytes.len = 0;
  assert_int_equal(ferry_relax_exec_write(&f->x, &f->bytes), 0);
  return ferry_relax_exec_parse(out, f->bytes.data, f->bytes.len, tags, err,
                                FERRY_RELAX_ERR_MAX);
}

/* Parses (which must succeed) and validates: expect rc and, if given, a
 * message containing each of the NULL-terminated fragments. */
static void expect_validate(fx *f, int want, ...) {
  ferry_relax_exec x;
  char err[FERRY_RELAX_ERR_MAX];
  enum ferry_relax_tags tags =
      f->x.magic == FERRY_RELAX_MAGIC_V2 ? FERRY_RELAX_TAGS_FFI : FERRY_RELAX_TAGS_CLASSIC;
  int rc = fx_parse(f, tags, &x, err);
  if (rc)
    fail_msg("parse: %s", err);
  rc = ferry_relax_exec_validate(&x, err, sizeof err);
  if (rc != want)
    fail_msg("validate: rc %d, want %d: %s", rc, want, err);
  va_list ap;
  va_start(ap, want);
  for (const char *frag; (frag = va_arg(ap, const char *)) != NULL;)
    if (strstr(err, frag) == NULL)
      fail_msg("message \"%s\" lacks \"%s\"", err, frag);
  va_end(ap);
  ferry_relax_exec_close(&x);
  ferry_buf_close(&f->bytes);
}

static void expect_parse(fx *f, enum ferry_relax_tags tags, int want, const char *frag) {
  ferry_relax_exec x;
  char err[FERRY_RELAX_ERR_MAX];
  int rc = fx_parse(f, tags, &x, err);
  if (rc != want)
    fail_msg("parse: rc %d, want %d: %s", rc, want, err);
  if (frag && strstr(err, frag) == NULL)
    fail_msg("message \"%s\" lacks \"%s\"", err, frag);
  if (rc == 0)
    ferry_relax_exec_close(&x);
  ferry_buf_close(&f->bytes);
}

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
  put_le64(t, FERRY_NDARRAY_MAGIC_FOR_TEST);
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
      cmocka_unit_test(header_limits),
      cmocka_unit_test(parameter_limit),
      cmocka_unit_test(lying_counts),
      cmocka_unit_test(constant_limits),
      cmocka_unit_test(tag_tables),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
