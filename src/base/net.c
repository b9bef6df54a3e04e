#include "base/net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int64_t ferry_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int resolve(const char *host, int port, int passive,
                   struct addrinfo **res, char *err, size_t errcap) {
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  int rc = getaddrinfo(host && *host ? host : NULL, service, &hints, res);
  if (rc != 0) {
    snprintf(err, errcap, "cannot resolve '%s': %s", host ? host : "",
             gai_strerror(rc));
    return FERRY_ENOTFOUND;
  }
  return 0;
}

static int bound_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
    return -1;
  if (ss.ss_family == AF_INET)
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

int ferry_tcp_listen(const char *host, int port, int port_end, int backlog,
                     int *fd, int *bound, char *err, size_t errcap) {
  if (port_end <= port || port == 0)
    port_end = port + 1;
  int last_errno = 0;
  for (int p = port; p < port_end; p++) {
    struct addrinfo *res;
    int rc = resolve(host, p, 1, &res, err, errcap);
    if (rc)
      return rc;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
      int s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                     ai->ai_protocol);
      if (s < 0) {
        last_errno = errno;
        continue;
      }
      int one = 1;
      setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (bind(s, ai->ai_addr, ai->ai_addrlen) == 0 &&
          listen(s, backlog) == 0) {
        freeaddrinfo(res);
        *fd = s;
        *bound = bound_port(s);
        return 0;
      }
      last_errno = errno;
      close(s);
    }
    freeaddrinfo(res);
  }
  snprintf(err, errcap, "cannot listen on %s ports %d..%d: %s",
           host ? host : "", port, port_end - 1, strerror(last_errno));
  return FERRY_ESYS;
}

static int wait_fd(int fd, short events, int64_t deadline_ms) {
  for (;;) {
    int timeout = -1;
    if (deadline_ms >= 0) {
      int64_t left = deadline_ms - ferry_now_ms();
      if (left <= 0)
        return FERRY_ETIMEDOUT;
      timeout = left > 1000000 ? 1000000 : (int)left;
    }
    struct pollfd pfd = {.fd = fd, .events = events};
    int rc = poll(&pfd, 1, timeout);
    if (rc > 0)
      return 0;
    if (rc == 0)
      continue; /* re-check the deadline */
    if (errno != EINTR)
      return FERRY_EIO;
  }
}

/* "connection refused", "no answer within 500 ms", ...: strerror's text
 * in lower case, as it reads in the middle of a sentence. */
static void connect_reason(char *err, size_t errcap, int rc, int e, int timeout_ms) {
  if (!err || errcap == 0)
    return;
  if (rc == FERRY_ETIMEDOUT) {
    snprintf(err, errcap, "no answer within %d ms", timeout_ms);
    return;
  }
  snprintf(err, errcap, "%s", strerror(e));
  if (err[0] >= 'A' && err[0] <= 'Z' && !(err[1] >= 'A' && err[1] <= 'Z'))
    err[0] = (char)(err[0] - 'A' + 'a');
}

