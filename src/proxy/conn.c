/* The proxy's connections: data-plane handshake with a deadline, pairing,
 * and the portable relay with back-pressure (tracker-proxy-server.md
 * §6.2, §6.3, §6.5); accept.c lets them in, splice.c relays plain TCP
 * pairs inside the kernel.
 *
 * Memory per pair is bounded whatever the transfer size: a read chunk is
 * handed to the partner's write queue as is (no copy), and while the
 * partner has more than its limit queued, the reading side is stopped
 * (TCP flow control then slows the sender down).  All pairs together are
 * bounded too: each relay leg may queue at most its share of max_buffered
 * (px_leg_limit), counted in allocated bytes, so the proxy's relay memory
 * stays under max_buffered however many pairs stall.  What one address
 * can hold is bounded by max_per_addr unpaired connections (handshake,
 * parked, waiting), so that one peer cannot fill the table for everyone. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/log.h"
#include "base/net.h"
#include "base/util.h"
#include "proxy/proxy_internal.h"
#include "wire/constants.h"

void px_handle_closed_cb(uv_handle_t *h) {
  pconn *c = h->data;
  if (--c->handles_open > 0)
    return;
  ferry_proxy *px = c->px;
  if (c->prev)
    c->prev->next = c->next;
  else
    px->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  px->nconns--;
  ferry_handshake_reader_close(&c->hs);
  ferry_http_request_close(&c->http);
  if (c->file_fd >= 0)
    close(c->file_fd);
  if (c->poll_fd >= 0)
    close(c->poll_fd);
  free(c);
}

static void close_handles(pconn *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, px_handle_closed_cb);
  if (!uv_is_closing((uv_handle_t *)&c->timer))
    uv_close((uv_handle_t *)&c->timer, px_handle_closed_cb);
}

/* Full read chunks are recycled through a small pool: a relay at wire
 * speed would otherwise malloc and free one per read.  Any other size is
 * allocated exactly, so that what a queue holds is what it counts. */
static wchunk *chunk_new(ferry_proxy *px, size_t payload) {
  if (payload == PX_READ_CHUNK && px->pool) {
    wchunk *w = px->pool;
    px->pool = w->next_free;
    px->npool--;
    return w;
  }
  wchunk *w = malloc(sizeof(wchunk) + FERRY_WS_MAX_HEADER + payload);
  if (w)
    w->cap = payload;
  return w;
}

/* Bytes a queued chunk holds in memory: what the limits count. */
static size_t chunk_bytes(const wchunk *w) {
  return sizeof(wchunk) + FERRY_WS_MAX_HEADER + w->cap;
}

size_t px_leg_limit(const ferry_proxy *px) {
  size_t hw = px->cfg->high_water;
  size_t share = px->npaired ? px->cfg->max_buffered / px->npaired : hw;
  if (share < PX_MIN_SHARE)
    share = PX_MIN_SHARE;
  return share < hw ? share : hw;
}

static void chunk_free(ferry_proxy *px, wchunk *w) {
  if (!w)
    return;
  if (w->cap == PX_READ_CHUNK && px->npool < PX_POOL_MAX && !px->stopping) {
    w->next_free = px->pool;
    px->pool = w;
    px->npool++;
    return;
  }
  free(w);
}

void px_pool_free(ferry_proxy *px) {
  while (px->pool) {
    wchunk *w = px->pool;
    px->pool = w->next_free;
    free(w);
  }
  px->npool = 0;
}

static void resume_reading(pconn *c);

/* A pair waiting for its handshake replies to be written (splice == 1):
 * once both queues are empty, the kernel relays (splice.c); if it cannot,
 * the portable relay reads again. */
static void maybe_splice(pconn *c) {
  pconn *p = c->peer;
  if (c->state != PC_PAIRED || !p || c->inflight || p->inflight)
    return;
  if (px_splice_start(c) == 0) {
    ferry_debug("%s and %s relayed by splice", c->name, p->name);
    return;
  }
  c->splice = p->splice = 0;
  resume_reading(c);
  resume_reading(p);
}

