/* The proxy's link to the tracker (tracker-proxy-server.md §6.4), driven by
 * the event loop: never a blocking call, one request in flight at a time.
 *
 * What it sends, in this order of priority whenever the link is idle:
 *   UPDATE_INFO {"key": "server:proxy[K0,...]"} after the key set grew,
 *   PUT [3, K, [port, "K:<random>"], null] for each parked server not yet
 *   offered, and every 2 s GET_PENDING_MATCHKEYS to learn which keys were
 *   handed out (those not used within 5 s get a new key: B1 fixed).
 * Each reply is checked; anything unexpected drops the link, except FAIL
 * (-1) to a PUT or UPDATE_INFO: ferry's tracker answers so past its
 * per-peer limits, and the link (with every other offer) stays.  The
 * proxy keeps within those limits itself (pairing.h), so a refusal means
 * the tracker is tighter than ours: PUTs pause for 2 s and the refused
 * server is offered again.
 *
 * Fixes of TVM's defects: after a lost link every parked server is offered
 * again with a fresh key and UPDATE_INFO is sent again (B3-B5); when an
 * offered server leaves, the link is dropped and re-made at once so that
 * the tracker withdraws every offer and only live servers are re-offered
 * (B6: the tracker protocol has no message to withdraw a single offer). */
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "base/log.h"
#include "base/util.h"
#include "proxy/proxy_internal.h"
#include "wire/constants.h"
#include "wire/tracker_msg.h"

#define TL_RETRY_MS 2000
#define TL_POLL_MS 2000
#define TL_REPLY_MS 10000

typedef struct tl_write {
  uv_write_t req;
  size_t len;
  uint8_t data[];
} tl_write;

static void tl_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void tl_write_cb(uv_write_t *req, int status) {
  (void)status; /* a failed write surfaces as a read error or timeout */
  free(ferry_container_of(req, tl_write, req));
}

static void tl_closed_cb(uv_handle_t *h) {
  ferry_proxy *px = h->data;
  px->tl.tcp_open = 0;
}

/* Drops the link; the tick reconnects after `delay_ms`. */
static void tl_drop(ferry_proxy *px, const char *why, int64_t delay_ms) {
  tlink *tl = &px->tl;
  if (tl->state == TL_IDLE)
    return;
  int was_up = tl->state != TL_CONNECTING;
  if (why)
    ferry_warn("lost tracker connection: %s; reconnecting in %g s", why,
               (double)delay_ms / 1000);
  tl->state = TL_IDLE;
  tl->flush = 0;
  if (tl->tcp_open && !uv_is_closing((uv_handle_t *)&tl->tcp))
    uv_close((uv_handle_t *)&tl->tcp, tl_closed_cb);
  ferry_frame_reader_close(&tl->rd);
  tl->reconnect_at_ms = px_now(px) + delay_ms;
  if (!was_up)
    return;
  /* The tracker withdraws this link's offers when it sees the close: every
   * parked server is offered again, under a new key, on the next link. */
  int rc = ferry_pairing_reoffer_all(&px->table, px_now(px));
  if (rc)
    ferry_warn("cannot renew match keys: %s", ferry_strerror(rc));
}

static int tl_send(ferry_proxy *px, const ferry_buf *body) {
  ferry_buf framed;
  ferry_buf_init(&framed, FERRY_TRACKER_MAX_FRAME + 4);
  int rc = ferry_frame_encode(&framed, body->data, body->len);
  if (rc == 0) {
    tl_write *w = malloc(sizeof *w + framed.len);
    if (!w) {
      rc = FERRY_ENOMEM;
    } else {
      memcpy(w->data, framed.data, framed.len);
      uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)framed.len);
      if (uv_write(&w->req, (uv_stream_t *)&px->tl.tcp, &b, 1, tl_write_cb)) {
        free(w);
        rc = FERRY_EIO;
      }
    }
  }
  ferry_buf_close(&framed);
  return rc;
}

