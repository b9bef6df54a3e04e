/* The farm's devices, sessions and history: see farm.h. */
#include "tracker/farm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ferry_farm_state_name(ferry_farm_state st) {
  switch (st) {
  case FERRY_FARM_STARTING: return "starting";
  case FERRY_FARM_FREE: return "free";
  case FERRY_FARM_IN_USE: return "in use";
  case FERRY_FARM_OFFLINE: return "offline";
  case FERRY_FARM_DRAINED: return "drained";
  }
  return "?";
}

void ferry_farm_init(ferry_farm *f) { memset(f, 0, sizeof *f); }

static void free_device(ferry_farm_device *d) {
  free(d->key);
  free(d->matchkey);
  free(d);
}

static void unlink_device(ferry_farm *f, ferry_farm_device *d) {
  if (d->prev)
    d->prev->next = d->next;
  else
    f->head = d->next;
  if (d->next)
    d->next->prev = d->prev;
  else
    f->tail = d->prev;
  f->ndevices--;
}

void ferry_farm_close(ferry_farm *f) {
  while (f->head) {
    ferry_farm_device *d = f->head;
    unlink_device(f, d);
    free_device(d);
  }
}

/* ---- leases ------------------------------------------------------------- */

static int parse_seconds(const char *s, size_t n, double *out) {
  char buf[32];
  if (n == 0 || n >= sizeof buf)
    return -1;
  memcpy(buf, s, n);
  buf[n] = 0;
  char *end;
  errno = 0;
  double v = strtod(buf, &end);
  if (errno || *end || !(v > 0) || v > 1e7)
    return -1;
  *out = v;
  return 0;
}

int ferry_farm_parse_leases(ferry_farm *f, const char *spec, char *err, size_t errcap) {
  ferry_farm_lease tmp[FERRY_FARM_MAX_LEASES];
  size_t n = 0;
  const char *p = spec;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    ferry_farm_lease l = {"", 0};
    if (n == FERRY_FARM_MAX_LEASES) {
      snprintf(err, errcap, "at most %d entries", FERRY_FARM_MAX_LEASES);
      return FERRY_EINVAL;
    }
    if (eq) {
      size_t klen = (size_t)(eq - p);
      if (klen == 0 || klen >= sizeof l.key) {
        snprintf(err, errcap, "a key must have 1 to %zu bytes", sizeof l.key - 1);
        return FERRY_EINVAL;
      }
      if (!(klen == 1 && p[0] == '*'))
        memcpy(l.key, p, klen);
      l.key[klen == 1 && p[0] == '*' ? 0 : klen] = 0;
      if (parse_seconds(eq + 1, len - klen - 1, &l.seconds)) {
        snprintf(err, errcap, "'%.*s': seconds must be a number in (0, 1e7]", (int)len, p);
        return FERRY_EINVAL;
      }
    } else if (parse_seconds(p, len, &l.seconds)) {
      snprintf(err, errcap, "'%.*s': want SECONDS or KEY=SECONDS", (int)len, p);
      return FERRY_EINVAL;
    }
    tmp[n++] = l;
    if (!comma)
      break;
    p = comma + 1;
  }
  memcpy(f->leases, tmp, n * sizeof *tmp);
  f->nleases = n;
  return 0;
}

double ferry_farm_lease_for(const ferry_farm *f, const char *key) {
  double any = 0;
  for (size_t i = 0; i < f->nleases; i++) {
    if (!f->leases[i].key[0])
      any = f->leases[i].seconds;
    else if (strcmp(f->leases[i].key, key) == 0)
      return f->leases[i].seconds;
  }
  return any;
}

/* ---- devices ------------------------------------------------------------ */

ferry_farm_device *ferry_farm_device_find(ferry_farm *f, const void *owner,
                                          const char *key) {
  for (ferry_farm_device *d = f->head; d; d = d->next)
    if (d->owner == owner && strcmp(d->key, key) == 0)
      return d;
  return NULL;
}

ferry_farm_device *ferry_farm_device_get(ferry_farm *f, const void *owner,
                                         const char *key) {
  ferry_farm_device *d = ferry_farm_device_find(f, owner, key);
  if (d || f->ndevices >= FERRY_FARM_MAX_DEVICES)
    return d;
  d = calloc(1, sizeof *d);
  if (!d || !(d->key = strdup(key))) {
    free(d);
    return NULL;
  }
  d->owner = owner;
  d->prev = f->tail;
  if (f->tail)
    f->tail->next = d;
  else
    f->head = d;
  f->tail = d;
  f->ndevices++;
  return d;
}

void ferry_farm_forget(ferry_farm *f, const void *owner) {
  ferry_farm_device *d = f->head;
  while (d) {
    ferry_farm_device *next = d->next;
    if (d->owner == owner) {
      unlink_device(f, d);
      free_device(d);
    }
    d = next;
  }
}

