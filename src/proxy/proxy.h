/* ferry proxy: pairs servers that dialled in with clients, relays their
 * bytes, and offers the servers' keys at a tracker (tracker-proxy-server.md
 * §6).  One process, one libuv event loop. */
#ifndef FERRY_PROXY_PROXY_H
#define FERRY_PROXY_PROXY_H

#include <stddef.h>

#include "base/allow.h"
#include "ferry/error.h"

typedef struct ferry_proxy_config {
  const char *host;         /* TCP (and web) bind address; default 127.0.0.1 */
  int port, port_end;       /* first port, exclusive end; port 0 = any */
  const char *tracker_host; /* NULL: proxy mode (no tracker) */
  int tracker_port;
  int web_port;             /* -1: no web side; 0: any port */
  double wait_s;            /* proxy mode: how long a waiter waits (600) */
  int handshake_ms;         /* deadline of a data-plane handshake (10000) */
  int example_rpc;          /* serve TVM's browser RPC example files */
  const char *web_root;     /* TVM source tree holding those files */
  size_t high_water;        /* relay: pause the sender above this (bytes) */
  size_t max_conns;         /* ceiling on open connections */
  size_t max_per_addr;      /* unpaired connections of one peer address */
  size_t max_buffered;      /* relay bytes all pairs may queue, in shares */
  const ferry_allow *allow; /* peers that may connect; NULL or empty: all */
  int splice;               /* relay plain TCP pairs with splice(2) (Linux) */
} ferry_proxy_config;

/* TVM's CLI defaults, plus ferry's bounds. */
void ferry_proxy_config_init(ferry_proxy_config *c);

/* Runs the proxy until SIGINT or SIGTERM, then frees everything and
 * returns 0.  Fails before serving (bind error, missing example files)
 * with a code and a message in err. */
int ferry_proxy_run(const ferry_proxy_config *c, char *err,
                    size_t errcap) FERRY_MUST_CHECK;

#endif
