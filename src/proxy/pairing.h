/* The proxy's pairing table (tracker-proxy-server.md §6.3, §6.4): pure
 * logic, no sockets, no clock of its own (callers pass `now_ms`).
 *
 * Connections that finished their handshake and wait for a partner are
 * kept here, identified by an opaque `conn` pointer owned by the caller.
 *
 * Proxy mode (no tracker): servers and clients wait under their match key
 * (the key string minus its 7-byte role prefix, first token); the second
 * side to arrive pairs with the first; a second waiter of the same role and
 * key gets DUPLICATE; a waiter whose deadline passes is expired.
 *
 * Tracker mode: servers are parked under `<device key>:<random>` and
 * offered to the tracker; a client must name a parked server's current
 * match key (or its previous key for a short grace period after the key
 * was replaced, so that a client already on its way still gets through).
 * Unlike TVM v0.20 (defects B1/B2) a regenerated key is always
 * `<device key>:<random>` and the entry itself carries its current key, so a
 * departed server can never be offered again.
 *
 * Tracker mode bounds what is advertised, so that one link never passes
 * the limits of ferry's tracker (which refuses a peer's PUT past 1024 live
 * offers and an info object past 64 KiB) and the proxy never relies on
 * being refused (TVM's tracker has no limits):
 *   - at most FERRY_PAIRING_MAX_OFFERS servers are offered at a time;
 *   - at most FERRY_PAIRING_MAX_KEYSET device keys are listed in
 *     server:proxy[...], and the list stays under FERRY_PAIRING_MAX_INFO_KEY
 *     bytes once JSON-escaped;
 *   - the free offer slots go to the device key with the fewest offers,
 *     ties to the key seen first, so a flood of servers parked later
 *     cannot push out the devices parked earlier.
 * A server that cannot be offered waits (held) until a slot frees.
 *
 * Cost: lookups are linear in the number of waiting connections, which is
 * capped (`max`), and choosing the next offer is linear in waiting
 * connections plus distinct device keys. */
#ifndef FERRY_PROXY_PAIRING_H
#define FERRY_PROXY_PAIRING_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "ferry/error.h"

enum ferry_pair_role { FERRY_PAIR_CLIENT = 0, FERRY_PAIR_SERVER = 1 };

enum ferry_pair_action {
  FERRY_PAIR_PAIRED = 1,    /* *partner is the waiting side, now removed */
  FERRY_PAIR_PARKED = 2,    /* the connection waits in the table */
  FERRY_PAIR_DUPLICATE = 3, /* proxy mode: same role and key already wait */
  FERRY_PAIR_MISMATCH = 4,  /* tracker mode: no server with that key */
};

/* Tracker mode: one per distinct device key of the parked servers; kept
 * while it has servers or is listed in the key set, so that a device whose
 * server is in a session keeps its rank (first seen). */
typedef struct ferry_pair_device {
  struct ferry_pair_device *next; /* first seen first */
  char *key;                      /* owned, NUL-terminated */
  size_t len;
  size_t json_len;                /* bytes in the info key, escaped */
  size_t servers;                 /* parked servers with this device key */
  size_t offered;                 /* of them offered under their current key */
  int listed;                     /* in the key set of this tracker link */
} ferry_pair_device;

/* Why a parked server is not offered (ferry_pairing_take_held). */
enum ferry_pair_hold {
  FERRY_PAIR_HOLD_OFFERS = 1, /* FERRY_PAIRING_MAX_OFFERS offered already */
  FERRY_PAIR_HOLD_KEYS = 2,   /* FERRY_PAIRING_MAX_KEYSET keys listed */
  FERRY_PAIR_HOLD_INFO = 3,   /* its key would pass FERRY_PAIRING_MAX_INFO_KEY */
};

typedef struct ferry_pair_entry {
  struct ferry_pair_entry *next;
  int role;
  void *conn;
  char *match_key;      /* owned, NUL-terminated */
  size_t device_len;    /* match_key[0, device_len) is the device key */
  char *old_key;        /* tracker mode: replaced key, accepted until old_until_ms */
  int64_t old_until_ms;
  int64_t deadline_ms;  /* proxy mode: when the wait ends; INT64_MAX = never */
  int64_t alloc_ms;     /* tracker mode: when the tracker stopped listing it; -1 */
  int needs_put;        /* tracker mode: not yet offered under match_key */
  int in_poll;          /* tracker mode: offered before the last pending-keys poll */
  ferry_pair_device *dev; /* tracker mode, servers: its device key */
  int held_told;        /* tracker mode: its hold was reported */
} ferry_pair_entry;

/* Equal to ferry's tracker's FERRY_SCHED_MAX_OFFERS_PER_OWNER (live offers
 * of one peer); the proxy cannot include the tracker's headers. */
#define FERRY_PAIRING_MAX_OFFERS 1024
#define FERRY_PAIRING_MAX_KEYSET 1024      /* device keys in server:proxy[...] */
/* JSON-escaped bytes of the key list: the tracker's info object (at most
 * FERRY_TRACKER_MAX_INFO = 65536 bytes) also holds the quotes, the "key"
 * and "addr" names and the address, for which 1 KiB is kept. */
#define FERRY_PAIRING_MAX_INFO_KEY (65536 - 1024)

