/* The server's main loop: one poll() over the signal pipe, the listening
 * socket, the handshakes being read, the tracker link and the proxy link.
 * Timers (handshake deadlines, session timeout, tracker polls and
 * reconnects) are deadlines on the monotonic clock folded into the poll
 * timeout; there are few of them, so a linear scan is cheaper than a heap. */
#include "server/server_main.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/net.h"
#include "server/server_state.h"

/* The self-pipe: signal handlers can only reach process-wide state.  Both
 * ends are non-blocking so a handler never blocks and the loop drains it. */
static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t stop_requested;

int server_signal_fd(void) { return sig_pipe[0]; }

int64_t server_min_deadline(int64_t a, int64_t b) {
  if (a < 0)
    return b;
  if (b < 0)
    return a;
  return a < b ? a : b;
}

static void on_signal(int sig) {
  int saved = errno;
  char c = 'C';
  if (sig == SIGTERM || sig == SIGINT) {
    stop_requested = 1;
    c = 'T';
  }
  ssize_t w = write(sig_pipe[1], &c, 1);
  (void)w; /* a full pipe already holds a wake-up */
  errno = saved;
}

static int install_signals(char *err, size_t errcap) {
  if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    snprintf(err, errcap, "pipe: %s", strerror(errno));
    return FERRY_ESYS;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

static void restore_signals(void) {
  signal(SIGCHLD, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  for (int i = 0; i < 2; i++) {
    if (sig_pipe[i] >= 0)
      close(sig_pipe[i]);
    sig_pipe[i] = -1;
  }
}

/* Splits --load-library at ':' and makes relative names absolute against
 * the start directory: a session runs in its own empty folder, where a
 * relative name would find nothing.  A name without '/' that does not exist
 * here is passed on unchanged for dlopen's own search (LD_LIBRARY_PATH). */
static int split_preload(ferry_server *s, char *err, size_t errcap) {
  const char *list = s->cfg->load_library;
  size_t n = 0;
  if (list && *list) {
    n = 1;
    for (const char *p = list; *p; p++)
      n += *p == ':';
  }
  s->preload = calloc(n + 1, sizeof *s->preload);
  if (!s->preload) {
    snprintf(err, errcap, "out of memory");
    return FERRY_ENOMEM;
  }
  if (n == 0)
    return 0;
  size_t k = 0;
  const char *p = list;
  while (*p || p == list) {
    const char *end = strchr(p, ':');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len > 0) {
      char name[PATH_MAX];
      if (len >= sizeof name) {
        snprintf(err, errcap, "--load-library: name too long");
        return FERRY_EINVAL;
      }
      memcpy(name, p, len);
      name[len] = 0;
      char abs[PATH_MAX];
      struct stat st;
      const char *use = name;
      if (stat(name, &st) == 0) {
        if (!realpath(name, abs)) {
          snprintf(err, errcap, "--load-library %s: %s", name, strerror(errno));
          return FERRY_ESYS;
        }
        use = abs;
      } else if (strchr(name, '/')) {
        snprintf(err, errcap, "--load-library: cannot find library %s", name);
        return FERRY_ENOTFOUND;
      }
      s->preload[k] = strdup(use);
      if (!s->preload[k]) {
        snprintf(err, errcap, "out of memory");
        return FERRY_ENOMEM;
      }
      k++;
    }
    if (!end)
      break;
    p = end + 1;
  }
  return 0;
}

static void free_preload(ferry_server *s) {
  if (!s->preload)
    return;
  for (char **p = s->preload; *p; p++)
    free(*p);
  free(s->preload);
  s->preload = NULL;
}

/* Loads every --load-library once in a throwaway child, so that a library
 * that cannot be loaded is a clear start-up error instead of a failure of
 * every session.  Not in the parent: a library's constructors are code the
 * parent must not run (TVM, too, loads them only in session workers). */
static int check_preload(ferry_server *s, char *err, size_t errcap) {
  if (!s->preload[0])
    return 0;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    snprintf(err, errcap, "pipe: %s", strerror(errno));
    return FERRY_ESYS;
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    snprintf(err, errcap, "fork: %s", strerror(errno));
    return FERRY_ESYS;
  }
  if (pid == 0) {
    close(p[0]);
    for (char **lib = s->preload; *lib; lib++) {
      if (!dlopen(*lib, RTLD_NOW | RTLD_GLOBAL)) {
        const char *why = dlerror();
        char msg[512];
        int n = snprintf(msg, sizeof msg, "--load-library %s: %s", *lib,
                         why ? why : "cannot load");
        ssize_t w = write(p[1], msg, n > 0 && (size_t)n < sizeof msg
                                         ? (size_t)n
                                         : sizeof msg - 1);
        (void)w;
        _exit(1);
      }
    }
    _exit(0);
  }
  close(p[1]);
  char msg[512];
  size_t got = 0;
  for (;;) {
    ssize_t r = read(p[0], msg + got, sizeof msg - 1 - got);
    if (r > 0 && (got += (size_t)r) < sizeof msg - 1)
      continue;
    if (r < 0 && errno == EINTR)
      continue;
    break;
  }
  close(p[0]);
  msg[got] = 0;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return 0;
  snprintf(err, errcap, "%s",
           got ? msg : "--load-library: loading the libraries crashed");
  return FERRY_EDLOPEN;
}

