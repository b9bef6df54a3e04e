/* Tracker lifecycle: bind, accept with back-off, periodic checks, signals,
 * clean stop. */
#include "tracker/tracker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/net.h"
#include "base/random.h"
#include "tracker/tracker_impl.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000

static void listen_cb(uv_poll_t *p, int status, int events);

static void start_listening(ferry_tracker *t) {
  if (!t->listen_active && !t->stopping) {
    uv_poll_start(&t->listen_poll, UV_READABLE, listen_cb);
    t->listen_active = 1;
  }
}

static void backoff_cb(uv_timer_t *tm) {
  ferry_tracker *t = tm->data;
  start_listening(t);
}

/* Logs a connection refused by --allow, at most 20 lines a second: a
 * stranger's connection storm must not flood the log.  The count of the
 * lines left out is given with the next line. */
static void log_refused(ferry_tracker *t, int fd) {
  int64_t sec = ferry_now_ms() / 1000;
  if (sec != t->refused_sec) {
    t->refused_sec = sec;
    t->refused_logged = 0;
  }
  if (t->refused_logged >= 20) {
    t->refused_quiet++;
    return;
  }
  t->refused_logged++;
  char name[80];
  ferry_peer_name(fd, name, sizeof name);
  if (t->refused_quiet)
    ferry_warn("refused %s: not in --allow %s (and %lu more refused, not logged)", name,
               t->allow_text, t->refused_quiet);
  else
    ferry_warn("refused %s: not in --allow %s", name, t->allow_text);
  t->refused_quiet = 0;
}

/* Accepts ourselves rather than through uv_listen so that an error such as
 * EMFILE stops the accept watcher for a while instead of spinning (TVM
 * v0.20 spun forever, §10.3 item 4).  At most a bounded number of accepts
 * per wake-up so that a connection storm cannot starve the peers. */