int ferry_tcp_connect(const char *host, int port, int timeout_ms, int *fd,
                      char *err, size_t errcap) {
  struct addrinfo *res;
  char rerr[256];
  int rc = resolve(host, port, 0, &res, rerr, sizeof rerr);
  if (rc) {
    /* resolve() names the host; the caller does too. */
    const char *colon = strstr(rerr, "': ");
    if (err && errcap)
      snprintf(err, errcap, "the name does not resolve (%s)", colon ? colon + 3 : rerr);
    return rc;
  }
  int64_t deadline = timeout_ms < 0 ? -1 : ferry_now_ms() + timeout_ms;
  rc = FERRY_ECONNREFUSED;
  int last_errno = ECONNREFUSED;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    int s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                   ai->ai_protocol);
    if (s < 0) {
      last_errno = errno;
      continue;
    }
    int c = connect(s, ai->ai_addr, ai->ai_addrlen);
    if (c != 0 && errno == EINPROGRESS) {
      int w = wait_fd(s, POLLOUT, deadline);
      if (w == FERRY_ETIMEDOUT) {
        close(s);
        rc = FERRY_ETIMEDOUT;
        last_errno = ETIMEDOUT;
        break;
      }
      int soerr = 0;
      socklen_t len = sizeof soerr;
      getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &len);
      c = soerr ? -1 : 0;
      errno = soerr;
    }
    if (c == 0) {
      int flags = fcntl(s, F_GETFL);
      fcntl(s, F_SETFL, flags & ~O_NONBLOCK);
      ferry_tcp_nodelay(s);
      freeaddrinfo(res);
      *fd = s;
      return 0;
    }
    last_errno = errno;
    rc = errno == ECONNREFUSED ? FERRY_ECONNREFUSED : FERRY_ESYS;
    close(s);
  }
  freeaddrinfo(res);
  /* Only the reason: every caller says what it was connecting to and
   * where (a tracker, a proxy, a server), which it alone knows. */
  connect_reason(err, errcap, rc, last_errno, timeout_ms);
  return rc;
}

int ferry_read_full(int fd, void *buf, size_t n, int64_t deadline_ms,
                    size_t *got) {
  uint8_t *p = buf;
  size_t done = 0;
  int rc = 0;
  while (done < n) {
    if (deadline_ms >= 0) {
      rc = wait_fd(fd, POLLIN, deadline_ms);
      if (rc)
        break;
    }
    ssize_t r = recv(fd, p + done, n - done, 0);
    if (r > 0) {
      done += (size_t)r;
    } else if (r == 0) {
      rc = FERRY_ECLOSED;
      break;
    } else if (errno != EINTR && errno != EAGAIN) {
      rc = (errno == ECONNRESET) ? FERRY_ECLOSED : FERRY_EIO;
      break;
    }
  }
  if (got)
    *got = done;
  return rc;
}

int ferry_write_full(int fd, const void *buf, size_t n, int64_t deadline_ms) {
  const uint8_t *p = buf;
  while (n > 0) {
    if (deadline_ms >= 0) {
      int rc = wait_fd(fd, POLLOUT, deadline_ms);
      if (rc)
        return rc;
    }
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    } else if (w < 0 && errno != EINTR && errno != EAGAIN) {
      return (errno == EPIPE || errno == ECONNRESET) ? FERRY_ECLOSED : FERRY_EIO;
    }
  }
  return 0;
}

int ferry_fd_write_all(int fd, const void *buf, size_t n) {
  const uint8_t *p = buf;
  size_t done = 0;
  while (done < n) {
    ssize_t w = write(fd, p + done, n - done);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return FERRY_EIO;
    done += (size_t)w;
  }
  return 0;
}

void ferry_tcp_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* FERRY_NO_QUICKACK=1 in the environment turns ferry_tcp_quickack into a
 * no-op, so that a benchmark can measure the delayed-ACK behaviour of
 * TVM's own daemons with ferry's (bench/bench_trial.c).  Read once: the
 * call sits on receive paths.  0 unread, 1 quick-ACK on, 2 off. */
static _Atomic int quickack_state;

static int quickack_enabled(void) {
  int s = atomic_load_explicit(&quickack_state, memory_order_relaxed);
  if (s == 0) {
    const char *e = getenv("FERRY_NO_QUICKACK");
    s = e && *e && strcmp(e, "0") != 0 ? 2 : 1;
    atomic_store_explicit(&quickack_state, s, memory_order_relaxed);
  }
  return s == 1;
}

void ferry_tcp_quickack(int fd) {
#ifdef TCP_QUICKACK
  if (!quickack_enabled())
    return;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
#else
  (void)fd;
#endif
}

void ferry_peer_name(int fd, char *out, size_t cap) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET) {
      struct sockaddr_in *a = (struct sockaddr_in *)&ss;
      inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
      inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
      port = ntohs(a->sin6_port);
    }
  }
  snprintf(out, cap, "%s:%d", ip, port);
}
