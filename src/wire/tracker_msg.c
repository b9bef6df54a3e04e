/* Tracker messages: decoding of requests and replies, Python-exact
 * encoding of everything sent (see tracker_msg.h). */
#include "wire/tracker_msg.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/tracker_json.h"

struct ferry_tracker_info {
  json_t *obj; /* always a JSON object */
  size_t size; /* bytes of its JSON text after the last merge */
};

/* Compact JSON text of v (bounded), for values stored and echoed later. */
static char *dump_bounded(const json_t *v, size_t max, int *rc) {
  ferry_buf b;
  ferry_buf_init(&b, max + 1);
  int r = ferry_tracker_json_dump(&b, v);
  if (r == 0)
    r = ferry_buf_append(&b, "", 1);
  if (r) {
    ferry_buf_close(&b);
    *rc = r;
    return NULL;
  }
  return (char *)b.data; /* ownership passes to the caller */
}

/* ---- info --------------------------------------------------------------- */

ferry_tracker_info *ferry_tracker_info_new(void) {
  ferry_tracker_info *info = malloc(sizeof *info);
  if (!info)
    return NULL;
  info->obj = json_object();
  info->size = 0;
  if (!info->obj) {
    free(info);
    return NULL;
  }
  return info;
}

void ferry_tracker_info_free(ferry_tracker_info *info) {
  if (!info)
    return;
  json_decref(info->obj);
  free(info);
}

int ferry_tracker_info_merge(ferry_tracker_info *info,
                             const ferry_tracker_info *update,
                             const char *peer_ip) {
  /* Merge into a copy so that a refused merge leaves info untouched. */
  json_t *merged = json_deep_copy(info->obj);
  json_t *upd = json_deep_copy(update->obj);
  int rc = 0;
  if (!merged || !upd || json_object_update(merged, upd) != 0)
    rc = FERRY_ENOMEM;
  json_decref(upd);
  json_t *addr = rc == 0 ? json_object_get(merged, "addr") : NULL;
  if (addr && json_is_array(addr) && json_array_size(addr) > 0 &&
      json_is_null(json_array_get(addr, 0))) {
    if (json_array_set_new(addr, 0, json_string(peer_ip ? peer_ip : "")) != 0)
      rc = FERRY_ENOMEM;
  }
  size_t size = 0;
  if (rc == 0) {
    ferry_buf b;
    ferry_buf_init(&b, FERRY_TRACKER_MAX_INFO);
    rc = ferry_tracker_json_dump(&b, merged);
    size = b.len;
    ferry_buf_close(&b);
  }
  if (rc) {
    json_decref(merged);
    return rc;
  }
  json_decref(info->obj);
  info->obj = merged;
  info->size = size;
  return 0;
}

const char *ferry_tracker_info_key(const ferry_tracker_info *info) {
  json_t *k = json_object_get(info->obj, "key");
  return json_is_string(k) ? json_string_value(k) : NULL;
}

size_t ferry_tracker_info_size(const ferry_tracker_info *info) {
  return info->size;
}

int ferry_tracker_info_has_key(const ferry_tracker_info *info) {
  return json_object_get(info->obj, "key") != NULL;
}

int ferry_tracker_info_encode(const ferry_tracker_info *info, ferry_buf *out) {
  return ferry_tracker_json_dump(out, info->obj);
}

/* ---- requests ----------------------------------------------------------- */

void ferry_tracker_request_close(ferry_tracker_request *req) {
  free(req->key);
  free(req->matchkey);
  free(req->port_json);
  free(req->addr_json);
  free(req->user);
  free(req->stop_key);
  free(req->target);
  ferry_tracker_report_close(&req->report);
  ferry_tracker_info_free(req->info);
  memset(req, 0, sizeof *req);
}

static int decode_put(json_t *a, ferry_tracker_request *req, char *err,
                      size_t errcap) {
  size_t n = json_array_size(a);
  json_t *key = json_array_get(a, 1), *pair = json_array_get(a, 2);
  if (n != 3 && n != 4) {
    ferry_tracker_json_errf(err, errcap, "PUT needs 3 or 4 elements, got %zu", n);
    return FERRY_EPROTO;
  }
  if (!json_is_string(key) || !json_is_array(pair) || json_array_size(pair) != 2) {
    ferry_tracker_json_errf(err, errcap, "PUT needs [3, key, [port, matchkey], addr]");
    return FERRY_EPROTO;
  }
  json_t *port = json_array_get(pair, 0), *mk = json_array_get(pair, 1);
  if (!(json_is_integer(port) || json_is_string(port)) || !json_is_string(mk)) {
    ferry_tracker_json_errf(err, errcap, "PUT port must be a number or string, matchkey a string");
    return FERRY_EPROTO;
  }
  json_t *addr = n == 4 ? json_array_get(a, 3) : NULL;
  if (addr && (json_is_array(addr) || json_is_object(addr))) {
    ferry_tracker_json_errf(err, errcap, "PUT custom address must be a scalar");
    return FERRY_EPROTO;
  }
  int rc = 0;
  req->key = ferry_tracker_json_strdup(key, FERRY_TRACKER_MAX_KEY, &rc);
  if (rc == 0)
    req->matchkey = ferry_tracker_json_strdup(mk, FERRY_TRACKER_MAX_KEY, &rc);
  if (rc == 0)
    req->port_json = dump_bounded(port, FERRY_TRACKER_MAX_VALUE, &rc);
  if (rc == 0 && addr && !json_is_null(addr))
    req->addr_json = dump_bounded(addr, FERRY_TRACKER_MAX_VALUE, &rc);
  if (rc)
    ferry_tracker_json_errf(err, errcap, "PUT field too long");
  return rc;
}

