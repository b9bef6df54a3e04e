/* --through-proxy: the server dials a proxy instead of listening (spec
 * §3.2, §5.1.10 with §10.3 item 13 fixed).
 *
 *   server -> proxy : W(RPC_MAGIC) S("server:<key>")
 *   proxy -> server : W(SUCCESS) S(client's full key)   once paired
 *                     W(DUPLICATE) / W(MISMATCH), close  (non-tracker proxy)
 *
 * The wait for a partner may last hours, so it is one more descriptor in
 * the poll loop rather than a blocking read.  Every failure (refused,
 * DUPLICATE, MISMATCH, a closed link) is retried with a back-off of 1 s
 * doubling to 30 s, forever; after each session the server dials again at
 * once.  The session timeout comes from the client's key relayed by the
 * proxy. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/net.h"
#include "server/server_state.h"
#include "wire/constants.h"

#define PROXY_CONNECT_MS 3000
#define PROXY_BACKOFF_MIN_MS 1000
#define PROXY_BACKOFF_MAX_MS 30000

void server_proxy_init(ferry_server *s) {
  server_proxy *p = &s->proxy;
  p->fd = -1;
  if (!s->cfg->through_proxy) {
    p->state = SERVER_PROXY_OFF;
    return;
  }
  p->state = SERVER_PROXY_DOWN;
  p->next_try_ms = ferry_now_ms();
  p->backoff_ms = PROXY_BACKOFF_MIN_MS;
  ferry_handshake_reader_init(&p->rd, 0, FERRY_HANDSHAKE_MAX_KEY);
}

static void retry_later(ferry_server *s, int reset) {
  server_proxy *p = &s->proxy;
  if (p->fd >= 0)
    close(p->fd);
  p->fd = -1;
  ferry_handshake_reader_close(&p->rd);
  ferry_handshake_reader_init(&p->rd, 0, FERRY_HANDSHAKE_MAX_KEY);
  p->state = SERVER_PROXY_DOWN;
  if (reset)
    p->backoff_ms = PROXY_BACKOFF_MIN_MS;
  p->next_try_ms = ferry_now_ms() + p->backoff_ms;
  p->backoff_ms *= 2;
  if (p->backoff_ms > PROXY_BACKOFF_MAX_MS)
    p->backoff_ms = PROXY_BACKOFF_MAX_MS;
}

static int dial(ferry_server *s, char *err, size_t errcap) {
  server_proxy *p = &s->proxy;
  int fd = -1;
  int rc = ferry_tcp_connect(s->cfg->host, s->cfg->port, PROXY_CONNECT_MS, &fd,
                             err, errcap);
  if (rc)
    return rc;
  ferry_buf out;
  ferry_buf_init(&out, FERRY_HANDSHAKE_MAX_KEY + 16);
  char key[SERVER_MAX_KEY + 8];
  snprintf(key, sizeof key, "server:%s", s->cfg->key);
  rc = ferry_handshake_encode(&out, FERRY_RPC_MAGIC, key, strlen(key));
  if (rc == 0)
    rc = ferry_write_full(fd, out.data, out.len,
                          ferry_now_ms() + PROXY_CONNECT_MS);
  ferry_buf_close(&out);
  if (rc) {
    snprintf(err, errcap, "cannot register at the proxy: %s",
             ferry_strerror(rc));
    close(fd);
    return rc;
  }
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  /* The wait for a client may last hours: keep-alive probes notice a proxy
   * that vanished without closing (power loss, a dropped NAT mapping). */
  int on = 1, idle = 60, intvl = 10, cnt = 3;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  p->fd = fd;
  return 0;
}

int64_t server_proxy_tick(ferry_server *s, int64_t now) {
  server_proxy *p = &s->proxy;
  if (p->state != SERVER_PROXY_DOWN || s->stopping)
    return -1;
  if (s->sess.active)
    return -1; /* one session at a time; dial again when it ends */
  if (now < p->next_try_ms)
    return p->next_try_ms;
  char err[256] = "";
  int rc = dial(s, err, sizeof err);
  if (rc) {
    ferry_warn("proxy %s:%d: %s; retrying in %ds", s->cfg->host, s->cfg->port,
               err, p->backoff_ms / 1000);
    retry_later(s, 0);
    return p->next_try_ms;
  }
  p->state = SERVER_PROXY_WAITING;
  ferry_info("registered at proxy %s:%d as server:%s", s->cfg->host,
             s->cfg->port, s->cfg->key);
  return -1;
}