static void drain_signals(ferry_server *s) {
  char buf[64];
  int child = 0;
  for (;;) {
    ssize_t r = read(sig_pipe[0], buf, sizeof buf);
    if (r <= 0)
      break;
    for (ssize_t i = 0; i < r; i++)
      child |= buf[i] == 'C';
  }
  if (child)
    server_fork_reap(s);
  if (stop_requested)
    s->stopping = 1;
}

/* Indices into the pollfd array for each kind of descriptor. */
enum { SLOT_SIG, SLOT_LISTEN, SLOT_TRACKER, SLOT_PROXY, SLOT_SESSION, SLOT_HS0 };

static void run_loop(ferry_server *s) {
  struct pollfd pfd[SLOT_HS0 + SERVER_MAX_HANDSHAKES];
  while (!s->stopping) {
    int64_t now = ferry_now_ms();
    int64_t next = -1;
    next = server_min_deadline(next, server_listen_expire(s, now));
    next = server_min_deadline(next, server_fork_tick(s, now));
    next = server_min_deadline(next, server_tracker_tick(s, now));
    next = server_min_deadline(next, server_proxy_tick(s, now));
    server_listen_unpark(s);
    if (s->stopping)
      break;

    for (size_t i = 0; i < sizeof pfd / sizeof pfd[0]; i++)
      pfd[i] = (struct pollfd){.fd = -1, .events = POLLIN};
    pfd[SLOT_SIG].fd = sig_pipe[0];
    for (int i = 0; i < SERVER_MAX_HANDSHAKES; i++)
      if (s->hs[i].fd >= 0 && !s->hs[i].parked)
        pfd[SLOT_HS0 + i].fd = s->hs[i].fd;
    /* While a session runs, new clients wait in the backlog as they do with
     * TVM's servers: the device serves one session at a time.  Otherwise
     * accepting never stops: full slots evict the oldest handshake. */
    int paused = s->accept_paused_until_ms > ferry_now_ms();
    if (paused)
      next = server_min_deadline(next, s->accept_paused_until_ms);
    if (s->listen_fd >= 0 && !s->sess.active && !paused)
      pfd[SLOT_LISTEN].fd = s->listen_fd;
    if (s->tracker.state == SERVER_TRACKER_UP)
      pfd[SLOT_TRACKER].fd = s->tracker.link.fd;
    if (s->proxy.state == SERVER_PROXY_WAITING)
      pfd[SLOT_PROXY].fd = s->proxy.fd;
    /* The running session's socket, for the client's hang-up only: no
     * POLLIN, so the parent never wakes for (or takes) the bytes the
     * child reads.  POLLHUP and POLLERR are reported anyway. */
    pfd[SLOT_SESSION].fd = server_fork_watch_fd(s);
    pfd[SLOT_SESSION].events = POLLRDHUP;

    int timeout = -1;
    if (next >= 0) {
      int64_t left = next - ferry_now_ms();
      timeout = left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
    }
    int rc = poll(pfd, sizeof pfd / sizeof pfd[0], timeout);
    if (rc < 0) {
      if (errno != EINTR)
        ferry_warn("poll: %s", strerror(errno));
      continue;
    }
    if (pfd[SLOT_SIG].revents)
      drain_signals(s);
    if (s->stopping)
      break;
    if (pfd[SLOT_SESSION].fd >= 0 &&
        (pfd[SLOT_SESSION].revents & (POLLRDHUP | POLLHUP | POLLERR)) &&
        pfd[SLOT_SESSION].fd == server_fork_watch_fd(s))
      server_fork_client_gone(s);
    if (pfd[SLOT_LISTEN].fd >= 0 && pfd[SLOT_LISTEN].revents)
      server_listen_accept(s);
    for (int i = 0; i < SERVER_MAX_HANDSHAKES; i++)
      if (pfd[SLOT_HS0 + i].fd >= 0 && pfd[SLOT_HS0 + i].revents &&
          s->hs[i].fd == pfd[SLOT_HS0 + i].fd)
        server_listen_read(s, i);
    if (pfd[SLOT_TRACKER].fd >= 0 && pfd[SLOT_TRACKER].revents &&
        s->tracker.state == SERVER_TRACKER_UP)
      server_tracker_readable(s);
    if (pfd[SLOT_PROXY].fd >= 0 && pfd[SLOT_PROXY].revents &&
        s->proxy.state == SERVER_PROXY_WAITING)
      server_proxy_readable(s);
  }
}

