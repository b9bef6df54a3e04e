/* Per-trial latency of an auto-tuner with TVM's own client pattern
 * (issue 10, item 13).  One trial, as TVM's autotvm / meta_schedule
 * runners do it: REQUEST a key at the tracker (a fresh tracker
 * connection), connect to the granted server, upload a small kernel
 * library, load_module, allocate two tensors, copy one in, time_evaluator
 * on `addone`, close.  Reports trials per second.
 *
 * What makes it TVM's pattern on the wire: NODELAY is off on the client's
 * sockets, and every message goes out as its length and then its body in
 * two write() calls (TVM's Python sendjson; the handshake's magic, key
 * length and key in three, as TVM's C++ RPCConnect).  With Nagle on, the
 * body waits for the peer's ACK of the length, and a receiver that
 * delays its ACK costs ~40 ms per message.  ferry's daemons acknowledge at
 * once on those sockets (ferry_tcp_quickack); TVM's do not.
 *
 * Columns, measured alternately in rounds in this one run:
 *   ferry       ferry tracker + ferry server as built;
 *   baseline    the same started with FERRY_NO_QUICKACK=1: the
 *               delayed-ACK behaviour of TVM's own tracker and server;
 *   tvm         (only when FERRY_TVM_PYTHONPATH names a TVM python
 *               package) `python3 -m tvm.exec.rpc_tracker` and
 *               `rpc_server`; FERRY_TVM_PYTHON picks the interpreter.
 *
 * The session runs through ferry's C client, connected over a socket pair
 * to a relay thread that writes to the real TCP socket in TVM's pattern
 * (it knows the framing: handshake words, then u64-length packets).  The
 * relay costs the same in every column.
 *
 *   bench_trial [--ferry PATH] [--lib testlib.so] [--seconds S] [--rounds N]
 *
 * --ferry and --lib default as bench_find_ferry says (bench_procs.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "common/bench_procs.h"
#include "base/bytes.h"
#include "base/net.h"
#include "ferry/client.h"
#include "wire/constants.h"
#include "wire/tracker_msg.h"

#define KEY "trial"
#define TRIAL_TIMEOUT_MS 60000

static int free_port(void) {
  int fd, port;
  char err[256];
  if (ferry_tcp_listen("127.0.0.1", 0, 0, 1, &fd, &port, err, sizeof err) != 0)
    bench_die("listen", err);
  close(fd);
  return port;
}

/* Waits until something accepts connections on port (TVM's daemons do
 * not print a line we could parse across versions). */
static void wait_port(int port, bench_proc *p) {
  for (int i = 0; i < 3000; i++) {
    int fd;
    char err[256];
    if (ferry_tcp_connect("127.0.0.1", port, 1000, &fd, err, sizeof err) == 0) {
      close(fd);
      return;
    }
    int st;
    if (waitpid(p->pid, &st, WNOHANG) == p->pid)
      bench_die("a TVM daemon exited early; its log", p->log);
    usleep(10000);
  }
  bench_die("a TVM daemon never listened; its log", p->log);
}

/* ---- TVM's socket pattern ------------------------------------------------------ */

/* A TCP connection as TVM's client makes it: Nagle left on. */
static int tvm_connect(const char *host, int port, char *err, size_t cap) {
  int fd;
  int rc = ferry_tcp_connect(host, port, 10000, &fd, err, cap);
  if (rc)
    return rc;
  int zero = 0; /* ferry_tcp_connect turned NODELAY on */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &zero, sizeof zero);
  return fd;
}

static int write_once(int fd, const void *p, size_t n) {
  return ferry_write_full(fd, p, n, ferry_now_ms() + TRIAL_TIMEOUT_MS);
}

/* The first write of a message (its length), pushed onto the wire before
 * the next write.  TVM's Python client leaves microseconds between the
 * two writes, so the length leaves alone and the body then waits (Nagle)
 * for its ACK.  Two writes back to back in C can instead be merged by the
 * kernel's autocorking when the machine is busy, which hid the stall in
 * some runs and not in others; toggling NODELAY pushes what is queued
 * (and only that), so every run measures the same pattern. */
