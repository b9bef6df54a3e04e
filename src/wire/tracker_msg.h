/* Tracker messages <-> C structs (tracker-proxy-server.md §4.4, §1.4).
 *
 * Pure codec: bytes in, structs out, and structs in, bytes out (appended to
 * a ferry_buf).  No I/O, no globals, no printing.  JSON is handled with
 * jansson inside this file's implementation only; values whose shape the
 * tracker must echo verbatim (a PUT's port and custom address, an
 * UPDATE_INFO object) cross this interface as compact JSON text or as the
 * opaque ferry_tracker_info.
 *
 * Everything encoded here is byte-identical to Python's json.dumps with its
 * defaults (separators ", " and ": ", ASCII-only with lower-case \uXXXX
 * escapes, '/' not escaped), because C++ and JVM peers search replies as raw
 * text and parse bare status replies with stoi/parseInt.
 *
 * Ownership: every decode function fills a caller-provided struct; strings
 * in it are owned by the struct and released by its _close function.  On
 * failure the struct is left empty (closing it is still allowed and does
 * nothing), and err (capacity errcap, may be NULL) receives the reason. */
#ifndef FERRY_WIRE_TRACKER_MSG_H
#define FERRY_WIRE_TRACKER_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "ferry/error.h"
#include "wire/constants.h"

/* Ceilings on what one message may carry.  The frame (1 MiB) bounds the
 * total; these bound each field so that stored state stays small. */
#define FERRY_TRACKER_MAX_KEY 4096    /* bytes of a key, match key, user */
#define FERRY_TRACKER_MAX_VALUE 4096  /* bytes of a port/address as JSON text */
#define FERRY_TRACKER_MAX_INFO 65536  /* bytes of a merged info object */
#define FERRY_TRACKER_MAX_LIST 65536  /* entries of a decoded reply list */

/* ---- the info object of UPDATE_INFO ------------------------------------ */

/* A JSON object describing one connection ({"key": ..., "addr": [...]}),
 * kept in first-insertion key order.  Opaque so that no jansson type leaves
 * the wire layer. */
typedef struct ferry_tracker_info ferry_tracker_info;

/* A new empty object ({}), or NULL when out of memory. */
ferry_tracker_info *ferry_tracker_info_new(void);
void ferry_tracker_info_free(ferry_tracker_info *info);
/* Merges the entries of `update` into `info` (existing keys keep their
 * place, new keys are appended), as TVM's dict.update does.  If the merged
 * "addr" is an array whose first element is null, that element becomes the
 * string peer_ip.  FERRY_ETOOBIG if the merged object would encode to more
 * than FERRY_TRACKER_MAX_INFO bytes; then `info` is unchanged. */
int ferry_tracker_info_merge(ferry_tracker_info *info,
                             const ferry_tracker_info *update,
                             const char *peer_ip) FERRY_MUST_CHECK;
/* The "key" entry if it is a string, else NULL.  Valid until the next
 * merge or free. */
const char *ferry_tracker_info_key(const ferry_tracker_info *info);
/* 1 if the object has a "key" entry of any type. */
int ferry_tracker_info_has_key(const ferry_tracker_info *info);
/* Bytes of the object's JSON text as of the last merge (0 for a new one),
 * for callers that budget memory across many objects. */
size_t ferry_tracker_info_size(const ferry_tracker_info *info);
/* Appends the object as JSON text (Python's json.dumps layout). */
int ferry_tracker_info_encode(const ferry_tracker_info *info,
                              ferry_buf *out) FERRY_MUST_CHECK;

/* ---- requests (what a tracker receives) -------------------------------- */

/* A ferry server's session report, sent as the "ferry_session" entry of an
 * UPDATE_INFO (a field TVM's tracker merges and otherwise ignores):
 * {"event": "start"|"end", "n": N, "matchkey": "...", "outcome": "..."}. */
enum { FERRY_SESSION_START = 1, FERRY_SESSION_END = 2, FERRY_SESSION_HEALTH = 3 };
/* FERRY_SESSION_HEALTH is the "ferry_health" entry instead:
 * {"failures": N, "reason": "..."} (N = 0: healthy again); only
 * health_failures and health are set. */
