/* .npy header codec; see npy.h for the format.  The header is a Python dict
 * literal, so the parser below is a tiny recursive-descent reader for
 * exactly the subset NumPy writes (three keys, string / bool / int-tuple
 * values), with every read bounded by the header length. */
#include "wire/npy.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/bytes.h"

static const uint8_t npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

static int fail(char *err, size_t errcap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errcap, int code, const char *fmt, ...) {
  if (err && errcap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
  }
  return code;
}

size_t ferry_npy_itemsize(DLDataType dtype) {
  return ((size_t)dtype.bits * dtype.lanes + 7) / 8;
}

/* ---- dtype <-> descr ---------------------------------------------------- */

typedef struct dtype_row {
  char kind;     /* NumPy kind character */
  uint8_t size;  /* bytes */
  uint8_t code;  /* DLDataTypeCode */
  uint8_t bits;
  const char *name;
} dtype_row;

static const dtype_row dtype_rows[] = {
    {'b', 1, kDLUInt, 1, "bool"},       {'i', 1, kDLInt, 8, "int8"},
    {'i', 2, kDLInt, 16, "int16"},      {'i', 4, kDLInt, 32, "int32"},
    {'i', 8, kDLInt, 64, "int64"},      {'u', 1, kDLUInt, 8, "uint8"},
    {'u', 2, kDLUInt, 16, "uint16"},    {'u', 4, kDLUInt, 32, "uint32"},
    {'u', 8, kDLUInt, 64, "uint64"},    {'f', 2, kDLFloat, 16, "float16"},
    {'f', 4, kDLFloat, 32, "float32"},  {'f', 8, kDLFloat, 64, "float64"},
    {'c', 8, kDLComplex, 64, "complex64"},
    {'c', 16, kDLComplex, 128, "complex128"},
};
#define NROWS (sizeof dtype_rows / sizeof dtype_rows[0])

static const dtype_row *row_of_dtype(DLDataType t) {
  if (t.lanes != 1)
    return NULL;
  for (size_t i = 0; i < NROWS; i++)
    if (dtype_rows[i].code == t.code && dtype_rows[i].bits == t.bits)
      return &dtype_rows[i];
  return NULL;
}

int ferry_npy_descr(DLDataType dtype, char *buf, size_t cap) {
  const dtype_row *r = row_of_dtype(dtype);
  if (!r)
    return FERRY_EUNSUPPORTED;
  if ((size_t)snprintf(buf, cap, "%c%u", r->kind, (unsigned)r->size) >= cap)
    return FERRY_EINVAL;
  return 0;
}

const char *ferry_npy_dtype_name(DLDataType dtype) {
  const dtype_row *r = row_of_dtype(dtype);
  return r ? r->name : "?";
}

int ferry_npy_dtype_parse(const char *name, DLDataType *out) {
  for (size_t i = 0; i < NROWS; i++) {
    if (strcmp(name, dtype_rows[i].name) == 0) {
      out->code = dtype_rows[i].code;
      out->bits = dtype_rows[i].bits;
      out->lanes = 1;
      return 0;
    }
  }
  if (strcmp(name, "uint1") == 0) { /* TVM's spelling of bool */
    *out = (DLDataType){kDLUInt, 1, 1};
    return 0;
  }
  return FERRY_EINVAL;
}

void ferry_npy_swap(void *data, uint64_t nbytes, DLDataType dtype) {
  size_t w = ferry_npy_itemsize(dtype);
  if (dtype.code == kDLComplex)
    w /= 2; /* real and imaginary parts are separate numbers */
  if (w <= 1)
    return;
  uint8_t *p = data;
  for (uint64_t off = 0; off + w <= nbytes; off += w)
    for (size_t i = 0; i < w / 2; i++) {
      uint8_t t = p[off + i];
      p[off + i] = p[off + w - 1 - i];
      p[off + w - 1 - i] = t;
    }
}

/* ---- header dict parser ------------------------------------------------- */

typedef struct cursor {
  const char *p;
  const char *end;
} cursor;

