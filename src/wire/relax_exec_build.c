/* Builder of Relax VM executables (contract in relax_exec_build.h).  Sizes
 * are bounded by the parser's ceilings, so whatever it builds, ferry can
 * read back.  Lookups of functions and constants are linear scans: O(n)
 * per use, fine for fixtures of a few hundred entries. */
#include "wire/relax_exec_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "wire/params.h"

#define IMM_MAX ((INT64_C(1) << 55) - 1)

void ferry_relax_builder_init(ferry_relax_builder *b, enum ferry_relax_gen gen) {
  memset(b, 0, sizeof *b);
  b->gen = gen;
  b->cur = -1;
  b->x.magic = gen == FERRY_RELAX_GEN_V026 ? FERRY_RELAX_MAGIC_V2 : FERRY_RELAX_MAGIC_V1;
  b->x.tags = gen == FERRY_RELAX_GEN_V026 ? FERRY_RELAX_TAGS_FFI : FERRY_RELAX_TAGS_CLASSIC;
  b->x.version = (ferry_relax_str){FERRY_RELAX_VERSION, strlen(FERRY_RELAX_VERSION)};
  b->x.ffi_v021 = gen == FERRY_RELAX_GEN_V026 ? 0 : -1;
}

void ferry_relax_builder_close(ferry_relax_builder *b) {
  for (size_t i = 0; i < b->nowned; i++)
    free(b->owned[i]);
  free(b->owned);
  free(b->x.funcs);
  free(b->x.param_store);
  free(b->x.consts);
  free(b->x.instr_offset);
  free(b->x.instr_data);
  memset(b, 0, sizeof *b);
}

static int set_rc(ferry_relax_builder *b, int rc) {
  if (b->rc == FERRY_OK)
    b->rc = rc;
  return b->rc;
}

/* Makes room for one more element of array *p (n used, *cap allocated),
 * up to max elements. */
static int grow(ferry_relax_builder *b, void **p, size_t *cap, size_t n, size_t elem, size_t max) {
  if (n < *cap)
    return FERRY_OK;
  if (n >= max)
    return set_rc(b, FERRY_ETOOBIG);
  size_t want = *cap ? 2 * *cap : 16;
  void *q = realloc(*p, want * elem);
  if (q == NULL)
    return set_rc(b, FERRY_ENOMEM);
  *p = q;
  *cap = want;
  return FERRY_OK;
}

/* A copy owned by the builder (freed at close); NULL after a failure. */
static void *own(ferry_relax_builder *b, const void *src, size_t n) {
  if (grow(b, (void **)&b->owned, &b->cap_owned, b->nowned, sizeof *b->owned, SIZE_MAX / 16))
    return NULL;
  void *p = malloc(n ? n : 1);
  if (p == NULL) {
    set_rc(b, FERRY_ENOMEM);
    return NULL;
  }
  if (n)
    memcpy(p, src, n);
  b->owned[b->nowned++] = p;
  return p;
}

static int own_str(ferry_relax_builder *b, const char *s, ferry_relax_str *out) {
  size_t n = strlen(s);
  const char *p = own(b, s, n);
  if (p == NULL)
    return b->rc;
  *out = (ferry_relax_str){p, n};
  return FERRY_OK;
}

static int64_t find_func(const ferry_relax_builder *b, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < b->x.nfuncs; i++)
    if (b->x.funcs[i].name.len == n && memcmp(b->x.funcs[i].name.p, name, n) == 0)
      return (int64_t)i;
  return -1;
}

static int64_t add_func(ferry_relax_builder *b, const char *name, ferry_relax_func f) {
  if (b->rc)
    return b->rc;
  if (grow(b, (void **)&b->x.funcs, &b->cap_funcs, b->x.nfuncs, sizeof f, FERRY_RELAX_MAX_FUNCS) ||
      own_str(b, name, &f.name))
    return b->rc;
  b->x.funcs[b->x.nfuncs] = f;
  return (int64_t)b->x.nfuncs++;
}

