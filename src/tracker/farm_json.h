/* The farm's status as JSON text (farm_json.c). */
#ifndef FERRY_TRACKER_FARM_JSON_H
#define FERRY_TRACKER_FARM_JSON_H

#include "base/buf.h"
#include "tracker/farm.h"
#include "tracker/scheduler.h"

/* Tells about one device what the farm does not hold: its free offers
 * (the return value) and its server's "ip:port" (into server). */
typedef size_t (*ferry_farm_describe_cb)(void *ctx, const ferry_farm_device *d,
                                         char *server, size_t cap);

/* Appends {"devices": [...], "waiting_total": N, "waiting": [...],
 * "history": [...], counters} to b.  now_ms is the wall clock (since),
 * mono_ms the scheduler's clock (waits).  On error b is as before. */
int ferry_farm_encode_status(ferry_buf *b, const ferry_farm *f, const ferry_sched *s,
                             ferry_farm_describe_cb describe, void *ctx,
                             int64_t now_ms, int64_t mono_ms) FERRY_MUST_CHECK;

/* Appends one history record as a JSON object (no newline). */
int ferry_farm_encode_record(ferry_buf *b, const ferry_farm_record *r) FERRY_MUST_CHECK;

#endif
