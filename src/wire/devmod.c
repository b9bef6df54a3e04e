/* Device-module payload decoder (see devmod.h).  Two passes would avoid
 * the allocations, but every count is bounded by the bytes it describes
 * (each function takes at least 24 bytes, each argument 4), so what a
 * payload can make this allocate is at most a small multiple of its size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/devmod.h"
#include "wire/stream.h"

static char *dup_str(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p != NULL) {
    memcpy(p, s, n);
    p[n] = 0;
  }
  return p;
}

void ferry_devmod_free(ferry_devmod *m) {
  for (size_t i = 0; i < m->nfuncs; i++) {
    ferry_devmod_func *f = &m->funcs[i];
    free(f->name);
    free(f->arg_types);
    for (int t = 0; t < f->ntags; t++)
      free(f->tags[t]);
    free(f->tags);
  }
  free(m->funcs);
  free(m->data);
  memset(m, 0, sizeof *m);
}

#define FAIL(code, ...)                       \
  do {                                        \
    snprintf(why, why_cap, __VA_ARGS__);      \
    rc = (code);                              \
    goto fail;                                \
  } while (0)

/* A u64 count of items of at least `each` bytes, at most max. */
static int read_count(ferry_stream *s, uint64_t max, size_t each, uint64_t *out) {
  uint64_t unvalidated_n;
  int rc = ferry_stream_u64(s, &unvalidated_n);
  if (rc)
    return rc;
  if (unvalidated_n > max)
    return FERRY_ETOOBIG;
  if (unvalidated_n > ferry_stream_left(s) / each)
    return FERRY_EAGAIN;
  *out = unvalidated_n;
  return FERRY_OK;
}

static int decode_func(ferry_stream *s, enum ferry_devmod_gen gen, ferry_devmod_func *f,
                       char *why, size_t why_cap) {
  int rc;
  const char *str;
  size_t len;
  uint64_t n;
  /* name: empty in v0.20 (the key is the name), the symbol in v0.26 */
  if ((rc = ferry_stream_str(s, FERRY_DEVMOD_MAX_NAME, &str, &len)))
    FAIL(rc, "function info of %s: name is %s", f->name,
         rc == FERRY_ETOOBIG ? "too long" : "truncated");
  if ((rc = read_count(s, FERRY_DEVMOD_MAX_ARGS, 4, &n)))
    FAIL(rc, "function info of %s: arg_types %s", f->name,
         rc == FERRY_ETOOBIG ? "over 1024 entries" : "truncated");
  f->nargs = (int)n;
  f->arg_types = calloc(n ? (size_t)n : 1, sizeof *f->arg_types);
  if (f->arg_types == NULL)
    FAIL(FERRY_ENOMEM, "out of memory");
  for (uint64_t i = 0; i < n; i++) {
    const uint8_t *b;
    if ((rc = ferry_stream_bytes(s, 4, &b)))
      FAIL(rc, "function info of %s: arg_types truncated", f->name);
    f->arg_types[i].code = b[0];
    f->arg_types[i].bits = b[1];
    f->arg_types[i].lanes = (uint16_t)(b[2] | (b[3] << 8));
  }
  if ((rc = read_count(s, FERRY_DEVMOD_MAX_TAGS, 8, &n)))
    FAIL(rc, "function info of %s: launch_param_tags %s", f->name,
         rc == FERRY_ETOOBIG ? "over 16 entries" : "truncated");
  f->tags = calloc(n ? (size_t)n : 1, sizeof *f->tags);
  if (f->tags == NULL)
    FAIL(FERRY_ENOMEM, "out of memory");
  for (uint64_t i = 0; i < n; i++) {
    if ((rc = ferry_stream_str(s, FERRY_DEVMOD_MAX_TAG, &str, &len)))
      FAIL(rc, "function info of %s: launch tag %s", f->name,
           rc == FERRY_ETOOBIG ? "too long" : "truncated");
    if ((f->tags[i] = dup_str(str, len)) == NULL)
      FAIL(FERRY_ENOMEM, "out of memory");
    f->ntags = (int)i + 1;
  }
  if (gen == FERRY_DEVMOD_V026) {
    if ((rc = read_count(s, FERRY_DEVMOD_MAX_ARGS, 4, &n)))
      FAIL(rc, "function info of %s: arg_extra_tags %s", f->name,
           rc == FERRY_ETOOBIG ? "over 1024 entries" : "truncated");
    const uint8_t *b;
    if ((rc = ferry_stream_bytes(s, (size_t)n * 4, &b)))
      FAIL(rc, "function info of %s: arg_extra_tags truncated", f->name);
  }
  return FERRY_OK;
fail:
  return rc;
}

