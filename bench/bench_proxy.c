/* Proxy throughput: one large transfer through a real `ferry proxy`
 * (server and client legs both on loopback) against the same transfer over
 * one direct loopback TCP connection, measured in the same run, plus the
 * proxy's peak RSS (VmHWM) during it.
 *
 *   bench_proxy [MiB] [path/to/ferry]     (default 512 MiB, ../ferry)
 *
 * Five rounds, direct and proxied alternating so that a busy machine
 * disturbs both alike; the best rate of each is reported.  Two proxies
 * run side by side: the default (portable) relay and --splice (left out
 * with a ferry that lacks the option, to compare with older builds).  Both ends use the same 256 KiB reads and writes and
 * TCP_NODELAY, direct and proxied.
 * Prints the rates and their ratios, the CPU seconds per GiB of the ends
 * and of each proxy (independent of other load on the machine), the
 * latency of TVM-style split writes (length and body apart, no
 * TCP_NODELAY) direct and through the proxy, and each proxy's VmHWM.  A
 * proxy adds a second TCP hop, which on loopback costs about what the
 * first does: with every core busy the rate ratio tends to the CPU ratio. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/net.h"
#include "common/bench_procs.h"
#include "wire/constants.h"

/* Read and write sizes tried, the same for every path: the best direct
 * rate on this machine is not at the largest (64 KiB buffers stay in the
 * cache), and a baseline below its best would flatter the proxy. */
static const size_t CHUNKS[] = {64 * 1024, 256 * 1024, 1024 * 1024};
#define NCHUNKS (sizeof CHUNKS / sizeof CHUNKS[0])
#define MAX_CHUNK (1024 * 1024)
#define ROUNDS 3
static size_t CHUNK = 256 * 1024; /* of the transfer under way */

static void die(const char *what) {
  fprintf(stderr, "bench_proxy: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* nodelay 0: as TVM's client, which leaves Nagle on. */
static int connect_opt(int port, int nodelay) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0)
    die("connect");
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
  return s;
}

static void write_all(int fd, const void *p, size_t n) {
  if (ferry_fd_write_all(fd, p, n))
    die("write");
}

/* quickack 1: a quick ACK after every read, as ferry's server reads. */
static void read_all_opt(int fd, void *p, size_t n, int quickack) {
  uint8_t *b = p;
  while (n) {
    ssize_t r = read(fd, b, n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      die("read");
    if (quickack) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
    b += r;
    n -= (size_t)r;
  }
}

static void read_all(int fd, void *p, size_t n) { read_all_opt(fd, p, n, 0); }

typedef struct sender {
  int fd;
  uint64_t bytes;
} sender;

static void *send_main(void *arg) {
  sender *s = arg;
  uint8_t *buf = malloc(MAX_CHUNK);
  for (size_t i = 0; i < CHUNK; i++)
    buf[i] = (uint8_t)(i * 31 + 7);
  for (uint64_t left = s->bytes; left;) {
    size_t n = left < CHUNK ? (size_t)left : CHUNK;
    write_all(s->fd, buf, n);
    left -= n;
  }
  free(buf);
  return NULL;
}

/* Sends `bytes` on tx and receives them on rx; returns MiB/s.  Checks the
 * byte pattern so that a corrupting relay cannot look fast. */
static double transfer(int tx, int rx, uint64_t bytes) {
  sender s = {tx, bytes};
  pthread_t t;
  double t0 = bench_now_s();
  pthread_create(&t, NULL, send_main, &s);
  uint8_t *buf = malloc(MAX_CHUNK);
  uint64_t got = 0;
  while (got < bytes) {
    ssize_t r = read(rx, buf, CHUNK);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      die("read");
    for (ssize_t i = 0; i < r; i += 4093) {
      uint64_t pos = (got + (uint64_t)i) % CHUNK;
      if (buf[i] != (uint8_t)(pos * 31 + 7)) {
        fprintf(stderr, "bench_proxy: corrupted byte at %llu\n",
                (unsigned long long)(got + (uint64_t)i));
        exit(1);
      }
    }
    got += (uint64_t)r;
  }
  pthread_join(t, NULL);
  double dt = bench_now_s() - t0;
  free(buf);
  return (double)bytes / (1 << 20) / dt;
}

/* A loopback connection without the proxy: *c connected (Nagle off when
 * client_nodelay), *s accepted with Nagle off. */
static void loopback_pair(int client_nodelay, int *c, int *s) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) ||
      getsockname(l, (struct sockaddr *)&a, &al))
    die("listen");
  *c = connect_opt(ntohs(a.sin_port), client_nodelay);
  *s = accept(l, NULL, NULL);
  int one = 1;
  setsockopt(*s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  close(l);
}

static double direct(uint64_t bytes) {
  int c, s;
  loopback_pair(1, &c, &s);
  double r = transfer(s, c, bytes);
  close(c);
  close(s);
  return r;
}

static int handshake_opt(int port, const char *key, int nodelay) {
  int s = connect_opt(port, nodelay);
  uint8_t hdr[8];
  put_le32(hdr, FERRY_RPC_MAGIC);
  put_le32(hdr + 4, (uint32_t)strlen(key));
  write_all(s, hdr, 8);
  write_all(s, key, strlen(key));
  return s;
}

