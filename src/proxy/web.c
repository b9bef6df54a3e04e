/* The proxy's web side (tracker-proxy-server.md §6.6): HTTP on --web-port
 * (bound to --host, unlike TVM which bound all interfaces), the WebSocket
 * endpoint /ws carrying the same byte stream as the TCP port, and with
 * --example-rpc the files of TVM's browser RPC example. */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "proxy/proxy_internal.h"

#define PX_MAX_ROUTES 10000
#define PX_MAX_INDEX_PAGE (1u << 20)

int px_send_ws_control(pconn *c, int opcode, const void *p, size_t n) {
  uint8_t buf[FERRY_WS_MAX_HEADER + 125];
  if (n > 125)
    n = 125;
  if (opcode == FERRY_WS_CLOSE) {
    if (c->ws_close_sent)
      return 0;
    c->ws_close_sent = 1;
  }
  size_t hl = ferry_ws_frame_header(buf, opcode, n, NULL);
  memcpy(buf + hl, p, n);
  return px_send_raw(c, buf, hl + n);
}

int px_ws_feed(pconn *c, uint8_t *p, size_t n) {
  size_t total = 0, off = 0;
  while (off < n && !c->ws_close_rcvd) {
    size_t used;
    const uint8_t *data;
    size_t len;
    int ev = ferry_ws_decode(&c->wsd, p + off, n - off, &used, &data, &len);
    off += used;
    if (ev == FERRY_EAGAIN)
      break;
    if (ev < 0) {
      ferry_warn("%s: WebSocket: %s; closing", c->name,
                 c->wsd.why ? c->wsd.why : "bad frame");
      const char *code = ev == FERRY_ETOOBIG         ? "\x03\xf1" /* 1009 */
                         : ev == FERRY_EUNSUPPORTED ? "\x03\xeb" /* 1003 */
                                                     : "\x03\xea"; /* 1002 */
      (void)px_send_ws_control(c, FERRY_WS_CLOSE, code, 2);
      px_conn_close(c, 1);
      return -1;
    }
    switch (ev) {
    case FERRY_WS_EV_DATA:
      /* Compact payload to the front: it never moves forward. */
      memmove(p + total, data, len);
      total += len;
      break;
    case FERRY_WS_EV_PING:
      (void)px_send_ws_control(c, FERRY_WS_PONG, data, len);
      break;
    case FERRY_WS_EV_CLOSE:
      c->ws_close_rcvd = 1;
      (void)px_send_ws_control(c, FERRY_WS_CLOSE, data, len >= 2 ? 2 : 0);
      break;
    default:
      break;
    }
  }
  return (int)total;
}

static const char *content_type(const char *path) {
  const char *dot = strrchr(path, '.');
  const char *ext = dot ? dot + 1 : "";
  if (strcmp(ext, "js") == 0)
    return "text/javascript";
  if (strcmp(ext, "css") == 0)
    return "text/css";
  if (strcmp(ext, "wasm") == 0)
    return "application/wasm";
  if (strcmp(ext, "json") == 0)
    return "application/json";
  return "text/html; charset=UTF-8";
}

static int respond(pconn *c, int status, const char *reason, const char *body) {
  ferry_buf out;
  ferry_buf_init(&out, 4096);
  int rc = ferry_http_response(&out, status, reason, "text/plain", body, strlen(body));
  if (rc == 0)
    rc = px_send_raw(c, out.data, out.len);
  ferry_buf_close(&out);
  c->state = PC_FILE; /* ignore whatever else the client sends */
  px_conn_close(c, 1);
  return rc;
}

static const web_route *find_route(ferry_proxy *px, const char *path) {
  for (size_t i = 0; i < px->nroutes; i++)
    if (strcmp(px->routes[i].url, path) == 0)
      return &px->routes[i];
  return NULL;
}