typedef struct ferry_pairing {
  int tracker_mode;
  ferry_pair_entry *head; /* oldest first */
  size_t count;
  size_t max;               /* ceiling on waiting connections */
  int64_t wait_ms;          /* proxy mode: how long a waiter waits */
  int64_t alloc_timeout_ms; /* tracker mode: handed out but unused -> new key */
  int64_t grace_ms;         /* tracker mode: how long a replaced key still works */
  size_t max_offers;        /* tracker mode: servers offered at a time */
  size_t noffers;           /* servers offered under their current key */
  ferry_pair_device *devices; /* first seen first */
  ferry_pair_device **keyset; /* listed on this tracker connection, in order */
  size_t nkeys;
  size_t keyset_bytes;      /* escaped bytes of the listed keys and commas */
  int keyset_changed;
  int stale_offer;          /* set by the last offer: see ferry_pairing_offer */
} ferry_pairing;

/* An empty table.  max: ceiling on waiting connections; wait_ms: proxy-mode
 * wait; the tracker-mode timings default to TVM's (5 s) and can be changed
 * in the struct.  Allocates nothing. */
void ferry_pairing_init(ferry_pairing *t, int tracker_mode, size_t max,
                        int64_t wait_ms);
/* Frees every entry (the conns themselves belong to the caller). */
void ferry_pairing_close(ferry_pairing *t);

/* Role from a handshake key string: "server:..." is a server, anything
 * else a client (as TVM decides). */
int ferry_pairing_role(const char *key, size_t len);
/* The match key inside a handshake key string: skip 7 bytes, take the first
 * whitespace-separated token.  Sets out and out_len (pointing into key);
 * FERRY_EPROTO when the string is shorter than 8 bytes or the token is empty. */
int ferry_pairing_match_key(const char *key, size_t len, const char **out,
                            size_t *out_len) FERRY_MUST_CHECK;

/* A connection finished its handshake.  Returns a ferry_pair_action, or
 * FERRY_ETOOBIG (table full), FERRY_ENOMEM, FERRY_ESYS (no randomness),
 * FERRY_EINVAL (tracker mode: a server's device key is not UTF-8 text
 * without NUL, so it could not be sent in the tracker's JSON): then
 * nothing changed.  On FERRY_PAIR_PAIRED *partner is the conn it
 * pairs with (its entry is gone); otherwise *partner is NULL.  In tracker
 * mode t->stale_offer is then 1 if the client came with the server's
 * previous key while its current key was already offered (an offer the
 * caller should withdraw). */
int ferry_pairing_offer(ferry_pairing *t, int role, const char *match_key,
                        size_t len, void *conn, int64_t now_ms,
                        void **partner) FERRY_MUST_CHECK;

/* The waiting entry of conn, or NULL. */
ferry_pair_entry *ferry_pairing_find(ferry_pairing *t, const void *conn);

/* Removes conn's entry when the connection goes away.  Returns 1 if it was
 * a server already offered to the tracker (its offer is now stale), 0 if
 * it was another waiter, -1 if conn was not waiting. */
int ferry_pairing_remove(ferry_pairing *t, const void *conn);

/* Proxy mode: removes up to cap waiters whose deadline is <= now and stores
 * their conns in out.  Returns how many. */
size_t ferry_pairing_expire(ferry_pairing *t, int64_t now_ms, void **out,
                            size_t cap);

/* ---- tracker mode ---------------------------------------------------- */

/* Next server that must be offered, within the limits above: copies its
 * device key and match key into the caller's buffers (NUL-terminated),
 * marks it offered, adds the device key to the key set.  Returns 1, 0 when
 * nothing is due or every due server is held, or FERRY_ETOOBIG if a buffer
 * is too small (entry left due). */
int ferry_pairing_next_put(ferry_pairing *t, char *device, size_t device_cap,
                           char *match, size_t match_cap) FERRY_MUST_CHECK;

/* A due server that cannot be offered now and was not reported yet: marks
 * it reported (once per connection), sets *why to a ferry_pair_hold and
 * returns its conn; NULL when there is none. */
void *ferry_pairing_take_held(ferry_pairing *t, int *why);

/* The tracker refused the PUT of match key mk (answered FAIL): its server
 * is due again (or nothing happens if it is gone or was re-keyed). */
void ferry_pairing_put_refused(ferry_pairing *t, const char *mk);

/* A GET_PENDING_MATCHKEYS request is about to be sent: the servers offered
 * so far are judged by its reply. */
void ferry_pairing_poll_sent(ferry_pairing *t);

/* The tracker's reply to GET_PENDING_MATCHKEYS: keys[0..n) still free.  A
 * judged server whose key is missing was handed to a client; if no client
 * came within alloc_timeout_ms its key is replaced and it is offered again.
 * Returns how many keys were replaced, or FERRY_ESYS/FERRY_ENOMEM. */
int ferry_pairing_pending_reply(ferry_pairing *t, const char *const *keys,
                                size_t n, int64_t now_ms) FERRY_MUST_CHECK;

/* The tracker connection was lost or is being replaced: every parked
 * server gets a fresh key (the old one stays valid for grace_ms) and must
 * be offered again; the key set starts empty.  Returns 0 or an error (then
 * the entries that failed keep their key but are still re-offered). */
int ferry_pairing_reoffer_all(ferry_pairing *t, int64_t now_ms) FERRY_MUST_CHECK;

/* 1 once after the key set grew (an UPDATE_INFO is due), then 0. */
int ferry_pairing_take_keyset_change(ferry_pairing *t);
/* Appends "server:proxy[K0,K1,...]" (device keys in first-offered order). */
int ferry_pairing_info_key(const ferry_pairing *t, ferry_buf *out) FERRY_MUST_CHECK;

#endif
