#include "proxy/pairing.h"

#include <stdlib.h>
#include <string.h>

#include "base/random.h"
#include "wire/tracker_json.h"

void ferry_pairing_init(ferry_pairing *t, int tracker_mode, size_t max,
                        int64_t wait_ms) {
  memset(t, 0, sizeof *t);
  t->tracker_mode = tracker_mode;
  t->max = max;
  t->wait_ms = wait_ms;
  t->alloc_timeout_ms = 5000;
  t->grace_ms = 5000;
  t->max_offers = FERRY_PAIRING_MAX_OFFERS;
}

/* ---- device keys (tracker mode) --------------------------------------- */

static ferry_pair_device *dev_find(ferry_pairing *t, const char *k, size_t len) {
  for (ferry_pair_device *d = t->devices; d; d = d->next)
    if (d->len == len && memcmp(d->key, k, len) == 0)
      return d;
  return NULL;
}

/* The record of device key k, made if new.  The key must go into the
 * tracker's JSON as text: a NUL or invalid UTF-8 is FERRY_EINVAL (TVM's
 * tracker would fail on it too, and one such key must not make every
 * UPDATE_INFO of the link fail). */
static int dev_get(ferry_pairing *t, const char *k, size_t len,
                   ferry_pair_device **out) {
  ferry_pair_device *d = dev_find(t, k, len);
  if (d) {
    *out = d;
    return 0;
  }
  if (memchr(k, 0, len))
    return FERRY_EINVAL;
  ferry_buf esc;
  ferry_buf_init(&esc, 6 * len + 16);
  int rc = ferry_tracker_json_string(&esc, k, len);
  size_t json_len = esc.len >= 2 ? esc.len - 2 : 0;
  ferry_buf_close(&esc);
  if (rc)
    return rc == FERRY_ENOMEM ? rc : FERRY_EINVAL;
  d = calloc(1, sizeof *d);
  if (!d || !(d->key = malloc(len + 1))) {
    free(d);
    return FERRY_ENOMEM;
  }
  memcpy(d->key, k, len);
  d->key[len] = 0;
  d->len = len;
  d->json_len = json_len;
  ferry_pair_device **pp = &t->devices;
  while (*pp)
    pp = &(*pp)->next;
  *pp = d;
  *out = d;
  return 0;
}

/* Frees d once nothing refers to it. */
static void dev_release(ferry_pairing *t, ferry_pair_device *d) {
  if (d->servers || d->listed)
    return;
  for (ferry_pair_device **pp = &t->devices; *pp; pp = &(*pp)->next) {
    if (*pp == d) {
      *pp = d->next;
      break;
    }
  }
  free(d->key);
  free(d);
}

static void keyset_clear(ferry_pairing *t) {
  for (size_t i = 0; i < t->nkeys; i++)
    t->keyset[i]->listed = 0;
  for (size_t i = 0; i < t->nkeys; i++)
    dev_release(t, t->keyset[i]);
  free(t->keyset);
  t->keyset = NULL;
  t->nkeys = 0;
  t->keyset_bytes = 0;
  t->keyset_changed = 0;
}

/* 0 if d is listed or fits in the key set, else a ferry_pair_hold.  14:
 * "server:proxy[" and "]"; each key counts a comma. */
static int keyset_room(const ferry_pairing *t, const ferry_pair_device *d) {
  if (d->listed)
    return 0;
  if (t->nkeys >= FERRY_PAIRING_MAX_KEYSET)
    return FERRY_PAIR_HOLD_KEYS;
  if (14 + t->keyset_bytes + d->json_len + 1 > FERRY_PAIRING_MAX_INFO_KEY)
    return FERRY_PAIR_HOLD_INFO;
  return 0;
}

static int keyset_add(ferry_pairing *t, ferry_pair_device *d) {
  if (d->listed)
    return 0;
  ferry_pair_device **grown = realloc(t->keyset, (t->nkeys + 1) * sizeof *grown);
  if (!grown)
    return FERRY_ENOMEM;
  t->keyset = grown;
  t->keyset[t->nkeys++] = d;
  d->listed = 1;
  t->keyset_bytes += d->json_len + 1;
  t->keyset_changed = 1;
  return 0;
}

/* ---- entries ---------------------------------------------------------- */