static int write_first(int fd, const void *p, size_t n) {
  int rc = write_once(fd, p, n);
  int one = 1, zero = 0;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &zero, sizeof zero);
  return rc;
}

/* REQUEST on a fresh tracker connection, as TVM's request_remote: magic,
 * then [4, key, "", 1] as length and body in two writes. */
static int tracker_request(int tport, ferry_tracker_grant *g, char *err, size_t cap) {
  int fd = tvm_connect("127.0.0.1", tport, err, cap);
  if (fd < 0)
    return fd;
  int64_t dl = ferry_now_ms() + TRIAL_TIMEOUT_MS;
  uint8_t m[4];
  put_le32(m, FERRY_RPC_TRACKER_MAGIC);
  int rc = write_once(fd, m, 4);
  if (!rc)
    rc = ferry_read_full(fd, m, 4, dl, NULL);
  ferry_buf b;
  ferry_buf_init(&b, 4096);
  if (!rc)
    rc = ferry_tracker_encode_request(&b, KEY, "", 1);
  uint8_t len[4];
  put_le32(len, (uint32_t)b.len);
  if (!rc)
    rc = write_first(fd, len, 4);
  if (!rc)
    rc = write_once(fd, b.data, b.len);
  if (!rc)
    rc = ferry_read_full(fd, len, 4, dl, NULL);
  uint32_t n = rc ? 0 : get_le32(len);
  if (!rc && (n == 0 || n > 65536))
    rc = FERRY_EPROTO;
  b.len = 0;
  uint8_t *body = rc ? NULL : ferry_buf_reserve(&b, n);
  if (!rc && !body)
    rc = FERRY_ENOMEM;
  if (!rc)
    rc = ferry_read_full(fd, body, n, dl, NULL);
  if (!rc)
    rc = ferry_tracker_decode_grant(body, n, g, err, cap);
  else
    snprintf(err, cap, "REQUEST at the tracker: %s", ferry_strerror(rc));
  ferry_buf_close(&b);
  close(fd);
  return rc;
}

/* Relay between the C client (app end of a socket pair) and the server
 * (net, Nagle on).  up: parses the client's stream and writes each piece
 * with its own write(); down: copies the server's bytes back as they
 * come. */
typedef struct relay {
  int app, net;
  pthread_t up, down;
} relay;

static int read_n(int fd, void *p, size_t n) { return ferry_read_full(fd, p, n, -1, NULL); }

static void *relay_up(void *arg) {
  relay *r = arg;
  enum { CHUNK = 1 << 20 };
  uint8_t *buf = malloc(CHUNK);
  uint8_t w[8];
  uint32_t keylen = 0;
  /* Handshake: magic, key length, key: three writes. */
  if (!buf || read_n(r->app, w, 4) || write_first(r->net, w, 4) || read_n(r->app, w, 4) ||
      write_once(r->net, w, 4))
    goto out;
  keylen = get_le32(w);
  if (keylen > CHUNK || (keylen && (read_n(r->app, buf, keylen) ||
                                    write_once(r->net, buf, keylen))))
    goto out;
  /* Packets: u64 length, then the body (in 1 MiB pieces if larger). */
  for (;;) {
    if (read_n(r->app, w, 8) || write_first(r->net, w, 8))
      break;
    uint64_t left = get_le64(w);
    while (left > 0) {
      size_t k = left > CHUNK ? CHUNK : (size_t)left;
      if (read_n(r->app, buf, k) || write_once(r->net, buf, k))
        goto out;
      left -= k;
    }
  }
out:
  free(buf);
  shutdown(r->net, SHUT_WR);
  return NULL;
}

static void *relay_down(void *arg) {
  relay *r = arg;
  uint8_t buf[65536];
  for (;;) {
    ssize_t n = recv(r->net, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0 || ferry_write_full(r->app, buf, (size_t)n, -1))
      break;
  }
  shutdown(r->app, SHUT_WR);
  return NULL;
}