static void write_cb(uv_write_t *req, int status) {
  wchunk *w = ferry_container_of(req, wchunk, req);
  pconn *to = w->to;
  ferry_proxy *px = to->px;
  to->inflight -= w->counted;
  chunk_free(px, w);
  if (status < 0) {
    if (status != UV_ECANCELED && to->state != PC_CLOSING) {
      ferry_info("write to %s failed: %s", to->name, uv_strerror(status));
      px_conn_close(to, 0);
    }
    return;
  }
  if (to->splice == 1) {
    maybe_splice(to);
    return;
  }
  if (to->state == PC_FILE && to->inflight == 0) {
    px_file_continue(to);
    return;
  }
  pconn *from = to->peer;
  if (from && from->paused && to->inflight <= px_leg_limit(px) / 2)
    resume_reading(from);
}


static int submit(pconn *to, wchunk *w, uint8_t *p, size_t n) {
  w->to = to;
  w->counted = chunk_bytes(w);
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
  int rc = uv_write(&w->req, (uv_stream_t *)&to->tcp, &b, 1, write_cb);
  if (rc) {
    chunk_free(to->px, w);
    return rc;
  }
  to->inflight += w->counted;
  return 0;
}

/* Sends payload (which must have FERRY_WS_MAX_HEADER bytes of room in front
 * of it, inside w) to `to`, as one binary message if it speaks WebSocket. */
static int forward(pconn *to, wchunk *w, uint8_t *payload, size_t n) {
  if (to->ws) {
    uint8_t hdr[FERRY_WS_MAX_HEADER];
    size_t hl = ferry_ws_frame_header(hdr, FERRY_WS_BINARY, n, NULL);
    memcpy(payload - hl, hdr, hl);
    return submit(to, w, payload - hl, n + hl);
  }
  return submit(to, w, payload, n);
}

/* Copies n bytes into a new chunk and sends them as payload. */
static int send_bytes(pconn *to, const void *p, size_t n) {
  wchunk *w = chunk_new(to->px, n);
  if (!w)
    return UV_ENOMEM;
  memcpy(w->data + FERRY_WS_MAX_HEADER, p, n);
  return forward(to, w, w->data + FERRY_WS_MAX_HEADER, n);
}

int px_send_raw(pconn *c, const void *p, size_t n) {
  wchunk *w = chunk_new(c->px, n);
  if (!w)
    return UV_ENOMEM;
  memcpy(w->data, p, n);
  return submit(c, w, w->data, n);
}

static void send_code(pconn *c, int32_t code) {
  uint8_t b[4];
  put_le32(b, (uint32_t)code);
  if (send_bytes(c, b, 4))
    ferry_debug("cannot queue a reply to %s", c->name);
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  (void)status;
  close_handles(req->data);
}

static void timer_cb(uv_timer_t *t) {
  pconn *c = t->data;
  if (c->state == PC_CLOSING) {
    close_handles(c);
    return;
  }
  if (c->state == PC_HANDSHAKE || c->state == PC_HTTP) {
    ferry_warn("%s: no complete %s within %d ms; closing", c->name,
               c->state == PC_HTTP ? "HTTP request" : "handshake",
               c->state == PC_HTTP ? PX_HTTP_DEADLINE_MS : c->px->cfg->handshake_ms);
    px_conn_close(c, 0);
  }
}

/* The connection no longer counts against its address's limit. */
void px_conn_uncount(pconn *c) {
  if (c->counted)
    ferry_addrcount_sub(&c->px->peers, c->addr);
  c->counted = 0;
}

