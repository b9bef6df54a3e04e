/* Writer of relax.VMExecutable bytes: the exact inverse of
 * ferry_relax_exec_parse, for fixtures and for tests that need a file that
 * lies in one chosen place.  The layout is the one TVM v0.20 and v0.26
 * write (executable.cc SaveToBinary): dmlc little-endian integers, u64
 * lengths before strings and vectors. */
#include <string.h>

#include "base/bytes.h"
#include "wire/relax_exec.h"

static int w64(ferry_buf *b, uint64_t v) {
  uint8_t p[8];
  put_le64(p, v);
  return ferry_buf_append(b, p, 8);
}

static int w32(ferry_buf *b, uint32_t v) {
  uint8_t p[4];
  put_le32(p, v);
  return ferry_buf_append(b, p, 4);
}

static int wstr(ferry_buf *b, const ferry_relax_str *s) {
  int rc = w64(b, s->len);
  return rc ? rc : ferry_buf_append(b, s->p, s->len);
}

static int write_funcs(const ferry_relax_exec *x, ferry_buf *b) {
  int rc = w64(b, x->nfuncs);
  for (size_t i = 0; i < x->nfuncs && rc == FERRY_OK; i++) {
    const ferry_relax_func *f = &x->funcs[i];
    if ((rc = w32(b, (uint32_t)f->kind)) || (rc = wstr(b, &f->name)) ||
        (rc = w64(b, (uint64_t)f->start_instr)) || (rc = w64(b, (uint64_t)f->end_instr)) ||
        (rc = w64(b, (uint64_t)f->num_args)) || (rc = w64(b, (uint64_t)f->register_file_size)) ||
        (rc = w64(b, f->nparams)))
      break;
    for (size_t j = 0; j < f->nparams && rc == FERRY_OK; j++)
      rc = wstr(b, &f->params[j]);
  }
  return rc;
}

static int write_const(const ferry_relax_const *c, ferry_buf *b) {
  int rc = w32(b, (uint32_t)c->tag);
  if (rc)
    return rc;
  switch (c->kind) {
  case FERRY_RELAX_CONST_TENSOR:
    return ferry_buf_append(b, c->u.raw.p, c->u.raw.n);
  case FERRY_RELAX_CONST_DTYPE: {
    uint8_t p[4] = {c->u.dtype.code, c->u.dtype.bits, 0, 0};
    put_le16(p + 2, c->u.dtype.lanes);
    return ferry_buf_append(b, p, 4);
  }
  case FERRY_RELAX_CONST_SHAPE:
    rc = w64(b, c->u.raw.n);
    return rc ? rc : ferry_buf_append(b, c->u.raw.p, 8 * c->u.raw.n);
  case FERRY_RELAX_CONST_STRING:
    return wstr(b, &c->u.str);
  case FERRY_RELAX_CONST_INT:
    return w64(b, (uint64_t)c->u.i);
  case FERRY_RELAX_CONST_FLOAT: {
    uint8_t p[8];
    put_f64(p, c->u.f);
    return ferry_buf_append(b, p, 8);
  }
  }
  return FERRY_EINVAL;
}

static int write_all(const ferry_relax_exec *x, ferry_buf *b) {
  int rc;
  if ((rc = w64(b, x->magic)) || (rc = wstr(b, &x->version)) || (rc = write_funcs(x, b)))
    return rc;
  if (x->magic == FERRY_RELAX_MAGIC_V2) {
    rc = w64(b, x->nscopes);
    for (size_t i = 0; i < x->nscopes && rc == FERRY_OK; i++)
      if ((rc = w64(b, (uint64_t)x->scopes[i].const_idx)) == FERRY_OK)
        rc = wstr(b, &x->scopes[i].scope);
    if (rc)
      return rc;
  }
  rc = w64(b, x->nconsts);
  for (size_t i = 0; i < x->nconsts && rc == FERRY_OK; i++)
    rc = write_const(&x->consts[i], b);
  if (rc == FERRY_OK)
    rc = w64(b, x->ninstrs);
  for (size_t i = 0; i < x->ninstrs && rc == FERRY_OK; i++)
    rc = w64(b, (uint64_t)x->instr_offset[i]);
  if (rc == FERRY_OK)
    rc = w64(b, x->nwords);
  for (size_t i = 0; i < x->nwords && rc == FERRY_OK; i++)
    rc = w64(b, (uint64_t)x->instr_data[i]);
  return rc;
}

int ferry_relax_exec_write(const ferry_relax_exec *exec, ferry_buf *out) {
  size_t before = out->len;
  int rc = write_all(exec, out);
  if (rc)
    out->len = before;
  return rc;
}
