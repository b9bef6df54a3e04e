#include "wire/handshake.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "wire/constants.h"

void ferry_handshake_reader_init(ferry_handshake_reader *r,
                                 int want_key_always, size_t max_key) {
  memset(r, 0, sizeof *r);
  r->want_key = want_key_always;
  r->max_key = max_key;
  ferry_buf_init(&r->key, max_key);
}

void ferry_handshake_reader_close(ferry_handshake_reader *r) {
  ferry_buf_close(&r->key);
}

int ferry_handshake_reader_feed(ferry_handshake_reader *r, const uint8_t *p,
                                size_t n, size_t *used) {
  size_t i = 0;
  *used = 0;
  if (r->done)
    return 1;
  while (r->hdr_len < 4 && i < n)
    r->hdr[r->hdr_len++] = p[i++];
  if (r->hdr_len < 4) {
    *used = i;
    return FERRY_EAGAIN;
  }
  r->word = (int32_t)get_le32(r->hdr);
  if (!r->want_key && r->word != FERRY_RPC_CODE_SUCCESS) {
    *used = i;
    r->done = 1;
    return 1;
  }
  while (r->hdr_len < 8 && i < n)
    r->hdr[r->hdr_len++] = p[i++];
  if (r->hdr_len < 8) {
    *used = i;
    return FERRY_EAGAIN;
  }
  r->unvalidated_key_len = (int32_t)get_le32(r->hdr + 4);
  if (r->unvalidated_key_len < 0) {
    *used = i;
    return FERRY_EPROTO;
  }
  if ((size_t)r->unvalidated_key_len > r->max_key) {
    *used = i;
    return FERRY_ETOOBIG;
  }
  size_t want = (size_t)r->unvalidated_key_len - r->key.len;
  size_t take = n - i < want ? n - i : want;
  if (take) {
    int rc = ferry_buf_append(&r->key, p + i, take);
    if (rc) {
      *used = i;
      return rc;
    }
    i += take;
  }
  *used = i;
  if (r->key.len < (size_t)r->unvalidated_key_len)
    return FERRY_EAGAIN;
  r->done = 1;
  return 1;
}

const char *ferry_handshake_key(const ferry_handshake_reader *r) {
  return r->key.data ? (const char *)r->key.data : "";
}

size_t ferry_handshake_key_len(const ferry_handshake_reader *r) {
  return r->key.len;
}

int ferry_handshake_encode(ferry_buf *out, int32_t word, const char *key,
                           size_t key_len) {
  uint8_t hdr[8];
  put_le32(hdr, (uint32_t)word);
  if (!key)
    return ferry_buf_append(out, hdr, 4);
  if (key_len > INT32_MAX)
    return FERRY_ETOOBIG;
  put_le32(hdr + 4, (uint32_t)key_len);
  size_t mark = out->len;
  int rc = ferry_buf_append(out, hdr, 8);
  if (rc == 0)
    rc = ferry_buf_append(out, key, key_len);
  if (rc)
    out->len = mark;
  return rc;
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

/* Parses "-timeout=<v>" the way both TVM servers accept it: Python prints
 * ints as "10" and floats as "10.0" or "0.01". */
static int parse_timeout(const char *v, size_t len, double *out) {
  char tmp[64];
  if (len == 0 || len >= sizeof tmp)
    return FERRY_EINVAL;
  memcpy(tmp, v, len);
  tmp[len] = 0;
  char *end = NULL;
  double d = strtod(tmp, &end);
  if (end != tmp + len || !isfinite(d) || d < 0)
    return FERRY_EINVAL;
  *out = d;
  return 0;
}

int ferry_key_string_parse(const char *s, size_t len, ferry_key_string *out) {
  memset(out, 0, sizeof *out);
  size_t i = 0;
  while (i < len && is_space(s[i]))
    i++;
  size_t tok = i;
  while (i < len && !is_space(s[i]))
    i++;
  const char *colon = memchr(s + tok, ':', i - tok);
  if (!colon)
    return FERRY_EPROTO;
  size_t role_len = (size_t)(colon - (s + tok));
  if (role_len >= sizeof out->role)
    return FERRY_EPROTO;
  memcpy(out->role, s + tok, role_len);
  out->role[role_len] = 0;
  out->body = colon + 1;
  out->body_len = (size_t)(s + i - out->body);
  while (i < len) {
    while (i < len && is_space(s[i]))
      i++;
    size_t opt = i;
    while (i < len && !is_space(s[i]))
      i++;
    static const char kTimeout[] = "-timeout=";
    size_t k = sizeof kTimeout - 1;
    if (i - opt > k && memcmp(s + opt, kTimeout, k) == 0) {
      int rc = parse_timeout(s + opt + k, i - opt - k, &out->timeout_s);
      if (rc)
        return rc;
      out->has_timeout = 1;
    }
  }
  return 0;
}
