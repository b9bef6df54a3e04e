/* Assembler of the Relax program description (format in relax_exec_asm.h)
 * into executable bytes, through the builder.  Two passes over the lines:
 * the first declares every function (TVM declares all Relax functions
 * before emitting any body, which fixes their table order), the second
 * emits the bodies; jumps name labels and are patched when their
 * function ends.  Every token is read inside its line; every error names
 * the line. */
#include "wire/relax_exec_asm.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct span {
  const char *p;
  size_t n;
} span;

typedef struct label {
  span name;
  int64_t pc;   /* label: its pc; jump: the jump's pc */
  size_t line;  /* jump: its line, for the message */
} label;

typedef struct asm_state {
  ferry_relax_builder b;
  const ferry_relax_asm_tensor *tensors;
  size_t ntensors;
  char *err;
  size_t errlen;
  size_t line;
  const char *p, *end; /* the rest of the current line */
  label labels[FERRY_RELAX_ASM_MAX_LABELS], jumps[FERRY_RELAX_ASM_MAX_LABELS];
  size_t nlabels, njumps;
  int64_t *args;
  size_t cap_args;
} asm_state;

static int afail(asm_state *st, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int afail(asm_state *st, int rc, const char *fmt, ...) {
  if (st->errlen > 0) {
    int n = snprintf(st->err, st->errlen, "relax asm: line %zu: ", st->line);
    if (n >= 0 && (size_t)n < st->errlen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(st->err + n, st->errlen - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  return rc;
}

/* How much of the rest of the line a message quotes (the line is not
 * NUL-terminated: never print past its end). */
static int near(const asm_state *st) {
  return st->end - st->p > 20 ? 20 : (int)(st->end - st->p);
}

static void skip_ws(asm_state *st) {
  while (st->p < st->end && (*st->p == ' ' || *st->p == '\t' || *st->p == '\r'))
    st->p++;
  if (st->p < st->end && *st->p == '#')
    st->p = st->end; /* a comment runs to the end of the line */
}

static int at_end(asm_state *st) {
  skip_ws(st);
  return st->p == st->end;
}

static int accept(asm_state *st, const char *tok) {
  skip_ws(st);
  size_t n = strlen(tok);
  if ((size_t)(st->end - st->p) >= n && memcmp(st->p, tok, n) == 0) {
    st->p += n;
    return 1;
  }
  return 0;
}

static int is_name_char(char c, int first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (!first && ((c >= '0' && c <= '9') || c == '.'));
}

static int name(asm_state *st, span *out) {
  skip_ws(st);
  const char *s = st->p;
  while (st->p < st->end && is_name_char(*st->p, st->p == s))
    st->p++;
  out->p = s;
  out->n = (size_t)(st->p - s);
  return out->n ? FERRY_OK : afail(st, FERRY_EPROTO, "expected a name at \"%.*s\"", near(st), s);
}

/* A NUL-terminated copy of a span, for the builder; the caller frees. */
static char *dup(asm_state *st, span s) {
  char *z = malloc(s.n + 1);
  if (z == NULL) {
    afail(st, FERRY_ENOMEM, "out of memory");
    return NULL;
  }
  memcpy(z, s.p, s.n);
  z[s.n] = '\0';
  return z;
}

static int integer(asm_state *st, int64_t *v) {
  skip_ws(st);
  char buf[32];
  size_t n = 0;
  while (st->p + n < st->end && n < sizeof buf - 1 &&
         ((st->p[n] >= '0' && st->p[n] <= '9') || (n == 0 && st->p[n] == '-')))
    n++;
  memcpy(buf, st->p, n);
  buf[n] = '\0';
  char *e;
  errno = 0;
  long long x = strtoll(buf, &e, 10);
  if (n == 0 || *e != '\0' || errno == ERANGE || (buf[0] == '-' && n == 1))
    return afail(st, FERRY_EPROTO, "expected an integer at \"%.*s\"", near(st), st->p);
  st->p += n;
  *v = (int64_t)x;
  return FERRY_OK;
}

static int reg(asm_state *st, int64_t *r) {
  if (!accept(st, "%"))
    return afail(st, FERRY_EPROTO, "expected a register at \"%.*s\"", near(st), st->p);
  if (accept(st, "void")) {
    *r = FERRY_RELAX_REG_VOID;
    return FERRY_OK;
  }
  if (accept(st, "vm")) {
    *r = FERRY_RELAX_REG_VM;
    return FERRY_OK;
  }
  int rc = integer(st, r);
  if (rc == FERRY_OK && (*r < 0 || *r > FERRY_RELAX_MAX_REGS))
    return afail(st, FERRY_EPROTO, "register %%%lld out of range", (long long)*r);
  return rc;
}

/* bool, void, or (int|uint|float|bfloat)BITS[xLANES]. */
static int dtype(span s, DLDataType *t) {
  static const struct {
    const char *prefix;
    uint8_t code;
  } codes[] = {{"bfloat", kDLBfloat}, {"float", kDLFloat}, {"uint", kDLUInt}, {"int", kDLInt}};
  if (s.n == 4 && memcmp(s.p, "bool", 4) == 0) {
    *t = (DLDataType){kDLUInt, 1, 1};
    return FERRY_OK;
  }
  for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
    size_t k = strlen(codes[i].prefix);
    if (s.n <= k || memcmp(s.p, codes[i].prefix, k) != 0)
      continue;
    unsigned bits = 0, lanes = 1;
    size_t j = k;
    for (; j < s.n && s.p[j] >= '0' && s.p[j] <= '9' && bits < 1000; j++)
      bits = bits * 10 + (unsigned)(s.p[j] - '0');
    if (j < s.n && s.p[j] == 'x') {
      lanes = 0;
      for (j++; j < s.n && s.p[j] >= '0' && s.p[j] <= '9' && lanes < 100000; j++)
        lanes = lanes * 10 + (unsigned)(s.p[j] - '0');
    }
    if (j != s.n || bits == 0 || bits > 255 || lanes == 0 || lanes > 65535)
      return FERRY_EPROTO;
    *t = (DLDataType){codes[i].code, (uint8_t)bits, (uint16_t)lanes};
    return FERRY_OK;
  }
  return FERRY_EPROTO;
}

static int string_arg(asm_state *st, int64_t *w) {
  /* The opening quote is consumed; decode up to the closing one. */
  char *z = malloc((size_t)(st->end - st->p) + 1);
  if (z == NULL)
    return afail(st, FERRY_ENOMEM, "out of memory");
  size_t n = 0;
  int rc = FERRY_OK;
  for (;;) {
    if (st->p == st->end) {
      rc = afail(st, FERRY_EPROTO, "unterminated string");
      break;
    }
    char c = *st->p++;
    if (c == '"')
      break;
    if (c == '\\') {
      if (st->p == st->end || (*st->p != '"' && *st->p != '\\')) {
        rc = afail(st, FERRY_EPROTO, "only \\\" and \\\\ escapes exist");
        break;
      }
      c = *st->p++;
    }
    z[n++] = c;
  }
  z[n] = '\0';
  if (rc == FERRY_OK)
    *w = ferry_relax_build_str(&st->b, z);
  free(z);
  return rc;
}

static const DLTensor *find_tensor(asm_state *st, span s) {
  for (size_t i = 0; i < st->ntensors; i++)
    if (strlen(st->tensors[i].name) == s.n && memcmp(st->tensors[i].name, s.p, s.n) == 0)
      return st->tensors[i].tensor;
  return NULL;
}

static int arg(asm_state *st, int64_t *w) {
  skip_ws(st);
  int rc;
  int64_t v;
  if (st->p < st->end && *st->p == '%') {
    if ((rc = reg(st, &v)))
      return rc;
    *w = ferry_relax_build_reg(&st->b, v);
  } else if (st->p < st->end && (*st->p == '-' || (*st->p >= '0' && *st->p <= '9'))) {
    if ((rc = integer(st, &v)))
      return rc;
    *w = ferry_relax_build_int(&st->b, v);
  } else if (accept(st, "\"")) {
    if ((rc = string_arg(st, w)))
      return rc;
  } else if (accept(st, "@")) {
    span s;
    char *z;
    if ((rc = name(st, &s)) || (z = dup(st, s)) == NULL)
      return rc ? rc : FERRY_ENOMEM;
    *w = ferry_relax_build_func(&st->b, z);
    free(z);
  } else {
    span s;
    if ((rc = name(st, &s)))
      return rc;
    if (s.n == 5 && memcmp(s.p, "float", 5) == 0 && accept(st, "(")) {
      skip_ws(st);
      char buf[64];
      size_t n = 0;
      while (st->p + n < st->end && st->p[n] != ')' && n < sizeof buf - 1)
        n++;
      memcpy(buf, st->p, n);
      buf[n] = '\0';
      char *e;
      double d = strtod(buf, &e);
      while (*e == ' ' || *e == '\t')
        e++;
      if (e == buf || *e != '\0')
        return afail(st, FERRY_EPROTO, "bad float \"%s\"", buf);
      st->p += n;
      if (!accept(st, ")"))
        return afail(st, FERRY_EPROTO, "expected ')' after the float");
      *w = ferry_relax_build_float(&st->b, d);
    } else if (s.n == 5 && memcmp(s.p, "shape", 5) == 0 && accept(st, "(")) {
      int64_t dims[FERRY_RELAX_MAX_SHAPE_NDIM];
      size_t nd = 0;
      if (!accept(st, ")")) {
        do {
          if (nd == FERRY_RELAX_MAX_SHAPE_NDIM)
            return afail(st, FERRY_ETOOBIG, "shape of more than %d dimensions",
                         FERRY_RELAX_MAX_SHAPE_NDIM);
          if ((rc = integer(st, &dims[nd++])))
            return rc;
        } while (accept(st, ","));
        if (!accept(st, ")"))
          return afail(st, FERRY_EPROTO, "expected ')' after the shape");
      }
      *w = ferry_relax_build_shape(&st->b, nd, dims);
    } else if (s.n == 6 && memcmp(s.p, "tensor", 6) == 0 && accept(st, "(")) {
      span t;
      if ((rc = name(st, &t)))
        return rc;
      if (!accept(st, ")"))
        return afail(st, FERRY_EPROTO, "expected ')' after the tensor's name");
      const DLTensor *tensor = find_tensor(st, t);
      if (tensor == NULL)
        return afail(st, FERRY_ENOTFOUND, "no tensor named \"%.*s\"", (int)t.n, t.p);
      *w = ferry_relax_build_tensor(&st->b, tensor);
    } else {
      DLDataType t;
      if (dtype(s, &t))
        return afail(st, FERRY_EPROTO, "\"%.*s\" is no argument (register, integer, "
                     "float(), dtype, string, shape(), tensor() or @function)",
                     (int)(s.n > 40 ? 40 : s.n), s.p);
      *w = ferry_relax_build_dtype(&st->b, t);
    }
  }
  return st->b.rc ? afail(st, st->b.rc, "%s", ferry_strerror(st->b.rc)) : FERRY_OK;
}

static int stmt_call(asm_state *st) {
  span callee;
  int rc = name(st, &callee);
  if (rc)
    return rc;
  size_t nargs = 0;
  skip_ws(st);
  if (!at_end(st) && !(st->end - st->p >= 2 && memcmp(st->p, "->", 2) == 0)) {
    do {
      if (nargs == st->cap_args) {
        if (nargs == FERRY_RELAX_MAX_CALL_ARGS)
          return afail(st, FERRY_ETOOBIG, "more than %d arguments", FERRY_RELAX_MAX_CALL_ARGS);
        size_t want = st->cap_args ? 2 * st->cap_args : 32;
        int64_t *a = realloc(st->args, want * sizeof *a);
        if (a == NULL)
          return afail(st, FERRY_ENOMEM, "out of memory");
        st->args = a;
        st->cap_args = want;
      }
      if ((rc = arg(st, &st->args[nargs++])))
        return rc;
    } while (accept(st, ","));
  }
  int64_t dst = FERRY_RELAX_REG_VOID;
  if (accept(st, "->") && (rc = reg(st, &dst)))
    return rc;
  if (!at_end(st))
    return afail(st, FERRY_EPROTO, "unexpected \"%.*s\"", near(st), st->p);
  char *z = dup(st, callee);
  if (z == NULL)
    return FERRY_ENOMEM;
  rc = ferry_relax_build_call(&st->b, z, dst, nargs, st->args);
  free(z);
  return rc ? afail(st, rc, "%s", ferry_strerror(rc)) : FERRY_OK;
}

static int stmt_jump(asm_state *st, int is_if) {
  int64_t cond = 0;
  int rc;
  if (is_if && ((rc = reg(st, &cond)) || (!accept(st, ",") &&
                                          (rc = afail(st, FERRY_EPROTO, "expected ','")))))
    return rc;
  span target;
  if ((rc = name(st, &target)))
    return rc;
  if (!at_end(st))
    return afail(st, FERRY_EPROTO, "unexpected \"%.*s\"", near(st), st->p);
  if (st->njumps == FERRY_RELAX_ASM_MAX_LABELS)
    return afail(st, FERRY_ETOOBIG, "more than %d jumps in a function", FERRY_RELAX_ASM_MAX_LABELS);
  st->jumps[st->njumps++] = (label){target, ferry_relax_build_pc(&st->b), st->line};
  /* Offset 0 for now; patched when the function ends. */
  rc = is_if ? ferry_relax_build_if(&st->b, cond, 0) : ferry_relax_build_goto(&st->b, 0);
  return rc ? afail(st, rc, "%s", ferry_strerror(rc)) : FERRY_OK;
}

/* Resolves the function's jumps and ends its body. */
static int end_func(asm_state *st) {
  for (size_t j = 0; j < st->njumps; j++) {
    const label *jump = &st->jumps[j];
    size_t i = 0;
    while (i < st->nlabels &&
           (st->labels[i].name.n != jump->name.n ||
            memcmp(st->labels[i].name.p, jump->name.p, jump->name.n) != 0))
      i++;
    if (i == st->nlabels) {
      st->line = jump->line;
      return afail(st, FERRY_ENOTFOUND, "no label \"%.*s\" in this function", (int)jump->name.n,
                   jump->name.p);
    }
    int rc = ferry_relax_build_patch(&st->b, jump->pc, st->labels[i].pc - jump->pc);
    if (rc)
      return afail(st, rc, "%s", ferry_strerror(rc));
  }
  st->nlabels = st->njumps = 0;
  int rc = ferry_relax_build_end(&st->b);
  return rc ? afail(st, rc, "%s", ferry_strerror(rc)) : FERRY_OK;
}

/* `func NAME(P, ...)`: declares (pass 1) or begins the body (pass 2). */
static int stmt_func(asm_state *st, int pass, int64_t *nfunc) {
  span fname, params[64];
  size_t np = 0;
  int rc = name(st, &fname);
  if (rc)
    return rc;
  if (!accept(st, "("))
    return afail(st, FERRY_EPROTO, "expected '(' after the function's name");
  if (!accept(st, ")")) {
    do {
      if (np == sizeof params / sizeof *params)
        return afail(st, FERRY_ETOOBIG, "more than %zu parameters", np);
      if ((rc = name(st, &params[np++])))
        return rc;
    } while (accept(st, ","));
    if (!accept(st, ")"))
      return afail(st, FERRY_EPROTO, "expected ')' after the parameters");
  }
  if (!at_end(st))
    return afail(st, FERRY_EPROTO, "unexpected \"%.*s\"", near(st), st->p);
  if (pass == 2) {
    if (*nfunc > 0 && (rc = end_func(st)))
      return rc;
    rc = ferry_relax_build_begin(&st->b, (*nfunc)++);
    return rc ? afail(st, rc, "%s", ferry_strerror(rc)) : FERRY_OK;
  }
  char *z[65] = {0};
  z[0] = dup(st, fname);
  for (size_t i = 0; i < np && z[i] != NULL; i++)
    z[i + 1] = dup(st, params[i]);
  rc = z[np] == NULL ? FERRY_ENOMEM : FERRY_OK;
  if (rc == FERRY_OK && ferry_relax_build_decl(&st->b, z[0], np, (const char *const *)z + 1) < 0)
    rc = afail(st, st->b.rc, "cannot declare \"%s\" (declared twice?)", z[0]);
  for (size_t i = 0; i <= np; i++)
    free(z[i]);
  (*nfunc)++;
  return rc;
}

static int statement(asm_state *st, int pass, int64_t *nfunc) {
  if (at_end(st))
    return FERRY_OK;
  if (accept(st, "func ") || accept(st, "func\t"))
    return stmt_func(st, pass, nfunc);
  if (pass == 1)
    return FERRY_OK;
  if (*nfunc == 0)
    return afail(st, FERRY_EPROTO, "a statement before the first func");
  if (accept(st, "call "))
    return stmt_call(st);
  if (accept(st, "ret ")) {
    int64_t r;
    int rc = reg(st, &r);
    if (rc)
      return rc;
    if (!at_end(st))
      return afail(st, FERRY_EPROTO, "unexpected \"%.*s\"", near(st), st->p);
    rc = ferry_relax_build_ret(&st->b, r);
    return rc ? afail(st, rc, "%s", ferry_strerror(rc)) : FERRY_OK;
  }
  if (accept(st, "goto "))
    return stmt_jump(st, 0);
  if (accept(st, "if "))
    return stmt_jump(st, 1);
  span l;
  int rc = name(st, &l);
  if (rc || !accept(st, ":") || !at_end(st))
    return rc ? rc : afail(st, FERRY_EPROTO, "not a statement: \"%.*s\"", (int)l.n, l.p);
  for (size_t i = 0; i < st->nlabels; i++)
    if (st->labels[i].name.n == l.n && memcmp(st->labels[i].name.p, l.p, l.n) == 0)
      return afail(st, FERRY_EDUPLICATE, "label \"%.*s\" twice", (int)l.n, l.p);
  if (st->nlabels == FERRY_RELAX_ASM_MAX_LABELS)
    return afail(st, FERRY_ETOOBIG, "more than %d labels", FERRY_RELAX_ASM_MAX_LABELS);
  st->labels[st->nlabels++] = (label){l, ferry_relax_build_pc(&st->b), st->line};
  return FERRY_OK;
}

static int run_pass(asm_state *st, const char *text, size_t len, int pass, int64_t *nfunc) {
  const char *p = text, *end = text + len;
  st->line = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    st->line++;
    if ((size_t)(le - p) > FERRY_RELAX_ASM_MAX_LINE)
      return afail(st, FERRY_ETOOBIG, "longer than %d bytes", FERRY_RELAX_ASM_MAX_LINE);
    if (memchr(p, '\0', (size_t)(le - p)) != NULL)
      return afail(st, FERRY_EPROTO, "a NUL byte");
    st->p = p;
    st->end = le;
    int rc = statement(st, pass, nfunc);
    if (rc)
      return rc;
    p = nl ? nl + 1 : end;
  }
  return FERRY_OK;
}

int ferry_relax_asm(const char *text, size_t len, enum ferry_relax_gen gen,
                    const ferry_relax_asm_tensor *tensors, size_t ntensors, ferry_buf *out,
                    char *err, size_t errlen) {
  if (errlen > 0)
    err[0] = '\0';
  asm_state *st = calloc(1, sizeof *st); /* the label tables are large */
  if (st == NULL)
    return FERRY_ENOMEM;
  st->tensors = tensors;
  st->ntensors = ntensors;
  st->err = err;
  st->errlen = errlen;
  ferry_relax_builder_init(&st->b, gen);
  int64_t nfunc = 0;
  int rc = run_pass(st, text, len, 1, &nfunc);
  if (rc == FERRY_OK && nfunc == 0)
    rc = afail(st, FERRY_EPROTO, "no func");
  nfunc = 0;
  if (rc == FERRY_OK)
    rc = run_pass(st, text, len, 2, &nfunc);
  if (rc == FERRY_OK)
    rc = end_func(st);
  if (rc == FERRY_OK)
    rc = ferry_relax_build_finish(&st->b, out, err, errlen);
  ferry_relax_builder_close(&st->b);
  free(st->args);
  free(st);
  return rc;
}
