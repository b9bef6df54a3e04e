/* Tracker registration and match-key rotation (spec §5.1.3-5.1.4, §5.1.8,
 * §5.1.9 with §10.3 items 9 and 12 fixed).
 *
 * On every tracker connection: magic, UPDATE_INFO {"key": "server:<key>",
 * "addr": [custom_addr or null, port]} (port as a number, as TVM's Python
 * server sends it), then PUT [key, [port, matchkey], custom_addr] with a
 * fresh CSPRNG match key.  Every 2 s the pending keys are polled; when the
 * tracker has handed our key out (it is no longer pending) and no client
 * came for 4 polls, the key is replaced (TVM's unmatch_timeout).  After
 * every session a new key is PUT.  A lost tracker is retried forever with a
 * back-off of 1 s doubling to 30 s; nothing here ever stops the server.
 *
 * The link is blocking with short deadlines: the tracker answers every
 * request at once, so the poll loop is held up for a round trip at most
 * (and for the deadline if a tracker hangs, after which it is dropped). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/net.h"
#include "base/random.h"
#include "server/server_state.h"
#include "wire/constants.h"
#include "wire/tracker_msg.h"

#define TRACKER_CONNECT_MS 2000
#define TRACKER_REPLY_MS 5000
#define TRACKER_POLL_MS 2000
#define TRACKER_BACKOFF_MIN_MS 1000
#define TRACKER_BACKOFF_MAX_MS 30000
/* TVM: regenerate when idle * 2 > unmatch_timeout(4) + 2. */
#define TRACKER_UNMATCH_POLLS 4

void server_tracker_new_matchkey(ferry_server *s) {
  if (!s->cfg->tracker_host) {
    snprintf(s->matchkey, sizeof s->matchkey, "%s", s->cfg->key);
    s->has_matchkey = 1;
    return;
  }
  char suffix[FERRY_RANDOM_SUFFIX_LEN];
  if (ferry_random_suffix(suffix) != 0) {
    /* No randomness, no key: refusing every client is safer than a
     * guessable key; the next rotation tries again. */
    ferry_error("cannot read the kernel's random generator; no match key");
    s->has_matchkey = 0;
    return;
  }
  snprintf(s->matchkey, sizeof s->matchkey, "%s:%s", s->cfg->key, suffix);
  s->has_matchkey = 1;
}

void server_tracker_init(ferry_server *s) {
  server_tracker *t = &s->tracker;
  ferry_tracker_link_init(&t->link);
  if (s->cfg->through_proxy) {
    t->state = SERVER_TRACKER_OFF;
    return;
  }
  if (!s->cfg->tracker_host) {
    t->state = SERVER_TRACKER_OFF;
    server_tracker_new_matchkey(s);
    return;
  }
  t->state = SERVER_TRACKER_DOWN;
  t->next_try_ms = ferry_now_ms();
  t->backoff_ms = TRACKER_BACKOFF_MIN_MS;
  s->has_matchkey = 0;
  server_health_init(s);
}

static void drop_link(ferry_server *s, const char *why) {
  server_tracker *t = &s->tracker;
  ferry_tracker_link_close(&t->link);
  if (t->state == SERVER_TRACKER_UP)
    ferry_warn("lost the tracker %s:%d (%s); reconnecting",
               s->cfg->tracker_host, s->cfg->tracker_port, why);
  t->state = SERVER_TRACKER_DOWN;
  t->offered = 0;
  /* A link that had worked (a poll succeeded on it) is retried at once: a
   * tracker restart is the common case.  One that failed right after
   * connecting (a peer that accepts and then answers nonsense) backs off,
   * or the server would reconnect in a tight loop. */
  if (t->healthy) {
    t->next_try_ms = ferry_now_ms();
    t->backoff_ms = TRACKER_BACKOFF_MIN_MS;
  } else {
    t->next_try_ms = ferry_now_ms() + t->backoff_ms;
    t->backoff_ms *= 2;
    if (t->backoff_ms > TRACKER_BACKOFF_MAX_MS)
      t->backoff_ms = TRACKER_BACKOFF_MAX_MS;
  }
  t->healthy = 0;
}

