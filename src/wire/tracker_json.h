/* Python-compatible JSON text output, shared by the tracker message codec.
 *
 * Internal to the wire layer (it exposes jansson types): TVM's peers were
 * written against Python's json.dumps, so every JSON text ferry sends to a
 * tracker peer is produced here in exactly that layout. */
#ifndef FERRY_WIRE_TRACKER_JSON_H
#define FERRY_WIRE_TRACKER_JSON_H

#include <jansson.h>

#include "base/buf.h"

/* Appends v as json.dumps(v) would print it: separators ", " and ": ",
 * non-ASCII and control characters as lower-case \uXXXX, '/' unescaped,
 * floats as Python's repr.  FERRY_EINVAL for text that is not UTF-8,
 * FERRY_ETOOBIG / FERRY_ENOMEM from the buffer. */
int ferry_tracker_json_dump(ferry_buf *out, const json_t *v) FERRY_MUST_CHECK;
/* A string literal of the n bytes at s, as json.dumps would write it. */
int ferry_tracker_json_string(ferry_buf *out, const char *s,
                              size_t n) FERRY_MUST_CHECK;
/* Python's repr() of a finite double ("1.0", "0.1", "1e+16"). */
void ferry_tracker_json_real(char out[40], double d);
/* Python's str() of a scalar (strings raw, None, True, False, numbers);
 * arrays and objects as JSON text.  For the query tool's address column. */
int ferry_tracker_json_str(ferry_buf *out, const json_t *v) FERRY_MUST_CHECK;

/* Parses a whole frame body (any JSON value; trailing garbage refused).
 * NULL on failure, with the reason in err.  jansson bounds the nesting
 * depth and refuses \u0000, so every string it yields is a C string. */
json_t *ferry_tracker_json_parse(const uint8_t *body, size_t len, char *err,
                                 size_t errcap);
/* Copies a JSON string (at most max bytes, else *rc = FERRY_ETOOBIG). */
char *ferry_tracker_json_strdup(const json_t *s, size_t max, int *rc);
/* Writes a message into err unless one is already there (first wins). */
void ferry_tracker_json_errf(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* tracker_farm.c: fills r from a "ferry_session" object; a malformed one
 * gives r->event = -1 and the reason in r->bad (never an error: the
 * tracker refuses the report, not the connection).  0 or FERRY_ENOMEM. */
#include "wire/tracker_msg.h"
int ferry_tracker_report_decode_json(const json_t *o, ferry_tracker_report *r);
/* The same for a "ferry_health" object (event FERRY_SESSION_HEALTH). */
int ferry_tracker_health_decode_json(const json_t *o, ferry_tracker_report *r);

#endif
