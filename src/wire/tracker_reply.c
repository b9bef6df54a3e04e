/* Decoders for the replies a tracker sends (what servers, proxies, clients
 * and the query tool receive).  Declared in tracker_msg.h. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "wire/tracker_json.h"
#include "wire/tracker_msg.h"

#define errf ferry_tracker_json_errf

int ferry_tracker_decode_status(const uint8_t *body, size_t len, int *status,
                                char *err, size_t errcap) {
  json_t *v = ferry_tracker_json_parse(body, len, err, errcap);
  if (!v)
    return FERRY_EPROTO;
  int rc = 0;
  if (!json_is_integer(v) || json_integer_value(v) < -1000000 ||
      json_integer_value(v) > 1000000) {
    errf(err, errcap, "expected a bare integer status");
    rc = FERRY_EPROTO;
  } else {
    *status = (int)json_integer_value(v);
  }
  json_decref(v);
  return rc;
}

void ferry_tracker_grant_close(ferry_tracker_grant *g) {
  free(g->host);
  free(g->matchkey);
  memset(g, 0, sizeof *g);
}

/* A port as a number or as a decimal string (C++ servers send strings). */
static int port_value(const json_t *p, int *port) {
  long long v;
  if (json_is_integer(p)) {
    v = json_integer_value(p);
  } else if (json_is_string(p)) {
    const char *s = json_string_value(p);
    char *end;
    if (!*s || strlen(s) > 6)
      return FERRY_ERANGE;
    v = strtoll(s, &end, 10);
    if (*end)
      return FERRY_ERANGE;
  } else {
    return FERRY_EPROTO;
  }
  if (v < 0 || v > 65535)
    return FERRY_ERANGE;
  *port = (int)v;
  return 0;
}

int ferry_tracker_decode_grant(const uint8_t *body, size_t len,
                               ferry_tracker_grant *g, char *err,
                               size_t errcap) {
  memset(g, 0, sizeof *g);
  json_t *v = ferry_tracker_json_parse(body, len, err, errcap);
  if (!v)
    return FERRY_EPROTO;
  int rc = 0;
  json_t *t = json_array_get(v, 1);
  json_t *host = json_array_get(t, 0), *port = json_array_get(t, 1),
         *mk = json_array_get(t, 2);
  if (!json_is_array(v) || json_array_size(v) != 2 ||
      !json_is_integer(json_array_get(v, 0)) ||
      json_integer_value(json_array_get(v, 0)) != 0 || !json_is_array(t) ||
      json_array_size(t) != 3 || !json_is_string(host) || !json_is_string(mk)) {
    errf(err, errcap, "expected [0, [host, port, matchkey]]");
    rc = FERRY_EPROTO;
    goto out;
  }
  rc = port_value(port, &g->port);
  if (rc) {
    errf(err, errcap, "bad port in the grant");
    goto out;
  }
  g->host = ferry_tracker_json_strdup(host, FERRY_TRACKER_MAX_KEY, &rc);
  if (rc == 0)
    g->matchkey = ferry_tracker_json_strdup(mk, FERRY_TRACKER_MAX_KEY, &rc);
  if (rc)
    errf(err, errcap, "grant field too long");
out:
  json_decref(v);
  if (rc)
    ferry_tracker_grant_close(g);
  return rc;
}

void ferry_tracker_strlist_close(ferry_tracker_strlist *list) {
  for (size_t i = 0; i < list->n; i++)
    free(list->items[i]);
  free(list->items);
  memset(list, 0, sizeof *list);
}

int ferry_tracker_strlist_contains(const ferry_tracker_strlist *list,
                                   const char *s) {
  for (size_t i = 0; i < list->n; i++)
    if (strcmp(list->items[i], s) == 0)
      return 1;
  return 0;
}

int ferry_tracker_decode_pending(const uint8_t *body, size_t len,
                                 ferry_tracker_strlist *list, char *err,
                                 size_t errcap) {
  memset(list, 0, sizeof *list);
  json_t *v = ferry_tracker_json_parse(body, len, err, errcap);
  if (!v)
    return FERRY_EPROTO;
  int rc = 0;
  size_t n = json_array_size(v);
  if (!json_is_array(v)) {
    errf(err, errcap, "expected a list of match keys");
    rc = FERRY_EPROTO;
    goto out;
  }
  if (n > FERRY_TRACKER_MAX_LIST) {
    errf(err, errcap, "too many match keys (%zu)", n);
    rc = FERRY_ETOOBIG;
    goto out;
  }
  list->items = calloc(n ? n : 1, sizeof *list->items);
  if (!list->items) {
    rc = FERRY_ENOMEM;
    goto out;
  }
  for (size_t i = 0; rc == 0 && i < n; i++) {
    json_t *s = json_array_get(v, i);
    if (!json_is_string(s)) {
      errf(err, errcap, "match key %zu is not a string", i);
      rc = FERRY_EPROTO;
      break;
    }
    list->items[i] = ferry_tracker_json_strdup(s, FERRY_TRACKER_MAX_KEY, &rc);
    if (rc == 0)
      list->n = i + 1;
  }
out:
  json_decref(v);
  if (rc)
    ferry_tracker_strlist_close(list);
  return rc;
}

