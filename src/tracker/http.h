/* The tracker's optional HTTP side (--http-port; docs/internals/farm.md):
 * GET / (the dashboard), /api/status (JSON), /metrics (Prometheus).
 *
 * Served by libmicrohttpd, loaded with dlopen when --http-port is given:
 * Debian's static libmicrohttpd.a needs GnuTLS and p11-kit, which have no
 * static archives, and the multi-call binary (also the device server)
 * must need nothing but libc at run time.  A tracker host without
 * libmicrohttpd12 gets a clear error at start.
 *
 * libmicrohttpd runs its own thread; the tracker's loop publishes a
 * snapshot of the status JSON and the metrics text once a second (and
 * the thread only copies the latest under a mutex), so no tracker state is
 * shared between threads. */
#ifndef FERRY_TRACKER_HTTP_H
#define FERRY_TRACKER_HTTP_H

#include <stddef.h>

#include "ferry/error.h"

#include "base/allow.h"

#define FERRY_HTTP_MAX_CONNECTIONS 64     /* all clients together */
#define FERRY_HTTP_MAX_PER_IP 8           /* connections of one address */
#define FERRY_HTTP_MEMORY_LIMIT 16384     /* bytes of one request (headers) */
#define FERRY_HTTP_TIMEOUT_S 10           /* an idle connection is closed */
#define FERRY_HTTP_RATE 50                /* requests per second, all clients */
#define FERRY_HTTP_BURST 100              /* ... with bursts up to this */

typedef struct ferry_http ferry_http;

/* Binds host:port (0 = any) and starts serving connections from the
 * addresses allow lets in (the tracker's --allow; borrowed, must outlive
 * the server; NULL or empty: everyone).  On failure *out is NULL and err
 * says why (also "libmicrohttpd is not installed"). */
int ferry_http_start(ferry_http **out, const char *host, int port, const ferry_allow *allow,
                     char *err, size_t errcap) FERRY_MUST_CHECK;
int ferry_http_port(const ferry_http *h);
/* Replaces the published snapshot (copied). */
int ferry_http_publish(ferry_http *h, const char *status, size_t status_len,
                       const char *metrics, size_t metrics_len) FERRY_MUST_CHECK;
/* Requests refused so far (rate, size, method), for the metrics. */
unsigned long ferry_http_refused(ferry_http *h);
/* Stops the thread and frees everything (NULL allowed). */
void ferry_http_stop(ferry_http *h);

/* dashboard.c: the page, NUL-terminated. */
extern const char ferry_dashboard_html[];

#endif