void px_conn_close(pconn *c, int flush) {
  if (c->state == PC_CLOSING)
    return;
  px_conn_uncount(c);
  px_splice_close(c);
  int was = c->state;
  if (was == PC_PAIRED)
    c->px->npaired--;
  c->state = PC_CLOSING;
  if (was == PC_WAITING &&
      ferry_pairing_remove(&c->px->table, c) == 1)
    px_tracker_stale_offer(c->px);
  pconn *p = c->peer;
  c->peer = NULL;
  if (p) {
    p->peer = NULL;
    px_conn_close(p, 1);
  }
  uv_read_stop((uv_stream_t *)&c->tcp);
  if (!flush || c->px->stopping) {
    close_handles(c);
    return;
  }
  /* Let queued output reach the peer first (TVM closes the partner "after
   * its queued output has been written"), but not forever. */
  if (c->ws && was != PC_HTTP && was != PC_FILE)
    (void)px_send_ws_control(c, FERRY_WS_CLOSE, "\x03\xe8", 2);
  c->shutdown_req.data = c;
  if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, shutdown_cb)) {
    close_handles(c);
    return;
  }
  uv_timer_start(&c->timer, timer_cb, PX_CLOSE_DEADLINE_MS, 0);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  pconn *c = h->data;
  size_t len = PX_READ_CHUNK;
  if (c->state == PC_PAIRED && c->peer) {
    /* A relay leg reads no more than its partner's queue may still take:
     * with no room, no buffer (read_cb sees UV_ENOBUFS and pauses it).
     * Whole pooled chunks while the limit holds several; below one chunk
     * (many pairs share max_buffered) an exact chunk of the room. */
    size_t lim = px_leg_limit(c->px), have = c->peer->inflight;
    size_t over = sizeof(wchunk) + FERRY_WS_MAX_HEADER;
    size_t room = have < lim ? lim - have : 0;
    int none;
    if (lim >= over + PX_READ_CHUNK) {
      none = room < over + PX_READ_CHUNK;
    } else {
      len = room > over ? room - over : 0;
      none = len < PX_MIN_READ;
    }
    if (none) {
      buf->base = NULL;
      buf->len = 0;
      return;
    }
  }
  wchunk *w = chunk_new(c->px, len);
  buf->base = w ? (char *)w->data + FERRY_WS_MAX_HEADER : NULL;
  buf->len = w ? len : 0;
}

static wchunk *chunk_of(const uv_buf_t *buf) {
  return (wchunk *)((uint8_t *)buf->base - FERRY_WS_MAX_HEADER -
                    offsetof(wchunk, data));
}

static void pair(pconn *a, pconn *b) {
  px_conn_uncount(a);
  px_conn_uncount(b);
  a->px->npaired += 2;
  a->peer = b;
  b->peer = a;
  a->state = PC_PAIRED;
  b->state = PC_PAIRED;
  /* The side that waited hears first, then the newcomer (§3.3); over
   * WebSocket each part is its own message, as TVM sends it. */
  pconn *order[2] = {a, b};
  for (int i = 0; i < 2; i++) {
    pconn *to = order[i];
    const ferry_handshake_reader *other = &order[1 - i]->hs;
    const char *key = ferry_handshake_key(other);
    size_t kl = ferry_handshake_key_len(other);
    uint8_t hdr[8];
    put_le32(hdr, FERRY_RPC_CODE_SUCCESS);
    put_le32(hdr + 4, (uint32_t)kl);
    int rc;
    if (to->ws) {
      rc = send_bytes(to, hdr, 4);
      if (!rc)
        rc = send_bytes(to, hdr + 4, 4);
      if (!rc)
        rc = send_bytes(to, key, kl);
    } else {
      wchunk *w = chunk_new(to->px, 8 + kl);
      if (!w) {
        rc = UV_ENOMEM;
      } else {
        uint8_t *p = w->data + FERRY_WS_MAX_HEADER;
        memcpy(p, hdr, 8);
        memcpy(p + 8, key, kl);
        rc = forward(to, w, p, 8 + kl);
      }
    }
    if (rc) {
      ferry_warn("cannot answer %s: %s", to->name, uv_strerror(rc));
      px_conn_close(to, 0);
      return;
    }
  }
  ferry_info("paired %s and %s", a->name, b->name);
  /* --splice and plain TCP on both sides: hand the relay to the kernel
   * once the replies are out (no reads meanwhile, so no byte can pass
   * them). */
  if (!a->ws && !b->ws && a->px->cfg->splice && px_splice_available()) {
    a->splice = b->splice = 1;
    uv_read_stop((uv_stream_t *)&a->tcp);
    uv_read_stop((uv_stream_t *)&b->tcp);
  }
}

