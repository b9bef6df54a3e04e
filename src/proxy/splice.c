/* The relay through splice(2) (Linux): once a pair's handshake replies
 * are written, each direction moves socket -> pipe -> socket inside the
 * kernel, so the bytes never enter user space (no read into a chunk, no
 * write from it) and the proxy's queues stay empty.
 *
 * Each connection owns the pipe that holds what was read from it, bound
 * for its partner.  A connection's poll asks for READABLE while its own
 * pipe has room and for WRITABLE while its partner's pipe holds bytes;
 * a full pipe stops the reading (back-pressure through TCP flow control,
 * as in the portable path).  The libuv TCP handles stay idle in the
 * meantime (reading stopped, nothing queued) and are used again to shut
 * down and close; the poll runs on a dup of the socket, since libuv does
 * not allow two handles on one descriptor.
 *
 * Memory: at most two pipe buffers per pair (PX_PIPE_SIZE asked for, the
 * kernel's default 64 KiB if refused), in the kernel, not in the proxy. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* splice, pipe2, F_SETPIPE_SZ */
#endif
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/net.h"
#include "proxy/proxy_internal.h"

#if defined(__linux__) && defined(SPLICE_F_NONBLOCK)

#define PX_SPLICE_ROUNDS 16 /* splice calls per direction and wake-up */

static void poll_cb(uv_poll_t *p, int status, int events);

static void close_fds(pconn *c) {
  if (c->pipe_r >= 0)
    close(c->pipe_r);
  if (c->pipe_w >= 0)
    close(c->pipe_w);
  c->pipe_r = c->pipe_w = -1;
}

/* Pipe and poll of one side; 0, or -1 with nothing left open. */
static int side_init(pconn *c) {
  int fds[2];
  int fd;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
    return -1;
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
    return -1;
  c->pipe_r = fds[0];
  c->pipe_w = fds[1];
  /* A larger pipe moves more per call; refused past the user's pipe
   * quota, then the 64 KiB default stays. */
  int got = fcntl(c->pipe_w, F_SETPIPE_SZ, PX_PIPE_SIZE);
  if (got <= 0)
    got = fcntl(c->pipe_w, F_GETPIPE_SZ);
  c->pipe_cap = got > 0 ? (size_t)got : 65536;
  c->pipe_bytes = 0;
  c->poll_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (c->poll_fd < 0 || uv_poll_init(&c->px->loop, &c->poll, c->poll_fd) != 0) {
    if (c->poll_fd >= 0)
      close(c->poll_fd);
    c->poll_fd = -1;
    close_fds(c);
    return -1;
  }
  c->poll.data = c;
  c->poll_open = 1;
  c->handles_open++;
  return 0;
}

/* What c's poll waits for, from the fill of both pipes. */
static void update(pconn *c) {
  if (c->state != PC_PAIRED || c->splice != 2)
    return;
  int ev = 0;
  if (!c->eof && c->pipe_bytes < c->pipe_cap)
    ev |= UV_READABLE;
  if (c->peer && c->peer->pipe_bytes > 0)
    ev |= UV_WRITABLE;
  if (ev == c->poll_events)
    return;
  c->poll_events = ev;
  if (ev)
    uv_poll_start(&c->poll, ev, poll_cb);
  else
    uv_poll_stop(&c->poll);
}

/* Moves what from's pipe holds into `to`, then reads more from `from`,
 * until both would block (bounded per wake-up).  Returns -1 if a
 * connection was closed. */
static int pump(pconn *from, pconn *to) {
  int from_fd = from->poll_fd, to_fd = to->poll_fd;
  for (int round = 0; round < PX_SPLICE_ROUNDS; round++) {
    int moved = 0;
    if (from->pipe_bytes > 0) {
      ssize_t m = splice(from->pipe_r, NULL, to_fd, NULL, from->pipe_bytes,
                         SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (m > 0) {
        from->pipe_bytes -= (size_t)m;
        moved = 1;
      } else if (m < 0 && errno != EAGAIN && errno != EINTR) {
        ferry_info("relay to %s failed: %s", to->name, strerror(errno));
        px_conn_close(to, 0);
        return -1;
      }
    }
    if (!from->eof && from->pipe_bytes < from->pipe_cap) {
      ssize_t n = splice(from_fd, NULL, from->pipe_w, NULL,
                         from->pipe_cap - from->pipe_bytes,
                         SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        from->pipe_bytes += (size_t)n;
        moved = 1;
        ferry_tcp_quickack(from_fd); /* as after every read (conn.c) */
      } else if (n == 0) {
        from->eof = 1;
      } else if (errno != EAGAIN && errno != EINTR) {
        ferry_info("%s: %s", from->name, strerror(errno));
        px_conn_close(from, 0);
        return -1;
      }
    }
    if (!moved)
      break;
  }
  if (from->eof && from->pipe_bytes == 0) {
    /* Everything it sent was passed on: the partner is shut down after
     * its own output, as in the portable path.  What the partner sent
     * that is still in its pipe gets one try (no waiting: the side that
     * sent FIN is closed now). */
    if (to->pipe_bytes > 0)
      (void)splice(to->pipe_r, NULL, from_fd, NULL, to->pipe_bytes,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    ferry_debug("%s closed", from->name);
    px_conn_close(from, 1);
    return -1;
  }
  return 0;
}

static void poll_cb(uv_poll_t *p, int status, int events) {
  pconn *c = p->data;
  if (c->state != PC_PAIRED || !c->peer)
    return;
  pconn *peer = c->peer;
  if (status < 0) {
    ferry_info("%s: %s", c->name, uv_strerror(status));
    px_conn_close(c, 0);
    return;
  }
  if ((events & UV_READABLE) && pump(c, peer) < 0)
    return;
  if ((events & UV_WRITABLE) && pump(peer, c) < 0)
    return;
  update(c);
  update(peer);
}

int px_splice_start(pconn *a) {
  pconn *b = a->peer;
  if (side_init(a) != 0)
    return FERRY_ESYS;
  if (side_init(b) != 0) {
    px_splice_close(a);
    return FERRY_ESYS;
  }
  a->splice = b->splice = 2;
  a->poll_events = b->poll_events = 0;
  update(a);
  update(b);
  return 0;
}

void px_splice_close(pconn *c) {
  c->splice = 0;
  if (!c->poll_open)
    return;
  /* The dup'd descriptor is closed with the connection, after the poll
   * handle's close callback (libuv must not watch a closed fd). */
  c->poll_open = 0;
  uv_poll_stop(&c->poll);
  uv_close((uv_handle_t *)&c->poll, px_handle_closed_cb);
  close_fds(c);
}

int px_splice_available(void) { return 1; }

#else

int px_splice_start(pconn *a) {
  (void)a;
  return FERRY_EUNSUPPORTED;
}

void px_splice_close(pconn *c) { (void)c; }

int px_splice_available(void) { return 0; }

#endif