void ferry_tracker_summary_close(ferry_tracker_summary *s) {
  for (size_t i = 0; i < s->nqueues; i++)
    free(s->queues[i].key);
  for (size_t i = 0; i < s->nservers; i++) {
    free(s->servers[i].key);
    free(s->servers[i].addr);
    free(s->servers[i].devices);
  }
  free(s->queues);
  free(s->servers);
  memset(s, 0, sizeof *s);
}

/* Text of b as a NUL-terminated malloc'd string (ownership passes). */
static char *take_text(ferry_buf *b, int *rc) {
  if (*rc == 0)
    *rc = ferry_buf_append(b, "", 1);
  if (*rc) {
    ferry_buf_close(b);
    return NULL;
  }
  return (char *)b->data;
}

static int decode_server(json_t *info, ferry_tracker_summary_server *out) {
  if (!json_is_object(info))
    return FERRY_EPROTO;
  int rc = 0;
  ferry_buf b;
  json_t *key = json_object_get(info, "key");
  ferry_buf_init(&b, FERRY_TRACKER_MAX_INFO);
  if (key)
    rc = ferry_tracker_json_str(&b, key);
  out->key = take_text(&b, &rc);
  ferry_buf_init(&b, FERRY_TRACKER_MAX_INFO);
  json_t *addr = json_object_get(info, "addr");
  if (json_is_array(addr)) {
    /* Python: ":".join(str(x) for x in addr) */
    for (size_t i = 0; rc == 0 && i < json_array_size(addr); i++) {
      if (i)
        rc = ferry_buf_append(&b, ":", 1);
      if (rc == 0)
        rc = ferry_tracker_json_str(&b, json_array_get(addr, i));
    }
  } else if (addr) {
    rc = ferry_tracker_json_str(&b, addr);
  }
  out->addr = take_text(&b, &rc);
  /* TVM's servers send no such field; ferry's list the devices they serve. */
  json_t *devices = json_object_get(info, "devices");
  if (rc == 0 && json_is_string(devices)) {
    out->devices = strndup(json_string_value(devices), FERRY_TRACKER_MAX_VALUE);
    if (out->devices == NULL)
      rc = FERRY_ENOMEM;
  }
  return rc;
}

int ferry_tracker_decode_summary(const uint8_t *body, size_t len,
                                 ferry_tracker_summary *s, char *err,
                                 size_t errcap) {
  memset(s, 0, sizeof *s);
  json_t *v = ferry_tracker_json_parse(body, len, err, errcap);
  if (!v)
    return FERRY_EPROTO;
  int rc = 0;
  json_t *o = json_array_get(v, 1);
  json_t *qi = json_object_get(o, "queue_info");
  json_t *si = json_object_get(o, "server_info");
  if (!json_is_array(v) || json_array_size(v) != 2 ||
      !json_is_integer(json_array_get(v, 0)) ||
      json_integer_value(json_array_get(v, 0)) != 0 || !json_is_object(qi) ||
      !json_is_array(si)) {
    errf(err, errcap,
         "expected [0, {\"queue_info\": {...}, \"server_info\": [...]}]");
    rc = FERRY_EPROTO;
    goto out;
  }
  size_t nq = json_object_size(qi), ns = json_array_size(si);
  if (nq > FERRY_TRACKER_MAX_LIST || ns > FERRY_TRACKER_MAX_LIST) {
    errf(err, errcap, "summary too large");
    rc = FERRY_ETOOBIG;
    goto out;
  }
  s->queues = calloc(nq ? nq : 1, sizeof *s->queues);
  s->servers = calloc(ns ? ns : 1, sizeof *s->servers);
  if (!s->queues || !s->servers) {
    rc = FERRY_ENOMEM;
    goto out;
  }
  const char *k;
  json_t *q;
  json_object_foreach(qi, k, q) {
    json_t *fr = json_object_get(q, "free"), *pe = json_object_get(q, "pending");
    if (!json_is_integer(fr) || !json_is_integer(pe)) {
      errf(err, errcap, "queue %s lacks integer free/pending", k);
      rc = FERRY_EPROTO;
      goto out;
    }
    ferry_tracker_summary_queue *dst = &s->queues[s->nqueues];
    dst->key = strdup(k);
    if (!dst->key) {
      rc = FERRY_ENOMEM;
      goto out;
    }
    dst->free = json_integer_value(fr);
    dst->pending = json_integer_value(pe);
    s->nqueues++;
  }
  for (size_t i = 0; i < ns; i++) {
    rc = decode_server(json_array_get(si, i), &s->servers[i]);
    s->nservers = i + 1; /* partially filled entries are freed by close */
    if (rc) {
      errf(err, errcap, "server_info entry %zu is malformed", i);
      goto out;
    }
  }
out:
  json_decref(v);
  if (rc)
    ferry_tracker_summary_close(s);
  return rc;
}
