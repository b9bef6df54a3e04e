/* Python json.dumps-compatible output over jansson values.
 *
 * jansson's own dumper is close but not identical (upper-case \u escapes,
 * %.17g floats), and the C++/JVM servers search the pending-key reply as
 * raw text, so ferry prints every JSON text itself. */
#include "wire/tracker_json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decodes one UTF-8 sequence at s (n bytes left).  Returns its length and
 * the code point in *cp, or 0 if the bytes are not valid UTF-8. */
static size_t utf8_next(const unsigned char *s, size_t n, unsigned *cp) {
  unsigned c = s[0];
  size_t len;
  unsigned min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2, min = 0x80, c &= 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, min = 0x800, c &= 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, min = 0x10000, c &= 0x07;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    c = (c << 6) | (s[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
    return 0;
  *cp = c;
  return len;
}

int ferry_tracker_json_string(ferry_buf *out, const char *s, size_t n) {
  size_t mark = out->len;
  const unsigned char *p = (const unsigned char *)s;
  int rc = ferry_buf_append(out, "\"", 1);
  size_t i = 0;
  while (rc == 0 && i < n) {
    /* Copy the longest run that needs no escaping in one append. */
    size_t j = i;
    while (j < n && p[j] >= 0x20 && p[j] < 0x7F && p[j] != '"' && p[j] != '\\')
      j++;
    if (j > i) {
      rc = ferry_buf_append(out, p + i, j - i);
      i = j;
      continue;
    }
    char esc[16];
    unsigned cp;
    size_t len = utf8_next(p + i, n - i, &cp);
    if (len == 0) {
      rc = FERRY_EINVAL;
      break;
    }
    switch (cp) {
    case '"': rc = ferry_buf_append(out, "\\\"", 2); break;
    case '\\': rc = ferry_buf_append(out, "\\\\", 2); break;
    case '\n': rc = ferry_buf_append(out, "\\n", 2); break;
    case '\r': rc = ferry_buf_append(out, "\\r", 2); break;
    case '\t': rc = ferry_buf_append(out, "\\t", 2); break;
    case '\b': rc = ferry_buf_append(out, "\\b", 2); break;
    case '\f': rc = ferry_buf_append(out, "\\f", 2); break;
    default:
      if (cp > 0xFFFF) {
        /* Python writes astral characters as a surrogate pair. */
        unsigned v = cp - 0x10000;
        snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800 + (v >> 10),
                 0xDC00 + (v & 0x3FF));
      } else {
        snprintf(esc, sizeof esc, "\\u%04x", cp);
      }
      rc = ferry_buf_append(out, esc, strlen(esc));
    }
    i += len;
  }
  if (rc == 0)
    rc = ferry_buf_append(out, "\"", 1);
  if (rc)
    out->len = mark;
  return rc;
}

void ferry_tracker_json_real(char out[40], double d) {
  if (isnan(d)) {
    strcpy(out, "NaN");
    return;
  }
  if (isinf(d)) {
    strcpy(out, d < 0 ? "-Infinity" : "Infinity");
    return;
  }
  /* Shortest decimal that reads back as the same double, as repr() picks. */
  char tmp[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
    if (strtod(tmp, NULL) == d)
      break;
  }
  /* tmp is "[-]D[.DDD]e[+-]XX": split into sign, digits and exponent. */
  const char *p = tmp;
  int neg = 0;
  if (*p == '-') {
    neg = 1;
    p++;
  }
  char digits[24];
  size_t nd = 0;
  while (*p && *p != 'e') {
    if (*p != '.' && nd < sizeof digits - 1)
      digits[nd++] = *p;
    p++;
  }
  digits[nd] = 0;
  int exp = *p == 'e' ? atoi(p + 1) : 0;
  while (nd > 1 && digits[nd - 1] == '0') /* %.*e may pad with zeros */
    digits[--nd] = 0;
  char *o = out;
  if (neg)
    *o++ = '-';
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      for (int i = 0; i <= exp; i++)
        *o++ = (size_t)i < nd ? digits[i] : '0';
      *o++ = '.';
      if ((size_t)exp + 1 < nd) {
        for (size_t i = (size_t)exp + 1; i < nd; i++)
          *o++ = digits[i];
      } else {
        *o++ = '0';
      }
    } else {
      *o++ = '0';
      *o++ = '.';
      for (int i = 0; i < -exp - 1; i++)
        *o++ = '0';
      for (size_t i = 0; i < nd; i++)
        *o++ = digits[i];
    }
    *o = 0;
  } else {
    *o++ = digits[0];
    if (nd > 1) {
      *o++ = '.';
      for (size_t i = 1; i < nd; i++)
        *o++ = digits[i];
    }
    /* Doubles have |exp| <= 324: at most "e-324" plus the NUL. */
    int ax = exp < 0 ? -exp : exp;
    *o++ = 'e';
    *o++ = exp < 0 ? '-' : '+';
    if (ax >= 100)
      *o++ = (char)('0' + ax / 100);
    *o++ = (char)('0' + ax / 10 % 10);
    *o++ = (char)('0' + ax % 10);
    *o = 0;
  }
}