#define FERRY_TRACKER_MAX_OUTCOME 256 /* bytes of a report's outcome text */

typedef struct ferry_tracker_report {
  int event;          /* FERRY_SESSION_*; 0: no report in this message */
  long long n;        /* the server's session number, >= 1 */
  char *matchkey;     /* the match key the session's client presented */
  char *outcome;      /* end: "ok", "timeout", "crashed ..." (may be NULL) */
  int health_failures; /* consecutive failed self-tests (0: healthy) */
  char *health;       /* the last self-test failure, NULL if none */
  char bad[160];      /* non-empty: the report was malformed (why) */
} ferry_tracker_report;

void ferry_tracker_report_close(ferry_tracker_report *r);

typedef struct ferry_tracker_request {
  int code;        /* enum ferry_tracker_code of the request */
  char *key;       /* PUT, REQUEST: queue (device) key */
  char *matchkey;  /* PUT: the one-time match key */
  char *port_json; /* PUT: the port exactly as sent, as compact JSON text
                      ("9090" or "\"9090\"") */
  char *addr_json; /* PUT: custom address as JSON text, NULL if absent or
                      null (then the tracker uses the peer's IP) */
  char *user;      /* REQUEST: ignored by TVM; kept for logs */
  double priority; /* REQUEST: larger is served first */
  char *stop_key;  /* STOP, FARM_DRAIN: the secret key offered */
  double deadline_s; /* REQUEST: optional 5th element {"deadline": S}; 0 none */
  char *target;    /* FARM_DRAIN: a device key or "host:port" */
  int undrain;     /* FARM_DRAIN: 1 to offer the device again */
  ferry_tracker_report report; /* UPDATE_INFO: "ferry_session", removed
                                  from info (info may then be empty) */
  ferry_tracker_info *info; /* UPDATE_INFO: the object sent */
} ferry_tracker_request;

/* Decodes one request frame body.  Accepts the shapes of §4.4: PUT with 3
 * or 4 elements, REQUEST [4, key, user, priority] (user any type is tolerated
 * as TVM ignores it; priority a number), UPDATE_INFO [5, object],
 * PING [1], SUMMARY [6], GET_PENDING_MATCHKEYS [7], STOP [2, string].
 * Returns 0, FERRY_EPROTO (not JSON, not a non-empty list, wrong field
 * types or counts), FERRY_EUNSUPPORTED (unknown code; req->code holds it
 * when it was an integer), or FERRY_ETOOBIG (a field over its ceiling). */
int ferry_tracker_request_decode(const uint8_t *body, size_t len,
                                 ferry_tracker_request *req, char *err,
                                 size_t errcap) FERRY_MUST_CHECK;
void ferry_tracker_request_close(ferry_tracker_request *req);

/* ---- replies the tracker sends ------------------------------------------ */

/* "0" or "-1": bare JSON integer (C++/JVM parse it with stoi/parseInt). */
int ferry_tracker_encode_status(ferry_buf *out, int status) FERRY_MUST_CHECK;
/* [0, [addr, port, "matchkey"]] where addr_json and port_json are the JSON
 * texts stored from the PUT (spliced verbatim). */
int ferry_tracker_encode_grant(ferry_buf *out, const char *addr_json,
                               const char *port_json,
                               const char *matchkey) FERRY_MUST_CHECK;
/* ["k1", "k2", ...]: bare array, match keys unescaped where Python does not
 * escape (only '"', '\\', control and non-ASCII characters are). */
int ferry_tracker_encode_pending(ferry_buf *out, const char *const *matchkeys,
                                 size_t n) FERRY_MUST_CHECK;

typedef struct ferry_tracker_queue_stat {
  const char *key;
  size_t free;
  size_t pending;
} ferry_tracker_queue_stat;

/* [0, {"queue_info": {k: {"free": F, "pending": P}, ...},
 *      "server_info": [info, ...]}] */