/* One log line per parked server that is not offered, naming the limit. */
static void tl_report_held(ferry_proxy *px) {
  int why = 0;
  pconn *c;
  while ((c = ferry_pairing_take_held(&px->table, &why)) != NULL) {
    if (why == FERRY_PAIR_HOLD_OFFERS)
      ferry_warn("%s not offered at the tracker yet: %zu servers are offered, "
                 "the most one tracker link offers (FERRY_PAIRING_MAX_OFFERS = %d); "
                 "it waits for a free slot", c->name, px->table.noffers,
                 FERRY_PAIRING_MAX_OFFERS);
    else if (why == FERRY_PAIR_HOLD_KEYS)
      ferry_warn("%s not offered at the tracker yet: %zu device keys are listed "
                 "in server:proxy[...], the most it lists "
                 "(FERRY_PAIRING_MAX_KEYSET = %d); it waits for a free slot",
                 c->name, px->table.nkeys, FERRY_PAIRING_MAX_KEYSET);
    else
      ferry_warn("%s not offered at the tracker yet: its key would make "
                 "server:proxy[...] longer than %d bytes "
                 "(FERRY_PAIRING_MAX_INFO_KEY); it waits for a free slot",
                 c->name, FERRY_PAIRING_MAX_INFO_KEY);
  }
}

/* Sends the next due request, if any. */
static void tl_pump(ferry_proxy *px) {
  tlink *tl = &px->tl;
  if (tl->state != TL_READY)
    return;
  if (tl->flush) {
    tl_drop(px, NULL, 0);
    return;
  }
  ferry_buf body;
  ferry_buf_init(&body, FERRY_TRACKER_MAX_FRAME);
  int rc = 0, code = 0;
  if (ferry_pairing_take_keyset_change(&px->table)) {
    ferry_buf key;
    ferry_buf_init(&key, FERRY_PAIRING_MAX_INFO_KEY + 64);
    rc = ferry_pairing_info_key(&px->table, &key);
    if (rc == 0)
      rc = ferry_tracker_encode_update_info(&body, (const char *)key.data, NULL,
                                            px->port, 0);
    ferry_buf_close(&key);
    code = FERRY_TRACKER_UPDATE_INFO;
  } else {
    char dev[FERRY_HANDSHAKE_MAX_KEY + 1];
    char *mk = tl->put_key;
    int got = 0;
    if (px_now(px) >= tl->put_hold_ms) {
      got = ferry_pairing_next_put(&px->table, dev, sizeof dev, mk,
                                   sizeof tl->put_key);
      if (got == 0)
        tl_report_held(px);
    }
    if (got == 1) {
      rc = ferry_tracker_encode_put(&body, dev, px->port, mk, NULL);
      code = FERRY_TRACKER_PUT;
      char shown[128];
      px_printable(shown, sizeof shown, mk, strlen(mk));
      ferry_info("offering %s at the tracker", shown);
    } else if (got < 0) {
      rc = got;
    } else if (px_now(px) >= tl->next_poll_ms) {
      ferry_pairing_poll_sent(&px->table);
      rc = ferry_tracker_encode_code(&body, FERRY_TRACKER_GET_PENDING_MATCHKEYS);
      code = FERRY_TRACKER_GET_PENDING_MATCHKEYS;
      tl->next_poll_ms = px_now(px) + TL_POLL_MS;
    }
  }
  if (rc == 0 && code)
    rc = tl_send(px, &body);
  ferry_buf_close(&body);
  if (rc) {
    tl_drop(px, ferry_strerror(rc), TL_RETRY_MS);
    return;
  }
  if (code) {
    tl->pending = code;
    tl->state = TL_WAIT_REPLY;
    tl->reply_deadline_ms = px_now(px) + TL_REPLY_MS;
  }
}

