/* Validation of a parsed Relax VM executable: everything an interpreter
 * would otherwise have to check at every step.  TVM checks none of this
 * (it reads registers unchecked and trusts every index); after this pass an
 * interpreter may index registers, constants and functions directly and
 * follow jumps without bounds checks.
 *
 * Rules beyond TVM's own runtime checks, each met by what TVM's compiler
 * emits (codegen_vm.cc, exec_builder.cc):
 *   - Goto jumps forward only, so a function body has no loop; with the
 *     VM's call-depth bound every run ends.
 *   - The last instruction of a function is Ret, so no path runs off its end.
 *   - Call's dst is a register of the frame or %void (never %vm); Ret never
 *     returns %vm (the VM context must not reach a caller or the client).
 *   - Instructions do not overlap: instr_offset grows strictly and each
 *     instruction's words end before the next one starts.
 *   - Function names are unique (TVM keeps the last of duplicates). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/relax_exec.h"

typedef struct vstate {
  const ferry_relax_exec *x;
  char *err;
  size_t errlen;
} vstate;

static int vfail(vstate *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int vfail(vstate *v, const char *fmt, ...) {
  if (v->errlen > 0) {
    int n = snprintf(v->err, v->errlen, "relax executable: ");
    if (n >= 0 && (size_t)n < v->errlen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(v->err + n, v->errlen - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  return FERRY_EPROTO;
}

/* "function 'main' (#0), instruction 3 (pc 3): " */
static int ifail(vstate *v, size_t fi, int64_t pc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int ifail(vstate *v, size_t fi, int64_t pc, const char *fmt, ...) {
  const ferry_relax_func *f = &v->x->funcs[fi];
  char msg[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return vfail(v, "function '%.*s' (#%zu), instruction %lld (pc %lld): %s",
               (int)(f->name.len > 200 ? 200 : f->name.len), f->name.p, fi,
               (long long)(pc - f->start_instr), (long long)pc, msg);
}

/* Words an instruction at word offset off takes, or 0 if its opcode is
 * unknown or its argument count is out of range (*why says which). */
static size_t instr_len(const ferry_relax_exec *x, size_t off, const char **why) {
  switch (x->instr_data[off]) {
  case FERRY_RELAX_OP_CALL: {
    if (x->nwords - off < 4) {
      *why = "Call runs past the end of the code";
      return 0;
    }
    int64_t n = x->instr_data[off + 3];
    if (n < 0 || n > FERRY_RELAX_MAX_CALL_ARGS) {
      *why = "Call argument count out of range";
      return 0;
    }
    return 4 + (size_t)n;
  }
  case FERRY_RELAX_OP_RET:
  case FERRY_RELAX_OP_GOTO:
    return 2;
  case FERRY_RELAX_OP_IF:
    return 3;
  default:
    *why = "unknown opcode";
    return 0;
  }
}

/* instr_offset: every offset inside the code and strictly above the one
 * before it, so instruction pc owns the words [offset[pc], limit(pc)). */
static int check_layout(vstate *v) {
  const ferry_relax_exec *x = v->x;
  for (size_t i = 0; i < x->ninstrs; i++) {
    int64_t off = x->instr_offset[i];
    if (off < 0 || off >= (int64_t)x->nwords)
      return vfail(v, "instruction %zu: offset %lld outside the %zu code words", i,
                   (long long)off, x->nwords);
    if (i > 0 && off <= x->instr_offset[i - 1])
      return vfail(v, "instruction %zu: offset %lld is not above the one before (%lld)", i,
                   (long long)off, (long long)x->instr_offset[i - 1]);
  }
  return FERRY_OK;
}

static int64_t instr_limit(const ferry_relax_exec *x, int64_t pc) {
  return (size_t)pc + 1 < x->ninstrs ? x->instr_offset[pc + 1] : (int64_t)x->nwords;
}

/* Orders function-table entries by name; sorting pointers into the table
 * keeps the index recoverable without any context for qsort. */
static int name_cmp(const void *a, const void *b) {
  const ferry_relax_str *p = &(*(const ferry_relax_func *const *)a)->name;
  const ferry_relax_str *q = &(*(const ferry_relax_func *const *)b)->name;
  size_t n = p->len < q->len ? p->len : q->len;
  int c = n ? memcmp(p->p, q->p, n) : 0;
  if (c)
    return c;
  return p->len < q->len ? -1 : p->len > q->len;
}

static int check_unique_names(vstate *v) {
  const ferry_relax_exec *x = v->x;
  if (x->nfuncs < 2)
    return FERRY_OK;
  const ferry_relax_func **by_name = malloc(x->nfuncs * sizeof *by_name);
  if (by_name == NULL)
    return FERRY_ENOMEM;
  for (size_t i = 0; i < x->nfuncs; i++)
    by_name[i] = &x->funcs[i];
  qsort(by_name, x->nfuncs, sizeof *by_name, name_cmp); /* O(n log n) */
  int rc = FERRY_OK;
  for (size_t i = 1; i < x->nfuncs && rc == FERRY_OK; i++)
    if (name_cmp(&by_name[i - 1], &by_name[i]) == 0) {
      size_t a = (size_t)(by_name[i - 1] - x->funcs), b = (size_t)(by_name[i] - x->funcs);
      const ferry_relax_str *s = &by_name[i]->name;
      rc = vfail(v, "function name '%.*s' appears twice (#%zu and #%zu)",
                 (int)(s->len > 200 ? 200 : s->len), s->p, a < b ? a : b, a < b ? b : a);
    }
  free(by_name);
  return rc;
}

static int check_func_entry(vstate *v, size_t fi) {
  const ferry_relax_exec *x = v->x;
  const ferry_relax_func *f = &x->funcs[fi];
  const char *nm = f->name.p;
  int nl = (int)(f->name.len > 200 ? 200 : f->name.len);
  if (f->name.len == 0)
    return vfail(v, "function #%zu has an empty name", fi);
  switch (f->kind) {
  case FERRY_RELAX_FUNC_PACKED:
    /* Resolved by name at initialisation; TVM writes num_args -2 and
     * zeroes, and reads none of the other fields. */
    if (f->nparams != 0)
      return vfail(v, "function '%.*s' (#%zu): a packed function with parameter names", nl, nm,
                   fi);
    return FERRY_OK;
  case FERRY_RELAX_FUNC_VM:
    if (f->start_instr < 0 || f->end_instr <= f->start_instr ||
        f->end_instr > (int64_t)x->ninstrs)
      return vfail(v, "function '%.*s' (#%zu): instructions [%lld, %lld) not inside the %zu "
                   "instructions",
                   nl, nm, fi, (long long)f->start_instr, (long long)f->end_instr, x->ninstrs);
    if (f->register_file_size < 0 || f->register_file_size > FERRY_RELAX_MAX_REGS)
      return vfail(v, "function '%.*s' (#%zu): register file size %lld outside [0, %d]", nl, nm,
                   fi, (long long)f->register_file_size, FERRY_RELAX_MAX_REGS);
    /* fall through */
  case FERRY_RELAX_FUNC_VMTIR:
    if (f->num_args < 0 || f->num_args > FERRY_RELAX_MAX_PARAMS)
      return vfail(v, "function '%.*s' (#%zu): parameter count %lld outside [0, %d]", nl, nm, fi,
                   (long long)f->num_args, FERRY_RELAX_MAX_PARAMS);
    if ((size_t)f->num_args != f->nparams)
      return vfail(v, "function '%.*s' (#%zu): %lld parameters but %zu parameter names", nl, nm,
                   fi, (long long)f->num_args, f->nparams);
    if (f->kind == FERRY_RELAX_FUNC_VM && f->num_args > f->register_file_size)
      return vfail(v, "function '%.*s' (#%zu): %lld parameters do not fit %lld registers", nl,
                   nm, fi, (long long)f->num_args, (long long)f->register_file_size);
    return FERRY_OK;
  default:
    return vfail(v, "function '%.*s' (#%zu): unknown kind %d", nl, nm, fi, (int)f->kind);
  }
}

/* A register an instruction reads: a frame register, %void (None) or, if
 * vm_ok, the VM context. */
static int check_read(vstate *v, size_t fi, int64_t pc, int64_t reg, int vm_ok, const char *what) {
  int64_t regs = v->x->funcs[fi].register_file_size;
  if (reg >= 0 && reg < regs)
    return FERRY_OK;
  if (reg == FERRY_RELAX_REG_VOID || (vm_ok && reg == FERRY_RELAX_REG_VM))
    return FERRY_OK;
  if (reg == FERRY_RELAX_REG_VM)
    return ifail(v, fi, pc, "%s is %%vm, which it may not be", what);
  return ifail(v, fi, pc, "%s register %%%lld not below the frame size %lld", what,
               (long long)reg, (long long)regs);
}

static int check_call(vstate *v, size_t fi, int64_t pc, const int64_t *w) {
  const ferry_relax_exec *x = v->x;
  int64_t dst = w[1], callee = w[2], nargs = w[3];
  int64_t regs = x->funcs[fi].register_file_size;
  if (!(dst >= 0 && dst < regs) && dst != FERRY_RELAX_REG_VOID)
    return ifail(v, fi, pc, "Call destination %%%lld not below the frame size %lld",
                 (long long)dst, (long long)regs);
  if (callee < 0 || callee >= (int64_t)x->nfuncs)
    return ifail(v, fi, pc, "Call of function index %lld, not below %zu", (long long)callee,
                 x->nfuncs);
  const ferry_relax_func *g = &x->funcs[callee];
  if (g->kind == FERRY_RELAX_FUNC_VM && nargs != g->num_args)
    return ifail(v, fi, pc, "Call of '%.*s' with %lld arguments; it takes %lld",
                 (int)(g->name.len > 64 ? 64 : g->name.len), g->name.p, (long long)nargs,
                 (long long)g->num_args);
  for (int64_t a = 0; a < nargs; a++) {
    int64_t word = w[4 + a];
    int64_t val = ferry_relax_arg_value(word);
    char what[48];
    snprintf(what, sizeof what, "argument %lld", (long long)a);
    int rc = FERRY_OK;
    switch (ferry_relax_arg_kind(word)) {
    case FERRY_RELAX_ARG_REG:
      rc = check_read(v, fi, pc, val, 1, what);
      break;
    case FERRY_RELAX_ARG_IMM:
      break;
    case FERRY_RELAX_ARG_CONST:
      if (val < 0 || val >= (int64_t)x->nconsts)
        rc = ifail(v, fi, pc, "%s: constant c[%lld] not below the pool size %zu", what,
                   (long long)val, x->nconsts);
      break;
    case FERRY_RELAX_ARG_FUNC:
      if (val < 0 || val >= (int64_t)x->nfuncs)
        rc = ifail(v, fi, pc, "%s: function index %lld not below %zu", what, (long long)val,
                   x->nfuncs);
      break;
    default:
      rc = ifail(v, fi, pc, "%s: unknown argument kind %d", what, ferry_relax_arg_kind(word));
    }
    if (rc)
      return rc;
  }
  return FERRY_OK;
}

static int check_body(vstate *v, size_t fi) {
  const ferry_relax_exec *x = v->x;
  const ferry_relax_func *f = &x->funcs[fi];
  for (int64_t pc = f->start_instr; pc < f->end_instr; pc++) {
    int64_t off = x->instr_offset[pc];
    const char *why = "";
    size_t n = instr_len(x, (size_t)off, &why);
    if (n == 0)
      return ifail(v, fi, pc, "%s (opcode word %lld)", why, (long long)x->instr_data[off]);
    if ((int64_t)n > instr_limit(x, pc) - off)
      return ifail(v, fi, pc, "its %zu words run into the next instruction or past the code", n);
    const int64_t *w = &x->instr_data[off];
    int rc = FERRY_OK;
    switch (w[0]) {
    case FERRY_RELAX_OP_CALL:
      rc = check_call(v, fi, pc, w);
      break;
    case FERRY_RELAX_OP_RET:
      rc = check_read(v, fi, pc, w[1], 0, "Ret result");
      break;
    case FERRY_RELAX_OP_GOTO:
      if (w[1] <= 0 || w[1] >= f->end_instr - pc)
        rc = ifail(v, fi, pc, "Goto offset %lld: the target is not a later instruction of the "
                   "function (only forward jumps)",
                   (long long)w[1]);
      break;
    case FERRY_RELAX_OP_IF:
      if ((rc = check_read(v, fi, pc, w[1], 0, "If condition")))
        break;
      if (w[1] == FERRY_RELAX_REG_VOID)
        rc = ifail(v, fi, pc, "If condition is %%void");
      else if (w[2] <= 1 || w[2] >= f->end_instr - pc)
        rc = ifail(v, fi, pc, "If false offset %lld: must be > 1 and stay inside the function",
                   (long long)w[2]);
      break;
    }
    if (rc)
      return rc;
  }
  if (x->instr_data[x->instr_offset[f->end_instr - 1]] != FERRY_RELAX_OP_RET)
    return ifail(v, fi, f->end_instr - 1, "the last instruction of a function must be Ret");
  return FERRY_OK;
}

int ferry_relax_exec_validate(const ferry_relax_exec *exec, char *err, size_t errlen) {
  vstate v = {.x = exec, .err = err, .errlen = errlen};
  if (errlen > 0)
    err[0] = '\0';
  int rc = check_layout(&v);
  if (rc)
    return rc;
  for (size_t i = 0; i < exec->nfuncs; i++)
    if ((rc = check_func_entry(&v, i)))
      return rc;
  if ((rc = check_unique_names(&v)))
    return rc;
  for (size_t i = 0; i < exec->nfuncs; i++)
    if (exec->funcs[i].kind == FERRY_RELAX_FUNC_VM && (rc = check_body(&v, i)))
      return rc;
  for (size_t i = 0; i < exec->nscopes; i++)
    if (exec->scopes[i].const_idx < 0 || exec->scopes[i].const_idx >= (int64_t)exec->nconsts)
      return vfail(&v, "memory scope %zu names constant %lld, not below the pool size %zu", i,
                   (long long)exec->scopes[i].const_idx, exec->nconsts);
  return FERRY_OK;
}
