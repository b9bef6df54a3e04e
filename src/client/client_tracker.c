/* A session through a tracker's queue (tracker-proxy-server.md §7.2):
 * REQUEST [4, key, "", priority], wait for the grant [0, [host, port,
 * matchkey]], then connect to host:port with "client:<matchkey>".  The
 * granted address may be a server or a proxy that fronts one; both answer
 * the same handshake.  Unlike TVM's request, the wait has a deadline. */
#include <stdio.h>
#include <string.h>

#include "base/net.h"
#include "client/client_internal.h"
#include "client/tracker_link.h"

static int ms_left(int64_t deadline_ms) {
  if (deadline_ms < 0)
    return -1;
  int64_t left = deadline_ms - ferry_now_ms();
  return left > 0 ? (int)left : 0;
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
  int tries = opts->max_retry > 0 ? opts->max_retry : 1;
  char last[1024] = "";
  int rc = 0, made = 0;
  ferry_tracker_link link;
  ferry_tracker_link_init(&link);
  for (int attempt = 0; attempt < tries; attempt++) {
    char lerr[512] = "";
    made = attempt + 1;
    /* (Re)connect when the link is down: first attempt, or after a socket
     * error on the previous one, as TVM's TrackerSession does. */
    if (link.fd < 0) {
      rc = ferry_tracker_link_connect(&link, tracker_host, tracker_port, ms_left(dl), lerr,
                                      sizeof lerr);
      if (rc) {
        snprintf(last, sizeof last, "cannot reach tracker %s:%d: %s", tracker_host,
                 tracker_port, lerr);
        if (rc == FERRY_ETIMEDOUT || ms_left(dl) == 0)
          break;
        continue;
      }
    }
    ferry_tracker_grant g;
    memset(&g, 0, sizeof g);
    rc = ferry_tracker_link_request(&link, key, priority, &g, ms_left(dl), lerr, sizeof lerr);
    if (rc == FERRY_ETIMEDOUT) {
      /* Closing the link withdraws the queued request at the tracker. */
      snprintf(last, sizeof last,
               "no server of key '%s' became free at tracker %s:%d within %d ms", key,
               tracker_host, tracker_port, opts->timeout_ms);
      break;
    }
    if (rc) {
      snprintf(last, sizeof last, "tracker %s:%d: %s", tracker_host, tracker_port,
               lerr[0] ? lerr : ferry_strerror(rc));
      if (rc == FERRY_EPROTO || rc == FERRY_EREMOTE)
        break; /* TVM does not retry an invalid reply either */
      ferry_tracker_link_close(&link);
      ferry_tracker_link_init(&link);
      continue;
    }
    rc = client_open(g.host, g.port, -1, g.matchkey, opts, dl, out, lerr, sizeof lerr);
    ferry_tracker_grant_close(&g);
    if (rc == 0) {
      ferry_tracker_link_close(&link);
      return 0;
    }
    /* The server may have rotated its match key since it registered;
     * ask again (a new REQUEST on the same link). */
    snprintf(last, sizeof last, "%s", lerr);
    if (ms_left(dl) == 0)
      break;
  }
  ferry_tracker_link_close(&link);
  /* TVM's wording, with the number of attempts actually made. */
  snprintf(err, errcap, "Cannot request %s after %d retry, last_error:%s", key, made, last);
  return rc ? rc : FERRY_ETIMEDOUT;
}
