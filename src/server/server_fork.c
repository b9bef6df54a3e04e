/* Sessions: one forked child per client, its own work folder, its own
 * process group (spec §5.1.7 with §10.3 items 11 and 16 fixed).
 *
 * The parent keeps its copy of the client socket only to write TVM's
 * session-timeout exception packet, and writes it strictly after the child
 * and everything in its process group is dead, so the packet can never
 * interleave with bytes the child was writing.  The group is killed with
 * the leader still unreaped (waitid WNOWAIT), which keeps its pid (= the
 * group id) from being reused by an unrelated process meanwhile. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/net.h"
#include "server/server_state.h"
#include "server/session.h"

/* Session child -> parent: one byte naming the dialect, once known, so the
 * parent encodes the timeout packet in the dialect the client speaks. */
static int dialect_pipe[2] = {-1, -1};

static void child_on_dialect(void *ctx, enum ferry_dialect_id d) {
  (void)ctx;
  uint8_t b = (uint8_t)d;
  if (dialect_pipe[1] >= 0) {
    ssize_t w = write(dialect_pipe[1], &b, 1);
    (void)w;
  }
}

static enum ferry_dialect_id read_dialect(void) {
  enum ferry_dialect_id d = FERRY_DIALECT_UNKNOWN;
  uint8_t b;
  while (dialect_pipe[0] >= 0 && read(dialect_pipe[0], &b, 1) == 1)
    d = (enum ferry_dialect_id)b;
  return d;
}

static void close_pipe(int p[2]) {
  for (int i = 0; i < 2; i++) {
    if (p[i] >= 0)
      close(p[i]);
    p[i] = -1;
  }
}

/* Removes what is inside the directory dfd (consumed), depth first, never
 * following symbolic links (unlinkat removes the link, not its target).
 * Directories are made writable first: a session may have chmod'ed them. */
static int remove_inside(int dfd, int depth) {
  if (depth > 64) {
    close(dfd);
    return FERRY_ETOOBIG;
  }
  fchmod(dfd, 0700);
  DIR *d = fdopendir(dfd);
  if (!d) {
    close(dfd);
    return FERRY_ESYS;
  }
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (unlinkat(dirfd(d), e->d_name, 0) == 0)
      continue;
    int sub = openat(dirfd(d), e->d_name,
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) {
      rc = FERRY_ESYS;
      continue;
    }
    int r = remove_inside(sub, depth + 1);
    if (r)
      rc = r;
    if (unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) != 0)
      rc = FERRY_ESYS;
  }
  closedir(d);
  return rc;
}

int server_fork_remove_tree(const char *path) {
  int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0)
    return errno == ENOENT ? 0 : FERRY_ESYS;
  int rc = remove_inside(dfd, 0);
  if (rmdir(path) != 0 && rc == 0)
    rc = FERRY_ESYS;
  return rc;
}

int server_fork_init(ferry_server *s, char *err, size_t errcap) {
  const char *wd = s->cfg->work_dir;
  if (wd && *wd) {
    if (mkdir(wd, 0700) != 0 && errno != EEXIST) {
      snprintf(err, errcap, "cannot create work folder %s: %s", wd,
               strerror(errno));
      return FERRY_ESYS;
    }
    if (!realpath(wd, s->base_dir)) {
      snprintf(err, errcap, "work folder %s: %s", wd, strerror(errno));
      return FERRY_ESYS;
    }
    return 0;
  }
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !*tmp)
    tmp = "/tmp";
  int n = snprintf(s->base_dir, sizeof s->base_dir, "%s/ferry-server-XXXXXX",
                   tmp);
  if (n < 0 || (size_t)n >= sizeof s->base_dir || !mkdtemp(s->base_dir)) {
    snprintf(err, errcap, "cannot create a work folder under %s: %s", tmp,
             strerror(errno));
    s->base_dir[0] = 0;
    return FERRY_ESYS;
  }
  s->base_dir_owned = 1;
  return 0;
}

void server_fork_close(ferry_server *s) {
  if (s->base_dir_owned && s->base_dir[0])
    server_fork_remove_tree(s->base_dir);
  s->base_dir_owned = 0;
}

