/* The tracker's HTTP side on a dlopen'ed libmicrohttpd: see http.h. */
#include "tracker/http.h"

#ifndef FERRY_HAVE_MHD
/* Built without microhttpd.h (a cross build whose target lacks
 * libmicrohttpd-dev): --http-port says so. */
#include <stdio.h>
int ferry_http_start(ferry_http **out, const char *host, int port, const ferry_allow *allow,
                     char *err, size_t errcap) {
  (void)host, (void)port, (void)allow;
  *out = NULL;
  snprintf(err, errcap, "this ferry was built without the HTTP side (no microhttpd.h)");
  return FERRY_EUNSUPPORTED;
}
int ferry_http_port(const ferry_http *h) { (void)h; return 0; }
int ferry_http_publish(ferry_http *h, const char *s, size_t sl, const char *m, size_t ml) {
  (void)h, (void)s, (void)sl, (void)m, (void)ml;
  return 0;
}
unsigned long ferry_http_refused(ferry_http *h) { (void)h; return 0; }
void ferry_http_stop(ferry_http *h) { (void)h; }
#else

#include <arpa/inet.h>
#include <dlfcn.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/net.h"

/* The few entry points used, looked up once. */
typedef struct MHD_Daemon *(*start_fn)(unsigned int, uint16_t, MHD_AcceptPolicyCallback, void *,
                                       MHD_AccessHandlerCallback, void *, ...);
typedef struct mhd_api {
  void *lib;
  start_fn start;
  void (*stop)(struct MHD_Daemon *);
  struct MHD_Response *(*from_buffer)(size_t, void *, enum MHD_ResponseMemoryMode);
  enum MHD_Result (*add_header)(struct MHD_Response *, const char *, const char *);
  enum MHD_Result (*queue)(struct MHD_Connection *, unsigned int, struct MHD_Response *);
  void (*destroy)(struct MHD_Response *);
} mhd_api;

struct ferry_http {
  mhd_api api;
  const ferry_allow *allow;
  struct MHD_Daemon *d;
  int fd, port;
  pthread_mutex_t mu;
  char *status, *metrics;
  size_t status_len, metrics_len;
  /* Only the server's one thread touches these. */
  double tokens;
  int64_t tokens_ms;
  unsigned long refused, refused_unlogged;
  int64_t refused_logged_ms;
};

static int load(mhd_api *a, char *err, size_t errcap) {
  a->lib = dlopen("libmicrohttpd.so.12", RTLD_NOW | RTLD_LOCAL);
  if (!a->lib)
    a->lib = dlopen("libmicrohttpd.so", RTLD_NOW | RTLD_LOCAL);
  if (!a->lib) {
    snprintf(err, errcap, "--http-port needs libmicrohttpd (Debian: libmicrohttpd12): %s",
             dlerror());
    return FERRY_ENOTFOUND;
  }
  *(void **)&a->start = dlsym(a->lib, "MHD_start_daemon");
  *(void **)&a->stop = dlsym(a->lib, "MHD_stop_daemon");
  *(void **)&a->from_buffer = dlsym(a->lib, "MHD_create_response_from_buffer");
  *(void **)&a->add_header = dlsym(a->lib, "MHD_add_response_header");
  *(void **)&a->queue = dlsym(a->lib, "MHD_queue_response");
  *(void **)&a->destroy = dlsym(a->lib, "MHD_destroy_response");
  if (!a->start || !a->stop || !a->from_buffer || !a->add_header || !a->queue || !a->destroy) {
    snprintf(err, errcap, "libmicrohttpd lacks an entry point ferry needs");
    dlclose(a->lib);
    a->lib = NULL;
    return FERRY_ENOTFOUND;
  }
  return 0;
}

