/* Accepting clients and reading their handshakes (spec §3.1, §5.1.4-5.1.5).
 *
 * Handshakes are read non-blocking, several at once, each with its own
 * deadline, so a client that connects and says nothing delays nobody (TVM
 * blocks the whole server on it).  Exactly the handshake's bytes are read
 * — never more — so that whatever the client sends next stays in the
 * socket for the session child.  Every malformed case answers MISMATCH (when
 * the peer at least spoke our protocol) and closes, without touching the
 * tracker registration. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/log.h"
#include "base/net.h"
#include "server/server_state.h"
#include "wire/constants.h"

void server_listen_init(ferry_server *s) {
  for (int i = 0; i < SERVER_MAX_HANDSHAKES; i++)
    s->hs[i].fd = -1;
}

static void hs_free(server_hs *h) {
  if (h->fd >= 0)
    close(h->fd);
  h->fd = -1;
  h->parked = 0;
  ferry_handshake_reader_close(&h->rd);
}

/* Best effort: the socket is non-blocking and the 4 bytes fit in any empty
 * send buffer, so one send either works or the peer is gone. */
static void send_mismatch(int fd) {
  uint8_t w[4];
  put_le32(w, (uint32_t)FERRY_RPC_CODE_MISMATCH);
  ssize_t n = send(fd, w, sizeof w, MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)n;
}

/* A free slot, or — when silent clients hold all of them — the slot of the
 * oldest unfinished handshake, whose client is dropped: real clients send
 * their handshake at once, so the oldest is the likeliest to be idle, and
 * silent connections can then never keep the device from serving. */
static server_hs *free_slot(ferry_server *s) {
  server_hs *oldest = NULL;
  for (int i = 0; i < SERVER_MAX_HANDSHAKES; i++) {
    server_hs *h = &s->hs[i];
    if (h->fd < 0)
      return h;
    if (!h->parked && (!oldest || h->deadline_ms < oldest->deadline_ms))
      oldest = h;
  }
  if (oldest) {
    ferry_warn("%d handshakes pending: dropping the oldest, from %s",
               SERVER_MAX_HANDSHAKES, oldest->peer);
    hs_free(oldest);
  }
  return oldest;
}

void server_listen_accept(ferry_server *s) {
  /* Bounded work per wake-up (libuv-style): a flood waits its turn. */
  for (int n = 0; n < SERVER_MAX_HANDSHAKES; n++) {
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM) {
        /* The connection stays in the backlog and keeps the socket
         * readable: pause accepting briefly instead of spinning. */
        ferry_warn("accept: %s; pausing for %d ms", strerror(errno),
                   SERVER_ACCEPT_PAUSE_MS);
        s->accept_paused_until_ms = ferry_now_ms() + SERVER_ACCEPT_PAUSE_MS;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                 errno != ECONNABORTED) {
        ferry_warn("accept: %s", strerror(errno));
      }
      return;
    }
    /* --allow is judged before the connection takes a handshake slot, so
     * refused peers cannot evict allowed ones. */
    if (s->cfg->allow && s->cfg->allow->n > 0 &&
        !ferry_allow_fd(s->cfg->allow, fd)) {
      int64_t now = ferry_now_ms();
      if (s->refused_log_ms == 0 || now - s->refused_log_ms >= SERVER_REFUSED_LOG_MS) {
        char peer[SERVER_PEER_MAX];
        ferry_peer_name(fd, peer, sizeof peer);
        if (s->refused_quiet)
          ferry_warn("connection from %s refused: not in --allow (and %llu more "
                     "since the last such line)",
                     peer, (unsigned long long)s->refused_quiet);
        else
          ferry_warn("connection from %s refused: not in --allow", peer);
        s->refused_log_ms = now;
        s->refused_quiet = 0;
      } else {
        s->refused_quiet++;
      }
      close(fd);
      continue;
    }
    server_hs *h = free_slot(s);
    if (!h) { /* every slot parked: cannot happen while idle, but be safe */
      close(fd);
      return;
    }
    ferry_tcp_nodelay(fd);
    h->fd = fd;
    h->parked = 0;
    h->deadline_ms = ferry_now_ms() + (s->cfg->handshake_ms > 0
                                           ? s->cfg->handshake_ms
                                           : FERRY_HANDSHAKE_DEADLINE_MS);
    ferry_handshake_reader_init(&h->rd, 1, FERRY_HANDSHAKE_MAX_KEY);
    ferry_peer_name(fd, h->peer, sizeof h->peer);
    ferry_debug("connection from %s", h->peer);
  }
}

/* How many bytes the reader needs next, so that recv() never takes bytes
 * that belong to the session. */
static size_t bytes_wanted(const ferry_handshake_reader *r) {
  if (r->hdr_len < 8)
    return 8 - r->hdr_len;
  return (size_t)r->unvalidated_key_len - r->key.len;
}

/* Judges a complete key string: role "client" and a first token equal to
 * the current match key.  Returns 1 to accept. */
