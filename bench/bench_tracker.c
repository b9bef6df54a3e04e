/* Tracker benchmark (issue 2): 1,000 fake servers and 1,000 clients.
 *
 * Each client loops REQUEST -> grant; as soon as a grant names a server,
 * that server re-offers itself with a fresh match key (as a real server
 * does when its session ends).  Reports grants per second and the p50/p99
 * latency from sending a REQUEST to receiving its grant.  In the same run
 * it measures a baseline: the same number of connections doing request/echo
 * round trips of a similar frame against a trivial epoll echo process on
 * loopback, and prints the ratio.
 *
 *   bench_tracker [--ferry PATH | --tracker HOST:PORT] [--servers N]
 *                 [--clients N] [--seconds S]
 *
 * Without --tracker it starts `PATH tracker --port 0 --silent` (PATH
 * defaults to ../ferry next to this program) and stops it at the end. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/bytes.h"
#include "wire/constants.h"

enum { ROLE_SERVER, ROLE_CLIENT, ROLE_ECHO };
enum { ST_MAGIC, ST_INFO, ST_PUT, ST_IDLE, ST_WAIT };

typedef struct bconn {
  int fd, role, idx, state;
  uint8_t in[4096];
  size_t inlen;
  int64_t sent_ns;
  unsigned gen; /* server: match-key generation */
} bconn;

typedef struct samples {
  int64_t *v;
  size_t n, cap;
} samples;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void add_sample(samples *s, int64_t v) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 65536;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
    if (!s->v)
      die("realloc");
  }
  s->v[s->n++] = v;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static double pct_us(samples *s, double p) {
  if (!s->n)
    return 0;
  qsort(s->v, s->n, sizeof *s->v, cmp_i64);
  size_t i = (size_t)(p * (double)(s->n - 1));
  return (double)s->v[i] / 1000.0;
}

static int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    die("socket");
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int tries = 0; connect(fd, (struct sockaddr *)&a, sizeof a) != 0; tries++) {
    if (errno != EINTR && (errno != EAGAIN || tries > 1000))
      die("connect");
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static void send_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (w <= 0)
      die("send");
    b += w;
    n -= (size_t)w;
  }
}

static void send_frame(bconn *c, const char *text) {
  uint8_t buf[512];
  size_t n = strlen(text);
  put_le32(buf, (uint32_t)n);
  memcpy(buf + 4, text, n);
  send_all(c->fd, buf, n + 4);
}

static void send_put(bconn *c) {
  char t[128];
  snprintf(t, sizeof t, "[3, \"bench\", [9000, \"bench:%d-%u\"], null]", c->idx, c->gen++);
  c->state = ST_PUT;
  send_frame(c, t);
}

static void send_request(bconn *c) {
  c->state = ST_WAIT;
  c->sent_ns = now_ns();
  send_frame(c, "[4, \"bench\", \"\", 1]");
}

typedef struct run {
  int ep;
  bconn *servers, *clients;
  int nservers, nclients;
  int registered;
  int measuring;
  long long grants;
  samples lat;
} run;

/* Handles one reply frame on a tracker connection. */
static void on_frame(run *r, bconn *c, const uint8_t *body, size_t len) {
  if (c->role == ROLE_SERVER) {
    if (c->state == ST_INFO) {
      send_put(c);
    } else if (c->state == ST_PUT) {
      if (len != 1 || body[0] != '0') {
        fprintf(stderr, "bench: PUT refused\n");
        exit(1);
      }
      if (c->gen == 1)
        r->registered++;
      c->state = ST_IDLE;
    }
    return;
  }
  /* Client: a grant [0, ["127.0.0.1", 9000, "bench:<server>-<gen>"]]. */
  int64_t t = now_ns();
  const char *mk = memmem(body, len, "bench:", 6);
  if (!mk) {
    fprintf(stderr, "bench: unexpected reply %.*s\n", (int)len, (const char *)body);
    exit(1);
  }
  int sidx = atoi(mk + 6);
  if (sidx < 0 || sidx >= r->nservers) {
    fprintf(stderr, "bench: bad server index\n");
    exit(1);
  }
  if (r->measuring) {
    r->grants++;
    add_sample(&r->lat, t - c->sent_ns);
  }
  /* The session is over at once: the server offers itself again, and the
   * client asks for the next device. */
  send_put(&r->servers[sidx]);
  send_request(c);
}

