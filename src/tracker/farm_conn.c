/* The tracker's farm requests (docs/internals/farm.md): session reports,
 * FARM_STATUS, DRAIN and request deadlines, between the connections
 * (tracker_impl.h) and the pure farm (farm.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/net.h"
#include "tracker/farm_json.h"
#include "tracker/tracker_impl.h"

int64_t ferry_tracker_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int reply_status(tconn *c, int status) {
  ferry_buf *b = &c->t->scratch;
  b->len = 0;
  int rc = ferry_tracker_encode_status(b, status);
  return rc ? rc : ferry_tconn_send(c, b->data, b->len);
}

/* "ip:port" of an offer's address texts, without JSON quotes. */
static void bare_addr(const char *addr_json, const char *port_json, char *out, size_t cap) {
  size_t alen = strlen(addr_json);
  int q = alen >= 2 && addr_json[0] == '"' && addr_json[alen - 1] == '"';
  size_t plen = strlen(port_json);
  int pq = plen >= 2 && port_json[0] == '"' && port_json[plen - 1] == '"';
  snprintf(out, cap, "%.*s:%.*s", (int)(q ? alen - 2 : alen), q ? addr_json + 1 : addr_json,
           (int)(pq ? plen - 2 : plen), pq ? port_json + 1 : port_json);
}

int ferry_tracker_farm_put(tconn *c, const char *key, const char *addr_json,
                           const char *port_json) {
  ferry_farm_device *d = ferry_farm_device_get(&c->t->farm, c, key);
  if (!d)
    return 0; /* past the device ceiling: offered, just not in the table */
  ferry_farm_offered(d);
  bare_addr(addr_json, port_json, d->addr, sizeof d->addr);
  return d->drained || d->health_failures > 0;
}

void ferry_tracker_farm_info(tconn *c, const char *info_key) {
  /* "server:KEY" names one device; a proxy's "server:proxy[K0,K1]" is
   * left to its PUTs (one device per key). */
  if (!info_key || strncmp(info_key, "server:", 7) != 0 ||
      strncmp(info_key + 7, "proxy[", 6) == 0 || !info_key[7])
    return;
  (void)ferry_farm_device_get(&c->t->farm, c, info_key + 7);
}

void ferry_tracker_farm_granted(tconn *srv, tconn *req, const ferry_sched_grant *g) {
  ferry_farm_device *d = ferry_farm_device_get(&srv->t->farm, srv, g->key);
  char user[FERRY_FARM_MAX_USER + 1];
  if (ferry_farm_user_clean(g->user, user) != 0)
    strcpy(user, "?");
  ferry_metrics_key *m = ferry_metrics_for(&srv->t->metrics, g->key);
  m->grants++;
  ferry_metrics_observe(&m->wait, (double)g->waited_ms / 1000.0);
  if (d && ferry_farm_granted(d, g->matchkey, user, req->ip, ferry_tracker_wall_ms()) != 0)
    ferry_warn("farm: out of memory recording the grant of %s", g->key);
}

int ferry_tracker_farm_report(tconn *c, const ferry_tracker_report *r) {
  ferry_tracker *t = c->t;
  if (r->event < 0) {
    ferry_warn("session report from %s refused: %s", c->name, r->bad);
    t->farm.reports_refused++;
    return reply_status(c, -1);
  }
  if (r->event == FERRY_SESSION_HEALTH) {
    /* Every device of this server: offline while failures > 0. */
    int n = 0;
    for (ferry_farm_device *d = t->farm.head; d; d = d->next) {
      if (d->owner != c)
        continue;
      d->health_failures = r->health_failures;
      snprintf(d->health, sizeof d->health, "%s", r->health ? r->health : "");
      ferry_sched_hold(&t->sched, &c->owner, d->key, d->drained || d->health_failures > 0);
      n++;
    }
    if (r->health_failures)
      ferry_warn("%s is offline (%d failed self-tests: %s)", c->name, r->health_failures,
                 r->health ? r->health : "no reason given");
    else
      ferry_notice("%s passed its self-test again", c->name);
    return reply_status(c, n ? 0 : -1);
  }
  char err[160] = "";
  double lease = 0;
  int rc = ferry_farm_report(&t->farm, c, r->event, r->n, r->matchkey, r->outcome,
                             ferry_tracker_wall_ms(), &lease, err, sizeof err);
  if (rc) {
    ferry_warn("session report from %s refused: session %lld: %s", c->name, r->n, err);
    return reply_status(c, -1);
  }
  ferry_farm_device *d = t->farm.head;
  while (d && !(d->owner == c && d->matchkey && strcmp(d->matchkey, r->matchkey) == 0))
    d = d->next;
  if (d) {
    d->health_failures = r->health_failures;
    snprintf(d->health, sizeof d->health, "%s", r->health ? r->health : "");
  }
  if (r->event == FERRY_SESSION_END && d && t->farm.nhistory) {
    const ferry_farm_record *h = ferry_farm_history_at(&t->farm, t->farm.nhistory - 1);
    ferry_metrics_key *m = ferry_metrics_for(&t->metrics, d->key);
    m->sessions++;
    m->failed += !r->outcome || strcmp(r->outcome, "ok") != 0;
    ferry_metrics_observe(&m->duration, (double)(h->end_ms - h->start_ms) / 1000.0);
    ferry_history_append(&t->history, h);
  }
  if (r->event == FERRY_SESSION_START)
    ferry_info("session %lld on %s (%s) started by %s@%s%s", r->n, d ? d->key : "?",
               c->name, d && d->user[0] ? d->user : "?", d ? d->host : "?",
               lease > 0 ? " (leased)" : "");
  else
    ferry_info("session %lld on %s (%s) ended: %s", r->n, d ? d->key : "?", c->name,
               r->outcome ? r->outcome : "ended");
  /* The reply carries the lease in whole seconds (0: none): TVM's
   * tracker answers 0 to the same message, so a ferry server behind it
   * simply has no lease. */
  return reply_status(c, lease > 0 ? (int)ceil(lease) : 0);
}

