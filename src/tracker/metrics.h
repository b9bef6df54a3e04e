/* Per-key counters and histograms for Prometheus' /metrics (farm.md).
 * Pure data: the tracker feeds grants and ended sessions in, the HTTP
 * side prints them.  At most FERRY_METRICS_MAX_KEYS keys are tracked by
 * name; the others are summed under the key "_other", so that requests
 * for ever new keys cannot grow the table. */
#ifndef FERRY_TRACKER_METRICS_H
#define FERRY_TRACKER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "ferry/error.h"

#define FERRY_METRICS_MAX_KEYS 256
#define FERRY_METRICS_NBUCKETS 10 /* histogram buckets, +Inf not counted */

typedef struct ferry_metrics_hist {
  uint64_t buckets[FERRY_METRICS_NBUCKETS]; /* cumulative: <= le[i] */
  uint64_t count;
  double sum;
} ferry_metrics_hist;

typedef struct ferry_metrics_key {
  char key[96];
  uint64_t grants, expired, sessions, failed;
  ferry_metrics_hist wait;     /* seconds from REQUEST to grant */
  ferry_metrics_hist duration; /* seconds of a reported session */
} ferry_metrics_key;

typedef struct ferry_metrics {
  ferry_metrics_key keys[FERRY_METRICS_MAX_KEYS + 1]; /* last: "_other" */
  size_t nkeys;
} ferry_metrics;

/* Bucket upper bounds in seconds. */
extern const double ferry_metrics_le[FERRY_METRICS_NBUCKETS];

void ferry_metrics_init(ferry_metrics *m);
/* The entry of key (created if there is room, else "_other"). O(keys). */
ferry_metrics_key *ferry_metrics_for(ferry_metrics *m, const char *key);
void ferry_metrics_observe(ferry_metrics_hist *h, double v);
/* Appends the Prometheus text exposition of every key.  Label values are
 * escaped as the format wants (\\, \", \n). */
int ferry_metrics_format(const ferry_metrics *m, ferry_buf *out) FERRY_MUST_CHECK;

#endif