/* ---- one trial ------------------------------------------------------------------ */

static void check(ferry_client *c, int rc, const char *what) {
  if (rc)
    bench_die(what, ferry_client_errmsg(c));
}

static void trial(int tport, const char *lib) {
  char err[1024] = "";
  ferry_tracker_grant g;
  memset(&g, 0, sizeof g);
  if (tracker_request(tport, &g, err, sizeof err) != 0)
    bench_die("tracker", err);
  relay r;
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
    bench_die("socketpair", strerror(errno));
  r.net = tvm_connect(g.host, g.port, err, sizeof err);
  if (r.net < 0)
    bench_die("connect to the granted server", err);
  r.app = sp[1];
  if (pthread_create(&r.up, NULL, relay_up, &r) || pthread_create(&r.down, NULL, relay_down, &r))
    bench_die("pthread_create", NULL);
  ferry_client_opts o;
  ferry_client_opts_init(&o);
  o.timeout_ms = TRIAL_TIMEOUT_MS;
  ferry_client *c = NULL;
  if (ferry_client_connect_fd(sp[0], g.matchkey, &o, &c, err, sizeof err) != 0)
    bench_die("session", err);
  ferry_tracker_grant_close(&g);

  ferry_remote *mod, *a, *b, *ev;
  check(c, ferry_client_upload_file(c, lib, "trial.so"), "upload");
  check(c, ferry_client_load_module(c, "trial.so", &mod), "load_module");
  int64_t shape[1] = {64};
  DLDevice cpu = {kDLCPU, 0};
  DLDataType f32 = {kDLFloat, 32, 1};
  float data[64];
  for (int i = 0; i < 64; i++)
    data[i] = (float)i;
  check(c, ferry_client_tensor_empty(c, cpu, 1, shape, f32, &a), "empty");
  check(c, ferry_client_tensor_empty(c, cpu, 1, shape, f32, &b), "empty");
  check(c, ferry_client_tensor_copy_in(c, a, data, sizeof data), "copy in");
  ferry_time_opts to;
  ferry_time_opts_init(&to);
  to.number = 1;
  to.repeat = 1;
  check(c, ferry_client_time_evaluator(c, mod, "addone", cpu, &to, &ev), "time_evaluator");
  ferry_value args[2] = {ferry_remote_value(a), ferry_remote_value(b)};
  double secs[4];
  int n = 0;
  check(c, ferry_client_time(c, ev, args, 2, secs, 4, &n), "time");
  ferry_client_close(c); /* releases everything, kShutdown, closes sp[0] */
  pthread_join(r.up, NULL);
  pthread_join(r.down, NULL);
  close(r.net);
  close(r.app);
}

/* ---- columns --------------------------------------------------------------------- */

typedef struct column {
  const char *name;
  int tport;
  int trials;
  double secs;
} column;

static void start_ferry(column *col, const char *ferry, const char *env_kv) {
  const char *targs[] = {ferry, "tracker", "--host", "127.0.0.1", "--port", "0", "--silent",
                         NULL};
  col->tport = bench_wait_listening(bench_spawn(targs, env_kv));
  char tr[64];
  snprintf(tr, sizeof tr, "127.0.0.1:%d", col->tport);
  const char *sargs[] = {ferry, "server", "--host", "127.0.0.1", "--port", "0", "--silent",
                         "--tracker", tr, "--key", KEY, NULL};
  (void)bench_wait_listening(bench_spawn(sargs, env_kv));
}

