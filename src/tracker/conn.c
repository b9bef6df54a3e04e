/* One tracker peer: bytes in through the frame reader, frames out with
 * back-pressure, and a close path that always releases what it holds. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/log.h"
#include "base/net.h"
#include "tracker/tracker_impl.h"
#include "wire/constants.h"

typedef struct write_req {
  uv_write_t req;
  tconn *c;
  size_t len;
  uint8_t data[];
} write_req;

static void conn_free_cb(uv_handle_t *h) {
  tconn *c = (tconn *)h;
  free(c);
}

/* Keeps the tracker-wide count of buffered input in step with this
 * connection's reader, and frees the reader's storage once it is empty so
 * that thousands of idle peers cost only their struct.  The frame deadline
 * runs from the moment input is left over without a frame (or the magic)
 * completing: a peer streaming whole frames is making progress even when
 * every read ends inside a frame. */
static void account_reader(tconn *c, int progress) {
  ferry_frame_reader *r = &c->rd;
  size_t held = r->in.len - r->consumed;
  if (held == 0 && r->in.cap > 0) {
    ferry_buf_close(&r->in);
    r->consumed = 0;
  }
  ferry_tracker *t = c->t;
  t->buffered = t->buffered - c->rd_held + held;
  c->rd_held = held;
  if (held == 0 || c->paused || progress)
    c->partial_since_ms = 0;
  if (held > 0 && !c->paused && c->partial_since_ms == 0)
    c->partial_since_ms = ferry_now_ms();
}

/* Takes the connection out of the tracker: releases its offers and
 * requests at once (not in the close callback: from now on nobody can be
 * granted this peer's offers or hand it a device), its info and input. */
static void detach(tconn *c) {
  ferry_tracker *t = c->t;
  ferry_sched_owner_release(&t->sched, &c->owner);
  ferry_farm_forget(&t->farm, c);
  if (c->info)
    t->info_total -= ferry_tracker_info_size(c->info);
  ferry_tracker_info_free(c->info);
  c->info = NULL;
  c->paused = 0;
  /* Its queued output no longer counts: libuv cancels those writes as the
   * handle closes, within this loop iteration. */
  t->out_queued -= c->out_bytes;
  t->buffered -= c->rd_held;
  c->rd_held = 0;
  ferry_frame_reader_close(&c->rd);
  if (c->prev)
    c->prev->next = c->next;
  else
    t->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  else
    t->conns_tail = c->prev;
  c->prev = c->next = NULL;
  t->nconns--;
}

void ferry_tconn_close(tconn *c, int level, const char *fmt, ...) {
  if (c->closing)
    return;
  c->closing = 1;
  char why[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  size_t noffers = c->owner.noffers, nreq = c->owner.nrequests;
  ferry_log((enum ferry_log_level)level,
            "drop %s: %s (withdrew %zu offer%s, dropped %zu request%s)", c->name, why,
            noffers, noffers == 1 ? "" : "s", nreq, nreq == 1 ? "" : "s");
  detach(c);
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  tconn *c = req->data;
  free(req);
  (void)status;
  uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
}

void ferry_tconn_close_after_flush(tconn *c) {
  if (c->closing)
    return;
  uv_shutdown_t *req = malloc(sizeof *req);
  if (!req || uv_shutdown(req, (uv_stream_t *)&c->tcp, shutdown_cb) != 0) {
    free(req);
    ferry_tconn_close(c, FERRY_LOG_INFO, "stopping");
    return;
  }
  req->data = c;
  c->closing = 1;
  detach(c);
  uv_read_stop((uv_stream_t *)&c->tcp);
}

static void process(tconn *c);
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  tconn *c = (tconn *)h;
  (void)suggested;
  /* Never hand out more than the frame reader can take, so feeding cannot
   * fail on a legal stream: a full reader always holds a complete frame
   * (or a bad header), which process() consumes before the next read. */
  ferry_frame_reader *r = &c->rd;
  size_t held = r->in.len - r->consumed;
  size_t room = r->in.max > held ? r->in.max - held : 0;
  if (room > FERRY_TRACKER_READ_CHUNK)
    room = FERRY_TRACKER_READ_CHUNK;
  buf->base = (char *)c->t->readbuf;
  buf->len = room;
}