void ferry_farm_offered(ferry_farm_device *d) {
  d->granted = 0;
  d->in_session = 0;
  d->session = 0;
  d->user[0] = d->host[0] = 0;
  d->since_ms = 0;
  d->lease_end_ms = 0;
}

int ferry_farm_granted(ferry_farm_device *d, const char *matchkey, const char *user,
                       const char *host, int64_t now_ms) {
  char *mk = strdup(matchkey);
  if (!mk)
    return FERRY_ENOMEM;
  free(d->matchkey);
  d->matchkey = mk;
  d->granted = 1;
  d->in_session = 0;
  d->session = 0;
  d->lease_end_ms = 0;
  snprintf(d->user, sizeof d->user, "%s", user);
  snprintf(d->host, sizeof d->host, "%s", host);
  d->since_ms = now_ms;
  return 0;
}

static void record(ferry_farm *f, const ferry_farm_device *d, const char *outcome,
                   int64_t now_ms) {
  ferry_farm_record *r = &f->history[f->history_next];
  f->history_next = (f->history_next + 1) % FERRY_FARM_HISTORY;
  if (f->nhistory < FERRY_FARM_HISTORY)
    f->nhistory++;
  snprintf(r->key, sizeof r->key, "%s", d->key);
  snprintf(r->user, sizeof r->user, "%s", d->user);
  snprintf(r->host, sizeof r->host, "%s", d->host);
  r->session = d->session;
  r->start_ms = d->since_ms;
  r->end_ms = now_ms;
  snprintf(r->outcome, sizeof r->outcome, "%s", outcome && outcome[0] ? outcome : "ended");
}

int ferry_farm_report(ferry_farm *f, const void *owner, int event, long long n,
                      const char *matchkey, const char *outcome, int64_t now_ms,
                      double *lease_s, char *err, size_t errcap) {
  *lease_s = 0;
  /* Only a device this owner was granted under that very match key: a
   * server cannot report sessions on another server's devices, nor on
   * one of its own that nobody was given. */
  ferry_farm_device *d = f->head;
  while (d && !(d->owner == owner && d->matchkey && strcmp(d->matchkey, matchkey) == 0))
    d = d->next;
  if (!d) {
    f->reports_refused++;
    snprintf(err, errcap, "no device of this server was granted under that match key");
    return FERRY_EINVAL;
  }
  if (event == 1) {
    if (!d->granted) {
      f->reports_refused++;
      snprintf(err, errcap, "the device was offered again since that grant");
      return FERRY_EINVAL;
    }
    d->session = n;
    d->in_session = 1;
    d->since_ms = now_ms;
    d->sessions++;
    f->sessions_started++;
    *lease_s = ferry_farm_lease_for(f, d->key);
    d->lease_end_ms = *lease_s > 0 ? now_ms + (int64_t)(*lease_s * 1000.0) : 0;
    return 0;
  }
  if (!d->in_session || d->session != n) {
    f->reports_refused++;
    snprintf(err, errcap, "session %lld was not reported as started", n);
    return FERRY_EINVAL;
  }
  record(f, d, outcome, now_ms);
  f->sessions_ended++;
  /* Still "in use" (granted) until the server offers it again. */
  d->in_session = 0;
  return 0;
}

ferry_farm_state ferry_farm_state_of(const ferry_farm_device *d, size_t nfree) {
  if (d->health_failures > 0)
    return FERRY_FARM_OFFLINE;
  if (d->drained)
    return FERRY_FARM_DRAINED;
  if (d->granted && !nfree)
    return FERRY_FARM_IN_USE;
  if (nfree)
    return FERRY_FARM_FREE;
  return FERRY_FARM_STARTING;
}

void ferry_farm_history_add(ferry_farm *f, const ferry_farm_record *r) {
  f->history[f->history_next] = *r;
  f->history_next = (f->history_next + 1) % FERRY_FARM_HISTORY;
  if (f->nhistory < FERRY_FARM_HISTORY)
    f->nhistory++;
}

const ferry_farm_record *ferry_farm_history_at(const ferry_farm *f, size_t i) {
  if (i >= f->nhistory)
    return NULL;
  size_t first = (f->history_next + FERRY_FARM_HISTORY - f->nhistory) % FERRY_FARM_HISTORY;
  return &f->history[(first + i) % FERRY_FARM_HISTORY];
}

int ferry_farm_user_clean(const char *user, char *out) {
  size_t n = strlen(user);
  int ok = n <= FERRY_FARM_MAX_USER;
  for (size_t i = 0; ok && i < n; i++) {
    unsigned char c = (unsigned char)user[i];
    ok = c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&';
  }
  if (!ok) {
    strcpy(out, "?");
    return FERRY_EINVAL;
  }
  memcpy(out, user, n + 1);
  return 0;
}