static int start_tvm(column *col) {
  const char *pp = getenv("FERRY_TVM_PYTHONPATH");
  if (!pp || !*pp)
    return 0;
  const char *py = getenv("FERRY_TVM_PYTHON");
  py = py && *py ? py : "python3";
  static char env[PATH_MAX + 16];
  snprintf(env, sizeof env, "PYTHONPATH=%s", pp);
  col->tport = free_port();
  char tp[16], tpe[16], tr[64];
  snprintf(tp, sizeof tp, "%d", col->tport);
  snprintf(tpe, sizeof tpe, "%d", col->tport + 1);
  const char *targs[] = {py, "-m", "tvm.exec.rpc_tracker", "--host", "127.0.0.1", "--port", tp,
                         "--port-end", tpe, NULL};
  wait_port(col->tport, bench_spawn(targs, env));
  int sport = free_port();
  char sp[16], spe[16];
  snprintf(sp, sizeof sp, "%d", sport);
  snprintf(spe, sizeof spe, "%d", sport + 1);
  snprintf(tr, sizeof tr, "127.0.0.1:%d", col->tport);
  const char *sargs[] = {py, "-m", "tvm.exec.rpc_server", "--host", "127.0.0.1", "--port", sp,
                         "--port-end", spe, "--tracker", tr, "--key", KEY, NULL};
  (void)bench_spawn(sargs, env);
  return 1; /* the first trial waits in the queue until the server registers */
}

/* Trials for at least `seconds` (at least 2, at most 1000). */
static void run_round(column *col, const char *lib, double seconds) {
  double t0 = bench_now_s();
  int n = 0;
  while (n < 2 || (bench_now_s() - t0 < seconds && n < 1000)) {
    trial(col->tport, lib);
    n++;
  }
  col->trials += n;
  col->secs += bench_now_s() - t0;
}

int main(int argc, char **argv) {
  bench_set_name("bench_trial");
  char ferry[PATH_MAX], lib[PATH_MAX];
  const char *ferry_arg = NULL, *lib_arg = NULL;
  double seconds = 2;
  int rounds = 3;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--ferry") == 0 && i + 1 < argc)
      ferry_arg = argv[++i];
    else if (strcmp(argv[i], "--lib") == 0 && i + 1 < argc)
      lib_arg = argv[++i];
    else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
      seconds = atof(argv[++i]);
    else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
      rounds = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: bench_trial [--ferry PATH] [--lib testlib.so] [--seconds S] "
                      "[--rounds N]\n");
      return 2;
    }
  }
  if (!(seconds > 0 && seconds <= 600) || rounds < 1 || rounds > 100)
    bench_die("0 < --seconds <= 600 and 1 <= --rounds <= 100", NULL);
  bench_find_ferry(argv[0], ferry_arg, lib_arg, ferry, lib);
  signal(SIGPIPE, SIG_IGN);

  column cols[3] = {{"ferry", 0, 0, 0}, {"baseline (FERRY_NO_QUICKACK=1)", 0, 0, 0},
                    {"TVM rpc_tracker + rpc_server", 0, 0, 0}};
  start_ferry(&cols[0], ferry, NULL);
  start_ferry(&cols[1], ferry, "FERRY_NO_QUICKACK=1");
  int ncols = 2 + start_tvm(&cols[2]);
  for (int k = 0; k < ncols; k++)
    trial(cols[k].tport, lib); /* warm-up, and waits for the registration */
  for (int r = 0; r < rounds; r++)
    for (int k = 0; k < ncols; k++)
      run_round(&cols[k], lib, seconds / rounds);

  printf("auto-tuning trial with TVM's client pattern (REQUEST, connect, upload, load, "
         "time, close; length and body in two writes, no NODELAY; loopback)\n");
  double base = cols[1].trials / cols[1].secs;
  for (int k = 0; k < ncols; k++) {
    double rate = cols[k].trials / cols[k].secs;
    printf("  %-32s %8.1f trials/s  (%d trials, %.1f ms each)\n", cols[k].name, rate,
           cols[k].trials, 1e3 * cols[k].secs / cols[k].trials);
    (void)base;
  }
  printf("  ferry / baseline %.2fx", (cols[0].trials / cols[0].secs) / base);
  if (ncols == 3)
    printf("   ferry / TVM %.2fx (goal >= 10x)",
           (cols[0].trials / cols[0].secs) / (cols[2].trials / cols[2].secs));
  else
    printf("   (set FERRY_TVM_PYTHONPATH for TVM's own daemons as a third column)");
  printf("\n");
  bench_stop_all();
  return 0;
}