static enum MHD_Result reply(ferry_http *h, struct MHD_Connection *c, unsigned code,
                             const char *type, const void *body, size_t len) {
  struct MHD_Response *r = h->api.from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  if (!r)
    return MHD_NO;
  h->api.add_header(r, "Content-Type", type);
  h->api.add_header(r, "Cache-Control", "no-store");
  /* The page loads nothing from elsewhere; say so to the browser too. */
  h->api.add_header(r, "Content-Security-Policy",
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                    "connect-src 'self'; img-src 'self' data:");
  h->api.add_header(r, "X-Content-Type-Options", "nosniff");
  if (code == MHD_HTTP_TOO_MANY_REQUESTS)
    h->api.add_header(r, "Retry-After", "1");
  enum MHD_Result ok = h->api.queue(c, code, r);
  h->api.destroy(r);
  return ok;
}

static enum MHD_Result refuse(ferry_http *h, struct MHD_Connection *c, unsigned code,
                              const char *why) {
  __atomic_add_fetch(&h->refused, 1, __ATOMIC_RELAXED);
  /* At most one line a second, with a count of the rest. */
  int64_t now = ferry_now_ms();
  if (now - h->refused_logged_ms >= 1000) {
    ferry_warn("http: refused a request (%u: %s)%s", code, why,
               h->refused_unlogged ? " and others since the last line" : "");
    h->refused_logged_ms = now;
    h->refused_unlogged = 0;
  } else {
    h->refused_unlogged++;
  }
  char body[160];
  int n = snprintf(body, sizeof body, "ferry tracker: %s\n", why);
  return reply(h, c, code, "text/plain; charset=utf-8", body, (size_t)n);
}

/* A token bucket over all clients: FERRY_HTTP_RATE a second, bursts of
 * FERRY_HTTP_BURST. */
static int take_token(ferry_http *h) {
  int64_t now = ferry_now_ms();
  h->tokens += (double)(now - h->tokens_ms) * FERRY_HTTP_RATE / 1000.0;
  h->tokens_ms = now;
  if (h->tokens > FERRY_HTTP_BURST)
    h->tokens = FERRY_HTTP_BURST;
  if (h->tokens < 1)
    return 0;
  h->tokens -= 1;
  return 1;
}

static enum MHD_Result serve_snapshot(ferry_http *h, struct MHD_Connection *c, int metrics) {
  pthread_mutex_lock(&h->mu);
  const char *body = metrics ? h->metrics : h->status;
  size_t len = metrics ? h->metrics_len : h->status_len;
  enum MHD_Result r =
      body ? reply(h, c, MHD_HTTP_OK,
                   metrics ? "text/plain; version=0.0.4; charset=utf-8" : "application/json",
                   body, len)
           : reply(h, c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", "starting\n", 9);
  pthread_mutex_unlock(&h->mu);
  return r;
}

static enum MHD_Result handler_cb(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  ferry_http *h = cls;
  (void)version;
  (void)upload_data;
  (void)con_cls;
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return refuse(h, c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET is served");
  if (*upload_data_size)
    return refuse(h, c, MHD_HTTP_CONTENT_TOO_LARGE, "a GET carries no body");
  if (!take_token(h))
    return refuse(h, c, MHD_HTTP_TOO_MANY_REQUESTS, "too many requests (rate limit)");
  if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
    return reply(h, c, MHD_HTTP_OK, "text/html; charset=utf-8", ferry_dashboard_html,
                 strlen(ferry_dashboard_html));
  if (strcmp(url, "/api/status") == 0)
    return serve_snapshot(h, c, 0);
  if (strcmp(url, "/metrics") == 0)
    return serve_snapshot(h, c, 1);
  return reply(h, c, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", 10);
}

/* --allow on the HTTP side too: a stranger is refused at accept, before
 * libmicrohttpd reads a byte. */
static enum MHD_Result accept_cb(void *cls, const struct sockaddr *addr, socklen_t len) {
  ferry_http *h = cls;
  (void)len;
  if (h->allow == NULL || ferry_allow_match(h->allow, addr))
    return MHD_YES;
  __atomic_add_fetch(&h->refused, 1, __ATOMIC_RELAXED);
  /* The server's one thread, as in refuse(): one line a second at most. */
  int64_t now = ferry_now_ms();
  if (now - h->refused_logged_ms >= 1000) {
    char ip[INET6_ADDRSTRLEN] = "?";
    if (addr->sa_family == AF_INET)
      inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr, ip, sizeof ip);
    else if (addr->sa_family == AF_INET6)
      inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)addr)->sin6_addr, ip, sizeof ip);
    ferry_warn("http: refused a connection from %s: not in --allow%s", ip,
               h->refused_unlogged ? " (and others since the last line)" : "");
    h->refused_logged_ms = now;
    h->refused_unlogged = 0;
  } else {
    h->refused_unlogged++;
  }
  return MHD_NO;
}