static int connect_and_register(ferry_server *s, char *err, size_t errcap) {
  server_tracker *t = &s->tracker;
  const ferry_server_config *c = s->cfg;
  int rc = ferry_tracker_link_connect(&t->link, c->tracker_host,
                                      c->tracker_port, TRACKER_CONNECT_MS, err,
                                      errcap);
  if (rc)
    return rc;
  char info_key[SERVER_MAX_KEY + 8];
  snprintf(info_key, sizeof info_key, "server:%s", c->key);
  /* The device list goes along as an extra info field: TVM's tracker
   * keeps it and shows it in its summary (`ferry query`). */
  rc = ferry_tracker_link_update_info_devices(&t->link, info_key, c->custom_addr, s->port,
                                              s->devices[0] ? s->devices : NULL,
                                              TRACKER_REPLY_MS, err, errcap);
  if (rc)
    ferry_tracker_link_close(&t->link);
  return rc;
}

/* Offers the server under a fresh key. */
static int put_new_key(ferry_server *s) {
  server_tracker *t = &s->tracker;
  server_tracker_new_matchkey(s);
  if (!s->has_matchkey)
    return FERRY_ESYS;
  char err[256] = "";
  int rc = ferry_tracker_link_put(&t->link, s->cfg->key, s->port, s->matchkey,
                                  s->cfg->custom_addr, TRACKER_REPLY_MS, err,
                                  sizeof err);
  if (rc) {
    ferry_warn("tracker PUT: %s", err[0] ? err : ferry_strerror(rc));
  } else {
    t->need_put = 0;
    t->offered = 1;
    t->idle_polls = 0;
    ferry_info("offered at the tracker as '%s'", s->cfg->key);
    ferry_debug("match key %s", s->matchkey);
  }
  return rc;
}

/* GET_PENDING_MATCHKEYS; counts polls in a row where our key was handed
 * out but nobody came. */
static int poll_pending(ferry_server *s) {
  server_tracker *t = &s->tracker;
  ferry_tracker_strlist list = {0};
  char err[256] = "";
  int rc = ferry_tracker_link_pending(&t->link, &list, TRACKER_REPLY_MS, err,
                                      sizeof err);
  if (rc) {
    ferry_warn("tracker GET_PENDING_MATCHKEYS: %s",
               err[0] ? err : ferry_strerror(rc));
    return rc;
  }
  if (!s->sess.active && t->offered) {
    if (s->has_matchkey && ferry_tracker_strlist_contains(&list, s->matchkey)) {
      t->idle_polls = 0;
    } else if (++t->idle_polls * 2 > TRACKER_UNMATCH_POLLS + 2) {
      ferry_info("no client came for the key the tracker handed out; "
                 "offering a new key");
      /* The old key is withdrawn here: a late client gets MISMATCH. */
      s->has_matchkey = 0;
      t->need_put = 1;
    }
  }
  ferry_tracker_strlist_close(&list);
  return 0;
}

int64_t server_tracker_tick(ferry_server *s, int64_t now) {
  server_tracker *t = &s->tracker;
  if (t->state == SERVER_TRACKER_OFF || s->stopping)
    return -1;
  if (t->state == SERVER_TRACKER_DOWN) {
    if (now < t->next_try_ms)
      return t->next_try_ms;
    char err[256] = "";
    int rc = connect_and_register(s, err, sizeof err);
    if (rc) {
      /* Log the first failure and then every tenth, so a tracker that is
       * down for hours does not flood the log. */
      if (t->failures++ % 10 == 0)
        ferry_warn("cannot register at tracker %s:%d: %s; retrying in %ds",
                   s->cfg->tracker_host, s->cfg->tracker_port, err,
                   t->backoff_ms / 1000);
      t->next_try_ms = ferry_now_ms() + t->backoff_ms;
      t->backoff_ms *= 2;
      if (t->backoff_ms > TRACKER_BACKOFF_MAX_MS)
        t->backoff_ms = TRACKER_BACKOFF_MAX_MS;
      return t->next_try_ms;
    }
    t->state = SERVER_TRACKER_UP;
    t->failures = 0;
    t->healthy = 0;
    t->next_poll_ms = ferry_now_ms() + TRACKER_POLL_MS;
    ferry_info("registered at tracker %s:%d as server:%s",
               s->cfg->tracker_host, s->cfg->tracker_port, s->cfg->key);
    /* A new tracker link withdrew nothing we could still honour: the old
     * offers died with the old link, so offer a new key (TVM does too). */
    t->need_put = 1;
    s->health.reported = 0; /* a new tracker knows nothing of our health */
  }
  if (t->need_put && !s->sess.active) {
    int64_t retry = server_health_tick(s, now);
    if (retry)
      return server_min_deadline(retry, t->next_poll_ms);
    if (put_new_key(s) != 0) {
      drop_link(s, "PUT failed");
      return t->next_try_ms;
    }
    t->next_poll_ms = ferry_now_ms() + TRACKER_POLL_MS;
  }
  if (now >= t->next_poll_ms) {
    if (poll_pending(s) != 0) {
      drop_link(s, "no answer to a poll");
      return t->next_try_ms;
    }
    t->healthy = 1;
    t->backoff_ms = TRACKER_BACKOFF_MIN_MS;
    t->next_poll_ms = ferry_now_ms() + TRACKER_POLL_MS;
    if (t->need_put && !s->sess.active && !s->health.due && put_new_key(s) != 0) {
      drop_link(s, "PUT failed");
      return t->next_try_ms;
    }
  }
  return t->next_poll_ms;
}

