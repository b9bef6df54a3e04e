/* Per-key metrics in Prometheus' text format: see metrics.h. */
#include "tracker/metrics.h"

#include <stdio.h>
#include <string.h>

const double ferry_metrics_le[FERRY_METRICS_NBUCKETS] = {0.01, 0.1, 0.5, 1,    5,
                                                         10,   30,  60,  300, 3600};

void ferry_metrics_init(ferry_metrics *m) {
  memset(m, 0, sizeof *m);
  snprintf(m->keys[FERRY_METRICS_MAX_KEYS].key, sizeof m->keys[0].key, "_other");
}

ferry_metrics_key *ferry_metrics_for(ferry_metrics *m, const char *key) {
  for (size_t i = 0; i < m->nkeys; i++)
    if (strcmp(m->keys[i].key, key) == 0)
      return &m->keys[i];
  if (m->nkeys == FERRY_METRICS_MAX_KEYS || strlen(key) >= sizeof m->keys[0].key)
    return &m->keys[FERRY_METRICS_MAX_KEYS];
  ferry_metrics_key *k = &m->keys[m->nkeys++];
  snprintf(k->key, sizeof k->key, "%s", key);
  return k;
}

void ferry_metrics_observe(ferry_metrics_hist *h, double v) {
  for (int i = 0; i < FERRY_METRICS_NBUCKETS; i++)
    if (v <= ferry_metrics_le[i])
      h->buckets[i]++;
  h->count++;
  h->sum += v;
}

/* A label value: backslash, quote and newline escaped. */
static int label(ferry_buf *out, const char *s) {
  int rc = 0;
  for (; *s && rc == 0; s++) {
    if (*s == '\\' || *s == '"')
      rc = ferry_buf_printf(out, "\\%c", *s);
    else if (*s == '\n')
      rc = ferry_buf_append(out, "\\n", 2);
    else
      rc = ferry_buf_append(out, s, 1);
  }
  return rc;
}

static int counter(ferry_buf *out, const char *name, const char *key, uint64_t v) {
  int rc = ferry_buf_printf(out, "%s{key=\"", name);
  if (rc == 0)
    rc = label(out, key);
  return rc ? rc : ferry_buf_printf(out, "\"} %llu\n", (unsigned long long)v);
}

static int hist(ferry_buf *out, const char *name, const char *key, const ferry_metrics_hist *h) {
  int rc = 0;
  for (int i = 0; i <= FERRY_METRICS_NBUCKETS && rc == 0; i++) {
    rc = ferry_buf_printf(out, "%s_bucket{key=\"", name);
    if (rc == 0)
      rc = label(out, key);
    if (rc == 0 && i < FERRY_METRICS_NBUCKETS)
      rc = ferry_buf_printf(out, "\",le=\"%g\"} %llu\n", ferry_metrics_le[i],
                            (unsigned long long)h->buckets[i]);
    else if (rc == 0)
      rc = ferry_buf_printf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)h->count);
  }
  if (rc == 0)
    rc = ferry_buf_printf(out, "%s_sum{key=\"", name);
  if (rc == 0)
    rc = label(out, key);
  if (rc == 0)
    rc = ferry_buf_printf(out, "\"} %.6f\n", h->sum);
  char cname[96];
  snprintf(cname, sizeof cname, "%s_count", name);
  return rc ? rc : counter(out, cname, key, h->count);
}

int ferry_metrics_format(const ferry_metrics *m, ferry_buf *out) {
  static const struct {
    const char *name, *help;
    size_t off;
  } counters[] = {
      {"ferry_tracker_grants_total", "devices handed out", offsetof(ferry_metrics_key, grants)},
      {"ferry_tracker_expired_total", "requests whose deadline passed",
       offsetof(ferry_metrics_key, expired)},
      {"ferry_tracker_sessions_total", "sessions reported ended",
       offsetof(ferry_metrics_key, sessions)},
      {"ferry_tracker_session_failures_total", "sessions that did not end ok",
       offsetof(ferry_metrics_key, failed)},
  };
  int rc = 0;
  size_t n = m->nkeys;
  const ferry_metrics_key *other = &m->keys[FERRY_METRICS_MAX_KEYS];
  int with_other = other->grants || other->expired || other->sessions;
  for (size_t c = 0; c < sizeof counters / sizeof counters[0] && rc == 0; c++) {
    rc = ferry_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", counters[c].name,
                          counters[c].help, counters[c].name);
    for (size_t i = 0; i < n + (size_t)with_other && rc == 0; i++) {
      const ferry_metrics_key *k = i < n ? &m->keys[i] : other;
      rc = counter(out, counters[c].name, k->key,
                   *(const uint64_t *)((const char *)k + counters[c].off));
    }
  }
  static const char *hists[2][2] = {
      {"ferry_tracker_wait_seconds", "time from REQUEST to grant"},
      {"ferry_tracker_session_seconds", "duration of reported sessions"}};
  for (int h = 0; h < 2 && rc == 0; h++) {
    rc = ferry_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", hists[h][0], hists[h][1],
                          hists[h][0]);
    for (size_t i = 0; i < n + (size_t)with_other && rc == 0; i++) {
      const ferry_metrics_key *k = i < n ? &m->keys[i] : other;
      rc = hist(out, hists[h][0], k->key, h == 0 ? &k->wait : &k->duration);
    }
  }
  return rc;
}