static int decode_request(json_t *a, ferry_tracker_request *req, char *err,
                          size_t errcap) {
  json_t *key = json_array_get(a, 1), *user = json_array_get(a, 2),
         *prio = json_array_get(a, 3), *opt = json_array_get(a, 4);
  if ((json_array_size(a) != 4 && json_array_size(a) != 5) || !json_is_string(key) ||
      !json_is_number(prio)) {
    ferry_tracker_json_errf(err, errcap, "REQUEST needs [4, key, user, priority]");
    return FERRY_EPROTO;
  }
  /* ferry's optional fifth element: {"deadline": seconds}. */
  if (opt) {
    json_t *d = json_object_get(opt, "deadline");
    if (!json_is_object(opt) || (d && (!json_is_number(d) || !(json_number_value(d) > 0) ||
                                       json_number_value(d) > 1e7))) {
      ferry_tracker_json_errf(err, errcap,
                              "REQUEST options must be {\"deadline\": seconds in (0, 1e7]}");
      return FERRY_EPROTO;
    }
    if (d)
      req->deadline_s = json_number_value(d);
  }
  int rc = 0;
  req->key = ferry_tracker_json_strdup(key, FERRY_TRACKER_MAX_KEY, &rc);
  if (rc == 0 && json_is_string(user))
    req->user = ferry_tracker_json_strdup(user, FERRY_TRACKER_MAX_KEY, &rc);
  req->priority = json_number_value(prio);
  if (rc)
    ferry_tracker_json_errf(err, errcap, "REQUEST field too long");
  return rc;
}

static int decode_update_info(json_t *a, ferry_tracker_request *req,
                              char *err, size_t errcap) {
  json_t *obj = json_array_get(a, 1);
  json_t *addr = json_object_get(obj, "addr");
  json_t *report = json_object_get(obj, "ferry_session");
  json_t *health = report ? NULL : json_object_get(obj, "ferry_health");
  const char *entry = report ? "ferry_session" : "ferry_health";
  if (health)
    report = health;
  /* A ferry server's session report needs no address (it updates nothing
   * else); it is taken out so that the info TVM's tools see stays as
   * TVM's server would have sent it. */
  if (json_array_size(a) != 2 || !json_is_object(obj) ||
      (!report && (!json_is_array(addr) || json_array_size(addr) == 0))) {
    ferry_tracker_json_errf(err, errcap, "UPDATE_INFO needs [5, {\"addr\": [host, port], ...}]");
    return FERRY_EPROTO;
  }
  if (report) {
    if ((health ? ferry_tracker_health_decode_json(report, &req->report)
                : ferry_tracker_report_decode_json(report, &req->report)) != 0)
      return FERRY_ENOMEM;
    obj = json_copy(obj); /* shallow: the entries are shared */
    if (!obj)
      return FERRY_ENOMEM;
    json_object_del(obj, entry);
  } else {
    json_incref(obj);
  }
  req->info = malloc(sizeof *req->info);
  if (!req->info) {
    json_decref(obj);
    return FERRY_ENOMEM;
  }
  req->info->obj = obj;
  req->info->size = 0; /* never merged */
  return 0;
}

