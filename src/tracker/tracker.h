/* ferry tracker: the TVM RPC tracker on one libuv event loop
 * (tracker-proxy-server.md §3.4, §4).  Used by `ferry tracker`.
 *
 * Lifecycle: ferry_tracker_new binds the port, ferry_tracker_run serves
 * until SIGINT/SIGTERM (when handle_signals) or a STOP with the secret key,
 * ferry_tracker_free releases everything.  All memory is freed on return. */
#ifndef FERRY_TRACKER_TRACKER_H
#define FERRY_TRACKER_TRACKER_H

#include <stddef.h>

#include "base/allow.h"
#include "ferry/error.h"

typedef struct ferry_tracker_opts {
  const char *host;     /* address to bind; "127.0.0.1" by default */
  int port;             /* first port to try; 0 = any */
  int port_end;         /* ports tried are [port, port_end); <= port: just port */
  const char *stop_key; /* secret for STOP; NULL = random (never printed) */
  int handle_signals;   /* 1: SIGINT/SIGTERM stop the loop cleanly */
  int frame_timeout_ms; /* a started frame must finish within this; 0 = 10 s */
  /* Access lists (copied; NULL or empty = everyone): who may connect at
   * all, and who may PUT and UPDATE_INFO (register servers); the others'
   * PUT and UPDATE_INFO are answered FAIL (-1). */
  const ferry_allow *allow;
  const ferry_allow *allow_servers;
  /* Leases: "SECONDS" or "KEY=SECONDS[,...]" ("*=S" for the rest); NULL
   * or empty = none.  A ferry server ends a session past its lease. */
  const char *max_session;
  /* The HTTP side (dashboard, /api/status, /metrics) on host:http_port;
   * 0 = any free port; < 0 = off (the default). */
  int http_port;
  /* Keep the session history in DIR/history.jsonl across restarts; NULL
   * = in memory only. */
  const char *state_dir;
} ferry_tracker_opts;

typedef struct ferry_tracker ferry_tracker;

/* Binds the listening socket (the first free port of the range) and sets
 * up the loop; nothing is served until ferry_tracker_run.  Raises the
 * open-file limit to its hard maximum so that thousands of idle peers fit.
 * On failure *out is NULL and err holds the reason. */
int ferry_tracker_new(ferry_tracker **out, const ferry_tracker_opts *opts,
                      char *err, size_t errcap) FERRY_MUST_CHECK;
/* The bound address, e.g. for the "listening on HOST:PORT" line. */
int ferry_tracker_port(const ferry_tracker *t);
const char *ferry_tracker_host(const ferry_tracker *t);
/* The HTTP side's port, or -1 when it is off. */
int ferry_tracker_http_port(const ferry_tracker *t);
/* Serves until stopped.  Returns 0 after a clean stop. */
int ferry_tracker_run(ferry_tracker *t) FERRY_MUST_CHECK;
void ferry_tracker_free(ferry_tracker *t);

#endif
