/* A bounded read cursor over dmlc "stream" encoded bytes (spec
 * runtime-abi.md section 1): little-endian integers, u64-length strings.
 * Every read checks the remaining length first and fails with
 * FERRY_EAGAIN (input ends early) instead of reading past the end.
 * Used by the module-blob and parameter codecs. */
#ifndef FERRY_WIRE_STREAM_H
#define FERRY_WIRE_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "base/bytes.h"
#include "ferry/error.h"

typedef struct ferry_stream {
  const uint8_t *p;
  size_t len;
  size_t pos;
} ferry_stream;

static inline void ferry_stream_init(ferry_stream *s, const uint8_t *p, size_t len) {
  s->p = p;
  s->len = len;
  s->pos = 0;
}

static inline size_t ferry_stream_left(const ferry_stream *s) { return s->len - s->pos; }

static inline int ferry_stream_u64(ferry_stream *s, uint64_t *out) {
  if (ferry_stream_left(s) < 8)
    return FERRY_EAGAIN;
  *out = get_le64(s->p + s->pos);
  s->pos += 8;
  return FERRY_OK;
}

static inline int ferry_stream_u32(ferry_stream *s, uint32_t *out) {
  if (ferry_stream_left(s) < 4)
    return FERRY_EAGAIN;
  *out = get_le32(s->p + s->pos);
  s->pos += 4;
  return FERRY_OK;
}

/* n bytes in place; *out points into the input. */
static inline int ferry_stream_bytes(ferry_stream *s, size_t n, const uint8_t **out) {
  if (ferry_stream_left(s) < n)
    return FERRY_EAGAIN;
  *out = s->p + s->pos;
  s->pos += n;
  return FERRY_OK;
}

/* A u64-length string of at most max bytes, in place (not NUL-terminated). */
static inline int ferry_stream_str(ferry_stream *s, size_t max, const char **out, size_t *len) {
  ferry_stream save = *s;
  uint64_t unvalidated_len;
  int rc = ferry_stream_u64(s, &unvalidated_len);
  if (rc)
    return rc;
  if (unvalidated_len > max) {
    *s = save;
    return FERRY_ETOOBIG;
  }
  const uint8_t *p;
  rc = ferry_stream_bytes(s, (size_t)unvalidated_len, &p);
  if (rc) {
    *s = save;
    return rc;
  }
  *out = (const char *)p;
  *len = (size_t)unvalidated_len;
  return FERRY_OK;
}

#endif
