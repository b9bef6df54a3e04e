/* Tracker scheduler: queues by key, offers FIFO, requests in a heap. */
#include "tracker/scheduler.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

typedef struct ferry_sched_queue {
  struct ferry_sched_queue *hnext; /* hash chain */
  ferry_sched_link order;          /* creation order */
  uint64_t hash;
  ferry_sched_link free; /* offers, oldest first */
  size_t nfree;
  struct ferry_sched_request **heap;
  size_t nheap, capheap;
  char key[]; /* NUL-terminated */
} queue;

typedef struct ferry_sched_offer {
  ferry_sched_link qlink; /* in queue->free */
  ferry_sched_link olink; /* in owner->offers */
  queue *q;
  ferry_sched_owner *owner;
  size_t size; /* bytes allocated, for the budget */
  int held;    /* drained or offline: never granted */
  const char *addr_json, *port_json, *matchkey; /* point into text[] */
  char text[];
} offer;

typedef struct ferry_sched_request {
  ferry_sched_link olink; /* in owner->requests */
  queue *q;
  ferry_sched_owner *owner;
  double priority;
  uint64_t seq;
  size_t hidx; /* position in q->heap */
  int64_t since_ms, deadline_ms;
  char user[]; /* NUL-terminated */
} request;

/* ---- lists -------------------------------------------------------------- */

static void list_init(ferry_sched_link *l) { l->prev = l->next = l; }
static int list_empty(const ferry_sched_link *l) { return l->next == l; }
static void list_push_back(ferry_sched_link *l, ferry_sched_link *n) {
  n->prev = l->prev;
  n->next = l;
  l->prev->next = n;
  l->prev = n;
}
static void list_remove(ferry_sched_link *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = n;
}

/* ---- the request heap --------------------------------------------------- */

/* a before b: larger priority first, then earlier arrival (TVM orders its
 * heap by (-priority, count)). */
static int req_before(const request *a, const request *b) {
  if (a->priority != b->priority)
    return a->priority > b->priority;
  return a->seq < b->seq;
}

static void heap_set(queue *q, size_t i, request *r) {
  q->heap[i] = r;
  r->hidx = i;
}

static void sift_up(queue *q, size_t i) {
  request *r = q->heap[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!req_before(r, q->heap[p]))
      break;
    heap_set(q, i, q->heap[p]);
    i = p;
  }
  heap_set(q, i, r);
}

static void sift_down(queue *q, size_t i) {
  request *r = q->heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= q->nheap)
      break;
    if (c + 1 < q->nheap && req_before(q->heap[c + 1], q->heap[c]))
      c++;
    if (!req_before(q->heap[c], r))
      break;
    heap_set(q, i, q->heap[c]);
    i = c;
  }
  heap_set(q, i, r);
}

/* Removes the request at index i, keeping the heap ordered.  O(log n). */
static void heap_remove(queue *q, size_t i) {
  request *last = q->heap[--q->nheap];
  if (i == q->nheap)
    return;
  heap_set(q, i, last);
  if (i > 0 && req_before(last, q->heap[(i - 1) / 2]))
    sift_up(q, i);
  else
    sift_down(q, i);
}

/* ---- queues by key ------------------------------------------------------ */

static uint64_t hash_key(const char *k) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *k; k++)
    h = (h ^ (unsigned char)*k) * 1099511628211ull;
  return h;
}

static queue *find_queue(const ferry_sched *s, const char *key, uint64_t h) {
  if (!s->nbuckets)
    return NULL;
  for (queue *q = s->buckets[h & (s->nbuckets - 1)]; q; q = q->hnext)
    if (q->hash == h && strcmp(q->key, key) == 0)
      return q;
  return NULL;
}

static int grow_buckets(ferry_sched *s) {
  size_t n = s->nbuckets ? s->nbuckets * 2 : 64;
  queue **b = calloc(n, sizeof *b);
  if (!b)
    return FERRY_ENOMEM;
  for (size_t i = 0; i < s->nbuckets; i++) {
    queue *q = s->buckets[i];
    while (q) {
      queue *next = q->hnext;
      q->hnext = b[q->hash & (n - 1)];
      b[q->hash & (n - 1)] = q;
      q = next;
    }
  }
  free(s->buckets);
  s->buckets = b;
  s->nbuckets = n;
  return 0;
}

/* Bytes a new queue for key would take (its heap grows separately). */
static size_t queue_cost(const char *key) { return sizeof(queue) + strlen(key) + 1; }