int ferry_tracker_request_decode(const uint8_t *body, size_t len,
                                 ferry_tracker_request *req, char *err,
                                 size_t errcap) {
  memset(req, 0, sizeof *req);
  json_t *a = ferry_tracker_json_parse(body, len, err, errcap);
  if (!a)
    return FERRY_EPROTO;
  int rc = 0;
  if (!json_is_array(a) || json_array_size(a) == 0) {
    ferry_tracker_json_errf(err, errcap, "a request must be a non-empty JSON list");
    rc = FERRY_EPROTO;
    goto out;
  }
  json_t *code = json_array_get(a, 0);
  if (!json_is_integer(code)) {
    ferry_tracker_json_errf(err, errcap, "the request code must be an integer");
    rc = FERRY_EPROTO;
    goto out;
  }
  json_int_t unvalidated_code = json_integer_value(code);
  if ((unvalidated_code < FERRY_TRACKER_PING ||
       unvalidated_code > FERRY_TRACKER_GET_PENDING_MATCHKEYS) &&
      unvalidated_code != FERRY_TRACKER_FARM_STATUS &&
      unvalidated_code != FERRY_TRACKER_FARM_DRAIN) {
    ferry_tracker_json_errf(err, errcap, "unknown tracker code %" JSON_INTEGER_FORMAT,
            unvalidated_code);
    req->code = unvalidated_code < -1000000 || unvalidated_code > 1000000
                    ? -1000000
                    : (int)unvalidated_code;
    rc = FERRY_EUNSUPPORTED;
    goto out;
  }
  req->code = (int)unvalidated_code;
  switch (req->code) {
  case FERRY_TRACKER_PUT: rc = decode_put(a, req, err, errcap); break;
  case FERRY_TRACKER_REQUEST: rc = decode_request(a, req, err, errcap); break;
  case FERRY_TRACKER_UPDATE_INFO:
    rc = decode_update_info(a, req, err, errcap);
    break;
  case FERRY_TRACKER_STOP: {
    json_t *k = json_array_get(a, 1);
    if (json_array_size(a) != 2 || !json_is_string(k)) {
      ferry_tracker_json_errf(err, errcap, "STOP needs [2, key]");
      rc = FERRY_EPROTO;
    } else {
      req->stop_key = ferry_tracker_json_strdup(k, FERRY_TRACKER_MAX_KEY, &rc);
    }
    break;
  }
  case FERRY_TRACKER_FARM_DRAIN: {
    json_t *t = json_array_get(a, 1), *k = json_array_get(a, 2), *u = json_array_get(a, 3);
    if (json_array_size(a) != 4 || !json_is_string(t) || !json_is_string(k) ||
        !json_is_integer(u)) {
      ferry_tracker_json_errf(err, errcap, "DRAIN needs [101, target, stop_key, undrain]");
      rc = FERRY_EPROTO;
    } else {
      req->target = ferry_tracker_json_strdup(t, FERRY_TRACKER_MAX_KEY, &rc);
      if (rc == 0)
        req->stop_key = ferry_tracker_json_strdup(k, FERRY_TRACKER_MAX_KEY, &rc);
      req->undrain = json_integer_value(u) != 0;
    }
    break;
  }
  default: /* PING, SUMMARY, GET_PENDING_MATCHKEYS: TVM ignores the rest */
    break;
  }
out:
  json_decref(a);
  if (rc && rc != FERRY_EUNSUPPORTED) {
    int code_kept = req->code;
    ferry_tracker_request_close(req);
    req->code = code_kept;
  }
  return rc;
}

/* ---- replies the tracker sends ------------------------------------------ */

int ferry_tracker_encode_status(ferry_buf *out, int status) {
  char t[16];
  snprintf(t, sizeof t, "%d", status);
  return ferry_buf_append(out, t, strlen(t));
}

int ferry_tracker_encode_string(ferry_buf *out, const char *s) {
  return ferry_tracker_json_string(out, s, strlen(s));
}

int ferry_tracker_encode_grant(ferry_buf *out, const char *addr_json,
                               const char *port_json, const char *matchkey) {
  size_t mark = out->len;
  int rc = ferry_buf_append(out, "[0, [", 5);
  if (rc == 0)
    rc = ferry_buf_append(out, addr_json, strlen(addr_json));
  if (rc == 0)
    rc = ferry_buf_append(out, ", ", 2);
  if (rc == 0)
    rc = ferry_buf_append(out, port_json, strlen(port_json));
  if (rc == 0)
    rc = ferry_buf_append(out, ", ", 2);
  if (rc == 0)
    rc = ferry_tracker_encode_string(out, matchkey);
  if (rc == 0)
    rc = ferry_buf_append(out, "]]", 2);
  if (rc)
    out->len = mark;
  return rc;
}

int ferry_tracker_encode_pending(ferry_buf *out, const char *const *matchkeys,
                                 size_t n) {
  size_t mark = out->len;
  int rc = ferry_buf_append(out, "[", 1);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (i)
      rc = ferry_buf_append(out, ", ", 2);
    if (rc == 0)
      rc = ferry_tracker_encode_string(out, matchkeys[i]);
  }
  if (rc == 0)
    rc = ferry_buf_append(out, "]", 1);
  if (rc)
    out->len = mark;
  return rc;
}

