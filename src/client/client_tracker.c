/* A session through a tracker's queue (tracker-proxy-server.md §7.2):
 * REQUEST [4, key, "", priority], wait for the grant [0, [host, port,
 * matchkey]], then connect to host:port with "client:<matchkey>".  The
 * granted address may be a server or a proxy that fronts one; both answer
 * the same handshake.  Unlike TVM's request, the wait has a deadline.
 *
 * Two things are retried, each within the overall deadline:
 *   - reaching the tracker (refused, unreachable, hung up): with back-off
 *     for up to opts.tracker_retry_ms, as TVM's connect_with_retry keeps
 *     trying for 60 s, so a client started before its tracker still works;
 *   - a grant that does not give a session (the server rotated its match
 *     key, is gone, or hangs in the handshake past opts.handshake_timeout_ms):
 *     REQUEST again, up to opts.max_retry grants in all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "base/net.h"
#include "client/client_internal.h"
#include "client/tracker_link.h"

/* Waits between attempts to reach the tracker: 100 ms, doubling, at most
 * 5 s (TVM's fixed period), so a tracker that comes up soon is found
 * soon and one that stays down costs a dozen connects a minute. */
#define TRACKER_BACKOFF_FIRST_MS 100
#define TRACKER_BACKOFF_MAX_MS 5000
/* One connect attempt, so that a host that drops SYNs is retried too. */
#define TRACKER_CONNECT_MS 5000

static int ms_left(int64_t deadline_ms) {
  if (deadline_ms < 0)
    return -1;
  int64_t left = deadline_ms - ferry_now_ms();
  return left > 0 ? (int)left : 0;
}