static int key_matches(ferry_server *s, const char *key, size_t len,
                       char *why, size_t whycap) {
  ferry_key_string ks;
  int rc = ferry_key_string_parse(key, len, &ks);
  if (rc) {
    snprintf(why, whycap, "malformed key string (%s)", ferry_strerror(rc));
    return 0;
  }
  if (strcmp(ks.role, "client") != 0) {
    snprintf(why, whycap, "role '%s' is not client", ks.role);
    return 0;
  }
  if (!s->has_matchkey || ks.body_len != strlen(s->matchkey) ||
      memcmp(ks.body, s->matchkey, ks.body_len) != 0) {
    snprintf(why, whycap, "mismatch key");
    return 0;
  }
  return 1;
}

int server_listen_reply_success(ferry_server *s, int fd) {
  ferry_buf out;
  ferry_buf_init(&out, FERRY_HANDSHAKE_MAX_KEY + 16);
  char key[SERVER_MAX_KEY + 8];
  snprintf(key, sizeof key, "server:%s", s->cfg->key);
  int rc = ferry_handshake_encode(&out, FERRY_RPC_CODE_SUCCESS, key,
                                  strlen(key));
  if (rc == 0)
    rc = ferry_write_full(fd, out.data, out.len,
                          ferry_now_ms() + SERVER_TIMEOUT_PACKET_MS);
  ferry_buf_close(&out);
  return rc;
}

/* The handshake is complete and the key accepted: run it now or, if a
 * session is running, keep it until that one ends. */
static void accept_client(ferry_server *s, server_hs *h) {
  if (s->sess.active) {
    h->parked = 1;
    ferry_debug("client %s waits for the running session", h->peer);
    return;
  }
  int fd = h->fd;
  h->fd = -1;
  /* The session child does blocking I/O on this socket. */
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  server_fork_start(s, fd, h->peer, ferry_handshake_key(&h->rd),
                    ferry_handshake_key_len(&h->rd), 1);
  hs_free(h);
}

void server_listen_read(ferry_server *s, int i) {
  server_hs *h = &s->hs[i];
  uint8_t buf[1024];
  size_t want = bytes_wanted(&h->rd);
  if (want > sizeof buf)
    want = sizeof buf;
  ssize_t n = recv(h->fd, buf, want, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  /* TVM's client writes the magic, the key length and the key separately
   * with Nagle on: acknowledge each at once (see ferry_tcp_quickack). */
  if (n > 0)
    ferry_tcp_quickack(h->fd);
  if (n <= 0) {
    ferry_info("%s closed the connection during the handshake", h->peer);
    hs_free(h);
    return;
  }
  size_t used = 0;
  int rc = ferry_handshake_reader_feed(&h->rd, buf, (size_t)n, &used);
  if (h->rd.hdr_len >= 4 && h->rd.word != FERRY_RPC_MAGIC) {
    /* Not our protocol at all: say nothing, as TVM's server does. */
    ferry_warn("%s: wrong magic 0x%x, connection closed", h->peer,
               (unsigned)h->rd.word);
    hs_free(h);
    return;
  }
  if (rc == FERRY_EAGAIN)
    return;
  if (rc < 0) {
    ferry_warn("%s: bad handshake (key length %d: %s), answered MISMATCH",
               h->peer, (int)h->rd.unvalidated_key_len, ferry_strerror(rc));
    send_mismatch(h->fd);
    hs_free(h);
    return;
  }
  char why[128];
  if (!key_matches(s, ferry_handshake_key(&h->rd),
                   ferry_handshake_key_len(&h->rd), why, sizeof why)) {
    ferry_warn("%s from %s, answered MISMATCH", why, h->peer);
    send_mismatch(h->fd);
    hs_free(h);
    return;
  }
  accept_client(s, h);
}

int64_t server_listen_expire(ferry_server *s, int64_t now) {
  int64_t next = -1;
  for (int i = 0; i < SERVER_MAX_HANDSHAKES; i++) {
    server_hs *h = &s->hs[i];
    if (h->fd < 0 || h->parked)
      continue;
    if (now >= h->deadline_ms) {
      ferry_warn("%s sent no complete handshake in time, connection closed",
                 h->peer);
      hs_free(h);
      continue;
    }
    next = server_min_deadline(next, h->deadline_ms);
  }
  return next;
}

void server_listen_unpark(ferry_server *s) {
  if (s->sess.active || s->stopping)
    return;
  for (int i = 0; i < SERVER_MAX_HANDSHAKES; i++) {
    server_hs *h = &s->hs[i];
    if (h->fd < 0 || !h->parked)
      continue;
    char why[128];
    /* The key may have rotated while it waited (a tracker hands each key
     * out once); judge it again. */
    if (!key_matches(s, ferry_handshake_key(&h->rd),
                     ferry_handshake_key_len(&h->rd), why, sizeof why)) {
      ferry_warn("%s from %s, answered MISMATCH", why, h->peer);
      send_mismatch(h->fd);
      hs_free(h);
      continue;
    }
    h->parked = 0;
    accept_client(s, h);
    return;
  }
}

void server_listen_close_all(ferry_server *s) {
  for (int i = 0; i < SERVER_MAX_HANDSHAKES; i++)
    if (s->hs[i].fd >= 0)
      hs_free(&s->hs[i]);
}