int ferry_devmod_decode(const uint8_t *p, size_t avail, enum ferry_devmod_gen gen,
                        ferry_devmod *out, char *why, size_t why_cap) {
  memset(out, 0, sizeof *out);
  ferry_devmod m;
  memset(&m, 0, sizeof m);
  ferry_stream s;
  ferry_stream_init(&s, p, avail);
  const char *str;
  size_t len;
  uint64_t n;
  int rc;
  if ((rc = ferry_stream_str(&s, FERRY_DEVMOD_MAX_FMT, &str, &len)))
    FAIL(rc, "fmt is %s", rc == FERRY_ETOOBIG ? "over 32 bytes" : "truncated");
  memcpy(m.fmt, str, len);
  m.fmt[len] = 0;
  if (memchr(str, 0, len) != NULL)
    FAIL(FERRY_EPROTO, "fmt contains a NUL byte");
  if ((rc = read_count(&s, FERRY_DEVMOD_MAX_FUNCS, 24, &n)))
    FAIL(rc, "function map %s", rc == FERRY_ETOOBIG ? "has over 4096 entries" : "truncated");
  m.funcs = calloc(n ? (size_t)n : 1, sizeof *m.funcs);
  if (m.funcs == NULL)
    FAIL(FERRY_ENOMEM, "out of memory");
  for (uint64_t i = 0; i < n; i++) {
    ferry_devmod_func *f = &m.funcs[i];
    m.nfuncs = (size_t)i + 1;
    if ((rc = ferry_stream_str(&s, FERRY_DEVMOD_MAX_NAME, &str, &len)))
      FAIL(rc, "function map key %s", rc == FERRY_ETOOBIG ? "too long" : "truncated");
    if (len == 0 || memchr(str, 0, len) != NULL)
      FAIL(FERRY_EPROTO, "function map key is empty or contains a NUL byte");
    if ((f->name = dup_str(str, len)) == NULL)
      FAIL(FERRY_ENOMEM, "out of memory");
    for (uint64_t j = 0; j < i; j++)
      if (strcmp(m.funcs[j].name, f->name) == 0)
        FAIL(FERRY_EPROTO, "function map has %s twice", f->name);
    if ((rc = decode_func(&s, gen, f, why, why_cap)))
      goto fail;
  }
  if ((rc = ferry_stream_str(&s, FERRY_DEVMOD_MAX_DATA, &str, &len)))
    FAIL(rc, "code is %s", rc == FERRY_ETOOBIG ? "over 256 MiB" : "truncated");
  if ((m.data = dup_str(str, len)) == NULL)
    FAIL(FERRY_ENOMEM, "out of memory");
  m.data_len = len;
  m.consumed = s.pos;
  *out = m;
  return FERRY_OK;
fail:
  ferry_devmod_free(&m);
  return rc;
}

static const char delim[] = "// Function: ";

int ferry_devmod_kernel_source(const char *src, size_t len, const char *name, const char **out,
                               size_t *out_len) {
  const size_t dl = sizeof delim - 1, nl = strlen(name);
  const char *end = src + len;
  const char *at = src;
  /* Each delimiter starts a line (TVM finds the first occurrence anywhere,
   * then every following one; codegen writes them at line starts). */
  while (at < end) {
    const char *d = NULL;
    for (const char *q = at; q + dl <= end; q++)
      if (memcmp(q, delim, dl) == 0) {
        d = q;
        break;
      }
    if (d == NULL)
      break;
    const char *nm = d + dl;
    const char *eol = memchr(nm, '\n', (size_t)(end - nm));
    if (eol == NULL)
      eol = end;
    const char *body = eol < end ? eol + 1 : end;
    const char *next = NULL;
    for (const char *q = body; q + dl <= end; q++)
      if (memcmp(q, delim, dl) == 0) {
        next = q;
        break;
      }
    if (next == NULL)
      next = end;
    if ((size_t)(eol - nm) == nl && memcmp(nm, name, nl) == 0) {
      *out = body;
      *out_len = (size_t)(next - body);
      return FERRY_OK;
    }
    at = next;
  }
  return FERRY_ENOTFOUND;
}