int64_t ferry_relax_build_decl(ferry_relax_builder *b, const char *name, size_t nparams,
                               const char *const *params) {
  if (b->rc)
    return b->rc;
  if (find_func(b, name) >= 0 || nparams > FERRY_RELAX_MAX_PARAMS)
    return set_rc(b, FERRY_EINVAL);
  ferry_relax_func f = {.kind = FERRY_RELAX_FUNC_VM, .num_args = (int64_t)nparams,
                        .nparams = nparams};
  size_t first = 0; /* the names go after every declared function's */
  for (size_t i = 0; i < b->x.nfuncs; i++)
    first += b->x.funcs[i].nparams;
  f.param_first = first;
  for (size_t i = 0; i < nparams; i++) {
    if (grow(b, (void **)&b->x.param_store, &b->cap_params, first + i, sizeof(ferry_relax_str),
             SIZE_MAX / 64) ||
        own_str(b, params[i], &b->x.param_store[first + i]))
      return b->rc;
  }
  return add_func(b, name, f);
}

int ferry_relax_build_begin(ferry_relax_builder *b, int64_t func) {
  if (b->rc)
    return b->rc;
  if (b->cur >= 0 || func < 0 || (size_t)func >= b->x.nfuncs ||
      b->x.funcs[func].kind != FERRY_RELAX_FUNC_VM)
    return set_rc(b, FERRY_EINVAL);
  b->cur = func;
  b->max_reg = -1;
  b->x.funcs[func].start_instr = (int64_t)b->x.ninstrs;
  return FERRY_OK;
}

int ferry_relax_build_end(ferry_relax_builder *b) {
  if (b->rc)
    return b->rc;
  if (b->cur < 0)
    return set_rc(b, FERRY_EINVAL);
  ferry_relax_func *f = &b->x.funcs[b->cur];
  f->end_instr = (int64_t)b->x.ninstrs;
  f->register_file_size = b->max_reg + 1 > f->num_args ? b->max_reg + 1 : f->num_args;
  b->cur = -1;
  return FERRY_OK;
}

static void note_reg(ferry_relax_builder *b, int64_t reg) {
  if (reg >= 0 && reg < FERRY_RELAX_REG_VOID && reg > b->max_reg)
    b->max_reg = reg;
}

int64_t ferry_relax_build_reg(ferry_relax_builder *b, int64_t reg) {
  note_reg(b, reg);
  return ferry_relax_arg_make(FERRY_RELAX_ARG_REG, reg);
}

static int32_t tag_of(const ferry_relax_builder *b, enum ferry_relax_const_kind k) {
  static const int32_t ffi[] = {70, 5, 69, 65, 1, 3}; /* in enum order */
  return b->gen == FERRY_RELAX_GEN_V026 ? ffi[k] : (int32_t)k;
}

static int same_const(const ferry_relax_const *a, const ferry_relax_const *c) {
  if (a->kind != c->kind)
    return 0;
  switch (a->kind) {
  case FERRY_RELAX_CONST_DTYPE:
    return a->u.dtype.code == c->u.dtype.code && a->u.dtype.bits == c->u.dtype.bits &&
           a->u.dtype.lanes == c->u.dtype.lanes;
  case FERRY_RELAX_CONST_INT:
    return a->u.i == c->u.i;
  case FERRY_RELAX_CONST_FLOAT:
    return memcmp(&a->u.f, &c->u.f, sizeof a->u.f) == 0;
  case FERRY_RELAX_CONST_STRING:
    return a->u.str.len == c->u.str.len && memcmp(a->u.str.p, c->u.str.p, a->u.str.len) == 0;
  case FERRY_RELAX_CONST_SHAPE:
    return a->u.raw.n == c->u.raw.n && memcmp(a->u.raw.p, c->u.raw.p, 8 * a->u.raw.n) == 0;
  case FERRY_RELAX_CONST_TENSOR:
    return a->u.raw.n == c->u.raw.n && memcmp(a->u.raw.p, c->u.raw.p, a->u.raw.n) == 0;
  }
  return 0;
}

