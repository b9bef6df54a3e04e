/* The tracker's scheduler: per-key queues of free offers and waiting
 * requests (tracker-proxy-server.md §4.4-4.7).  Pure logic, no I/O.
 *
 * Each queue holds a FIFO of offers (oldest first) and a heap of requests
 * ordered by (-priority, sequence): the largest priority first, first come
 * first served within a priority.  Whenever both are non-empty the oldest
 * offer goes to the best request through the grant callback.
 *
 * Fixes over TVM v0.20 (§10.3 items 5-7): every offer remembers its queue
 * and owner, so a closing owner's offers are always withdrawn; a closing
 * owner's waiting requests are dropped at once; granted offers are freed;
 * empty queues are kept (TVM shows them in SUMMARY) only while there are
 * at most FERRY_SCHED_KEEP_EMPTY_QUEUES queues, so that requests for ever
 * new keys cannot grow the tracker without bound. */
#ifndef FERRY_TRACKER_SCHEDULER_H
#define FERRY_TRACKER_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/error.h"
#include "wire/tracker_msg.h"

#define FERRY_SCHED_MAX_OFFERS_PER_OWNER 1024   /* live offers of one peer */
#define FERRY_SCHED_MAX_REQUESTS_PER_OWNER 1024 /* waiting requests of one peer */
#define FERRY_SCHED_KEEP_EMPTY_QUEUES 1024

struct ferry_sched_offer;
struct ferry_sched_request;
struct ferry_sched_queue;

/* Intrusive doubly linked list. */
typedef struct ferry_sched_link {
  struct ferry_sched_link *prev, *next;
} ferry_sched_link;

/* The scheduler's view of one peer (a tracker connection).  Embed it in the
 * connection; init it before use and release it when the peer goes. */
typedef struct ferry_sched_owner {
  ferry_sched_link offers;   /* its offers still free, oldest first */
  ferry_sched_link requests; /* its requests still waiting */
  size_t noffers, nrequests;
} ferry_sched_owner;

/* What the grant callback sees; strings valid during the call only. */
typedef struct ferry_sched_grant {
  const char *key;       /* queue */
  const char *addr_json; /* address as JSON text (custom or peer IP) */
  const char *port_json; /* port as received */
  const char *matchkey;
  ferry_sched_owner *server;    /* who offered */
  ferry_sched_owner *requester; /* who asked */
  double priority;
  const char *user; /* what the REQUEST said ("" if nothing) */
  int64_t waited_ms; /* from the REQUEST to this grant */
} ferry_sched_grant;

/* What a waiting request looks like from outside (status pages). */
typedef struct ferry_sched_waiting {
  const char *key;
  const char *user;
  const ferry_sched_owner *owner;
  double priority;
  size_t position; /* 1: served next in its queue */
  int64_t since_ms; /* when it arrived (the caller's clock) */
  int64_t deadline_ms; /* 0: none */
} ferry_sched_waiting;

/* Called for a request whose deadline passed, just before it is dropped;
 * position is where it stood in its queue (1: next). */
typedef void (*ferry_sched_expire_cb)(void *ctx, const ferry_sched_waiting *w);

/* Delivers a grant (writes the REQUEST reply).  Return 0 if delivered;
 * non-zero if the requester cannot take it: the request is dropped and the
 * offer goes to the end of the free list, as in TVM.  The callback must
 * not call back into the scheduler. */
typedef int (*ferry_sched_grant_cb)(void *ctx, const ferry_sched_grant *g);

typedef struct ferry_sched {
  struct ferry_sched_queue **buckets; /* hash of queues by key */
  size_t nbuckets, nqueues;
  ferry_sched_link order; /* queues in creation order (SUMMARY) */
  uint64_t seq;           /* request arrival counter */
  ferry_sched_grant_cb grant_cb;
  void *ctx;
  uint64_t grants;  /* statistics */
  size_t bytes;     /* memory held by queues, offers and requests */
  size_t max_bytes; /* ceiling on bytes (0: none); set after init */
  int64_t now_ms;   /* the caller's clock as of its last call (waits) */
} ferry_sched;