void px_conn_reject(pconn *c, int32_t code) {
  send_code(c, code);
  px_conn_close(c, 1);
}

/* Keys come from the peer: only printable ASCII reaches the log, so a
 * key cannot forge or break log lines. */
void px_printable(char *dst, size_t cap, const char *src, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len && n + 1 < cap; i++) {
    unsigned char ch = (unsigned char)src[i];
    dst[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
  }
  if (cap)
    dst[n] = 0;
}

static void handshake_done(pconn *c) {
  ferry_proxy *px = c->px;
  uv_timer_stop(&c->timer);
  const char *key = ferry_handshake_key(&c->hs);
  size_t kl = ferry_handshake_key_len(&c->hs);
  char shown[49];
  px_printable(shown, sizeof shown, key, kl);
  size_t nl = strlen(c->name);
  snprintf(c->name + nl, sizeof c->name - nl, "[%s]", shown);
  const char *mk;
  size_t ml;
  if (ferry_pairing_match_key(key, kl, &mk, &ml)) {
    ferry_warn("%s: key has no match key after its role; closing", c->name);
    px_conn_reject(c, FERRY_RPC_CODE_MISMATCH);
    return;
  }
  c->role = ferry_pairing_role(key, kl);
  void *partner = NULL;
  int rc = ferry_pairing_offer(&px->table, c->role, mk, ml, c, px_now(px),
                               &partner);
  switch (rc) {
  case FERRY_PAIR_PAIRED:
    pair(partner, c);
    if (px->table.stale_offer)
      px_tracker_stale_offer(px);
    return;
  case FERRY_PAIR_PARKED: {
    c->state = PC_WAITING;
    ferry_pair_entry *e = ferry_pairing_find(&px->table, c);
    char as[128] = "";
    if (px->table.tracker_mode) {
      memcpy(as, " as ", 4);
      px_printable(as + 4, sizeof as - 4, e->match_key, strlen(e->match_key));
    }
    ferry_info("%s waits%s", c->name, as);
    if (px->table.tracker_mode)
      px_tracker_kick(px);
    return;
  }
  case FERRY_PAIR_DUPLICATE:
    px_printable(shown, sizeof shown, mk, ml);
    ferry_info("%s: duplicate connection with same key=%s", c->name, shown);
    px_conn_reject(c, FERRY_RPC_CODE_DUPLICATE);
    return;
  case FERRY_PAIR_MISMATCH:
    px_printable(shown, sizeof shown, mk, ml);
    ferry_info("%s: no server waits with match key=%s", c->name, shown);
    px_conn_reject(c, FERRY_RPC_CODE_MISMATCH);
    return;
  case FERRY_ETOOBIG:
    ferry_warn("%s: %zu connections wait already (limit %zu); closing", c->name,
               px->table.count, px->table.max);
    px_conn_reject(c, FERRY_RPC_CODE_MISMATCH);
    return;
  case FERRY_EINVAL:
    ferry_warn("%s: device key is not UTF-8 text (it could not be offered at "
               "the tracker); closing", c->name);
    px_conn_reject(c, FERRY_RPC_CODE_MISMATCH);
    return;
  default:
    ferry_warn("%s: cannot park: %s", c->name, ferry_strerror(rc));
    px_conn_close(c, 0);
  }
}

/* Payload bytes of a connection that is not yet paired. */
static void feed_handshake(pconn *c, const uint8_t *p, size_t n) {
  if (c->state == PC_WAITING) {
    if (n) {
      ferry_info("%s: invalid RPC protocol, too many bytes before pairing", c->name);
      px_conn_close(c, 0);
    }
    return;
  }
  size_t used = 0;
  int rc = ferry_handshake_reader_feed(&c->hs, p, n, &used);
  if (c->hs.hdr_len >= 4 && c->hs.word != FERRY_RPC_MAGIC) {
    ferry_info("%s: invalid RPC magic 0x%x; closing", c->name, (unsigned)c->hs.word);
    px_conn_close(c, 0);
    return;
  }
  if (rc == FERRY_EAGAIN)
    return;
  if (rc < 0) {
    ferry_warn("%s: bad handshake key length %d (limit %d): %s; closing", c->name,
               (int)c->hs.unvalidated_key_len, FERRY_HANDSHAKE_MAX_KEY,
               ferry_strerror(rc));
    px_conn_close(c, 0);
    return;
  }
  if (used < n) {
    ferry_info("%s: invalid RPC protocol, too many bytes before pairing", c->name);
    px_conn_close(c, 0);
    return;
  }
  handshake_done(c);
}