/* Adds c (whose pointers the builder already owns) or finds its twin. */
static int64_t intern(ferry_relax_builder *b, ferry_relax_const c) {
  if (b->rc)
    return 0;
  int pod = c.kind == FERRY_RELAX_CONST_DTYPE || c.kind == FERRY_RELAX_CONST_INT ||
            c.kind == FERRY_RELAX_CONST_FLOAT;
  if (!pod || b->gen == FERRY_RELAX_GEN_V026)
    for (size_t i = 0; i < b->x.nconsts; i++)
      if (same_const(&b->x.consts[i], &c))
        return ferry_relax_arg_make(FERRY_RELAX_ARG_CONST, (int64_t)i);
  if (grow(b, (void **)&b->x.consts, &b->cap_consts, b->x.nconsts, sizeof c,
           FERRY_RELAX_MAX_CONSTS))
    return 0;
  c.tag = tag_of(b, c.kind);
  b->x.consts[b->x.nconsts] = c;
  return ferry_relax_arg_make(FERRY_RELAX_ARG_CONST, (int64_t)b->x.nconsts++);
}

int64_t ferry_relax_build_int(ferry_relax_builder *b, int64_t v) {
  if (v >= -IMM_MAX && v <= IMM_MAX)
    return ferry_relax_arg_make(FERRY_RELAX_ARG_IMM, v);
  return intern(b, (ferry_relax_const){.kind = FERRY_RELAX_CONST_INT, .u.i = v});
}

int64_t ferry_relax_build_float(ferry_relax_builder *b, double v) {
  return intern(b, (ferry_relax_const){.kind = FERRY_RELAX_CONST_FLOAT, .u.f = v});
}

int64_t ferry_relax_build_dtype(ferry_relax_builder *b, DLDataType t) {
  return intern(b, (ferry_relax_const){.kind = FERRY_RELAX_CONST_DTYPE, .u.dtype = t});
}

int64_t ferry_relax_build_str(ferry_relax_builder *b, const char *s) {
  ferry_relax_const c = {.kind = FERRY_RELAX_CONST_STRING};
  if (strlen(s) > FERRY_RELAX_MAX_STRING) {
    set_rc(b, FERRY_ETOOBIG);
    return 0;
  }
  if (own_str(b, s, &c.u.str))
    return 0;
  return intern(b, c);
}

int64_t ferry_relax_build_shape(ferry_relax_builder *b, size_t ndim, const int64_t *dims) {
  if (ndim > FERRY_RELAX_MAX_SHAPE_NDIM) {
    set_rc(b, FERRY_ETOOBIG);
    return 0;
  }
  uint8_t le[8 * FERRY_RELAX_MAX_SHAPE_NDIM];
  for (size_t i = 0; i < ndim; i++)
    put_le64(le + 8 * i, (uint64_t)dims[i]);
  const uint8_t *p = own(b, le, 8 * ndim);
  if (p == NULL)
    return 0;
  return intern(b, (ferry_relax_const){.kind = FERRY_RELAX_CONST_SHAPE, .u.raw = {p, ndim}});
}

int64_t ferry_relax_build_tensor(ferry_relax_builder *b, const DLTensor *t) {
  if (b->rc)
    return 0;
  ferry_buf blob;
  ferry_buf_init(&blob, FERRY_RELAX_MAX_BYTES);
  int rc = ferry_ndarray_encode(&blob, t);
  const uint8_t *p = rc ? NULL : own(b, blob.data, blob.len);
  size_t n = blob.len;
  ferry_buf_close(&blob);
  if (rc)
    set_rc(b, rc);
  if (p == NULL)
    return 0;
  return intern(b, (ferry_relax_const){.kind = FERRY_RELAX_CONST_TENSOR, .u.raw = {p, n}});
}

/* Index of a function by name, adding a packed entry at first use. */
static int64_t func_index(ferry_relax_builder *b, const char *name) {
  int64_t i = find_func(b, name);
  if (i >= 0)
    return i;
  return add_func(b, name, (ferry_relax_func){.kind = FERRY_RELAX_FUNC_PACKED, .num_args = -2});
}