/* The index page, with the example's WebSocket URL pointed at our port. */
static int serve_index(pconn *c, const web_route *r) {
  FILE *f = fopen(r->path, "rb");
  if (!f)
    return respond(c, 404, "Not Found", "not found\n");
  ferry_buf page, out;
  ferry_buf_init(&page, PX_MAX_INDEX_PAGE);
  ferry_buf_init(&out, PX_MAX_INDEX_PAGE + 4096);
  char chunk[8192];
  size_t got;
  int rc = 0;
  while (rc == 0 && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
    rc = ferry_buf_append(&page, chunk, got);
  fclose(f);
  if (rc == 0 && page.len) {
    static const char from[] = "ws://localhost:9190/ws";
    char to[64];
    snprintf(to, sizeof to, "ws://localhost:%d/ws", c->px->web_port);
    ferry_buf body;
    ferry_buf_init(&body, PX_MAX_INDEX_PAGE * 2);
    const char *s = (const char *)page.data, *end = s + page.len;
    while (rc == 0 && s < end) {
      const char *hit = memmem(s, (size_t)(end - s), from, sizeof from - 1);
      size_t plain = hit ? (size_t)(hit - s) : (size_t)(end - s);
      rc = ferry_buf_append(&body, s, plain);
      if (rc == 0 && hit)
        rc = ferry_buf_append(&body, to, strlen(to));
      s += plain + (hit ? sizeof from - 1 : 0);
    }
    if (rc == 0)
      rc = ferry_http_response(&out, 200, "OK", content_type(r->path), body.data,
                               body.len);
    ferry_buf_close(&body);
  } else if (rc == 0) {
    rc = ferry_http_response(&out, 200, "OK", content_type(r->path), NULL, 0);
  }
  ferry_buf_close(&page);
  if (rc) {
    ferry_buf_close(&out);
    return respond(c, 500, "Internal Server Error", "page too large\n");
  }
  rc = px_send_raw(c, out.data, out.len);
  ferry_buf_close(&out);
  c->state = PC_FILE;
  px_conn_close(c, 1);
  return rc;
}

void px_file_continue(pconn *c) {
  uint8_t buf[PX_READ_CHUNK];
  ssize_t n = read(c->file_fd, buf, sizeof buf);
  if (n > 0 && px_send_raw(c, buf, (size_t)n) == 0)
    return;
  close(c->file_fd);
  c->file_fd = -1;
  c->state = PC_HTTP; /* leave PC_FILE so that close flushes */
  px_conn_close(c, n == 0);
}

static int serve_file(pconn *c, const web_route *r) {
  int fd = open(r->path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0)
      close(fd);
    return respond(c, 404, "Not Found", "not found\n");
  }
  ferry_buf head;
  ferry_buf_init(&head, 4096);
  int rc = ferry_http_response(&head, 200, "OK", content_type(r->path), NULL,
                               (size_t)st.st_size);
  if (rc == 0)
    rc = px_send_raw(c, head.data, head.len);
  ferry_buf_close(&head);
  if (rc) {
    close(fd);
    px_conn_close(c, 0);
    return rc;
  }
  c->file_fd = fd;
  c->state = PC_FILE;
  uv_timer_stop(&c->timer);
  /* The next chunk is read when the head has been written. */
  return 0;
}

int px_web_handle_request(pconn *c, uint8_t *rest, size_t rest_len) {
  ferry_http_request *r = &c->http;
  ferry_proxy *px = c->px;
  if (strcmp(r->path, "/ws") == 0) {
    if (!ferry_http_is_ws_upgrade(r)) {
      ferry_info("%s: /ws without a WebSocket upgrade", c->name);
      return respond(c, 400, "Bad Request", "Can \"Upgrade\" only to \"WebSocket\".\n");
    }
    if (!ferry_http_origin_allowed(r)) {
      char origin[128], host[128];
      px_printable(origin, sizeof origin, r->origin, strlen(r->origin));
      px_printable(host, sizeof host, r->host, strlen(r->host));
      ferry_warn("%s: cross-origin WebSocket refused (Origin %s, Host %s)", c->name,
                 origin, host);
      return respond(c, 403, "Forbidden", "Cross origin websockets not allowed\n");
    }
    ferry_buf out;
    ferry_buf_init(&out, 4096);
    int rc = ferry_ws_upgrade_response(&out, r->ws_key);
    if (rc == 0)
      rc = px_send_raw(c, out.data, out.len);
    ferry_buf_close(&out);
    if (rc) {
      px_conn_close(c, 0);
      return rc;
    }
    c->ws = 1;
    c->state = PC_HANDSHAKE;
    memcpy(c->name, "ws:", 3); /* was "web" */
    uv_timer_start(&c->timer, c->timer.timer_cb, (uint64_t)px->cfg->handshake_ms, 0);
    ferry_debug("%s: WebSocket open", c->name);
    if (rest_len) {
      int got = px_ws_feed(c, rest, rest_len);
      if (got > 0)
        px_conn_feed_payload(c, rest, (size_t)got);
      if (got >= 0 && c->ws_close_rcvd)
        px_conn_close(c, 1);
    }
    return 0;
  }
  if (strcmp(r->method, "GET") != 0)
    return respond(c, 405, "Method Not Allowed", "method not allowed\n");
  const web_route *route = find_route(px, r->path);
  if (!route) {
    char path[128];
    px_printable(path, sizeof path, r->path, strlen(r->path));
    ferry_debug("%s: GET %s: not found", c->name, path);
    return respond(c, 404, "Not Found", "not found\n");
  }
  return route->index_page ? serve_index(c, route) : serve_file(c, route);
}

/* ---- --example-rpc routes ----------------------------------------------- */