static size_t describe_cb(void *ctx, const ferry_farm_device *d, char *server, size_t cap) {
  (void)ctx;
  const tconn *c = d->owner;
  snprintf(server, cap, "%s", c->name);
  return ferry_sched_owner_free(&c->owner, d->key);
}

int ferry_tracker_farm_status_json(ferry_tracker *t, ferry_buf *b) {
  return ferry_farm_encode_status(b, &t->farm, &t->sched, describe_cb, t,
                                  ferry_tracker_wall_ms(), ferry_now_ms());
}

int ferry_tracker_farm_status(tconn *c) {
  ferry_buf *b = &c->t->scratch;
  b->len = 0;
  int rc = ferry_tracker_farm_status_json(c->t, b);
  if (rc == 0)
    rc = ferry_tconn_send(c, b->data, b->len);
  if (rc)
    ferry_tconn_close(c, FERRY_LOG_WARN, "cannot send the farm status: %s", ferry_strerror(rc));
  return rc;
}

int ferry_tracker_farm_drain(tconn *c, const ferry_tracker_request *r) {
  ferry_tracker *t = c->t;
  /* Draining is the operator's: it takes the stop key, which only whoever
   * started the tracker knows (--stop-key). */
  if (strcmp(r->stop_key, t->stop_key) != 0) {
    ferry_warn("DRAIN %s from %s refused: wrong key", r->target, c->name);
    return reply_status(c, -1);
  }
  int n = 0;
  for (ferry_farm_device *d = t->farm.head; d; d = d->next) {
    const tconn *o = d->owner;
    if (strcmp(d->key, r->target) != 0 && strcmp(d->addr, r->target) != 0 &&
        strcmp(o->name, r->target) != 0)
      continue;
    d->drained = !r->undrain;
    ferry_sched_hold(&t->sched, (ferry_sched_owner *)&o->owner, d->key, d->drained);
    n++;
  }
  ferry_notice("%s %s from %s: %d device%s", r->undrain ? "UNDRAIN" : "DRAIN", r->target,
               c->name, n, n == 1 ? "" : "s");
  return reply_status(c, n > 0 ? n : -1);
}

static void expire_cb(void *ctx, const ferry_sched_waiting *w) {
  ferry_tracker *t = ctx;
  ferry_metrics_for(&t->metrics, w->key)->expired++;
  tconn *c = ferry_tconn_of_owner((ferry_sched_owner *)w->owner);
  char msg[256];
  snprintf(msg, sizeof msg,
           "no '%.100s' device came within the deadline of %.1f s "
           "(position %zu in its queue)",
           w->key, (double)(w->deadline_ms - w->since_ms) / 1000.0, w->position);
  ferry_info("request %s from %s expired at position %zu", w->key, c->name, w->position);
  ferry_buf b;
  ferry_buf_init(&b, 512);
  if (ferry_tracker_encode_refusal(&b, msg) == 0)
    (void)ferry_tconn_send(c, b.data, b.len);
  ferry_buf_close(&b);
}

void ferry_tracker_farm_tick(ferry_tracker *t, int64_t now_ms) {
  ferry_sched_expire(&t->sched, now_ms, expire_cb, t);
}

void ferry_tracker_http_publish(ferry_tracker *t) {
  ferry_buf status, metrics;
  ferry_buf_init(&status, FERRY_TRACKER_MAX_REPLY);
  ferry_buf_init(&metrics, 16u << 20);
  int rc = ferry_tracker_farm_status_json(t, &status);
  if (rc == 0)
    rc = ferry_metrics_format(&t->metrics, &metrics);
  if (rc == 0)
    rc = ferry_buf_printf(&metrics,
                          "# HELP ferry_tracker_waiting requests waiting now\n"
                          "# TYPE ferry_tracker_waiting gauge\nferry_tracker_waiting %zu\n"
                          "# HELP ferry_tracker_devices devices known now\n"
                          "# TYPE ferry_tracker_devices gauge\nferry_tracker_devices %zu\n"
                          "# HELP ferry_tracker_reports_refused_total bad session reports\n"
                          "# TYPE ferry_tracker_reports_refused_total counter\n"
                          "ferry_tracker_reports_refused_total %llu\n"
                          "# HELP ferry_tracker_http_refused_total HTTP requests refused\n"
                          "# TYPE ferry_tracker_http_refused_total counter\n"
                          "ferry_tracker_http_refused_total %lu\n",
                          ferry_sched_waiting_list(&t->sched, NULL, 0), t->farm.ndevices,
                          (unsigned long long)t->farm.reports_refused,
                          ferry_http_refused(t->http));
  if (rc == 0)
    rc = ferry_http_publish(t->http, (const char *)status.data, status.len,
                            (const char *)metrics.data, metrics.len);
  if (rc)
    ferry_warn("http: cannot publish the status: %s", ferry_strerror(rc));
  ferry_buf_close(&status);
  ferry_buf_close(&metrics);
}