static int64_t earlier(int64_t a, int64_t b) {
  if (a < 0)
    return b;
  if (b < 0)
    return a;
  return a < b ? a : b;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* Failures of the connect itself, which a tracker coming up (or back)
 * cures.  A name that does not resolve, and a peer that accepts but then
 * hangs up or answers the wrong magic (a server's port given as the
 * tracker's), are not retried: waiting would only delay the message. */
static int worth_retrying(int rc) {
  return rc == FERRY_ECONNREFUSED || rc == FERRY_ESYS || rc == FERRY_ETIMEDOUT;
}

/* Connects the link, retrying with back-off until the retry window or
 * the overall deadline ends.  On failure `msg` says why, once. */
static int reach_tracker(ferry_tracker_link *link, const char *host, int port,
                         const ferry_client_opts *o, int64_t dl, char *msg, size_t cap) {
  int64_t start = ferry_now_ms();
  int64_t window_end = earlier(dl, start + (o->tracker_retry_ms > 0 ? o->tracker_retry_ms : 0));
  int backoff = TRACKER_BACKOFF_FIRST_MS, tries = 0;
  for (;;) {
    char lerr[512] = "";
    int left = ms_left(dl);
    int each = left < 0 || left > TRACKER_CONNECT_MS ? TRACKER_CONNECT_MS : left;
    int rc = ferry_tracker_link_connect(link, host, port, each, lerr, sizeof lerr);
    tries++;
    if (rc == 0)
      return 0;
    int wait = ms_left(window_end);
    if (!worth_retrying(rc) || wait <= 0) {
      if (tries > 1)
        snprintf(msg, cap, "cannot connect to tracker %s:%d: %s, after %d tries in %.1f s", host,
                 port, lerr[0] ? lerr : ferry_strerror(rc), tries,
                 (double)(ferry_now_ms() - start) / 1000.0);
      else
        snprintf(msg, cap, "cannot connect to tracker %s:%d: %s", host, port,
                 lerr[0] ? lerr : ferry_strerror(rc));
      return rc;
    }
    sleep_ms(backoff < wait ? backoff : wait);
    backoff = backoff * 2 > TRACKER_BACKOFF_MAX_MS ? TRACKER_BACKOFF_MAX_MS : backoff * 2;
  }
}

int ferry_client_connect_tracker(const char *tracker_host, int tracker_port, const char *key,
                                 int priority, const ferry_client_opts *opts,
                                 ferry_client **out, char *err, size_t errcap) {
  ferry_client_opts def;
  if (!opts) {
    ferry_client_opts_init(&def);
    opts = &def;
  }
  int64_t dl = opts->timeout_ms > 0 ? ferry_now_ms() + opts->timeout_ms : -1;
  int grants_max = opts->max_retry > 0 ? opts->max_retry : 1;
  int grants = 0, breaks = 0;
  char last[1280] = ""; /* room for "granted server: " + lerr */
  int rc = 0;
  ferry_tracker_link link;
  ferry_tracker_link_init(&link);
  /* Who asks, for the farm's table: opts->user, $FERRY_USER, else
   * login@hostname.
   * TVM's tracker ignores it. */
  char user[128] = "", host[64] = "";
  const char *env = opts->user ? opts->user : getenv("FERRY_USER");
  if (env && env[0]) {
    snprintf(user, sizeof user, "%s", env);
  } else {
    const char *login = getenv("USER");
    if (gethostname(host, sizeof host) != 0)
      host[0] = 0;
    host[sizeof host - 1] = 0;
    snprintf(user, sizeof user, "%s@%s", login && login[0] ? login : "unknown",
             host[0] ? host : "unknown");
  }
  link.user = user;
  for (;;) {
    char lerr[1024] = "";
    /* (Re)connect when the link is down: first time, or after the tracker
     * went away while we waited in its queue. */
    if (link.fd < 0) {
      rc = reach_tracker(&link, tracker_host, tracker_port, opts, dl, err, errcap);
      if (rc) {
        ferry_tracker_link_close(&link);
        return rc; /* the tracker itself: err says so */
      }
    }
    ferry_tracker_grant g;
    memset(&g, 0, sizeof g);
    rc = ferry_tracker_link_request(&link, key, priority, &g, ms_left(dl), lerr, sizeof lerr);
    if (rc == FERRY_ETIMEDOUT && ms_left(dl) == 0) {
      /* Closing the link withdraws the queued request at the tracker. */
      ferry_tracker_link_close(&link);
      snprintf(err, errcap,
               "no server of key '%s' became free at tracker %s:%d within %d ms (none is "
               "registered under that key, or all are busy)%s%s",
               key, tracker_host, tracker_port, opts->timeout_ms, last[0] ? "; earlier: " : "",
               last);
      return rc;
    }
    if (rc == FERRY_EPROTO || rc == FERRY_EREMOTE || rc == FERRY_ETOOBIG) {
      /* TVM does not retry an invalid reply either. */
      ferry_tracker_link_close(&link);
      snprintf(err, errcap, "%s", lerr[0] ? lerr : ferry_strerror(rc));
      return rc;
    }
    if (rc) {
      /* The link broke while we waited (the tracker restarted): reconnect
       * and queue again. */
      snprintf(last, sizeof last, "%s", lerr[0] ? lerr : ferry_strerror(rc));
      ferry_tracker_link_close(&link);
      ferry_tracker_link_init(&link);
      /* A tracker that accepts and then drops us every time must not
       * keep us here forever: that counts like a failed grant. */
      if (++breaks >= grants_max) {
        snprintf(err, errcap, "tracker %s:%d dropped the request %d times; last: %s",
                 tracker_host, tracker_port, breaks, last);
        return rc == FERRY_ECONNREFUSED || rc == FERRY_ESYS ? FERRY_EIO : rc;
      }
      sleep_ms(TRACKER_BACKOFF_FIRST_MS);
      continue;
    }
    grants++;
    /* The handshake with the granted server gets its own short deadline,
     * so that one server that accepts and never answers costs that much
     * and not the whole timeout: then the tracker is asked again. */
    int64_t hs_dl = opts->handshake_timeout_ms > 0
                        ? earlier(dl, ferry_now_ms() + opts->handshake_timeout_ms)
                        : dl;
    rc = client_open(g.host, g.port, -1, g.matchkey, opts, dl, hs_dl, out, lerr, sizeof lerr);
    if (rc) {
      if (rc == FERRY_ETIMEDOUT && ms_left(dl) != 0)
        snprintf(last, sizeof last,
                 "granted server %s:%d did not finish the handshake within %d ms", g.host,
                 g.port, opts->handshake_timeout_ms);
      else
        snprintf(last, sizeof last, "granted server: %s", lerr);
    }
    ferry_tracker_grant_close(&g);
    if (rc == 0) {
      ferry_tracker_link_close(&link);
      return 0;
    }
    /* The server may have rotated its match key since it registered, be
     * gone, or hang: ask again (a new REQUEST on the same link). */
    if (grants >= grants_max || ms_left(dl) == 0)
      break;
  }
  ferry_tracker_link_close(&link);
  snprintf(err, errcap,
           "tracker %s:%d granted %d server%s of key '%s' and none gave a session (a server "
           "may be gone or hung while still registered); last: %s",
           tracker_host, tracker_port, grants, grants == 1 ? "" : "s", key, last);
  /* Keep FERRY_ECONNREFUSED/ENOTFOUND/ESYS for the tracker itself (the
   * contract in ferry/client.h): a granted server that cannot be reached
   * is an I/O failure of the grant. */
  if (rc == FERRY_ECONNREFUSED || rc == FERRY_ENOTFOUND || rc == FERRY_ESYS)
    rc = FERRY_EIO;
  return rc ? rc : FERRY_ETIMEDOUT;
}