/* 0 if `more` bytes (plus a new queue for key, if it has none yet) fit in
 * the scheduler's budget. */
static int budget(const ferry_sched *s, const char *key, size_t more) {
  if (!s->max_bytes)
    return 0;
  if (!find_queue(s, key, hash_key(key)))
    more += queue_cost(key);
  return s->bytes + more > s->max_bytes ? FERRY_ETOOBIG : 0;
}

static queue *get_queue(ferry_sched *s, const char *key, int *rc) {
  uint64_t h = hash_key(key);
  queue *q = find_queue(s, key, h);
  if (q)
    return q;
  if (s->nqueues >= s->nbuckets && (*rc = grow_buckets(s)) != 0)
    return NULL;
  size_t klen = strlen(key);
  q = calloc(1, sizeof *q + klen + 1);
  if (!q) {
    *rc = FERRY_ENOMEM;
    return NULL;
  }
  memcpy(q->key, key, klen + 1);
  q->hash = h;
  list_init(&q->free);
  list_push_back(&s->order, &q->order);
  q->hnext = s->buckets[h & (s->nbuckets - 1)];
  s->buckets[h & (s->nbuckets - 1)] = q;
  s->nqueues++;
  s->bytes += queue_cost(key);
  return q;
}

static void free_queue(ferry_sched *s, queue *q) {
  queue **pp = &s->buckets[q->hash & (s->nbuckets - 1)];
  while (*pp != q)
    pp = &(*pp)->hnext;
  *pp = q->hnext;
  list_remove(&q->order);
  s->bytes -= queue_cost(q->key) + q->capheap * sizeof *q->heap;
  free(q->heap);
  free(q);
  s->nqueues--;
}

/* Empty queues stay visible in SUMMARY as in TVM, but only up to a
 * ceiling: past it, an empty queue is forgotten. */
static void maybe_prune(ferry_sched *s, queue *q) {
  if (q->nfree == 0 && q->nheap == 0 && s->nqueues > FERRY_SCHED_KEEP_EMPTY_QUEUES)
    free_queue(s, q);
}

/* ---- offers and requests ------------------------------------------------ */

static void free_offer(ferry_sched *s, offer *o) {
  s->bytes -= o->size;
  list_remove(&o->qlink);
  list_remove(&o->olink);
  o->q->nfree--;
  o->owner->noffers--;
  free(o);
}

static void free_request(ferry_sched *s, request *r) {
  s->bytes -= sizeof *r + strlen(r->user) + 1;
  heap_remove(r->q, r->hidx);
  list_remove(&r->olink);
  r->owner->nrequests--;
  free(r);
}

/* The oldest offer of q that is not held, or NULL.  O(held offers). */
static offer *first_grantable(queue *q) {
  for (ferry_sched_link *l = q->free.next; l != &q->free; l = l->next) {
    offer *o = ferry_container_of(l, offer, qlink);
    if (!o->held)
      return o;
  }
  return NULL;
}

/* Matches free offers with waiting requests until one side runs out. */
static void run_queue(ferry_sched *s, queue *q) {
  offer *o;
  while (q->nheap > 0 && (o = first_grantable(q)) != NULL) {
    request *r = q->heap[0];
    ferry_sched_grant g = {q->key, o->addr_json, o->port_json, o->matchkey,
                           o->owner, r->owner, r->priority, r->user,
                           s->now_ms - r->since_ms};
    int delivered = s->grant_cb(s->ctx, &g) == 0;
    free_request(s, r);
    if (delivered) {
      free_offer(s, o);
      s->grants++;
    } else {
      /* TVM puts an undeliverable offer at the end of the free list. */
      list_remove(&o->qlink);
      list_push_back(&q->free, &o->qlink);
    }
  }
  maybe_prune(s, q);
}

int ferry_sched_put(ferry_sched *s, ferry_sched_owner *ow, const char *key,
                    const char *matchkey, const char *addr_json,
                    const char *port_json) {
  return ferry_sched_put_ex(s, ow, key, matchkey, addr_json, port_json, 0);
}