void server_tracker_readable(ferry_server *s) {
  /* No request is in flight, so anything readable is a close (or bytes a
   * tracker has no reason to send): start over on a new link. */
  uint8_t b[64];
  ssize_t n = recv(s->tracker.link.fd, b, sizeof b, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  drop_link(s, n == 0 ? "connection closed" : "unexpected data");
}

void server_tracker_session_started(ferry_server *s) {
  if (s->cfg->tracker_host && !s->cfg->through_proxy) {
    /* The key this session's client presented, for its report. */
    snprintf(s->tracker.reported_key, sizeof s->tracker.reported_key, "%s",
             s->has_matchkey ? s->matchkey : "");
    s->has_matchkey = 0; /* a match key serves one session */
  }
}

void server_tracker_session_done(ferry_server *s) {
  if (s->tracker.state == SERVER_TRACKER_OFF || s->stopping)
    return;
  s->tracker.need_put = 1;
}

/* Tells the tracker that a session started or ended (docs/internals/
 * farm.md): an UPDATE_INFO whose only entry is "ferry_session", which
 * ferry's tracker takes out and TVM's merges and ignores.  The reply is a
 * status: ferry's tracker answers a start with the lease of the device's
 * key in seconds (0: none), TVM's with 0; -1 means the report was refused
 * (logged there; nothing changes here).  Returns the lease or 0.  A lost
 * link is left to the next tick, as for a failed poll. */
double server_tracker_report(ferry_server *s, int event, const char *outcome) {
  server_tracker *t = &s->tracker;
  if (t->state != SERVER_TRACKER_UP || !t->reported_key[0] ||
      (event == FERRY_SESSION_END && !t->start_reported)) {
    t->reported_key[0] = 0;
    return 0;
  }
  ferry_buf b;
  ferry_buf_init(&b, FERRY_TRACKER_MAX_FRAME);
  char err[256] = "";
  int rc = ferry_tracker_encode_report(&b, event, (long long)s->sess.id, t->reported_key,
                                       outcome, 0, NULL);
  if (rc == 0)
    rc = ferry_tracker_link_call(&t->link, b.data, b.len, TRACKER_REPLY_MS, err, sizeof err);
  ferry_buf_close(&b);
  int status = 0;
  if (rc == 0)
    rc = ferry_tracker_decode_status(t->link.reply.data, t->link.reply.len, &status, err,
                                     sizeof err);
  if (event == FERRY_SESSION_END)
    t->reported_key[0] = 0;
  t->start_reported = event == FERRY_SESSION_START && rc == 0 && status >= 0;
  if (rc) {
    ferry_warn("tracker session report: %s", err[0] ? err : ferry_strerror(rc));
    drop_link(s, "no answer to a session report");
    return 0;
  }
  if (status < 0) {
    ferry_warn("the tracker refused the report of session %llu",
               (unsigned long long)s->sess.id);
    return 0;
  }
  return status;
}

void server_tracker_close(ferry_server *s) {
  ferry_tracker_link_close(&s->tracker.link);
  s->tracker.state = SERVER_TRACKER_OFF;
}