int ferry_tracker_encode_summary(ferry_buf *out,
                                 const ferry_tracker_queue_stat *queues,
                                 size_t nqueues,
                                 const ferry_tracker_info *const *servers,
                                 size_t nservers) FERRY_MUST_CHECK;

/* A JSON string literal as Python writes it ("a:b" with quotes). */
int ferry_tracker_encode_string(ferry_buf *out, const char *s) FERRY_MUST_CHECK;

/* ---- requests that servers, proxies and clients send -------------------- */

/* [3, "key", [port, "matchkey"], null] or, with custom_addr, [..., "addr"]. */
int ferry_tracker_encode_put(ferry_buf *out, const char *key, int port,
                             const char *matchkey,
                             const char *custom_addr) FERRY_MUST_CHECK;
/* [5, {"key": "server:cpu", "addr": [null or "custom", port]}]; port as a
 * JSON number, or as a string ("9090") when port_as_string, as TVM's C++
 * server sends it.  info_key is the whole key ("server:cpu",
 * "server:proxy[K0,K1]"). */
int ferry_tracker_encode_update_info(ferry_buf *out, const char *info_key,
                                     const char *custom_addr, int port,
                                     int port_as_string) FERRY_MUST_CHECK;
/* The same with a "devices" field after "addr" (ferry's servers: the
 * devices they serve, e.g. "cpu, opencl:0 (NAME)"); NULL leaves it out.
 * TVM's tracker keeps unknown info fields and shows them in its summary. */
int ferry_tracker_encode_update_info_devices(ferry_buf *out, const char *info_key,
                                             const char *custom_addr, int port,
                                             int port_as_string,
                                             const char *devices) FERRY_MUST_CHECK;
/* [4, "key", "user", priority] */
int ferry_tracker_encode_request(ferry_buf *out, const char *key,
                                 const char *user,
                                 int priority) FERRY_MUST_CHECK;
/* [4, "key", "user", priority, {"deadline": S}] (S > 0; TVM's tracker
 * reads only the first four elements). */
int ferry_tracker_encode_request_deadline(ferry_buf *out, const char *key,
                                          const char *user, int priority,
                                          double deadline_s) FERRY_MUST_CHECK;
/* [5, {"ferry_session": {...}}]: a session report (see above).  outcome
 * may be NULL; health NULL means healthy. */
int ferry_tracker_encode_report(ferry_buf *out, int event, long long n,
                                const char *matchkey, const char *outcome,
                                int health_failures,
                                const char *health) FERRY_MUST_CHECK;
/* [5, {"ferry_health": {"failures": N, "reason": "..."}}]; reason may be
 * NULL. */
int ferry_tracker_encode_health(ferry_buf *out, int failures,
                                const char *reason) FERRY_MUST_CHECK;
/* [101, "target", "stop_key", undrain] */
int ferry_tracker_encode_drain(ferry_buf *out, const char *target,
                               const char *stop_key, int undrain) FERRY_MUST_CHECK;
/* [-1, "message"]: the reply to a REQUEST whose deadline passed. */
int ferry_tracker_encode_refusal(ferry_buf *out, const char *msg) FERRY_MUST_CHECK;
/* [code] for PING, SUMMARY, GET_PENDING_MATCHKEYS. */
int ferry_tracker_encode_code(ferry_buf *out, int code) FERRY_MUST_CHECK;
/* [2, "stop_key"] */
int ferry_tracker_encode_stop(ferry_buf *out,
                              const char *stop_key) FERRY_MUST_CHECK;

/* ---- replies that servers, proxies and clients receive ------------------ */

/* A bare integer status ("0", "-1").  FERRY_EPROTO if it is anything else. */
int ferry_tracker_decode_status(const uint8_t *body, size_t len, int *status,
                                char *err, size_t errcap) FERRY_MUST_CHECK;

typedef struct ferry_tracker_grant {
  char *host;     /* address to connect to (a string in the reply) */
  int port;       /* 0..65535; a numeric string is accepted too */
  char *matchkey; /* the key to present: "client:" + matchkey */
} ferry_tracker_grant;

