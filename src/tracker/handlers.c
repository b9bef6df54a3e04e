/* What each tracker request means (tracker-proxy-server.md §4.4): decode,
 * act on the scheduler or the connection's info, reply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/net.h"
#include "tracker/tracker_impl.h"

enum { WARNED_NOT_SERVER = 1, WARNED_OFFERS = 2, WARNED_INFO = 4, WARNED_USER = 8 };

/* The level to log a refusal at: WARN the first time this peer earns it,
 * then DEBUG, so that a peer pipelining refused requests cannot flood the
 * log. */
static enum ferry_log_level refusal(tconn *c, int bit) {
  int seen = c->warned & bit;
  c->warned |= bit;
  return seen ? FERRY_LOG_DEBUG : FERRY_LOG_WARN;
}

/* PUT and UPDATE_INFO make the tracker point clients at an address: with
 * --allow-servers only those addresses may send them. */
static int may_serve(tconn *c, const char *what) {
  if (c->may_serve)
    return 1;
  ferry_log(refusal(c, WARNED_NOT_SERVER), "%s from %s refused: not in --allow-servers",
            what, c->name);
  return 0;
}

/* Builds the reply in the tracker's scratch buffer and sends it. */
static int reply_status(tconn *c, int status) {
  ferry_buf *b = &c->t->scratch;
  b->len = 0;
  int rc = ferry_tracker_encode_status(b, status);
  return rc ? rc : ferry_tconn_send(c, b->data, b->len);
}

int ferry_tracker_grant_cb(void *ctx, const ferry_sched_grant *g) {
  ferry_tracker *t = ctx;
  tconn *req = ferry_tconn_of_owner(g->requester);
  tconn *srv = ferry_tconn_of_owner(g->server);
  if (req->closing)
    return -1;
  /* A separate buffer: grants happen while a handler may be using scratch. */
  ferry_buf b;
  ferry_buf_init(&b, 3 * FERRY_TRACKER_MAX_KEY + 64);
  int rc = ferry_tracker_encode_grant(&b, g->addr_json, g->port_json, g->matchkey);
  if (rc == 0)
    rc = ferry_tconn_send(req, b.data, b.len);
  ferry_buf_close(&b);
  if (rc) {
    ferry_info("grant of %s to %s failed: %s", g->matchkey, req->name, ferry_strerror(rc));
    return -1;
  }
  (void)t;
  ferry_tracker_farm_granted(srv, req, g);
  ferry_info("grant %s (%s, offered by %s) to %s after %.3fs", g->key, g->matchkey,
             srv->name, req->name, (double)g->waited_ms / 1000.0);
  return 0;
}

static int on_put(tconn *c, ferry_tracker_request *r) {
  /* Over one peer's offer limit the PUT is refused and the peer keeps what
   * it has: closing it would withdraw every offer it made, and a proxy
   * with many devices behind it would then offer none. */
  if (!may_serve(c, "PUT"))
    return reply_status(c, -1);
  if (c->owner.noffers >= FERRY_SCHED_MAX_OFFERS_PER_OWNER) {
    ferry_log(refusal(c, WARNED_OFFERS),
              "PUT %s from %s refused: the per-peer limit of %d offers is reached "
              "(FERRY_SCHED_MAX_OFFERS_PER_OWNER)",
              r->key, c->name, FERRY_SCHED_MAX_OFFERS_PER_OWNER);
    return reply_status(c, -1);
  }
  const char *addr = r->addr_json ? r->addr_json : c->ip_json;
  int held = ferry_tracker_farm_put(c, r->key, addr, r->port_json);
  int rc = ferry_sched_put_ex(&c->t->sched, &c->owner, r->key, r->matchkey, addr,
                              r->port_json, held);
  if (rc) {
    ferry_tconn_close(c, FERRY_LOG_WARN,
                      "PUT refused: %s (at most %d offers per peer, %u MiB in all)",
                      ferry_strerror(rc), FERRY_SCHED_MAX_OFFERS_PER_OWNER,
                      FERRY_TRACKER_MAX_STATE >> 20);
    return rc;
  }
  /* For the log, a plain string address without its JSON quotes. */
  size_t alen = strlen(addr);
  int bare = alen >= 2 && addr[0] == '"' && addr[alen - 1] == '"' && !strchr(addr, '\\');
  ferry_info("register %s (%s at %.*s:%s) from %s", r->key, r->matchkey,
             (int)(bare ? alen - 2 : alen), bare ? addr + 1 : addr, r->port_json, c->name);
  /* The reply goes after the scheduler ran, as TVM does. */
  return reply_status(c, 0);
}