static void entry_free(ferry_pair_entry *e) {
  free(e->match_key);
  free(e->old_key);
  free(e);
}

/* A tracker-mode server stops counting as offered (it is due again). */
static void entry_unoffer(ferry_pairing *t, ferry_pair_entry *e) {
  if (e->dev && !e->needs_put) {
    e->dev->offered--;
    t->noffers--;
  }
  e->needs_put = e->dev != NULL;
}

/* Frees an entry already unlinked from the list, with its counts. */
static void entry_drop(ferry_pairing *t, ferry_pair_entry *e) {
  ferry_pair_device *d = e->dev;
  if (d) {
    entry_unoffer(t, e);
    d->servers--;
    dev_release(t, d);
  }
  entry_free(e);
}

void ferry_pairing_close(ferry_pairing *t) {
  ferry_pair_entry *e = t->head;
  while (e) {
    ferry_pair_entry *next = e->next;
    entry_free(e);
    e = next;
  }
  t->head = NULL;
  t->count = 0;
  free(t->keyset);
  t->keyset = NULL;
  t->nkeys = 0;
  while (t->devices) {
    ferry_pair_device *d = t->devices;
    t->devices = d->next;
    free(d->key);
    free(d);
  }
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

int ferry_pairing_role(const char *key, size_t len) {
  return len >= 7 && memcmp(key, "server:", 7) == 0 ? FERRY_PAIR_SERVER
                                                    : FERRY_PAIR_CLIENT;
}

int ferry_pairing_match_key(const char *key, size_t len, const char **out,
                            size_t *out_len) {
  /* TVM strips 7 bytes without looking at them, then splits on whitespace
   * (leading whitespace skipped), so we do exactly that. */
  if (len <= 7)
    return FERRY_EPROTO;
  size_t i = 7;
  while (i < len && is_space(key[i]))
    i++;
  size_t start = i;
  while (i < len && !is_space(key[i]))
    i++;
  if (i == start)
    return FERRY_EPROTO;
  *out = key + start;
  *out_len = i - start;
  return 0;
}

static char *dup_n(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = 0;
  }
  return p;
}

static int key_eq(const char *a, const char *b, size_t blen) {
  return a && strlen(a) == blen && memcmp(a, b, blen) == 0;
}

static ferry_pair_entry *lookup(ferry_pairing *t, int role, const char *k,
                                size_t len, int64_t now_ms) {
  for (ferry_pair_entry *e = t->head; e; e = e->next) {
    if (e->role != role)
      continue;
    if (key_eq(e->match_key, k, len))
      return e;
    if (e->old_key && now_ms < e->old_until_ms && key_eq(e->old_key, k, len))
      return e;
  }
  return NULL;
}

static void unlink_entry(ferry_pairing *t, ferry_pair_entry *victim) {
  for (ferry_pair_entry **pp = &t->head; *pp; pp = &(*pp)->next) {
    if (*pp == victim) {
      *pp = victim->next;
      t->count--;
      return;
    }
  }
}

static void append_entry(ferry_pairing *t, ferry_pair_entry *e) {
  ferry_pair_entry **pp = &t->head;
  while (*pp)
    pp = &(*pp)->next;
  *pp = e;
  t->count++;
}

/* "<device>:<random>", not equal to any key in the table. */
static int fresh_key(ferry_pairing *t, const char *device, size_t dlen,
                     char **out) {
  for (int attempt = 0; attempt < 8; attempt++) {
    char suffix[FERRY_RANDOM_SUFFIX_LEN];
    int rc = ferry_random_suffix(suffix);
    if (rc)
      return rc;
    size_t slen = strlen(suffix);
    char *k = malloc(dlen + 1 + slen + 1);
    if (!k)
      return FERRY_ENOMEM;
    memcpy(k, device, dlen);
    k[dlen] = ':';
    memcpy(k + dlen + 1, suffix, slen + 1);
    if (!lookup(t, FERRY_PAIR_SERVER, k, dlen + 1 + slen, INT64_MIN)) {
      *out = k;
      return 0;
    }
    free(k);
  }
  return FERRY_EEXIST;
}