static void resume(tconn *c) {
  c->paused = 0;
  process(c);
  if (!c->closing && !c->paused)
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

/* The live connection holding the most queued output, preferring those
 * paused at their own high mark (they have stopped reading; a peer that
 * reads has at most the reply it is reading).  O(connections). */
static tconn *biggest_holder(ferry_tracker *t) {
  tconn *best = NULL;
  for (tconn *p = t->conns; p; p = p->next) {
    if (p->out_bytes == 0)
      continue;
    if (!best || (p->paused && !best->paused) ||
        (p->paused == best->paused && p->out_bytes > best->out_bytes))
      best = p;
  }
  return best;
}

/* Called when all live peers' queued output is over its ceiling: drops
 * the peers holding the most unread output until it is back to half.
 * Only those peers pay; everyone else goes on being served (pausing every
 * peer instead let a few peers that never read stop the tracker for all,
 * as long as they stayed connected).  O(connections) per drop; it takes
 * hundreds of MiB of unread replies to get here. */
static void shed_output(ferry_tracker *t) {
  while (t->out_queued > FERRY_TRACKER_MAX_OUT_TOTAL / 2) {
    tconn *p = biggest_holder(t);
    if (!p)
      break;
    ferry_tconn_close(p, FERRY_LOG_WARN,
                      "unread output: %zu bytes queued for it while all peers' "
                      "queued output passed its %u MiB ceiling",
                      p->out_bytes, FERRY_TRACKER_MAX_OUT_TOTAL >> 20);
  }
}

static void write_cb(uv_write_t *req, int status) {
  write_req *w = (write_req *)req;
  tconn *c = w->c;
  c->out_bytes -= w->len;
  if (!c->closing) /* detach() already took a closing peer's bytes out */
    c->t->out_queued -= w->len;
  free(w);
  if (c->closing)
    return;
  if (status < 0) {
    ferry_tconn_close(c, FERRY_LOG_INFO, "write failed: %s", uv_strerror(status));
    return;
  }
  if (c->paused == 1 && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) <
                            FERRY_TRACKER_OUT_LOW)
    resume(c);
}

/* Queues a then b (b may be empty) on the socket: written at once when
 * the socket takes it, otherwise copied into a write request. */
static int send_parts(tconn *c, const uint8_t *a, size_t alen, const void *b,
                      size_t blen) {
  if (c->closing)
    return FERRY_ECLOSED;
  uv_stream_t *s = (uv_stream_t *)&c->tcp;
  size_t total = alen + blen, done = 0;
  if (uv_stream_get_write_queue_size(s) == 0) {
    uv_buf_t bufs[2] = {uv_buf_init((char *)a, (unsigned)alen),
                        uv_buf_init((char *)b, (unsigned)blen)};
    int n = uv_try_write(s, bufs, blen ? 2 : 1);
    if (n > 0)
      done = (size_t)n;
    else if (n != UV_EAGAIN && n != UV_ENOSYS)
      return FERRY_EIO;
  }
  if (done == total)
    return 0;
  size_t rest = total - done;
  write_req *w = malloc(sizeof *w + rest);
  if (!w)
    return FERRY_ENOMEM;
  w->c = c;
  w->len = rest;
  if (done < alen) {
    memcpy(w->data, a + done, alen - done);
    if (blen)
      memcpy(w->data + (alen - done), b, blen);
  } else {
    memcpy(w->data, (const uint8_t *)b + (done - alen), rest);
  }
  uv_buf_t buf = uv_buf_init((char *)w->data, (unsigned)rest);
  if (uv_write(&w->req, s, &buf, 1, write_cb) != 0) {
    free(w);
    return FERRY_EIO;
  }
  c->out_bytes += rest;
  c->t->out_queued += rest;
  if (!c->paused && uv_stream_get_write_queue_size(s) > FERRY_TRACKER_OUT_HIGH) {
    c->paused = 1; /* process() stops; write_cb resumes below the low mark */
    uv_read_stop(s);
  }
  return 0;
}

int ferry_tconn_send(tconn *c, const void *body, size_t len) {
  if (len == 0 || len > FERRY_TRACKER_MAX_REPLY)
    return FERRY_ETOOBIG;
  uint8_t hdr[4];
  put_le32(hdr, (uint32_t)len);
  return send_parts(c, hdr, 4, body, len);
}

/* Runs every complete frame the reader holds, unless back-pressure or a
 * close stops it; then updates the buffered-input accounting. */