/* Runs in the child: never returns. */
static void child_main(ferry_server *s, int fd) {
  setpgid(0, 0);
  signal(SIGCHLD, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  /* Descriptors of the parent's other work must not outlive it in the
   * child (a held tracker socket would keep a dead server registered). */
  close(server_signal_fd());
  if (s->listen_fd >= 0)
    close(s->listen_fd);
  if (s->tracker.link.fd >= 0)
    close(s->tracker.link.fd);
  if (s->proxy.fd >= 0 && s->proxy.fd != fd)
    close(s->proxy.fd);
  for (int i = 0; i < SERVER_MAX_HANDSHAKES; i++)
    if (s->hs[i].fd >= 0)
      close(s->hs[i].fd);
  if (dialect_pipe[0] >= 0)
    close(dialect_pipe[0]);
  dialect_pipe[0] = -1;
  if (chdir(s->sess.dir) != 0)
    _exit(3);

  ferry_session_fd ctx;
  ferry_session_io io;
  ferry_session_io_fd(&io, &ctx, fd);
  ferry_session_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.work_dir = s->sess.dir;
  cfg.preload = (const char *const *)s->preload;
  cfg.on_dialect = child_on_dialect;
  cfg.work_quota = s->sess.quota;
  cfg.max_memory = s->cfg->max_memory;
  cfg.testing = s->cfg->testing;
  cfg.allow_hop = s->cfg->allow_hop;
  cfg.allow_popen = s->cfg->allow_popen;
  ferry_err err;
  ferry_err_clear(&err);
  int rc = ferry_session_run(&io, &cfg, &err);
  if (rc < 0)
    ferry_warn("session %llu: %s", (unsigned long long)s->sess.id,
               err.msg[0] ? err.msg : ferry_strerror(rc));
  _exit(rc < 0 ? 1 : 0);
}

/* The session's work quota: --work-quota, or the default (the smaller of
 * FERRY_SERVER_DEFAULT_QUOTA and half of what is free now, so that a
 * session on a nearly full board cannot take the last of it). */
static uint64_t session_quota(const ferry_server *s) {
  int64_t q = s->cfg->work_quota;
  if (q >= 0)
    return (uint64_t)q;
  uint64_t quota = (uint64_t)FERRY_SERVER_DEFAULT_QUOTA;
  struct statvfs vfs;
  if (statvfs(s->base_dir, &vfs) == 0) {
    uint64_t half = (uint64_t)vfs.f_bavail / 2 * (uint64_t)vfs.f_frsize;
    if (half < quota)
      quota = half > 0 ? half : 1; /* 0 would mean "none" */
  }
  return quota;
}

static void log_start(ferry_server *s) {
  server_session *q = &s->sess;
  if (q->deadline_ms >= 0)
    ferry_info("session %llu from %s started in %s (timeout %gs)",
               (unsigned long long)q->id, q->peer, q->dir, q->timeout_s);
  else
    ferry_info("session %llu from %s started in %s", (unsigned long long)q->id,
               q->peer, q->dir);
}

/* Frees what a session held and offers the server again. */
static void finish(ferry_server *s, const char *outcome, int warn) {
  server_session *q = &s->sess;
  double secs = (double)(ferry_now_ms() - q->start_ms) / 1000.0;
  if (q->fd >= 0)
    close(q->fd);
  q->fd = -1;
  if (q->dir[0] && server_fork_remove_tree(q->dir) != 0)
    ferry_warn("session %llu: could not remove %s completely",
               (unsigned long long)q->id, q->dir);
  close_pipe(dialect_pipe);
  if (warn)
    ferry_warn("session %llu from %s ended: %s after %.2fs",
               (unsigned long long)q->id, q->peer, outcome, secs);
  else
    ferry_info("session %llu from %s ended: %s after %.2fs",
               (unsigned long long)q->id, q->peer, outcome, secs);
  server_tracker_report(s, FERRY_SESSION_END, outcome);
  server_health_session_ended(s, outcome);
  q->active = 0;
  q->pid = 0;
  q->dir[0] = 0;
  server_tracker_session_done(s);
  server_proxy_session_done(s);
}

void server_fork_start(ferry_server *s, int fd, const char *peer,
                       const char *client_key, size_t client_key_len,
                       int reply) {
  server_session *q = &s->sess;
  memset(q, 0, sizeof *q);
  q->fd = fd;
  q->active = 1;
  q->id = ++s->sessions;
  q->start_ms = ferry_now_ms();
  q->deadline_ms = -1;
  q->kill_at_ms = -1;
  q->hangup_kill_ms = -1;
  snprintf(q->peer, sizeof q->peer, "%s", peer);
  server_tracker_session_started(s);

  ferry_key_string ks;
  if (ferry_key_string_parse(client_key, client_key_len, &ks) == 0 &&
      ks.has_timeout && ks.timeout_s > 0)
    q->timeout_s = ks.timeout_s;
  double limit = q->timeout_s;
  if (s->cfg->max_session_s > 0 && (limit <= 0 || limit > s->cfg->max_session_s))
    limit = s->cfg->max_session_s;
  if (limit > 0) {
    if (limit > 1e9)
      limit = 1e9; /* keeps the millisecond arithmetic in range */
    q->deadline_ms = q->start_ms + (int64_t)(limit * 1000.0 + 0.5);
    if (q->timeout_s <= 0)
      q->timeout_s = limit;
  }

  int n = snprintf(q->dir, sizeof q->dir, "%s/session-%llu-XXXXXX",
                   s->base_dir, (unsigned long long)q->id);
  if (n < 0 || (size_t)n >= sizeof q->dir || !mkdtemp(q->dir)) {
    ferry_error("session %llu: cannot create its folder under %s: %s",
                (unsigned long long)q->id, s->base_dir, strerror(errno));
    q->dir[0] = 0;
    finish(s, "not started (no work folder)", 1);
    return;
  }
  int rc = reply ? server_listen_reply_success(s, fd) : 0;
  if (rc) {
    finish(s, "client gone before the session started", 1);
    return;
  }
  q->quota = session_quota(s);
  /* A lease from the tracker shortens the session's deadline like
   * --max-session does (the same timeout packet ends it). */
  double lease = server_tracker_report(s, FERRY_SESSION_START, NULL);
  if (lease > 0) {
    int64_t end = q->start_ms + (int64_t)(lease * 1000.0);
    if (q->deadline_ms < 0 || end < q->deadline_ms) {
      q->deadline_ms = end;
      q->timeout_s = lease;
    }
  }
  log_start(s);
  ferry_debug("session %llu: work quota %llu bytes", (unsigned long long)q->id,
              (unsigned long long)q->quota);

  if (s->cfg->no_fork) {
    /* Debugging mode: in-process, no timeout, no isolation. */
    ferry_session_fd ctx;
    ferry_session_io io;
    ferry_session_io_fd(&io, &ctx, dup(fd));
    ferry_session_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.work_dir = q->dir;
    cfg.preload = (const char *const *)s->preload;
    cfg.work_quota = q->quota;
    cfg.max_memory = s->cfg->max_memory;
    cfg.testing = s->cfg->testing;
    cfg.allow_hop = s->cfg->allow_hop;
    cfg.allow_popen = s->cfg->allow_popen;
    ferry_err err;
    ferry_err_clear(&err);
    rc = ferry_session_run(&io, &cfg, &err);
    char outcome[FERRY_ERR_MSG_MAX + 32];
    snprintf(outcome, sizeof outcome, "%s%s",
             rc < 0 ? "failed: " : "ok",
             rc < 0 ? (err.msg[0] ? err.msg : ferry_strerror(rc)) : "");
    finish(s, outcome, rc < 0);
    return;
  }

  if (pipe2(dialect_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
    dialect_pipe[0] = dialect_pipe[1] = -1;
  pid_t pid = fork();
  if (pid < 0) {
    ferry_error("session %llu: fork: %s", (unsigned long long)q->id,
                strerror(errno));
    finish(s, "not started (fork failed)", 1);
    return;
  }
  if (pid == 0)
    child_main(s, fd);
  /* Also in the parent, so that the group exists before any kill(-pid)
   * even if the child has not run yet (EACCES once it has exec'd: fine). */
  setpgid(pid, pid);
  q->pid = pid;
  if (dialect_pipe[1] >= 0)
    close(dialect_pipe[1]);
  dialect_pipe[1] = -1;
}

static void describe_status(int status, char *out, size_t cap) {
  if (WIFEXITED(status)) {
    if (WEXITSTATUS(status) == 0)
      snprintf(out, cap, "ok");
    else
      snprintf(out, cap, "failed (exit status %d)", WEXITSTATUS(status));
  } else if (WIFSIGNALED(status)) {
    snprintf(out, cap, "crashed (killed by signal %d, %s)", WTERMSIG(status),
             strsignal(WTERMSIG(status)));
  } else {
    snprintf(out, cap, "ended (status 0x%x)", (unsigned)status);
  }
}

/* The child has exited (it is a zombie now): kill the rest of its group,
 * reap it, then — for a timeout — tell the client. */
static void collect(ferry_server *s) {
  server_session *q = &s->sess;
  kill(-q->pid, SIGKILL);
  int status = 0;
  while (waitpid(q->pid, &status, 0) < 0 && errno == EINTR)
    ;
  char outcome[160];
  int warn = 0;
  if (q->timed_out) {
    snprintf(outcome, sizeof outcome, "timed out (limit %gs)", q->timeout_s);
    ferry_buf pkt;
    ferry_buf_init(&pkt, 4096);
    if (ferry_session_timeout_packet(&pkt, q->timeout_s, read_dialect()) == 0 &&
        ferry_write_full(q->fd, pkt.data, pkt.len,
                         ferry_now_ms() + SERVER_TIMEOUT_PACKET_MS) != 0)
      ferry_info("session %llu: client gone before the timeout packet",
                 (unsigned long long)q->id);
    ferry_buf_close(&pkt);
  } else if (q->hung_up) {
    snprintf(outcome, sizeof outcome,
             "client gone (killed %d ms after the client hung up)",
             SERVER_HANGUP_GRACE_MS);
    warn = 1;
  } else {
    describe_status(status, outcome, sizeof outcome);
    warn = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  finish(s, outcome, warn);
}

void server_fork_reap(ferry_server *s) {
  server_session *q = &s->sess;
  if (q->active && q->pid > 0) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)q->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        si.si_pid == q->pid)
      collect(s);
  }
  /* No waitpid(-1) here: the session child is the parent's only child
   * (the --load-library check reaps its own), and reaping "any" child could
   * take the session's exit status between the waitid above and its next
   * call, leaving the session active forever. */
}

int server_fork_watch_fd(const ferry_server *s) {
  const server_session *q = &s->sess;
  if (!q->active || q->pid <= 0 || q->hangup_kill_ms >= 0 || q->timed_out)
    return -1;
  return q->fd;
}

void server_fork_client_gone(ferry_server *s) {
  server_session *q = &s->sess;
  if (!q->active || q->pid <= 0 || q->hangup_kill_ms >= 0)
    return;
  ferry_info("session %llu: client %s hung up; ending the session",
             (unsigned long long)q->id, q->peer);
  q->hangup_kill_ms = ferry_now_ms() + SERVER_HANGUP_GRACE_MS;
}

int64_t server_fork_tick(ferry_server *s, int64_t now) {
  server_session *q = &s->sess;
  if (!q->active || q->pid <= 0)
    return -1;
  /* Nobody can receive the results of a session whose client is gone: a
   * session that does not end by itself (code in a loop, a constructor
   * that never returns) would otherwise hold the device until its timeout,
   * and by default there is none.  Same kill sequence as a timeout. */
  if (!q->timed_out && !q->hung_up && q->hangup_kill_ms >= 0 &&
      now >= q->hangup_kill_ms) {
    ferry_warn("session %llu from %s: still running %d ms after its client "
               "hung up, killing it",
               (unsigned long long)q->id, q->peer, SERVER_HANGUP_GRACE_MS);
    q->hung_up = 1;
    kill(-q->pid, SIGTERM);
    kill(q->pid, SIGTERM);
    q->kill_at_ms = now + SERVER_KILL_GRACE_MS;
  }
  if (!q->timed_out && q->deadline_ms >= 0 && now >= q->deadline_ms) {
    ferry_warn("session %llu from %s: timeout (%gs), killing it",
               (unsigned long long)q->id, q->peer, q->timeout_s);
    q->timed_out = 1;
    /* The child itself too, in case it left its group (setpgid/setsid). */
    kill(-q->pid, SIGTERM);
    kill(q->pid, SIGTERM);
    q->kill_at_ms = now + SERVER_KILL_GRACE_MS;
  }
  if (q->kill_at_ms >= 0 && now >= q->kill_at_ms) {
    kill(-q->pid, SIGKILL);
    kill(q->pid, SIGKILL);
    q->kill_at_ms = -1;
  }
  if (q->kill_at_ms >= 0)
    return q->kill_at_ms;
  /* Timed out or hung up and killed: SIGCHLD wakes the loop, no timer is
   * left. */
  if (q->timed_out || q->hung_up)
    return -1;
  return server_min_deadline(q->deadline_ms, q->hangup_kill_ms);
}

void server_fork_stop(ferry_server *s) {
  server_session *q = &s->sess;
  if (!q->active || q->pid <= 0)
    return;
  kill(-q->pid, SIGKILL);
  kill(q->pid, SIGKILL);
  siginfo_t si;
  while (waitid(P_PID, (id_t)q->pid, &si, WEXITED | WNOWAIT) < 0 &&
         errno == EINTR)
    ;
  kill(-q->pid, SIGKILL);
  int status;
  while (waitpid(q->pid, &status, 0) < 0 && errno == EINTR)
    ;
  finish(s, "stopped (server shutting down)", 1);
}
