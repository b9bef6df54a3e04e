/* What TVM's relax.VMExecutable functions `stats` and `as_text` return,
 * byte for byte (TVM v0.20 and v0.26 print the same: src/runtime/
 * relax_vm/executable.cc Stats() and AsText()).  The column widths are
 * TVM's std::setw: 6 for the mnemonic, 16 for the callee, 12 for the
 * argument list, left-aligned and never truncated.
 *
 * Works on any parsed executable: an index that validation would refuse
 * prints as TVM prints it (unknown_func_index(N)) or with a '?', and no
 * word outside the code is read. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "wire/params.h"
#include "wire/relax_exec.h"


static int put_str(ferry_buf *out, const ferry_relax_str *s) {
  return ferry_buf_append(out, s->p, s->len);
}

/* TVM's operator<<(std::ostream&, DLDataType). */
static int put_dtype(ferry_buf *out, DLDataType t) {
  static const char *const names[] = {"int", "uint", "float", "handle", "bfloat"};
  if (t.code == kDLUInt && t.bits == 1 && t.lanes == 1)
    return ferry_buf_printf(out, "bool");
  if (t.code == kDLOpaqueHandle && t.bits == 0 && t.lanes == 0)
    return ferry_buf_printf(out, "void");
  int rc = t.code < 5 ? ferry_buf_printf(out, "%s", names[t.code])
                      : ferry_buf_printf(out, "custom[%u]", (unsigned)t.code);
  if (rc || t.code == kDLOpaqueHandle)
    return rc;
  int16_t lanes = (int16_t)t.lanes;
  rc = ferry_buf_printf(out, "%d", (int)t.bits);
  if (rc == FERRY_OK && lanes > 1)
    rc = ferry_buf_printf(out, "x%d", (int)lanes);
  else if (rc == FERRY_OK && lanes < -1)
    rc = ferry_buf_printf(out, "xvscalex%d", -(int)lanes);
  return rc;
}

/* "[a, b]"; TVM prints an empty list through seekp(-2) over what it has
 * written, so an empty Shape constant comes out as "shapetupl]": kept. */
static int put_dims(ferry_buf *out, const char *prefix, size_t n, const uint8_t *raw,
                    const int64_t *dims) {
  int rc = ferry_buf_printf(out, "%s[", prefix);
  for (size_t i = 0; i < n && rc == FERRY_OK; i++)
    rc = ferry_buf_printf(out, "%" PRId64 ", ", raw ? (int64_t)get_le64(raw + 8 * i) : dims[i]);
  if (rc)
    return rc;
  out->len -= out->len >= 2 ? 2 : out->len;
  return ferry_buf_printf(out, "], ");
}

static int put_const(ferry_buf *out, const ferry_relax_const *c) {
  switch (c->kind) {
  case FERRY_RELAX_CONST_TENSOR: {
    ferry_stream s;
    ferry_params_tensor t;
    ferry_stream_init(&s, c->u.raw.p, c->u.raw.n);
    if (ferry_ndarray_decode(&s, &t) != FERRY_OK)
      return ferry_buf_printf(out, "?tensor, ");
    if (t.ndim == 0)
      return ferry_buf_printf(out, "scalar, ");
    return put_dims(out, "", (size_t)t.ndim, NULL, t.shape);
  }
  case FERRY_RELAX_CONST_SHAPE:
    return put_dims(out, "shapetuple", c->u.raw.n, c->u.raw.p, NULL);
  case FERRY_RELAX_CONST_STRING: {
    int rc = ferry_buf_printf(out, "\"");
    if (rc == FERRY_OK)
      rc = put_str(out, &c->u.str);
    return rc ? rc : ferry_buf_printf(out, "\", ");
  }
  case FERRY_RELAX_CONST_INT:
    return ferry_buf_printf(out, "%" PRId64 ", ", c->u.i);
  case FERRY_RELAX_CONST_FLOAT:
    return ferry_buf_printf(out, "%g, ", c->u.f); /* std::ostream's default precision 6 */
  case FERRY_RELAX_CONST_DTYPE: {
    int rc = put_dtype(out, c->u.dtype);
    return rc ? rc : ferry_buf_printf(out, ", ");
  }
  }
  return FERRY_EINVAL;
}

