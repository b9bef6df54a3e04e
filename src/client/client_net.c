/* The client's socket I/O: blocking calls with SO_RCVTIMEO/SO_SNDTIMEO set
 * to the request timeout, so that the common case (the reply is on its way)
 * costs one send and one recv per request, like a bare ping-pong, while a
 * silent peer still ends in FERRY_ETIMEDOUT at the deadline.  Reads go
 * through a small read-ahead buffer so that the 12-byte reply prefix and a
 * small body arrive in one recv; large bodies bypass it. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>

#include "base/net.h"
#include "client/client_internal.h"

void client_net_setup(ferry_client *c) {
  if (c->opts.timeout_ms <= 0)
    return;
  struct timeval tv = {c->opts.timeout_ms / 1000, (c->opts.timeout_ms % 1000) * 1000};
  /* Failure only means that waits fall back to poll() below. */
  (void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* After EAGAIN (a socket timeout, or a non-blocking socket the caller gave
 * us): FERRY_ETIMEDOUT past the deadline, else wait for readiness. */
static int wait_ready(int fd, short events, int64_t dl) {
  int ms = -1;
  if (dl >= 0) {
    int64_t left = dl - ferry_now_ms();
    if (left <= 0)
      return FERRY_ETIMEDOUT;
    ms = left > 60000 ? 60000 : (int)left;
  }
  struct pollfd p = {fd, events, 0};
  if (poll(&p, 1, ms) < 0 && errno != EINTR)
    return FERRY_EIO;
  return 0;
}

int client_net_send(ferry_client *c, const void *a, size_t an, const void *b, size_t bn,
                    int64_t dl) {
  struct iovec iov[2] = {{(void *)a, an}, {(void *)b, bn}};
  int n = bn ? 2 : 1;
  struct iovec *v = iov;
  while (n > 0) {
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = v;
    m.msg_iovlen = (size_t)n;
    ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        int rc = wait_ready(c->fd, POLLOUT, dl);
        if (rc)
          return rc;
        continue;
      }
      return errno == EPIPE || errno == ECONNRESET ? FERRY_ECLOSED : FERRY_EIO;
    }
    size_t done = (size_t)w;
    while (n > 0 && done >= v->iov_len) {
      done -= v->iov_len;
      v++;
      n--;
    }
    if (n > 0) {
      v->iov_base = (uint8_t *)v->iov_base + done;
      v->iov_len -= done;
    }
  }
  return 0;
}

static int recv_some(ferry_client *c, void *p, size_t cap, int64_t dl, size_t *got) {
  for (;;) {
    ssize_t r = recv(c->fd, p, cap, 0);
    if (r > 0) {
      *got = (size_t)r;
      return 0;
    }
    if (r == 0)
      return FERRY_ECLOSED;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int rc = wait_ready(c->fd, POLLIN, dl);
      if (rc)
        return rc;
      continue;
    }
    return errno == ECONNRESET ? FERRY_ECLOSED : FERRY_EIO;
  }
}

int client_net_read(ferry_client *c, void *dst, size_t n, int64_t dl) {
  uint8_t *p = dst;
  size_t have = c->rlen - c->rpos;
  size_t take = have < n ? have : n;
  memcpy(p, c->rbuf + c->rpos, take);
  c->rpos += take;
  p += take;
  n -= take;
  while (n > 0) {
    size_t got = 0;
    int rc;
    if (n >= sizeof c->rbuf) { /* big: straight into the destination */
      rc = recv_some(c, p, n, dl, &got);
      if (rc)
        return rc;
      p += got;
      n -= got;
      continue;
    }
    rc = recv_some(c, c->rbuf, sizeof c->rbuf, dl, &got);
    if (rc)
      return rc;
    c->rpos = 0;
    c->rlen = got;
    take = got < n ? got : n;
    memcpy(p, c->rbuf, take);
    c->rpos = take;
    p += take;
    n -= take;
  }
  return 0;
}