static void on_readable(run *r, bconn *c) {
  for (;;) {
    ssize_t n = recv(c->fd, c->in + c->inlen, sizeof c->in - c->inlen, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return;
    if (n <= 0) {
      fprintf(stderr, "bench: connection closed by the %s\n",
              c->role == ROLE_ECHO ? "echo server" : "tracker");
      exit(1);
    }
    c->inlen += (size_t)n;
    size_t off = 0;
    for (;;) {
      if (c->state == ST_MAGIC) {
        if (c->inlen - off < 4)
          break;
        off += 4;
        if (c->role == ROLE_SERVER) {
          c->state = ST_INFO;
          char t[96];
          snprintf(t, sizeof t, "[5, {\"key\": \"server:bench\", \"addr\": [null, %d]}]",
                   9000 + c->idx);
          send_frame(c, t);
        } else {
          send_request(c);
        }
        continue;
      }
      if (c->inlen - off < 4)
        break;
      uint32_t len = get_le32(c->in + off);
      if (len > sizeof c->in - 4) {
        fprintf(stderr, "bench: reply too long\n");
        exit(1);
      }
      if (c->inlen - off - 4 < len)
        break;
      const uint8_t *body = c->in + off + 4;
      off += 4 + len;
      if (c->role == ROLE_ECHO) {
        if (r->measuring) {
          r->grants++;
          add_sample(&r->lat, now_ns() - c->sent_ns);
        }
        c->sent_ns = now_ns();
        send_frame(c, "[4, \"bench\", \"\", 1]");
      } else {
        on_frame(r, c, body, len);
      }
    }
    memmove(c->in, c->in + off, c->inlen - off);
    c->inlen -= off;
  }
}

static void watch(run *r, bconn *c) {
  fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
    die("epoll_ctl");
}

static void pump(run *r, int timeout_ms) {
  struct epoll_event evs[256];
  int n = epoll_wait(r->ep, evs, 256, timeout_ms);
  for (int i = 0; i < n; i++)
    on_readable(r, evs[i].data.ptr);
}

/* Runs for `seconds` after a one-second warm-up; returns ops/s. */
static double measure(run *r, double seconds) {
  int64_t start = now_ns();
  while (now_ns() - start < 1000000000LL)
    pump(r, 10);
  r->measuring = 1;
  r->grants = 0;
  r->lat.n = 0;
  start = now_ns();
  int64_t end = start + (int64_t)(seconds * 1e9);
  while (now_ns() < end)
    pump(r, 10);
  r->measuring = 0;
  return (double)r->grants / ((double)(now_ns() - start) / 1e9);
}

/* A trivial echo process: the baseline's "server". */
static pid_t start_echo(int *port) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 4096) ||
      getsockname(lfd, (struct sockaddr *)&a, &alen))
    die("echo listen");
  *port = ntohs(a.sin_port);
  pid_t pid = fork();
  if (pid < 0)
    die("fork");
  if (pid > 0) {
    close(lfd);
    return pid;
  }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  uint8_t buf[65536];
  for (;;) {
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (c >= 0) {
          int one = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
        }
        continue;
      }
      ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r <= 0) {
        close(fd);
        continue;
      }
      send_all(fd, buf, (size_t)r);
    }
  }
}

static pid_t start_tracker(const char *ferry, int *port) {
  int pfd[2];
  if (pipe(pfd))
    die("pipe");
  pid_t pid = fork();
  if (pid < 0)
    die("fork");
  if (pid == 0) {
    dup2(pfd[1], 2);
    close(pfd[0]);
    execl(ferry, ferry, "tracker", "--port", "0", "--silent", (char *)NULL);
    perror(ferry);
    _exit(127);
  }
  close(pfd[1]);
  char line[512];
  size_t n = 0;
  char c;
  while (read(pfd[0], &c, 1) == 1) {
    if (c != '\n') {
      if (n < sizeof line - 1)
        line[n++] = c;
      continue;
    }
    line[n] = 0;
    n = 0;
    const char *p = strstr(line, "listening on ");
    if (p) {
      const char *colon = strrchr(p, ':');
      *port = atoi(colon + 1);
      /* Keep the pipe open but unread: --silent logs little. */
      return pid;
    }
  }
  fprintf(stderr, "bench: %s did not start\n", ferry);
  exit(1);
}

