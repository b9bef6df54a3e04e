/* A ferry_session_io over a connected file descriptor (session.h). */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/net.h"
#include "server/session.h"

static long fd_read(void *ctx, void *buf, size_t n) {
  ferry_session_fd *f = ctx;
  for (;;) {
    ssize_t got = read(f->fd, buf, n);
    if (got >= 0) {
      /* TVM's client writes a packet's length and its body in two writes
       * with Nagle on: the body waits until the length is acknowledged, so
       * with the delayed ACK every request would cost ~40 ms.  Linux drops
       * quick-ACK mode when it likes, hence after every read (a no-op on
       * a socketpair or a pipe). */
      if (got > 0)
        ferry_tcp_quickack(f->fd);
      return (long)got;
    }
    if (errno == EINTR)
      continue;
    return errno == ECONNRESET ? FERRY_ECLOSED : FERRY_EIO;
  }
}

static int fd_write(void *ctx, const void *buf, size_t n) {
  ferry_session_fd *f = ctx;
  const uint8_t *p = buf;
  while (n > 0) {
    /* MSG_NOSIGNAL: a client that vanished is an error, not a SIGPIPE. */
    ssize_t put = send(f->fd, p, n, MSG_NOSIGNAL);
    if (put < 0 && errno == ENOTSOCK)
      put = write(f->fd, p, n);
    if (put < 0) {
      if (errno == EINTR)
        continue;
      return errno == EPIPE || errno == ECONNRESET ? FERRY_ECLOSED : FERRY_EIO;
    }
    p += put;
    n -= (size_t)put;
  }
  return FERRY_OK;
}

static void fd_close(void *ctx) {
  ferry_session_fd *f = ctx;
  if (f->fd >= 0)
    close(f->fd);
  f->fd = -1;
}

static int fd_fd(void *ctx) { return ((ferry_session_fd *)ctx)->fd; }

void ferry_session_io_fd(ferry_session_io *io, ferry_session_fd *ctx, int fd) {
  ctx->fd = fd;
  io->ctx = ctx;
  io->read = fd_read;
  io->write = fd_write;
  io->close = fd_close;
  io->fd = fd_fd;
}