int ferry_pairing_offer(ferry_pairing *t, int role, const char *match_key,
                        size_t len, void *conn, int64_t now_ms,
                        void **partner) {
  *partner = NULL;
  t->stale_offer = 0;
  if (t->tracker_mode && role == FERRY_PAIR_CLIENT) {
    ferry_pair_entry *e = lookup(t, FERRY_PAIR_SERVER, match_key, len, now_ms);
    if (!e)
      return FERRY_PAIR_MISMATCH;
    /* Paired through its previous key while the new one is already on
     * offer: that offer now names a server that is taken. */
    t->stale_offer = !e->needs_put && !key_eq(e->match_key, match_key, len);
    *partner = e->conn;
    unlink_entry(t, e);
    entry_drop(t, e);
    return FERRY_PAIR_PAIRED;
  }
  if (!t->tracker_mode) {
    ferry_pair_entry *e = lookup(t, !role, match_key, len, now_ms);
    if (e) {
      *partner = e->conn;
      unlink_entry(t, e);
      entry_free(e);
      return FERRY_PAIR_PAIRED;
    }
    if (lookup(t, role, match_key, len, now_ms))
      return FERRY_PAIR_DUPLICATE;
  }
  if (t->count >= t->max)
    return FERRY_ETOOBIG;
  ferry_pair_device *dev = NULL;
  if (t->tracker_mode) {
    int rc = dev_get(t, match_key, len, &dev);
    if (rc)
      return rc;
  }
  ferry_pair_entry *e = calloc(1, sizeof *e);
  if (!e) {
    if (dev)
      dev_release(t, dev);
    return FERRY_ENOMEM;
  }
  e->role = role;
  e->conn = conn;
  e->alloc_ms = -1;
  e->deadline_ms = INT64_MAX;
  int rc = 0;
  if (t->tracker_mode) {
    /* A server: the device key is its whole match key (§6.4). */
    rc = fresh_key(t, match_key, len, &e->match_key);
    e->device_len = len;
    e->needs_put = 1;
  } else {
    e->match_key = dup_n(match_key, len);
    e->device_len = len;
    if (!e->match_key)
      rc = FERRY_ENOMEM;
    if (t->wait_ms >= 0 && now_ms <= INT64_MAX - t->wait_ms)
      e->deadline_ms = now_ms + t->wait_ms;
  }
  if (rc) {
    entry_free(e);
    if (dev)
      dev_release(t, dev);
    return rc;
  }
  if (dev) {
    e->dev = dev;
    dev->servers++;
  }
  append_entry(t, e);
  return FERRY_PAIR_PARKED;
}

ferry_pair_entry *ferry_pairing_find(ferry_pairing *t, const void *conn) {
  for (ferry_pair_entry *e = t->head; e; e = e->next)
    if (e->conn == conn)
      return e;
  return NULL;
}

int ferry_pairing_remove(ferry_pairing *t, const void *conn) {
  ferry_pair_entry *e = ferry_pairing_find(t, conn);
  if (!e)
    return -1;
  int offered = t->tracker_mode && e->role == FERRY_PAIR_SERVER && !e->needs_put;
  unlink_entry(t, e);
  entry_drop(t, e);
  return offered;
}

size_t ferry_pairing_expire(ferry_pairing *t, int64_t now_ms, void **out,
                            size_t cap) {
  size_t n = 0;
  ferry_pair_entry **pp = &t->head;
  while (*pp && n < cap) {
    ferry_pair_entry *e = *pp;
    if (e->deadline_ms <= now_ms) {
      out[n++] = e->conn;
      *pp = e->next;
      t->count--;
      entry_drop(t, e);
    } else {
      pp = &e->next;
    }
  }
  return n;
}

/* The device whose due server is offered next: among the devices with a
 * due server that may be listed, the one with the fewest offers, ties to
 * the one seen first.  Max-min fairness over device keys: every listed
 * key keeps at least its share of the offer slots whatever arrives later.
 * NULL when nothing is due or the offer slots are taken. */
static ferry_pair_device *next_device(ferry_pairing *t) {
  if (t->noffers >= t->max_offers)
    return NULL;
  ferry_pair_device *best = NULL;
  for (ferry_pair_device *d = t->devices; d; d = d->next) {
    if (d->servers == d->offered || keyset_room(t, d))
      continue;
    if (!best || d->offered < best->offered)
      best = d;
  }
  return best;
}