static int handshake(int port, const char *key) { return handshake_opt(port, key, 1); }

/* Round trips as TVM's client makes them: the request's length and body
 * in two writes on a socket without TCP_NODELAY; the far end (like
 * ferry's server) reads with a quick ACK and answers in one write.  The
 * body waits for the ACK of the length (Nagle): without a quick ACK at
 * the receiver that is a delayed ACK, ~40 ms.  Returns microseconds per
 * round trip. */
#define RTT_BODY 64
static double split_rtt_us(int cli, int srv, int n) {
  uint8_t len[8], body[RTT_BODY], in[8 + RTT_BODY];
  memset(len, 0, sizeof len);
  put_le32(len, RTT_BODY);
  memset(body, 7, sizeof body);
  double t0 = bench_now_s();
  for (int i = 0; i < n; i++) {
    write_all(cli, len, sizeof len);
    write_all(cli, body, sizeof body);
    read_all_opt(srv, in, sizeof in, 1);
    write_all(srv, in, sizeof in);
    read_all(cli, in, sizeof in);
  }
  return (bench_now_s() - t0) * 1e6 / n;
}

static double direct_rtt_us(int n) {
  int c, s;
  loopback_pair(0, &c, &s);
  double r = split_rtt_us(c, s, n);
  close(c);
  close(s);
  return r;
}

static void expect_success(int s) {
  uint8_t hdr[8];
  read_all(s, hdr, 8);
  if ((int32_t)get_le32(hdr) != FERRY_RPC_CODE_SUCCESS) {
    fprintf(stderr, "bench_proxy: pairing failed\n");
    exit(1);
  }
  uint32_t n = get_le32(hdr + 4);
  char key[256];
  if (n >= sizeof key)
    exit(1);
  read_all(s, key, n);
}

/* User + system CPU seconds of this process (both threads) so far. */
static double self_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* User + system CPU seconds of pid so far (/proc/PID/stat). */
static double cpu_s(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  unsigned long ut = 0, st = 0;
  /* After "pid (comm)": state ppid pgrp session tty tpgid flags minflt
   * cminflt majflt cmajflt utime stime. */
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                   &ut, &st) != 2)
    return 0;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long vm_hwm_kib(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  long v = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0)
      v = strtol(line + 6, NULL, 10);
  if (f)
    fclose(f);
  return v;
}

typedef struct proxy_proc {
  pid_t pid;
  int port;
  FILE *log;
  int srv, cli; /* a paired server and client */
} proxy_proc;

/* 0, or -1 if that proxy did not start (an older ferry without the
 * option): then it is left out of the report. */
static int proxy_start(proxy_proc *px, const char *ferry, const char *extra) {
  int pipefd[2];
  if (pipe(pipefd))
    die("pipe");
  px->pid = fork();
  if (px->pid == 0) {
    dup2(pipefd[1], 2);
    close(pipefd[0]);
    /* extra NULL: no extra option (it ends the list). */
    execl(ferry, ferry, "proxy", "--port", "0", "--silent", extra, (char *)NULL);
    _exit(127);
  }
  close(pipefd[1]);
  px->log = fdopen(pipefd[0], "r");
  char line[512];
  px->port = 0;
  while (!px->port && fgets(line, sizeof line, px->log)) {
    char *p = strstr(line, "listening on ");
    char *colon = p ? strrchr(p, ':') : NULL;
    if (colon)
      px->port = atoi(colon + 1);
  }
  if (!px->port) {
    fprintf(stderr, "bench_proxy: %s proxy %s did not start\n", ferry, extra ? extra : "");
    waitpid(px->pid, NULL, 0);
    fclose(px->log);
    px->pid = 0;
    return -1;
  }
  px->srv = handshake(px->port, "server:bench");
  px->cli = handshake(px->port, "client:bench");
  expect_success(px->srv);
  expect_success(px->cli);
  return 0;
}

