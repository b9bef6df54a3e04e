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
} ferry_sched_grant;

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
/* Queues a request for `key` and runs the queue (it may be granted at
 * once).  FERRY_ETOOBIG over FERRY_SCHED_MAX_REQUESTS_PER_OWNER or
 * max_bytes. */
int ferry_sched_request(ferry_sched *s, ferry_sched_owner *o, const char *key,
                        double priority) FERRY_MUST_CHECK;

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
