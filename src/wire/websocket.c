/* WebSocket frame codec (RFC 6455 §5). */
#include "wire/websocket.h"

#include <string.h>

void ferry_ws_decoder_init(ferry_ws_decoder *d, int require_mask,
                           uint64_t max_message) {
  memset(d, 0, sizeof *d);
  d->require_mask = require_mask;
  d->max_message = max_message;
  d->hdr_need = 2;
}

void ferry_ws_mask(uint8_t *p, size_t n, const uint8_t mask[4],
                   uint64_t offset) {
  for (size_t i = 0; i < n; i++)
    p[i] ^= mask[(offset + i) & 3];
}

static int fail(ferry_ws_decoder *d, int rc, const char *why) {
  d->why = why;
  return rc;
}

/* The header is complete: validate it and set up the payload. */
static int start_frame(ferry_ws_decoder *d) {
  const uint8_t *h = d->hdr;
  d->fin = h[0] >> 7;
  d->opcode = h[0] & 0x0f;
  d->masked = h[1] >> 7;
  uint64_t unvalidated_len = h[1] & 0x7f;
  size_t at = 2;
  if (unvalidated_len == 126) {
    unvalidated_len = ((uint64_t)h[2] << 8) | h[3];
    at = 4;
  } else if (unvalidated_len == 127) {
    unvalidated_len = 0;
    for (int i = 0; i < 8; i++)
      unvalidated_len = (unvalidated_len << 8) | h[2 + i];
    at = 10;
  }
  if (d->masked)
    memcpy(d->mask, h + at, 4);
  if (h[0] & 0x70)
    return fail(d, FERRY_EPROTO, "reserved bits set (no extension was agreed)");
  if (d->require_mask && !d->masked)
    return fail(d, FERRY_EPROTO, "unmasked frame from a client");
  switch (d->opcode) {
  case FERRY_WS_CLOSE:
  case FERRY_WS_PING:
  case FERRY_WS_PONG:
    if (!d->fin || unvalidated_len > sizeof d->ctl)
      return fail(d, FERRY_EPROTO, "fragmented or oversized control frame");
    d->ctl_len = 0;
    break;
  case FERRY_WS_TEXT:
    return fail(d, FERRY_EUNSUPPORTED, "text message (only binary is valid)");
  case FERRY_WS_BINARY:
    if (d->in_message)
      return fail(d, FERRY_EPROTO, "new message inside a fragmented one");
    d->in_message = 1;
    d->message_len = 0;
    break;
  case FERRY_WS_CONT:
    if (!d->in_message)
      return fail(d, FERRY_EPROTO, "continuation frame without a message");
    break;
  default:
    return fail(d, FERRY_EPROTO, "unknown opcode");
  }
  if (d->opcode == FERRY_WS_BINARY || d->opcode == FERRY_WS_CONT) {
    if (unvalidated_len > d->max_message - d->message_len)
      return fail(d, FERRY_ETOOBIG, "message over the size bound");
    d->message_len += unvalidated_len;
  }
  d->remaining = unvalidated_len;
  d->offset = 0;
  return 0;
}

static size_t header_size(const uint8_t h[2]) {
  size_t n = 2;
  uint8_t l = h[1] & 0x7f;
  if (l == 126)
    n += 2;
  else if (l == 127)
    n += 8;
  if (h[1] & 0x80)
    n += 4;
  return n;
}

/* The payload of the current frame is complete. */
static int end_frame(ferry_ws_decoder *d, const uint8_t **data, size_t *len) {
  d->hdr_len = 0;
  d->hdr_need = 2;
  switch (d->opcode) {
  case FERRY_WS_PING:
    *data = d->ctl;
    *len = d->ctl_len;
    return FERRY_WS_EV_PING;
  case FERRY_WS_PONG:
    *data = d->ctl;
    *len = d->ctl_len;
    return FERRY_WS_EV_PONG;
  case FERRY_WS_CLOSE:
    *data = d->ctl;
    *len = d->ctl_len;
    return FERRY_WS_EV_CLOSE;
  default:
    if (d->fin)
      d->in_message = 0;
    return 0;
  }
}

int ferry_ws_decode(ferry_ws_decoder *d, uint8_t *p, size_t n, size_t *used,
                    const uint8_t **data, size_t *len) {
  size_t i = 0;
  *data = NULL;
  *len = 0;
  if (d->why) {
    *used = 0;
    return FERRY_EPROTO;
  }
  while (i < n) {
    if (d->hdr_len < d->hdr_need) {
      /* Header bytes: 2 first, then the size the first two announce. */
      while (d->hdr_len < d->hdr_need && i < n) {
        d->hdr[d->hdr_len++] = p[i++];
        if (d->hdr_len == 2)
          d->hdr_need = header_size(d->hdr);
      }
      if (d->hdr_len < d->hdr_need)
        break;
      int rc = start_frame(d);
      if (rc) {
        *used = i;
        return rc;
      }
      if (d->remaining == 0) {
        int ev = end_frame(d, data, len);
        if (ev) {
          *used = i;
          return ev;
        }
      }
      continue;
    }
    /* Payload bytes. */
    size_t take = n - i;
    if (take > d->remaining)
      take = (size_t)d->remaining;
    uint8_t *chunk = p + i;
    if (d->masked)
      ferry_ws_mask(chunk, take, d->mask, d->offset);
    d->offset += take;
    d->remaining -= take;
    i += take;
    int data_frame = d->opcode == FERRY_WS_BINARY || d->opcode == FERRY_WS_CONT;
    if (!data_frame) {
      memcpy(d->ctl + d->ctl_len, chunk, take);
      d->ctl_len += take;
    }
    if (d->remaining == 0) {
      int ev = end_frame(d, data, len);
      if (ev) {
        *used = i;
        return ev;
      }
    }
    if (data_frame && take > 0) {
      *data = chunk;
      *len = take;
      *used = i;
      return FERRY_WS_EV_DATA;
    }
  }
  *used = i;
  return FERRY_EAGAIN;
}

size_t ferry_ws_frame_header(uint8_t out[FERRY_WS_MAX_HEADER], int opcode,
                             uint64_t len, const uint8_t *mask) {
  size_t n = 0;
  out[n++] = (uint8_t)(0x80 | (opcode & 0x0f));
  uint8_t m = mask ? 0x80 : 0;
  if (len < 126) {
    out[n++] = (uint8_t)(m | len);
  } else if (len <= 0xffff) {
    out[n++] = (uint8_t)(m | 126);
    out[n++] = (uint8_t)(len >> 8);
    out[n++] = (uint8_t)len;
  } else {
    out[n++] = (uint8_t)(m | 127);
    for (int i = 7; i >= 0; i--)
      out[n++] = (uint8_t)(len >> (8 * i));
  }
  if (mask) {
    memcpy(out + n, mask, 4);
    n += 4;
  }
  return n;
}