int main(int argc, char **argv) {
  char ferry_default[PATH_MAX];
  const char *ferry = NULL, *tracker = NULL;
  int nservers = 1000, nclients = 1000;
  double seconds = 5;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--ferry") && i + 1 < argc)
      ferry = argv[++i];
    else if (!strcmp(argv[i], "--tracker") && i + 1 < argc)
      tracker = argv[++i];
    else if (!strcmp(argv[i], "--servers") && i + 1 < argc)
      nservers = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--clients") && i + 1 < argc)
      nclients = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
      seconds = atof(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [--ferry PATH | --tracker 127.0.0.1:PORT] [--servers N] "
                      "[--clients N] [--seconds S]\n", argv[0]);
      return 2;
    }
  }
  if (nservers < 1 || nclients < 1 || nservers > 20000 || nclients > 20000 || !(seconds > 0))
    return 2;
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (!ferry) {
    /* build/bench/bench_tracker -> build/ferry */
    ssize_t n = readlink("/proc/self/exe", ferry_default, sizeof ferry_default - 16);
    if (n <= 0)
      die("readlink");
    ferry_default[n] = 0;
    char *slash = strrchr(ferry_default, '/');
    *slash = 0;
    slash = strrchr(ferry_default, '/');
    strcpy(slash ? slash + 1 : ferry_default, "ferry");
    ferry = ferry_default;
  }
  int port;
  pid_t tpid = -1;
  if (tracker) {
    const char *colon = strrchr(tracker, ':');
    if (!colon || strncmp(tracker, "127.0.0.1:", 10) != 0) {
      fprintf(stderr, "bench: --tracker must be 127.0.0.1:PORT\n");
      return 2;
    }
    port = atoi(colon + 1);
  } else {
    tpid = start_tracker(ferry, &port);
  }

  run r = {0};
  r.ep = epoll_create1(EPOLL_CLOEXEC);
  r.nservers = nservers;
  r.nclients = nclients;
  r.servers = calloc((size_t)nservers, sizeof *r.servers);
  r.clients = calloc((size_t)nclients, sizeof *r.clients);
  uint8_t magic[4];
  put_le32(magic, FERRY_RPC_TRACKER_MAGIC);
  for (int i = 0; i < nservers; i++) {
    bconn *c = &r.servers[i];
    c->fd = connect_to(port);
    c->role = ROLE_SERVER;
    c->idx = i;
    watch(&r, c);
    send_all(c->fd, magic, 4);
  }
  int64_t t0 = now_ns();
  while (r.registered < nservers) {
    pump(&r, 100);
    if (now_ns() - t0 > 30000000000LL) {
      fprintf(stderr, "bench: only %d servers registered\n", r.registered);
      return 1;
    }
  }
  for (int i = 0; i < nclients; i++) {
    bconn *c = &r.clients[i];
    c->fd = connect_to(port);
    c->role = ROLE_CLIENT;
    c->idx = i;
    watch(&r, c);
    send_all(c->fd, magic, 4);
  }
  double grants = measure(&r, seconds);
  double p50 = pct_us(&r.lat, 0.50), p99 = pct_us(&r.lat, 0.99);
  long long ngrants = r.grants;
  for (int i = 0; i < nservers; i++)
    close(r.servers[i].fd);
  for (int i = 0; i < nclients; i++)
    close(r.clients[i].fd);
  if (tpid > 0) {
    kill(tpid, SIGTERM);
    waitpid(tpid, NULL, 0);
  }

  /* Baseline: the same number of client connections doing request/echo
   * round trips of the REQUEST frame against an epoll echo process. */
  int eport;
  pid_t epid = start_echo(&eport);
  close(r.ep);
  r.ep = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < nclients; i++) {
    bconn *c = &r.clients[i];
    memset(c, 0, sizeof *c);
    c->fd = connect_to(eport);
    c->role = ROLE_ECHO;
    c->state = ST_IDLE;
    watch(&r, c);
    c->sent_ns = now_ns();
    send_frame(c, "[4, \"bench\", \"\", 1]");
  }
  double echo = measure(&r, seconds);
  double e50 = pct_us(&r.lat, 0.50), e99 = pct_us(&r.lat, 0.99);
  for (int i = 0; i < nclients; i++)
    close(r.clients[i].fd);
  kill(epid, SIGKILL);
  waitpid(epid, NULL, 0);

  printf("tracker: %d servers, %d clients, %.1f s: %lld grants, %.0f grants/s, "
         "grant latency p50 %.0f us, p99 %.0f us\n",
         nservers, nclients, seconds, ngrants, grants, p50, p99);
  printf("baseline (raw TCP request/echo, %d connections): %.0f round trips/s, "
         "p50 %.0f us, p99 %.0f us\n", nclients, echo, e50, e99);
  printf("ratio grants/s : echo round trips/s = %.2f (a grant cycle is two "
         "round trips: REQUEST->grant and the server's PUT->0)\n", grants / echo);
  free(r.servers);
  free(r.clients);
  free(r.lat.v);
  close(r.ep);
  return 0;
}