int64_t ferry_relax_build_func(ferry_relax_builder *b, const char *name) {
  int64_t i = func_index(b, name);
  return i < 0 ? 0 : ferry_relax_arg_make(FERRY_RELAX_ARG_FUNC, i);
}

static int emit(ferry_relax_builder *b, const int64_t *head, size_t nhead, const int64_t *args,
                size_t nargs) {
  if (b->rc)
    return b->rc;
  if (b->cur < 0)
    return set_rc(b, FERRY_EINVAL);
  if (grow(b, (void **)&b->x.instr_offset, &b->cap_instrs, b->x.ninstrs, sizeof(int64_t),
           FERRY_RELAX_MAX_INSTRS))
    return b->rc;
  b->x.instr_offset[b->x.ninstrs++] = (int64_t)b->x.nwords;
  for (size_t i = 0; i < nhead + nargs; i++) {
    if (grow(b, (void **)&b->x.instr_data, &b->cap_words, b->x.nwords, sizeof(int64_t),
             FERRY_RELAX_MAX_WORDS))
      return b->rc;
    b->x.instr_data[b->x.nwords++] = i < nhead ? head[i] : args[i - nhead];
  }
  return FERRY_OK;
}

int ferry_relax_build_call(ferry_relax_builder *b, const char *callee, int64_t dst, size_t nargs,
                           const int64_t *args) {
  int64_t f = func_index(b, callee);
  if (f < 0)
    return b->rc;
  if (nargs > FERRY_RELAX_MAX_CALL_ARGS)
    return set_rc(b, FERRY_ETOOBIG);
  note_reg(b, dst);
  const int64_t head[4] = {FERRY_RELAX_OP_CALL, dst, f, (int64_t)nargs};
  return emit(b, head, 4, args, nargs);
}

int ferry_relax_build_ret(ferry_relax_builder *b, int64_t reg) {
  note_reg(b, reg);
  const int64_t head[2] = {FERRY_RELAX_OP_RET, reg};
  return emit(b, head, 2, NULL, 0);
}

int ferry_relax_build_goto(ferry_relax_builder *b, int64_t offset) {
  const int64_t head[2] = {FERRY_RELAX_OP_GOTO, offset};
  return emit(b, head, 2, NULL, 0);
}

int ferry_relax_build_if(ferry_relax_builder *b, int64_t cond, int64_t false_offset) {
  note_reg(b, cond);
  const int64_t head[3] = {FERRY_RELAX_OP_IF, cond, false_offset};
  return emit(b, head, 3, NULL, 0);
}

int64_t ferry_relax_build_pc(const ferry_relax_builder *b) { return (int64_t)b->x.ninstrs; }

int ferry_relax_build_patch(ferry_relax_builder *b, int64_t pc, int64_t offset) {
  if (b->rc)
    return b->rc;
  if (pc < 0 || (size_t)pc >= b->x.ninstrs)
    return set_rc(b, FERRY_EINVAL);
  int64_t *w = &b->x.instr_data[b->x.instr_offset[pc]];
  if (w[0] == FERRY_RELAX_OP_GOTO)
    w[1] = offset;
  else if (w[0] == FERRY_RELAX_OP_IF)
    w[2] = offset;
  else
    return set_rc(b, FERRY_EINVAL);
  return FERRY_OK;
}

int ferry_relax_build_finish(ferry_relax_builder *b, ferry_buf *out, char *err, size_t errlen) {
  if (b->rc == FERRY_OK && b->cur >= 0)
    set_rc(b, FERRY_EINVAL); /* a body was not ended */
  if (b->rc) {
    if (errlen > 0)
      snprintf(err, errlen, "relax builder: %s", ferry_strerror(b->rc));
    return b->rc;
  }
  for (size_t i = 0; i < b->x.nfuncs; i++)
    b->x.funcs[i].params = b->x.param_store ? b->x.param_store + b->x.funcs[i].param_first : NULL;
  int rc = ferry_relax_exec_validate(&b->x, err, errlen);
  if (rc == FERRY_OK)
    rc = ferry_relax_exec_write(&b->x, out);
  return rc;
}