int ferry_relax_exec_stats(const ferry_relax_exec *x, ferry_buf *out) {
  int rc = ferry_buf_printf(out, "Relax VM executable statistics:\n  Constant pool (# %zu): [",
                            x->nconsts);
  for (size_t i = 0; i < x->nconsts && rc == FERRY_OK; i++)
    rc = put_const(out, &x->consts[i]);
  if (rc)
    return rc;
  if (x->nconsts)
    out->len -= 2;
  rc = ferry_buf_printf(out, "]\n  Globals (#%zu): [", x->nfuncs);
  for (size_t i = 0; i < x->nfuncs && rc == FERRY_OK; i++) {
    rc = put_str(out, &x->funcs[i].name);
    if (rc == FERRY_OK)
      rc = ferry_buf_printf(out, ", ");
  }
  if (rc)
    return rc;
  if (x->nfuncs)
    out->len -= 2;
  return ferry_buf_printf(out, "]\n");
}

static int put_func_name(ferry_buf *out, const ferry_relax_exec *x, int64_t idx) {
  if (idx >= 0 && (uint64_t)idx < x->nfuncs)
    return put_str(out, &x->funcs[idx].name);
  return ferry_buf_printf(out, "unknown_func_index(%" PRId64 ")", idx);
}

static int put_reg(ferry_buf *out, int64_t reg) {
  if (reg == FERRY_RELAX_REG_VOID)
    return ferry_buf_printf(out, "%%void");
  if (reg == FERRY_RELAX_REG_VM)
    return ferry_buf_printf(out, "%%vm");
  return ferry_buf_printf(out, "%%%" PRId64, reg);
}

static int put_arg(ferry_buf *out, const ferry_relax_exec *x, int64_t word) {
  int64_t v = ferry_relax_arg_value(word);
  switch (ferry_relax_arg_kind(word)) {
  case FERRY_RELAX_ARG_REG:
    return put_reg(out, v);
  case FERRY_RELAX_ARG_IMM:
    return ferry_buf_printf(out, "i%" PRId64, v);
  case FERRY_RELAX_ARG_CONST:
    return ferry_buf_printf(out, "c[%" PRId64 "]", v);
  case FERRY_RELAX_ARG_FUNC: {
    int rc = ferry_buf_printf(out, "f[");
    if (rc == FERRY_OK)
      rc = put_func_name(out, x, v);
    return rc ? rc : ferry_buf_printf(out, "]");
  }
  default:
    return ferry_buf_printf(out, "?kind%d", ferry_relax_arg_kind(word));
  }
}

/* Appends spaces until `width` bytes have been written since `start`. */
static int pad_to(ferry_buf *out, size_t start, size_t width) {
  int rc = FERRY_OK;
  while (rc == FERRY_OK && out->len - start < width)
    rc = ferry_buf_append(out, " ", 1);
  return rc;
}

static int put_call(ferry_buf *out, const ferry_relax_exec *x, size_t off) {
  if (x->nwords - off < 4)
    return ferry_buf_printf(out, "call  ?truncated\n");
  const int64_t *w = &x->instr_data[off];
  int64_t nargs = w[3];
  int rc = ferry_buf_printf(out, "call  ");
  size_t start = out->len;
  if (rc == FERRY_OK)
    rc = put_func_name(out, x, w[2]);
  if (rc == FERRY_OK)
    rc = pad_to(out, start, 16);
  if (rc == FERRY_OK)
    rc = ferry_buf_printf(out, " in: ");
  start = out->len;
  if (nargs < 0 || (uint64_t)nargs > x->nwords - off - 4)
    nargs = -1; /* unvalidated: print no argument rather than read past the code */
  for (int64_t a = 0; a < nargs && rc == FERRY_OK; a++) {
    if (a > 0)
      rc = ferry_buf_printf(out, ", ");
    if (rc == FERRY_OK)
      rc = put_arg(out, x, w[4 + a]);
  }
  if (rc == FERRY_OK && nargs < 0)
    rc = ferry_buf_printf(out, "?");
  if (rc == FERRY_OK)
    rc = pad_to(out, start, 12);
  if (rc == FERRY_OK)
    rc = ferry_buf_printf(out, " dst: ");
  if (rc == FERRY_OK)
    rc = put_reg(out, w[1]);
  return rc ? rc : ferry_buf_printf(out, "\n");
}

