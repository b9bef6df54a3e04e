/* A blocking link to a tracker (tracker-proxy-server.md §3.4, §4.3, §7.2).
 *
 * Used by `ferry query`, the device server's registration loop, the
 * proxy's tracker updates (from a thread or a short blocking call) and the
 * client's REQUEST.  One request frame out, one reply frame in; every wait
 * has a deadline and every reply a size bound (FERRY_TRACKER_MAX_FRAME).
 *
 * Timeouts are in milliseconds; a negative timeout waits forever (TVM's
 * REQUEST blocks until a device is free).  Errors are FERRY_E* codes with a
 * one-line reason in err (capacity errcap, may be NULL; the first message
 * wins, so pass an empty string). */
#ifndef FERRY_CLIENT_TRACKER_LINK_H
#define FERRY_CLIENT_TRACKER_LINK_H

#include <stddef.h>

#include "base/buf.h"
#include "ferry/error.h"
#include "wire/tracker_msg.h"

typedef struct ferry_tracker_link {
  int fd;          /* -1 when not connected; readable for poll() */
  char peer[128];  /* "host:port" of the tracker, for messages */
  ferry_buf reply; /* the last reply body (owned, reused) */
  size_t max_reply; /* bytes a reply body may have; see _set_max_reply */
  const char *user; /* REQUEST's user (NULL: "", as TVM's client sends);
                       ferry's tracker shows it as the device's holder */
} ferry_tracker_link;

/* An unconnected link (fd -1).  Allocates nothing. */
void ferry_tracker_link_init(ferry_tracker_link *l);
/* Replies longer than max bytes are refused (FERRY_ETOOBIG, nothing
 * allocated); FERRY_TRACKER_MAX_FRAME after init.  A summary can be larger
 * (up to FERRY_TRACKER_MAX_REPLY): a caller that wants every summary raises
 * the ceiling to that. */
void ferry_tracker_link_set_max_reply(ferry_tracker_link *l, size_t max);
/* Closes the socket (if any) and frees the reply buffer; the link can be
 * connected again. */
void ferry_tracker_link_close(ferry_tracker_link *l);

/* Connects and exchanges the tracker magic, all within timeout_ms.
 * FERRY_ECONNREFUSED / FERRY_ETIMEDOUT / FERRY_NOTFOUND / FERRY_ESYS from
 * the connect, FERRY_EMAGIC if the peer answers something else, FERRY_ECLOSED
 * if it hangs up.  On failure the link is closed.  The message in err
 * does not repeat host:port (the caller names what it connected to); the
 * later calls' messages start with l->peer. */
int ferry_tracker_link_connect(ferry_tracker_link *l, const char *host,
                               int port, int timeout_ms, char *err,
                               size_t errcap) FERRY_MUST_CHECK;

/* Sends one frame (i32le length + body). */
int ferry_tracker_link_send(ferry_tracker_link *l, const void *body,
                            size_t len, int timeout_ms, char *err,
                            size_t errcap) FERRY_MUST_CHECK;
/* Receives one frame; the body is l->reply.data / l->reply.len, valid until
 * the next call.  FERRY_EPROTO for a length <= 0, FERRY_ETOOBIG for one
 * over l->max_reply (nothing is allocated for it), FERRY_ETIMEDOUT,
 * FERRY_ECLOSED. */
int ferry_tracker_link_recv(ferry_tracker_link *l, int timeout_ms, char *err,
                            size_t errcap) FERRY_MUST_CHECK;
/* send then recv, timeout_ms for each. */
int ferry_tracker_link_call(ferry_tracker_link *l, const void *body,
                            size_t len, int timeout_ms, char *err,
                            size_t errcap) FERRY_MUST_CHECK;

/* ---- typed exchanges (encode, call, decode) ------------------------------
 * Each fails with FERRY_EREMOTE if the tracker answers a status other than
 * 0, and FERRY_EPROTO if the reply has the wrong shape. */

/* [3, key, [port, matchkey], custom_addr or null] -> 0 */
int ferry_tracker_link_put(ferry_tracker_link *l, const char *key, int port,
                           const char *matchkey, const char *custom_addr,
                           int timeout_ms, char *err,
                           size_t errcap) FERRY_MUST_CHECK;
/* [5, {"key": info_key, "addr": [custom_addr or null, port]}] -> 0 */
int ferry_tracker_link_update_info(ferry_tracker_link *l, const char *info_key,
                                   const char *custom_addr, int port,
                                   int timeout_ms, char *err,
                                   size_t errcap) FERRY_MUST_CHECK;
/* The same with a "devices" field (NULL: none), see tracker_msg.h. */
int ferry_tracker_link_update_info_devices(ferry_tracker_link *l, const char *info_key,
                                           const char *custom_addr, int port,
                                           const char *devices, int timeout_ms, char *err,
                                           size_t errcap) FERRY_MUST_CHECK;
/* [7] -> list of this connection's match keys not yet handed out.  *out
 * must be closed with ferry_tracker_strlist_close on success. */
int ferry_tracker_link_pending(ferry_tracker_link *l, ferry_tracker_strlist *out,
                               int timeout_ms, char *err,
                               size_t errcap) FERRY_MUST_CHECK;
/* [4, key, "", priority] -> grant.  timeout_ms bounds the wait for a free
 * device (negative: forever).  After FERRY_ETIMEDOUT the request is still
 * queued at the tracker: close the link to withdraw it.  *out must be
 * closed with ferry_tracker_grant_close on success. */
int ferry_tracker_link_request(ferry_tracker_link *l, const char *key,
                               int priority, ferry_tracker_grant *out,
                               int timeout_ms, char *err,
                               size_t errcap) FERRY_MUST_CHECK;
/* [6] -> summary; close *out with ferry_tracker_summary_close on success. */
int ferry_tracker_link_summary(ferry_tracker_link *l, ferry_tracker_summary *out,
                               int timeout_ms, char *err,
                               size_t errcap) FERRY_MUST_CHECK;
/* [1] -> 0 */
int ferry_tracker_link_ping(ferry_tracker_link *l, int timeout_ms, char *err,
                            size_t errcap) FERRY_MUST_CHECK;

#endif
