/* WebSocket (RFC 6455) for the proxy's web side (tracker-proxy-server.md
 * §6.6): the HTTP upgrade request, the accept key, and the frame codec.
 * Pure: no sockets; every length is bounded before it is trusted.
 *
 * The frame decoder streams: payload bytes of data frames are unmasked in
 * place and handed out as they arrive, so nothing is buffered per message
 * except control-frame payloads (at most 125 bytes).  Message boundaries
 * carry no meaning for the proxy (the payload is one byte stream), but a
 * message larger than the configured bound is still refused, as TVM's
 * tornado refuses messages over 10 MiB. */
#ifndef FERRY_WIRE_WEBSOCKET_H
#define FERRY_WIRE_WEBSOCKET_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define FERRY_WS_MAX_MESSAGE (10u << 20) /* tornado's max_message_size */
#define FERRY_HTTP_MAX_HEAD 8192         /* request line + headers */

enum ferry_ws_opcode {
  FERRY_WS_CONT = 0x0,
  FERRY_WS_TEXT = 0x1,
  FERRY_WS_BINARY = 0x2,
  FERRY_WS_CLOSE = 0x8,
  FERRY_WS_PING = 0x9,
  FERRY_WS_PONG = 0xA,
};

/* ---- HTTP upgrade request --------------------------------------------- */

typedef struct ferry_http_request {
  ferry_buf head;        /* raw request head, NUL-terminated */
  int done;
  /* Set when done (point into head; "" when absent): */
  const char *method;
  const char *path;      /* request target without a query string */
  const char *host;
  const char *origin;    /* Origin, or else Sec-WebSocket-Origin */
  const char *upgrade;
  const char *connection;
  const char *ws_key;
  const char *ws_version;
} ferry_http_request;

void ferry_http_request_init(ferry_http_request *r);
void ferry_http_request_close(ferry_http_request *r);

/* Feeds bytes of a request head.  *used: bytes taken (those after the
 * blank line are left to the caller).  Returns 1 when the head is complete
 * and parsed, FERRY_EAGAIN for more, FERRY_ETOOBIG past
 * FERRY_HTTP_MAX_HEAD, FERRY_EPROTO for a malformed head. */
int ferry_http_request_feed(ferry_http_request *r, const uint8_t *p, size_t n,
                            size_t *used) FERRY_MUST_CHECK;

/* Is it a WebSocket upgrade (GET, Upgrade: websocket, Connection contains
 * "upgrade", a key, version 13)?  1 or 0. */
int ferry_http_is_ws_upgrade(const ferry_http_request *r);

/* Tornado's same-origin rule: no Origin header is accepted (non-browser
 * clients); otherwise the host[:port] part of the Origin URL must equal
 * the Host header (case-insensitively).  1 if allowed. */
int ferry_http_origin_allowed(const ferry_http_request *r);

/* Sec-WebSocket-Accept for a client key: base64(SHA-1(key + GUID)).
 * out gets 28 characters and a NUL. */
void ferry_ws_accept_key(const char *client_key, char out[29]);

/* Appends the 101 Switching Protocols response. */
int ferry_ws_upgrade_response(ferry_buf *out,
                              const char *client_key) FERRY_MUST_CHECK;
/* Appends an HTTP/1.1 response with Connection: close; body NULL appends
 * only the head (the caller streams body_len bytes after it). */
int ferry_http_response(ferry_buf *out, int status, const char *reason,
                        const char *content_type, const void *body,
                        size_t body_len) FERRY_MUST_CHECK;

/* SHA-1 of n bytes (exposed for tests). */
void ferry_sha1(const void *p, size_t n, uint8_t out[20]);

/* ---- frames ------------------------------------------------------------ */

typedef struct ferry_ws_decoder {
  int require_mask;     /* 1 on the server side: client frames must be masked */
  uint64_t max_message;
  /* frame header being read */
  uint8_t hdr[14];
  size_t hdr_len, hdr_need;
  /* current frame */
  int opcode, fin, masked;
  uint8_t mask[4];
  uint64_t remaining;   /* payload bytes still to come */
  uint64_t offset;      /* payload bytes already seen (mask position) */
  /* current data message */
  int in_message;       /* a data message has started and not finished */
  uint64_t message_len;
  /* control frame payload */
  uint8_t ctl[125];
  size_t ctl_len;
  const char *why;      /* static text after an error */
} ferry_ws_decoder;

enum ferry_ws_event {
  FERRY_WS_EV_DATA = 1, /* binary payload: data, len (unmasked, in p) */
  FERRY_WS_EV_PING,     /* data, len: payload to echo in a pong */
  FERRY_WS_EV_PONG,
  FERRY_WS_EV_CLOSE,    /* peer closes; data, len: its status + reason */
};

void ferry_ws_decoder_init(ferry_ws_decoder *d, int require_mask,
                           uint64_t max_message);

/* Decodes from p[0, n) (which it modifies: payload is unmasked in place).
 * Returns an event with *used bytes taken, or FERRY_EAGAIN once all n bytes
 * were taken with no event.  DATA events point into p; PING/CLOSE payloads
 * point into the decoder (valid until the next call).  Errors (decoder
 * spent; d->why says what): FERRY_EPROTO (reserved bits, unmasked client
 * frame, unknown opcode, bad control frame, continuation without a start),
 * FERRY_EUNSUPPORTED (a text message: only binary is valid here),
 * FERRY_ETOOBIG (a message over max_message). */
int ferry_ws_decode(ferry_ws_decoder *d, uint8_t *p, size_t n, size_t *used,
                    const uint8_t **data, size_t *len) FERRY_MUST_CHECK;

#define FERRY_WS_MAX_HEADER 14
/* Writes a frame header (FIN set) for a payload of len bytes into out and
 * returns its size (2..14).  mask: NULL for server frames; otherwise the 4
 * key bytes (the caller masks the payload with ferry_ws_mask). */
size_t ferry_ws_frame_header(uint8_t out[FERRY_WS_MAX_HEADER], int opcode,
                             uint64_t len, const uint8_t *mask);
/* XORs p[0, n) with the key, starting at payload offset `offset`. */
void ferry_ws_mask(uint8_t *p, size_t n, const uint8_t mask[4],
                   uint64_t offset);

#endif