static void process(tconn *c) {
  ferry_tracker *t = c->t;
  int progress = 0;
  while (!c->closing && !c->paused) {
    /* Checked between requests, not inside send: a handler (or the
     * scheduler granting an offer) must not see connections close under it. */
    if (t->out_queued > FERRY_TRACKER_MAX_OUT_TOTAL)
      shed_output(t);
    if (c->closing)
      break;
    const uint8_t *body;
    size_t len;
    int rc = ferry_frame_reader_next(&c->rd, &body, &len);
    if (rc == FERRY_EAGAIN)
      break;
    if (rc == FERRY_FRAME_MAGIC) {
      uint8_t m[4];
      put_le32(m, FERRY_RPC_TRACKER_MAGIC);
      c->magic_done = 1;
      progress = 1;
      if (send_parts(c, m, 4, NULL, 0) != 0)
        ferry_tconn_close(c, FERRY_LOG_INFO, "cannot echo the magic");
      continue;
    }
    if (rc == FERRY_FRAME_MESSAGE) {
      progress = 1;
      if (ferry_tracker_handle(c, body, len) != 0)
        break; /* the handler closed the connection */
      continue;
    }
    if (rc == FERRY_EMAGIC)
      ferry_tconn_close(c, FERRY_LOG_WARN, "invalid magic %02x%02x%02x%02x",
                        c->rd.in.data[0], c->rd.in.data[1], c->rd.in.data[2],
                        c->rd.in.data[3]);
    else if (rc == FERRY_EPROTO || rc == FERRY_ETOOBIG)
      ferry_tconn_close(c, FERRY_LOG_WARN, "invalid msg_size %d (must be 1..%u)",
                        (int)c->rd.bad_length, FERRY_TRACKER_MAX_FRAME);
    else
      ferry_tconn_close(c, FERRY_LOG_WARN, "framing error: %s", ferry_strerror(rc));
    break;
  }
  if (t->out_queued > FERRY_TRACKER_MAX_OUT_TOTAL)
    shed_output(t);
  if (!c->closing)
    account_reader(c, progress);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  tconn *c = (tconn *)s;
  if (c->closing)
    return;
  if (nread == UV_EOF) {
    ferry_tconn_close(c, FERRY_LOG_INFO, "connection closed by peer");
    return;
  }
  if (nread == UV_ENOBUFS) {
    /* alloc_cb found the reader full.  That only happens while paused
     * (and then reading is stopped), so this is a safety net: consume what
     * can be consumed, and give up on a peer whose input cannot move. */
    process(c);
    if (!c->closing && !c->paused && c->rd.in.len - c->rd.consumed >= c->rd.in.max)
      ferry_tconn_close(c, FERRY_LOG_WARN, "input buffer stuck full");
    return;
  }
  if (nread < 0) {
    ferry_tconn_close(c, FERRY_LOG_INFO, "read error: %s", uv_strerror((int)nread));
    return;
  }
  if (nread == 0)
    return;
  /* TVM's client writes a message's length and its body in two writes
   * with Nagle on: the body waits for our ACK of the length, which the
   * delayed-ACK timer would hold back ~40 ms.  Linux clears the flag as it
   * pleases, hence after every read. */
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)s, &fd) == 0)
    ferry_tcp_quickack(fd);
  if (c->t->buffered + (size_t)nread > FERRY_TRACKER_MAX_BUFFERED) {
    ferry_tconn_close(c, FERRY_LOG_WARN, "tracker input budget of %u MiB exhausted",
                      FERRY_TRACKER_MAX_BUFFERED >> 20);
    return;
  }
  int rc = ferry_frame_reader_feed(&c->rd, buf->base, (size_t)nread);
  if (rc) {
    ferry_tconn_close(c, FERRY_LOG_WARN, "cannot buffer input: %s", ferry_strerror(rc));
    return;
  }
  process(c);
}

void ferry_tconn_accept(ferry_tracker *t, int fd) {
  tconn *c = calloc(1, sizeof *c);
  if (!c) {
    ferry_warn("out of memory: refusing a connection");
    close(fd);
    return;
  }
  if (uv_tcp_init(&t->loop, &c->tcp) != 0) {
    free(c);
    close(fd);
    return;
  }
  if (uv_tcp_open(&c->tcp, fd) != 0) {
    close(fd);
    uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->t = t;
  ferry_sched_owner_init(&c->owner);
  ferry_frame_reader_init(&c->rd, 1, FERRY_RPC_TRACKER_MAGIC, FERRY_TRACKER_MAX_FRAME);
  struct sockaddr_storage ss;
  int slen = sizeof ss;
  int port = 0;
  snprintf(c->ip, sizeof c->ip, "?");
  c->may_serve = t->allow_servers.n == 0; /* an unknown peer only if all may */
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &slen) == 0) {
    c->may_serve = ferry_allow_match(&t->allow_servers, (struct sockaddr *)&ss);
    if (ss.ss_family == AF_INET) {
      struct sockaddr_in *a = (struct sockaddr_in *)&ss;
      inet_ntop(AF_INET, &a->sin_addr, c->ip, sizeof c->ip);
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
      inet_ntop(AF_INET6, &a->sin6_addr, c->ip, sizeof c->ip);
      port = ntohs(a->sin6_port);
    }
  }
  snprintf(c->name, sizeof c->name, "%s:%d", c->ip, port);
  snprintf(c->ip_json, sizeof c->ip_json, "\"%s\"", c->ip); /* IP text needs no escaping */
  c->prev = t->conns_tail;
  if (t->conns_tail)
    t->conns_tail->next = c;
  else
    t->conns = c;
  t->conns_tail = c;
  t->nconns++;
  ferry_debug("accepted %s (%zu connections)", c->name, t->nconns);
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}