static void skip_ws(cursor *c) {
  while (c->p < c->end &&
         (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static int eat(cursor *c, char ch) {
  skip_ws(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return 1;
  }
  return 0;
}

/* A quoted Python string without escapes (NumPy never writes any in the
 * keys or descr); s and len point into the header. */
static int read_str(cursor *c, const char **s, size_t *len) {
  skip_ws(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
    return FERRY_EPROTO;
  char q = *c->p++;
  const char *start = c->p;
  while (c->p < c->end && *c->p != q) {
    if (*c->p == '\\')
      return FERRY_EPROTO;
    c->p++;
  }
  if (c->p >= c->end)
    return FERRY_EPROTO;
  *s = start;
  *len = (size_t)(c->p - start);
  c->p++;
  return 0;
}

static int read_word(cursor *c, const char *w) {
  skip_ws(c);
  size_t n = strlen(w);
  if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0)
    return 0;
  c->p += n;
  return 1;
}

static int parse_descr(const char *s, size_t len, ferry_npy_info *out,
                       char *err, size_t errcap) {
  if (len < 2 || len > 6)
    return fail(err, errcap, FERRY_EUNSUPPORTED,
                "unsupported .npy dtype '%.*s'", (int)(len > 40 ? 40 : len), s);
  char order = s[0];
  size_t i = 1;
  if (order != '<' && order != '>' && order != '|' && order != '=')
    return fail(err, errcap, FERRY_EUNSUPPORTED,
                "unsupported .npy dtype '%.*s'", (int)len, s);
  char kind = s[i++];
  unsigned size = 0;
  if (i >= len)
    return fail(err, errcap, FERRY_EUNSUPPORTED, "unsupported .npy dtype '%.*s'",
                (int)len, s);
  for (; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return fail(err, errcap, FERRY_EUNSUPPORTED,
                  "unsupported .npy dtype '%.*s'", (int)len, s);
    size = size * 10 + (unsigned)(s[i] - '0');
  }
  for (size_t r = 0; r < NROWS; r++) {
    if (dtype_rows[r].kind == kind && dtype_rows[r].size == size) {
      out->dtype.code = dtype_rows[r].code;
      out->dtype.bits = dtype_rows[r].bits;
      out->dtype.lanes = 1;
      /* '=' is the writer's native order; NumPy always writes '<' or '>'
       * explicitly, so '=' only comes from hand-made files on the (little
       * endian) machines ferry supports. */
      out->big_endian = order == '>' && size > 1;
      return 0;
    }
  }
  return fail(err, errcap, FERRY_EUNSUPPORTED,
              "unsupported .npy dtype '%.*s' (supported: bool, int8-64, "
              "uint8-64, float16/32/64, complex64/128)",
              (int)len, s);
}

static int parse_shape(cursor *c, ferry_npy_info *out, char *err, size_t errcap) {
  if (!eat(c, '('))
    return fail(err, errcap, FERRY_EPROTO, ".npy header: shape is not a tuple");
  out->ndim = 0;
  for (;;) {
    if (eat(c, ')'))
      return 0;
    skip_ws(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
      return fail(err, errcap, FERRY_EPROTO, ".npy header: bad shape entry");
    uint64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
      unsigned d = (unsigned)(*c->p++ - '0');
      if (v > ((uint64_t)INT64_MAX - d) / 10)
        return fail(err, errcap, FERRY_ETOOBIG, ".npy header: extent too large");
      v = v * 10 + d;
    }
    if (c->p < c->end && *c->p == 'L') /* Python 2 long literal */
      c->p++;
    if (out->ndim >= FERRY_NPY_MAX_NDIM)
      return fail(err, errcap, FERRY_ETOOBIG,
                  ".npy array has more than %d dimensions", FERRY_NPY_MAX_NDIM);
    out->shape[out->ndim++] = (int64_t)v;
    if (eat(c, ','))
      continue;
    if (eat(c, ')'))
      return 0;
    return fail(err, errcap, FERRY_EPROTO, ".npy header: bad shape tuple");
  }
}

static int parse_dict(cursor *c, ferry_npy_info *out, char *err, size_t errcap) {
  int have_descr = 0, have_order = 0, have_shape = 0, rc;
  if (!eat(c, '{'))
    return fail(err, errcap, FERRY_EPROTO, ".npy header is not a dict");
  for (;;) {
    if (eat(c, '}'))
      break;
    const char *key;
    size_t klen;
    if (read_str(c, &key, &klen) != 0 || !eat(c, ':'))
      return fail(err, errcap, FERRY_EPROTO, ".npy header: bad dict key");
    if (klen == 5 && memcmp(key, "descr", 5) == 0 && !have_descr) {
      const char *s;
      size_t len;
      skip_ws(c);
      if (c->p < c->end && *c->p == '[')
        return fail(err, errcap, FERRY_EUNSUPPORTED,
                    "structured .npy arrays are not supported");
      if (read_str(c, &s, &len) != 0)
        return fail(err, errcap, FERRY_EPROTO, ".npy header: bad descr");
      if ((rc = parse_descr(s, len, out, err, errcap)) != 0)
        return rc;
      have_descr = 1;
    } else if (klen == 13 && memcmp(key, "fortran_order", 13) == 0 &&
               !have_order) {
      if (read_word(c, "True"))
        return fail(err, errcap, FERRY_EUNSUPPORTED,
                    "Fortran-ordered .npy arrays are not supported "
                    "(save np.ascontiguousarray(a) instead)");
      if (!read_word(c, "False"))
        return fail(err, errcap, FERRY_EPROTO, ".npy header: bad fortran_order");
      have_order = 1;
    } else if (klen == 5 && memcmp(key, "shape", 5) == 0 && !have_shape) {
      if ((rc = parse_shape(c, out, err, errcap)) != 0)
        return rc;
      have_shape = 1;
    } else {
      return fail(err, errcap, FERRY_EPROTO,
                  ".npy header: unexpected or repeated key '%.*s'",
                  (int)(klen > 40 ? 40 : klen), key);
    }
    if (eat(c, ','))
      continue;
    if (eat(c, '}'))
      break;
    return fail(err, errcap, FERRY_EPROTO, ".npy header: expected ',' or '}'");
  }
  skip_ws(c);
  if (c->p != c->end)
    return fail(err, errcap, FERRY_EPROTO, ".npy header: bytes after the dict");
  if (!have_descr || !have_order || !have_shape)
    return fail(err, errcap, FERRY_EPROTO,
                ".npy header lacks one of descr, fortran_order, shape");
  return 0;
}

int ferry_npy_parse_header(const uint8_t *p, size_t n, uint64_t max_data_bytes,
                           ferry_npy_info *out, char *err, size_t errcap) {
  size_t m = n < sizeof npy_magic ? n : sizeof npy_magic;
  if (memcmp(p, npy_magic, m) != 0)
    return fail(err, errcap, FERRY_EMAGIC, "not a .npy file (bad magic)");
  if (n < 8)
    return FERRY_EAGAIN;
  int major = p[6], minor = p[7];
  if (major < 1 || major > 3)
    return fail(err, errcap, FERRY_EUNSUPPORTED,
                "unsupported .npy format version %d.%d", major, minor);
  size_t prefix = major == 1 ? FERRY_NPY_PREFIX_V1 : FERRY_NPY_PREFIX_V2;
  if (n < prefix)
    return FERRY_EAGAIN;
  uint64_t unvalidated_hlen = major == 1 ? get_le16(p + 8) : get_le32(p + 8);
  if (unvalidated_hlen > FERRY_NPY_MAX_HEADER)
    return fail(err, errcap, FERRY_ETOOBIG,
                ".npy header of %" PRIu64 " bytes is over the %d-byte limit",
                unvalidated_hlen, FERRY_NPY_MAX_HEADER);
  size_t hlen = (size_t)unvalidated_hlen;
  if (n < prefix + hlen)
    return FERRY_EAGAIN;
  memset(out, 0, sizeof *out);
  out->major = major;
  out->minor = minor;
  cursor c = {(const char *)p + prefix, (const char *)p + prefix + hlen};
  int rc = parse_dict(&c, out, err, errcap);
  if (rc)
    return rc;
  uint64_t total = ferry_npy_itemsize(out->dtype);
  for (int i = 0; i < out->ndim; i++) {
    uint64_t d = (uint64_t)out->shape[i];
    if (d != 0 && total > UINT64_MAX / d)
      return fail(err, errcap, FERRY_ETOOBIG, ".npy array size overflows");
    total *= d;
  }
  if (total > max_data_bytes)
    return fail(err, errcap, FERRY_ETOOBIG,
                ".npy array of %" PRIu64 " bytes is over the %" PRIu64
                "-byte limit", total, max_data_bytes);
  out->nbytes = total;
  out->data_offset = prefix + hlen;
  return 0;
}

/* ---- writer ------------------------------------------------------------- */

int ferry_npy_write_header(ferry_buf *out, DLDataType dtype, int ndim,
                           const int64_t *shape) {
  char descr[8];
  if (ferry_npy_descr(dtype, descr, sizeof descr) != 0)
    return FERRY_EUNSUPPORTED;
  if (ndim < 0 || ndim > FERRY_NPY_MAX_NDIM)
    return FERRY_EINVAL;
  /* Longest dict: 32 extents of 19 digits plus ", " each, and fixed text. */
  char dict[1024];
  size_t len = (size_t)snprintf(dict, sizeof dict,
                                "{'descr': '%c%s', 'fortran_order': False, 'shape': (",
                                dtype.bits == 1 || dtype.bits == 8 ? '|' : '<',
                                descr);
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return FERRY_EINVAL;
    len += (size_t)snprintf(dict + len, sizeof dict - len, "%s%" PRId64,
                            i ? ", " : "", shape[i]);
  }
  len += (size_t)snprintf(dict + len, sizeof dict - len, "%s), }",
                          ndim == 1 ? "," : "");
  /* Pad with spaces so that the data starts on a 64-byte boundary (what
   * NumPy does since 1.x, for memory-mapping), then the final newline. */
  size_t total = FERRY_NPY_PREFIX_V1 + len + 1;
  size_t pad = (64 - total % 64) % 64;
  size_t hlen = len + pad + 1;
  uint8_t *w = ferry_buf_reserve(out, FERRY_NPY_PREFIX_V1 + hlen);
  if (!w)
    return out->len + FERRY_NPY_PREFIX_V1 + hlen > out->max ? FERRY_ETOOBIG
                                                              : FERRY_ENOMEM;
  memcpy(w, npy_magic, sizeof npy_magic);
  w[6] = 1;
  w[7] = 0;
  put_le16(w + 8, (uint16_t)hlen);
  memcpy(w + FERRY_NPY_PREFIX_V1, dict, len);
  memset(w + FERRY_NPY_PREFIX_V1 + len, ' ', pad);
  w[FERRY_NPY_PREFIX_V1 + len + pad] = '\n';
  ferry_buf_commit(out, FERRY_NPY_PREFIX_V1 + hlen);
  return 0;
}
