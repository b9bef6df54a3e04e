/* Parser of relax.VMExecutable bytes (layout in relax_exec.h and spec
 * relax-vm.md section 1).  Every read goes through a bounded ferry_stream;
 * every count is checked against its ceiling and against the bytes left
 * (each element has a minimum encoded size) before anything is allocated,
 * so a lying count costs nothing.  Errors name the byte offset where the
 * bad field starts. */
#include "wire/relax_exec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/params.h"
#include "wire/stream.h"

typedef struct pstate {
  ferry_stream s;
  char *err;
  size_t errlen;
  int failed; /* the first message wins */
} pstate;

static int fail(pstate *st, int rc, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(pstate *st, int rc, size_t at, const char *fmt, ...) {
  if (!st->failed && st->errlen > 0) {
    int n = snprintf(st->err, st->errlen, "relax executable: at byte %zu: ", at);
    if (n >= 0 && (size_t)n < st->errlen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(st->err + n, st->errlen - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  st->failed = 1;
  return rc;
}

static int truncated(pstate *st, const char *what, size_t need) {
  return fail(st, FERRY_EAGAIN, st->s.pos, "truncated: %s needs %zu bytes, %zu left", what, need,
              ferry_stream_left(&st->s));
}

static int rd_u64(pstate *st, const char *what, uint64_t *v) {
  if (ferry_stream_u64(&st->s, v))
    return truncated(st, what, 8);
  return FERRY_OK;
}

static int rd_i64(pstate *st, const char *what, int64_t *v) {
  uint64_t u;
  int rc = rd_u64(st, what, &u);
  *v = (int64_t)u;
  return rc;
}

static int rd_i32(pstate *st, const char *what, int32_t *v) {
  uint32_t u;
  if (ferry_stream_u32(&st->s, &u))
    return truncated(st, what, 4);
  *v = (int32_t)u;
  return FERRY_OK;
}

static int rd_str(pstate *st, const char *what, size_t max, ferry_relax_str *out) {
  size_t at = st->s.pos;
  int rc = ferry_stream_str(&st->s, max, &out->p, &out->len);
  if (rc == FERRY_ETOOBIG)
    return fail(st, rc, at, "%s: length %llu over the limit %zu", what,
                (unsigned long long)get_le64(st->s.p + at), max);
  if (rc) {
    size_t left = ferry_stream_left(&st->s);
    if (left < 8)
      return truncated(st, what, 8);
    return fail(st, FERRY_EAGAIN, at, "truncated: %s needs %llu bytes, %zu left", what,
                (unsigned long long)get_le64(st->s.p + at), left - 8);
  }
  return FERRY_OK;
}

/* A count of elements that each take at least min_size bytes. */
static int rd_count(pstate *st, const char *what, uint64_t max, size_t min_size, size_t *out) {
  size_t at = st->s.pos;
  uint64_t unvalidated_n;
  int rc = rd_u64(st, what, &unvalidated_n);
  if (rc)
    return rc;
  if (unvalidated_n > max)
    return fail(st, FERRY_ETOOBIG, at, "%s %llu over the limit %llu", what,
                (unsigned long long)unvalidated_n, (unsigned long long)max);
  if (unvalidated_n > ferry_stream_left(&st->s) / min_size)
    return fail(st, FERRY_ETOOBIG, at, "%s %llu cannot fit in the %zu bytes left", what,
                (unsigned long long)unvalidated_n, ferry_stream_left(&st->s));
  *out = (size_t)unvalidated_n;
  return FERRY_OK;
}

static int parse_header(pstate *st, ferry_relax_exec *x) {
  if (rd_u64(st, "magic", &x->magic))
    return FERRY_EAGAIN;
  if (x->magic != FERRY_RELAX_MAGIC_V1 && x->magic != FERRY_RELAX_MAGIC_V2)
    return fail(st, FERRY_EMAGIC, 0, "magic 0x%016llX is not a Relax VM executable's",
                (unsigned long long)x->magic);
  /* TVM 0.20 reads only the V1 magic; a classic-ABI library holding a V2
   * executable was made by no TVM. */
  if (x->tags == FERRY_RELAX_TAGS_CLASSIC && x->magic != FERRY_RELAX_MAGIC_V1)
    return fail(st, FERRY_EMAGIC, 0, "V2 magic in a classic-ABI (TVM <= 0.20) library");
  size_t at = st->s.pos;
  int rc = rd_str(st, "version", FERRY_RELAX_MAX_VERSION, &x->version);
  if (rc)
    return rc;
  if (x->version.len != strlen(FERRY_RELAX_VERSION) ||
      memcmp(x->version.p, FERRY_RELAX_VERSION, x->version.len) != 0)
    return fail(st, FERRY_EMAGIC, at, "version \"%.*s\" is not \"" FERRY_RELAX_VERSION "\"",
                (int)x->version.len, x->version.p);
  return FERRY_OK;
}

/* Grows the parameter store to hold n more names (n is bounded by the
 * bytes left, 8 per name, so the store never outgrows the input). */
static int params_reserve(ferry_relax_exec *x, size_t *cap, size_t used, size_t n) {
  if (used + n <= *cap)
    return FERRY_OK;
  size_t want = *cap ? *cap : 16;
  while (want < used + n)
    want *= 2;
  ferry_relax_str *p = realloc(x->param_store, want * sizeof *p);
  if (p == NULL)
    return FERRY_ENOMEM;
  x->param_store = p;
  *cap = want;
  return FERRY_OK;
}

/* Minimum encoded function: i32 kind, str name (8), 4 x i64, vec count. */
#define FUNC_MIN_BYTES (4 + 8 + 32 + 8)

static int parse_funcs(pstate *st, ferry_relax_exec *x) {
  x->off_funcs = st->s.pos;
  size_t n = 0;
  int rc = rd_count(st, "function count", FERRY_RELAX_MAX_FUNCS, FUNC_MIN_BYTES, &n);
  if (rc)
    return rc;
  x->funcs = calloc(n ? n : 1, sizeof *x->funcs);
  if (x->funcs == NULL)
    return fail(st, FERRY_ENOMEM, st->s.pos, "out of memory for %zu functions", n);
  x->nfuncs = n;
  size_t used = 0, cap = 0;
  for (size_t i = 0; i < n; i++) {
    ferry_relax_func *f = &x->funcs[i];
    char what[64];
    snprintf(what, sizeof what, "function %zu", i);
    if ((rc = rd_i32(st, what, &f->kind)) ||
        (rc = rd_str(st, "function name", FERRY_RELAX_MAX_NAME, &f->name)) ||
        (rc = rd_i64(st, what, &f->start_instr)) || (rc = rd_i64(st, what, &f->end_instr)) ||
        (rc = rd_i64(st, what, &f->num_args)) || (rc = rd_i64(st, what, &f->register_file_size)))
      return rc;
    snprintf(what, sizeof what, "parameter count of function %zu", i);
    if ((rc = rd_count(st, what, FERRY_RELAX_MAX_PARAMS, 8, &f->nparams)))
      return rc;
    if (params_reserve(x, &cap, used, f->nparams))
      return fail(st, FERRY_ENOMEM, st->s.pos, "out of memory for parameter names");
    f->param_first = used;
    for (size_t j = 0; j < f->nparams; j++)
      if ((rc = rd_str(st, "parameter name", FERRY_RELAX_MAX_NAME, &x->param_store[used + j])))
        return rc;
    used += f->nparams;
  }
  /* Pointers last: the store may have moved while it grew. */
  for (size_t i = 0; i < n; i++)
    x->funcs[i].params = x->param_store ? x->param_store + x->funcs[i].param_first : NULL;
  return FERRY_OK;
}

static int parse_scopes(pstate *st, ferry_relax_exec *x) {
  x->off_scopes = st->s.pos;
  if (x->magic != FERRY_RELAX_MAGIC_V2)
    return FERRY_OK; /* the section exists only under the V2 magic */
  size_t n = 0;
  int rc = rd_count(st, "memory-scope count", FERRY_RELAX_MAX_SCOPES, 16, &n);
  if (rc)
    return rc;
  x->scopes = calloc(n ? n : 1, sizeof *x->scopes);
  if (x->scopes == NULL)
    return fail(st, FERRY_ENOMEM, st->s.pos, "out of memory for %zu scopes", n);
  x->nscopes = n;
  for (size_t i = 0; i < n; i++)
    if ((rc = rd_i64(st, "memory-scope constant index", &x->scopes[i].const_idx)) ||
        (rc = rd_str(st, "memory scope", FERRY_RELAX_MAX_SCOPE_LEN, &x->scopes[i].scope)))
      return rc;
  return FERRY_OK;
}

/* Maps a tag to a kind through the table the caller chose.  -1: not a tag
 * of this table (err already says whether it is one of the other's). */
static int tag_kind(pstate *st, ferry_relax_exec *x, int32_t tag, size_t at, size_t idx) {
  if (x->tags == FERRY_RELAX_TAGS_CLASSIC) {
    if (tag >= 0 && tag <= 5)
      return tag; /* the enum follows v0.20's numbering */
    if (tag == 65 || (tag >= 69 && tag <= 72))
      fail(st, FERRY_EPROTO, at,
           "constant %zu: tag %d is a tvm-ffi type index, not a v0.20 constant tag "
           "(a TVM >= 0.21 executable in a classic-ABI library?)",
           idx, (int)tag);
    else
      fail(st, FERRY_EPROTO, at, "constant %zu: unknown v0.20 constant tag %d", idx, (int)tag);
    return -1;
  }
  int v021 = -1;
  int kind = -1;
  switch (tag) {
  case 1: kind = FERRY_RELAX_CONST_INT; break;
  case 3: kind = FERRY_RELAX_CONST_FLOAT; break;
  case 5: kind = FERRY_RELAX_CONST_DTYPE; break;
  case 65: kind = FERRY_RELAX_CONST_STRING; break;
  case 69: kind = FERRY_RELAX_CONST_SHAPE, v021 = 0; break;
  case 70: kind = FERRY_RELAX_CONST_TENSOR, v021 = 0; break;
  case 71: kind = FERRY_RELAX_CONST_SHAPE, v021 = 1; break;
  case 72: kind = FERRY_RELAX_CONST_TENSOR, v021 = 1; break;
  default:
    if (tag == 0 || tag == 2 || tag == 4)
      fail(st, FERRY_EPROTO, at,
           "constant %zu: tag %d is a v0.20 constant tag, not a tvm-ffi type index "
           "(a TVM <= 0.20 executable in a tvm-ffi library?)",
           idx, (int)tag);
    else
      fail(st, FERRY_EPROTO, at, "constant %zu: unknown tvm-ffi constant tag %d", idx, (int)tag);
    return -1;
  }
  if (v021 >= 0) {
    if (x->ffi_v021 >= 0 && x->ffi_v021 != v021) {
      fail(st, FERRY_EPROTO, at,
           "constant %zu: tag %d mixes TVM v0.21's type indices with v0.22's", idx, (int)tag);
      return -1;
    }
    x->ffi_v021 = v021;
  }
  return kind;
}

static int parse_tensor(pstate *st, ferry_relax_const *c, size_t idx) {
  size_t at = st->s.pos;
  ferry_params_tensor t;
  int rc = ferry_ndarray_decode(&st->s, &t);
  if (rc == FERRY_EAGAIN)
    return fail(st, rc, at, "truncated: tensor constant %zu", idx);
  if (rc == FERRY_EMAGIC)
    return fail(st, FERRY_EPROTO, at, "tensor constant %zu: not an NDArray (wrong magic)", idx);
  if (rc)
    return fail(st, rc == FERRY_ETOOBIG ? rc : FERRY_EPROTO, at,
                "tensor constant %zu: bad NDArray (not on the CPU, ndim over %d, lanes != 1, "
                "negative extent or a size that is not the shape's): %s",
                idx, FERRY_PARAMS_MAX_NDIM, ferry_strerror(rc));
  c->u.raw.p = st->s.p + at;
  c->u.raw.n = st->s.pos - at;
  return FERRY_OK;
}

static int parse_const(pstate *st, ferry_relax_exec *x, size_t idx) {
  ferry_relax_const *c = &x->consts[idx];
  c->offset = st->s.pos;
  int rc = rd_i32(st, "constant tag", &c->tag);
  if (rc)
    return rc;
  int kind = tag_kind(st, x, c->tag, c->offset, idx);
  if (kind < 0)
    return FERRY_EPROTO;
  c->kind = (enum ferry_relax_const_kind)kind;
  switch (c->kind) {
  case FERRY_RELAX_CONST_TENSOR:
    return parse_tensor(st, c, idx);
  case FERRY_RELAX_CONST_DTYPE: {
    const uint8_t *p;
    if (ferry_stream_bytes(&st->s, 4, &p))
      return truncated(st, "dtype constant", 4);
    c->u.dtype.code = p[0];
    c->u.dtype.bits = p[1];
    c->u.dtype.lanes = get_le16(p + 2);
    return FERRY_OK;
  }
  case FERRY_RELAX_CONST_SHAPE: {
    size_t n = 0;
    if ((rc = rd_count(st, "shape constant ndim", FERRY_RELAX_MAX_SHAPE_NDIM, 8, &n)))
      return rc;
    const uint8_t *p = NULL;
    (void)ferry_stream_bytes(&st->s, 8 * n, &p); /* fits: checked by rd_count */
    c->u.raw.p = p;
    c->u.raw.n = n;
    return FERRY_OK;
  }
  case FERRY_RELAX_CONST_STRING:
    return rd_str(st, "string constant", FERRY_RELAX_MAX_STRING, &c->u.str);
  case FERRY_RELAX_CONST_INT:
    return rd_i64(st, "int constant", &c->u.i);
  case FERRY_RELAX_CONST_FLOAT: {
    const uint8_t *p;
    if (ferry_stream_bytes(&st->s, 8, &p))
      return truncated(st, "float constant", 8);
    c->u.f = get_f64(p);
    return FERRY_OK;
  }
  }
  return FERRY_EPROTO;
}

static int parse_consts(pstate *st, ferry_relax_exec *x) {
  x->off_consts = st->s.pos;
  size_t n = 0;
  /* The smallest constant is a dtype: 4-byte tag + 4 bytes. */
  int rc = rd_count(st, "constant count", FERRY_RELAX_MAX_CONSTS, 8, &n);
  if (rc)
    return rc;
  x->consts = calloc(n ? n : 1, sizeof *x->consts);
  if (x->consts == NULL)
    return fail(st, FERRY_ENOMEM, st->s.pos, "out of memory for %zu constants", n);
  x->nconsts = n;
  for (size_t i = 0; i < n; i++)
    if ((rc = parse_const(st, x, i)))
      return rc;
  return FERRY_OK;
}

static int rd_words(pstate *st, const char *what, uint64_t max, int64_t **out, size_t *n) {
  int rc = rd_count(st, what, max, 8, n);
  if (rc)
    return rc;
  *out = malloc((*n ? *n : 1) * sizeof **out);
  if (*out == NULL)
    return fail(st, FERRY_ENOMEM, st->s.pos, "out of memory for %s %zu", what, *n);
  for (size_t i = 0; i < *n; i++)
    (void)rd_i64(st, what, &(*out)[i]); /* fits: checked by rd_count */
  return FERRY_OK;
}

static int parse_code(pstate *st, ferry_relax_exec *x) {
  x->off_code = st->s.pos;
  int rc = rd_words(st, "instruction count", FERRY_RELAX_MAX_INSTRS, &x->instr_offset,
                    &x->ninstrs);
  if (rc)
    return rc;
  return rd_words(st, "instruction word count", FERRY_RELAX_MAX_WORDS, &x->instr_data,
                  &x->nwords);
}

int ferry_relax_exec_parse(ferry_relax_exec *out, const uint8_t *bytes, size_t len,
                           enum ferry_relax_tags tags, char *err, size_t errlen) {
  pstate st = {.err = err, .errlen = errlen};
  if (errlen > 0)
    err[0] = '\0';
  memset(out, 0, sizeof *out);
  if (tags != FERRY_RELAX_TAGS_CLASSIC && tags != FERRY_RELAX_TAGS_FFI)
    return fail(&st, FERRY_EINVAL, 0, "unknown constant tag table %d", (int)tags);
  if (len > FERRY_RELAX_MAX_BYTES)
    return fail(&st, FERRY_ETOOBIG, 0, "%zu bytes over the limit %llu", len,
                (unsigned long long)FERRY_RELAX_MAX_BYTES);
  ferry_relax_exec x = {.tags = tags, .ffi_v021 = -1, .bytes = bytes, .len = len};
  ferry_stream_init(&st.s, bytes, len);
  int rc;
  if ((rc = parse_header(&st, &x)) || (rc = parse_funcs(&st, &x)) ||
      (rc = parse_scopes(&st, &x)) || (rc = parse_consts(&st, &x)) ||
      (rc = parse_code(&st, &x))) {
    ferry_relax_exec_close(&x);
    return rc;
  }
  if (ferry_stream_left(&st.s) != 0) {
    fail(&st, FERRY_EPROTO, st.s.pos, "%zu bytes after the code section",
         ferry_stream_left(&st.s));
    ferry_relax_exec_close(&x);
    return FERRY_EPROTO;
  }
  *out = x;
  return FERRY_OK;
}

void ferry_relax_exec_close(ferry_relax_exec *exec) {
  free(exec->funcs);
  free(exec->param_store);
  free(exec->scopes);
  free(exec->consts);
  free(exec->instr_offset);
  free(exec->instr_data);
  memset(exec, 0, sizeof *exec);
}

int64_t ferry_relax_shape_dim(const ferry_relax_const *c, size_t i) {
  return (int64_t)get_le64(c->u.raw.p + 8 * i);
}