int ferry_sched_put_ex(ferry_sched *s, ferry_sched_owner *ow, const char *key,
                       const char *matchkey, const char *addr_json,
                       const char *port_json, int held) {
  if (ow->noffers >= FERRY_SCHED_MAX_OFFERS_PER_OWNER)
    return FERRY_ETOOBIG;
  size_t la = strlen(addr_json) + 1, lp = strlen(port_json) + 1,
         lm = strlen(matchkey) + 1;
  size_t size = sizeof(offer) + la + lp + lm;
  int rc = budget(s, key, size);
  if (rc)
    return rc;
  offer *o = malloc(size);
  if (!o)
    return FERRY_ENOMEM;
  queue *q = get_queue(s, key, &rc);
  if (!q) {
    free(o);
    return rc;
  }
  memcpy(o->text, addr_json, la);
  memcpy(o->text + la, port_json, lp);
  memcpy(o->text + la + lp, matchkey, lm);
  o->addr_json = o->text;
  o->port_json = o->text + la;
  o->matchkey = o->text + la + lp;
  o->q = q;
  o->owner = ow;
  o->size = size;
  o->held = held;
  s->bytes += size;
  list_push_back(&q->free, &o->qlink);
  list_push_back(&ow->offers, &o->olink);
  q->nfree++;
  ow->noffers++;
  run_queue(s, q);
  return 0;
}

int ferry_sched_request(ferry_sched *s, ferry_sched_owner *ow, const char *key,
                        double priority) {
  return ferry_sched_request_ex(s, ow, key, priority, "", s->now_ms, 0);
}

int ferry_sched_request_ex(ferry_sched *s, ferry_sched_owner *ow, const char *key,
                           double priority, const char *user, int64_t now_ms,
                           int64_t deadline_ms) {
  if (ow->nrequests >= FERRY_SCHED_MAX_REQUESTS_PER_OWNER)
    return FERRY_ETOOBIG;
  size_t ulen = strnlen(user ? user : "", FERRY_TRACKER_MAX_KEY);
  /* The heap may double: count its growth too (a pointer per slot). */
  int rc = budget(s, key, sizeof(request) + ulen + 1 + 2 * sizeof(request *));
  if (rc)
    return rc;
  s->now_ms = now_ms;
  request *r = malloc(sizeof *r + ulen + 1);
  if (!r)
    return FERRY_ENOMEM;
  queue *q = get_queue(s, key, &rc);
  if (!q) {
    free(r);
    return rc;
  }
  /* Grow the heap first so that inserting cannot fail half-way. */
  if (q->nheap == q->capheap) {
    size_t cap = q->capheap ? q->capheap * 2 : 4;
    request **h = realloc(q->heap, cap * sizeof *h);
    if (!h) {
      free(r);
      maybe_prune(s, q);
      return FERRY_ENOMEM;
    }
    s->bytes += (cap - q->capheap) * sizeof *h;
    q->heap = h;
    q->capheap = cap;
  }
  r->q = q;
  r->owner = ow;
  r->priority = priority;
  r->seq = s->seq++;
  r->since_ms = now_ms;
  r->deadline_ms = deadline_ms;
  memcpy(r->user, user ? user : "", ulen);
  r->user[ulen] = 0;
  s->bytes += sizeof *r + ulen + 1;
  list_push_back(&ow->requests, &r->olink);
  ow->nrequests++;
  q->heap[q->nheap] = r;
  r->hidx = q->nheap++;
  sift_up(q, r->hidx);
  run_queue(s, q);
  return 0;
}

/* ---- owners ------------------------------------------------------------- */

void ferry_sched_owner_init(ferry_sched_owner *o) {
  list_init(&o->offers);
  list_init(&o->requests);
  o->noffers = o->nrequests = 0;
}

void ferry_sched_owner_release(ferry_sched *s, ferry_sched_owner *ow) {
  /* Neither withdrawing offers nor dropping requests can enable a grant,
   * so no queue needs to run; emptied queues may be pruned. */
  while (!list_empty(&ow->offers)) {
    offer *o = ferry_container_of(ow->offers.next, offer, olink);
    queue *q = o->q;
    free_offer(s, o);
    maybe_prune(s, q);
  }
  while (!list_empty(&ow->requests)) {
    request *r = ferry_container_of(ow->requests.next, request, olink);
    queue *q = r->q;
    free_request(s, r);
    maybe_prune(s, q);
  }
}

size_t ferry_sched_pending(const ferry_sched_owner *ow, const char **out,
                           size_t cap) {
  size_t n = 0;
  for (const ferry_sched_link *l = ow->offers.next; l != &ow->offers && n < cap;
       l = l->next) {
    const offer *o = ferry_container_of(l, offer, olink);
    /* TVM keeps a set: a match key offered twice (the JVM server does
     * that) is listed once.  O(n^2) over at most 1024 offers. */
    size_t i = 0;
    while (i < n && strcmp(out[i], o->matchkey) != 0)
      i++;
    if (i == n)
      out[n++] = o->matchkey;
  }
  return n;
}