void ferry_sched_init(ferry_sched *s, ferry_sched_grant_cb cb, void *ctx);
/* Frees every queue, offer and request.  Owners must not be used with this
 * scheduler afterwards (re-init them). */
void ferry_sched_close(ferry_sched *s);

void ferry_sched_owner_init(ferry_sched_owner *o);
/* Withdraws the owner's free offers and drops its waiting requests (the
 * peer closed).  The owner is empty afterwards. */
void ferry_sched_owner_release(ferry_sched *s, ferry_sched_owner *o);

/* Offers a resource under `key` (strings are copied; addr_json and
 * port_json are JSON texts echoed verbatim in the grant) and runs the
 * queue, which may grant it at once.  FERRY_ETOOBIG when the owner already
 * has FERRY_SCHED_MAX_OFFERS_PER_OWNER free offers or the scheduler would
 * hold more than max_bytes, FERRY_ENOMEM. */
int ferry_sched_put(ferry_sched *s, ferry_sched_owner *o, const char *key,
                    const char *matchkey, const char *addr_json,
                    const char *port_json) FERRY_MUST_CHECK;
/* The same; held = 1 offers it held (see ferry_sched_hold). */
int ferry_sched_put_ex(ferry_sched *s, ferry_sched_owner *o, const char *key,
                       const char *matchkey, const char *addr_json,
                       const char *port_json, int held) FERRY_MUST_CHECK;
/* Queues a request for `key` and runs the queue (it may be granted at
 * once).  FERRY_ETOOBIG over FERRY_SCHED_MAX_REQUESTS_PER_OWNER or
 * max_bytes. */
int ferry_sched_request(ferry_sched *s, ferry_sched_owner *o, const char *key,
                        double priority) FERRY_MUST_CHECK;
/* The same, remembering who asked (user, copied, at most
 * FERRY_TRACKER_MAX_KEY bytes), when (now_ms, the caller's clock) and
 * until when it may wait (deadline_ms, 0 = forever). */
int ferry_sched_request_ex(ferry_sched *s, ferry_sched_owner *o, const char *key,
                           double priority, const char *user, int64_t now_ms,
                           int64_t deadline_ms) FERRY_MUST_CHECK;
/* Drops every request whose deadline is <= now_ms, calling cb for each
 * first (cb must not call back into the scheduler).  O(all requests). */
void ferry_sched_expire(ferry_sched *s, int64_t now_ms, ferry_sched_expire_cb cb,
                        void *ctx);
/* Waiting requests, queue by queue in creation order and in the order they
 * will be served inside a queue: fills out[0..cap) and returns how many
 * there are in all (may exceed cap).  Strings valid until the next change.
 * O(n log n) per queue (its heap is copied and sorted). */
size_t ferry_sched_waiting_list(const ferry_sched *s, ferry_sched_waiting *out,
                                size_t cap);
/* Free offers of this owner under key.  O(offers of the owner). */
size_t ferry_sched_owner_free(const ferry_sched_owner *o, const char *key);
/* Marks the owner's offers under key as held (not granted) or not; a
 * held offer stays listed as pending for its server and counted as free
 * in SUMMARY, so that a drained or offline device keeps its place and
 * TVM's tools see no change.  Releasing runs the queue. */
void ferry_sched_hold(ferry_sched *s, ferry_sched_owner *o, const char *key, int held);

/* The owner's match keys still on offer, each once, oldest first: fills
 * out[0..cap) and returns the count (at most noffers).  Pointers valid
 * until the scheduler is next changed. */
size_t ferry_sched_pending(const ferry_sched_owner *o, const char **out,
                           size_t cap);

/* Number of queues, and their statistics in creation order (out must have
 * room for ferry_sched_nqueues entries; keys valid until the next change). */
size_t ferry_sched_nqueues(const ferry_sched *s);
void ferry_sched_stats(const ferry_sched *s, ferry_tracker_queue_stat *out);

#endif
