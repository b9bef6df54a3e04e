/* Blocking tracker link: magic exchange and one-frame request/reply. */
#include "client/tracker_link.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/net.h"
#include "wire/constants.h"

static void link_err(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void link_err(char *err, size_t errcap, const char *fmt, ...) {
  if (!err || errcap == 0 || err[0])
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errcap, fmt, ap);
  va_end(ap);
}

static int64_t deadline_of(int timeout_ms) {
  return timeout_ms < 0 ? -1 : ferry_now_ms() + timeout_ms;
}

void ferry_tracker_link_init(ferry_tracker_link *l) {
  l->fd = -1;
  l->peer[0] = 0;
  l->user = NULL;
  ferry_buf_init(&l->reply, FERRY_TRACKER_MAX_FRAME + 1);
  ferry_tracker_link_set_max_reply(l, FERRY_TRACKER_MAX_FRAME);
}

void ferry_tracker_link_set_max_reply(ferry_tracker_link *l, size_t max) {
  l->max_reply = max;
  l->reply.max = max + 1; /* + the NUL that recv adds */
}

void ferry_tracker_link_close(ferry_tracker_link *l) {
  if (l->fd >= 0)
    close(l->fd);
  l->fd = -1;
  ferry_buf_close(&l->reply);
}

int ferry_tracker_link_connect(ferry_tracker_link *l, const char *host,
                               int port, int timeout_ms, char *err,
                               size_t errcap) {
  ferry_tracker_link_close(l);
  snprintf(l->peer, sizeof l->peer, "%s:%d", host, port);
  int64_t deadline = deadline_of(timeout_ms);
  char cerr[256] = "";
  int rc = ferry_tcp_connect(host, port, timeout_ms, &l->fd, cerr, sizeof cerr);
  if (rc) {
    l->fd = -1;
    link_err(err, errcap, "%s", cerr[0] ? cerr : ferry_strerror(rc));
    return rc;
  }
  uint8_t m[4];
  put_le32(m, FERRY_RPC_TRACKER_MAGIC);
  rc = ferry_write_full(l->fd, m, 4, deadline);
  if (rc == 0)
    rc = ferry_read_full(l->fd, m, 4, deadline, NULL);
  if (rc == 0 && get_le32(m) != FERRY_RPC_TRACKER_MAGIC)
    rc = FERRY_EMAGIC;
  if (rc) {
    /* Without the address: the caller of connect names it. */
    if (rc == FERRY_EMAGIC)
      link_err(err, errcap, "the peer is not an RPC tracker (it answered the magic with %02x%02x%02x%02x)",
               m[0], m[1], m[2], m[3]);
    else
      link_err(err, errcap, "the tracker handshake failed: %s", ferry_strerror(rc));
    ferry_tracker_link_close(l);
  }
  return rc;
}

int ferry_tracker_link_send(ferry_tracker_link *l, const void *body,
                            size_t len, int timeout_ms, char *err,
                            size_t errcap) {
  if (l->fd < 0) {
    link_err(err, errcap, "tracker link not connected");
    return FERRY_ESTATE;
  }
  if (len == 0 || len > FERRY_TRACKER_MAX_FRAME) {
    link_err(err, errcap, "frame of %zu bytes cannot be sent", len);
    return FERRY_ETOOBIG;
  }
  int64_t deadline = deadline_of(timeout_ms);
  uint8_t hdr[4];
  put_le32(hdr, (uint32_t)len);
  int rc = ferry_write_full(l->fd, hdr, 4, deadline);
  if (rc == 0)
    rc = ferry_write_full(l->fd, body, len, deadline);
  if (rc)
    link_err(err, errcap, "%s: send failed: %s", l->peer, ferry_strerror(rc));
  return rc;
}

