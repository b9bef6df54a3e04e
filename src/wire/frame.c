#include "wire/frame.h"

#include "base/bytes.h"

void ferry_frame_reader_init(ferry_frame_reader *r, int expect_magic,
                             uint32_t magic, size_t max_frame) {
  /* Room for one maximal frame plus its header and a following header. */
  ferry_buf_init(&r->in, max_frame + 8);
  r->expect_magic = expect_magic;
  r->magic = magic;
  r->max_frame = max_frame;
  r->consumed = 0;
  r->bad_length = 0;
}

void ferry_frame_reader_close(ferry_frame_reader *r) {
  ferry_buf_close(&r->in);
}

static void drop_consumed(ferry_frame_reader *r) {
  if (r->consumed) {
    ferry_buf_consume(&r->in, r->consumed);
    r->consumed = 0;
  }
}

int ferry_frame_reader_feed(ferry_frame_reader *r, const void *p, size_t n) {
  drop_consumed(r);
  return ferry_buf_append(&r->in, p, n);
}

int ferry_frame_reader_next(ferry_frame_reader *r, const uint8_t **body,
                            size_t *len) {
  drop_consumed(r);
  if (r->expect_magic) {
    if (r->in.len < 4)
      return FERRY_EAGAIN;
    if (get_le32(r->in.data) != r->magic)
      return FERRY_EMAGIC;
    r->expect_magic = 0;
    r->consumed = 4;
    return FERRY_FRAME_MAGIC;
  }
  if (r->in.len < 4)
    return FERRY_EAGAIN;
  int32_t unvalidated_n = (int32_t)get_le32(r->in.data);
  if (unvalidated_n <= 0) {
    r->bad_length = unvalidated_n;
    return FERRY_EPROTO;
  }
  if ((uint32_t)unvalidated_n > r->max_frame) {
    r->bad_length = unvalidated_n;
    return FERRY_ETOOBIG;
  }
  size_t n = (size_t)unvalidated_n;
  if (r->in.len - 4 < n)
    return FERRY_EAGAIN;
  *body = r->in.data + 4;
  *len = n;
  r->consumed = 4 + n;
  return FERRY_FRAME_MESSAGE;
}

int ferry_frame_encode(ferry_buf *out, const void *body, size_t len) {
  if (len > INT32_MAX)
    return FERRY_ETOOBIG;
  uint8_t hdr[4];
  put_le32(hdr, (uint32_t)len);
  size_t mark = out->len;
  int rc = ferry_buf_append(out, hdr, 4);
  if (rc == 0)
    rc = ferry_buf_append(out, body, len);
  if (rc)
    out->len = mark;
  return rc;
}