int ferry_tracker_json_dump(ferry_buf *out, const json_t *v) {
  char num[40];
  size_t mark = out->len;
  int rc = 0;
  switch (json_typeof(v)) {
  case JSON_NULL: return ferry_buf_append(out, "null", 4);
  case JSON_TRUE: return ferry_buf_append(out, "true", 4);
  case JSON_FALSE: return ferry_buf_append(out, "false", 5);
  case JSON_INTEGER:
    snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return ferry_buf_append(out, num, strlen(num));
  case JSON_REAL:
    ferry_tracker_json_real(num, json_real_value(v));
    return ferry_buf_append(out, num, strlen(num));
  case JSON_STRING:
    return ferry_tracker_json_string(out, json_string_value(v),
                                     json_string_length(v));
  case JSON_ARRAY: {
    rc = ferry_buf_append(out, "[", 1);
    for (size_t i = 0; rc == 0 && i < json_array_size(v); i++) {
      if (i)
        rc = ferry_buf_append(out, ", ", 2);
      if (rc == 0)
        rc = ferry_tracker_json_dump(out, json_array_get(v, i));
    }
    if (rc == 0)
      rc = ferry_buf_append(out, "]", 1);
    break;
  }
  case JSON_OBJECT: {
    rc = ferry_buf_append(out, "{", 1);
    int first = 1;
    const char *k;
    size_t klen;
    json_t *item;
    /* jansson >= 2.8 iterates in insertion order, which is what Python's
     * dict (and so TVM's SUMMARY) shows. */
    json_object_keylen_foreach((json_t *)v, k, klen, item) {
      if (rc)
        break;
      if (!first)
        rc = ferry_buf_append(out, ", ", 2);
      first = 0;
      if (rc == 0)
        rc = ferry_tracker_json_string(out, k, klen);
      if (rc == 0)
        rc = ferry_buf_append(out, ": ", 2);
      if (rc == 0)
        rc = ferry_tracker_json_dump(out, item);
    }
    if (rc == 0)
      rc = ferry_buf_append(out, "}", 1);
    break;
  }
  default:
    rc = FERRY_EINVAL;
  }
  if (rc)
    out->len = mark;
  return rc;
}

int ferry_tracker_json_str(ferry_buf *out, const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_STRING:
    return ferry_buf_append(out, json_string_value(v), json_string_length(v));
  case JSON_NULL: return ferry_buf_append(out, "None", 4);
  case JSON_TRUE: return ferry_buf_append(out, "True", 4);
  case JSON_FALSE: return ferry_buf_append(out, "False", 5);
  default: return ferry_tracker_json_dump(out, v);
  }
}

void ferry_tracker_json_errf(char *err, size_t errcap, const char *fmt, ...) {
  if (!err || errcap == 0 || err[0])
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errcap, fmt, ap);
  va_end(ap);
}

json_t *ferry_tracker_json_parse(const uint8_t *body, size_t len, char *err,
                                 size_t errcap) {
  json_error_t jerr;
  json_t *v = json_loadb((const char *)body, len, JSON_DECODE_ANY, &jerr);
  if (!v)
    ferry_tracker_json_errf(err, errcap, "not valid JSON: %s", jerr.text);
  return v;
}

char *ferry_tracker_json_strdup(const json_t *s, size_t max, int *rc) {
  size_t n = json_string_length(s);
  if (n > max) {
    *rc = FERRY_ETOOBIG;
    return NULL;
  }
  char *p = malloc(n + 1);
  if (!p) {
    *rc = FERRY_ENOMEM;
    return NULL;
  }
  memcpy(p, json_string_value(s), n + 1);
  return p;
}