int ferry_http_start(ferry_http **out, const char *host, int port, const ferry_allow *allow,
                     char *err, size_t errcap) {
  *out = NULL;
  ferry_http *h = calloc(1, sizeof *h);
  if (!h) {
    snprintf(err, errcap, "out of memory");
    return FERRY_ENOMEM;
  }
  int rc = load(&h->api, err, errcap);
  if (rc) {
    free(h);
    return rc;
  }
  rc = ferry_tcp_listen(host, port, port, 64, &h->fd, &h->port, err, errcap);
  if (rc) {
    dlclose(h->api.lib);
    free(h);
    return rc;
  }
  pthread_mutex_init(&h->mu, NULL);
  h->tokens = FERRY_HTTP_BURST;
  h->tokens_ms = ferry_now_ms();
  h->allow = allow;
  h->d = h->api.start(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, accept_cb, h, handler_cb,
                      h, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->fd,
                      MHD_OPTION_CONNECTION_LIMIT, (unsigned)FERRY_HTTP_MAX_CONNECTIONS,
                      MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)FERRY_HTTP_MAX_PER_IP,
                      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)FERRY_HTTP_MEMORY_LIMIT,
                      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)FERRY_HTTP_TIMEOUT_S,
                      MHD_OPTION_END);
  if (!h->d) {
    snprintf(err, errcap, "libmicrohttpd could not start");
    close(h->fd);
    pthread_mutex_destroy(&h->mu);
    dlclose(h->api.lib);
    free(h);
    return FERRY_ESYS;
  }
  *out = h;
  return 0;
}

int ferry_http_port(const ferry_http *h) { return h->port; }

int ferry_http_publish(ferry_http *h, const char *status, size_t status_len,
                       const char *metrics, size_t metrics_len) {
  char *s = malloc(status_len + 1), *m = malloc(metrics_len + 1);
  if (!s || !m) {
    free(s);
    free(m);
    return FERRY_ENOMEM;
  }
  memcpy(s, status, status_len);
  s[status_len] = 0;
  memcpy(m, metrics, metrics_len);
  m[metrics_len] = 0;
  pthread_mutex_lock(&h->mu);
  char *olds = h->status, *oldm = h->metrics;
  h->status = s, h->status_len = status_len;
  h->metrics = m, h->metrics_len = metrics_len;
  pthread_mutex_unlock(&h->mu);
  free(olds);
  free(oldm);
  return 0;
}

unsigned long ferry_http_refused(ferry_http *h) {
  return __atomic_load_n(&h->refused, __ATOMIC_RELAXED);
}

void ferry_http_stop(ferry_http *h) {
  if (!h)
    return;
  h->api.stop(h->d); /* joins its thread; the listening socket is ours */
  close(h->fd);
  pthread_mutex_destroy(&h->mu);
  free(h->status);
  free(h->metrics);
  /* libmicrohttpd stays loaded: unloading a library that started threads
   * buys nothing at exit and risks its atexit handlers. */
  free(h);
}

#endif /* FERRY_HAVE_MHD */