static int tl_on_reply(ferry_proxy *px, const uint8_t *body, size_t len) {
  tlink *tl = &px->tl;
  char err[256] = "";
  int rc;
  if (tl->pending == FERRY_TRACKER_GET_PENDING_MATCHKEYS) {
    ferry_tracker_strlist list = {0};
    rc = ferry_tracker_decode_pending(body, len, &list, err, sizeof err);
    if (rc == 0) {
      int n = ferry_pairing_pending_reply(&px->table, (const char *const *)list.items,
                                          list.n, px_now(px));
      if (n > 0)
        ferry_info("no incoming connection on %d handed-out key(s); offering "
                   "new keys", n);
      else if (n < 0)
        rc = n;
    }
    ferry_tracker_strlist_close(&list);
  } else {
    int status = -1;
    rc = ferry_tracker_decode_status(body, len, &status, err, sizeof err);
    if (rc == 0 && status == FERRY_TRACKER_FAIL) {
      /* Refused, the link kept: see the top of this file. */
      char shown[128];
      if (tl->pending == FERRY_TRACKER_PUT) {
        px_printable(shown, sizeof shown, tl->put_key, strlen(tl->put_key));
        ferry_warn("the tracker refused the offer of %s (FAIL: over its limits); "
                   "%zu servers are offered on this link; trying again in %g s",
                   shown, px->table.noffers - 1, TL_RETRY_MS / 1000.0);
        ferry_pairing_put_refused(&px->table, tl->put_key);
        tl->put_hold_ms = px_now(px) + TL_RETRY_MS;
      } else {
        ferry_warn("the tracker refused UPDATE_INFO of server:proxy[...] with %zu "
                   "device keys (FAIL: over its limits); keeping the link",
                   px->table.nkeys);
      }
      tl->state = TL_READY;
      tl->pending = 0;
      return 0;
    }
    if (rc == 0 && status != 0) {
      snprintf(err, sizeof err, "tracker answered %d", status);
      rc = FERRY_EREMOTE;
    }
  }
  if (rc) {
    ferry_warn("unexpected tracker reply: %s", err[0] ? err : ferry_strerror(rc));
    return rc;
  }
  tl->state = TL_READY;
  tl->pending = 0;
  return 0;
}

static void tl_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  ferry_proxy *px = h->data;
  /* Consumed at once by the frame reader, so one buffer serves every read. */
  buf->base = px->tl.scratch;
  buf->len = sizeof px->tl.scratch;
}

static void tl_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  ferry_proxy *px = s->data;
  tlink *tl = &px->tl;
  if (tl->state == TL_IDLE || nread == 0)
    return;
  if (nread < 0) {
    tl_drop(px, nread == UV_EOF ? "closed by the tracker" : uv_strerror((int)nread),
            TL_RETRY_MS);
    return;
  }
  int rc = ferry_frame_reader_feed(&tl->rd, buf->base, (size_t)nread);
  const uint8_t *body;
  size_t len;
  while (rc == 0) {
    rc = ferry_frame_reader_next(&tl->rd, &body, &len);
    if (rc == FERRY_EAGAIN) {
      rc = 0;
      break;
    }
    if (rc == FERRY_FRAME_MAGIC) {
      ferry_info("connected to the tracker");
      tl->state = TL_READY;
      tl->failures = 0;
      tl->next_poll_ms = px_now(px) + TL_POLL_MS;
      rc = 0;
      continue;
    }
    if (rc == FERRY_FRAME_MESSAGE) {
      if (tl->state != TL_WAIT_REPLY) {
        rc = FERRY_EPROTO;
        break;
      }
      rc = tl_on_reply(px, body, len);
    }
  }
  if (rc) {
    tl_drop(px, rc == FERRY_EMAGIC ? "the peer is not an RPC tracker"
                                   : ferry_strerror(rc),
            TL_RETRY_MS);
    return;
  }
  tl_pump(px);
}

static void tl_connect_cb(uv_connect_t *req, int status) {
  ferry_proxy *px = req->data;
  tlink *tl = &px->tl;
  if (tl->state != TL_CONNECTING)
    return;
  if (status < 0) {
    /* The first failure is worth a warning, repeats only at debug level. */
    if (tl->failures++ == 0)
      ferry_warn("cannot connect to the tracker: %s; retrying every %g s",
                 uv_strerror(status), TL_RETRY_MS / 1000.0);
    else
      ferry_debug("cannot connect to the tracker: %s", uv_strerror(status));
    tl_drop(px, NULL, TL_RETRY_MS);
    return;
  }
  uv_tcp_nodelay(&tl->tcp, 1);
  ferry_frame_reader_init(&tl->rd, 1, FERRY_RPC_TRACKER_MAGIC, FERRY_TRACKER_MAX_FRAME);
  tl->state = TL_MAGIC;
  tl->reply_deadline_ms = px_now(px) + TL_REPLY_MS;
  tl_write *w = malloc(sizeof *w + 4);
  if (!w) {
    tl_drop(px, "out of memory", TL_RETRY_MS);
    return;
  }
  put_le32(w->data, FERRY_RPC_TRACKER_MAGIC);
  uv_buf_t b = uv_buf_init((char *)w->data, 4);
  if (uv_write(&w->req, (uv_stream_t *)&tl->tcp, &b, 1, tl_write_cb)) {
    free(w);
    tl_drop(px, "write failed", TL_RETRY_MS);
    return;
  }
  uv_read_start((uv_stream_t *)&tl->tcp, tl_alloc_cb, tl_read_cb);
}