static int proxy_stop(proxy_proc *px) {
  if (!px->pid)
    return 1;
  close(px->srv);
  close(px->cli);
  kill(px->pid, SIGTERM);
  int status = 0;
  waitpid(px->pid, &status, 0);
  fclose(px->log);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv) {
  uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 512;
  char ferry[PATH_MAX];
  if (argc > 2) {
    snprintf(ferry, sizeof ferry, "%s", argv[2]);
  } else {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
      die("readlink");
    self[n] = 0;
    snprintf(ferry, sizeof ferry, "%s/../ferry", dirname(self));
  }
  uint64_t bytes = mib << 20;
  signal(SIGPIPE, SIG_IGN);

  /* The default relay (splice on Linux) and the portable one, side by
   * side with the direct baseline. */
  proxy_proc ks, us;
  if (proxy_start(&ks, ferry, NULL))
    return 1;
  int have_us = proxy_start(&us, ferry, "--splice") == 0;
  long hwm_idle = vm_hwm_kib(ks.pid), hwm_idle_us = have_us ? vm_hwm_kib(us.pid) : 0;

  (void)direct(64 << 20); /* warm-up */
  /* Per read/write size, best of ROUNDS rounds (direct and proxied
   * alternating so that a busy machine disturbs both alike); CPU seconds
   * of the ends (this process) and of each proxy over all of them. */
  double d = 0, p = 0, p_back = 0, u = 0, cpu_ks = 0, cpu_us = 0;
  double ends_d = 0, ends_ks = 0, ends_us = 0;
  double dk[NCHUNKS] = {0}, pk[NCHUNKS] = {0}, uk[NCHUNKS] = {0};
  for (size_t k = 0; k < NCHUNKS; k++) {
    CHUNK = CHUNKS[k];
    for (int round = 0; round < ROUNDS; round++) {
      double e0 = self_cpu_s();
      double r = direct(bytes);
      ends_d += self_cpu_s() - e0;
      dk[k] = r > dk[k] ? r : dk[k];
      double c0 = cpu_s(ks.pid);
      e0 = self_cpu_s();
      r = transfer(ks.srv, ks.cli, bytes);
      ends_ks += self_cpu_s() - e0;
      cpu_ks += cpu_s(ks.pid) - c0;
      pk[k] = r > pk[k] ? r : pk[k];
      r = transfer(ks.cli, ks.srv, bytes / 4);
      p_back = r > p_back ? r : p_back;
      if (!have_us)
        continue;
      c0 = cpu_s(us.pid);
      e0 = self_cpu_s();
      r = transfer(us.srv, us.cli, bytes);
      ends_us += self_cpu_s() - e0;
      cpu_us += cpu_s(us.pid) - c0;
      uk[k] = r > uk[k] ? r : uk[k];
    }
    d = dk[k] > d ? dk[k] : d;
    p = pk[k] > p ? pk[k] : p;
    u = uk[k] > u ? uk[k] : u;
  }
  CHUNK = CHUNKS[1];
  double gib = (double)bytes * ROUNDS * NCHUNKS / (1 << 30);
  long hwm = vm_hwm_kib(ks.pid), hwm_us = have_us ? vm_hwm_kib(us.pid) : 0;

  /* Latency of TVM-style split writes, direct and through the proxy. */
  enum { RTT_N = 100 };
  int rs = handshake(ks.port, "server:rtt");
  int rc_ = handshake_opt(ks.port, "client:rtt", 0);
  expect_success(rs);
  expect_success(rc_);
  (void)split_rtt_us(rc_, rs, 10);
  double rtt_p = split_rtt_us(rc_, rs, RTT_N);
  double rtt_d = direct_rtt_us(RTT_N);
  close(rs);
  close(rc_);
  int ok = proxy_stop(&ks) & proxy_stop(&us);

  printf("transfer size          %llu MiB (best of %d rounds per read/write size)\n",
         (unsigned long long)mib, ROUNDS);
  for (size_t k = 0; k < NCHUNKS; k++) {
    printf("  %4zu KiB: direct %7.1f  proxy %7.1f", CHUNKS[k] >> 10, dk[k], pk[k]);
    if (have_us)
      printf("  --splice %7.1f", uk[k]);
    printf(" MiB/s\n");
  }
  printf("best of the sizes:\n");
  printf("direct loopback TCP    %8.1f MiB/s\n", d);
  printf("through ferry proxy    %8.1f MiB/s  (server -> client, default relay)\n", p);
  printf("through ferry proxy    %8.1f MiB/s  (client -> server, %llu MiB)\n", p_back,
         (unsigned long long)(mib / 4));
  if (have_us)
    printf("through --splice       %8.1f MiB/s  (server -> client)\n", u);
  printf("ratio proxy / direct   %8.2f\n", p / d);
  if (have_us)
    printf("ratio --splice / direct %7.2f\n", u / d);
  /* Where the time goes, independent of how busy the machine is: CPU
   * seconds per GiB of the two ends and of the proxy.  On a machine whose
   * cores are all busy with the transfer, the rate ratio tends to the
   * ratio of these totals. */
  printf("CPU s/GiB: ends direct %.3f | ends %.3f + proxy %.3f (default)", ends_d / gib,
         ends_ks / gib, cpu_ks / gib);
  if (have_us)
    printf(" | ends %.3f + proxy %.3f (--splice)", ends_us / gib, cpu_us / gib);
  printf("\nCPU ratio direct / proxied %.2f (default)", ends_d / (ends_ks + cpu_ks));
  if (have_us)
    printf("  %.2f (--splice)", ends_d / (ends_us + cpu_us));
  printf("\nsplit-write round trip %.1f us direct, %.1f us through the proxy "
         "(ratio %.1f; ~40000 us = a delayed ACK)\n", rtt_d, rtt_p, rtt_p / rtt_d);
  printf("proxy peak RSS         %8ld KiB  (idle %ld KiB)\n", hwm, hwm_idle);
  if (have_us)
    printf("  --splice             %8ld KiB  (idle %ld KiB)\n", hwm_us, hwm_idle_us);
  return ok ? 0 : 1;
}