static int put_instr(ferry_buf *out, const ferry_relax_exec *x, int64_t pc) {
  int rc = ferry_buf_printf(out, "  ");
  if (rc)
    return rc;
  if (pc < 0 || (uint64_t)pc >= x->ninstrs || x->instr_offset[pc] < 0 ||
      (uint64_t)x->instr_offset[pc] >= x->nwords)
    return ferry_buf_printf(out, "?instruction %" PRId64 "\n", pc);
  size_t off = (size_t)x->instr_offset[pc];
  const int64_t *w = &x->instr_data[off];
  size_t left = x->nwords - off;
  switch (w[0]) {
  case FERRY_RELAX_OP_CALL:
    return put_call(out, x, off);
  case FERRY_RELAX_OP_RET:
    if (left < 2)
      break;
    rc = ferry_buf_printf(out, "ret   ");
    if (rc == FERRY_OK)
      rc = put_reg(out, w[1]);
    return rc ? rc : ferry_buf_printf(out, "\n");
  case FERRY_RELAX_OP_GOTO:
    if (left < 2)
      break;
    return ferry_buf_printf(out, "goto  %" PRId64 "\n", w[1]);
  case FERRY_RELAX_OP_IF:
    if (left < 3)
      break;
    rc = ferry_buf_printf(out, "If    ");
    if (rc == FERRY_OK)
      rc = put_reg(out, w[1]);
    return rc ? rc : ferry_buf_printf(out, ", %" PRId64 "\n", w[2]);
  }
  return ferry_buf_printf(out, "?opcode %" PRId64 "\n", w[0]);
}

int ferry_relax_exec_text(const ferry_relax_exec *x, ferry_buf *out) {
  int rc = FERRY_OK;
  for (size_t i = 0; i < x->nfuncs && rc == FERRY_OK; i++) {
    const ferry_relax_func *f = &x->funcs[i];
    rc = ferry_buf_printf(out, "@");
    if (rc == FERRY_OK)
      rc = put_str(out, &f->name);
    if (rc)
      break;
    if (f->kind == FERRY_RELAX_FUNC_PACKED) {
      rc = ferry_buf_printf(out, " packed_func;\n\n");
      continue;
    }
    if (f->kind == FERRY_RELAX_FUNC_VMTIR) {
      rc = ferry_buf_printf(out, " num_inputs=%" PRId64 " vm_tir_func;\n\n", f->num_args);
      continue;
    }
    if (f->kind != FERRY_RELAX_FUNC_VM) {
      rc = ferry_buf_printf(out, " ?kind %d;\n\n", (int)f->kind);
      continue;
    }
    rc = ferry_buf_printf(out, ":\n");
    /* An unvalidated range is clipped to the code, so a lying end_instr
     * cannot make this loop long. */
    int64_t end = f->end_instr < (int64_t)x->ninstrs ? f->end_instr : (int64_t)x->ninstrs;
    for (int64_t pc = f->start_instr < 0 ? 0 : f->start_instr; pc < end && rc == FERRY_OK; pc++)
      rc = put_instr(out, x, pc);
    if (rc == FERRY_OK)
      rc = ferry_buf_printf(out, "\n");
  }
  return rc;
}