void server_proxy_readable(ferry_server *s) {
  server_proxy *p = &s->proxy;
  uint8_t buf[1024];
  /* Read no further than the handshake: session bytes stay in the socket. */
  size_t want;
  if (p->rd.hdr_len < 4)
    want = 4 - p->rd.hdr_len;
  else if (p->rd.hdr_len < 8)
    want = 8 - p->rd.hdr_len;
  else
    want = (size_t)p->rd.unvalidated_key_len - p->rd.key.len;
  if (want > sizeof buf)
    want = sizeof buf;
  if (want == 0)
    want = 1;
  ssize_t n = recv(p->fd, buf, want, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  if (n > 0)
    ferry_tcp_quickack(p->fd); /* as on a direct client's handshake */
  if (n <= 0) {
    ferry_warn("proxy %s:%d closed the registration; dialing again",
               s->cfg->host, s->cfg->port);
    /* A proxy that restarts is worth an immediate retry; a proxy that
     * keeps closing gets the back-off. */
    retry_later(s, 0);
    return;
  }
  size_t used = 0;
  int rc = ferry_handshake_reader_feed(&p->rd, buf, (size_t)n, &used);
  if (rc == FERRY_EAGAIN)
    return;
  if (rc < 0) {
    ferry_warn("proxy %s:%d: malformed pairing answer (%s)", s->cfg->host,
               s->cfg->port, ferry_strerror(rc));
    retry_later(s, 0);
    return;
  }
  if (p->rd.word == FERRY_RPC_CODE_DUPLICATE) {
    ferry_error("proxy %s:%d already has a server with key server:%s; "
                "retrying in %ds", s->cfg->host, s->cfg->port, s->cfg->key,
                p->backoff_ms / 1000);
    retry_later(s, 0);
    return;
  }
  if (p->rd.word == FERRY_RPC_CODE_MISMATCH) {
    ferry_warn("proxy %s:%d has no matching client for server:%s; "
               "registering again", s->cfg->host, s->cfg->port, s->cfg->key);
    retry_later(s, 1);
    return;
  }
  if (p->rd.word != FERRY_RPC_CODE_SUCCESS) {
    ferry_error("%s:%d is not an RPC proxy (answer 0x%x); retrying in %ds",
                s->cfg->host, s->cfg->port, (unsigned)p->rd.word,
                p->backoff_ms / 1000);
    retry_later(s, 0);
    return;
  }
  /* Paired: the session runs on this socket, blocking. */
  int fd = p->fd;
  p->fd = -1;
  p->state = SERVER_PROXY_DOWN;
  p->backoff_ms = PROXY_BACKOFF_MIN_MS;
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  char peer[SERVER_PEER_MAX];
  snprintf(peer, sizeof peer, "proxy %s:%d", s->cfg->host, s->cfg->port);
  server_fork_start(s, fd, peer, ferry_handshake_key(&p->rd),
                    ferry_handshake_key_len(&p->rd), 0);
  ferry_handshake_reader_close(&p->rd);
  ferry_handshake_reader_init(&p->rd, 0, FERRY_HANDSHAKE_MAX_KEY);
}

void server_proxy_session_done(ferry_server *s) {
  server_proxy *p = &s->proxy;
  if (p->state == SERVER_PROXY_OFF || s->stopping)
    return;
  p->state = SERVER_PROXY_DOWN;
  p->next_try_ms = ferry_now_ms();
}

void server_proxy_close(ferry_server *s) {
  server_proxy *p = &s->proxy;
  if (p->state == SERVER_PROXY_OFF)
    return;
  if (p->fd >= 0)
    close(p->fd);
  p->fd = -1;
  ferry_handshake_reader_close(&p->rd);
  p->state = SERVER_PROXY_OFF;
}