static void listen_cb(uv_poll_t *p, int status, int events) {
  ferry_tracker *t = p->data;
  (void)events;
  if (status < 0) {
    ferry_warn("listening socket error: %s", uv_strerror(status));
    return;
  }
  for (int i = 0; i < FERRY_TRACKER_ACCEPTS_PER_WAKE; i++) {
    int fd = accept4(t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0) {
      t->backoff_ms = 0;
      if (t->allow.n && !ferry_allow_fd(&t->allow, fd)) {
        log_refused(t, fd);
        close(fd);
        continue;
      }
      ferry_tconn_accept(t, fd);
      continue;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return;
    if (errno == ECONNABORTED || errno == EPROTO)
      continue; /* that peer gave up; the next one may be fine */
    t->backoff_ms = t->backoff_ms ? t->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (t->backoff_ms > BACKOFF_MAX_MS)
      t->backoff_ms = BACKOFF_MAX_MS;
    ferry_warn("accept failed: %s (%zu connections); pausing accepts for %d ms",
               strerror(errno), t->nconns, t->backoff_ms);
    uv_poll_stop(&t->listen_poll);
    t->listen_active = 0;
    uv_timer_start(&t->accept_backoff, backoff_cb, (uint64_t)t->backoff_ms, 0);
    return;
  }
}

/* Once a second: close peers that started a frame (or the magic) and did
 * not finish it in time.  O(connections); a few microseconds per thousand. */
static void tick_cb(uv_timer_t *tm) {
  ferry_tracker *t = tm->data;
  int64_t now = ferry_now_ms();
  tconn *c = t->conns;
  while (c) {
    tconn *next = c->next; /* closing unlinks c */
    if (c->partial_since_ms && now - c->partial_since_ms > t->frame_timeout_ms)
      ferry_tconn_close(c, FERRY_LOG_WARN, "incomplete %s for %d ms",
                        c->magic_done ? "frame" : "magic", t->frame_timeout_ms);
    c = next;
  }
  ferry_tracker_farm_tick(t, now);
  if (t->http)
    ferry_tracker_http_publish(t);
}

static void signal_cb(uv_signal_t *s, int signum) {
  ferry_tracker *t = s->data;
  ferry_tracker_stop(t, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

void ferry_tracker_stop(ferry_tracker *t, const char *why) {
  if (t->stopping)
    return;
  t->stopping = 1;
  ferry_notice("stopping (%s)", why);
  while (t->conns)
    ferry_tconn_close(t->conns, FERRY_LOG_DEBUG, "tracker stopping");
  uv_close((uv_handle_t *)&t->listen_poll, NULL);
  uv_close((uv_handle_t *)&t->accept_backoff, NULL);
  uv_close((uv_handle_t *)&t->tick, NULL);
  if (t->handle_signals) {
    uv_close((uv_handle_t *)&t->sigint, NULL);
    uv_close((uv_handle_t *)&t->sigterm, NULL);
  }
}

/* Thousands of idle peers are legal; the soft limit (often 1024) would
 * refuse them long before memory matters. */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int ferry_tracker_new(ferry_tracker **out, const ferry_tracker_opts *opts,
                      char *err, size_t errcap) {
  *out = NULL;
  ferry_tracker *t = calloc(1, sizeof *t);
  if (!t) {
    snprintf(err, errcap, "out of memory");
    return FERRY_ENOMEM;
  }
  raise_fd_limit();
  const char *host = opts->host ? opts->host : "127.0.0.1";
  snprintf(t->host, sizeof t->host, "%s", host);
  t->frame_timeout_ms = opts->frame_timeout_ms > 0 ? opts->frame_timeout_ms : 10000;
  t->handle_signals = opts->handle_signals;
  ferry_allow_init(&t->allow);
  ferry_allow_init(&t->allow_servers);
  if (opts->allow)
    t->allow = *opts->allow;
  if (opts->allow_servers)
    t->allow_servers = *opts->allow_servers;
  ferry_allow_format(&t->allow, t->allow_text, sizeof t->allow_text);
  if (opts->stop_key) {
    snprintf(t->stop_key, sizeof t->stop_key, "%s", opts->stop_key);
  } else {
    /* Like TVM: "tracker:<random>", known only to whoever started us. */
    char suffix[FERRY_RANDOM_SUFFIX_LEN];
    if (ferry_random_suffix(suffix) != 0) {
      snprintf(err, errcap, "no randomness for the stop key");
      free(t);
      return FERRY_ESYS;
    }
    snprintf(t->stop_key, sizeof t->stop_key, "tracker:%s", suffix);
  }
  /* A normal backlog, not TVM's 1 (§10.3 item 8). */
  int rc = ferry_tcp_listen(host, opts->port, opts->port_end, 1024, &t->listen_fd,
                            &t->port, err, errcap);
  if (rc) {
    free(t);
    return rc;
  }
  rc = uv_loop_init(&t->loop);
  if (rc) {
    snprintf(err, errcap, "uv_loop_init: %s", uv_strerror(rc));
    close(t->listen_fd);
    free(t);
    return FERRY_ESYS;
  }
  ferry_buf_init(&t->scratch, FERRY_TRACKER_MAX_REPLY);
  ferry_sched_init(&t->sched, ferry_tracker_grant_cb, t);
  ferry_farm_init(&t->farm);
  ferry_metrics_init(&t->metrics);
  t->history.fd = -1;
  if (opts->state_dir && opts->state_dir[0] &&
      ferry_history_open(&t->history, opts->state_dir, &t->farm, err, errcap) != 0) {
    ferry_farm_close(&t->farm);
    ferry_sched_close(&t->sched);
    ferry_buf_close(&t->scratch);
    uv_loop_close(&t->loop);
    close(t->listen_fd);
    free(t);
    return FERRY_ESYS;
  }
  if (opts->max_session && opts->max_session[0] &&
      ferry_farm_parse_leases(&t->farm, opts->max_session, err, errcap) != 0) {
    char why[200];
    snprintf(why, sizeof why, "%s", err);
    snprintf(err, errcap, "--max-session: %s", why);
    ferry_sched_close(&t->sched);
    ferry_buf_close(&t->scratch);
    uv_loop_close(&t->loop);
    close(t->listen_fd);
    free(t);
    return FERRY_EINVAL;
  }
  t->sched.max_bytes = FERRY_TRACKER_MAX_STATE;
  if (opts->http_port >= 0 &&
      ferry_http_start(&t->http, host, opts->http_port, &t->allow, err, errcap) != 0) {
    ferry_history_close(&t->history);
    ferry_farm_close(&t->farm);
    ferry_sched_close(&t->sched);
    ferry_buf_close(&t->scratch);
    uv_loop_close(&t->loop);
    close(t->listen_fd);
    free(t);
    return FERRY_ESYS;
  }
  uv_poll_init_socket(&t->loop, &t->listen_poll, t->listen_fd);
  t->listen_poll.data = t;
  uv_timer_init(&t->loop, &t->accept_backoff);
  t->accept_backoff.data = t;
  uv_timer_init(&t->loop, &t->tick);
  t->tick.data = t;
  if (t->handle_signals) {
    uv_signal_init(&t->loop, &t->sigint);
    uv_signal_init(&t->loop, &t->sigterm);
    t->sigint.data = t->sigterm.data = t;
  }
  *out = t;
  return 0;
}

int ferry_tracker_port(const ferry_tracker *t) { return t->port; }
int ferry_tracker_http_port(const ferry_tracker *t) {
  return t->http ? ferry_http_port(t->http) : -1;
}
const char *ferry_tracker_host(const ferry_tracker *t) { return t->host; }

int ferry_tracker_run(ferry_tracker *t) {
  start_listening(t);
  if (t->http)
    ferry_tracker_http_publish(t); /* the first snapshot, before any tick */
  uv_timer_start(&t->tick, tick_cb, 1000, 1000);
  if (t->handle_signals) {
    uv_signal_start(&t->sigint, signal_cb, SIGINT);
    uv_signal_start(&t->sigterm, signal_cb, SIGTERM);
  }
  int rc = uv_run(&t->loop, UV_RUN_DEFAULT);
  (void)rc;
  return 0;
}

void ferry_tracker_free(ferry_tracker *t) {
  if (!t)
    return;
  if (!t->stopping)
    ferry_tracker_stop(t, "shutdown");
  /* Let every close callback run so that all memory is returned. */
  uv_run(&t->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&t->loop) != 0)
    ferry_warn("event loop still had handles at exit");
  close(t->listen_fd);
  ferry_http_stop(t->http);
  ferry_history_close(&t->history);
  ferry_sched_close(&t->sched);
  ferry_farm_close(&t->farm);
  ferry_buf_close(&t->scratch);
  ferry_info("tracker stopped; %llu grants served", (unsigned long long)t->sched.grants);
  free(t);
}