int ferry_tracker_link_recv(ferry_tracker_link *l, int timeout_ms, char *err,
                            size_t errcap) {
  if (l->fd < 0) {
    link_err(err, errcap, "tracker link not connected");
    return FERRY_ESTATE;
  }
  int64_t deadline = deadline_of(timeout_ms);
  uint8_t hdr[4];
  int rc = ferry_read_full(l->fd, hdr, 4, deadline, NULL);
  if (rc) {
    link_err(err, errcap, "%s: no reply: %s", l->peer, ferry_strerror(rc));
    return rc;
  }
  int32_t unvalidated_n = (int32_t)get_le32(hdr);
  if (unvalidated_n <= 0) {
    link_err(err, errcap, "%s: reply with invalid length %d", l->peer,
             (int)unvalidated_n);
    return FERRY_EPROTO;
  }
  if ((uint32_t)unvalidated_n > l->max_reply) {
    if (l->max_reply % (1u << 20) == 0)
      link_err(err, errcap, "%s: reply of %d bytes is over the %zu MiB limit", l->peer,
               (int)unvalidated_n, l->max_reply >> 20);
    else
      link_err(err, errcap, "%s: reply of %d bytes is over the %zu-byte limit", l->peer,
               (int)unvalidated_n, l->max_reply);
    return FERRY_ETOOBIG;
  }
  size_t n = (size_t)unvalidated_n;
  l->reply.len = 0;
  uint8_t *dst = ferry_buf_reserve(&l->reply, n + 1);
  if (!dst)
    return FERRY_ENOMEM;
  rc = ferry_read_full(l->fd, dst, n, deadline, NULL);
  if (rc) {
    link_err(err, errcap, "%s: reply cut short: %s", l->peer, ferry_strerror(rc));
    return rc;
  }
  dst[n] = 0; /* convenience for printing; not counted in len */
  ferry_buf_commit(&l->reply, n);
  return 0;
}

int ferry_tracker_link_call(ferry_tracker_link *l, const void *body,
                            size_t len, int timeout_ms, char *err,
                            size_t errcap) {
  int rc = ferry_tracker_link_send(l, body, len, timeout_ms, err, errcap);
  if (rc == 0)
    rc = ferry_tracker_link_recv(l, timeout_ms, err, errcap);
  return rc;
}

/* Sends the encoded request in b (closing b) and reads the reply. */
static int call_buf(ferry_tracker_link *l, ferry_buf *b, int enc_rc,
                    int timeout_ms, char *err, size_t errcap) {
  int rc = enc_rc;
  if (rc)
    link_err(err, errcap, "cannot encode the request: %s", ferry_strerror(rc));
  else
    rc = ferry_tracker_link_call(l, b->data, b->len, timeout_ms, err, errcap);
  ferry_buf_close(b);
  return rc;
}

static int expect_zero(ferry_tracker_link *l, const char *what, char *err,
                       size_t errcap) {
  int status = -1;
  char derr[128] = "";
  int rc = ferry_tracker_decode_status(l->reply.data, l->reply.len, &status,
                                       derr, sizeof derr);
  if (rc) {
    link_err(err, errcap, "%s: bad reply to %s: %s", l->peer, what, derr);
    return rc;
  }
  if (status != 0) {
    link_err(err, errcap, "%s: %s refused (status %d)", l->peer, what, status);
    return FERRY_EREMOTE;
  }
  return 0;
}

int ferry_tracker_link_put(ferry_tracker_link *l, const char *key, int port,
                           const char *matchkey, const char *custom_addr,
                           int timeout_ms, char *err, size_t errcap) {
  ferry_buf b;
  ferry_buf_init(&b, FERRY_TRACKER_MAX_FRAME);
  int rc = call_buf(l, &b, ferry_tracker_encode_put(&b, key, port, matchkey, custom_addr),
                    timeout_ms, err, errcap);
  return rc ? rc : expect_zero(l, "PUT", err, errcap);
}

