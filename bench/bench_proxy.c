/* Proxy throughput: one large transfer through a real `ferry proxy`
 * (server and client legs both on loopback) against the same transfer over
 * one direct loopback TCP connection, measured in the same run, plus the
 * proxy's peak RSS (VmHWM) during it.
 *
 *   bench_proxy [MiB] [path/to/ferry]     (default 512 MiB, ../ferry)
 *
 * Three rounds, direct and proxied alternating so that a busy machine
 * disturbs both alike; the best rate of each is reported.
 * Prints the two rates and their ratio; the proxy adds a second TCP hop
 * and a user-space copy-free relay, so a ratio near 0.5-1.0 is wire speed
 * on a 2-core machine (sender, proxy and receiver share the cores). */
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
#include "wire/constants.h"

#define CHUNK (256 * 1024)
#define ROUNDS 5

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "bench_proxy: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int connect_to(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0)
    die("connect");
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

static void write_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    ssize_t w = write(fd, b, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      die("write");
    b += w;
    n -= (size_t)w;
  }
}

static void read_all(int fd, void *p, size_t n) {
  uint8_t *b = p;
  while (n) {
    ssize_t r = read(fd, b, n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      die("read");
    b += r;
    n -= (size_t)r;
  }
}

typedef struct sender {
  int fd;
  uint64_t bytes;
} sender;

static void *send_main(void *arg) {
  sender *s = arg;
  uint8_t *buf = malloc(CHUNK);
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
  double t0 = now_s();
  pthread_create(&t, NULL, send_main, &s);
  uint8_t *buf = malloc(CHUNK);
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
  double dt = now_s() - t0;
  free(buf);
  return (double)bytes / (1 << 20) / dt;
}

static double direct(uint64_t bytes) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) ||
      getsockname(l, (struct sockaddr *)&a, &al))
    die("listen");
  int c = connect_to(ntohs(a.sin_port));
  int s = accept(l, NULL, NULL);
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  double r = transfer(s, c, bytes);
  close(c);
  close(s);
  close(l);
  return r;
}

static int handshake(int port, const char *key) {
  int s = connect_to(port);
  uint8_t hdr[8];
  put_le32(hdr, FERRY_RPC_MAGIC);
  put_le32(hdr + 4, (uint32_t)strlen(key));
  write_all(s, hdr, 8);
  write_all(s, key, strlen(key));
  return s;
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

static void proxy_start(proxy_proc *px, const char *ferry, const char *extra) {
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
    fprintf(stderr, "bench_proxy: %s proxy did not start\n", ferry);
    exit(1);
  }
  px->srv = handshake(px->port, "server:bench");
  px->cli = handshake(px->port, "client:bench");
  expect_success(px->srv);
  expect_success(px->cli);
}

static int proxy_stop(proxy_proc *px) {
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
  proxy_start(&ks, ferry, NULL);
  proxy_start(&us, ferry, "--no-splice");
  long hwm_idle = vm_hwm_kib(ks.pid), hwm_idle_us = vm_hwm_kib(us.pid);

  (void)direct(64 << 20); /* warm-up */
  /* CPU seconds per round: the ends (this process) and the proxy. */
  double d = 0, p = 0, p_back = 0, u = 0, cpu_ks = 0, cpu_us = 0;
  double ends_d = 0, ends_ks = 0, ends_us = 0;
  for (int round = 0; round < ROUNDS; round++) {
    double e0 = self_cpu_s();
    double r = direct(bytes);
    ends_d += self_cpu_s() - e0;
    d = r > d ? r : d;
    double c0 = cpu_s(ks.pid);
    e0 = self_cpu_s();
    r = transfer(ks.srv, ks.cli, bytes);
    ends_ks += self_cpu_s() - e0;
    cpu_ks += cpu_s(ks.pid) - c0;
    p = r > p ? r : p;
    r = transfer(ks.cli, ks.srv, bytes / 4);
    p_back = r > p_back ? r : p_back;
    c0 = cpu_s(us.pid);
    e0 = self_cpu_s();
    r = transfer(us.srv, us.cli, bytes);
    ends_us += self_cpu_s() - e0;
    cpu_us += cpu_s(us.pid) - c0;
    u = r > u ? r : u;
  }
  double gib = (double)bytes * ROUNDS / (1 << 30);
  long hwm = vm_hwm_kib(ks.pid), hwm_us = vm_hwm_kib(us.pid);
  int ok = proxy_stop(&ks) & proxy_stop(&us);

  printf("transfer size          %llu MiB (best of %d rounds)\n", (unsigned long long)mib,
         ROUNDS);
  printf("direct loopback TCP    %8.1f MiB/s\n", d);
  printf("through ferry proxy    %8.1f MiB/s  (server -> client)\n", p);
  printf("through ferry proxy    %8.1f MiB/s  (client -> server, %llu MiB)\n", p_back,
         (unsigned long long)(mib / 4));
  printf("  --no-splice          %8.1f MiB/s  (server -> client)\n", u);
  printf("ratio proxy / direct   %8.2f\n", p / d);
  printf("  --no-splice / direct %8.2f\n", u / d);
  /* Where the time goes, independent of how busy the machine is: CPU
   * seconds per GiB of the two ends and of the proxy.  On a machine whose
   * cores are all busy with the transfer, the rate ratio tends to the
   * ratio of these totals. */
  printf("CPU s/GiB: ends direct %6.3f | ends %6.3f + proxy %6.3f (splice) | "
         "ends %6.3f + proxy %6.3f (--no-splice)\n",
         ends_d / gib, ends_ks / gib, cpu_ks / gib, ends_us / gib, cpu_us / gib);
  printf("CPU ratio direct / proxied %5.2f (splice)  %5.2f (--no-splice)\n",
         ends_d / (ends_ks + cpu_ks), ends_d / (ends_us + cpu_us));
  printf("proxy peak RSS         %8ld KiB  (idle %ld KiB)\n", hwm, hwm_idle);
  printf("  --no-splice          %8ld KiB  (idle %ld KiB)\n", hwm_us, hwm_idle_us);
  return ok ? 0 : 1;
}