void px_conn_feed_payload(pconn *c, uint8_t *p, size_t n) {
  if (c->state == PC_HANDSHAKE || c->state == PC_WAITING)
    feed_handshake(c, p, n);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  pconn *c = s->data;
  if (nread == UV_ENOBUFS && c->state == PC_PAIRED) {
    /* alloc_cb: the partner's queue is at its limit. */
    uv_read_stop(s);
    c->paused = 1;
    return;
  }
  wchunk *w = buf->base ? chunk_of(buf) : NULL;
  if (nread > 0) {
    /* TVM's peers write a message's length and body separately without
     * TCP_NODELAY: an ACK at once spares each message a delayed-ACK wait
     * (~40 ms) on their side.  Linux resets the mode, so after every read. */
    int fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
      ferry_tcp_quickack(fd);
  }
  if (nread <= 0 || c->state == PC_CLOSING) {
    chunk_free(c->px, w);
    if (nread < 0 && c->state != PC_CLOSING) {
      if (nread != UV_EOF)
        ferry_info("%s: %s", c->name, uv_strerror((int)nread));
      else
        ferry_debug("%s closed", c->name);
      px_conn_close(c, nread == UV_EOF);
    }
    return;
  }
  uint8_t *p = (uint8_t *)buf->base;
  size_t n = (size_t)nread;
  if (c->state == PC_HTTP) {
    size_t used = 0;
    int rc = ferry_http_request_feed(&c->http, p, n, &used);
    if (rc == 1)
      rc = px_web_handle_request(c, p + used, n - used);
    else if (rc != FERRY_EAGAIN) {
      ferry_warn("%s: bad HTTP request: %s; closing", c->name, ferry_strerror(rc));
      px_conn_close(c, 0);
    }
    chunk_free(c->px, w);
    return;
  }
  if (c->state == PC_FILE) {
    chunk_free(c->px, w);
    return;
  }
  if (c->ws) {
    int got = px_ws_feed(c, p, n);
    if (got < 0) {
      chunk_free(c->px, w);
      return;
    }
    n = (size_t)got;
  }
  if (c->state == PC_PAIRED && c->peer && n > 0) {
    pconn *to = c->peer;
    if (n < PX_COPY_BELOW && w->cap > n) {
      /* A small read would pin a whole chunk while queued: copy it out, so
       * that a stalled partner's queue holds what it counts. */
      wchunk *small = chunk_new(c->px, n);
      if (small) {
        memcpy(small->data + FERRY_WS_MAX_HEADER, p, n);
        chunk_free(c->px, w);
        w = small;
        p = small->data + FERRY_WS_MAX_HEADER;
      }
    }
    int rc = forward(to, w, p, n);
    if (rc) {
      ferry_info("relay to %s failed: %s", to->name, uv_strerror(rc));
      px_conn_close(c, 0);
      return;
    }
    if (to->inflight >= px_leg_limit(c->px)) {
      uv_read_stop(s);
      c->paused = 1;
    }
  } else {
    px_conn_feed_payload(c, p, n);
    chunk_free(c->px, w);
  }
  if (c->ws && c->ws_close_rcvd && c->state != PC_CLOSING)
    px_conn_close(c, 1);
}

static void resume_reading(pconn *c) {
  c->paused = 0;
  if (c->state == PC_PAIRED && !c->splice)
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

void px_conn_start(pconn *c, uint64_t deadline_ms) {
  uv_timer_start(&c->timer, timer_cb, deadline_ms, 0);
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}