static void tl_connect(ferry_proxy *px) {
  tlink *tl = &px->tl;
  if (tl->tcp_open)
    return; /* the previous handle is still closing; next tick */
  uv_tcp_init(&px->loop, &tl->tcp);
  tl->tcp.data = px;
  tl->tcp_open = 1;
  tl->connect_req.data = px;
  tl->state = TL_CONNECTING;
  tl->reply_deadline_ms = px_now(px) + TL_REPLY_MS;
  int rc = uv_tcp_connect(&tl->connect_req, &tl->tcp,
                          (const struct sockaddr *)&tl->addr, tl_connect_cb);
  if (rc)
    tl_drop(px, uv_strerror(rc), TL_RETRY_MS);
}

int px_tracker_init(ferry_proxy *px, char *err, size_t errcap) {
  const ferry_proxy_config *c = px->cfg;
  memset(&px->tl, 0, sizeof px->tl);
  px->tl.state = TL_IDLE;
  px->has_tracker = c->tracker_host != NULL;
  if (!px->has_tracker)
    return 0;
  /* Resolved once at start, so that the loop never blocks on DNS. */
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  char port[16];
  snprintf(port, sizeof port, "%d", c->tracker_port);
  int g = getaddrinfo(c->tracker_host, port, &hints, &res);
  if (g != 0 || !res) {
    snprintf(err, errcap, "cannot resolve tracker host '%s': %s", c->tracker_host,
             gai_strerror(g));
    return FERRY_ENOTFOUND;
  }
  memcpy(&px->tl.addr, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  ferry_info("tracker address %s:%d", c->tracker_host, c->tracker_port);
  px->tl.reconnect_at_ms = px_now(px);
  return 0;
}

void px_tracker_tick(ferry_proxy *px) {
  tlink *tl = &px->tl;
  if (!px->has_tracker || px->stopping)
    return;
  int64_t now = px_now(px);
  switch (tl->state) {
  case TL_IDLE:
    if (now >= tl->reconnect_at_ms)
      tl_connect(px);
    break;
  case TL_CONNECTING:
  case TL_MAGIC:
  case TL_WAIT_REPLY:
    if (now > tl->reply_deadline_ms)
      tl_drop(px, "no answer within 10 s", TL_RETRY_MS);
    break;
  case TL_READY:
    tl_pump(px);
    break;
  }
}

void px_tracker_kick(ferry_proxy *px) {
  if (px->has_tracker && px->tl.state == TL_READY)
    tl_pump(px);
  else if (px->has_tracker && px->tl.state == TL_IDLE)
    px_tracker_tick(px);
}

void px_tracker_stale_offer(ferry_proxy *px) {
  if (!px->has_tracker || px->stopping)
    return;
  tlink *tl = &px->tl;
  if (tl->state == TL_READY || tl->state == TL_WAIT_REPLY) {
    ferry_info("an offered server left; re-registering at the tracker to "
               "withdraw its offer");
    tl->flush = 1;
    tl_pump(px);
  }
}

void px_tracker_stop(ferry_proxy *px) {
  tlink *tl = &px->tl;
  if (tl->state != TL_IDLE && tl->state != TL_CONNECTING)
    ferry_frame_reader_close(&tl->rd);
  tl->state = TL_IDLE;
  if (tl->tcp_open && !uv_is_closing((uv_handle_t *)&tl->tcp))
    uv_close((uv_handle_t *)&tl->tcp, tl_closed_cb);
}