static int on_request(tconn *c, ferry_tracker_request *r) {
  char user[FERRY_FARM_MAX_USER + 1];
  if (r->user && ferry_farm_user_clean(r->user, user) != 0)
    ferry_log(refusal(c, WARNED_USER),
              "REQUEST %s from %s: its user is not printable ASCII of at most %d bytes; "
              "shown as '?'", r->key, c->name, FERRY_FARM_MAX_USER);
  ferry_info("request %s priority %g from %s%s%s", r->key, r->priority, c->name,
             r->user && r->user[0] ? " for " : "", r->user && r->user[0] ? user : "");
  int64_t now = ferry_now_ms();
  int64_t deadline = r->deadline_s > 0 ? now + (int64_t)(r->deadline_s * 1000.0) : 0;
  int rc = ferry_sched_request_ex(&c->t->sched, &c->owner, r->key, r->priority,
                                  r->user ? user : "", now, deadline);
  if (rc)
    ferry_tconn_close(c, FERRY_LOG_WARN,
                      "REQUEST refused: %s (at most %d waiting per peer, %u MiB in all)",
                      ferry_strerror(rc), FERRY_SCHED_MAX_REQUESTS_PER_OWNER,
                      FERRY_TRACKER_MAX_STATE >> 20);
  return rc;
}

/* An UPDATE_INFO that would take the peer's info over its limit, or all
 * peers' info over theirs, is answered FAIL (-1) and changes nothing: the
 * peer keeps its connection, its offers and its old info. */
static int on_update_info(tconn *c, ferry_tracker_request *r) {
  ferry_tracker *t = c->t;
  if (!may_serve(c, "UPDATE_INFO"))
    return reply_status(c, -1);
  /* A ferry server's session report updates the farm, nothing else. */
  if (r->report.event)
    return ferry_tracker_farm_report(c, &r->report);
  /* Merge into a copy (the old entries in their order, then the update),
   * so that the tracker-wide budget can refuse it as well. */
  ferry_tracker_info *merged = ferry_tracker_info_new();
  int rc = merged ? 0 : FERRY_ENOMEM;
  if (rc == 0 && c->info)
    rc = ferry_tracker_info_merge(merged, c->info, c->ip);
  if (rc == 0)
    rc = ferry_tracker_info_merge(merged, r->info, c->ip);
  if (rc == FERRY_ETOOBIG) {
    ferry_tracker_info_free(merged);
    ferry_log(refusal(c, WARNED_INFO),
              "UPDATE_INFO from %s refused: the merged info would pass the per-peer "
              "limit of %d bytes (FERRY_TRACKER_MAX_INFO)",
              c->name, FERRY_TRACKER_MAX_INFO);
    return reply_status(c, -1);
  }
  if (rc) {
    ferry_tracker_info_free(merged);
    ferry_tconn_close(c, FERRY_LOG_WARN, "UPDATE_INFO failed: %s", ferry_strerror(rc));
    return rc;
  }
  size_t old = c->info ? ferry_tracker_info_size(c->info) : 0;
  size_t total = t->info_total - old + ferry_tracker_info_size(merged);
  if (total > FERRY_TRACKER_MAX_INFO_TOTAL) {
    ferry_tracker_info_free(merged);
    ferry_log(refusal(c, WARNED_INFO),
              "UPDATE_INFO from %s refused: all peers' info would pass %u MiB "
              "(FERRY_TRACKER_MAX_INFO_TOTAL)",
              c->name, FERRY_TRACKER_MAX_INFO_TOTAL >> 20);
    return reply_status(c, -1);
  }
  ferry_tracker_info_free(c->info);
  c->info = merged;
  t->info_total = total;
  const char *key = ferry_tracker_info_key(c->info);
  ferry_tracker_farm_info(c, key);
  ferry_info("info %s from %s", key ? key : "(no key)", c->name);
  return reply_status(c, 0);
}

