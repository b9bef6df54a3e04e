/* The structured half of `ferry dump --json`: the fields each message adds
 * next to its `text` (docs/internals/dump.md, "JSON fields").  The
 * describers in dump.c and dump_rpc.c call these as they print; with --json
 * off every setter is a no-op, so the text path allocates nothing more.
 * jansson values stay inside this layer: the caller gets the serialised
 * line in its buffer. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/dump.h"
#include "wire/rpc_tensor.h"

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when s[0] does not
 * start one (overlong forms, surrogates and code points past U+10FFFF are
 * invalid, as RFC 3629 says). */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80)
    return 1;
  size_t len;
  unsigned lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0)
      lo = 0xa0;
    else if (c == 0xed)
      hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0)
      lo = 0x90;
    else if (c == 0xf4)
      hi = 0x8f;
  } else
    return 0;
  if (n < len || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xbf)
      return 0;
  return len;
}

json_t *dump_json_str(const char *s, size_t n, size_t max, int *truncated) {
  size_t show = n < max ? n : max;
  if (truncated)
    *truncated = show < n;
  /* JSON strings are Unicode: every byte that is not part of valid UTF-8
   * becomes U+FFFD (3 bytes), so the copy is at most 3x the input.
   * Control bytes, quotes and NUL are escaped by jansson when dumped. */
  char *tmp = malloc(3 * show + 1);
  if (!tmp)
    return NULL;
  size_t o = 0;
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < show;) {
    size_t k = utf8_len(u + i, show - i);
    /* U+FFFF (a noncharacter) is reserved for dump_json_u64's marker. */
    if (k == 3 && !memcmp(u + i, "\xef\xbf\xbf", 3))
      k = 0, i += 2;
    if (k) {
      memcpy(tmp + o, u + i, k);
      o += k;
      i += k;
    } else {
      memcpy(tmp + o, "\xef\xbf\xbd", 3);
      o += 3;
      i++;
    }
  }
  json_t *j = json_stringn(tmp, o);
  free(tmp);
  return j;
}

int dump_jset(ferry_dump_conn *c, const char *key, json_t *v) {
  if (!c->opts.json) {
    json_decref(v);
    return 0;
  }
  if (!v)
    return FERRY_ENOMEM;
  if (!c->jf && !(c->jf = json_object())) {
    json_decref(v);
    return FERRY_ENOMEM;
  }
  return json_object_set_new(c->jf, key, v) ? FERRY_ENOMEM : 0;
}

int dump_jint(ferry_dump_conn *c, const char *key, long long v) {
  return c->opts.json ? dump_jset(c, key, json_integer((json_int_t)v)) : 0;
}

int dump_jtext(ferry_dump_conn *c, const char *key, const char *s) {
  /* Names and reasons may hold bytes from the wire: made valid UTF-8. */
  return c->opts.json ? dump_jset(c, key, dump_json_str(s, strlen(s), (size_t)-1, NULL))
                      : 0;
}

/* jansson's integers are signed 64-bit, handles unsigned (ferry's server
 * tags them in the top bits): one past INT64_MAX is made a string holding
 * U+FFFF and its digits, which dump_json_fix_u64 turns back into a bare
 * number in the dumped text.  No other string can hold U+FFFF. */
#define U64_MARK "\xef\xbf\xbf"
#define U64_MARK_DUMPED "\"\\uFFFF"

json_t *dump_json_u64(uint64_t v) {
  if (v <= (uint64_t)INT64_MAX)
    return json_integer((json_int_t)v);
  char s[32];
  snprintf(s, sizeof s, U64_MARK "%llu", (unsigned long long)v);
  return json_string(s);
}

void dump_json_fix_u64(char *j) {
  size_t mlen = sizeof U64_MARK_DUMPED - 1;
  char *w = j;
  for (const char *r = j; *r;) {
    if (!strncmp(r, U64_MARK_DUMPED, mlen)) {
      /* "\uFFFF1844...": copy the digits, drop the quotes and the mark. */
      r += mlen;
      while (*r >= '0' && *r <= '9')
        *w++ = *r++;
      if (*r == '"')
        r++;
      continue;
    }
    *w++ = *r++;
  }
  *w = 0;
}

int dump_jstr(ferry_dump_conn *c, const char *key, const char *s, size_t n, size_t max) {
  if (!c->opts.json)
    return 0;
  int cut = 0;
  int rc = dump_jset(c, key, dump_json_str(s, n, max, &cut));
  if (!rc && cut) {
    char k[64];
    snprintf(k, sizeof k, "%s_truncated", key);
    rc = dump_jset(c, k, json_true());
  }
  return rc;
}

void dump_json_reset(ferry_dump_conn *c) {
  json_decref(c->jf);
  c->jf = NULL;
}