int ferry_tracker_encode_summary(ferry_buf *out,
                                 const ferry_tracker_queue_stat *queues,
                                 size_t nqueues,
                                 const ferry_tracker_info *const *servers,
                                 size_t nservers) {
  size_t mark = out->len;
  int rc = ferry_buf_append(out, "[0, {\"queue_info\": {", 20);
  for (size_t i = 0; rc == 0 && i < nqueues; i++) {
    if (i)
      rc = ferry_buf_append(out, ", ", 2);
    if (rc == 0)
      rc = ferry_tracker_encode_string(out, queues[i].key);
    if (rc == 0)
      rc = ferry_buf_printf(out, ": {\"free\": %zu, \"pending\": %zu}",
                            queues[i].free, queues[i].pending);
  }
  if (rc == 0)
    rc = ferry_buf_append(out, "}, \"server_info\": [", 19);
  for (size_t i = 0; rc == 0 && i < nservers; i++) {
    if (i)
      rc = ferry_buf_append(out, ", ", 2);
    if (rc == 0)
      rc = ferry_tracker_info_encode(servers[i], out);
  }
  if (rc == 0)
    rc = ferry_buf_append(out, "]}]", 3);
  if (rc)
    out->len = mark;
  return rc;
}

/* ---- requests that servers, proxies and clients send -------------------- */

static int append_addr_or_null(ferry_buf *out, const char *addr) {
  return addr ? ferry_tracker_encode_string(out, addr)
              : ferry_buf_append(out, "null", 4);
}

int ferry_tracker_encode_put(ferry_buf *out, const char *key, int port,
                             const char *matchkey, const char *custom_addr) {
  size_t mark = out->len;
  int rc = ferry_buf_append(out, "[3, ", 4);
  if (rc == 0)
    rc = ferry_tracker_encode_string(out, key);
  if (rc == 0)
    rc = ferry_buf_printf(out, ", [%d, ", port);
  if (rc == 0)
    rc = ferry_tracker_encode_string(out, matchkey);
  if (rc == 0)
    rc = ferry_buf_append(out, "], ", 3);
  if (rc == 0)
    rc = append_addr_or_null(out, custom_addr);
  if (rc == 0)
    rc = ferry_buf_append(out, "]", 1);
  if (rc)
    out->len = mark;
  return rc;
}

int ferry_tracker_encode_update_info(ferry_buf *out, const char *info_key,
                                     const char *custom_addr, int port,
                                     int port_as_string) {
  return ferry_tracker_encode_update_info_devices(out, info_key, custom_addr, port,
                                                  port_as_string, NULL);
}

int ferry_tracker_encode_update_info_devices(ferry_buf *out, const char *info_key,
                                             const char *custom_addr, int port,
                                             int port_as_string, const char *devices) {
  size_t mark = out->len;
  int rc = ferry_buf_append(out, "[5, {\"key\": ", 12);
  if (rc == 0)
    rc = ferry_tracker_encode_string(out, info_key);
  if (rc == 0)
    rc = ferry_buf_append(out, ", \"addr\": [", 11);
  if (rc == 0)
    rc = append_addr_or_null(out, custom_addr);
  if (rc == 0)
    rc = ferry_buf_printf(out, port_as_string ? ", \"%d\"]" : ", %d]", port);
  if (rc == 0 && devices != NULL) {
    rc = ferry_buf_append(out, ", \"devices\": ", 13);
    if (rc == 0)
      rc = ferry_tracker_encode_string(out, devices);
  }
  if (rc == 0)
    rc = ferry_buf_append(out, "}]", 2);
  if (rc)
    out->len = mark;
  return rc;
}

int ferry_tracker_encode_request(ferry_buf *out, const char *key,
                                 const char *user, int priority) {
  size_t mark = out->len;
  int rc = ferry_buf_append(out, "[4, ", 4);
  if (rc == 0)
    rc = ferry_tracker_encode_string(out, key);
  if (rc == 0)
    rc = ferry_buf_append(out, ", ", 2);
  if (rc == 0)
    rc = ferry_tracker_encode_string(out, user ? user : "");
  if (rc == 0)
    rc = ferry_buf_printf(out, ", %d]", priority);
  if (rc)
    out->len = mark;
  return rc;
}

int ferry_tracker_encode_code(ferry_buf *out, int code) {
  return ferry_buf_printf(out, "[%d]", code);
}

int ferry_tracker_encode_stop(ferry_buf *out, const char *stop_key) {
  size_t mark = out->len;
  int rc = ferry_buf_append(out, "[2, ", 4);
  if (rc == 0)
    rc = ferry_tracker_encode_string(out, stop_key);
  if (rc == 0)
    rc = ferry_buf_append(out, "]", 1);
  if (rc)
    out->len = mark;
  return rc;
}

