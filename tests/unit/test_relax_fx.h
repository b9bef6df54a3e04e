/* Hand-built Relax VM executables for the unit tests (included by
 * test_relax_check.c and test_relax_limits.c): a small program held in
 * arrays that the tests change in one place, written with
 * ferry_relax_exec_write and parsed back.  Functions are static inline so
 * a file that uses only some of them builds without warnings.  Include it
 * after cmocka.h and wire/relax_exec.h. */
#ifndef FERRY_TEST_RELAX_FX_H
#define FERRY_TEST_RELAX_FX_H

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

static inline void fx_init(fx *f, enum ferry_relax_tags tags) {
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

static inline void emit(fx *f, const int64_t *w, size_t n) {
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
static inline void fx_basic(fx *f, enum ferry_relax_tags tags) {
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
static inline int fx_parse(fx *f, enum ferry_relax_tags tags, ferry_relax_exec *out, char *err) {
  f->bytes.len = 0;
  assert_int_equal(ferry_relax_exec_write(&f->x, &f->bytes), 0);
  return ferry_relax_exec_parse(out, f->bytes.data, f->bytes.len, tags, err,
                                FERRY_RELAX_ERR_MAX);
}

/* Parses (which must succeed) and validates: expect rc and, if given, a
 * message containing each of the NULL-terminated fragments. */
static inline void expect_validate(fx *f, int want, ...) {
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

static inline void expect_parse(fx *f, enum ferry_relax_tags tags, int want, const char *frag) {
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


#endif
