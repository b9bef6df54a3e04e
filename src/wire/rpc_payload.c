#include "wire/rpc_payload.h"

#include <string.h>

#include "base/bytes.h"

int ferry_rpc_is_word_kind(enum ferry_kind kind) {
  switch (kind) {
  case FERRY_KIND_INT:
  case FERRY_KIND_BOOL:
  case FERRY_KIND_FLOAT:
  case FERRY_KIND_OPAQUE:
  case FERRY_KIND_FUNC:
  case FERRY_KIND_MODULE:
  case FERRY_KIND_DTYPE:
  case FERRY_KIND_DEVICE:
    return 1;
  default:
    return 0;
  }
}

void ferry_rpc_word_decode(enum ferry_kind kind, const uint8_t p[8], ferry_value *v) {
  v->kind = kind;
  switch (kind) {
  case FERRY_KIND_INT:
    v->v.i = (int64_t)get_le64(p);
    break;
  case FERRY_KIND_BOOL:
    v->v.i = get_le64(p) != 0;
    break;
  case FERRY_KIND_FLOAT:
    v->v.f = get_f64(p);
    break;
  case FERRY_KIND_DTYPE:
    /* The 4 bytes of padding after it are ignored, as TVM ignores them. */
    v->v.dtype.code = p[0];
    v->v.dtype.bits = p[1];
    v->v.dtype.lanes = get_le16(p + 2);
    break;
  case FERRY_KIND_DEVICE:
    v->v.device.device_type = (DLDeviceType)(int32_t)get_le32(p);
    v->v.device.device_id = (int32_t)get_le32(p + 4);
    break;
  default: /* OPAQUE, FUNC, MODULE: handles travel as 64 bits */
    v->v.handle = get_le64(p);
    break;
  }
}

void ferry_rpc_word_encode(const ferry_value *v, uint8_t b[8]) {
  switch (v->kind) {
  case FERRY_KIND_INT:
  case FERRY_KIND_BOOL:
    put_le64(b, (uint64_t)v->v.i);
    break;
  case FERRY_KIND_FLOAT:
    put_f64(b, v->v.f);
    break;
  case FERRY_KIND_DTYPE:
    b[0] = v->v.dtype.code;
    b[1] = v->v.dtype.bits;
    put_le16(b + 2, v->v.dtype.lanes);
    put_le32(b + 4, 0);
    break;
  case FERRY_KIND_DEVICE:
    put_le32(b, (uint32_t)v->v.device.device_type);
    put_le32(b + 4, (uint32_t)v->v.device.device_id);
    break;
  default:
    put_le64(b, v->v.handle);
    break;
  }
}

int ferry_rpc_str_decode(const uint8_t *p, size_t n, ferry_rpc_arena *a,
                         enum ferry_kind kind, ferry_value *v, size_t *used,
                         ferry_rpc_why *why) {
  if (n < 8)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "string length runs past the packet");
  uint64_t unvalidated_len = get_le64(p);
  if (unvalidated_len > n - 8)
    return ferry_rpc_why_set(why, FERRY_EPROTO, "string of %llu bytes runs past the packet",
                             (unsigned long long)unvalidated_len);
  size_t len = (size_t)unvalidated_len;
  char *s = ferry_rpc_arena_alloc(a, len + 1);
  if (!s)
    return ferry_rpc_why_set(why, FERRY_ENOMEM, "packet decoding memory exhausted");
  memcpy(s, p + 8, len);
  s[len] = 0;
  v->kind = kind;
  v->v.str.data = s;
  v->v.str.len = len;
  *used = 8 + len;
  return FERRY_OK;
}

int ferry_rpc_str_encode(ferry_buf *out, const ferry_value *v) {
  uint8_t b[8];
  put_le64(b, (uint64_t)v->v.str.len);
  size_t mark = out->len;
  int rc = ferry_buf_append(out, b, 8);
  if (!rc)
    rc = ferry_buf_append(out, v->v.str.data, v->v.str.len);
  if (rc)
    out->len = mark;
  return rc;
}
