/* The farm's status as JSON text (FARM_STATUS replies; the HTTP side's
 * /api/status when built): devices with state and holder, waiting
 * requests with their position and wait, the last sessions.  Strings go
 * through the wire layer's Python-compatible string encoder, so that no
 * peer-chosen byte can break the JSON. */
#include <stdio.h>
#include <string.h>

#include "tracker/farm_json.h"
#include "wire/tracker_msg.h"

#define WAITING_SHOWN 1024 /* waiting requests listed; the count is exact */

static int str(ferry_buf *b, const char *name, const char *v, int comma) {
  int rc = ferry_buf_printf(b, "%s\"%s\": ", comma ? ", " : "", name);
  return rc ? rc : ferry_tracker_encode_string(b, v);
}

static int device(ferry_buf *b, const ferry_farm_device *d, size_t nfree,
                  const char *server, int64_t now_ms) {
  ferry_farm_state st = ferry_farm_state_of(d, nfree);
  int rc = ferry_buf_append(b, "{", 1);
  if (rc == 0)
    rc = str(b, "key", d->key, 0);
  if (rc == 0)
    rc = str(b, "addr", d->addr, 1);
  if (rc == 0)
    rc = str(b, "server", server, 1);
  if (rc == 0)
    rc = str(b, "state", ferry_farm_state_name(st), 1);
  if (rc == 0)
    rc = ferry_buf_printf(b, ", \"free\": %zu, \"sessions\": %llu", nfree,
                          (unsigned long long)d->sessions);
  if (rc == 0 && st == FERRY_FARM_IN_USE) {
    rc = str(b, "user", d->user, 1);
    if (rc == 0)
      rc = str(b, "host", d->host, 1);
    if (rc == 0)
      rc = ferry_buf_printf(b, ", \"since\": %.3f, \"for\": %.3f, \"session\": %lld",
                            (double)d->since_ms / 1000.0,
                            (double)(now_ms - d->since_ms) / 1000.0, d->session);
    if (rc == 0 && d->lease_end_ms)
      rc = ferry_buf_printf(b, ", \"lease_left\": %.3f",
                            (double)(d->lease_end_ms - now_ms) / 1000.0);
  }
  if (rc == 0 && d->health_failures) {
    rc = ferry_buf_printf(b, ", \"health_failures\": %d", d->health_failures);
    if (rc == 0)
      rc = str(b, "health", d->health, 1);
  }
  return rc ? rc : ferry_buf_append(b, "}", 1);
}

int ferry_farm_encode_status(ferry_buf *b, const ferry_farm *f, const ferry_sched *s,
                             ferry_farm_describe_cb describe, void *ctx,
                             int64_t now_ms, int64_t mono_ms) {
  size_t mark = b->len;
  int rc = ferry_buf_append(b, "{\"devices\": [", 13);
  for (const ferry_farm_device *d = f->head; rc == 0 && d; d = d->next) {
    char server[64] = "";
    size_t nfree = describe(ctx, d, server, sizeof server);
    if (d != f->head)
      rc = ferry_buf_append(b, ", ", 2);
    if (rc == 0)
      rc = device(b, d, nfree, server, now_ms);
  }
  static ferry_sched_waiting w[WAITING_SHOWN]; /* one thread: the loop's */
  size_t nw = rc ? 0 : ferry_sched_waiting_list(s, w, WAITING_SHOWN);
  if (rc == 0)
    rc = ferry_buf_printf(b, "], \"waiting_total\": %zu, \"waiting\": [", nw);
  for (size_t i = 0; rc == 0 && i < nw && i < WAITING_SHOWN; i++) {
    rc = ferry_buf_append(b, i ? ", {" : "{", i ? 3 : 1);
    if (rc == 0)
      rc = str(b, "key", w[i].key, 0);
    if (rc == 0)
      rc = str(b, "user", w[i].user, 1);
    if (rc == 0)
      rc = ferry_buf_printf(b, ", \"position\": %zu, \"priority\": %g, \"wait\": %.3f",
                            w[i].position, w[i].priority,
                            (double)(mono_ms - w[i].since_ms) / 1000.0);
    if (rc == 0 && w[i].deadline_ms)
      rc = ferry_buf_printf(b, ", \"deadline_left\": %.3f",
                            (double)(w[i].deadline_ms - mono_ms) / 1000.0);
    if (rc == 0)
      rc = ferry_buf_append(b, "}", 1);
  }
  if (rc == 0)
    rc = ferry_buf_append(b, "], \"history\": [", 15);
  for (size_t i = 0; rc == 0 && i < f->nhistory; i++) {
    if (i)
      rc = ferry_buf_append(b, ", ", 2);
    if (rc == 0)
      rc = ferry_farm_encode_record(b, ferry_farm_history_at(f, i));
  }
  if (rc == 0)
    rc = ferry_buf_printf(b, "], \"grants\": %llu, \"sessions_started\": %llu, "
                             "\"sessions_ended\": %llu, \"reports_refused\": %llu}",
                          (unsigned long long)s->grants,
                          (unsigned long long)f->sessions_started,
                          (unsigned long long)f->sessions_ended,
                          (unsigned long long)f->reports_refused);
  if (rc)
    b->len = mark;
  return rc;
}

int ferry_farm_encode_record(ferry_buf *b, const ferry_farm_record *r) {
  size_t mark = b->len;
  int rc = ferry_buf_append(b, "{", 1);
  if (rc == 0)
    rc = str(b, "key", r->key, 0);
  if (rc == 0)
    rc = str(b, "user", r->user, 1);
  if (rc == 0)
    rc = str(b, "host", r->host, 1);
  if (rc == 0)
    rc = ferry_buf_printf(b, ", \"session\": %lld, \"start\": %.3f, \"end\": %.3f",
                          r->session, (double)r->start_ms / 1000.0, (double)r->end_ms / 1000.0);
  if (rc == 0)
    rc = str(b, "outcome", r->outcome, 1);
  if (rc == 0)
    rc = ferry_buf_append(b, "}", 1);
  if (rc)
    b->len = mark;
  return rc;
}
