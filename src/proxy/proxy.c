/* The proxy process: listeners, the periodic tick, signals, and a clean
 * shutdown in which every handle is closed and every byte freed. */
#include "proxy/proxy.h"

#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/net.h"
#include "proxy/proxy_internal.h"

#define PX_TICK_MS 200
#define PX_BACKLOG 128

void ferry_proxy_config_init(ferry_proxy_config *c) {
  memset(c, 0, sizeof *c);
  c->host = "127.0.0.1";
  c->port = 9090;
  c->port_end = 9199;
  c->web_port = -1;
  c->wait_s = 600;
  c->handshake_ms = 10000;
  c->web_root = ".";
  c->high_water = 1u << 20;
  c->max_conns = 4096;
  c->max_per_addr = 256;
  c->max_buffered = (size_t)64 << 20;
}

int64_t px_now(ferry_proxy *px) { return (int64_t)uv_now(&px->loop); }

static void tick_cb(uv_timer_t *t) {
  ferry_proxy *px = t->data;
  uv_update_time(&px->loop);
  px_conns_sweep(px);
  px_tracker_tick(px);
}

static void stop_all(ferry_proxy *px) {
  if (px->stopping)
    return;
  px->stopping = 1;
  uv_close((uv_handle_t *)&px->listener, NULL);
  if (px->has_web)
    uv_close((uv_handle_t *)&px->web_listener, NULL);
  uv_close((uv_handle_t *)&px->tick, NULL);
  uv_close((uv_handle_t *)&px->sigint, NULL);
  uv_close((uv_handle_t *)&px->sigterm, NULL);
  px_tracker_stop(px);
  for (pconn *c = px->conns; c; c = c->next)
    px_conn_close(c, 0);
}

static void signal_cb(uv_signal_t *s, int signum) {
  ferry_proxy *px = s->data;
  ferry_info("signal %d: stopping", signum);
  stop_all(px);
}

static void tcp_conn_cb(uv_stream_t *server, int status) {
  px_on_connection(server, status, 0);
}

static void web_conn_cb(uv_stream_t *server, int status) {
  px_on_connection(server, status, 1);
}

/* Binds with the shared port search of base/net (port_end exclusive, port
 * 0 = any) and hands the socket to libuv. */
static int listen_on(ferry_proxy *px, uv_tcp_t *h, int port, int port_end,
                     uv_connection_cb cb, int *bound, char *err, size_t errcap) {
  int fd = -1;
  int rc = ferry_tcp_listen(px->cfg->host, port, port_end, PX_BACKLOG, &fd, bound,
                            err, errcap);
  if (rc)
    return rc;
  uv_tcp_init(&px->loop, h);
  h->data = px;
  int u = uv_tcp_open(h, fd);
  if (u == 0)
    u = uv_listen((uv_stream_t *)h, PX_BACKLOG, cb);
  if (u) {
    snprintf(err, errcap, "cannot listen: %s", uv_strerror(u));
    uv_close((uv_handle_t *)h, NULL);
    return FERRY_ESYS;
  }
  return 0;
}

/* 4096 connections, and a spliced pair holds six descriptors besides its
 * two sockets: the soft limit (often 1024) would refuse them long before
 * memory matters.  Past the limit a pair falls back to the portable relay
 * and accept fails with a log line. */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int ferry_proxy_run(const ferry_proxy_config *cfg, char *err, size_t errcap) {
  raise_fd_limit();
  ferry_proxy px;
  memset(&px, 0, sizeof px);
  px.cfg = cfg;
  int rc = uv_loop_init(&px.loop);
  if (rc) {
    snprintf(err, errcap, "cannot start the event loop: %s", uv_strerror(rc));
    return FERRY_ESYS;
  }
  px.loop.data = &px;
  ferry_pairing_init(&px.table, cfg->tracker_host != NULL, cfg->max_conns,
                     (int64_t)(cfg->wait_s * 1000));
  /* Every open connection may come from its own address. */
  rc = ferry_addrcount_init(&px.peers, cfg->max_conns + 1);
  if (rc) {
    snprintf(err, errcap, "cannot make the address table: %s", ferry_strerror(rc));
    uv_loop_close(&px.loop);
    return rc;
  }
  /* Signals first: a supervisor may stop us as soon as the port is
   * logged. */
  uv_signal_init(&px.loop, &px.sigint);
  uv_signal_init(&px.loop, &px.sigterm);
  px.sigint.data = px.sigterm.data = &px;
  uv_signal_start(&px.sigint, signal_cb, SIGINT);
  uv_signal_start(&px.sigterm, signal_cb, SIGTERM);
  rc = px_web_load_routes(&px, err, errcap);
  if (rc == 0)
    rc = px_tracker_init(&px, err, errcap);
  int have_tcp = 0;
  if (rc == 0) {
    rc = listen_on(&px, &px.listener, cfg->port, cfg->port_end, tcp_conn_cb,
                   &px.port, err, errcap);
    have_tcp = rc == 0;
  }
  if (rc == 0 && cfg->web_port >= 0) {
    rc = listen_on(&px, &px.web_listener, cfg->web_port, cfg->web_port + 1,
                   web_conn_cb, &px.web_port, err, errcap);
    px.has_web = rc == 0;
  }
  if (rc) {
    if (have_tcp)
      uv_close((uv_handle_t *)&px.listener, NULL);
    uv_close((uv_handle_t *)&px.sigint, NULL);
    uv_close((uv_handle_t *)&px.sigterm, NULL);
    uv_run(&px.loop, UV_RUN_DEFAULT);
    uv_loop_close(&px.loop);
    px_web_free_routes(&px);
    ferry_pairing_close(&px.table);
    ferry_addrcount_close(&px.peers);
    return rc;
  }
  if (cfg->allow && cfg->allow->n) {
    char list[1024];
    ferry_allow_format(cfg->allow, list, sizeof list);
    ferry_info("accepting connections only from %s (--allow)", list);
  }
  ferry_notice("listening on %s:%d", cfg->host, px.port);
  if (px.has_web)
    ferry_notice("web listening on %s:%d", cfg->host, px.web_port);
  uv_timer_init(&px.loop, &px.tick);
  px.tick.data = &px;
  uv_timer_start(&px.tick, tick_cb, PX_TICK_MS, PX_TICK_MS);
  px_tracker_tick(&px);
  uv_run(&px.loop, UV_RUN_DEFAULT);
  /* Every handle is closed by now; the loop only returns when none is
   * active. */
  if (uv_loop_close(&px.loop) != 0)
    ferry_warn("event loop closed with handles still open");
  px_web_free_routes(&px);
  px_pool_free(&px);
  ferry_pairing_close(&px.table);
  ferry_addrcount_close(&px.peers);
  ferry_info("stopped");
  return 0;
}