int ferry_pairing_next_put(ferry_pairing *t, char *device, size_t device_cap,
                           char *match, size_t match_cap) {
  ferry_pair_device *d = next_device(t);
  if (!d)
    return 0;
  for (ferry_pair_entry *e = t->head; e; e = e->next) {
    if (e->dev != d || !e->needs_put)
      continue;
    size_t mlen = strlen(e->match_key);
    if (e->device_len >= device_cap || mlen >= match_cap)
      return FERRY_ETOOBIG;
    int rc = keyset_add(t, d);
    if (rc)
      return rc;
    memcpy(device, e->match_key, e->device_len);
    device[e->device_len] = 0;
    memcpy(match, e->match_key, mlen + 1);
    e->needs_put = 0;
    e->in_poll = 0;
    e->alloc_ms = -1;
    d->offered++;
    t->noffers++;
    return 1;
  }
  return 0; /* not reached: d has a due server */
}

void *ferry_pairing_take_held(ferry_pairing *t, int *why) {
  for (ferry_pair_entry *e = t->head; e; e = e->next) {
    if (!e->dev || !e->needs_put || e->held_told)
      continue;
    int reason = t->noffers >= t->max_offers ? FERRY_PAIR_HOLD_OFFERS
                                             : keyset_room(t, e->dev);
    if (!reason)
      continue;
    e->held_told = 1;
    *why = reason;
    return e->conn;
  }
  return NULL;
}

void ferry_pairing_put_refused(ferry_pairing *t, const char *mk) {
  for (ferry_pair_entry *e = t->head; e; e = e->next) {
    if (e->dev && !e->needs_put && strcmp(e->match_key, mk) == 0) {
      entry_unoffer(t, e);
      return;
    }
  }
}

void ferry_pairing_poll_sent(ferry_pairing *t) {
  for (ferry_pair_entry *e = t->head; e; e = e->next)
    e->in_poll = !e->needs_put;
}

/* Gives e a new key; the old one keeps working for grace_ms. */
static int replace_key(ferry_pairing *t, ferry_pair_entry *e, int64_t now_ms) {
  char *k = NULL;
  int rc = fresh_key(t, e->match_key, e->device_len, &k);
  entry_unoffer(t, e);
  e->in_poll = 0;
  e->alloc_ms = -1;
  if (rc)
    return rc;
  free(e->old_key);
  e->old_key = e->match_key;
  e->old_until_ms = now_ms + t->grace_ms;
  e->match_key = k;
  return 0;
}

int ferry_pairing_pending_reply(ferry_pairing *t, const char *const *keys,
                                size_t n, int64_t now_ms) {
  int replaced = 0;
  for (ferry_pair_entry *e = t->head; e; e = e->next) {
    if (e->role != FERRY_PAIR_SERVER || !e->in_poll || e->needs_put)
      continue;
    int listed = 0;
    for (size_t i = 0; i < n && !listed; i++)
      listed = strcmp(keys[i], e->match_key) == 0;
    if (listed) {
      e->alloc_ms = -1;
    } else if (e->alloc_ms < 0) {
      e->alloc_ms = now_ms;
    } else if (now_ms - e->alloc_ms > t->alloc_timeout_ms) {
      int rc = replace_key(t, e, now_ms);
      if (rc)
        return rc;
      replaced++;
    }
  }
  return replaced;
}

int ferry_pairing_reoffer_all(ferry_pairing *t, int64_t now_ms) {
  int first = 0;
  keyset_clear(t);
  for (ferry_pair_entry *e = t->head; e; e = e->next) {
    if (e->role != FERRY_PAIR_SERVER)
      continue;
    int rc = replace_key(t, e, now_ms);
    if (rc && !first)
      first = rc;
  }
  return first;
}

int ferry_pairing_take_keyset_change(ferry_pairing *t) {
  int c = t->keyset_changed;
  t->keyset_changed = 0;
  return c;
}

int ferry_pairing_info_key(const ferry_pairing *t, ferry_buf *out) {
  int rc = ferry_buf_append(out, "server:proxy[", 13);
  for (size_t i = 0; i < t->nkeys && rc == 0; i++) {
    if (i)
      rc = ferry_buf_append(out, ",", 1);
    if (rc == 0)
      rc = ferry_buf_append(out, t->keyset[i]->key, t->keyset[i]->len);
  }
  if (rc == 0)
    rc = ferry_buf_append(out, "]", 1);
  return rc;
}