static json_t *json_dtype(DLDataType t) {
  char s[DUMP_DTYPE_TEXT_MAX];
  dump_dtype_text(s, sizeof s, t);
  return json_string(s);
}

/* {"name": "cpu", "type": 1, "id": 0} */
static json_t *json_device(DLDevice d) {
  return json_pack("{s:s,s:i,s:i}", "name", dump_device_name((int)d.device_type), "type",
                   (int)d.device_type, "id", (int)d.device_id);
}

json_t *dump_json_tensor(const DLTensor *t) {
  json_t *shape = json_array();
  for (int i = 0; shape && i < t->ndim; i++)
    if (json_array_append_new(shape, json_integer((json_int_t)t->shape[i]))) {
      json_decref(shape);
      return NULL;
    }
  if (!shape)
    return NULL;
  /* "o" steals: on a failure json_pack frees what it was given. */
  json_t *j = json_pack("{s:s,s:o,s:o,s:o,s:o,s:o}", "type", "tensor", "dtype",
                        json_dtype(t->dtype), "shape", shape, "device",
                        json_device(t->device), "data",
                        dump_json_u64((uint64_t)(uintptr_t)t->data), "byte_offset",
                        dump_json_u64(t->byte_offset));
  uint64_t nb = 0;
  if (j && ferry_rpc_tensor_nbytes(t, &nb) == FERRY_OK &&
      json_object_set_new(j, "bytes", json_integer((json_int_t)nb))) {
    json_decref(j);
    return NULL;
  }
  return j;
}

static json_t *typed(const char *type, json_t *value) {
  return json_pack("{s:s,s:o}", "type", type, "value", value);
}

json_t *dump_json_value(const ferry_dump_conn *c, const ferry_value *v, const char *fname) {
  switch (v->kind) {
  case FERRY_KIND_NONE:
    return typed("null", json_null());
  case FERRY_KIND_INT:
    return typed("int", json_integer((json_int_t)v->v.i));
  case FERRY_KIND_BOOL:
    return typed("bool", json_boolean(v->v.i));
  case FERRY_KIND_FLOAT:
    /* JSON has no NaN or infinities: those are given as strings. */
    if (!isfinite(v->v.f))
      return typed("float", json_string(isnan(v->v.f) ? "nan" : v->v.f > 0 ? "inf" : "-inf"));
    return typed("float", json_real(v->v.f));
  case FERRY_KIND_OPAQUE:
    return typed("handle", dump_json_u64(v->v.handle));
  case FERRY_KIND_DTYPE:
    return typed("dtype", json_dtype(v->v.dtype));
  case FERRY_KIND_DEVICE:
    return typed("device", json_device(v->v.device));
  case FERRY_KIND_TENSOR:
    return dump_json_tensor(v->v.tensor);
  case FERRY_KIND_STR: {
    int cut = 0;
    json_t *s = dump_json_str(v->v.str.data, v->v.str.len, c->str_limit, &cut);
    return json_pack("{s:s,s:o,s:I,s:b}", "type", "str", "value", s, "len",
                     (json_int_t)v->v.str.len, "truncated", cut);
  }
  case FERRY_KIND_BYTES:
    return json_pack("{s:s,s:I}", "type", "bytes", "len", (json_int_t)v->v.str.len);
  case FERRY_KIND_FUNC:
    if (fname)
      return json_pack("{s:s,s:o,s:o}", "type", "func", "value", dump_json_u64(v->v.handle),
                       "func", dump_json_str(fname, strlen(fname), (size_t)-1, NULL));
    return typed("func", dump_json_u64(v->v.handle));
  case FERRY_KIND_MODULE:
    return typed("module", dump_json_u64(v->v.handle));
  case FERRY_KIND_NDARRAY:
    return typed("ndarray", dump_json_u64(v->v.handle));
  case FERRY_KIND_OBJECT:
    return typed("object", dump_json_u64(v->v.handle));
  }
  return typed("unknown", json_null());
}

/* Text of JSON `body` as a value, or NULL when it is not JSON (or too big
 * to be worth repeating next to the text). */
json_t *dump_json_parse(const uint8_t *body, size_t len, size_t max) {
  if (len > max)
    return NULL;
  /* A U+FFFF inside would pass for dump_json_u64's mark: such a body is
   * given as sanitised text instead (msg_text). */
  static const char esc[] = "\\uffff";
  for (size_t i = 0; i < len; i++) {
    if (i + 3 <= len && !memcmp(body + i, U64_MARK, 3))
      return NULL;
    if (i + 6 <= len && body[i] == '\\') {
      size_t k = 1;
      while (k < 6 && (body[i + k] | 0x20) == esc[k])
        k++;
      if (k == 6)
        return NULL;
    }
  }
  return json_loadb((const char *)body, len, JSON_DECODE_ANY, NULL);
}
