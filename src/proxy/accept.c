/* The proxy's accept path: a new connection passes --allow, the
 * connection limit and --max-per-address (in that order, each refusal
 * logged with the limit), then waits for its handshake (conn.c); and the
 * sweep of proxy-mode waiters whose wait is over. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "base/allow.h"
#include "base/log.h"
#include "proxy/proxy_internal.h"
#include "wire/constants.h"

/* "tcp IP:PORT" into out; the peer's address into ss (family AF_UNSPEC
 * when unknown) and its text into ip. */
static void peer_label(uv_tcp_t *t, char *out, size_t cap, int web,
                       struct sockaddr_storage *pss, char ip[64]) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  memset(&ss, 0, sizeof ss);
  strcpy(ip, "?");
  int port = 0;
  if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET) {
      uv_ip4_name((struct sockaddr_in *)&ss, ip, 64);
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, ip, 64);
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
  }
  snprintf(out, cap, "%s %s:%d", web ? "web" : "tcp", ip, port);
  *pss = ss;
}

void px_on_connection(uv_stream_t *server, int status, int web) {
  ferry_proxy *px = server->data;
  if (status < 0) {
    ferry_warn("accept failed: %s", uv_strerror(status));
    return;
  }
  pconn *c = calloc(1, sizeof *c);
  if (!c) {
    ferry_error("out of memory accepting a connection");
    return;
  }
  c->px = px;
  c->web = web;
  c->file_fd = -1;
  c->poll_fd = c->pipe_r = c->pipe_w = -1;
  c->state = web ? PC_HTTP : PC_HANDSHAKE;
  ferry_handshake_reader_init(&c->hs, 1, FERRY_HANDSHAKE_MAX_KEY);
  ferry_http_request_init(&c->http);
  ferry_ws_decoder_init(&c->wsd, 1, FERRY_WS_MAX_MESSAGE);
  uv_tcp_init(&px->loop, &c->tcp);
  uv_timer_init(&px->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->handles_open = 2;
  c->next = px->conns;
  if (px->conns)
    px->conns->prev = c;
  px->conns = c;
  px->nconns++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
    px_conn_close(c, 0);
    return;
  }
  struct sockaddr_storage ss;
  char ip[64];
  peer_label(&c->tcp, c->name, sizeof c->name, web, &ss, ip);
  const ferry_allow *allow = px->cfg->allow;
  if (allow && allow->n && !ferry_allow_match(allow, (struct sockaddr *)&ss)) {
    char list[256];
    ferry_allow_format(allow, list, sizeof list);
    ferry_warn("%s refused: not in --allow %s", c->name, list);
    px_conn_close(c, 0);
    return;
  }
  if (px->nconns > px->cfg->max_conns) {
    ferry_warn("%s refused: %zu connections are open (limit %zu)", c->name,
               px->nconns - 1, px->cfg->max_conns);
    px_conn_close(c, 0);
    return;
  }
  if (ferry_addrcount_key((struct sockaddr *)&ss, c->addr) == 0) {
    uint32_t held = ferry_addrcount_get(&px->peers, c->addr);
    if (held >= px->cfg->max_per_addr) {
      ferry_warn("%s refused: %u connections from %s wait or handshake already "
                 "(--max-per-address %zu)", c->name, (unsigned)held, ip,
                 px->cfg->max_per_addr);
      px_conn_close(c, 0);
      return;
    }
    /* Cannot fail: the table holds max_conns + 1 addresses. */
    c->counted = ferry_addrcount_add(&px->peers, c->addr) == 0;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  ferry_debug("%s connected", c->name);
  px_conn_start(c, web ? PX_HTTP_DEADLINE_MS : (uint64_t)px->cfg->handshake_ms);
}

/* Expires proxy-mode waiters (MISMATCH, as TVM after its 600 s). */
void px_conns_sweep(ferry_proxy *px) {
  void *out[64];
  size_t n;
  while ((n = ferry_pairing_expire(&px->table, px_now(px), out, 64)) > 0) {
    for (size_t i = 0; i < n; i++) {
      pconn *c = out[i];
      ferry_info("%s: timeout, no partner within %g s", c->name, px->cfg->wait_s);
      c->state = PC_HANDSHAKE; /* no longer in the table */
      px_conn_reject(c, FERRY_RPC_CODE_MISMATCH);
    }
  }
}