/* ---- whole scheduler ---------------------------------------------------- */

void ferry_sched_init(ferry_sched *s, ferry_sched_grant_cb cb, void *ctx) {
  memset(s, 0, sizeof *s);
  list_init(&s->order);
  s->grant_cb = cb;
  s->ctx = ctx;
}

void ferry_sched_close(ferry_sched *s) {
  while (!list_empty(&s->order)) {
    queue *q = ferry_container_of(s->order.next, queue, order);
    while (!list_empty(&q->free))
      free_offer(s, ferry_container_of(q->free.next, offer, qlink));
    while (q->nheap)
      free_request(s, q->heap[q->nheap - 1]);
    free_queue(s, q);
  }
  free(s->buckets);
  s->buckets = NULL;
  s->nbuckets = 0;
}

size_t ferry_sched_nqueues(const ferry_sched *s) { return s->nqueues; }

void ferry_sched_stats(const ferry_sched *s, ferry_tracker_queue_stat *out) {
  size_t i = 0;
  for (const ferry_sched_link *l = s->order.next; l != &s->order; l = l->next) {
    const queue *q = ferry_container_of(l, queue, order);
    out[i].key = q->key;
    out[i].free = q->nfree;
    out[i].pending = q->nheap;
    i++;
  }
}

/* ---- deadlines, listings, holds ---------------------------------------- */

void ferry_sched_expire(ferry_sched *s, int64_t now_ms, ferry_sched_expire_cb cb,
                        void *ctx) {
  s->now_ms = now_ms;
  for (ferry_sched_link *l = s->order.next; l != &s->order;) {
    queue *q = ferry_container_of(l, queue, order);
    l = l->next; /* q may be pruned below */
    size_t i = 0;
    while (i < q->nheap) {
      request *r = q->heap[i];
      if (!r->deadline_ms || r->deadline_ms > now_ms) {
        i++;
        continue;
      }
      /* Its position: how many would be served before it, plus one. */
      size_t pos = 1;
      for (size_t j = 0; j < q->nheap; j++)
        pos += req_before(q->heap[j], r);
      ferry_sched_waiting w = {q->key, r->user, r->owner, r->priority, pos,
                               r->since_ms, r->deadline_ms};
      cb(ctx, &w);
      free_request(s, r); /* the heap moved: look at index i again */
    }
    maybe_prune(s, q);
  }
}

static int cmp_req(const void *a, const void *b) {
  const request *x = *(request *const *)a, *y = *(request *const *)b;
  return req_before(x, y) ? -1 : req_before(y, x) ? 1 : 0;
}

size_t ferry_sched_waiting_list(const ferry_sched *s, ferry_sched_waiting *out,
                                size_t cap) {
  size_t n = 0;
  for (const ferry_sched_link *l = s->order.next; l != &s->order; l = l->next) {
    const queue *q = ferry_container_of(l, queue, order);
    if (!q->nheap)
      continue;
    request **sorted = malloc(q->nheap * sizeof *sorted);
    if (!sorted)
      return n; /* a status page is best effort */
    memcpy(sorted, q->heap, q->nheap * sizeof *sorted);
    qsort(sorted, q->nheap, sizeof *sorted, cmp_req);
    for (size_t i = 0; i < q->nheap; i++, n++)
      if (n < cap)
        out[n] = (ferry_sched_waiting){q->key, sorted[i]->user, sorted[i]->owner,
                                       sorted[i]->priority, i + 1, sorted[i]->since_ms,
                                       sorted[i]->deadline_ms};
    free(sorted);
  }
  return n;
}

size_t ferry_sched_owner_free(const ferry_sched_owner *ow, const char *key) {
  size_t n = 0;
  for (const ferry_sched_link *l = ow->offers.next; l != &ow->offers; l = l->next) {
    const offer *o = ferry_container_of(l, offer, olink);
    n += strcmp(o->q->key, key) == 0;
  }
  return n;
}

void ferry_sched_hold(ferry_sched *s, ferry_sched_owner *ow, const char *key, int held) {
  queue *q = NULL;
  for (ferry_sched_link *l = ow->offers.next; l != &ow->offers; l = l->next) {
    offer *o = ferry_container_of(l, offer, olink);
    if (strcmp(o->q->key, key) == 0) {
      o->held = held;
      q = o->q;
    }
  }
  if (q && !held)
    run_queue(s, q);
}