static int on_summary(tconn *c) {
  ferry_tracker *t = c->t;
  size_t nq = ferry_sched_nqueues(&t->sched);
  ferry_tracker_queue_stat *qs = malloc((nq ? nq : 1) * sizeof *qs);
  const ferry_tracker_info **servers = malloc((t->nconns ? t->nconns : 1) * sizeof *servers);
  int rc = FERRY_ENOMEM;
  if (qs && servers) {
    ferry_sched_stats(&t->sched, qs);
    size_t ns = 0;
    for (tconn *p = t->conns; p; p = p->next) {
      const char *k = p->info ? ferry_tracker_info_key(p->info) : NULL;
      if (k && strncmp(k, "server", 6) == 0)
        servers[ns++] = p->info;
    }
    ferry_buf *b = &t->scratch;
    b->len = 0;
    rc = ferry_tracker_encode_summary(b, qs, nq, servers, ns);
    if (rc == 0)
      rc = ferry_tconn_send(c, b->data, b->len);
  }
  free(qs);
  free(servers);
  ferry_debug("summary for %s", c->name);
  if (rc)
    ferry_tconn_close(c, FERRY_LOG_WARN, "cannot send the summary: %s", ferry_strerror(rc));
  return rc;
}

static int on_pending(tconn *c) {
  const char *keys[FERRY_SCHED_MAX_OFFERS_PER_OWNER];
  size_t n = ferry_sched_pending(&c->owner, keys, FERRY_SCHED_MAX_OFFERS_PER_OWNER);
  ferry_buf *b = &c->t->scratch;
  b->len = 0;
  int rc = ferry_tracker_encode_pending(b, keys, n);
  if (rc == 0)
    rc = ferry_tconn_send(c, b->data, b->len);
  if (rc)
    ferry_tconn_close(c, FERRY_LOG_WARN, "cannot send pending keys: %s", ferry_strerror(rc));
  return rc;
}

static int on_stop(tconn *c, ferry_tracker_request *r) {
  if (strcmp(r->stop_key, c->t->stop_key) != 0) {
    ferry_warn("STOP with a wrong key from %s", c->name);
    return reply_status(c, -1);
  }
  int rc = reply_status(c, 0);
  ferry_notice("STOP from %s", c->name);
  /* Let the reply reach the sender, then stop everything. */
  ferry_tconn_close_after_flush(c);
  ferry_tracker_stop(c->t, "STOP request");
  return rc ? rc : FERRY_ECLOSED;
}

int ferry_tracker_handle(tconn *c, const uint8_t *body, size_t len) {
  ferry_tracker_request r;
  char err[200] = "";
  int rc = ferry_tracker_request_decode(body, len, &r, err, sizeof err);
  if (rc == FERRY_EUNSUPPORTED) {
    ferry_tconn_close(c, FERRY_LOG_WARN, "unknown tracker code %d", r.code);
    ferry_tracker_request_close(&r);
    return rc;
  }
  if (rc) {
    ferry_tconn_close(c, FERRY_LOG_WARN, "malformed message: %s", err);
    return rc;
  }
  switch (r.code) {
  case FERRY_TRACKER_PUT: rc = on_put(c, &r); break;
  case FERRY_TRACKER_REQUEST: rc = on_request(c, &r); break;
  case FERRY_TRACKER_UPDATE_INFO: rc = on_update_info(c, &r); break;
  case FERRY_TRACKER_SUMMARY: rc = on_summary(c); break;
  case FERRY_TRACKER_GET_PENDING_MATCHKEYS: rc = on_pending(c); break;
  case FERRY_TRACKER_PING: rc = reply_status(c, 0); break;
  case FERRY_TRACKER_STOP: rc = on_stop(c, &r); break;
  case FERRY_TRACKER_FARM_STATUS: rc = ferry_tracker_farm_status(c); break;
  case FERRY_TRACKER_FARM_DRAIN: rc = ferry_tracker_farm_drain(c, &r); break;
  default: rc = FERRY_EUNSUPPORTED; break;
  }
  ferry_tracker_request_close(&r);
  /* Do not keep the buffer of a rare huge reply (summary, pending keys). */
  if (c->t->scratch.cap > (1u << 20))
    ferry_buf_close(&c->t->scratch);
  if (rc && !c->closing)
    ferry_tconn_close(c, FERRY_LOG_INFO, "cannot reply: %s", ferry_strerror(rc));
  return rc;
}