/* [0, [host, port, matchkey]].  FERRY_EPROTO for any other shape (also a
 * non-string host, which no client can use), FERRY_ERANGE for a bad port. */
int ferry_tracker_decode_grant(const uint8_t *body, size_t len,
                               ferry_tracker_grant *g, char *err,
                               size_t errcap) FERRY_MUST_CHECK;
void ferry_tracker_grant_close(ferry_tracker_grant *g);

typedef struct ferry_tracker_strlist {
  char **items;
  size_t n;
} ferry_tracker_strlist;

/* A bare array of strings (GET_PENDING_MATCHKEYS reply). */
int ferry_tracker_decode_pending(const uint8_t *body, size_t len,
                                 ferry_tracker_strlist *list, char *err,
                                 size_t errcap) FERRY_MUST_CHECK;
/* 1 if s is one of the list's strings. */
int ferry_tracker_strlist_contains(const ferry_tracker_strlist *list,
                                   const char *s);
void ferry_tracker_strlist_close(ferry_tracker_strlist *list);

typedef struct ferry_tracker_summary_queue {
  char *key;
  long long free;
  long long pending;
} ferry_tracker_summary_queue;

typedef struct ferry_tracker_summary_server {
  char *key;  /* info["key"] as text (a non-string is rendered as JSON) */
  char *addr; /* info["addr"] elements joined with ':' as Python's str()
                 renders them ("127.0.0.1:9090"); "" when absent */
  char *devices; /* info["devices"] of a ferry server ("cpu, opencl:0
                    (NAME)"); NULL when absent or not a string */
} ferry_tracker_summary_server;

typedef struct ferry_tracker_summary {
  ferry_tracker_summary_queue *queues; /* in the order received */
  size_t nqueues;
  ferry_tracker_summary_server *servers; /* in the order received */
  size_t nservers;
} ferry_tracker_summary;

/* [0, {"queue_info": {...}, "server_info": [...]}] (SUMMARY reply). */
int ferry_tracker_decode_summary(const uint8_t *body, size_t len,
                                 ferry_tracker_summary *s, char *err,
                                 size_t errcap) FERRY_MUST_CHECK;
void ferry_tracker_summary_close(ferry_tracker_summary *s);

/* ---- ferry's FARM_STATUS reply (tracker_farm.c) ------------------------ */

typedef struct ferry_farm_status_device {
  char *key, *addr, *state; /* state: "free", "in use", "starting", ... */
  char *user, *host;        /* holder, NULL when not in use */
  char *health;             /* last self-test failure, NULL if none */
  double since;             /* unix seconds; 0 unknown */
  long long session;        /* reported session number; 0: none reported */
  double lease_left;        /* seconds; 0: no lease */
} ferry_farm_status_device;

typedef struct ferry_farm_status_wait {
  char *key, *user;
  long long position; /* 1: next */
  double wait;        /* seconds so far */
} ferry_farm_status_wait;

typedef struct ferry_farm_status {
  ferry_farm_status_device *devices;
  size_t ndevices;
  ferry_farm_status_wait *waiting;
  size_t nwaiting;
} ferry_farm_status;

/* The JSON object a ferry tracker answers [100] with.  Unknown entries
 * are ignored; at most FERRY_TRACKER_MAX_LIST devices and waiting
 * requests. */
int ferry_farm_status_decode(const uint8_t *body, size_t len, ferry_farm_status *st,
                             char *err, size_t errcap) FERRY_MUST_CHECK;
void ferry_farm_status_close(ferry_farm_status *st);

/* One ended session as the --state-dir history file keeps it (a line of
 * the status JSON's "history"). */
typedef struct ferry_farm_line {
  char key[128], user[65], host[48], outcome[96];
  long long session;
  double start, end; /* unix seconds */
} ferry_farm_line;

/* FERRY_EPROTO for anything but such an object with fields that fit. */
int ferry_farm_line_decode(const uint8_t *body, size_t len,
                           ferry_farm_line *out) FERRY_MUST_CHECK;

#endif