int ferry_server_run(const ferry_server_config *cfg, char *err,
                     size_t errcap) {
  ferry_server *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errcap, "out of memory");
    return FERRY_ENOMEM;
  }
  s->cfg = cfg;
  s->listen_fd = -1;
  s->sess.fd = -1;
  s->proxy.fd = -1;
  ferry_tracker_link_init(&s->tracker.link);
  for (int i = 0; i < SERVER_MAX_HANDSHAKES; i++)
    s->hs[i].fd = -1;
  stop_requested = 0;

  int rc = split_preload(s, err, errcap);
  if (rc == 0)
    rc = check_preload(s, err, errcap);
  if (rc == 0) {
    ferry_server_probe_devices(s->devices, sizeof s->devices);
    ferry_notice("serving devices: %s", s->devices);
  }
  if (rc == 0)
    rc = server_fork_init(s, err, errcap);
  if (rc == 0 && !cfg->through_proxy) {
    int backlog = 64;
    rc = ferry_tcp_listen(cfg->host, cfg->port, cfg->port_end, backlog,
                          &s->listen_fd, &s->port, err, errcap);
    if (rc == 0) {
      int fl = fcntl(s->listen_fd, F_GETFL);
      fcntl(s->listen_fd, F_SETFL, fl | O_NONBLOCK);
      ferry_notice("listening on %s:%d", cfg->host, s->port);
      if (cfg->allow && cfg->allow->n > 0) {
        char list[1024];
        ferry_allow_format(cfg->allow, list, sizeof list);
        ferry_info("accepting clients from %s only (--allow)", list);
      }
    }
  }
  if (rc == 0)
    rc = install_signals(err, errcap);
  if (rc == 0) {
    ferry_info("session folders under %s", s->base_dir);
    server_listen_init(s);
    server_tracker_init(s);
    server_proxy_init(s);
    run_loop(s);
    ferry_info("stopping");
    server_fork_stop(s);
    server_listen_close_all(s);
    server_tracker_close(s);
    server_proxy_close(s);
  }
  restore_signals();
  if (s->listen_fd >= 0)
    close(s->listen_fd);
  server_fork_close(s);
  free_preload(s);
  free(s);
  return rc;
}