int ferry_tracker_link_update_info(ferry_tracker_link *l, const char *info_key,
                                   const char *custom_addr, int port,
                                   int timeout_ms, char *err, size_t errcap) {
  return ferry_tracker_link_update_info_devices(l, info_key, custom_addr, port, NULL,
                                                timeout_ms, err, errcap);
}

int ferry_tracker_link_update_info_devices(ferry_tracker_link *l, const char *info_key,
                                           const char *custom_addr, int port,
                                           const char *devices, int timeout_ms, char *err,
                                           size_t errcap) {
  ferry_buf b;
  ferry_buf_init(&b, FERRY_TRACKER_MAX_FRAME);
  int rc = call_buf(l, &b,
                    ferry_tracker_encode_update_info_devices(&b, info_key, custom_addr, port, 0,
                                                             devices),
                    timeout_ms, err, errcap);
  return rc ? rc : expect_zero(l, "UPDATE_INFO", err, errcap);
}

int ferry_tracker_link_ping(ferry_tracker_link *l, int timeout_ms, char *err,
                            size_t errcap) {
  ferry_buf b;
  ferry_buf_init(&b, 64);
  int rc = call_buf(l, &b, ferry_tracker_encode_code(&b, FERRY_TRACKER_PING),
                    timeout_ms, err, errcap);
  return rc ? rc : expect_zero(l, "PING", err, errcap);
}

int ferry_tracker_link_pending(ferry_tracker_link *l, ferry_tracker_strlist *out,
                               int timeout_ms, char *err, size_t errcap) {
  ferry_buf b;
  ferry_buf_init(&b, 64);
  int rc = call_buf(l, &b,
                    ferry_tracker_encode_code(&b, FERRY_TRACKER_GET_PENDING_MATCHKEYS),
                    timeout_ms, err, errcap);
  if (rc)
    return rc;
  char derr[128] = "";
  rc = ferry_tracker_decode_pending(l->reply.data, l->reply.len, out, derr,
                                    sizeof derr);
  if (rc)
    link_err(err, errcap, "%s: bad pending-key reply: %s", l->peer, derr);
  return rc;
}

int ferry_tracker_link_request(ferry_tracker_link *l, const char *key,
                               int priority, ferry_tracker_grant *out,
                               int timeout_ms, char *err, size_t errcap) {
  ferry_buf b;
  ferry_buf_init(&b, FERRY_TRACKER_MAX_FRAME);
  int rc = ferry_tracker_encode_request(&b, key, l->user ? l->user : "", priority);
  /* Sending a small frame should never take long even when the wait for
   * a device may be unbounded: cap the send at 10 s. */
  int send_ms = timeout_ms < 0 || timeout_ms > 10000 ? 10000 : timeout_ms;
  if (rc == 0)
    rc = ferry_tracker_link_send(l, b.data, b.len, send_ms, err, errcap);
  ferry_buf_close(&b);
  if (rc == 0)
    rc = ferry_tracker_link_recv(l, timeout_ms, err, errcap);
  if (rc)
    return rc;
  char derr[128] = "";
  rc = ferry_tracker_decode_grant(l->reply.data, l->reply.len, out, derr,
                                  sizeof derr);
  if (rc)
    link_err(err, errcap, "%s: bad REQUEST reply: %s", l->peer, derr);
  return rc;
}

int ferry_tracker_link_summary(ferry_tracker_link *l, ferry_tracker_summary *out,
                               int timeout_ms, char *err, size_t errcap) {
  ferry_buf b;
  ferry_buf_init(&b, 64);
  int rc = call_buf(l, &b, ferry_tracker_encode_code(&b, FERRY_TRACKER_SUMMARY),
                    timeout_ms, err, errcap);
  if (rc)
    return rc;
  char derr[160] = "";
  rc = ferry_tracker_decode_summary(l->reply.data, l->reply.len, out, derr,
                                    sizeof derr);
  if (rc)
    link_err(err, errcap, "%s: bad SUMMARY reply: %s", l->peer, derr);
  return rc;
}