static int add_route(ferry_proxy *px, const char *prefix, const char *path,
                     int index_page) {
  if (px->nroutes >= PX_MAX_ROUTES)
    return FERRY_ETOOBIG;
  web_route *grown = realloc(px->routes, (px->nroutes + 1) * sizeof *grown);
  if (!grown)
    return FERRY_ENOMEM;
  px->routes = grown;
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  /* "/" + prefix without its slashes + "/" + file name, as TVM normalises. */
  while (*prefix == '/')
    prefix++;
  size_t pl = strlen(prefix);
  while (pl && prefix[pl - 1] == '/')
    pl--;
  size_t n = 1 + pl + 1 + strlen(base) + 1;
  char *url = malloc(n);
  char *p = strdup(path);
  if (!url || !p) {
    free(url);
    free(p);
    return FERRY_ENOMEM;
  }
  snprintf(url, n, "/%.*s%s%s", (int)pl, prefix, pl ? "/" : "", base);
  web_route *r = &px->routes[px->nroutes++];
  r->url = url;
  r->path = p;
  r->index_page = index_page;
  return 0;
}

/* nftw() passes no user pointer: the walk's state lives here for the
 * duration of one walk at start-up, before the loop runs. */
static ferry_proxy *walk_px;
static const char *walk_base;
static int walk_rc;

static int walk_cb(const char *path, const struct stat *st, int type,
                   struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if (type != FTW_F)
    return 0;
  static const char *const allow[] = {"json", "bin", "js", "wasm",
                                      "html", "css", "model"};
  const char *dot = strrchr(path, '.');
  int ok = 0;
  for (size_t i = 0; dot && i < sizeof allow / sizeof allow[0]; i++)
    ok |= strcmp(dot + 1, allow[i]) == 0;
  if (!ok)
    return 0;
  /* Served under its directory relative to the base. */
  const char *rel = path + strlen(walk_base);
  while (*rel == '/')
    rel++;
  char dir[4096];
  const char *slash = strrchr(rel, '/');
  size_t dl = slash ? (size_t)(slash - rel) : 0;
  if (dl >= sizeof dir)
    return 0;
  memcpy(dir, rel, dl);
  dir[dl] = 0;
  walk_rc = add_route(walk_px, dir, path, 0);
  return walk_rc ? 1 : 0;
}

int px_web_load_routes(ferry_proxy *px, char *err, size_t errcap) {
  if (!px->cfg->example_rpc)
    return 0;
  const char *root = px->cfg->web_root;
  char index[4096], plugin[4096], bundle[4096], runtime[4096];
  snprintf(index, sizeof index, "%s/web/apps/browser/rpc_server.html", root);
  snprintf(plugin, sizeof plugin, "%s/web/apps/browser/rpc_plugin.html", root);
  snprintf(bundle, sizeof bundle, "%s/web/dist/tvmjs.bundle.js", root);
  snprintf(runtime, sizeof runtime, "%s/web/dist/wasm/tvmjs_runtime.wasi.js", root);
  const char *required[] = {bundle, runtime, index};
  for (size_t i = 0; i < 3; i++) {
    if (access(required[i], R_OK) != 0) {
      snprintf(err, errcap, "Cannot find %s (--example-rpc needs TVM's web "
               "build under --web-root)", required[i]);
      return FERRY_ENOTFOUND;
    }
  }
  int rc = add_route(px, "/", bundle, 0);
  if (!rc)
    rc = add_route(px, "/", runtime, 0);
  if (!rc)
    rc = add_route(px, "/", index, 1);
  if (!rc) {
    /* The index page is also the root. */
    rc = add_route(px, "/", index, 1);
    if (!rc) {
      free(px->routes[px->nroutes - 1].url);
      px->routes[px->nroutes - 1].url = strdup("/");
      if (!px->routes[px->nroutes - 1].url)
        rc = FERRY_ENOMEM;
    }
  }
  const char *bases[] = {"web/dist/www", "web/.ndarray_cache", "web/.tensor_cache"};
  for (size_t i = 0; i < 3 && !rc; i++) {
    char base[4096];
    snprintf(base, sizeof base, "%s/%s", root, bases[i]);
    struct stat st;
    if (stat(base, &st) != 0 || !S_ISDIR(st.st_mode))
      continue;
    walk_px = px;
    walk_base = base;
    walk_rc = 0;
    nftw(base, walk_cb, 16, FTW_PHYS);
    rc = walk_rc;
  }
  int have_plugin = 0;
  for (size_t i = 0; i < px->nroutes; i++) {
    size_t l = strlen(px->routes[i].path);
    have_plugin |= l >= 15 && strcmp(px->routes[i].path + l - 15, "rpc_plugin.html") == 0;
  }
  if (!rc && !have_plugin && access(plugin, R_OK) == 0)
    rc = add_route(px, "/", plugin, 0);
  if (rc) {
    snprintf(err, errcap, "cannot list the example files: %s", ferry_strerror(rc));
    return rc;
  }
  ferry_info("serving the browser RPC example from %s (%zu files)", root, px->nroutes);
  return 0;
}

void px_web_free_routes(ferry_proxy *px) {
  for (size_t i = 0; i < px->nroutes; i++) {
    free(px->routes[i].url);
    free(px->routes[i].path);
  }
  free(px->routes);
  px->routes = NULL;
  px->nroutes = 0;
}
